/* swiglu.c — the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with
 * Swish_1 = SiLU): out = silu(gate) * up, silu(x) = x * sigmoid(x), elementwise. */
#include <math.h>

#include "cpu_ops.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void cpu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n) {
    (void)be;
    float *o = out;
    const float *g = gate, *u = up;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) o[i] = g[i] * sigmoidf(g[i]) * u[i];
}

/* d silu(x)/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 * dgate += dout * up * silu'(gate);   dup += dout * silu(gate) */
void cpu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout,
                         const void *gate, const void *up, size_t n) {
    (void)be;
    float *dg = dgate, *du = dup;
    const float *d = dout, *g = gate, *u = up;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float sig = sigmoidf(g[i]);
        float silu = g[i] * sig;
        dg[i] += d[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
        du[i] += d[i] * silu;
    }
}
