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
 * Order: a row sum is 32 partial sums (element c goes to c mod 32, in index order; NORM_LANES
 * in vec_kernels.c) combined in a fixed tree, then the last C mod 32 elements in order;
 * the weight and bias gradients sum each column over rows in row order. The per-row and
 * per-column loops are vec_kernels.h's (one copy per instruction set, the same bits at every
 * width); this file splits rows and columns over threads.
 */
#include "cpu_ops.h"

/* Rows per OpenMP work item. */
enum { NORM_ROW_CHUNK = 32 };

void cpu_norm_forward(Backend *be, NormKind kind, void *out, float *mean, float *rstd,
                      const void *inp, const void *weight, const void *bias, int N, int C,
                      float eps, float out_scale) {
    const int layer = kind == NORM_LAYER;
    const CpuVecKernels *vec = cpu_vec(be);
#pragma omp parallel for schedule(dynamic, 1)
    for (int n0 = 0; n0 < N; n0 += NORM_ROW_CHUNK)
        vec->norm_forward_rows(layer, out, mean, rstd, inp, weight, layer ? bias : NULL, n0,
                               N - n0 < NORM_ROW_CHUNK ? N : n0 + NORM_ROW_CHUNK, C, eps,
                               out_scale);
}

/* With xhat = (x - mean) * rstd (mean = 0 for RMSNorm) and g = s * dout * w:
 *   RMSNorm:   dx = rstd * (g - xhat * mean(g * xhat))
 *   LayerNorm: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
 *   dw[c] += sum_n s * dout[n,c] * xhat[n,c];   db[c] += sum_n s * dout[n,c]
 * (the standard norm backward, e.g. Ba et al. 2016 / llm.c layernorm_backward). */
void cpu_norm_backward(Backend *be, NormKind kind, void *dinp, float *dweight, float *dbias,
                       const void *dout, const void *inp, const void *weight,
                       const float *mean, const float *rstd, int N, int C, float out_scale) {
    const int layer = kind == NORM_LAYER;
    const CpuVecKernels *vec = cpu_vec(be);
    /* input gradient: rows are independent */
#pragma omp parallel for schedule(dynamic, 1)
    for (int n0 = 0; n0 < N; n0 += NORM_ROW_CHUNK)
        vec->norm_backward_rows(layer, dinp, dout, inp, weight, mean, rstd, n0,
                                N - n0 < NORM_ROW_CHUNK ? N : n0 + NORM_ROW_CHUNK, C,
                                out_scale);
    /* weight and bias gradients: reductions over rows, split over column blocks so that
     * each column is summed by one thread in row order */
#pragma omp parallel for schedule(dynamic, 1)
    for (int c0 = 0; c0 < C; c0 += NORM_COL_BLOCK)
        vec->norm_param_grads(layer, dweight, dbias, dout, inp, mean, rstd, N, C, c0,
                              C - c0 < NORM_COL_BLOCK ? C : c0 + NORM_COL_BLOCK,
                              out_scale);
}
