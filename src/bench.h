/* bench.h — `normbench bench` (docs/design.md section 11): per-op throughput through the Backend
 * ops, end-to-end training tokens/s, MFU and peak resident memory at the shapes of
 * configs/demo and the papers' LLaMA-71M and 130M; results appended to a TSV file; the
 * comparison arithmetic bench/compare uses; and the --dump-init file bench/torch_reference.py
 * checks PyTorch against.
 *
 * Results file (one row per figure, tab-separated, '#' lines are comments):
 *   commit  date  op  shape  figure  unit  median  min  max
 * `shape` names the model and the op's sizes and ends with the work of one call
 * ("...; 4.295e+09 FLOP" or "...; 1.049e+06 B"), so every figure has its count beside it.
 */
#ifndef NORMBENCH_BENCH_H
#define NORMBENCH_BENCH_H

#include <stddef.h>

#define BENCH_FIELD 160

typedef struct {
    char commit[64], date[32], op[48], shape[BENCH_FIELD], figure[32], unit[16];
    double median, min, max;
} BenchRow;

/* One TSV line (no newline) into buf; returns 0, or -1 when it does not fit. */
int bench_row_format(const BenchRow *r, char *buf, size_t n);
/* Parses one TSV line (trailing newline allowed). Returns 0, 1 for a comment or blank line,
 * -1 for a malformed one. */
int bench_row_parse(const char *line, BenchRow *r);
/* Appends rows to path (creating it, with a header comment, when absent). */
int bench_results_append(const char *path, const BenchRow *rows, int n, char *err, size_t errlen);
/* Appends one comment line "# TEXT" to path (what ran: backend, device, kernels). 0 or -1. */
int bench_results_note(const char *path, const char *text);
/* Reads every row of path; *rows is malloc'ed. Returns 0 or -1. */
int bench_results_read(const char *path, BenchRow **rows, int *n, char *err, size_t errlen);

/* 1 when a larger value of this unit is worse (memory, time, ratios to an estimate). */
int bench_unit_lower_is_better(const char *unit);

/* median, min and max of n values (v is reordered) */
void bench_stats(double *v, int n, double *median, double *min, double *max);

typedef struct {
    double ratio;      /* current median / baseline median */
    double speedup;    /* > 1 better, < 1 worse: ratio, or 1/ratio when lower is better */
    double noise;      /* relative spread: max over both of (max - min) / median */
    int regression;    /* speedup < 1 - max(noise, floor) */
    int improvement;   /* speedup > 1 + max(noise, floor) */
} BenchDelta;

/* Compares one figure; floor is the smallest threshold (e.g. 0.02). */
BenchDelta bench_compare_rows(const BenchRow *base, const BenchRow *cur, double floor);

/* Pools the rows of one commit (commit NULL: the last row's commit) that share
 * (op, shape, figure): median of medians, min of mins, max of maxes. out is malloc'ed. */
int bench_pool(const BenchRow *rows, int n, const char *commit, BenchRow **out, int *n_out);

/* The subcommand: normbench bench [--quick] [...] | compare BASE.tsv CUR.tsv | --dump-init.
 * argv[0] is "bench". Returns an exit code (0 ok, 1 failure or regression, 2 usage). */
int bench_main(int argc, char **argv);

#endif
