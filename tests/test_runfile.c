/* test_runfile.c — the run file of docs/design.md section 5 as a user meets it.
 *
 * Round trip: every dataset and attribute written through runfile.h is read back with the
 * plain HDF5 C API (no normbench reader) and compared, and through runfile_read. Then whole
 * runs through run_train writing their run file: a complete file from a finished run, its TSV
 * export; a process
 * killed with SIGKILL mid-run leaves a file that h5dump opens with every probe written before
 * the kill; unwritable paths and a disk filling up mid-run stop the run with a message naming
 * the file and leave the checkpoint untouched; a resumed run cuts every series back to its
 * checkpoint and ends with the same file as a run that never stopped. Runs on
 * configs/tiny/tiny.yaml from the repository root. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "export.h"
#include "h5util.h"
#include "metrics.h"
#include "run.h"
#include "runfile.h"
#include "schemes.h"
#include "sha256.h"
#include "testutil.h"
#include "train.h"

/* ---- helpers ------------------------------------------------------------------------------ */

static char *temp_dir(void) {
    char *dir = test_temp_dir("nbrunfile");
    ck_assert_ptr_nonnull(dir);
    return dir;
}

static void remove_tree(const char *dir) { ck_assert_int_eq(test_remove_tree(dir), 0); }

static void load_tiny(NbConfig *cfg, const char *const *sets, int n) {
    char err[1024];
    ck_assert_msg(config_load(cfg, "configs/tiny/tiny.yaml", sets, n, err, sizeof err) == 0, "%s", err);
}

/* Reads a whole numeric dataset as double with the plain HDF5 API; *n = element count. */
static double *read_all(hid_t f, const char *name, int *rank, hsize_t dims[3]) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "dataset %s missing", name);
    hid_t space = H5Dget_space(d);
    *rank = H5Sget_simple_extent_ndims(space);
    dims[0] = dims[1] = dims[2] = 1;
    H5Sget_simple_extent_dims(space, dims, NULL);
    size_t n = 1;
    for (int i = 0; i < *rank; i++) n *= dims[i];
    double *x = malloc((n ? n : 1) * sizeof *x);
    if (n) ck_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Sclose(space);
    H5Dclose(d);
    return x;
}

static double *read_1d(hid_t f, const char *name, size_t *n) {
    int rank;
    hsize_t dims[3];
    double *x = read_all(f, name, &rank, dims);
    ck_assert_int_eq(rank, 1);
    *n = dims[0];
    return x;
}

static char *attr_str(hid_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "attribute %s missing", name);
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    char *raw = NULL;
    ck_assert(H5Aread(a, t, &raw) >= 0);
    char *s = strdup(raw);
    H5free_memory(raw);
    H5Tclose(t);
    H5Aclose(a);
    return s;
}

static double attr_num(hid_t obj, const char *name) {
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "attribute %s missing", name);
    double v;
    ck_assert(H5Aread(a, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(a);
    return v;
}

static void assert_attr_str(hid_t obj, const char *name, const char *want) {
    char *got = attr_str(obj, name);
    ck_assert_msg(strcmp(got, want) == 0, "attribute %s: '%s', want '%s'", name, got, want);
    free(got);
}

static int is_chunked_unlimited(hid_t f, const char *name) {
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t dcpl = H5Dget_create_plist(d), space = H5Dget_space(d);
    hsize_t dims[3], maxdims[3];
    H5Sget_simple_extent_dims(space, dims, maxdims);
    int ok = H5Pget_layout(dcpl) == H5D_CHUNKED && maxdims[0] == H5S_UNLIMITED;
    H5Sclose(space), H5Pclose(dcpl), H5Dclose(d);
    return ok;
}

static int h5dump_ok(const char *path, const char *flags) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "h5dump %s '%s' >/dev/null 2>&1", flags, path);
    return system(cmd) == 0;
}

static void copy_file(const char *from, const char *to) {
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    ck_assert(in && out);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) ck_assert_uint_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    ck_assert_int_eq(fclose(out), 0);
}

static int files_equal(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert(fa && fb);
    int ca, cb, same = 1;
    do {
        ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
    } while (same && ca != EOF);
    fclose(fa), fclose(fb);
    return same;
}

/* ---- round trip --------------------------------------------------------------------------- */

/* what the test writes: rows with values that identify their position */
static double probe_value(int probe, int l, int m) { return 0.001 * (100 * probe + 10 * l + m + 1); }

START_TEST(a_run_file_round_trips_every_dataset_and_attribute) {
    char *dir = temp_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/round.h5", dir);
    NbConfig run;
    load_tiny(&run, (const char *const[]){"scheme=mix_ln", "seed=7"}, 2);
    const int L = run.model.n_layer, P = L + 1;
    char err[1024];
    RunFileInfo info = {.backend = "cpu", .device = "test device", .kernels = "OpenBLAS Test",
                        .n_params = 12345};
    SublayerSpec *specs =
        run_build_specs(&run.model, run.schemes[0], &run.scheme_params, err, sizeof err);
    ck_assert_msg(specs != NULL, "%s", err);
    RunFile *log = runfile_create(path, &run, specs, &info, err, sizeof err);
    ck_assert_msg(log != NULL, "%s", err);

    enum { ROWS = 300 }; /* more than the in-memory buffer holds */
    for (int s = 1; s <= ROWS; s++) {
        ck_assert_int_eq(runfile_append_train(log, s, 5.0 - s * 0.01, 1e-3 * s, 0.5 + s,
                                              1000.0 + s, err, sizeof err), 0);
        if (s % 100 == 0) ck_assert_int_eq(runfile_append_eval(log, s, 3.0 - s * 0.001, err, sizeof err), 0);
    }
    LayerProbe p;
    ck_assert_int_eq(layer_probe_alloc(&p, L), 0);
    for (int k = 0; k < 2; k++) {
        p.step = 150 * (k + 1);
        for (int l = 0; l < P; l++) {
            p.variance[l] = probe_value(k, l, 0);
            for (int m = 0; m < P; m++) {
                p.angular[l * P + m] = m < l ? NAN : m == l ? 0.0 : probe_value(k, l, m);
                p.angular_last[l * P + m] = m < l ? NAN : m == l ? 0.0 : -probe_value(k, l, m);
            }
            if (l < L) p.grad_norm[l] = 10 + probe_value(k, l, 0);
        }
        ck_assert_int_eq(runfile_append_probe(log, &p, err, sizeof err), 0);
    }
    PruneResult pr;
    ck_assert_int_eq(prune_result_alloc(&pr, L), 0);
    pr.base_loss = 2.5, pr.batches = 2;
    for (int l = 0; l < L; l++) pr.block[l] = 3 + l, pr.attn[l] = 4 + l, pr.mlp[l] = 5 + l;
    ck_assert_int_eq(runfile_write_prune(log, &pr, ROWS, err, sizeof err), 0);
    ck_assert_int_eq(runfile_set_status(log, RUN_FINISHED, err, sizeof err), 0);
    ck_assert_int_eq(runfile_close(log, err, sizeof err), 0);

    /* --- read back with plain HDF5 --- */
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    char *yaml = NULL, sha[65], host[256] = "";
    ck_assert_int_eq(config_write_yaml(&run, &yaml), 0);
    sha256_hex(yaml, strlen(yaml), sha);
    gethostname(host, sizeof host);
    ck_assert_double_eq(attr_num(f, "format_version"), RUNFILE_FORMAT_VERSION);
    assert_attr_str(f, "normbench_version", NORMBENCH_VERSION);
    assert_attr_str(f, "config_yaml", yaml);
    assert_attr_str(f, "config_sha256", sha);
    assert_attr_str(f, "scheme", "mix_ln");
    ck_assert_double_eq(attr_num(f, "seed"), 7);
    assert_attr_str(f, "backend", "cpu");
    assert_attr_str(f, "device", "test device");
    assert_attr_str(f, "kernels", "OpenBLAS Test");
    assert_attr_str(f, "host", host);
    assert_attr_str(f, "status", "finished");
    ck_assert_double_eq(attr_num(f, "steps"), run.train.steps);
    char *commit = attr_str(f, "git_commit");
    /* 40 hex digits, "+dirty" when tracked files differ from the commit */
    ck_assert_msg(strcmp(commit, "unknown") == 0 ||
                  (strspn(commit, "0123456789abcdef") == 40 &&
                   (commit[40] == '\0' || strcmp(commit + 40, "+dirty") == 0)), "%s", commit);
    const char *times[2] = {"started_at", "finished_at"};
    for (int i = 0; i < 2; i++) { /* ISO 8601 UTC: 2026-11-01T12:34:56Z */
        char *t = attr_str(f, times[i]);
        int y, mo, d, h, mi, s;
        char z = 0;
        ck_assert_msg(strlen(t) == 20 && sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) == 7 && z == 'Z',
                      "%s = '%s'", times[i], t);
        free(t);
    }
    free(commit);

    hid_t g = H5Gopen2(f, "model", H5P_DEFAULT);
    const char *mk[] = {"n_layer", "d_model", "n_head", "d_ff", "vocab_size", "seq_len"};
    const int mv[] = {run.model.n_layer, run.model.d_model, run.model.n_head, run.model.d_ff,
                      run.model.vocab_size, run.model.seq_len};
    for (int i = 0; i < 6; i++) ck_assert_double_eq(attr_num(g, mk[i]), mv[i]);
    ck_assert_double_eq(attr_num(g, "n_params"), 12345);
    assert_attr_str(g, "norm", "rmsnorm");
    H5Gclose(g);

    /* /scheme: the compound table, read through a type built here from the field names */
    typedef struct {
        int layer, sublayer, placement;
        float in_scale, residual_scale;
        int init;
        float init_std, gain[4];
    } Row;
    hid_t e_sub = H5Tenum_create(H5T_NATIVE_INT), e_place = H5Tenum_create(H5T_NATIVE_INT),
          e_init = H5Tenum_create(H5T_NATIVE_INT);
    int v0 = 0, v1 = 1;
    H5Tenum_insert(e_sub, "attn", &v0), H5Tenum_insert(e_sub, "mlp", &v1);
    H5Tenum_insert(e_place, "pre", &v0), H5Tenum_insert(e_place, "post", &v1);
    H5Tenum_insert(e_init, "normal", &v0), H5Tenum_insert(e_init, "xavier_normal", &v1);
    hsize_t four = 4;
    hid_t garr = H5Tarray_create2(H5T_NATIVE_FLOAT, 1, &four);
    hid_t rt = H5Tcreate(H5T_COMPOUND, sizeof(Row));
    H5Tinsert(rt, "layer", HOFFSET(Row, layer), H5T_NATIVE_INT);
    H5Tinsert(rt, "sublayer", HOFFSET(Row, sublayer), e_sub);
    H5Tinsert(rt, "placement", HOFFSET(Row, placement), e_place);
    H5Tinsert(rt, "in_scale", HOFFSET(Row, in_scale), H5T_NATIVE_FLOAT);
    H5Tinsert(rt, "residual_scale", HOFFSET(Row, residual_scale), H5T_NATIVE_FLOAT);
    H5Tinsert(rt, "init", HOFFSET(Row, init), e_init);
    H5Tinsert(rt, "init_std", HOFFSET(Row, init_std), H5T_NATIVE_FLOAT);
    H5Tinsert(rt, "init_gain", HOFFSET(Row, gain), garr);
    hid_t ds = H5Dopen2(f, "scheme", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    hsize_t sd[2];
    ck_assert_int_eq(H5Sget_simple_extent_dims(sp, sd, NULL), 2);
    ck_assert(sd[0] == (hsize_t)L && sd[1] == 2);
    Row rows[16];
    ck_assert(H5Dread(ds, rt, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) >= 0);
    for (int i = 0; i < 2 * L; i++) {
        ck_assert_int_eq(rows[i].layer, i / 2 + 1);
        ck_assert_int_eq(rows[i].sublayer, i % 2);
        ck_assert_int_eq(rows[i].placement, (int)specs[i].placement);
        ck_assert(rows[i].in_scale == specs[i].in_scale);
        ck_assert(rows[i].residual_scale == specs[i].residual_scale);
        ck_assert_int_eq(rows[i].init, (int)specs[i].init);
        ck_assert(rows[i].init_std == specs[i].init_std);
        ck_assert_int_eq(memcmp(rows[i].gain, specs[i].init_gain, sizeof rows[i].gain), 0);
    }
    /* mix_ln at L = 4: block 1 post-LN (floor(0.25 * 4) = 1), blocks 2..4 pre-LN */
    ck_assert_int_eq(rows[0].placement, PLACE_POST);
    ck_assert_int_eq(rows[2].placement, PLACE_PRE);
    assert_attr_str(ds, "name", "mix_ln");
    ck_assert_double_eq(attr_num(ds, "mixln_boundary"), 1);
    ck_assert_double_eq_tol(attr_num(ds, "deepnorm_alpha"), pow(8.0, 0.25), 1e-15);
    ck_assert_double_eq_tol(attr_num(ds, "deepnorm_beta"), pow(32.0, -0.25), 1e-15);
    H5Sclose(sp), H5Dclose(ds), H5Tclose(rt), H5Tclose(garr);
    H5Tclose(e_sub), H5Tclose(e_place), H5Tclose(e_init);

    /* series */
    const char *series[] = {"train/step", "train/loss", "train/lr", "train/grad_norm",
                            "train/tokens_per_s", "eval/step", "eval/loss", "eval/ppl",
                            "layers/step", "layers/variance", "layers/angular",
                            "layers/angular_last", "layers/grad_norm"};
    for (size_t i = 0; i < sizeof series / sizeof series[0]; i++)
        ck_assert_msg(is_chunked_unlimited(f, series[i]), "%s not chunked/extendible", series[i]);
    size_t n;
    double *col[5];
    const char *tcols[5] = {"train/step", "train/loss", "train/lr", "train/grad_norm", "train/tokens_per_s"};
    for (int c = 0; c < 5; c++) {
        col[c] = read_1d(f, tcols[c], &n);
        ck_assert_uint_eq(n, ROWS);
    }
    for (int s = 1; s <= ROWS; s++) {
        ck_assert(col[0][s - 1] == s && col[1][s - 1] == 5.0 - s * 0.01 && col[2][s - 1] == 1e-3 * s &&
                  col[3][s - 1] == 0.5 + s && col[4][s - 1] == 1000.0 + s);
    }
    for (int c = 0; c < 5; c++) free(col[c]);
    double *es = read_1d(f, "eval/step", &n), *el = read_1d(f, "eval/loss", &n),
           *ep = read_1d(f, "eval/ppl", &n);
    ck_assert_uint_eq(n, 3);
    for (int k = 0; k < 3; k++) {
        double loss = 3.0 - 100 * (k + 1) * 0.001;
        ck_assert(es[k] == 100 * (k + 1) && el[k] == loss && ep[k] == exp(loss));
    }
    free(es), free(el), free(ep);
    int rank;
    hsize_t dims[3];
    double *ls = read_1d(f, "layers/step", &n);
    ck_assert(n == 2 && ls[0] == 150 && ls[1] == 300);
    free(ls);
    double *var = read_all(f, "layers/variance", &rank, dims);
    ck_assert(rank == 2 && dims[0] == 2 && dims[1] == (hsize_t)P);
    double *ang = read_all(f, "layers/angular", &rank, dims);
    ck_assert(rank == 3 && dims[0] == 2 && dims[1] == (hsize_t)P && dims[2] == (hsize_t)P);
    double *angl = read_all(f, "layers/angular_last", &rank, dims);
    double *gn = read_all(f, "layers/grad_norm", &rank, dims);
    ck_assert(rank == 2 && dims[0] == 2 && dims[1] == (hsize_t)L);
    for (int k = 0; k < 2; k++)
        for (int l = 0; l < P; l++) {
            ck_assert(var[k * P + l] == probe_value(k, l, 0));
            if (l < L) ck_assert(gn[k * L + l] == 10 + probe_value(k, l, 0));
            for (int m = 0; m < P; m++) {
                double a = ang[(k * P + l) * P + m], b = angl[(k * P + l) * P + m];
                if (m < l) ck_assert(isnan(a) && isnan(b));
                else if (m == l) ck_assert(a == 0 && b == 0);
                else ck_assert(a == probe_value(k, l, m) && b == -probe_value(k, l, m));
            }
        }
    free(var), free(ang), free(angl), free(gn);
    g = H5Gopen2(f, "prune", H5P_DEFAULT);
    ck_assert_double_eq(attr_num(g, "base_loss"), 2.5);
    ck_assert_double_eq(attr_num(g, "base_ppl"), exp(2.5));
    ck_assert_double_eq(attr_num(g, "batches"), 2);
    ck_assert_double_eq(attr_num(g, "step"), ROWS);
    H5Gclose(g);
    const char *parts[3] = {"prune/block", "prune/attn", "prune/mlp"};
    for (int k = 0; k < 3; k++) {
        double *x = read_1d(f, parts[k], &n);
        ck_assert_uint_eq(n, (size_t)L);
        for (int l = 0; l < L; l++) ck_assert(x[l] == 3 + k + l);
        free(x);
    }
    H5Fclose(f);
    ck_assert(h5dump_ok(path, ""));
    ck_assert_int_eq(runfile_read_status(path, err, sizeof err), RUN_FINISHED);

    /* --- and through the reader sweep, report, tables and export use --- */
    RunFileData d;
    ck_assert_msg(runfile_read(path, RF_WANT_ALL, &d, err, sizeof err) == 0, "%s", err);
    ck_assert_str_eq(d.scheme, "mix_ln");
    ck_assert_int_eq(d.status, RUN_FINISHED);
    ck_assert(d.has_seed && d.seed == 7);
    ck_assert(d.n_layer == L && d.d_model == run.model.d_model && d.n_params == 12345);
    ck_assert(d.has_prune && d.prune_base_loss == 2.5);
    const RunArray *loss = &d.data[RF_TRAIN_LOSS], *angular = &d.data[RF_LAYERS_ANGULAR];
    ck_assert(loss->present && loss->rank == 1 && loss->dims[0] == ROWS);
    for (int i = 0; i < ROWS; i++) ck_assert(loss->data[i] == 5.0 - (i + 1) * 0.01);
    ck_assert(angular->rank == 3 && angular->dims[0] == 2 && angular->dims[1] == (size_t)P &&
              angular->dims[2] == (size_t)P);
    ck_assert(angular->data[(1 * P + 0) * P + 2] == probe_value(1, 0, 2));
    for (int k = RF_PRUNE_BLOCK; k <= RF_PRUNE_MLP; k++)
        ck_assert(d.data[k].dims[0] == (size_t)L && d.data[k].data[0] == 3 + k - RF_PRUNE_BLOCK);
    runfile_data_free(&d);
    RunFileData only_eval;
    ck_assert_int_eq(runfile_read(path, RF_WANT(RF_EVAL_PPL), &only_eval, err, sizeof err), 0);
    ck_assert(only_eval.data[RF_EVAL_PPL].present && !only_eval.data[RF_TRAIN_LOSS].present);
    ck_assert(only_eval.data[RF_EVAL_PPL].data[2] == exp(3.0 - 300 * 0.001));
    runfile_data_free(&only_eval);
    free(specs);
    free(yaml);
    layer_probe_free(&p);
    prune_result_free(&pr);
    config_free(&run);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- whole runs ------------------------------------------------------------------------------ */

typedef struct {
    const char *ckpt;
    int resume, stop_after;
    int progress_fd;       /* > 0: the run's progress lines go to this descriptor */
    const char *cap_path;  /* before the run: RLIMIT_FSIZE = this file's size */
} RunOpts;

/* run_train of the tiny config (with overrides) writing run file `path`. Returns run_train's
 * result code; res and err filled. */
static int run_recorded(const char *path, const char *const *sets, int n_sets, RunOpts *o,
                        RunResult *res, char *err, size_t errlen) {
    NbConfig cfg;
    load_tiny(&cfg, sets, n_sets);
    Dataset ds = {0};
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, errlen) == 0, "%s", err);
    /* one thread: these runs compare with each other only, and a single thread is immune to
     * busy-waiting OpenMP barriers on a shared, loaded machine */
    Backend *be = backend_create("cpu", 1, err, errlen);
    ck_assert_ptr_nonnull(be);
    FILE *progress = o && o->progress_fd > 0 ? fdopen(o->progress_fd, "w") : NULL;
    if (o && o->cap_path) {
        struct stat st;
        ck_assert_int_eq(stat(o->cap_path, &st), 0);
        signal(SIGXFSZ, SIG_IGN); /* a write past the cap fails with EFBIG instead */
        struct rlimit lim = {(rlim_t)st.st_size, (rlim_t)st.st_size};
        ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    }
    RunOptions opt = {.run_file = path, .checkpoint = o ? o->ckpt : NULL,
                      .resume = o ? o->resume : 0, .stop_after = o ? o->stop_after : 0,
                      .progress = progress};
    int rc = run_train(&cfg, &ds, be, &opt, res, err, errlen);
    if (progress) fclose(progress);
    backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    return rc;
}

static char *export_text(const char *path, const char *what, long step) {
    char *buf = NULL, err[512] = "";
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    int rc = export_run(path, what, step, out, err, sizeof err);
    fclose(out);
    ck_assert_msg(rc == 0, "export %s: %s", what, err);
    return buf;
}

START_TEST(a_finished_run_records_every_series_probe_and_the_pruning_sweep) {
    char *dir = temp_dir();
    char path[300], err[1024];
    snprintf(path, sizeof path, "%s/run.h5", dir);
    const char *sets[] = {"metrics.every=5", "eval.every=10", "metrics.prune=true"};
    RunResult res;
    ck_assert_msg(run_recorded(path, sets, 3, NULL, &res, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(res.status, RUN_FINISHED);

    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_attr_str(f, "status", "finished");
    assert_attr_str(f, "scheme", "pre_ln");
    char *kernels = attr_str(f, "kernels"); /* what the CPU backend ran on, e.g. OpenBLAS SkylakeX */
    ck_assert_msg(strncmp(kernels, "OpenBLAS ", 9) == 0, "kernels: %s", kernels);
    free(kernels);
    size_t n;
    double *ts = read_1d(f, "train/step", &n), *tl = read_1d(f, "train/loss", &n);
    ck_assert_uint_eq(n, 20);
    for (int s = 1; s <= 20; s++) ck_assert(ts[s - 1] == s && isfinite(tl[s - 1]));
    ck_assert(tl[19] == res.final_train_loss);
    double *es = read_1d(f, "eval/step", &n), *el = read_1d(f, "eval/loss", &n);
    ck_assert(n == 2 && es[0] == 10 && es[1] == 20);
    ck_assert(el[1] == res.val_loss);
    double *ls = read_1d(f, "layers/step", &n);
    ck_assert(n == 4 && ls[0] == 5 && ls[3] == 20);
    int rank;
    hsize_t dims[3];
    double *var = read_all(f, "layers/variance", &rank, dims), *gn = read_all(f, "layers/grad_norm", &rank, dims);
    for (int i = 0; i < 4 * 5; i++) ck_assert(isfinite(var[i]) && var[i] > 0);
    for (int i = 0; i < 4 * 4; i++) ck_assert(isfinite(gn[i]) && gn[i] > 0);
    /* pruning ran on the trainer's validation batches: the intact loss is its val loss */
    hid_t g = H5Gopen2(f, "prune", H5P_DEFAULT);
    ck_assert(attr_num(g, "base_loss") == res.val_loss);
    H5Gclose(g);
    double *pb = read_1d(f, "prune/block", &n);
    ck_assert_uint_eq(n, 4);
    for (int l = 0; l < 4; l++) ck_assert(isfinite(pb[l]) && pb[l] != res.val_loss);
    H5Fclose(f);
    free(ts), free(tl), free(es), free(el), free(ls), free(var), free(gn), free(pb);
    ck_assert(h5dump_ok(path, ""));

    /* export: a header row and one row per record */
    struct { const char *what; long step; int lines; const char *header; } tables[] = {
        {"train", -1, 21, "step\tloss\tlr\tgrad_norm\ttokens_per_s\n"},
        {"eval", -1, 3, "step\tloss\tppl\n"},
        {"variance", EXPORT_LAST_STEP, 6, "step\tlayer\tvariance\n"},
        {"variance", EXPORT_ALL_STEPS, 21, "step\tlayer\tvariance\n"},
        {"angular", 10, 11, "step\tl\tm\tn\tdistance\tdistance_last\n"},
        {"grad", 15, 5, "step\tlayer\tgrad_norm\n"},
        {"prune", -1, 5, "layer\tblock_loss\tblock_delta\tblock_ppl\tattn_loss\tattn_delta\t"
                         "attn_ppl\tmlp_loss\tmlp_delta\tmlp_ppl\n"},
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        char *text = export_text(path, tables[i].what, tables[i].step);
        ck_assert_msg(strncmp(text, tables[i].header, strlen(tables[i].header)) == 0, "%s: %s",
                      tables[i].what, text);
        ck_assert_int_eq(test_count_lines(text), tables[i].lines);
        free(text);
    }
    char *text = export_text(path, "angular", 10);
    ck_assert_ptr_nonnull(strstr(text, "\n10\t0\t1\t1\t")); /* step l m n = m - l */
    ck_assert_ptr_nonnull(strstr(text, "\n10\t3\t4\t1\t"));
    free(text);
    text = export_text(path, "grad", -1);
    ck_assert_ptr_nonnull(strstr(text, "\n20\t1\t")); /* blocks count from 1 */
    ck_assert_ptr_nonnull(strstr(text, "\n20\t4\t"));
    free(text);
    FILE *null = fopen("/dev/null", "w");
    ck_assert_int_eq(export_run(path, "angular", 7, null, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "no probe at step 7"));
    ck_assert_int_eq(export_run(path, "bogus", -1, null, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "train|eval|variance|angular|grad|prune"));
    fclose(null);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(status_says_diverged_or_stays_running_for_a_run_stopped_to_be_resumed) {
    char *dir = temp_dir();
    char path[300], ckpt[300], err[1024];
    snprintf(path, sizeof path, "%s/d.h5", dir);
    const char *wild[] = {"train.lr=1000", "train.min_lr=1000", "train.warmup=0", "metrics.prune=true"};
    RunResult res;
    ck_assert_msg(run_recorded(path, wild, 4, NULL, &res, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(res.status, RUN_DIVERGED);
    ck_assert_int_eq(runfile_read_status(path, err, sizeof err), RUN_DIVERGED);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    char *fin = attr_str(f, "finished_at");
    ck_assert_uint_eq(strlen(fin), 20);
    ck_assert_int_le(H5Lexists(f, "prune", H5P_DEFAULT), 0); /* no pruning of a diverged model */
    free(fin);
    H5Fclose(f);

    snprintf(path, sizeof path, "%s/s.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/s.ckpt.h5", dir);
    RunOpts o = {.ckpt = ckpt, .stop_after = 7};
    const char *prune[] = {"metrics.prune=true"};
    ck_assert_msg(run_recorded(path, prune, 1, &o, &res, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(runfile_read_status(path, err, sizeof err), RUN_RUNNING);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    fin = attr_str(f, "finished_at");
    ck_assert_str_eq(fin, "");
    ck_assert_int_le(H5Lexists(f, "prune", H5P_DEFAULT), 0);
    free(fin);
    H5Fclose(f);

    /* the reader's errors */
    snprintf(path, sizeof path, "%s/none.h5", dir);
    ck_assert_int_eq(runfile_read_status(path, err, sizeof err), RUN_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(err, path));
    ck_assert_int_eq(runfile_read_status(ckpt, err, sizeof err), RUN_UNKNOWN);
    ck_assert_ptr_nonnull(strstr(err, "not a normbench run file"));
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_run_killed_with_sigkill_leaves_a_readable_file_with_its_probes) {
    char *dir = temp_dir();
    char path[300];
    snprintf(path, sizeof path, "%s/killed.h5", dir);
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) { /* the run: far more steps than it will live to see */
        close(fds[0]);
        const char *sets[] = {"train.steps=100000", "metrics.every=5", "eval.every=20",
                              "train.log_every=40"};
        RunOpts o = {.progress_fd = fds[1]}; /* a line after step 40's probes are written */
        RunResult res;
        char err[1024];
        run_recorded(path, sets, 4, &o, &res, err, sizeof err);
        _exit(3);
    }
    close(fds[1]);
    struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
    int ready = poll(&pfd, 1, 120000);
    char line[256];
    ssize_t got = ready == 1 ? read(fds[0], line, sizeof line - 1) : -1;
    if (got > 0) line[got] = '\0';
    ck_assert_msg(got > 0 && strstr(line, " 40/100000"), "the child never reached step 40: %s",
                  got > 0 ? line : "(no line)");
    nanosleep(&(struct timespec){0, 30000000}, NULL); /* train on a little: kill mid-run */
    kill(pid, SIGKILL);
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL);
    close(fds[0]);

    ck_assert_msg(h5dump_ok(path, "-H"), "h5dump -H failed on the killed run's file");
    ck_assert_msg(h5dump_ok(path, ""), "h5dump failed on the killed run's file");
    char err[512];
    ck_assert_int_eq(runfile_read_status(path, err, sizeof err), RUN_RUNNING);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert(f >= 0);
    size_t n, ne;
    double *ls = read_1d(f, "layers/step", &n), *es = read_1d(f, "eval/step", &ne);
    ck_assert_uint_ge(n, 8); /* every probe up to step 40, flushed before the signal */
    for (size_t i = 0; i < n; i++) ck_assert(ls[i] == 5.0 * (i + 1));
    ck_assert_uint_ge(ne, 2);
    ck_assert(es[0] == 20 && es[1] == 40);
    int rank;
    hsize_t dims[3];
    double *var = read_all(f, "layers/variance", &rank, dims);
    ck_assert(dims[0] == n);
    for (size_t i = 0; i < n * 5; i++) ck_assert(isfinite(var[i]));
    double *ts = read_1d(f, "train/step", &n);
    ck_assert_uint_ge(n, 40);
    for (size_t i = 0; i < n; i++) ck_assert(ts[i] == i + 1.0);
    H5Fclose(f);
    free(ls), free(es), free(var), free(ts);
    char *text = export_text(path, "variance", EXPORT_LAST_STEP);
    ck_assert_int_eq(test_count_lines(text), 6);
    free(text);
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(an_unwritable_output_path_fails_cleanly_with_a_message_naming_it) {
    char *dir = temp_dir();
    char path[300], ckpt[300], blocker[300], err[1024];
    snprintf(ckpt, sizeof ckpt, "%s/c.ckpt.h5", dir);
    snprintf(blocker, sizeof blocker, "%s/plain-file", dir);
    FILE *b = fopen(blocker, "w");
    fclose(b);
    /* a run that wrote a checkpoint at step 5 */
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    RunOpts o = {.ckpt = ckpt, .stop_after = 5};
    RunResult res;
    ck_assert_msg(run_recorded(path, NULL, 0, &o, &res, err, sizeof err) == 0, "%s", err);
    char saved[320];
    snprintf(saved, sizeof saved, "%s.saved", ckpt);
    copy_file(ckpt, saved);

    const char *bad[3][2] = {{"/nonexistent-normbench-dir/run.h5", "No such file or directory"},
                             {NULL, "Not a directory"},
                             {"/dev/full", ""}};
    char below_file[320];
    snprintf(below_file, sizeof below_file, "%s/run.h5", blocker);
    bad[1][0] = below_file;
    for (int i = 0; i < 3; i++) {
        o = (RunOpts){.ckpt = ckpt};
        err[0] = '\0';
        ck_assert_int_eq(run_recorded(bad[i][0], NULL, 0, &o, &res, err, sizeof err), -1);
        ck_assert_msg(strstr(err, bad[i][0]) && strstr(err, bad[i][1]), "message: %s", err);
        ck_assert_ptr_null(strchr(err, '\n'));
        ck_assert(files_equal(ckpt, saved)); /* the checkpoint is untouched */
    }
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(a_disk_filling_up_mid_run_stops_it_with_a_message_and_the_checkpoint_intact) {
    char *dir = temp_dir();
    char path[300], ckpt[300], saved[320], err[1024];
    snprintf(path, sizeof path, "%s/full.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/full.ckpt.h5", dir);
    snprintf(saved, sizeof saved, "%s.saved", ckpt);
    const char *sets[] = {"metrics.every=5", "eval.every=10"};
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    /* all training in a child: OpenMP's threads do not survive a fork, so the parent must
     * not have trained before forking */
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        RunResult res;
        RunOpts o = {.ckpt = ckpt, .stop_after = 5}; /* a checkpoint at step 5 */
        if (run_recorded(path, sets, 2, &o, &res, err, sizeof err) != 0) _exit(2);
        copy_file(ckpt, saved);
        /* resume with no room for the run file to grow */
        RunOpts r = {.ckpt = ckpt, .resume = 1, .cap_path = path};
        int rc = run_recorded(path, sets, 2, &r, &res, err, sizeof err);
        ssize_t w = write(fds[1], err, strlen(err) + 1);
        _exit(rc == -1 && w > 0 ? 0 : 1);
    }
    close(fds[1]);
    char msg[1024] = "";
    size_t got = 0;
    ssize_t k;
    while (got < sizeof msg - 1 && (k = read(fds[0], msg + got, sizeof msg - 1 - got)) > 0) got += (size_t)k;
    close(fds[0]);
    int wstatus;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert_msg(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "child: %s", msg);
    ck_assert_msg(strstr(msg, path) && strstr(msg, "cannot write"), "message: %s", msg);
    ck_assert(files_equal(ckpt, saved));
    remove_tree(dir);
    free(dir);
}
END_TEST

START_TEST(resume_cuts_every_series_back_to_the_checkpoint_and_ends_like_a_straight_run) {
    char *dir = temp_dir();
    char straight[300], resumed[300], ckpt[300], ckpt10[300], ckpt_s[300], err[1024];
    snprintf(straight, sizeof straight, "%s/straight.h5", dir);
    snprintf(resumed, sizeof resumed, "%s/resumed.h5", dir);
    snprintf(ckpt, sizeof ckpt, "%s/r.ckpt.h5", dir);
    snprintf(ckpt10, sizeof ckpt10, "%s/r10.ckpt.h5", dir);
    snprintf(ckpt_s, sizeof ckpt_s, "%s/s.ckpt.h5", dir);
    const char *sets[] = {"metrics.every=5", "eval.every=5", "train.checkpoint_every=10",
                          "metrics.prune=true"};
    RunResult res;
    RunOpts o = {.ckpt = ckpt_s};
    ck_assert_msg(run_recorded(straight, sets, 4, &o, &res, err, sizeof err) == 0, "%s", err);

    /* the run gets to step 15, but its last checkpoint that survives is step 10's */
    o = (RunOpts){.ckpt = ckpt, .stop_after = 10};
    ck_assert_msg(run_recorded(resumed, sets, 4, &o, &res, err, sizeof err) == 0, "%s", err);
    copy_file(ckpt, ckpt10);
    o = (RunOpts){.ckpt = ckpt, .resume = 1, .stop_after = 15};
    ck_assert_msg(run_recorded(resumed, sets, 4, &o, &res, err, sizeof err) == 0, "%s", err);
    hid_t f = H5Fopen(resumed, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_eq((int)h5_series_rows(f, "train/step"), 15);
    ck_assert_int_eq((int)h5_series_rows(f, "layers/step"), 3);
    H5Fclose(f);
    copy_file(ckpt10, ckpt);
    o = (RunOpts){.ckpt = ckpt, .resume = 1};
    ck_assert_msg(run_recorded(resumed, sets, 4, &o, &res, err, sizeof err) == 0, "%s", err);

    hid_t a = H5Fopen(straight, H5F_ACC_RDONLY, H5P_DEFAULT), b = H5Fopen(resumed, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_double_eq(attr_num(b, "resumed_from_step"), 10);
    assert_attr_str(b, "status", "finished");
    /* every series and probe equal bitwise (resume is exact); tokens/s is a timing */
    const char *same[] = {"train/step", "train/loss", "train/lr", "train/grad_norm",
                          "eval/step", "eval/loss", "eval/ppl", "layers/step", "layers/variance",
                          "layers/angular", "layers/angular_last", "layers/grad_norm",
                          "prune/block", "prune/attn", "prune/mlp"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        int ra, rb;
        hsize_t da[3], db[3];
        double *x = read_all(a, same[i], &ra, da), *y = read_all(b, same[i], &rb, db);
        ck_assert_msg(ra == rb && da[0] == db[0] && da[1] == db[1] && da[2] == db[2],
                      "%s: shapes differ (%llu vs %llu rows)", same[i],
                      (unsigned long long)da[0], (unsigned long long)db[0]);
        size_t n = (size_t)(da[0] * (ra > 1 ? da[1] : 1) * (ra > 2 ? da[2] : 1));
        for (size_t j = 0; j < n; j++)
            ck_assert_msg(x[j] == y[j] || (isnan(x[j]) && isnan(y[j])), "%s[%zu]: %.17g vs %.17g",
                          same[i], j, x[j], y[j]);
        free(x), free(y);
    }
    size_t n;
    double *steps = read_1d(b, "train/step", &n);
    ck_assert_uint_eq(n, 20);
    for (size_t i = 0; i < n; i++) ck_assert(steps[i] == i + 1.0);
    free(steps);
    H5Fclose(a), H5Fclose(b);

    /* a run file of another config is not resumed into */
    const char *other[] = {"metrics.every=5", "eval.every=5", "train.checkpoint_every=10",
                           "metrics.prune=true", "train.lr=0.002"};
    copy_file(ckpt10, ckpt);
    o = (RunOpts){.ckpt = ckpt, .resume = 1};
    ck_assert_int_eq(run_recorded(resumed, other, 5, &o, &res, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "different config"));
    remove_tree(dir);
    free(dir);
}
END_TEST

Suite *runfile_suite(void) {
    Suite *s = suite_create("runfile");
    TCase *file = tcase_create("file");
    tcase_add_test(file, a_run_file_round_trips_every_dataset_and_attribute);
    suite_add_tcase(s, file);
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 120);
    tcase_add_test(runs, a_finished_run_records_every_series_probe_and_the_pruning_sweep);
    tcase_add_test(runs, status_says_diverged_or_stays_running_for_a_run_stopped_to_be_resumed);
    tcase_add_test(runs, a_run_killed_with_sigkill_leaves_a_readable_file_with_its_probes);
    tcase_add_test(runs, an_unwritable_output_path_fails_cleanly_with_a_message_naming_it);
    tcase_add_test(runs, a_disk_filling_up_mid_run_stops_it_with_a_message_and_the_checkpoint_intact);
    tcase_add_test(runs, resume_cuts_every_series_back_to_the_checkpoint_and_ends_like_a_straight_run);
    suite_add_tcase(s, runs);
    return s;
}
