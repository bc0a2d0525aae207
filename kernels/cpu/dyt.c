/* dyt.c — the ops a scheme adds on the CPU: DyT (Zhu et al. 2025, "Transformers without
 * Normalization", eq. 1), out = s * (gamma * tanh(alpha x) + beta) with a learnable scalar
 * alpha, in place of a norm; and the learnable branch scale of LayerScale (Touvron et al.
 * 2021, per channel) and SkipInit (De & Smith 2020, one scalar), out = lambda * x.
 *
 * Reductions (dalpha, dgamma, dbeta, dlambda) accumulate in double in a fixed order: per row
 * (or per column block over rows) by one thread each, then the per-row partials (double)
 * summed in row order, so the results do not depend on the thread count or scheduling.
 */
#include <math.h>
#include <stdlib.h>

#include "cpu_ops.h"

enum { COL_BLOCK = 64 };

void cpu_dyt_forward(Backend *be, void *out, const void *inp, const void *alpha,
                     const void *weight, const void *bias, int N, int C, float out_scale) {
    (void)be;
    float *o = out;
    const float *x = inp, *w = weight, *b = bias;
    const float a = *(const float *)alpha;
#pragma omp parallel for schedule(dynamic, 32)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * C;
        float *orow = o + (size_t)n * C;
        for (int c = 0; c < C; c++)
            orow[c] = out_scale * (w[c] * tanhf(a * xr[c]) + (b ? b[c] : 0.0f));
    }
}

/* sum over c of out_scale * g * w * (1 - t^2) * x for row n (dalpha's share of the row),
 * adding the row's input gradient into dxr */
static double dyt_row(const float *xr, const float *gr, const float *w, float a, float out_scale,
                      int C, float *dxr) {
    double acc = 0.0;
    for (int c = 0; c < C; c++) {
        float t = tanhf(a * xr[c]);
        float k = out_scale * gr[c] * w[c] * (1.0f - t * t);
        dxr[c] += k * a;
        acc += (double)k * xr[c];
    }
    return acc;
}

void cpu_dyt_backward(Backend *be, void *dinp, float *dalpha, float *dweight, float *dbias,
                      const void *dout, const void *inp, const void *alpha, const void *weight,
                      int N, int C, float out_scale) {
    (void)be;
    float *dx = dinp;
    const float *g = dout, *x = inp, *w = weight;
    const float a = *(const float *)alpha;
    double *row = malloc(sizeof(double) * (size_t)N); /* per-row partials of dalpha */
    double total = 0.0;
    if (row) {
#pragma omp parallel for schedule(dynamic, 32)
        for (int n = 0; n < N; n++)
            row[n] = dyt_row(x + (size_t)n * C, g + (size_t)n * C, w, a, out_scale, C,
                             dx + (size_t)n * C);
        for (int n = 0; n < N; n++) total += row[n];
        free(row);
    } else { /* the same sums, serially */
        for (int n = 0; n < N; n++)
            total += dyt_row(x + (size_t)n * C, g + (size_t)n * C, w, a, out_scale, C,
                             dx + (size_t)n * C);
    }
    dalpha[0] += (float)total;
    int blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        double acc_w[COL_BLOCK] = {0}, acc_b[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * C, *gr = g + (size_t)n * C;
            for (int c = c0; c < c1; c++) {
                acc_w[c - c0] += (double)gr[c] * tanhf(a * xr[c]);
                acc_b[c - c0] += gr[c];
            }
        }
        for (int c = c0; c < c1; c++) dweight[c] += (float)(out_scale * acc_w[c - c0]);
        if (dbias)
            for (int c = c0; c < c1; c++) dbias[c] += (float)(out_scale * acc_b[c - c0]);
    }
}

void cpu_branch_scale_forward(Backend *be, void *out, const void *inp, const void *scale, int N,
                              int C, int SC) {
    (void)be;
    float *o = out;
    const float *x = inp, *s = scale;
#pragma omp parallel for schedule(dynamic, 32)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            o[(size_t)n * C + c] = s[SC == 1 ? 0 : c] * x[(size_t)n * C + c];
}

void cpu_branch_scale_backward(Backend *be, void *dinp, float *dscale, const void *dout,
                               const void *inp, const void *scale, int N, int C, int SC) {
    (void)be;
    float *dx = dinp;
    const float *g = dout, *x = inp, *s = scale;
#pragma omp parallel for schedule(dynamic, 32)
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++) dx[(size_t)n * C + c] += s[SC == 1 ? 0 : c] * g[(size_t)n * C + c];
    if (SC == 1) {
        double *row = malloc(sizeof(double) * (size_t)N), total = 0.0;
#pragma omp parallel for schedule(dynamic, 32) if (row)
        for (int n = 0; n < N; n++) {
            double acc = 0.0;
            for (int c = 0; c < C; c++) acc += (double)g[(size_t)n * C + c] * x[(size_t)n * C + c];
            if (row) row[n] = acc;
            else total += acc; /* serial when out of memory: the same order */
        }
        if (row)
            for (int n = 0; n < N; n++) total += row[n];
        free(row);
        dscale[0] += (float)total;
        return;
    }
    int blocks = (C + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(dynamic, 1)
    for (int blk = 0; blk < blocks; blk++) {
        int c0 = blk * COL_BLOCK, c1 = c0 + COL_BLOCK < C ? c0 + COL_BLOCK : C;
        double acc[COL_BLOCK] = {0};
        for (int n = 0; n < N; n++)
            for (int c = c0; c < c1; c++) acc[c - c0] += (double)g[(size_t)n * C + c] * x[(size_t)n * C + c];
        for (int c = c0; c < c1; c++) dscale[c] += (float)acc[c - c0];
    }
}
