/* fuzz_checkpoint.c — libFuzzer target for the checkpoint reader (src/checkpoint.c:
 * checkpoint_read_info, checkpoint_check, checkpoint_load_state) against the model of the
 * seed corpus (the tiny config at n_layer 1, d_model 16, 2 heads, d_ff 44, vocab 256, pre_ln).
 * The input is the file. Each read runs in a child first (src/h5vet.c), as in normbench.
 * Properties: no crash, no hang, no leak; an accepted checkpoint has 0 <= step <=
 * train.steps and loads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "checkpoint.h"
#include "fuzz_util.h"
#include "run.h"
#include "schemes.h"

enum { FUZZ_STEPS = 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_file(data, size);
    static Backend *be;
    static Model *model;
    static SublayerSpec *specs;
    static ModelConfig mc;
    char err[1024];
    if (!model) {
        model_config_default(&mc);
        mc.n_layer = 1, mc.d_model = 16, mc.n_head = 2, mc.d_ff = 44, mc.vocab_size = 256;
        mc.seq_len = 8;
        SchemeParams sp;
        scheme_params_default(&sp);
        specs = run_build_specs(&mc, scheme_find("pre_ln"), &sp, err, sizeof err);
        be = specs ? backend_create("cpu", 1, err, sizeof err) : NULL;
        model = be ? model_create(be, &mc, specs, 1, err, sizeof err) : NULL;
        if (!model) abort();
    }
    CheckpointInfo info;
    if (checkpoint_read_info(path, &info, err, sizeof err) == 0) {
        if (info.step < 0 || !info.config_yaml) abort();
        checkpoint_info_free(&info);
    }
    if (checkpoint_check(path, &mc, specs, FUZZ_STEPS, &info, err, sizeof err) == 0) {
        if (info.step < 0 || info.step > FUZZ_STEPS) abort();
        checkpoint_info_free(&info);
        if (checkpoint_load_state(path, model, err, sizeof err) != 0) abort();
    }
    return 0;
}
