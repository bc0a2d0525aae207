/* run.c — one run end to end (see run.h): run_train is the story of a run, read top to
 * bottom; the helpers below it build the model, the dataset and the backend from a config. */
#include "run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "clock.h"
#include "dist.h"
#include "metrics.h"
#include "train.h"

static int every(int period, int step) { return period > 0 && step % period == 0; }

/* ---- the pieces of a run --------------------------------------------------------------- */

/* The model's parameters: from the checkpoint when resuming one written with the same
 * config, else drawn from the seed. Sets *start_step and *initial_loss (the checkpoint's, or
 * 0 and NaN). */
static int load_or_init_params(const NbConfig *run, Model *m, const RunOptions *opt,
                               const char *yaml, int *start_step, double *initial_loss,
                               char *err, size_t errlen) {
    *start_step = 0;
    *initial_loss = NAN;
    if (opt->resume && opt->checkpoint && access(opt->checkpoint, F_OK) == 0) {
        CheckpointInfo info;
        if (checkpoint_read_info(opt->checkpoint, &info, err, errlen) != 0) return -1;
        if (info.step > run->train.steps) {
            snprintf(err, errlen, "%s: checkpoint step %d beyond train.steps %d; remove it to "
                     "train from step 0", opt->checkpoint, info.step, run->train.steps);
            checkpoint_info_free(&info);
            return -1;
        }
        int same = strcmp(info.config_yaml, yaml) == 0;
        *start_step = info.step;
        *initial_loss = info.initial_loss;
        checkpoint_info_free(&info);
        if (!same) {
            snprintf(err, errlen, "%s: checkpoint was written with a different config; "
                     "remove it or train without --resume", opt->checkpoint);
            return -1;
        }
        return checkpoint_load_state(opt->checkpoint, m, err, errlen);
    }
    float *host = malloc(sizeof *host * model_params(m)->total);
    if (!host) {
        snprintf(err, errlen, "train: out of memory");
        return -1;
    }
    model_init_params(&run->model, model_params(m), model_specs(m), run->seeds[0], host);
    model_set_params(m, host);
    free(host);
    return 0;
}

/* What the probes and the pruning sweep read: fixed validation batches, the same at every
 * probe and for every scheme (metrics.probe_tokens' worth for the hidden-state probes;
 * eval.batches, the trainer's own validation set, for pruning), and the probe's results. */
typedef struct {
    ProbeSet probe, prune;
    LayerProbe layers;
} Probes;

static int probes_open(Probes *p, const NbConfig *run, const Dataset *ds, int B, char *err,
                       size_t errlen) {
    if (layer_probe_alloc(&p->layers, run->model.n_layer) != 0) {
        snprintf(err, errlen, "%s: out of memory for probes", run->name);
        return -1;
    }
    if (run->metrics.every > 0 &&
        probe_set_from_val(&p->probe, ds,
                           metrics_probe_batches(run->metrics.probe_tokens, B, run->model.seq_len),
                           B, err, errlen) != 0)
        return -1;
    if (run->metrics.prune &&
        probe_set_from_val(&p->prune, ds, run->eval.batches, B, err, errlen) != 0)
        return -1;
    return 0;
}

static void probes_close(Probes *p) {
    probe_set_free(&p->probe);
    probe_set_free(&p->prune);
    layer_probe_free(&p->layers);
}

/* The per-layer probes of the step just taken, into the run file: the step's gradient norms
 * first (nothing may run between the optimizer step and this read; the probes' forward
 * passes leave the gradients alone), then the hidden-state probes. */
static int record_probes(Model *m, const NbConfig *run, Probes *p, RunFile *rf, int step,
                         char *err, size_t errlen) {
    p->layers.step = step;
    metrics_grad_norms(m, 1.0 / run->train.grad_accum, &p->layers);
    if (metrics_hidden_probes(m, &p->probe, &p->layers, err, errlen) != 0) return -1;
    return runfile_append_probe(rf, &p->layers, err, errlen);
}

/* The pruning sweep of the final model, into the run file. */
static int record_pruning(Model *m, const NbConfig *run, Probes *p, RunFile *rf, int step,
                          char *err, size_t errlen) {
    PruneResult pr;
    if (prune_result_alloc(&pr, run->model.n_layer) != 0) {
        snprintf(err, errlen, "%s: out of memory for pruning", run->name);
        return -1;
    }
    int rc = metrics_prune(m, &p->prune, &pr, err, errlen) == 0 &&
                     runfile_write_prune(rf, &pr, step, err, errlen) == 0
                 ? 0
                 : -1;
    prune_result_free(&pr);
    return rc;
}

static int save_checkpoint(const NbConfig *run, const Model *m, const char *path, int step,
                           double initial_loss, char *yaml, char *err, size_t errlen) {
    CheckpointInfo ci = {.step = step, .seed = run->seeds[0], .initial_loss = initial_loss,
                         .config_yaml = yaml};
    snprintf(ci.scheme, sizeof ci.scheme, "%s", run->schemes[0]->name);
    return checkpoint_save(path, m, &ci, err, errlen);
}

static void format_duration(double s, char *out, size_t len) {
    if (!(s >= 0) || s > 1e7) snprintf(out, len, "?");
    else if (s >= 3600) snprintf(out, len, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(out, len, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, len, "%.0fs", s);
}

/* A progress line every train.log_every steps (every step on a terminal, overwriting). */
static void report_progress(const RunOptions *opt, const NbConfig *run, int step, double loss,
                            double lr, double tok_s, double eta, int force) {
    if (!opt->progress) return;
    const int steps = run->train.steps, period = run->train.log_every > 0 ? run->train.log_every : 10;
    if (!opt->progress_tty && !force && step % period != 0) return;
    char eta_text[32];
    format_duration(eta, eta_text, sizeof eta_text);
    fprintf(opt->progress, "%s[%s s%llu] step %*d/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %s%s",
            opt->progress_tty ? "\r\033[K" : "", run->schemes[0]->name,
            (unsigned long long)run->seeds[0], (int)snprintf(NULL, 0, "%d", steps), step, steps,
            loss, lr, tok_s, eta_text, opt->progress_tty ? "" : "\n");
    fflush(opt->progress);
}

static void report_divergence(const RunOptions *opt, const NbConfig *run,
                              const TrainStepInfo *info) {
    if (!opt->progress) return;
    fprintf(opt->progress, "%s[%s s%llu] diverged at step %d: loss %g (limit %g)\n",
            opt->progress_tty ? "\r\033[K" : "", run->schemes[0]->name,
            (unsigned long long)run->seeds[0], info->step, info->loss, info->limit);
}

/* ---- the run --------------------------------------------------------------------------- */

int run_train(const NbConfig *run, Dataset *ds, Backend *be, const RunOptions *opt,
              RunResult *res, char *err, size_t errlen) {
    const NbTrainConfig *tc = &run->train;
    memset(res, 0, sizeof *res);
    res->status = RUN_FAILED;
    res->val_loss = res->val_ppl = NAN;
    Dataset own_ds = {0};
    Backend *own_be = NULL;
    Model *m = NULL;
    RunFile *rf = NULL;
    Probes probes = {0};
    char *yaml = NULL;
    int rc = -1;

    /* 1. the dataset and the backend: the caller's, or the config's own */
    if (!ds) {
        if (run_load_dataset(run, &own_ds, err, errlen) != 0) goto done;
        ds = &own_ds;
    }
    if (!be && !(be = own_be = run_open_backend(run, err, errlen))) goto done;

    /* 2. the model, holding the scheme's table, and its parameters: the checkpoint's when
     *    resuming, else the seed's */
    if (!(m = run_create_model(run, be, err, errlen))) goto done;
    if (config_write_yaml(run, &yaml) != 0) {
        snprintf(err, errlen, "train: out of memory");
        goto done;
    }
    int start_step;
    double initial_loss;
    if (load_or_init_params(run, m, opt, yaml, &start_step, &initial_loss, err, errlen) != 0)
        goto done;

    /* 3. the run file: created, or (resuming) reopened and cut back to the checkpoint's
     *    step; and the fixed validation batches the probes read */
    if (opt->run_file && dist_rank() == 0) { /* rank 0 alone writes (src/dist.c) */
        if (probes_open(&probes, run, ds, model_batch(m), err, errlen) != 0) goto done;
        RunFileInfo info = {.backend = be->name, .device = be->device,
                            .kernels = be->kernels, .n_params = model_params(m)->total,
                            .ranks = dist_size(), .data_epochs = run_data_epochs(run, ds)};
        /* a resumed run continues its own file; never a new file holding only the later
         * steps (src/recover.c decides what a missing file means) */
        if (start_step > 0 && access(opt->run_file, F_OK) != 0) {
            snprintf(err, errlen, "%s: missing beside checkpoint %s of step %d; remove the "
                     "checkpoint to train from step 0", opt->run_file, opt->checkpoint, start_step);
            goto done;
        }
        rf = start_step > 0 ? runfile_reopen(opt->run_file, run, start_step, err, errlen)
                            : runfile_create(opt->run_file, run, model_specs(m), &info, err, errlen);
        if (!rf) goto done;
    }

    /* 4. the steps, each followed by what is due after it: its /train row and probes, a
     *    progress line, an evaluation, a checkpoint; a stop request ends the run after the
     *    checkpoint */
    const double tokens_per_step = (double)tc->batch * run->model.seq_len * tc->grad_accum;
    if (opt->progress && run_data_epochs(run, ds) > 1.0) /* data.repeat: allow */
        fprintf(opt->progress, "[%s s%llu] data: %.3g epochs of the training split (data.repeat: "
                "allow)\n", run->schemes[0]->name, (unsigned long long)run->seeds[0],
                run_data_epochs(run, ds));
    const double t_begin = monotonic_seconds();
    RunStatus status = RUN_FINISHED;
    int step = start_step;
    for (; step < tc->steps; step++) {
        double t0 = monotonic_seconds();
        TrainStepInfo info;
        if (train_step(m, ds, run, step, &initial_loss, &info, err, errlen) != 0) goto done;
        if (info.diverged) {
            status = RUN_DIVERGED;
            res->final_train_loss = info.loss;
            report_divergence(opt, run, &info);
            break;
        }
        res->final_train_loss = info.loss;
        const int done_steps = step + 1;
        double tok_s = tokens_per_step / (monotonic_seconds() - t0);
        if (rf && runfile_append_train(rf, done_steps, info.loss, info.lr, info.grad_norm, tok_s,
                                       err, errlen) != 0)
            goto done;
        if (rf && every(run->metrics.every, done_steps) &&
            record_probes(m, run, &probes, rf, done_steps, err, errlen) != 0)
            goto done;
        double rate = (done_steps - start_step) / (monotonic_seconds() - t_begin);
        report_progress(opt, run, done_steps, info.loss, info.lr, tokens_per_step * rate,
                        (tc->steps - done_steps) / rate, done_steps == tc->steps);

        int stop = done_steps == opt->stop_after ||
                   dist_any(opt->stop_flag && *opt->stop_flag); /* any rank's: all stop */
        int last = done_steps == tc->steps || stop;
        if (every(run->eval.every, done_steps) || done_steps == tc->steps) {
            res->val_loss = train_evaluate(m, ds, run->eval.batches);
            res->val_ppl = exp(res->val_loss);
            if (rf && runfile_append_eval(rf, done_steps, res->val_loss, err, errlen) != 0)
                goto done;
        }
        if (opt->checkpoint && dist_rank() == 0 &&
            (last || every(tc->checkpoint_every, done_steps))) {
            /* the run file first, so that it holds every row the checkpoint covers */
            if (rf && runfile_flush(rf, err, errlen) != 0) goto done;
            if (save_checkpoint(run, m, opt->checkpoint, done_steps, initial_loss, yaml, err,
                                errlen) != 0)
                goto done;
        }
        if (stop && done_steps < tc->steps) {
            status = RUN_STOPPED;
            step++;
            break;
        }
    }
    if (opt->progress && opt->progress_tty) fputc('\n', opt->progress);
    if (status == RUN_FINISHED && start_step == tc->steps) {
        /* resumed from the final checkpoint (killed during pruning): the loop evaluated
         * nothing, and the summary reports the final model's loss all the same */
        res->val_loss = train_evaluate(m, ds, run->eval.batches);
        res->val_ppl = exp(res->val_loss);
    }
    res->status = status;
    res->steps_done = step;
    res->initial_loss = initial_loss;
    res->seconds = monotonic_seconds() - t_begin;
    res->tokens_per_s = res->seconds > 0 ? tokens_per_step * (step - start_step) / res->seconds : 0;
    res->mfu = be->peak_flops > 0
                   ? model_flops_per_token(&run->model) * res->tokens_per_s / be->peak_flops
                   : NAN;

    /* 5. the end: the pruning sweep of a finished model, the status, the file closed */
    if (rf) {
        if (status == RUN_FINISHED && run->metrics.prune &&
            record_pruning(m, run, &probes, rf, step, err, errlen) != 0)
            goto done;
        if (runfile_set_status(rf, status, err, errlen) != 0) goto done;
        int closed = runfile_close(rf, err, errlen);
        rf = NULL;
        if (closed != 0) goto done;
    }
    rc = 0;
done:
    if (rc != 0) res->status = RUN_FAILED;
    if (rf) { /* a run cut short by an error: its file says so (best effort) */
        char ignored[256];
        runfile_set_status(rf, RUN_FAILED, ignored, sizeof ignored);
        runfile_close(rf, ignored, sizeof ignored);
    }
    probes_close(&probes);
    model_destroy(m);
    if (own_be) backend_destroy(own_be);
    dataset_free(&own_ds);
    free(yaml);
    return rc;
}

/* ---- building a run's parts from its config --------------------------------------------- */

SublayerSpec *run_build_specs(const ModelConfig *mc, const SchemeRow *scheme,
                              const SchemeParams *p, char *err, size_t errlen) {
    SublayerSpec *specs = malloc(sizeof *specs * 2 * (size_t)mc->n_layer);
    if (!specs) {
        snprintf(err, errlen, "scheme: out of memory");
        return NULL;
    }
    if (scheme_build_table(scheme, p, mc->n_layer, specs, err, errlen) != 0) {
        free(specs);
        return NULL;
    }
    return specs;
}

Model *run_create_model(const NbConfig *run, Backend *be, char *err, size_t errlen) {
    SublayerSpec *specs =
        run_build_specs(&run->model, run->schemes[0], &run->scheme_params, err, errlen);
    if (!specs) return NULL;
    Model *m = model_create(be, &run->model, specs, run->train.batch, err, errlen);
    free(specs); /* the model keeps its own copy */
    return m;
}

double run_data_epochs(const NbConfig *cfg, const Dataset *ds) {
    const NbTrainConfig *tc = &cfg->train;
    return dataset_epochs(ds, (uint64_t)tc->steps * (uint64_t)tc->batch * (uint64_t)tc->grad_accum);
}

int run_load_dataset(const NbConfig *cfg, Dataset *ds, char *err, size_t errlen) {
    int rc = cfg->data.source == NB_DATA_SHARDS
                 ? dataset_load_shards(ds, cfg->data.train, cfg->data.val, cfg->model.seq_len,
                                       cfg->model.vocab_size, err, errlen)
                 : dataset_load_text(ds, DATA_DEFAULT_CORPUS, cfg->model.seq_len,
                                     cfg->model.vocab_size, err, errlen);
    const double epochs = rc == 0 ? run_data_epochs(cfg, ds) : 0;
    if (rc == 0 && epochs > 1.0 && cfg->data.repeat == NB_REPEAT_ERROR) {
        const NbTrainConfig *tc = &cfg->train;
        snprintf(err, errlen, "%s: data.repeat: %d steps x %d sequences of %d tokens need %.4g "
                 "epochs of the training split (%zu tokens, %zu windows); set data.repeat: "
                 "allow to repeat data, or train fewer steps",
                 cfg->source_path[0] ? cfg->source_path : cfg->name, tc->steps,
                 tc->batch * tc->grad_accum, cfg->model.seq_len, epochs, ds->n_train,
                 ds->n_train_windows);
        dataset_free(ds);
        return -1;
    }
    return rc;
}

Backend *run_open_backend(const NbConfig *cfg, char *err, size_t errlen) {
    char why[512];
    Backend *be = backend_create(config_backend_name(cfg->backend.name), cfg->backend.threads,
                                 why, sizeof why);
    if (!be) snprintf(err, errlen, "%s: backend.name: %s", cfg->source_path, why);
    if (be && cfg->train.precision == NB_PRECISION_BF16_PURE && !be->separate_master) {
        /* backend auto found no GPU (config.c refuses backend.name cpu itself) */
        snprintf(err, errlen, "%s: train.precision: bf16_pure needs the CUDA backend, %s has "
                 "none (the CPU backend trains in fp32 and does not emulate it)",
                 cfg->source_path, config_backend_name(cfg->backend.name));
        backend_destroy(be);
        return NULL;
    }
    return be;
}
