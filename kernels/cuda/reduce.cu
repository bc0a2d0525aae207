/* reduce.cu — sum of squares of n f32 values in double, deterministic: a fixed grid of
 * SUMSQ_BLOCKS blocks, each thread striding over the input in double, a fixed-order block
 * reduction to one partial per block, and the partials added on the host in block order. */
#include "common.cuh"

enum { SUMSQ_BLOCKS = 256, SUMSQ_THREADS = 256 };

__global__ void sumsq_kernel(double *__restrict__ partial, const float *__restrict__ x,
                             size_t n) {
    __shared__ double s[SUMSQ_THREADS];
    double acc = 0.0;
    for (size_t i = (size_t)blockIdx.x * SUMSQ_THREADS + threadIdx.x; i < n;
         i += (size_t)SUMSQ_BLOCKS * SUMSQ_THREADS) {
        double v = (double)x[i];
        acc += v * v;
    }
    s[threadIdx.x] = acc;
    __syncthreads();
    for (int stride = SUMSQ_THREADS / 2; stride > 0; stride >>= 1) {
        if ((int)threadIdx.x < stride) s[threadIdx.x] += s[threadIdx.x + stride];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = s[0];
}

double cu_sumsq_f32(Backend *be, const float *x, size_t n) {
    if (!n) return 0.0;
    double *dpart = (double *)cu_scratch(be, SCRATCH_REDUCE, SUMSQ_BLOCKS * sizeof(double));
    sumsq_kernel<<<SUMSQ_BLOCKS, SUMSQ_THREADS, 0, cu_stream(be)>>>(dpart, x, n);
    LAUNCH_CHECK("sumsq_kernel");
    double hpart[SUMSQ_BLOCKS];
    cu_download(be, hpart, dpart, sizeof hpart); /* synchronizes */
    double total = 0.0;
    for (int b = 0; b < SUMSQ_BLOCKS; b++) total += hpart[b];
    return total;
}
