/* cpu_ops.h — private declarations shared by the CPU reference backend (every file in kernels/cpu/).
 *
 * Every op here implements the matching BackendOps entry of kernels/backend.h in plain C11
 * fp32 (activations are fp32 on the CPU, so every `void *` act buffer is a float array).
 * Parallelism: OpenMP `parallel for` over independent rows / columns / (batch, head) pairs,
 * never atomics or cross-thread reductions, so that for a fixed thread count every op is
 * bitwise reproducible. Scheduling is dynamic in chunks: what an iteration computes never
 * depends on which thread runs it, and on a shared machine a thread that loses its core
 * would otherwise hold up every barrier for a whole time slice (static schedules ran 2
 * threads at 1/10 of 1 thread's speed beside another busy process). GEMMs go through OpenBLAS cblas_sgemm.
 */
#ifndef NORMBENCH_CPU_OPS_H
#define NORMBENCH_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* Backend-private state (Backend.impl). */
typedef struct {
    int threads;            /* OpenMP thread count (OpenBLAS itself runs single-threaded) */
    float *scratch;         /* per-thread scratch of attention (packed K^T or V^T and dS of
                             * one (b, h) pair), grown lazily */
    size_t scratch_floats;  /* capacity of scratch in floats */
    /* RoPE cos/sin table for positions 0..rope_T-1 of head size rope_HS and base rope_theta:
     * rope_cs[t*HS + i] = cos, rope_cs[t*HS + HS/2 + i] = sin of pair i at position t;
     * rebuilt when a call needs more positions or another (HS, theta) */
    float *rope_cs;
    int rope_T, rope_HS;
    float rope_theta;
} CpuImpl;

/* Returns a scratch area of at least `floats` floats owned by the backend (grown when too
 * small, so steady-state training allocates nothing); NULL when out of memory. */
float *cpu_scratch(Backend *be, size_t floats);

/* rope.c: the backend's RoPE table for (T, HS, theta) (see CpuImpl.rope_cs); NULL when out of
 * memory (the caller then computes the angles itself). */
const float *cpu_rope_table(Backend *be, int T, int HS, float theta);

/* 4-lane fp32 vectors (GCC/Clang vector extensions: SSE2 on x86-64 at the Makefile's flags,
 * NEON elsewhere), for the hand-blocked loops; the compiler does not vectorize loops that
 * call exp or clamp at -O2. Unaligned loads and stores go through memcpy. */
typedef float cpu_v4f __attribute__((vector_size(16)));
typedef int32_t cpu_v4i __attribute__((vector_size(16)));

static inline cpu_v4f cpu_v4f_load(const float *p) {
    cpu_v4f v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
}
static inline void cpu_v4f_store(float *p, cpu_v4f v) { __builtin_memcpy(p, &v, sizeof v); }
static inline cpu_v4f cpu_v4f_splat(float x) { return (cpu_v4f){x, x, x, x}; }
/* a < b ? a : b and a > b ? a : b per lane (b when a is NaN) */
static inline cpu_v4f cpu_v4f_min(cpu_v4f a, cpu_v4f b) {
    cpu_v4i m = a < b;
    return (cpu_v4f)(((cpu_v4i)a & m) | ((cpu_v4i)b & ~m));
}
static inline cpu_v4f cpu_v4f_max(cpu_v4f a, cpu_v4f b) {
    cpu_v4i m = a > b;
    return (cpu_v4f)(((cpu_v4i)a & m) | ((cpu_v4i)b & ~m));
}
static inline float cpu_v4f_hsum(cpu_v4f v) { return (v[0] + v[1]) + (v[2] + v[3]); }
static inline float cpu_v4f_hmax(cpu_v4f v) {
    float a = v[0] > v[1] ? v[0] : v[1], b = v[2] > v[3] ? v[2] : v[3];
    return a > b ? a : b;
}

/* exp(x) per lane in fp32: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (n rounded to
 * nearest with the 1.5*2^23 trick), Cephes' degree-6 polynomial for e^r, and 2^n built from
 * the exponent bits; max relative error 8.3e-8 (1.4 ulp) over [-87, 88]. x is clamped to
 * [-87, 88] first: below, the result stays at ~1.6e-38 instead of going to 0 (negligible
 * wherever it is added to or divides something of order 1: softmax, sigmoid); above, it
 * saturates at ~1.65e38. */
static inline cpu_v4f cpu_expf4(cpu_v4f x) {
    x = cpu_v4f_max(x, cpu_v4f_splat(-87.0f));
    x = cpu_v4f_min(x, cpu_v4f_splat(88.0f));
    const cpu_v4f magic = cpu_v4f_splat(12582912.0f); /* 1.5 * 2^23 */
    cpu_v4f n = (x * 1.44269504088896341f + magic) - magic;
    cpu_v4f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    cpu_v4f p = cpu_v4f_splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    cpu_v4i two_n = (__builtin_convertvector(n, cpu_v4i) + 127) << 23;
    return p * (cpu_v4f)two_n;
}
/* the same function on one value (loop tails) */
static inline float cpu_expf(float x) { return cpu_expf4(cpu_v4f_splat(x))[0]; }

/* One line describing the CPU ("<model name>, <n> hardware threads"); used by
 * backend_describe. */
void cpu_describe(char *out, size_t outlen);
/* Fills `out` with the CPU model name from /proc/cpuinfo ("unknown CPU" when absent). */
void cpu_model_name(char *out, size_t outlen);

/* memory.c */
void *cpu_alloc(Backend *be, size_t bytes);
void cpu_release(Backend *be, void *buf);
void cpu_zero(Backend *be, void *buf, size_t bytes);
void cpu_copy(Backend *be, void *dst, const void *src, size_t bytes);
void cpu_upload(Backend *be, void *dst, const void *host_src, size_t bytes);
void cpu_download(Backend *be, void *host_dst, const void *src, size_t bytes);
void cpu_upload_act(Backend *be, void *dst_act, const float *host_src, size_t n);
void cpu_download_act(Backend *be, float *host_dst, const void *src_act, size_t n);
void cpu_master_to_compute(Backend *be, void *dst_act, const float *src_master, size_t n);
void cpu_synchronize(Backend *be);

/* embedding.c */
void cpu_embedding_forward(Backend *be, void *out, const int32_t *tokens, const void *table,
                           int N, int C);
void cpu_embedding_backward(Backend *be, float *dtable, const void *dout,
                            const int32_t *tokens, int N, int C);

/* matmul.c */
void cpu_matmul_forward(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                        int OC);
void cpu_matmul_backward(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                         const void *w, int N, int IC, int OC);

/* norm.c */
void cpu_norm_forward(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                      const void *inp, const void *weight, const void *bias, int N, int C,
                      float eps, float out_scale);
void cpu_norm_backward(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                       const void *dout, const void *inp, const void *weight,
                       const float *mean, const float *rstd, int N, int C, float out_scale);

/* rope.c */
void cpu_rope_forward(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                      float theta);
void cpu_rope_backward(Backend *be, void *dinp, const void *dout, int B, int T, int NH, int HS,
                       float theta);

/* attention.c */
size_t cpu_attention_saved_bytes(Backend *be, int B, int T, int NH);
void cpu_attention_forward(Backend *be, void *out, void *saved, const void *q, const void *k,
                           const void *v, int B, int T, int NH, int HS);
void cpu_attention_backward(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                            const void *saved, const void *q, const void *k, const void *v,
                            int B, int T, int NH, int HS);

/* swiglu.c */
void cpu_swiglu_forward(Backend *be, void *out, const void *gate, const void *up, size_t n);
void cpu_swiglu_backward(Backend *be, void *dgate, void *dup, const void *dout,
                         const void *gate, const void *up, size_t n);

/* residual.c */
void cpu_residual_forward(Backend *be, void *out, const void *x, float scale, const void *f,
                          size_t n);
void cpu_scaled_add(Backend *be, void *dst, const void *src, float scale, size_t n);

/* crossentropy.c */
void cpu_crossentropy(Backend *be, float *losses, void *dlogits, const void *logits,
                      const int32_t *targets, int N, int V, float dloss);

/* adamw.c */
void cpu_adamw_update(Backend *be, float *master, void *compute, const float *grad, float *m,
                      float *v, size_t n, const AdamWArgs *args);
/* reduce.c */
double cpu_sumsq_f32(Backend *be, const float *x, size_t n);

#endif
