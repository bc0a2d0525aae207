/* backend.h — the op interface every compute backend implements.
 *
 * The model (src/model.c) and the trainer only ever call these ops; they never know whether
 * the CPU reference or the CUDA backend runs them. A backend is a table of function
 * pointers (BackendOps) plus its private state.
 *
 * This header owns the conventions every op follows (below), the types the ops take, the
 * Backend handle and backend creation. The ops themselves, each with its contract, are
 * listed once in backend_ops.def; BackendOps, both backends' prototypes (cpu_<op>, cu_<op>)
 * and both backends' tables are generated from that list.
 *
 * Buffers. Every `void *` of an op is a device buffer allocated by `alloc`. Its element type
 * is named in the op's comment:
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
    /* train.precision: bf16_pure (CUDA only; the CPU backend is never asked, config.c and
     * run.c refuse it). Master weights, m and v then hold bf16 values (stored in their f32
     * buffers, rounded to bf16 after every operation), updated as torch.optim.Adam's
     * multi-tensor step updates bf16 tensors (torch/optim/adam.py, _multi_tensor_adam:
     * each foreach op computes in fp32 and rounds its result to bf16), the releases' optimizer
     * (model.to(bfloat16) + torch.optim.Adam in torchrun_main.py):
     *   g = bf16(grad_scale * grad);  p = bf16(p)  (the weights were rounded when cast)
     *   p = bf16(p * (1 - lr wd))                            (decoupled decay, when wd > 0)
     *   m = bf16(m + (1-b1) (g - m))                         (_foreach_lerp_)
     *   v = bf16(bf16(b2 v) + (1-b2) g g)                    (_foreach_mul_, _foreach_addcmul_)
     *   d = bf16(bf16(bf16(sqrt v) / sqrt(1-b2^t)) + eps)    (_foreach_sqrt, _div_, _add_)
     *   p = bf16(p + (-lr / (1-b1^t)) (m / d))                (_foreach_addcdiv_)
     * with 1-b1^t, sqrt(1-b2^t) and -lr/(1-b1^t) computed in double, then used in fp32.
     * This is torch 2.x's foreach Adam (the default on CUDA); the releases pin no torch
     * version (requirements.txt: `torch`; exp_requirements.txt: transformers==4.31.0, of
     * mid-2023). torch 1.x's single-tensor step rounded m twice (mul_, add_) instead. */
    int bf16_pure;
} AdamWArgs;

typedef struct Backend Backend;

/* The op table: one function pointer per entry of backend_ops.def, in its order. Each op's
 * contract is documented beside its entry there. */
typedef struct BackendOps {
#define NB_OP(ret, name, params) ret(*name) params;
#include "backend_ops.def"
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
