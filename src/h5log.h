/* h5log.h — the run file of DESIGN.md section 5: one HDF5 file per run, and the recorder
 * that fills it from the training loop.
 *
 * Owns: the file layout (documented field by field in docs/run-file.md), provenance
 * attributes, the extendible series (/train, /eval, /layers), the /prune table, the run's
 * status, crash safety, and the RunRecorder: a TrainObserver that train_run drives to write
 * the file and run the probes of metrics.c at the right steps.
 *
 * Crash safety. Training rows are buffered in memory and written together with every probe
 * and evaluation (and every H5LOG_TRAIN_BUFFER rows), each time followed by H5Fflush; between
 * those points the library does no I/O on the file. A process killed with SIGKILL therefore
 * leaves the file as of its last flush: it opens in h5dump and h5py and holds every probe
 * and evaluation written before the kill (a kill inside the flush itself, a few ms, is the
 * remaining window; HDF5 1.10 has no journal). Status stays "running" in such a file.
 *
 * Errors: every function that writes returns 0, or -1 with a one-line message naming the
 * file in err (unwritable directory, disk full); the trainer then stops the run cleanly and
 * its checkpoints, which live in other files, stay intact. No global state.
 */
#ifndef NORMBENCH_H5LOG_H
#define NORMBENCH_H5LOG_H

#include <stddef.h>

#include "backend.h"
#include "config.h"
#include "data.h"
#include "metrics.h"
#include "train.h"

#define H5LOG_FORMAT_VERSION 1
#ifndef NORMBENCH_VERSION
#define NORMBENCH_VERSION "0.1.0"
#endif
#define H5LOG_TRAIN_BUFFER 256 /* training rows held in memory between writes */

/* ---- the file ------------------------------------------------------------------------- */

typedef struct H5Log H5Log;

/* What the run file records besides the config. */
typedef struct {
    const char *backend;  /* "cpu", "cuda" */
    const char *device;   /* CPU model or GPU name */
    size_t n_params;
} H5LogRunInfo;

/* Creates (truncating) the run file of `run` (exactly one scheme and seed) with every group
 * and empty series, root attributes status = "running", started_at = now. */
H5Log *h5log_create(const char *path, const NbConfig *run, const H5LogRunInfo *info,
                    char *err, size_t errlen);
/* Reopens the run file of a resumed run: checks it was written for the same config (by
 * config_sha256), cuts every series to the rows with step <= start_step (what the checkpoint
 * holds), removes /prune, and sets status "running" again (resumed_at = now). */
H5Log *h5log_reopen(const char *path, const NbConfig *run, int start_step, char *err,
                    size_t errlen);

/* One /train row (buffered; written at the next flush point). */
int h5log_append_train(H5Log *log, const TrainStepInfo *row, char *err, size_t errlen);
/* One /eval row (step, loss, ppl = exp(loss)); writes the buffer and flushes. */
int h5log_append_eval(H5Log *log, int step, double loss, char *err, size_t errlen);
/* One /layers row (p->step, variance, angular, angular_last, grad_norm); writes the buffer
 * and flushes. */
int h5log_append_probe(H5Log *log, const LayerProbe *p, char *err, size_t errlen);
/* /prune/{block,attn,mlp} and their attributes (replacing earlier ones); flushes. `step` is
 * the training step of the model that was pruned. */
int h5log_write_prune(H5Log *log, const PruneResult *p, int step, char *err, size_t errlen);
/* Writes buffered rows and H5Fflush. */
int h5log_flush(H5Log *log, char *err, size_t errlen);
/* Sets status ("running", "finished", "diverged", "failed"); any status but running also
 * sets finished_at = now. Flushes. */
int h5log_set_status(H5Log *log, const char *status, char *err, size_t errlen);
/* Writes what is buffered, closes and frees (log may be NULL). */
int h5log_close(H5Log *log, char *err, size_t errlen);
const char *h5log_path(const H5Log *log);

/* Reads the root attribute `status` of a run file (without taking HDF5's file lock, so it
 * works while a writer holds the file). Returns 0, or -1 with err (missing file, not a run
 * file). */
int h5log_read_status(const char *path, char *status, size_t len, char *err, size_t errlen);

/* ---- the recorder ----------------------------------------------------------------------- */

typedef struct RunRecorder RunRecorder;

/* A recorder that writes run file `path` for one train_run on dataset ds (its validation
 * split gives the fixed probe set: the first metrics.probe_batches batches; the pruning
 * sweep uses the first eval.batches, the trainer's own validation set) with backend be
 * (for the backend/device attributes; may be NULL). ds and be must outlive the recorder.
 * Returns NULL only when out of memory. */
RunRecorder *run_recorder_create(const char *path, const Dataset *ds, const Backend *be);

/* The observer to put in TrainOptions.observer. It
 *   on_start  creates the file (start_step 0) or reopens and truncates it (resume);
 *   on_step   appends the training row; every metrics.every steps takes the per-block
 *             gradient norms of this step (first, before any forward) and the hidden-state
 *             probes, appends them, flushes;
 *   on_eval   appends the evaluation row, flushes;
 *   on_end    sets the status (finished, diverged; a run stopped early to be resumed stays
 *             running), runs the pruning sweep when metrics.prune is set and the run
 *             finished, flushes and closes the file. */
TrainObserver run_recorder_observer(RunRecorder *r);

/* Frees the recorder. If the file is still open (train_run failed before on_end), marks it
 * "failed" first (best effort) and closes it. */
void run_recorder_destroy(RunRecorder *r);

#endif
