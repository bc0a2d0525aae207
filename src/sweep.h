/* sweep.h — a config's scheme x seed grid as runs on disk.
 *
 * Owns the naming of runs (runs/<sweep>/<scheme>-s<seed>.h5 with its checkpoint beside it as
 * <scheme>-s<seed>.ckpt.h5), the first plan for each (train, resume a "running" one from
 * its checkpoint, skip a finished, diverged or locked one; made again under the run's lock
 * by recover.c just before the run trains), the thread rule, the dataset and backend the
 * runs share (loaded once, its validation split checked against the config), and running N
 * runs at a time in child processes. One run end to end is run.c's; the run file is
 * runfile.c's; the lock runlock.c's.
 */
#ifndef NORMBENCH_SWEEP_H
#define NORMBENCH_SWEEP_H

#include <signal.h>
#include <stdio.h>

#include "config.h"
#include "data.h"
#include "run.h"

typedef enum {
    PLAN_TRAIN,   /* no run file yet, or a failed one: train from scratch */
    PLAN_RESUME,  /* run file says running: continue from the checkpoint */
    PLAN_SKIP_FINISHED,
    PLAN_SKIP_DIVERGED,
    PLAN_SKIP_BUSY,  /* another process holds the run's lock (runlock.h) */
} RunPlan;

typedef struct {
    int scheme_index, seed_index;
    char run_file[NB_PATH_MAX * 2];
    char checkpoint[NB_PATH_MAX * 2];
    RunPlan plan;
} SweepRun;

typedef struct {
    const char *command;         /* "train", "sweep": names the banner line */
    int jobs;                    /* runs at a time (>= 1); each child gets threads/jobs */
    int fresh;                   /* 1 (`train`): retrain every run, ignoring run files */
    FILE *progress;              /* NULL: quiet */
    int progress_tty;
    const volatile sig_atomic_t *stop_flag;
    int stop_after;              /* tests: stop every run after this many steps */
    int only;                    /* > 0: run only run number only-1 of the plan (sweep --only,
                                  * one Slurm array task: src/slurm.c); 0: every run */
} SweepOptions;

/* mkdir -p */
int sweep_make_dirs(const char *path, char *err, size_t errlen);

/* The directory of a sweep's runs: <output.dir>/<name>. */
void sweep_dir(const NbConfig *cfg, char *out, size_t len);

/* Expands cfg into runs (scheme-major, then seeds) and decides each one's plan from its run
 * file. *runs is malloc'ed (count = n_schemes * n_seeds). */
int sweep_plan(const NbConfig *cfg, int fresh, SweepRun **runs, int *count, char *err,
               size_t errlen);

const char *run_plan_name(RunPlan p);

/* The threads each run trains with: `configured` (backend.threads) when > 0, else
 * OMP_NUM_THREADS when it holds a count, else the cores / jobs (at least 1). */
int sweep_threads(int configured, int jobs);

typedef struct {
    int finished, diverged, failed, stopped, skipped;
} SweepTotals;

#define SWEEP_SETUP_ERROR (-2)

/* Loads the config's dataset and opens its backend once (with -j 1 every run trains on
 * them; with -j N the children share the dataset and open their own backend), prints the
 * banner and the plan, then runs the whole sweep, opt->jobs at a time, one summary line per
 * run on stdout. Returns 0 when the sweep could run (see totals); SWEEP_SETUP_ERROR when the
 * dataset or the backend cannot be opened (err: one line naming the config key); -1 with
 * err otherwise. */
int sweep_execute(const NbConfig *cfg, const SweepOptions *opt, SweepTotals *totals, char *err,
                  size_t errlen);

#endif
