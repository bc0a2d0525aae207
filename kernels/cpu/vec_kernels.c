/* vec_kernels.c — the CPU backend's own vector loops (attention's products and softmax,
 * SwiGLU, RMSNorm/LayerNorm, AdamW), compiled once per instruction set from one source
 * (vec_kernels.h) with that instruction set's native vectors: AVX-512 (16 fp32 lanes), AVX2
 * (8) and the plain build (4: SSE2 on x86-64, NEON elsewhere). The op files (attention.c,
 * swiglu.c, norm.c, adamw.c) own the ops' blocking and parallel loops and call these through
 * cpu_vec(be), the copy of CpuImpl.vector_isa. Every copy gives the same bits (see the
 * header of vec_kernels.h). */
#include <math.h>
#include <string.h>

#include "cpu_ops.h"

/* Operations on this copy's native vectors (VF, VI, VD, VFD are defined per copy below).
 * Unaligned loads and stores go through memcpy. */
#define VLOAD(p) ({ VF v_; memcpy(&v_, (p), sizeof v_); v_; })
#define VSTORE(p, v) do { VF s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define VSPLAT(x) ((VF){0} + (float)(x))
/* a > b ? a : b per lane (b when a is NaN) */
#define VMAX(a, b)                                                                            \
    ({                                                                                        \
        VF a_ = (a), b_ = (b);                                                                \
        VI m_ = a_ > b_;                                                                      \
        (VF)(((VI)a_ & m_) | ((VI)b_ & ~m_));                                                 \
    })
#define VEXP(x) CPU_EXPF_VEC(VF, VI, x)
/* VDL floats at p, widened to double */
#define VLOAD_WIDE(p) ({ VFD f_; memcpy(&f_, (p), sizeof f_); __builtin_convertvector(f_, VD); })

/* The fixed trees of the logical partial sums. */
static inline float cpu_sum16(const float l[16]) {
    float s[8];
    for (int i = 0; i < 8; i++) s[i] = l[i] + l[i + 8];
    for (int i = 0; i < 4; i++) s[i] = s[i] + s[i + 4];
    return (s[0] + s[2]) + (s[1] + s[3]);
}
static inline double cpu_sum32d(const double l[32]) {
    double t[8];
    for (int i = 0; i < 8; i++) t[i] = (l[i] + l[i + 8]) + (l[i + 16] + l[i + 24]);
    return ((t[0] + t[4]) + (t[2] + t[6])) + ((t[1] + t[5]) + (t[3] + t[7]));
}
/* the largest of 16 values (NaN is never kept: the lanes hold maxima that skipped it) */
static inline float cpu_max16(const float l[16]) {
    float m = l[0];
    for (int i = 1; i < 16; i++) m = l[i] > m ? l[i] : m;
    return m;
}

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
typedef float v2f __attribute__((vector_size(8)));
typedef double v8d __attribute__((vector_size(64)));
typedef double v4d __attribute__((vector_size(32)));
typedef double v2d __attribute__((vector_size(16)));

#define VEC_CAT_(a, b) a##_##b
#define VEC_CAT(a, b) VEC_CAT_(a, b)

/* The plain build. Tile: 2 rows x 4 vectors, 8 of the 16 registers. */
#define VEC_FN(name) VEC_CAT(name, plain)
#define VEC_TARGET
#define VF v4f
#define VI v4i
#define VL 4
#define VD v2d
#define VFD v2f
#define VDL 2
#define VEC_ROWS 2
#define VEC_NVEC 4
#include "vec_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
/* AVX2 (without FMA: multiplies and adds stay separate). Tile: 4 rows x 2 ymm, 8 of 16. */
#define VEC_FN(name) VEC_CAT(name, avx2)
#define VEC_TARGET __attribute__((target("avx2")))
#define VF v8f
#define VI v8i
#define VL 8
#define VD v4d
#define VFD v4f
#define VDL 4
#define VEC_ROWS 4
#define VEC_NVEC 2
#include "vec_kernels.h"

/* AVX-512. Tile: 4 rows x 4 zmm, 16 of 32. */
#define VEC_FN(name) VEC_CAT(name, avx512)
#define VEC_TARGET __attribute__((target("avx512f")))
#define VF v16f
#define VI v16i
#define VL 16
#define VD v8d
#define VFD v8f
#define VDL 8
#define VEC_ROWS 4
#define VEC_NVEC 4
#include "vec_kernels.h"

const CpuVecKernels *const cpu_vec_kernels[] = {
    [CPU_VECTOR_4] = &kernels_plain,
    [CPU_VECTOR_AVX2] = &kernels_avx2,
    [CPU_VECTOR_AVX512] = &kernels_avx512,
};
#else
const CpuVecKernels *const cpu_vec_kernels[] = {
    [CPU_VECTOR_4] = &kernels_plain,
    [CPU_VECTOR_AVX2] = &kernels_plain,
    [CPU_VECTOR_AVX512] = &kernels_plain,
};
#endif
