/* cpu_ops.h — private declarations shared by the CPU reference backend (every file in
 * kernels/cpu/): its state, its helpers (scratch, RoPE table, the vector loops'
 * table) and the prototypes of its ops, generated from kernels/backend_ops.def.
 *
 * Every op implements the matching entry of kernels/backend_ops.def in plain C11
 * fp32 (activations are fp32 on the CPU, so every `void *` act buffer is a float array).
 * Parallelism: OpenMP `parallel for` over independent rows / columns / (batch, head) pairs,
 * never atomics or cross-thread reductions, so that for a fixed thread count every op is
 * bitwise reproducible. Scheduling is dynamic in chunks: what an iteration computes never
 * depends on which thread runs it, and on a shared machine a thread that loses its core
 * would otherwise hold up every barrier for a whole time slice (static schedules ran 2
 * threads at 1/10 of 1 thread's speed beside another busy process). GEMMs go through OpenBLAS cblas_sgemm.
 */
#ifndef NORMBENCH_CPU_OPS_H
#define NORMBENCH_CPU_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* The instruction set of the backend's own vector loops (attention, SwiGLU, norms, AdamW):
 * that of the BLAS kernels in use, so the one choice src/cpu_kernels.c makes (and a user's
 * OPENBLAS_CORETYPE) sets both, and Backend.kernels names both. Results are the same bits at
 * every width: the same per-lane operations in the same order, no fused multiply-add
 * (-ffp-contract=off), reductions in fixed trees (test_kernels.c checks every op so built). */
typedef enum { CPU_VECTOR_4 = 0, CPU_VECTOR_AVX2, CPU_VECTOR_AVX512 } CpuVectorIsa;

/* Backend-private state (Backend.impl). */
typedef struct {
    int threads;            /* OpenMP thread count (OpenBLAS itself runs single-threaded) */
    CpuVectorIsa vector_isa;
    float *scratch;         /* per-thread scratch of attention (packed K^T or V^T and dS of
                             * one (b, h) pair), grown lazily */
    size_t scratch_floats;  /* capacity of scratch in floats */
    /* RoPE cos/sin table for positions 0..rope_T-1 of head size rope_HS and base rope_theta:
     * rope_cs[t*HS + i] = cos, rope_cs[t*HS + HS/2 + i] = sin of pair i at position t;
     * rebuilt when a call needs more positions or another (HS, theta) */
    float *rope_cs;
    int rope_T, rope_HS;
    float rope_theta;
} CpuImpl;

/* The CPU backend's vector loops, one copy per instruction set (vec_kernels.c, where each
 * is stated): the copies give the same bits. */
enum { NORM_COL_BLOCK = 64 }; /* norms: columns per weight-gradient work item */
typedef struct {
    float b1, b2, lr, eps, wd, grad_scale, bc1, bc2; /* bc1 = 1 - b1^t, bc2 = 1 - b2^t */
} CpuAdamWConstants;
typedef struct {
    void (*combine)(float *out, size_t ldo, const float *a, size_t lda, size_t inca,
                    const float *B, size_t ldb, int R, int K, int w, int accumulate);
    void (*softmax_rows)(float *p, size_t T, float *s, size_t Tp, int t0, int rows,
                         float scale);
    void (*softmax_backward_rows)(float *ds, size_t Tp, const float *p, size_t T,
                                  const float *dp, int t0, int rows, float scale);
    void (*swiglu_forward_span)(float *o, const float *g, const float *u, size_t n);
    void (*swiglu_backward_span)(float *dg, float *du, const float *d, const float *g,
                                 const float *u, size_t n);
    void (*norm_forward_rows)(int layer, float *o, float *mean, float *rstd, const float *x,
                              const float *w, const float *b, int n0, int n1, int C, float eps,
                              float out_scale);
    void (*norm_backward_rows)(int layer, float *dx, const float *g, const float *x,
                               const float *w, const float *mean, const float *rstd, int n0,
                               int n1, int C, float out_scale);
    void (*norm_param_grads)(int layer, float *dweight, float *dbias, const float *g,
                             const float *x, const float *mean, const float *rstd, int N, int C,
                             int c0, int c1, float out_scale);
    void (*adamw_span)(float *restrict master, const float *restrict grad, float *restrict m,
                       float *restrict v, size_t n, const CpuAdamWConstants *k);
} CpuVecKernels;
extern const CpuVecKernels *const cpu_vec_kernels[]; /* indexed by CpuVectorIsa */

/* The copy of the backend's instruction set (CpuImpl.vector_isa). */
static inline const CpuVecKernels *cpu_vec(const Backend *be) {
    return cpu_vec_kernels[((const CpuImpl *)be->impl)->vector_isa];
}

/* Returns a scratch area of at least `floats` floats owned by the backend (grown when too
 * small, so steady-state training allocates nothing); NULL when out of memory. */
float *cpu_scratch(Backend *be, size_t floats);

/* rope.c: the backend's RoPE table for (T, HS, theta) (see CpuImpl.rope_cs); NULL when out of
 * memory (the caller then computes the angles itself). */
const float *cpu_rope_table(Backend *be, int T, int HS, float theta);

/* One line describing the CPU ("<model name>, <n> hardware threads"); used by
 * backend_describe. */
void cpu_describe(char *out, size_t outlen);
/* Fills `out` with the CPU model name from /proc/cpuinfo ("unknown CPU" when absent). */
void cpu_model_name(char *out, size_t outlen);

/* The ops: one cpu_<op> per entry of kernels/backend_ops.def (its contract is documented
 * there), generated from that list so that a definition whose signature drifts from the
 * interface fails to compile. Each is defined in the file named after its group: memory.c
 * (alloc .. synchronize), embedding.c, matmul.c, norm.c, rope.c, attention.c, swiglu.c,
 * residual.c (residual_forward, scaled_add), crossentropy.c, adamw.c and reduce.c
 * (sumsq_f32). */
#define NB_OP(ret, name, params) ret cpu_##name params;
#include "backend_ops.def"

#endif
