/* spec64.h — the float64 specification of every arithmetic op of kernels/backend.h, forward
 * AND backward: what each op computes, written as plain loops over the textbook formula (cited
 * beside each function in spec64.c), to be read first and run second. The CPU backend's
 * tests (tests/test_kernels.c) compare every op, forward and backward, against these
 * functions; the model tests build a float64 full model out of the forwards.
 *
 * Conventions, the same as backend.h's so that a spec call reads like the op it specifies:
 *   - shapes and layouts: row-major; N positions, C channels; linear weights [out, in]
 *     (y = x W^T); q/k/v/out of attention [B,T,NH*HS]; RoPE's x [B,T,NH,HS];
 *   - forwards WRITE their outputs; backwards ADD into their gradient outputs (the caller
 *     zeroes them), except cross-entropy's dlogits, which is written, as in backend.h;
 *   - every dimension is positive; nothing is allocated on the heap.
 * What the spec does not cover: the memory ops (alloc, zero, copy, upload/download,
 * master_to_compute, synchronize) and attention_saved_bytes, which have no arithmetic; their
 * contracts are tested directly in test_kernels.c. The one difference from backend.h: the
 * norm backward takes the input and recomputes its statistics in double (it specifies the
 * derivative of the function, not of the fp32 statistics a backend saved).
 * Test-only: nothing here is linked into normbench itself. */
#ifndef NORMBENCH_SPEC64_H
#define NORMBENCH_SPEC64_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* --- embedding ---------------------------------------------------------------------------- */
/* out[n, :] = table[tokens[n], :] */
void spec_embedding_forward(double *out, const int32_t *tokens, const double *table, int N,
                            int C);
/* dtable[tokens[n], :] += dout[n, :] */
void spec_embedding_backward(double *dtable, const double *dout, const int32_t *tokens, int N,
                             int C);

/* --- linear layer ------------------------------------------------------------------------- */
/* out[N,OC] = inp[N,IC] w[OC,IC]^T */
void spec_matmul_forward(double *out, const double *inp, const double *w, int N, int IC, int OC);
/* dinp[N,IC] += dout w (skipped when dinp is NULL);  dw[OC,IC] += dout^T inp */
void spec_matmul_backward(double *dinp, double *dw, const double *dout, const double *inp,
                          const double *w, int N, int IC, int OC);

/* --- RMSNorm / LayerNorm with an output scale --------------------------------------------- */
/* out = s * N(x), N(x) = x/sqrt(mean(x^2)+eps) * w (RMS), ((x-mean)/sqrt(var+eps)) * w + b
 * (LayerNorm, biased variance; b may be NULL = no bias). The scale s multiplies the whole
 * norm output, bias included. */
void spec_norm_forward(NormKind kind, double *out, const double *inp, const double *w,
                       const double *b, int N, int C, double eps, double s);
/* The per-row statistics the forward saves: mean (LayerNorm; 0 for RMS) and rstd. Either
 * output may be NULL. */
void spec_norm_stats(NormKind kind, double *mean, double *rstd, const double *inp, int N, int C,
                     double eps);
/* dinp += (d out / d inp)^T dout;  dw += d/dw;  db += d/db (db may be NULL: no bias) */
void spec_norm_backward(NormKind kind, double *dinp, double *dw, double *db, const double *dout,
                        const double *inp, const double *w, int N, int C, double eps, double s);

/* --- DyT (a norm's replacement) and the learnable branch scale ---------------------------- */
/* out = s * (w * tanh(alpha x) + b)   (b may be NULL) */
void spec_dyt_forward(double *out, const double *inp, double alpha, const double *w,
                      const double *b, int N, int C, double s);
/* dinp += d/dinp, *dalpha += d/dalpha, dw += d/dw, db += d/db (db may be NULL) */
void spec_dyt_backward(double *dinp, double *dalpha, double *dw, double *db, const double *dout,
                       const double *inp, double alpha, const double *w, int N, int C,
                       double s);
/* out[n,c] = scale[SC == 1 ? 0 : c] * inp[n,c]  (SC = C per channel, or 1 scalar) */
void spec_branch_scale_forward(double *out, const double *inp, const double *scale, int N, int C,
                               int SC);
/* dinp += scale * dout;  dscale[j] += sum of dout * inp over what scale[j] multiplies */
void spec_branch_scale_backward(double *dinp, double *dscale, const double *dout,
                                const double *inp, const double *scale, int N, int C, int SC);

/* --- rotary position embedding ------------------------------------------------------------ */
/* HF rotate_half layout (pair i with i + HS/2, angle t theta^(-2i/HS), t the position within
 * the sequence); x is [B,T,NH,HS]. out may equal inp. */
void spec_rope_forward(double *out, const double *inp, int B, int T, int NH, int HS,
                       double theta);
/* dinp += R^T dout (the rotation by minus the angle); dinp must not alias dout */
void spec_rope_backward(double *dinp, const double *dout, int B, int T, int NH, int HS,
                        double theta);

/* --- causal attention --------------------------------------------------------------------- */
/* Causal softmax attention, scale 1/sqrt(HS); q, k, v, out [B,T,NH*HS]. */
void spec_attention_forward(double *out, const double *q, const double *k, const double *v,
                            int B, int T, int NH, int HS);
/* Its softmax probabilities probs[B,NH,T,T] (zero above the diagonal): what the CPU backend
 * saves for the backward. */
void spec_attention_probs(double *probs, const double *q, const double *k, int B, int T, int NH,
                          int HS);
/* dq += d/dq, dk += d/dk, dv += d/dv of sum(dout * out) */
void spec_attention_backward(double *dq, double *dk, double *dv, const double *dout,
                             const double *q, const double *k, const double *v, int B, int T,
                             int NH, int HS);

/* --- SwiGLU ------------------------------------------------------------------------------- */
/* out = silu(gate) * up, silu(x) = x sigmoid(x) */
void spec_swiglu_forward(double *out, const double *gate, const double *up, size_t n);
/* dgate += dout * up * silu'(gate);  dup += dout * silu(gate) */
void spec_swiglu_backward(double *dgate, double *dup, const double *dout, const double *gate,
                          const double *up, size_t n);

/* --- scaled residual ---------------------------------------------------------------------- */
/* out = scale * x + f */
void spec_residual_forward(double *out, const double *x, double scale, const double *f,
                           size_t n);
/* dst += scale * src: the backward of the residual for both inputs (dx += scale * dout,
 * df += 1 * dout) */
void spec_scaled_add(double *dst, const double *src, double scale, size_t n);

/* --- cross-entropy ------------------------------------------------------------------------ */
/* losses[n] = -log softmax(logits[n])[targets[n]] */
void spec_crossentropy_forward(double *losses, const double *logits, const int32_t *targets,
                               int N, int V);
/* dlogits[n] = dloss * (softmax(logits[n]) - onehot(targets[n])): the gradient of
 * dloss * sum_n losses[n], WRITTEN (not added), as backend.h's fused op does */
void spec_crossentropy_backward(double *dlogits, const double *logits, const int32_t *targets,
                                int N, int V, double dloss);

/* --- optimizer and reductions ------------------------------------------------------------- */
/* One AdamW step as written in backend.h (bias-corrected, decoupled weight decay) on the
 * gradient grad_scale * g, in place on p, m, v; step is 1-based. */
void spec_adamw_update(double *p, double *m, double *v, const double *g, size_t n, double lr,
                       double beta1, double beta2, double eps, double weight_decay,
                       double grad_scale, int step);

/* sum_i x_i^2 */
double spec_sumsq(const double *x, size_t n);

#endif
