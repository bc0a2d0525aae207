/* matmul.c — the linear layers: y = x W^T with W stored [out, in] (PyTorch layout), and both
 * backward products, all through OpenBLAS cblas_sgemm (row-major). */
#include <cblas.h>

#include "cpu_ops.h"

/* out[N,OC] = inp[N,IC] w[OC,IC]^T */
void cpu_matmul_forward(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                        int OC) {
    (void)be;
    if (N <= 0 || OC <= 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, IC, 1.0f, inp, IC, w, IC,
                0.0f, out, OC);
}

/* dinp[N,IC] += dout[N,OC] w[OC,IC]      (skipped when dinp is NULL)
 * dw[OC,IC]  += dout[N,OC]^T inp[N,IC]   (beta = 1: both accumulate, as backend.h asks) */
void cpu_matmul_backward(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                         const void *w, int N, int IC, int OC) {
    (void)be;
    if (N <= 0 || IC <= 0 || OC <= 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, IC, OC, 1.0f, dout, OC, w, IC,
                    1.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, IC, N, 1.0f, dout, OC, inp, IC,
                1.0f, dw, IC);
}
