/* swiglu.c — the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with
 * Swish_1 = SiLU): out = silu(gate) * up, silu(x) = x * sigmoid(x), elementwise.
 * Four elements at a time with the backend's vector exp (cpu_expf4); the tail goes through
 * the same function one lane at a time, so every element is computed the same way. */
#include "cpu_ops.h"

static inline cpu_v4f sigmoid4(cpu_v4f x) { return 1.0f / (1.0f + cpu_expf4(-x)); }

static inline cpu_v4f swiglu4(cpu_v4f g, cpu_v4f u) { return g * sigmoid4(g) * u; }

void cpu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n) {
    (void)be;
    float *o = out;
    const float *g = gate, *u = up;
    const size_t n4 = n / 4 * 4;
#pragma omp parallel for schedule(dynamic, 2048)
    for (size_t i = 0; i < n4; i += 4)
        cpu_v4f_store(o + i, swiglu4(cpu_v4f_load(g + i), cpu_v4f_load(u + i)));
    for (size_t i = n4; i < n; i++) o[i] = swiglu4(cpu_v4f_splat(g[i]), cpu_v4f_splat(u[i]))[0];
}

/* d silu(x)/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 * dgate += dout * up * silu'(gate);   dup += dout * silu(gate) */
static inline void swiglu_bwd4(cpu_v4f d, cpu_v4f g, cpu_v4f u, cpu_v4f *dg, cpu_v4f *du) {
    cpu_v4f sig = sigmoid4(g);
    cpu_v4f silu = g * sig;
    *dg += d * u * sig * (1.0f + g * (1.0f - sig));
    *du += d * silu;
}

void cpu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout,
                         const void *gate, const void *up, size_t n) {
    (void)be;
    float *dg = dgate, *du = dup;
    const float *d = dout, *g = gate, *u = up;
    const size_t n4 = n / 4 * 4;
#pragma omp parallel for schedule(dynamic, 2048)
    for (size_t i = 0; i < n4; i += 4) {
        cpu_v4f dgv = cpu_v4f_load(dg + i), duv = cpu_v4f_load(du + i);
        swiglu_bwd4(cpu_v4f_load(d + i), cpu_v4f_load(g + i), cpu_v4f_load(u + i), &dgv, &duv);
        cpu_v4f_store(dg + i, dgv);
        cpu_v4f_store(du + i, duv);
    }
    for (size_t i = n4; i < n; i++) {
        cpu_v4f dgv = cpu_v4f_splat(dg[i]), duv = cpu_v4f_splat(du[i]);
        swiglu_bwd4(cpu_v4f_splat(d[i]), cpu_v4f_splat(g[i]), cpu_v4f_splat(u[i]), &dgv, &duv);
        dg[i] = dgv[0];
        du[i] = duv[0];
    }
}
