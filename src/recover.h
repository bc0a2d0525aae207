/* recover.h — what a run's files on disk allow, decided by the process that holds the run's
 * lock (runlock.h) just before it trains.
 *
 * Owns the rule "resume only from a consistent pair": a run resumes when its run file says
 * running, reads, was written for the same config and holds every /train row up to the
 * checkpoint's step, and its checkpoint passes checkpoint_check (readable, step within
 * [0, train.steps], every tensor and the /optimizer moments present). Any other combination
 * left by a kill, a full disk or a hand edit (torn run file beside a good checkpoint, run
 * file deleted with the checkpoint kept, truncated checkpoint, checkpoint without
 * /optimizer, step out of range) trains the run from step 0, which ends in the same state as
 * an uninterrupted run (batch order and initialization are functions of the seed): the
 * damaged file is renamed <file>.damaged beside it, never deleted, and one line says so.
 * A run file written with a different config is not ours to replace: that stops the run
 * with one line saying what to remove. Only here, under the lock, are a run's old files
 * removed for a fresh start.
 */
#ifndef NORMBENCH_RECOVER_H
#define NORMBENCH_RECOVER_H

#include <stddef.h>

#include "config.h"
#include "sweep.h"

/* Sets sr->plan for `run` (the one-scheme, one-seed config run_train will get) from what is
 * on disk, and prepares the files: PLAN_TRAIN removes the run file, the checkpoint and its
 * temp file (fresh = 1 always trains from step 0); PLAN_RESUME leaves them; the skips touch
 * nothing. note (may be empty) is one line to print when something was set aside. Returns 0,
 * or -1 with err when the run cannot go on (a different config, a file that cannot be
 * moved). The caller holds the run's lock. */
int recover_prepare(const NbConfig *run, SweepRun *sr, int fresh, char *note, size_t notelen,
                    char *err, size_t errlen);

#endif
