/* train.c — one optimizer step (schedule, accumulation, divergence, clipping, AdamW) and
 * the validation loss (see train.h). With several ranks (src/dist.c) each computes its share
 * of the micro-batches and the sums run across ranks before the norm, the divergence test,
 * clipping and AdamW, so that every rank takes the same decisions and the same update. */
#include "train.h"

#include "dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

double train_lr_at(const NbTrainConfig *t, int step) {
    if (step < t->warmup) return t->lr * (double)(step + 1) / (double)t->warmup;
    int decay_steps = t->steps - t->warmup;
    double progress = decay_steps > 1 ? (double)(step - t->warmup) / (double)(decay_steps - 1) : 1.0;
    if (progress > 1.0) progress = 1.0;
    switch (t->schedule) {
    case NB_SCHED_COSINE: return t->min_lr + (t->lr - t->min_lr) * 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    case NB_SCHED_LINEAR: return t->lr + (t->min_lr - t->lr) * progress;
    case NB_SCHED_CONSTANT: break;
    }
    return t->lr;
}

double train_evaluate(Model *m, const Dataset *ds, int batches) {
    const int B = model_batch(m), T = model_config(m)->seq_len;
    size_t available = dataset_val_batches(ds, B);
    size_t n = (size_t)batches < available ? (size_t)batches : available;
    if (n == 0) return NAN;
    int32_t *tokens = malloc(sizeof *tokens * (size_t)B * T);
    int32_t *targets = malloc(sizeof *targets * (size_t)B * T);
    double sum = 0.0;
    for (size_t i = 0; i < n && tokens && targets; i++) {
        dataset_val_batch(ds, i, B, tokens, targets);
        sum += model_forward(m, tokens, targets, NULL);
    }
    free(tokens);
    free(targets);
    return sum / (double)n;
}

int train_step(Model *m, Dataset *ds, const NbConfig *run, int step, double *initial_loss,
               TrainStepInfo *info, char *err, size_t errlen) {
    const NbTrainConfig *tc = &run->train;
    const int B = tc->batch, T = run->model.seq_len, accum = tc->grad_accum;
    int32_t *tokens = malloc(sizeof *tokens * (size_t)B * T);
    int32_t *targets = malloc(sizeof *targets * (size_t)B * T);
    int rc = -1;
    if (!tokens || !targets) {
        snprintf(err, errlen, "train: out of memory");
        goto done;
    }
    double lr = train_lr_at(tc, step);
    model_zero_grad(m);
    double loss = 0.0;
    int first, last; /* this rank's share of the micro-batches (all of them with one rank) */
    dist_share(accum, &first, &last);
    for (int micro = first; micro < last; micro++) {
        uint64_t batch_index = (uint64_t)step * (uint64_t)accum + (uint64_t)micro;
        if (dataset_train_batch(ds, run->seeds[0], batch_index, B, tokens, targets) != 0) {
            snprintf(err, errlen, "train: cannot make training batch %llu",
                     (unsigned long long)batch_index);
            goto done;
        }
        loss += model_forward(m, tokens, targets, NULL);
        model_backward(m, NULL);
    }
    /* with several ranks: the sums over every rank's micro-batches, identical on all */
    loss = dist_sum_double(loss);
    dist_sum_grads(m);
    loss /= accum;
    if (isnan(*initial_loss)) *initial_loss = loss;
    /* Gradients summed over micro-batches of mean losses: the mean is 1/accum of them. */
    double grad_norm = model_grad_norm_total(m) / accum;
    double limit = tc->diverge_loss > 0 ? tc->diverge_loss : 2.0 * *initial_loss;
    *info = (TrainStepInfo){.step = step + 1, .loss = loss, .lr = lr, .grad_norm = grad_norm,
                            .limit = limit};
    rc = 0;
    if (!isfinite(loss) || !isfinite(grad_norm) || (step >= tc->warmup && loss > limit)) {
        info->diverged = 1;
        goto done;
    }
    AdamWArgs args = {.lr = (float)lr, .beta1 = (float)tc->beta1, .beta2 = (float)tc->beta2,
                      .eps = (float)tc->eps, .weight_decay = (float)tc->weight_decay,
                      .grad_scale = 1.0f / (float)accum, .step = step + 1,
                      .bf16_pure = tc->precision == NB_PRECISION_BF16_PURE};
    if (tc->grad_clip > 0 && grad_norm > tc->grad_clip)
        args.grad_scale *= (float)(tc->grad_clip / grad_norm);
    model_adamw_step(m, &args);
done:
    free(tokens);
    free(targets);
    return rc;
}
