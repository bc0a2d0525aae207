/* test_tables.c — Check suite for issue 8's table reruns: `normbench tables` (src/tables.c)
 * on synthetic run files written with the run-file writer (src/runfile.h) against cells
 * computed by hand, in md, tsv and tex, with diverged, missing, running, failed and
 * single-seed cells; data/paper-results.tsv against the published numbers; the paper
 * configs' shapes, recipes and parameter counts; and scripts/prepare-c4 end to end (a
 * SentencePiece model trained here with spm_train on the Brown corpus, a synthetic C4-style
 * json.gz, token ids round-tripped through shard_read) and on every bad input; and the
 * wall-time estimate of `make tables-gpu` (scripts/tables-gpu) on a CPU-sized model.
 * Runs from the repository root (reads data/, configs/, scripts/; NB_BIN: the binary). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "config.h"
#include "data.h"
#include "run.h"
#include "runfile.h"
#include "model.h"
#include "tables.h"

/* ---- helpers ---------------------------------------------------------------------------- */

static void make_tmpdir(char *out, size_t len) {
    snprintf(out, len, "/tmp/nb-tables-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static void rm_rf(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void mkdir_p(const char *dir) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

static const char *const TINY_RUN_YAML =
    "model: {n_layer: 2, d_model: 8, n_head: 2, d_ff: 16, vocab_size: 256, seq_len: 8}\n"
    "scheme: pre_ln\nseed: 1\ntrain: {steps: 10, batch: 2}\ndata: {source: brown}\n";

/* One run file dir/<scheme>-s<seed>.h5 written by the run-file writer: evaluations at steps
 * 5, 10 (the last one at final_ppl; NaN: no evaluation), then `status`. */
static void write_run(const char *dir, const char *scheme, int seed, const char *status,
                      double final_ppl, long long n_params) {
    char set_scheme[64], set_seed[32], path[1100], err[512];
    snprintf(set_scheme, sizeof set_scheme, "scheme=%s", scheme);
    snprintf(set_seed, sizeof set_seed, "seed=%d", seed);
    const char *sets[] = {set_scheme, set_seed};
    NbConfig cfg;
    ck_assert_msg(config_load_string(&cfg, TINY_RUN_YAML, "tables-test", sets, 2, err,
                                     sizeof err) == 0, "%s", err);
    snprintf(path, sizeof path, "%s/%s-s%d.h5", dir, scheme, seed);
    RunFileInfo info = {.backend = "cpu", .device = "test", .n_params = (size_t)n_params};
    SublayerSpec *specs =
        run_build_specs(&cfg.model, cfg.schemes[0], &cfg.scheme_params, err, sizeof err);
    ck_assert_msg(specs != NULL, "%s", err);
    RunFile *hl = runfile_create(path, &cfg, specs, &info, err, sizeof err);
    ck_assert_msg(hl != NULL, "%s", err);
    free(specs);
    if (!isnan(final_ppl)) {
        ck_assert_int_eq(runfile_append_eval(hl, 5, log(final_ppl) + 1.0, err, sizeof err), 0);
        ck_assert_int_eq(runfile_append_eval(hl, 10, log(final_ppl), err, sizeof err), 0);
    }
    ck_assert_int_eq(runfile_set_status(hl, run_status_parse(status), err, sizeof err), 0);
    ck_assert_int_eq(runfile_close(hl, err, sizeof err), 0);
    config_free(&cfg);
}

/* The synthetic sweep of the table tests (hand-computed cells in the tests below):
 *   130m/  pre_ln s1 26.0, s2 27.0, s3 28.5 (finished); post_ln s1, s2 diverged;
 *          deepnorm s1 finished at ppl 1500 (diverged by the > 1000 rule); lns s1 25.0;
 *          no mix_ln; a checkpoint file and an unreadable junk.h5 beside them
 *   250m/  pre_ln s1 22.0 (finished), s2 diverged; lns s1 running; mix_ln s1 failed
 *   report/ no run files (not a column) */
static void make_sweep(const char *root) {
    char d130[1100], d250[1100], other[1100];
    snprintf(d130, sizeof d130, "%s/130m", root);
    snprintf(d250, sizeof d250, "%s/250m", root);
    snprintf(other, sizeof other, "%s/report", root);
    mkdir_p(d130);
    mkdir_p(d250);
    mkdir_p(other);
    const long long p130 = 134105856, p250 = 247455744;
    write_run(d130, "pre_ln", 1, "finished", 26.0, p130);
    write_run(d130, "pre_ln", 2, "finished", 27.0, p130);
    write_run(d130, "pre_ln", 3, "finished", 28.5, p130);
    write_run(d130, "post_ln", 1, "diverged", 5000.0, p130);
    write_run(d130, "post_ln", 2, "diverged", NAN, p130);
    write_run(d130, "deepnorm", 1, "finished", 1500.0, p130);
    write_run(d130, "lns", 1, "finished", 25.0, p130);
    char junk[1200];
    snprintf(junk, sizeof junk, "%s/junk.h5", d130);
    write_text(junk, "not hdf5\n");
    snprintf(junk, sizeof junk, "%s/pre_ln-s1.ckpt.h5", d130);
    write_text(junk, "a checkpoint is not a run file\n");
    write_run(d250, "pre_ln", 1, "finished", 22.0, p250);
    write_run(d250, "pre_ln", 2, "diverged", NAN, p250);
    write_run(d250, "lns", 1, "running", 30.0, p250);
    write_run(d250, "mix_ln", 1, "failed", NAN, p250);
}

/* tables_print into a malloc'ed string; asserts the return code. */
static char *run_tables(const char *dir, const char *paper, const char *format, int want_rc,
                        char *err, size_t errlen) {
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(out);
    FILE *log = fopen("/dev/null", "w");
    TablesOptions opt = {.paper = paper, .format = format, .log = log};
    err[0] = '\0';
    int rc = tables_print(dir, &opt, out, err, errlen);
    fclose(log);
    fclose(out);
    ck_assert_msg(rc == want_rc, "tables_print returned %d (err: %s)", rc, err);
    return buf;
}

static void assert_contains(const char *haystack, const char *needle) {
    ck_assert_msg(strstr(haystack, needle) != NULL, "expected\n%s\nin\n%s", needle, haystack);
}

/* ---- tables on synthetic run files -------------------------------------------------------- */

/* Hand-computed: pre_ln 130m = {26, 27, 28.5}: mean 27.1667, sample std
 * sqrt(((-7/6)^2 + (-1/6)^2 + (4/3)^2) / 2) = sqrt(19/12) = 1.2583; vs 26.73: +1.6336%.
 * lns 130m 25.00 (1) vs 25.76: -2.9503%. pre_ln 250m 22.00 (1; 1 diverged) vs 21.92:
 * +0.3650%. */
START_TEST(test_tables_md_paper) {
    char root[64], err[512];
    make_tmpdir(root, sizeof root);
    make_sweep(root);
    char *md = run_tables(root, "cod", "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "| scheme | 130M ours | 130M paper | 130M Δ | 250M ours | 250M paper | "
                        "250M Δ | 350M ours | 350M paper | 350M Δ | 1B ours | 1B paper | 1B Δ |\n"
                        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
                        "| Post-LN |");
    assert_contains(md, "\n| Post-LN | diverged | 26.95 | — | — | 1409.79 (diverged) | — | — | "
                        "1368.33 (diverged) | — | — | 1390.75 (diverged) | — |\n");
    assert_contains(md, "\n| DeepNorm | diverged | 27.17 | — | — | 22.77 | — | — | "
                        "1362.59 (diverged) | — | — | 1409.08 (diverged) | — |\n");
    assert_contains(md, "\n| Mix-LN | — | 26.07 | — | failed | 21.39 | — | — | "
                        "1363.21 (diverged) | — | — | 1414.78 (diverged) | — |\n");
    assert_contains(md, "\n| Pre-LN | 27.17 ± 1.26 (3) | 26.73 | +1.6% | 22.00 (1; 1 diverged) | "
                        "21.92 | +0.4% | — | 19.58 | — | — | 17.02 | — |\n");
    assert_contains(md, "\n| LNS | 25.00 (1) | 25.76 | -3.0% | running | 20.35 | — | — | 18.20 | "
                        "— | — | 15.71 | — |\n");
    assert_contains(md, "arXiv:2502.05795, Table 1");
    assert_contains(md, "Parameters: 130M 134.1M, 250M 247.5M.");
    /* rows in the paper's order, nothing else */
    const char *a = strstr(md, "| Post-LN"), *b = strstr(md, "| DeepNorm"), *c = strstr(md, "| Mix-LN"),
               *d = strstr(md, "| Pre-LN"), *e = strstr(md, "| LNS");
    ck_assert(a && b && c && d && e && a < b && b < c && c < d && d < e);
    ck_assert_ptr_null(strstr(e + 1, "\n| "));
    free(md);

    /* the Mix-LN paper: its four rows and sizes; LNS (ours only) follows as an extra row */
    md = run_tables(root, "mixln", "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "| scheme | 71M ours | 71M paper | 71M Δ | 130M ours |");
    assert_contains(md, "\n| Pre-LN | — | 34.77 | — | 27.17 ± 1.26 (3) | 26.78 | +1.4% | "
                        "22.00 (1; 1 diverged) | 21.92 | +0.4% | — | 18.65 | — |\n");
    assert_contains(md, "\n| LNS | — | — | — | 25.00 (1) | — | — | running | — | — | — | — | — |\n");
    ck_assert(strstr(md, "| Mix-LN") < strstr(md, "| LNS"));
    free(md);
    rm_rf(root);
}
END_TEST

/* deepnorm_release (the releases' DeepNorm, which trained the published DeepNorm rows) is
 * labelled as such and stands beside the published DeepNorm value: 27.17 at 130M, so
 * 27.50 is +1.2%. */
START_TEST(test_tables_deepnorm_release_row) {
    char root[64], err[512], d130[1100];
    make_tmpdir(root, sizeof root);
    snprintf(d130, sizeof d130, "%s/130m", root);
    mkdir_p(d130);
    write_run(d130, "deepnorm_release", 1, "finished", 27.5, 134105856);
    char *md = run_tables(root, "cod", "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "\n| DeepNorm (release) | 27.50 (1) | 27.17 | +1.2% | — | 22.77 | — |");
    assert_contains(md, "\n| DeepNorm | — | 27.17 | — |"); /* DeepNet's row: no runs here */
    free(md);
    rm_rf(root);
}
END_TEST

START_TEST(test_tables_tsv_paper) {
    char root[64], err[512];
    make_tmpdir(root, sizeof root);
    make_sweep(root);
    char *tsv = run_tables(root, "cod", "tsv", TABLES_OK, err, sizeof err);
    assert_contains(tsv, "scheme\t130M_mean\t130M_std\t130M_n\t130M_diverged\t130M_runs\t"
                         "130M_paper\t130M_paper_diverged\t130M_rel_diff_pct\t250M_mean\t");
    assert_contains(tsv, "\npre_ln\t27.1667\t1.2583\t3\t0\t3\t26.73\t0\t1.6336\t"
                         "22.0000\t\t1\t1\t2\t21.92\t0\t0.3650\t"
                         "\t\t0\t0\t0\t19.58\t0\t\t\t\t0\t0\t0\t17.02\t0\t\n");
    assert_contains(tsv, "\npost_ln\t\t\t0\t2\t2\t26.95\t0\t\t\t\t0\t0\t0\t1409.79\t1\t\t");
    assert_contains(tsv, "\ndeepnorm\t\t\t0\t1\t1\t27.17\t0\t\t");
    assert_contains(tsv, "\nlns\t25.0000\t\t1\t0\t1\t25.76\t0\t-2.9503\t\t\t0\t0\t1\t20.35\t0\t\t");
    assert_contains(tsv, "\nmix_ln\t\t\t0\t0\t0\t26.07\t0\t\t\t\t0\t0\t1\t21.39\t0\t\t");
    /* every line has the header's number of fields */
    size_t fields = 0, line_fields = 0;
    for (const char *p = tsv; *p; p++) {
        if (*p == '\t') line_fields++;
        if (*p == '\n') {
            if (!fields) fields = line_fields;
            ck_assert_uint_eq(line_fields, fields);
            line_fields = 0;
        }
    }
    ck_assert_uint_eq(fields, 4 * 8);
    free(tsv);
    rm_rf(root);
}
END_TEST

START_TEST(test_tables_tex_paper) {
    char root[64], err[512];
    make_tmpdir(root, sizeof root);
    make_sweep(root);
    char *tex = run_tables(root, "cod", "tex", TABLES_OK, err, sizeof err);
    assert_contains(tex, "\\begin{tabular}{lrrrrrrrrrrrr}\n\\toprule\n"
                         " & \\multicolumn{3}{c}{130M} & \\multicolumn{3}{c}{250M} & "
                         "\\multicolumn{3}{c}{350M} & \\multicolumn{3}{c}{1B} \\\\\n"
                         "\\cmidrule(lr){2-4} \\cmidrule(lr){5-7} \\cmidrule(lr){8-10} "
                         "\\cmidrule(lr){11-13}\n"
                         "Scheme & Ours & Paper & $\\Delta$ & Ours & Paper & $\\Delta$ & Ours & "
                         "Paper & $\\Delta$ & Ours & Paper & $\\Delta$ \\\\\n\\midrule\n");
    assert_contains(tex, "\nPost-LN & diverged & 26.95 & --- & --- & 1409.79$^\\dagger$ & --- & "
                         "--- & 1368.33$^\\dagger$ & --- & --- & 1390.75$^\\dagger$ & --- \\\\\n");
    assert_contains(tex, "\nPre-LN & $27.17 \\pm 1.26$ (3) & 26.73 & $+1.6\\%$ & $22.00$ (1; 1 "
                         "diverged) & 21.92 & $+0.4\\%$ & --- & 19.58 & --- & --- & 17.02 & --- \\\\\n");
    assert_contains(tex, "\nLNS & $25.00$ (1) & 25.76 & $-3.0\\%$ & running & 20.35 & --- & --- & "
                         "18.20 & --- & --- & 15.71 & --- \\\\\n");
    assert_contains(tex, "\\bottomrule\n\\end{tabular}\n");
    assert_contains(tex, "$^\\dagger$ diverged as published");
    ck_assert_ptr_null(strstr(tex, "±")); /* pure ASCII for pdflatex */
    ck_assert_ptr_null(strstr(tex, "—"));
    free(tex);
    rm_rf(root);
}
END_TEST

/* The small ladder: no published column; columns by parameter count, not by name; rows in
 * schemes.c order; a directory holding run files itself is one column named after it. */
START_TEST(test_tables_ours_only) {
    char root[64], err[512], small[128], big[128];
    make_tmpdir(root, sizeof root);
    snprintf(small, sizeof small, "%s/zz_small", root);
    snprintf(big, sizeof big, "%s/aa_big", root);
    mkdir_p(small);
    mkdir_p(big);
    write_run(small, "lns", 1, "finished", 40.0, 1000);
    write_run(small, "lns", 2, "finished", 44.0, 1000);
    write_run(small, "pre_ln", 1, "finished", 50.0, 1000);
    write_run(big, "pre_ln", 1, "finished", 30.0, 2000);
    write_run(big, "post_ln", 1, "finished", 2000.0, 2000);
    char *md = run_tables(root, NULL, "md", TABLES_OK, err, sizeof err);
    /* lns: mean 42, std sqrt((4 + 4) / 1) = 2.8284 */
    assert_contains(md, "| scheme | zz_small | aa_big |\n|---|---:|---:|\n"
                        "| Pre-LN | 50.00 (1) | 30.00 (1) |\n"
                        "| Post-LN | — | diverged |\n"
                        "| LNS | 42.00 ± 2.83 (2) | — |\n");
    assert_contains(md, "Parameters: zz_small 1K, aa_big 2K.");
    ck_assert_ptr_null(strstr(md, "paper"));
    free(md);
    char *tsv = run_tables(root, "", "tsv", TABLES_OK, err, sizeof err);
    assert_contains(tsv, "scheme\tzz_small_mean\tzz_small_std\tzz_small_n\tzz_small_diverged\t"
                         "zz_small_runs\taa_big_mean\taa_big_std\taa_big_n\taa_big_diverged\t"
                         "aa_big_runs\n"
                         "pre_ln\t50.0000\t\t1\t0\t1\t30.0000\t\t1\t0\t1\n"
                         "post_ln\t\t\t0\t0\t0\t\t\t0\t1\t1\n"
                         "lns\t42.0000\t2.8284\t2\t0\t2\t\t\t0\t0\t0\n");
    free(tsv);
    char *tex = run_tables(root, NULL, "tex", TABLES_OK, err, sizeof err);
    assert_contains(tex, "\\begin{tabular}{lrr}\n\\toprule\nScheme & zz\\_small & aa\\_big \\\\\n"
                         "\\midrule\nPre-LN & $50.00$ (1) & $30.00$ (1) \\\\\n"
                         "Post-LN & --- & diverged \\\\\nLNS & $42.00 \\pm 2.83$ (2) & --- \\\\\n"
                         "\\bottomrule\n");
    ck_assert_ptr_null(strstr(tex, "dagger"));
    free(tex);
    /* one sweep directory given directly: one column named after it (trailing slash too) */
    char direct[160];
    snprintf(direct, sizeof direct, "%s/", big);
    md = run_tables(direct, NULL, "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "| scheme | aa_big |\n|---|---:|\n| Pre-LN | 30.00 (1) |\n"
                        "| Post-LN | diverged |\n");
    free(md);
    rm_rf(root);
}
END_TEST

/* --paper cod-ablation: the ablation's rows in the paper's order with the schemes' labels from
 * the scheme table; a run of one of them fills its cell; admin and group_ln (not built) keep
 * their names and the published value alone. */
START_TEST(test_tables_cod_ablation) {
    char root[64], err[512], d130[128];
    make_tmpdir(root, sizeof root);
    snprintf(d130, sizeof d130, "%s/130m", root);
    mkdir_p(d130);
    write_run(d130, "skipinit", 1, "finished", 28.0, 134105856);
    char *md = run_tables(root, "cod-ablation", "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "\n| LayerScale | — | 27.93 | — |\n| SkipInit | 28.00 (1) | 27.41 | +2.2% |\n"
                        "| Depth-Scaled Init | — | 26.95 | — |\n| Scaled Init | — | 26.04 | — |\n"
                        "| LNS + Scaled Init | — | 25.80 | — |\n| Sandwich-LN | — | 26.51 | — |\n"
                        "| admin | — | 27.91 | — |\n| group_ln | — | 28.01 | — |\n");
    free(md);
}
END_TEST

START_TEST(test_tables_errors) {
    char root[64], err[512], path[256];
    make_tmpdir(root, sizeof root);
    free(run_tables(root, NULL, "html", TABLES_ERR, err, sizeof err));
    assert_contains(err, "--format: unknown format 'html' (md, tsv or tex)");
    free(run_tables(root, NULL, "md", TABLES_ERR, err, sizeof err));
    assert_contains(err, "no run files (*.h5)");
    free(run_tables(root, "gpt2", "md", TABLES_ERR, err, sizeof err));
    assert_contains(err, "--paper: no published perplexities for 'gpt2'");
    assert_contains(err, "(it has: cod, mixln, cod-ablation)");
    snprintf(path, sizeof path, "%s/nope", root);
    free(run_tables(path, NULL, "md", TABLES_ERR, err, sizeof err));
    assert_contains(err, "not a run directory");
    ck_assert_ptr_null(strchr(err, '\n'));
    /* no runs yet, but a paper: the published table with every cell of ours missing */
    char *md = run_tables(root, "mixln", "md", TABLES_OK, err, sizeof err);
    assert_contains(md, "\n| Post-LN | — | 35.18 | — | — | 26.95 | — | — | 1409.09 (diverged) | — "
                        "| — | 1411.54 (diverged) | — |\n");
    free(md);
    /* a malformed results file: FILE:LINE */
    snprintf(path, sizeof path, "%s/results.tsv", root);
    write_text(path, "# c\nsource\tarxiv\ttable\tsize\tscheme\tmetric\tvalue\tdiverged\n"
                     "cod\t1\t1\t130M\tpre_ln\tval_ppl\tabc\t0\n");
    PaperResults r;
    ck_assert_int_eq(tables_load_results(path, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "results.tsv:3: bad value") != NULL, "%s", err);
    write_text(path, "source\tarxiv\n");
    ck_assert_int_eq(tables_load_results(path, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "results.tsv:1: expected 8 tab-separated fields") != NULL, "%s", err);
    write_text(path, "source\tarxiv\ttable\tsize\tscheme\tmetric\tvalue\tdiverged\n"
                     "cod\t1\t1\t130M\tpre_ln\tval_ppl\t12.5\tyes\n");
    ck_assert_int_eq(tables_load_results(path, &r, err, sizeof err), -1);
    ck_assert_msg(strstr(err, "results.tsv:2: bad diverged (0 or 1)") != NULL, "%s", err);
    TablesOptions opt = {.paper = "cod", .results_path = path};
    FILE *out = fopen("/dev/null", "w");
    ck_assert_int_eq(tables_print(root, &opt, out, err, sizeof err), TABLES_ERR);
    fclose(out);
    rm_rf(root);
}
END_TEST

/* ---- the published results ---------------------------------------------------------------- */

START_TEST(test_paper_results_file) {
    /* the numbers, as published */
    static const struct {
        const char *source, *size, *scheme;
        double value;
    } want[] = {
        {"cod", "130M", "post_ln", 26.95},   {"cod", "250M", "post_ln", 1409.79},
        {"cod", "350M", "post_ln", 1368.33}, {"cod", "1B", "post_ln", 1390.75},
        {"cod", "130M", "deepnorm", 27.17},  {"cod", "250M", "deepnorm", 22.77},
        {"cod", "350M", "deepnorm", 1362.59}, {"cod", "1B", "deepnorm", 1409.08},
        {"cod", "130M", "mix_ln", 26.07},    {"cod", "250M", "mix_ln", 21.39},
        {"cod", "350M", "mix_ln", 1363.21},  {"cod", "1B", "mix_ln", 1414.78},
        {"cod", "130M", "pre_ln", 26.73},    {"cod", "250M", "pre_ln", 21.92},
        {"cod", "350M", "pre_ln", 19.58},    {"cod", "1B", "pre_ln", 17.02},
        {"cod", "130M", "lns", 25.76},       {"cod", "250M", "lns", 20.35},
        {"cod", "350M", "lns", 18.20},       {"cod", "1B", "lns", 15.71},
        {"mixln", "71M", "post_ln", 35.18},  {"mixln", "130M", "post_ln", 26.95},
        {"mixln", "250M", "post_ln", 1409.09}, {"mixln", "1B", "post_ln", 1411.54},
        {"mixln", "71M", "deepnorm", 34.87}, {"mixln", "130M", "deepnorm", 27.17},
        {"mixln", "250M", "deepnorm", 22.77}, {"mixln", "1B", "deepnorm", 1410.94},
        {"mixln", "71M", "pre_ln", 34.77},   {"mixln", "130M", "pre_ln", 26.78},
        {"mixln", "250M", "pre_ln", 21.92},  {"mixln", "1B", "pre_ln", 18.65},
        {"mixln", "71M", "mix_ln", 33.12},   {"mixln", "130M", "mix_ln", 26.07},
        {"mixln", "250M", "mix_ln", 21.39},  {"mixln", "1B", "mix_ln", 18.18},
        /* the Curse of Depth ablation (LLaMA-130M), as quoted in issue 13 */
        {"cod-ablation", "130M", "layerscale", 27.93}, {"cod-ablation", "130M", "skipinit", 27.41},
        {"cod-ablation", "130M", "depth_scaled_init", 26.95},
        {"cod-ablation", "130M", "scaled_init", 26.04},
        {"cod-ablation", "130M", "lns_scaled_init", 25.80},
        {"cod-ablation", "130M", "sandwich_ln", 26.51}, {"cod-ablation", "130M", "admin", 27.91},
        {"cod-ablation", "130M", "group_ln", 28.01},
    };
    PaperResults r;
    char err[512];
    ck_assert_msg(tables_load_results(TABLES_RESULTS_DEFAULT, &r, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(r.count, sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const PaperResult *p = tables_find_result(&r, want[i].source, want[i].size,
                                                  want[i].scheme, "val_ppl");
        ck_assert_msg(p != NULL, "%s %s %s missing", want[i].source, want[i].size, want[i].scheme);
        ck_assert_double_eq_tol(p->value, want[i].value, 1e-9);
        ck_assert_int_eq(p->diverged, want[i].value > 1000.0);
        ck_assert_str_eq(p->table, strcmp(want[i].source, "cod-ablation") ? "1" : "abl");
        ck_assert_str_eq(p->arxiv, strcmp(want[i].source, "mixln") ? "2502.05795" : "2412.13795");
    }
    ck_assert_ptr_nonnull(tables_find_result(&r, "cod", "130m", "lns", "val_ppl")); /* any case */
    tables_free_results(&r);
}
END_TEST

/* ---- the paper configs ---------------------------------------------------------------------- */

START_TEST(test_paper_configs) {
    static const struct {
        const char *paper, *size;
        double nominal;
        int L, d, ff, heads, steps, warmup;
        double lr;
        int n_schemes;
    } want[] = {
        {"cod", "130m", 130e6, 12, 768, 2048, 12, 20000, 2000, 1e-3, 5},
        {"cod", "250m", 250e6, 24, 768, 2560, 16, 40000, 4000, 1e-3, 5},
        {"cod", "350m", 350e6, 24, 1024, 2736, 16, 60000, 6000, 5e-4, 5},
        {"cod", "1b", 1e9, 24, 2048, 5461, 32, 100000, 1000, 5e-4, 5},
        {"mixln", "71m", 71e6, 12, 512, 1368, 8, 10000, 1000, 1e-3, 4},
        {"mixln", "130m", 130e6, 12, 768, 2048, 12, 20000, 2000, 1e-3, 4},
        {"mixln", "250m", 250e6, 24, 768, 2560, 16, 40000, 4000, 1e-3, 4},
        {"mixln", "1b", 1e9, 24, 2048, 5461, 32, 100000, 1000, 5e-4, 4},
        {"cod-ablation", "130m", 130e6, 12, 768, 2048, 12, 20000, 2000, 1e-3, 6},
    };
    PaperResults res;
    char err[512];
    ck_assert_msg(tables_load_results(TABLES_RESULTS_DEFAULT, &res, err, sizeof err) == 0, "%s", err);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "configs/paper/%s/%s.yaml", want[i].paper, want[i].size);
        NbConfig c;
        ck_assert_msg(config_load(&c, path, NULL, 0, err, sizeof err) == 0, "%s", err);
        const ModelConfig *m = &c.model;
        ck_assert_str_eq(c.name, want[i].size);
        ck_assert_int_eq(m->n_layer, want[i].L);
        ck_assert_int_eq(m->d_model, want[i].d);
        ck_assert_int_eq(m->d_ff, want[i].ff);
        ck_assert_int_eq(m->n_head, want[i].heads);
        ck_assert_int_eq(m->vocab_size, 32000);
        ck_assert_int_eq(m->seq_len, 256);
        ck_assert_int_eq(c.train.batch * c.train.grad_accum, 512);
        ck_assert_int_eq(c.train.steps, want[i].steps);
        ck_assert_int_eq(c.train.warmup, want[i].warmup);
        ck_assert_double_eq_tol(c.train.lr, want[i].lr, 1e-12);
        ck_assert_double_eq_tol(c.train.min_lr, want[i].lr / 10, 1e-12);
        ck_assert_int_eq(c.train.schedule, NB_SCHED_COSINE);
        ck_assert(c.train.weight_decay == 0 && c.train.grad_clip == 0);
        ck_assert(c.train.beta1 == 0.9 && c.train.beta2 == 0.999);
        ck_assert_int_eq(c.backend.name, NB_BACKEND_CUDA);
        ck_assert_int_eq(c.data.source, NB_DATA_SHARDS);
        /* one file is one table column: exactly the paper's rows */
        ck_assert_int_eq(c.n_schemes, want[i].n_schemes);
        for (int s = 0; s < c.n_schemes; s++)
            ck_assert_msg(tables_find_result(&res, want[i].paper, want[i].size,
                                             tables_published_scheme(c.schemes[s]->name),
                                             "val_ppl") != NULL,
                          "%s: %s is not in the paper's table", path, c.schemes[s]->name);
        /* release-faithful (issue 14): the releases' DeepNorm, their embedding std sqrt(2/5),
         * probes of the same token count at every size, no silent second epoch */
        int has_release = 0;
        for (int s = 0; s < c.n_schemes; s++) {
            ck_assert_str_ne(c.schemes[s]->name, "deepnorm");
            has_release |= !strcmp(c.schemes[s]->name, "deepnorm_release");
        }
        /* the releases' DeepNorm wherever the paper's table has a DeepNorm row */
        if (tables_find_result(&res, want[i].paper, want[i].size, "deepnorm", "val_ppl"))
            ck_assert_msg(has_release, "%s: no deepnorm_release column", path);
        ck_assert_float_eq_tol(m->embed_std, (float)sqrt(2.0 / 5.0), 1e-6);
        ck_assert_int_eq(c.metrics.probe_tokens, 65536);
        ck_assert_int_eq(c.data.repeat, NB_REPEAT_ERROR);
        /* parameter count (untied LM head) within 10% of the size in the name; the papers'
         * "1B" is the GaLore/LLaMA-1B shape, 1.339B parameters, counted however one likes
         * (tied 1.274B, without embeddings 1.208B): its exact count is asserted instead */
        ParamTable t;
        ck_assert_int_eq(param_table_build(m, NULL, &t), 0);
        double V = 32000, d = m->d_model, L = m->n_layer, ff = m->d_ff;
        ck_assert_uint_eq(t.total, (size_t)(2 * V * d + L * (4 * d * d + 3 * d * ff + 2 * d) + d));
        double rel = (double)t.total / want[i].nominal - 1.0;
        if (!strcmp(want[i].size, "1b"))
            ck_assert_uint_eq(t.total, 1339082752u);
        else
            ck_assert_msg(fabs(rel) <= 0.10, "%s: %zu parameters, %+.1f%% from %s", path,
                          t.total, 100 * rel, want[i].size);
        param_table_free(&t);
        config_free(&c);
    }
    tables_free_results(&res);
}
END_TEST

/* ---- prepare-c4 ------------------------------------------------------------------------------- */

/* Trains a small SentencePiece model dir/m.model on the first 25 Brown documents. */
static void train_spm(const char *dir) {
    unsigned char *buf;
    size_t len;
    char err[512], path[256], cmd[1024];
    ck_assert_msg(data_read_file(DATA_DEFAULT_CORPUS, &buf, &len, err, sizeof err) == 0, "%s", err);
    size_t cut = 0;
    for (int lines = 0; cut < len && lines < 25; cut++)
        if (buf[cut] == '\n') lines++;
    snprintf(path, sizeof path, "%s/brown25.txt", dir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(buf, 1, cut, f), cut);
    fclose(f);
    free(buf);
    snprintf(cmd, sizeof cmd,
             "spm_train --input='%s' --model_prefix='%s/m' --vocab_size=500 --model_type=unigram "
             "--character_coverage=1.0 --max_sentence_length=100000 --num_threads=1 "
             "--minloglevel=2 >'%s/spm_train.log' 2>&1",
             path, dir, dir);
    ck_assert_msg(system(cmd) == 0, "spm_train failed (is Debian's sentencepiece installed? "
                                    "scripts/install-deps): see %s/spm_train.log", dir);
}

/* The documents of the synthetic C4 file: JSON escapes, newlines, quotes, non-ASCII, an empty
 * text, and Brown sentences. `texts` are the decoded strings with newlines as spaces (what
 * prepare-c4 hands spm_encode). */
static const char *const DOC_JSON[] = {
    "{\"text\":\"The jury said it did find that many of Georgia's registration laws are outmoded.\","
    "\"timestamp\":\"2019-04-25T12:57:54Z\",\"url\":\"https://example.com/1\"}",
    "{\"url\":\"https://example.com/2\",\"text\":\"Line one\\nLine two\\n\\nLine three\"}",
    "{\"text\":\"Quotes \\\"inside\\\" and a backslash \\\\ here.\"}",
    "{\"text\":\"caf\\u00e9 na\\u00efve \\u2014 \\u4e2d\\u6587 \\ud83d\\ude00\"}",
    "{\"text\":\"\"}",
    "{\"text\":\"It urged that the city take steps to remedy this problem.\"}",
    "{\"text\":\"The grand jury commented on a number of other topics.\"}",
    "{\"text\":\"Merger proposed. However, the jury said it believes these two offices should be combined.\"}",
    "{\"text\":\"The September-October term jury had been charged by Fulton Superior Court Judge.\"}",
    "{\"text\":\"Only a relative handful of such reports was received, the jury said.\"}",
};
static const char *const DOC_TEXT[] = {
    "The jury said it did find that many of Georgia's registration laws are outmoded.",
    "Line one Line two  Line three",
    "Quotes \"inside\" and a backslash \\ here.",
    "caf\xc3\xa9 na\xc3\xafve \xe2\x80\x94 \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",
    "",
    "It urged that the city take steps to remedy this problem.",
    "The grand jury commented on a number of other topics.",
    "Merger proposed. However, the jury said it believes these two offices should be combined.",
    "The September-October term jury had been charged by Fulton Superior Court Judge.",
    "Only a relative handful of such reports was received, the jury said.",
};
#define N_DOCS (sizeof DOC_JSON / sizeof DOC_JSON[0])

static void write_gz(const char *path, size_t first, size_t count) {
    gzFile g = gzopen(path, "wb");
    ck_assert_ptr_nonnull(g);
    for (size_t i = first; i < first + count; i++) {
        ck_assert_int_gt(gzputs(g, DOC_JSON[i]), 0);
        ck_assert_int_eq(gzputc(g, '\n'), '\n');
    }
    ck_assert_int_eq(gzclose(g), Z_OK);
}

/* Ids of each document per spm_encode directly: ids[i] (malloc'ed), n[i]. */
static void expected_ids(const char *dir, uint32_t **ids, size_t *n) {
    char in[256], out[256], cmd[1024];
    snprintf(in, sizeof in, "%s/docs.txt", dir);
    snprintf(out, sizeof out, "%s/docs.ids", dir);
    FILE *f = fopen(in, "w");
    ck_assert_ptr_nonnull(f);
    for (size_t i = 0; i < N_DOCS; i++) fprintf(f, "%s\n", DOC_TEXT[i]);
    fclose(f);
    snprintf(cmd, sizeof cmd, "spm_encode --model='%s/m.model' --output_format=id "
             "--extra_options=eos <'%s' >'%s'", dir, in, out);
    ck_assert_int_eq(system(cmd), 0);
    f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char line[65536];
    for (size_t i = 0; i < N_DOCS; i++) {
        ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
        ids[i] = malloc(sizeof line * sizeof **ids);
        n[i] = 0;
        char *p = line, *end;
        for (unsigned long v; (v = strtoul(p, &end, 10)), end != p; p = end) ids[i][n[i]++] = (uint32_t)v;
        ck_assert_uint_gt(n[i], 0); /* at least the end-of-sentence id */
    }
    fclose(f);
}

static int run_status(const char *cmd) {
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void assert_shard(const char *path, const uint16_t *want, size_t n_want) {
    uint16_t *tok;
    size_t n;
    char err[512];
    ck_assert_msg(shard_read(path, &tok, &n, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(n, n_want);
    for (size_t i = 0; i < n; i++) ck_assert_msg(tok[i] == want[i], "%s: token %zu: %u != %u", path, i, tok[i], want[i]);
    free(tok);
}

START_TEST(test_prepare_c4_roundtrip) {
    char dir[64], cmd[2048], path[256];
    make_tmpdir(dir, sizeof dir);
    train_spm(dir);
    uint32_t *ids[N_DOCS];
    size_t n[N_DOCS];
    expected_ids(dir, ids, n);
    uint16_t *want_train = malloc(65536 * sizeof *want_train), *want_val = malloc(65536 * sizeof *want_val);
    size_t n_train = 0, n_val = 0;

    /* 1: one train file, no validation file: every 3rd document (3, 6, 9) is validation */
    snprintf(path, sizeof path, "%s/c4-train.00000-of-01024.json.gz", dir);
    write_gz(path, 0, N_DOCS);
    snprintf(cmd, sizeof cmd, "scripts/prepare-c4 --quiet --spm '%s/m.model' --out '%s/out1' "
             "--val-every 3 '%s' 2>'%s/err1'", dir, dir, path, dir);
    ck_assert_int_eq(run_status(cmd), 0);
    for (size_t i = 0; i < N_DOCS; i++)
        for (size_t k = 0; k < n[i]; k++) {
            ck_assert_uint_lt(ids[i][k], 500);
            if ((i + 1) % 3 == 0) want_val[n_val++] = (uint16_t)ids[i][k];
            else want_train[n_train++] = (uint16_t)ids[i][k];
        }
    snprintf(path, sizeof path, "%s/out1/train.bin", dir);
    assert_shard(path, want_train, n_train);
    snprintf(path, sizeof path, "%s/out1/val.bin", dir);
    assert_shard(path, want_val, n_val);
    snprintf(path, sizeof path, "%s/out1/prepare-c4.tsv", dir);
    char *tsv = read_text(path);
    assert_contains(tsv, "\ttrain\t10\t");
    free(tsv);

    /* the same split into llm.c-style shards of at most 40 tokens: the same tokens in order */
    snprintf(path, sizeof path, "%s/c4-train.00000-of-01024.json.gz", dir);
    snprintf(cmd, sizeof cmd, "scripts/prepare-c4 --quiet --spm '%s/m.model' --out '%s/out3' "
             "--val-every 3 --shard-tokens 40 '%s' 2>'%s/err3'", dir, dir, path, dir);
    ck_assert_int_eq(run_status(cmd), 0);
    size_t got = 0, shards = 0;
    for (;; shards++) {
        snprintf(path, sizeof path, "%s/out3/train_%06zu.bin", dir, shards);
        if (access(path, F_OK) != 0) break;
        uint16_t *tok;
        size_t nt;
        char err[512];
        ck_assert_msg(shard_read(path, &tok, &nt, err, sizeof err) == 0, "%s", err);
        ck_assert_uint_le(nt, 40);
        for (size_t k = 0; k < nt; k++) ck_assert_uint_eq(tok[k], want_train[got + k]);
        got += nt;
        free(tok);
    }
    ck_assert_uint_eq(got, n_train);
    ck_assert_uint_eq(shards, (n_train + 39) / 40);
    snprintf(path, sizeof path, "%s/out3/train.bin", dir);
    ck_assert_int_ne(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/out3/val.bin", dir);
    assert_shard(path, want_val, n_val);

    /* 2: a train file and a C4 validation file, -j 2: val.bin = the validation file */
    snprintf(path, sizeof path, "%s/c4-train.00001-of-01024.json.gz", dir);
    write_gz(path, 0, 6);
    snprintf(path, sizeof path, "%s/c4-validation.00000-of-00008.json.gz", dir);
    write_gz(path, 6, N_DOCS - 6);
    snprintf(cmd, sizeof cmd, "scripts/prepare-c4 --spm '%s/m.model' --out '%s/out2' -j 2 "
             "'%s/c4-train.00001-of-01024.json.gz' '%s' 2>'%s/err2'", dir, dir, dir, path, dir);
    ck_assert_int_eq(run_status(cmd), 0);
    n_train = n_val = 0;
    for (size_t i = 0; i < N_DOCS; i++)
        for (size_t k = 0; k < n[i]; k++) {
            if (i >= 6) want_val[n_val++] = (uint16_t)ids[i][k];
            else want_train[n_train++] = (uint16_t)ids[i][k];
        }
    snprintf(path, sizeof path, "%s/out2/train.bin", dir);
    assert_shard(path, want_train, n_train);
    snprintf(path, sizeof path, "%s/out2/val.bin", dir);
    assert_shard(path, want_val, n_val);
    snprintf(path, sizeof path, "%s/err2", dir); /* progress: one line per file and a total */
    char *progress = read_text(path);
    assert_contains(progress, "prepare-c4: ");
    assert_contains(progress, "train.bin");
    /* and which paper columns the split covers (steps x 512 x 256 + 1 tokens each) */
    assert_contains(progress, "enough for: none; too few for: 71M (1.31B tokens) 130M (2.62B "
                              "tokens) 250M (5.24B tokens) 350M (7.86B tokens) 1B (13.1B tokens)\n");
    free(progress);

    /* the shards feed the trainer's loader */
    Dataset ds;
    char err[512], tr[256], va[256];
    snprintf(tr, sizeof tr, "%s/out2/train.bin", dir);
    snprintf(va, sizeof va, "%s/out2/val.bin", dir);
    ck_assert_msg(dataset_load_shards(&ds, tr, va, 8, 500, err, sizeof err) == 0, "%s", err);
    dataset_free(&ds);

    for (size_t i = 0; i < N_DOCS; i++) free(ids[i]);
    free(want_train);
    free(want_val);
    rm_rf(dir);
}
END_TEST

/* Runs prepare-c4 with `args`; asserts exit 2, exactly one stderr line holding `phrase`, and
 * no shard left behind. */
static void assert_bad_input(const char *dir, const char *args, const char *phrase) {
    char cmd[2048], errp[256], out[256];
    snprintf(out, sizeof out, "%s/out-bad", dir);
    snprintf(errp, sizeof errp, "%s/err-bad", dir);
    snprintf(cmd, sizeof cmd, "scripts/prepare-c4 --quiet --out '%s' %s 2>'%s' >/dev/null", out,
             args, errp);
    ck_assert_int_eq(run_status(cmd), 2);
    char *msg = read_text(errp);
    size_t lines = 0;
    for (const char *p = msg; *p; p++) lines += *p == '\n';
    ck_assert_msg(lines == 1 && msg[strlen(msg) - 1] == '\n', "want one line, got:\n%s", msg);
    ck_assert_msg(strncmp(msg, "prepare-c4: error: ", 19) == 0, "%s", msg);
    ck_assert_msg(strstr(msg, phrase) != NULL, "want '%s' in: %s", phrase, msg);
    snprintf(cmd, sizeof cmd, "%s/train.bin", out);
    ck_assert_int_ne(access(cmd, F_OK), 0);
    free(msg);
}

START_TEST(test_prepare_c4_bad_inputs) {
    char dir[64], args[1024], good[256], path[256];
    make_tmpdir(dir, sizeof dir);
    train_spm(dir);
    snprintf(good, sizeof good, "%s/c4-train.json.gz", dir);
    write_gz(good, 0, N_DOCS);

    /* a missing SentencePiece model; a file that is not one */
    snprintf(args, sizeof args, "--spm '%s/none.model' '%s'", dir, good);
    assert_bad_input(dir, args, "none.model: no such SentencePiece model file");
    snprintf(args, sizeof args, "--spm '%s' '%s'", good, good);
    assert_bad_input(dir, args, "not a SentencePiece model");

    /* a corrupt json.gz: a valid gzip cut in half; bytes that are not gzip at all */
    snprintf(path, sizeof path, "%s/cut.json.gz", dir);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "head -c $(( $(stat -c %%s '%s') / 2 )) '%s' >'%s'", good, good, path);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--spm '%s/m.model' '%s'", dir, path);
    assert_bad_input(dir, args, "cut.json.gz: not a valid gzip file, or truncated");
    snprintf(path, sizeof path, "%s/garbage.json.gz", dir);
    write_text(path, "this is not gzip\n");
    snprintf(args, sizeof args, "--spm '%s/m.model' '%s'", dir, path);
    assert_bad_input(dir, args, "garbage.json.gz: not a valid gzip file");

    /* gzip fine, but not C4's JSON lines */
    snprintf(path, sizeof path, "%s/notext.json.gz", dir);
    gzFile g = gzopen(path, "wb");
    gzputs(g, "{\"text\":\"ok\"}\n{\"url\":\"x\"}\n");
    gzclose(g);
    snprintf(args, sizeof args, "--spm '%s/m.model' '%s'", dir, path);
    assert_bad_input(dir, args, "not JSON lines with a string field \"text\"");

    /* a model whose ids go above 65535: a character model of 66,003 pieces */
    snprintf(path, sizeof path, "%s/chars.txt", dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    int n = 0;
    static const unsigned ranges[][2] = {{0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x20000, 0x2A6DF}};
    for (size_t r = 0; r < 3 && n < 66000; r++)
        for (unsigned c = ranges[r][0]; c <= ranges[r][1] && n < 66000; c++, n++) {
            if (c < 0x10000)
                fprintf(f, "%c%c%c", 0xE0 | (c >> 12), 0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F));
            else
                fprintf(f, "%c%c%c%c", 0xF0 | (c >> 18), 0x80 | ((c >> 12) & 0x3F),
                        0x80 | ((c >> 6) & 0x3F), 0x80 | (c & 0x3F));
            if (n % 100 == 99) fputc('\n', f);
        }
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && spm_train --input=chars.txt --model_prefix=big "
             "--vocab_size=66003 --model_type=char --character_coverage=1.0 --num_threads=1 "
             "--minloglevel=2 >/dev/null 2>&1", dir);
    ck_assert_int_eq(system(cmd), 0);
    snprintf(args, sizeof args, "--spm '%s/big.model' '%s'", dir, good);
    assert_bad_input(dir, args, "token ids up to 66002 do not fit the shards' uint16 (max 65535)");

    /* usage: a missing input, no input */
    snprintf(args, sizeof args, "--spm '%s/m.model' '%s/absent.json.gz'", dir, dir);
    assert_bad_input(dir, args, "absent.json.gz: no such input file");
    snprintf(args, sizeof args, "--spm '%s/m.model'", dir);
    assert_bad_input(dir, args, "no input FILES");
    rm_rf(dir);
}
END_TEST

/* ---- make tables-gpu's estimate ------------------------------------------------------------ */

/* scripts/tables-gpu --estimate-only on the 130m config shrunk to a CPU-sized model (the
 * same script a GPU runs; only --set differs): token budget, FLOPs and an estimate from a
 * measured probe; a missing shard is one line and exit 2. */
START_TEST(test_tables_gpu_estimate) {
    char dir[64], err[512], path[256], cmd[2048];
    make_tmpdir(dir, sizeof dir);
    uint16_t *tok = malloc(20000 * sizeof *tok);
    for (size_t i = 0; i < 20000; i++) tok[i] = (uint16_t)((i * 7919u) % 2048u);
    snprintf(path, sizeof path, "%s/train.bin", dir);
    ck_assert_int_eq(shard_write(path, tok, 20000, err, sizeof err), 0);
    snprintf(path, sizeof path, "%s/val.bin", dir);
    ck_assert_int_eq(shard_write(path, tok, 4000, err, sizeof err), 0);
    free(tok);
    const char *bin = getenv("NB_BIN") ? getenv("NB_BIN") : "build/normbench";
    char sets[1024];
    snprintf(sets, sizeof sets,
             "--set backend.name=cpu --set backend.threads=1 --set model.n_layer=2 "
             "--set model.d_model=32 --set model.n_head=2 --set model.d_ff=64 "
             "--set model.vocab_size=2048 --set model.seq_len=32 --set train.batch=2 "
             "--set train.grad_accum=2 --set eval.batches=2 --set data.train=%s/train.bin "
             "--set data.val=%s/val.bin", dir, dir);
    snprintf(cmd, sizeof cmd, "bash scripts/tables-gpu --bin %s --estimate-only "
             "--probe-steps 8 130m %s >%s/out 2>%s/err", bin, sets, dir, dir);
    ck_assert_int_eq(run_status(cmd), 0);
    snprintf(path, sizeof path, "%s/out", dir);
    char *out = read_text(path);
    /* 20000 steps x 2 x 2 x 32 = 2.56M tokens per run, 5 schemes, 20 evaluations */
    assert_contains(out, "tables-gpu: cod 130m: 5 runs x 2.56e+06 tokens (20000 steps x 2 x 2 x 32)\n");
    assert_contains(out, "FLOPs/token x 2.56e+06 tokens = ");
    assert_contains(out, "tokens/s = ");
    assert_contains(out, " on cpu: ");
    assert_contains(out, "h for the column (5 runs, one at a time)\n");
    free(out);
    /* no shards: one line, exit 2 */
    snprintf(cmd, sizeof cmd, "bash scripts/tables-gpu --bin %s --estimate-only 130m "
             "--set data.train=%s/none.bin >/dev/null 2>%s/err", bin, dir, dir);
    ck_assert_int_eq(run_status(cmd), 2);
    snprintf(path, sizeof path, "%s/err", dir);
    char *msg = read_text(path);
    assert_contains(msg, "none.bin missing: prepare C4 with scripts/prepare-c4");
    free(msg);
    rm_rf(dir);
}
END_TEST

/* The command line: `normbench tables DIR [--paper P] [--format F]` prints the table on
 * stdout and exits 0; a bad directory or option is one line on stderr and exit 2. */
START_TEST(test_tables_command_line) {
    char root[64], cmd[1024], path[256];
    make_tmpdir(root, sizeof root);
    char runs[128];
    snprintf(runs, sizeof runs, "%s/runs", root);
    mkdir_p(runs);
    make_sweep(runs);
    const char *bin = getenv("NB_BIN") ? getenv("NB_BIN") : "build/normbench";
    snprintf(cmd, sizeof cmd, "%s tables %s --paper cod --format tsv >%s/out 2>%s/err", bin, runs,
             root, root);
    ck_assert_int_eq(run_status(cmd), 0);
    snprintf(path, sizeof path, "%s/out", root);
    char *out = read_text(path);
    /* the hand-computed pre_ln 130M cell of test_tables_md_paper: mean 27.1667, std 1.2583,
     * 3 seeds, vs 26.73 published: +1.6336% */
    assert_contains(out, "\npre_ln\t27.1667\t1.2583\t3\t0\t3\t26.73\t0\t1.6336\t");
    free(out);
    const char *bad[][2] = {{"--format html", "unknown format 'html'"},
                            {"--paper gpt2", "no published perplexities for 'gpt2'"}};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd, "%s tables %s %s >/dev/null 2>%s/err", bin, runs, bad[i][0],
                 root);
        ck_assert_int_eq(run_status(cmd), 2);
        snprintf(path, sizeof path, "%s/err", root);
        char *msg = read_text(path);
        assert_contains(msg, bad[i][1]);
        ck_assert_ptr_null(strchr(msg, '\n') ? strchr(strchr(msg, '\n') + 1, '\n') : NULL);
        free(msg);
    }
    snprintf(cmd, sizeof cmd, "%s tables %s/nope >/dev/null 2>%s/err", bin, root, root);
    ck_assert_int_eq(run_status(cmd), 2);
    snprintf(path, sizeof path, "%s/err", root);
    char *msg = read_text(path);
    assert_contains(msg, "nope");
    free(msg);
    rm_rf(root);
}
END_TEST

Suite *tables_suite(void) {
    Suite *s = suite_create("tables");
    TCase *tc = tcase_create("tables");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_tables_md_paper);
    tcase_add_test(tc, test_tables_cod_ablation);
    tcase_add_test(tc, test_tables_deepnorm_release_row);
    tcase_add_test(tc, test_tables_tsv_paper);
    tcase_add_test(tc, test_tables_tex_paper);
    tcase_add_test(tc, test_tables_ours_only);
    tcase_add_test(tc, test_tables_errors);
    tcase_add_test(tc, test_tables_command_line);
    suite_add_tcase(s, tc);
    TCase *data = tcase_create("published");
    tcase_set_timeout(data, 60);
    tcase_add_test(data, test_paper_results_file);
    tcase_add_test(data, test_paper_configs);
    suite_add_tcase(s, data);
    TCase *prep = tcase_create("prepare_c4");
    tcase_set_timeout(prep, 180);
    tcase_add_test(prep, test_prepare_c4_roundtrip);
    tcase_add_test(prep, test_prepare_c4_bad_inputs);
    tcase_add_test(prep, test_tables_gpu_estimate);
    suite_add_tcase(s, prep);
    return s;
}
