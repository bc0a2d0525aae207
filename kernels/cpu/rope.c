/* rope.c — rotary position embedding (Su et al. 2021, RoFormer eq. 34) in Hugging Face
 * LLaMA's rotate_half layout: within each head, element i < HS/2 is paired with i + HS/2 and
 * the pair is rotated by angle t * theta^(-2i/HS), t being the position within the sequence
 * (0-based). That is, with c = cos, s = sin of the angle:
 *     out[i]        = x[i] c - x[i + HS/2] s
 *     out[i + HS/2] = x[i + HS/2] c + x[i] s          (HF: q*cos + rotate_half(q)*sin)
 * Angles, cosines and sines are computed in double, then rounded to fp32. x is [B,T,NH,HS].
 */
#include <math.h>

#include "cpu_ops.h"

/* cos and sin of the rotation of pair i at position t */
static inline void rope_angle(int t, int i, int HS, float theta, float *c, float *s) {
    double inv_freq = pow((double)theta, -2.0 * i / HS);
    double angle = t * inv_freq;
    *c = (float)cos(angle);
    *s = (float)sin(angle);
}

/* out = R x; safe in place (each pair is read before it is written) */
void cpu_rope_forward(Backend *be, void *out, const void *inp, int B, int T, int NH, int HS,
                      float theta) {
    (void)be;
    float *o = out;
    const float *x = inp;
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(static)
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
    (void)be;
    float *dx = dinp;
    const float *g = dout;
    const int half = HS / 2;
    const int BT = B * T;
#pragma omp parallel for schedule(static)
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
