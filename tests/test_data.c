/* test_data.c — Check suite for the data pipeline (src/data.c, src/tokenizer.c): shard round
 * trip and every corrupt-shard error, text/gzip reading, the embedded Brown corpus and its
 * 95/5 document split, seq_len windows, and the seeded batch order (pure in (seed, index),
 * a permutation per epoch). Runs from the repository root; scratch files go in mkdtemp dirs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"
#include "testutil.h"
#include "tokenizer.h"

/* ---------------------------------------------------------------- helpers */

typedef struct {
    char dir[64];
} TmpDir;

static void tmpdir_make(TmpDir *t) {
    strcpy(t->dir, "/tmp/nb_data_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
}
static void tmp_path(const TmpDir *t, const char *name, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", t->dir, name);
}
static void tmpdir_remove(TmpDir *t) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    ck_assert_int_eq(system(cmd), 0);
}
static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(p, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}
static void write_text(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* raw shard bytes with a chosen header, for the corrupt cases */
static void write_raw_shard(const char *path, int32_t magic, int32_t version, int32_t count,
                            size_t n_tokens_written) {
    int32_t header[SHARD_HEADER_INTS] = {0};
    header[0] = magic;
    header[1] = version;
    header[2] = count;
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(header, 4, SHARD_HEADER_INTS, f), SHARD_HEADER_INTS);
    for (size_t i = 0; i < n_tokens_written; i++) {
        uint16_t t = (uint16_t)(i % 200);
        ck_assert_uint_eq(fwrite(&t, 2, 1, f), 1);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* expects shard_read(path) to fail with a message naming the file and containing `what` */
static void expect_shard_error(const char *path, const char *what) {
    uint16_t *tok = (uint16_t *)&tok; /* poison: must come back NULL */
    size_t n = 99;
    char err[512] = "";
    ck_assert_int_eq(shard_read(path, &tok, &n, err, sizeof err), -1);
    ck_assert_ptr_null(tok);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err, path) != NULL, "error '%s' does not name %s", err, path);
    ck_assert_msg(strstr(err, what) != NULL, "error '%s' lacks '%s'", err, what);
}

/* shard whose train tokens number i identify their position: window w starts with w*T */
static void make_counting_dataset(const TmpDir *td, size_t n_train, size_t n_val, int T,
                                  Dataset *ds) {
    char tp[128], vp[128], err[512];
    tmp_path(td, "train.bin", tp, sizeof tp);
    tmp_path(td, "val.bin", vp, sizeof vp);
    uint16_t *a = malloc(n_train * sizeof *a), *b = malloc(n_val * sizeof *b);
    for (size_t i = 0; i < n_train; i++) a[i] = (uint16_t)i;
    for (size_t i = 0; i < n_val; i++) b[i] = (uint16_t)(1000 + i);
    ck_assert_int_eq(shard_write(tp, a, n_train, err, sizeof err), 0);
    ck_assert_int_eq(shard_write(vp, b, n_val, err, sizeof err), 0);
    free(a);
    free(b);
    ck_assert_msg(dataset_load_shards(ds, tp, vp, T, 65536, err, sizeof err) == 0, "%s", err);
}

/* ---------------------------------------------------------------- tokenizer */

START_TEST(test_tokenizer_round_trip) {
    unsigned char bytes[256];
    for (int i = 0; i < 256; i++) bytes[i] = (unsigned char)(255 - i);
    uint16_t tok[256];
    ck_assert_uint_eq(tokenizer_encode_bytes(bytes, 256, tok), 256);
    for (int i = 0; i < 256; i++) ck_assert_uint_eq(tok[i], 255 - i);
    char out[257];
    ck_assert_int_eq(tokenizer_decode(tok, 256, out, sizeof out), 256);
    ck_assert_int_eq(memcmp(out, bytes, 256), 0);
    ck_assert_int_eq(out[256], '\0');
    tok[3] = 256;
    ck_assert_int_eq(tokenizer_decode(tok, 256, out, sizeof out), -1);
    ck_assert_int_eq(tokenizer_decode(tok, 3, out, 3), -1); /* no room for the NUL */
}
END_TEST

/* ---------------------------------------------------------------- shards */

START_TEST(test_shard_round_trip) {
    TmpDir td;
    tmpdir_make(&td);
    char path[128], err[512] = "";
    tmp_path(&td, "x.bin", path, sizeof path);
    size_t n = 100003; /* spans several write chunks */
    uint16_t *t = malloc(n * sizeof *t);
    uint64_t rng = 7;
    for (size_t i = 0; i < n; i++) t[i] = (uint16_t)rng_next(&rng);
    t[0] = 0;
    t[1] = 65535;
    ck_assert_msg(shard_write(path, t, n, err, sizeof err) == 0, "%s", err);
    /* the file is exactly header + 2n bytes, header words as llm.c writes them */
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    int32_t h[SHARD_HEADER_INTS];
    ck_assert_uint_eq(fread(h, 4, SHARD_HEADER_INTS, f), SHARD_HEADER_INTS);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    ck_assert_int_eq(ftell(f), SHARD_HEADER_BYTES + 2 * (long)n);
    fclose(f);
    ck_assert_int_eq(h[0], 20240520);
    ck_assert_int_eq(h[1], 1);
    ck_assert_int_eq(h[2], (int32_t)n);
    for (int i = 3; i < SHARD_HEADER_INTS; i++) ck_assert_int_eq(h[i], 0);

    uint16_t *r = NULL;
    size_t rn = 0;
    ck_assert_msg(shard_read(path, &r, &rn, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(rn, n);
    ck_assert_int_eq(memcmp(r, t, n * sizeof *t), 0);
    free(r);

    /* overwrite in place; no temp files are left behind */
    ck_assert_int_eq(shard_write(path, t, 5, err, sizeof err), 0);
    ck_assert_int_eq(shard_read(path, &r, &rn, err, sizeof err), 0);
    ck_assert_uint_eq(rn, 5);
    free(r);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq 1", td.dir);
    ck_assert_int_eq(system(cmd), 0);

    /* an empty shard is a valid file */
    ck_assert_int_eq(shard_write(path, t, 0, err, sizeof err), 0);
    ck_assert_int_eq(shard_read(path, &r, &rn, err, sizeof err), 0);
    ck_assert_uint_eq(rn, 0);
    free(r);
    free(t);

    /* writing into a missing directory fails and names the file */
    tmp_path(&td, "no/such/dir/x.bin", path, sizeof path);
    uint16_t one = 1;
    ck_assert_int_eq(shard_write(path, &one, 1, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, path));
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_shard_missing_file) {
    expect_shard_error("/nonexistent/dir/none.bin", "No such file");
}
END_TEST

START_TEST(test_shard_truncated_header) {
    TmpDir td;
    tmpdir_make(&td);
    char path[128];
    tmp_path(&td, "short.bin", path, sizeof path);
    int32_t h[10] = {20240520, 1, 5};
    write_bytes(path, h, sizeof h);
    expect_shard_error(path, "truncated shard header");
    write_bytes(path, "", 0);
    expect_shard_error(path, "truncated shard header");
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_shard_wrong_magic) {
    TmpDir td;
    tmpdir_make(&td);
    char path[128];
    tmp_path(&td, "magic.bin", path, sizeof path);
    write_raw_shard(path, 20240521, 1, 10, 10);
    expect_shard_error(path, "magic");
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_shard_wrong_version) {
    TmpDir td;
    tmpdir_make(&td);
    char path[128];
    tmp_path(&td, "version.bin", path, sizeof path);
    write_raw_shard(path, 20240520, 2, 10, 10);
    expect_shard_error(path, "version 2");
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_shard_truncated_tokens) {
    TmpDir td;
    tmpdir_make(&td);
    char path[128];
    tmp_path(&td, "trunc.bin", path, sizeof path);
    write_raw_shard(path, 20240520, 1, 1000, 999);
    expect_shard_error(path, "truncated");
    expect_shard_error(path, "1000 tokens");
    /* more data than the header says is a mismatch too */
    write_raw_shard(path, 20240520, 1, 10, 11);
    expect_shard_error(path, "size mismatch");
    write_raw_shard(path, 20240520, 1, -3, 0);
    expect_shard_error(path, "negative");
    tmpdir_remove(&td);
}
END_TEST

/* ---------------------------------------------------------------- text, gzip, tokenize */

START_TEST(test_tokenize_text_and_gzip) {
    TmpDir td;
    tmpdir_make(&td);
    char txt[128], gz[128], out[128], err[512] = "";
    tmp_path(&td, "a.txt", txt, sizeof txt);
    tmp_path(&td, "a.txt.gz", gz, sizeof gz);
    tmp_path(&td, "a.bin", out, sizeof out);
    const char *s = "Hello, world.\nSecond line \xc3\xa9\n";
    write_text(txt, s);
    gzFile g = gzopen(gz, "wb9");
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(gzwrite(g, s, (unsigned)strlen(s)), (int)strlen(s));
    ck_assert_int_eq(gzclose(g), Z_OK);

    const char *inputs[2] = {txt, gz};
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(tokenize_text_file(inputs[k], out, err, sizeof err) == 0, "%s", err);
        uint16_t *t;
        size_t n;
        ck_assert_int_eq(shard_read(out, &t, &n, err, sizeof err), 0);
        ck_assert_uint_eq(n, strlen(s));
        char back[128];
        ck_assert_int_eq(tokenizer_decode(t, n, back, sizeof back), (long)n);
        ck_assert_str_eq(back, s);
        free(t);
    }

    /* a truncated gzip stream is an error, not a silently short corpus */
    FILE *f = fopen(gz, "rb");
    unsigned char buf[256];
    size_t m = fread(buf, 1, sizeof buf, f);
    fclose(f);
    write_bytes(gz, buf, m - 6);
    ck_assert_int_eq(tokenize_text_file(gz, out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, gz));

    ck_assert_int_eq(tokenize_text_file("/nonexistent/x.txt", out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.txt"));
    write_text(txt, "");
    ck_assert_int_eq(tokenize_text_file(txt, out, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty"));
    tmpdir_remove(&td);
}
END_TEST

/* ---------------------------------------------------------------- the embedded corpus */

START_TEST(test_corpus_split) {
    Dataset ds;
    char err[512] = "";
    ck_assert_msg(dataset_load_text(&ds, DATA_DEFAULT_CORPUS, 256, 256, err, sizeof err) == 0,
                  "%s", err);
    ck_assert_uint_eq(ds.n_docs, 500);
    ck_assert_uint_eq(ds.n_val_docs, 25);
    /* the split falls on a document boundary and each side holds its documents */
    ck_assert_uint_eq(ds.train[ds.n_train - 1], '\n');
    ck_assert_uint_eq(ds.val[ds.n_val - 1], '\n');
    size_t train_lines = 0, val_lines = 0;
    for (size_t i = 0; i < ds.n_train; i++) train_lines += ds.train[i] == '\n';
    for (size_t i = 0; i < ds.n_val; i++) val_lines += ds.val[i] == '\n';
    ck_assert_uint_eq(train_lines, 475);
    ck_assert_uint_eq(val_lines, 25);
    /* all bytes are tokens of the 256 vocabulary; the whole corpus is there */
    for (size_t i = 0; i < ds.n_train; i++) ck_assert_uint_lt(ds.train[i], 256);
    for (size_t i = 0; i < ds.n_val; i++) ck_assert_uint_lt(ds.val[i], 256);
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(data_read_file(DATA_DEFAULT_CORPUS, &buf, &len, err, sizeof err), 0);
    ck_assert_uint_eq(ds.n_train + ds.n_val, len);
    ck_assert_uint_gt(len, 5000000);
    ck_assert_int_eq(buf[ds.n_train], ds.val[0]);
    ck_assert_int_eq(memcmp(buf, "The Fulton County Grand Jury", 28), 0);
    /* unigram byte entropy of the whole corpus (data/README.md: 3.0679 nats): the floor a
     * context-free model reaches, which the trainer's acceptance test compares against */
    double count[256] = {0}, h = 0.0;
    for (size_t i = 0; i < len; i++) count[buf[i]] += 1.0;
    for (int c = 0; c < 256; c++)
        if (count[c] > 0) h -= count[c] / (double)len * log(count[c] / (double)len);
    ck_assert_msg(fabs(h - 3.067939) < 1e-5, "unigram entropy %.6f nats", h);
    free(buf);
    /* validation is about 5% of the tokens too */
    double frac = (double)ds.n_val / (double)(ds.n_train + ds.n_val);
    ck_assert_msg(frac > 0.03 && frac < 0.07, "val fraction %g", frac);
    ck_assert_uint_eq(ds.n_train_windows, (ds.n_train - 1) / 256);
    ck_assert_uint_eq(ds.n_val_windows, (ds.n_val - 1) / 256);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_corpus_errors) {
    TmpDir td;
    tmpdir_make(&td);
    char p[128], err[512] = "";
    Dataset ds;
    tmp_path(&td, "c.txt", p, sizeof p);

    write_text(p, "");
    ck_assert_int_eq(dataset_load_text(&ds, p, 8, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, p));
    ck_assert_ptr_nonnull(strstr(err, "empty corpus"));
    write_text(p, "\n\n\n");
    ck_assert_int_eq(dataset_load_text(&ds, p, 8, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "empty corpus"));
    ck_assert_int_eq(dataset_load_text(&ds, "/nonexistent/c.txt", 8, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/c.txt"));

    /* 20 documents: the last one is validation ((20*5+99)/100 = 1) */
    char text[4096] = "";
    for (int d = 0; d < 20; d++) strcat(text, d == 19 ? "val doc\n" : "a training document\n");
    write_text(p, text);
    ck_assert_msg(dataset_load_text(&ds, p, 7, 256, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(ds.n_docs, 20);
    ck_assert_uint_eq(ds.n_val_docs, 1);
    ck_assert_uint_eq(ds.n_val, 8); /* "val doc\n" */
    ck_assert_uint_eq(ds.n_val_windows, 1); /* 8 tokens = exactly one 7+1 window */
    ck_assert_uint_eq(ds.n_train, 19 * 20);
    ck_assert_uint_eq(ds.n_train_windows, (19 * 20 - 1) / 7);
    dataset_free(&ds);
    /* sequences longer than the data: a clear error naming the file and split; a window
     * needs seq_len + 1 tokens, so seq_len 8 already fails on the 8-token validation split */
    ck_assert_int_eq(dataset_load_text(&ds, p, 8, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, p));
    ck_assert_int_eq(dataset_load_text(&ds, p, 9, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "validation split has 8 tokens"));
    ck_assert_ptr_null(ds.train);
    ck_assert_ptr_nonnull(strstr(err, "seq_len"));
    ck_assert_int_eq(dataset_load_text(&ds, p, 100000, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "train split"));
    ck_assert_int_eq(dataset_load_text(&ds, DATA_DEFAULT_CORPUS, 1 << 20, 256, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, DATA_DEFAULT_CORPUS));
    ck_assert_ptr_nonnull(strstr(err, "validation split"));

    /* a byte outside a smaller vocabulary */
    write_text(p, "abc\ndef\xc3\xa9\n");
    ck_assert_int_eq(dataset_load_text(&ds, p, 2, 128, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "vocabulary"));
    ck_assert_int_eq(dataset_load_text(&ds, p, 2, 256, err, sizeof err), 0);
    dataset_free(&ds);
    ck_assert_int_eq(dataset_load_text(&ds, p, 0, 256, err, sizeof err), -1);
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_shard_dataset_errors) {
    TmpDir td;
    tmpdir_make(&td);
    char tp[128], vp[128], err[512] = "";
    tmp_path(&td, "t.bin", tp, sizeof tp);
    tmp_path(&td, "v.bin", vp, sizeof vp);
    uint16_t t[100];
    for (int i = 0; i < 100; i++) t[i] = (uint16_t)i;
    ck_assert_int_eq(shard_write(tp, t, 100, err, sizeof err), 0);
    t[7] = 300;
    ck_assert_int_eq(shard_write(vp, t, 20, err, sizeof err), 0);
    Dataset ds;
    ck_assert_int_eq(dataset_load_shards(&ds, tp, vp, 4, 256, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, vp));
    ck_assert_ptr_nonnull(strstr(err, "300"));
    ck_assert_ptr_nonnull(strstr(err, "vocab"));
    ck_assert_int_eq(dataset_load_shards(&ds, tp, vp, 4, 512, err, sizeof err), 0);
    dataset_free(&ds);
    ck_assert_int_eq(dataset_load_shards(&ds, tp, vp, 20, 512, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "fewer than seq_len + 1"));
    ck_assert_int_eq(dataset_load_shards(&ds, tp, "/nonexistent/v.bin", 4, 512, err, sizeof err),
                     -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/v.bin"));
    ck_assert_ptr_null(ds.train); /* nothing leaked into a half-built dataset */
    tmpdir_remove(&td);
}
END_TEST

/* ---------------------------------------------------------------- windows and order */

/* A training split too large for one shard comes as train_000000.bin, train_000001.bin, ...
 * (scripts/prepare-c4, llm.c's naming); data.train names train.bin and gets them all. */
START_TEST(test_numbered_shards_are_one_split) {
    TmpDir td;
    tmpdir_make(&td);
    char tp[128], vp[128], part[128], err[512] = "";
    tmp_path(&td, "train.bin", tp, sizeof tp);
    tmp_path(&td, "val.bin", vp, sizeof vp);
    const size_t sizes[3] = {40, 7, 25};
    uint16_t t[40];
    size_t next = 0;
    for (int k = 0; k < 3; k++) {
        for (size_t i = 0; i < sizes[k]; i++) t[i] = (uint16_t)(next++ % 251);
        char name[32];
        snprintf(name, sizeof name, "train_%06d.bin", k);
        tmp_path(&td, name, part, sizeof part);
        ck_assert_int_eq(shard_write(part, t, sizes[k], err, sizeof err), 0);
    }
    ck_assert_int_eq(shard_write(vp, t, 20, err, sizeof err), 0);
    Dataset ds;
    ck_assert_msg(dataset_load_shards(&ds, tp, vp, 4, 256, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(ds.n_train, 72); /* 40 + 7 + 25, in shard order */
    for (size_t i = 0; i < ds.n_train; i++) ck_assert_uint_eq(ds.train[i], i % 251);
    dataset_free(&ds);
    /* a damaged shard in the middle is an error naming that shard */
    tmp_path(&td, "train_000001.bin", part, sizeof part);
    FILE *f = fopen(part, "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(ftruncate(fileno(f), 100), 0);
    fclose(f);
    ck_assert_int_eq(dataset_load_shards(&ds, tp, vp, 4, 256, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "train_000001.bin") && strstr(err, "truncated"), "%s", err);
    ck_assert_ptr_null(ds.train);
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_targets_shifted) {
    Dataset ds;
    char err[512] = "";
    ck_assert_msg(dataset_load_text(&ds, DATA_DEFAULT_CORPUS, 64, 256, err, sizeof err) == 0,
                  "%s", err);
    const int B = 8, T = 64;
    int32_t tok[8 * 64], tgt[8 * 64];
    for (uint64_t bi = 0; bi < 5; bi++) {
        ck_assert_int_eq(dataset_train_batch(&ds, 42, bi, B, tok, tgt), 0);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t + 1 < T; t++) ck_assert_int_eq(tgt[b * T + t], tok[b * T + t + 1]);
            /* the row is a window of the training split starting at a multiple of T */
            int found = 0;
            for (size_t w = 0; w < ds.n_train_windows && !found; w++) {
                const uint16_t *p = ds.train + w * T;
                int same = 1;
                for (int t = 0; t < T && same; t++)
                    same = p[t] == tok[b * T + t] && p[t + 1] == tgt[b * T + t];
                found = same;
            }
            ck_assert_msg(found, "batch %d row %d is not a training window", (int)bi, b);
        }
    }
    /* validation: windows in order, contiguous targets */
    size_t nvb = dataset_val_batches(&ds, B);
    ck_assert_uint_eq(nvb, ds.n_val_windows / B);
    ck_assert_uint_gt(nvb, 10);
    for (size_t i = 0; i < nvb; i += nvb - 1) {
        ck_assert_int_eq(dataset_val_batch(&ds, i, B, tok, tgt), 0);
        for (int b = 0; b < B; b++) {
            const uint16_t *p = ds.val + (i * B + b) * T;
            for (int t = 0; t < T; t++) {
                ck_assert_int_eq(tok[b * T + t], p[t]);
                ck_assert_int_eq(tgt[b * T + t], p[t + 1]);
            }
            if (b > 0) ck_assert_int_eq(tok[b * T], tgt[(b - 1) * T + T - 1]);
        }
    }
    ck_assert_int_eq(dataset_val_batch(&ds, nvb, B, tok, tgt), -1);
    dataset_free(&ds);
}
END_TEST

START_TEST(test_order_pure_and_seeded) {
    TmpDir td;
    tmpdir_make(&td);
    Dataset a, b;
    make_counting_dataset(&td, 10 * 97 + 1, 50, 10, &a); /* 97 windows */
    make_counting_dataset(&td, 10 * 97 + 1, 50, 10, &b);
    ck_assert_uint_eq(a.n_train_windows, 97);
    const int B = 6, T = 10, NB = 40; /* 240 samples: crosses two epoch boundaries */
    static int32_t ta[40][60], ga[40][60];
    int32_t tb[60], gb[60];
    for (int i = 0; i < NB; i++) ck_assert_int_eq(dataset_train_batch(&a, 1, i, B, ta[i], ga[i]), 0);
    /* any call order, interleaved seeds, a fresh dataset: same batches */
    for (int i = NB - 1; i >= 0; i -= 3) {
        ck_assert_int_eq(dataset_train_batch(&b, 2, i, B, tb, gb), 0);
        ck_assert_int_eq(dataset_train_batch(&b, 1, i, B, tb, gb), 0);
        ck_assert_int_eq(memcmp(tb, ta[i], sizeof tb), 0);
        ck_assert_int_eq(memcmp(gb, ga[i], sizeof gb), 0);
    }
    /* another seed gives another order */
    int differ = 0;
    for (int i = 0; i < NB; i++) {
        ck_assert_int_eq(dataset_train_batch(&b, 2, i, B, tb, gb), 0);
        differ += memcmp(tb, ta[i], sizeof tb) != 0;
    }
    ck_assert_int_ge(differ, NB - 2);
    /* and the order is shuffled, not the identity */
    int in_order = 1;
    for (int r = 0; r < B && in_order; r++) in_order = ta[0][r * T] == r * T;
    ck_assert(!in_order);
    /* consecutive epochs use different permutations */
    size_t p0[97], p1[97], p0b[97];
    dataset_permutation(97, 1, 0, p0);
    dataset_permutation(97, 1, 1, p1);
    dataset_permutation(97, 1, 0, p0b);
    ck_assert_int_eq(memcmp(p0, p0b, sizeof p0), 0);
    ck_assert_int_ne(memcmp(p0, p1, sizeof p0), 0);
    dataset_free(&a);
    dataset_free(&b);
    tmpdir_remove(&td);
}
END_TEST

START_TEST(test_epoch_visits_every_window_once) {
    TmpDir td;
    tmpdir_make(&td);
    Dataset ds;
    const int T = 10;
    const size_t W = 97;
    make_counting_dataset(&td, 10 * W + 5, 50, T, &ds); /* trailing tokens: still 97 windows */
    ck_assert_uint_eq(ds.n_train_windows, W);
    const int B = 6;
    int32_t tok[60], tgt[60];
    /* samples k = 0 .. 3W-1 over batches of 6 (97 is prime, so batches straddle epochs) */
    int seen[3][97] = {{0}};
    size_t order[3][97];
    size_t total = 3 * W;
    for (uint64_t bi = 0; bi * B < total; bi++) {
        ck_assert_int_eq(dataset_train_batch(&ds, 12345, bi, B, tok, tgt), 0);
        for (int b = 0; b < B; b++) {
            uint64_t k = bi * B + b;
            if (k >= total) break;
            int32_t start = tok[b * T];
            ck_assert_int_eq(start % T, 0);
            ck_assert_int_lt(start / T, (int)W);
            seen[k / W][start / T]++;
            order[k / W][k % W] = (size_t)(start / T);
        }
    }
    /* epoch e is exactly the permutation for (seed, e), and epochs differ */
    for (int e = 0; e < 3; e++) {
        size_t p[97];
        dataset_permutation(W, 12345, (uint64_t)e, p);
        ck_assert_int_eq(memcmp(p, order[e], sizeof p), 0);
    }
    ck_assert_int_ne(memcmp(order[0], order[1], sizeof order[0]), 0);
    ck_assert_int_ne(memcmp(order[1], order[2], sizeof order[1]), 0);
    for (int e = 0; e < 3; e++)
        for (size_t w = 0; w < W; w++)
            ck_assert_msg(seen[e][w] == 1, "epoch %d window %zu seen %d times", e, w, seen[e][w]);
    /* the permutation itself, for many sizes */
    for (size_t n = 1; n < 300; n += 37) {
        size_t *p = malloc(n * sizeof *p);
        char *hit = calloc(n, 1);
        dataset_permutation(n, 99, 3, p);
        for (size_t i = 0; i < n; i++) {
            ck_assert_uint_lt(p[i], n);
            ck_assert_int_eq(hit[p[i]], 0);
            hit[p[i]] = 1;
        }
        free(p);
        free(hit);
    }
    ck_assert_int_eq(dataset_train_batch(&ds, 1, 0, 0, tok, tgt), -1);
    dataset_free(&ds);
    tmpdir_remove(&td);
}
END_TEST

Suite *data_suite(void) {
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tokenizer_round_trip);
    tcase_add_test(tc, test_shard_round_trip);
    tcase_add_test(tc, test_shard_missing_file);
    tcase_add_test(tc, test_shard_truncated_header);
    tcase_add_test(tc, test_shard_wrong_magic);
    tcase_add_test(tc, test_shard_wrong_version);
    tcase_add_test(tc, test_shard_truncated_tokens);
    tcase_add_test(tc, test_tokenize_text_and_gzip);
    tcase_add_test(tc, test_corpus_split);
    tcase_add_test(tc, test_corpus_errors);
    tcase_add_test(tc, test_shard_dataset_errors);
    tcase_add_test(tc, test_numbered_shards_are_one_split);
    tcase_add_test(tc, test_targets_shifted);
    tcase_add_test(tc, test_order_pure_and_seeded);
    tcase_add_test(tc, test_epoch_visits_every_window_once);
    suite_add_tcase(s, tc);
    return s;
}
