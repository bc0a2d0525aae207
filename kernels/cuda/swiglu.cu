/* swiglu.cu — SwiGLU (Shazeer 2020): out = silu(gate) * up, silu(g) = g * sigmoid(g);
 * backward adds dgate += dout * up * sigmoid(g) * (1 + g (1 - sigmoid(g))), dup += dout *
 * silu(g). bf16 in and out, fp32 arithmetic. */
#include "common.cuh"

__device__ __forceinline__ float sigmoidf_(float g) { return 1.0f / (1.0f + expf(-g)); }

__global__ void swiglu_fwd_kernel(bf16 *__restrict__ out, const bf16 *__restrict__ gate,
                                  const bf16 *__restrict__ up, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = ld(gate, i);
        out[i] = tobf(g * sigmoidf_(g) * ld(up, i));
    }
}

__global__ void swiglu_bwd_kernel(bf16 *__restrict__ dgate, bf16 *__restrict__ dup,
                                  const bf16 *__restrict__ dout, const bf16 *__restrict__ gate,
                                  const bf16 *__restrict__ up, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float g = ld(gate, i), u = ld(up, i), d = ld(dout, i);
        float s = sigmoidf_(g);
        float silu = g * s;
        dgate[i] = tobf(ld(dgate, i) + d * u * s * (1.0f + g * (1.0f - s)));
        dup[i] = tobf(ld(dup, i) + d * silu);
    }
}

static unsigned grid_for(size_t n) {
    unsigned b = cu_blocks(n, 256);
    return b > 65535u * 8 ? 65535u * 8 : b;
}

void cu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n) {
    if (!n) return;
    swiglu_fwd_kernel<<<grid_for(n), 256, 0, cu_stream(be)>>>((bf16 *)out, (const bf16 *)gate,
                                                             (const bf16 *)up, n);
    LAUNCH_CHECK("swiglu_fwd_kernel");
}

void cu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout, const void *gate,
                        const void *up, size_t n) {
    if (!n) return;
    swiglu_bwd_kernel<<<grid_for(n), 256, 0, cu_stream(be)>>>(
        (bf16 *)dgate, (bf16 *)dup, (const bf16 *)dout, (const bf16 *)gate, (const bf16 *)up, n);
    LAUNCH_CHECK("swiglu_bwd_kernel");
}
