/* test_kernels.c — every op of kernels/backend.h against its float64 specification
 * (tests/spec64.c), on the CPU backend. In three layers:
 *   - the spec itself: each spec backward is the derivative of its spec forward (fourth-order
 *     finite differences in float64, relative error < 1e-9) and adds into its outputs as
 *     backend.h says; and properties of the forwards that hold by hand (softmax of equal
 *     scores is uniform, norm rows come out standardized, RoPE scores depend only on the
 *     distance between positions);
 *   - every CPU op, forward AND backward, equals the spec on random inputs (relative error
 *     < 1e-5); each backward also equals central differences of the spec forward (< 1e-4),
 *     a check that does not trust the spec backward; backward ops add into their outputs;
 *     each op is bitwise deterministic;
 *   - op-specific contracts: matmul's NULL dinp, norm statistics, RoPE in place, attention
 *     causality and its saved probabilities, cross-entropy aliasing, AdamW against the spec
 *     and by hand, sumsq in double, backend selection by name.
 * Tolerances. An error is max |got - want| / max |want| over a tensor (so near-zero entries
 * do not blow up the measure). fp32 ops measure 3e-8..2e-7 against the spec (NB_TEST_VERBOSE=1
 * prints every figure): 1e-5 leaves room for longer sums, while a wrong formula errs by
 * O(1e-1..1). The spec's own check measures 1e-13..1e-11, the truncation and rounding of the
 * fourth-order difference, so 1e-9 is tight enough that only rounding passes.
 * Shapes are deliberately not multiples of 4 or 8; a second attention case has T > 16 and
 * HS = 16 + 4 + 2, every width of the CPU kernel's blocking. Buffers go through the
 * backend's alloc/upload/download, so the same cases can drive another backend. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu/cpu_ops.h"
#include "cpu_kernels.h"
#include "spec64.h"
#include "testutil.h"

enum { MAX_IN = 4 };
static const double SPEC_TOL = 1e-5;     /* fp32 op, forward or backward, vs float64 spec */
static const double BACKWARD_TOL = 1e-4; /* fp32 backward vs finite differences of the spec */
static const double SPEC_FD_TOL = 1e-9;  /* float64 spec backward vs its finite differences */
static const double FD_STEP = 1e-6;      /* central-difference step, in double */
static const double SPEC_FD_STEP = 1e-3; /* fourth-order difference step, in double */
static const double ERR_FLOOR = 1e-6;    /* lower bound of the scale in relative errors */

/* ---------------------------------------------------------------------------------------- */
/* backend and buffer helpers                                                                */

static Backend *make_cpu(int threads) {
    char err[256] = "";
    Backend *be = backend_create("cpu", threads, err, sizeof err);
    ck_assert_msg(be != NULL, "backend_create(cpu): %s", err);
    return be;
}

/* act buffer holding host values */
static void *dev_act(Backend *be, const float *host, size_t n) {
    void *d = be->ops->alloc(be, (n ? n : 1) * be->act_bytes);
    ck_assert_ptr_nonnull(d);
    if (host && n) be->ops->upload_act(be, d, host, n);
    return d;
}
/* f32 buffer holding host values (zeros when host is NULL) */
static float *dev_f32(Backend *be, const float *host, size_t n) {
    float *d = be->ops->alloc(be, (n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(d);
    if (host && n) be->ops->upload(be, d, host, n * sizeof(float));
    return d;
}
static int32_t *dev_i32(Backend *be, const int32_t *host, size_t n) {
    int32_t *d = be->ops->alloc(be, (n ? n : 1) * sizeof(int32_t));
    ck_assert_ptr_nonnull(d);
    be->ops->upload(be, d, host, n * sizeof(int32_t));
    return d;
}
/* download an act buffer into host and release it */
static void take_act(Backend *be, float *host, void *d, size_t n) {
    be->ops->synchronize(be);
    be->ops->download_act(be, host, d, n);
    be->ops->release(be, d);
}
static void take_f32(Backend *be, float *host, float *d, size_t n) {
    be->ops->synchronize(be);
    be->ops->download(be, host, d, n * sizeof(float));
    be->ops->release(be, d);
}

static float *new_floats(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}
static double *new_doubles(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    ck_assert_ptr_nonnull(p);
    return p;
}
static double *to_doubles(const float *x, size_t n) {
    double *d = new_doubles(n);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}
static float *random_floats(size_t n, uint64_t *rng, double lo, double hi) {
    float *p = new_floats(n);
    test_fill_uniform(p, n, rng, lo, hi);
    return p;
}

static int verbose(void) {
    const char *v = getenv("NB_TEST_VERBOSE");
    return v && *v && strcmp(v, "0") != 0;
}
static void report(const char *op, const char *what, double err) {
    if (verbose()) printf("kernel: %-17s %-30s max rel err %.2e\n", op, what, err);
}

/* test_max_rel_err_f for two float64 tensors */
static double max_rel_err_d(const double *a, const double *ref, size_t n, double floor) {
    double scale = floor, err = 0.0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(a[i] - ref[i]));
    return err / scale;
}

/* ---------------------------------------------------------------------------------------- */
/* op cases: one per differentiable op, driving the backend and the float64 spec             */

typedef struct OpCase OpCase;
struct OpCase {
    const char *name;
    int N, C, IC, OC, B, T, NH, HS, V;
    size_t n;
    NormKind kind;
    float eps, scale, theta, dloss;
    int32_t tokens[16];
    int nin;                      /* differentiable inputs (and parameters) */
    const char *in_name[MAX_IN];
    size_t in_len[MAX_IN];
    float *in_f[MAX_IN];          /* fp32 values the backend sees */
    double *in_d[MAX_IN];         /* the same values in double; perturbed by the FD check */
    size_t out_len;
    float *dout_f;                /* upstream gradient of the objective sum(dout * out) */
    double *dout_d;
    int overwrites;               /* backward writes its output instead of adding */
    /* the spec on in_d: forward writes out; backward adds (or, overwrites, writes) the
     * gradients of sum(dout_d * out) into grads[k] */
    void (*spec_forward)(const OpCase *c, double *out);
    void (*spec_backward)(const OpCase *c, double *grads[MAX_IN]);
    void (*forward)(Backend *be, const OpCase *c, float *out);
    /* adds the op's gradients into grads[k] (host arrays, uploaded and downloaded) */
    void (*backward)(Backend *be, const OpCase *c, float *grads[MAX_IN]);
};

/* --- embedding: out = table[tokens] ------------------------------------------------------ */
static void embedding_spec(const OpCase *c, double *out) {
    spec_embedding_forward(out, c->tokens, c->in_d[0], c->N, c->C);
}
static void embedding_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_embedding_backward(grads[0], c->dout_d, c->tokens, c->N, c->C);
}
static void embedding_fwd(Backend *be, const OpCase *c, float *out) {
    int32_t *tok = dev_i32(be, c->tokens, (size_t)c->N);
    void *table = dev_act(be, c->in_f[0], c->in_len[0]), *o = dev_act(be, NULL, c->out_len);
    be->ops->embedding_forward(be, o, tok, table, c->N, c->C);
    take_act(be, out, o, c->out_len);
    be->ops->release(be, table);
    be->ops->release(be, tok);
}
static void embedding_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    int32_t *tok = dev_i32(be, c->tokens, (size_t)c->N);
    void *dout = dev_act(be, c->dout_f, c->out_len);
    float *dtable = dev_f32(be, grads[0], c->in_len[0]);
    be->ops->embedding_backward(be, dtable, dout, tok, c->N, c->C);
    take_f32(be, grads[0], dtable, c->in_len[0]);
    be->ops->release(be, dout);
    be->ops->release(be, tok);
}

/* --- matmul: out = inp w^T ---------------------------------------------------------------- */
static void matmul_spec(const OpCase *c, double *out) {
    spec_matmul_forward(out, c->in_d[0], c->in_d[1], c->N, c->IC, c->OC);
}
static void matmul_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_matmul_backward(grads[0], grads[1], c->dout_d, c->in_d[0], c->in_d[1], c->N, c->IC,
                         c->OC);
}
static void matmul_fwd(Backend *be, const OpCase *c, float *out) {
    void *inp = dev_act(be, c->in_f[0], c->in_len[0]), *w = dev_act(be, c->in_f[1], c->in_len[1]);
    void *o = dev_act(be, NULL, c->out_len);
    be->ops->matmul_forward(be, o, inp, w, c->N, c->IC, c->OC);
    take_act(be, out, o, c->out_len);
    be->ops->release(be, inp);
    be->ops->release(be, w);
}
static void matmul_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *inp = dev_act(be, c->in_f[0], c->in_len[0]), *w = dev_act(be, c->in_f[1], c->in_len[1]);
    void *dout = dev_act(be, c->dout_f, c->out_len);
    void *dinp = dev_act(be, grads[0], c->in_len[0]);
    float *dw = dev_f32(be, grads[1], c->in_len[1]);
    be->ops->matmul_backward(be, dinp, dw, dout, inp, w, c->N, c->IC, c->OC);
    take_act(be, grads[0], dinp, c->in_len[0]);
    take_f32(be, grads[1], dw, c->in_len[1]);
    be->ops->release(be, inp);
    be->ops->release(be, w);
    be->ops->release(be, dout);
}

/* --- norm: out = s * N(x) (weight, and bias for LayerNorm) ------------------------------- */
static void norm_spec(const OpCase *c, double *out) {
    spec_norm_forward(c->kind, out, c->in_d[0], c->in_d[1], c->nin > 2 ? c->in_d[2] : NULL,
                      c->N, c->C, c->eps, c->scale);
}
static void norm_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_norm_backward(c->kind, grads[0], grads[1], c->nin > 2 ? grads[2] : NULL, c->dout_d,
                       c->in_d[0], c->in_d[1], c->N, c->C, c->eps, c->scale);
}
/* runs the forward on device buffers; mean is NULL for RMSNorm (allowed by backend.h) */
static void norm_fwd_dev(Backend *be, const OpCase *c, void *o, float *mean, float *rstd,
                         void *inp, void *w, void *b) {
    be->ops->norm_forward(be, c->kind, o, mean, rstd, inp, w, b, c->N, c->C, c->eps, c->scale);
}
static void norm_fwd(Backend *be, const OpCase *c, float *out) {
    void *inp = dev_act(be, c->in_f[0], c->in_len[0]), *w = dev_act(be, c->in_f[1], c->in_len[1]);
    void *b = c->nin > 2 ? dev_act(be, c->in_f[2], c->in_len[2]) : NULL;
    float *mean = c->kind == NORM_LAYER ? dev_f32(be, NULL, (size_t)c->N) : NULL;
    float *rstd = dev_f32(be, NULL, (size_t)c->N);
    void *o = dev_act(be, NULL, c->out_len);
    norm_fwd_dev(be, c, o, mean, rstd, inp, w, b);
    take_act(be, out, o, c->out_len);
    be->ops->release(be, inp);
    be->ops->release(be, w);
    if (b) be->ops->release(be, b);
    if (mean) be->ops->release(be, mean);
    be->ops->release(be, rstd);
}
static void norm_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *inp = dev_act(be, c->in_f[0], c->in_len[0]), *w = dev_act(be, c->in_f[1], c->in_len[1]);
    void *b = c->nin > 2 ? dev_act(be, c->in_f[2], c->in_len[2]) : NULL;
    float *mean = c->kind == NORM_LAYER ? dev_f32(be, NULL, (size_t)c->N) : NULL;
    float *rstd = dev_f32(be, NULL, (size_t)c->N);
    void *o = dev_act(be, NULL, c->out_len), *dout = dev_act(be, c->dout_f, c->out_len);
    norm_fwd_dev(be, c, o, mean, rstd, inp, w, b);
    void *dinp = dev_act(be, grads[0], c->in_len[0]);
    float *dw = dev_f32(be, grads[1], c->in_len[1]);
    float *db = c->nin > 2 ? dev_f32(be, grads[2], c->in_len[2]) : NULL;
    be->ops->norm_backward(be, c->kind, dinp, dw, db, dout, inp, w, mean, rstd, c->N, c->C,
                           c->scale);
    take_act(be, grads[0], dinp, c->in_len[0]);
    take_f32(be, grads[1], dw, c->in_len[1]);
    if (db) take_f32(be, grads[2], db, c->in_len[2]);
    be->ops->release(be, inp);
    be->ops->release(be, w);
    if (b) be->ops->release(be, b);
    if (mean) be->ops->release(be, mean);
    be->ops->release(be, rstd);
    be->ops->release(be, o);
    be->ops->release(be, dout);
}

/* --- rope --------------------------------------------------------------------------------- */
static void rope_spec(const OpCase *c, double *out) {
    spec_rope_forward(out, c->in_d[0], c->B, c->T, c->NH, c->HS, c->theta);
}
static void rope_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_rope_backward(grads[0], c->dout_d, c->B, c->T, c->NH, c->HS, c->theta);
}
static void rope_fwd(Backend *be, const OpCase *c, float *out) {
    void *inp = dev_act(be, c->in_f[0], c->in_len[0]), *o = dev_act(be, NULL, c->out_len);
    be->ops->rope_forward(be, o, inp, c->B, c->T, c->NH, c->HS, c->theta);
    take_act(be, out, o, c->out_len);
    be->ops->release(be, inp);
}
static void rope_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *dout = dev_act(be, c->dout_f, c->out_len), *dinp = dev_act(be, grads[0], c->in_len[0]);
    be->ops->rope_backward(be, dinp, dout, c->B, c->T, c->NH, c->HS, c->theta);
    take_act(be, grads[0], dinp, c->in_len[0]);
    be->ops->release(be, dout);
}

/* --- attention ---------------------------------------------------------------------------- */
static void attention_spec(const OpCase *c, double *out) {
    spec_attention_forward(out, c->in_d[0], c->in_d[1], c->in_d[2], c->B, c->T, c->NH, c->HS);
}
static void attention_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_attention_backward(grads[0], grads[1], grads[2], c->dout_d, c->in_d[0], c->in_d[1],
                            c->in_d[2], c->B, c->T, c->NH, c->HS);
}
static void attention_fwd(Backend *be, const OpCase *c, float *out) {
    void *q = dev_act(be, c->in_f[0], c->in_len[0]), *k = dev_act(be, c->in_f[1], c->in_len[1]);
    void *v = dev_act(be, c->in_f[2], c->in_len[2]), *o = dev_act(be, NULL, c->out_len);
    void *saved = be->ops->alloc(be, be->ops->attention_saved_bytes(be, c->B, c->T, c->NH));
    ck_assert_ptr_nonnull(saved);
    be->ops->attention_forward(be, o, saved, q, k, v, c->B, c->T, c->NH, c->HS);
    take_act(be, out, o, c->out_len);
    be->ops->release(be, q);
    be->ops->release(be, k);
    be->ops->release(be, v);
    be->ops->release(be, saved);
}
static void attention_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *q = dev_act(be, c->in_f[0], c->in_len[0]), *k = dev_act(be, c->in_f[1], c->in_len[1]);
    void *v = dev_act(be, c->in_f[2], c->in_len[2]), *o = dev_act(be, NULL, c->out_len);
    void *saved = be->ops->alloc(be, be->ops->attention_saved_bytes(be, c->B, c->T, c->NH));
    ck_assert_ptr_nonnull(saved);
    void *dout = dev_act(be, c->dout_f, c->out_len);
    be->ops->attention_forward(be, o, saved, q, k, v, c->B, c->T, c->NH, c->HS);
    void *dq = dev_act(be, grads[0], c->in_len[0]), *dk = dev_act(be, grads[1], c->in_len[1]);
    void *dv = dev_act(be, grads[2], c->in_len[2]);
    be->ops->attention_backward(be, dq, dk, dv, dout, saved, q, k, v, c->B, c->T, c->NH, c->HS);
    take_act(be, grads[0], dq, c->in_len[0]);
    take_act(be, grads[1], dk, c->in_len[1]);
    take_act(be, grads[2], dv, c->in_len[2]);
    be->ops->release(be, q);
    be->ops->release(be, k);
    be->ops->release(be, v);
    be->ops->release(be, o);
    be->ops->release(be, saved);
    be->ops->release(be, dout);
}

/* --- swiglu ------------------------------------------------------------------------------- */
static void swiglu_spec(const OpCase *c, double *out) {
    spec_swiglu_forward(out, c->in_d[0], c->in_d[1], c->n);
}
static void swiglu_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_swiglu_backward(grads[0], grads[1], c->dout_d, c->in_d[0], c->in_d[1], c->n);
}
static void swiglu_fwd(Backend *be, const OpCase *c, float *out) {
    void *g = dev_act(be, c->in_f[0], c->n), *u = dev_act(be, c->in_f[1], c->n);
    void *o = dev_act(be, NULL, c->n);
    be->ops->swiglu_forward(be, o, g, u, c->n);
    take_act(be, out, o, c->n);
    be->ops->release(be, g);
    be->ops->release(be, u);
}
static void swiglu_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *g = dev_act(be, c->in_f[0], c->n), *u = dev_act(be, c->in_f[1], c->n);
    void *dout = dev_act(be, c->dout_f, c->n);
    void *dg = dev_act(be, grads[0], c->n), *du = dev_act(be, grads[1], c->n);
    be->ops->swiglu_backward(be, dg, du, dout, g, u, c->n);
    take_act(be, grads[0], dg, c->n);
    take_act(be, grads[1], du, c->n);
    be->ops->release(be, g);
    be->ops->release(be, u);
    be->ops->release(be, dout);
}

/* --- residual: out = scale * x + f; its backward is scaled_add for each input -------------- */
static void residual_spec(const OpCase *c, double *out) {
    spec_residual_forward(out, c->in_d[0], c->scale, c->in_d[1], c->n);
}
static void residual_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_scaled_add(grads[0], c->dout_d, c->scale, c->n);
    spec_scaled_add(grads[1], c->dout_d, 1.0, c->n);
}
static void residual_fwd(Backend *be, const OpCase *c, float *out) {
    void *x = dev_act(be, c->in_f[0], c->n), *f = dev_act(be, c->in_f[1], c->n);
    void *o = dev_act(be, NULL, c->n);
    be->ops->residual_forward(be, o, x, c->scale, f, c->n);
    take_act(be, out, o, c->n);
    be->ops->release(be, x);
    be->ops->release(be, f);
}
static void residual_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *dout = dev_act(be, c->dout_f, c->n);
    void *dx = dev_act(be, grads[0], c->n), *df = dev_act(be, grads[1], c->n);
    be->ops->scaled_add(be, dx, dout, c->scale, c->n);
    be->ops->scaled_add(be, df, dout, 1.0f, c->n);
    take_act(be, grads[0], dx, c->n);
    take_act(be, grads[1], df, c->n);
    be->ops->release(be, dout);
}

/* --- cross-entropy: out = losses; the objective dloss * sum(losses) has dout = dloss ------ */
static void crossentropy_spec(const OpCase *c, double *out) {
    spec_crossentropy_forward(out, c->in_d[0], c->tokens, c->N, c->V);
}
static void crossentropy_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_crossentropy_backward(grads[0], c->in_d[0], c->tokens, c->N, c->V, c->dloss);
}
static void crossentropy_fwd(Backend *be, const OpCase *c, float *out) {
    void *logits = dev_act(be, c->in_f[0], c->in_len[0]);
    int32_t *tgt = dev_i32(be, c->tokens, (size_t)c->N);
    float *losses = dev_f32(be, NULL, (size_t)c->N);
    be->ops->crossentropy(be, losses, NULL, logits, tgt, c->N, c->V, c->dloss);
    take_f32(be, out, losses, (size_t)c->N);
    be->ops->release(be, logits);
    be->ops->release(be, tgt);
}
static void crossentropy_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *logits = dev_act(be, c->in_f[0], c->in_len[0]);
    void *dlogits = dev_act(be, grads[0], c->in_len[0]);
    int32_t *tgt = dev_i32(be, c->tokens, (size_t)c->N);
    float *losses = dev_f32(be, NULL, (size_t)c->N);
    be->ops->crossentropy(be, losses, dlogits, logits, tgt, c->N, c->V, c->dloss);
    take_act(be, grads[0], dlogits, c->in_len[0]);
    be->ops->release(be, logits);
    be->ops->release(be, tgt);
    be->ops->release(be, losses);
}

/* --- DyT: out = s (w tanh(alpha x) + b); alpha a scalar parameter ------------------------ */
static void dyt_spec(const OpCase *c, double *out) {
    spec_dyt_forward(out, c->in_d[0], c->in_d[1][0], c->in_d[2], c->in_d[3], c->N, c->C,
                     c->scale);
}
static void dyt_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_dyt_backward(grads[0], grads[1], grads[2], grads[3], c->dout_d, c->in_d[0],
                      c->in_d[1][0], c->in_d[2], c->N, c->C, c->scale);
}
static void dyt_fwd(Backend *be, const OpCase *c, float *out) {
    void *in[4];
    for (int k = 0; k < 4; k++) in[k] = dev_act(be, c->in_f[k], c->in_len[k]);
    void *o = dev_act(be, NULL, c->out_len);
    be->ops->dyt_forward(be, o, in[0], in[1], in[2], in[3], c->N, c->C, c->scale);
    take_act(be, out, o, c->out_len);
    for (int k = 0; k < 4; k++) be->ops->release(be, in[k]);
}
static void dyt_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *in[4];
    for (int k = 0; k < 4; k++) in[k] = dev_act(be, c->in_f[k], c->in_len[k]);
    void *dout = dev_act(be, c->dout_f, c->out_len), *dx = dev_act(be, grads[0], c->in_len[0]);
    float *dp[4] = {NULL};
    for (int k = 1; k < 4; k++) dp[k] = dev_f32(be, grads[k], c->in_len[k]);
    be->ops->dyt_backward(be, dx, dp[1], dp[2], dp[3], dout, in[0], in[1], in[2], c->N, c->C,
                          c->scale);
    take_act(be, grads[0], dx, c->in_len[0]);
    for (int k = 1; k < 4; k++) take_f32(be, grads[k], dp[k], c->in_len[k]);
    for (int k = 0; k < 4; k++) be->ops->release(be, in[k]);
    be->ops->release(be, dout);
}

/* --- branch scale: out = lambda * x, lambda [C] (LayerScale) or [1] (SkipInit) ------------- */
static int branch_sc(const OpCase *c) { return (int)c->in_len[1]; }
static void branch_spec(const OpCase *c, double *out) {
    spec_branch_scale_forward(out, c->in_d[0], c->in_d[1], c->N, c->C, branch_sc(c));
}
static void branch_spec_bwd(const OpCase *c, double *grads[MAX_IN]) {
    spec_branch_scale_backward(grads[0], grads[1], c->dout_d, c->in_d[0], c->in_d[1], c->N,
                               c->C, branch_sc(c));
}
static void branch_fwd(Backend *be, const OpCase *c, float *out) {
    void *x = dev_act(be, c->in_f[0], c->in_len[0]), *lam = dev_act(be, c->in_f[1], c->in_len[1]);
    void *o = dev_act(be, NULL, c->out_len);
    be->ops->branch_scale_forward(be, o, x, lam, c->N, c->C, branch_sc(c));
    take_act(be, out, o, c->out_len);
    be->ops->release(be, x);
    be->ops->release(be, lam);
}
static void branch_bwd(Backend *be, const OpCase *c, float *grads[MAX_IN]) {
    void *x = dev_act(be, c->in_f[0], c->in_len[0]), *lam = dev_act(be, c->in_f[1], c->in_len[1]);
    void *dout = dev_act(be, c->dout_f, c->out_len), *dx = dev_act(be, grads[0], c->in_len[0]);
    float *dlam = dev_f32(be, grads[1], c->in_len[1]);
    be->ops->branch_scale_backward(be, dx, dlam, dout, x, lam, c->N, c->C, branch_sc(c));
    take_act(be, grads[0], dx, c->in_len[0]);
    take_f32(be, grads[1], dlam, c->in_len[1]);
    be->ops->release(be, x);
    be->ops->release(be, lam);
    be->ops->release(be, dout);
}

enum {
    CASE_EMBEDDING, CASE_MATMUL, CASE_RMSNORM, CASE_LAYERNORM, CASE_ROPE, CASE_ATTENTION,
    CASE_ATTENTION_BLOCKS, CASE_SWIGLU, CASE_RESIDUAL, CASE_CROSSENTROPY, CASE_DYT,
    CASE_BRANCH_CHANNEL, CASE_BRANCH_SCALAR, CASE_COUNT
};

static void add_input(OpCase *c, const char *name, size_t len, uint64_t *rng, double lo,
                      double hi) {
    int k = c->nin++;
    c->in_name[k] = name;
    c->in_len[k] = len;
    c->in_f[k] = random_floats(len, rng, lo, hi);
    c->in_d[k] = to_doubles(c->in_f[k], len);
}

/* Builds case `which` with seeded random inputs. */
static void case_make(OpCase *c, int which, uint64_t seed) {
    memset(c, 0, sizeof *c);
    uint64_t rng = seed * 7919u + (uint64_t)which;
    switch (which) {
    case CASE_EMBEDDING:
        c->name = "embedding";
        c->N = 7, c->C = 13, c->V = 19;
        {
            /* token 4 repeats: its dtable row sums several positions */
            const int32_t toks[7] = {4, 0, 18, 4, 7, 4, 11};
            memcpy(c->tokens, toks, sizeof toks);
        }
        add_input(c, "table", (size_t)c->V * c->C, &rng, -1, 1);
        c->out_len = (size_t)c->N * c->C;
        c->spec_forward = embedding_spec, c->spec_backward = embedding_spec_bwd;
        c->forward = embedding_fwd, c->backward = embedding_bwd;
        break;
    case CASE_MATMUL:
        c->name = "matmul";
        c->N = 7, c->IC = 11, c->OC = 9;
        add_input(c, "inp", (size_t)c->N * c->IC, &rng, -1, 1);
        add_input(c, "weight", (size_t)c->OC * c->IC, &rng, -1, 1);
        c->out_len = (size_t)c->N * c->OC;
        c->spec_forward = matmul_spec, c->spec_backward = matmul_spec_bwd;
        c->forward = matmul_fwd, c->backward = matmul_bwd;
        break;
    case CASE_RMSNORM:
    case CASE_LAYERNORM:
        c->name = which == CASE_RMSNORM ? "rmsnorm" : "layernorm";
        c->kind = which == CASE_RMSNORM ? NORM_RMS : NORM_LAYER;
        c->N = 7, c->C = 13, c->eps = 1e-6f, c->scale = 0.7f; /* out_scale != 1 */
        add_input(c, "inp", (size_t)c->N * c->C, &rng, -1.5, 2.0);
        add_input(c, "weight", (size_t)c->C, &rng, 0.5, 1.5);
        if (c->kind == NORM_LAYER) add_input(c, "bias", (size_t)c->C, &rng, -0.5, 0.5);
        c->out_len = (size_t)c->N * c->C;
        c->spec_forward = norm_spec, c->spec_backward = norm_spec_bwd;
        c->forward = norm_fwd, c->backward = norm_bwd;
        break;
    case CASE_ROPE:
        c->name = "rope";
        c->B = 2, c->T = 5, c->NH = 3, c->HS = 6, c->theta = 10000.0f;
        add_input(c, "inp", (size_t)c->B * c->T * c->NH * c->HS, &rng, -1, 1);
        c->out_len = c->in_len[0];
        c->spec_forward = rope_spec, c->spec_backward = rope_spec_bwd;
        c->forward = rope_fwd, c->backward = rope_bwd;
        break;
    case CASE_ATTENTION:
    case CASE_ATTENTION_BLOCKS:
        if (which == CASE_ATTENTION) {
            c->name = "attention";
            c->B = 2, c->T = 5, c->NH = 3, c->HS = 6;
        } else {
            /* T > 16: two 16-wide score blocks; HS = 16 + 4 + 2: every width of the CPU
             * kernel's row products (whole block, 4-lane, scalar tail) */
            c->name = "attention (blocks)";
            c->B = 1, c->T = 19, c->NH = 2, c->HS = 22;
        }
        add_input(c, "q", (size_t)c->B * c->T * c->NH * c->HS, &rng, -2, 2);
        add_input(c, "k", (size_t)c->B * c->T * c->NH * c->HS, &rng, -2, 2);
        add_input(c, "v", (size_t)c->B * c->T * c->NH * c->HS, &rng, -1, 1);
        c->out_len = c->in_len[0];
        c->spec_forward = attention_spec, c->spec_backward = attention_spec_bwd;
        c->forward = attention_fwd, c->backward = attention_bwd;
        break;
    case CASE_SWIGLU:
        c->name = "swiglu";
        c->n = 37;
        add_input(c, "gate", c->n, &rng, -4, 4);
        add_input(c, "up", c->n, &rng, -1, 1);
        c->out_len = c->n;
        c->spec_forward = swiglu_spec, c->spec_backward = swiglu_spec_bwd;
        c->forward = swiglu_fwd, c->backward = swiglu_bwd;
        break;
    case CASE_RESIDUAL:
        c->name = "residual";
        c->n = 37, c->scale = 0.8f;
        add_input(c, "x", c->n, &rng, -1, 1);
        add_input(c, "f", c->n, &rng, -1, 1);
        c->out_len = c->n;
        c->spec_forward = residual_spec, c->spec_backward = residual_spec_bwd;
        c->forward = residual_fwd, c->backward = residual_bwd;
        break;
    case CASE_CROSSENTROPY:
        c->name = "crossentropy";
        c->N = 7, c->V = 19, c->dloss = 1.0f / 7.0f;
        for (int n = 0; n < c->N; n++) c->tokens[n] = (int32_t)(rng_next(&rng) % 19u);
        add_input(c, "logits", (size_t)c->N * c->V, &rng, -3, 3);
        c->out_len = (size_t)c->N;
        c->overwrites = 1;
        c->spec_forward = crossentropy_spec, c->spec_backward = crossentropy_spec_bwd;
        c->forward = crossentropy_fwd, c->backward = crossentropy_bwd;
        break;
    case CASE_DYT:
        c->name = "dyt";
        c->N = 7, c->C = 70, c->scale = 0.7f; /* C > 64: two column blocks of the CPU kernel */
        add_input(c, "inp", (size_t)c->N * c->C, &rng, -3.0, 3.0);
        add_input(c, "alpha", 1, &rng, 0.3, 0.9);
        add_input(c, "weight", (size_t)c->C, &rng, 0.5, 1.5);
        add_input(c, "bias", (size_t)c->C, &rng, -0.5, 0.5);
        c->out_len = (size_t)c->N * c->C;
        c->spec_forward = dyt_spec, c->spec_backward = dyt_spec_bwd;
        c->forward = dyt_fwd, c->backward = dyt_bwd;
        break;
    case CASE_BRANCH_CHANNEL:
    case CASE_BRANCH_SCALAR:
        c->name = which == CASE_BRANCH_CHANNEL ? "branch_scale (channel)" : "branch_scale (scalar)";
        c->N = 7, c->C = 70;
        add_input(c, "inp", (size_t)c->N * c->C, &rng, -1, 1);
        add_input(c, "scale", which == CASE_BRANCH_CHANNEL ? (size_t)c->C : 1, &rng, -0.5, 0.5);
        c->out_len = (size_t)c->N * c->C;
        c->spec_forward = branch_spec, c->spec_backward = branch_spec_bwd;
        c->forward = branch_fwd, c->backward = branch_bwd;
        break;
    default:
        ck_abort_msg("no case %d", which);
    }
    c->dout_f = new_floats(c->out_len);
    if (which == CASE_CROSSENTROPY) {
        for (size_t i = 0; i < c->out_len; i++) c->dout_f[i] = c->dloss;
    } else {
        test_fill_uniform(c->dout_f, c->out_len, &rng, -1, 1);
    }
    c->dout_d = to_doubles(c->dout_f, c->out_len);
}

static void case_free(OpCase *c) {
    for (int k = 0; k < c->nin; k++) {
        free(c->in_f[k]);
        free(c->in_d[k]);
    }
    free(c->dout_f);
    free(c->dout_d);
}

/* sum(dout * spec_forward(inputs)) */
static double case_objective(const OpCase *c, double *scratch) {
    c->spec_forward(c, scratch);
    double s = 0.0;
    for (size_t i = 0; i < c->out_len; i++) s += c->dout_d[i] * scratch[i];
    return s;
}

/* gradient buffers, zeroed or holding `fill` */
static void grads_alloc(const OpCase *c, float *grads[MAX_IN]) {
    for (int k = 0; k < MAX_IN; k++) grads[k] = k < c->nin ? new_floats(c->in_len[k]) : NULL;
}
static void grads_free(float *grads[MAX_IN]) {
    for (int k = 0; k < MAX_IN; k++) free(grads[k]);
}

/* double gradient buffers, zeroed */
static void dgrads_alloc(const OpCase *c, double *grads[MAX_IN]) {
    for (int k = 0; k < MAX_IN; k++) grads[k] = k < c->nin ? new_doubles(c->in_len[k]) : NULL;
}
static void dgrads_free(double *grads[MAX_IN]) {
    for (int k = 0; k < MAX_IN; k++) free(grads[k]);
}

/* fd[j] = d sum(dout * spec_forward) / d input k, entry j, by finite differences in double
 * (the input is perturbed in place and restored), with one of two stencils:
 *   central, step FD_STEP = 1e-6:  (f(x+h) - f(x-h)) / 2h; its error, h^2 f'''/6 plus the
 *     rounding eps |f| / h, is ~1e-9 relative: plenty to judge an fp32 op;
 *   fourth order, step SPEC_FD_STEP = 1e-3:  (8 (f(x+h) - f(x-h)) - (f(x+2h) - f(x-2h))) / 12h;
 *     error h^4 f^(5)/30 plus rounding ~ eps |f| / h, ~1e-11 relative: fine enough to hold
 *     the float64 spec backward to a tolerance no formula slip could meet. */
static void fd_gradient(OpCase *c, int k, double *fd, int fourth_order) {
    double *scratch = new_doubles(c->out_len);
    const double h = fourth_order ? SPEC_FD_STEP : FD_STEP;
    for (size_t j = 0; j < c->in_len[k]; j++) {
        double saved = c->in_d[k][j], f[5] = {0}; /* f[2 + m] = objective at x + m h */
        for (int m = -2; m <= 2; m++) {
            if (m == 0 || (!fourth_order && (m == -2 || m == 2))) continue;
            c->in_d[k][j] = saved + m * h;
            f[2 + m] = case_objective(c, scratch);
        }
        c->in_d[k][j] = saved;
        fd[j] = fourth_order ? (8.0 * (f[3] - f[1]) - (f[4] - f[0])) / (12.0 * h)
                             : (f[3] - f[1]) / (2.0 * h);
    }
    free(scratch);
}

/* ---------------------------------------------------------------------------------------- */
/* the float64 spec checked on its own                                                      */

/* The spec backward is what the CPU's backward is judged by, so it is first checked to be
 * the derivative of the spec forward: both in double, so only the error of the fourth-order
 * difference (~1e-11) separates them. */
START_TEST(test_every_spec_backward_matches_finite_differences_of_spec_forward) {
    OpCase c;
    case_make(&c, _i, 13);
    double *grads[MAX_IN];
    dgrads_alloc(&c, grads);
    c.spec_backward(&c, grads);
    for (int k = 0; k < c.nin; k++) {
        double *fd = new_doubles(c.in_len[k]);
        fd_gradient(&c, k, fd, 1);
        double err = max_rel_err_d(grads[k], fd, c.in_len[k], ERR_FLOOR);
        char what[64];
        snprintf(what, sizeof what, "spec backward d%s", c.in_name[k]);
        report(c.name, what, err);
        ck_assert_msg(err < SPEC_FD_TOL,
                      "spec %s d%s vs finite differences of spec forward: rel err %.3e >= %.0e",
                      c.name, c.in_name[k], err, SPEC_FD_TOL);
        free(fd);
    }
    dgrads_free(grads);
    case_free(&c);
}
END_TEST

/* backend.h's gradient convention holds for the spec too: into pre-filled buffers a spec
 * backward adds (cross-entropy's dlogits: writes, whatever the buffer held). */
START_TEST(test_every_spec_backward_adds_into_its_gradient_outputs) {
    OpCase c;
    case_make(&c, _i, 14);
    double *once[MAX_IN], *prefill[MAX_IN], *prefilled[MAX_IN];
    dgrads_alloc(&c, once);
    dgrads_alloc(&c, prefill);
    dgrads_alloc(&c, prefilled);
    uint64_t rng = 98;
    for (int k = 0; k < c.nin; k++)
        for (size_t j = 0; j < c.in_len[k]; j++)
            prefill[k][j] = prefilled[k][j] = test_uniform(&rng, -5, 5);
    c.spec_backward(&c, once);
    c.spec_backward(&c, prefilled);
    for (int k = 0; k < c.nin; k++) {
        double *want = new_doubles(c.in_len[k]);
        for (size_t j = 0; j < c.in_len[k]; j++)
            want[j] = c.overwrites ? once[k][j] : prefill[k][j] + once[k][j];
        double err = max_rel_err_d(prefilled[k], want, c.in_len[k], ERR_FLOOR);
        ck_assert_msg(err < 1e-14, "spec %s d%s: backward into a pre-filled buffer %s "
                      "(rel err %.3e)", c.name, c.in_name[k],
                      c.overwrites ? "did not overwrite it" : "did not add to it", err);
        free(want);
    }
    dgrads_free(once);
    dgrads_free(prefill);
    dgrads_free(prefilled);
    case_free(&c);
}
END_TEST

/* Equal scores give a uniform softmax, by hand: cross-entropy of V equal logits is log V
 * with gradient dloss (1/V - onehot); attention whose keys are all equal averages the
 * values of positions 0..t (the causal mask leaves t + 1 of them). */
START_TEST(test_spec_softmax_of_equal_scores_is_uniform) {
    enum { N = 2, V = 7 };
    const int32_t targets[N] = {3, 0};
    double logits[N * V], losses[N], dlogits[N * V];
    for (int i = 0; i < N * V; i++) logits[i] = 2.5;
    spec_crossentropy_forward(losses, logits, targets, N, V);
    spec_crossentropy_backward(dlogits, logits, targets, N, V, 0.5);
    for (int n = 0; n < N; n++) {
        ck_assert_double_eq_tol(losses[n], log((double)V), 1e-14);
        for (int j = 0; j < V; j++)
            ck_assert_double_eq_tol(dlogits[n * V + j],
                                    0.5 * (1.0 / V - (j == targets[n] ? 1.0 : 0.0)), 1e-15);
    }

    enum { B = 1, T = 4, NH = 2, HS = 3, C = NH * HS };
    double q[B * T * C], k[B * T * C], v[B * T * C], out[B * T * C];
    uint64_t rng = 5;
    for (int i = 0; i < B * T * C; i++) {
        q[i] = test_uniform(&rng, -2, 2);
        k[i] = (double)(i % C); /* the same key at every position */
        v[i] = test_uniform(&rng, -1, 1);
    }
    spec_attention_forward(out, q, k, v, B, T, NH, HS);
    for (int t = 0; t < T; t++)
        for (int c = 0; c < C; c++) {
            double mean = 0.0;
            for (int t2 = 0; t2 <= t; t2++) mean += v[t2 * C + c];
            mean /= t + 1;
            ck_assert_msg(fabs(out[t * C + c] - mean) < 1e-14,
                          "t=%d c=%d: out %.17g, want the mean of v_0..v_t %.17g", t, c,
                          out[t * C + c], mean);
        }
}
END_TEST

/* With weight 1, bias 0, scale 1 and eps 0, a LayerNorm row comes out with mean 0 and
 * (biased) variance 1, an RMSNorm row with mean square 1; and out_scale multiplies it all. */
START_TEST(test_spec_norm_rows_come_out_standardized) {
    enum { N = 3, C = 11 };
    double x[N * C], w[C], b[C], out[N * C], scaled[N * C];
    uint64_t rng = 6;
    for (int i = 0; i < N * C; i++) x[i] = test_uniform(&rng, -3, 5);
    for (int c = 0; c < C; c++) w[c] = 1.0, b[c] = 0.0;
    for (NormKind kind = NORM_RMS; kind <= NORM_LAYER; kind++) {
        spec_norm_forward(kind, out, x, w, b, N, C, 0.0, 1.0);
        spec_norm_forward(kind, scaled, x, w, b, N, C, 0.0, 0.25);
        for (int n = 0; n < N; n++) {
            const double *o = out + n * C;
            double mean = 0.0, m2 = 0.0;
            for (int c = 0; c < C; c++) mean += o[c] / C;
            /* second moment about the mean (LayerNorm) or about 0 (RMSNorm) */
            const double centre = kind == NORM_LAYER ? mean : 0.0;
            for (int c = 0; c < C; c++) m2 += (o[c] - centre) * (o[c] - centre) / C;
            if (kind == NORM_LAYER) ck_assert_double_eq_tol(mean, 0.0, 1e-14);
            ck_assert_double_eq_tol(m2, 1.0, 1e-13);
            for (int c = 0; c < C; c++)
                ck_assert_double_eq_tol(scaled[n * C + c], 0.25 * out[n * C + c], 1e-15);
        }
    }
}
END_TEST

/* RoPE's defining property (Su et al. 2021): the score <R_t q, R_u k> of a query at
 * position t and a key at position u depends only on t - u; and a rotation keeps norms. */
START_TEST(test_spec_rope_scores_depend_only_on_the_distance_between_positions) {
    enum { T = 6, HS = 8 };
    double q1[HS], k1[HS], q[T * HS], k[T * HS], rq[T * HS], rk[T * HS];
    uint64_t rng = 7;
    for (int i = 0; i < HS; i++) {
        q1[i] = test_uniform(&rng, -1, 1);
        k1[i] = test_uniform(&rng, -1, 1);
    }
    for (int t = 0; t < T; t++) /* the same q and k at every position */
        for (int i = 0; i < HS; i++) q[t * HS + i] = q1[i], k[t * HS + i] = k1[i];
    spec_rope_forward(rq, q, 1, T, 1, HS, 10000.0);
    spec_rope_forward(rk, k, 1, T, 1, HS, 10000.0);
    double score[T][T];
    for (int t = 0; t < T; t++)
        for (int u = 0; u < T; u++) {
            score[t][u] = 0.0;
            for (int i = 0; i < HS; i++) score[t][u] += rq[t * HS + i] * rk[u * HS + i];
        }
    for (int t = 1; t < T; t++)
        for (int u = 1; u < T; u++)
            ck_assert_msg(fabs(score[t][u] - score[t - 1][u - 1]) < 1e-13,
                          "score(%d,%d) = %.17g differs from score(%d,%d) = %.17g", t, u,
                          score[t][u], t - 1, u - 1, score[t - 1][u - 1]);
    for (int t = 0; t < T; t++) {
        double n0 = 0.0, nt = 0.0;
        for (int i = 0; i < HS; i++) n0 += q1[i] * q1[i], nt += rq[t * HS + i] * rq[t * HS + i];
        ck_assert_double_eq_tol(nt, n0, 1e-14);
    }
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* every CPU op against the spec, looped over every case                                    */

START_TEST(test_every_forward_matches_float64_spec) {
    OpCase c;
    case_make(&c, _i, 1);
    Backend *be = make_cpu(2);
    float *out = new_floats(c.out_len);
    double *ref = new_doubles(c.out_len);
    c.forward(be, &c, out);
    c.spec_forward(&c, ref);
    double err = test_max_rel_err_f(out, ref, c.out_len, ERR_FLOOR);
    report(c.name, "forward", err);
    ck_assert_msg(err < SPEC_TOL, "%s forward: rel err %.3e >= %.0e", c.name, err, SPEC_TOL);
    free(out);
    free(ref);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

START_TEST(test_every_backward_matches_float64_spec_backward) {
    OpCase c;
    case_make(&c, _i, 2);
    Backend *be = make_cpu(2);
    float *grads[MAX_IN];
    double *want[MAX_IN];
    grads_alloc(&c, grads);
    dgrads_alloc(&c, want);
    c.backward(be, &c, grads);
    c.spec_backward(&c, want);
    for (int k = 0; k < c.nin; k++) {
        double err = test_max_rel_err_f(grads[k], want[k], c.in_len[k], ERR_FLOOR);
        char what[64];
        snprintf(what, sizeof what, "backward d%s", c.in_name[k]);
        report(c.name, what, err);
        ck_assert_msg(err < SPEC_TOL, "%s d%s vs spec backward: rel err %.3e >= %.0e", c.name,
                      c.in_name[k], err, SPEC_TOL);
    }
    grads_free(grads);
    dgrads_free(want);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* Independent of the spec backward: the CPU's gradients against central differences of the
 * spec forward. */
START_TEST(test_every_backward_matches_finite_differences_of_float64_spec) {
    OpCase c;
    case_make(&c, _i, 2);
    Backend *be = make_cpu(2);
    float *grads[MAX_IN];
    grads_alloc(&c, grads);
    c.backward(be, &c, grads);
    for (int k = 0; k < c.nin; k++) {
        double *fd = new_doubles(c.in_len[k]);
        fd_gradient(&c, k, fd, 0);
        double err = test_max_rel_err_f(grads[k], fd, c.in_len[k], ERR_FLOOR);
        char what[64];
        snprintf(what, sizeof what, "backward d%s vs fin. diff.", c.in_name[k]);
        report(c.name, what, err);
        ck_assert_msg(err < BACKWARD_TOL, "%s d%s vs finite differences: rel err %.3e >= %.0e",
                      c.name, c.in_name[k], err, BACKWARD_TOL);
        free(fd);
    }
    grads_free(grads);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* Backward twice from zero gives twice the gradient; into pre-filled buffers it adds. */
START_TEST(test_every_backward_adds_into_its_gradient_outputs) {
    OpCase c;
    case_make(&c, _i, 3);
    if (c.overwrites) { /* cross-entropy: see test_crossentropy_overwrites_dlogits */
        case_free(&c);
        return;
    }
    Backend *be = make_cpu(2);
    float *once[MAX_IN], *twice[MAX_IN], *prefilled[MAX_IN], *prefill[MAX_IN];
    grads_alloc(&c, once);
    grads_alloc(&c, twice);
    grads_alloc(&c, prefilled);
    grads_alloc(&c, prefill);
    uint64_t rng = 99;
    for (int k = 0; k < c.nin; k++) {
        test_fill_uniform(prefill[k], c.in_len[k], &rng, -5, 5);
        memcpy(prefilled[k], prefill[k], c.in_len[k] * sizeof(float));
    }
    c.backward(be, &c, once);
    c.backward(be, &c, twice);
    c.backward(be, &c, twice);
    c.backward(be, &c, prefilled);
    for (int k = 0; k < c.nin; k++) {
        size_t n = c.in_len[k];
        double *want_twice = new_doubles(n), *want_prefilled = new_doubles(n);
        for (size_t j = 0; j < n; j++) {
            want_twice[j] = 2.0 * once[k][j];
            want_prefilled[j] = (double)prefill[k][j] + once[k][j];
        }
        double e2 = test_max_rel_err_f(twice[k], want_twice, n, ERR_FLOOR);
        double ep = test_max_rel_err_f(prefilled[k], want_prefilled, n, ERR_FLOOR);
        ck_assert_msg(e2 < 1e-6, "%s d%s: backward twice is not 2x once (rel err %.3e)", c.name,
                      c.in_name[k], e2);
        ck_assert_msg(ep < 1e-6, "%s d%s: backward did not add into pre-filled gradient "
                      "(rel err %.3e)", c.name, c.in_name[k], ep);
        free(want_twice);
        free(want_prefilled);
    }
    grads_free(once);
    grads_free(twice);
    grads_free(prefilled);
    grads_free(prefill);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

START_TEST(test_every_op_is_bitwise_deterministic) {
    OpCase c;
    case_make(&c, _i, 4);
    Backend *be = make_cpu(2);
    float *out1 = new_floats(c.out_len), *out2 = new_floats(c.out_len);
    c.forward(be, &c, out1);
    c.forward(be, &c, out2);
    ck_assert_msg(memcmp(out1, out2, c.out_len * sizeof(float)) == 0,
                  "%s forward differs between two runs", c.name);
    float *g1[MAX_IN], *g2[MAX_IN];
    grads_alloc(&c, g1);
    grads_alloc(&c, g2);
    c.backward(be, &c, g1);
    c.backward(be, &c, g2);
    for (int k = 0; k < c.nin; k++)
        ck_assert_msg(memcmp(g1[k], g2[k], c.in_len[k] * sizeof(float)) == 0,
                      "%s d%s differs between two runs", c.name, c.in_name[k]);
    grads_free(g1);
    grads_free(g2);
    free(out1);
    free(out2);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* op-specific contracts                                                                    */

START_TEST(test_matmul_backward_with_null_dinp_skips_it_and_still_accumulates_dw) {
    OpCase c;
    case_make(&c, CASE_MATMUL, 5);
    Backend *be = make_cpu(2);
    float *grads[MAX_IN];
    grads_alloc(&c, grads);
    c.backward(be, &c, grads); /* reference: dinp and dw together */

    void *inp = dev_act(be, c.in_f[0], c.in_len[0]), *w = dev_act(be, c.in_f[1], c.in_len[1]);
    void *dout = dev_act(be, c.dout_f, c.out_len);
    float *dw = dev_f32(be, NULL, c.in_len[1]);
    be->ops->matmul_backward(be, NULL, dw, dout, inp, w, c.N, c.IC, c.OC);
    float *dw_host = new_floats(c.in_len[1]);
    take_f32(be, dw_host, dw, c.in_len[1]);
    double *want = to_doubles(grads[1], c.in_len[1]);
    ck_assert_msg(test_max_rel_err_f(dw_host, want, c.in_len[1], ERR_FLOOR) < 1e-6,
                  "dw with dinp NULL differs from dw with dinp");
    double norm = 0;
    for (size_t j = 0; j < c.in_len[1]; j++) norm += fabs(dw_host[j]);
    ck_assert_msg(norm > 0, "dw was not written with dinp NULL");
    free(want);
    free(dw_host);
    be->ops->release(be, inp);
    be->ops->release(be, w);
    be->ops->release(be, dout);
    grads_free(grads);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

START_TEST(test_norm_forward_saves_mean_and_rstd_of_each_row) {
    for (int which = CASE_RMSNORM; which <= CASE_LAYERNORM; which++) {
        OpCase c;
        case_make(&c, which, 6);
        Backend *be = make_cpu(2);
        void *inp = dev_act(be, c.in_f[0], c.in_len[0]);
        void *w = dev_act(be, c.in_f[1], c.in_len[1]);
        void *b = c.nin > 2 ? dev_act(be, c.in_f[2], c.in_len[2]) : NULL;
        float *mean = dev_f32(be, NULL, (size_t)c.N), *rstd = dev_f32(be, NULL, (size_t)c.N);
        void *o = dev_act(be, NULL, c.out_len);
        be->ops->norm_forward(be, c.kind, o, mean, rstd, inp, w, b, c.N, c.C, c.eps, c.scale);
        float mean_h[16], rstd_h[16];
        take_f32(be, mean_h, mean, (size_t)c.N);
        take_f32(be, rstd_h, rstd, (size_t)c.N);
        double mean_ref[16], rstd_ref[16];
        spec_norm_stats(c.kind, mean_ref, rstd_ref, c.in_d[0], c.N, c.C, c.eps);
        double em = test_max_rel_err_f(mean_h, mean_ref, (size_t)c.N, ERR_FLOOR);
        double er = test_max_rel_err_f(rstd_h, rstd_ref, (size_t)c.N, ERR_FLOOR);
        report(c.name, "saved rstd", er);
        if (c.kind == NORM_LAYER)
            ck_assert_msg(em < SPEC_TOL, "%s mean: rel err %.3e", c.name, em);
        ck_assert_msg(er < SPEC_TOL, "%s rstd: rel err %.3e", c.name, er);
        be->ops->release(be, inp);
        be->ops->release(be, w);
        if (b) be->ops->release(be, b);
        be->ops->release(be, o);
        backend_destroy(be);
        case_free(&c);
    }
}
END_TEST

/* out = s * N(x) with N including weight and bias: the output scale multiplies the bias. */
START_TEST(test_layernorm_out_scale_multiplies_weight_and_bias) {
    Backend *be = make_cpu(2);
    enum { N = 3, C = 5 };
    float x[N * C], w[C], b[C], o1[N * C], o2[N * C];
    uint64_t rng = 11;
    test_fill_uniform(x, N * C, &rng, -1, 1);
    test_fill_uniform(w, C, &rng, 0.5, 1.5);
    test_fill_uniform(b, C, &rng, 1, 2); /* large bias: scaling it or not is visible */
    void *dx = dev_act(be, x, N * C), *dw = dev_act(be, w, C), *db = dev_act(be, b, C);
    float *mean = dev_f32(be, NULL, N), *rstd = dev_f32(be, NULL, N);
    void *out = dev_act(be, NULL, N * C);
    be->ops->norm_forward(be, NORM_LAYER, out, mean, rstd, dx, dw, db, N, C, 1e-6f, 1.0f);
    be->ops->download_act(be, o1, out, N * C);
    be->ops->norm_forward(be, NORM_LAYER, out, mean, rstd, dx, dw, db, N, C, 1e-6f, 0.25f);
    be->ops->download_act(be, o2, out, N * C);
    for (int i = 0; i < N * C; i++)
        ck_assert_msg(fabsf(o2[i] - 0.25f * o1[i]) <= 1e-6f * (1 + fabsf(o1[i])),
                      "out(s=0.25)[%d] = %g, want 0.25 * %g", i, o2[i], o1[i]);
    be->ops->release(be, dx);
    be->ops->release(be, dw);
    be->ops->release(be, db);
    be->ops->release(be, mean);
    be->ops->release(be, rstd);
    be->ops->release(be, out);
    backend_destroy(be);
}
END_TEST

START_TEST(test_rope_in_place_equals_out_of_place) {
    OpCase c;
    case_make(&c, CASE_ROPE, 7);
    Backend *be = make_cpu(2);
    float *separate = new_floats(c.out_len), *inplace = new_floats(c.out_len);
    c.forward(be, &c, separate);
    void *x = dev_act(be, c.in_f[0], c.in_len[0]);
    be->ops->rope_forward(be, x, x, c.B, c.T, c.NH, c.HS, c.theta);
    take_act(be, inplace, x, c.out_len);
    ck_assert_msg(memcmp(separate, inplace, c.out_len * sizeof(float)) == 0,
                  "rope in place differs from out of place");
    free(separate);
    free(inplace);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* Position 0 is not rotated; position t rotates pair (i, i+HS/2) by t * theta^(-2i/HS). */
START_TEST(test_rope_rotates_pair_i_with_i_plus_half_by_position_angle) {
    Backend *be = make_cpu(2);
    enum { B = 1, T = 3, NH = 1, HS = 4 };
    float x[B * T * NH * HS], out[B * T * NH * HS];
    for (int i = 0; i < B * T * NH * HS; i++) x[i] = (i % HS == 0) ? 1.0f : 0.0f; /* e_0 */
    void *d = dev_act(be, x, B * T * NH * HS);
    be->ops->rope_forward(be, d, d, B, T, NH, HS, 100.0f);
    take_act(be, out, d, B * T * NH * HS);
    for (int t = 0; t < T; t++) {
        const float *row = out + t * HS;
        /* e_0 rotates into e_0 cos(t) + e_2 sin(t): pair (0, 2), inv_freq 100^0 = 1 */
        ck_assert_msg(fabs(row[0] - cos((double)t)) < 1e-6 && fabs(row[2] - sin((double)t)) < 1e-6,
                      "t=%d: got (%g, %g), want (cos t, sin t)", t, row[0], row[2]);
        ck_assert_msg(row[1] == 0.0f && row[3] == 0.0f, "t=%d: pair (1,3) must stay zero", t);
    }
    backend_destroy(be);
}
END_TEST

START_TEST(test_attention_future_keys_and_values_do_not_change_earlier_outputs) {
    OpCase c;
    case_make(&c, CASE_ATTENTION, 8);
    Backend *be = make_cpu(2);
    float *before = new_floats(c.out_len), *after = new_floats(c.out_len);
    c.forward(be, &c, before);
    const int t0 = 3;
    const size_t C = (size_t)c.NH * c.HS;
    for (int b = 0; b < c.B; b++)
        for (size_t i = 0; i < C; i++) {
            c.in_f[1][((size_t)b * c.T + t0) * C + i] += 0.75f; /* k */
            c.in_f[2][((size_t)b * c.T + t0) * C + i] -= 1.5f;  /* v */
        }
    c.forward(be, &c, after);
    int later_changed = 0;
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++) {
            size_t off = ((size_t)b * c.T + t) * C;
            int same = memcmp(before + off, after + off, C * sizeof(float)) == 0;
            if (t < t0) ck_assert_msg(same, "b=%d t=%d changed when only t=%d's k,v did", b, t, t0);
            else later_changed |= !same;
        }
    ck_assert_msg(later_changed, "changing k,v at t=%d changed no output at all", t0);
    free(before);
    free(after);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* for both attention cases: the blocked softmax of rows longer than one 16-wide block too */
START_TEST(test_attention_saves_causal_softmax_probabilities) {
    OpCase c;
    case_make(&c, _i ? CASE_ATTENTION_BLOCKS : CASE_ATTENTION, 9);
    Backend *be = make_cpu(2);
    size_t bytes = be->ops->attention_saved_bytes(be, c.B, c.T, c.NH);
    size_t np = (size_t)c.B * c.NH * c.T * c.T;
    ck_assert_uint_eq(bytes, np * sizeof(float));
    void *q = dev_act(be, c.in_f[0], c.in_len[0]), *k = dev_act(be, c.in_f[1], c.in_len[1]);
    void *v = dev_act(be, c.in_f[2], c.in_len[2]), *o = dev_act(be, NULL, c.out_len);
    float *saved = dev_f32(be, NULL, np);
    be->ops->attention_forward(be, o, saved, q, k, v, c.B, c.T, c.NH, c.HS);
    float *p = new_floats(np);
    take_f32(be, p, saved, np);
    double *want = new_doubles(np);
    spec_attention_probs(want, c.in_d[0], c.in_d[1], c.B, c.T, c.NH, c.HS);
    double err = test_max_rel_err_f(p, want, np, ERR_FLOOR);
    report(c.name, "saved probabilities", err);
    ck_assert_msg(err < SPEC_TOL, "%s saved probabilities: rel err %.3e", c.name, err);
    free(p);
    free(want);
    be->ops->release(be, q);
    be->ops->release(be, k);
    be->ops->release(be, v);
    be->ops->release(be, o);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

START_TEST(test_crossentropy_dlogits_may_alias_logits) {
    OpCase c;
    case_make(&c, CASE_CROSSENTROPY, 10);
    Backend *be = make_cpu(2);
    float *separate = new_floats(c.in_len[0]), *aliased = new_floats(c.in_len[0]);
    float *grads[MAX_IN];
    grads_alloc(&c, grads);
    c.backward(be, &c, grads);
    memcpy(separate, grads[0], c.in_len[0] * sizeof(float));
    float loss_sep[16], loss_alias[16];
    c.forward(be, &c, loss_sep);

    void *logits = dev_act(be, c.in_f[0], c.in_len[0]);
    int32_t *tgt = dev_i32(be, c.tokens, (size_t)c.N);
    float *losses = dev_f32(be, NULL, (size_t)c.N);
    be->ops->crossentropy(be, losses, logits, logits, tgt, c.N, c.V, c.dloss);
    take_act(be, aliased, logits, c.in_len[0]);
    take_f32(be, loss_alias, losses, (size_t)c.N);
    ck_assert_msg(memcmp(separate, aliased, c.in_len[0] * sizeof(float)) == 0,
                  "dlogits aliasing logits differs from a separate buffer");
    ck_assert_msg(memcmp(loss_sep, loss_alias, (size_t)c.N * sizeof(float)) == 0,
                  "losses with aliased dlogits differ");
    be->ops->release(be, tgt);
    grads_free(grads);
    free(separate);
    free(aliased);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

START_TEST(test_crossentropy_overwrites_dlogits) {
    OpCase c;
    case_make(&c, CASE_CROSSENTROPY, 11);
    Backend *be = make_cpu(2);
    float *clean[MAX_IN], *dirty[MAX_IN];
    grads_alloc(&c, clean);
    grads_alloc(&c, dirty);
    for (size_t j = 0; j < c.in_len[0]; j++) dirty[0][j] = 123.0f;
    c.backward(be, &c, clean);
    c.backward(be, &c, dirty);
    ck_assert_msg(memcmp(clean[0], dirty[0], c.in_len[0] * sizeof(float)) == 0,
                  "crossentropy added into dlogits instead of writing");
    grads_free(clean);
    grads_free(dirty);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* AdamW for `steps` steps on fp32 state vs the same steps in float64 (spec_adamw_update). */
static void check_adamw_steps(int steps, float grad_scale) {
    enum { n = 29 };
    const AdamWArgs base = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                            .weight_decay = 0.1f, .grad_scale = grad_scale, .step = 0};
    uint64_t rng = 1234;
    float p0[n], grads[3][n];
    test_fill_uniform(p0, n, &rng, -1, 1);
    for (int s = 0; s < 3; s++) test_fill_uniform(grads[s], n, &rng, -1, 1);
    grads[0][3] = 0.0f; /* a zero gradient still decays the weight */

    Backend *be = make_cpu(2);
    float *p = dev_f32(be, p0, n), *m = dev_f32(be, NULL, n), *v = dev_f32(be, NULL, n);
    double pd[n], md[n] = {0}, vd[n] = {0}, gd[n];
    for (int i = 0; i < n; i++) pd[i] = p0[i];
    for (int s = 0; s < steps; s++) {
        float *g = dev_f32(be, grads[s], n);
        AdamWArgs a = base;
        a.step = s + 1;
        be->ops->adamw_update(be, p, NULL, g, m, v, n, &a);
        be->ops->release(be, g);
        for (int i = 0; i < n; i++) gd[i] = grads[s][i];
        spec_adamw_update(pd, md, vd, gd, n, a.lr, a.beta1, a.beta2, a.eps, a.weight_decay,
                          a.grad_scale, a.step);
    }
    float ph[n], mh[n], vh[n];
    take_f32(be, ph, p, n);
    take_f32(be, mh, m, n);
    take_f32(be, vh, v, n);
    /* the update p - p0 must match to fp32 precision, not just p */
    float dp[n];
    double dpd[n];
    for (int i = 0; i < n; i++) {
        dp[i] = ph[i] - p0[i];
        dpd[i] = pd[i] - p0[i];
    }
    double ep = test_max_rel_err_f(dp, dpd, n, 1e-12);
    double em = test_max_rel_err_f(mh, md, n, 1e-12), ev = test_max_rel_err_f(vh, vd, n, 1e-12);
    char what[32];
    snprintf(what, sizeof what, "%d step%s (update)", steps, steps > 1 ? "s" : "");
    report("adamw", what, ep);
    ck_assert_msg(ep < 1e-4, "AdamW %d steps: parameter update rel err %.3e", steps, ep);
    ck_assert_msg(em < 1e-6 && ev < 1e-6, "AdamW %d steps: moments rel err m %.3e v %.3e", steps,
                  em, ev);
    backend_destroy(be);
}

START_TEST(test_adamw_one_step_matches_float64_hand_computation) { check_adamw_steps(1, 1.0f); }
END_TEST

/* with grad_scale != 1 (accumulation 1/k times a clipping factor) */
START_TEST(test_adamw_two_steps_match_float64_hand_computation) { check_adamw_steps(2, 0.3f); }
END_TEST

/* grad_scale multiplies the gradient before the moments: scale 0.25 on g is bitwise the
 * same step as scale 1 on g/4 (powers of two scale exactly), and differs from scale 1 on g
 * (the moments, hence m and v, see the scaled gradient). */
START_TEST(test_adamw_grad_scale_multiplies_the_gradient) {
    enum { n = 13 };
    uint64_t rng = 4321;
    float p0[n], g[n], g_quarter[n];
    test_fill_uniform(p0, n, &rng, -1, 1);
    test_fill_uniform(g, n, &rng, -1, 1);
    for (int i = 0; i < n; i++) g_quarter[i] = 0.25f * g[i];
    Backend *be = make_cpu(2);
    float res_m[2][n], res_p[2][n];
    for (int r = 0; r < 2; r++) {
        float *p = dev_f32(be, p0, n), *m = dev_f32(be, NULL, n), *v = dev_f32(be, NULL, n);
        float *dg = dev_f32(be, r == 0 ? g : g_quarter, n);
        AdamWArgs a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                       .weight_decay = 0.0f, .grad_scale = r == 0 ? 0.25f : 1.0f, .step = 1};
        be->ops->adamw_update(be, p, NULL, dg, m, v, n, &a);
        take_f32(be, res_p[r], p, n);
        take_f32(be, res_m[r], m, n);
        be->ops->release(be, v);
        be->ops->release(be, dg);
    }
    ck_assert_msg(memcmp(res_p[0], res_p[1], sizeof res_p[0]) == 0 &&
                      memcmp(res_m[0], res_m[1], sizeof res_m[0]) == 0,
                  "grad_scale 0.25 on g differs from grad_scale 1 on g/4");
    for (int i = 0; i < n; i++)
        ck_assert_msg(fabsf(res_m[0][i] - 0.1f * 0.25f * g[i]) <= 1e-7f,
                      "m[%d] = %g, want (1-b1) * 0.25 * g", i, res_m[0][i]);
    backend_destroy(be);
}
END_TEST

/* The first step moves every weight with nonzero gradient by about lr (mhat/sqrt(vhat) =
 * sign(g) at t = 1), plus lr * wd * p: a hand-checkable number. */
START_TEST(test_adamw_first_step_moves_each_weight_by_lr_times_sign_plus_decay) {
    Backend *be = make_cpu(2);
    float p0[3] = {0.5f, -0.25f, 2.0f}, g[3] = {0.3f, -2.0f, 0.0f};
    float *p = dev_f32(be, p0, 3), *m = dev_f32(be, NULL, 3), *v = dev_f32(be, NULL, 3);
    float *dg = dev_f32(be, g, 3);
    AdamWArgs a = {.lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                   .weight_decay = 0.01f, .grad_scale = 1.0f, .step = 1};
    be->ops->adamw_update(be, p, NULL, dg, m, v, 3, &a);
    float ph[3];
    take_f32(be, ph, p, 3);
    const double want[3] = {0.5 - 0.1 * (1 + 0.01 * 0.5), -0.25 - 0.1 * (-1 + 0.01 * -0.25),
                            2.0 - 0.1 * (0 + 0.01 * 2.0)};
    for (int i = 0; i < 3; i++)
        ck_assert_msg(fabs(ph[i] - want[i]) < 1e-6, "p[%d] = %.8f, want %.8f", i, ph[i], want[i]);
    be->ops->release(be, m);
    be->ops->release(be, v);
    be->ops->release(be, dg);
    backend_destroy(be);
}
END_TEST

START_TEST(test_sumsq_accumulates_in_double_and_ignores_thread_count) {
    const size_t sizes[] = {0, 1, 5, 63, 64, 65, 100003};
    uint64_t rng = 77;
    Backend *one = make_cpu(1);
    double results[2][7];
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = random_floats(n, &rng, -1, 1);
        double *xd = to_doubles(x, n);
        double want = spec_sumsq(xd, n);
        free(xd);
        float *d = dev_f32(one, x, n);
        results[0][s] = one->ops->sumsq_f32(one, d, n);
        one->ops->release(one, d);
        ck_assert_msg(fabs(results[0][s] - want) <= 1e-12 * (1 + want),
                      "sumsq n=%zu: %.17g, want %.17g", n, results[0][s], want);
        free(x);
    }
    backend_destroy(one);
    Backend *two = make_cpu(2);
    rng = 77;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = random_floats(n, &rng, -1, 1);
        float *d = dev_f32(two, x, n);
        results[1][s] = two->ops->sumsq_f32(two, d, n);
        two->ops->release(two, d);
        ck_assert_msg(memcmp(&results[0][s], &results[1][s], sizeof(double)) == 0,
                      "sumsq n=%zu differs between 1 and 2 threads", n);
        free(x);
    }
    backend_destroy(two);
}
END_TEST

START_TEST(test_residual_forward_may_write_over_its_inputs) {
    OpCase c;
    case_make(&c, CASE_RESIDUAL, 12);
    Backend *be = make_cpu(2);
    float *want = new_floats(c.n), *got = new_floats(c.n);
    c.forward(be, &c, want);
    for (int alias = 0; alias < 2; alias++) { /* out == x, then out == f */
        void *x = dev_act(be, c.in_f[0], c.n), *f = dev_act(be, c.in_f[1], c.n);
        be->ops->residual_forward(be, alias == 0 ? x : f, x, c.scale, f, c.n);
        take_act(be, got, alias == 0 ? x : f, c.n);
        be->ops->release(be, alias == 0 ? f : x);
        ck_assert_msg(memcmp(want, got, c.n * sizeof(float)) == 0,
                      "residual with out aliasing %s differs", alias == 0 ? "x" : "f");
    }
    free(want);
    free(got);
    backend_destroy(be);
    case_free(&c);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* backend selection                                                                        */

/* The ops compiled once per instruction set (kernels/cpu/vec_kernels.c: attention, SwiGLU,
 * RMSNorm, LayerNorm, AdamW) run at every vector width this CPU has, on the same inputs: the
 * same fp32 operations per output element in the same order, so the same bits. Shapes reach
 * every tile and tail: attention HS 86 = 64 + 16 + 6 columns and T 83 (not a multiple of
 * the 4 rows of a block or of 16 columns); SwiGLU 2 work items plus 13; norm rows of
 * C 117 = 3 x 32 + 16 + 5; AdamW 2 work items plus 7. */
enum { WIDTH_OUTPUTS = 12 };

/* Runs every such op on inputs drawn from `seed`; out[i] gets each result (malloc'ed), names[i]
 * its name, lens[i] its length. */
static void run_vector_width_ops(Backend *be, uint64_t seed, float *out[WIDTH_OUTPUTS],
                                 const char *names[WIDTH_OUTPUTS], size_t lens[WIDTH_OUTPUTS]) {
    uint64_t rng = seed;
    int o = 0;
    { /* attention */
        const int B = 2, T = 83, NH = 2, HS = 86;
        const size_t n = (size_t)B * T * NH * HS;
        float *q = random_floats(n, &rng, -2, 2), *k = random_floats(n, &rng, -2, 2);
        float *v = random_floats(n, &rng, -1, 1), *dout = random_floats(n, &rng, -1, 1);
        float *att = new_floats(n), *dq = new_floats(n), *dk = new_floats(n), *dv = new_floats(n);
        void *saved = be->ops->alloc(be, be->ops->attention_saved_bytes(be, B, T, NH));
        be->ops->attention_forward(be, att, saved, q, k, v, B, T, NH, HS);
        be->ops->attention_backward(be, dq, dk, dv, dout, saved, q, k, v, B, T, NH, HS);
        be->ops->release(be, saved);
        float *res[4] = {att, dq, dk, dv};
        const char *nm[4] = {"attention out", "attention dq", "attention dk", "attention dv"};
        for (int i = 0; i < 4; i++) out[o] = res[i], names[o] = nm[i], lens[o++] = n;
        free(q), free(k), free(v), free(dout);
    }
    { /* SwiGLU */
        const size_t n = 2 * 4096 + 13;
        float *g = random_floats(n, &rng, -6, 6), *u = random_floats(n, &rng, -2, 2);
        float *d = random_floats(n, &rng, -1, 1), *y = new_floats(n);
        float *dg = random_floats(n, &rng, -1, 1), *du = random_floats(n, &rng, -1, 1);
        be->ops->swiglu_forward(be, y, g, u, n);
        be->ops->swiglu_backward(be, dg, du, d, g, u, n);
        out[o] = y, names[o] = "swiglu out", lens[o++] = n;
        out[o] = dg, names[o] = "swiglu dgate", lens[o++] = n;
        out[o] = du, names[o] = "swiglu dup", lens[o++] = n;
        free(g), free(u), free(d);
    }
    for (int kind = NORM_RMS; kind <= NORM_LAYER; kind++) { /* RMSNorm, LayerNorm */
        const int N = 37, C = 117;
        const size_t n = (size_t)N * C;
        float *x = random_floats(n, &rng, -3, 3), *w = random_floats(C, &rng, 0.5, 1.5);
        float *bias = random_floats(C, &rng, -1, 1), *d = random_floats(n, &rng, -1, 1);
        float *y = new_floats(n), *dx = random_floats(n, &rng, -1, 1);
        float *dw = new_floats(C), *db = new_floats(C), *mean = new_floats(N);
        float *rstd = new_floats(N);
        be->ops->norm_forward(be, kind, y, mean, rstd, x, w, kind == NORM_LAYER ? bias : NULL,
                              N, C, 1e-5f, 0.7f);
        be->ops->norm_backward(be, kind, dx, dw, kind == NORM_LAYER ? db : NULL, d, x, w, mean,
                               rstd, N, C, 0.7f);
        /* y, then dx with dw (and db) and the statistics appended */
        float *grads = malloc((n + 2 * C + 2 * N) * sizeof(float));
        memcpy(grads, dx, n * sizeof(float));
        memcpy(grads + n, dw, C * sizeof(float));
        memcpy(grads + n + C, db, C * sizeof(float));
        memcpy(grads + n + 2 * C, mean, N * sizeof(float));
        memcpy(grads + n + 2 * C + N, rstd, N * sizeof(float));
        out[o] = y, names[o] = kind == NORM_RMS ? "rmsnorm out" : "layernorm out", lens[o++] = n;
        out[o] = grads, names[o] = kind == NORM_RMS ? "rmsnorm grads" : "layernorm grads";
        lens[o++] = n + 2 * C + 2 * N;
        free(x), free(w), free(bias), free(d), free(dx), free(dw), free(db), free(mean);
        free(rstd);
    }
    { /* AdamW, two steps; parameters, then both moments */
        const size_t n = 2 * 16384 + 7;
        float *state = random_floats(3 * n, &rng, -1, 1), *g = random_floats(n, &rng, -1, 1);
        for (size_t i = 2 * n; i < 3 * n; i++) state[i] = fabsf(state[i]); /* v >= 0 */
        AdamWArgs a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                       .weight_decay = 0.1f, .grad_scale = 0.5f, .step = 1};
        be->ops->adamw_update(be, state, NULL, g, state + n, state + 2 * n, n, &a);
        a.step = 2;
        be->ops->adamw_update(be, state, NULL, g, state + n, state + 2 * n, n, &a);
        out[o] = state, names[o] = "adamw state", lens[o++] = 3 * n;
        free(g);
    }
    ck_assert_int_eq(o, WIDTH_OUTPUTS);
}

START_TEST(test_vector_ops_give_the_same_bits_at_every_vector_width) {
    const CpuIsa cpu = cpu_isa();
    const CpuVectorIsa widths[3] = {CPU_VECTOR_4, CPU_VECTOR_AVX2, CPU_VECTOR_AVX512};
    const CpuIsa needs[3] = {CPU_ISA_SSE, CPU_ISA_AVX2, CPU_ISA_AVX512};
    float *got[3][WIDTH_OUTPUTS] = {{0}};
    const char *names[WIDTH_OUTPUTS];
    size_t lens[WIDTH_OUTPUTS];
    int ran = 0;
    for (int w = 0; w < 3; w++) {
        if (cpu < needs[w]) continue;
        Backend *be = make_cpu(2);
        ((CpuImpl *)be->impl)->vector_isa = widths[w];
        run_vector_width_ops(be, 20261130, got[w], names, lens);
        backend_destroy(be);
        if (w > 0)
            for (int i = 0; i < WIDTH_OUTPUTS; i++)
                ck_assert_msg(memcmp(got[w][i], got[0][i], lens[i] * sizeof(float)) == 0,
                              "%s differs at vector width %d from the 4-lane build", names[i],
                              w);
        ran++;
    }
    ck_assert_int_ge(ran, 1);
    if (cpu >= CPU_ISA_AVX512) ck_assert_int_eq(ran, 3); /* every width ran here */
    for (int w = 0; w < 3; w++)
        for (int i = 0; i < WIDTH_OUTPUTS; i++) free(got[w][i]);
}
END_TEST

START_TEST(test_backend_create_unknown_name_fails_naming_it_and_the_valid_ones) {
    char err[256] = "";
    Backend *be = backend_create("tpu9000", 2, err, sizeof err);
    ck_assert_ptr_null(be);
    ck_assert_msg(strstr(err, "tpu9000") != NULL, "error does not name the backend: %s", err);
    ck_assert_msg(strstr(err, "cpu") != NULL && strstr(err, "auto") != NULL,
                  "error does not list the valid names: %s", err);
}
END_TEST

START_TEST(test_backend_cuda_without_nvcc_says_not_compiled_in) {
#ifdef NB_HAVE_CUDA
    return; /* compiled in: the GPU suites test it */
#else
    char err[256] = "";
    ck_assert_ptr_null(backend_create("cuda", 2, err, sizeof err));
    ck_assert_str_eq(err, "backend 'cuda' not compiled in (no nvcc at build time)");
#endif
}
END_TEST

START_TEST(test_cpu_backend_describes_itself_and_fills_every_op) {
    Backend *be = make_cpu(2);
    ck_assert_str_eq(be->name, "cpu");
    ck_assert_uint_eq(be->act_bytes, 4);
    ck_assert_int_eq(be->separate_master, 0);
    ck_assert_msg(strstr(be->device, "2 threads") != NULL, "device: %s", be->device);
    const BackendOps *o = be->ops;
    const void *fns[] = {
        (const void *)o->alloc, (const void *)o->release, (const void *)o->zero,
        (const void *)o->copy, (const void *)o->upload, (const void *)o->download,
        (const void *)o->upload_act, (const void *)o->download_act,
        (const void *)o->master_to_compute, (const void *)o->synchronize,
        (const void *)o->embedding_forward, (const void *)o->embedding_backward,
        (const void *)o->matmul_forward, (const void *)o->matmul_backward,
        (const void *)o->norm_forward, (const void *)o->norm_backward,
        (const void *)o->rope_forward, (const void *)o->rope_backward,
        (const void *)o->attention_saved_bytes, (const void *)o->attention_forward,
        (const void *)o->attention_backward, (const void *)o->swiglu_forward,
        (const void *)o->swiglu_backward, (const void *)o->residual_forward,
        (const void *)o->scaled_add, (const void *)o->crossentropy, (const void *)o->adamw_update,
        (const void *)o->sumsq_f32};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
        ck_assert_msg(fns[i] != NULL, "op %zu is NULL", i);
    /* alloc zero-fills */
    unsigned char *buf = o->alloc(be, 1000);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 1000; i++) ck_assert_int_eq(buf[i], 0);
    o->release(be, buf);
    backend_destroy(be);
}
END_TEST

START_TEST(test_backend_auto_picks_an_available_backend_and_describe_lists_cpu) {
    char err[256] = "";
    Backend *be = backend_create("auto", 2, err, sizeof err);
    ck_assert_msg(be != NULL, "auto: %s", err);
#ifndef NB_HAVE_CUDA
    ck_assert_str_eq(be->name, "cpu");
#endif
    backend_destroy(be);
    char desc[1024];
    backend_describe(desc, sizeof desc);
    ck_assert_msg(strstr(desc, "cpu: available") != NULL, "describe: %s", desc);
}
END_TEST

Suite *kernel_suite(void) {
    Suite *s = suite_create("kernel");

    TCase *spec = tcase_create("spec64");
    tcase_set_timeout(spec, 60);
    tcase_add_loop_test(spec, test_every_spec_backward_matches_finite_differences_of_spec_forward,
                        0, CASE_COUNT);
    tcase_add_loop_test(spec, test_every_spec_backward_adds_into_its_gradient_outputs, 0,
                        CASE_COUNT);
    tcase_add_test(spec, test_spec_softmax_of_equal_scores_is_uniform);
    tcase_add_test(spec, test_spec_norm_rows_come_out_standardized);
    tcase_add_test(spec, test_spec_rope_scores_depend_only_on_the_distance_between_positions);
    suite_add_tcase(s, spec);

    TCase *generic = tcase_create("every_op");
    tcase_set_timeout(generic, 60);
    tcase_add_loop_test(generic, test_every_forward_matches_float64_spec, 0, CASE_COUNT);
    tcase_add_loop_test(generic, test_every_backward_matches_float64_spec_backward, 0,
                        CASE_COUNT);
    tcase_add_loop_test(generic, test_every_backward_matches_finite_differences_of_float64_spec,
                        0, CASE_COUNT);
    tcase_add_loop_test(generic, test_every_backward_adds_into_its_gradient_outputs, 0,
                        CASE_COUNT);
    tcase_add_loop_test(generic, test_every_op_is_bitwise_deterministic, 0, CASE_COUNT);
    suite_add_tcase(s, generic);

    TCase *contracts = tcase_create("op_contracts");
    tcase_set_timeout(contracts, 60);
    tcase_add_test(contracts, test_matmul_backward_with_null_dinp_skips_it_and_still_accumulates_dw);
    tcase_add_test(contracts, test_norm_forward_saves_mean_and_rstd_of_each_row);
    tcase_add_test(contracts, test_layernorm_out_scale_multiplies_weight_and_bias);
    tcase_add_test(contracts, test_rope_in_place_equals_out_of_place);
    tcase_add_test(contracts, test_rope_rotates_pair_i_with_i_plus_half_by_position_angle);
    tcase_add_test(contracts, test_attention_future_keys_and_values_do_not_change_earlier_outputs);
    tcase_add_test(contracts, test_vector_ops_give_the_same_bits_at_every_vector_width);
    tcase_add_loop_test(contracts, test_attention_saves_causal_softmax_probabilities, 0, 2);
    tcase_add_test(contracts, test_crossentropy_dlogits_may_alias_logits);
    tcase_add_test(contracts, test_crossentropy_overwrites_dlogits);
    tcase_add_test(contracts, test_adamw_one_step_matches_float64_hand_computation);
    tcase_add_test(contracts, test_adamw_two_steps_match_float64_hand_computation);
    tcase_add_test(contracts, test_adamw_first_step_moves_each_weight_by_lr_times_sign_plus_decay);
    tcase_add_test(contracts, test_adamw_grad_scale_multiplies_the_gradient);
    tcase_add_test(contracts, test_sumsq_accumulates_in_double_and_ignores_thread_count);
    tcase_add_test(contracts, test_residual_forward_may_write_over_its_inputs);
    suite_add_tcase(s, contracts);

    TCase *select = tcase_create("backend_select");
    tcase_add_test(select, test_backend_create_unknown_name_fails_naming_it_and_the_valid_ones);
    tcase_add_test(select, test_backend_cuda_without_nvcc_says_not_compiled_in);
    tcase_add_test(select, test_cpu_backend_describes_itself_and_fills_every_op);
    tcase_add_test(select, test_backend_auto_picks_an_available_backend_and_describe_lists_cpu);
    suite_add_tcase(s, select);
    return s;
}
