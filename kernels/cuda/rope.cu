/* rope.cu — rotary embedding in Hugging Face LLaMA's rotate_half layout (as kernels/cpu/rope.c):
 * in each head, element i < HS/2 pairs with i + HS/2, angle t * theta^(-2i/HS), t the position.
 *   out[i] = x[i] c - x[i+h] s,  out[i+h] = x[i+h] c + x[i] s;  backward: rotation by -angle.
 * The cos/sin table is built once on the host with the CPU's own rope_angle (double, rounded
 * to fp32), uploaded and kept in the backend state until T grows or (HS, theta) change: the
 * first version evaluated pow/cos/sin in double per element on the device and ran at ~300
 * GB/s on an H100 (bench/results). One thread per pair reads both elements before writing,
 * so out == inp is safe. Index arithmetic is 32-bit: launches are split by batch rows so
 * that each covers fewer than 2^31 pairs. */
#include "common.cuh"
#include "rope_angle.h"

static const float *rope_table(Backend *be, int T, int HS, float theta) {
    CudaState *st = cu_state(be);
    if (st->rope_cs && T <= st->rope_T && HS == st->rope_HS && theta == st->rope_theta)
        return st->rope_cs;
    const int half = HS / 2;
    const size_t bytes = (size_t)T * HS * sizeof(float);
    float *cs = (float *)cu_host_buf(be, bytes);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++)
            rope_angle(t, i, HS, theta, &cs[(size_t)t * HS + i], &cs[(size_t)t * HS + half + i]);
    CUDA_CHECK(cudaStreamSynchronize(st->stream)); /* earlier kernels may read the old table */
    if (st->rope_cs) CUDA_CHECK(cudaFree(st->rope_cs));
    st->rope_cs = NULL;
    CUDA_CHECK(cudaMalloc(&st->rope_cs, bytes));
    cu_upload(be, st->rope_cs, cs, bytes);
    st->rope_T = T;
    st->rope_HS = HS;
    st->rope_theta = theta;
    return st->rope_cs;
}

/* one thread per (row, i < HS/2); row = (b * T + t) * NH + h counted from this launch's
 * first row, and every launch starts at a whole sequence, so t = (row / NH) % T */
__global__ void rope_kernel(int backward, bf16 *__restrict__ out, const bf16 *inp,
                            const float *__restrict__ cs, unsigned pairs, int T, int NH, int HS) {
    const unsigned half = (unsigned)HS / 2;
    for (unsigned idx = blockIdx.x * blockDim.x + threadIdx.x; idx < pairs;
         idx += gridDim.x * blockDim.x) {
        unsigned i = idx % half, row = idx / half;
        unsigned t = (row / (unsigned)NH) % (unsigned)T;
        size_t base = (size_t)row * HS;
        float c = cs[t * HS + i], s = cs[t * HS + half + i];
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
    const size_t per_seq = (size_t)T * NH * (HS / 2); /* pairs per sequence */
    if (!per_seq || B <= 0) return;
    const float *cs = rope_table(be, T, HS, theta);
    cu_by_sequences(B, per_seq, [&](size_t first_pair, size_t pairs) {
        const size_t off = first_pair / (HS / 2) * HS; /* element offset of those sequences */
        rope_kernel<<<cu_grid(pairs), 256, 0, cu_stream(be)>>>(
            backward, (bf16 *)out + off, (const bf16 *)inp + off, cs, (unsigned)pairs, T, NH, HS);
        LAUNCH_CHECK("rope_kernel");
    });
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
