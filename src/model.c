/* model.c — the LLaMA-style decoder (docs/design.md section 3) on any backend.
 *
 * Owns the parameter table (Hugging Face names and shapes, one contiguous buffer), seeded
 * initialization, the activation arena, and the forward and backward passes. All arithmetic
 * goes through kernels/backend.h; the normalization scheme enters only through the
 * SublayerSpec of each sublayer:
 *   PRE:  y = r*x + F(s * N(x))
 *   POST: y = s * N(r*x + F(x))
 * with s = in_scale, r = residual_scale. Sublayer index i = 2*l + {0: attention, 1: MLP}
 * (l 0-based); stream[i] is the input of sublayer i, stream[2L] the last block's output.
 */
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

void model_config_default(ModelConfig *c) {
    c->n_layer = 12;
    c->d_model = 64;
    c->n_head = 4;
    c->d_ff = 172;
    c->vocab_size = 256;
    c->seq_len = 64;
    c->norm = NORM_RMS;
    c->norm_eps = 1e-6f;
    c->rope_theta = 10000.0f;
    c->final_norm = 1;
    c->embed_std = 0.02f;
}

int model_config_validate(const ModelConfig *c, char *err, size_t errlen) {
    if (c->n_layer < 1) return snprintf(err, errlen, "model.n_layer: must be >= 1, got %d", c->n_layer), -1;
    if (c->d_model < 1) return snprintf(err, errlen, "model.d_model: must be >= 1, got %d", c->d_model), -1;
    if (c->n_head < 1) return snprintf(err, errlen, "model.n_head: must be >= 1, got %d", c->n_head), -1;
    if (c->d_model % c->n_head != 0)
        return snprintf(err, errlen, "model.n_head: %d does not divide d_model %d", c->n_head, c->d_model), -1;
    if ((c->d_model / c->n_head) % 2 != 0)
        return snprintf(err, errlen, "model.n_head: head size %d is odd (RoPE rotates pairs)",
                        c->d_model / c->n_head), -1;
    if (c->d_ff < 1) return snprintf(err, errlen, "model.d_ff: must be >= 1, got %d", c->d_ff), -1;
    if (c->vocab_size < 2 || c->vocab_size > 65536)
        return snprintf(err, errlen, "model.vocab_size: must be in [2, 65536], got %d", c->vocab_size), -1;
    if (c->seq_len < 1) return snprintf(err, errlen, "model.seq_len: must be >= 1, got %d", c->seq_len), -1;
    if (!(c->norm_eps > 0)) return snprintf(err, errlen, "model.norm_eps: must be > 0, got %g", c->norm_eps), -1;
    if (!(c->rope_theta > 0)) return snprintf(err, errlen, "model.rope_theta: must be > 0, got %g", c->rope_theta), -1;
    if (!(c->embed_std > 0)) return snprintf(err, errlen, "init.embed_std: must be > 0, got %g", c->embed_std), -1;
    return 0;
}

/* ---- parameter table ---------------------------------------------------------------- */

static void table_add(ParamTable *t, ParamKind kind, int layer, int rows, int cols,
                      const char *name) {
    ParamInfo *p = &t->items[t->count++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->kind = kind;
    p->layer = layer;
    p->rows = rows;
    p->cols = cols;
    p->offset = t->total;
    p->numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    t->total += p->numel;
}

/* The norm sites of a scheme: where a norm (or DyT) stands and the kinds of its weight,
 * bias and alpha. Block sites: the input norm and the output norm (sandwich, peri) of each
 * sublayer; model sites: the final norm and the embedding norm. */
typedef struct {
    ParamKind w, b, a;
    const char *name; /* Hugging Face style, "%d" = block index where it has one */
} NormSite;

static const NormSite site_in[2] = {
    {PARAM_NORM_ATTN_W, PARAM_NORM_ATTN_B, PARAM_NORM_ATTN_A, "model.layers.%d.input_layernorm"},
    {PARAM_NORM_MLP_W, PARAM_NORM_MLP_B, PARAM_NORM_MLP_A, "model.layers.%d.post_attention_layernorm"},
};
static const NormSite site_out[2] = {
    {PARAM_ONORM_ATTN_W, PARAM_ONORM_ATTN_B, PARAM_ONORM_ATTN_A, "model.layers.%d.attn_output_layernorm"},
    {PARAM_ONORM_MLP_W, PARAM_ONORM_MLP_B, PARAM_ONORM_MLP_A, "model.layers.%d.mlp_output_layernorm"},
};
static const NormSite site_final = {PARAM_NORM_FINAL_W, PARAM_NORM_FINAL_B, PARAM_NORM_FINAL_A,
                                    "model.norm"};
static const NormSite site_embed = {PARAM_NORM_EMBED_W, PARAM_NORM_EMBED_B, PARAM_NORM_EMBED_A,
                                    "model.embed_layernorm"};
static const ParamKind branch_kind[2] = {PARAM_BRANCH_ATTN, PARAM_BRANCH_MLP};
static const char *const branch_name[2] = {"model.layers.%d.self_attn.branch_scale",
                                           "model.layers.%d.mlp.branch_scale"};

/* The norm function of the model-level sites: the final norm follows the last sublayer,
 * the embedding norm the first (docs/design.md section 3.2). */
static const SublayerSpec plain_spec = {.placement = PLACE_PRE, .in_scale = 1.0f,
                                        .residual_scale = 1.0f, .init = INIT_NORMAL,
                                        .init_std = 0.02f, .init_gain = {1, 1, 1, 1},
                                        .norm_fn = NORM_FN_NORM, .branch = BRANCH_NONE,
                                        .branch_init = 1.0f};

static const SublayerSpec *spec_of(const SublayerSpec *specs, int i) {
    return specs ? &specs[i] : &plain_spec;
}

/* weight (and bias under LayerNorm or DyT, alpha under DyT) of one norm site */
static void table_add_norm(ParamTable *t, const ModelConfig *c, const NormSite *site, NormFn fn,
                           int layer) {
    char base[80], name[96];
    snprintf(base, sizeof base, site->name, layer);
    const int C = c->d_model;
    snprintf(name, sizeof name, "%s.weight", base);
    table_add(t, site->w, layer, C, 0, name);
    if (c->norm == NORM_LAYER || fn == NORM_FN_DYT) {
        snprintf(name, sizeof name, "%s.bias", base);
        table_add(t, site->b, layer, C, 0, name);
    }
    if (fn == NORM_FN_DYT) {
        snprintf(name, sizeof name, "%s.alpha", base);
        table_add(t, site->a, layer, 1, 0, name);
    }
}

int param_table_build(const ModelConfig *c, const SublayerSpec *specs, ParamTable *t) {
    memset(t, 0, sizeof *t);
    const int L = c->n_layer, C = c->d_model, F = c->d_ff, V = c->vocab_size;
    t->items = calloc((size_t)L * 24 + 16, sizeof *t->items);
    t->layer_begin = calloc((size_t)L, sizeof *t->layer_begin);
    t->layer_end = calloc((size_t)L, sizeof *t->layer_end);
    if (!t->items || !t->layer_begin || !t->layer_end) {
        param_table_free(t);
        return -1;
    }
    char name[96];
    table_add(t, PARAM_EMBED, -1, V, C, "model.embed_tokens.weight");
    if (spec_of(specs, 0)->embed_norm) table_add_norm(t, c, &site_embed, spec_of(specs, 0)->norm_fn, -1);
    for (int l = 0; l < L; l++) {
        t->layer_begin[l] = t->total;
        for (int s = 0; s < 2; s++) {
            const SublayerSpec *sp = spec_of(specs, 2 * l + s);
            table_add_norm(t, c, &site_in[s], sp->norm_fn, l);
            if (s == SUBLAYER_ATTN) {
                static const struct { ParamKind k; const char *n; } w[] = {
                    {PARAM_Q, "self_attn.q_proj.weight"}, {PARAM_K, "self_attn.k_proj.weight"},
                    {PARAM_V, "self_attn.v_proj.weight"}, {PARAM_O, "self_attn.o_proj.weight"}};
                for (int j = 0; j < 4; j++) {
                    snprintf(name, sizeof name, "model.layers.%d.%s", l, w[j].n);
                    table_add(t, w[j].k, l, C, C, name);
                }
            } else {
                snprintf(name, sizeof name, "model.layers.%d.mlp.gate_proj.weight", l);
                table_add(t, PARAM_GATE, l, F, C, name);
                snprintf(name, sizeof name, "model.layers.%d.mlp.up_proj.weight", l);
                table_add(t, PARAM_UP, l, F, C, name);
                snprintf(name, sizeof name, "model.layers.%d.mlp.down_proj.weight", l);
                table_add(t, PARAM_DOWN, l, C, F, name);
            }
            if (sp->out_norm) table_add_norm(t, c, &site_out[s], sp->norm_fn, l);
            if (sp->branch != BRANCH_NONE) {
                snprintf(name, sizeof name, branch_name[s], l);
                table_add(t, branch_kind[s], l, sp->branch == BRANCH_CHANNEL ? C : 1, 0, name);
            }
        }
        t->layer_end[l] = t->total;
    }
    if (c->final_norm) table_add_norm(t, c, &site_final, spec_of(specs, 2 * L - 1)->norm_fn, -1);
    table_add(t, PARAM_LM_HEAD, -1, V, C, "lm_head.weight");
    return 0;
}

void param_table_free(ParamTable *t) {
    free(t->items);
    free(t->layer_begin);
    free(t->layer_end);
    memset(t, 0, sizeof *t);
}

const ParamInfo *param_table_find(const ParamTable *t, const char *name) {
    for (int i = 0; i < t->count; i++)
        if (strcmp(t->items[i].name, name) == 0) return &t->items[i];
    return NULL;
}

/* What each kind is, for initialization: a drawn matrix (role in its sublayer's spec),
 * a norm weight (1), a norm bias (0), DyT's alpha (the spec's dyt_alpha) or a branch scale
 * (the spec's branch_init); `sublayer` says whose spec (-1: outside the blocks). */
typedef enum { INIT_DRAWN, INIT_ONE, INIT_ZERO, INIT_ALPHA, INIT_BRANCH } ParamInit;
static const struct { ParamInit how; int sublayer, role; } kind_info[PARAM_KIND_COUNT] = {
    [PARAM_EMBED] = {INIT_DRAWN, -1, 0},
    [PARAM_Q] = {INIT_DRAWN, SUBLAYER_ATTN, ROLE_Q}, [PARAM_K] = {INIT_DRAWN, SUBLAYER_ATTN, ROLE_K},
    [PARAM_V] = {INIT_DRAWN, SUBLAYER_ATTN, ROLE_V}, [PARAM_O] = {INIT_DRAWN, SUBLAYER_ATTN, ROLE_O},
    [PARAM_GATE] = {INIT_DRAWN, SUBLAYER_MLP, ROLE_GATE},
    [PARAM_UP] = {INIT_DRAWN, SUBLAYER_MLP, ROLE_UP},
    [PARAM_DOWN] = {INIT_DRAWN, SUBLAYER_MLP, ROLE_DOWN},
    [PARAM_NORM_ATTN_W] = {INIT_ONE, SUBLAYER_ATTN, 0}, [PARAM_NORM_ATTN_B] = {INIT_ZERO, SUBLAYER_ATTN, 0},
    [PARAM_NORM_MLP_W] = {INIT_ONE, SUBLAYER_MLP, 0},   [PARAM_NORM_MLP_B] = {INIT_ZERO, SUBLAYER_MLP, 0},
    [PARAM_NORM_FINAL_W] = {INIT_ONE, -1, 0},           [PARAM_NORM_FINAL_B] = {INIT_ZERO, -1, 0},
    [PARAM_LM_HEAD] = {INIT_DRAWN, -1, 0},
    [PARAM_NORM_ATTN_A] = {INIT_ALPHA, SUBLAYER_ATTN, 0}, [PARAM_NORM_MLP_A] = {INIT_ALPHA, SUBLAYER_MLP, 0},
    [PARAM_NORM_FINAL_A] = {INIT_ALPHA, -1, 0},
    [PARAM_ONORM_ATTN_W] = {INIT_ONE, SUBLAYER_ATTN, 0}, [PARAM_ONORM_ATTN_B] = {INIT_ZERO, SUBLAYER_ATTN, 0},
    [PARAM_ONORM_ATTN_A] = {INIT_ALPHA, SUBLAYER_ATTN, 0},
    [PARAM_ONORM_MLP_W] = {INIT_ONE, SUBLAYER_MLP, 0},   [PARAM_ONORM_MLP_B] = {INIT_ZERO, SUBLAYER_MLP, 0},
    [PARAM_ONORM_MLP_A] = {INIT_ALPHA, SUBLAYER_MLP, 0},
    [PARAM_NORM_EMBED_W] = {INIT_ONE, -1, 0}, [PARAM_NORM_EMBED_B] = {INIT_ZERO, -1, 0},
    [PARAM_NORM_EMBED_A] = {INIT_ALPHA, -1, 0},
    [PARAM_BRANCH_ATTN] = {INIT_BRANCH, SUBLAYER_ATTN, 0}, [PARAM_BRANCH_MLP] = {INIT_BRANCH, SUBLAYER_MLP, 0},
};

/* Initialization (docs/design.md section 3): norm weights 1, biases 0, DyT alphas and branch
 * scales the constants of their sublayer's spec (the final norm's alpha from the last
 * sublayer, the embedding norm's from the first); embedding normal(0, embed_std); block
 * weights per their sublayer's spec: normal(0, init_std * gain), xavier-normal, std = gain *
 * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010, as torch.nn.init.xavier_normal_), or
 * xavier-uniform, U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out)); LM head normal(0,
 * init_std) with the base std of the first sublayer's spec (all sublayers share it). */
void model_init_params(const ModelConfig *c, const ParamTable *t, const SublayerSpec *specs,
                       uint64_t seed, float *out) {
    const int L = c->n_layer;
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        float *w = out + p->offset;
        int sub = kind_info[p->kind].sublayer;
        const SublayerSpec *sp = sub >= 0 ? &specs[2 * p->layer + sub]
                                 : p->kind == PARAM_NORM_FINAL_A ? &specs[2 * L - 1]
                                                                 : &specs[0];
        ParamInit how = kind_info[p->kind].how;
        if (how != INIT_DRAWN) {
            float value = how == INIT_ONE     ? 1.0f
                          : how == INIT_ZERO  ? 0.0f
                          : how == INIT_ALPHA ? sp->dyt_alpha
                                              : sp->branch_init;
            for (size_t j = 0; j < p->numel; j++) w[j] = value;
            continue;
        }
        double std;
        int uniform = 0;
        if (p->kind == PARAM_EMBED) {
            std = c->embed_std;
        } else if (sub < 0) {
            std = specs[0].init_std;
        } else {
            double gain = sp->init_gain[kind_info[p->kind].role];
            double fan = (double)(p->rows + p->cols);
            uniform = sp->init == INIT_XAVIER_UNIFORM;
            std = sp->init == INIT_XAVIER           ? gain * sqrt(2.0 / fan)
                  : sp->init == INIT_XAVIER_UNIFORM ? gain * sqrt(6.0 / fan) /* the bound a */
                                                    : gain * sp->init_std;
        }
        uint64_t state = rng_stream(seed, (uint64_t)i + 1);
        if (uniform)
            for (size_t j = 0; j < p->numel; j++) w[j] = (float)(std * (2.0 * rng_uniform(&state) - 1.0));
        else
            for (size_t j = 0; j < p->numel; j++) w[j] = (float)(std * rng_normal(&state));
    }
}

/* ---- model state -------------------------------------------------------------------- */

struct Model {
    Backend *be;
    ModelConfig cfg;
    SublayerSpec *specs; /* 2L */
    ParamTable table;
    int B, T, N;

    void *params;  /* act compute weights (== master on the CPU) */
    float *master; /* f32 master weights */
    float *grads, *adam_m, *adam_v;

    /* activations, planned in one arena */
    void *arena;
    int32_t *tokens, *targets;
    void **stream;   /* [2L+1] [N,C] */
    void **normout;  /* [2L] [N,C], PRE sublayers: s*N(x) */
    void **z;        /* [2L] [N,C], POST sublayers: r*x + F(x) */
    float **mean, **rstd;  /* [2L] [N] */
    void **q, **k, **v, **atty, **saved; /* [L] */
    void **gate, **up, **hmid;           /* [L] [N,F] */
    void *final_out; /* [N,C] final norm output */
    float *final_mean, *final_rstd;
    void *logits;    /* [N,V], overwritten by dlogits in backward */
    float *losses;   /* [N] */
    void *f;         /* [N,C] sublayer output scratch */
    /* only under schemes that need them (NULL otherwise), laid out after the rest */
    void **fpre;     /* [2L] [N,C] F's output entering the second norm (out_norm) */
    float **mean2, **rstd2; /* [2L] [N] the second norm's statistics */
    void **bin;      /* [2L] [N,C] the branch entering its learnable scale (branch) */
    void *embed_raw; /* [N,C] the embedding before its norm (embed_norm) */
    float *embed_mean, *embed_rstd;
    void *dfp, *dbr; /* [N,C] gradient scratch of the second norm and the branch scale */
    /* gradient scratch */
    void *dstream_a, *dstream_b, *dn, *dz, *dq, *dk, *dv, *dq_raw, *dk_raw, *datty;
    void *dgate, *dup, *dh;
    float *host_losses;
    int has_targets;
};

typedef struct {
    char *base;
    size_t used;
} Arena;

/* reserves bytes (256-byte aligned); returns NULL while only measuring (base NULL) */
static void *arena_take(Arena *a, size_t bytes) {
    size_t off = (a->used + 255) & ~(size_t)255;
    a->used = off + bytes;
    return a->base ? a->base + off : NULL;
}

/* Lays out every activation buffer; called once with base NULL to measure the arena and
 * once with the real base. model_memory_bytes measures with the same function, so the
 * estimate is the allocation. */
static void plan_activations(Model *m, Arena *a) {
    const ModelConfig *c = &m->cfg;
    const int L = c->n_layer;
    const size_t N = (size_t)m->N, C = (size_t)c->d_model, F = (size_t)c->d_ff,
                 V = (size_t)c->vocab_size, act = m->be->act_bytes;
    m->tokens = arena_take(a, N * sizeof(int32_t));
    m->targets = arena_take(a, N * sizeof(int32_t));
    for (int i = 0; i <= 2 * L; i++) m->stream[i] = arena_take(a, N * C * act);
    for (int i = 0; i < 2 * L; i++) {
        int post = m->specs[i].placement == PLACE_POST;
        m->normout[i] = post ? NULL : arena_take(a, N * C * act);
        m->z[i] = post ? arena_take(a, N * C * act) : NULL;
        m->mean[i] = arena_take(a, N * sizeof(float));
        m->rstd[i] = arena_take(a, N * sizeof(float));
    }
    size_t saved = m->be->ops->attention_saved_bytes(m->be, m->B, m->T, c->n_head);
    for (int l = 0; l < L; l++) {
        m->q[l] = arena_take(a, N * C * act);
        m->k[l] = arena_take(a, N * C * act);
        m->v[l] = arena_take(a, N * C * act);
        m->atty[l] = arena_take(a, N * C * act);
        m->saved[l] = arena_take(a, saved);
        m->gate[l] = arena_take(a, N * F * act);
        m->up[l] = arena_take(a, N * F * act);
        m->hmid[l] = arena_take(a, N * F * act);
    }
    m->final_out = arena_take(a, N * C * act);
    m->final_mean = arena_take(a, N * sizeof(float));
    m->final_rstd = arena_take(a, N * sizeof(float));
    m->logits = arena_take(a, N * V * act);
    m->losses = arena_take(a, N * sizeof(float));
    m->f = arena_take(a, N * C * act);
    void **nc_grads[] = {&m->dstream_a, &m->dstream_b, &m->dn, &m->dz, &m->dq, &m->dk,
                         &m->dv, &m->dq_raw, &m->dk_raw, &m->datty};
    for (size_t i = 0; i < sizeof nc_grads / sizeof nc_grads[0]; i++)
        *nc_grads[i] = arena_take(a, N * C * act);
    m->dgate = arena_take(a, N * F * act);
    m->dup = arena_take(a, N * F * act);
    m->dh = arena_take(a, N * F * act);
    /* the schemes' extras, after everything the plain model lays out */
    int any_out = 0, any_branch = 0;
    for (int i = 0; i < 2 * L; i++) {
        const SublayerSpec *sp = &m->specs[i];
        any_out |= sp->out_norm, any_branch |= sp->branch != BRANCH_NONE;
        m->fpre[i] = sp->out_norm ? arena_take(a, N * C * act) : NULL;
        m->mean2[i] = sp->out_norm ? arena_take(a, N * sizeof(float)) : NULL;
        m->rstd2[i] = sp->out_norm ? arena_take(a, N * sizeof(float)) : NULL;
        m->bin[i] = sp->branch != BRANCH_NONE ? arena_take(a, N * C * act) : NULL;
    }
    int embed = m->specs[0].embed_norm;
    m->embed_raw = embed ? arena_take(a, N * C * act) : NULL;
    m->embed_mean = embed ? arena_take(a, N * sizeof(float)) : NULL;
    m->embed_rstd = embed ? arena_take(a, N * sizeof(float)) : NULL;
    m->dfp = any_out ? arena_take(a, N * C * act) : NULL;
    m->dbr = any_branch ? arena_take(a, N * C * act) : NULL;
}

static int alloc_pointer_arrays(Model *m) {
    const int L = m->cfg.n_layer;
    m->stream = calloc((size_t)(2 * L + 1), sizeof(void *));
    m->normout = calloc((size_t)(2 * L), sizeof(void *));
    m->z = calloc((size_t)(2 * L), sizeof(void *));
    m->mean = calloc((size_t)(2 * L), sizeof(float *));
    m->rstd = calloc((size_t)(2 * L), sizeof(float *));
    m->fpre = calloc((size_t)(2 * L), sizeof(void *));
    m->bin = calloc((size_t)(2 * L), sizeof(void *));
    m->mean2 = calloc((size_t)(2 * L), sizeof(float *));
    m->rstd2 = calloc((size_t)(2 * L), sizeof(float *));
    void ***per_layer[] = {&m->q, &m->k, &m->v, &m->atty, &m->saved, &m->gate, &m->up, &m->hmid};
    int ok = m->stream && m->normout && m->z && m->mean && m->rstd && m->fpre && m->bin &&
             m->mean2 && m->rstd2;
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
        *per_layer[i] = calloc((size_t)L, sizeof(void *));
        ok = ok && *per_layer[i];
    }
    return ok ? 0 : -1;
}

static void free_pointer_arrays(Model *m) {
    void *arrays[] = {m->stream, m->normout, m->z, m->mean, m->rstd, m->q, m->k,
                      m->v, m->atty, m->saved, m->gate, m->up, m->hmid,
                      m->fpre, m->bin, m->mean2, m->rstd2};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) free(arrays[i]);
}

static size_t param_state_bytes(const Backend *be, size_t total) {
    /* compute copy (act), master (when separate), grads, AdamW m and v (f32) */
    return total * be->act_bytes + (be->separate_master ? total * 4 : 0) + 3 * total * 4;
}

void model_destroy(Model *m) {
    if (!m) return;
    Backend *be = m->be;
    void *bufs[] = {m->params, be->separate_master ? m->master : NULL, m->grads, m->adam_m,
                    m->adam_v, m->arena};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) be->ops->release(be, bufs[i]);
    free_pointer_arrays(m);
    param_table_free(&m->table);
    free(m->specs);
    free(m->host_losses);
    free(m);
}

Model *model_create(Backend *be, const ModelConfig *c, const SublayerSpec *specs, int B,
                    char *err, size_t errlen) {
    if (model_config_validate(c, err, errlen) != 0) return NULL;
    if (B < 1 || (long long)B * c->seq_len > INT_MAX) {
        snprintf(err, errlen, "train.batch: must be >= 1 with train.batch x model.seq_len <= "
                 "%d, got %d", INT_MAX, B);
        return NULL;
    }
    Model *m = calloc(1, sizeof *m);
    if (!m) goto oom;
    m->be = be;
    m->cfg = *c;
    m->B = B;
    m->T = c->seq_len;
    m->N = B * c->seq_len;
    m->specs = malloc(sizeof *specs * 2 * (size_t)c->n_layer);
    m->host_losses = malloc(sizeof(float) * (size_t)m->N);
    if (!m->specs || !m->host_losses || alloc_pointer_arrays(m) != 0) goto oom;
    memcpy(m->specs, specs, sizeof *specs * 2 * (size_t)c->n_layer);
    if (param_table_build(c, specs, &m->table) != 0) goto oom;

    const size_t total = m->table.total;
    m->params = be->ops->alloc(be, total * be->act_bytes);
    m->master = be->separate_master ? be->ops->alloc(be, total * 4) : (float *)m->params;
    m->grads = be->ops->alloc(be, total * 4);
    m->adam_m = be->ops->alloc(be, total * 4);
    m->adam_v = be->ops->alloc(be, total * 4);
    Arena a = {NULL, 0};
    plan_activations(m, &a);
    m->arena = be->ops->alloc(be, a.used);
    if (!m->params || !m->master || !m->grads || !m->adam_m || !m->adam_v || !m->arena) goto oom;
    a = (Arena){m->arena, 0};
    plan_activations(m, &a);
    return m;
oom:
    snprintf(err, errlen, "model: out of memory on backend %s (%zu bytes needed)", be->name,
             model_memory_bytes(c, specs, B, be));
    model_destroy(m);
    return NULL;
}

size_t model_memory_bytes(const ModelConfig *c, const SublayerSpec *specs, int B,
                          const Backend *be) {
    Model m = {0};
    m.be = (Backend *)be;
    m.cfg = *c;
    m.specs = (SublayerSpec *)specs;
    m.B = B;
    m.T = c->seq_len;
    m.N = B * c->seq_len;
    ParamTable t;
    if (alloc_pointer_arrays(&m) != 0 || param_table_build(c, specs, &t) != 0) {
        free_pointer_arrays(&m);
        return 0;
    }
    Arena a = {NULL, 0};
    plan_activations(&m, &a);
    size_t bytes = a.used + param_state_bytes(be, t.total);
    free_pointer_arrays(&m);
    param_table_free(&t);
    return bytes;
}

const ModelConfig *model_config(const Model *m) { return &m->cfg; }
const ParamTable *model_params(const Model *m) { return &m->table; }
const SublayerSpec *model_specs(const Model *m) { return m->specs; }
int model_batch(const Model *m) { return m->B; }
Backend *model_backend(const Model *m) { return m->be; }
float *model_grads(Model *m) { return m->grads; }

void model_set_params(Model *m, const float *host) {
    Backend *be = m->be;
    size_t n = m->table.total;
    if (be->separate_master) {
        be->ops->upload(be, m->master, host, n * 4);
        be->ops->master_to_compute(be, m->params, m->master, n);
    } else {
        be->ops->upload_act(be, m->params, host, n);
    }
}

void model_get_params(const Model *m, float *host) {
    m->be->ops->download(m->be, host, m->master, m->table.total * 4);
}

void model_get_grads(const Model *m, float *host) {
    m->be->ops->download(m->be, host, m->grads, m->table.total * 4);
}

void model_get_optimizer_state(const Model *m, float *host_m, float *host_v) {
    m->be->ops->download(m->be, host_m, m->adam_m, m->table.total * 4);
    m->be->ops->download(m->be, host_v, m->adam_v, m->table.total * 4);
}

void model_set_optimizer_state(Model *m, const float *host_m, const float *host_v) {
    m->be->ops->upload(m->be, m->adam_m, host_m, m->table.total * 4);
    m->be->ops->upload(m->be, m->adam_v, host_v, m->table.total * 4);
}

/* ---- parameter access by (kind, layer) ------------------------------------------------ */

typedef struct {
    const void *w; /* act compute weight */
    float *g;      /* f32 gradient */
} ParamRef;

/* The table is built in a fixed order, so a (kind, layer) lookup is a short scan; the
 * pass code asks for at most a dozen per block. Absent parameters (LayerNorm biases under
 * RMSNorm, the final norm when disabled) give {NULL, NULL}. */
static ParamRef param_ref(const Model *m, ParamKind kind, int layer) {
    const ParamTable *t = &m->table;
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        if (p->kind == kind && p->layer == layer)
            return (ParamRef){(const char *)m->params + p->offset * m->be->act_bytes,
                              m->grads + p->offset};
    }
    return (ParamRef){NULL, NULL};
}

/* One norm site (docs/design.md section 3.2): the config's norm, or DyT when the spec's
 * norm_fn says so; out = s * N(in). mean and rstd are written by the norm only. */
static void site_forward(Model *m, NormFn fn, const NormSite *site, int layer, void *out,
                         float *mean, float *rstd, const void *in, float s) {
    Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    const void *w = param_ref(m, site->w, layer).w, *b = param_ref(m, site->b, layer).w;
    if (fn == NORM_FN_DYT)
        be->ops->dyt_forward(be, out, in, param_ref(m, site->a, layer).w, w, b, m->N,
                             c->d_model, s);
    else
        be->ops->norm_forward(be, c->norm, out, mean, rstd, in, w, b, m->N, c->d_model,
                              c->norm_eps, s);
}

/* adds d(in) into din and the site's parameter gradients, given dout */
static void site_backward(Model *m, NormFn fn, const NormSite *site, int layer, void *din,
                          const void *dout, const void *in, const float *mean,
                          const float *rstd, float s) {
    Backend *be = m->be;
    const ModelConfig *c = &m->cfg;
    ParamRef w = param_ref(m, site->w, layer), b = param_ref(m, site->b, layer);
    if (fn == NORM_FN_DYT)
        be->ops->dyt_backward(be, din, param_ref(m, site->a, layer).g, w.g, b.g, dout, in,
                              param_ref(m, site->a, layer).w, w.w, m->N, c->d_model, s);
    else
        be->ops->norm_backward(be, c->norm, din, w.g, b.g, dout, in, w.w, mean, rstd, m->N,
                               c->d_model, s);
}

static int branch_width(const Model *m, const SublayerSpec *sp) {
    return sp->branch == BRANCH_CHANNEL ? m->cfg.d_model : 1;
}

/* ---- forward ------------------------------------------------------------------------ */

/* F of the attention sublayer: f = o(attention(rope(q(in)), rope(k(in)), v(in))) */
static void attention_sublayer_forward(Model *m, int l, const void *in, void *f) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const int N = m->N, C = c->d_model, NH = c->n_head, HS = C / NH;
    op->matmul_forward(be, m->q[l], in, param_ref(m, PARAM_Q, l).w, N, C, C);
    op->matmul_forward(be, m->k[l], in, param_ref(m, PARAM_K, l).w, N, C, C);
    op->matmul_forward(be, m->v[l], in, param_ref(m, PARAM_V, l).w, N, C, C);
    op->rope_forward(be, m->q[l], m->q[l], m->B, m->T, NH, HS, c->rope_theta);
    op->rope_forward(be, m->k[l], m->k[l], m->B, m->T, NH, HS, c->rope_theta);
    op->attention_forward(be, m->atty[l], m->saved[l], m->q[l], m->k[l], m->v[l], m->B, m->T,
                          NH, HS);
    op->matmul_forward(be, f, m->atty[l], param_ref(m, PARAM_O, l).w, N, C, C);
}

/* F of the MLP sublayer: f = down(silu(gate(in)) * up(in)) */
static void mlp_sublayer_forward(Model *m, int l, const void *in, void *f) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const int N = m->N, C = m->cfg.d_model, F = m->cfg.d_ff;
    op->matmul_forward(be, m->gate[l], in, param_ref(m, PARAM_GATE, l).w, N, C, F);
    op->matmul_forward(be, m->up[l], in, param_ref(m, PARAM_UP, l).w, N, C, F);
    op->swiglu_forward(be, m->hmid[l], m->gate[l], m->up[l], (size_t)N * F);
    op->matmul_forward(be, f, m->hmid[l], param_ref(m, PARAM_DOWN, l).w, N, F, C);
}

static void sublayer_forward(Model *m, int i, SkipMask skip) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const SublayerSpec *sp = &m->specs[i];
    const int l = i / 2, s = i % 2, N = m->N, C = c->d_model;
    const size_t NC = (size_t)N * C;
    const void *x = m->stream[i];
    void *y = m->stream[i + 1];
    if (skip && skip[i]) {
        op->copy(be, y, x, NC * be->act_bytes);
        return;
    }
    const NormSite *in_site = &site_in[s];
    if (sp->placement == PLACE_PRE) {
        /* y = r x + lambda * N2(F(s N(x))), N2 and lambda where the spec has them */
        site_forward(m, sp->norm_fn, in_site, l, m->normout[i], m->mean[i], m->rstd[i], x,
                     sp->in_scale);
        void *f = sp->out_norm ? m->fpre[i] : sp->branch != BRANCH_NONE ? m->bin[i] : m->f;
        if (s == SUBLAYER_ATTN) attention_sublayer_forward(m, l, m->normout[i], f);
        else mlp_sublayer_forward(m, l, m->normout[i], f);
        if (sp->out_norm) {
            void *g = sp->branch != BRANCH_NONE ? m->bin[i] : m->f;
            site_forward(m, sp->norm_fn, &site_out[s], l, g, m->mean2[i], m->rstd2[i], f, 1.0f);
            f = g;
        }
        if (sp->branch != BRANCH_NONE) {
            op->branch_scale_forward(be, m->f, m->bin[i], param_ref(m, branch_kind[s], l).w, N,
                                     C, branch_width(m, sp));
            f = m->f;
        }
        op->residual_forward(be, y, x, sp->residual_scale, f, NC);
    } else {
        if (s == SUBLAYER_ATTN) attention_sublayer_forward(m, l, x, m->f);
        else mlp_sublayer_forward(m, l, x, m->f);
        op->residual_forward(be, m->z[i], x, sp->residual_scale, m->f, NC);
        site_forward(m, sp->norm_fn, in_site, l, y, m->mean[i], m->rstd[i], m->z[i],
                     sp->in_scale);
    }
}

double model_forward(Model *m, const int32_t *tokens, const int32_t *targets, SkipMask skip) {
    return model_forward_from(m, 0, tokens, targets, skip);
}

double model_forward_from(Model *m, int first, const int32_t *tokens, const int32_t *targets,
                          SkipMask skip) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const int N = m->N, C = c->d_model, V = c->vocab_size, L = c->n_layer;
    if (first < 0) first = 0;
    if (first > 2 * L) first = 2 * L;
    if (first == 0) {
        op->upload(be, m->tokens, tokens, sizeof(int32_t) * (size_t)N);
        const int embed_norm = m->specs[0].embed_norm;
        op->embedding_forward(be, embed_norm ? m->embed_raw : m->stream[0], m->tokens,
                              param_ref(m, PARAM_EMBED, -1).w, N, C);
        if (embed_norm)
            site_forward(m, m->specs[0].norm_fn, &site_embed, -1, m->stream[0], m->embed_mean,
                         m->embed_rstd, m->embed_raw, 1.0f);
    }
    for (int i = first; i < 2 * L; i++) sublayer_forward(m, i, skip);
    const void *head_in = m->stream[2 * L];
    if (c->final_norm) {
        site_forward(m, m->specs[2 * L - 1].norm_fn, &site_final, -1, m->final_out,
                     m->final_mean, m->final_rstd, head_in, 1.0f);
        head_in = m->final_out;
    }
    op->matmul_forward(be, m->logits, head_in, param_ref(m, PARAM_LM_HEAD, -1).w, N, C, V);
    m->has_targets = targets != NULL;
    if (!targets) return 0.0;
    op->upload(be, m->targets, targets, sizeof(int32_t) * (size_t)N);
    op->crossentropy(be, m->losses, NULL, m->logits, m->targets, N, V, 0.0f);
    op->download(be, m->host_losses, m->losses, sizeof(float) * (size_t)N);
    double sum = 0.0;
    for (int n = 0; n < N; n++) sum += m->host_losses[n];
    return sum / N;
}

/* ---- backward ----------------------------------------------------------------------- */

/* Adds d(in) of the attention sublayer into din, given df; adds weight gradients. */
static void attention_sublayer_backward(Model *m, int l, const void *in, const void *df,
                                        void *din) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const int N = m->N, C = c->d_model, NH = c->n_head, HS = C / NH;
    const size_t bytes = (size_t)N * C * be->act_bytes;
    ParamRef wq = param_ref(m, PARAM_Q, l), wk = param_ref(m, PARAM_K, l),
             wv = param_ref(m, PARAM_V, l), wo = param_ref(m, PARAM_O, l);
    void *zeroed[] = {m->datty, m->dq, m->dk, m->dv, m->dq_raw, m->dk_raw};
    for (size_t i = 0; i < sizeof zeroed / sizeof zeroed[0]; i++) op->zero(be, zeroed[i], bytes);
    op->matmul_backward(be, m->datty, wo.g, df, m->atty[l], wo.w, N, C, C);
    op->attention_backward(be, m->dq, m->dk, m->dv, m->datty, m->saved[l], m->q[l], m->k[l],
                           m->v[l], m->B, m->T, NH, HS);
    op->rope_backward(be, m->dq_raw, m->dq, m->B, m->T, NH, HS, c->rope_theta);
    op->rope_backward(be, m->dk_raw, m->dk, m->B, m->T, NH, HS, c->rope_theta);
    op->matmul_backward(be, din, wq.g, m->dq_raw, in, wq.w, N, C, C);
    op->matmul_backward(be, din, wk.g, m->dk_raw, in, wk.w, N, C, C);
    op->matmul_backward(be, din, wv.g, m->dv, in, wv.w, N, C, C);
}

static void mlp_sublayer_backward(Model *m, int l, const void *in, const void *df, void *din) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const int N = m->N, C = m->cfg.d_model, F = m->cfg.d_ff;
    const size_t bytes = (size_t)N * F * be->act_bytes;
    ParamRef wg = param_ref(m, PARAM_GATE, l), wu = param_ref(m, PARAM_UP, l),
             wd = param_ref(m, PARAM_DOWN, l);
    op->zero(be, m->dh, bytes);
    op->zero(be, m->dgate, bytes);
    op->zero(be, m->dup, bytes);
    op->matmul_backward(be, m->dh, wd.g, df, m->hmid[l], wd.w, N, F, C);
    op->swiglu_backward(be, m->dgate, m->dup, m->dh, m->gate[l], m->up[l], (size_t)N * F);
    op->matmul_backward(be, din, wg.g, m->dgate, in, wg.w, N, C, F);
    op->matmul_backward(be, din, wu.g, m->dup, in, wu.w, N, C, F);
}

static void sublayer_f_backward(Model *m, int i, const void *in, const void *df, void *din) {
    if (i % 2 == SUBLAYER_ATTN) attention_sublayer_backward(m, i / 2, in, df, din);
    else mlp_sublayer_backward(m, i / 2, in, df, din);
}

/* Given dy (gradient of stream[i+1]), writes dx (gradient of stream[i]). */
static void sublayer_backward(Model *m, int i, const void *dy, void *dx, SkipMask skip) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const SublayerSpec *sp = &m->specs[i];
    const int l = i / 2, s = i % 2, N = m->N, C = c->d_model;
    const size_t NC = (size_t)N * C, bytes = NC * be->act_bytes;
    op->zero(be, dx, bytes);
    if (skip && skip[i]) {
        op->scaled_add(be, dx, dy, 1.0f, NC);
        return;
    }
    const NormSite *in_site = &site_in[s];
    const void *x = m->stream[i];
    if (sp->placement == PLACE_PRE) {
        /* y = r x + lambda * N2(F(n)), n = s N(x) */
        op->scaled_add(be, dx, dy, sp->residual_scale, NC);
        const void *df = dy;
        if (sp->branch != BRANCH_NONE) {
            ParamRef lam = param_ref(m, branch_kind[s], l);
            op->zero(be, m->dbr, bytes);
            op->branch_scale_backward(be, m->dbr, lam.g, df, m->bin[i], lam.w, N, C,
                                      branch_width(m, sp));
            df = m->dbr;
        }
        if (sp->out_norm) {
            op->zero(be, m->dfp, bytes);
            site_backward(m, sp->norm_fn, &site_out[s], l, m->dfp, df, m->fpre[i], m->mean2[i],
                          m->rstd2[i], 1.0f);
            df = m->dfp;
        }
        op->zero(be, m->dn, bytes);
        sublayer_f_backward(m, i, m->normout[i], df, m->dn);
        site_backward(m, sp->norm_fn, in_site, l, dx, m->dn, x, m->mean[i], m->rstd[i],
                      sp->in_scale);
    } else {
        /* y = s N(z), z = r x + F(x) */
        op->zero(be, m->dz, bytes);
        site_backward(m, sp->norm_fn, in_site, l, m->dz, dy, m->z[i], m->mean[i], m->rstd[i],
                      sp->in_scale);
        op->scaled_add(be, dx, m->dz, sp->residual_scale, NC);
        sublayer_f_backward(m, i, x, m->dz, dx);
    }
}

void model_zero_grad(Model *m) { m->be->ops->zero(m->be, m->grads, m->table.total * 4); }

void model_backward(Model *m, SkipMask skip) {
    Backend *be = m->be;
    const BackendOps *op = be->ops;
    const ModelConfig *c = &m->cfg;
    const int N = m->N, C = c->d_model, V = c->vocab_size, L = c->n_layer;
    const size_t bytes = (size_t)N * C * be->act_bytes;
    if (!m->has_targets) return;
    /* mean loss: each position's loss weighs 1/N; dlogits overwrite the logits */
    op->crossentropy(be, m->losses, m->logits, m->logits, m->targets, N, V, 1.0f / (float)N);
    ParamRef head = param_ref(m, PARAM_LM_HEAD, -1);
    void *dy = m->dstream_a, *dx = m->dstream_b;
    op->zero(be, dy, bytes);
    if (c->final_norm) {
        op->zero(be, m->dn, bytes);
        op->matmul_backward(be, m->dn, head.g, m->logits, m->final_out, head.w, N, C, V);
        site_backward(m, m->specs[2 * L - 1].norm_fn, &site_final, -1, dy, m->dn,
                      m->stream[2 * L], m->final_mean, m->final_rstd, 1.0f);
    } else {
        op->matmul_backward(be, dy, head.g, m->logits, m->stream[2 * L], head.w, N, C, V);
    }
    for (int i = 2 * L - 1; i >= 0; i--) {
        sublayer_backward(m, i, dy, dx, skip);
        void *t = dy;
        dy = dx;
        dx = t;
    }
    if (m->specs[0].embed_norm) {
        op->zero(be, m->dn, bytes);
        site_backward(m, m->specs[0].norm_fn, &site_embed, -1, m->dn, dy, m->embed_raw,
                      m->embed_mean, m->embed_rstd, 1.0f);
        dy = m->dn;
    }
    op->embedding_backward(be, param_ref(m, PARAM_EMBED, -1).g, dy, m->tokens, N, C);
    m->has_targets = 0; /* the logits now hold gradients */
}

/* ---- optimizer and gradient reductions ----------------------------------------------- */

void model_adamw_step(Model *m, const AdamWArgs *args) {
    Backend *be = m->be;
    const ParamTable *t = &m->table;
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        AdamWArgs a = *args;
        if (p->cols == 0) a.weight_decay = 0.0f; /* norm weights and biases: no decay */
        void *compute = be->separate_master ? (char *)m->params + p->offset * be->act_bytes : NULL;
        be->ops->adamw_update(be, m->master + p->offset, compute, m->grads + p->offset,
                              m->adam_m + p->offset, m->adam_v + p->offset, p->numel, &a);
    }
}

double model_grad_norm_block(const Model *m, int l) {
    const ParamTable *t = &m->table;
    return sqrt(m->be->ops->sumsq_f32(m->be, m->grads + t->layer_begin[l],
                                      t->layer_end[l] - t->layer_begin[l]));
}

double model_grad_norm_total(const Model *m) {
    return sqrt(m->be->ops->sumsq_f32(m->be, m->grads, m->table.total));
}

void model_get_hidden(const Model *m, int l, float *host) {
    m->be->ops->download_act(m->be, host, m->stream[2 * l], (size_t)m->N * m->cfg.d_model);
}

double model_flops_per_token(const ModelConfig *c) {
    const double C = c->d_model, F = c->d_ff, V = c->vocab_size, T = c->seq_len, L = c->n_layer;
    double matmul_params = L * (4.0 * C * C + 3.0 * C * F) + C * V;
    double attention = L * 2.0 * T * C; /* QK^T and AV per token, PaLM appendix B */
    return 6.0 * matmul_params + 6.0 * attention;
}
