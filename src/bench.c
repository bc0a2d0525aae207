/* bench.c — `normbench bench` (docs/design.md section 11, issue 7).
 *
 * Measures, for each backend asked for: a square sgemm peak (the backend's matmul at
 * 1024^3, same BLAS and thread count as training), per-op throughput of every Backend op at
 * the shapes of configs/demo and the papers' LLaMA-71M / 130M (vocabulary 256, byte-level),
 * end-to-end training tokens/s (zero_grad, forward, backward, AdamW), MFU against the
 * measured peak (CPU: each step paired with an sgemm timed right after it) or be->peak_flops
 * (GPU), and peak resident memory against model_memory_bytes. Every figure is the median of N repetitions after a warm-up, with min
 * and max. Also: the results-file format, the comparison arithmetic of bench/compare
 * (`normbench bench compare`), and `--dump-init`, which writes the initial weights, one
 * batch, its loss and gradients, and normbench's own step time for bench/torch_reference.py.
 * No global mutable state: everything lives in BenchCtx on the stack.
 */
#include "bench.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "checkpoint.h"
#include "clock.h"
#include "config.h"
#include "cpu_kernels.h"
#include "data.h"
#include "h5util.h"
#include "model.h"
#include "provenance.h"
#include "rng.h"
#include "run.h"
#include "schemes.h"

/* ---- results file ----------------------------------------------------------------------- */

static int has_tab(const char *s) { return strchr(s, '\t') || strchr(s, '\n'); }

int bench_row_format(const BenchRow *r, char *buf, size_t n) {
    if (has_tab(r->commit) || has_tab(r->date) || has_tab(r->op) || has_tab(r->shape) ||
        has_tab(r->figure) || has_tab(r->unit))
        return -1;
    int k = snprintf(buf, n, "%s\t%s\t%s\t%s\t%s\t%s\t%.6g\t%.6g\t%.6g", r->commit, r->date,
                     r->op, r->shape, r->figure, r->unit, r->median, r->min, r->max);
    return (k < 0 || (size_t)k >= n) ? -1 : 0;
}

static int copy_field(char *dst, size_t cap, const char *src, size_t len) {
    if (len == 0 || len >= cap) return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

static int parse_double(const char *s, size_t len, double *out) {
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    *out = strtod(tmp, &end);
    return (*end != '\0' || errno == ERANGE) ? -1 : 0;
}

int bench_row_parse(const char *line, BenchRow *r) {
    size_t total = strcspn(line, "\r\n");
    if (total == 0 || line[0] == '#') return 1;
    const char *f[9];
    size_t len[9];
    const char *p = line, *end = line + total;
    for (int i = 0; i < 9; i++) {
        const char *tab = memchr(p, '\t', (size_t)(end - p));
        if (i < 8 && !tab) return -1;
        if (i == 8 && tab) return -1; /* too many columns */
        f[i] = p;
        len[i] = (size_t)((tab ? tab : end) - p);
        p = tab ? tab + 1 : end;
    }
    memset(r, 0, sizeof *r);
    if (copy_field(r->commit, sizeof r->commit, f[0], len[0]) ||
        copy_field(r->date, sizeof r->date, f[1], len[1]) ||
        copy_field(r->op, sizeof r->op, f[2], len[2]) ||
        copy_field(r->shape, sizeof r->shape, f[3], len[3]) ||
        copy_field(r->figure, sizeof r->figure, f[4], len[4]) ||
        copy_field(r->unit, sizeof r->unit, f[5], len[5]) ||
        parse_double(f[6], len[6], &r->median) || parse_double(f[7], len[7], &r->min) ||
        parse_double(f[8], len[8], &r->max))
        return -1;
    return 0;
}

int bench_results_append(const char *path, const BenchRow *rows, int n, char *err, size_t errlen) {
    FILE *probe = fopen(path, "r");
    int fresh = probe == NULL;
    if (probe) fclose(probe);
    FILE *f = fopen(path, "a");
    if (!f) return snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), -1;
    if (fresh) fprintf(f, "# commit\tdate\top\tshape\tfigure\tunit\tmedian\tmin\tmax\n");
    char line[512];
    for (int i = 0; i < n; i++) {
        if (bench_row_format(&rows[i], line, sizeof line) != 0) {
            fclose(f);
            return snprintf(err, errlen, "%s: row %d does not fit the format", path, i), -1;
        }
        fprintf(f, "%s\n", line);
    }
    if (fclose(f) != 0) return snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno)), -1;
    return 0;
}

int bench_results_note(const char *path, const char *text) {
    FILE *f = fopen(path, "a");
    if (!f) return -1;
    fprintf(f, "# %.*s\n", (int)strcspn(text, "\r\n"), text);
    return fclose(f) == 0 ? 0 : -1;
}

int bench_results_read(const char *path, BenchRow **rows, int *n, char *err, size_t errlen) {
    *rows = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno)), -1;
    char line[1024];
    int cap = 0, lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        BenchRow r;
        int rc = bench_row_parse(line, &r);
        if (rc == 1) continue;
        if (rc < 0) {
            snprintf(err, errlen, "%s:%d: malformed row", path, lineno);
            goto fail;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            BenchRow *grown = realloc(*rows, (size_t)cap * sizeof **rows);
            if (!grown) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            *rows = grown;
        }
        (*rows)[(*n)++] = r;
    }
    fclose(f);
    return 0;
fail:
    fclose(f);
    free(*rows);
    *rows = NULL;
    *n = 0;
    return -1;
}

/* ---- statistics and comparison ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_stats(double *v, int n, double *median, double *min, double *max) {
    if (n <= 0) {
        *median = *min = *max = NAN;
        return;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *min = v[0];
    *max = v[n - 1];
    *median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int bench_unit_lower_is_better(const char *unit) {
    static const char *const lower[] = {"MiB", "GiB", "B", "s", "ms", "us", "x"};
    for (size_t i = 0; i < sizeof lower / sizeof lower[0]; i++)
        if (!strcmp(unit, lower[i])) return 1;
    return 0;
}

BenchDelta bench_compare_rows(const BenchRow *base, const BenchRow *cur, double floor) {
    BenchDelta d;
    d.ratio = cur->median / base->median;
    d.speedup = bench_unit_lower_is_better(cur->unit) ? 1.0 / d.ratio : d.ratio;
    double nb = (base->max - base->min) / fabs(base->median);
    double nc = (cur->max - cur->min) / fabs(cur->median);
    d.noise = fmax(nb, nc);
    double thr = fmax(d.noise, floor);
    d.regression = d.speedup < 1.0 - thr;
    d.improvement = d.speedup > 1.0 + thr;
    return d;
}

static int same_key(const BenchRow *a, const BenchRow *b) {
    return !strcmp(a->op, b->op) && !strcmp(a->shape, b->shape) && !strcmp(a->figure, b->figure);
}

int bench_pool(const BenchRow *rows, int n, const char *commit, BenchRow **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    if (n == 0) return 0;
    if (!commit) commit = rows[n - 1].commit;
    BenchRow *res = malloc((size_t)n * sizeof *res);
    double *meds = malloc((size_t)n * sizeof *meds);
    char *used = calloc((size_t)n, 1);
    if (!res || !meds || !used) {
        free(res), free(meds), free(used);
        return -1;
    }
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (used[i] || strcmp(rows[i].commit, commit)) continue;
        BenchRow r = rows[i];
        int m = 0;
        for (int j = i; j < n; j++) {
            if (used[j] || strcmp(rows[j].commit, commit) || !same_key(&rows[i], &rows[j])) continue;
            used[j] = 1;
            meds[m++] = rows[j].median;
            r.min = fmin(r.min, rows[j].min);
            r.max = fmax(r.max, rows[j].max);
        }
        double lo, hi;
        bench_stats(meds, m, &r.median, &lo, &hi);
        res[k++] = r;
    }
    free(meds);
    free(used);
    *out = res;
    *n_out = k;
    return 0;
}

/* ---- measurement helpers -------------------------------------------------------------- */

/* VmHWM / VmRSS in bytes from /proc/self/status (0 when unavailable) */
static double proc_status_bytes(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    double v = 0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') v = 1024.0 * strtod(line + kl + 1, NULL);
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (Linux: writing 5 to clear_refs); 0 on success. */
static int reset_peak_rss(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static double peak_rss_bytes(void) {
    double hwm = proc_status_bytes("VmHWM");
    if (hwm > 0) return hwm;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return 1024.0 * (double)ru.ru_maxrss;
}

/* ---- the benchmark context ------------------------------------------------------------ */

typedef struct {
    const char *name;
    int n_layer, d_model, n_head, d_ff, seq_len, batch, batch_quick;
    int batch_gpu; /* a GPU is timed at the papers' batch (64 x 256 tokens), where kernels
                      are sized as in training; CPU batches would measure launch overhead */
} BenchModel;

static const BenchModel bench_models[] = {
    {"demo", 12, 64, 4, 172, 64, 32, 4, 256},
    {"llama71m", 12, 512, 8, 1368, 256, 8, 1, 64},
    {"llama130m", 12, 768, 12, 2048, 256, 4, 1, 64},
};
#define N_BENCH_MODELS (int)(sizeof bench_models / sizeof bench_models[0])

typedef struct {
    Backend *be;
    int reps, quick;
    double target_s;        /* time per repetition */
    char commit[64], date[32];
    BenchRow *rows;
    int n_rows, cap_rows;
    double peak_flops;      /* for MFU: measured (CPU) or be->peak_flops (GPU); 0 unknown */
    int peak_only;          /* --peak-sgemm-only: the square sgemm and nothing else */
    double peak_hw;         /* CPU: max(physical fp32 peak, best sgemm over the kernels this
                               CPU can run), for mfu_hw; 0 elsewhere */
    uint64_t rng;
    void *sq_x, *sq_w, *sq_y; /* the square sgemm's buffers, re-timed beside every train step */
    int sq;
} BenchCtx;

static void add_row(BenchCtx *b, const char *op, const char *shape, const char *figure,
                    const char *unit, double med, double mn, double mx) {
    if (b->n_rows == b->cap_rows) {
        int cap = b->cap_rows ? 2 * b->cap_rows : 64;
        BenchRow *g = realloc(b->rows, (size_t)cap * sizeof *g);
        if (!g) return;
        b->rows = g;
        b->cap_rows = cap;
    }
    BenchRow *r = &b->rows[b->n_rows++];
    memset(r, 0, sizeof *r);
    snprintf(r->commit, sizeof r->commit, "%s", b->commit);
    snprintf(r->date, sizeof r->date, "%s", b->date);
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->shape, sizeof r->shape, "%s", shape);
    snprintf(r->figure, sizeof r->figure, "%s", figure);
    snprintf(r->unit, sizeof r->unit, "%s", unit);
    r->median = med;
    r->min = mn;
    r->max = mx;
    printf("  %-16s %-58s %-14s %10.4g  [%.4g .. %.4g] %s\n", op, shape, figure, med, mn, mx, unit);
    fflush(stdout);
}

/* Buffers for the per-op benchmarks of one shape. */
typedef struct {
    int B, T, N, C, F, V, NH, HS;
    size_t P;
    void *x, *y, *dx, *dy, *w, *g1, *g2, *dg1, *dg2, *q, *k, *v, *att, *dq, *dk, *dv, *saved;
    void *logits, *normw, *pcompute;
    float *dw, *mean, *rstd, *losses, *p, *grad, *m1, *m2;
    int32_t *targets;
} OpBufs;

typedef enum {
    OP_MM_FWD, OP_MM_BWD, OP_NORM_FWD, OP_NORM_BWD, OP_ROPE_FWD, OP_ROPE_BWD, OP_ATTN_FWD,
    OP_ATTN_BWD, OP_SWIGLU_FWD, OP_SWIGLU_BWD, OP_RESID_FWD, OP_SCALED_ADD, OP_XENT, OP_ADAMW
} OpKind;

typedef struct {
    OpKind kind;
    int IC, OC; /* matmul */
} OpCall;

static void run_op(Backend *be, OpBufs *o, const OpCall *c) {
    const BackendOps *op = be->ops;
    const size_t NC = (size_t)o->N * o->C, NF = (size_t)o->N * o->F;
    switch (c->kind) {
    case OP_MM_FWD: op->matmul_forward(be, o->y, o->x, o->w, o->N, c->IC, c->OC); break;
    case OP_MM_BWD: op->matmul_backward(be, o->dx, o->dw, o->dy, o->x, o->w, o->N, c->IC, c->OC); break;
    case OP_NORM_FWD:
        op->norm_forward(be, NORM_RMS, o->y, o->mean, o->rstd, o->x, o->normw, NULL, o->N, o->C,
                         1e-6f, 1.0f);
        break;
    case OP_NORM_BWD:
        op->norm_backward(be, NORM_RMS, o->dx, o->dw, NULL, o->dy, o->x, o->normw, o->mean,
                          o->rstd, o->N, o->C, 1.0f);
        break;
    case OP_ROPE_FWD: op->rope_forward(be, o->q, o->q, o->B, o->T, o->NH, o->HS, 10000.0f); break;
    case OP_ROPE_BWD: op->rope_backward(be, o->dq, o->dy, o->B, o->T, o->NH, o->HS, 10000.0f); break;
    case OP_ATTN_FWD:
        op->attention_forward(be, o->att, o->saved, o->q, o->k, o->v, o->B, o->T, o->NH, o->HS);
        break;
    case OP_ATTN_BWD:
        op->attention_backward(be, o->dq, o->dk, o->dv, o->dy, o->saved, o->q, o->k, o->v, o->B,
                               o->T, o->NH, o->HS);
        break;
    case OP_SWIGLU_FWD: op->swiglu_forward(be, o->y, o->g1, o->g2, NF); break;
    case OP_SWIGLU_BWD: op->swiglu_backward(be, o->dg1, o->dg2, o->dy, o->g1, o->g2, NF); break;
    case OP_RESID_FWD: op->residual_forward(be, o->y, o->x, 1.0f, o->dy, NC); break;
    case OP_SCALED_ADD: op->scaled_add(be, o->dx, o->dy, 1.0f, NC); break;
    case OP_XENT:
        op->crossentropy(be, o->losses, o->logits, o->logits, o->targets, o->N, o->V, 1.0f / o->N);
        break;
    case OP_ADAMW: {
        AdamWArgs a = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 1, 0};
        op->adamw_update(be, o->p, be->separate_master ? o->pcompute : NULL, o->grad, o->m1,
                         o->m2, o->P, &a);
        break;
    }
    }
}

/* Seconds per call: warm-up, calibrate the calls per repetition to ~target_s, then `reps`
 * repetitions; samples[reps] receive seconds per call. */
static void time_calls(BenchCtx *b, OpBufs *o, const OpCall *c, double *samples) {
    Backend *be = b->be;
    run_op(be, o, c);
    be->ops->synchronize(be);
    double t0 = monotonic_seconds();
    run_op(be, o, c);
    be->ops->synchronize(be);
    double dt = monotonic_seconds() - t0;
    int iters = dt > 0 ? (int)(b->target_s / dt) : 1000;
    if (iters < 1) iters = 1;
    if (iters > 1000) iters = 1000;
    for (int r = 0; r < b->reps; r++) {
        t0 = monotonic_seconds();
        for (int i = 0; i < iters; i++) run_op(be, o, c);
        be->ops->synchronize(be);
        samples[r] = (monotonic_seconds() - t0) / iters;
    }
}

/* Records work/second for an op (work = FLOPs or bytes of one call). */
static void measure(BenchCtx *b, OpBufs *o, const OpCall *c, const char *opname,
                    const char *shape, double work, int is_flops) {
    double s[64], v[64], med, mn, mx;
    time_calls(b, o, c, s);
    for (int r = 0; r < b->reps; r++) v[r] = work / s[r] * 1e-9;
    bench_stats(v, b->reps, &med, &mn, &mx);
    char sh[BENCH_FIELD];
    snprintf(sh, sizeof sh, "%s; %.4g %s", shape, work, is_flops ? "FLOP" : "B");
    add_row(b, opname, sh, is_flops ? "gflops" : "gbytes", is_flops ? "GFLOP/s" : "GB/s", med, mn, mx);
}

static void *bench_alloc(Backend *be, size_t bytes, int *fail) {
    void *p = be->ops->alloc(be, bytes ? bytes : 4);
    if (!p) *fail = 1;
    return p;
}

static void fill_random(BenchCtx *b, void *dst, size_t n, float scale, int act) {
    float *h = malloc(n * sizeof *h);
    if (!h) return;
    for (size_t i = 0; i < n; i++)
        h[i] = scale * (float)((double)(rng_next(&b->rng) >> 11) / 9007199254740992.0 - 0.5);
    if (act) b->be->ops->upload_act(b->be, dst, h, n);
    else b->be->ops->upload(b->be, dst, h, n * sizeof *h);
    free(h);
}

static int bench_batch(const BenchCtx *b, const BenchModel *bm) {
    if (b->quick) return bm->batch_quick;
    return strcmp(b->be->name, "cpu") == 0 ? bm->batch : bm->batch_gpu;
}

static void bench_ops(BenchCtx *b, const BenchModel *bm, const ModelConfig *mc, size_t P) {
    Backend *be = b->be;
    const BackendOps *op = be->ops;
    OpBufs o;
    memset(&o, 0, sizeof o);
    o.B = bench_batch(b, bm);
    o.T = mc->seq_len, o.C = mc->d_model, o.F = mc->d_ff, o.V = mc->vocab_size;
    o.NH = mc->n_head, o.HS = o.C / o.NH, o.N = o.B * o.T, o.P = P;
    const size_t A = be->act_bytes, N = (size_t)o.N;
    size_t wide = (size_t)(o.F > o.C ? o.F : o.C);
    size_t wmax = (size_t)(o.F > o.V ? o.F : o.V) * wide;
    if ((size_t)o.V > wide) wide = (size_t)o.V; /* lm_head output and its gradient */
    int fail = 0;
    o.x = bench_alloc(be, N * wide * A, &fail);
    o.y = bench_alloc(be, N * wide * A, &fail);
    o.dx = bench_alloc(be, N * wide * A, &fail);
    o.dy = bench_alloc(be, N * wide * A, &fail);
    o.w = bench_alloc(be, wmax * A, &fail);
    o.dw = bench_alloc(be, wmax * 4, &fail);
    o.g1 = bench_alloc(be, N * o.F * A, &fail);
    o.g2 = bench_alloc(be, N * o.F * A, &fail);
    o.dg1 = bench_alloc(be, N * o.F * A, &fail);
    o.dg2 = bench_alloc(be, N * o.F * A, &fail);
    o.q = bench_alloc(be, N * o.C * A, &fail);
    o.k = bench_alloc(be, N * o.C * A, &fail);
    o.v = bench_alloc(be, N * o.C * A, &fail);
    o.att = bench_alloc(be, N * o.C * A, &fail);
    o.dq = bench_alloc(be, N * o.C * A, &fail);
    o.dk = bench_alloc(be, N * o.C * A, &fail);
    o.dv = bench_alloc(be, N * o.C * A, &fail);
    o.saved = bench_alloc(be, op->attention_saved_bytes(be, o.B, o.T, o.NH), &fail);
    o.logits = bench_alloc(be, N * o.V * A, &fail);
    o.normw = bench_alloc(be, (size_t)o.C * A, &fail);
    o.mean = bench_alloc(be, N * 4, &fail);
    o.rstd = bench_alloc(be, N * 4, &fail);
    o.losses = bench_alloc(be, N * 4, &fail);
    o.targets = bench_alloc(be, N * 4, &fail);
    o.p = bench_alloc(be, P * 4, &fail);
    o.grad = bench_alloc(be, P * 4, &fail);
    o.m1 = bench_alloc(be, P * 4, &fail);
    o.m2 = bench_alloc(be, P * 4, &fail);
    if (be->separate_master) o.pcompute = bench_alloc(be, P * A, &fail);
    if (fail) {
        fprintf(stderr, "bench: %s: out of memory for the op buffers\n", bm->name);
        goto done;
    }
    fill_random(b, o.x, N * wide, 2.0f, 1);
    fill_random(b, o.dy, N * wide, 0.02f, 1);
    fill_random(b, o.w, wmax, 0.04f, 1);
    fill_random(b, o.g1, N * o.F, 2.0f, 1);
    fill_random(b, o.g2, N * o.F, 2.0f, 1);
    fill_random(b, o.q, N * o.C, 2.0f, 1);
    fill_random(b, o.k, N * o.C, 2.0f, 1);
    fill_random(b, o.v, N * o.C, 2.0f, 1);
    fill_random(b, o.logits, N * o.V, 2.0f, 1);
    fill_random(b, o.normw, (size_t)o.C, 2.0f, 1);
    fill_random(b, o.p, P, 0.04f, 0);
    fill_random(b, o.grad, P, 0.01f, 0);
    {
        int32_t *t = malloc(N * sizeof *t);
        if (t) {
            for (size_t i = 0; i < N; i++) t[i] = (int32_t)(rng_next(&b->rng) % (uint64_t)o.V);
            op->upload(be, o.targets, t, N * sizeof *t);
            free(t);
        }
    }
    char base[96], sh[BENCH_FIELD];
    snprintf(base, sizeof base, "%s N=%d", bm->name, o.N);
    const double n = (double)o.N, a = (double)A;
    /* matmuls: the four distinct (IC, OC) of a block and the head */
    const int mm[4][2] = {{o.C, o.C}, {o.C, o.F}, {o.F, o.C}, {o.C, o.V}};
    const char *mmname[4] = {"qkvo", "gate_up", "down", "lm_head"};
    for (int i = 0; i < 4; i++) {
        OpCall c = {OP_MM_FWD, mm[i][0], mm[i][1]};
        double fl = 2.0 * n * mm[i][0] * mm[i][1];
        snprintf(sh, sizeof sh, "%s %s %dx%d", base, mmname[i], mm[i][0], mm[i][1]);
        measure(b, &o, &c, "matmul_fwd", sh, fl, 1);
        c.kind = OP_MM_BWD;
        measure(b, &o, &c, "matmul_bwd", sh, 2.0 * fl, 1);
    }
    const double nc = n * o.C, nf = n * o.F;
    snprintf(sh, sizeof sh, "%s C=%d", base, o.C);
    OpCall c = {OP_NORM_FWD, 0, 0};
    measure(b, &o, &c, "rmsnorm_fwd", sh, nc * 2 * a, 0);         /* read x, write y */
    c.kind = OP_NORM_BWD;
    measure(b, &o, &c, "rmsnorm_bwd", sh, nc * 4 * a, 0);         /* dout, x, dx rmw */
    c.kind = OP_RESID_FWD;
    measure(b, &o, &c, "residual_fwd", sh, nc * 3 * a, 0);
    c.kind = OP_SCALED_ADD;
    measure(b, &o, &c, "scaled_add", sh, nc * 3 * a, 0);
    snprintf(sh, sizeof sh, "%s NH=%d HS=%d", base, o.NH, o.HS);
    c.kind = OP_ROPE_FWD;
    measure(b, &o, &c, "rope_fwd", sh, nc * 2 * a, 0);
    c.kind = OP_ROPE_BWD;
    measure(b, &o, &c, "rope_bwd", sh, nc * 3 * a, 0);
    /* attention: causal QK^T and PV, half of the square: 2 * B*NH*T*T*HS forward */
    double afl = 2.0 * o.B * o.NH * (double)o.T * o.T * o.HS;
    snprintf(sh, sizeof sh, "%s T=%d NH=%d HS=%d causal", base, o.T, o.NH, o.HS);
    c.kind = OP_ATTN_FWD;
    measure(b, &o, &c, "attention_fwd", sh, afl, 1);
    c.kind = OP_ATTN_BWD;
    measure(b, &o, &c, "attention_bwd", sh, 2.0 * afl, 1);
    snprintf(sh, sizeof sh, "%s F=%d", base, o.F);
    c.kind = OP_SWIGLU_FWD;
    measure(b, &o, &c, "swiglu_fwd", sh, nf * 3 * a, 0);
    c.kind = OP_SWIGLU_BWD;
    measure(b, &o, &c, "swiglu_bwd", sh, nf * 7 * a, 0);
    snprintf(sh, sizeof sh, "%s V=%d", base, o.V);
    c.kind = OP_XENT;
    measure(b, &o, &c, "crossentropy", sh, n * o.V * 2 * a, 0);  /* read logits, write dlogits */
    snprintf(sh, sizeof sh, "%s P=%zu", bm->name, P);
    c.kind = OP_ADAMW;
    measure(b, &o, &c, "adamw", sh, (double)P * (7 * 4 + (be->separate_master ? A : 0)), 0);
done:;
    void *all[] = {o.x, o.y, o.dx, o.dy, o.w, o.dw, o.g1, o.g2, o.dg1, o.dg2, o.q, o.k, o.v,
                   o.att, o.dq, o.dk, o.dv, o.saved, o.logits, o.normw, o.mean, o.rstd,
                   o.losses, o.targets, o.p, o.grad, o.m1, o.m2, o.pcompute};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]) op->release(be, all[i]);
}

/* ---- the CPU's hardware peak ------------------------------------------------------------ */

/* CPU time of the calling thread: time it was descheduled (other load) does not count */
static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Core clock in Hz of the calling thread, from a chain of dependent register-to-register
 * integer adds: each add needs the previous result, and every x86 core since the P6 runs
 * such an add in one cycle of latency, so adds per second of the thread's CPU time = cycles
 * per second at whatever clock the core runs now (turbo included, which /proc/cpuinfo's
 * "cpu MHz" does not show in a VM; time lost to other processes excluded).
 * Not `add $1, reg`: Golden Cove (Sapphire/Emerald Rapids) folds immediate adds at rename and
 * runs several per cycle (measured here: "15 GHz"). 0 off x86. */
static double chain_clock_hz(double target_s) {
#if defined(__x86_64__) || defined(__i386__)
#define NB_ADD4 "add %1, %0\n\t" "add %1, %0\n\t" "add %1, %0\n\t" "add %1, %0\n\t"
    uint64_t iters = 1u << 16, x = 0, one = 1;
    for (;;) {
        double t0 = thread_cpu_s();
        for (uint64_t i = 0; i < iters; i++)
            __asm__ volatile(NB_ADD4 NB_ADD4 NB_ADD4 NB_ADD4 : "+r"(x) : "r"(one)); /* 16 adds */
        double dt = thread_cpu_s() - t0;
        if (dt >= target_s || iters >= (1ull << 40))
            return x == 16 * iters ? 16.0 * (double)iters / dt : 0;
        iters = dt > target_s / 64 ? (uint64_t)((double)iters * target_s / dt) + 1 : iters * 16;
        x = 0;
    }
#undef NB_ADD4
#else
    (void)target_s;
    return 0;
#endif
}

/* The largest "cpu MHz" of /proc/cpuinfo in Hz (0 when absent): the fallback off x86. */
static double cpuinfo_clock_hz(void) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return 0;
    char line[256];
    double best = 0;
    while (fgets(line, sizeof line, f)) {
        const char *colon = strchr(line, ':');
        if (strncmp(line, "cpu MHz", 7) == 0 && colon) best = fmax(best, 1e6 * atof(colon + 1));
    }
    fclose(f);
    return best;
}

/* GFLOP/s of the square sgemm under another OpenBLAS core: `normbench bench
 * --peak-sgemm-only` re-run with OPENBLAS_CORETYPE set (OpenBLAS picks its kernels at load,
 * so another core means another process). 0 on failure. */
static double sgemm_under_core(const BenchCtx *b, const char *core, int threads) {
    int fd[2];
    if (pipe(fd) != 0) return 0;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        char th[16], reps[16];
        snprintf(th, sizeof th, "%d", threads);
        snprintf(reps, sizeof reps, "%d", b->reps);
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]), close(fd[1]);
        setenv("OPENBLAS_CORETYPE", core, 1);
        unsetenv(CPU_KERNELS_MARKER);
        execl("/proc/self/exe", "normbench", "bench", "--peak-sgemm-only", "--threads", th,
              "--reps", reps, b->quick ? "--quick" : NULL, (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char buf[512] = "";
    size_t n = 0;
    ssize_t k;
    while (n + 1 < sizeof buf && (k = read(fd[0], buf + n, sizeof buf - 1 - n)) > 0) n += (size_t)k;
    buf[n] = '\0';
    close(fd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    const char *p = strstr(buf, "peak_sgemm_gflops ");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !p) return 0;
    return atof(p + strlen("peak_sgemm_gflops "));
}

/* The CPU's hardware fp32 peak (issue 18): physical (cores used x measured clock x FLOP per
 * cycle of the ISA), the square sgemm under every OpenBLAS core this CPU can run, and the
 * larger of the two, which mfu_hw is taken against. */
static void bench_peak_hw(BenchCtx *b, int S) {
    const int threads = omp_get_max_threads(), procs = omp_get_num_procs();
    const int cores = threads < procs ? threads : procs;
    const CpuIsa isa = cpu_isa();
    const int fpc = cpu_isa_flops_per_cycle(isa);
    char sh[BENCH_FIELD];
    double best_sgemm = b->peak_flops; /* the kernels in use, measured just before */
    const char *names[8];
    int nk = cpu_kernels_candidates(names, 8);
    const char *in_use = strchr(b->be->kernels, ' ') ? strchr(b->be->kernels, ' ') + 1 : "";
    BenchRow same; /* peak_sgemm, the row just added (a copy: add_row may move the rows) */
    memset(&same, 0, sizeof same);
    const int have_same = b->n_rows > 0 && !strcmp(b->rows[b->n_rows - 1].op, "peak_sgemm");
    if (have_same) same = b->rows[b->n_rows - 1];
    for (int i = 0; i < nk; i++) { /* one row per core, whichever runs in this process */
        snprintf(sh, sizeof sh, "sgemm %dx%dx%d OpenBLAS %s; %.4g FLOP", S, S, S, names[i],
                 2.0 * S * S * (double)S);
        if (!strcasecmp(names[i], in_use)) {
            if (have_same)
                add_row(b, "peak_sgemm_kernels", sh, "gflops", "GFLOP/s", same.median, same.min,
                        same.max);
            continue;
        }
        double g = sgemm_under_core(b, names[i], threads);
        if (g <= 0) continue;
        add_row(b, "peak_sgemm_kernels", sh, "gflops", "GFLOP/s", g, g, g);
        best_sgemm = fmax(best_sgemm, 1e9 * g);
    }
    /* the clock: all used cores at once (all-core turbo), per-core mean; interruptions
     * only lower a sample, so the largest sample is the estimate */
    double ghz[64], med = 0, mn = 0, mx = 0;
    const char *how = "dependent-add chain";
    for (int r = 0; r < b->reps; r++) {
        double sum = 0;
        int ran = 0;
#pragma omp parallel num_threads(cores) reduction(+ : sum, ran)
        {
            sum += chain_clock_hz(b->quick ? 0.01 : 0.05);
            ran += 1;
        }
        ghz[r] = ran > 0 ? sum / ran * 1e-9 : 0;
    }
    bench_stats(ghz, b->reps, &med, &mn, &mx);
    if (mx <= 0 || mx > 8.0) { /* no chain off x86, or one this core runs faster than 1/cycle */
        how = "/proc/cpuinfo cpu MHz";
        for (int r = 0; r < b->reps; r++) ghz[r] = cpuinfo_clock_hz() * 1e-9;
    }
    bench_stats(ghz, b->reps, &med, &mn, &mx);
    double phys = 0;
    if (mx > 0) {
        snprintf(sh, sizeof sh, "%s, %d thread%s", how, cores, cores == 1 ? "" : "s");
        add_row(b, "cpu_clock", sh, "ghz", "GHz", med, mn, mx);
    }
    if (mx > 0 && fpc > 0) {
        phys = cores * mx * 1e9 * fpc;
        snprintf(sh, sizeof sh, "%d core%s x cpu_clock (max) x %d FLOP/cycle (%s, 2 FMA units)",
                 cores, cores == 1 ? "" : "s", fpc, cpu_isa_name(isa));
        add_row(b, "peak_physical", sh, "gflops", "GFLOP/s", phys * 1e-9, phys * 1e-9, phys * 1e-9);
    }
    b->peak_hw = fmax(phys, best_sgemm);
    if (b->peak_hw > 0) {
        snprintf(sh, sizeof sh, "max(peak_physical, best sgemm over %d kernel%s)", nk > 0 ? nk : 1,
                 nk > 1 ? "s" : "");
        add_row(b, "peak_hw", sh, "gflops", "GFLOP/s", b->peak_hw * 1e-9, b->peak_hw * 1e-9,
                b->peak_hw * 1e-9);
    }
}

static void bench_peak(BenchCtx *b) {
    Backend *be = b->be;
    const int S = b->quick ? 256 : 1024;
    OpBufs o;
    memset(&o, 0, sizeof o);
    int fail = 0;
    o.N = S;
    o.x = bench_alloc(be, (size_t)S * S * be->act_bytes, &fail);
    o.w = bench_alloc(be, (size_t)S * S * be->act_bytes, &fail);
    o.y = bench_alloc(be, (size_t)S * S * be->act_bytes, &fail);
    if (!fail) {
        fill_random(b, o.x, (size_t)S * S, 2.0f, 1);
        fill_random(b, o.w, (size_t)S * S, 0.1f, 1);
        OpCall c = {OP_MM_FWD, S, S};
        double s[64], v[64], med, mn, mx, fl = 2.0 * S * S * (double)S;
        time_calls(b, &o, &c, s);
        for (int r = 0; r < b->reps; r++) v[r] = fl / s[r] * 1e-9;
        bench_stats(v, b->reps, &med, &mn, &mx);
        char sh[BENCH_FIELD];
        snprintf(sh, sizeof sh, "sgemm %dx%dx%d; %.4g FLOP", S, S, S, fl);
        add_row(b, "peak_sgemm", sh, "gflops", "GFLOP/s", med, mn, mx);
        if (!strcmp(be->name, "cpu")) b->peak_flops = med * 1e9;
    }
    if (strcmp(be->name, "cpu") && be->peak_flops > 0) b->peak_flops = be->peak_flops;
    /* kept for bench_sgemm_now: on the CPU, MFU pairs every train step with an sgemm timed
     * right after it, so both see the same machine load */
    b->sq_x = o.x, b->sq_w = o.w, b->sq_y = o.y, b->sq = fail ? 0 : S;
    if (!strcmp(be->name, "cpu") && !b->peak_only) bench_peak_hw(b, S);
}

/* FLOP/s of one square sgemm now (0 when unavailable) */
static double bench_sgemm_now(BenchCtx *b) {
    if (!b->sq || strcmp(b->be->name, "cpu")) return 0;
    double t0 = monotonic_seconds();
    b->be->ops->matmul_forward(b->be, b->sq_y, b->sq_x, b->sq_w, b->sq, b->sq, b->sq);
    b->be->ops->synchronize(b->be);
    return 2.0 * b->sq * b->sq * (double)b->sq / (monotonic_seconds() - t0);
}

static void model_cfg_of(const BenchModel *bm, ModelConfig *mc) {
    model_config_default(mc);
    mc->n_layer = bm->n_layer, mc->d_model = bm->d_model, mc->n_head = bm->n_head;
    mc->d_ff = bm->d_ff, mc->seq_len = bm->seq_len, mc->vocab_size = 256;
}

/* End-to-end training steps on random tokens, pre_ln. Returns the parameter count. */
static size_t bench_train(BenchCtx *b, const BenchModel *bm, const ModelConfig *mc) {
    Backend *be = b->be;
    const int L = mc->n_layer, B = bench_batch(b, bm), T = mc->seq_len;
    SchemeParams sp;
    scheme_params_default(&sp);
    char err[512];
    size_t P = 0;
    SublayerSpec *specs = run_build_specs(mc, scheme_find("pre_ln"), &sp, err, sizeof err);
    if (!specs) return 0;
    int is_cpu = !strcmp(be->name, "cpu");
    double rss0 = 0;
    if (is_cpu) {
        reset_peak_rss();
        rss0 = proc_status_bytes("VmRSS");
    }
    Model *m = model_create(be, mc, specs, B, err, sizeof err);
    if (!m) {
        fprintf(stderr, "bench: %s: %s\n", bm->name, err);
        free(specs);
        return 0;
    }
    const ParamTable *t = model_params(m);
    P = t->total;
    float *host = malloc(P * sizeof *host);
    int32_t *tok = malloc((size_t)B * T * sizeof *tok), *tgt = malloc((size_t)B * T * sizeof *tgt);
    if (host && tok && tgt) {
        model_init_params(mc, t, specs, 1, host);
        model_set_params(m, host);
        free(host);
        host = NULL;
        for (int i = 0; i < B * T; i++) tok[i] = (int32_t)(rng_next(&b->rng) % 256);
        for (int i = 0; i < B * T; i++) tgt[i] = (int32_t)(rng_next(&b->rng) % 256);
        int steps = b->reps < 3 ? 3 : b->reps;
        double v[64], mfu[64], med, mn, mx;
        int paired = 0;
        for (int s = -1; s < steps; s++) { /* s = -1: warm-up */
            double t0 = monotonic_seconds();
            model_zero_grad(m);
            model_forward(m, tok, tgt, NULL);
            model_backward(m, NULL);
            AdamWArgs a = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, s + 2, 0};
            model_adamw_step(m, &a);
            be->ops->synchronize(be);
            if (s >= 0) v[s] = (double)B * T / (monotonic_seconds() - t0);
            double pk = s >= 0 ? bench_sgemm_now(b) : 0;
            if (pk > 0) mfu[paired++] = 100 * model_flops_per_token(mc) * v[s] / pk;
        }
        bench_stats(v, steps, &med, &mn, &mx);
        char sh[BENCH_FIELD];
        double fpt = model_flops_per_token(mc);
        snprintf(sh, sizeof sh, "%s L=%d C=%d F=%d NH=%d T=%d V=256 B=%d pre_ln; %.4g FLOP/token",
                 bm->name, L, mc->d_model, mc->d_ff, mc->n_head, T, B, fpt);
        add_row(b, "train_step", sh, "tokens_per_s", "tok/s", med, mn, mx);
        if (paired == steps) { /* CPU: each step against the sgemm timed beside it */
            double pm, pmn, pmx;
            bench_stats(mfu, paired, &pm, &pmn, &pmx);
            add_row(b, "train_step", sh, "mfu", "%", pm, pmn, pmx);
        } else if (b->peak_flops > 0)
            add_row(b, "train_step", sh, "mfu", "%", 100 * fpt * med / b->peak_flops,
                    100 * fpt * mn / b->peak_flops, 100 * fpt * mx / b->peak_flops);
        if (b->peak_hw > 0) /* CPU: against the hardware, not against its own kernels */
            add_row(b, "train_step", sh, "mfu_hw", "%", 100 * fpt * med / b->peak_hw,
                    100 * fpt * mn / b->peak_hw, 100 * fpt * mx / b->peak_hw);
        if (is_cpu) {
            double hwm = peak_rss_bytes(), est = (double)model_memory_bytes(mc, specs, B, be);
            const double MiB = 1048576.0;
            add_row(b, "memory", sh, "peak_rss", "MiB", hwm / MiB, hwm / MiB, hwm / MiB);
            add_row(b, "memory", sh, "estimate", "MiB", est / MiB, est / MiB, est / MiB);
            add_row(b, "memory", sh, "peak_over_estimate", "x", hwm / est, hwm / est, hwm / est);
            double g = (hwm - rss0) / est;
            add_row(b, "memory", sh, "growth_over_estimate", "x", g, g, g);
        }
    }
    free(host);
    free(tok);
    free(tgt);
    model_destroy(m);
    free(specs);
    return P;
}

/* "cpu-intel-r-xeon-r-...-2-threads" from be->name and be->device */
static void device_slug(const Backend *be, char *out, size_t n) {
    char src[200];
    snprintf(src, sizeof src, "%s %s", be->name, be->device);
    size_t k = 0;
    int dash = 0;
    for (const char *s = src; *s && k + 1 < n && k < 80; s++) {
        char ch = *s;
        if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            out[k++] = ch;
            dash = 0;
        } else if (!dash && k > 0) {
            out[k++] = '-';
            dash = 1;
        }
    }
    while (k > 0 && out[k - 1] == '-') k--;
    out[k] = '\0';
}

/* ---- --dump-init: the file bench/torch_reference.py checks against -------------------- */

int bench_dump_init(const char *out_path, const char *cfg_path, const char *const *sets,
                    int n_sets, int steps) {
    NbConfig sweep, run;
    char err[1024];
    if (config_load(&sweep, cfg_path, sets, n_sets, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    config_select_run(&sweep, 0, 0, &run);
    config_free(&sweep);
    int rc = 1;
    const ModelConfig *mc = &run.model;
    const int L = mc->n_layer, B = run.train.batch, T = mc->seq_len, N = B * T;
    Dataset ds = {0};
    Backend *be = NULL;
    Model *m = NULL;
    float *host = NULL, *grads = NULL;
    int32_t *tok = malloc((size_t)N * sizeof *tok), *tgt = malloc((size_t)N * sizeof *tgt);
    double *d64 = malloc((size_t)N * sizeof *d64);
    char *yaml = NULL;
    hid_t f = -1, g = -1;
    if (!tok || !tgt || !d64) goto done;
    if (run_load_dataset(&run, &ds, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        rc = 2;
        goto done;
    }
    if (!(be = run_open_backend(&run, err, sizeof err)) ||
        !(m = run_create_model(&run, be, err, sizeof err))) {
        fprintf(stderr, "bench --dump-init: %s\n", err);
        goto done;
    }
    const SublayerSpec *specs = model_specs(m);
    const ParamTable *t = model_params(m);
    host = malloc(t->total * sizeof *host);
    grads = malloc(t->total * sizeof *grads);
    if (!host || !grads) goto done;
    model_init_params(mc, t, model_specs(m), run.seeds[0], host);
    model_set_params(m, host);
    CheckpointInfo ci = {.step = 0, .seed = run.seeds[0], .initial_loss = 0};
    snprintf(ci.scheme, sizeof ci.scheme, "%s", run.schemes[0]->name);
    if (config_write_yaml(&run, &yaml) == 0) ci.config_yaml = yaml;
    if (checkpoint_save(out_path, m, &ci, err, sizeof err) != 0) {
        fprintf(stderr, "bench --dump-init: %s\n", err);
        goto done;
    }
    if (dataset_train_batch(&ds, run.seeds[0], 0, B, tok, tgt) != 0) goto done;
    model_zero_grad(m);
    double loss = model_forward(m, tok, tgt, NULL);
    model_backward(m, NULL);
    model_get_grads(m, grads);
    /* timed full steps (zero_grad, forward, backward, AdamW) on the same batch */
    double v[64], med = NAN, mn = NAN, mx = NAN;
    if (steps > 64) steps = 64;
    for (int s = -1; s < steps; s++) {
        double t0 = monotonic_seconds();
        model_zero_grad(m);
        model_forward(m, tok, tgt, NULL);
        model_backward(m, NULL);
        AdamWArgs a = {(float)run.train.lr, (float)run.train.beta1, (float)run.train.beta2,
                       (float)run.train.eps, (float)run.train.weight_decay, 1.0f, s + 2, 0};
        model_adamw_step(m, &a);
        be->ops->synchronize(be);
        if (s >= 0) v[s] = (double)N / (monotonic_seconds() - t0);
    }
    if (steps > 0) bench_stats(v, steps, &med, &mn, &mx);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    if ((f = H5Fopen(out_path, H5F_ACC_RDWR, H5P_DEFAULT)) < 0) goto h5fail;
    for (int i = 0; i < N; i++) d64[i] = tok[i];
    if (h5_write_f64(f, "bench_tokens", d64, (size_t)N)) goto h5fail;
    for (int i = 0; i < N; i++) d64[i] = tgt[i];
    if (h5_write_f64(f, "bench_targets", d64, (size_t)N)) goto h5fail;
    double sp[3][2 * 64];
    if (2 * L > 2 * 64) goto h5fail;
    for (int i = 0; i < 2 * L; i++) {
        sp[0][i] = specs[i].placement == PLACE_POST;
        sp[1][i] = specs[i].in_scale;
        sp[2][i] = specs[i].residual_scale;
    }
    if (h5_write_f64(f, "bench_spec_post", sp[0], (size_t)(2 * L)) ||
        h5_write_f64(f, "bench_spec_in_scale", sp[1], (size_t)(2 * L)) ||
        h5_write_f64(f, "bench_spec_residual_scale", sp[2], (size_t)(2 * L)))
        goto h5fail;
    if ((g = H5Gcreate2(f, "bench_grad", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto h5fail;
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        if (h5_write_f32(g, p->name, grads + p->offset, (size_t)p->rows ? (size_t)p->rows : p->numel,
                         p->cols ? (size_t)p->cols : 0))
            goto h5fail;
    }
    if (h5_write_attr_double(f, "bench_loss", loss) ||
        h5_write_attr_int64(f, "bench_batch", B) || h5_write_attr_int64(f, "bench_n_layer", L) ||
        h5_write_attr_int64(f, "bench_d_model", mc->d_model) ||
        h5_write_attr_int64(f, "bench_n_head", mc->n_head) ||
        h5_write_attr_int64(f, "bench_d_ff", mc->d_ff) ||
        h5_write_attr_int64(f, "bench_vocab_size", mc->vocab_size) ||
        h5_write_attr_int64(f, "bench_seq_len", T) ||
        h5_write_attr_int64(f, "bench_layernorm", mc->norm == NORM_LAYER) ||
        h5_write_attr_int64(f, "bench_final_norm", mc->final_norm) ||
        h5_write_attr_double(f, "bench_norm_eps", mc->norm_eps) ||
        h5_write_attr_double(f, "bench_rope_theta", mc->rope_theta) ||
        h5_write_attr_double(f, "bench_tokens_per_s", med) ||
        h5_write_attr_double(f, "bench_tokens_per_s_min", mn) ||
        h5_write_attr_double(f, "bench_tokens_per_s_max", mx) ||
        h5_write_attr_string(f, "bench_device", be->device) ||
        h5_write_attr_string(f, "bench_kernels", be->kernels))
        goto h5fail;
    printf("dump-init: %s: %s, loss %.6f, %d timed steps: %.1f tokens/s [%.1f .. %.1f] (%s, %s)\n",
           out_path, run.schemes[0]->name, loss, steps, med, mn, mx, be->device, be->kernels);
    rc = 0;
    goto done;
h5fail:
    fprintf(stderr, "bench --dump-init: %s: cannot write the bench datasets\n", out_path);
done:
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    free(yaml);
    free(host);
    free(grads);
    free(tok);
    free(tgt);
    free(d64);
    if (m) model_destroy(m);
    if (be) backend_destroy(be);
    dataset_free(&ds);
    config_free(&run);
    return rc;
}

/* ---- compare -------------------------------------------------------------------------- */

int bench_compare(const char *base_path, const char *cur_path, const char *base_commit,
                  double floor) {
    BenchRow *br = NULL, *cr = NULL, *bp = NULL, *cp = NULL;
    int nb = 0, nc = 0, nbp = 0, ncp = 0, rc = 2;
    char err[1024];
    if (bench_results_read(base_path, &br, &nb, err, sizeof err) ||
        bench_results_read(cur_path, &cr, &nc, err, sizeof err)) {
        fprintf(stderr, "bench compare: %s\n", err);
        goto done;
    }
    if (bench_pool(br, nb, base_commit, &bp, &nbp) || bench_pool(cr, nc, NULL, &cp, &ncp)) goto done;
    if (nbp == 0 || ncp == 0) {
        fprintf(stderr, "bench compare: no rows to compare (base commit %s)\n",
                base_commit ? base_commit : "last");
        goto done;
    }
    printf("base %s (%s)  vs  current %s (%s); flag: beyond max(spread, %.0f%%)\n", bp[0].commit,
           base_path, cp[0].commit, cur_path, 100 * floor);
    printf("%-14s %-60s %-20s %10s %10s %7s %7s  %s\n", "op", "shape", "figure", "base", "current",
           "ratio", "noise", "verdict");
    int regress = 0, compared = 0;
    for (int i = 0; i < ncp; i++) {
        const BenchRow *base = NULL;
        for (int j = 0; j < nbp && !base; j++)
            if (same_key(&bp[j], &cp[i])) base = &bp[j];
        if (!base) continue;
        BenchDelta d = bench_compare_rows(base, &cp[i], floor);
        compared++;
        regress += d.regression;
        printf("%-14s %-60.60s %-20s %10.4g %10.4g %7.3f %6.1f%%  %s\n", cp[i].op, cp[i].shape,
               cp[i].figure, base->median, cp[i].median, d.ratio, 100 * d.noise,
               d.regression ? "REGRESSION" : d.improvement ? "better" : "same");
    }
    printf("%d figures compared, %d regression%s\n", compared, regress, regress == 1 ? "" : "s");
    rc = regress ? 1 : 0;
done:
    free(br), free(cr), free(bp), free(cp);
    return rc;
}

/* ---- the subcommand ------------------------------------------------------------------- */

static int run_backend(const char *name, int threads, const char *models, int quick, int reps,
                       int ops, const char *out_path, int save, const char *commit, int peak_only) {
    char err[512];
    BenchCtx b;
    memset(&b, 0, sizeof b);
    b.be = backend_create(name, threads, err, sizeof err);
    if (!b.be) {
        fprintf(stderr, "bench: backend %s: %s\n", name, err);
        return 1;
    }
    b.reps = reps > 0 ? reps : (quick ? 3 : 7);
    if (b.reps > 64) b.reps = 64;
    b.quick = quick;
    b.target_s = quick ? 0.005 : 0.05;
    b.rng = 0x6e6f726d62656e63ull;
    if (commit) snprintf(b.commit, sizeof b.commit, "%s", commit);
    else provenance_git_commit(b.commit, sizeof b.commit);
    time_t tt = time(NULL);
    struct tm tmv;
    gmtime_r(&tt, &tmv);
    strftime(b.date, sizeof b.date, "%Y-%m-%dT%H:%M:%SZ", &tmv);
    printf("bench: %s backend, %s, kernels %s, commit %s, %d reps%s\n", b.be->name, b.be->device,
           b.be->kernels, b.commit, b.reps, quick ? " (quick)" : "");
    b.peak_only = peak_only;
    bench_peak(&b);
    int rc = 0;
    if (peak_only) { /* a child of bench_peak_hw: the square sgemm under these kernels */
        printf("peak_sgemm_gflops %.6g\n", b.peak_flops * 1e-9);
        rc = b.peak_flops > 0 ? 0 : 1;
        goto done;
    }
    size_t P[N_BENCH_MODELS] = {0};
    ModelConfig mc[N_BENCH_MODELS];
    for (int i = 0; i < N_BENCH_MODELS; i++) {
        if (!strstr(models, bench_models[i].name)) continue;
        model_cfg_of(&bench_models[i], &mc[i]);
        P[i] = bench_train(&b, &bench_models[i], &mc[i]);
    }
    for (int i = 0; ops && i < N_BENCH_MODELS; i++)
        if (P[i]) bench_ops(&b, &bench_models[i], &mc[i], P[i]);
    if (save && b.n_rows) {
        char path[1024], slug[128];
        if (out_path) snprintf(path, sizeof path, "%s", out_path);
        else {
            device_slug(b.be, slug, sizeof slug);
            snprintf(path, sizeof path, "bench/results/%s.tsv", slug);
        }
        if (bench_results_append(path, b.rows, b.n_rows, err, sizeof err) != 0) {
            fprintf(stderr, "bench: %s\n", err);
            rc = 1;
        } else {
            char note[400];
            snprintf(note, sizeof note, "%s %s: %s backend, %s, kernels %s", b.commit, b.date,
                     b.be->name, b.be->device, b.be->kernels);
            bench_results_note(path, note);
            printf("bench: %d rows appended to %s\n", b.n_rows, path);
        }
    }
done:
    free(b.rows);
    if (b.sq_x) b.be->ops->release(b.be, b.sq_x);
    if (b.sq_w) b.be->ops->release(b.be, b.sq_w);
    if (b.sq_y) b.be->ops->release(b.be, b.sq_y);
    backend_destroy(b.be);
    return rc;
}

int bench_run(const BenchOptions *o) {
    const char *models = o->models ? o->models : o->quick ? "demo" : "demo,llama71m,llama130m";
    const char *backend = o->backend ? o->backend : "cpu";
    if (!strcmp(backend, "all")) {
        int rc = run_backend("cpu", o->threads, models, o->quick, o->reps, o->ops, o->out,
                             o->save, o->commit, 0);
        Backend *probe = NULL;
        char err[256];
        if ((probe = backend_create("cuda", o->threads, err, sizeof err)) != NULL) {
            backend_destroy(probe);
            int rc2 = run_backend("cuda", o->threads, models, o->quick, o->reps, o->ops, o->out,
                                  o->save, o->commit, 0);
            if (rc2) rc = rc2;
        }
        return rc;
    }
    return run_backend(backend, o->threads, models, o->quick, o->reps, o->ops, o->out, o->save,
                       o->commit, o->peak_only);
}
