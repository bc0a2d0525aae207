/* test_report.c — the specification of `normbench report DIR` (src/report.c): the summary
 * tables against hand-computed values, the TSV data behind every figure, every gnuplot
 * script rendering a PNG and an SVG, and the failure modes (missing or empty DIR, corrupt
 * and foreign .h5 files, gnuplot missing, hostile file and scheme names).
 *
 * The run files are SYNTHETIC: a small fixture writer below builds them with the HDF5 C API
 * directly, following docs/design.md section 5 (root attributes, /model, extendible /train and
 * /eval series, /layers, /prune with base_loss), with known values whose means and
 * standard deviations are worked out by hand next to each test. Scratch directories come
 * from mkdtemp and are removed afterwards. Runs from the repository root (plots/). */
#include <check.h>
#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5util.h"
#include "report.h"

/* ---- fixture: synthetic run files ---------------------------------------------------- */

#define FX_L 3       /* layers of every synthetic model */
#define FX_P 2       /* probes: steps 50 and 100 */
#define FX_W (FX_L + 1)

typedef struct {
    const char *file, *scheme, *status;
    long long seed;
    int n_eval;
    double eval_step[4], eval_ppl[4];
    int n_train;
    double tokens_per_s[4];   /* train steps are 10, 20, ... */
    int layers;               /* write /layers */
    double variance[FX_P][FX_W];
    double angular[FX_P][FX_W][FX_W], angular_last[FX_P][FX_W][FX_W];
    double grad[FX_P][FX_L];
    int prune;                /* write /prune */
    double base_loss, block[FX_L], attn[FX_L], mlp[FX_L];
    int bad_variance_shape;   /* write /layers/variance as [P, L] */
} FxRun;

/* A dataset of file type `type`, chunked and extendible along its first axis like the run
 * writer's series, written from doubles. */
static void fx_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                       const double *data) {
    hsize_t maxdims[3] = {H5S_UNLIMITED, dims[1 % rank], dims[2 % rank]};
    hsize_t chunk[3] = {4, rank > 1 ? dims[1] : 1, rank > 2 ? dims[2] : 1};
    hid_t space = H5Screate_simple(rank, dims, maxdims);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    ck_assert_int_ge(H5Pset_chunk(dcpl, rank, chunk), 0);
    hid_t d = H5Dcreate2(loc, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    size_t n = 1;
    for (int i = 0; i < rank; i++) n *= dims[i];
    if (n) ck_assert_int_ge(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
}

static void fx_write(const char *dir, const FxRun *r) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, r->file);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(h5_write_attr_int64(f, "format_version", 1), 0);
    ck_assert_int_eq(h5_write_attr_string(f, "scheme", r->scheme), 0);
    ck_assert_int_eq(h5_write_attr_int64(f, "seed", r->seed), 0);
    ck_assert_int_eq(h5_write_attr_string(f, "status", r->status), 0);
    ck_assert_int_eq(h5_write_attr_string(f, "backend", "cpu"), 0);
    ck_assert_int_eq(h5_write_attr_string(f, "config_sha256", "00"), 0);
    hid_t g = H5Gcreate2(f, "model", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_eq(h5_write_attr_int64(g, "n_layer", FX_L), 0);
    ck_assert_int_eq(h5_write_attr_int64(g, "d_model", 16), 0);
    ck_assert_int_eq(h5_write_attr_int64(g, "n_params", 4242), 0);
    H5Gclose(g);

    g = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double steps[4], loss[4];
    for (int i = 0; i < r->n_train; i++) steps[i] = 10.0 * (i + 1), loss[i] = 3.0;
    hsize_t dims[3] = {(hsize_t)r->n_train, 0, 0};
    fx_dataset(g, "step", H5T_STD_I64LE, 1, dims, steps);
    fx_dataset(g, "loss", H5T_IEEE_F32LE, 1, dims, loss);
    fx_dataset(g, "tokens_per_s", H5T_IEEE_F32LE, 1, dims, r->tokens_per_s);
    H5Gclose(g);

    g = H5Gcreate2(f, "eval", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    double eloss[4];
    for (int i = 0; i < r->n_eval; i++) eloss[i] = log(r->eval_ppl[i]);
    dims[0] = (hsize_t)r->n_eval;
    fx_dataset(g, "step", H5T_STD_I64LE, 1, dims, r->eval_step);
    fx_dataset(g, "loss", H5T_IEEE_F64LE, 1, dims, eloss);
    fx_dataset(g, "ppl", H5T_IEEE_F32LE, 1, dims, r->eval_ppl);
    H5Gclose(g);

    if (r->layers) {
        g = H5Gcreate2(f, "layers", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        double pstep[FX_P] = {50, 100};
        hsize_t d1[1] = {FX_P}, d2[2] = {FX_P, FX_W}, d3[3] = {FX_P, FX_W, FX_W};
        fx_dataset(g, "step", H5T_STD_I64LE, 1, d1, pstep);
        if (r->bad_variance_shape) {
            hsize_t bad[2] = {FX_P, FX_L};
            fx_dataset(g, "variance", H5T_IEEE_F32LE, 2, bad, &r->grad[0][0]);
        } else {
            fx_dataset(g, "variance", H5T_IEEE_F32LE, 2, d2, &r->variance[0][0]);
        }
        fx_dataset(g, "angular", H5T_IEEE_F32LE, 3, d3, &r->angular[0][0][0]);
        fx_dataset(g, "angular_last", H5T_IEEE_F32LE, 3, d3, &r->angular_last[0][0][0]);
        hsize_t dg[2] = {FX_P, FX_L};
        fx_dataset(g, "grad_norm", H5T_IEEE_F32LE, 2, dg, &r->grad[0][0]);
        H5Gclose(g);
    }
    if (r->prune) {
        g = H5Gcreate2(f, "prune", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_eq(h5_write_attr_double(g, "base_loss", r->base_loss), 0);
        hsize_t d1[1] = {FX_L};
        fx_dataset(g, "block", H5T_IEEE_F32LE, 1, d1, r->block);
        fx_dataset(g, "attn", H5T_IEEE_F32LE, 1, d1, r->attn);
        fx_dataset(g, "mlp", H5T_IEEE_F32LE, 1, d1, r->mlp);
        H5Gclose(g);
    }
    ck_assert_int_ge(H5Fclose(f), 0);
}

/* Layer data of a run whose values scale with `s`:
 *   variance[p][l] = (p+1)(l+1) s          final probe: 2(l+1) s
 *   angular[p][l][m] = (m-l) s / 20         (NaN for m < l, 0 on the diagonal)
 *   angular_last[p][l][m] = 0.05(m-l) + 0.01 l
 *   grad[p][i] = 0.1 (i+1) s                (block i+1)
 *   prune: base = 2 + 0.1 s, block = base + 0.5(i+1), attn = base + 0.1(i+1),
 *          mlp = base + 0.2(i+1) + 0.01 s */
static void fx_layers(FxRun *r, double s) {
    r->layers = 1;
    for (int p = 0; p < FX_P; p++) {
        for (int l = 0; l < FX_W; l++) {
            r->variance[p][l] = (p + 1) * (l + 1) * s;
            for (int m = 0; m < FX_W; m++) {
                r->angular[p][l][m] = m < l ? NAN : (m - l) * s / 20.0;
                r->angular_last[p][l][m] = m < l ? NAN : 0.05 * (m - l) + 0.01 * l;
            }
        }
        for (int i = 0; i < FX_L; i++) r->grad[p][i] = 0.1 * (i + 1) * s;
    }
    r->prune = 1;
    r->base_loss = 2.0 + 0.1 * s;
    for (int i = 0; i < FX_L; i++) {
        r->block[i] = r->base_loss + 0.5 * (i + 1);
        r->attn[i] = r->base_loss + 0.1 * (i + 1);
        r->mlp[i] = r->base_loss + 0.2 * (i + 1) + 0.01 * s;
    }
}

/* The main sweep (hand-computed expectations in the tests):
 *   pre_ln  s1..s3 finished, final ppl 10, 12, 17 -> mean 13, std sqrt(13) = 3.60555
 *           ppl curves {200,20,10}, {220,24,12}, {240,30,17} at steps 0, 50, 100
 *           -> mean 220, 24.6667, 13; tokens/s of s1: 100, 200, 300 -> 200
 *   pre_ln  s4 diverged (final ppl inf; layer values x1e6): counted, never averaged
 *   post_ln s1 diverged only: no mean; its curve is drawn, titled "(diverged)"
 *   mix_ln  s1 running, no /eval rows, no /layers: in the tables, in no figure
 *   lns     s1 finished, final ppl 9.5: std empty (one seed); layers without /prune
 * plus a checkpoint pre_ln-s1.ckpt.h5 that must be ignored. */
static void fx_sweep(const char *dir) {
    static FxRun runs[5];
    memset(runs, 0, sizeof runs);
    const double finals[3] = {10, 12, 17}, firsts[3] = {200, 220, 240}, mids[3] = {20, 24, 30};
    static const char *const names[3] = {"pre_ln-s1.h5", "pre_ln-s2.h5", "pre_ln-s3.h5"};
    for (int i = 0; i < 3; i++) {
        FxRun *r = &runs[i];
        *r = (FxRun){.file = names[i], .scheme = "pre_ln", .status = "finished", .seed = i + 1,
                     .n_eval = 3, .eval_step = {0, 50, 100},
                     .eval_ppl = {firsts[i], mids[i], finals[i]}, .n_train = 3,
                     .tokens_per_s = {100.0 * (i + 1), 200.0 * (i + 1), 300.0 * (i + 1)}};
        fx_layers(r, i + 1);
    }
    runs[3] = (FxRun){.file = "pre_ln-s4.h5", .scheme = "pre_ln", .status = "diverged",
                      .seed = 4, .n_eval = 2, .eval_step = {0, 50}, .eval_ppl = {210, INFINITY},
                      .n_train = 2, .tokens_per_s = {50, 50}};
    fx_layers(&runs[3], 1e6);
    runs[4] = (FxRun){.file = "post_ln-s1.h5", .scheme = "post_ln", .status = "diverged",
                      .seed = 1, .n_eval = 2, .eval_step = {0, 50}, .eval_ppl = {230, 1e6},
                      .n_train = 2, .tokens_per_s = {80, 80}};
    fx_layers(&runs[4], 1000);
    runs[4].prune = 0;
    for (int i = 0; i < 5; i++) fx_write(dir, &runs[i]);

    FxRun mix = {.file = "mix_ln-s1.h5", .scheme = "mix_ln", .status = "running", .seed = 1,
                 .n_train = 1, .tokens_per_s = {70}};
    fx_write(dir, &mix);
    FxRun lns = {.file = "lns-s1.h5", .scheme = "lns", .status = "finished", .seed = 1,
                 .n_eval = 3, .eval_step = {0, 50, 100}, .eval_ppl = {250, 30, 9.5},
                 .n_train = 2, .tokens_per_s = {90, 110}};
    fx_layers(&lns, 0.5);
    lns.prune = 0;
    fx_write(dir, &lns);
    FxRun ckpt = {.file = "pre_ln-s1.ckpt.h5", .scheme = "ckpt_scheme", .status = "finished",
                  .seed = 9, .n_eval = 1, .eval_step = {0}, .eval_ppl = {1}, .n_train = 1};
    fx_write(dir, &ckpt);
}

/* ---- helpers ------------------------------------------------------------------------- */

static char *temp_dir(const char *template_) {
    char *dir = strdup(template_);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

/* rm -r, without a shell (directory names in these tests hold quotes and spaces) */
static void remove_tree_now(const char *path) {
    DIR *d = opendir(path);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) remove_tree_now(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(path);
}

/* NB_TEST_KEEP=1 in the environment keeps the scratch directories for inspection. */
static void remove_tree(const char *path) {
    if (getenv("NB_TEST_KEEP")) fprintf(stderr, "test_report: kept %s\n", path);
    else remove_tree_now(path);
}

/* The contents of DIR/report/NAME (malloc'ed, NUL-terminated), or NULL. */
static char *slurp(const char *dir, const char *name, size_t *len_out) {
    char path[2048];
    snprintf(path, sizeof path, "%s/report/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out) *len_out = len;
    return buf;
}

static int report_file_exists(const char *dir, const char *name) {
    char path[2048];
    snprintf(path, sizeof path, "%s/report/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Runs the report; the log goes into *log (malloc'ed). */
static int run_report(const char *dir, const char *gnuplot, char **log, char *err,
                      size_t errlen) {
    size_t len;
    FILE *lf = open_memstream(log, &len);
    ck_assert_ptr_nonnull(lf);
    ReportOptions opt = {.plots_dir = "plots", .gnuplot = gnuplot, .log = lf};
    int rc = report_write(dir, &opt, err, errlen);
    fclose(lf);
    return rc;
}

#define NO_GNUPLOT "normbench-test-no-such-gnuplot"

/* Value at (block, row, col) of a report data file: blocks are separated by two blank
 * lines, '#' lines are comments, single blank lines (between probes) are not rows. */
static int tsv_at(const char *text, int block, int row, int col, double *out) {
    int b = 0, r = 0, blanks = 0, started = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len == 0) {
            blanks++;
        } else {
            if (started && blanks >= 2) b++, r = 0;
            started = 1;
            blanks = 0;
            if (line[0] != '#') {
                if (b == block && r == row) {
                    const char *p = line;
                    for (int c = 0; c < col; c++) {
                        p = memchr(p, '\t', len - (size_t)(p - line));
                        if (!p) return -1;
                        p++;
                    }
                    *out = strtod(p, NULL);
                    return 0;
                }
                r++;
            }
        }
        line += len + (end ? 1 : 0);
    }
    return -1;
}

/* Number of blocks and the first comment line of block `block` ("# title"). */
static int tsv_blocks(const char *text, int block, char *title, size_t tlen) {
    int b = -1, blanks = 2;
    title[0] = '\0';
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len == 0) {
            blanks++;
        } else {
            if (blanks >= 2) {
                b++;
                if (b == block) snprintf(title, tlen, "%.*s", (int)len, line);
            }
            blanks = 0;
        }
        line += len + (end ? 1 : 0);
    }
    return b + 1;
}

#define ASSERT_AT(text, block, row, col, want)                                             \
    do {                                                                                   \
        double got_, want_ = (want);                                                       \
        ck_assert_msg(tsv_at(text, block, row, col, &got_) == 0, "no value at %d/%d/%d",   \
                      block, row, col);                                                    \
        ck_assert_msg(fabs(got_ - want_) <= 1e-5 * fmax(1.0, fabs(want_)),                 \
                      "block %d row %d col %d: %.9g, want %.9g", block, row, col, got_,    \
                      want_);                                                              \
    } while (0)

/* ---- summary tables ------------------------------------------------------------------- */

START_TEST(summary_tables_match_hand_computed_values) {
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "";
    fx_sweep(dir);
    int rc = run_report(dir, NO_GNUPLOT, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_NO_GNUPLOT, "rc %d: %s\n%s", rc, err, log);

    char *tsv = slurp(dir, "summary.tsv", NULL);
    ck_assert_ptr_nonnull(tsv);
    /* scheme-table order, then seed; losses are ln(ppl); tokens/s are means; steps are
     * the last /train/step; the diverged run's final ppl is inf; the checkpoint is absent */
    ck_assert_str_eq(tsv,
        "scheme\tseed\tstatus\tsteps\tfinal_val_loss\tfinal_val_ppl\ttokens_per_s\tfile\n"
        "pre_ln\t1\tfinished\t30\t2.30259\t10\t200\tpre_ln-s1.h5\n"
        "pre_ln\t2\tfinished\t30\t2.48491\t12\t400\tpre_ln-s2.h5\n"
        "pre_ln\t3\tfinished\t30\t2.83321\t17\t600\tpre_ln-s3.h5\n"
        "pre_ln\t4\tdiverged\t20\tinf\tinf\t50\tpre_ln-s4.h5\n"
        "post_ln\t1\tdiverged\t20\t13.8155\t1e+06\t80\tpost_ln-s1.h5\n"
        "mix_ln\t1\trunning\t10\t\t\t70\tmix_ln-s1.h5\n"
        "lns\t1\tfinished\t20\t2.25129\t9.5\t100\tlns-s1.h5\n");

    char *sch = slurp(dir, "summary_schemes.tsv", NULL);
    ck_assert_ptr_nonnull(sch);
    /* pre_ln: mean(10, 12, 17) = 13, sample std sqrt((9 + 1 + 16) / 2) = sqrt(13);
     * seed 4 diverged: counted, not averaged. lns: one seed, std empty. */
    ck_assert_str_eq(sch,
        "scheme\truns\tn\tmean_val_ppl\tstd_val_ppl\tdiverged\n"
        "pre_ln\t4\t3\t13\t3.60555\t1\n"
        "post_ln\t1\t0\t\t\t1\n"
        "mix_ln\t1\t0\t\t\t0\n"
        "lns\t1\t1\t9.5\t\t0\n");

    char *md = slurp(dir, "summary.md", NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert_ptr_nonnull(strstr(md, "7 run files, 4 schemes; model: 3 layers, d_model 16, 4242 parameters."));
    ck_assert_ptr_nonnull(strstr(md, "| pre_ln | 1 | finished | 30 | 2.3026 | 10.000 | 200 |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| mix_ln | 1 | running | 10 | – | – | 70 |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| pre_ln | 4 | 3 | 13.000 | 3.606 | 1 |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| post_ln | 1 | 0 | – | – | 1 |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| lns | 1 | 1 | 9.500 | – | 0 |\n"));
    /* paired with pre_ln by seed: only lns s1 (9.5) against pre_ln s1 (10) finished both:
     * ln 9.5 - ln 10 = -0.0513, one pair, lower on it; post_ln and mix_ln have no pair */
    ck_assert_ptr_nonnull(strstr(md, "## Against pre_ln, seed by seed"));
    ck_assert_ptr_nonnull(strstr(md, "| lns | 1 | -0.0513 | – | 1 of 1 |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| post_ln | 0 | – | – | – |\n"));
    ck_assert_ptr_nonnull(strstr(md, "| mix_ln | 0 | – | – | – |\n"));
    ck_assert_ptr_nonnull(strstr(md, "gnuplot-nox"));
    ck_assert_ptr_null(strstr(md, "ckpt_scheme"));
    ck_assert_ptr_null(strstr(md, "Skipped files"));
    free(tsv);
    free(sch);
    free(md);
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* Three seeds of pre_ln (final ppl 10, 12, 17) and lns (9.5, 13, 15): the per-seed
 * differences in final loss are ln(9.5/10) = -0.05129, ln(13/12) = +0.08004,
 * ln(15/17) = -0.12516: mean -0.0321, sample std 0.1039, lower on 2 of 3 seeds. */
START_TEST(paired_differences_against_pre_ln_by_seed) {
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "";
    const double base[3] = {10, 12, 17}, other[3] = {9.5, 13, 15};
    static const char *const files[2][3] = {{"pre_ln-s1.h5", "pre_ln-s2.h5", "pre_ln-s3.h5"},
                                            {"lns-s1.h5", "lns-s2.h5", "lns-s3.h5"}};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 3; i++) {
            FxRun r = {.file = files[k][i], .scheme = k ? "lns" : "pre_ln", .status = "finished",
                       .seed = i + 1, .n_eval = 2, .eval_step = {0, 100},
                       .eval_ppl = {200, k ? other[i] : base[i]}, .n_train = 1,
                       .tokens_per_s = {100}};
            fx_write(dir, &r);
        }
    int rc = run_report(dir, NO_GNUPLOT, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_NO_GNUPLOT, "rc %d: %s\n%s", rc, err, log);
    char *md = slurp(dir, "summary.md", NULL);
    ck_assert_ptr_nonnull(md);
    ck_assert_msg(strstr(md, "| lns | 3 | -0.0321 | 0.1039 | 2 of 3 |\n") != NULL, "%s", md);
    free(md);
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- figure data ----------------------------------------------------------------------- */

START_TEST(figure_data_files_hold_the_seed_means) {
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *logtext = NULL, err[1024] = "", title[256];
    fx_sweep(dir);
    ck_assert_int_eq(run_report(dir, NO_GNUPLOT, &logtext, err, sizeof err), REPORT_NO_GNUPLOT);

    /* val_ppl: pre_ln = mean of the three finished seeds (seed 4 diverged: left out);
     * post_ln = its only (diverged) run; mix_ln has no eval rows: no block */
    char *t = slurp(dir, "val_ppl.tsv", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tsv_blocks(t, 0, title, sizeof title), 3);
    ck_assert_str_eq(title, "# pre_ln (3 seeds)");
    tsv_blocks(t, 1, title, sizeof title);
    ck_assert_str_eq(title, "# post_ln (diverged)");
    tsv_blocks(t, 2, title, sizeof title);
    ck_assert_str_eq(title, "# lns");
    const double pre[3][2] = {{0, 220}, {50, 74.0 / 3.0}, {100, 13}};
    for (int i = 0; i < 3; i++) {
        ASSERT_AT(t, 0, i, 0, pre[i][0]);
        ASSERT_AT(t, 0, i, 1, pre[i][1]);
        ASSERT_AT(t, 0, i, 3, 3);
    }
    ASSERT_AT(t, 0, 2, 2, (log(10) + log(12) + log(17)) / 3);
    ASSERT_AT(t, 1, 1, 1, 1e6);
    ASSERT_AT(t, 2, 2, 1, 9.5);
    double x;
    ck_assert_int_ne(tsv_at(t, 0, 3, 0, &x), 0);
    free(t);

    /* variance at the final probe (step 100): 2(l+1)s averaged over s = 1, 2, 3 = 4(l+1) */
    t = slurp(dir, "variance_final.tsv", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tsv_blocks(t, 0, title, sizeof title), 3); /* pre_ln, post_ln, lns */
    for (int l = 0; l <= FX_L; l++) {
        ASSERT_AT(t, 0, l, 0, l);
        ASSERT_AT(t, 0, l, 1, 4.0 * (l + 1));
        ASSERT_AT(t, 0, l, 2, 100);
        ASSERT_AT(t, 1, l, 1, 2000.0 * (l + 1));
        ASSERT_AT(t, 2, l, 1, 1.0 * (l + 1));
    }
    free(t);

    /* evolution: pre_ln (seed 1) and lns, every probe: (p+1)(l+1)s */
    t = slurp(dir, "variance_evolution.tsv", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tsv_blocks(t, 0, title, sizeof title), 2);
    ck_assert_str_eq(title, "# pre_ln (seed 1)");
    tsv_blocks(t, 1, title, sizeof title);
    ck_assert_str_eq(title, "# lns (seed 1)");
    for (int p = 0; p < FX_P; p++)
        for (int l = 0; l <= FX_L; l++) {
            ASSERT_AT(t, 0, p * FX_W + l, 0, 50.0 * (p + 1));
            ASSERT_AT(t, 0, p * FX_W + l, 1, l);
            ASSERT_AT(t, 0, p * FX_W + l, 2, (p + 1) * (l + 1));
            ASSERT_AT(t, 1, p * FX_W + l, 2, (p + 1) * (l + 1) * 0.5);
        }
    free(t);

    /* angular, l + n <= L, rows n = 1..L then l: mean of n s / 20 over s = 1..3 = n / 10;
     * last token: 0.05 n + 0.01 l (seed independent) */
    char *a = slurp(dir, "angular.tsv", NULL), *al = slurp(dir, "angular_last.tsv", NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(al);
    ck_assert_int_eq(tsv_blocks(a, 0, title, sizeof title), 3);
    int row = 0;
    for (int n = 1; n <= FX_L; n++)
        for (int l = 0; l + n <= FX_L; l++, row++) {
            ASSERT_AT(a, 0, row, 0, l);
            ASSERT_AT(a, 0, row, 1, n);
            ASSERT_AT(a, 0, row, 2, n / 10.0);
            ASSERT_AT(al, 0, row, 2, 0.05 * n + 0.01 * l);
        }
    ck_assert_int_eq(row, 6);
    ck_assert_int_ne(tsv_at(a, 0, row, 0, &x), 0);
    free(a);
    free(al);

    /* gradient norm of block i (1-based): 0.1 i s averaged = 0.2 i */
    t = slurp(dir, "grad_norm.tsv", NULL);
    ck_assert_ptr_nonnull(t);
    for (int i = 1; i <= FX_L; i++) {
        ASSERT_AT(t, 0, i - 1, 0, i);
        ASSERT_AT(t, 0, i - 1, 1, 0.2 * i);
    }
    free(t);

    /* pruning: only pre_ln has /prune; deltas from each run's base_loss, then averaged:
     * block 0.5 i, attn 0.1 i, mlp 0.2 i + 0.01 * mean(s) = 0.2 i + 0.02; base 2.2 */
    t = slurp(dir, "prune.tsv", NULL);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(tsv_blocks(t, 0, title, sizeof title), 1);
    ck_assert_str_eq(title, "# pre_ln (3 seeds)");
    for (int i = 1; i <= FX_L; i++) {
        ASSERT_AT(t, 0, i - 1, 0, i);
        ASSERT_AT(t, 0, i - 1, 1, 0.5 * i);
        ASSERT_AT(t, 0, i - 1, 2, 0.1 * i);
        ASSERT_AT(t, 0, i - 1, 3, 0.2 * i + 0.02);
        ASSERT_AT(t, 0, i - 1, 4, 2.2);
    }
    free(t);
    free(logtext);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- plots ------------------------------------------------------------------------------ */

static const char *const figure_names[] = {
    "val_ppl", "variance_final", "variance_evolution", "angular_heatmap",
    "angular_last_heatmap", "grad_norm", "prune_block", "prune_sublayer"};

static void assert_png_and_svg(const char *dir, const char *name) {
    char file[256];
    size_t len = 0;
    snprintf(file, sizeof file, "%s.png", name);
    char *png = slurp(dir, file, &len);
    ck_assert_msg(png != NULL, "%s not written", file);
    ck_assert_msg(len > 1000 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0,
                  "%s: not a PNG (%zu bytes)", file, len);
    free(png);
    snprintf(file, sizeof file, "%s.svg", name);
    char *svg = slurp(dir, file, &len);
    ck_assert_msg(svg != NULL, "%s not written", file);
    ck_assert_msg(len > 1000 && strstr(svg, "<svg") && strstr(svg, "</svg>"),
                  "%s: not an SVG (%zu bytes)", file, len);
    free(svg);
}

static int have_gnuplot(void) {
    return system("command -v gnuplot >/dev/null 2>&1") == 0;
}

START_TEST(every_plot_script_renders_png_and_svg) {
    ck_assert_msg(have_gnuplot(),
                  "gnuplot not installed: scripts/install-deps installs gnuplot-nox");
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "";
    fx_sweep(dir);
    int rc = run_report(dir, NULL, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_OK, "rc %d: %s\nlog:\n%s", rc, err, log);
    for (size_t i = 0; i < sizeof figure_names / sizeof figure_names[0]; i++)
        assert_png_and_svg(dir, figure_names[i]);
    char *md = slurp(dir, "summary.md", NULL);
    ck_assert_ptr_nonnull(md);
    for (size_t i = 0; i < sizeof figure_names / sizeof figure_names[0]; i++) {
        char want[128];
        snprintf(want, sizeof want, "![%s](%s.png)", figure_names[i], figure_names[i]);
        ck_assert_msg(strstr(md, want), "summary.md lacks %s", want);
    }
    /* a second report over the same directory replaces the first (report/ is not read) */
    free(log);
    rc = run_report(dir, NULL, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_OK, "rc %d: %s", rc, err);
    assert_png_and_svg(dir, "val_ppl");
    free(md);
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* A run file without /layers or /prune (probes off): only the perplexity plot exists, and
 * the other figures are skipped with a log line, not an error. */
START_TEST(figures_without_data_are_skipped) {
    ck_assert_msg(have_gnuplot(),
                  "gnuplot not installed: scripts/install-deps installs gnuplot-nox");
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "";
    FxRun r = {.file = "pre_ln-s1.h5", .scheme = "pre_ln", .status = "finished", .seed = 1,
               .n_eval = 2, .eval_step = {0, 10}, .eval_ppl = {100, 50}, .n_train = 1,
               .tokens_per_s = {10}};
    fx_write(dir, &r);
    int rc = run_report(dir, NULL, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_OK, "rc %d: %s\n%s", rc, err, log);
    assert_png_and_svg(dir, "val_ppl");
    ck_assert(!report_file_exists(dir, "variance_final.png"));
    ck_assert(!report_file_exists(dir, "prune_block.png"));
    ck_assert_ptr_nonnull(strstr(log, "variance_final: no data in any run; skipped"));
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* gnuplot missing: one message naming the package, tables still written, no plots. */
START_TEST(gnuplot_missing_names_the_package_and_keeps_the_tables) {
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "";
    fx_sweep(dir);
    ck_assert_int_eq(run_report(dir, NO_GNUPLOT, &log, err, sizeof err), REPORT_NO_GNUPLOT);
    ck_assert_ptr_nonnull(strstr(log, "gnuplot not found"));
    ck_assert_ptr_nonnull(strstr(log, "gnuplot-nox"));
    ck_assert(report_file_exists(dir, "summary.tsv"));
    ck_assert(report_file_exists(dir, "summary.md"));
    ck_assert(report_file_exists(dir, "val_ppl.tsv"));
    ck_assert(!report_file_exists(dir, "val_ppl.png"));
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------- */

START_TEST(missing_or_empty_dir_is_a_clear_error) {
    char err[1024] = "", *log = NULL;
    ck_assert_int_eq(run_report("/tmp/nbreport-does-not-exist", NO_GNUPLOT, &log, err, sizeof err),
                     REPORT_ERR);
    ck_assert_str_eq(err, "/tmp/nbreport-does-not-exist: cannot open run directory: No such "
                          "file or directory");
    free(log);

    char *dir = temp_dir("/tmp/nbreport-XXXXXX");
    ck_assert_int_eq(run_report(dir, NO_GNUPLOT, &log, err, sizeof err), REPORT_ERR);
    char want[1024];
    snprintf(want, sizeof want, "%s: no run files (*.h5) in this directory", dir);
    ck_assert_str_eq(err, want);
    free(log);

    /* checkpoints alone are not run files */
    FxRun ckpt = {.file = "pre_ln-s1.ckpt.h5", .scheme = "pre_ln", .status = "finished",
                  .seed = 1, .n_train = 1};
    fx_write(dir, &ckpt);
    ck_assert_int_eq(run_report(dir, NO_GNUPLOT, &log, err, sizeof err), REPORT_ERR);
    ck_assert_str_eq(err, want);
    free(log);

    /* nothing readable */
    char path[1024];
    snprintf(path, sizeof path, "%s/broken.h5", dir);
    FILE *f = fopen(path, "w");
    fputs("not hdf5 at all", f);
    fclose(f);
    ck_assert_int_eq(run_report(dir, NO_GNUPLOT, &log, err, sizeof err), REPORT_ERR);
    snprintf(want, sizeof want, "%s: none of the 1 *.h5 files is a readable run file", dir);
    ck_assert_str_eq(err, want);
    ck_assert_ptr_nonnull(strstr(log, "broken.h5: not a readable HDF5 file"));
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* Policy: a corrupt .h5, or an HDF5 file that is not a run file, is named on the log,
 * listed under "Skipped files" in summary.md and left out; the report goes on. A dataset
 * of the wrong shape is ignored with a warning. */
START_TEST(corrupt_and_foreign_files_are_named_and_skipped) {
    char *dir = temp_dir("/tmp/nbreport-XXXXXX"), *log = NULL, err[1024] = "", path[1024];
    FxRun good = {.file = "lns-s1.h5", .scheme = "lns", .status = "finished", .seed = 1,
                  .n_eval = 1, .eval_step = {10}, .eval_ppl = {7}, .n_train = 1,
                  .tokens_per_s = {5}};
    fx_layers(&good, 1);
    good.bad_variance_shape = 1;
    fx_write(dir, &good);
    snprintf(path, sizeof path, "%s/broken.h5", dir);
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 4096; i++) fputc((i * 37) & 0xff, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/foreign.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_int_ge(h, 0);
    H5Fclose(h);

    int rc = run_report(dir, NO_GNUPLOT, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_NO_GNUPLOT, "rc %d: %s", rc, err);
    snprintf(path, sizeof path, "%s/broken.h5: not a readable HDF5 file", dir);
    ck_assert_msg(strstr(log, path), "log:\n%s", log);
    snprintf(path, sizeof path, "%s/foreign.h5: not a normbench run file", dir);
    ck_assert_msg(strstr(log, path), "log:\n%s", log);
    ck_assert_msg(strstr(log, "/layers/variance has shape [2, 3], expected [2, 4]; ignored"),
                  "log:\n%s", log);
    char *md = slurp(dir, "summary.md", NULL), *tsv = slurp(dir, "summary.tsv", NULL);
    ck_assert_ptr_nonnull(strstr(md, "## Skipped files\n\n- broken.h5: not a readable HDF5 file"));
    ck_assert_ptr_nonnull(strstr(md, "- foreign.h5: not a normbench run file"));
    ck_assert_str_eq(tsv,
        "scheme\tseed\tstatus\tsteps\tfinal_val_loss\tfinal_val_ppl\ttokens_per_s\tfile\n"
        "lns\t1\tfinished\t10\t1.94591\t7\t5\tlns-s1.h5\n");
    /* the bad variance is dropped; the rest of the run's layer data is used */
    char *v = slurp(dir, "variance_final.tsv", NULL), *g = slurp(dir, "grad_norm.tsv", NULL);
    char title[64];
    ck_assert_int_eq(tsv_blocks(v, 0, title, sizeof title), 0);
    ck_assert_int_eq(tsv_blocks(g, 0, title, sizeof title), 1);
    free(v);
    free(g);
    free(md);
    free(tsv);
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

/* Quotes, spaces and newlines in the directory or scheme names reach gnuplot only as
 * escaped strings: the plots render and nothing is executed. */
START_TEST(hostile_names_cannot_inject_gnuplot_commands) {
    ck_assert_msg(have_gnuplot(),
                  "gnuplot not installed: scripts/install-deps installs gnuplot-nox");
    char *dir = temp_dir("/tmp/nb rep'\"XXXXXX"), *log = NULL, err[1024] = "";
    FxRun r = {.file = "x'; system('touch PWNED1') #.h5",
               .scheme = "evil'; system('touch PWNED2'); x='\nsystem(\"touch PWNED3\")",
               .status = "finished", .seed = 1, .n_eval = 2, .eval_step = {0, 10},
               .eval_ppl = {100, 50}, .n_train = 1, .tokens_per_s = {10}};
    fx_layers(&r, 1);
    fx_write(dir, &r);
    int rc = run_report(dir, NULL, &log, err, sizeof err);
    ck_assert_msg(rc == REPORT_OK, "rc %d: %s\n%s", rc, err, log);
    assert_png_and_svg(dir, "val_ppl");
    assert_png_and_svg(dir, "angular_heatmap");
    for (int i = 1; i <= 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "PWNED%d", i);
        ck_assert_msg(!report_file_exists(dir, name), "%s created", name);
        ck_assert_msg(access(name, F_OK) != 0, "%s created", name);
    }
    char *tsv = slurp(dir, "summary.tsv", NULL);
    ck_assert_ptr_nonnull(strstr(tsv, "evil'; system('touch PWNED2'); x=' system(\"touch PWNED3\")\t1\t"));
    free(tsv);
    free(log);
    remove_tree(dir);
    free(dir);
}
END_TEST

Suite *report_suite(void) {
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("report");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, summary_tables_match_hand_computed_values);
    tcase_add_test(tc, paired_differences_against_pre_ln_by_seed);
    tcase_add_test(tc, figure_data_files_hold_the_seed_means);
    tcase_add_test(tc, every_plot_script_renders_png_and_svg);
    tcase_add_test(tc, figures_without_data_are_skipped);
    tcase_add_test(tc, gnuplot_missing_names_the_package_and_keeps_the_tables);
    tcase_add_test(tc, missing_or_empty_dir_is_a_clear_error);
    tcase_add_test(tc, corrupt_and_foreign_files_are_named_and_skipped);
    tcase_add_test(tc, hostile_names_cannot_inject_gnuplot_commands);
    suite_add_tcase(s, tc);
    return s;
}
