/* rope.cu — rotary embedding in Hugging Face LLaMA's rotate_half layout (as kernels/cpu/rope.c):
 * in each head, element i < HS/2 pairs with i + HS/2, angle t * theta^(-2i/HS), t the position.
 *   out[i] = x[i] c - x[i+h] s,  out[i+h] = x[i+h] c + x[i] s;  backward: rotation by -angle.
 * The angle and its cosine/sine are computed in double (as the CPU does) and rounded to fp32.
 * One thread per pair reads both elements before writing, so out == inp is safe. */
#include "common.cuh"

__device__ __forceinline__ void rope_cs(int t, int i, int HS, float theta, float *c, float *s) {
    double inv_freq = pow((double)theta, -2.0 * i / HS);
    double angle = t * inv_freq;
    *c = (float)cos(angle);
    *s = (float)sin(angle);
}

/* one thread per (b, t, h, i < HS/2) */
__global__ void rope_kernel(int backward, bf16 *out, const bf16 *inp, int B, int T, int NH,
                            int HS, float theta) {
    int half = HS / 2;
    size_t total = (size_t)B * T * NH * half;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(idx % half);
        size_t bth = idx / half; /* (b * T + t) * NH + h */
        int t = (int)((bth / NH) % T);
        size_t base = bth * HS;
        float c, s;
        rope_cs(t, i, HS, theta, &c, &s);
        float x1 = ld(inp, base + i), x2 = ld(inp, base + i + half);
        if (!backward) {
            out[base + i] = tobf(x1 * c - x2 * s);
            out[base + i + half] = tobf(x2 * c + x1 * s);
        } else { /* out is dinp: accumulate R^T dout */
            out[base + i] = tobf(ld(out, base + i) + (x1 * c + x2 * s));
            out[base + i + half] = tobf(ld(out, base + i + half) + (x2 * c - x1 * s));
        }
    }
}

static void launch(Backend *be, int backward, void *out, const void *inp, int B, int T, int NH,
                   int HS, float theta) {
    size_t total = (size_t)B * T * NH * (HS / 2);
    if (!total) return;
    unsigned blocks = cu_blocks(total, 256);
    if (blocks > 65535u * 8) blocks = 65535u * 8;
    rope_kernel<<<blocks, 256, 0, cu_stream(be)>>>(backward, (bf16 *)out, (const bf16 *)inp, B,
                                                   T, NH, HS, theta);
    LAUNCH_CHECK("rope_kernel");
}

void cu_rope_forward(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                     float theta) {
    if (out != inp && (HS & 1)) /* odd HS: the last element is not rotated; copy it through */
        cu_copy(be, out, inp, (size_t)B * T * NH * HS * sizeof(bf16));
    launch(be, 0, out, inp, B, T, NH, HS, theta);
}

void cu_rope_backward(Backend *be, void *dinp, const void *dout, int B, int T, int NH, int HS,
                      float theta) {
    launch(be, 1, dinp, dout, B, T, NH, HS, theta);
}
