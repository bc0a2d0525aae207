/* swiglu.c — the SwiGLU gate (Shazeer 2020, "GLU Variants Improve Transformer", eq. 6 with
 * Swish_1 = SiLU): out = silu(gate) * up, silu(x) = x * sigmoid(x), elementwise, with the
 * backend's vector exp. The elementwise spans are vec_kernels.h's (one copy per instruction
 * set, the same bits at every width); this file splits the elements over threads. */
#include "cpu_ops.h"

/* Elements per OpenMP work item. */
enum { SWIGLU_CHUNK = 4096 };

void cpu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n) {
    float *o = out;
    const float *g = gate, *u = up;
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK)
        vec->swiglu_forward_span(o + i, g + i, u + i, n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK);
}

/* dgate += dout * up * silu'(gate);   dup += dout * silu(gate) */
void cpu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout,
                         const void *gate, const void *up, size_t n) {
    float *dg = dgate, *du = dup;
    const float *d = dout, *g = gate, *u = up;
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (size_t i = 0; i < n; i += SWIGLU_CHUNK) {
        const size_t len = n - i < SWIGLU_CHUNK ? n - i : SWIGLU_CHUNK;
        vec->swiglu_backward_span(dg + i, du + i, d + i, g + i, u + i, len);
    }
}
