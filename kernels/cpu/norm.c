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
 * the backward are accumulated in double, in index order, then rounded to fp32; the stored
 * mean/rstd are the fp32 values, and forward and backward both use those fp32 values, so
 * the backward differentiates exactly the function the forward computed (up to rounding).
 */
#include <math.h>

#include "cpu_ops.h"

/* Columns per work item of the weight/bias gradient reduction over rows. */
enum { NORM_COL_BLOCK = 64 };

void cpu_norm_forward(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                      const void *inp, const void *weight, const void *bias, int N, int C,
                      float eps, float out_scale) {
    (void)be;
    float *o = out;
    const float *x = inp, *w = weight, *b = bias;
    const int layer = kind == NORM_LAYER;
#pragma omp parallel for schedule(dynamic, 32)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *orow = o + (size_t)n * C;
        double mu = 0.0;
        if (layer) {
            for (int c = 0; c < C; c++) mu += xr[c];
            mu /= C;
        }
        /* two-pass: second moment about the (double) mean; about 0 for RMSNorm */
        double m2 = 0.0;
        for (int c = 0; c < C; c++) {
            double d = xr[c] - mu;
            m2 += d * d;
        }
        m2 /= C;
        float mu_f = (float)mu;
        float r = (float)(1.0 / sqrt(m2 + (double)eps));
        if (layer && mean) mean[n] = mu_f;
        rstd[n] = r;
        if (layer && b) {
            for (int c = 0; c < C; c++)
                orow[c] = out_scale * ((xr[c] - mu_f) * r * w[c] + b[c]);
        } else if (layer) {
            for (int c = 0; c < C; c++) orow[c] = out_scale * ((xr[c] - mu_f) * r * w[c]);
        } else {
            for (int c = 0; c < C; c++) orow[c] = out_scale * (xr[c] * r * w[c]);
        }
    }
}

/* With xhat = (x - mean) * rstd (mean = 0 for RMSNorm) and g = s * dout * w:
 *   RMSNorm:   dx = rstd * (g - xhat * mean(g * xhat))
 *   LayerNorm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dw[c] += sum_n s * dout[n,c] * xhat[n,c];   db[c] += sum_n s * dout[n,c]
 * (the standard norm backward, e.g. Ba et al. 2016 / llm.c layernorm_backward). */
void cpu_norm_backward(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                       const void *dout, const void *inp, const void *weight,
                       const float *mean, const float *rstd, int N, int C, float out_scale) {
    (void)be;
    float *dx = dinp;
    const float *g = dout, *x = inp, *w = weight;
    const int layer = kind == NORM_LAYER;

    /* input gradient: rows are independent */
#pragma omp parallel for schedule(dynamic, 32)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C, *gr = g + (size_t)n * C;
        float *dxr = dx + (size_t)n * C;
        float mu = layer ? mean[n] : 0.0f, r = rstd[n];
        double sum_g = 0.0, sum_gx = 0.0;
        for (int c = 0; c < C; c++) {
            double gc = (double)out_scale * gr[c] * w[c];
            sum_g += gc;
            sum_gx += gc * ((xr[c] - mu) * r);
        }
        float mean_g = layer ? (float)(sum_g / C) : 0.0f;
        float mean_gx = (float)(sum_gx / C);
        for (int c = 0; c < C; c++) {
            float gc = out_scale * gr[c] * w[c];
            float xhat = (xr[c] - mu) * r;
            dxr[c] += r * (gc - mean_g - xhat * mean_gx);
        }
    }

    /* weight and bias gradients: reductions over rows, split over column blocks so that
     * each column is summed by one thread in row order */
    int blocks = (C + NORM_COL_BLOCK - 1) / NORM_COL_BLOCK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = blk * NORM_COL_BLOCK;
        int c1 = c0 + NORM_COL_BLOCK < C ? c0 + NORM_COL_BLOCK : C;
        double acc_w[NORM_COL_BLOCK] = {0}, acc_b[NORM_COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *gr = g + (size_t)n * C;
            float mu = layer ? mean[n] : 0.0f, r = rstd[n];
            for (int c = c0; c < c1; c++) {
                acc_w[c - c0] += (double)gr[c] * ((xr[c] - mu) * r);
                acc_b[c - c0] += gr[c];
            }
        }
        for (int c = c0; c < c1; c++) dweight[c] += (float)(out_scale * acc_w[c - c0]);
        if (layer && dbias)
            for (int c = c0; c < c1; c++) dbias[c] += (float)(out_scale * acc_b[c - c0]);
    }
}
