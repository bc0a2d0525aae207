/* matmul.c — the linear layers: y = x W^T with W stored [out, in] (PyTorch layout), and both
 * backward products, all through OpenBLAS cblas_sgemm (row-major).
 *
 * Threading: OpenBLAS runs single-threaded (cpu_backend_create sets it so) and the products
 * are split over the backend's OpenMP threads here, each thread calling cblas_sgemm on
 * blocks of output rows. With OpenBLAS's own thread pool beside the OpenMP one, each pool
 * busy-waits while the other works, and on a small machine the two fight for the same cores
 * (2 threads ran slower than 1). Splitting over output rows never splits a sum, so the
 * result of every element is one sgemm's, the blocks fixed for a given thread count. */
#include <cblas.h>

#include "cpu_ops.h"

/* Row blocks are multiples of this (the sgemm kernels' register block). */
enum { MM_ROW_ALIGN = 16 };
/* Below this many multiply-adds a product runs on one thread. */
#define MM_PARALLEL_MIN 65536.0
/* With several threads, the rows of dinp / out are cut into about this many blocks per
 * thread (but never below MM_MIN_ROWS rows): threads take blocks dynamically, so one that
 * loses its core on a shared machine holds up the others for one block, not for half the
 * product. Two, not more: every block re-packs all of w, and llama71m's training ran 5-8%
 * faster with 2 than with 4 (3 interleaved rounds, bench/results/cpu-kernels-2026-11-30.md). */
enum { MM_BLOCKS_PER_THREAD = 2, MM_MIN_ROWS = 128 };

static int mm_threads(Backend *be, double madds) {
    CpuImpl *impl = be->impl;
    return madds < MM_PARALLEL_MIN ? 1 : impl->threads;
}

static int round_up_int(int x, int to) { return (x + to - 1) / to * to; }

/* rows per block when n rows are shared by nt threads (n itself when nt == 1) */
static int row_block(int n, int nt, int parts_per_thread, int min_rows) {
    if (nt <= 1) return n;
    int rows = round_up_int((n + nt * parts_per_thread - 1) / (nt * parts_per_thread),
                            MM_ROW_ALIGN);
    return rows < min_rows ? min_rows : rows;
}

/* out[N,OC] = inp[N,IC] w[OC,IC]^T */
void cpu_matmul_forward(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                        int OC) {
    if (N <= 0 || OC <= 0) return;
    const float *x = inp, *wt = w;
    float *y = out;
    const int nt = mm_threads(be, (double)N * IC * OC);
    const int rows = row_block(N, nt, MM_BLOCKS_PER_THREAD, MM_MIN_ROWS);
    const int blocks = (N + rows - 1) / rows;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int blk = 0; blk < blocks; blk++) {
        int lo = blk * rows, hi = lo + rows < N ? lo + rows : N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, hi - lo, OC, IC, 1.0f,
                    x + (size_t)lo * IC, IC, wt, IC, 0.0f, y + (size_t)lo * OC, OC);
    }
}

/* dinp[N,IC] += dout[N,OC] w[OC,IC]      (skipped when dinp is NULL)
 * dw[OC,IC]  += dout[N,OC]^T inp[N,IC]   (beta = 1: both accumulate, as backend.h asks)
 * One dynamic loop over the blocks of both: dw split over its rows oc into one block per
 * thread (each block re-packs all of inp, so no finer), the sum over n never split; then
 * dinp over row blocks of n. */
void cpu_matmul_backward(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                         const void *w, int N, int IC, int OC) {
    if (N <= 0 || IC <= 0 || OC <= 0) return;
    const float *g = dout, *x = inp, *wt = w;
    float *dx = dinp;
    const int nt = mm_threads(be, (double)N * IC * OC);
    const int wrows = row_block(OC, nt, 1, MM_ROW_ALIGN);
    const int wblocks = (OC + wrows - 1) / wrows;
    const int rows = row_block(N, nt, MM_BLOCKS_PER_THREAD, MM_MIN_ROWS);
    const int xblocks = dx ? (N + rows - 1) / rows : 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int task = 0; task < wblocks + xblocks; task++) {
        if (task < wblocks) {
            int lo = task * wrows, hi = lo + wrows < OC ? lo + wrows : OC;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, hi - lo, IC, N, 1.0f, g + lo,
                        OC, x, IC, 1.0f, dw + (size_t)lo * IC, IC);
        } else {
            int lo = (task - wblocks) * rows, hi = lo + rows < N ? lo + rows : N;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, hi - lo, IC, OC, 1.0f,
                        g + (size_t)lo * OC, OC, wt, IC, 1.0f, dx + (size_t)lo * IC, IC);
        }
    }
}
