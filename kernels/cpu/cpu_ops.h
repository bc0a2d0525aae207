/* cpu_ops.h — private declarations shared by the CPU reference backend (every file in
 * kernels/cpu/): its state, its helpers (scratch, RoPE table, 16-lane vectors and exp,
 * CPU_ISA_VARIANTS) and the prototypes of its ops, generated from kernels/backend_ops.def.
 *
 * Every op implements the matching entry of kernels/backend_ops.def in plain C11
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

/* The instruction set of the backend's own vector loops (attention, SwiGLU, norms, AdamW):
 * that of the BLAS kernels in use, so the one choice src/cpu_kernels.c makes (and a user's
 * OPENBLAS_CORETYPE) sets both, and Backend.kernels names both. Results are the same bits at
 * every width: the same per-lane operations in the same order, no fused multiply-add
 * (-ffp-contract=off), reductions in fixed trees (test_kernels.c checks every op so built). */
typedef enum { CPU_VECTOR_4 = 0, CPU_VECTOR_AVX2, CPU_VECTOR_AVX512 } CpuVectorIsa;

/* Backend-private state (Backend.impl). */
typedef struct {
    int threads;            /* OpenMP thread count (OpenBLAS itself runs single-threaded) */
    CpuVectorIsa vector_isa;
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

/* The instruction set of the backend's own vector loops (CpuImpl.vector_isa). */
static inline CpuVectorIsa cpu_vector_isa(const Backend *be) {
    return ((const CpuImpl *)be->impl)->vector_isa;
}

/* CPU_ISA_VARIANTS(name, (params), args...): the always_inline function `name`, whose first
 * parameter is the instruction set (a compile-time constant in each copy, so tile shapes can
 * follow it), compiled once per instruction set, and the table name_for_isa[] of the copies
 * indexed by CpuVectorIsa. Off x86 every entry is the plain build. */
#if defined(__x86_64__) || defined(__i386__)
#define CPU_ISA_VARIANTS(NAME, PARAMS, ...)                                                   \
    __attribute__((target("avx512f"))) static void NAME##_avx512 PARAMS {                    \
        NAME(CPU_VECTOR_AVX512, __VA_ARGS__);                                                 \
    }                                                                                         \
    __attribute__((target("avx2"))) static void NAME##_avx2 PARAMS {                         \
        NAME(CPU_VECTOR_AVX2, __VA_ARGS__);                                                   \
    }                                                                                         \
    static void NAME##_plain PARAMS { NAME(CPU_VECTOR_4, __VA_ARGS__); }                      \
    static void (*const NAME##_for_isa[]) PARAMS = {                                          \
        [CPU_VECTOR_4] = NAME##_plain, [CPU_VECTOR_AVX2] = NAME##_avx2,                       \
        [CPU_VECTOR_AVX512] = NAME##_avx512}
#else
#define CPU_ISA_VARIANTS(NAME, PARAMS, ...)                                                   \
    static void NAME##_plain PARAMS { NAME(CPU_VECTOR_4, __VA_ARGS__); }                      \
    static void (*const NAME##_for_isa[]) PARAMS = {                                          \
        [CPU_VECTOR_4] = NAME##_plain, [CPU_VECTOR_AVX2] = NAME##_plain,                      \
        [CPU_VECTOR_AVX512] = NAME##_plain}
#endif

/* Returns a scratch area of at least `floats` floats owned by the backend (grown when too
 * small, so steady-state training allocates nothing); NULL when out of memory. */
float *cpu_scratch(Backend *be, size_t floats);

/* rope.c: the backend's RoPE table for (T, HS, theta) (see CpuImpl.rope_cs); NULL when out of
 * memory (the caller then computes the angles itself). */
const float *cpu_rope_table(Backend *be, int T, int HS, float theta);

/* 16-lane fp32 vectors (GCC/Clang vector extensions), for the loops compiled once per
 * instruction set (attention.c, norm.c, swiglu.c; the compiler does not vectorize loops that
 * call exp or clamp at -O2): the same per-lane operations become one zmm register's
 * (AVX-512), two ymm (AVX2) or four xmm / NEON, so every instruction set gives the same
 * bits. Unaligned loads and stores go through memcpy. Loads, stores and the lane reductions
 * are macros, not functions: a 64-byte vector passed by value outside an AVX-512 function
 * changes the calling convention. */
typedef float cpu_v16f __attribute__((vector_size(64)));
typedef int32_t cpu_v16i __attribute__((vector_size(64)));
#define cpu_v16f_load(p) ({ cpu_v16f v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define cpu_v16f_store(p, v)                                                                  \
    do { cpu_v16f s_ = (v); __builtin_memcpy((p), &s_, sizeof s_); } while (0)
#define cpu_v16f_splat(x) ((cpu_v16f){0} + (float)(x))
/* a > b ? a : b per lane (b when a is NaN) */
#define cpu_v16f_max(a, b)                                                                    \
    ({                                                                                        \
        cpu_v16f a_ = (a), b_ = (b);                                                          \
        cpu_v16i m_ = a_ > b_;                                                                \
        (cpu_v16f)(((cpu_v16i)a_ & m_) | ((cpu_v16i)b_ & ~m_));                               \
    })
/* the sum of the lanes in a fixed tree: lane i + lane i+8, then i + i+4, i + i+2, i + i+1 */
#define cpu_v16f_hsum(v)                                                                      \
    ({                                                                                        \
        cpu_v16f h_ = (v);                                                                    \
        float s_[8];                                                                          \
        for (int i_ = 0; i_ < 8; i_++) s_[i_] = h_[i_] + h_[i_ + 8];                          \
        for (int i_ = 0; i_ < 4; i_++) s_[i_] = s_[i_] + s_[i_ + 4];                          \
        (s_[0] + s_[2]) + (s_[1] + s_[3]);                                                    \
    })
/* the largest lane (lanes holding NaN are never kept) */
#define cpu_v16f_hmax(v)                                                                      \
    ({                                                                                        \
        cpu_v16f h_ = (v);                                                                    \
        float m_ = h_[0];                                                                     \
        for (int i_ = 1; i_ < 16; i_++) m_ = h_[i_] > m_ ? h_[i_] : m_;                       \
        m_;                                                                                   \
    })

/* exp(x) per lane in fp32: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (n rounded to
 * nearest with the 1.5*2^23 trick), Cephes' degree-6 polynomial for e^r, and 2^n built from
 * the exponent bits; max relative error 8.3e-8 (1.4 ulp) over [-87, 88]. x is clamped to
 * [-87, 88] first: below, the result stays at ~1.6e-38 instead of going to 0 (negligible
 * wherever it is added to or divides something of order 1: softmax, sigmoid); above, it
 * saturates at ~1.65e38. One definition for every vector type VF (with its int32 twin VI): the
 * same operations per lane, so 4 and 16 lanes give the same bits. */
#define CPU_EXPF_VEC(VF, VI, x_in)                                                             \
    ({                                                                                         \
        VF x_ = (x_in);                                                                        \
        const VF lo_ = (VF){0} - 87.0f, hi_ = (VF){0} + 88.0f;                                 \
        const VF magic_ = (VF){0} + 12582912.0f; /* 1.5 * 2^23 */                              \
        VI m_ = x_ > lo_;                                                                      \
        x_ = (VF)(((VI)x_ & m_) | ((VI)lo_ & ~m_));                                            \
        m_ = x_ < hi_;                                                                         \
        x_ = (VF)(((VI)x_ & m_) | ((VI)hi_ & ~m_));                                            \
        VF n_ = (x_ * 1.44269504088896341f + magic_) - magic_;                                 \
        VF r_ = x_ - n_ * 0.693359375f;                                                        \
        r_ = r_ - n_ * -2.12194440e-4f;                                                        \
        VF p_ = (VF){0} + 1.9875691500e-4f;                                                    \
        p_ = p_ * r_ + 1.3981999507e-3f;                                                       \
        p_ = p_ * r_ + 8.3334519073e-3f;                                                       \
        p_ = p_ * r_ + 4.1665795894e-2f;                                                       \
        p_ = p_ * r_ + 1.6666665459e-1f;                                                       \
        p_ = p_ * r_ + 5.0000001201e-1f;                                                       \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                                         \
        VI two_n_ = (__builtin_convertvector(n_, VI) + 127) << 23;                             \
        p_ * (VF)two_n_;                                                                       \
    })
#define cpu_expf16(x) CPU_EXPF_VEC(cpu_v16f, cpu_v16i, x)
/* the same function on one value (loop tails), in a 4-lane vector */
typedef float cpu_v4f __attribute__((vector_size(16)));
typedef int32_t cpu_v4i __attribute__((vector_size(16)));
static inline float cpu_expf(float x) {
    cpu_v4f e = CPU_EXPF_VEC(cpu_v4f, cpu_v4i, ((cpu_v4f){x, x, x, x}));
    return e[0];
}

/* One line describing the CPU ("<model name>, <n> hardware threads"); used by
 * backend_describe. */
void cpu_describe(char *out, size_t outlen);
/* Fills `out` with the CPU model name from /proc/cpuinfo ("unknown CPU" when absent). */
void cpu_model_name(char *out, size_t outlen);

/* The ops: one cpu_<op> per entry of kernels/backend_ops.def (its contract is documented
 * there), generated from that list so that a definition whose signature drifts from the
 * interface fails to compile. Each is defined in the file named after its group: memory.c
 * (alloc .. synchronize), embedding.c, matmul.c, norm.c, rope.c, attention.c, swiglu.c,
 * residual.c (residual_forward, scaled_add), crossentropy.c, adamw.c and reduce.c
 * (sumsq_f32). */
#define NB_OP(ret, name, params) ret cpu_##name params;
#include "backend_ops.def"

#endif
