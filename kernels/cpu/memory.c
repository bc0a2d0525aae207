/* memory.c — CPU backend buffers: host memory is device memory, so allocation is an aligned,
 * zero-filled malloc and every transfer is a memcpy (activations are already fp32). */
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"

/* 64-byte alignment: one cache line, and wide enough for any SIMD load OpenBLAS uses. */
enum { CPU_ALIGN = 64 };

void *cpu_alloc(Backend *be, size_t bytes) {
    (void)be;
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;
    if (rounded == 0) rounded = CPU_ALIGN; /* a zero-byte buffer is still a valid buffer */
    if (rounded < bytes) return NULL;      /* overflow */
    void *p = aligned_alloc(CPU_ALIGN, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void cpu_release(Backend *be, void *buf) {
    (void)be;
    free(buf);
}

void cpu_zero(Backend *be, void *buf, size_t bytes) {
    (void)be;
    if (bytes) memset(buf, 0, bytes);
}

void cpu_copy(Backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes && dst != src) memmove(dst, src, bytes);
}

void cpu_upload(Backend *be, void *dst, const void *host_src, size_t bytes) {
    cpu_copy(be, dst, host_src, bytes);
}

void cpu_download(Backend *be, void *host_dst, const void *src, size_t bytes) {
    cpu_copy(be, host_dst, src, bytes);
}

void cpu_upload_act(Backend *be, void *dst_act, const float *host_src, size_t n) {
    cpu_copy(be, dst_act, host_src, n * sizeof(float));
}

void cpu_download_act(Backend *be, float *host_dst, const void *src_act, size_t n) {
    cpu_copy(be, host_dst, src_act, n * sizeof(float));
}

/* The CPU computes on the fp32 master weights directly (separate_master == 0); should a
 * caller still ask, the compute copy is a plain copy. */
void cpu_master_to_compute(Backend *be, void *dst_act, const float *src_master, size_t n) {
    cpu_copy(be, dst_act, src_master, n * sizeof(float));
}

/* Every CPU op has finished when it returns. */
void cpu_synchronize(Backend *be) { (void)be; }
