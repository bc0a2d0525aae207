/* backend.h — the op interface every compute backend implements.
 *
 * The model (src/model.c) and the trainer only ever call these ops; they never know whether
 * the CPU reference or the CUDA backend runs them. A backend is a table of function
 * pointers (BackendOps) plus its private state.
 *
 * Buffers. Every `void *` below is a device buffer allocated by `alloc`. Its element type is
 * named in the comment:
 *   act   the backend's activation type: fp32 on the CPU, bf16 on CUDA (Backend.act_bytes);
 *   f32   always fp32 (master parameters, weight gradients, AdamW moments, norm statistics,
 *         losses);
 *   i32   int32 (token ids).
 * On the CPU the compute copy of the weights *is* the fp32 master copy (Backend.
 * separate_master == 0); on CUDA a bf16 copy is kept beside fp32 master weights.
 *
 * Gradient convention. Every backward op ADDS into its gradient outputs (input gradients and
 * parameter gradients alike); the caller zeroes them first. This is what lets one hidden
 * state feed several consumers (q, k and v all read the attention norm's output) without
 * temporary buffers. The only op that overwrites is the fused cross-entropy, whose dlogits
 * may alias the logits.
 *
 * Shapes. N = number of token positions (batch * seq), C = channels, NH heads of HS = C/NH,
 * F = MLP width, V = vocabulary. Row-major throughout. Linear weights are stored [out, in]
 * as in PyTorch / Hugging Face, so y = x W^T.
 *
 * Determinism. For a fixed thread count every op gives bitwise-identical results run to run
 * (no atomics, fixed reduction order); CUDA does so in its deterministic mode.
 */
#ifndef NORMBENCH_BACKEND_H
#define NORMBENCH_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { NORM_RMS = 0, NORM_LAYER = 1 } NormKind;

/* One AdamW step (Loshchilov & Hutter 2019, decoupled weight decay), on the gradient
 * g = grad_scale * grad (grad_scale folds gradient accumulation's 1/k and global-norm
 * clipping into the update, so neither needs a pass of its own):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )                   */
typedef struct {
    float lr, beta1, beta2, eps, weight_decay, grad_scale;
    int step; /* t, 1-based, for bias correction */
} AdamWArgs;

typedef struct Backend Backend;

typedef struct BackendOps {
    /* --- memory ------------------------------------------------------------------------ */
    void *(*alloc)(Backend *be, size_t bytes);  /* zero-filled; NULL when out of memory */
    void (*release)(Backend *be, void *buf);
    void (*zero)(Backend *be, void *buf, size_t bytes);
    void (*copy)(Backend *be, void *dst, const void *src, size_t bytes); /* device to device */
    void (*upload)(Backend *be, void *dst, const void *host_src, size_t bytes);   /* raw bytes */
    void (*download)(Backend *be, void *host_dst, const void *src, size_t bytes); /* raw bytes */
    /* act <-> host fp32, converting when act is not fp32 */
    void (*upload_act)(Backend *be, void *dst_act, const float *host_src, size_t n);
    void (*download_act)(Backend *be, float *host_dst, const void *src_act, size_t n);
    /* refresh the compute copy (act) of n master weights (f32); unused when !separate_master */
    void (*master_to_compute)(Backend *be, void *dst_act, const float *src_master, size_t n);
    void (*synchronize)(Backend *be);

    /* --- ops ----------------------------------------------------------------------------- */
    /* out[N,C] = table[tokens[n], :] */
    void (*embedding_forward)(Backend *be, void *out, const int32_t *tokens, const void *table,
                              int N, int C);
    /* dtable[tokens[n], :] += dout[n, :]   (dtable f32) */
    void (*embedding_backward)(Backend *be, float *dtable, const void *dout,
                               const int32_t *tokens, int N, int C);

    /* out[N,OC] = inp[N,IC] w[OC,IC]^T */
    void (*matmul_forward)(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                           int OC);
    /* dinp[N,IC] += dout w (skipped when dinp is NULL);  dw[OC,IC] += dout^T inp  (dw f32) */
    void (*matmul_backward)(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                            const void *w, int N, int IC, int OC);

    /* out[N,C] = out_scale * N(inp) * weight (+ bias for LayerNorm; bias NULL for RMSNorm).
     * RMSNorm: N(x) = x / sqrt(mean(x^2) + eps)        (Zhang & Sennrich 2019)
     * LayerNorm: N(x) = (x - mean) / sqrt(var + eps)    (Ba et al. 2016), biased variance.
     * mean[N] (LayerNorm only; may be NULL for RMS) and rstd[N] are saved for backward (f32).*/
    void (*norm_forward)(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                         const void *inp, const void *weight, const void *bias, int N, int C,
                         float eps, float out_scale);
    /* dinp += d/dinp, dweight += d/dweight, dbias += d/dbias (dbias NULL for RMSNorm) */
    void (*norm_backward)(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                          const void *dout, const void *inp, const void *weight,
                          const float *mean, const float *rstd, int N, int C, float out_scale);

    /* Rotary embedding (Su et al. 2021) in Hugging Face LLaMA's rotate_half layout: within a
     * head, element i < HS/2 pairs with i + HS/2, angle pos * theta^(-2i/HS).
     * x is [B,T,NH,HS]; out may equal inp (in place). */
    void (*rope_forward)(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                         float theta);
    /* dinp += R^T dout  (dinp must not alias dout) */
    void (*rope_backward)(Backend *be, void *dinp, const void *dout, int B, int T, int NH, int HS,
                          float theta);

    /* Causal softmax attention, scale 1/sqrt(HS). q,k,v,out are [B,T,NH*HS]; `saved` is a
     * backend-private buffer of attention_saved_bytes(B,T,NH) bytes written by forward and
     * read by backward (the CPU keeps the probabilities). */
    size_t (*attention_saved_bytes)(Backend *be, int B, int T, int NH);
    void (*attention_forward)(Backend *be, void *out, void *saved, const void *q, const void *k,
                              const void *v, int B, int T, int NH, int HS);
    void (*attention_backward)(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                               const void *saved, const void *q, const void *k, const void *v,
                               int B, int T, int NH, int HS);

    /* SwiGLU (Shazeer 2020): out = silu(gate) * up, elementwise over n */
    void (*swiglu_forward)(Backend *be, void *out, const void *gate, const void *up, size_t n);
    void (*swiglu_backward)(Backend *be, void *dgate, void *dup, const void *dout,
                            const void *gate, const void *up, size_t n);

    /* out = scale * x + f  (out may alias f or x) */
    void (*residual_forward)(Backend *be, void *out, const void *x, float scale, const void *f,
                             size_t n);
    /* dst += scale * src (the backward of residual_forward, for both of its inputs) */
    void (*scaled_add)(Backend *be, void *dst, const void *src, float scale, size_t n);

    /* Fused softmax cross-entropy over rows of logits[N,V] with int32 targets:
     * losses[n] = -log softmax(logits[n])[targets[n]]   (f32)
     * dlogits[n] = dloss * (softmax(logits[n]) - onehot(targets[n]))  (written, not added;
     * may alias logits; NULL for forward only). */
    void (*crossentropy)(Backend *be, float *losses, void *dlogits, const void *logits,
                         const int32_t *targets, int N, int V, float dloss);

    /* AdamW on n fp32 master weights; also refreshes the act compute copy when the backend
     * keeps one (compute == NULL otherwise). */
    void (*adamw_update)(Backend *be, float *master, void *compute, const float *grad, float *m,
                         float *v, size_t n, const AdamWArgs *args);

    /* sum of squares of n f32 values, accumulated in double (gradient norms) */
    double (*sumsq_f32)(Backend *be, const float *x, size_t n);
} BackendOps;

struct Backend {
    const BackendOps *ops;
    const char *name;     /* "cpu", "cuda" */
    size_t act_bytes;     /* bytes per activation element: 4 (fp32) or 2 (bf16) */
    int separate_master;  /* 1 when compute weights are a copy of the fp32 master weights */
    char device[128];     /* human-readable device description, e.g. CPU model or GPU name */
    char kernels[64];     /* the GEMM kernels in use: "OpenBLAS SkylakeX", "cuBLASLt" (run
                             files and bench results record it; src/cpu_kernels.c chooses the
                             CPU's) */
    double peak_flops;    /* dense peak FLOP/s of the compute type, 0 when unknown */
    void *impl;           /* backend-private state */
};

/* Creates the backend called `name` ("cpu", "cuda", or "auto": CUDA when a device exists,
 * else CPU). `threads` <= 0 means the library default. Returns NULL and fills err. */
Backend *backend_create(const char *name, int threads, char *err, size_t errlen);
void backend_destroy(Backend *be);
/* One line per compiled-in backend, with its availability on this machine. */
void backend_describe(char *out, size_t outlen);

/* Per-backend constructors, used by backend_create. */
Backend *cpu_backend_create(int threads, char *err, size_t errlen);
void cpu_backend_destroy(Backend *be);
#ifdef NB_HAVE_CUDA
Backend *cuda_backend_create(int threads, char *err, size_t errlen);
void cuda_backend_destroy(Backend *be);
int cuda_device_count(void);
void cuda_describe(char *out, size_t outlen);
#endif

#endif
