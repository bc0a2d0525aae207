/* crossentropy.cu — fused softmax cross-entropy, one 256-thread block per row of logits[N,V]
 * (bf16), fp32 math:
 *   losses[n]  = logsumexp(logits[n]) - logits[n, target]            (f32)
 *   dlogits[n] = dloss * (softmax(logits[n]) - onehot(target))       (bf16, written)
 * dlogits may alias logits: the row's max, sum and target logit are all reduced (and a block
 * barrier passed) before any element is written, and each element is read and then written
 * by the same thread. Block reductions combine the per-thread values in a fixed order, so
 * the result is deterministic. An out-of-range target gives a NaN loss (never a wild read). */
#include <math.h>

#include "common.cuh"

enum { CE_THREADS = 256, CE_WARPS = CE_THREADS / 32 };

/* fixed-order block reduction: warp butterflies, then warp 0 over the warp results */
template <bool MAX>
__device__ float block_reduce(float v, float *smem) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = MAX ? warp_max(v) : warp_sum(v);
    __syncthreads(); /* smem may still be read from a previous reduction */
    if (lane == 0) smem[warp] = v;
    __syncthreads();
    float r = lane < CE_WARPS ? smem[lane] : (MAX ? -INFINITY : 0.0f);
    r = MAX ? warp_max(r) : warp_sum(r);
    return r; /* every thread holds the same value */
}

__global__ void crossentropy_kernel(float *losses, bf16 *dlogits, const bf16 *logits,
                                    const int32_t *targets, int V, float dloss) {
    __shared__ float smem[32];
    size_t row = blockIdx.x;
    const bf16 *x = logits + row * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += CE_THREADS) mx = fmaxf(mx, ld(x, j));
    mx = block_reduce<true>(mx, smem);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < V; j += CE_THREADS) sum += expf(ld(x, j) - mx);
    sum = block_reduce<false>(sum, smem);
    int target = targets[row];
    int valid = target >= 0 && target < V;
    float lse = mx + logf(sum);
    float xt = valid ? ld(x, target) : NAN;
    __syncthreads(); /* every thread has read x[target] before any element is overwritten */
    if (threadIdx.x == 0) losses[row] = lse - xt;
    if (dlogits) {
        bf16 *d = dlogits + row * V;
        for (int j = threadIdx.x; j < V; j += CE_THREADS) {
            float p = expf(ld(x, j) - lse);
            d[j] = tobf(dloss * (p - (j == target ? 1.0f : 0.0f)));
        }
    }
}

void cu_crossentropy(Backend *be, float *losses, void *dlogits, const void *logits,
                     const int32_t *targets, int N, int V, float dloss) {
    if (N <= 0 || V <= 0) return;
    crossentropy_kernel<<<(unsigned)N, CE_THREADS, 0, cu_stream(be)>>>(
        losses, (bf16 *)dlogits, (const bf16 *)logits, targets, V, dloss);
    LAUNCH_CHECK("crossentropy_kernel");
}
