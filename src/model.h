/* model.h — the LLaMA-style decoder of docs/design.md section 3 on any backend.
 *
 * Owns: the shape (ModelConfig), the parameter table (every tensor's Hugging Face name,
 * shape and offset in ONE contiguous buffer, including the parameters a scheme adds: DyT's
 * alpha, second norms, branch scales), seeded initialization per scheme, and the
 * forward and backward passes, which call only kernels/backend.h ops. The normalization
 * scheme enters only through the SublayerSpec table built by schemes.c.
 */
#ifndef NORMBENCH_MODEL_H
#define NORMBENCH_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "schemes.h"

typedef struct {
    int n_layer, d_model, n_head, d_ff, vocab_size, seq_len;
    NormKind norm;      /* RMSNorm by default */
    float norm_eps;     /* 1e-6 */
    float rope_theta;   /* 10000 */
    int final_norm;     /* 1: final norm before the LM head */
    float embed_std;    /* 0.02 */
} ModelConfig;

void model_config_default(ModelConfig *c);
/* 0, or -1 with a message naming the offending field (model.<field>: what is wrong). */
int model_config_validate(const ModelConfig *c, char *err, size_t errlen);

/* Parameter kinds. The first fifteen are the LLaMA model's (Hugging Face names); the rest
 * exist only under the schemes whose specs ask for them (docs/design.md section 3.6):
 *   *_A        DyT's alpha [1] (`<norm>.alpha`; gamma and beta are `<norm>.weight`/`.bias`)
 *   ONORM_*    the second norm on a branch's output (sandwich_ln, peri_ln):
 *              model.layers.N.{attn,mlp}_output_layernorm.{weight,bias,alpha}
 *   NORM_EMBED_*  the norm of the embedding output (peri_ln): model.embed_layernorm.*
 *   BRANCH_*   the learnable branch scale (layerscale [C], skipinit [1]):
 *              model.layers.N.self_attn.branch_scale, model.layers.N.mlp.branch_scale */
typedef enum {
    PARAM_EMBED, PARAM_Q, PARAM_K, PARAM_V, PARAM_O, PARAM_GATE, PARAM_UP, PARAM_DOWN,
    PARAM_NORM_ATTN_W, PARAM_NORM_ATTN_B, PARAM_NORM_MLP_W, PARAM_NORM_MLP_B,
    PARAM_NORM_FINAL_W, PARAM_NORM_FINAL_B, PARAM_LM_HEAD,
    PARAM_NORM_ATTN_A, PARAM_NORM_MLP_A, PARAM_NORM_FINAL_A,
    PARAM_ONORM_ATTN_W, PARAM_ONORM_ATTN_B, PARAM_ONORM_ATTN_A,
    PARAM_ONORM_MLP_W, PARAM_ONORM_MLP_B, PARAM_ONORM_MLP_A,
    PARAM_NORM_EMBED_W, PARAM_NORM_EMBED_B, PARAM_NORM_EMBED_A,
    PARAM_BRANCH_ATTN, PARAM_BRANCH_MLP, PARAM_KIND_COUNT
} ParamKind;

typedef struct {
    char name[96];      /* Hugging Face LLaMA name, e.g. model.layers.3.self_attn.q_proj.weight */
    ParamKind kind;
    int layer;          /* 0-based block index, -1 outside blocks */
    int rows, cols;     /* [out, in] for linear weights; cols = 0 for vectors */
    size_t offset;      /* in elements from the start of the parameter buffer */
    size_t numel;
} ParamInfo;

typedef struct {
    ParamInfo *items;
    int count;
    size_t total;       /* total number of parameters */
    size_t *layer_begin, *layer_end; /* [n_layer] element range of block l (0-based) */
} ParamTable;

/* Builds the table for a config and a scheme table (2L specs; NULL = the plain LLaMA
 * model, no scheme parameters). Returns 0, or -1 when out of memory. */
int param_table_build(const ModelConfig *c, const SublayerSpec *specs, ParamTable *t);
void param_table_free(ParamTable *t);
const ParamInfo *param_table_find(const ParamTable *t, const char *name);

/* Initializes host fp32 parameters `out[t->total]` deterministically from `seed`: each
 * tensor draws from its own counter-based stream (seed, tensor index), so the values of a
 * tensor do not depend on the thread count or on which other tensors exist. */
void model_init_params(const ModelConfig *c, const ParamTable *t, const SublayerSpec *specs,
                       uint64_t seed, float *out);

typedef struct Model Model;

/* Creates the model for batch size B on backend `be`, with the given scheme table
 * (2*L specs, copied). Parameters start at zero; load them with model_set_params. Returns
 * NULL with err filled on failure (out of memory, bad config). */
Model *model_create(Backend *be, const ModelConfig *c, const SublayerSpec *specs, int B,
                    char *err, size_t errlen);
void model_destroy(Model *m);

const ModelConfig *model_config(const Model *m);
const ParamTable *model_params(const Model *m);
const SublayerSpec *model_specs(const Model *m);
int model_batch(const Model *m);
/* The backend the model lives on, and its f32 gradient buffer (model_params(m)->total
 * floats on that backend, in parameter-table order): src/dist.c sums it across ranks. */
Backend *model_backend(const Model *m);
float *model_grads(Model *m);

/* host fp32 <-> model master parameters (t->total floats) */
void model_set_params(Model *m, const float *host);
void model_get_params(const Model *m, float *host);
void model_get_grads(const Model *m, float *host);

/* Skip mask for pruning probes: skip[2*l + s] != 0 replaces sublayer s of block l (0-based)
 * by the identity. NULL skips nothing. */
typedef const unsigned char *SkipMask;

/* Forward over tokens/targets [B, T] (host int32; T = seq_len; targets may be NULL, in which
 * case no loss is computed). Returns the mean cross-entropy in nats (0 without targets).
 * Keeps every activation needed by model_backward. */
double model_forward(Model *m, const int32_t *tokens, const int32_t *targets, SkipMask skip);
/* model_forward from sublayer `first` (0..2L) on: the residual stream entering sublayers
 * 0..first is not recomputed but read from the activations left in the model, which must be
 * those of a forward over the same tokens with nothing skipped before `first` (a forward
 * that started later than `first` leaves them intact). Pruning (metrics_prune) evaluates
 * every variant from its first removed sublayer this way: the same losses as full forwards,
 * bit for bit, at about half the cost. `tokens` is read only when first == 0. */
double model_forward_from(Model *m, int first, const int32_t *tokens, const int32_t *targets,
                          SkipMask skip);

/* Backward of the last forward (which must have had targets): adds the gradient of the
 * mean loss into the gradient buffer. Call model_zero_grad first for a fresh gradient. */
void model_backward(Model *m, SkipMask skip);
void model_zero_grad(Model *m);

/* One AdamW step over all parameters. Weight decay applies to the matrices (embedding,
 * projections, LM head) and not to norm weights and biases, as in GPT-2 / LLaMA practice. */
void model_adamw_step(Model *m, const AdamWArgs *args);
/* host access to the AdamW moments (for checkpoints): 2 * total floats, m then v */
void model_get_optimizer_state(const Model *m, float *host_m, float *host_v);
void model_set_optimizer_state(Model *m, const float *host_m, const float *host_v);

/* L2 norm of the gradient of block l (0-based), and of all parameters. */
double model_grad_norm_block(const Model *m, int l);
double model_grad_norm_total(const Model *m);

/* Hidden state h_l (l = 0..L; h_0 = embeddings, h_L = output of the last block before the
 * final norm) of the last forward, copied to host fp32 [B*T, C]. */
void model_get_hidden(const Model *m, int l, float *host);

/* Bytes the model allocates on its backend (parameters, grads, optimizer, activations). */
size_t model_memory_bytes(const ModelConfig *c, const SublayerSpec *specs, int B,
                          const Backend *be);
/* Matmul FLOPs per token of one training step (forward + backward = 3x forward), counting
 * the attention score and value products, as in the PaLM appendix B convention. */
double model_flops_per_token(const ModelConfig *c);

#endif
