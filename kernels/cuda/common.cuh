/* common.cuh — shared by the CUDA backend's translation units: error checks that name the
 * failing call, the backend's private state (stream, cuBLASLt handle and workspace, GEMM
 * algorithm cache, scratch buffers), small device helpers and the op prototypes (generated
 * from kernels/backend_ops.def).
 *
 * Types: activations and compute weights are bf16 (__nv_bfloat16); everything named f32 in
 * backend.h is float. All work runs on the backend's one stream, in issue order.
 * Determinism: no floating-point atomics anywhere; every reduction has a fixed order that
 * depends only on the shapes (warp butterflies are order-independent because fp32 addition
 * is commutative). cuBLASLt GEMMs are deterministic for a fixed algorithm on one GPU model;
 * the algorithm is chosen once per shape and cached, so repeated calls agree bitwise. */
#ifndef NORMBENCH_CUDA_COMMON_CUH
#define NORMBENCH_CUDA_COMMON_CUH

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* .cu files are compiled only when the CUDA backend is built, so backend.h's CUDA
 * prototypes apply (and check the definitions' signatures). */
#ifndef NB_HAVE_CUDA
#define NB_HAVE_CUDA
#endif
extern "C" {
#include "backend.h"
}

typedef __nv_bfloat16 bf16;

/* ---- error checks: print the call, file and line, then abort ----------------------------- */
static inline void nb_cuda_check(cudaError_t e, const char *call, const char *file, int line) {
    if (e != cudaSuccess) {
        fprintf(stderr, "normbench: CUDA error at %s:%d: %s failed: %s (%s)\n", file, line, call,
                cudaGetErrorString(e), cudaGetErrorName(e));
        fflush(stderr);
        abort();
    }
}
static inline void nb_cublas_check(cublasStatus_t s, const char *call, const char *file,
                                   int line) {
    if (s != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "normbench: cuBLAS error at %s:%d: %s failed: status %d\n", file, line,
                call, (int)s);
        fflush(stderr);
        abort();
    }
}
#define CUDA_CHECK(call) nb_cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) nb_cublas_check((call), #call, __FILE__, __LINE__)
/* after every kernel launch: catches bad launch configurations immediately */
#define LAUNCH_CHECK(name) nb_cuda_check(cudaGetLastError(), "launch of " name, __FILE__, __LINE__)

/* ---- backend state ------------------------------------------------------------------------ */
/* One cached cuBLASLt algorithm per GEMM problem (shape, layouts, types, pointer alignment). */
typedef struct {
    int valid;
    int transa, transb, m, n, k, lda, ldb, ldd, batch, dtype_d;
    long long stride_a, stride_b, stride_d;
    int align_a, align_b, align_d;
    int has_algo; /* 0: the heuristic found none; use cublasGemmStridedBatchedEx */
    cublasLtMatmulAlgo_t algo;
} GemmCacheEntry;

enum { GEMM_CACHE_SIZE = 128 };
enum { SCRATCH_ATTN = 0, SCRATCH_NORM, SCRATCH_EMBED, SCRATCH_REDUCE, SCRATCH_SCHEME, SCRATCH_SLOTS };

typedef struct {
    int device;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    cublasHandle_t blas; /* fallback GEMM path only */
    void *workspace;
    size_t workspace_bytes;
    GemmCacheEntry gemm_cache[GEMM_CACHE_SIZE];
    int gemm_cache_next; /* round-robin replacement once full */
    /* device scratch, one growable buffer per user so that they never overlap */
    void *scratch[SCRATCH_SLOTS];
    size_t scratch_bytes[SCRATCH_SLOTS];
    /* RoPE cos/sin table on the device, same layout and values as the CPU backend's
     * (kernels/cpu/rope.c): rope_cs[t*HS + i] = cos, [t*HS + HS/2 + i] = sin */
    float *rope_cs;
    int rope_T, rope_HS;
    float rope_theta;
    /* host staging (bf16 conversions, embedding sort) */
    void *host_buf;
    size_t host_bytes;
} CudaState;

static inline CudaState *cu_state(Backend *be) { return (CudaState *)be->impl; }
static inline cudaStream_t cu_stream(Backend *be) { return cu_state(be)->stream; }

/* device scratch of at least `bytes` (contents undefined); stays valid until the next call
 * for the same slot */
void *cu_scratch(Backend *be, int slot, size_t bytes);
/* host staging buffer of at least `bytes` */
void *cu_host_buf(Backend *be, size_t bytes);

static inline unsigned cu_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 2147483647u ? 2147483647u : b);
}
/* blocks of 256 threads for a grid-stride loop over n items, capped where more blocks only
 * add launch overhead (every grid-stride kernel of the backend uses it) */
static inline unsigned cu_grid(size_t n) {
    unsigned b = cu_blocks(n, 256);
    return b > 65535u * 8 ? 65535u * 8 : b;
}
/* Calls run(first, count) over B sequences of per_seq items each, whole sequences per call
 * and fewer than 2^30 items per call (at least one sequence), so that the kernels it
 * launches can index with 32-bit arithmetic. */
template <typename F>
static void cu_by_sequences(int B, size_t per_seq, F run) {
    if (B <= 0 || per_seq == 0) return;
    size_t seqs = ((size_t)1 << 30) / per_seq;
    if (seqs == 0) seqs = 1;
    for (size_t b0 = 0; b0 < (size_t)B; b0 += seqs) {
        size_t nb = (size_t)B - b0 < seqs ? (size_t)B - b0 : seqs;
        run(b0 * per_seq, nb * per_seq);
    }
}
/* rounds up to a multiple of 256 bytes (sub-buffers carved out of one scratch) */
static inline size_t cu_align256(size_t b) { return (b + 255) & ~(size_t)255; }

/* ---- device helpers ---------------------------------------------------------------------- */
__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* N elements moved as one aligned access (N = 8 bf16 or 4 float: one 16-byte load/store) */
template <typename T, int N> struct alignas(sizeof(T) * N) Vec { T v[N]; };
static inline int aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

__device__ __forceinline__ float ld(const bf16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ bf16 tobf(float x) { return __float2bfloat16_rn(x); }

/* ---- GEMM (matmul.cu) -------------------------------------------------------------------- */
/* Column-major D[m,n] (+)= alpha op(A)[m,k] op(B)[k,n] (+ beta D), A and B bf16, D bf16
 * (CUDA_R_16BF) or f32 (CUDA_R_32F), fp32 compute; `batch` problems strided by stride_*. */
void cu_gemm(Backend *be, int transa, int transb, int m, int n, int k, float alpha,
             const void *A, int lda, long long stride_a, const void *B, int ldb,
             long long stride_b, float beta, void *D, cudaDataType_t dtype_d, int ldd,
             long long stride_d, int batch);

/* ---- the ops (one file per group) -------------------------------------------------------- */
/* One cu_<op> per entry of kernels/backend_ops.def (its contract is documented there),
 * generated from that list. C++ linkage (only cuda_backend.cu's table refers to them), so a
 * definition whose signature drifts from the interface is taken for an overload and the
 * build fails at the link, where the table's entry stays undefined. */
#define NB_OP(ret, name, params) ret cu_##name params;
#include "backend_ops.def"

#endif
