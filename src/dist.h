/* dist.h — one run across N processes (data parallelism over MPI, and NCCL on CUDA).
 *
 * Owns: the MPI world (started only when a launcher — mpirun, srun --mpi=pmix — started this
 * process; a build without MPI, NB_HAVE_MPI unset, is always one process), each rank's share
 * of a step's micro-batches, the sums across ranks (gradients: MPI_Allreduce on host buffers
 * for the CPU backend, NCCL on the backend's stream for CUDA, the NCCL unique id broadcast
 * over MPI; losses and stop flags: MPI), which rank writes (rank 0), the GPU of a rank (its
 * local rank), and stopping together: a collective that does not complete within the
 * timeout (NB_DIST_TIMEOUT seconds, default 600), a failed run on any rank, or dist_abort
 * ends every rank through MPI_Abort (the launcher then kills the rest and exits non-zero).
 *
 * Like the stop flag of main.c, the world is process-wide state: set once by dist_init in
 * main before anything else, read everywhere through the functions below. With one process
 * every function is the identity or a no-op, so a single-process run computes exactly what
 * it computed before this module existed (bitwise).
 */
#ifndef NORMBENCH_DIST_H
#define NORMBENCH_DIST_H

#include <stddef.h>

#include "config.h"
#include "model.h"

/* Starts MPI when the process was started by an MPI launcher (and the build has MPI).
 * Returns 0, or -1 with err (a launcher's environment without MPI support compiled in, or
 * srun without a PMI plugin). */
int dist_init(int *argc, char ***argv, char *err, size_t errlen);
/* Leaves MPI (all ranks must call it). */
void dist_finalize(void);

int dist_rank(void);        /* 0 .. size-1; 0 without MPI */
int dist_size(void);        /* number of ranks; 1 without MPI */
int dist_local_rank(void);  /* rank among the ranks on this host */
int dist_local_size(void);
/* "OpenMPI 4.1.4" or "not compiled in (no mpicc at build time)" */
const char *dist_describe(void);

/* Checks that the config can run on dist_size() ranks (train.grad_accum divisible by it;
 * 0 otherwise, with err: one line naming the key) and adapts it: backend.threads left at 0
 * becomes the host's cores over the ranks on this host; on CUDA, selects this rank's GPU
 * (local rank modulo the visible devices). A no-op with one rank. */
int dist_prepare(NbConfig *cfg, char *err, size_t errlen);

/* The micro-batches [*first, *last) of the accum a step makes that this rank computes. */
void dist_share(int accum, int *first, int *last);

/* Sums across ranks, in place on every rank (identical results on every rank). The
 * gradient sum runs on the model's backend (MPI on CPU buffers, NCCL on CUDA buffers). A
 * failure or a timeout aborts every rank. No-ops with one rank. */
void dist_sum_grads(Model *m);
double dist_sum_double(double x);
/* 1 when `flag` is non-zero on any rank (the stop flag, so that all ranks stop together). */
int dist_any(int flag);
/* Copies rank 0's `bytes` at buf to every rank (a sweep's plan). */
void dist_bcast(void *buf, size_t bytes);

/* With several ranks: prints `why` (prefixed with the rank) and ends every rank with exit
 * status `code` through MPI_Abort. With one rank: returns. */
void dist_abort(int code, const char *why);

#endif
