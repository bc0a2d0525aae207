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
 * Blocking: every product here has the form acc[j] = init + sum_k a[k] * B[k, j] over a run
 * of contiguous j (rows of K, V, Q, dO, or of K^T / V^T packed per (b, h) into scratch),
 * which `combine` (vec_kernels.h) computes for ATT_ROWS rows of a at once in register tiles
 * that share every load of B, summing over k in ascending order with separate multiplies
 * and adds. Results therefore depend neither on the tiling nor on the vector width; and
 * since a sum may be split in k, causal rows of different lengths share a tile over their
 * common terms and finish alone. The softmax rows are vec_kernels.h's too.
 * The (b, h) pair's K^T (forward) or V^T and dS (backward) live in per-thread scratch owned
 * by the backend. There is one code path: the plain-loop statement of the op is its float64
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

/* ATT_ROWS query (or key) rows go through each product together, sharing every load of
 * the other operand; score rows are computed in whole blocks of ATT_BLOCK columns. */
enum { ATT_ROWS = 4, ATT_BLOCK = 16 };

/* dst[i*ld + t] = src[t*C + i]: the (b, h) slice of a [T, C] tensor, transposed to [HS, ld],
 * columns T..ld-1 zeroed */
static void pack_transposed(float *dst, size_t ld, const float *src, size_t C, int T, int HS) {
    for (int i = 0; i < HS; i++) {
        float *d = dst + (size_t)i * ld;
        for (int t = 0; t < T; t++) d[t] = src[(size_t)t * C + i];
        for (size_t t = (size_t)T; t < ld; t++) d[t] = 0.0f;
    }
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

void cpu_attention_forward(Backend *be, void *out, void *saved, const void *q, const void *k,
                           const void *v, int B, int T, int NH, int HS) {
    const size_t Tp = round_up((size_t)T, ATT_BLOCK);
    const size_t per_thread = round_up((size_t)HS * Tp + ATT_ROWS * Tp, 16);
    float *scratch = attention_scratch(be, (size_t)omp_get_max_threads() * per_thread);
    float *o = out, *probs = saved;
    const float *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int pairs = B * NH;
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        int h = bh % NH, b = bh / NH;
        float *kt = scratch + (size_t)omp_get_thread_num() * per_thread; /* [HS, Tp] */
        float *s = kt + (size_t)HS * Tp;                                  /* [ATT_ROWS, Tp] */
        const size_t base = (size_t)b * T * C + (size_t)h * HS;
        pack_transposed(kt, Tp, K + base, C, T, HS);
        /* query rows t0 .. t0 + rows - 1 together */
        for (int t0 = 0; t0 < T; t0 += ATT_ROWS) {
            const int rows = T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS;
            float *P0 = probs + ((size_t)bh * T + t0) * T;
            /* s[r, t2] = q_{t0+r} . k_t2 for t2 <= t0 + r, whole blocks of 16 (K^T is
             * zero-padded; the columns past the diagonal are not read) */
            vec->combine(s, Tp, Q + base + (size_t)t0 * C, C, 1, kt, Tp, rows, HS,
                         (int)round_up((size_t)(t0 + rows), ATT_BLOCK), 0);
            vec->softmax_rows(P0, (size_t)T, s, Tp, t0, rows, scale);
            /* out_t = sum_{t2 <= t} p[t, t2] v_t2: the rows together over t2 <= t0, then
             * each row over its own last terms */
            float *O0 = o + base + (size_t)t0 * C;
            vec->combine(O0, C, P0, T, 1, V + base, C, rows, t0 + 1, HS, 0);
            for (int r = 1; r < rows; r++)
                vec->combine(O0 + (size_t)r * C, C, P0 + (size_t)r * T + t0 + 1, T, 1,
                             V + base + (size_t)(t0 + 1) * C, C, 1, r, HS, 1);
        }
    }
}

void cpu_attention_backward(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                            const void *saved, const void *q, const void *k, const void *v,
                            int B, int T, int NH, int HS) {
    const size_t Tp = round_up((size_t)T, ATT_BLOCK);
    const size_t per_thread = round_up((size_t)HS * Tp + (size_t)T * Tp + ATT_ROWS * Tp, 16);
    float *scratch = attention_scratch(be, (size_t)omp_get_max_threads() * per_thread);
    float *dQ = dq, *dK = dk, *dV = dv;
    const float *dO = dout, *probs = saved, *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int pairs = B * NH;
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int bh = 0; bh < pairs; bh++) {
        int h = bh % NH, b = bh / NH;
        float *vt = scratch + (size_t)omp_get_thread_num() * per_thread; /* [HS, Tp] */
        float *ds = vt + (size_t)HS * Tp;                                 /* [T, Tp] */
        float *dp = ds + (size_t)T * Tp;                                  /* [ATT_ROWS, Tp] */
        const size_t base = (size_t)b * T * C + (size_t)h * HS;
        const float *P = probs + (size_t)bh * T * T;
        pack_transposed(vt, Tp, V + base, C, T, HS);
        /* query rows t0 .. t0 + rows - 1 together */
        for (int t0 = 0; t0 < T; t0 += ATT_ROWS) {
            const int rows = T - t0 < ATT_ROWS ? T - t0 : ATT_ROWS;
            /* dp[r, t2] = do_{t0+r} . v_t2 (V^T is zero-padded) */
            vec->combine(dp, Tp, dO + base + (size_t)t0 * C, C, 1, vt, Tp, rows, HS,
                         (int)round_up((size_t)(t0 + rows), ATT_BLOCK), 0);
            /* D = rowsum(P * dP);  dS = scale * P * (dP - D) */
            vec->softmax_backward_rows(ds + (size_t)t0 * Tp, Tp, P + (size_t)t0 * T,
                                       (size_t)T, dp, t0, rows, scale);
            /* dq_t += sum_{t2 <= t} dS[t, t2] k_t2: together over t2 <= t0, then each row's
             * own last terms */
            float *dQ0 = dQ + base + (size_t)t0 * C;
            const float *dS0 = ds + (size_t)t0 * Tp;
            vec->combine(dQ0, C, dS0, Tp, 1, K + base, C, rows, t0 + 1, HS, 1);
            for (int r = 1; r < rows; r++)
                vec->combine(dQ0 + (size_t)r * C, C, dS0 + (size_t)r * Tp + t0 + 1, Tp, 1,
                             K + base + (size_t)(t0 + 1) * C, C, 1, r, HS, 1);
        }
        /* key rows t2 .. last together:
         *   dk_t2 += sum_{t >= t2} dS[t, t2] q_t;   dv_t2 += sum_{t >= t2} P[t, t2] do_t
         * each row's own first terms (t < last), then the rows together over t >= last */
        for (int t20 = 0; t20 < T; t20 += ATT_ROWS) {
            const int rows = T - t20 < ATT_ROWS ? T - t20 : ATT_ROWS, last = t20 + rows - 1;
            for (int t2 = t20; t2 < last; t2++) {
                const size_t r = base + (size_t)t2 * C;
                vec->combine(dK + r, C, ds + (size_t)t2 * Tp + t2, 0, Tp, Q + r, C, 1,
                             last - t2, HS, 1);
                vec->combine(dV + r, C, P + (size_t)t2 * T + t2, 0, T, dO + r, C, 1,
                             last - t2, HS, 1);
            }
            const size_t r0 = base + (size_t)t20 * C, rl = base + (size_t)last * C;
            vec->combine(dK + r0, C, ds + (size_t)last * Tp + t20, 1, Tp, Q + rl, C, rows,
                         T - last, HS, 1);
            vec->combine(dV + r0, C, P + (size_t)last * T + t20, 1, T, dO + rl, C, rows,
                         T - last, HS, 1);
        }
    }
}
