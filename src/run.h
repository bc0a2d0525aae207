/* run.h — one run (one scheme, one seed) end to end.
 *
 * Owns the story of a run (docs/design.md section 2): per-run config → scheme table → dataset
 * → backend → model → resume from the checkpoint or fresh init → run file → the loop of
 * optimizer steps (train.c) with the schedule of evaluations, probes (metrics.c),
 * checkpoints (checkpoint.c) and progress lines → the pruning sweep of a finished run → its
 * status. `train` and `sweep` run it; `eval`, `show` and `bench --dump-init` use its helpers
 * to build the same model from a config. It is the only place that builds a scheme table
 * (run_build_specs) and the only place that decides when anything is written.
 */
#ifndef NORMBENCH_RUN_H
#define NORMBENCH_RUN_H

#include <signal.h>
#include <stdio.h>

#include "backend.h"
#include "config.h"
#include "data.h"
#include "model.h"
#include "runfile.h"

typedef struct {
    const char *run_file;        /* the run file to write; NULL: none */
    const char *checkpoint;      /* where checkpoints go; NULL: none */
    int resume;                  /* 1: continue from `checkpoint` when it exists */
    FILE *progress;              /* progress lines (stderr); NULL: quiet */
    int progress_tty;            /* 1: one self-overwriting line with ETA */
    int stop_after;              /* > 0: stop after this many steps total (tests, as if killed) */
    /* non-NULL: checked after every step; non-zero stops the run cleanly (checkpoint
     * written, status RUN_STOPPED). The CLI points it at its SIGINT/SIGTERM flag. */
    const volatile sig_atomic_t *stop_flag;
} RunOptions;

typedef struct {
    RunStatus status;         /* FINISHED, DIVERGED, STOPPED, or FAILED (a write error) */
    int steps_done;
    double initial_loss;      /* training loss of the first step */
    double final_train_loss;
    double val_loss, val_ppl; /* last evaluation (NaN when none) */
    double tokens_per_s;      /* mean over the steps of this invocation */
    double mfu;               /* model FLOPs utilisation against be->peak_flops (NaN: unknown) */
    double seconds;
} RunResult;

/* Trains `run` (exactly one scheme and seed). ds and be may be NULL: the run then loads its
 * config's dataset and creates its config's backend itself (a sweep passes the ones it
 * loaded once). Returns 0 when the loop ran (finished, diverged, stopped, or failed on a
 * write: see res->status), or -1 for a setup error (message in err). */
int run_train(const NbConfig *run, Dataset *ds, Backend *be, const RunOptions *opt,
              RunResult *res, char *err, size_t errlen);

/* The scheme table of a model: specs[2*(l-1) + s] for l = 1..L (malloc'ed), or NULL with err
 * (a bad scheme constant, out of memory). */
SublayerSpec *run_build_specs(const ModelConfig *mc, const SchemeRow *scheme,
                              const SchemeParams *p, char *err, size_t errlen);

/* The model of run config `run` (its first scheme) on be with micro-batch train.batch, its
 * scheme table built and held by the model; parameters zero. NULL with err. */
Model *run_create_model(const NbConfig *run, Backend *be, char *err, size_t errlen);

/* The dataset a config names (the embedded corpus or shards). With data.repeat: error (the
 * default), a config whose train.steps x batch x grad_accum samples exceed the training
 * split's windows is refused here, before anything trains, with one line naming data.repeat
 * and the epochs it implies (the dataset is freed). */
int run_load_dataset(const NbConfig *cfg, Dataset *ds, char *err, size_t errlen);

/* Epochs of the training split the whole run reads (run_data_epochs > 1: data repeats). */
double run_data_epochs(const NbConfig *cfg, const Dataset *ds);

/* The backend a config names, with threads = backend.threads; NULL with err naming the
 * config file and key. */
Backend *run_open_backend(const NbConfig *cfg, char *err, size_t errlen);

#endif
