/* ref64.h — float64 reference implementations of the forward ops of kernels/backend.h, as
 * plain loops with no parallelism and no cleverness: the ground truth that the CPU and CUDA
 * backends are tested against, and the building blocks of a float64 full-model reference.
 * Same shapes and layouts as backend.h (row-major, linear weights [out, in], q/k/v
 * [B,T,NH*HS]). Every function writes its outputs (never accumulates) and allocates nothing.
 * Test-only; nothing here is linked into normbench itself. */
#ifndef NORMBENCH_REF64_H
#define NORMBENCH_REF64_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

/* out[n, :] = table[tokens[n], :] */
void ref_embedding_forward(double *out, const int32_t *tokens, const double *table, int N,
                           int C);

/* out[N,OC] = inp[N,IC] w[OC,IC]^T */
void ref_matmul_forward(double *out, const double *inp, const double *w, int N, int IC, int OC);

/* out = s * N(x), N(x) = x/sqrt(mean(x^2)+eps) * w (RMS), ((x-mean)/sqrt(var+eps)) * w + b
 * (LayerNorm, biased variance; b may be NULL = no bias). The scale s multiplies the whole
 * norm output, bias included. */
void ref_norm_forward(NormKind kind, double *out, const double *inp, const double *w,
                      const double *b, int N, int C, double eps, double s);
/* The per-row statistics the forward saves: mean (LayerNorm; 0 for RMS) and rstd. Either
 * output may be NULL. */
void ref_norm_stats(NormKind kind, double *mean, double *rstd, const double *inp, int N, int C,
                    double eps);

/* Rotary embedding, HF rotate_half layout (pair i with i + HS/2, angle t theta^(-2i/HS), t the
 * position within the sequence); x is [B,T,NH,HS]. out may equal inp. */
void ref_rope_forward(double *out, const double *inp, int B, int T, int NH, int HS,
                      double theta);

/* Causal softmax attention, scale 1/sqrt(HS); q, k, v, out [B,T,NH*HS]. */
void ref_attention_forward(double *out, const double *q, const double *k, const double *v,
                           int B, int T, int NH, int HS);
/* Its softmax probabilities probs[B,NH,T,T] (zero above the diagonal). */
void ref_attention_probs(double *probs, const double *q, const double *k, int B, int T, int NH,
                         int HS);

/* out = silu(gate) * up */
void ref_swiglu_forward(double *out, const double *gate, const double *up, size_t n);

/* out = scale * x + f */
void ref_residual_forward(double *out, const double *x, double scale, const double *f,
                          size_t n);

/* losses[n] = -log softmax(logits[n])[targets[n]] */
void ref_crossentropy(double *losses, const double *logits, const int32_t *targets, int N,
                      int V);

/* One AdamW step as written in backend.h (bias-corrected, decoupled weight decay) on the
 * gradient grad_scale * g, in place on p, m, v; step is 1-based. */
void ref_adamw_update(double *p, double *m, double *v, const double *g, size_t n, double lr,
                      double beta1, double beta2, double eps, double weight_decay,
                      double grad_scale, int step);

#endif
