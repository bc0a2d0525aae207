/* residual.c — the scaled residual connection of docs/design.md section 3 (DeepNorm's a*x + F(x),
 * Wang et al. 2022 eq. 1) and its backward, a scaled accumulate. */
#include "cpu_ops.h"

/* out = scale * x + f   (out may alias x or f: element i is read before it is written) */
void cpu_residual_forward(Backend *be, void *out, const void *x, float scale, const void *f,
                          size_t n) {
    (void)be;
    float *o = out;
    const float *xs = x, *fs = f;
#pragma omp parallel for schedule(dynamic, 8192)
    for (size_t i = 0; i < n; i++) o[i] = scale * xs[i] + fs[i];
}

/* dst += scale * src */
void cpu_scaled_add(Backend *be, void *dst, const void *src, float scale, size_t n) {
    (void)be;
    float *d = dst;
    const float *s = src;
#pragma omp parallel for schedule(dynamic, 8192)
    for (size_t i = 0; i < n; i++) d[i] += scale * s[i];
}
