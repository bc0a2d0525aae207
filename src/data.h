/* data.h — normbench's data pipeline: reading text (plain or gzip) and the embedded Brown
 * corpus, llm.c's .bin token shards, and the Dataset that turns token arrays into
 * seq_len windows and batches in a seeded order that is a pure function of (seed, index).
 *
 * Shard format (llm.c): 256 little-endian int32 header words — [0] magic 20240520,
 * [1] version 1, [2] token count — then that many little-endian uint16 tokens, nothing more.
 *
 * Windows: a split of n tokens holds W = (n - 1) / seq_len windows; window w covers tokens
 * [w*seq_len, w*seq_len + seq_len] (seq_len + 1 tokens): inputs are the first seq_len,
 * targets the last seq_len, so consecutive windows' targets are contiguous.
 *
 * Order: training sample k (k = batch_index * B + b) belongs to epoch e = k / W and is window
 * perm(seed, e)[k % W], where perm is a Fisher-Yates shuffle of 0..W-1 driven by splitmix64
 * seeded from (seed, e). It depends on nothing else, so every scheme sees the same tokens in
 * the same order and a resumed run continues exactly.
 *
 * Every function that can fail returns -1 and writes one line (naming the file, when there is
 * one) into err[errlen]; none prints. No global mutable state. */
#ifndef NORMBENCH_DATA_H
#define NORMBENCH_DATA_H

#include <stddef.h>
#include <stdint.h>

#define SHARD_MAGIC 20240520
#define SHARD_VERSION 1
#define SHARD_HEADER_INTS 256
#define SHARD_HEADER_BYTES (SHARD_HEADER_INTS * 4)

/* The embedded default corpus (relative to the repository root) and its split rule. */
#define DATA_DEFAULT_CORPUS "data/brown.txt.gz"
#define DATA_VAL_PERCENT 5

/* Reads a whole file, gzip-compressed or not (zlib detects which), into a malloc'd buffer
 * (NUL-terminated for convenience; *len excludes the NUL). Truncated or corrupt gzip is an error. */
int data_read_file(const char *path, unsigned char **buf, size_t *len, char *err, size_t errlen);

/* Atomically writes a shard: a temp file beside path, fsync, rename. */
int shard_write(const char *path, const uint16_t *tokens, size_t n, char *err, size_t errlen);
/* Reads a shard into a malloc'd array (*tokens; free() it). Fails on a missing file, a truncated
 * header, a wrong magic or version, or a token count that disagrees with the file size. */
int shard_read(const char *path, uint16_t **tokens, size_t *n, char *err, size_t errlen);

/* Byte-level tokenization of a text file (plain or .gz) into a shard (`normbench tokenize`). */
int tokenize_text_file(const char *text_path, const char *out_path, char *err, size_t errlen);

typedef struct {
    uint16_t *train, *val;         /* token arrays (owned) */
    size_t n_train, n_val;         /* token counts */
    int seq_len, vocab_size;
    size_t n_train_windows, n_val_windows;
    size_t n_docs, n_val_docs;     /* text corpora only (0 for shards) */
    /* Memo of the last epoch permutation computed (a cache: results never depend on it).
     * It makes dataset_train_batch non-reentrant on one Dataset. */
    size_t *perm;
    uint64_t perm_seed, perm_epoch;
    int perm_valid;
} Dataset;

/* Loads a text corpus (plain or .gz; one document per line, every non-empty line a document),
 * byte-tokenized; the last DATA_VAL_PERCENT% of documents (rounded up, at least 1) are
 * validation. vocab_size must be >= 1; every byte must be < vocab_size. */
int dataset_load_text(Dataset *ds, const char *path, int seq_len, int vocab_size, char *err,
                      size_t errlen);
/* Loads train and validation token shards; every token must be < vocab_size. A split whose
 * path names no file but has numbered shards beside it (DIR/train.bin -> DIR/train_000000.bin,
 * DIR/train_000001.bin, ..., as scripts/prepare-c4 writes a split past 2^31-1 tokens) is
 * those shards concatenated in order, up to the first missing number. */
int dataset_load_shards(Dataset *ds, const char *train_path, const char *val_path, int seq_len,
                        int vocab_size, char *err, size_t errlen);
void dataset_free(Dataset *ds);

/* perm[0..n-1] = the epoch permutation of 0..n-1 for (seed, epoch). */
void dataset_permutation(size_t n, uint64_t seed, uint64_t epoch, size_t *perm);

/* Training batch batch_index: tokens_out and targets_out are [B, seq_len] int32 (row b is
 * sample batch_index*B + b, see the order above). Returns 0, or -1 on bad arguments or
 * allocation failure. */
int dataset_train_batch(Dataset *ds, uint64_t seed, uint64_t batch_index, int B,
                        int32_t *tokens_out, int32_t *targets_out);
/* Epochs of the training split that `samples` training samples cover: samples / W (W the
 * training windows; 0 when there are none). Above 1, samples repeat (the order above). */
double dataset_epochs(const Dataset *ds, uint64_t samples);

/* Number of full validation batches of B windows (the fixed validation set, in order). */
size_t dataset_val_batches(const Dataset *ds, int B);
/* Validation batch i: windows i*B .. i*B+B-1 of the validation split; -1 if i is out of range. */
int dataset_val_batch(const Dataset *ds, size_t i, int B, int32_t *tokens_out,
                      int32_t *targets_out);

#endif
