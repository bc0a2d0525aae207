/* train.c — the training loop of one run: schedule, accumulation, clipping, AdamW,
 * evaluation, divergence, checkpoints, resume, progress (see train.h). */
#include "train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"

const char *run_status_name(RunStatus s) {
    static const char *names[] = {"finished", "diverged", "failed", "stopped"};
    return (unsigned)s < 4 ? names[s] : "unknown";
}

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

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int train_build_specs(const NbConfig *run, SublayerSpec *specs, char *err, size_t errlen) {
    return scheme_build_table(run->schemes[0], &run->scheme_params, run->model.n_layer, specs,
                              err, errlen);
}

int train_load_dataset(const NbConfig *cfg, Dataset *ds, char *err, size_t errlen) {
    if (cfg->data.source == NB_DATA_SHARDS)
        return dataset_load_shards(ds, cfg->data.train, cfg->data.val, cfg->model.seq_len,
                                   cfg->model.vocab_size, err, errlen);
    return dataset_load_text(ds, DATA_DEFAULT_CORPUS, cfg->model.seq_len, cfg->model.vocab_size,
                             err, errlen);
}

double train_evaluate(Model *m, Dataset *ds, int batches) {
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

static void format_duration(double s, char *out, size_t len) {
    if (!(s >= 0) || s > 1e7) snprintf(out, len, "?");
    else if (s >= 3600) snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, len, "%.0fs", s);
}

static void report_progress(const TrainOptions *opt, const NbConfig *run, int step, int steps,
                            double loss, double lr, double tok_s, double eta, int force) {
    if (!opt->progress) return;
    int every = run->train.log_every > 0 ? run->train.log_every : 10;
    if (!opt->progress_tty && !force && step % every != 0) return;
    char eta_text[32];
    format_duration(eta, eta_text, sizeof eta_text);
    fprintf(opt->progress, "%s[%s s%llu] step %*d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s",
            opt->progress_tty ? "\r\033[K" : "", run->schemes[0]->name,
            (unsigned long long)run->seeds[0], (int)snprintf(NULL, 0, "%d", steps), step, steps,
            loss, lr, tok_s, eta_text, opt->progress_tty ? "" : "\n");
    fflush(opt->progress);
}

#define OBSERVE(opt, cb, ...) \
    ((opt)->observer && (opt)->observer->cb ? (opt)->observer->cb((opt)->observer->ctx, __VA_ARGS__) : 0)

int train_run(const NbConfig *run, Backend *be, Dataset *ds, const TrainOptions *opt,
              TrainResult *res, char *err, size_t errlen) {
    const NbTrainConfig *tc = &run->train;
    const ModelConfig *mc = &run->model;
    const int L = mc->n_layer, B = tc->batch, T = mc->seq_len, accum = tc->grad_accum;
    memset(res, 0, sizeof *res);
    res->status = RUN_FAILED;
    res->val_loss = res->val_ppl = NAN;

    SublayerSpec *specs = malloc(sizeof *specs * 2 * (size_t)L);
    int32_t *tokens = malloc(sizeof *tokens * (size_t)B * T);
    int32_t *targets = malloc(sizeof *targets * (size_t)B * T);
    float *host = NULL;
    Model *m = NULL;
    char *yaml = NULL;
    int rc = -1;
    if (!specs || !tokens || !targets) {
        snprintf(err, errlen, "train: out of memory");
        goto done;
    }
    if (train_build_specs(run, specs, err, errlen) != 0) goto done;
    if (!(m = model_create(be, mc, specs, B, err, errlen))) goto done;
    if (config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "train: out of memory");
        goto done;
    }

    int start_step = 0;
    double initial_loss = NAN;
    if (opt->resume && opt->checkpoint_path && access(opt->checkpoint_path, F_OK) == 0) {
        CheckpointInfo info;
        if (checkpoint_read_info(opt->checkpoint_path, &info, err, errlen) != 0) goto done;
        int same = strcmp(info.config_yaml, yaml) == 0;
        start_step = info.step;
        initial_loss = info.initial_loss;
        checkpoint_info_free(&info);
        if (!same) {
            snprintf(err, errlen, "%s: checkpoint was written with a different config; "
                     "remove it or train without --resume", opt->checkpoint_path);
            goto done;
        }
        if (checkpoint_load_state(opt->checkpoint_path, m, err, errlen) != 0) goto done;
    } else {
        host = malloc(sizeof *host * model_params(m)->total);
        if (!host) {
            snprintf(err, errlen, "train: out of memory");
            goto done;
        }
        model_init_params(mc, model_params(m), specs, run->seeds[0], host);
        model_set_params(m, host);
    }
    if (OBSERVE(opt, on_start, m, run, start_step, err, errlen) != 0) goto done;

    const double tokens_per_step = (double)B * T * accum;
    double t_begin = now_seconds();
    int step = start_step;
    RunStatus status = RUN_FINISHED;
    double loss = NAN;
    for (; step < tc->steps; step++) {
        double t0 = now_seconds();
        double lr = train_lr_at(tc, step);
        model_zero_grad(m);
        loss = 0.0;
        for (int micro = 0; micro < accum; micro++) {
            uint64_t batch_index = (uint64_t)step * (uint64_t)accum + (uint64_t)micro;
            if (dataset_train_batch(ds, run->seeds[0], batch_index, B, tokens, targets) != 0) {
                snprintf(err, errlen, "train: cannot make training batch %llu",
                         (unsigned long long)batch_index);
                goto done;
            }
            loss += model_forward(m, tokens, targets, NULL);
            model_backward(m, NULL);
        }
        loss /= accum;
        if (isnan(initial_loss)) initial_loss = loss;
        /* Gradients summed over micro-batches of mean losses: the mean is 1/accum of them. */
        double grad_norm = model_grad_norm_total(m) / accum;
        double limit = tc->diverge_loss > 0 ? tc->diverge_loss : 2.0 * initial_loss;
        if (!isfinite(loss) || !isfinite(grad_norm) || (step >= tc->warmup && loss > limit)) {
            status = RUN_DIVERGED;
            if (opt->progress)
                fprintf(opt->progress, "%s[%s s%llu] diverged at step %d: loss %g (limit %g)\n",
                        opt->progress_tty ? "\r\033[K" : "", run->schemes[0]->name,
                        (unsigned long long)run->seeds[0], step + 1, loss, limit);
            break;
        }
        AdamWArgs args = {.lr = (float)lr, .beta1 = (float)tc->beta1, .beta2 = (float)tc->beta2,
                          .eps = (float)tc->eps, .weight_decay = (float)tc->weight_decay,
                          .grad_scale = 1.0f / (float)accum, .step = step + 1};
        if (tc->grad_clip > 0 && grad_norm > tc->grad_clip)
            args.grad_scale *= (float)(tc->grad_clip / grad_norm);
        model_adamw_step(m, &args);
        res->final_train_loss = loss;

        double dt = now_seconds() - t0;
        TrainStepInfo info = {step + 1, loss, lr, grad_norm, tokens_per_step / dt};
        if (OBSERVE(opt, on_step, m, &info, err, errlen) != 0) goto done;
        double elapsed = now_seconds() - t_begin;
        double rate = (step + 1 - start_step) / elapsed;
        report_progress(opt, run, step + 1, tc->steps, loss, lr, tokens_per_step * rate,
                        (tc->steps - step - 1) / rate, step + 1 == tc->steps);

        int stop = step + 1 == opt->stop_after || (opt->stop_flag && *opt->stop_flag);
        int last = step + 1 == tc->steps || stop;
        if ((run->eval.every > 0 && (step + 1) % run->eval.every == 0) || step + 1 == tc->steps) {
            res->val_loss = train_evaluate(m, ds, run->eval.batches);
            res->val_ppl = exp(res->val_loss);
            if (OBSERVE(opt, on_eval, m, step + 1, res->val_loss, err, errlen) != 0) goto done;
        }
        if (opt->checkpoint_path &&
            (last || (tc->checkpoint_every > 0 && (step + 1) % tc->checkpoint_every == 0))) {
            CheckpointInfo ci = {.step = step + 1, .seed = run->seeds[0],
                                 .initial_loss = initial_loss, .config_yaml = yaml};
            snprintf(ci.scheme, sizeof ci.scheme, "%s", run->schemes[0]->name);
            if (checkpoint_save(opt->checkpoint_path, m, &ci, err, errlen) != 0) goto done;
        }
        if (stop && step + 1 < tc->steps) {
            status = RUN_STOPPED;
            step++;
            break;
        }
    }
    if (opt->progress && opt->progress_tty) fputc('\n', opt->progress);
    res->status = status;
    res->steps_done = step;
    res->initial_loss = initial_loss;
    res->seconds = now_seconds() - t_begin;
    res->tokens_per_s = res->seconds > 0 ? tokens_per_step * (step - start_step) / res->seconds : 0;
    res->mfu = be->peak_flops > 0 ? model_flops_per_token(mc) * res->tokens_per_s / be->peak_flops
                                  : NAN;
    if (status == RUN_DIVERGED) res->final_train_loss = loss;
    if (OBSERVE(opt, on_end, m, status, step, err, errlen) != 0) {
        res->status = RUN_FAILED;
        goto done;
    }
    rc = 0;
done:
    model_destroy(m);
    free(specs);
    free(tokens);
    free(targets);
    free(host);
    free(yaml);
    return rc;
}
