/* embedding.cu — token embedding lookup and its deterministic scatter-add backward.
 *
 * Backward without atomics: the token ids are copied to the host (N int32, once per step)
 * and counting-sorted there, stably, into segments of positions per distinct token. One
 * block per (distinct token, 256-column chunk) then sums its positions' dout rows in
 * position order in fp32 and adds the sum into dtable's row once. The summation order
 * depends only on the tokens, so results are bitwise reproducible for any vocabulary size. */
#include <string.h>

#include "common.cuh"

__global__ void embedding_fwd_kernel(bf16 *__restrict__ out, const int32_t *__restrict__ tokens,
                                     const bf16 *__restrict__ table, int N, int C) {
    size_t total = (size_t)N * C;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        size_t n = idx / C, c = idx % C;
        out[idx] = table[(size_t)tokens[n] * C + c];
    }
}

/* blockIdx.x: distinct token u; blockIdx.y: column chunk */
__global__ void embedding_bwd_kernel(float *__restrict__ dtable, const bf16 *__restrict__ dout,
                                     const int32_t *__restrict__ seg_token,
                                     const int32_t *__restrict__ seg_start,
                                     const int32_t *__restrict__ order, int C) {
    int u = blockIdx.x;
    int c = blockIdx.y * blockDim.x + threadIdx.x;
    if (c >= C) return;
    float acc = 0.0f;
    for (int p = seg_start[u]; p < seg_start[u + 1]; p++)
        acc += ld(dout, (size_t)order[p] * C + c);
    dtable[(size_t)seg_token[u] * C + c] += acc;
}

void cu_embedding_forward(Backend *be, void *out, const int32_t *tokens, const void *table,
                          int N, int C) {
    size_t total = (size_t)N * C;
    if (!total) return;
    const unsigned blocks = cu_grid(total);
    embedding_fwd_kernel<<<blocks, 256, 0, cu_stream(be)>>>((bf16 *)out, tokens,
                                                            (const bf16 *)table, N, C);
    LAUNCH_CHECK("embedding_fwd_kernel");
}

void cu_embedding_backward(Backend *be, float *dtable, const void *dout, const int32_t *tokens,
                           int N, int C) {
    if (N <= 0 || C <= 0) return;
    /* host: tokens | order | seg_token | seg_start (N+1) | counts (max_token + 2) */
    int32_t *tok = (int32_t *)malloc((size_t)N * sizeof(int32_t));
    if (!tok) {
        fprintf(stderr, "normbench: embedding_backward: out of host memory\n");
        abort();
    }
    cu_download(be, tok, tokens, (size_t)N * sizeof(int32_t));
    int32_t maxt = 0;
    for (int n = 0; n < N; n++) {
        if (tok[n] < 0) {
            fprintf(stderr, "normbench: embedding_backward: negative token id %d\n", tok[n]);
            abort();
        }
        if (tok[n] > maxt) maxt = tok[n];
    }
    size_t nidx = (size_t)N * 3 + 1;
    int32_t *h = (int32_t *)malloc((nidx + (size_t)maxt + 2) * sizeof(int32_t));
    if (!h) {
        fprintf(stderr, "normbench: embedding_backward: out of host memory\n");
        abort();
    }
    int32_t *order = h, *seg_token = h + N, *seg_start = h + 2 * (size_t)N,
            *count = h + nidx;
    memset(count, 0, ((size_t)maxt + 2) * sizeof(int32_t));
    for (int n = 0; n < N; n++) count[tok[n] + 1]++;
    for (int32_t t = 0; t <= maxt; t++) count[t + 1] += count[t]; /* count[t] = first slot */
    int U = 0;
    for (int32_t t = 0; t <= maxt; t++) {
        if (count[t + 1] > count[t]) {
            seg_token[U] = t;
            seg_start[U] = count[t];
            U++;
        }
    }
    seg_start[U] = N;
    for (int n = 0; n < N; n++) order[count[tok[n]]++] = n; /* stable: positions in order */

    /* device copy: order[N] | seg_token[U] | seg_start[U+1] */
    size_t ob = cu_align256((size_t)N * 4), tb = cu_align256((size_t)U * 4);
    char *d = (char *)cu_scratch(be, SCRATCH_EMBED, ob + tb + cu_align256(((size_t)U + 1) * 4));
    cu_upload(be, d, order, (size_t)N * 4);
    cu_upload(be, d + ob, seg_token, (size_t)U * 4);
    cu_upload(be, d + ob + tb, seg_start, ((size_t)U + 1) * 4);
    free(h);
    free(tok);
    dim3 grid((unsigned)U, (unsigned)((C + 255) / 256));
    embedding_bwd_kernel<<<grid, 256, 0, cu_stream(be)>>>(
        dtable, (const bf16 *)dout, (const int32_t *)(d + ob), (const int32_t *)(d + ob + tb),
        (const int32_t *)d, C);
    LAUNCH_CHECK("embedding_bwd_kernel");
}
