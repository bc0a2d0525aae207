/* adamw.c — one AdamW step (Loshchilov & Hutter 2019, Algorithm 2: Adam with bias correction
 * and decoupled weight decay), exactly as kernels/backend.h writes it, on the gradient
 * g = grad_scale * grad (accumulation's 1/k and clipping folded in by the caller):
 *   m = b1 m + (1-b1) g;   v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
 * The bias corrections are computed once in double; the per-element update is fp32, in
 * vec_kernels.h's span (vectorized per instruction set; elementwise and correctly rounded
 * operations, so the same bits at every width). The CPU has no separate compute copy
 * (`compute` is NULL): the model computes on `master`. */
#include <math.h>

#include "cpu_ops.h"

/* Elements per OpenMP work item. */
enum { ADAMW_CHUNK = 16384 };

void cpu_adamw_update(Backend *be, float *master, void *compute, const float *grad, float *m,
                      float *v, size_t n, const AdamWArgs *args) {
    const CpuAdamWConstants k = {
        .b1 = args->beta1, .b2 = args->beta2, .lr = args->lr, .eps = args->eps,
        .wd = args->weight_decay, .grad_scale = args->grad_scale,
        .bc1 = (float)(1.0 - pow((double)args->beta1, args->step)),
        .bc2 = (float)(1.0 - pow((double)args->beta2, args->step)),
    };
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += ADAMW_CHUNK)
        vec->adamw_span(master + i, grad + i, m + i, v + i,
                        n - i < ADAMW_CHUNK ? n - i : ADAMW_CHUNK, &k);
    if (compute && compute != (void *)master) cpu_copy(be, compute, master, n * sizeof(float));
}
