/* test_model.c — the full model against an independent float64 reference.
 *
 * The reference (ref_model_loss below) recomputes the model from docs/design.md section 3 in
 * double precision with the float64 op specification of spec64.c, reading parameters by
 * their Hugging Face names. Central finite differences of it give the reference gradient of
 * every parameter group; the fp32 model's analytic backward must match, for every row of the
 * scheme table (second norms, branch scales, DyT and the embedding norm included) under
 * RMSNorm and LayerNorm. Also: every scheme really changes the forward where its formula
 * says it must, pruning masks equal skipping the sublayer, initialization follows each
 * scheme's rule, the parameters schemes add have their names and shapes and are trained by
 * AdamW, and passes are deterministic. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "model.h"
#include "schemes.h"
#include "spec64.h"
#include "testutil.h"

/* The tiny model of the issue: L=4, d=16, 2 heads, seq 8. */
static ModelConfig tiny_config(NormKind norm) {
    ModelConfig c;
    model_config_default(&c);
    c.n_layer = 4;
    c.d_model = 16;
    c.n_head = 2;
    c.d_ff = 22;
    c.vocab_size = 19;
    c.seq_len = 8;
    c.norm = norm;
    return c;
}
enum { TINY_B = 2 };

typedef struct {
    ModelConfig cfg;
    SublayerSpec specs[64];
    ParamTable table;
    int32_t tokens[TINY_B * 8], targets[TINY_B * 8];
} Tiny;

static void tiny_setup(Tiny *t, const char *scheme, NormKind norm) {
    t->cfg = tiny_config(norm);
    SchemeParams p;
    scheme_params_default(&p);
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find(scheme), &p, t->cfg.n_layer, t->specs, err,
                                        sizeof err), 0);
    ck_assert_int_eq(param_table_build(&t->cfg, t->specs, &t->table), 0);
    uint64_t rng = 42;
    for (int i = 0; i < TINY_B * t->cfg.seq_len; i++) {
        t->tokens[i] = (int32_t)(rng_next(&rng) % (uint64_t)t->cfg.vocab_size);
        t->targets[i] = (int32_t)(rng_next(&rng) % (uint64_t)t->cfg.vocab_size);
    }
}

/* Random parameters of a size that makes every path matter: matrices uniform with std
 * ~ 1/sqrt(fan_in), norm weights around 1, biases around 0. */
static void random_params(const ParamTable *t, uint64_t seed, double *out) {
    uint64_t rng = seed;
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        double lo = -1.0, hi = 1.0, shift = 0.0;
        if (p->cols > 0) {
            double a = sqrt(3.0 / p->cols);
            lo = -a, hi = a;
        } else if (strstr(p->name, ".weight")) {
            lo = -0.3, hi = 0.3, shift = 1.0;
        } else if (strstr(p->name, ".alpha")) { /* DyT: tanh away from its linear part */
            lo = -0.3, hi = 0.3, shift = 0.7;
        } else {
            lo = -0.3, hi = 0.3;
        }
        for (size_t j = 0; j < p->numel; j++)
            out[p->offset + j] = shift + test_uniform(&rng, lo, hi);
    }
}

static const double *pw(const Tiny *t, const double *params, const char *fmt, int layer) {
    char name[96];
    snprintf(name, sizeof name, fmt, layer);
    const ParamInfo *p = param_table_find(&t->table, name);
    return p ? params + p->offset : NULL;
}

/* F of a sublayer in double: attention or SwiGLU MLP of block l. */
static void ref_sublayer_f(const Tiny *t, const double *params, int l, int s, const double *in,
                           double *f) {
    const ModelConfig *c = &t->cfg;
    const int N = TINY_B * c->seq_len, C = c->d_model, F = c->d_ff, NH = c->n_head, HS = C / NH;
    double *a = calloc((size_t)N * F, sizeof *a), *b = calloc((size_t)N * F, sizeof *b),
           *h = calloc((size_t)N * F, sizeof *h), *q = calloc((size_t)N * C, sizeof *q);
    if (s == SUBLAYER_ATTN) {
        spec_matmul_forward(a, in, pw(t, params, "model.layers.%d.self_attn.q_proj.weight", l), N, C, C);
        spec_rope_forward(q, a, TINY_B, c->seq_len, NH, HS, c->rope_theta);
        spec_matmul_forward(a, in, pw(t, params, "model.layers.%d.self_attn.k_proj.weight", l), N, C, C);
        spec_rope_forward(b, a, TINY_B, c->seq_len, NH, HS, c->rope_theta);
        spec_matmul_forward(a, in, pw(t, params, "model.layers.%d.self_attn.v_proj.weight", l), N, C, C);
        spec_attention_forward(h, q, b, a, TINY_B, c->seq_len, NH, HS);
        spec_matmul_forward(f, h, pw(t, params, "model.layers.%d.self_attn.o_proj.weight", l), N, C, C);
    } else {
        spec_matmul_forward(a, in, pw(t, params, "model.layers.%d.mlp.gate_proj.weight", l), N, C, F);
        spec_matmul_forward(b, in, pw(t, params, "model.layers.%d.mlp.up_proj.weight", l), N, C, F);
        spec_swiglu_forward(h, a, b, (size_t)N * F);
        spec_matmul_forward(f, h, pw(t, params, "model.layers.%d.mlp.down_proj.weight", l), N, F, C);
    }
    free(a), free(b), free(h), free(q);
}

/* One norm site in double: the config's norm or DyT (docs/design.md section 3.2), out =
 * s * N(in), its parameters found by their Hugging Face-style names under `base`. */
static void ref_norm(const Tiny *t, const double *params, NormFn fn, const char *base, int layer,
                     double *out, const double *in, double s) {
    const ModelConfig *c = &t->cfg;
    const int N = TINY_B * c->seq_len, C = c->d_model;
    char name[3][96];
    const char *suffix[3] = {"weight", "bias", "alpha"};
    for (int k = 0; k < 3; k++) {
        char fmt[96];
        snprintf(fmt, sizeof fmt, "%s.%s", base, suffix[k]);
        snprintf(name[k], sizeof name[k], fmt, layer);
    }
    const double *w = pw(t, params, name[0], 0), *b = pw(t, params, name[1], 0);
    ck_assert_msg(w != NULL, "%s is in the parameter table", name[0]);
    if (fn == NORM_FN_DYT) {
        const double *alpha = pw(t, params, name[2], 0);
        ck_assert_msg(alpha != NULL && b != NULL, "%s: DyT has alpha and bias", base);
        spec_dyt_forward(out, in, alpha[0], w, b, N, C, s);
    } else {
        spec_norm_forward(c->norm, out, in, w, b, N, C, c->norm_eps, s);
    }
}

/* Mean cross-entropy of the model in double, written from docs/design.md section 3 (not
 * from model.c): PRE y = r x + lambda * N2(F(s N(x))), POST y = s N(r x + F(x)), the
 * embedding norm of sublayer 0's spec, the final norm of the last sublayer's norm function.
 * hidden (optional) receives h_0..h_L. */
static double ref_model_loss(const Tiny *t, const double *params, const unsigned char *skip,
                             double *hidden) {
    const ModelConfig *c = &t->cfg;
    const int N = TINY_B * c->seq_len, C = c->d_model, V = c->vocab_size, L = c->n_layer;
    const size_t NC = (size_t)N * C;
    double *x = calloc(NC, sizeof *x), *y = calloc(NC, sizeof *y), *f = calloc(NC, sizeof *f),
           *n = calloc(NC, sizeof *n), *g = calloc(NC, sizeof *g),
           *logits = calloc((size_t)N * V, sizeof *logits),
           *losses = calloc((size_t)N, sizeof *losses);
    spec_embedding_forward(x, t->tokens, pw(t, params, "model.embed_tokens.weight", 0), N, C);
    if (t->specs[0].embed_norm) {
        ref_norm(t, params, t->specs[0].norm_fn, "model.embed_layernorm", 0, n, x, 1.0);
        memcpy(x, n, NC * sizeof *x);
    }
    if (hidden) memcpy(hidden, x, NC * sizeof *x);
    static const char *in_norm[2] = {"model.layers.%d.input_layernorm",
                                     "model.layers.%d.post_attention_layernorm"};
    static const char *out_norm[2] = {"model.layers.%d.attn_output_layernorm",
                                      "model.layers.%d.mlp_output_layernorm"};
    static const char *branch[2] = {"model.layers.%d.self_attn.branch_scale",
                                    "model.layers.%d.mlp.branch_scale"};
    for (int i = 0; i < 2 * L; i++) {
        const int l = i / 2, s = i % 2;
        const SublayerSpec *sp = &t->specs[i];
        if (skip && skip[i]) {
            memcpy(y, x, NC * sizeof *x);
        } else if (sp->placement == PLACE_PRE) { /* y = r x + lambda * N2(F(s N(x))) */
            ref_norm(t, params, sp->norm_fn, in_norm[s], l, n, x, sp->in_scale);
            ref_sublayer_f(t, params, l, s, n, f);
            if (sp->out_norm) {
                ref_norm(t, params, sp->norm_fn, out_norm[s], l, g, f, 1.0);
                memcpy(f, g, NC * sizeof *f);
            }
            if (sp->branch != BRANCH_NONE) {
                const double *lam = pw(t, params, branch[s], l);
                ck_assert_msg(lam != NULL, "block %d has a branch scale", l);
                spec_branch_scale_forward(g, f, lam, N, C, sp->branch == BRANCH_CHANNEL ? C : 1);
                memcpy(f, g, NC * sizeof *f);
            }
            for (size_t j = 0; j < NC; j++) y[j] = sp->residual_scale * x[j] + f[j];
        } else { /* y = s N(r x + F(x)) */
            ref_sublayer_f(t, params, l, s, x, f);
            for (size_t j = 0; j < NC; j++) n[j] = sp->residual_scale * x[j] + f[j];
            ref_norm(t, params, sp->norm_fn, in_norm[s], l, y, n, sp->in_scale);
        }
        memcpy(x, y, NC * sizeof *x);
        if (hidden && s == SUBLAYER_MLP) memcpy(hidden + (size_t)(l + 1) * NC, x, NC * sizeof *x);
    }
    if (c->final_norm) {
        ref_norm(t, params, t->specs[2 * L - 1].norm_fn, "model.norm", 0, n, x, 1.0);
        memcpy(x, n, NC * sizeof *x);
    }
    spec_matmul_forward(logits, x, pw(t, params, "lm_head.weight", 0), N, C, V);
    spec_crossentropy_forward(losses, logits, t->targets, N, V);
    double mean = 0.0;
    for (int i = 0; i < N; i++) mean += losses[i];
    free(x), free(y), free(f), free(n), free(g), free(logits), free(losses);
    return mean / N;
}

static Backend *cpu(void) {
    char err[256];
    Backend *be = backend_create("cpu", 2, err, sizeof err);
    ck_assert_msg(be != NULL, "%s", err);
    return be;
}

static Model *tiny_model(Backend *be, const Tiny *t, const double *params) {
    char err[256];
    Model *m = model_create(be, &t->cfg, t->specs, TINY_B, err, sizeof err);
    ck_assert_msg(m != NULL, "%s", err);
    float *pf = malloc(t->table.total * sizeof *pf);
    for (size_t i = 0; i < t->table.total; i++) pf[i] = (float)params[i];
    model_set_params(m, pf);
    free(pf);
    return m;
}

/* Largest tensor-normalized error of the fp32 analytic gradient against central finite
 * differences of the float64 reference, over a sample of entries of EVERY tensor. */
static double gradient_check(const char *scheme, NormKind norm) {
    Tiny t;
    tiny_setup(&t, scheme, norm);
    double *params = malloc(t.table.total * sizeof *params);
    random_params(&t.table, 7, params);
    Backend *be = cpu();
    Model *m = tiny_model(be, &t, params);
    double loss32 = model_forward(m, t.tokens, t.targets, NULL);
    double loss64 = ref_model_loss(&t, params, NULL, NULL);
    ck_assert_msg(fabs(loss32 - loss64) / loss64 < 1e-5, "%s loss fp32 %.9g vs fp64 %.9g",
                  scheme, loss32, loss64);
    model_zero_grad(m);
    model_backward(m, NULL);
    float *grads = malloc(t.table.total * sizeof *grads);
    model_get_grads(m, grads);

    double worst = 0.0;
    uint64_t rng = 99;
    for (int i = 0; i < t.table.count; i++) {
        const ParamInfo *p = &t.table.items[i];
        enum { SAMPLES = 6 };
        size_t idx[SAMPLES + 2] = {0, p->numel - 1};
        for (int k = 0; k < SAMPLES; k++) idx[2 + k] = rng_next(&rng) % p->numel;
        double ref[SAMPLES + 2], got[SAMPLES + 2], scale = 1e-6, err = 0.0;
        for (int k = 0; k < SAMPLES + 2; k++) {
            double *w = &params[p->offset + idx[k]], keep = *w, h = 1e-5;
            *w = keep + h;
            double up = ref_model_loss(&t, params, NULL, NULL);
            *w = keep - h;
            double down = ref_model_loss(&t, params, NULL, NULL);
            *w = keep;
            ref[k] = (up - down) / (2 * h);
            got[k] = grads[p->offset + idx[k]];
            scale = fmax(scale, fabs(ref[k]));
        }
        for (int k = 0; k < SAMPLES + 2; k++) err = fmax(err, fabs(got[k] - ref[k]));
        double rel = err / scale;
        ck_assert_msg(rel < 5e-5, "%s %s: gradient rel err %.3g (scale %.3g)", scheme, p->name,
                      rel, scale);
        worst = fmax(worst, rel);
    }
    model_destroy(m);
    backend_destroy(be);
    param_table_free(&t.table);
    free(params);
    free(grads);
    return worst;
}

/* every row of the scheme table (checked against scheme_count in the suite below) */
static const char *all_schemes[] = {"pre_ln",      "post_ln",     "deepnorm",    "deepnorm_release", "mix_ln",
                                    "lns",         "scaled_init", "depth_scaled_init",
                                    "lns_scaled_init", "layerscale", "skipinit",
                                    "sandwich_ln", "peri_ln",     "dyt"};
#define N_SCHEMES ((int)(sizeof all_schemes / sizeof all_schemes[0]))

START_TEST(gradient_of_every_parameter_matches_float64_finite_differences) {
    const char *scheme = all_schemes[_i];
    double worst = gradient_check(scheme, NORM_RMS);
    printf("gradient check %-17s rmsnorm:   max tensor-relative error %.2e\n", scheme, worst);
}
END_TEST

START_TEST(gradient_check_with_layernorm) {
    const char *scheme = all_schemes[_i];
    double worst = gradient_check(scheme, NORM_LAYER);
    printf("gradient check %-17s layernorm: max tensor-relative error %.2e\n", scheme, worst);
}
END_TEST

START_TEST(hidden_states_match_float64_reference) {
    Tiny t;
    tiny_setup(&t, all_schemes[_i], NORM_RMS);
    const int L = t.cfg.n_layer;
    const size_t NC = (size_t)TINY_B * t.cfg.seq_len * t.cfg.d_model;
    double *params = malloc(t.table.total * sizeof *params);
    double *hidden = malloc((size_t)(L + 1) * NC * sizeof *hidden);
    float *h = malloc(NC * sizeof *h);
    random_params(&t.table, 3, params);
    Backend *be = cpu();
    Model *m = tiny_model(be, &t, params);
    model_forward(m, t.tokens, t.targets, NULL);
    ref_model_loss(&t, params, NULL, hidden);
    for (int l = 0; l <= L; l++) {
        model_get_hidden(m, l, h);
        double err = test_max_rel_err_f(h, hidden + (size_t)l * NC, NC, 1e-6);
        ck_assert_msg(err < 1e-5, "h_%d rel err %.3g", l, err);
    }
    model_destroy(m);
    backend_destroy(be);
    param_table_free(&t.table);
    free(params), free(hidden), free(h);
}
END_TEST

/* Does sublayer spec b compute what a computes, given the same parameters? (The init fields
 * change only the initial values, not the function.) */
static int same_function(const SublayerSpec *a, const SublayerSpec *b) {
    return a->placement == b->placement && a->in_scale == b->in_scale &&
           a->residual_scale == b->residual_scale && a->norm_fn == b->norm_fn &&
           a->out_norm == b->out_norm && a->branch == b->branch;
}

/* Where a scheme's spec of sublayer i computes what pre_ln's does for every sublayer up to
 * i, h must be bitwise the same as under pre_ln (shared parameters have the same values, the
 * scheme's own get random ones); from the first sublayer that differs, h must differ. This
 * would have caught the LNS release, whose scaling silently never ran. A scheme that only
 * changes the init (scaled_init, depth_scaled_init) computes pre_ln's loss bit for bit. */
START_TEST(every_scheme_changes_the_forward_exactly_where_its_formula_differs) {
    const char *scheme = all_schemes[_i];
    Tiny pre, other;
    tiny_setup(&pre, "pre_ln", NORM_RMS);
    tiny_setup(&other, scheme, NORM_RMS);
    const int L = pre.cfg.n_layer;
    const size_t NC = (size_t)TINY_B * pre.cfg.seq_len * pre.cfg.d_model;
    double *params = malloc(pre.table.total * sizeof *params);
    double *oparams = malloc(other.table.total * sizeof *oparams);
    random_params(&pre.table, 11, params);
    random_params(&other.table, 12, oparams);
    for (int k = 0; k < other.table.count; k++) {
        const ParamInfo *po = &other.table.items[k], *pp = param_table_find(&pre.table, po->name);
        if (pp) memcpy(oparams + po->offset, params + pp->offset, pp->numel * sizeof *params);
    }
    Backend *be = cpu();
    Model *mp = tiny_model(be, &pre, params), *mo = tiny_model(be, &other, oparams);
    double lp = model_forward(mp, pre.tokens, pre.targets, NULL);
    double lo = model_forward(mo, other.tokens, other.targets, NULL);
    float *hp = malloc(NC * sizeof *hp), *ho = malloc(NC * sizeof *ho);
    int same_so_far = !other.specs[0].embed_norm;
    for (int l = 0; l <= L; l++) {
        for (int s = 0; l > 0 && s < 2; s++)
            same_so_far = same_so_far && same_function(&pre.specs[2 * (l - 1) + s],
                                                       &other.specs[2 * (l - 1) + s]);
        model_get_hidden(mp, l, hp);
        model_get_hidden(mo, l, ho);
        int equal = memcmp(hp, ho, NC * sizeof *hp) == 0;
        ck_assert_msg(equal == same_so_far, "%s h_%d: expected %s pre_ln", scheme, l,
                      same_so_far ? "equal to" : "different from");
    }
    if (same_so_far) ck_assert_msg(lp == lo, "%s computes pre_ln's function", scheme);
    else ck_assert_msg(lp != lo, "%s loss equals pre_ln's", scheme);
    model_destroy(mp), model_destroy(mo);
    backend_destroy(be);
    param_table_free(&pre.table), param_table_free(&other.table);
    free(params), free(oparams), free(hp), free(ho);
}
END_TEST

START_TEST(a_skipped_sublayer_is_the_identity) {
    Tiny t;
    tiny_setup(&t, all_schemes[_i], NORM_RMS);
    double *params = malloc(t.table.total * sizeof *params);
    random_params(&t.table, 5, params);
    Backend *be = cpu();
    Model *m = tiny_model(be, &t, params);
    unsigned char skip[8] = {0};
    skip[2] = skip[3] = 1; /* block 2 */
    skip[6] = 1;           /* attention of block 4 */
    double got = model_forward(m, t.tokens, t.targets, skip);
    double ref = ref_model_loss(&t, params, skip, NULL);
    double full = ref_model_loss(&t, params, NULL, NULL);
    ck_assert_double_eq_tol(got, ref, 1e-5 * ref);
    ck_assert_double_ne(ref, full);
    model_destroy(m);
    backend_destroy(be);
    param_table_free(&t.table);
    free(params);
}
END_TEST

START_TEST(forward_and_backward_are_bitwise_deterministic) {
    Tiny t;
    tiny_setup(&t, "mix_ln", NORM_LAYER);
    double *params = malloc(t.table.total * sizeof *params);
    random_params(&t.table, 13, params);
    size_t n = t.table.total;
    float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
    double loss[2];
    for (int rep = 0; rep < 2; rep++) {
        Backend *be = cpu();
        Model *m = tiny_model(be, &t, params);
        loss[rep] = model_forward(m, t.tokens, t.targets, NULL);
        model_zero_grad(m);
        model_backward(m, NULL);
        model_get_grads(m, rep ? g2 : g1);
        model_destroy(m);
        backend_destroy(be);
    }
    ck_assert_int_eq(memcmp(&loss[0], &loss[1], sizeof loss[0]), 0);
    ck_assert_int_eq(memcmp(g1, g2, n * sizeof *g1), 0);
    param_table_free(&t.table);
    free(params), free(g1), free(g2);
}
END_TEST

START_TEST(parameter_table_has_llama_names_shapes_and_count) {
    ModelConfig c = tiny_config(NORM_RMS);
    ParamTable t;
    ck_assert_int_eq(param_table_build(&c, NULL, &t), 0);
    const size_t C = 16, F = 22, V = 19, L = 4;
    ck_assert_uint_eq(t.total, 2 * V * C + L * (4 * C * C + 3 * C * F + 2 * C) + C);
    const ParamInfo *p = param_table_find(&t, "model.layers.3.mlp.down_proj.weight");
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(p->rows, 16);
    ck_assert_int_eq(p->cols, 22);
    ck_assert_ptr_null(param_table_find(&t, "model.layers.0.input_layernorm.bias"));
    /* blocks tile their ranges contiguously */
    for (size_t l = 0; l + 1 < L; l++) ck_assert_uint_eq(t.layer_end[l], t.layer_begin[l + 1]);
    param_table_free(&t);
    c.norm = NORM_LAYER;
    ck_assert_int_eq(param_table_build(&c, NULL, &t), 0);
    ck_assert_uint_eq(t.total, 2 * V * C + L * (4 * C * C + 3 * C * F + 4 * C) + 2 * C);
    param_table_free(&t);
}
END_TEST

static double sample_std(const float *w, size_t n) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += w[i], s2 += (double)w[i] * w[i];
    return sqrt(s2 / n - (s / n) * (s / n));
}

/* Values of parameter `name` under `scheme` (L = 12, d 64, d_ff 172, seed 1234): w gets
 * the whole parameter vector, *p its entry. */
static void init_scheme(const ModelConfig *c, const char *scheme, const char *name,
                        ParamTable *t, float **w, const ParamInfo **p) {
    SchemeParams sp;
    scheme_params_default(&sp);
    SublayerSpec specs[24];
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find(scheme), &sp, 12, specs, err, sizeof err), 0);
    ck_assert_int_eq(param_table_build(c, specs, t), 0);
    *w = malloc(t->total * sizeof **w);
    model_init_params(c, t, specs, 1234, *w);
    *p = param_table_find(t, name);
    ck_assert_msg(*p != NULL, "%s has %s", scheme, name);
}

/* The init rule of every scheme, from its paper (L = 12, d = 64, d_ff = 172):
 *   normal 0.02 (GPT-2/LLaMA); DeepNorm xavier-normal with gain b = (8L)^(-1/4) on v, o and
 *   the MLP; scaled init 0.02/sqrt(2L) on o_proj and down_proj; DS-Init xavier-uniform times
 *   1/sqrt(l) (l = 6 for model.layers.5), bound a = sqrt(6/(fan_in+fan_out))/sqrt(l);
 *   LayerScale lambda = 0.1 (L <= 18); SkipInit alpha = 0; DyT alpha0 0.8 before attention,
 *   0.2 elsewhere (final norm included), gamma 1, beta 0. */
START_TEST(initialization_follows_each_schemes_rule) {
    ModelConfig c;
    model_config_default(&c); /* d=64, 12 layers, d_ff 172 */
    const double b = pow(8.0 * 12, -0.25), s2L = 1.0 / sqrt(24.0), l6 = 1.0 / sqrt(6.0);
    const double xa = sqrt(2.0 / 128), xm = sqrt(2.0 / (64 + 172));
    struct { const char *scheme, *param; double std; } cases[] = {
        {"pre_ln", "model.layers.5.self_attn.q_proj.weight", 0.02},
        {"pre_ln", "model.layers.5.mlp.down_proj.weight", 0.02},
        {"pre_ln", "model.embed_tokens.weight", 0.02},
        {"deepnorm", "model.layers.5.self_attn.q_proj.weight", xa},
        {"deepnorm", "model.layers.5.self_attn.v_proj.weight", b * xa},
        {"deepnorm", "model.layers.5.self_attn.o_proj.weight", b * xa},
        {"deepnorm", "model.layers.5.mlp.up_proj.weight", b * xm},
        {"deepnorm", "model.layers.5.mlp.down_proj.weight", b * xm},
        {"scaled_init", "model.layers.5.self_attn.q_proj.weight", 0.02},
        {"scaled_init", "model.layers.5.self_attn.o_proj.weight", 0.02 * s2L},
        {"scaled_init", "model.layers.5.mlp.up_proj.weight", 0.02},
        {"scaled_init", "model.layers.5.mlp.down_proj.weight", 0.02 * s2L},
        {"lns_scaled_init", "model.layers.5.self_attn.o_proj.weight", 0.02 * s2L},
        {"lns_scaled_init", "model.layers.5.mlp.down_proj.weight", 0.02 * s2L},
        {"lns_scaled_init", "model.layers.5.mlp.gate_proj.weight", 0.02},
        /* uniform(-a, a) has std a / sqrt(3) = xavier-normal's std */
        {"depth_scaled_init", "model.layers.5.self_attn.q_proj.weight", l6 * xa},
        {"depth_scaled_init", "model.layers.5.mlp.down_proj.weight", l6 * xm},
        {"depth_scaled_init", "model.layers.0.self_attn.o_proj.weight", xa},
        {"depth_scaled_init", "lm_head.weight", 0.02},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        ParamTable t;
        float *w;
        const ParamInfo *p;
        init_scheme(&c, cases[k].scheme, cases[k].param, &t, &w, &p);
        double std = sample_std(w + p->offset, p->numel);
        ck_assert_msg(fabs(std / cases[k].std - 1.0) < 0.05, "%s %s std %.5f, want %.5f",
                      cases[k].scheme, cases[k].param, std, cases[k].std);
        if (!strcmp(cases[k].scheme, "depth_scaled_init") && p->layer >= 0) {
            double bound = cases[k].std * sqrt(3.0), top = 0.0;
            for (size_t j = 0; j < p->numel; j++) top = fmax(top, fabs(w[p->offset + j]));
            ck_assert_msg(top <= bound && top > 0.95 * bound, "%s: uniform within +-%.5f, max %.5f",
                          cases[k].param, bound, top);
        }
        param_table_free(&t);
        free(w);
    }
    /* constants: norm weights, biases, DyT alphas, branch scales */
    struct { const char *scheme, *param; size_t numel; float value; } consts[] = {
        {"pre_ln", "model.layers.2.input_layernorm.weight", 64, 1.0f},
        {"layerscale", "model.layers.2.self_attn.branch_scale", 64, 0.1f},
        {"layerscale", "model.layers.11.mlp.branch_scale", 64, 0.1f},
        {"skipinit", "model.layers.2.self_attn.branch_scale", 1, 0.0f},
        {"skipinit", "model.layers.7.mlp.branch_scale", 1, 0.0f},
        {"dyt", "model.layers.3.input_layernorm.alpha", 1, 0.8f},
        {"dyt", "model.layers.3.post_attention_layernorm.alpha", 1, 0.2f},
        {"dyt", "model.norm.alpha", 1, 0.2f},
        {"dyt", "model.layers.3.input_layernorm.weight", 64, 1.0f},
        {"dyt", "model.layers.3.input_layernorm.bias", 64, 0.0f},
        {"sandwich_ln", "model.layers.4.attn_output_layernorm.weight", 64, 1.0f},
        {"peri_ln", "model.layers.4.mlp_output_layernorm.weight", 64, 1.0f},
        {"peri_ln", "model.embed_layernorm.weight", 64, 1.0f},
    };
    for (size_t k = 0; k < sizeof consts / sizeof consts[0]; k++) {
        ParamTable t;
        float *w;
        const ParamInfo *p;
        init_scheme(&c, consts[k].scheme, consts[k].param, &t, &w, &p);
        ck_assert_uint_eq(p->numel, consts[k].numel);
        for (size_t j = 0; j < p->numel; j++) ck_assert_float_eq(w[p->offset + j], consts[k].value);
        param_table_free(&t);
        free(w);
    }
    /* same seed, same values; another seed, other values */
    ParamTable t;
    float *w;
    const ParamInfo *p;
    init_scheme(&c, "deepnorm", "lm_head.weight", &t, &w, &p);
    float *w2 = malloc(t.total * sizeof *w2);
    SchemeParams sp;
    scheme_params_default(&sp);
    SublayerSpec specs[24];
    char err[256];
    ck_assert_int_eq(scheme_build_table(scheme_find("deepnorm"), &sp, 12, specs, err, sizeof err), 0);
    model_init_params(&c, &t, specs, 1234, w2);
    ck_assert_int_eq(memcmp(w, w2, t.total * sizeof *w), 0);
    model_init_params(&c, &t, specs, 1235, w2);
    ck_assert_int_ne(memcmp(w, w2, t.total * sizeof *w), 0);
    param_table_free(&t);
    free(w), free(w2);
}
END_TEST

/* The scheme parameters: names, shapes, inside their block's range, none for the plain
 * schemes; DyT has alpha and bias under RMSNorm too. */
START_TEST(scheme_parameters_have_clear_names_and_shapes) {
    ModelConfig c = tiny_config(NORM_RMS);
    struct { const char *scheme, *param; int rows; } want[] = {
        {"layerscale", "model.layers.1.self_attn.branch_scale", 16},
        {"layerscale", "model.layers.1.mlp.branch_scale", 16},
        {"skipinit", "model.layers.3.mlp.branch_scale", 1},
        {"sandwich_ln", "model.layers.0.attn_output_layernorm.weight", 16},
        {"sandwich_ln", "model.layers.0.mlp_output_layernorm.weight", 16},
        {"peri_ln", "model.embed_layernorm.weight", 16},
        {"dyt", "model.layers.2.input_layernorm.alpha", 1},
        {"dyt", "model.layers.2.post_attention_layernorm.bias", 16},
        {"dyt", "model.norm.alpha", 1},
        {"dyt", "model.norm.bias", 16},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        Tiny t;
        tiny_setup(&t, want[k].scheme, NORM_RMS);
        const ParamInfo *p = param_table_find(&t.table, want[k].param);
        ck_assert_msg(p != NULL, "%s: %s", want[k].scheme, want[k].param);
        ck_assert_int_eq(p->rows, want[k].rows);
        ck_assert_int_eq(p->cols, 0); /* a vector: no weight decay */
        if (p->layer >= 0)
            ck_assert(p->offset >= t.table.layer_begin[p->layer] &&
                      p->offset + p->numel <= t.table.layer_end[p->layer]);
        param_table_free(&t.table);
    }
    /* all_schemes is the scheme table */
    ck_assert_int_eq(N_SCHEMES, (int)scheme_count());
    for (int i = 0; i < N_SCHEMES; i++) ck_assert_ptr_nonnull(scheme_find(all_schemes[i]));
    ParamTable plain, scaled;
    ck_assert_int_eq(param_table_build(&c, NULL, &plain), 0);
    Tiny t;
    tiny_setup(&t, "scaled_init", NORM_RMS);
    ck_assert_int_eq(param_table_build(&c, t.specs, &scaled), 0);
    ck_assert_uint_eq(plain.total, scaled.total);
    ck_assert_int_eq(plain.count, scaled.count);
    param_table_free(&plain), param_table_free(&scaled), param_table_free(&t.table);
}
END_TEST

/* The parameters a scheme adds are trained: one AdamW step (first step: every element with
 * a non-zero gradient moves by lr, Adam's normalized first step) moves DyT's alphas and
 * betas, SkipInit's scalars (from 0) and the output norms' weights; weight decay (set here)
 * does not touch them (vectors), so an element moves by exactly lr up to rounding. */
START_TEST(scheme_parameters_are_trained_by_adamw) {
    const char *schemes[] = {"dyt", "skipinit", "layerscale", "peri_ln"};
    const char *params[] = {"model.layers.1.input_layernorm.alpha", "model.norm.alpha",
                            "model.layers.2.mlp.branch_scale", "model.layers.0.self_attn.branch_scale",
                            "model.embed_layernorm.weight", "model.layers.3.mlp_output_layernorm.weight"};
    const int scheme_of[] = {0, 0, 1, 2, 3, 3};
    for (int k = 0; k < 6; k++) {
        Tiny t;
        tiny_setup(&t, schemes[scheme_of[k]], NORM_RMS);
        double *params64 = malloc(t.table.total * sizeof *params64);
        random_params(&t.table, 21, params64);
        Backend *be = cpu();
        Model *m = tiny_model(be, &t, params64);
        model_forward(m, t.tokens, t.targets, NULL);
        model_zero_grad(m);
        model_backward(m, NULL);
        AdamWArgs a = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                       .weight_decay = 0.5f, .grad_scale = 1.0f, .step = 1};
        model_adamw_step(m, &a);
        float *after = malloc(t.table.total * sizeof *after);
        model_get_params(m, after);
        const ParamInfo *p = param_table_find(&t.table, params[k]);
        ck_assert_msg(p != NULL, "%s", params[k]);
        for (size_t j = 0; j < p->numel; j++) {
            double moved = fabs(after[p->offset + j] - params64[p->offset + j]);
            ck_assert_msg(fabs(moved - 1e-2) < 1e-4, "%s[%zu] moved by %g, want lr 0.01",
                          params[k], j, moved);
        }
        model_destroy(m);
        backend_destroy(be);
        param_table_free(&t.table);
        free(params64), free(after);
    }
}
END_TEST

Suite *model_suite(void) {
    Suite *s = suite_create("model");
    TCase *grad = tcase_create("gradients");
    tcase_set_timeout(grad, 120);
    tcase_add_loop_test(grad, gradient_of_every_parameter_matches_float64_finite_differences, 0, N_SCHEMES);
    tcase_add_loop_test(grad, gradient_check_with_layernorm, 0, N_SCHEMES);
    suite_add_tcase(s, grad);
    TCase *fwd = tcase_create("forward");
    tcase_set_timeout(fwd, 60); /* the init test draws the 12-layer demo model ~30 times */
    tcase_add_loop_test(fwd, hidden_states_match_float64_reference, 0, N_SCHEMES);
    tcase_add_loop_test(fwd, every_scheme_changes_the_forward_exactly_where_its_formula_differs, 0, N_SCHEMES);
    tcase_add_loop_test(fwd, a_skipped_sublayer_is_the_identity, 0, N_SCHEMES);
    tcase_add_test(fwd, forward_and_backward_are_bitwise_deterministic);
    tcase_add_test(fwd, parameter_table_has_llama_names_shapes_and_count);
    tcase_add_test(fwd, initialization_follows_each_schemes_rule);
    tcase_add_test(fwd, scheme_parameters_have_clear_names_and_shapes);
    tcase_add_test(fwd, scheme_parameters_are_trained_by_adamw);
    suite_add_tcase(s, fwd);
    return s;
}
