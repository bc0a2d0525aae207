/* test_bench.c — the bench's results-file format (write, parse back, columns, malformed
 * lines) and the comparison arithmetic (stats, ratio, direction by unit, spread-based
 * regression flag, pooling of repeated runs) on synthetic inputs. No timing assertions. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

static BenchRow mkrow(const char *commit, const char *op, const char *figure, const char *unit,
                      double med, double mn, double mx) {
    BenchRow r;
    memset(&r, 0, sizeof r);
    snprintf(r.commit, sizeof r.commit, "%s", commit);
    snprintf(r.date, sizeof r.date, "2026-01-02T03:04:05Z");
    snprintf(r.op, sizeof r.op, "%s", op);
    snprintf(r.shape, sizeof r.shape, "demo N=2048 C=64; 1.049e+06 B");
    snprintf(r.figure, sizeof r.figure, "%s", figure);
    snprintf(r.unit, sizeof r.unit, "%s", unit);
    r.median = med, r.min = mn, r.max = mx;
    return r;
}

START_TEST(format_roundtrip) {
    BenchRow r = mkrow("abc123", "matmul_fwd", "gflops", "GFLOP/s", 123.5, 100.25, 130.0), back;
    char line[512];
    ck_assert_int_eq(bench_row_format(&r, line, sizeof line), 0);
    /* nine tab-separated columns in the documented order */
    int tabs = 0;
    for (const char *p = line; *p; p++) tabs += *p == '\t';
    ck_assert_int_eq(tabs, 8);
    ck_assert(strncmp(line, "abc123\t2026-01-02T03:04:05Z\tmatmul_fwd\tdemo N=2048 C=64; 1.049e+06 B\tgflops\tGFLOP/s\t", 80) == 0);
    strcat(line, "\n");
    ck_assert_int_eq(bench_row_parse(line, &back), 0);
    ck_assert_str_eq(back.commit, "abc123");
    ck_assert_str_eq(back.op, "matmul_fwd");
    ck_assert_str_eq(back.shape, r.shape);
    ck_assert_str_eq(back.figure, "gflops");
    ck_assert_str_eq(back.unit, "GFLOP/s");
    ck_assert(back.median == 123.5 && back.min == 100.25 && back.max == 130.0);
}
END_TEST

START_TEST(parse_rejects) {
    BenchRow r;
    ck_assert_int_eq(bench_row_parse("# commit\tdate\n", &r), 1);
    ck_assert_int_eq(bench_row_parse("\n", &r), 1);
    ck_assert_int_eq(bench_row_parse("a\tb\tc\td\te\tf\t1\t2\n", &r), -1);         /* 8 cols */
    ck_assert_int_eq(bench_row_parse("a\tb\tc\td\te\tf\t1\t2\t3\t4\n", &r), -1);  /* 10 */
    ck_assert_int_eq(bench_row_parse("a\tb\tc\td\te\tf\tx\t2\t3\n", &r), -1);     /* number */
    ck_assert_int_eq(bench_row_parse("a\tb\t\td\te\tf\t1\t2\t3\n", &r), -1);      /* empty */
    BenchRow bad = mkrow("a\tb", "op", "f", "u", 1, 1, 1);
    char line[512];
    ck_assert_int_eq(bench_row_format(&bad, line, sizeof line), -1);
}
END_TEST

START_TEST(file_append_read) {
    char path[] = "/tmp/nb_bench_test_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    unlink(path); /* append creates it, with the header */
    BenchRow rows[2] = {mkrow("c1", "adamw", "gbytes", "GB/s", 5, 4, 6),
                        mkrow("c1", "memory", "peak_rss", "MiB", 40, 40, 40)};
    char err[256];
    ck_assert_int_eq(bench_results_append(path, rows, 2, err, sizeof err), 0);
    /* what ran (kernels) as a one-line comment: a newline in the text cannot start a row */
    ck_assert_int_eq(bench_results_note(path, "c1: cpu backend, kernels OpenBLAS SkylakeX\nc1\tx"), 0);
    ck_assert_int_eq(bench_results_append(path, rows, 1, err, sizeof err), 0);
    FILE *f = fopen(path, "r");
    char first[256], line[256];
    ck_assert_ptr_nonnull(fgets(first, sizeof first, f));
    for (int i = 0; i < 3; i++) ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(first, "# commit\tdate\top\tshape\tfigure\tunit\tmedian\tmin\tmax\n");
    ck_assert_str_eq(line, "# c1: cpu backend, kernels OpenBLAS SkylakeX\n");
    BenchRow *back;
    int n;
    ck_assert_int_eq(bench_results_read(path, &back, &n, err, sizeof err), 0);
    ck_assert_int_eq(n, 3);
    ck_assert_str_eq(back[1].figure, "peak_rss");
    ck_assert(back[2].median == 5);
    free(back);
    f = fopen(path, "a");
    fputs("garbage line\n", f);
    fclose(f);
    ck_assert_int_eq(bench_results_read(path, &back, &n, err, sizeof err), -1);
    ck_assert_ptr_null(back);
    ck_assert_ptr_nonnull(strstr(err, ":6:"));
    unlink(path);
}
END_TEST

START_TEST(stats) {
    double v[] = {5, 1, 4, 2, 3}, med, mn, mx;
    bench_stats(v, 5, &med, &mn, &mx);
    ck_assert(med == 3 && mn == 1 && mx == 5);
    double w[] = {4, 1, 3, 2};
    bench_stats(w, 4, &med, &mn, &mx);
    ck_assert(med == 2.5 && mn == 1 && mx == 4);
}
END_TEST

START_TEST(compare_arithmetic) {
    /* throughput down 20%, spreads 10% and 5%: a regression */
    BenchRow base = mkrow("a", "op", "gflops", "GFLOP/s", 100, 95, 105);
    BenchRow cur = mkrow("b", "op", "gflops", "GFLOP/s", 80, 78, 82);
    BenchDelta d = bench_compare_rows(&base, &cur, 0.02);
    ck_assert(fabs(d.ratio - 0.8) < 1e-12);
    ck_assert(fabs(d.speedup - 0.8) < 1e-12);
    ck_assert(fabs(d.noise - 0.1) < 1e-12);
    ck_assert_int_eq(d.regression, 1);
    ck_assert_int_eq(d.improvement, 0);
    /* the same 20% drop inside a 50% spread: noise, not flagged */
    BenchRow noisy = mkrow("b", "op", "gflops", "GFLOP/s", 80, 60, 100);
    d = bench_compare_rows(&base, &noisy, 0.02);
    ck_assert(fabs(d.noise - 0.5) < 1e-12);
    ck_assert_int_eq(d.regression, 0);
    /* lower is better for memory: 20% more MiB is a regression, 20% less an improvement */
    BenchRow mb = mkrow("a", "memory", "peak_rss", "MiB", 100, 100, 100);
    BenchRow mc = mkrow("b", "memory", "peak_rss", "MiB", 120, 120, 120);
    d = bench_compare_rows(&mb, &mc, 0.02);
    ck_assert(fabs(d.ratio - 1.2) < 1e-12);
    ck_assert(fabs(d.speedup - 1 / 1.2) < 1e-12);
    ck_assert_int_eq(d.regression, 1);
    d = bench_compare_rows(&mc, &mb, 0.02);
    ck_assert_int_eq(d.improvement, 1);
    /* zero spread: the floor decides */
    BenchRow z1 = mkrow("a", "op", "tokens_per_s", "tok/s", 100, 100, 100);
    BenchRow z2 = mkrow("b", "op", "tokens_per_s", "tok/s", 99, 99, 99);
    d = bench_compare_rows(&z1, &z2, 0.02);
    ck_assert_int_eq(d.regression, 0);
    ck_assert_int_eq(d.improvement, 0);
    ck_assert_int_eq(bench_unit_lower_is_better("MiB"), 1);
    ck_assert_int_eq(bench_unit_lower_is_better("GB/s"), 0);
    ck_assert_int_eq(bench_unit_lower_is_better("%"), 0);
}
END_TEST

START_TEST(pool_runs) {
    /* A/B/A/B: two runs of commit a, one of b, interleaved; pool takes one commit */
    BenchRow rows[] = {mkrow("a", "op", "gflops", "GFLOP/s", 10, 9, 11),
                       mkrow("b", "op", "gflops", "GFLOP/s", 50, 49, 51),
                       mkrow("a", "op", "gflops", "GFLOP/s", 14, 13, 16),
                       mkrow("a", "op", "gflops", "GFLOP/s", 12, 8, 12.5),
                       mkrow("a", "op2", "gbytes", "GB/s", 3, 2, 4)};
    BenchRow *out;
    int n;
    ck_assert_int_eq(bench_pool(rows, 5, "a", &out, &n), 0);
    ck_assert_int_eq(n, 2);
    ck_assert_str_eq(out[0].op, "op");
    ck_assert(out[0].median == 12 && out[0].min == 8 && out[0].max == 16);
    ck_assert(out[1].median == 3);
    free(out);
    ck_assert_int_eq(bench_pool(rows, 4, NULL, &out, &n), 0); /* last row's commit: a */
    ck_assert_int_eq(n, 1);
    free(out);
    ck_assert_int_eq(bench_pool(rows, 5, "b", &out, &n), 0);
    ck_assert_int_eq(n, 1);
    ck_assert(out[0].median == 50);
    free(out);
}
END_TEST

Suite *bench_suite(void) {
    Suite *s = suite_create("bench");
    TCase *tc = tcase_create("format_and_compare");
    tcase_add_test(tc, format_roundtrip);
    tcase_add_test(tc, parse_rejects);
    tcase_add_test(tc, file_append_read);
    tcase_add_test(tc, stats);
    tcase_add_test(tc, compare_arithmetic);
    tcase_add_test(tc, pool_runs);
    suite_add_tcase(s, tc);
    return s;
}
