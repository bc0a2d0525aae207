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
#include "rope_angle.h"

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

/* Rotates every pair of every head: out = R x (forward) or out += R^T x (backward), with
 * cos/sin of position t at cs[t*HS + i] and cs[t*HS + HS/2 + i]. When the table could not be
 * allocated (cs NULL) each position's row is computed on the fly instead: slower, same
 * values. Safe in place for the forward (each pair is read before it is written). */
static void rope_apply(float *o, const float *x, const float *cs, int B, int T, int NH, int HS,
                       float theta, int backward) {
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(dynamic, 64)
    for (int bt = 0; bt < BT; bt++) {
        float row[HS];
        if (!cs)
            for (int i = 0; i < half; i++) rope_angle(bt % T, i, HS, theta, &row[i], &row[half + i]);
        const float *c = cs ? cs + (size_t)(bt % T) * HS : row, *s = c + half;
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

/* out = R x; safe in place */
void cpu_rope_forward(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                      float theta) {
    rope_apply(out, inp, cpu_rope_table(be, T, HS, theta), B, T, NH, HS, theta, 0);
}

/* dinp += R^T dout: the rotation by -angle */
void cpu_rope_backward(Backend *be, void *dinp, const void *dout, int B, int T, int NH, int HS,
                       float theta) {
    rope_apply(dinp, dout, cpu_rope_table(be, T, HS, theta), B, T, NH, HS, theta, 1);
}
