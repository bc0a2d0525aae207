/* rope.c — rotary position embedding (Su et al. 2021, RoFormer eq. 34) in Hugging Face
 * LLaMA's rotate_half layout: within each head, element i < HS/2 is paired with i + HS/2 and
 * the pair is rotated by angle t * theta^(-2i/HS), t being the position within the sequence
 * (0-based). That is, with c = cos, s = sin of the angle:
 *     out[i]        = x[i] c - x[i + HS/2] s
 *     out[i + HS/2] = x[i + HS/2] c + x[i] s          (HF: q*cos + rotate_half(q)*sin)
 * Angles, cosines and sines are computed in double, then rounded to fp32. They depend only on
 * (t, i, HS, theta), so the backend computes them once into a table it keeps (CpuImpl.rope_cs)
 * and rebuilds only when T grows or (HS, theta) change. x is [B,T,NH,HS].
 */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

/* cos and sin of the rotation of pair i at position t */
static inline void rope_angle(int t, int i, int HS, float theta, float *c, float *s) {
    double inv_freq = pow((double)theta, -2.0 * i / HS);
    double angle = t * inv_freq;
    *c = (float)cos(angle);
    *s = (float)sin(angle);
}

const float *cpu_rope_table(Backend *be, int T, int HS, float theta) {
    CpuImpl *impl = be->impl;
    if (impl->rope_cs && T <= impl->rope_T && HS == impl->rope_HS && theta == impl->rope_theta)
        return impl->rope_cs;
    float *cs = malloc((size_t)T * HS * sizeof(float));
    if (!cs) return NULL;
    const int half = HS / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++)
            rope_angle(t, i, HS, theta, &cs[(size_t)t * HS + i], &cs[(size_t)t * HS + half + i]);
    free(impl->rope_cs);
    impl->rope_cs = cs;
    impl->rope_T = T;
    impl->rope_HS = HS;
    impl->rope_theta = theta;
    return cs;
}

/* Rotates every pair of every head: out = R x (sign = +1) or out += R^T x (sign = -1, the
 * backward), with cos/sin of position t at cs[t*HS + i] and cs[t*HS + HS/2 + i]. Safe in
 * place for the forward (each pair is read before it is written). */
static void rope_apply(float *o, const float *x, const float *cs, int B, int T, int NH, int HS,
                       int backward) {
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(dynamic, 64)
    for (int bt = 0; bt < BT; bt++) {
        const float *c = cs + (size_t)(bt % T) * HS, *s = c + half;
        for (int h = 0; h < NH; h++) {
            size_t base = ((size_t)bt * NH + h) * HS;
            const float *x1 = x + base, *x2 = x + base + half;
            float *o1 = o + base, *o2 = o + base + half;
            if (!backward) {
#pragma omp simd
                for (int i = 0; i < half; i++) {
                    float a = x1[i], b = x2[i];
                    o1[i] = a * c[i] - b * s[i];
                    o2[i] = b * c[i] + a * s[i];
                }
            } else {
#pragma omp simd
                for (int i = 0; i < half; i++) {
                    float a = x1[i], b = x2[i];
                    o1[i] += a * c[i] + b * s[i];
                    o2[i] += b * c[i] - a * s[i];
                }
            }
        }
    }
}

/* out = R x; safe in place (each pair is read before it is written) */
void cpu_rope_forward(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                      float theta) {
    float *o = out;
    const float *x = inp;
    const float *table = cpu_rope_table(be, T, HS, theta);
    if (table) {
        rope_apply(o, x, table, B, T, NH, HS, 0);
        return;
    }
    /* out of memory for the table: the angles per element */
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(dynamic, 64)
    for (int bt = 0; bt < BT; bt++) {
        int t = bt % T;
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_angle(t, i, HS, theta, &c, &s);
            for (int h = 0; h < NH; h++) {
                size_t base = ((size_t)bt * NH + h) * HS;
                float x1 = x[base + i], x2 = x[base + i + half];
                o[base + i] = x1 * c - x2 * s;
                o[base + i + half] = x2 * c + x1 * s;
            }
        }
    }
}

/* dinp += R^T dout: the rotation by -angle */
void cpu_rope_backward(Backend *be, void *dinp, const void *dout, int B, int T, int NH, int HS,
                       float theta) {
    float *dx = dinp;
    const float *g = dout;
    const float *table = cpu_rope_table(be, T, HS, theta);
    if (table) {
        rope_apply(dx, g, table, B, T, NH, HS, 1);
        return;
    }
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(dynamic, 64)
    for (int bt = 0; bt < BT; bt++) {
        int t = bt % T;
        for (int i = 0; i < half; i++) {
            float c, s;
            rope_angle(t, i, HS, theta, &c, &s);
            for (int h = 0; h < NH; h++) {
                size_t base = ((size_t)bt * NH + h) * HS;
                float g1 = g[base + i], g2 = g[base + i + half];
                dx[base + i] += g1 * c + g2 * s;
                dx[base + i + half] += g2 * c - g1 * s;
            }
        }
    }
}
