/* test_gpu.c — every CUDA op against its CPU twin (kernels/cpu), on fresh random inputs and
 * several shapes, awkward ones (not multiples of 8) included; and the runner of all GPU
 * suites (this one, then test_gpu_model.c's whole-model steps and runs).
 *
 * Method (docs/design.md section 10.4): inputs are drawn at random and rounded to bf16 on the host, so both
 * backends see identical values (the CPU in fp32, the GPU in bf16). Outputs that an op
 * writes are poisoned with NaN bit patterns (0xFF bytes) on both backends before each run;
 * every element must come back finite. Outputs that an op ADDS into (backward gradients)
 * start from random values of the same RMS as the CPU's increment (measured by a first CPU
 * run from zero), so that both a lost increment and an overwrite fail. The GPU result is
 * compared with the CPU's by the norm-wise relative error ||gpu - cpu|| / ||cpu||, which
 * must be within the op's budget, and by max|gpu - cpu| / max|cpu|, within 4x the budget.
 *
 * Budgets (norm-wise; max-wise is 4x):
 *   BUDGET_EXACT  0     embedding forward (a copy), bf16 transfers, master_to_compute
 *   BUDGET_F32    1e-5  fp32 paths: AdamW master/m/v, cross-entropy losses, norm mean/rstd,
 *                       embedding backward (fp32 sums of the same values, another order)
 *   BUDGET_F32SUM 1e-4  fp32 outputs of long sums of bf16 products on tensor cores or in
 *                       another order than the CPU's double: matmul dW, norm dweight/dbias
 *   BUDGET_BF16   1e-2  one bf16 rounding of the output: matmul out/dinp, norm out/dinp,
 *                       RoPE, SwiGLU, residual, cross-entropy dlogits
 *   BUDGET_ATTN   2e-2  attention: P is stored in bf16 and, in the backward, dS is rounded
 *                       to bf16 before the dQ/dK GEMMs (two chained roundings)
 *   sumsq: relative error 1e-12 (double accumulation on both sides).
 * The schemes' ops (DyT, branch scale): out/dinp BUDGET_BF16 (one rounding), their
 * parameter gradients (dalpha, dweight, dbias, dscale) BUDGET_F32SUM, as norm dweight.
 * Determinism: the same GPU op run twice on the same inputs gives bitwise equal outputs. */
#ifdef NB_HAVE_CUDA

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../testutil.h"
#include "backend.h"
#include "cuda/cu_nccl.h"
#include "gpu_tests.h"

#define BUDGET_EXACT 0.0
#define BUDGET_F32 1e-5
#define BUDGET_F32SUM 1e-4
#define BUDGET_BF16 1e-2
#define BUDGET_ATTN 2e-2

static Backend *cpu, *gpu;
static uint64_t rng = 0x6e6f726d62656e63ull; /* fresh draws across tests from one stream */
static int n_checks;                         /* comparisons made: never pass silently */

void gpu_note_check(void) { n_checks++; }

/* ---- host helpers -------------------------------------------------------------------- */
static float round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) return f;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_msg(p != NULL, "host allocation of %zu bytes failed", bytes);
    return p;
}

/* n values uniform in [lo, hi), rounded to bf16 */
static float *rand_bf16(size_t n, double lo, double hi) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = round_bf16((float)test_uniform(&rng, lo, hi));
    return x;
}
static float *rand_f32(size_t n, double lo, double hi) {
    float *x = xmalloc(n * sizeof(float));
    test_fill_uniform(x, n, &rng, lo, hi);
    return x;
}

/* a tensor on both backends */
typedef struct {
    void *c, *g;
    size_t n;
    int act; /* 1: act type (fp32 on CPU, bf16 on GPU); 0: f32 or i32 on both */
} Pair;

static void *be_alloc(Backend *be, size_t bytes) {
    void *p = be->ops->alloc(be, bytes);
    ck_assert_msg(p != NULL, "%s alloc of %zu bytes failed", be->name, bytes);
    return p;
}

static Pair pair_act(const float *h, size_t n) {
    Pair p = {be_alloc(cpu, n * cpu->act_bytes), be_alloc(gpu, n * gpu->act_bytes), n, 1};
    cpu->ops->upload_act(cpu, p.c, h, n);
    gpu->ops->upload_act(gpu, p.g, h, n);
    return p;
}
static Pair pair_raw(const void *h, size_t n) { /* 4-byte elements: f32 or i32 */
    Pair p = {be_alloc(cpu, n * 4), be_alloc(gpu, n * 4), n, 0};
    cpu->ops->upload(cpu, p.c, h, n * 4);
    gpu->ops->upload(gpu, p.g, h, n * 4);
    return p;
}
/* NaN bit patterns in every element (0xFFFF is a bf16 NaN, 0xFFFFFFFF an fp32 NaN) */
static void poison(Pair *p) {
    size_t cb = p->n * (p->act ? cpu->act_bytes : 4), gb = p->n * (p->act ? gpu->act_bytes : 4);
    unsigned char *ones = xmalloc(cb > gb ? cb : gb);
    memset(ones, 0xFF, cb > gb ? cb : gb);
    cpu->ops->upload(cpu, p->c, ones, cb);
    gpu->ops->upload(gpu, p->g, ones, gb);
    free(ones);
}
static Pair pair_poison(size_t n, int act) {
    Pair p = {be_alloc(cpu, n * (act ? cpu->act_bytes : 4)),
              be_alloc(gpu, n * (act ? gpu->act_bytes : 4)), n, act};
    poison(&p);
    return p;
}
static void pair_free(Pair *p) {
    cpu->ops->release(cpu, p->c);
    gpu->ops->release(gpu, p->g);
    p->c = p->g = NULL;
}
/* downloads both sides as fp32 (caller frees) */
static void pair_get(const Pair *p, float **hc, float **hg) {
    *hc = xmalloc(p->n * sizeof(float));
    *hg = xmalloc(p->n * sizeof(float));
    if (p->act) {
        cpu->ops->download_act(cpu, *hc, p->c, p->n);
        gpu->ops->download_act(gpu, *hg, p->g, p->n);
    } else {
        cpu->ops->download(cpu, *hc, p->c, p->n * 4);
        gpu->ops->download(gpu, *hg, p->g, p->n * 4);
    }
}

/* ---- comparison ----------------------------------------------------------------------- */
static void expect_close_h(const char *what, const float *got, const float *ref, size_t n,
                           double budget) {
    double num = 0.0, den = 0.0, maxerr = 0.0, maxref = 0.0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(ref[i]), "%s: CPU reference element %zu is %g (not written?)",
                      what, i, (double)ref[i]);
        ck_assert_msg(isfinite(got[i]), "%s: GPU element %zu of %zu is %g (not written?)",
                      what, i, n, (double)got[i]);
        double d = (double)got[i] - ref[i];
        num += d * d;
        den += (double)ref[i] * ref[i];
        maxerr = fmax(maxerr, fabs(d));
        maxref = fmax(maxref, fabs((double)ref[i]));
    }
    double nrel = num == 0.0 ? 0.0 : sqrt(num) / fmax(sqrt(den), 1e-30);
    double mrel = maxerr == 0.0 ? 0.0 : maxerr / fmax(maxref, 1e-30);
    n_checks++;
    printf("  %-62s rel %.2e  max %.2e  (budget %.0e)\n", what, nrel, mrel, budget);
    ck_assert_msg(nrel <= budget && mrel <= 4.0 * budget,
                  "%s: GPU vs CPU relative error %.3e (max-wise %.3e) over budget %.1e", what,
                  nrel, mrel, budget);
}
static void expect_close(const char *what, const Pair *p, double budget) {
    float *hc, *hg;
    pair_get(p, &hc, &hg);
    expect_close_h(what, hg, hc, p->n, budget);
    free(hc);
    free(hg);
}

/* Accumulator init: the CPU's increment `probe` (the output of a CPU run from zero) sets
 * the scale; both backends start from the same random values of that RMS. */
static void acc_init(Pair *p) {
    float *h = xmalloc(p->n * sizeof(float));
    if (p->act) cpu->ops->download_act(cpu, h, p->c, p->n);
    else cpu->ops->download(cpu, h, p->c, p->n * 4);
    double ss = 0.0;
    for (size_t i = 0; i < p->n; i++) ss += (double)h[i] * h[i];
    double rms = p->n ? sqrt(ss / (double)p->n) : 0.0;
    if (!(rms > 0.0)) rms = 1.0;
    double a = rms * sqrt(3.0); /* uniform [-a, a) has RMS a/sqrt(3) */
    for (size_t i = 0; i < p->n; i++) h[i] = round_bf16((float)test_uniform(&rng, -a, a));
    if (p->act) {
        cpu->ops->upload_act(cpu, p->c, h, p->n);
        gpu->ops->upload_act(gpu, p->g, h, p->n);
    } else {
        cpu->ops->upload(cpu, p->c, h, p->n * 4);
        gpu->ops->upload(gpu, p->g, h, p->n * 4);
    }
    free(h);
}
static Pair pair_zero(size_t n, int act) { /* alloc is zero-filled on both */
    Pair p = {be_alloc(cpu, n * (act ? cpu->act_bytes : 4)),
              be_alloc(gpu, n * (act ? gpu->act_bytes : 4)), n, act};
    return p;
}

static char label[256];
#define LABEL(...) (snprintf(label, sizeof label, __VA_ARGS__), label)

/* ---- memory --------------------------------------------------------------------------- */
START_TEST(test_memory) {
    const size_t sizes[] = {1, 7, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        /* alloc is zero-filled */
        void *z = be_alloc(gpu, n * 4);
        unsigned char *hb = xmalloc(n * 4);
        memset(hb, 0xAB, n * 4);
        gpu->ops->download(gpu, hb, z, n * 4);
        for (size_t i = 0; i < n * 4; i++) ck_assert_msg(hb[i] == 0, "alloc not zero at %zu", i);
        /* bf16 round trip is exact for bf16 values */
        float *h = rand_bf16(n, -100.0, 100.0), *back = xmalloc(n * 4);
        gpu->ops->upload_act(gpu, z, h, n);
        memset(back, 0xFF, n * 4);
        gpu->ops->download_act(gpu, back, z, n);
        ck_assert_msg(memcmp(h, back, n * 4) == 0, "upload_act/download_act round trip n=%zu", n);
        /* copy, zero */
        void *z2 = be_alloc(gpu, n * 2);
        gpu->ops->copy(gpu, z2, z, n * 2);
        memset(back, 0xFF, n * 4);
        gpu->ops->download_act(gpu, back, z2, n);
        ck_assert_msg(memcmp(h, back, n * 4) == 0, "copy n=%zu", n);
        gpu->ops->zero(gpu, z2, n * 2);
        gpu->ops->download_act(gpu, back, z2, n);
        for (size_t i = 0; i < n; i++) ck_assert_msg(back[i] == 0.0f, "zero at %zu", i);
        /* upload_act rounds to nearest even like master_to_compute */
        float *m = rand_f32(n, -3.0, 3.0);
        void *dm = be_alloc(gpu, n * 4);
        gpu->ops->upload(gpu, dm, m, n * 4);
        gpu->ops->master_to_compute(gpu, z2, dm, n);
        gpu->ops->download_act(gpu, back, z2, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(back[i] == round_bf16(m[i]), "master_to_compute at %zu: %g vs %g", i,
                          (double)back[i], (double)round_bf16(m[i]));
        gpu->ops->upload_act(gpu, z2, m, n);
        gpu->ops->download_act(gpu, back, z2, n);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(back[i] == round_bf16(m[i]), "upload_act rounding at %zu", i);
        n_checks++;
        printf("  memory n=%zu: exact\n", n);
        gpu->ops->release(gpu, z);
        gpu->ops->release(gpu, z2);
        gpu->ops->release(gpu, dm);
        free(hb);
        free(h);
        free(back);
        free(m);
    }
}
END_TEST

/* ---- matmul --------------------------------------------------------------------------- */
START_TEST(test_matmul) {
    const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {33, 65, 17}, {64, 96, 128}, {130, 768, 301}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], IC = shapes[s][1], OC = shapes[s][2];
        float *hx = rand_bf16((size_t)N * IC, -1, 1), *hw = rand_bf16((size_t)OC * IC, -0.5, 0.5);
        float *hd = rand_bf16((size_t)N * OC, -1, 1);
        Pair x = pair_act(hx, (size_t)N * IC), w = pair_act(hw, (size_t)OC * IC);
        Pair dout = pair_act(hd, (size_t)N * OC);
        Pair out = pair_poison((size_t)N * OC, 1);
        cpu->ops->matmul_forward(cpu, out.c, x.c, w.c, N, IC, OC);
        gpu->ops->matmul_forward(gpu, out.g, x.g, w.g, N, IC, OC);
        expect_close(LABEL("matmul_forward N=%d IC=%d OC=%d", N, IC, OC), &out, BUDGET_BF16);

        Pair dx = pair_zero((size_t)N * IC, 1), dw = pair_zero((size_t)OC * IC, 0);
        cpu->ops->matmul_backward(cpu, dx.c, dw.c, dout.c, x.c, w.c, N, IC, OC);
        acc_init(&dx);
        acc_init(&dw);
        cpu->ops->matmul_backward(cpu, dx.c, dw.c, dout.c, x.c, w.c, N, IC, OC);
        gpu->ops->matmul_backward(gpu, dx.g, dw.g, dout.g, x.g, w.g, N, IC, OC);
        expect_close(LABEL("matmul_backward dinp N=%d IC=%d OC=%d", N, IC, OC), &dx, BUDGET_BF16);
        expect_close(LABEL("matmul_backward dw N=%d IC=%d OC=%d", N, IC, OC), &dw, BUDGET_F32SUM);
        /* dinp NULL: dw only */
        acc_init(&dw);
        cpu->ops->matmul_backward(cpu, NULL, dw.c, dout.c, x.c, w.c, N, IC, OC);
        gpu->ops->matmul_backward(gpu, NULL, dw.g, dout.g, x.g, w.g, N, IC, OC);
        expect_close(LABEL("matmul_backward dw (dinp NULL) N=%d IC=%d OC=%d", N, IC, OC), &dw,
                     BUDGET_F32SUM);
        pair_free(&x), pair_free(&w), pair_free(&dout), pair_free(&out), pair_free(&dx),
            pair_free(&dw);
        free(hx), free(hw), free(hd);
    }
}
END_TEST

/* ---- norms ---------------------------------------------------------------------------- */
START_TEST(test_norm) {
    const int shapes[][2] = {{1, 8}, {5, 7}, {64, 768}, {33, 1000}, {3, 4097}, {200, 96}};
    const float scales[] = {1.0f, 0.40824829f};
    for (int kind = NORM_RMS; kind <= NORM_LAYER; kind++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            for (int si = 0; si < 2; si++) {
                int N = shapes[s][0], C = shapes[s][1];
                float sc = scales[si];
                const char *kn = kind == NORM_RMS ? "rms" : "layer";
                float eps = 1e-6f;
                size_t n = (size_t)N * C;
                float *hx = rand_bf16(n, -1.5, 2.5), *hw = rand_bf16((size_t)C, 0.5, 1.5);
                float *hb = rand_bf16((size_t)C, -0.5, 0.5), *hd = rand_bf16(n, -1, 1);
                Pair x = pair_act(hx, n), w = pair_act(hw, (size_t)C), b = pair_act(hb, (size_t)C);
                Pair dout = pair_act(hd, n);
                Pair out = pair_poison(n, 1), mean = pair_poison((size_t)N, 0),
                     rstd = pair_poison((size_t)N, 0);
                int layer = kind == NORM_LAYER;
                cpu->ops->norm_forward(cpu, (NormKind)kind, out.c, layer ? mean.c : NULL, rstd.c,
                                       x.c, w.c, layer ? b.c : NULL, N, C, eps, sc);
                gpu->ops->norm_forward(gpu, (NormKind)kind, out.g, layer ? mean.g : NULL, rstd.g,
                                       x.g, w.g, layer ? b.g : NULL, N, C, eps, sc);
                expect_close(LABEL("norm_forward %s N=%d C=%d s=%.3f out", kn, N, C, sc), &out,
                             BUDGET_BF16);
                expect_close(LABEL("norm_forward %s N=%d C=%d s=%.3f rstd", kn, N, C, sc), &rstd,
                             BUDGET_F32);
                if (layer)
                    expect_close(LABEL("norm_forward %s N=%d C=%d s=%.3f mean", kn, N, C, sc),
                                 &mean, BUDGET_F32);

                Pair dx = pair_zero(n, 1), dw = pair_zero((size_t)C, 0),
                     db = pair_zero((size_t)C, 0);
                cpu->ops->norm_backward(cpu, (NormKind)kind, dx.c, dw.c, layer ? db.c : NULL,
                                        dout.c, x.c, w.c, layer ? mean.c : NULL, rstd.c, N, C, sc);
                acc_init(&dx);
                acc_init(&dw);
                acc_init(&db);
                cpu->ops->norm_backward(cpu, (NormKind)kind, dx.c, dw.c, layer ? db.c : NULL,
                                        dout.c, x.c, w.c, layer ? mean.c : NULL, rstd.c, N, C, sc);
                gpu->ops->norm_backward(gpu, (NormKind)kind, dx.g, dw.g, layer ? db.g : NULL,
                                        dout.g, x.g, w.g, layer ? mean.g : NULL, rstd.g, N, C, sc);
                expect_close(LABEL("norm_backward %s N=%d C=%d s=%.3f dinp", kn, N, C, sc), &dx,
                             BUDGET_BF16);
                expect_close(LABEL("norm_backward %s N=%d C=%d s=%.3f dweight", kn, N, C, sc),
                             &dw, BUDGET_F32SUM);
                /* RMSNorm: dbias untouched (still the init) on both */
                expect_close(LABEL("norm_backward %s N=%d C=%d s=%.3f dbias", kn, N, C, sc), &db,
                             BUDGET_F32SUM);
                pair_free(&x), pair_free(&w), pair_free(&b), pair_free(&dout), pair_free(&out),
                    pair_free(&mean), pair_free(&rstd), pair_free(&dx), pair_free(&dw),
                    pair_free(&db);
                free(hx), free(hw), free(hb), free(hd);
            }
        }
    }
}
END_TEST

/* ---- the schemes' ops: DyT and the branch scale ---------------------------------------- */
/* Budgets: out and dinp carry one bf16 rounding (BUDGET_BF16); dalpha, dweight, dbias and
 * dscale are fp32 sums of products of the same bf16 values, in another order than the
 * CPU's double (BUDGET_F32SUM, as norm dweight). Each GPU call is also run twice on the same
 * inputs and must give the same bytes. */
static void expect_same_gpu(const char *what, const Pair *a, const Pair *b) {
    size_t bytes = a->n * (a->act ? gpu->act_bytes : 4);
    unsigned char *ha = xmalloc(bytes), *hb = xmalloc(bytes);
    gpu->ops->download(gpu, ha, a->g, bytes);
    gpu->ops->download(gpu, hb, b->g, bytes);
    n_checks++;
    ck_assert_msg(memcmp(ha, hb, bytes) == 0, "%s: two GPU runs differ", what);
    free(ha), free(hb);
}

START_TEST(test_dyt) {
    const int shapes[][2] = {{1, 8}, {5, 7}, {64, 768}, {33, 1000}, {3, 4097}, {200, 96}};
    const float scales[] = {1.0f, 0.40824829f};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int si = 0; si < 2; si++) {
            int N = shapes[s][0], C = shapes[s][1];
            float sc = scales[si];
            size_t n = (size_t)N * C;
            float *hx = rand_bf16(n, -3, 3), *ha = rand_bf16(1, 0.2, 0.9),
                  *hw = rand_bf16((size_t)C, 0.5, 1.5), *hb = rand_bf16((size_t)C, -0.5, 0.5),
                  *hd = rand_bf16(n, -1, 1);
            Pair x = pair_act(hx, n), a = pair_act(ha, 1), w = pair_act(hw, (size_t)C),
                 b = pair_act(hb, (size_t)C), dout = pair_act(hd, n);
            Pair out = pair_poison(n, 1), out2 = pair_poison(n, 1);
            cpu->ops->dyt_forward(cpu, out.c, x.c, a.c, w.c, b.c, N, C, sc);
            gpu->ops->dyt_forward(gpu, out.g, x.g, a.g, w.g, b.g, N, C, sc);
            gpu->ops->dyt_forward(gpu, out2.g, x.g, a.g, w.g, b.g, N, C, sc);
            expect_close(LABEL("dyt_forward N=%d C=%d s=%.3f out", N, C, sc), &out, BUDGET_BF16);
            expect_same_gpu(LABEL("dyt_forward N=%d C=%d determinism", N, C), &out, &out2);

            Pair dx = pair_zero(n, 1), da = pair_zero(1, 0), dw = pair_zero((size_t)C, 0),
                 db = pair_zero((size_t)C, 0);
            cpu->ops->dyt_backward(cpu, dx.c, da.c, dw.c, db.c, dout.c, x.c, a.c, w.c, N, C, sc);
            acc_init(&dx), acc_init(&da), acc_init(&dw), acc_init(&db);
            Pair dx2 = pair_zero(n, 1), da2 = pair_zero(1, 0), dw2 = pair_zero((size_t)C, 0),
                 db2 = pair_zero((size_t)C, 0);
            gpu->ops->copy(gpu, dx2.g, dx.g, n * gpu->act_bytes);
            gpu->ops->copy(gpu, da2.g, da.g, 4);
            gpu->ops->copy(gpu, dw2.g, dw.g, (size_t)C * 4);
            gpu->ops->copy(gpu, db2.g, db.g, (size_t)C * 4);
            cpu->ops->dyt_backward(cpu, dx.c, da.c, dw.c, db.c, dout.c, x.c, a.c, w.c, N, C, sc);
            gpu->ops->dyt_backward(gpu, dx.g, da.g, dw.g, db.g, dout.g, x.g, a.g, w.g, N, C, sc);
            gpu->ops->dyt_backward(gpu, dx2.g, da2.g, dw2.g, db2.g, dout.g, x.g, a.g, w.g, N, C,
                                   sc);
            expect_close(LABEL("dyt_backward N=%d C=%d s=%.3f dinp", N, C, sc), &dx, BUDGET_BF16);
            expect_close(LABEL("dyt_backward N=%d C=%d s=%.3f dalpha", N, C, sc), &da,
                         BUDGET_F32SUM);
            expect_close(LABEL("dyt_backward N=%d C=%d s=%.3f dweight", N, C, sc), &dw,
                         BUDGET_F32SUM);
            expect_close(LABEL("dyt_backward N=%d C=%d s=%.3f dbias", N, C, sc), &db,
                         BUDGET_F32SUM);
            expect_same_gpu(LABEL("dyt_backward N=%d C=%d determinism dinp", N, C), &dx, &dx2);
            expect_same_gpu(LABEL("dyt_backward N=%d C=%d determinism dalpha", N, C), &da, &da2);
            expect_same_gpu(LABEL("dyt_backward N=%d C=%d determinism dweight", N, C), &dw, &dw2);
            expect_same_gpu(LABEL("dyt_backward N=%d C=%d determinism dbias", N, C), &db, &db2);
            Pair *all[] = {&x, &a, &w, &b, &dout, &out, &out2, &dx, &da, &dw, &db,
                           &dx2, &da2, &dw2, &db2};
            for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) pair_free(all[k]);
            free(hx), free(ha), free(hw), free(hb), free(hd);
        }
    }
}
END_TEST

START_TEST(test_branch_scale) {
    const int shapes[][2] = {{1, 8}, {5, 7}, {64, 768}, {33, 1000}, {3, 4097}, {200, 96}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        for (int scalar = 0; scalar < 2; scalar++) {
            int N = shapes[s][0], C = shapes[s][1], SC = scalar ? 1 : C;
            size_t n = (size_t)N * C;
            const char *kind = scalar ? "scalar" : "channel";
            float *hx = rand_bf16(n, -1, 1), *hl = rand_bf16((size_t)SC, -0.5, 0.5),
                  *hd = rand_bf16(n, -1, 1);
            Pair x = pair_act(hx, n), lam = pair_act(hl, (size_t)SC), dout = pair_act(hd, n);
            Pair out = pair_poison(n, 1), out2 = pair_poison(n, 1);
            cpu->ops->branch_scale_forward(cpu, out.c, x.c, lam.c, N, C, SC);
            gpu->ops->branch_scale_forward(gpu, out.g, x.g, lam.g, N, C, SC);
            gpu->ops->branch_scale_forward(gpu, out2.g, x.g, lam.g, N, C, SC);
            expect_close(LABEL("branch_scale_forward %s N=%d C=%d out", kind, N, C), &out,
                         BUDGET_BF16);
            expect_same_gpu(LABEL("branch_scale_forward %s N=%d C=%d determinism", kind, N, C),
                            &out, &out2);
            Pair dx = pair_zero(n, 1), dl = pair_zero((size_t)SC, 0);
            cpu->ops->branch_scale_backward(cpu, dx.c, dl.c, dout.c, x.c, lam.c, N, C, SC);
            acc_init(&dx), acc_init(&dl);
            Pair dx2 = pair_zero(n, 1), dl2 = pair_zero((size_t)SC, 0);
            gpu->ops->copy(gpu, dx2.g, dx.g, n * gpu->act_bytes);
            gpu->ops->copy(gpu, dl2.g, dl.g, (size_t)SC * 4);
            cpu->ops->branch_scale_backward(cpu, dx.c, dl.c, dout.c, x.c, lam.c, N, C, SC);
            gpu->ops->branch_scale_backward(gpu, dx.g, dl.g, dout.g, x.g, lam.g, N, C, SC);
            gpu->ops->branch_scale_backward(gpu, dx2.g, dl2.g, dout.g, x.g, lam.g, N, C, SC);
            expect_close(LABEL("branch_scale_backward %s N=%d C=%d dinp", kind, N, C), &dx,
                         BUDGET_BF16);
            expect_close(LABEL("branch_scale_backward %s N=%d C=%d dscale", kind, N, C), &dl,
                         BUDGET_F32SUM);
            expect_same_gpu(LABEL("branch_scale_backward %s N=%d C=%d determinism dinp", kind, N,
                                  C), &dx, &dx2);
            expect_same_gpu(LABEL("branch_scale_backward %s N=%d C=%d determinism dscale", kind,
                                  N, C), &dl, &dl2);
            Pair *all[] = {&x, &lam, &dout, &out, &out2, &dx, &dl, &dx2, &dl2};
            for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) pair_free(all[k]);
            free(hx), free(hl), free(hd);
        }
    }
}
END_TEST

/* ---- RoPE ----------------------------------------------------------------------------- */
START_TEST(test_rope) {
    /* the last shape reuses the table the one before built (shorter T, same HS) */
    const int shapes[][4] = {{1, 1, 1, 2}, {2, 7, 3, 6}, {2, 33, 4, 64}, {1, 130, 2, 128},
                             {3, 20, 2, 128}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], T = shapes[s][1], NH = shapes[s][2], HS = shapes[s][3];
        size_t n = (size_t)B * T * NH * HS;
        float *hx = rand_bf16(n, -2, 2), *hd = rand_bf16(n, -1, 1);
        Pair x = pair_act(hx, n), dout = pair_act(hd, n), out = pair_poison(n, 1);
        cpu->ops->rope_forward(cpu, out.c, x.c, B, T, NH, HS, 10000.0f);
        gpu->ops->rope_forward(gpu, out.g, x.g, B, T, NH, HS, 10000.0f);
        expect_close(LABEL("rope_forward B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &out,
                     BUDGET_BF16);
        /* in place */
        cpu->ops->rope_forward(cpu, x.c, x.c, B, T, NH, HS, 10000.0f);
        gpu->ops->rope_forward(gpu, x.g, x.g, B, T, NH, HS, 10000.0f);
        expect_close(LABEL("rope_forward in place B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &x,
                     BUDGET_BF16);
        Pair dx = pair_zero(n, 1);
        cpu->ops->rope_backward(cpu, dx.c, dout.c, B, T, NH, HS, 10000.0f);
        acc_init(&dx);
        cpu->ops->rope_backward(cpu, dx.c, dout.c, B, T, NH, HS, 10000.0f);
        gpu->ops->rope_backward(gpu, dx.g, dout.g, B, T, NH, HS, 10000.0f);
        expect_close(LABEL("rope_backward B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &dx,
                     BUDGET_BF16);
        pair_free(&x), pair_free(&dout), pair_free(&out), pair_free(&dx);
        free(hx), free(hd);
    }
}
END_TEST

/* ---- attention ------------------------------------------------------------------------ */
START_TEST(test_attention) {
    const int shapes[][4] = {{1, 1, 1, 4},  {2, 7, 3, 6},  {1, 33, 2, 16},
                             {2, 64, 4, 32}, {1, 130, 3, 64}, {2, 256, 2, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], T = shapes[s][1], NH = shapes[s][2], HS = shapes[s][3];
        size_t n = (size_t)B * T * NH * HS;
        float *hq = rand_bf16(n, -2, 2), *hk = rand_bf16(n, -2, 2), *hv = rand_bf16(n, -1, 1),
              *hd = rand_bf16(n, -1, 1);
        Pair q = pair_act(hq, n), k = pair_act(hk, n), v = pair_act(hv, n), dout = pair_act(hd, n);
        Pair out = pair_poison(n, 1);
        size_t sbc = cpu->ops->attention_saved_bytes(cpu, B, T, NH);
        size_t sbg = gpu->ops->attention_saved_bytes(gpu, B, T, NH);
        ck_assert_uint_eq(sbg, (size_t)B * NH * T * T * 2);
        void *savc = be_alloc(cpu, sbc), *savg = be_alloc(gpu, sbg);
        unsigned char *ones = xmalloc(sbc > sbg ? sbc : sbg);
        memset(ones, 0xFF, sbc > sbg ? sbc : sbg);
        cpu->ops->upload(cpu, savc, ones, sbc);
        gpu->ops->upload(gpu, savg, ones, sbg);
        free(ones);
        cpu->ops->attention_forward(cpu, out.c, savc, q.c, k.c, v.c, B, T, NH, HS);
        gpu->ops->attention_forward(gpu, out.g, savg, q.g, k.g, v.g, B, T, NH, HS);
        expect_close(LABEL("attention_forward B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &out,
                     BUDGET_ATTN);
        { /* the saved probabilities: bf16 on the GPU, fp32 on the CPU, same layout */
            size_t np = (size_t)B * NH * T * T;
            float *pc = xmalloc(np * 4), *pg = xmalloc(np * 4);
            cpu->ops->download(cpu, pc, savc, np * 4);
            gpu->ops->download_act(gpu, pg, savg, np);
            expect_close_h(LABEL("attention_forward saved P B=%d T=%d NH=%d HS=%d", B, T, NH, HS),
                           pg, pc, np, BUDGET_BF16);
            free(pc), free(pg);
        }
        Pair dq = pair_zero(n, 1), dk = pair_zero(n, 1), dv = pair_zero(n, 1);
        cpu->ops->attention_backward(cpu, dq.c, dk.c, dv.c, dout.c, savc, q.c, k.c, v.c, B, T, NH,
                                     HS);
        acc_init(&dq);
        acc_init(&dk);
        acc_init(&dv);
        cpu->ops->attention_backward(cpu, dq.c, dk.c, dv.c, dout.c, savc, q.c, k.c, v.c, B, T, NH,
                                     HS);
        gpu->ops->attention_backward(gpu, dq.g, dk.g, dv.g, dout.g, savg, q.g, k.g, v.g, B, T, NH,
                                     HS);
        expect_close(LABEL("attention_backward dq B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &dq,
                     BUDGET_ATTN);
        expect_close(LABEL("attention_backward dk B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &dk,
                     BUDGET_ATTN);
        expect_close(LABEL("attention_backward dv B=%d T=%d NH=%d HS=%d", B, T, NH, HS), &dv,
                     BUDGET_ATTN);
        cpu->ops->release(cpu, savc);
        gpu->ops->release(gpu, savg);
        pair_free(&q), pair_free(&k), pair_free(&v), pair_free(&dout), pair_free(&out),
            pair_free(&dq), pair_free(&dk), pair_free(&dv);
        free(hq), free(hk), free(hv), free(hd);
    }
}
END_TEST

/* ---- SwiGLU, residual ----------------------------------------------------------------- */
START_TEST(test_swiglu) {
    const size_t sizes[] = {1, 1000, 12345};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *hg = rand_bf16(n, -4, 4), *hu = rand_bf16(n, -2, 2), *hd = rand_bf16(n, -1, 1);
        Pair g = pair_act(hg, n), u = pair_act(hu, n), d = pair_act(hd, n), out = pair_poison(n, 1);
        cpu->ops->swiglu_forward(cpu, out.c, g.c, u.c, n);
        gpu->ops->swiglu_forward(gpu, out.g, g.g, u.g, n);
        expect_close(LABEL("swiglu_forward n=%zu", n), &out, BUDGET_BF16);
        Pair dg = pair_zero(n, 1), du = pair_zero(n, 1);
        cpu->ops->swiglu_backward(cpu, dg.c, du.c, d.c, g.c, u.c, n);
        acc_init(&dg);
        acc_init(&du);
        cpu->ops->swiglu_backward(cpu, dg.c, du.c, d.c, g.c, u.c, n);
        gpu->ops->swiglu_backward(gpu, dg.g, du.g, d.g, g.g, u.g, n);
        expect_close(LABEL("swiglu_backward dgate n=%zu", n), &dg, BUDGET_BF16);
        expect_close(LABEL("swiglu_backward dup n=%zu", n), &du, BUDGET_BF16);
        pair_free(&g), pair_free(&u), pair_free(&d), pair_free(&out), pair_free(&dg),
            pair_free(&du);
        free(hg), free(hu), free(hd);
    }
}
END_TEST

START_TEST(test_residual) {
    const size_t sizes[] = {1, 999, 100003};
    const float scales[] = {1.0f, 2.8284271f};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (int si = 0; si < 2; si++) {
            size_t n = sizes[s];
            float sc = scales[si];
            float *hx = rand_bf16(n, -2, 2), *hf = rand_bf16(n, -1, 1);
            Pair x = pair_act(hx, n), f = pair_act(hf, n), out = pair_poison(n, 1);
            cpu->ops->residual_forward(cpu, out.c, x.c, sc, f.c, n);
            gpu->ops->residual_forward(gpu, out.g, x.g, sc, f.g, n);
            expect_close(LABEL("residual_forward n=%zu scale=%.3f", n, sc), &out, BUDGET_BF16);
            /* out aliases f, then x */
            cpu->ops->residual_forward(cpu, f.c, x.c, sc, f.c, n);
            gpu->ops->residual_forward(gpu, f.g, x.g, sc, f.g, n);
            expect_close(LABEL("residual_forward out==f n=%zu scale=%.3f", n, sc), &f,
                         BUDGET_BF16);
            cpu->ops->residual_forward(cpu, x.c, x.c, sc, out.c, n);
            gpu->ops->residual_forward(gpu, x.g, x.g, sc, out.g, n);
            expect_close(LABEL("residual_forward out==x n=%zu scale=%.3f", n, sc), &x,
                         BUDGET_BF16);
            /* scaled_add: dst += scale * src */
            cpu->ops->scaled_add(cpu, out.c, f.c, sc, n);
            gpu->ops->scaled_add(gpu, out.g, f.g, sc, n);
            expect_close(LABEL("scaled_add n=%zu scale=%.3f", n, sc), &out, BUDGET_BF16);
            pair_free(&x), pair_free(&f), pair_free(&out);
            free(hx), free(hf);
        }
    }
}
END_TEST

/* ---- cross-entropy -------------------------------------------------------------------- */
START_TEST(test_crossentropy) {
    const int shapes[][2] = {{1, 2}, {7, 1001}, {33, 32000}, {5, 50257}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], V = shapes[s][1];
        size_t n = (size_t)N * V;
        float *hl = rand_bf16(n, -4, 4);
        int32_t *ht = xmalloc((size_t)N * 4);
        for (int i = 0; i < N; i++) ht[i] = (int32_t)(rng_next(&rng) % (uint64_t)V);
        Pair logits = pair_act(hl, n), targets = pair_raw(ht, (size_t)N);
        Pair losses = pair_poison((size_t)N, 0), dl = pair_poison(n, 1);
        float dloss = 1.0f / (float)N;
        /* forward only */
        cpu->ops->crossentropy(cpu, losses.c, NULL, logits.c, targets.c, N, V, dloss);
        gpu->ops->crossentropy(gpu, losses.g, NULL, logits.g, targets.g, N, V, dloss);
        expect_close(LABEL("crossentropy losses (no grad) N=%d V=%d", N, V), &losses, BUDGET_F32);
        /* separate dlogits */
        poison(&losses);
        cpu->ops->crossentropy(cpu, losses.c, dl.c, logits.c, targets.c, N, V, dloss);
        gpu->ops->crossentropy(gpu, losses.g, dl.g, logits.g, targets.g, N, V, dloss);
        expect_close(LABEL("crossentropy losses N=%d V=%d", N, V), &losses, BUDGET_F32);
        expect_close(LABEL("crossentropy dlogits N=%d V=%d", N, V), &dl, BUDGET_BF16);
        /* in place: dlogits == logits */
        poison(&losses);
        cpu->ops->crossentropy(cpu, losses.c, logits.c, logits.c, targets.c, N, V, dloss);
        gpu->ops->crossentropy(gpu, losses.g, logits.g, logits.g, targets.g, N, V, dloss);
        expect_close(LABEL("crossentropy in place losses N=%d V=%d", N, V), &losses, BUDGET_F32);
        expect_close(LABEL("crossentropy in place dlogits N=%d V=%d", N, V), &logits,
                     BUDGET_BF16);
        pair_free(&logits), pair_free(&targets), pair_free(&losses), pair_free(&dl);
        free(hl), free(ht);
    }
}
END_TEST

/* ---- AdamW ---------------------------------------------------------------------------- */
START_TEST(test_adamw) {
    const size_t sizes[] = {1, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *hp = rand_f32(n, -1, 1);
        Pair p = pair_raw(hp, n), m = pair_zero(n, 0), v = pair_zero(n, 0);
        void *compute = be_alloc(gpu, n * 2);
        AdamWArgs a = {1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, 1, 0};
        for (int step = 1; step <= 3; step++) {
            float *hg = rand_f32(n, -0.01, 0.01);
            Pair g = pair_raw(hg, n);
            a.step = step;
            a.weight_decay = step == 2 ? 0.0f : 0.1f;
            a.grad_scale = step == 3 ? 0.37f : 1.0f;
            cpu->ops->adamw_update(cpu, p.c, NULL, g.c, m.c, v.c, n, &a);
            gpu->ops->adamw_update(gpu, p.g, compute, g.g, m.g, v.g, n, &a);
            expect_close(LABEL("adamw n=%zu step=%d master", n, step), &p, BUDGET_F32);
            expect_close(LABEL("adamw n=%zu step=%d m", n, step), &m, BUDGET_F32);
            expect_close(LABEL("adamw n=%zu step=%d v", n, step), &v, BUDGET_F32);
            /* the compute copy is the GPU master rounded to bf16 */
            float *gm = xmalloc(n * 4), *gc = xmalloc(n * 4);
            gpu->ops->download(gpu, gm, p.g, n * 4);
            gpu->ops->download_act(gpu, gc, compute, n);
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(gc[i] == round_bf16(gm[i]), "adamw compute copy at %zu", i);
            free(gm), free(gc), free(hg);
            pair_free(&g);
        }
        gpu->ops->release(gpu, compute);
        pair_free(&p), pair_free(&m), pair_free(&v);
        free(hp);
    }
}
END_TEST

/* ---- AdamW, train.precision: bf16_pure ----------------------------------------------------
 * Against a float64 twin written here from torch's multi-tensor Adam on bf16 tensors
 * (torch/optim/adam.py, _multi_tensor_adam; kernels/backend.h, AdamWArgs.bf16_pure): every
 * foreach op's result rounded to bf16, the op itself exact (double). The GPU computes each
 * op in fp32 before rounding, as torch does, so the two differ only where an fp32 result
 * lies within fp32 rounding of a bf16 rounding boundary (about 2^-16 of the elements per
 * op), by one bf16 ulp. Budget: at least 99.9% of the elements of master, m and v bitwise
 * equal to the twin, every element within one bf16 ulp (2^-7 relative, plus 1e-30 near 0);
 * master values bf16-representable, the compute copy equal to them. Each step starts the
 * twin from the GPU's state of the step before, so a 1-ulp difference cannot compound. */
static double bf16_of(double x) { /* round to nearest even at 8 significant bits */
    if (x == 0.0 || !isfinite(x)) return x;
    int e;
    double f = frexp(x, &e); /* |f| in [0.5, 1) */
    return ldexp(nearbyint(ldexp(f, 8)), e - 8);
}

static void adamw_bf16_pure_twin(double *p, double *m, double *v, const float *grad, size_t n,
                                 const AdamWArgs *a) {
    const double bc1 = 1.0 - pow((double)a->beta1, a->step);
    const double bc2_sqrt = (double)(float)sqrt(1.0 - pow((double)a->beta2, a->step));
    const double step_size = (double)(float)(-(double)a->lr / bc1);
    const double decay = (double)(float)(1.0 - (double)a->lr * a->weight_decay);
    const double b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    for (size_t i = 0; i < n; i++) {
        double g = bf16_of((double)(float)(a->grad_scale * grad[i]));
        double pi = bf16_of(p[i]);
        if (decay != 1.0) pi = bf16_of(pi * decay);
        m[i] = bf16_of(m[i] + (double)(1.0f - a->beta1) * (g - m[i]));
        v[i] = bf16_of(bf16_of(v[i] * b2) + (double)(1.0f - a->beta2) * g * g);
        double d = bf16_of(bf16_of(bf16_of(sqrt(v[i])) / bc2_sqrt) + eps);
        p[i] = bf16_of(pi + step_size * (m[i] / d));
    }
    (void)b1;
}

START_TEST(test_adamw_bf16_pure) {
    const size_t sizes[] = {1, 1000, 100003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *hp = rand_f32(n, -1, 1); /* not bf16 values: the kernel rounds them first */
        float *zeros = xmalloc(n * 4);
        memset(zeros, 0, n * 4);
        float *p = be_alloc(gpu, n * 4), *m = be_alloc(gpu, n * 4), *v = be_alloc(gpu, n * 4),
              *g = be_alloc(gpu, n * 4);
        void *compute = be_alloc(gpu, n * 2);
        gpu->ops->upload(gpu, p, hp, n * 4);
        gpu->ops->upload(gpu, m, zeros, n * 4);
        gpu->ops->upload(gpu, v, zeros, n * 4);
        double *tp = xmalloc(n * 8), *tm = xmalloc(n * 8), *tv = xmalloc(n * 8);
        float *gp = xmalloc(n * 4), *gm = xmalloc(n * 4), *gv = xmalloc(n * 4), *gc = xmalloc(n * 4);
        for (size_t i = 0; i < n; i++) tp[i] = hp[i], tm[i] = tv[i] = 0;
        AdamWArgs a = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, 1, 1};
        for (int step = 1; step <= 4; step++) {
            float *hg = rand_f32(n, -0.01, 0.01);
            gpu->ops->upload(gpu, g, hg, n * 4);
            a.step = step;
            a.weight_decay = step == 3 ? 0.1f : 0.0f; /* the releases: 0 */
            a.grad_scale = step == 2 ? 0.25f : 1.0f;  /* accumulation's 1/k */
            adamw_bf16_pure_twin(tp, tm, tv, hg, n, &a);
            gpu->ops->adamw_update(gpu, p, compute, g, m, v, n, &a);
            gpu->ops->download(gpu, gp, p, n * 4);
            gpu->ops->download(gpu, gm, m, n * 4);
            gpu->ops->download(gpu, gv, v, n * 4);
            gpu->ops->download_act(gpu, gc, compute, n);
            const float *got[3] = {gp, gm, gv};
            const double *want[3] = {tp, tm, tv};
            const char *names[3] = {"master", "m", "v"};
            for (int k = 0; k < 3; k++) {
                size_t equal = 0;
                double worst = 0;
                for (size_t i = 0; i < n; i++) {
                    ck_assert_msg(isfinite(got[k][i]), "bf16_pure %s[%zu] not finite", names[k], i);
                    ck_assert_msg(round_bf16(got[k][i]) == got[k][i],
                                  "bf16_pure %s[%zu] = %.9g is not a bf16 value", names[k], i,
                                  (double)got[k][i]);
                    double diff = fabs((double)got[k][i] - want[k][i]);
                    equal += diff == 0;
                    worst = fmax(worst, diff / (fabs(want[k][i]) * 0x1p-7 + 1e-30));
                }
                n_checks++;
                printf("  %-62s equal %.4f%%  worst %.2f ulp\n",
                       LABEL("adamw bf16_pure n=%zu step=%d %s", n, step, names[k]),
                       100.0 * (double)equal / (double)n, worst);
                ck_assert_msg(worst <= 1.0, "bf16_pure %s step %d: %.2f bf16 ulp from the twin",
                              names[k], step, worst);
                ck_assert_msg((double)equal >= 0.999 * (double)n - 1.0,
                              "bf16_pure %s step %d: only %zu of %zu equal to the twin", names[k],
                              step, equal, n);
            }
            for (size_t i = 0; i < n; i++) {
                ck_assert_msg(gc[i] == gp[i], "bf16_pure compute copy at %zu", i);
                tp[i] = gp[i], tm[i] = gm[i], tv[i] = gv[i]; /* the next step from the GPU's state */
            }
            free(hg);
        }
        gpu->ops->release(gpu, p), gpu->ops->release(gpu, m), gpu->ops->release(gpu, v);
        gpu->ops->release(gpu, g), gpu->ops->release(gpu, compute);
        free(hp), free(zeros), free(tp), free(tm), free(tv), free(gp), free(gm), free(gv), free(gc);
    }
}
END_TEST

/* ---- embedding ------------------------------------------------------------------------ */
START_TEST(test_embedding) {
    const int shapes[][3] = {{5, 17, 3}, {100, 300, 768}, {1000, 65, 33}, {50, 1, 1},
                             {32000, 512, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int V = shapes[s][0], N = shapes[s][1], C = shapes[s][2];
        float *htab = rand_bf16((size_t)V * C, -1, 1), *hd = rand_bf16((size_t)N * C, -1, 1);
        int32_t *ht = xmalloc((size_t)N * 4);
        for (int i = 0; i < N; i++) ht[i] = (int32_t)(rng_next(&rng) % (uint64_t)V);
        if (N > 2) ht[N - 1] = ht[0]; /* a repeat, always */
        Pair tab = pair_act(htab, (size_t)V * C), tok = pair_raw(ht, (size_t)N);
        Pair dout = pair_act(hd, (size_t)N * C), out = pair_poison((size_t)N * C, 1);
        cpu->ops->embedding_forward(cpu, out.c, tok.c, tab.c, N, C);
        gpu->ops->embedding_forward(gpu, out.g, tok.g, tab.g, N, C);
        expect_close(LABEL("embedding_forward V=%d N=%d C=%d", V, N, C), &out, BUDGET_EXACT);
        Pair dtab = pair_zero((size_t)V * C, 0);
        cpu->ops->embedding_backward(cpu, dtab.c, dout.c, tok.c, N, C);
        acc_init(&dtab);
        cpu->ops->embedding_backward(cpu, dtab.c, dout.c, tok.c, N, C);
        gpu->ops->embedding_backward(gpu, dtab.g, dout.g, tok.g, N, C);
        expect_close(LABEL("embedding_backward V=%d N=%d C=%d", V, N, C), &dtab, BUDGET_F32);
        pair_free(&tab), pair_free(&tok), pair_free(&dout), pair_free(&out), pair_free(&dtab);
        free(htab), free(hd), free(ht);
    }
}
END_TEST

/* ---- sumsq ---------------------------------------------------------------------------- */
START_TEST(test_sumsq) {
    const size_t sizes[] = {1, 1000, ((size_t)1 << 20) + 3};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *h = rand_f32(n, -1, 1);
        Pair x = pair_raw(h, n);
        double rc = cpu->ops->sumsq_f32(cpu, x.c, n), rg = gpu->ops->sumsq_f32(gpu, x.g, n);
        double rel = fabs(rg - rc) / fabs(rc);
        n_checks++;
        printf("  %-62s rel %.2e  (budget 1e-12)\n", LABEL("sumsq_f32 n=%zu", n), rel);
        ck_assert_msg(isfinite(rg) && rel <= 1e-12, "sumsq n=%zu: gpu %.17g cpu %.17g", n, rg,
                      rc);
        ck_assert_msg(gpu->ops->sumsq_f32(gpu, x.g, n) == rg, "sumsq not reproducible");
        pair_free(&x);
        free(h);
    }
}
END_TEST

/* ---- determinism: the same GPU op twice gives bitwise equal results --------------------- */
static void *gpu_dup_zero(size_t bytes) { return be_alloc(gpu, bytes); }
static void expect_same_bytes(const char *what, const void *a, const void *b, size_t bytes) {
    unsigned char *ha = xmalloc(bytes), *hb = xmalloc(bytes);
    gpu->ops->download(gpu, ha, a, bytes);
    gpu->ops->download(gpu, hb, b, bytes);
    n_checks++;
    printf("  %-62s %s\n", what, memcmp(ha, hb, bytes) == 0 ? "bitwise equal" : "DIFFER");
    ck_assert_msg(memcmp(ha, hb, bytes) == 0, "%s: two runs differ", what);
    free(ha), free(hb);
}

START_TEST(test_determinism) {
    const int B = 2, T = 67, NH = 3, HS = 32, C = NH * HS, N = B * T, V = 1001, F = 77;
    size_t n = (size_t)N * C;
    float *hx = rand_bf16(n, -2, 2), *hw = rand_bf16((size_t)F * C, -0.5, 0.5),
          *hd = rand_bf16((size_t)N * F, -1, 1), *hl = rand_bf16((size_t)N * V, -4, 4),
          *hg = rand_bf16((size_t)C, 0.5, 1.5), *hq = rand_bf16(n, -1, 1);
    int32_t *ht = xmalloc((size_t)N * 4);
    for (int i = 0; i < N; i++) ht[i] = (int32_t)(rng_next(&rng) % 50);
    void *x = gpu_dup_zero(n * 2), *w = gpu_dup_zero((size_t)F * C * 2),
         *d = gpu_dup_zero((size_t)N * F * 2), *lg = gpu_dup_zero((size_t)N * V * 2),
         *gw = gpu_dup_zero((size_t)C * 2), *q = gpu_dup_zero(n * 2),
         *tok = gpu_dup_zero((size_t)N * 4);
    gpu->ops->upload_act(gpu, x, hx, n);
    gpu->ops->upload_act(gpu, w, hw, (size_t)F * C);
    gpu->ops->upload_act(gpu, d, hd, (size_t)N * F);
    gpu->ops->upload_act(gpu, lg, hl, (size_t)N * V);
    gpu->ops->upload_act(gpu, gw, hg, (size_t)C);
    gpu->ops->upload_act(gpu, q, hq, n);
    gpu->ops->upload(gpu, tok, ht, (size_t)N * 4);
    void *r[2][12];
    size_t sb = gpu->ops->attention_saved_bytes(gpu, B, T, NH);
    for (int run = 0; run < 2; run++) {
        void **o = r[run];
        o[0] = gpu_dup_zero(n * 2);                 /* matmul dinp */
        o[1] = gpu_dup_zero((size_t)F * C * 4);     /* matmul dw */
        o[2] = gpu_dup_zero((size_t)N * 4);         /* norm mean */
        o[3] = gpu_dup_zero((size_t)N * 4);         /* norm rstd */
        o[4] = gpu_dup_zero((size_t)C * 4);         /* norm dweight */
        o[5] = gpu_dup_zero((size_t)C * 4);         /* norm dbias */
        o[6] = gpu_dup_zero(n * 2);                 /* norm dinp */
        o[7] = gpu_dup_zero(sb);                    /* attention saved */
        o[8] = gpu_dup_zero(n * 2 * 3);             /* attention out | dq | dk ... */
        o[9] = gpu_dup_zero((size_t)N * 4);         /* ce losses */
        o[10] = gpu_dup_zero((size_t)N * V * 2);    /* ce dlogits */
        o[11] = gpu_dup_zero((size_t)50 * C * 4);   /* embedding dtable */
        gpu->ops->matmul_backward(gpu, o[0], o[1], d, x, w, N, C, F);
        void *nout = gpu_dup_zero(n * 2);
        gpu->ops->norm_forward(gpu, NORM_LAYER, nout, o[2], o[3], x, gw, gw, N, C, 1e-6f, 0.5f);
        gpu->ops->norm_backward(gpu, NORM_LAYER, o[6], o[4], o[5], q, x, gw, o[2], o[3], N, C,
                                0.5f);
        char *a = o[8];
        void *dv = gpu_dup_zero(n * 2);
        gpu->ops->attention_forward(gpu, a, o[7], q, x, q, B, T, NH, HS);
        gpu->ops->attention_backward(gpu, a + n * 2, a + n * 4, dv, q, o[7], q, x, q, B, T, NH,
                                     HS);
        gpu->ops->crossentropy(gpu, o[9], o[10], lg, tok, N, V, 1.0f / N);
        gpu->ops->embedding_backward(gpu, o[11], x, tok, N, C);
        gpu->ops->release(gpu, nout);
        gpu->ops->release(gpu, dv);
    }
    const char *names[12] = {"matmul dinp", "matmul dw", "norm mean", "norm rstd",
                             "norm dweight", "norm dbias", "norm dinp", "attention saved P",
                             "attention out, dq, dk", "crossentropy losses",
                             "crossentropy dlogits", "embedding dtable"};
    const size_t bytes[12] = {n * 2, (size_t)F * C * 4, (size_t)N * 4, (size_t)N * 4,
                              (size_t)C * 4, (size_t)C * 4, n * 2, sb, n * 6, (size_t)N * 4,
                              (size_t)N * V * 2, (size_t)50 * C * 4};
    for (int i = 0; i < 12; i++) {
        expect_same_bytes(LABEL("determinism: %s", names[i]), r[0][i], r[1][i], bytes[i]);
        gpu->ops->release(gpu, r[0][i]);
        gpu->ops->release(gpu, r[1][i]);
    }
    void *bufs[] = {x, w, d, lg, gw, q, tok};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu->ops->release(gpu, bufs[i]);
    free(hx), free(hw), free(hd), free(hl), free(hg), free(hq), free(ht);
}
END_TEST

/* The NCCL side of data parallelism with the one GPU a test machine has: a communicator of
 * one rank, and the in-place sum on the backend's stream (the identity over one rank, bit for
 * bit), followed by an op on the same stream that must see its result. Several GPUs (real
 * sums across ranks) are tested by `mpirun -np N` runs, see README "Beyond one machine". */
START_TEST(test_nccl_one_rank) {
#ifndef NB_HAVE_NCCL
    printf("nccl: skipped: not built with NCCL (no nccl.h under the CUDA toolkit)\n");
#else
    char err[256];
    unsigned char id[CU_NCCL_ID_BYTES];
    ck_assert_msg(cu_nccl_unique_id(id, err, sizeof err) == 0, "%s", err);
    void *comm = cu_nccl_comm_create(id, 1, 0, err, sizeof err);
    ck_assert_msg(comm != NULL, "%s", err);
    const size_t n = 100003;
    uint64_t state = 15;
    float *h = xmalloc(n * 4), *back = xmalloc(n * 4);
    test_fill_uniform(h, n, &state, -3.0, 3.0);
    float *g = be_alloc(gpu, n * 4);
    gpu->ops->upload(gpu, g, h, n * 4);
    ck_assert_msg(cu_nccl_sum_f32(gpu, comm, g, n, 60.0, err, sizeof err) == 0, "%s", err);
    gpu->ops->download(gpu, back, g, n * 4);
    ck_assert_msg(memcmp(h, back, n * 4) == 0, "NCCL sum over one rank changed the buffer");
    double want = 0;
    for (size_t i = 0; i < n; i++) want += (double)h[i] * h[i];
    double got = gpu->ops->sumsq_f32(gpu, g, n);
    ck_assert_msg(fabs(got - want) <= 1e-9 * want, "sumsq after the all-reduce %g, want %g", got, want);
    gpu_note_check();
    gpu->ops->release(gpu, g);
    cu_nccl_comm_destroy(comm);
    free(h), free(back);
#endif
}
END_TEST

static Suite *gpu_suite(void) {
    Suite *s = suite_create("gpu_ops");
    TCase *tc = tcase_create("cuda_vs_cpu");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_memory);
    tcase_add_test(tc, test_matmul);
    tcase_add_test(tc, test_norm);
    tcase_add_test(tc, test_dyt);
    tcase_add_test(tc, test_branch_scale);
    tcase_add_test(tc, test_rope);
    tcase_add_test(tc, test_attention);
    tcase_add_test(tc, test_swiglu);
    tcase_add_test(tc, test_residual);
    tcase_add_test(tc, test_crossentropy);
    tcase_add_test(tc, test_adamw);
    tcase_add_test(tc, test_adamw_bf16_pure);
    tcase_add_test(tc, test_embedding);
    tcase_add_test(tc, test_sumsq);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_nccl_one_rank);
    suite_add_tcase(s, tc);
    return s;
}

int gpu_tests_run(void) {
    char err[256];
    cpu = backend_create("cpu", 2, err, sizeof err);
    if (!cpu) {
        fprintf(stderr, "run_gpu_tests: FAILED: cannot create the CPU backend: %s\n", err);
        return 1;
    }
    gpu = backend_create("cuda", 0, err, sizeof err);
    if (!gpu) {
        fprintf(stderr, "run_gpu_tests: FAILED: a GPU exists but the CUDA backend failed: %s\n",
                err);
        backend_destroy(cpu);
        return 1;
    }
    printf("CPU: %s\nCUDA backend: %s, peak dense bf16 %.1f TFLOP/s%s\n", cpu->device,
           gpu->device, gpu->peak_flops / 1e12, gpu->peak_flops > 0 ? "" : " (unknown)");
    SRunner *sr = srunner_create(gpu_suite());
    srunner_add_suite(sr, gpu_model_suite());
    /* no fork: the CUDA context is created in this process and must not cross a fork */
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    backend_destroy(gpu);
    backend_destroy(cpu);
    if (failed == 0 && n_checks == 0) return -1;
    printf("%d GPU comparisons made\n", n_checks);
    return failed;
}

#else
/* CUDA not compiled in: main.c reports the skip; nothing to define here. */
typedef int test_gpu_unused;
#endif
