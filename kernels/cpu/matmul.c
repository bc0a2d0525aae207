/* matmul.c — the linear layers: y = x W^T with W stored [out, in] (PyTorch layout), and both
 * backward products, all through OpenBLAS cblas_sgemm (row-major).
 *
 * Threading: OpenBLAS runs single-threaded (cpu_backend_create sets it so) and the products
 * are split over the backend's OpenMP threads here, each thread calling cblas_sgemm on its
 * own block of output rows. With OpenBLAS's own thread pool beside the OpenMP one, each pool
 * busy-waits while the other works, and on a small machine the two fight for the same cores
 * (2 threads ran slower than 1). Splitting over output rows never splits a sum, so the
 * result of every element is one sgemm's, fixed for a given thread count. */
#include <cblas.h>
#include <omp.h>

#include "cpu_ops.h"

/* Rows per thread are rounded to this (the sgemm kernels' register block). */
enum { MM_ROW_ALIGN = 16 };
/* Below this many multiply-adds a product runs on one thread. */
#define MM_PARALLEL_MIN 65536.0

/* [lo, hi) of the `parts` near-equal blocks of n rows, block `p` */
static void split_rows(int n, int parts, int p, int *lo, int *hi) {
    int chunk = (n + parts - 1) / parts;
    chunk = (chunk + MM_ROW_ALIGN - 1) / MM_ROW_ALIGN * MM_ROW_ALIGN;
    *lo = p * chunk < n ? p * chunk : n;
    *hi = *lo + chunk < n ? *lo + chunk : n;
}

static int mm_threads(Backend *be, double madds) {
    CpuImpl *impl = be->impl;
    return madds < MM_PARALLEL_MIN ? 1 : impl->threads;
}

/* out[N,OC] = inp[N,IC] w[OC,IC]^T */
void cpu_matmul_forward(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                        int OC) {
    if (N <= 0 || OC <= 0) return;
    const float *x = inp, *wt = w;
    float *y = out;
    int nt = mm_threads(be, (double)N * IC * OC);
#pragma omp parallel num_threads(nt)
    {
        int parts = omp_get_num_threads(), lo, hi;
        split_rows(N, parts, omp_get_thread_num(), &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OC, IC, 1.0f,
                        x + (size_t)lo * IC, IC, wt, IC, 0.0f, y + (size_t)lo * OC, OC);
    }
}

/* dinp[N,IC] += dout[N,OC] w[OC,IC]      (skipped when dinp is NULL)
 * dw[OC,IC]  += dout[N,OC]^T inp[N,IC]   (beta = 1: both accumulate, as backend.h asks)
 * dinp is split over its rows n, dw over its rows oc (so the sum over n stays whole). */
void cpu_matmul_backward(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                         const void *w, int N, int IC, int OC) {
    if (N <= 0 || IC <= 0 || OC <= 0) return;
    const float *g = dout, *x = inp, *wt = w;
    float *dx = dinp;
    int nt = mm_threads(be, (double)N * IC * OC);
#pragma omp parallel num_threads(nt)
    {
        int parts = omp_get_num_threads(), p = omp_get_thread_num(), lo, hi;
        if (dx) {
            split_rows(N, parts, p, &lo, &hi);
            if (hi > lo)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, IC, OC, 1.0f,
                            g + (size_t)lo * OC, OC, wt, IC, 1.0f, dx + (size_t)lo * IC, IC);
        }
        split_rows(OC, parts, p, &lo, &hi);
        if (hi > lo)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, IC, N, 1.0f, g + lo,
                        OC, x, IC, 1.0f, dw + (size_t)lo * IC, IC);
    }
}
