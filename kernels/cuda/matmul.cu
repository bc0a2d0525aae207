/* matmul.cu — GEMMs through cuBLASLt: bf16 A and B, fp32 compute and scale, bf16 or fp32 D.
 *
 * Row-major X[r,c] is column-major X^T, so with y = x W^T (x [N,IC], W [OC,IC], y [N,OC]):
 *   forward   y^T[OC,N]  = op(W)[OC,IC] x^T[IC,N]   (W stored col-major [IC,OC], op = T)
 *   dinp      dx^T[IC,N] += W^T[IC,OC] dy^T[OC,N]          (bf16 D, beta = 1)
 *   dweight   dW^T[IC,OC] += x^T[IC,N] dy[N,OC]             (fp32 D, beta = 1)
 * beta = 1 makes cuBLASLt do the accumulation "adds into its outputs" in fp32 before the
 * single rounding to the output type.
 *
 * The algorithm for each distinct problem (shape, transposes, leading dimensions, batch
 * strides, output type and pointer alignment) is chosen once with the heuristic and cached
 * in the backend state; a repeated problem reuses it, which also keeps results bitwise
 * reproducible (every cuBLASLt reduction scheme is sequential: no atomics). If the heuristic
 * offers no algorithm, cublasGemmStridedBatchedEx runs the problem instead. */
#include <string.h>

#include "common.cuh"

/* The alignment cuBLASLt may assume for an operand: the largest power of two (at most 256)
 * dividing its address, its leading dimension in bytes and, when batched, its batch stride
 * in bytes, so that every column of every batch entry starts that aligned. */
static int operand_align(const void *p, int ld, long long stride, int batch, int esize) {
    uint64_t a = (uint64_t)(uintptr_t)p | ((uint64_t)ld * (uint64_t)esize);
    if (batch > 1) a |= (uint64_t)stride * (uint64_t)esize;
    int al = 256;
    while (al > 1 && (a % (uint64_t)al) != 0) al >>= 1;
    return al;
}

static void layout(cublasLtMatrixLayout_t *l, cudaDataType_t t, int rows, int cols, int ldm,
                   int batch, long long stride) {
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(l, t, (uint64_t)rows, (uint64_t)cols, (int64_t)ldm));
    if (batch > 1) {
        int32_t b = batch;
        int64_t s = stride;
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b,
                                                      sizeof b));
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(
            *l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &s, sizeof s));
    }
}

void cu_gemm(Backend *be, int transa, int transb, int m, int n, int k, float alpha,
             const void *A, int lda, long long stride_a, const void *B, int ldb,
             long long stride_b, float beta, void *D, cudaDataType_t dtype_d, int ldd,
             long long stride_d, int batch) {
    CudaState *st = cu_state(be);
    if (m <= 0 || n <= 0 || batch <= 0) return;
    if (k <= 0) { /* D = beta D: nothing for beta = 1; callers never pass k = 0 with beta 0 */
        if (beta != 1.0f) {
            fprintf(stderr, "normbench: cu_gemm: k = 0 with beta != 1 is not supported\n");
            abort();
        }
        return;
    }

    GemmCacheEntry key;
    memset(&key, 0, sizeof key);
    key.valid = 1;
    key.transa = transa;
    key.transb = transb;
    key.m = m;
    key.n = n;
    key.k = k;
    key.lda = lda;
    key.ldb = ldb;
    key.ldd = ldd;
    key.batch = batch;
    key.dtype_d = (int)dtype_d;
    key.stride_a = batch > 1 ? stride_a : 0;
    key.stride_b = batch > 1 ? stride_b : 0;
    key.stride_d = batch > 1 ? stride_d : 0;
    key.align_a = operand_align(A, lda, stride_a, batch, 2);
    key.align_b = operand_align(B, ldb, stride_b, batch, 2);
    key.align_d = operand_align(D, ldd, stride_d, batch, dtype_d == CUDA_R_32F ? 4 : 2);

    GemmCacheEntry *hit = NULL;
    for (int i = 0; i < GEMM_CACHE_SIZE; i++) {
        GemmCacheEntry *e = &st->gemm_cache[i];
        if (e->valid && e->transa == key.transa && e->transb == key.transb && e->m == key.m &&
            e->n == key.n && e->k == key.k && e->lda == key.lda && e->ldb == key.ldb &&
            e->ldd == key.ldd && e->batch == key.batch && e->dtype_d == key.dtype_d &&
            e->stride_a == key.stride_a && e->stride_b == key.stride_b &&
            e->stride_d == key.stride_d && e->align_a == key.align_a &&
            e->align_b == key.align_b && e->align_d == key.align_d) {
            hit = e;
            break;
        }
    }

    cublasOperation_t opa = transa ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t opb = transb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulDesc_t desc;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa,
                                                sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb,
                                                sizeof opb));
    cublasLtMatrixLayout_t la, lb, lc;
    layout(&la, CUDA_R_16BF, transa ? k : m, transa ? m : k, lda, batch, stride_a);
    layout(&lb, CUDA_R_16BF, transb ? n : k, transb ? k : n, ldb, batch, stride_b);
    layout(&lc, dtype_d, m, n, ldd, batch, stride_d);

    if (!hit) {
        cublasLtMatmulPreference_t pref;
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
        uint64_t ws = st->workspace_bytes;
        uint32_t aa = (uint32_t)key.align_a, ab = (uint32_t)key.align_b,
                 ad = (uint32_t)key.align_d;
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &aa, sizeof aa));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &ab, sizeof ab));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ad, sizeof ad));
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
            pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ad, sizeof ad));
        cublasLtMatmulHeuristicResult_t res;
        memset(&res, 0, sizeof res);
        int found = 0;
        cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(st->lt, desc, la, lb, lc, lc, pref, 1,
                                                          &res, &found);
        CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
        hit = &st->gemm_cache[st->gemm_cache_next];
        st->gemm_cache_next = (st->gemm_cache_next + 1) % GEMM_CACHE_SIZE;
        *hit = key;
        hit->has_algo =
            s == CUBLAS_STATUS_SUCCESS && found > 0 && res.state == CUBLAS_STATUS_SUCCESS;
        if (hit->has_algo) hit->algo = res.algo;
    }

    if (hit->has_algo) {
        CUBLAS_CHECK(cublasLtMatmul(st->lt, desc, &alpha, A, la, B, lb, &beta, D, lc, D, lc,
                                    &hit->algo, st->workspace, st->workspace_bytes, st->stream));
    } else {
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(
            st->blas, opa, opb, m, n, k, &alpha, A, CUDA_R_16BF, lda, stride_a, B, CUDA_R_16BF,
            ldb, stride_b, &beta, D, dtype_d, ldd, stride_d, batch, CUBLAS_COMPUTE_32F,
            CUBLAS_GEMM_DEFAULT));
    }
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lc));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(desc));
}

/* out[N,OC] = inp[N,IC] w[OC,IC]^T  ->  out^T[OC,N] = op(w)[OC,IC] inp^T[IC,N] */
void cu_matmul_forward(Backend *be, void *out, const void *inp, const void *w, int N, int IC,
                       int OC) {
    if (IC == 0) { /* empty sum */
        cu_zero(be, out, (size_t)N * OC * sizeof(bf16));
        return;
    }
    cu_gemm(be, 1, 0, OC, N, IC, 1.0f, w, IC, 0, inp, IC, 0, 0.0f, out, CUDA_R_16BF, OC, 0, 1);
}

void cu_matmul_backward(Backend *be, void *dinp, float *dw, const void *dout, const void *inp,
                        const void *w, int N, int IC, int OC) {
    /* dinp^T[IC,N] += w^T[IC,OC] dout^T[OC,N]: A = w as stored (col-major [IC,OC]) */
    if (dinp) cu_gemm(be, 0, 0, IC, N, OC, 1.0f, w, IC, 0, dout, OC, 0, 1.0f, dinp,
                      CUDA_R_16BF, IC, 0, 1);
    /* dw^T[IC,OC] += inp^T[IC,N] dout[N,OC]: B = dout (col-major [OC,N]) transposed */
    if (dw) cu_gemm(be, 0, 1, IC, OC, N, 1.0f, inp, IC, 0, dout, OC, 0, 1.0f, dw, CUDA_R_32F,
                    IC, 0, 1);
}
