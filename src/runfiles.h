/* runfiles.h — finding run files on disk: which names are run files (`*.h5`, not the
 * `*.ckpt.h5` checkpoints beside them), sorted directory listings, path joining. Shared by
 * `report` and `tables`, which both read directories of runs. */
#ifndef NORMBENCH_RUNFILES_H
#define NORMBENCH_RUNFILES_H

/* "a/b" (malloc'ed; NULL when out of memory) */
char *runfiles_path_join(const char *a, const char *b);

/* 1 for a run file's name: not hidden, ends in .h5 but not .ckpt.h5 */
int runfiles_is_run_file(const char *name);

/* Sorted names of the entries of dir that are regular files (want_dirs = 0) or directories
 * (want_dirs = 1), filtered by keep (may be NULL); hidden entries are skipped. Returns the
 * count with *out malloc'ed (free each name and the array), or -1 with errno set. */
long runfiles_list(const char *dir, int want_dirs, int (*keep)(const char *), char ***out);

#endif
