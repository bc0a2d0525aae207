/* fuzz_shard.c — libFuzzer target for the llm.c token shard reader (src/data.c): the input
 * is the shard file, used as both splits; seq_len and vocab_size vary with its first bytes.
 * Properties: no crash, no leak; a shard that loads yields batches with tokens < vocab. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_input_file(data, size);
    int seq_len = size > 0 ? 1 + data[0] % 16 : 8;
    int vocab = size > 1 ? 1 + data[1] * 257 : 50257;
    Dataset ds;
    char err[1024];
    if (dataset_load_shards(&ds, path, path, seq_len, vocab, err, sizeof err) == 0) {
        int32_t tok[4 * 17], tgt[4 * 17];
        size_t nb = dataset_val_batches(&ds, 4);
        for (size_t i = 0; i < nb && i < 4; i++) {
            if (dataset_val_batch(&ds, i, 4, tok, tgt) != 0) abort();
            for (int k = 0; k < 4 * seq_len; k++)
                if (tok[k] < 0 || tok[k] >= vocab || tgt[k] < 0 || tgt[k] >= vocab) abort();
        }
        dataset_free(&ds);
    }
    return 0;
}
