/* cu_nccl.h — the NCCL side of data parallelism on the CUDA backend (kernels/cuda/nccl.cu):
 * a communicator over the ranks' GPUs and the in-place gradient sum on the backend's stream.
 * src/dist.c owns the MPI world and shares the unique id over it; this file owns nothing but
 * the NCCL calls, so that only nvcc-compiled code touches CUDA types. Built with the CUDA
 * backend; the functions report "not built with NCCL" when nccl.h was missing (NB_HAVE_NCCL
 * unset). */
#ifndef NORMBENCH_CU_NCCL_H
#define NORMBENCH_CU_NCCL_H

#include <stddef.h>

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum { CU_NCCL_ID_BYTES = 128 }; /* sizeof(ncclUniqueId) */

/* Selects this process's GPU: `index` modulo the visible devices. 0, or -1 with err. */
int cu_select_device(int index, char *err, size_t errlen);
/* A new unique id (rank 0 calls it and broadcasts the bytes). 0, or -1 with err. */
int cu_nccl_unique_id(unsigned char id[CU_NCCL_ID_BYTES], char *err, size_t errlen);
/* This rank's communicator on the current device; NULL with err. */
void *cu_nccl_comm_create(const unsigned char id[CU_NCCL_ID_BYTES], int nranks, int rank,
                          char *err, size_t errlen);
/* buf[n] (device f32) = sum over ranks, on be's stream, waited for at most timeout_s seconds
 * (<= 0: no limit); on a timeout or an asynchronous NCCL error the communicator is aborted.
 * 0, or -1 with err. */
int cu_nccl_sum_f32(Backend *be, void *comm, float *buf, size_t n, double timeout_s,
                    char *err, size_t errlen);
void cu_nccl_comm_destroy(void *comm);

#ifdef __cplusplus
}
#endif

#endif
