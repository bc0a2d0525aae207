/* slurm.h — a sweep as a Slurm job array (`normbench sweep CONFIG --emit slurm`).
 *
 * Owns the sbatch script: one array task per run of the sweep's plan (src/sweep.c: task i is
 * run i, scheme-major then seeds), each task `normbench sweep CONFIG --only i` under srun, so
 * that a requeued or resubmitted task resumes its run from its checkpoint and skips it once
 * finished; task 0 submits the `normbench report` job that waits for the whole array
 * (afterany). The script names absolute paths (binary, config, working directory), so it
 * runs from any directory on a shared file system.
 */
#ifndef NORMBENCH_SLURM_H
#define NORMBENCH_SLURM_H

#include <stdio.h>

#include "config.h"

typedef struct {
    const char *config_path;      /* the CONFIG argument, as given */
    const char *const *sets;      /* the --set overrides, passed on to every task */
    int n_sets;
    int gpus_per_run;             /* 0: one CPU task per run; N: N ranks, one GPU each */
    const char *time;             /* --time for sbatch (NULL: the partition's default) */
    const char *partition;        /* NULL: the cluster's default */
} SlurmOptions;

/* Writes the sbatch script of cfg's sweep to out (and creates <output.dir>/<name>/slurm/,
 * where the tasks' logs go). 0, or -1 with err. */
int slurm_emit(const NbConfig *cfg, const SlurmOptions *opt, FILE *out, char *err,
               size_t errlen);

#endif
