/* dist.c — one run across N processes (see dist.h): the MPI world, each rank's share of the
 * micro-batches, sums across ranks (MPI on host buffers, NCCL on CUDA buffers), and ending
 * every rank together. Without NB_HAVE_MPI it is the one-process identity. */
#include "dist.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef NB_HAVE_MPI
#include <mpi.h>
#endif
#ifdef NB_HAVE_CUDA
#include "cuda/cu_nccl.h"
#endif

/* The world: process-wide, set once by dist_init (docs/design.md section 13). */
static struct {
    int rank, size, local_rank, local_size;
    int mpi;            /* 1: MPI_Init was called */
    double timeout_s;   /* a collective waited for longer ends every rank */
    void *nccl;         /* the NCCL communicator, made at the first CUDA gradient sum */
} world = {0, 1, 0, 1, 0, 600.0, NULL};

int dist_rank(void) { return world.rank; }
int dist_size(void) { return world.size; }
int dist_local_rank(void) { return world.local_rank; }
int dist_local_size(void) { return world.local_size; }

static int env_int(const char *name) {
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

/* Ranks a launcher says it started (0: no launcher), and whether it gave us a way to find
 * the others (a PMI: mpirun, srun --mpi=pmix|pmi2). */
static int launched_ranks(int *has_pmi) {
    *has_pmi = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
    int n = env_int("OMPI_COMM_WORLD_SIZE");
    if (n <= 0) n = env_int("PMI_SIZE");
    if (n <= 0) n = env_int("SLURM_STEP_NUM_TASKS");
    return n;
}

void dist_abort(int code, const char *why) {
    if (world.size <= 1) return;
    fprintf(stderr, "normbench rank %d/%d: %s; ending every rank\n", world.rank, world.size, why);
    fflush(stderr);
#ifdef NB_HAVE_MPI
    MPI_Abort(MPI_COMM_WORLD, code);
#endif
    exit(code);
}

#ifdef NB_HAVE_MPI

static void check_mpi(int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING], why[MPI_MAX_ERROR_STRING + 64];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    snprintf(why, sizeof why, "%s failed: %s", what, text);
    dist_abort(1, why);
}

/* Waits for a non-blocking collective, at most world.timeout_s: a rank that died or hangs
 * ends the others instead of leaving them blocked. Sleeps between polls, so that a rank
 * waiting for rank 0's probes or checkpoint leaves its core to the others. */
static void wait_for(MPI_Request *req, const char *what) {
    double t0 = MPI_Wtime();
    for (long polls = 0;; polls++) {
        int done = 0;
        check_mpi(MPI_Test(req, &done, MPI_STATUS_IGNORE), what);
        if (done) return;
        if (world.timeout_s > 0 && MPI_Wtime() - t0 > world.timeout_s) {
            char why[160];
            snprintf(why, sizeof why, "%s: no answer from the other ranks for %.0f s "
                     "(NB_DIST_TIMEOUT)", what, world.timeout_s);
            dist_abort(1, why);
        }
        if (polls > 100) {
            struct timespec nap = {0, 50000};
            nanosleep(&nap, NULL);
        }
    }
}

static void sum_in_place(void *buf, size_t n, MPI_Datatype type, const char *what) {
    /* counts are int in MPI: large buffers in chunks */
    const size_t chunk = (size_t)1 << 30;
    int elem = 0;
    MPI_Type_size(type, &elem);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        MPI_Request req;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * (size_t)elem, (int)k, type,
                                 MPI_SUM, MPI_COMM_WORLD, &req),
                  what);
        wait_for(&req, what);
    }
}

#endif

int dist_init(int *argc, char ***argv, char *err, size_t errlen) {
    int has_pmi = 0, n = launched_ranks(&has_pmi);
    const char *t = getenv("NB_DIST_TIMEOUT");
    if (t && *t) world.timeout_s = atof(t);
    if (n <= 1 && !has_pmi) return 0; /* one process: no MPI at all */
#ifdef NB_HAVE_MPI
    if (!has_pmi) {
        snprintf(err, errlen, "normbench: started as one of %d tasks without an MPI process "
                 "manager: use mpirun, or srun --mpi=pmix", n);
        return -1;
    }
    if (MPI_Init(argc, argv) != MPI_SUCCESS) {
        snprintf(err, errlen, "normbench: MPI_Init failed");
        return -1;
    }
    world.mpi = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world.size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &world.local_rank);
    MPI_Comm_size(node, &world.local_size);
    MPI_Comm_free(&node);
    return 0;
#else
    (void)argc, (void)argv;
    if (n <= 1) return 0;
    snprintf(err, errlen, "normbench: started as one of %d ranks, but this build has no MPI "
             "(install libopenmpi-dev and rebuild)", n);
    return -1;
#endif
}

void dist_finalize(void) {
#ifdef NB_HAVE_CUDA
    if (world.nccl) cu_nccl_comm_destroy(world.nccl);
    world.nccl = NULL;
#endif
#ifdef NB_HAVE_MPI
    if (world.mpi) MPI_Finalize();
    world.mpi = 0;
#endif
}

const char *dist_describe(void) {
#ifdef NB_HAVE_MPI
    static char text[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(text, &len);
    text[strcspn(text, ",\n")] = '\0'; /* "Open MPI v4.1.4" */
    return text;
#else
    return "not compiled in (no mpicc at build time)";
#endif
}

int dist_prepare(NbConfig *cfg, char *err, size_t errlen) {
    if (world.size <= 1) return 0;
    if (cfg->train.grad_accum % world.size != 0) {
        snprintf(err, errlen, "%s: train.grad_accum: %d micro-batches per step cannot be shared "
                 "by %d ranks (use a number of ranks that divides it, or set train.grad_accum "
                 "to a multiple of %d)", cfg->source_path, cfg->train.grad_accum, world.size,
                 world.size);
        return -1;
    }
    if (cfg->backend.threads <= 0) {
        int per_rank = omp_get_num_procs() / world.local_size;
        cfg->backend.threads = per_rank > 0 ? per_rank : 1;
    }
#ifdef NB_HAVE_CUDA
    if (cfg->backend.name == NB_BACKEND_CUDA ||
        (cfg->backend.name == NB_BACKEND_AUTO && cuda_device_count() > 0))
        return cu_select_device(world.local_rank, err, errlen);
#endif
    return 0;
}

void dist_share(int accum, int *first, int *last) {
    /* contiguous shares: rank r computes micro-batches [r*k, (r+1)*k), k = accum / size */
    int k = accum / world.size;
    *first = world.rank * k;
    *last = world.size == 1 ? accum : *first + k;
}

void dist_sum_grads(Model *m) {
    if (world.size <= 1) return;
    Backend *be = model_backend(m);
    float *g = model_grads(m);
    size_t n = model_params(m)->total;
#ifdef NB_HAVE_CUDA
    if (strcmp(be->name, "cuda") == 0) {
        char err[256];
        if (!world.nccl) {
            unsigned char id[CU_NCCL_ID_BYTES] = {0};
            if (world.rank == 0 && cu_nccl_unique_id(id, err, sizeof err) != 0)
                dist_abort(1, err);
            dist_bcast(id, sizeof id);
            if (!(world.nccl = cu_nccl_comm_create(id, world.size, world.rank, err, sizeof err)))
                dist_abort(1, err);
        }
        if (cu_nccl_sum_f32(be, world.nccl, g, n, world.timeout_s, err, sizeof err) != 0)
            dist_abort(1, err);
        return;
    }
#endif
#ifdef NB_HAVE_MPI
    be->ops->synchronize(be); /* the CPU backend's buffers are host memory */
    sum_in_place(g, n, MPI_FLOAT, "gradient all-reduce");
#else
    (void)be, (void)g, (void)n;
#endif
}

double dist_sum_double(double x) {
#ifdef NB_HAVE_MPI
    if (world.size > 1) sum_in_place(&x, 1, MPI_DOUBLE, "loss all-reduce");
#endif
    return x;
}

int dist_any(int flag) {
#ifdef NB_HAVE_MPI
    if (world.size > 1) {
        int v = flag != 0;
        MPI_Request req;
        check_mpi(MPI_Iallreduce(MPI_IN_PLACE, &v, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD, &req),
                  "stop-flag all-reduce");
        wait_for(&req, "stop-flag all-reduce");
        return v;
    }
#endif
    return flag != 0;
}

void dist_bcast(void *buf, size_t bytes) {
#ifdef NB_HAVE_MPI
    if (world.size > 1) {
        MPI_Request req;
        check_mpi(MPI_Ibcast(buf, (int)bytes, MPI_BYTE, 0, MPI_COMM_WORLD, &req), "broadcast");
        wait_for(&req, "broadcast");
    }
#else
    (void)buf, (void)bytes;
#endif
}
