/* fuzz_checkpoint.c — libFuzzer target for the checkpoint reader (src/checkpoint.c:
 * checkpoint_read_info, checkpoint_check) against the model of the seed corpus (the tiny
 * config at n_layer 1, d_model 16, 2 heads, d_ff 44, vocab 256). The input is the file.
 * Properties: no crash, no leak; an accepted checkpoint has 0 <= step <= train.steps. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "fuzz_util.h"

enum { FUZZ_STEPS = 3 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_file(data, size);
    ModelConfig mc;
    model_config_default(&mc);
    mc.n_layer = 1, mc.d_model = 16, mc.n_head = 2, mc.d_ff = 44, mc.vocab_size = 256;
    mc.seq_len = 8;
    CheckpointInfo info;
    char err[1024];
    if (checkpoint_read_info(path, &info, err, sizeof err) == 0) {
        if (info.step < 0 || !info.config_yaml) abort();
        checkpoint_info_free(&info);
    }
    if (checkpoint_check(path, &mc, FUZZ_STEPS, &info, err, sizeof err) == 0) {
        if (info.step < 0 || info.step > FUZZ_STEPS) abort();
        checkpoint_info_free(&info);
    }
    return 0;
}
