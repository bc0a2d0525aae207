/* norm.cu — RMSNorm / LayerNorm forward and backward with the output scale s applied to the
 * whole normalized output (bias included), matching kernels/cpu/norm.c:
 *   RMSNorm:   out = s * (x * rstd * w),              rstd = 1 / sqrt(mean(x^2) + eps)
 *   LayerNorm: out = s * ((x - mean) * rstd * w + b), rstd = 1 / sqrt(var(x) + eps)
 * One warp per row; row statistics in fp32 (two passes: mean, then the second moment about
 * it). Backward, with xhat = (x - mean) rstd and g = s dout w:
 *   dx = rstd (g - mean(g) [LayerNorm only] - xhat mean(g xhat))       (added to dinp)
 *   dw[c] += s sum_n dout xhat,  db[c] += s sum_n dout
 * The column sums are deterministic without atomics: a grid of (32-column tile, row chunk)
 * blocks writes per-chunk partial sums, and a second kernel adds the chunks in order. */
#include "common.cuh"

/* rows per chunk of the dweight partial sums: 64, doubled while the chunk count would exceed
 * the grid's y limit (65535); it depends only on N, so the summation order does too */
enum { NORM_WARPS = 8, NORM_ROWS_PER_CHUNK = 64, NORM_TILE = 32, NORM_TY = 8 };

__global__ void norm_fwd_kernel(int layer, bf16 *__restrict__ out, float *__restrict__ mean,
                                float *__restrict__ rstd, const bf16 *__restrict__ inp,
                                const bf16 *__restrict__ w, const bf16 *__restrict__ b, int N,
                                int C, float eps, float s) {
    int row = blockIdx.x * NORM_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    const bf16 *x = inp + (size_t)row * C;
    float mu = 0.0f;
    if (layer) {
        float acc = 0.0f;
        for (int c = lane; c < C; c += 32) acc += ld(x, c);
        mu = warp_sum(acc) / (float)C;
    }
    float acc = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float d = ld(x, c) - mu;
        acc += d * d;
    }
    float r = 1.0f / sqrtf(warp_sum(acc) / (float)C + eps);
    if (lane == 0) {
        if (layer && mean) mean[row] = mu;
        rstd[row] = r;
    }
    bf16 *o = out + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float y = (ld(x, c) - mu) * r * ld(w, c);
        if (b) y += ld(b, c);
        o[c] = tobf(s * y);
    }
}

__global__ void norm_bwd_dx_kernel(int layer, bf16 *__restrict__ dinp,
                                   const bf16 *__restrict__ dout, const bf16 *__restrict__ inp,
                                   const bf16 *__restrict__ w, const float *__restrict__ mean,
                                   const float *__restrict__ rstd, int N, int C, float s) {
    int row = blockIdx.x * NORM_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    const bf16 *x = inp + (size_t)row * C, *dy = dout + (size_t)row * C;
    float mu = (layer && mean) ? mean[row] : 0.0f, r = rstd[row];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float g = s * ld(dy, c) * ld(w, c);
        sg += g;
        sgx += g * ((ld(x, c) - mu) * r);
    }
    float mean_g = layer ? warp_sum(sg) / (float)C : 0.0f;
    float mean_gx = warp_sum(sgx) / (float)C;
    bf16 *dx = dinp + (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float g = s * ld(dy, c) * ld(w, c);
        float xhat = (ld(x, c) - mu) * r;
        dx[c] = tobf(ld(dx, c) + r * (g - mean_g - xhat * mean_gx));
    }
}

/* grid (ceil(C/32), chunks), block (32, 8): partial[chunk][c] over the chunk's rows */
__global__ void norm_bwd_partial_kernel(int layer, float *__restrict__ part_w,
                                        float *__restrict__ part_b,
                                        const bf16 *__restrict__ dout,
                                        const bf16 *__restrict__ inp,
                                        const float *__restrict__ mean,
                                        const float *__restrict__ rstd, int N, int C,
                                        int rows_per_chunk) {
    __shared__ float sw[NORM_TY][NORM_TILE], sb[NORM_TY][NORM_TILE];
    int c = blockIdx.x * NORM_TILE + threadIdx.x;
    int r0 = blockIdx.y * rows_per_chunk;
    int r1 = min(N, r0 + rows_per_chunk);
    float aw = 0.0f, ab = 0.0f;
    if (c < C) {
        for (int r = r0 + threadIdx.y; r < r1; r += NORM_TY) {
            float d = ld(dout, (size_t)r * C + c);
            float mu = (layer && mean) ? mean[r] : 0.0f;
            aw += d * ((ld(inp, (size_t)r * C + c) - mu) * rstd[r]);
            ab += d;
        }
    }
    sw[threadIdx.y][threadIdx.x] = aw;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float tw = 0.0f, tb = 0.0f;
        for (int y = 0; y < NORM_TY; y++) { /* fixed order */
            tw += sw[y][threadIdx.x];
            tb += sb[y][threadIdx.x];
        }
        part_w[(size_t)blockIdx.y * C + c] = tw;
        if (part_b) part_b[(size_t)blockIdx.y * C + c] = tb;
    }
}

__global__ void norm_bwd_final_kernel(float *__restrict__ dweight, float *__restrict__ dbias,
                                      const float *__restrict__ part_w,
                                      const float *__restrict__ part_b, int chunks, int C,
                                      float s) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float tw = 0.0f, tb = 0.0f;
    for (int k = 0; k < chunks; k++) { /* chunks in order */
        tw += part_w[(size_t)k * C + c];
        if (dbias) tb += part_b[(size_t)k * C + c];
    }
    dweight[c] += s * tw;
    if (dbias) dbias[c] += s * tb;
}

void cu_norm_forward(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                     const void *inp, const void *weight, const void *bias, int N, int C,
                     float eps, float out_scale) {
    if (N <= 0 || C <= 0) return;
    int layer = kind == NORM_LAYER;
    norm_fwd_kernel<<<cu_blocks((size_t)N, NORM_WARPS), NORM_WARPS * 32, 0, cu_stream(be)>>>(
        layer, (bf16 *)out, mean, rstd, (const bf16 *)inp, (const bf16 *)weight,
        layer ? (const bf16 *)bias : NULL, N, C, eps, out_scale);
    LAUNCH_CHECK("norm_fwd_kernel");
}

void cu_norm_backward(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                      const void *dout, const void *inp, const void *weight, const float *mean,
                      const float *rstd, int N, int C, float out_scale) {
    if (N <= 0 || C <= 0) return;
    int layer = kind == NORM_LAYER;
    if (!layer) dbias = NULL;
    if (dinp) {
        norm_bwd_dx_kernel<<<cu_blocks((size_t)N, NORM_WARPS), NORM_WARPS * 32, 0,
                             cu_stream(be)>>>(layer, (bf16 *)dinp, (const bf16 *)dout,
                                              (const bf16 *)inp, (const bf16 *)weight, mean,
                                              rstd, N, C, out_scale);
        LAUNCH_CHECK("norm_bwd_dx_kernel");
    }
    if (!dweight) return;
    int rpc = NORM_ROWS_PER_CHUNK;
    while ((N + rpc - 1) / rpc > 65535) rpc *= 2;
    int chunks = (N + rpc - 1) / rpc;
    size_t pbytes = cu_align256((size_t)chunks * C * sizeof(float));
    char *scratch = (char *)cu_scratch(be, SCRATCH_NORM, 2 * pbytes);
    float *part_w = (float *)scratch, *part_b = dbias ? (float *)(scratch + pbytes) : NULL;
    dim3 grid((unsigned)((C + NORM_TILE - 1) / NORM_TILE), (unsigned)chunks);
    dim3 block(NORM_TILE, NORM_TY);
    norm_bwd_partial_kernel<<<grid, block, 0, cu_stream(be)>>>(
        layer, part_w, part_b, (const bf16 *)dout, (const bf16 *)inp, mean, rstd, N, C, rpc);
    LAUNCH_CHECK("norm_bwd_partial_kernel");
    norm_bwd_final_kernel<<<cu_blocks((size_t)C, 256), 256, 0, cu_stream(be)>>>(
        dweight, dbias, part_w, part_b, chunks, C, out_scale);
    LAUNCH_CHECK("norm_bwd_final_kernel");
}
