/* norm.c — RMSNorm (Zhang & Sennrich 2019) and LayerNorm (Ba et al. 2016), forward and
 * backward, with an output scale s applied to the whole normalized output:
 *
 *   RMSNorm:   out = s * (x * rstd * w),              rstd = 1 / sqrt(mean(x^2) + eps)
 *   LayerNorm: out = s * ((x - mean) * rstd * w + b), rstd = 1 / sqrt(var(x) + eps)
 *
 * i.e. out = s * N(x) where N includes the weight AND the bias (the LNS scale 1/sqrt(l) of
 * docs/design.md section 3 multiplies the norm's output, bias included). Variance is the biased
 * one (divide by C), as in PyTorch's LayerNorm.
 *
 * Precision: row statistics (mean, mean square / variance) and the per-row reductions of
 * the backward are accumulated in double, then rounded to fp32; the stored mean/rstd are the
 * fp32 values, and forward and backward both use those fp32 values, so the backward
 * differentiates exactly the function the forward computed (up to rounding).
 *
 * Order: a row sum is ROW_LANES partial sums (element c goes to c mod ROW_LANES, in index
 * order) combined in a fixed tree, then the last C mod ROW_LANES elements in index order;
 * the weight and bias gradients sum each column over rows in row order. Vectors of 8
 * doubles and 16 floats, compiled once per instruction set (CPU_ISA_VARIANTS): the same
 * operations per lane at every width, so the same bits.
 */
#include <math.h>

#include "cpu_ops.h"

/* Rows per OpenMP work item; columns per work item of the weight/bias gradient. */
enum { NORM_ROW_CHUNK = 32, NORM_COL_BLOCK = 64, ROW_LANES = 32 };

typedef float v8f __attribute__((vector_size(32)));
typedef double v8d __attribute__((vector_size(64)));
/* the 8 floats at p, widened to double (a macro: 64-byte vectors are not passed by value) */
#define v8d_from_floats(p)                                                                    \
    ({ v8f f_; __builtin_memcpy(&f_, (p), sizeof f_); __builtin_convertvector(f_, v8d); })
#define v8d_load(p) ({ v8d v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define v8d_store(p, v) do { v8d s_ = (v); __builtin_memcpy((p), &s_, sizeof s_); } while (0)

/* The sum of ROW_LANES partial sums held in four 8-lane vectors: a fixed tree. */
#define ROW_LANES_SUM(a0, a1, a2, a3)                                                         \
    ({                                                                                        \
        v8d t_ = ((a0) + (a1)) + ((a2) + (a3));                                               \
        ((t_[0] + t_[4]) + (t_[2] + t_[6])) + ((t_[1] + t_[5]) + (t_[3] + t_[7]));            \
    })

/* sum_c (x[c] - mu)^2 and sum_c x[c], in double */
static inline __attribute__((always_inline)) double row_sum_sq_dev(const float *x, int C,
                                                                   double mu) {
    const int whole = C / ROW_LANES * ROW_LANES;
    v8d a0 = {0}, a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < whole; c += ROW_LANES) {
        v8d d0 = v8d_from_floats(x + c) - mu, d1 = v8d_from_floats(x + c + 8) - mu;
        v8d d2 = v8d_from_floats(x + c + 16) - mu, d3 = v8d_from_floats(x + c + 24) - mu;
        a0 += d0 * d0, a1 += d1 * d1, a2 += d2 * d2, a3 += d3 * d3;
    }
    double s = ROW_LANES_SUM(a0, a1, a2, a3);
    for (int c = whole; c < C; c++) {
        double d = x[c] - mu;
        s += d * d;
    }
    return s;
}

static inline __attribute__((always_inline)) double row_sum(const float *x, int C) {
    const int whole = C / ROW_LANES * ROW_LANES;
    v8d a0 = {0}, a1 = a0, a2 = a0, a3 = a0;
    for (int c = 0; c < whole; c += ROW_LANES) {
        a0 += v8d_from_floats(x + c), a1 += v8d_from_floats(x + c + 8);
        a2 += v8d_from_floats(x + c + 16), a3 += v8d_from_floats(x + c + 24);
    }
    double s = ROW_LANES_SUM(a0, a1, a2, a3);
    for (int c = whole; c < C; c++) s += x[c];
    return s;
}

/* Rows n0 .. n1-1 of the forward. */
static inline __attribute__((always_inline)) void norm_forward_rows(
    const CpuVectorIsa isa, int layer, float *o, float *mean, float *rstd, const float *x,
    const float *w, const float *b, int n0, int n1, int C, float eps, float out_scale) {
    (void)isa; /* the same code at every width */
    const int C16 = C / 16 * 16;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * C;
        float *orow = o + (size_t)n * C;
        /* two-pass: second moment about the (double) mean; about 0 for RMSNorm */
        const double mu = layer ? row_sum(xr, C) / C : 0.0;
        const double m2 = row_sum_sq_dev(xr, C, mu) / C;
        const float mu_f = (float)mu, r = (float)(1.0 / sqrt(m2 + (double)eps));
        if (layer && mean) mean[n] = mu_f;
        rstd[n] = r;
        /* out = s * ((x - mu) * r * w + b): without b for RMSNorm (mu = 0) */
        for (int c = 0; c < C16; c += 16) {
            cpu_v16f v = (cpu_v16f_load(xr + c) - mu_f) * r * cpu_v16f_load(w + c);
            if (b) v += cpu_v16f_load(b + c);
            cpu_v16f_store(orow + c, out_scale * v);
        }
        for (int c = C16; c < C; c++) {
            float v = (xr[c] - mu_f) * r * w[c];
            if (b) v += b[c];
            orow[c] = out_scale * v;
        }
    }
}
CPU_ISA_VARIANTS(norm_forward_rows,
                 (int layer, float *o, float *mean, float *rstd, const float *x,
                  const float *w, const float *b, int n0, int n1, int C, float eps,
                  float out_scale),
                 layer, o, mean, rstd, x, w, b, n0, n1, C, eps, out_scale);

void cpu_norm_forward(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                      const void *inp, const void *weight, const void *bias, int N, int C,
                      float eps, float out_scale) {
    const int layer = kind == NORM_LAYER;
    const CpuVectorIsa isa = cpu_vector_isa(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int n0 = 0; n0 < N; n0 += NORM_ROW_CHUNK)
        norm_forward_rows_for_isa[isa](layer, out, mean, rstd, inp, weight,
                                       layer ? bias : NULL, n0,
                                       N - n0 < NORM_ROW_CHUNK ? N : n0 + NORM_ROW_CHUNK, C,
                                       eps, out_scale);
}

/* With xhat = (x - mean) * rstd (mean = 0 for RMSNorm) and g = s * dout * w:
 *   RMSNorm:   dx = rstd * (g - xhat * mean(g * xhat))
 *   LayerNorm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dw[c] += sum_n s * dout[n,c] * xhat[n,c];   db[c] += sum_n s * dout[n,c]
 * (the standard norm backward, e.g. Ba et al. 2016 / llm.c layernorm_backward).
 * Rows n0 .. n1-1 of the input gradient: */
static inline __attribute__((always_inline)) void norm_backward_rows(
    const CpuVectorIsa isa, int layer, float *dx, const float *g, const float *x,
    const float *w, const float *mean, const float *rstd, int n0, int n1, int C,
    float out_scale) {
    (void)isa; /* the same code at every width */
    const int whole = C / ROW_LANES * ROW_LANES, C16 = C / 16 * 16;
    const double s = out_scale;
    for (int n = n0; n < n1; n++) {
        const float *xr = x + (size_t)n * C, *gr = g + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        const float mu = layer ? mean[n] : 0.0f, r = rstd[n];
        /* sum_g = sum_c gc, sum_gx = sum_c gc * xhat_c, gc = s * dout * w in double */
        v8d g0 = {0}, g1 = g0, g2 = g0, g3 = g0, q0 = g0, q1 = g0, q2 = g0, q3 = g0;
        for (int c = 0; c < whole; c += ROW_LANES) {
#define NORM_BWD_LANES(G, Q, off)                                                             \
    do {                                                                                      \
        v8f xh_;                                                                              \
        __builtin_memcpy(&xh_, xr + c + (off), sizeof xh_);                                   \
        v8f wv_;                                                                              \
        __builtin_memcpy(&wv_, w + c + (off), sizeof wv_);                                    \
        xh_ = (xh_ - mu) * r;                                                                 \
        v8d gc_ = s * v8d_from_floats(gr + c + (off)) * __builtin_convertvector(wv_, v8d);    \
        G += gc_;                                                                             \
        Q += gc_ * __builtin_convertvector(xh_, v8d);                                         \
    } while (0)
            NORM_BWD_LANES(g0, q0, 0);
            NORM_BWD_LANES(g1, q1, 8);
            NORM_BWD_LANES(g2, q2, 16);
            NORM_BWD_LANES(g3, q3, 24);
#undef NORM_BWD_LANES
        }
        double sum_g = ROW_LANES_SUM(g0, g1, g2, g3), sum_gx = ROW_LANES_SUM(q0, q1, q2, q3);
        for (int c = whole; c < C; c++) {
            double gc = s * gr[c] * w[c];
            sum_g += gc;
            sum_gx += gc * ((xr[c] - mu) * r);
        }
        const float mean_g = layer ? (float)(sum_g / C) : 0.0f;
        const float mean_gx = (float)(sum_gx / C);
        for (int c = 0; c < C16; c += 16) {
            cpu_v16f gc = out_scale * cpu_v16f_load(gr + c) * cpu_v16f_load(w + c);
            cpu_v16f xhat = (cpu_v16f_load(xr + c) - mu) * r;
            cpu_v16f_store(dxr + c, cpu_v16f_load(dxr + c) + r * (gc - mean_g - xhat * mean_gx));
        }
        for (int c = C16; c < C; c++) {
            float gc = out_scale * gr[c] * w[c];
            float xhat = (xr[c] - mu) * r;
            dxr[c] += r * (gc - mean_g - xhat * mean_gx);
        }
    }
}
CPU_ISA_VARIANTS(norm_backward_rows,
                 (int layer, float *dx, const float *g, const float *x, const float *w,
                  const float *mean, const float *rstd, int n0, int n1, int C,
                  float out_scale),
                 layer, dx, g, x, w, mean, rstd, n0, n1, C, out_scale);

/* Columns c0 .. c1-1 (at most NORM_COL_BLOCK) of the weight and bias gradients: each column
 * summed over rows in row order, in double. */
static inline __attribute__((always_inline)) void norm_param_grads(
    const CpuVectorIsa isa, int layer, float *dweight, float *dbias, const float *g,
    const float *x, const float *mean, const float *rstd, int N, int C, int c0, int c1,
    float out_scale) {
    (void)isa; /* the same code at every width */
    double acc_w[NORM_COL_BLOCK] = {0}, acc_b[NORM_COL_BLOCK] = {0};
    const int width = c1 - c0, whole = width / 8 * 8;
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C + c0, *gr = g + (size_t)n * C + c0;
        const float mu = layer ? mean[n] : 0.0f, r = rstd[n];
        for (int c = 0; c < whole; c += 8) {
            v8f xh;
            __builtin_memcpy(&xh, xr + c, sizeof xh);
            xh = (xh - mu) * r;
            v8d gd = v8d_from_floats(gr + c);
            v8d_store(acc_w + c, v8d_load(acc_w + c) + gd * __builtin_convertvector(xh, v8d));
            v8d_store(acc_b + c, v8d_load(acc_b + c) + gd);
        }
        for (int c = whole; c < width; c++) {
            acc_w[c] += (double)gr[c] * ((xr[c] - mu) * r);
            acc_b[c] += gr[c];
        }
    }
    for (int c = 0; c < width; c++) dweight[c0 + c] += (float)(out_scale * acc_w[c]);
    if (layer && dbias)
        for (int c = 0; c < width; c++) dbias[c0 + c] += (float)(out_scale * acc_b[c]);
}
CPU_ISA_VARIANTS(norm_param_grads,
                 (int layer, float *dweight, float *dbias, const float *g, const float *x,
                  const float *mean, const float *rstd, int N, int C, int c0, int c1,
                  float out_scale),
                 layer, dweight, dbias, g, x, mean, rstd, N, C, c0, c1, out_scale);

void cpu_norm_backward(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                       const void *dout, const void *inp, const void *weight,
                       const float *mean, const float *rstd, int N, int C, float out_scale) {
    const int layer = kind == NORM_LAYER;
    const CpuVectorIsa isa = cpu_vector_isa(be);
    /* input gradient: rows are independent */
#pragma omp parallel for schedule(dynamic, 1)
    for (int n0 = 0; n0 < N; n0 += NORM_ROW_CHUNK)
        norm_backward_rows_for_isa[isa](layer, dinp, dout, inp, weight, mean, rstd, n0,
                                        N - n0 < NORM_ROW_CHUNK ? N : n0 + NORM_ROW_CHUNK, C,
                                        out_scale);
    /* weight and bias gradients: reductions over rows, split over column blocks so that
     * each column is summed by one thread in row order */
#pragma omp parallel for schedule(dynamic, 1)
    for (int c0 = 0; c0 < C; c0 += NORM_COL_BLOCK)
        norm_param_grads_for_isa[isa](layer, dweight, dbias, dout, inp, mean, rstd, N, C, c0,
                                      C - c0 < NORM_COL_BLOCK ? C : c0 + NORM_COL_BLOCK,
                                      out_scale);
}
