/* adamw.c — one AdamW step (Loshchilov & Hutter 2019, Algorithm 2: Adam with bias correction
 * and decoupled weight decay), exactly as kernels/backend.h writes it, on the gradient
 * g = grad_scale * grad (accumulation's 1/k and clipping folded in by the caller):
 *   m = b1 m + (1-b1) g;   v = b2 v + (1-b2) g^2
 *   p -= lr * ( (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + wd * p )
 * The bias corrections are computed once in double; the per-element update is fp32. The CPU
 * has no separate compute copy (`compute` is NULL): the model computes on `master`. */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

void cpu_adamw_update(Backend *be, float *master, void *compute, const float *grad, float *m,
                      float *v, size_t n, const AdamWArgs *args) {
    const float b1 = args->beta1, b2 = args->beta2, lr = args->lr, eps = args->eps,
                wd = args->weight_decay, grad_scale = args->grad_scale;
    const float bc1 = (float)(1.0 - pow((double)b1, args->step));
    const float bc2 = (float)(1.0 - pow((double)b2, args->step));
#pragma omp parallel for schedule(dynamic, 8192)
    for (size_t i = 0; i < n; i++) {
        float g = grad_scale * grad[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float mhat = mi / bc1, vhat = vi / bc2;
        master[i] -= lr * (mhat / (sqrtf(vhat) + eps) + wd * master[i]);
    }
    if (compute && compute != (void *)master) cpu_copy(be, compute, master, n * sizeof(float));
}
