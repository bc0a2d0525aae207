/* rope_angle.h — the one definition of a RoPE rotation angle, shared by the CPU backend and
 * the CUDA backend's host code so that both tables hold bitwise the same cos/sin values.
 * Pair i of a head of size HS at position t is rotated by t * theta^(-2i/HS) (RoFormer,
 * Su et al. 2021, eq. 15 with HF LLaMA's base theta); computed in double, rounded to fp32. */
#ifndef NORMBENCH_ROPE_ANGLE_H
#define NORMBENCH_ROPE_ANGLE_H

#include <math.h>

static inline void rope_angle(int t, int i, int HS, float theta, float *c, float *s) {
    double inv_freq = pow((double)theta, -2.0 * i / HS);
    double angle = t * inv_freq;
    *c = (float)cos(angle);
    *s = (float)sin(angle);
}

#endif
