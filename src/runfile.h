/* runfile.h — the run file (docs/design.md section 5), in both directions: one HDF5 file per
 * run, its dataset names, its statuses, the writer the trainer fills and the reader that
 * sweep, report, tables and export go through; and the listing of run files in a directory.
 *
 * Owns: the file layout (documented field by field in docs/run-file.md), provenance
 * attributes, the extendible series (/train, /eval, /layers), the /prune table, the run's
 * status, crash safety. It decides nothing about WHEN rows are written: src/run.c does.
 *
 * Crash safety. Training rows are buffered in memory and written with every probe and
 * evaluation (and every RUNFILE_TRAIN_BUFFER rows), each time followed by H5Fflush; between
 * those points the library does no I/O on the file. A process killed with SIGKILL therefore
 * leaves the file as of its last flush: it opens in h5dump and h5py and holds every row
 * written before the kill (a kill inside the flush itself, a few ms, is the remaining
 * window; HDF5 1.10 has no journal). Status stays "running" in such a file.
 *
 * Errors: every function that writes returns 0, or -1 with a one-line message naming the
 * file in err (unwritable directory, disk full); the trainer then stops the run cleanly and
 * its checkpoints, which live in other files, stay intact. No global state.
 */
#ifndef NORMBENCH_RUNFILE_H
#define NORMBENCH_RUNFILE_H

#include <stddef.h>

#include "config.h"
#include "metrics.h"
#include "schemes.h"

#define RUNFILE_FORMAT_VERSION 1
#ifndef NORMBENCH_VERSION
#define NORMBENCH_VERSION "0.1.0"
#endif
#define RUNFILE_TRAIN_BUFFER 256 /* training rows held in memory between writes */

/* ---- statuses ------------------------------------------------------------------------- */

/* How a run ended, and what its file says. FINISHED, DIVERGED and FAILED are written as
 * such; STOPPED (ended early on request: Ctrl-C, --stop-after, with a checkpoint to resume
 * from) is written as "running", like a run still training or one that was killed. UNKNOWN:
 * no readable status (no file, not a run file). The values of the first four are also the
 * exit codes of sweep's child processes. */
typedef enum {
    RUN_FINISHED = 0,
    RUN_DIVERGED = 1,
    RUN_FAILED = 2,
    RUN_STOPPED = 3,
    RUN_RUNNING = 4,
    RUN_UNKNOWN = 5,
} RunStatus;

const char *run_status_name(RunStatus s);      /* "finished", ..., "unknown" */
RunStatus run_status_parse(const char *name);  /* RUN_UNKNOWN for any other text */

/* ---- datasets ------------------------------------------------------------------------- */

/* Every dataset of a run file; runfile_dataset_name gives its path ("train/loss"). The
 * /train, /eval and /layers groups are series (one row per step, probe or evaluation, the
 * first column the step); /prune holds one value per block. */
typedef enum {
    RF_TRAIN_STEP, RF_TRAIN_LOSS, RF_TRAIN_LR, RF_TRAIN_GRAD_NORM, RF_TRAIN_TOKENS_PER_S,
    RF_EVAL_STEP, RF_EVAL_LOSS, RF_EVAL_PPL,
    RF_LAYERS_STEP, RF_LAYERS_VARIANCE, RF_LAYERS_ANGULAR, RF_LAYERS_ANGULAR_LAST,
    RF_LAYERS_GRAD_NORM,
    RF_PRUNE_BLOCK, RF_PRUNE_ATTN, RF_PRUNE_MLP,
    RF_N_DATASETS
} RunDataset;

const char *runfile_dataset_name(RunDataset d);
int runfile_dataset_rank(RunDataset d);   /* 1, 2 or 3 */

/* ---- writing ------------------------------------------------------------------------- */

typedef struct RunFile RunFile;

/* What the run file records besides the config and the scheme table. */
typedef struct {
    const char *backend;  /* "cpu", "cuda" */
    const char *device;   /* CPU model or GPU name */
    const char *kernels;  /* the GEMM kernels: "OpenBLAS SkylakeX", "cuBLASLt" */
    size_t n_params;
    int ranks;            /* processes the run was trained on (src/dist.c); 0 counts as 1 */
    double data_epochs;   /* epochs of the training split the run reads (> 1: repeated) */
} RunFileInfo;

/* Creates (truncating) the run file of `run` (exactly one scheme and seed) whose model uses
 * `specs` (2 * n_layer, the table the model holds), with every group and empty series, root
 * attributes status = "running", started_at = now. */
RunFile *runfile_create(const char *path, const NbConfig *run, const SublayerSpec *specs,
                        const RunFileInfo *info, char *err, size_t errlen);
/* Reopens the run file of a resumed run: checks it was written for the same config (by
 * config_sha256), cuts every series to the rows with step <= start_step (what the checkpoint
 * holds), removes /prune and /prune_partial, and sets status "running" again (resumed_at = now). */
RunFile *runfile_reopen(const char *path, const NbConfig *run, int start_step, char *err,
                        size_t errlen);

/* One /train row (buffered; written at the next flush point). */
int runfile_append_train(RunFile *rf, int step, double loss, double lr, double grad_norm,
                         double tokens_per_s, char *err, size_t errlen);
/* One /eval row (step, loss, ppl = exp(loss)); writes the buffer and flushes. */
int runfile_append_eval(RunFile *rf, int step, double loss, char *err, size_t errlen);
/* One /layers row (p->step, variance, angular, angular_last, grad_norm); writes the buffer
 * and flushes. */
int runfile_append_probe(RunFile *rf, const LayerProbe *p, char *err, size_t errlen);
/* /prune/{block,attn,mlp} and their attributes (replacing earlier ones); flushes. `step` is
 * the training step of the model that was pruned. */
int runfile_write_prune(RunFile *rf, const PruneResult *p, int step, char *err, size_t errlen);
/* Opens the run file of a finished run for `normbench prune` (read-write): checks that its
 * config_yaml is `config_yaml` (the checkpoint's) and that it has n_layer layers; *status is
 * its status. NULL with err otherwise (missing, not a run file, locked by a writer). */
RunFile *runfile_open_existing(const char *path, const char *config_yaml, int n_layer,
                               RunStatus *status, char *err, size_t errlen);
/* A pruning sweep in progress (`normbench prune`, resumable): /prune_partial holds sums
 * [3L + 1] (metrics_prune_batch's layout) after `done` of `batches` batches, with attributes
 * step, batches, done and what (the PRUNE_WHAT_* mask). Writing replaces it and flushes. Reading
 * fills sums and returns `done` when a partial sweep of the same step, batches and what
 * exists, else 0 (sums untouched). Clearing removes it. */
int runfile_write_prune_partial(RunFile *rf, int step, int batches, unsigned what, int done,
                                const double *sums, char *err, size_t errlen);
int runfile_read_prune_partial(RunFile *rf, int step, int batches, unsigned what, double *sums);
int runfile_clear_prune_partial(RunFile *rf, char *err, size_t errlen);
/* Writes buffered rows and H5Fflush. */
int runfile_flush(RunFile *rf, char *err, size_t errlen);
/* Sets the status: RUN_STOPPED is written as "running"; any status but running also sets
 * finished_at = now. Flushes. */
int runfile_set_status(RunFile *rf, RunStatus status, char *err, size_t errlen);
/* Writes what is buffered, closes and frees (rf may be NULL). */
int runfile_close(RunFile *rf, char *err, size_t errlen);

/* ---- reading ------------------------------------------------------------------------- */

/* The root attribute `status` of a run file, read without taking HDF5's file lock (so it
 * works while a writer holds the file). RUN_UNKNOWN with err when the file is missing or
 * not a run file. */
RunStatus runfile_read_status(const char *path, char *err, size_t errlen);

/* One dataset as read: values converted to double, shape in dims[0..rank-1]. present = 0
 * when the file lacks it or it is not numeric (data NULL, rank 0). */
typedef struct {
    int present;
    int rank;
    size_t dims[3];
    double *data;
} RunArray;

/* What a reader gets of a run file. Integers are -1 and doubles NaN when absent. */
typedef struct {
    char *scheme;            /* root attribute `scheme` */
    char *status_text;       /* root attribute `status` as stored; "unknown" when absent */
    RunStatus status;
    long long seed;
    int has_seed;
    long long n_layer, d_model, n_params;   /* /model attributes */
    int has_prune;                          /* a /prune group with base_loss */
    double prune_base_loss;
    RunArray data[RF_N_DATASETS];
} RunFileData;

/* Bit of a dataset in runfile_read's `want` mask; RF_WANT_ALL reads every dataset. */
#define RF_WANT(d) (1u << (d))
#define RF_WANT_ALL ((1u << RF_N_DATASETS) - 1u)

/* Reads the attributes and the datasets in `want` of run file `path`. Returns 0, or -1 with
 * the reason in why (not an HDF5 file, no root attribute `scheme`, out of memory); d needs
 * runfile_data_free either way. */
int runfile_read(const char *path, unsigned want, RunFileData *d, char *why, size_t whylen);
void runfile_data_free(RunFileData *d);

/* ---- directories of run files --------------------------------------------------------- */

/* "a/b" (malloc'ed; NULL when out of memory) */
char *runfile_path_join(const char *a, const char *b);

/* 1 for a run file's name: not hidden, ends in .h5 but not .ckpt.h5 (the checkpoints that
 * live beside run files) */
int runfile_is_run_file(const char *name);

/* Sorted names of the entries of dir that are regular files (want_dirs = 0) or directories
 * (want_dirs = 1), filtered by keep (may be NULL); hidden entries are skipped. Returns the
 * count with *out malloc'ed (free each name and the array), or -1 with errno set. */
long runfile_list(const char *dir, int want_dirs, int (*keep)(const char *), char ***out);

#endif
