/* test_paper.c — issue 14's pieces of paper fidelity, on configs/tiny:
 *
 *  - `normbench prune` (src/prune.c): the sweep of a finished run, afterwards, writes the
 *    same /prune datasets as in-training pruning (metrics.prune) bit for bit; cut off after
 *    one batch it leaves /prune_partial and no /prune, and the rerun ends with the same bits;
 *    --what computes one kind (the others NaN, or kept from an earlier sweep of the same
 *    model); an unfinished run, a wrong --what and a wrong path are one-line usage errors.
 *  - data budgets: a run that needs more than one epoch of its training split is refused by
 *    run_load_dataset before training, in one line naming data.repeat and the epochs; with
 *    data.repeat: allow it trains and its run file records data_epochs.
 *  - probes sized in tokens: metrics.probe_tokens -> ceil(tokens / (B T)) batches, recorded
 *    in /layers (probe_tokens, probe_batches).
 * Every expected value is computed here (file bits compared with the plain HDF5 API), never
 * read back through the code under test. */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "data.h"
#include "metrics.h"
#include "prune.h"
#include "run.h"
#include "testutil.h"

static void load_tiny(NbConfig *cfg, const char *const *sets, int n) {
    char err[1024];
    ck_assert_msg(config_load(cfg, "configs/tiny/tiny.yaml", sets, n, err, sizeof err) == 0, "%s",
                  err);
}

/* Trains the tiny config (overrides `sets`) into run file `path` with its checkpoint beside
 * it (RUN.ckpt.h5); stop_after > 0 stops it early. Returns the run's status. */
static RunStatus train_tiny(const char *path, const char *const *sets, int n, int stop_after) {
    NbConfig cfg;
    load_tiny(&cfg, sets, n);
    char err[1024], ckpt[1200];
    snprintf(ckpt, sizeof ckpt, "%.*s.ckpt.h5", (int)strlen(path) - 3, path);
    Backend *be = backend_create("cpu", 1, err, sizeof err);
    ck_assert_ptr_nonnull(be);
    RunOptions opt = {.run_file = path, .checkpoint = ckpt, .stop_after = stop_after};
    RunResult res;
    ck_assert_msg(run_train(&cfg, NULL, be, &opt, &res, err, sizeof err) == 0, "%s", err);
    backend_destroy(be);
    config_free(&cfg);
    return res.status;
}

/* A 1-D float64 dataset of a file, read with the plain HDF5 API (NULL when absent). */
static double *read_f64(const char *path, const char *name, size_t *n) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    double *x = NULL;
    *n = 0;
    if (H5Lexists(f, name, H5P_DEFAULT) > 0) {
        hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
        hid_t s = H5Dget_space(d);
        hsize_t dims[1];
        ck_assert_int_eq(H5Sget_simple_extent_ndims(s), 1);
        H5Sget_simple_extent_dims(s, dims, NULL);
        *n = dims[0];
        x = malloc(sizeof *x * (*n ? *n : 1));
        ck_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        H5Sclose(s);
        H5Dclose(d);
    }
    H5Fclose(f);
    return x;
}

static int has_object(const char *path, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    int yes = H5Lexists(f, name, H5P_DEFAULT) > 0;
    H5Fclose(f);
    return yes;
}

static double read_attr(const char *path, const char *obj, const char *name) {
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    hid_t o = H5Oopen(f, obj, H5P_DEFAULT);
    ck_assert_msg(o >= 0, "%s missing", obj);
    hid_t a = H5Aopen(o, name, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "%s/%s missing", obj, name);
    double v = NAN;
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    H5Oclose(o);
    H5Fclose(f);
    return v;
}

/* The datasets of /prune of two files are bitwise equal (NaN in `nan_in` for kinds of b that
 * must be NaN instead: bit k for block, attn, mlp). */
static void assert_same_prune(const char *a, const char *b, unsigned nan_in_b) {
    static const char *const names[3] = {"prune/block", "prune/attn", "prune/mlp"};
    for (int k = 0; k < 3; k++) {
        size_t na, nb;
        double *x = read_f64(a, names[k], &na), *y = read_f64(b, names[k], &nb);
        ck_assert_msg(x && y, "%s missing", names[k]);
        ck_assert_uint_eq(na, 4); /* tiny: 4 blocks */
        ck_assert_uint_eq(nb, 4);
        for (size_t i = 0; i < na; i++) {
            if (nan_in_b & (1u << k)) ck_assert_msg(isnan(y[i]), "%s[%zu] not NaN", names[k], i);
            else ck_assert_msg(memcmp(&x[i], &y[i], sizeof x[i]) == 0, "%s[%zu]: %.17g vs %.17g",
                               names[k], i, x[i], y[i]);
        }
        free(x);
        free(y);
    }
    double ba = read_attr(a, "prune", "base_loss"), bb = read_attr(b, "prune", "base_loss");
    ck_assert(memcmp(&ba, &bb, sizeof ba) == 0);
    ck_assert(read_attr(a, "prune", "step") == read_attr(b, "prune", "step"));
    ck_assert(read_attr(a, "prune", "batches") == read_attr(b, "prune", "batches"));
}

static const char *const PRUNE_ON[] = {"metrics.prune=true"};

START_TEST(prune_afterwards_equals_in_training_pruning_and_resumes_bitwise) {
    char *dir = test_temp_dir("nbprune");
    ck_assert_ptr_nonnull(dir);
    char ref[256], run[256], ckpt[256], err[1024];
    snprintf(ref, sizeof ref, "%s/ref.h5", dir);
    snprintf(run, sizeof run, "%s/pre_ln-s1.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/pre_ln-s1.ckpt.h5", dir);
    ck_assert_int_eq(train_tiny(ref, PRUNE_ON, 1, 0), RUN_FINISHED);
    ck_assert_int_eq(train_tiny(run, NULL, 0, 0), RUN_FINISHED);
    ck_assert(has_object(ref, "prune"));
    ck_assert(!has_object(run, "prune"));
    ck_assert_int_eq((int)read_attr(ref, "prune", "batches"), 2); /* tiny: eval.batches 2 */

    /* cut off after one of the two batches: partial sums, no result */
    PruneOptions opt = {.stop_after_batches = 1};
    ck_assert_int_eq(prune_run(run, &opt, err, sizeof err), PRUNE_STOPPED);
    ck_assert_msg(strstr(err, "stopped after batch 1 of 2") != NULL, "%s", err);
    ck_assert(has_object(run, "prune_partial"));
    ck_assert(!has_object(run, "prune"));
    ck_assert_int_eq((int)read_attr(run, "prune_partial", "done"), 1);
    /* resumed (through the checkpoint's name this time): the same bits as in training */
    opt.stop_after_batches = 0;
    ck_assert_msg(prune_run(ckpt, &opt, err, sizeof err) == PRUNE_OK, "%s", err);
    ck_assert(!has_object(run, "prune_partial"));
    assert_same_prune(ref, run, 0);

    /* --what attn on a fresh copy of the run: attn as before, block and mlp NaN ... */
    char other[256];
    snprintf(other, sizeof other, "%s/copy-s1.h5", dir);
    ck_assert_int_eq(train_tiny(other, NULL, 0, 0), RUN_FINISHED); /* same config: same model */
    opt.what = "attn";
    ck_assert_msg(prune_run(other, &opt, err, sizeof err) == PRUNE_OK, "%s", err);
    assert_same_prune(ref, other, 1u | 4u);
    /* ... and --what mlp next keeps attn (same model and batches) and fills mlp */
    opt.what = "mlp";
    ck_assert_msg(prune_run(other, &opt, err, sizeof err) == PRUNE_OK, "%s", err);
    assert_same_prune(ref, other, 1u);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(prune_refuses_what_it_cannot_do_in_one_line) {
    char *dir = test_temp_dir("nbprune");
    ck_assert_ptr_nonnull(dir);
    char run[256], err[1024];
    PruneOptions opt = {0};
    snprintf(run, sizeof run, "%s/pre_ln-s1.h5", dir);
    /* no files */
    ck_assert_int_eq(prune_run(run, &opt, err, sizeof err), PRUNE_USAGE);
    ck_assert_msg(strstr(err, "needs the run file and its checkpoint") != NULL, "%s", err);
    ck_assert_int_eq(prune_run("runs/x.txt", &opt, err, sizeof err), PRUNE_USAGE);
    ck_assert_msg(strstr(err, "expected a run file (RUN.h5) or its checkpoint") != NULL, "%s", err);
    /* a run stopped at step 10 of 20 */
    ck_assert_int_eq(train_tiny(run, NULL, 0, 10), RUN_STOPPED);
    ck_assert_int_eq(prune_run(run, &opt, err, sizeof err), PRUNE_USAGE);
    ck_assert_msg(strstr(err, "checkpoint at step 10 of 20: prune needs a finished run") != NULL,
                  "%s", err);
    ck_assert_ptr_null(strchr(err, '\n'));
    opt.what = "blocks";
    ck_assert_int_eq(prune_run(run, &opt, err, sizeof err), PRUNE_USAGE);
    ck_assert_str_eq(err, "--what: expected block, attn or mlp, got 'blocks'");
    /* the command line: exit 2 and one line */
    const char *bin = getenv("NB_BIN") ? getenv("NB_BIN") : "build/normbench";
    char cmd[1024], line[1024];
    snprintf(cmd, sizeof cmd, "%s prune '%s' --what blocks 2>&1; echo rc=$?", bin, run);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_str_eq(line, "normbench prune: --what: expected block, attn or mlp, got 'blocks'\n");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, p));
    ck_assert_str_eq(line, "rc=2\n");
    pclose(p);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- data budgets ------------------------------------------------------------------------ */

/* A training shard of n tokens and a validation shard, for seq_len 8: W = (n - 1) / 8 windows. */
static void write_shards(const char *dir, size_t n) {
    uint16_t *tok = malloc(sizeof *tok * n);
    for (size_t i = 0; i < n; i++) tok[i] = (uint16_t)((i * 31u + 7u) % 256u);
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/train.bin", dir);
    ck_assert_int_eq(shard_write(path, tok, n, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/val.bin", dir);
    ck_assert_int_eq(shard_write(path, tok, n < 200 ? n : 200, err, sizeof err), 0);
    free(tok);
}

START_TEST(a_run_past_its_training_split_is_refused_unless_repeat_is_allowed) {
    char *dir = test_temp_dir("nbdata");
    ck_assert_ptr_nonnull(dir);
    write_shards(dir, 1001); /* 125 windows of 8 */
    char s_train[600], s_val[600], err[1024];
    snprintf(s_train, sizeof s_train, "data.train=%s/train.bin", dir);
    snprintf(s_val, sizeof s_val, "data.val=%s/val.bin", dir);
    /* tiny: batch 4; 31 steps = 124 samples fit, 32 steps = 128 > 125 do not */
    const char *fits[] = {"data.source=shards", s_train, s_val, "train.steps=31"};
    const char *over[] = {"data.source=shards", s_train, s_val, "train.steps=32"};
    NbConfig cfg;
    Dataset ds = {0};
    load_tiny(&cfg, fits, 4);
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(ds.n_train_windows, 125);
    ck_assert_double_eq_tol(run_data_epochs(&cfg, &ds), 124.0 / 125.0, 1e-12);
    dataset_free(&ds);
    config_free(&cfg);
    load_tiny(&cfg, over, 4);
    ck_assert_int_eq(run_load_dataset(&cfg, &ds, err, sizeof err), -1);
    ck_assert_str_eq(err, "configs/tiny/tiny.yaml: data.repeat: 32 steps x 4 sequences of 8 "
                          "tokens need 1.024 epochs of the training split (1001 tokens, 125 "
                          "windows); set data.repeat: allow to repeat data, or train fewer steps");
    ck_assert_ptr_null(ds.train); /* nothing left allocated */
    config_free(&cfg);

    /* the command line refuses it before training: exit 2, one line, no run file */
    const char *bin = getenv("NB_BIN") ? getenv("NB_BIN") : "build/normbench";
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s train configs/tiny/tiny.yaml --quiet --set data.source=shards "
             "--set '%s' --set '%s' --set train.steps=32 --set output.dir=%s/out "
             ">%s/log 2>&1; echo $? >%s/rc", bin, s_train, s_val, dir, dir, dir);
    ck_assert_int_eq(system(cmd), 0);
    char path[600], line[1024];
    snprintf(path, sizeof path, "%s/rc", dir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "2\n");
    snprintf(path, sizeof path, "%s/log", dir);
    f = fopen(path, "r");
    int lines = 0;
    while (fgets(line, sizeof line, f)) lines++;
    fclose(f);
    ck_assert_int_eq(lines, 1);
    snprintf(path, sizeof path, "%s/out/tiny/pre_ln-s1.h5", dir);
    ck_assert_int_ne(access(path, F_OK), 0);

    /* data.repeat: allow trains on, and the run file records the epochs */
    const char *allow[] = {"data.source=shards", s_train, s_val, "train.steps=40",
                           "data.repeat=allow"};
    snprintf(path, sizeof path, "%s/allow-s1.h5", dir);
    ck_assert_int_eq(train_tiny(path, allow, 5, 0), RUN_FINISHED);
    ck_assert_double_eq_tol(read_attr(path, "/", "data_epochs"), 160.0 / 125.0, 1e-12);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- probes by tokens ----------------------------------------------------------------------- */

START_TEST(probes_read_a_token_count_whatever_the_batch) {
    /* ceil(tokens / (B T)), at least one batch */
    ck_assert_int_eq(metrics_probe_batches(65536, 128, 256), 2);   /* 130M: 2 x 32,768 */
    ck_assert_int_eq(metrics_probe_batches(65536, 16, 256), 16);   /* 1B: 16 x 4,096 */
    ck_assert_int_eq(metrics_probe_batches(2048, 16, 64), 2);      /* the demo: as before */
    ck_assert_int_eq(metrics_probe_batches(2049, 16, 64), 3);
    ck_assert_int_eq(metrics_probe_batches(1, 16, 64), 1);
    /* the run file says what a probe read */
    char *dir = test_temp_dir("nbprobe");
    ck_assert_ptr_nonnull(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/p-s1.h5", dir);
    const char *sets[] = {"metrics.probe_tokens=80"}; /* tiny: 4 x 8 = 32 per batch -> 3 */
    ck_assert_int_eq(train_tiny(path, sets, 1, 0), RUN_FINISHED);
    ck_assert(read_attr(path, "layers", "probe_tokens") == 80);
    ck_assert(read_attr(path, "layers", "probe_batches") == 3);
    test_remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- train.precision: bf16_pure is refused where no CUDA backend trains ------------------- */

START_TEST(bf16_pure_is_refused_on_the_cpu_in_one_line_naming_the_key) {
    char err[1024];
    NbConfig cfg;
    /* backend.name cpu: refused by the config itself (test_config.c); auto: when opened */
    const char *sets[] = {"train.precision=bf16_pure", "backend.name=auto"};
    load_tiny(&cfg, sets, 2);
    Backend *be = run_open_backend(&cfg, err, sizeof err);
    if (be) { /* a GPU: auto chose CUDA, which trains bf16_pure */
        ck_assert(be->separate_master);
        backend_destroy(be);
    } else {
        ck_assert_str_eq(err, "configs/tiny/tiny.yaml: train.precision: bf16_pure needs the CUDA "
                              "backend, auto has none (the CPU backend trains in fp32 and does "
                              "not emulate it)");
    }
    config_free(&cfg);
}
END_TEST

Suite *paper_suite(void) {
    Suite *s = suite_create("paper");
    TCase *tc = tcase_create("prune");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, prune_afterwards_equals_in_training_pruning_and_resumes_bitwise);
    tcase_add_test(tc, prune_refuses_what_it_cannot_do_in_one_line);
    suite_add_tcase(s, tc);
    TCase *data = tcase_create("budgets");
    tcase_set_timeout(data, 120);
    tcase_add_test(data, a_run_past_its_training_split_is_refused_unless_repeat_is_allowed);
    tcase_add_test(data, probes_read_a_token_count_whatever_the_batch);
    tcase_add_test(data, bf16_pure_is_refused_on_the_cpu_in_one_line_naming_the_key);
    suite_add_tcase(s, data);
    return s;
}
