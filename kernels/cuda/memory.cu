/* memory.cu — device buffers, host transfers, bf16 <-> fp32 conversions, master_to_compute.
 * Host-side bf16 conversion rounds to nearest even (NaN stays NaN), which is what
 * __float2bfloat16_rn does on the device, so upload_act and master_to_compute agree. */
#include <string.h>

#include "common.cuh"

void *cu_alloc(Backend *be, size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 1;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* out of memory is reported by returning NULL */
        return NULL;
    }
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cu_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
    return p;
}

void cu_release(Backend *be, void *buf) {
    if (!buf) return;
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
    CUDA_CHECK(cudaFree(buf));
}

void cu_zero(Backend *be, void *buf, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(buf, 0, bytes, cu_stream(be)));
}

void cu_copy(Backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes && dst != src)
        CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_stream(be)));
}

void cu_upload(Backend *be, void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, cu_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

void cu_download(Backend *be, void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream(be)));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(be)));
}

static inline uint16_t host_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u && (u & 0x007fffffu)) /* NaN: keep it quiet NaN */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}
static inline float host_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* conversions go through the host staging buffer in chunks of at most 8M elements */
static const size_t kChunk = (size_t)8 << 20;

void cu_upload_act(Backend *be, void *dst_act, const float *host_src, size_t n) {
    uint16_t *stage = (uint16_t *)cu_host_buf(be, (n < kChunk ? n : kChunk) * 2 + 2);
    for (size_t off = 0; off < n; off += kChunk) {
        size_t len = n - off < kChunk ? n - off : kChunk;
        for (size_t i = 0; i < len; i++) stage[i] = host_f32_to_bf16(host_src[off + i]);
        cu_upload(be, (uint16_t *)dst_act + off, stage, len * 2); /* synchronizes */
    }
}

void cu_download_act(Backend *be, float *host_dst, const void *src_act, size_t n) {
    uint16_t *stage = (uint16_t *)cu_host_buf(be, (n < kChunk ? n : kChunk) * 2 + 2);
    for (size_t off = 0; off < n; off += kChunk) {
        size_t len = n - off < kChunk ? n - off : kChunk;
        cu_download(be, stage, (const uint16_t *)src_act + off, len * 2);
        for (size_t i = 0; i < len; i++) host_dst[off + i] = host_bf16_to_f32(stage[i]);
    }
}

__global__ void f32_to_bf16_kernel(bf16 *__restrict__ dst, const float *__restrict__ src,
                                   size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = tobf(src[i]);
}

void cu_master_to_compute(Backend *be, void *dst_act, const float *src_master, size_t n) {
    if (!n) return;
    const unsigned blocks = cu_grid(n);
    f32_to_bf16_kernel<<<blocks, 256, 0, cu_stream(be)>>>((bf16 *)dst_act, src_master, n);
    LAUNCH_CHECK("f32_to_bf16_kernel");
}

void cu_synchronize(Backend *be) { CUDA_CHECK(cudaStreamSynchronize(cu_stream(be))); }
