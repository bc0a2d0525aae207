/* prune.h — `normbench prune RUN_OR_CHECKPOINT [--what block|attn|mlp]`: the pruning sweep
 * of docs/design.md section 4 on a finished run, after the fact.
 *
 * Owns: finding the run file and the checkpoint beside it (RUN.h5 <-> RUN.ckpt.h5), the
 * sweep's schedule (one validation batch at a time, progress with ETA), and its resumption:
 * after every batch the partial sums go into the run file (/prune_partial, runfile.c), so a
 * sweep cut off (Ctrl-C, a kill, a lost machine) continues from the last finished batch and
 * ends with the same bits as one that never stopped. The result is written with
 * runfile_write_prune: the same /prune datasets and attributes as in-training pruning
 * (metrics.prune), bit for bit when the run's config, backend and thread count are the same.
 *
 * The model comes from the checkpoint (its parameters and its config_yaml, which must equal
 * the run file's), the batches from the config's validation split (eval.batches of them),
 * the backend from backend.name, exactly as run.c builds them (run_create_model,
 * run_load_dataset, run_open_backend). */
#ifndef NORMBENCH_PRUNE_H
#define NORMBENCH_PRUNE_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

typedef struct {
    const char *what;        /* "block", "attn", "mlp" or NULL: all three */
    FILE *progress;          /* progress lines with ETA; NULL: quiet */
    int progress_tty;        /* 1: one self-overwriting line */
    int stop_after_batches;  /* > 0: stop after this many batches of this call (tests, as if
                              * killed); the partial sums stay in the run file */
    const volatile sig_atomic_t *stop_flag; /* non-zero: stop after the current batch */
} PruneOptions;

enum { PRUNE_OK = 0, PRUNE_FAILED = 1, PRUNE_USAGE = 2, PRUNE_STOPPED = 3 };

/* Runs (or resumes) the sweep on `path` (a run file or its checkpoint). Returns PRUNE_OK,
 * PRUNE_STOPPED (cut off on request, resumable), PRUNE_USAGE (bad argument, missing or
 * mismatched files, unfinished run: one line in err) or PRUNE_FAILED (a write or compute
 * error, one line in err). */
int prune_run(const char *path, const PruneOptions *opt, char *err, size_t errlen);

#endif
