/* dyt.cu — the ops a scheme adds, on CUDA, matching kernels/cpu/dyt.c:
 *   DyT (Zhu et al. 2025):  out = s * (w * tanh(alpha x) + b), alpha a learnable scalar
 *   branch scale (LayerScale per channel, SkipInit one scalar): out = lambda * x
 * bf16 activations and weights, fp32 arithmetic and gradients. Every reduction is
 * deterministic without atomics: rows by one warp each into per-row partials, columns by
 * (32-column tile, row chunk) blocks into per-chunk partials; the partials are then added in
 * a fixed order (chunks in order; rows by one block, strided per thread then a fixed tree). */
#include "common.cuh"

enum { DYT_WARPS = 8, DYT_ROWS_PER_CHUNK = 64, DYT_TILE = 32, DYT_TY = 8, DYT_SUM_THREADS = 256 };

__global__ void dyt_fwd_kernel(bf16 *__restrict__ out, const bf16 *__restrict__ inp,
                               const bf16 *__restrict__ alpha, const bf16 *__restrict__ w,
                               const bf16 *__restrict__ b, int N, int C, float s) {
    float a = ld(alpha, 0);
    size_t n = (size_t)N * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        int c = (int)(i % (size_t)C);
        float y = ld(w, c) * tanhf(a * ld(inp, i)) + (b ? ld(b, c) : 0.0f);
        out[i] = tobf(s * y);
    }
}

/* one warp per row: dinp += k a, row_part[row] = sum_c k x, k = s dout w (1 - t^2) */
__global__ void dyt_bwd_rows_kernel(bf16 *__restrict__ dinp, float *__restrict__ row_part,
                                    const bf16 *__restrict__ dout, const bf16 *__restrict__ inp,
                                    const bf16 *__restrict__ alpha, const bf16 *__restrict__ w,
                                    int N, int C, float s) {
    int row = blockIdx.x * DYT_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    float a = ld(alpha, 0), acc = 0.0f;
    size_t base = (size_t)row * C;
    for (int c = lane; c < C; c += 32) {
        float x = ld(inp, base + c), t = tanhf(a * x);
        float k = s * ld(dout, base + c) * ld(w, c) * (1.0f - t * t);
        dinp[base + c] = tobf(ld(dinp, base + c) + k * a);
        acc += k * x;
    }
    acc = warp_sum(acc);
    if (lane == 0) row_part[row] = acc;
}

/* one warp per row: row_part[row] = sum_c dout x (SkipInit's scalar) */
__global__ void dot_rows_kernel(float *__restrict__ row_part, const bf16 *__restrict__ dout,
                                const bf16 *__restrict__ inp, int N, int C) {
    int row = blockIdx.x * DYT_WARPS + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    float acc = 0.0f;
    size_t base = (size_t)row * C;
    for (int c = lane; c < C; c += 32) acc += ld(dout, base + c) * ld(inp, base + c);
    acc = warp_sum(acc);
    if (lane == 0) row_part[row] = acc;
}

/* one block: *dst += scale * sum_n part[n], in a fixed order */
__global__ void sum_rows_kernel(float *__restrict__ dst, const float *__restrict__ part, int N,
                                float scale) {
    __shared__ float sh[DYT_SUM_THREADS];
    float acc = 0.0f;
    for (int n = threadIdx.x; n < N; n += DYT_SUM_THREADS) acc += part[n];
    sh[threadIdx.x] = acc;
    __syncthreads();
    for (int w = DYT_SUM_THREADS / 2; w > 0; w >>= 1) {
        if ((int)threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) dst[0] += scale * sh[0];
}

/* grid (ceil(C/32), chunks), block (32, 8): per-chunk column sums.
 * dyt: p1 = sum dout tanh(alpha x), p2 = sum dout;  branch (alpha NULL): p1 = sum dout x */
__global__ void col_partial_kernel(float *__restrict__ p1, float *__restrict__ p2,
                                   const bf16 *__restrict__ dout, const bf16 *__restrict__ inp,
                                   const bf16 *__restrict__ alpha, int N, int C,
                                   int rows_per_chunk) {
    __shared__ float s1[DYT_TY][DYT_TILE], s2[DYT_TY][DYT_TILE];
    int c = blockIdx.x * DYT_TILE + threadIdx.x;
    int r0 = blockIdx.y * rows_per_chunk, r1 = min(N, r0 + rows_per_chunk);
    float a = alpha ? ld(alpha, 0) : 0.0f, acc1 = 0.0f, acc2 = 0.0f;
    if (c < C) {
        for (int r = r0 + threadIdx.y; r < r1; r += DYT_TY) {
            float d = ld(dout, (size_t)r * C + c), x = ld(inp, (size_t)r * C + c);
            acc1 += d * (alpha ? tanhf(a * x) : x);
            acc2 += d;
        }
    }
    s1[threadIdx.y][threadIdx.x] = acc1;
    s2[threadIdx.y][threadIdx.x] = acc2;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        float t1 = 0.0f, t2 = 0.0f;
        for (int y = 0; y < DYT_TY; y++) { /* fixed order */
            t1 += s1[y][threadIdx.x];
            t2 += s2[y][threadIdx.x];
        }
        p1[(size_t)blockIdx.y * C + c] = t1;
        if (p2) p2[(size_t)blockIdx.y * C + c] = t2;
    }
}

__global__ void col_final_kernel(float *__restrict__ d1, float *__restrict__ d2,
                                 const float *__restrict__ p1, const float *__restrict__ p2,
                                 int chunks, int C, float s) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float t1 = 0.0f, t2 = 0.0f;
    for (int k = 0; k < chunks; k++) { /* chunks in order */
        t1 += p1[(size_t)k * C + c];
        if (d2) t2 += p2[(size_t)k * C + c];
    }
    d1[c] += s * t1;
    if (d2) d2[c] += s * t2;
}

/* column sums of the weight gradients: d1 (+ d2) += s * per-column sums */
static void column_sums(Backend *be, float *d1, float *d2, const void *dout, const void *inp,
                        const void *alpha, int N, int C, float s, char *scratch, size_t off) {
    int rpc = DYT_ROWS_PER_CHUNK;
    while ((N + rpc - 1) / rpc > 65535) rpc *= 2;
    int chunks = (N + rpc - 1) / rpc;
    size_t pbytes = cu_align256((size_t)chunks * C * sizeof(float));
    float *p1 = (float *)(scratch + off), *p2 = d2 ? (float *)(scratch + off + pbytes) : NULL;
    dim3 grid((unsigned)((C + DYT_TILE - 1) / DYT_TILE), (unsigned)chunks);
    dim3 block(DYT_TILE, DYT_TY);
    col_partial_kernel<<<grid, block, 0, cu_stream(be)>>>(p1, p2, (const bf16 *)dout,
                                                          (const bf16 *)inp,
                                                          (const bf16 *)alpha, N, C, rpc);
    LAUNCH_CHECK("col_partial_kernel");
    col_final_kernel<<<cu_blocks((size_t)C, 256), 256, 0, cu_stream(be)>>>(d1, d2, p1, p2,
                                                                          chunks, C, s);
    LAUNCH_CHECK("col_final_kernel");
}

/* scratch: per-row partials, then two per-chunk column partial arrays */
static char *scheme_scratch(Backend *be, int N, int C, size_t *rows_bytes) {
    int chunks = (N + DYT_ROWS_PER_CHUNK - 1) / DYT_ROWS_PER_CHUNK;
    *rows_bytes = cu_align256((size_t)N * sizeof(float));
    size_t pbytes = cu_align256((size_t)chunks * C * sizeof(float));
    return (char *)cu_scratch(be, SCRATCH_SCHEME, *rows_bytes + 2 * pbytes);
}

void cu_dyt_forward(Backend *be, void *out, const void *inp, const void *alpha,
                    const void *weight, const void *bias, int N, int C, float out_scale) {
    if (N <= 0 || C <= 0) return;
    dyt_fwd_kernel<<<cu_grid((size_t)N * C), 256, 0, cu_stream(be)>>>(
        (bf16 *)out, (const bf16 *)inp, (const bf16 *)alpha, (const bf16 *)weight,
        (const bf16 *)bias, N, C, out_scale);
    LAUNCH_CHECK("dyt_fwd_kernel");
}

void cu_dyt_backward(Backend *be, void *dinp, float *dalpha, float *dweight, float *dbias,
                     const void *dout, const void *inp, const void *alpha, const void *weight,
                     int N, int C, float out_scale) {
    if (N <= 0 || C <= 0) return;
    size_t rows_bytes;
    char *scratch = scheme_scratch(be, N, C, &rows_bytes);
    float *row_part = (float *)scratch;
    dyt_bwd_rows_kernel<<<cu_blocks((size_t)N, DYT_WARPS), DYT_WARPS * 32, 0, cu_stream(be)>>>(
        (bf16 *)dinp, row_part, (const bf16 *)dout, (const bf16 *)inp, (const bf16 *)alpha,
        (const bf16 *)weight, N, C, out_scale);
    LAUNCH_CHECK("dyt_bwd_rows_kernel");
    sum_rows_kernel<<<1, DYT_SUM_THREADS, 0, cu_stream(be)>>>(dalpha, row_part, N, 1.0f);
    LAUNCH_CHECK("sum_rows_kernel");
    column_sums(be, dweight, dbias, dout, inp, alpha, N, C, out_scale, scratch, rows_bytes);
}

__global__ void branch_fwd_kernel(bf16 *__restrict__ out, const bf16 *__restrict__ inp,
                                  const bf16 *__restrict__ scale, int N, int C, int SC) {
    size_t n = (size_t)N * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = tobf(ld(scale, SC == 1 ? 0 : (size_t)(i % (size_t)C)) * ld(inp, i));
}

/* dinp += scale * dout */
__global__ void branch_bwd_dx_kernel(bf16 *__restrict__ dinp, const bf16 *__restrict__ dout,
                                     const bf16 *__restrict__ scale, int N, int C, int SC) {
    size_t n = (size_t)N * C;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dinp[i] = tobf(ld(dinp, i) + ld(scale, SC == 1 ? 0 : (size_t)(i % (size_t)C)) * ld(dout, i));
}

void cu_branch_scale_forward(Backend *be, void *out, const void *inp, const void *scale, int N,
                             int C, int SC) {
    if (N <= 0 || C <= 0) return;
    branch_fwd_kernel<<<cu_grid((size_t)N * C), 256, 0, cu_stream(be)>>>(
        (bf16 *)out, (const bf16 *)inp, (const bf16 *)scale, N, C, SC);
    LAUNCH_CHECK("branch_fwd_kernel");
}

void cu_branch_scale_backward(Backend *be, void *dinp, float *dscale, const void *dout,
                              const void *inp, const void *scale, int N, int C, int SC) {
    if (N <= 0 || C <= 0) return;
    branch_bwd_dx_kernel<<<cu_grid((size_t)N * C), 256, 0, cu_stream(be)>>>(
        (bf16 *)dinp, (const bf16 *)dout, (const bf16 *)scale, N, C, SC);
    LAUNCH_CHECK("branch_bwd_dx_kernel");
    size_t rows_bytes;
    char *scratch = scheme_scratch(be, N, C, &rows_bytes);
    if (SC == 1) {
        float *row_part = (float *)scratch;
        dot_rows_kernel<<<cu_blocks((size_t)N, DYT_WARPS), DYT_WARPS * 32, 0, cu_stream(be)>>>(
            row_part, (const bf16 *)dout, (const bf16 *)inp, N, C);
        LAUNCH_CHECK("dot_rows_kernel");
        sum_rows_kernel<<<1, DYT_SUM_THREADS, 0, cu_stream(be)>>>(dscale, row_part, N, 1.0f);
        LAUNCH_CHECK("sum_rows_kernel");
    } else {
        column_sums(be, dscale, NULL, dout, inp, NULL, N, C, 1.0f, scratch, rows_bytes);
    }
}
