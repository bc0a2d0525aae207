/* h5vet.h — reading an existing HDF5 file in a child process first, so that a corrupt file
 * cannot crash or hang normbench.
 *
 * Why: on corrupt files (a torn disk block, a fuzzer's input) Debian's libhdf5 1.10 can loop
 * forever or read out of bounds inside its own metadata code (the global heap of
 * variable-length strings, object headers: fuzz/libhdf5-findings/); no check through the
 * library's API comes before those reads. So every reader of a file normbench did not just
 * write runs its reading function in a forked child first, with a time limit:
 *  - a rehearsal: the parent then calls the same function itself. The child starts from an
 *    exact copy of the parent's memory and runs the same code on the same bytes, so it meets
 *    what the parent would meet (an out-of-bounds read that happens to crash, a loop);
 *  - or the read itself, when the function writes its results into memory shared with the
 *    parent (h5vet_shared_alloc): a checkpoint's tensors are read once, by the child.
 * The child never returns: it leaves with _exit, so nothing the parent holds (open HDF5
 * files, stdio buffers, MPI or CUDA state) is flushed or closed twice. */
#ifndef NORMBENCH_H5VET_H
#define NORMBENCH_H5VET_H

#include <stddef.h>

/* A reading function: 0, or -1 with the reason in err. */
typedef int (*H5VetRead)(void *ctx, char *err, size_t errlen);

/* Runs reader(ctx) in a child process and returns what it returned there: 0, or -1 with the
 * child's err. -2 with "corrupt HDF5 file: ..." in err (no path: the caller prefixes it)
 * when the child crashed, aborted or took longer than the time limit (h5vet_set_timeout
 * plus seconds_extra, for reads of much data), or when no child could be started.
 * Whatever reader wrote lives on only in h5vet_shared_alloc memory. */
int h5vet_run(H5VetRead reader, void *ctx, double seconds_extra, char *err, size_t errlen);

/* The readers' use of h5vet_run: reader(ctx) in a child; when it got through, again here
 * (rehearse 1), or not at all (rehearse 0: the child's read was the read, into shared
 * memory). Returns 0, or -1 with err: the reader's own message when it failed cleanly in the
 * child (it is not repeated here), or "PATH: corrupt HDF5 file: ..." ("PATH: " only when path
 * is not NULL) when the child crashed or hung. */
int h5vet_read(H5VetRead reader, void *ctx, const char *path, double seconds_extra,
               int rehearse, char *err, size_t errlen);

/* Memory the child's writes reach the parent through (zeroed; NULL when out of memory),
 * and its release. */
void *h5vet_shared_alloc(size_t bytes);
void h5vet_shared_free(void *p, size_t bytes);

/* How long the child may take before it counts as hung (seconds; default 30, far above
 * what reading any normbench file's metadata takes). Tests and fuzz targets lower it. */
void h5vet_set_timeout(double seconds);

#endif
