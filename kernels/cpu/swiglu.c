/* swiglu.c — the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with
 * Swish_1 = SiLU): out = silu(gate) * up, silu(x) = x * sigmoid(x), elementwise.
 * Sixteen elements at a time with the backend's vector exp (cpu_expf16), compiled once per
 * instruction set (CPU_ISA_VARIANTS); a tail of fewer than 16 goes through the same block
 * on zero-padded copies, so every element is computed the same way at every width. */
#include <string.h>

#include "cpu_ops.h"

/* Elements per OpenMP work item. */
enum { SWIGLU_CHUNK = 4096 };

/* macro, not function: 16-lane vectors are not passed by value (cpu_ops.h) */
#define SIGMOID16(x) (1.0f / (1.0f + cpu_expf16(-(x))))

/* o[i] = silu(g[i]) * u[i] for i < 16 */
static inline __attribute__((always_inline)) void swiglu_forward_16(float *o, const float *g,
                                                                    const float *u) {
    cpu_v16f gv = cpu_v16f_load(g);
    cpu_v16f_store(o, gv * SIGMOID16(gv) * cpu_v16f_load(u));
}

static inline __attribute__((always_inline)) void swiglu_forward_span(
    const CpuVectorIsa isa, float *o, const float *g, const float *u, size_t n) {
    (void)isa; /* the same code at every width */
    const size_t whole = n / 16 * 16, rest = n - whole;
    for (size_t i = 0; i < whole; i += 16) swiglu_forward_16(o + i, g + i, u + i);
    if (rest) {
        float gt[16] = {0}, ut[16] = {0}, ot[16];
        memcpy(gt, g + whole, rest * sizeof(float));
        memcpy(ut, u + whole, rest * sizeof(float));
        swiglu_forward_16(ot, gt, ut);
        memcpy(o + whole, ot, rest * sizeof(float));
    }
}
CPU_ISA_VARIANTS(swiglu_forward_span, (float *o, const float *g, const float *u, size_t n), o,
                 g, u, n);

void cpu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n) {
    float *o = out;
    const float *g = gate, *u = up;
    const CpuVectorIsa isa = cpu_vector_isa(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK)
        swiglu_forward_span_for_isa[isa](o + i, g + i, u + i,
                                         n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK);
}

/* d silu(x)/dx = sigmoid(x) * (1 + x * (1 - sigmoid(x)))
 * dgate += dout * up * silu'(gate);   dup += dout * silu(gate)   (for i < 16) */
static inline __attribute__((always_inline)) void swiglu_backward_16(
    float *dg, float *du, const float *d, const float *g, const float *u) {
    cpu_v16f dv = cpu_v16f_load(d), gv = cpu_v16f_load(g), uv = cpu_v16f_load(u);
    cpu_v16f sig = SIGMOID16(gv);
    cpu_v16f silu = gv * sig;
    cpu_v16f_store(dg, cpu_v16f_load(dg) + dv * uv * sig * (1.0f + gv * (1.0f - sig)));
    cpu_v16f_store(du, cpu_v16f_load(du) + dv * silu);
}

static inline __attribute__((always_inline)) void swiglu_backward_span(
    const CpuVectorIsa isa, float *dg, float *du, const float *d, const float *g,
    const float *u, size_t n) {
    (void)isa; /* the same code at every width */
    const size_t whole = n / 16 * 16, rest = n - whole;
    for (size_t i = 0; i < whole; i += 16)
        swiglu_backward_16(dg + i, du + i, d + i, g + i, u + i);
    if (rest) {
        float dgt[16] = {0}, dut[16] = {0}, dt[16] = {0}, gt[16] = {0}, ut[16] = {0};
        const size_t bytes = rest * sizeof(float);
        memcpy(dgt, dg + whole, bytes), memcpy(dut, du + whole, bytes);
        memcpy(dt, d + whole, bytes), memcpy(gt, g + whole, bytes), memcpy(ut, u + whole, bytes);
        swiglu_backward_16(dgt, dut, dt, gt, ut);
        memcpy(dg + whole, dgt, bytes), memcpy(du + whole, dut, bytes);
    }
}
CPU_ISA_VARIANTS(swiglu_backward_span,
                 (float *dg, float *du, const float *d, const float *g, const float *u,
                  size_t n),
                 dg, du, d, g, u, n);

void cpu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout,
                         const void *gate, const void *up, size_t n) {
    float *dg = dgate, *du = dup;
    const float *d = dout, *g = gate, *u = up;
    const CpuVectorIsa isa = cpu_vector_isa(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK) {
        const size_t len = n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK;
        swiglu_backward_span_for_isa[isa](dg + i, du + i, d + i, g + i, u + i, len);
    }
}
