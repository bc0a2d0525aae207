/* test_gpu_model.c — the whole model on the GPU against the CPU reference backend: one full
 * training step (forward, backward, AdamW) of every scheme from the same weights and batch,
 * 200 steps of the demo config ending at the same validation loss, and the determinism of a
 * GPU step. Data: the embedded Brown corpus through run_load_dataset, as `normbench train`
 * reads it. Run from the repository root (configs/ and data/). Two test cases:
 * CK_RUN_CASE=cuda_vs_cpu_model (the steps, seconds) or cuda_vs_cpu_demo (the 200-step runs).
 *
 * Budgets. The GPU keeps activations and compute weights in bf16 (8 significant bits: one
 * rounding is a relative error of at most 2^-9 = 2e-3, ~1.1e-3 RMS) and accumulates in fp32;
 * the CPU computes in fp32 from the same fp32 master weights. So the GPU starts from weights
 * rounded to bf16 and rounds every activation, activation gradient and attention probability
 * once more per op: tens of independent roundings along each path through the 12 blocks.
 * The numbers below were calibrated without a GPU by running this file against the CPU
 * backend with every act output rounded to bf16 after each op (weights, activations,
 * gradients of activations, saved attention probabilities; fp32 everything else), i.e. the
 * GPU's storage precision with exact fp32 arithmetic. On the demo shape at batch 8 that gave:
 *   loss, relative                          <= 3e-5
 *   whole gradient, relative L2              4e-3 .. 9e-3
 *   worst single tensor's gradient           1.1e-2 .. 2.1e-2 (always an attention q/k
 *                                            projection: softmax amplifies score errors)
 *   200-step demo, final val loss            0.4% apart
 * The GPU adds what the emulation leaves out (P rounded before the PV product, dS rounded
 * before the dQ/dK products, tensor-core summation order), so the budgets sit 2-3x above:
 *   BUDGET_LOSS        2e-3  |gpu - cpu| / cpu
 *   BUDGET_GRAD_TOTAL  2.5e-2 ||gpu - cpu|| / ||cpu|| over the whole gradient
 *   BUDGET_GRAD        5e-2  the same per parameter tensor (small tensors whose gradient is a
 *                            sum with much cancellation, and attention q/k, run highest)
 * i.e. the "bf16 operands between 1e-3 and 1e-2" of docs/design.md section 10.4 for the loss and the gradient
 * as a whole; the per-tensor figure is looser because a ~1e-2 per-op error compounds. Any
 * real bug (a missing scale, a wrong index, a lost accumulation) gives errors of order 1.
 * Updated parameters. AdamW's first step moves every element by lr * g / (|g| + eps) = +-lr
 * (plus decay) whatever |g| is, so an element whose gradient is below the bf16 noise flips
 * its step's sign (emulated: at most 3% of a tensor's elements, all with |g| under 0.11 of
 * the tensor's RMS gradient). A zero-initialized bias is then off by 2 lr per flip against a
 * norm of ~lr, so a per-tensor relative error of the parameters measures flips, not
 * precision. Checked instead, per tensor: (1) the GPU's update equals the CPU's AdamW applied
 * to the GPU's own gradient from the same master weights to fp32 accuracy (BUDGET_ADAMW of
 * the update's norm), which tests the optimizer without the flip noise; (2) GPU and CPU step
 * every element the same way except at most 5% (+4) of them, and only where the CPU gradient
 * is under FLIP_GRAD_MAX of the tensor's RMS; and over all parameters (3) the relative L2
 * error against the CPU's updated parameters is within BUDGET_PARAMS 1e-2 (emulated: 2e-3).
 * Demo run: 200 steps on bf16 drift apart like rounding noise, not like a bug; the final
 * validation loss must agree within 2%.
 * Determinism: the GPU backend has no floating-point atomics and caches one cuBLASLt
 * algorithm per shape, so two steps from the same state, on one backend or on two, are
 * bitwise identical. */
#ifdef NB_HAVE_CUDA

#include <check.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "data.h"
#include "gpu_tests.h"
#include "model.h"
#include "run.h"
#include "train.h"

#define BUDGET_LOSS 2e-3
#define BUDGET_GRAD 5e-2
#define BUDGET_GRAD_TOTAL 2.5e-2
#define BUDGET_PARAMS 1e-2
#define BUDGET_ADAMW 1e-4
#define FLIP_GRAD_MAX 0.5
#define FLIP_FRACTION 0.05
#define BUDGET_DEMO_VAL 2e-2

static const char *demo_path = "configs/demo/demo.yaml";

/* ---- helpers --------------------------------------------------------------------------- */
static void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    ck_assert_msg(p != NULL, "host allocation of %zu bytes failed", bytes);
    return p;
}

/* CPU threads for the reference: all cores (the 200-step run is CPU-bound), or NB_THREADS */
static int cpu_threads(void) {
    const char *e = getenv("NB_THREADS");
    int n = e ? atoi(e) : 0;
    if (n <= 0) n = omp_get_num_procs();
    return n < 1 ? 1 : n > 32 ? 32 : n;
}

static Backend *make_backend(const char *name) {
    char err[512];
    Backend *be = backend_create(name, !strcmp(name, "cpu") ? cpu_threads() : 0, err,
                                 sizeof err);
    ck_assert_msg(be != NULL, "cannot create backend %s: %s", name, err);
    return be;
}

static void load_config(NbConfig *cfg, const char *const *sets, int n_sets) {
    char err[1024];
    ck_assert_msg(config_load(cfg, demo_path, sets, n_sets, err, sizeof err) == 0, "%s", err);
}

/* ||a - b|| / ||b|| over n floats (0 when both are 0); every element must be finite */
static double rel_l2(const float *a, const float *b, size_t n, const char *what) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(isfinite(a[i]) && isfinite(b[i]), "%s: element %zu: gpu %g cpu %g", what,
                      i, (double)a[i], (double)b[i]);
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    if (num == 0.0) return 0.0;
    return sqrt(num) / fmax(sqrt(den), 1e-300);
}

/* One model's state after a step */
typedef struct {
    double loss;
    float *grads, *params; /* [total] */
} StepState;

static void step_state_free(StepState *s) {
    free(s->grads);
    free(s->params);
    s->grads = s->params = NULL;
}

/* The AdamW arguments of the step under test: step 1, the config's lr and betas, and weight
 * decay on (0.1) so that the decayed and undecayed groups both run. */
static AdamWArgs step_args(const NbConfig *run) {
    AdamWArgs a = {.lr = (float)run->train.lr, .beta1 = (float)run->train.beta1,
                   .beta2 = (float)run->train.beta2, .eps = (float)run->train.eps,
                   .weight_decay = 0.1f, .grad_scale = 1.0f, .step = 1};
    return a;
}

/* One training step of `run` on `be` from host parameters `init` on batch 0 of `ds`. */
static StepState one_step(const NbConfig *run, Backend *be, Dataset *ds, const float *init) {
    char err[512];
    const int B = run->train.batch, T = run->model.seq_len;
    Model *m = run_create_model(run, be, err, sizeof err);
    ck_assert_msg(m != NULL, "%s: %s", be->name, err);
    const size_t total = model_params(m)->total;
    int32_t *tokens = xmalloc(sizeof *tokens * (size_t)B * T);
    int32_t *targets = xmalloc(sizeof *targets * (size_t)B * T);
    ck_assert_int_eq(dataset_train_batch(ds, run->seeds[0], 0, B, tokens, targets), 0);

    model_set_params(m, init);
    model_zero_grad(m);
    StepState s = {0};
    s.loss = model_forward(m, tokens, targets, NULL);
    model_backward(m, NULL);
    s.grads = xmalloc(sizeof(float) * total);
    model_get_grads(m, s.grads);
    AdamWArgs a = step_args(run);
    model_adamw_step(m, &a);
    s.params = xmalloc(sizeof(float) * total);
    model_get_params(m, s.params);

    model_destroy(m);
    free(tokens), free(targets);
    return s;
}

/* Host parameters of `run` as run_train initializes them (model_init_params, the run's seed) */
static float *init_params(const NbConfig *run, ParamTable *table) {
    char err[512];
    SublayerSpec *specs =
        run_build_specs(&run->model, run->schemes[0], &run->scheme_params, err, sizeof err);
    ck_assert_msg(specs != NULL, "%s", err);
    ck_assert_int_eq(param_table_build(&run->model, specs, table), 0);
    float *host = xmalloc(sizeof(float) * table->total);
    model_init_params(&run->model, table, specs, run->seeds[0], host);
    free(specs);
    return host;
}

/* The CPU's AdamW (kernels/cpu) applied to `grads` from `init`, as model_adamw_step does it:
 * per tensor, no weight decay on vectors (norm weights and biases). */
static float *cpu_adamw_reference(Backend *cpu, const ParamTable *t, const float *init,
                                  const float *grads, const AdamWArgs *args) {
    const size_t total = t->total, bytes = sizeof(float) * total;
    float *p = cpu->ops->alloc(cpu, bytes), *g = cpu->ops->alloc(cpu, bytes),
          *mm = cpu->ops->alloc(cpu, bytes), *vv = cpu->ops->alloc(cpu, bytes);
    ck_assert(p && g && mm && vv);
    cpu->ops->upload(cpu, p, init, bytes);
    cpu->ops->upload(cpu, g, grads, bytes);
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *pi = &t->items[i];
        AdamWArgs a = *args;
        if (pi->cols == 0) a.weight_decay = 0.0f;
        cpu->ops->adamw_update(cpu, p + pi->offset, NULL, g + pi->offset, mm + pi->offset,
                               vv + pi->offset, pi->numel, &a);
    }
    float *out = xmalloc(bytes);
    cpu->ops->download(cpu, out, p, bytes);
    cpu->ops->release(cpu, p), cpu->ops->release(cpu, g), cpu->ops->release(cpu, mm),
        cpu->ops->release(cpu, vv);
    return out;
}

/* ---- (a) one training step of every scheme, CPU vs GPU ---------------------------------- */

/* The demo's shape (12 layers, d 64, 4 heads of 16, d_ff 172: not a multiple of 8, seq 64,
 * byte vocabulary) at batch 8: every path of the real run, one step in well under a second. */
static void check_one_step(const char *scheme, const char *norm) {
    char set_scheme[64], set_norm[64];
    snprintf(set_scheme, sizeof set_scheme, "scheme=%s", scheme);
    snprintf(set_norm, sizeof set_norm, "model.norm=%s", norm);
    const char *sets[] = {set_scheme, set_norm, "train.batch=8", "metrics.every=0",
                          "metrics.prune=false"};
    NbConfig cfg;
    load_config(&cfg, sets, (int)(sizeof sets / sizeof sets[0]));
    char err[512];
    Dataset ds = {0};
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    Backend *cpu = make_backend("cpu"), *gpu = make_backend("cuda");
    ParamTable t;
    float *init = init_params(&cfg, &t);

    StepState c = one_step(&cfg, cpu, &ds, init), g = one_step(&cfg, gpu, &ds, init);
    char what[160];
    printf("  step %s/%s: loss cpu %.6f gpu %.6f\n", scheme, norm, c.loss, g.loss);

    /* loss */
    double lrel = fabs(g.loss - c.loss) / fabs(c.loss);
    gpu_note_check();
    ck_assert_msg(isfinite(g.loss) && lrel <= BUDGET_LOSS,
                  "%s/%s: loss gpu %.6f cpu %.6f: relative error %.2e over %.0e", scheme, norm,
                  g.loss, c.loss, lrel, BUDGET_LOSS);

    /* gradients: every tensor, then the whole vector */
    double worst = 0.0;
    const char *worst_name = "";
    for (int i = 0; i < t.count; i++) {
        const ParamInfo *p = &t.items[i];
        snprintf(what, sizeof what, "%s/%s grad %s", scheme, norm, p->name);
        double r = rel_l2(g.grads + p->offset, c.grads + p->offset, p->numel, what);
        if (r > worst) worst = r, worst_name = p->name;
        gpu_note_check();
        ck_assert_msg(r <= BUDGET_GRAD, "%s: relative L2 error %.3e over budget %.0e", what, r,
                      BUDGET_GRAD);
    }
    double gtot = rel_l2(g.grads, c.grads, t.total, "whole gradient");
    gpu_note_check();
    printf("  step %s/%s: gradient rel %.2e (worst tensor %.2e: %s)\n", scheme, norm, gtot,
           worst, worst_name);
    ck_assert_msg(gtot <= BUDGET_GRAD_TOTAL, "%s/%s: whole gradient relative error %.3e over %.0e",
                  scheme, norm, gtot, BUDGET_GRAD_TOTAL);

    /* updated parameters (see the header): optimizer exactness, step directions, whole */
    AdamWArgs a = step_args(&cfg);
    float *ref = cpu_adamw_reference(cpu, &t, init, g.grads, &a);
    double aworst = 0.0, flipworst = 0.0, gworst = 0.0;
    for (int i = 0; i < t.count; i++) {
        const ParamInfo *p = &t.items[i];
        const size_t lo = p->offset, hi = p->offset + p->numel;
        /* (1) the GPU's AdamW against the CPU's on the GPU's gradient, relative to the update */
        double num = 0.0, den = 0.0, ss = 0.0;
        for (size_t j = lo; j < hi; j++) {
            double d = (double)g.params[j] - ref[j], u = (double)ref[j] - init[j];
            num += d * d;
            den += u * u;
            ss += (double)c.grads[j] * c.grads[j];
        }
        double ar = num == 0.0 ? 0.0 : sqrt(num) / fmax(sqrt(den), 1e-300);
        if (ar > aworst) aworst = ar;
        gpu_note_check();
        ck_assert_msg(ar <= BUDGET_ADAMW,
                      "%s/%s: GPU AdamW update of %s differs from the CPU's on the same "
                      "gradient by %.3e of the update (budget %.0e)",
                      scheme, norm, p->name, ar, BUDGET_ADAMW);
        /* (2) elements stepped the other way: few, and only where the gradient is small */
        const double rms = sqrt(ss / (double)p->numel);
        size_t flips = 0;
        for (size_t j = lo; j < hi; j++) {
            double dg = (double)g.params[j] - init[j], dc = (double)c.params[j] - init[j];
            ck_assert_msg(isfinite(g.params[j]), "%s/%s: %s[%zu] is %g after the GPU step",
                          scheme, norm, p->name, j - lo, (double)g.params[j]);
            if (fabs(dg - dc) <= 0.5 * a.lr) continue; /* same direction (steps are +-lr) */
            flips++;
            double rg = rms > 0.0 ? fabs(c.grads[j]) / rms : INFINITY;
            if (rg > gworst) gworst = rg;
            ck_assert_msg(rg <= FLIP_GRAD_MAX,
                          "%s/%s: %s[%zu] stepped %+.3e on the GPU, %+.3e on the CPU, with a "
                          "CPU gradient of %.3g x the tensor's RMS (a flip needs < %.2g)",
                          scheme, norm, p->name, j - lo, dg, dc, rg, FLIP_GRAD_MAX);
        }
        double ff = (double)flips / (double)p->numel;
        if (ff > flipworst) flipworst = ff;
        gpu_note_check();
        ck_assert_msg(flips <= FLIP_FRACTION * (double)p->numel + 4.0,
                      "%s/%s: %s: %zu of %zu elements stepped the other way on the GPU", scheme,
                      norm, p->name, flips, (size_t)p->numel);
    }
    /* (3) all parameters */
    double prel = rel_l2(g.params, c.params, t.total, "updated parameters");
    gpu_note_check();
    printf("  step %s/%s: params rel %.2e; AdamW vs CPU on GPU grads %.2e; flipped steps "
           "worst %.2e of a tensor, at |g| <= %.2f RMS\n",
           scheme, norm, prel, aworst, flipworst, gworst);
    ck_assert_msg(prel <= BUDGET_PARAMS,
                  "%s/%s: updated parameters relative L2 error %.3e over budget %.0e", scheme,
                  norm, prel, BUDGET_PARAMS);

    free(ref);
    step_state_free(&c), step_state_free(&g);
    free(init);
    param_table_free(&t);
    backend_destroy(gpu), backend_destroy(cpu);
    dataset_free(&ds);
    config_free(&cfg);
}

/* every row of the scheme table (schemes.h), RMSNorm */
START_TEST(test_step_every_scheme) { check_one_step(scheme_at((size_t)_i)->name, "rmsnorm"); }
END_TEST
/* LayerNorm: the bias path (and mean) of the norm kernels inside the model */
START_TEST(test_step_pre_ln_layernorm) { check_one_step("pre_ln", "layernorm"); }
END_TEST
START_TEST(test_step_post_ln_layernorm) { check_one_step("post_ln", "layernorm"); }
END_TEST

/* ---- (c) determinism: the same GPU step twice is bitwise identical -------------------- */
START_TEST(test_step_determinism) {
    const char *sets[] = {"scheme=lns", "train.batch=8", "metrics.every=0",
                          "metrics.prune=false"};
    NbConfig cfg;
    load_config(&cfg, sets, (int)(sizeof sets / sizeof sets[0]));
    char err[512];
    Dataset ds = {0};
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    Backend *gpu = make_backend("cuda");
    ParamTable t;
    float *init = init_params(&cfg, &t);
    StepState a = one_step(&cfg, gpu, &ds, init), b = one_step(&cfg, gpu, &ds, init);
    /* a second backend: a fresh cuBLASLt handle must choose the same algorithms */
    Backend *gpu2 = make_backend("cuda");
    StepState c = one_step(&cfg, gpu2, &ds, init);
    const size_t bytes = sizeof(float) * t.total;
    gpu_note_check();
    printf("  determinism: loss %.17g %.17g %.17g\n", a.loss, b.loss, c.loss);
    ck_assert_msg(memcmp(&a.loss, &b.loss, sizeof a.loss) == 0, "loss differs run to run");
    ck_assert_msg(memcmp(a.grads, b.grads, bytes) == 0, "gradients differ run to run");
    ck_assert_msg(memcmp(a.params, b.params, bytes) == 0, "updated parameters differ run to run");
    gpu_note_check();
    ck_assert_msg(memcmp(&a.loss, &c.loss, sizeof a.loss) == 0 &&
                      memcmp(a.grads, c.grads, bytes) == 0 &&
                      memcmp(a.params, c.params, bytes) == 0,
                  "a second CUDA backend gives a different step");
    printf("  determinism: gradients and updated parameters bitwise equal (3 steps, 2 backends)\n");
    step_state_free(&a), step_state_free(&b), step_state_free(&c);
    free(init);
    param_table_free(&t);
    backend_destroy(gpu2), backend_destroy(gpu);
    dataset_free(&ds);
    config_free(&cfg);
}
END_TEST

/* ---- (b) 200 steps of the demo config: final validation loss within 2% ----------------- */
static RunResult train_demo(const char *backend) {
    char set_backend[64];
    snprintf(set_backend, sizeof set_backend, "backend.name=%s", backend);
    /* one scheme, probes off, evaluation at the end only (train.warmup 40 < 200 as in the
     * demo); no checkpoint, no run file */
    const char *sets[] = {"scheme=lns", "train.steps=200", "eval.every=0", "metrics.every=0",
                          "metrics.prune=false", set_backend};
    NbConfig cfg;
    load_config(&cfg, sets, (int)(sizeof sets / sizeof sets[0]));
    char err[1024];
    Dataset ds = {0};
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    Backend *be = make_backend(backend);
    RunOptions opt = {0};
    RunResult res;
    memset(&res, 0, sizeof res);
    ck_assert_msg(run_train(&cfg, &ds, be, &opt, &res, err, sizeof err) == 0, "%s: %s", backend,
                  err);
    printf("  demo 200 steps on %s (%s): %s, train loss %.4f, val loss %.4f, %.0f tokens/s, "
           "%.1f s\n", backend, be->device, run_status_name(res.status), res.final_train_loss,
           res.val_loss, res.tokens_per_s, res.seconds);
    backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    return res;
}

START_TEST(test_demo_200_steps) {
    RunResult c = train_demo("cpu"), g = train_demo("cuda");
    ck_assert_msg(c.status == RUN_FINISHED && c.steps_done == 200, "CPU run: %s after %d steps",
                  run_status_name(c.status), c.steps_done);
    ck_assert_msg(g.status == RUN_FINISHED && g.steps_done == 200, "GPU run: %s after %d steps",
                  run_status_name(g.status), g.steps_done);
    double rel = fabs(g.val_loss - c.val_loss) / c.val_loss;
    gpu_note_check();
    printf("  demo 200 steps: val loss gpu %.4f cpu %.4f, relative difference %.2e (budget "
           "%.0e)\n", g.val_loss, c.val_loss, rel, BUDGET_DEMO_VAL);
    ck_assert_msg(isfinite(g.val_loss) && rel <= BUDGET_DEMO_VAL,
                  "demo: GPU val loss %.4f vs CPU %.4f: %.2e over %.0e", g.val_loss,
                  c.val_loss, rel, BUDGET_DEMO_VAL);
}
END_TEST

Suite *gpu_model_suite(void) {
    Suite *s = suite_create("gpu_model");
    TCase *tc = tcase_create("cuda_vs_cpu_model");
    tcase_set_timeout(tc, 1200); /* not enforced without fork; documents the expectation */
    tcase_add_loop_test(tc, test_step_every_scheme, 0, (int)scheme_count());
    tcase_add_test(tc, test_step_pre_ln_layernorm);
    tcase_add_test(tc, test_step_post_ln_layernorm);
    tcase_add_test(tc, test_step_determinism);
    suite_add_tcase(s, tc);
    TCase *demo = tcase_create("cuda_vs_cpu_demo"); /* CK_RUN_CASE selects one of the two */
    tcase_set_timeout(demo, 1200);
    tcase_add_test(demo, test_demo_200_steps);
    suite_add_tcase(s, demo);
    return s;
}

#else
/* CUDA not compiled in: main.c reports the skip; nothing to define here. */
typedef int test_gpu_model_unused;
#endif
