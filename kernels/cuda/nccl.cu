/* nccl.cu — data parallelism on the CUDA backend (see cu_nccl.h): the GPU of a rank, the
 * NCCL communicator, and the gradient sum in place on the backend's one stream (so that the
 * norm, clipping and AdamW kernels queued after it see the summed gradients). NCCL's ring
 * and tree all-reduces give every rank the same bits, which keeps the ranks' parameters
 * identical without ever broadcasting them. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common.cuh"
#include "cu_nccl.h"

#ifdef NB_HAVE_NCCL
#include <nccl.h>
static_assert(sizeof(ncclUniqueId) == CU_NCCL_ID_BYTES, "ncclUniqueId size");
#endif

static void put_err(char *err, size_t errlen, const char *what, const char *why) {
    if (err && errlen) snprintf(err, errlen, "nccl: %s: %s", what, why);
}

extern "C" int cu_select_device(int index, char *err, size_t errlen) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count <= 0) {
        (void)cudaGetLastError();
        put_err(err, errlen, "selecting the rank's GPU", "no CUDA device visible");
        return -1;
    }
    if ((e = cudaSetDevice(index % count)) != cudaSuccess) {
        put_err(err, errlen, "cudaSetDevice", cudaGetErrorString(e));
        return -1;
    }
    return 0;
}

#ifdef NB_HAVE_NCCL

extern "C" int cu_nccl_unique_id(unsigned char id[CU_NCCL_ID_BYTES], char *err, size_t errlen) {
    ncclUniqueId u;
    ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) {
        put_err(err, errlen, "ncclGetUniqueId", ncclGetErrorString(r));
        return -1;
    }
    memcpy(id, &u, sizeof u);
    return 0;
}

extern "C" void *cu_nccl_comm_create(const unsigned char id[CU_NCCL_ID_BYTES], int nranks,
                                     int rank, char *err, size_t errlen) {
    ncclUniqueId u;
    memcpy(&u, id, sizeof u);
    ncclComm_t comm = NULL;
    ncclResult_t r = ncclCommInitRank(&comm, nranks, u, rank);
    if (r != ncclSuccess) {
        put_err(err, errlen, "ncclCommInitRank", ncclGetErrorString(r));
        return NULL;
    }
    return comm;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

extern "C" int cu_nccl_sum_f32(Backend *be, void *comm, float *buf, size_t n, double timeout_s,
                               char *err, size_t errlen) {
    ncclComm_t c = (ncclComm_t)comm;
    cudaStream_t s = cu_stream(be);
    ncclResult_t r = ncclAllReduce(buf, buf, n, ncclFloat, ncclSum, c, s);
    if (r != ncclSuccess) {
        put_err(err, errlen, "ncclAllReduce", ncclGetErrorString(r));
        return -1;
    }
    /* Wait here rather than let the stream carry on, so that a peer that died or hangs is
     * noticed (its ranks would otherwise spin in the kernel forever). */
    const double t0 = seconds_now();
    for (;;) {
        cudaError_t q = cudaStreamQuery(s);
        if (q == cudaSuccess) return 0;
        if (q != cudaErrorNotReady) {
            put_err(err, errlen, "all-reduce", cudaGetErrorString(q));
            return -1;
        }
        ncclResult_t async = ncclSuccess;
        ncclCommGetAsyncError(c, &async);
        if (async != ncclSuccess) {
            put_err(err, errlen, "all-reduce", ncclGetErrorString(async));
            ncclCommAbort(c);
            return -1;
        }
        if (timeout_s > 0 && seconds_now() - t0 > timeout_s) {
            put_err(err, errlen, "all-reduce", "timed out (a rank died or hangs; NB_DIST_TIMEOUT)");
            ncclCommAbort(c);
            return -1;
        }
        struct timespec nap = {0, 20000};
        nanosleep(&nap, NULL);
    }
}

extern "C" void cu_nccl_comm_destroy(void *comm) {
    if (comm) ncclCommDestroy((ncclComm_t)comm);
}

#else /* CUDA toolkit without NCCL */

extern "C" int cu_nccl_unique_id(unsigned char id[CU_NCCL_ID_BYTES], char *err, size_t errlen) {
    (void)id;
    put_err(err, errlen, "several ranks on the CUDA backend", "not built with NCCL (no nccl.h)");
    return -1;
}

extern "C" void *cu_nccl_comm_create(const unsigned char id[CU_NCCL_ID_BYTES], int nranks,
                                     int rank, char *err, size_t errlen) {
    (void)id, (void)nranks, (void)rank;
    put_err(err, errlen, "several ranks on the CUDA backend", "not built with NCCL (no nccl.h)");
    return NULL;
}

extern "C" int cu_nccl_sum_f32(Backend *be, void *comm, float *buf, size_t n, double timeout_s,
                               char *err, size_t errlen) {
    (void)be, (void)comm, (void)buf, (void)n, (void)timeout_s;
    put_err(err, errlen, "all-reduce", "not built with NCCL (no nccl.h)");
    return -1;
}

extern "C" void cu_nccl_comm_destroy(void *comm) { (void)comm; }

#endif
