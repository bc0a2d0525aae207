/* train.h — one optimizer step, and the validation loss.
 *
 * Owns: the learning-rate schedule, gradient accumulation over micro-batches, the divergence
 * test, global-norm clipping and the AdamW step; the validation loss of a model. Everything
 * a step does depends only on (config, seed, step), so N steps straight and N/2 + resume +
 * N/2 give bitwise-identical parameters on the CPU. The loop around the steps (evaluation,
 * probes, checkpoints, the run file) is src/run.c's.
 */
#ifndef NORMBENCH_TRAIN_H
#define NORMBENCH_TRAIN_H

#include "config.h"
#include "data.h"
#include "model.h"

/* learning rate of step `step` (0-based): linear warmup from lr/warmup to lr over `warmup`
 * steps, then cosine (or linear, or constant) decay from lr to min_lr at the last step. */
double train_lr_at(const NbTrainConfig *t, int step);

typedef struct {
    int step;             /* optimizer steps completed, this one included */
    double loss;          /* mean training loss of the step */
    double lr;
    double grad_norm;     /* global gradient norm before clipping */
    double limit;         /* the divergence threshold the loss was held against */
    int diverged;         /* 1: loss or gradient not finite, or loss over the limit after
                           * warmup; the parameters were NOT updated */
} TrainStepInfo;

/* Optimizer step `step` (0-based) of `run` on model m: grad_accum micro-batches of the
 * training split (batch order a function of the seed and step), their gradients summed, the
 * divergence test against *initial_loss (set from this step's loss when NaN; the limit is
 * train.diverge_loss, or twice the initial loss), then clipping and AdamW. The gradients
 * of the step stay in the model for the probes. Returns 0 (info filled, diverged or not),
 * or -1 with err when a batch cannot be made. */
int train_step(Model *m, Dataset *ds, const NbConfig *run, int step, double *initial_loss,
               TrainStepInfo *info, char *err, size_t errlen);

/* Validation loss of the model over `batches` validation batches (fewer when the split is
 * smaller). Returns NaN when the split holds no full batch. */
double train_evaluate(Model *m, const Dataset *ds, int batches);

#endif
