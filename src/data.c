/* data.c — the data pipeline (see data.h): text and gzip reading via zlib, llm.c .bin token
 * shards (atomic write, checked read), byte-level text tokenization to shards, and the Dataset:
 * document split, seq_len windows, seeded epoch permutations and batches. */
#include "data.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "rng.h"
#include "tokenizer.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ---------------------------------------------------------------- reading files */

int data_read_file(const char *path, unsigned char **buf, size_t *len, char *err,
                   size_t errlen) {
    *buf = NULL;
    *len = 0;
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz) {
        return fail(err, errlen, "%s: cannot open: %s", path,
                    errno ? strerror(errno) : "out of memory");
    }
    gzbuffer(gz, 1 << 17);
    size_t cap = 1 << 20, n = 0;
    unsigned char *b = malloc(cap + 1);
    if (!b) {
        gzclose(gz);
        return fail(err, errlen, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - n < (1u << 16)) {
            unsigned char *nb = realloc(b, 2 * cap + 1);
            if (!nb) {
                free(b);
                gzclose(gz);
                return fail(err, errlen, "%s: out of memory", path);
            }
            b = nb;
            cap *= 2;
        }
        size_t room = cap - n;
        int got = gzread(gz, b + n, room > (1u << 30) ? (1u << 30) : (unsigned)room);
        if (got < 0) {
            int code;
            const char *msg = gzerror(gz, &code);
            fail(err, errlen, "%s: read error: %s", path,
                 code == Z_ERRNO ? strerror(errno) : msg);
            free(b);
            gzclose(gz);
            return -1;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    int code;
    const char *msg = gzerror(gz, &code);
    if (code != Z_OK) { /* e.g. a truncated gzip stream: "unexpected end of file" */
        fail(err, errlen, "%s: corrupt or truncated gzip data: %s", path, msg);
        free(b);
        gzclose(gz);
        return -1;
    }
    gzclose(gz);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* ---------------------------------------------------------------- shards */

static void put_le32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}
static int32_t get_le32(const unsigned char *p) {
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return (int32_t)v;
}

static int write_all(int fd, const void *p, size_t n) {
    const unsigned char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int shard_write(const char *path, const uint16_t *tokens, size_t n, char *err, size_t errlen) {
    if (n > (size_t)INT32_MAX) {
        return fail(err, errlen, "%s: %zu tokens do not fit a shard header (max %d)", path, n,
                    INT32_MAX);
    }
    /* The temp file + rename below replaces a regular file atomically; renamed over a
     * device node, a FIFO or a socket (as root: -o /dev/full) it would replace the node
     * itself. Such a target is refused. */
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fail(err, errlen, "%s: exists and is not a regular file; give a file path for "
                    "the shard", path);
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return fail(err, errlen, "%s: out of memory", path);
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        fail(err, errlen, "%s: cannot create temp file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    unsigned char header[SHARD_HEADER_BYTES];
    memset(header, 0, sizeof header);
    put_le32(header + 0, SHARD_MAGIC);
    put_le32(header + 4, SHARD_VERSION);
    put_le32(header + 8, (uint32_t)n);
    int rc = write_all(fd, header, sizeof header);
    unsigned char chunk[1 << 16];
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t m = 0;
        for (; i < n && m + 2 <= sizeof chunk; i++, m += 2) {
            chunk[m] = (unsigned char)tokens[i];
            chunk[m + 1] = (unsigned char)(tokens[i] >> 8);
        }
        rc = write_all(fd, chunk, m);
    }
    if (rc == 0) rc = fchmod(fd, 0644);
    if (rc == 0) rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0) {
        fail(err, errlen, "%s: cannot write shard: %s", path, strerror(saved));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    /* Make the rename durable: fsync the directory (best effort). */
    char *dir = strdup(path);
    if (dir) {
        char *slash = strrchr(dir, '/');
        const char *d = ".";
        if (slash == dir) d = "/";
        else if (slash) { *slash = '\0'; d = dir; }
        int dfd = open(d, O_RDONLY);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
        free(dir);
    }
    return 0;
}

int shard_read(const char *path, uint16_t **tokens, size_t *n, char *err, size_t errlen) {
    *tokens = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, errlen, "%s: cannot open shard: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fail(err, errlen, "%s: cannot stat shard: %s", path, strerror(errno));
        fclose(f);
        return -1;
    }
    unsigned char header[SHARD_HEADER_BYTES];
    size_t got = fread(header, 1, sizeof header, f);
    if (got != sizeof header) {
        fail(err, errlen, "%s: truncated shard header: %zu of %d bytes", path, got,
             SHARD_HEADER_BYTES);
        fclose(f);
        return -1;
    }
    int32_t magic = get_le32(header), version = get_le32(header + 4),
            count = get_le32(header + 8);
    const char *bad = NULL;
    char why[160];
    if (magic != SHARD_MAGIC) {
        snprintf(why, sizeof why, "bad magic %d (expected %d): not an llm.c token shard",
                 (int)magic, SHARD_MAGIC);
        bad = why;
    } else if (version != SHARD_VERSION) {
        snprintf(why, sizeof why, "unsupported shard version %d (expected %d)", (int)version,
                 SHARD_VERSION);
        bad = why;
    } else if (count < 0) {
        snprintf(why, sizeof why, "negative token count %d in header", (int)count);
        bad = why;
    } else {
        long long want = SHARD_HEADER_BYTES + 2LL * count;
        if ((long long)st.st_size < want) {
            snprintf(why, sizeof why,
                     "truncated: header says %d tokens (%lld bytes) but the file has %lld bytes",
                     (int)count, want, (long long)st.st_size);
            bad = why;
        } else if ((long long)st.st_size > want) {
            snprintf(why, sizeof why,
                     "size mismatch: header says %d tokens (%lld bytes) but the file has %lld "
                     "bytes",
                     (int)count, want, (long long)st.st_size);
            bad = why;
        }
    }
    if (bad) {
        fail(err, errlen, "%s: %s", path, bad);
        fclose(f);
        return -1;
    }
    size_t cnt = (size_t)count;
    uint16_t *t = malloc(cnt ? cnt * sizeof *t : 1);
    unsigned char *raw = malloc(cnt ? cnt * 2 : 1);
    if (!t || !raw) {
        free(t);
        free(raw);
        fclose(f);
        return fail(err, errlen, "%s: out of memory for %zu tokens", path, cnt);
    }
    got = fread(raw, 1, cnt * 2, f);
    fclose(f);
    if (got != cnt * 2) {
        free(t);
        free(raw);
        return fail(err, errlen, "%s: truncated: read %zu of %zu token bytes", path, got,
                    cnt * 2);
    }
    for (size_t i = 0; i < cnt; i++) t[i] = (uint16_t)(raw[2 * i] | raw[2 * i + 1] << 8);
    free(raw);
    *tokens = t;
    *n = cnt;
    return 0;
}

int tokenize_text_file(const char *text_path, const char *out_path, char *err, size_t errlen) {
    unsigned char *buf;
    size_t len;
    if (data_read_file(text_path, &buf, &len, err, errlen) != 0) return -1;
    if (len == 0) {
        free(buf);
        return fail(err, errlen, "%s: empty text file: nothing to tokenize", text_path);
    }
    uint16_t *tok = malloc(len * sizeof *tok);
    if (!tok) {
        free(buf);
        return fail(err, errlen, "%s: out of memory", text_path);
    }
    size_t n = tokenizer_encode_bytes(buf, len, tok);
    free(buf);
    int rc = shard_write(out_path, tok, n, err, errlen);
    free(tok);
    return rc;
}

/* ---------------------------------------------------------------- dataset */

static int check_split(const char *what, const char *path, const uint16_t *t, size_t n,
                       int seq_len, int vocab_size, char *err, size_t errlen) {
    if ((size_t)seq_len + 1 > n) {
        return fail(err, errlen,
                    "%s: %s split has %zu tokens, fewer than seq_len + 1 = %d: use a shorter "
                    "seq_len or more data",
                    path, what, n, seq_len + 1);
    }
    for (size_t i = 0; i < n; i++) {
        if (t[i] >= vocab_size) {
            return fail(err, errlen,
                        "%s: %s token %zu is %u, outside the vocabulary (vocab_size %d)", path,
                        what, i, (unsigned)t[i], vocab_size);
        }
    }
    return 0;
}

static int check_args(const char *path, int seq_len, int vocab_size, char *err, size_t errlen) {
    if (seq_len < 1) return fail(err, errlen, "%s: seq_len must be >= 1, got %d", path, seq_len);
    if (vocab_size < 1 || vocab_size > 65536) {
        return fail(err, errlen, "%s: vocab_size must be in 1..65536, got %d", path, vocab_size);
    }
    return 0;
}

static void finish_windows(Dataset *ds, int seq_len, int vocab_size) {
    ds->seq_len = seq_len;
    ds->vocab_size = vocab_size;
    ds->n_train_windows = (ds->n_train - 1) / (size_t)seq_len;
    ds->n_val_windows = (ds->n_val - 1) / (size_t)seq_len;
}

int dataset_load_text(Dataset *ds, const char *path, int seq_len, int vocab_size, char *err,
                      size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (check_args(path, seq_len, vocab_size, err, errlen) != 0) return -1;
    unsigned char *buf;
    size_t len;
    if (data_read_file(path, &buf, &len, err, errlen) != 0) return -1;
    /* Documents: non-empty lines. Record where each starts. */
    size_t n_docs = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n' && (i == 0 || buf[i - 1] == '\n')) n_docs++;
    }
    if (n_docs == 0) {
        free(buf);
        return fail(err, errlen, "%s: empty corpus: no documents (non-empty lines)", path);
    }
    if (n_docs < 2) {
        free(buf);
        return fail(err, errlen,
                    "%s: corpus has 1 document; the train/validation split needs at least 2",
                    path);
    }
    size_t n_val_docs = (n_docs * DATA_VAL_PERCENT + 99) / 100;
    if (n_val_docs < 1) n_val_docs = 1;
    size_t first_val_doc = n_docs - n_val_docs, cut = len, d = 0;
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n' && (i == 0 || buf[i - 1] == '\n')) {
            if (d == first_val_doc) {
                cut = i;
                break;
            }
            d++;
        }
    }
    ds->n_docs = n_docs;
    ds->n_val_docs = n_val_docs;
    ds->n_train = cut;
    ds->n_val = len - cut;
    ds->train = malloc((ds->n_train ? ds->n_train : 1) * sizeof(uint16_t));
    ds->val = malloc((ds->n_val ? ds->n_val : 1) * sizeof(uint16_t));
    if (!ds->train || !ds->val) {
        free(buf);
        dataset_free(ds);
        return fail(err, errlen, "%s: out of memory", path);
    }
    tokenizer_encode_bytes(buf, ds->n_train, ds->train);
    tokenizer_encode_bytes(buf + cut, ds->n_val, ds->val);
    free(buf);
    if (check_split("train", path, ds->train, ds->n_train, seq_len, vocab_size, err, errlen) ||
        check_split("validation", path, ds->val, ds->n_val, seq_len, vocab_size, err, errlen)) {
        dataset_free(ds);
        return -1;
    }
    finish_windows(ds, seq_len, vocab_size);
    return 0;
}

/* The name of numbered shard k of `path` in llm.c's naming, as scripts/prepare-c4 writes a
 * split too large for one shard: DIR/train.bin -> DIR/train_000000.bin, DIR/train_000001.bin.
 * Returns -1 when the name does not fit. */
static int numbered_shard(char *out, size_t outlen, const char *path, int k) {
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".bin") == 0) len -= 4;
    int w = snprintf(out, outlen, "%.*s_%06d.bin", (int)len, path, k);
    return w < 0 || (size_t)w >= outlen ? -1 : 0;
}

/* Reads `path`, or, when no file has that name, its numbered shards _000000, _000001, ...
 * (up to the first missing number) concatenated in order. */
static int read_split(const char *path, uint16_t **tokens, size_t *n, char *err, size_t errlen) {
    char name[4096];
    if (access(path, F_OK) == 0 || numbered_shard(name, sizeof name, path, 0) != 0 ||
        access(name, F_OK) != 0)
        return shard_read(path, tokens, n, err, errlen);
    uint16_t *all = NULL;
    size_t total = 0;
    for (int k = 0; numbered_shard(name, sizeof name, path, k) == 0 && access(name, F_OK) == 0;
         k++) {
        uint16_t *part;
        size_t np;
        if (shard_read(name, &part, &np, err, errlen) != 0) {
            free(all);
            return -1;
        }
        uint16_t *grown = realloc(all, (total + np ? total + np : 1) * sizeof *grown);
        if (!grown) {
            free(part);
            free(all);
            return fail(err, errlen, "%s: out of memory for %zu tokens", name, total + np);
        }
        all = grown;
        memcpy(all + total, part, np * sizeof *part);
        total += np;
        free(part);
    }
    *tokens = all;
    *n = total;
    return 0;
}

int dataset_load_shards(Dataset *ds, const char *train_path, const char *val_path, int seq_len,
                        int vocab_size, char *err, size_t errlen) {
    memset(ds, 0, sizeof *ds);
    if (check_args(train_path, seq_len, vocab_size, err, errlen) != 0) return -1;
    if (read_split(train_path, &ds->train, &ds->n_train, err, errlen) != 0) return -1;
    if (read_split(val_path, &ds->val, &ds->n_val, err, errlen) != 0 ||
        check_split("train", train_path, ds->train, ds->n_train, seq_len, vocab_size, err,
                    errlen) ||
        check_split("validation", val_path, ds->val, ds->n_val, seq_len, vocab_size, err,
                    errlen)) {
        dataset_free(ds);
        return -1;
    }
    finish_windows(ds, seq_len, vocab_size);
    return 0;
}

void dataset_free(Dataset *ds) {
    if (!ds) return;
    free(ds->train);
    free(ds->val);
    free(ds->perm);
    memset(ds, 0, sizeof *ds);
}

/* uniform in [0, bound), bound >= 1, unbiased (rejection of the short top range) */
static uint64_t uniform_below(uint64_t *state, uint64_t bound) {
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = rng_next(state);
        if (r >= threshold) return r % bound;
    }
}

void dataset_permutation(size_t n, uint64_t seed, uint64_t epoch, size_t *perm) {
    uint64_t mix = seed;
    uint64_t state = rng_next(&mix);        /* decorrelate nearby seeds */
    uint64_t emix = epoch ^ 0xD1B54A32D192ED03ull;
    state ^= rng_next(&emix);               /* and nearby epochs */
    for (size_t i = 0; i < n; i++) perm[i] = i;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)uniform_below(&state, (uint64_t)i);
        size_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}

static void copy_window(const uint16_t *split, size_t w, int T, int32_t *tok, int32_t *tgt) {
    const uint16_t *p = split + w * (size_t)T;
    for (int t = 0; t < T; t++) {
        tok[t] = p[t];
        tgt[t] = p[t + 1];
    }
}

double dataset_epochs(const Dataset *ds, uint64_t samples) {
    return ds->n_train_windows ? (double)samples / (double)ds->n_train_windows : 0.0;
}

int dataset_train_batch(Dataset *ds, uint64_t seed, uint64_t batch_index, int B,
                        int32_t *tokens_out, int32_t *targets_out) {
    if (!ds || B < 1 || ds->n_train_windows == 0) return -1;
    size_t W = ds->n_train_windows;
    int T = ds->seq_len;
    if (!ds->perm) {
        ds->perm = malloc(W * sizeof *ds->perm);
        if (!ds->perm) return -1;
        ds->perm_valid = 0;
    }
    for (int b = 0; b < B; b++) {
        uint64_t k = batch_index * (uint64_t)B + (uint64_t)b;
        uint64_t epoch = k / W;
        if (!ds->perm_valid || ds->perm_seed != seed || ds->perm_epoch != epoch) {
            dataset_permutation(W, seed, epoch, ds->perm);
            ds->perm_seed = seed;
            ds->perm_epoch = epoch;
            ds->perm_valid = 1;
        }
        size_t w = ds->perm[k % W];
        copy_window(ds->train, w, T, tokens_out + (size_t)b * T, targets_out + (size_t)b * T);
    }
    return 0;
}

size_t dataset_val_batches(const Dataset *ds, int B) {
    if (!ds || B < 1) return 0;
    return ds->n_val_windows / (size_t)B;
}

int dataset_val_batch(const Dataset *ds, size_t i, int B, int32_t *tokens_out,
                      int32_t *targets_out) {
    if (!ds || B < 1 || i >= dataset_val_batches(ds, B)) return -1;
    int T = ds->seq_len;
    for (int b = 0; b < B; b++) {
        copy_window(ds->val, i * (size_t)B + (size_t)b, T, tokens_out + (size_t)b * T,
                    targets_out + (size_t)b * T);
    }
    return 0;
}
