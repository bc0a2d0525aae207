/* train.h — the training loop of one run (one scheme, one seed).
 *
 * Owns: the learning-rate schedule, gradient accumulation and clipping, AdamW steps,
 * periodic evaluation, divergence detection, checkpoints (through checkpoint.c), resuming,
 * and progress output. Everything that makes a step depends only on (config, seed, step),
 * so N steps straight and N/2 + resume + N/2 give bitwise-identical parameters on the CPU.
 * Observers (run files, probes) attach through TrainObserver without touching the loop.
 */
#ifndef NORMBENCH_TRAIN_H
#define NORMBENCH_TRAIN_H

#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "data.h"
#include "model.h"

/* STOPPED: ended early on request (Ctrl-C, --stop-after) with a checkpoint written, to be
 * resumed; its run file stays "running". */
typedef enum { RUN_FINISHED = 0, RUN_DIVERGED = 1, RUN_FAILED = 2, RUN_STOPPED = 3 } RunStatus;

const char *run_status_name(RunStatus s);

/* learning rate of step `step` (0-based): linear warmup from lr/warmup to lr over `warmup`
 * steps, then cosine (or linear, or constant) decay from lr to min_lr at the last step. */
double train_lr_at(const NbTrainConfig *t, int step);

typedef struct {
    int step;             /* optimizer steps completed */
    double loss;          /* mean training loss of the step */
    double lr;
    double grad_norm;     /* global gradient norm before clipping */
    double tokens_per_s;  /* of this step */
} TrainStepInfo;

/* Callbacks for run files and probes; any may be NULL. A non-zero return stops the run as
 * failed (e.g. a write error), with the message in err. */
typedef struct {
    void *ctx;
    int (*on_start)(void *ctx, Model *m, const NbConfig *run, int start_step, char *err,
                    size_t errlen);
    /* after each optimizer step, gradients of the step still in the model */
    int (*on_step)(void *ctx, Model *m, const TrainStepInfo *info, char *err, size_t errlen);
    int (*on_eval)(void *ctx, Model *m, int step, double val_loss, char *err, size_t errlen);
    /* at the end; status says how the run ended */
    int (*on_end)(void *ctx, Model *m, RunStatus status, int step, char *err, size_t errlen);
} TrainObserver;

typedef struct {
    const char *checkpoint_path; /* where checkpoints go; NULL: none */
    int resume;                  /* 1: continue from checkpoint_path when it exists */
    FILE *progress;              /* progress lines (stderr); NULL: quiet */
    int progress_tty;            /* 1: one self-overwriting line with ETA */
    const TrainObserver *observer;
    int stop_after;              /* > 0: stop after this many steps total (tests, as if killed) */
    /* non-NULL: checked after every step; non-zero stops the run cleanly (checkpoint written,
     * status RUN_STOPPED). The CLI points it at its SIGINT/SIGTERM flag. */
    const volatile sig_atomic_t *stop_flag;
} TrainOptions;

typedef struct {
    RunStatus status;
    int steps_done;
    double initial_loss;     /* training loss of the first step */
    double final_train_loss;
    double val_loss, val_ppl; /* last evaluation (NaN when none) */
    double tokens_per_s;      /* mean over the steps of this invocation */
    double mfu;               /* model FLOPs utilisation against be->peak_flops (NaN: unknown) */
    double seconds;
} TrainResult;

/* Validation loss of the model over `batches` validation batches (fewer when the split is
 * smaller). Returns NaN when the split holds no full batch. */
double train_evaluate(Model *m, Dataset *ds, int batches);

/* Trains `run` (exactly one scheme and seed) on `ds` using backend `be`. Returns 0 when the
 * loop ran (finished, diverged or stopped; see result->status), or -1 for a setup error
 * (message in err: the CLI exits 2 for config errors, 1 otherwise). */
int train_run(const NbConfig *run, Backend *be, Dataset *ds, const TrainOptions *opt,
              TrainResult *result, char *err, size_t errlen);

/* Builds the scheme table of a run config into specs (2 * n_layer). */
int train_build_specs(const NbConfig *run, SublayerSpec *specs, char *err, size_t errlen);

/* Loads the dataset a config names (embedded corpus or shards). */
int train_load_dataset(const NbConfig *cfg, Dataset *ds, char *err, size_t errlen);

#endif
