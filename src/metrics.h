/* metrics.h — the per-layer probes of docs/design.md section 4, computed on a fixed probe set.
 *
 * Owns: the probe set (fixed validation batches copied once), the per-token primitives
 * (variance over the hidden dimension, angular distance), the hidden-state probes (output
 * variance of h_0..h_L, angular distance matrix over all tokens and over the last token of
 * each sequence), per-block gradient norms, and the pruning sweep (validation loss with each
 * block, each attention sublayer, each MLP sublayer replaced by the identity).
 *
 * Everything accumulates in double. The probes only run forward passes without targets and
 * read the gradient buffer, so they never change training: the next training step zeroes
 * the gradients and overwrites every activation (tests/test_metrics.c checks this bitwise).
 * No global state; nothing here prints or touches files (runfile.c writes the results, run.c decides when).
 */
#ifndef NORMBENCH_METRICS_H
#define NORMBENCH_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "model.h"

/* A fixed set of n_batches batches of B sequences of T tokens: tokens and targets are
 * [n_batches * B * T] int32, batch i at offset i * B * T. */
typedef struct {
    int n_batches, B, T;
    int32_t *tokens, *targets;
} ProbeSet;

/* The first min(batches, available) validation batches of ds (dataset_val_batch order), so
 * the probe set is the same at every probe and across schemes. n_batches may come out 0
 * when the split holds no full batch; the probes then give NaN. Returns 0, or -1 (out of
 * memory). */
int probe_set_from_val(ProbeSet *ps, const Dataset *ds, int batches, int B, char *err,
                       size_t errlen);
void probe_set_free(ProbeSet *ps);

/* Batches of B x T tokens a probe of probe_tokens tokens reads: ceil(probe_tokens / (B T)),
 * at least 1 (metrics.probe_tokens; the same token count at every model size). */
int metrics_probe_batches(int probe_tokens, int B, int T);

/* Results of one probe. Layout (L = n_layer):
 *   variance[l], l = 0..L                 mean over tokens of the per-token variance of h_l
 *   angular[l*(L+1) + m], 0 <= l,m <= L   mean angular distance of h_l and h_m over all
 *                                         tokens; 0 on the diagonal, NaN below it (l > m)
 *   angular_last[...]                     the same over the last token of each sequence
 *   grad_norm[l-1], l = 1..L              L2 norm of the gradient of block l */
typedef struct {
    int L;
    long step;
    double *variance, *angular, *angular_last, *grad_norm;
} LayerProbe;

int layer_probe_alloc(LayerProbe *p, int L);  /* 0, or -1 out of memory; values NaN */
void layer_probe_free(LayerProbe *p);

/* Pruning damage (Siddiqui et al. 2024; docs/design.md section 4): mean validation loss (nats)
 * of the intact model and with block l (both sublayers), its attention sublayer alone, or
 * its MLP sublayer alone replaced by the identity; arrays [L], index l-1 for block l. */
typedef struct {
    int L, batches;
    double base_loss;
    double *block, *attn, *mlp;
} PruneResult;

int prune_result_alloc(PruneResult *p, int L);
void prune_result_free(PruneResult *p);

/* ---- per-token primitives (double accumulation) ------------------------------------- */

/* Population variance of x[0..C) (divides by C): the spread of one token's hidden state
 * over the hidden dimension, docs/design.md section 4 "output variance". */
double metrics_token_variance(const float *x, int C);

/* d = arccos(cos(a, b)) / pi in [0, 1] (Gromov et al. 2024, "The Unreasonable
 * Ineffectiveness of the Deeper Layers"; docs/design.md section 4), evaluated as
 * (2/pi) atan2(|a' - b'|, |a' + b'|) with a' = a/|a|, b' = b/|b|: the same angle, but
 * accurate for nearly parallel vectors (Kahan), where arccos of a rounded cosine loses half
 * the digits; d(a, a) = 0 and d(a, -a) = 1 exactly. A zero vector has no direction: d = 0
 * when both are zero, 0.5 (cos taken as 0) when one is. */
double metrics_angular_distance(const float *a, const float *b, int C);

/* ---- probes on a model ---------------------------------------------------------------- */

/* Fills p->grad_norm[l-1] = scale * ||grad of block l||_2 for l = 1..L from the gradients
 * now in the model (scale = 1/grad_accum gives the gradient of the mean loss, matching
 * the trainer's global norm; before clipping). Call it BEFORE any other forward pass. */
void metrics_grad_norms(const Model *m, double scale, LayerProbe *p);

/* Runs forward passes (no targets, no backward) over ps and fills p->variance, p->angular
 * and p->angular_last. ps->B must equal model_batch(m) and ps->T the model's seq_len.
 * Returns 0, or -1 with err (shape mismatch, out of memory). */
int metrics_hidden_probes(Model *m, const ProbeSet *ps, LayerProbe *p, char *err,
                          size_t errlen);

/* The pruning sweep over ps: 3L + 1 evaluations, each the mean over the batches of their
 * mean losses, summed in batch order as train_evaluate sums them (so the intact loss on the
 * eval batches equals the trainer's validation loss bitwise). Returns 0, or -1 with err. */
int metrics_prune(Model *m, const ProbeSet *ps, PruneResult *out, char *err, size_t errlen);

/* The pruning sweep one batch at a time (what `normbench prune` resumes from): adds batch
 * `batch`'s losses of the variants in `what` into sums[3L + 1] = block[L], attn[L], mlp[L],
 * base (the intact model's loss is always added). metrics_prune is these over every batch
 * in order, then metrics_prune_finish, so a sweep cut off after k batches and continued from
 * its sums gives the same bits. */
enum { PRUNE_WHAT_BLOCK = 1u, PRUNE_WHAT_ATTN = 2u, PRUNE_WHAT_MLP = 4u, PRUNE_WHAT_ALL = 7u };
int metrics_prune_batch(Model *m, const ProbeSet *ps, int batch, unsigned what, double *sums,
                        char *err, size_t errlen);
/* out (sized for L layers) = sums / batches; batches 0 gives NaN. */
void metrics_prune_finish(const double *sums, int batches, PruneResult *out);
#endif
