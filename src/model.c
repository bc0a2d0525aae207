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

int param_table_build(const ModelConfig *c, ParamTable *t) {
    memset(t, 0, sizeof *t);
    const int L = c->n_layer, C = c->d_model, F = c->d_ff, V = c->vocab_size;
    const int ln = c->norm == NORM_LAYER;
    t->items = calloc((size_t)L * 13 + 8, sizeof *t->items);
    t->layer_begin = calloc((size_t)L, sizeof *t->layer_begin);
    t->layer_end = calloc((size_t)L, sizeof *t->layer_end);
    if (!t->items || !t->layer_begin || !t->layer_end) {
        param_table_free(t);
        return -1;
    }
    char name[96];
    table_add(t, PARAM_EMBED, -1, V, C, "model.embed_tokens.weight");
    for (int l = 0; l < L; l++) {
        t->layer_begin[l] = t->total;
#define LAYER_PARAM(kind, rows, cols, fmt)                               \
    snprintf(name, sizeof name, "model.layers.%d." fmt, l);              \
    table_add(t, kind, l, rows, cols, name)
        LAYER_PARAM(PARAM_NORM_ATTN_W, C, 0, "input_layernorm.weight");
        if (ln) { LAYER_PARAM(PARAM_NORM_ATTN_B, C, 0, "input_layernorm.bias"); }
        LAYER_PARAM(PARAM_Q, C, C, "self_attn.q_proj.weight");
        LAYER_PARAM(PARAM_K, C, C, "self_attn.k_proj.weight");
        LAYER_PARAM(PARAM_V, C, C, "self_attn.v_proj.weight");
        LAYER_PARAM(PARAM_O, C, C, "self_attn.o_proj.weight");
        LAYER_PARAM(PARAM_NORM_MLP_W, C, 0, "post_attention_layernorm.weight");
        if (ln) { LAYER_PARAM(PARAM_NORM_MLP_B, C, 0, "post_attention_layernorm.bias"); }
        LAYER_PARAM(PARAM_GATE, F, C, "mlp.gate_proj.weight");
        LAYER_PARAM(PARAM_UP, F, C, "mlp.up_proj.weight");
        LAYER_PARAM(PARAM_DOWN, C, F, "mlp.down_proj.weight");
#undef LAYER_PARAM
        t->layer_end[l] = t->total;
    }
    if (c->final_norm) {
        table_add(t, PARAM_NORM_FINAL_W, -1, C, 0, "model.norm.weight");
        if (ln) table_add(t, PARAM_NORM_FINAL_B, -1, C, 0, "model.norm.bias");
    }
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

/* Which sublayer a weight belongs to and its role there (for the spec's init gains);
 * sublayer -1 for weights outside the blocks and for norm parameters. */
static const struct { int sublayer, role; } param_kind_site[PARAM_KIND_COUNT] = {
    [PARAM_EMBED] = {-1, 0},          [PARAM_Q] = {SUBLAYER_ATTN, ROLE_Q},
    [PARAM_K] = {SUBLAYER_ATTN, ROLE_K}, [PARAM_V] = {SUBLAYER_ATTN, ROLE_V},
    [PARAM_O] = {SUBLAYER_ATTN, ROLE_O}, [PARAM_GATE] = {SUBLAYER_MLP, ROLE_GATE},
    [PARAM_UP] = {SUBLAYER_MLP, ROLE_UP}, [PARAM_DOWN] = {SUBLAYER_MLP, ROLE_DOWN},
    [PARAM_NORM_ATTN_W] = {-1, 0},    [PARAM_NORM_ATTN_B] = {-1, 0},
    [PARAM_NORM_MLP_W] = {-1, 0},     [PARAM_NORM_MLP_B] = {-1, 0},
    [PARAM_NORM_FINAL_W] = {-1, 0},   [PARAM_NORM_FINAL_B] = {-1, 0},
    [PARAM_LM_HEAD] = {-1, 0},
};

static int param_is_norm_weight(ParamKind k) {
    return k == PARAM_NORM_ATTN_W || k == PARAM_NORM_MLP_W || k == PARAM_NORM_FINAL_W;
}
static int param_is_norm_bias(ParamKind k) {
    return k == PARAM_NORM_ATTN_B || k == PARAM_NORM_MLP_B || k == PARAM_NORM_FINAL_B;
}

/* Initialization (docs/design.md section 3): norm weights 1, biases 0; embedding normal(0,
 * embed_std); block weights per their sublayer's spec: normal(0, init_std * gain) or
 * xavier-normal, std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio 2010, as
 * torch.nn.init.xavier_normal_); LM head normal(0, init_std) with the base std of the
 * first sublayer's spec (all sublayers share it). */
void model_init_params(const ModelConfig *c, const ParamTable *t, const SublayerSpec *specs,
                       uint64_t seed, float *out) {
    for (int i = 0; i < t->count; i++) {
        const ParamInfo *p = &t->items[i];
        float *w = out + p->offset;
        if (param_is_norm_weight(p->kind) || param_is_norm_bias(p->kind)) {
            float value = param_is_norm_weight(p->kind) ? 1.0f : 0.0f;
            for (size_t j = 0; j < p->numel; j++) w[j] = value;
            continue;
        }
        double std;
        int sub = param_kind_site[p->kind].sublayer;
        if (p->kind == PARAM_EMBED) {
            std = c->embed_std;
        } else if (sub < 0) {
            std = specs[0].init_std;
        } else {
            const SublayerSpec *sp = &specs[2 * p->layer + sub];
            double gain = sp->init_gain[param_kind_site[p->kind].role];
            std = sp->init == INIT_XAVIER ? gain * sqrt(2.0 / (double)(p->rows + p->cols))
                                          : gain * sp->init_std;
        }
        uint64_t state = rng_stream(seed, (uint64_t)i + 1);
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
}

static int alloc_pointer_arrays(Model *m) {
    const int L = m->cfg.n_layer;
    m->stream = calloc((size_t)(2 * L + 1), sizeof(void *));
    m->normout = calloc((size_t)(2 * L), sizeof(void *));
    m->z = calloc((size_t)(2 * L), sizeof(void *));
    m->mean = calloc((size_t)(2 * L), sizeof(float *));
    m->rstd = calloc((size_t)(2 * L), sizeof(float *));
    void ***per_layer[] = {&m->q, &m->k, &m->v, &m->atty, &m->saved, &m->gate, &m->up, &m->hmid};
    int ok = m->stream && m->normout && m->z && m->mean && m->rstd;
    for (size_t i = 0; i < sizeof per_layer / sizeof per_layer[0]; i++) {
        *per_layer[i] = calloc((size_t)L, sizeof(void *));
        ok = ok && *per_layer[i];
    }
    return ok ? 0 : -1;
}

static void free_pointer_arrays(Model *m) {
    void *arrays[] = {m->stream, m->normout, m->z, m->mean, m->rstd, m->q, m->k,
                      m->v, m->atty, m->saved, m->gate, m->up, m->hmid};
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
    if (B < 1) {
        snprintf(err, errlen, "train.batch: must be >= 1, got %d", B);
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
    if (param_table_build(c, &m->table) != 0) goto oom;

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
    if (alloc_pointer_arrays(&m) != 0 || param_table_build(c, &t) != 0) {
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

static const ParamKind norm_weight_kind[2] = {PARAM_NORM_ATTN_W, PARAM_NORM_MLP_W};
static const ParamKind norm_bias_kind[2] = {PARAM_NORM_ATTN_B, PARAM_NORM_MLP_B};

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
    const void *nw = param_ref(m, norm_weight_kind[s], l).w;
    const void *nb = param_ref(m, norm_bias_kind[s], l).w;
    if (sp->placement == PLACE_PRE) {
        op->norm_forward(be, c->norm, m->normout[i], m->mean[i], m->rstd[i], x, nw, nb, N, C,
                         c->norm_eps, sp->in_scale);
        if (s == SUBLAYER_ATTN) attention_sublayer_forward(m, l, m->normout[i], m->f);
        else mlp_sublayer_forward(m, l, m->normout[i], m->f);
        op->residual_forward(be, y, x, sp->residual_scale, m->f, NC);
    } else {
        if (s == SUBLAYER_ATTN) attention_sublayer_forward(m, l, x, m->f);
        else mlp_sublayer_forward(m, l, x, m->f);
        op->residual_forward(be, m->z[i], x, sp->residual_scale, m->f, NC);
        op->norm_forward(be, c->norm, y, m->mean[i], m->rstd[i], m->z[i], nw, nb, N, C,
                         c->norm_eps, sp->in_scale);
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
        op->embedding_forward(be, m->stream[0], m->tokens, param_ref(m, PARAM_EMBED, -1).w, N,
                              C);
    }
    for (int i = first; i < 2 * L; i++) sublayer_forward(m, i, skip);
    const void *head_in = m->stream[2 * L];
    if (c->final_norm) {
        op->norm_forward(be, c->norm, m->final_out, m->final_mean, m->final_rstd, head_in,
                         param_ref(m, PARAM_NORM_FINAL_W, -1).w,
                         param_ref(m, PARAM_NORM_FINAL_B, -1).w, N, C, c->norm_eps, 1.0f);
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
    ParamRef nw = param_ref(m, norm_weight_kind[s], l), nb = param_ref(m, norm_bias_kind[s], l);
    const void *x = m->stream[i];
    if (sp->placement == PLACE_PRE) {
        /* y = r x + F(n), n = s N(x) */
        op->scaled_add(be, dx, dy, sp->residual_scale, NC);
        op->zero(be, m->dn, bytes);
        sublayer_f_backward(m, i, m->normout[i], dy, m->dn);
        op->norm_backward(be, c->norm, dx, nw.g, nb.g, m->dn, x, nw.w, m->mean[i], m->rstd[i],
                          N, C, sp->in_scale);
    } else {
        /* y = s N(z), z = r x + F(x) */
        op->zero(be, m->dz, bytes);
        op->norm_backward(be, c->norm, m->dz, nw.g, nb.g, dy, m->z[i], nw.w, m->mean[i],
                          m->rstd[i], N, C, sp->in_scale);
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
        ParamRef fw = param_ref(m, PARAM_NORM_FINAL_W, -1), fb = param_ref(m, PARAM_NORM_FINAL_B, -1);
        op->zero(be, m->dn, bytes);
        op->matmul_backward(be, m->dn, head.g, m->logits, m->final_out, head.w, N, C, V);
        op->norm_backward(be, c->norm, dy, fw.g, fb.g, m->dn, m->stream[2 * L], fw.w,
                          m->final_mean, m->final_rstd, N, C, 1.0f);
    } else {
        op->matmul_backward(be, dy, head.g, m->logits, m->stream[2 * L], head.w, N, C, V);
    }
    for (int i = 2 * L - 1; i >= 0; i--) {
        sublayer_backward(m, i, dy, dx, skip);
        void *t = dy;
        dy = dx;
        dx = t;
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
