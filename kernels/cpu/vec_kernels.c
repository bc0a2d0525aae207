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

/* Norm row sums: logical partial sums per row (vec_kernels.h). */
enum { NORM_LANES = 32 };

/* Operations on this copy's native vectors (VF, VI, VD, VFD are defined per copy below).
 * Unaligned loads and stores go through memcpy. */
#define VLOAD(p) ({ VF v_; memcpy(&v_, (p), sizeof v_); v_; })
#define VSTORE(p, v) do { VF s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)
#define VSPLAT(x) ((VF){0} + (float)(x))
/* m ? a : b per lane, for a mask m of comparisons */
#define VSELECT(m, a, b) ((VF)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))
/* a > b ? a : b per lane (b when a is NaN) */
#define VMAX(a, b) ({ VF a_ = (a), b_ = (b); VSELECT(a_ > b_, a_, b_); })
/* exp(x) per lane in fp32: Cody-Waite reduction x = n ln2 + r, |r| <= ln2/2 (n rounded to
 * nearest with the 1.5*2^23 trick), Cephes' degree-6 polynomial for e^r, and 2^n built from
 * the exponent bits; max relative error 8.3e-8 (1.4 ulp) over [-87, 88]. x is clamped to
 * [-87, 88] first: below, the result stays at ~1.6e-38 instead of going to 0 (negligible
 * wherever it is added to or divides something of order 1: softmax, sigmoid); above, it
 * saturates at ~1.65e38. The same operations per lane in every copy. */
#define VEXP(x_in)                                                                            \
    ({                                                                                        \
        const VF lo_ = VSPLAT(-87.0f), hi_ = VSPLAT(88.0f);                                   \
        const VF magic_ = VSPLAT(12582912.0f); /* 1.5 * 2^23 */                               \
        VF x_ = (x_in);                                                                       \
        x_ = VSELECT(x_ > lo_, x_, lo_);                                                      \
        x_ = VSELECT(x_ < hi_, x_, hi_);                                                      \
        VF n_ = (x_ * 1.44269504088896341f + magic_) - magic_;                                \
        VF r_ = x_ - n_ * 0.693359375f;                                                       \
        r_ = r_ - n_ * -2.12194440e-4f;                                                       \
        VF p_ = VSPLAT(1.9875691500e-4f);                                                     \
        p_ = p_ * r_ + 1.3981999507e-3f;                                                      \
        p_ = p_ * r_ + 8.3334519073e-3f;                                                      \
        p_ = p_ * r_ + 4.1665795894e-2f;                                                      \
        p_ = p_ * r_ + 1.6666665459e-1f;                                                      \
        p_ = p_ * r_ + 5.0000001201e-1f;                                                      \
        p_ = p_ * r_ * r_ + r_ + 1.0f;                                                        \
        VI two_n_ = (__builtin_convertvector(n_, VI) + 127) << 23;                            \
        p_ * (VF)two_n_;                                                                      \
    })
/* the same exp of one value (loop tails) */
#define VEXP1(x) ({ VF e_ = VEXP(VSPLAT(x)); e_[0]; })
/* 1 / (1 + exp(-x)) per lane */
#define VSIGMOID(x) (1.0f / (1.0f + VEXP(-(x))))
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
