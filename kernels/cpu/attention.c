/* attention.c — causal multi-head softmax attention (Vaswani et al. 2017, eq. 1) with scale
 * 1/sqrt(HS), forward and backward. q, k, v, out are [B,T,NH*HS]; `saved` holds the softmax
 * probabilities P[B,NH,T,T] (row t, column t2; zero above the diagonal), written by the
 * forward and read by the backward.
 *
 *   S = scale * Q K^T (masked to t2 <= t),  P = softmax_rows(S),  O = P V
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(P * dP)),  dQ = scale dS K,
 *   dK = scale dS^T Q
 *
 * Parallelism: over (b, h) pairs, each owning its slices of out / dq, dk, dv, so every sum
 * is done by one thread in a fixed order. Scores, softmax and sums are fp32.
 *
 * Blocking: every product here has the form acc[j] = sum_k a[k] * B[k, j] over a run of
 * contiguous j (rows of K, V, Q, dO, or of K^T / V^T packed per (b, h) into scratch), which
 * rows_combine computes with four vector accumulators held in registers, summing over k in
 * ascending order with separate multiplies and adds (so results depend neither on the
 * blocking nor on the vector width: 4 lanes, or 16 with AVX2 or AVX-512 when the BLAS
 * kernels in use are of that instruction set, CpuImpl.vector_isa). The (b, h)
 * pair's K^T (forward) or V^T and dS (backward) live in per-thread scratch owned by the
 * backend. There is one code path: the plain-loop statement of the op is its float64
 * specification in tests/spec64.c, which the tests compare this file against.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"

size_t cpu_attention_saved_bytes(Backend *be, int B, int T, int NH) {
    (void)be;
    return (size_t)B * NH * T * T * sizeof(float);
}

/* The per-thread scratch of one call, about T * (T + HS) floats per thread: of the order of
 * one (b, h) pair's share of the saved probabilities, which the caller allocated already.
 * Without it the op cannot run and has no error return, so it stops with a message, as the
 * CUDA backend does when its scratch cannot grow. A fallback to unblocked loops would be a
 * second implementation that no test reaches and that sums in another order, so an
 * out-of-memory would silently change results. */
static float *attention_scratch(Backend *be, size_t floats) {
    float *scratch = cpu_scratch(be, floats);
    if (!scratch) {
        fprintf(stderr, "normbench: cpu attention: out of memory for %zu bytes of scratch\n",
                floats * sizeof(float));
        abort();
    }
    return scratch;
}

enum { ATT_BLOCK = 16 };

/* out[j] (=|+=) sum_{k<K} a[k*inca] * B[k*ldb + j] for j < w, summed over k in order, one
 * multiply and one add per term (the Makefile's -ffp-contract=off: no fused multiply-add),
 * so every lane computes the same fp32 operations in the same order whatever the vector
 * width, and the wide versions below give the same bits as this one. */
static void rows_combine_4(float *out, const float *a, size_t inca, const float *B,
                           size_t ldb, int K, int w, int accumulate) {
    int j0 = 0;
    for (; j0 + ATT_BLOCK <= w; j0 += ATT_BLOCK) {
        cpu_v4f c0 = cpu_v4f_splat(0.0f), c1 = c0, c2 = c0, c3 = c0;
        const float *b = B + j0;
        for (int k = 0; k < K; k++, b += ldb) {
            float ak = a[(size_t)k * inca];
            c0 += ak * cpu_v4f_load(b);
            c1 += ak * cpu_v4f_load(b + 4);
            c2 += ak * cpu_v4f_load(b + 8);
            c3 += ak * cpu_v4f_load(b + 12);
        }
        float *o = out + j0;
        if (accumulate) {
            c0 += cpu_v4f_load(o), c1 += cpu_v4f_load(o + 4);
            c2 += cpu_v4f_load(o + 8), c3 += cpu_v4f_load(o + 12);
        }
        cpu_v4f_store(o, c0), cpu_v4f_store(o + 4, c1);
        cpu_v4f_store(o + 8, c2), cpu_v4f_store(o + 12, c3);
    }
    for (; j0 + 4 <= w; j0 += 4) {
        cpu_v4f c = cpu_v4f_splat(0.0f);
        const float *b = B + j0;
        for (int k = 0; k < K; k++, b += ldb) c += a[(size_t)k * inca] * cpu_v4f_load(b);
        if (accumulate) c += cpu_v4f_load(out + j0);
        cpu_v4f_store(out + j0, c);
    }
    for (; j0 < w; j0++) {
        float c = 0.0f;
        for (int k = 0; k < K; k++) c += a[(size_t)k * inca] * B[(size_t)k * ldb + j0];
        out[j0] = accumulate ? out[j0] + c : c;
    }
}

/* The same products 64 columns at a time in four 16-lane accumulators (independent chains
 * of adds, which hide their latency). Inlined into one function per instruction set; the
 * rest (fewer than 64 columns) goes to rows_combine_4. */
typedef float v16f __attribute__((vector_size(64)));
/* macros, not functions: a 64-byte vector passed by value outside an AVX-512 function
 * changes the calling convention */
#define v16f_load(p) ({ v16f v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define v16f_store(p, v) do { v16f s_ = (v); __builtin_memcpy((p), &s_, sizeof s_); } while (0)

static inline __attribute__((always_inline)) void rows_combine_16(
    float *out, const float *a, size_t inca, const float *B, size_t ldb, int K, int w,
    int accumulate) {
    int j0 = 0;
    for (; j0 + 64 <= w; j0 += 64) {
        v16f c0 = {0}, c1 = c0, c2 = c0, c3 = c0;
        const float *b = B + j0;
        for (int k = 0; k < K; k++, b += ldb) {
            const float ak = a[(size_t)k * inca];
            c0 += ak * v16f_load(b);
            c1 += ak * v16f_load(b + 16);
            c2 += ak * v16f_load(b + 32);
            c3 += ak * v16f_load(b + 48);
        }
        float *o = out + j0;
        if (accumulate) {
            c0 += v16f_load(o), c1 += v16f_load(o + 16);
            c2 += v16f_load(o + 32), c3 += v16f_load(o + 48);
        }
        v16f_store(o, c0);
        v16f_store(o + 16, c1);
        v16f_store(o + 32, c2);
        v16f_store(o + 48, c3);
    }
    /* the rest as before: one 16-lane accumulator would be a single chain of dependent
     * adds, slower than rows_combine_4's four (measured on the demo's HS 16) */
    if (j0 < w) rows_combine_4(out + j0, a, inca, B + j0, ldb, K, w - j0, accumulate);
}

__attribute__((target("avx512f"))) static void rows_combine_avx512(
    float *out, const float *a, size_t inca, const float *B, size_t ldb, int K, int w,
    int accumulate) {
    rows_combine_16(out, a, inca, B, ldb, K, w, accumulate);
}

__attribute__((target("avx2"))) static void rows_combine_avx2(
    float *out, const float *a, size_t inca, const float *B, size_t ldb, int K, int w,
    int accumulate) {
    rows_combine_16(out, a, inca, B, ldb, K, w, accumulate);
}

typedef void (*RowsCombine)(float *, const float *, size_t, const float *, size_t, int, int,
                            int);

/* The width the backend chose (CpuImpl.vector_isa: the BLAS kernels' instruction set). */
static RowsCombine rows_combine_for(const Backend *be) {
    switch (((const CpuImpl *)be->impl)->vector_isa) {
    case CPU_VECTOR_AVX512: return rows_combine_avx512;
    case CPU_VECTOR_AVX2: return rows_combine_avx2;
    default: return rows_combine_4;
    }
}

/* dst[i*ld + t] = src[t*C + i]: the (b, h) slice of a [T, C] tensor, transposed to [HS, ld],
 * columns T..ld-1 zeroed */
static void pack_transposed(float *dst, size_t ld, const float *src, size_t C, int T, int HS) {
    for (int i = 0; i < HS; i++) {
        float *d = dst + (size_t)i * ld;
        for (int t = 0; t < T; t++) d[t] = src[(size_t)t * C + i];
        for (size_t t = (size_t)T; t < ld; t++) d[t] = 0.0f;
    }
}

/* In place over x[0..m): x = softmax(scale * x) (the max taken after scaling). */
static void softmax_scaled(float *x, int m, float scale) {
    const int m4 = m / 4 * 4;
    float maxs = -INFINITY;
    if (m4) {
        cpu_v4f mv = cpu_v4f_splat(-INFINITY);
        for (int j = 0; j < m4; j += 4) {
            cpu_v4f v = scale * cpu_v4f_load(x + j);
            cpu_v4f_store(x + j, v);
            mv = cpu_v4f_max(v, mv);
        }
        maxs = cpu_v4f_hmax(mv);
    }
    for (int j = m4; j < m; j++) {
        x[j] *= scale;
        if (x[j] > maxs) maxs = x[j];
    }
    cpu_v4f sv = cpu_v4f_splat(0.0f);
    for (int j = 0; j < m4; j += 4) {
        cpu_v4f e = cpu_expf4(cpu_v4f_load(x + j) - maxs);
        cpu_v4f_store(x + j, e);
        sv += e;
    }
    float sum = cpu_v4f_hsum(sv);
    for (int j = m4; j < m; j++) {
        x[j] = cpu_expf(x[j] - maxs);
        sum += x[j];
    }
    float inv = 1.0f / sum;
    for (int j = 0; j < m4; j += 4) cpu_v4f_store(x + j, inv * cpu_v4f_load(x + j));
    for (int j = m4; j < m; j++) x[j] *= inv;
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

void cpu_attention_forward(Backend *be, void *out, void *saved, const void *q, const void *k,
                           const void *v, int B, int T, int NH, int HS) {
    const size_t Tp = round_up((size_t)T, ATT_BLOCK);
    const size_t per_thread = round_up((size_t)HS * Tp + Tp, 16);
    float *scratch = attention_scratch(be, (size_t)omp_get_max_threads() * per_thread);
    float *o = out, *probs = saved;
    const float *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int pairs = B * NH;
    const RowsCombine rows_combine = rows_combine_for(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        int h = bh % NH, b = bh / NH;
        float *kt = scratch + (size_t)omp_get_thread_num() * per_thread; /* [HS, Tp] */
        float *s = kt + (size_t)HS * Tp;                                  /* [Tp] */
        const size_t base = (size_t)b * T * C + (size_t)h * HS;
        pack_transposed(kt, Tp, K + base, C, T, HS);
        for (int t = 0; t < T; t++) {
            const float *qt = Q + base + (size_t)t * C;
            float *p = probs + ((size_t)bh * T + t) * T;
            /* s[t2] = q_t . k_t2 for t2 <= t, whole blocks of 16 (K^T is zero-padded) */
            const int m = t + 1;
            rows_combine(s, qt, 1, kt, Tp, HS, (int)round_up((size_t)m, ATT_BLOCK), 0);
            softmax_scaled(s, m, scale);
            memcpy(p, s, (size_t)m * sizeof(float));
            if (m < T) memset(p + m, 0, (size_t)(T - m) * sizeof(float));
            /* out_t = sum_t2 p[t2] v_t2 */
            rows_combine(o + base + (size_t)t * C, p, 1, V + base, C, m, HS, 0);
        }
    }
}

void cpu_attention_backward(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                            const void *saved, const void *q, const void *k, const void *v,
                            int B, int T, int NH, int HS) {
    const size_t Tp = round_up((size_t)T, ATT_BLOCK);
    const size_t per_thread = round_up((size_t)HS * Tp + (size_t)T * Tp + Tp, 16);
    float *scratch = attention_scratch(be, (size_t)omp_get_max_threads() * per_thread);
    float *dQ = dq, *dK = dk, *dV = dv;
    const float *dO = dout, *probs = saved, *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int pairs = B * NH;
    const RowsCombine rows_combine = rows_combine_for(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        int h = bh % NH, b = bh / NH;
        float *vt = scratch + (size_t)omp_get_thread_num() * per_thread; /* [HS, Tp] */
        float *ds = vt + (size_t)HS * Tp;                                 /* [T, Tp] */
        float *dp = ds + (size_t)T * Tp;                                  /* [Tp] */
        const size_t base = (size_t)b * T * C + (size_t)h * HS;
        const float *P = probs + (size_t)bh * T * T;
        pack_transposed(vt, Tp, V + base, C, T, HS);
        for (int t = 0; t < T; t++) {
            const float *p = P + (size_t)t * T, *dot_ = dO + base + (size_t)t * C;
            float *dst = ds + (size_t)t * Tp;
            const int m = t + 1, m4 = m / 4 * 4;
            /* dp[t2] = do_t . v_t2 (V^T is zero-padded) */
            rows_combine(dp, dot_, 1, vt, Tp, HS, (int)round_up((size_t)m, ATT_BLOCK), 0);
            /* D = rowsum(P * dP);  dS = scale * P * (dP - D) */
            cpu_v4f dv4 = cpu_v4f_splat(0.0f);
            for (int j = 0; j < m4; j += 4) dv4 += cpu_v4f_load(p + j) * cpu_v4f_load(dp + j);
            float D = cpu_v4f_hsum(dv4);
            for (int j = m4; j < m; j++) D += p[j] * dp[j];
            for (int j = 0; j < m4; j += 4)
                cpu_v4f_store(dst + j, scale * cpu_v4f_load(p + j) * (cpu_v4f_load(dp + j) - D));
            for (int j = m4; j < m; j++) dst[j] = scale * p[j] * (dp[j] - D);
            /* dq_t += sum_t2 dS[t, t2] k_t2 */
            rows_combine(dQ + base + (size_t)t * C, dst, 1, K + base, C, m, HS, 1);
        }
        for (int t2 = 0; t2 < T; t2++) {
            const size_t r = base + (size_t)t2 * C;
            /* dk_t2 += sum_{t >= t2} dS[t, t2] q_t;  dv_t2 += sum_{t >= t2} P[t, t2] do_t */
            rows_combine(dK + r, ds + (size_t)t2 * Tp + t2, Tp, Q + r, C, T - t2, HS, 1);
            rows_combine(dV + r, P + (size_t)t2 * T + t2, T, dO + r, C, T - t2, HS, 1);
        }
    }
}
