/* adamw.c — one AdamW step (Loshchilov & Hutter 2019, Algorithm 2: Adam with bias correction
 * and decoupled weight decay), exactly as kernels/backend.h writes it, on the gradient
 * g = grad_scale * grad (accumulation's 1/k and clipping folded in by the caller):
 *   m = b1 m + (1-b1) g;   v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
 * The bias corrections are computed once in double; the per-element update is fp32, in
 * vectors (`omp simd`, compiled per instruction set by CPU_ISA_VARIANTS): elementwise and
 * correctly rounded operations, so the same bits at every width. The CPU has no separate
 * compute copy (`compute` is NULL): the model computes on `master`. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

/* Elements per OpenMP work item. */
enum { ADAMW_CHUNK = 16384 };

typedef struct {
    float b1, b2, lr, eps, wd, grad_scale, bc1, bc2;
} AdamWConstants;

static inline __attribute__((always_inline)) void adamw_span(
    const CpuVectorIsa isa, float *restrict master, const float *restrict grad,
    float *restrict m, float *restrict v, size_t n, const AdamWConstants *k) {
    (void)isa; /* the same code at every width */
    const float b1 = k->b1, b2 = k->b2, lr = k->lr, eps = k->eps, wd = k->wd,
                grad_scale = k->grad_scale, bc1 = k->bc1, bc2 = k->bc2;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float g = grad_scale * grad[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        master[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * master[i]);
    }
}
CPU_ISA_VARIANTS(adamw_span,
                 (float *restrict master, const float *restrict grad, float *restrict m,
                  float *restrict v, size_t n, const AdamWConstants *k),
                 master, grad, m, v, n, k);

void cpu_adamw_update(Backend *be, float *master, void *compute, const float *grad, float *m,
                      float *v, size_t n, const AdamWArgs *args) {
    const AdamWConstants k = {
        .b1 = args->beta1, .b2 = args->beta2, .lr = args->lr, .eps = args->eps,
        .wd = args->weight_decay, .grad_scale = args->grad_scale,
        .bc1 = (float)(1.0 - pow((double)args->beta1, args->step)),
        .bc2 = (float)(1.0 - pow((double)args->beta2, args->step)),
    };
    const CpuVectorIsa isa = cpu_vector_isa(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += ADAMW_CHUNK)
        adamw_span_for_isa[isa](master + i, grad + i, m + i, v + i,
                                n - i < ADAMW_CHUNK ? n - i : ADAMW_CHUNK, &k);
    if (compute && compute != (void *)master) cpu_copy(be, compute, master, n * sizeof(float));
}
