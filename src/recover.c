/* recover.c — resume, start over or skip, from what a run's files say (see recover.h). */
#include "recover.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "run.h"
#include "runfile.h"

/* Removes path when it exists; -1 with err when it exists and cannot be removed. */
static int remove_file(const char *path, char *err, size_t errlen) {
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    snprintf(err, errlen, "%s: cannot remove: %s", path, strerror(errno));
    return -1;
}

/* Renames path to path.damaged (replacing an older one); -1 with err on failure. */
static int set_aside(const char *path, char *aside, size_t len, char *err, size_t errlen) {
    snprintf(aside, len, "%s.damaged", path);
    if (rename(path, aside) == 0) return 0;
    snprintf(err, errlen, "%s: cannot set aside as %s: %s", path, aside, strerror(errno));
    return -1;
}

/* The fresh start: nothing of an earlier attempt may be continued or appended to. */
static int clear_run(const SweepRun *sr, char *err, size_t errlen) {
    char tmp[sizeof sr->checkpoint + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", sr->checkpoint);
    return remove_file(tmp, err, errlen) == 0 && remove_file(sr->checkpoint, err, errlen) == 0 &&
                   remove_file(sr->run_file, err, errlen) == 0
               ? 0
               : -1;
}

/* 1 when the run file holds /train rows for steps 1..through, in order (what a run killed
 * after its checkpoint at `through` leaves: the file is flushed before each checkpoint). */
static int train_rows_cover(const RunFileData *d, int through) {
    const RunArray *steps = &d->data[RF_TRAIN_STEP];
    if (!steps->present || steps->rank != 1 || steps->dims[0] < (size_t)through) return 0;
    for (int k = 0; k < through; k++)
        if (steps->data[k] != (double)(k + 1)) return 0;
    for (RunDataset c = RF_TRAIN_LOSS; c <= RF_TRAIN_TOKENS_PER_S; c++)
        if (!d->data[c].present || d->data[c].dims[0] < steps->dims[0]) return 0;
    return 1;
}

int recover_prepare(const NbConfig *run, SweepRun *sr, int fresh, char *note, size_t notelen,
                    char *err, size_t errlen) {
    note[0] = '\0';
    sr->plan = PLAN_TRAIN;
    if (fresh) return clear_run(sr, err, errlen);

    char why[512], aside[sizeof sr->run_file + 16];
    const int run_exists = access(sr->run_file, F_OK) == 0;
    const int ckpt_exists = access(sr->checkpoint, F_OK) == 0;
    RunFileData d;
    const int readable = run_exists &&
                         runfile_read(sr->run_file, RF_WANT(RF_TRAIN_STEP) | RF_WANT(RF_TRAIN_LOSS) |
                                          RF_WANT(RF_TRAIN_LR) | RF_WANT(RF_TRAIN_GRAD_NORM) |
                                          RF_WANT(RF_TRAIN_TOKENS_PER_S),
                                      &d, why, sizeof why) == 0;
    if (run_exists && !readable) runfile_data_free(&d);
    const RunStatus status = readable ? d.status : RUN_UNKNOWN;
    if (status == RUN_FINISHED || status == RUN_DIVERGED) {
        sr->plan = status == RUN_FINISHED ? PLAN_SKIP_FINISHED : PLAN_SKIP_DIVERGED;
        runfile_data_free(&d);
        return 0;
    }

    /* a run file that does not read (torn by a kill inside a write, or not a run file):
     * kept for inspection, never appended to */
    if (run_exists && (!readable || status == RUN_UNKNOWN)) {
        if (readable) {
            snprintf(why, sizeof why, "no readable status");
            runfile_data_free(&d);
        }
        if (set_aside(sr->run_file, aside, sizeof aside, err, errlen) != 0) return -1;
        snprintf(note, notelen, "%s: unreadable (%s); set aside as %s, training from step 0",
                 sr->run_file, why, aside);
        return clear_run(sr, err, errlen);
    }
    if (!ckpt_exists || (readable && status != RUN_RUNNING)) {
        /* failed, or killed before its first checkpoint: nothing to continue */
        if (readable) runfile_data_free(&d);
        return clear_run(sr, err, errlen);
    }

    CheckpointInfo info;
    SublayerSpec *specs =
        run_build_specs(&run->model, run->schemes[0], &run->scheme_params, err, errlen);
    if (!specs) {
        if (readable) runfile_data_free(&d);
        return -1;
    }
    int checked = checkpoint_check(sr->checkpoint, &run->model, specs, run->train.steps, &info,
                                   why, sizeof why);
    free(specs);
    if (checked != 0) {
        if (readable) runfile_data_free(&d);
        if (set_aside(sr->checkpoint, aside, sizeof aside, err, errlen) != 0) return -1;
        snprintf(note, notelen, "%s; set aside as %s, training from step 0", why, aside);
        return clear_run(sr, err, errlen);
    }
    const int step = info.step;
    checkpoint_info_free(&info);
    if (!readable) { /* a checkpoint alone: its rows are gone, so is the run's history */
        if (set_aside(sr->checkpoint, aside, sizeof aside, err, errlen) != 0) return -1;
        snprintf(note, notelen, "%s: missing beside checkpoint of step %d (set aside as %s); "
                 "training from step 0", sr->run_file, step, aside);
        return clear_run(sr, err, errlen);
    }
    const int covered = train_rows_cover(&d, step);
    runfile_data_free(&d);
    if (!covered) {
        if (set_aside(sr->run_file, aside, sizeof aside, err, errlen) != 0) return -1;
        snprintf(note, notelen, "%s: /train rows do not reach checkpoint step %d; set aside as "
                 "%s, training from step 0", sr->run_file, step, aside);
        return clear_run(sr, err, errlen);
    }
    sr->plan = PLAN_RESUME;
    return 0;
}
