/* test_metrics.c — the probes of docs/design.md section 4 as a specification.
 *
 * The per-token primitives on vectors whose answers are known by hand; every probe of a tiny
 * model (variance of h_0..h_L, the angular distance matrix over all tokens and over the last
 * token, per-block gradient norms, the pruning sweep) against a float64 recomputation that
 * shares no code with metrics.c or model.c (plain loops over tests/spec64.h, the textbook
 * arccos formula); and the promise that probing never changes training, bitwise. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "config.h"
#include "metrics.h"
#include "model.h"
#include "schemes.h"
#include "spec64.h"
#include "testutil.h"
#include "run.h"
#include "train.h"

#define PI 3.14159265358979323846

/* ---- per-token primitives ------------------------------------------------------------- */

START_TEST(variance_is_the_population_variance_over_the_hidden_dimension) {
    const float a[4] = {1, 2, 3, 4};             /* mean 2.5: (2.25+0.25+0.25+2.25)/4 */
    ck_assert_double_eq(metrics_token_variance(a, 4), 1.25);
    const float flat[5] = {7, 7, 7, 7, 7};
    ck_assert_double_eq(metrics_token_variance(flat, 5), 0.0);
    const float pm[6] = {-3, 3, -3, 3, -3, 3};    /* mean 0, every square 9 */
    ck_assert_double_eq(metrics_token_variance(pm, 6), 9.0);
    /* a large common offset does not swamp the spread (two-pass, in double) */
    const float off[4] = {1e6f + 1, 1e6f + 2, 1e6f + 3, 1e6f + 4};
    ck_assert_double_eq_tol(metrics_token_variance(off, 4), 1.25, 1e-9);
}
END_TEST

START_TEST(angular_distance_of_a_vector_with_itself_is_0_and_with_its_negation_is_1) {
    uint64_t rng = 5;
    float a[37], neg[37], scaled[37];
    test_fill_uniform(a, 37, &rng, -2, 2);
    for (int i = 0; i < 37; i++) neg[i] = -a[i], scaled[i] = 4.0f * a[i]; /* exact: a power of two */
    ck_assert_double_eq(metrics_angular_distance(a, a, 37), 0.0);
    ck_assert_double_eq(metrics_angular_distance(a, neg, 37), 1.0);
    ck_assert_double_eq_tol(metrics_angular_distance(a, scaled, 37), 0.0, 1e-15);
}
END_TEST

START_TEST(angular_distance_is_the_angle_over_pi) {
    const float x[2] = {1, 0}, y[2] = {0, 2}, z[2] = {0.5f, 0.8660254037844386f},
                w[2] = {-1, 1};
    ck_assert_double_eq_tol(metrics_angular_distance(x, y, 2), 0.5, 1e-15);      /* 90 deg */
    ck_assert_double_eq_tol(metrics_angular_distance(x, z, 2), 1.0 / 3.0, 1e-7); /* 60 deg */
    ck_assert_double_eq_tol(metrics_angular_distance(x, w, 2), 0.75, 1e-7);      /* 135 deg */
    ck_assert_double_eq_tol(metrics_angular_distance(y, x, 2), 0.5, 1e-15);      /* symmetric */
    /* nearly parallel: angle atan(1e-6); arccos of the rounded cosine would give 0 here */
    const float p[2] = {1, 0}, q[2] = {1, 1e-6f};
    ck_assert_double_eq_tol(metrics_angular_distance(p, q, 2), atan(1e-6f) / PI, 1e-15);
    /* a zero vector has no direction: 0.5 against anything nonzero, 0 against itself */
    const float zero[2] = {0, 0};
    ck_assert_double_eq(metrics_angular_distance(zero, x, 2), 0.5);
    ck_assert_double_eq(metrics_angular_distance(zero, zero, 2), 0.0);
}
END_TEST

/* ---- a tiny model and its float64 twin ------------------------------------------------- */

enum { TB = 2, TBATCHES = 2 };

typedef struct {
    ModelConfig cfg;
    SublayerSpec specs[16];
    ParamTable table;
    double *params;           /* float64 copy of the fp32 parameters the model holds */
    int32_t tokens[TBATCHES * TB * 8], targets[TBATCHES * TB * 8];
    Backend *be;
    Model *m;
} Tiny;

static void tiny_setup(Tiny *t, const char *scheme, int threads) {
    model_config_default(&t->cfg);
    t->cfg.n_layer = 4, t->cfg.d_model = 16, t->cfg.n_head = 2, t->cfg.d_ff = 22;
    t->cfg.vocab_size = 19, t->cfg.seq_len = 8;
    SchemeParams sp;
    scheme_params_default(&sp);
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find(scheme), &sp, 4, t->specs, err, sizeof err), 0);
    ck_assert_int_eq(param_table_build(&t->cfg, t->specs, &t->table), 0);
    uint64_t rng = 42;
    for (int i = 0; i < TBATCHES * TB * 8; i++) {
        t->tokens[i] = (int32_t)(rng_next(&rng) % 19);
        t->targets[i] = (int32_t)(rng_next(&rng) % 19);
    }
    /* random weights large enough that every block moves the stream visibly */
    float *pf = malloc(t->table.total * sizeof *pf);
    t->params = malloc(t->table.total * sizeof *t->params);
    for (int i = 0; i < t->table.count; i++) {
        const ParamInfo *p = &t->table.items[i];
        double a = p->cols ? sqrt(3.0 / p->cols) : 0.3, shift = 0.0;
        if (!p->cols && strstr(p->name, ".weight")) shift = 1.0;
        for (size_t j = 0; j < p->numel; j++) pf[p->offset + j] = (float)(shift + test_uniform(&rng, -a, a));
    }
    for (size_t i = 0; i < t->table.total; i++) t->params[i] = pf[i];
    t->be = backend_create("cpu", threads, err, sizeof err);
    ck_assert_ptr_nonnull(t->be);
    t->m = model_create(t->be, &t->cfg, t->specs, TB, err, sizeof err);
    ck_assert_msg(t->m != NULL, "%s", err);
    model_set_params(t->m, pf);
    free(pf);
}

static void tiny_free(Tiny *t) {
    model_destroy(t->m);
    backend_destroy(t->be);
    param_table_free(&t->table);
    free(t->params);
}

static const double *pw(const Tiny *t, const char *fmt, int layer) {
    char name[96];
    snprintf(name, sizeof name, fmt, layer);
    const ParamInfo *p = param_table_find(&t->table, name);
    return p ? t->params + p->offset : NULL;
}

/* F of sublayer s of block l (0-based) in double. */
static void ref_f(const Tiny *t, int l, int s, const double *in, double *f) {
    const int N = TB * 8, C = 16, F = 22, NH = 2, HS = 8;
    double *a = calloc((size_t)N * F, sizeof *a), *b = calloc((size_t)N * F, sizeof *b),
           *h = calloc((size_t)N * F, sizeof *h), *q = calloc((size_t)N * C, sizeof *q);
    if (s == 0) {
        spec_matmul_forward(a, in, pw(t, "model.layers.%d.self_attn.q_proj.weight", l), N, C, C);
        spec_rope_forward(q, a, TB, 8, NH, HS, t->cfg.rope_theta);
        spec_matmul_forward(a, in, pw(t, "model.layers.%d.self_attn.k_proj.weight", l), N, C, C);
        spec_rope_forward(b, a, TB, 8, NH, HS, t->cfg.rope_theta);
        spec_matmul_forward(a, in, pw(t, "model.layers.%d.self_attn.v_proj.weight", l), N, C, C);
        spec_attention_forward(h, q, b, a, TB, 8, NH, HS);
        spec_matmul_forward(f, h, pw(t, "model.layers.%d.self_attn.o_proj.weight", l), N, C, C);
    } else {
        spec_matmul_forward(a, in, pw(t, "model.layers.%d.mlp.gate_proj.weight", l), N, C, F);
        spec_matmul_forward(b, in, pw(t, "model.layers.%d.mlp.up_proj.weight", l), N, C, F);
        spec_swiglu_forward(h, a, b, (size_t)N * F);
        spec_matmul_forward(f, h, pw(t, "model.layers.%d.mlp.down_proj.weight", l), N, F, C);
    }
    free(a), free(b), free(h), free(q);
}

/* The model of docs/design.md section 3 in double on batch `batch`; a skipped sublayer is the
 * identity. hidden (optional) receives h_0..h_L, [L+1][N*C]. Returns the mean loss. */
static double ref_forward(const Tiny *t, int batch, const unsigned char *skip, double *hidden) {
    const int N = TB * 8, C = 16, V = 19, L = 4;
    const size_t NC = (size_t)N * C;
    const int32_t *tok = t->tokens + batch * N, *tgt = t->targets + batch * N;
    double *x = calloc(NC, sizeof *x), *f = calloc(NC, sizeof *f), *n = calloc(NC, sizeof *n),
           *logits = calloc((size_t)N * V, sizeof *logits), *losses = calloc(N, sizeof *losses);
    static const char *norm_w[2] = {"model.layers.%d.input_layernorm.weight",
                                    "model.layers.%d.post_attention_layernorm.weight"};
    spec_embedding_forward(x, tok, pw(t, "model.embed_tokens.weight", 0), N, C);
    if (hidden) memcpy(hidden, x, NC * sizeof *x);
    for (int i = 0; i < 2 * L; i++) {
        const SublayerSpec *sp = &t->specs[i];
        const int l = i / 2, s = i % 2;
        if (!(skip && skip[i])) {
            if (sp->placement == PLACE_PRE) { /* x <- r x + F(s N(x)) */
                spec_norm_forward(t->cfg.norm, n, x, pw(t, norm_w[s], l), NULL, N, C,
                                  t->cfg.norm_eps, sp->in_scale);
                ref_f(t, l, s, n, f);
                for (size_t j = 0; j < NC; j++) x[j] = sp->residual_scale * x[j] + f[j];
            } else { /* x <- s N(r x + F(x)) */
                ref_f(t, l, s, x, f);
                for (size_t j = 0; j < NC; j++) n[j] = sp->residual_scale * x[j] + f[j];
                spec_norm_forward(t->cfg.norm, x, n, pw(t, norm_w[s], l), NULL, N, C,
                                  t->cfg.norm_eps, sp->in_scale);
            }
        }
        if (hidden && s == 1) memcpy(hidden + (size_t)(l + 1) * NC, x, NC * sizeof *x);
    }
    spec_norm_forward(t->cfg.norm, n, x, pw(t, "model.norm.weight", 0), NULL, N, C,
                      t->cfg.norm_eps, 1.0);
    spec_matmul_forward(logits, n, pw(t, "lm_head.weight", 0), N, C, V);
    spec_crossentropy_forward(losses, logits, tgt, N, V);
    double mean = 0.0;
    for (int i = 0; i < N; i++) mean += losses[i];
    free(x), free(f), free(n), free(logits), free(losses);
    return mean / N;
}

static ProbeSet tiny_probe_set(Tiny *t) {
    return (ProbeSet){.n_batches = TBATCHES, .B = TB, .T = 8, .tokens = t->tokens,
                      .targets = t->targets};
}

/* ---- probes against the float64 recomputation ------------------------------------------ */

static void check_hidden_probes(const char *scheme, int threads) {
    Tiny t;
    tiny_setup(&t, scheme, threads);
    const int L = 4, N = TB * 8, C = 16, P = L + 1;
    LayerProbe p;
    ck_assert_int_eq(layer_probe_alloc(&p, L), 0);
    ProbeSet ps = tiny_probe_set(&t);
    char err[256];
    ck_assert_msg(metrics_hidden_probes(t.m, &ps, &p, err, sizeof err) == 0, "%s", err);

    /* reference: per token, textbook formulas, in double, averaged over both batches */
    double var[5] = {0}, ang[25] = {0}, last[25] = {0};
    double *h = malloc(sizeof *h * (size_t)P * N * C);
    for (int batch = 0; batch < TBATCHES; batch++) {
        ref_forward(&t, batch, NULL, h);
        for (int l = 0; l < P; l++)
            for (int n = 0; n < N; n++) {
                const double *x = h + ((size_t)l * N + n) * C;
                double mu = 0, v = 0;
                for (int c = 0; c < C; c++) mu += x[c] / C;
                for (int c = 0; c < C; c++) v += (x[c] - mu) * (x[c] - mu) / C;
                var[l] += v / (TBATCHES * N);
                for (int m = l + 1; m < P; m++) {
                    const double *y = h + ((size_t)m * N + n) * C;
                    double dot = 0, nx = 0, ny = 0;
                    for (int c = 0; c < C; c++) dot += x[c] * y[c], nx += x[c] * x[c], ny += y[c] * y[c];
                    double d = acos(fmax(-1.0, fmin(1.0, dot / sqrt(nx * ny)))) / PI;
                    ang[l * P + m] += d / (TBATCHES * N);
                    if (n % 8 == 7) last[l * P + m] += d / (TBATCHES * TB); /* last position */
                }
            }
    }
    for (int l = 0; l < P; l++) {
        ck_assert_msg(fabs(p.variance[l] - var[l]) <= 1e-4 * var[l], "%s variance[%d] %.9g vs %.9g",
                      scheme, l, p.variance[l], var[l]);
        for (int m = 0; m < P; m++) {
            if (m < l) {  /* below the diagonal: NaN, the matrix is upper triangular */
                ck_assert(isnan(p.angular[l * P + m]) && isnan(p.angular_last[l * P + m]));
            } else if (m == l) {
                ck_assert_double_eq(p.angular[l * P + m], 0.0);
                ck_assert_double_eq(p.angular_last[l * P + m], 0.0);
            } else {
                ck_assert_msg(fabs(p.angular[l * P + m] - ang[l * P + m]) < 2e-6,
                              "%s angular[%d][%d] %.9g vs %.9g", scheme, l, m,
                              p.angular[l * P + m], ang[l * P + m]);
                ck_assert_msg(fabs(p.angular_last[l * P + m] - last[l * P + m]) < 2e-6,
                              "%s angular_last[%d][%d] %.9g vs %.9g", scheme, l, m,
                              p.angular_last[l * P + m], last[l * P + m]);
                ck_assert(ang[l * P + m] > 0.01); /* the blocks really move the stream */
            }
        }
    }
    /* the last-token variant is a different average, not a copy */
    ck_assert(fabs(p.angular_last[1] - p.angular[1]) > 1e-6);
    free(h);
    layer_probe_free(&p);
    tiny_free(&t);
}

START_TEST(hidden_state_probes_match_a_float64_recomputation_pre_ln) { check_hidden_probes("pre_ln", 2); }
END_TEST
START_TEST(hidden_state_probes_match_a_float64_recomputation_post_ln) { check_hidden_probes("post_ln", 1); }
END_TEST
START_TEST(hidden_state_probes_match_a_float64_recomputation_lns) { check_hidden_probes("lns", 1); }
END_TEST

START_TEST(block_gradient_norms_match_a_float64_sum_over_the_blocks_tensors) {
    Tiny t;
    tiny_setup(&t, "pre_ln", 1);
    model_zero_grad(t.m);
    model_forward(t.m, t.tokens, t.targets, NULL);
    model_backward(t.m, NULL);
    float *g = malloc(t.table.total * sizeof *g);
    model_get_grads(t.m, g);
    LayerProbe p;
    ck_assert_int_eq(layer_probe_alloc(&p, 4), 0);
    metrics_grad_norms(t.m, 0.5, &p);
    for (int l = 0; l < 4; l++) {
        /* every tensor whose Hugging Face name says it belongs to block l */
        char prefix[64];
        snprintf(prefix, sizeof prefix, "model.layers.%d.", l);
        double ss = 0.0;
        int tensors = 0;
        for (int i = 0; i < t.table.count; i++) {
            const ParamInfo *pi = &t.table.items[i];
            if (strncmp(pi->name, prefix, strlen(prefix)) != 0) continue;
            tensors++;
            for (size_t j = 0; j < pi->numel; j++) ss += (double)g[pi->offset + j] * g[pi->offset + j];
        }
        ck_assert_int_ge(tensors, 9); /* q k v o gate up down + two norms */
        ck_assert_double_eq_tol(p.grad_norm[l], 0.5 * sqrt(ss), 1e-9 * sqrt(ss));
        ck_assert(p.grad_norm[l] > 0);
    }
    free(g);
    layer_probe_free(&p);
    tiny_free(&t);
}
END_TEST

/* Mean loss over ps with skip mask `skip`, by one full forward per batch: the reference the
 * pruning sweep (which restarts each variant from the removed part) must equal bitwise. */
static double full_forward_loss(Model *m, const ProbeSet *ps, SkipMask skip) {
    if (ps->n_batches == 0) return NAN;
    const size_t per = (size_t)ps->B * (size_t)ps->T;
    double sum = 0.0;
    for (int i = 0; i < ps->n_batches; i++)
        sum += model_forward(m, ps->tokens + (size_t)i * per, ps->targets + (size_t)i * per, skip);
    return sum / (double)(size_t)ps->n_batches;
}

static void check_pruning(const char *scheme) {
    Tiny t;
    tiny_setup(&t, scheme, 1);
    PruneResult pr;
    ck_assert_int_eq(prune_result_alloc(&pr, 4), 0);
    ProbeSet ps = tiny_probe_set(&t);
    char err[256];
    ck_assert_msg(metrics_prune(t.m, &ps, &pr, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(pr.batches, TBATCHES);
    unsigned char skip[8] = {0};
    double base = (ref_forward(&t, 0, NULL, NULL) + ref_forward(&t, 1, NULL, NULL)) / 2;
    ck_assert_double_eq_tol(pr.base_loss, base, 1e-5 * base);
    ck_assert(pr.base_loss == full_forward_loss(t.m, &ps, NULL));
    for (int l = 0; l < 4; l++) {
        const double *got[3] = {&pr.block[l], &pr.attn[l], &pr.mlp[l]};
        const unsigned char masks[3][2] = {{1, 1}, {1, 0}, {0, 1}};
        for (int k = 0; k < 3; k++) {
            memset(skip, 0, sizeof skip);
            skip[2 * l] = masks[k][0], skip[2 * l + 1] = masks[k][1];
            double want = (ref_forward(&t, 0, skip, NULL) + ref_forward(&t, 1, skip, NULL)) / 2;
            ck_assert_msg(fabs(*got[k] - want) < 1e-5 * want, "%s block %d part %d: %.9g vs %.9g",
                          scheme, l + 1, k, *got[k], want);
            /* metrics_prune reuses the residual stream before the removed part; one full
             * forward per batch with the same mask gives exactly the same bits */
            double full = full_forward_loss(t.m, &ps, skip);
            ck_assert_msg(*got[k] == full, "%s block %d part %d: %.17g from the reused prefix, "
                          "%.17g from full forwards", scheme, l + 1, k, *got[k], full);
            /* removing a part of a block with random weights changes the loss */
            ck_assert(fabs(want - base) > 1e-4);
        }
    }
    prune_result_free(&pr);
    tiny_free(&t);
}

START_TEST(pruning_a_part_equals_a_float64_forward_that_skips_it_pre_ln) { check_pruning("pre_ln"); }
END_TEST
START_TEST(pruning_a_part_equals_a_float64_forward_that_skips_it_mix_ln) { check_pruning("mix_ln"); }
END_TEST

START_TEST(probes_reject_batches_of_another_shape) {
    Tiny t;
    tiny_setup(&t, "pre_ln", 1);
    LayerProbe p;
    PruneResult pr;
    ck_assert_int_eq(layer_probe_alloc(&p, 4), 0);
    ck_assert_int_eq(prune_result_alloc(&pr, 4), 0);
    ProbeSet ps = tiny_probe_set(&t);
    ps.B = 3;
    char err[256] = "";
    ck_assert_int_eq(metrics_hidden_probes(t.m, &ps, &p, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "3 x 8"));
    ck_assert_int_eq(metrics_prune(t.m, &ps, &pr, err, sizeof err), -1);
    /* an empty probe set gives NaN, not garbage */
    ProbeSet empty = {.n_batches = 0, .B = TB, .T = 8};
    ck_assert_int_eq(metrics_hidden_probes(t.m, &empty, &p, err, sizeof err), 0);
    ck_assert(isnan(p.variance[0]) && isnan(p.angular[1]));
    ck_assert(isnan(full_forward_loss(t.m, &empty, NULL)));
    layer_probe_free(&p);
    prune_result_free(&pr);
    tiny_free(&t);
}
END_TEST

/* ---- on the real data and the real training loop --------------------------------------- */

static void load_tiny(NbConfig *cfg, const char *const *sets, int n) {
    char err[1024];
    ck_assert_msg(config_load(cfg, "configs/tiny/tiny.yaml", sets, n, err, sizeof err) == 0, "%s", err);
}

START_TEST(the_probe_set_is_the_first_validation_batches) {
    NbConfig cfg;
    load_tiny(&cfg, NULL, 0);
    Dataset ds = {0};
    char err[512];
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    ProbeSet ps;
    ck_assert_int_eq(probe_set_from_val(&ps, &ds, 3, 4, err, sizeof err), 0);
    ck_assert_int_eq(ps.n_batches, 3);
    int32_t tok[32], tgt[32];
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(dataset_val_batch(&ds, (size_t)i, 4, tok, tgt), 0);
        ck_assert_int_eq(memcmp(tok, ps.tokens + i * 32, sizeof tok), 0);
        ck_assert_int_eq(memcmp(tgt, ps.targets + i * 32, sizeof tgt), 0);
    }
    probe_set_free(&ps);
    /* asking for more batches than the split holds gives all of them */
    size_t all = dataset_val_batches(&ds, 4);
    ck_assert_int_eq(probe_set_from_val(&ps, &ds, (int)all + 100, 4, err, sizeof err), 0);
    ck_assert_int_eq(ps.n_batches, (int)all);
    probe_set_free(&ps);
    dataset_free(&ds);
    config_free(&cfg);
}
END_TEST

/* Ten optimizer steps of the tiny config (train_step, the trainer's own step); with probe
 * set, the probes of docs/design.md section 4 (gradient norms and hidden states) after EVERY
 * step and the pruning sweep after every fourth. Returns the final weights. */
static float *train_tiny(int probe, size_t *n, int *probes_run) {
    const char *sets[] = {"train.steps=10", "eval.every=4", "metrics.every=0"};
    NbConfig cfg;
    load_tiny(&cfg, sets, 3);
    Dataset ds = {0};
    char err[1024];
    ck_assert_msg(run_load_dataset(&cfg, &ds, err, sizeof err) == 0, "%s", err);
    /* one thread: immune to busy-waiting OpenMP barriers on a loaded machine (the probes'
     * parallel loops run on two threads in the float64 comparison of pre_ln) */
    Backend *be = backend_create("cpu", 1, err, sizeof err);
    Model *m = run_create_model(&cfg, be, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    *n = model_params(m)->total;
    float *params = malloc(*n * sizeof(float));
    model_init_params(&cfg.model, model_params(m), model_specs(m), cfg.seeds[0], params);
    model_set_params(m, params);
    ProbeSet ps;
    LayerProbe lp;
    PruneResult pr;
    ck_assert_int_eq(probe_set_from_val(&ps, &ds, 2, cfg.train.batch, err, sizeof err), 0);
    ck_assert_int_eq(layer_probe_alloc(&lp, cfg.model.n_layer), 0);
    ck_assert_int_eq(prune_result_alloc(&pr, cfg.model.n_layer), 0);
    double initial_loss = NAN;
    *probes_run = 0;
    for (int step = 0; step < cfg.train.steps; step++) {
        TrainStepInfo info;
        ck_assert_msg(train_step(m, &ds, &cfg, step, &initial_loss, &info, err, sizeof err) == 0,
                      "%s", err);
        ck_assert(!info.diverged);
        if (!probe) continue;
        metrics_grad_norms(m, 1.0, &lp);
        ck_assert_int_eq(metrics_hidden_probes(m, &ps, &lp, err, sizeof err), 0);
        (*probes_run)++;
        if ((step + 1) % cfg.eval.every == 0)
            ck_assert_int_eq(metrics_prune(m, &ps, &pr, err, sizeof err), 0);
    }
    model_get_params(m, params);
    probe_set_free(&ps);
    layer_probe_free(&lp);
    prune_result_free(&pr);
    model_destroy(m);
    backend_destroy(be);
    dataset_free(&ds);
    config_free(&cfg);
    return params;
}

START_TEST(probing_after_every_step_leaves_training_bitwise_unchanged) {
    size_t n1 = 0, n2 = 0;
    int r1 = 0, r2 = 0;
    float *plain = train_tiny(0, &n1, &r1), *probed = train_tiny(1, &n2, &r2);
    ck_assert_int_eq(r1, 0);
    ck_assert_int_eq(r2, 10); /* the probes really ran after every step */
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(plain, probed, n1 * sizeof(float)), 0);
    free(plain), free(probed);
}
END_TEST

Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *prim = tcase_create("primitives");
    tcase_add_test(prim, variance_is_the_population_variance_over_the_hidden_dimension);
    tcase_add_test(prim, angular_distance_of_a_vector_with_itself_is_0_and_with_its_negation_is_1);
    tcase_add_test(prim, angular_distance_is_the_angle_over_pi);
    suite_add_tcase(s, prim);
    TCase *model = tcase_create("probes_vs_float64");
    tcase_add_test(model, hidden_state_probes_match_a_float64_recomputation_pre_ln);
    tcase_add_test(model, hidden_state_probes_match_a_float64_recomputation_post_ln);
    tcase_add_test(model, hidden_state_probes_match_a_float64_recomputation_lns);
    tcase_add_test(model, block_gradient_norms_match_a_float64_sum_over_the_blocks_tensors);
    tcase_add_test(model, pruning_a_part_equals_a_float64_forward_that_skips_it_pre_ln);
    tcase_add_test(model, pruning_a_part_equals_a_float64_forward_that_skips_it_mix_ln);
    tcase_add_test(model, probes_reject_batches_of_another_shape);
    suite_add_tcase(s, model);
    TCase *train = tcase_create("training");
    tcase_set_timeout(train, 60);
    tcase_add_test(train, the_probe_set_is_the_first_validation_batches);
    tcase_add_test(train, probing_after_every_step_leaves_training_bitwise_unchanged);
    suite_add_tcase(s, train);
    return s;
}
