/* attention.c — causal multi-head softmax attention (Vaswani et al. 2017, eq. 1) with scale
 * 1/sqrt(HS), forward and backward. q, k, v, out are [B,T,NH*HS]; `saved` holds the softmax
 * probabilities P[B,NH,T,T] (row t, column t2; zero above the diagonal), written by the
 * forward and read by the backward.
 *
 *   S = scale * Q K^T (masked to t2 <= t),  P = softmax_rows(S),  O = P V
 *   dV = P^T dO,  dP = dO V^T,  dS = P * (dP - rowsum(P * dP)),  dQ = scale dS K,
 *   dK = scale dS^T Q
 *
 * Parallelism: the forward runs over (b, h, t) rows, which are independent; the backward
 * over (b, h) pairs, each owning its slices of dq, dk, dv, so the sums over t into dk and dv
 * are done by one thread in order. Scores, softmax and sums are fp32 in index order.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "cpu_ops.h"

size_t cpu_attention_saved_bytes(Backend *be, int B, int T, int NH) {
    (void)be;
    return (size_t)B * NH * T * T * sizeof(float);
}

/* Dot product; `omp simd` lets the compiler split the sum over SIMD lanes (a fixed order for
 * a given binary, so still bitwise reproducible run to run). */
static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

void cpu_attention_forward(Backend *be, void *out, void *saved, const void *q, const void *k,
                           const void *v, int B, int T, int NH, int HS) {
    (void)be;
    float *o = out, *probs = saved;
    const float *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int rows = B * NH * T;
#pragma omp parallel for schedule(static)
    for (int row = 0; row < rows; row++) {
        int t = row % T, bh = row / T, h = bh % NH, b = bh / NH;
        const float *qt = Q + ((size_t)b * T + t) * C + (size_t)h * HS;
        float *p = probs + (size_t)row * T;
        float *ot = o + ((size_t)b * T + t) * C + (size_t)h * HS;

        float maxs = -INFINITY;
        for (int t2 = 0; t2 <= t; t2++) {
            const float *kt = K + ((size_t)b * T + t2) * C + (size_t)h * HS;
            p[t2] = scale * dot(qt, kt, HS);
            if (p[t2] > maxs) maxs = p[t2];
        }
        float sum = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) {
            p[t2] = expf(p[t2] - maxs);
            sum += p[t2];
        }
        float inv = 1.0f / sum;
        for (int t2 = 0; t2 <= t; t2++) p[t2] *= inv;
        for (int t2 = t + 1; t2 < T; t2++) p[t2] = 0.0f;

        memset(ot, 0, (size_t)HS * sizeof(float));
        for (int t2 = 0; t2 <= t; t2++) {
            const float *vt = V + ((size_t)b * T + t2) * C + (size_t)h * HS;
            float pt = p[t2];
#pragma omp simd
            for (int i = 0; i < HS; i++) ot[i] += pt * vt[i];
        }
    }
}

void cpu_attention_backward(Backend *be, void *dq, void *dk, void *dv, const void *dout,
                            const void *saved, const void *q, const void *k, const void *v,
                            int B, int T, int NH, int HS) {
    float *dQ = dq, *dK = dk, *dV = dv;
    const float *dO = dout, *probs = saved, *Q = q, *K = k, *V = v;
    const size_t C = (size_t)NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    const int pairs = B * NH;
    /* one row of dP per thread; without it dP is recomputed (same values, same order) */
    float *scratch = cpu_scratch(be, (size_t)omp_get_max_threads() * T);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < pairs; bh++) {
        int h = bh % NH, b = bh / NH;
        float *dp = scratch ? scratch + (size_t)omp_get_thread_num() * T : NULL;
        for (int t = 0; t < T; t++) {
            const float *p = probs + ((size_t)bh * T + t) * T;
            size_t off_t = ((size_t)b * T + t) * C + (size_t)h * HS;
            const float *dot_ = dO + off_t, *qt = Q + off_t;
            float *dqt = dQ + off_t;

            /* rowsum(P * dP) */
            float D = 0.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                const float *vt = V + ((size_t)b * T + t2) * C + (size_t)h * HS;
                float dpt = dot(dot_, vt, HS);
                if (dp) dp[t2] = dpt;
                D += p[t2] * dpt;
            }
            for (int t2 = 0; t2 <= t; t2++) {
                size_t off_t2 = ((size_t)b * T + t2) * C + (size_t)h * HS;
                const float *kt = K + off_t2, *vt = V + off_t2;
                float *dkt = dK + off_t2, *dvt = dV + off_t2;
                float dpt = dp ? dp[t2] : dot(dot_, vt, HS);
                float ds = scale * p[t2] * (dpt - D);
                float pt = p[t2];
#pragma omp simd
                for (int i = 0; i < HS; i++) {
                    dvt[i] += pt * dot_[i];
                    dqt[i] += ds * kt[i];
                    dkt[i] += ds * qt[i];
                }
            }
        }
    }
}
