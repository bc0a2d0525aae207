/* cuda_backend.cu — the CUDA backend's op table, creation and destruction, device queries
 * (cuda_device_count, cuda_describe) and the scratch/staging buffers of its state. */
#include <string.h>

#include "common.cuh"

static const BackendOps cuda_ops = {
    cu_alloc,
    cu_release,
    cu_zero,
    cu_copy,
    cu_upload,
    cu_download,
    cu_upload_act,
    cu_download_act,
    cu_master_to_compute,
    cu_synchronize,
    cu_embedding_forward,
    cu_embedding_backward,
    cu_matmul_forward,
    cu_matmul_backward,
    cu_norm_forward,
    cu_norm_backward,
    cu_rope_forward,
    cu_rope_backward,
    cu_attention_saved_bytes,
    cu_attention_forward,
    cu_attention_backward,
    cu_swiglu_forward,
    cu_swiglu_backward,
    cu_residual_forward,
    cu_scaled_add,
    cu_crossentropy,
    cu_adamw_update,
    cu_sumsq_f32,
};

/* cuBLASLt workspace: 32 MiB, as recommended for Hopper */
static const size_t kWorkspaceBytes = (size_t)32 << 20;

static void set_err(char *err, size_t errlen, const char *what, cudaError_t e) {
    if (err && errlen)
        snprintf(err, errlen, "cuda backend: %s: %s", what,
                 e == cudaSuccess ? "failed" : cudaGetErrorString(e));
}

extern "C" int cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear: no driver or no device is not an error here */
        return 0;
    }
    return n;
}

extern "C" void cuda_describe(char *out, size_t outlen) {
    if (!out || outlen == 0) return;
    int n = cuda_device_count();
    if (n <= 0) {
        snprintf(out, outlen, "no CUDA device (cuBLASLt %zu)", (size_t)cublasLtGetVersion());
        return;
    }
    int dev = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) {
        (void)cudaGetLastError();
        dev = 0;
    }
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, dev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        snprintf(out, outlen, "CUDA device %d: properties unavailable (%s)", dev,
                 cudaGetErrorString(e));
        return;
    }
    int rt = 0, drv = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDriverGetVersion(&drv);
    snprintf(out, outlen,
             "%s, compute capability %d.%d, %d SMs, %.1f GiB, cuBLASLt %zu, CUDA runtime "
             "%d.%d, driver %d.%d%s",
             p.name, p.major, p.minor, p.multiProcessorCount,
             (double)p.totalGlobalMem / (1024.0 * 1024.0 * 1024.0),
             (size_t)cublasLtGetVersion(), rt / 1000, (rt % 1000) / 10, drv / 1000,
             (drv % 1000) / 10, n > 1 ? " (device 0 of several)" : "");
}

extern "C" Backend *cuda_backend_create(int threads, char *err, size_t errlen) {
    (void)threads; /* host threads do not matter: all work is on the device */
    if (cuda_device_count() <= 0) {
        if (err && errlen) snprintf(err, errlen, "cuda backend: no CUDA device available");
        return NULL;
    }
    Backend *be = (Backend *)calloc(1, sizeof(Backend));
    CudaState *st = (CudaState *)calloc(1, sizeof(CudaState));
    if (!be || !st) {
        free(be);
        free(st);
        if (err && errlen) snprintf(err, errlen, "cuda backend: out of host memory");
        return NULL;
    }
    cudaError_t e;
    if ((e = cudaGetDevice(&st->device)) != cudaSuccess ||
        (e = cudaSetDevice(st->device)) != cudaSuccess) {
        set_err(err, errlen, "selecting the device", e);
        goto fail;
    }
    if ((e = cudaStreamCreate(&st->stream)) != cudaSuccess) {
        set_err(err, errlen, "cudaStreamCreate", e);
        goto fail;
    }
    if (cublasLtCreate(&st->lt) != CUBLAS_STATUS_SUCCESS) {
        set_err(err, errlen, "cublasLtCreate", cudaSuccess);
        goto fail;
    }
    if (cublasCreate(&st->blas) != CUBLAS_STATUS_SUCCESS) {
        set_err(err, errlen, "cublasCreate", cudaSuccess);
        goto fail;
    }
    CUBLAS_CHECK(cublasSetStream(st->blas, st->stream));
    if ((e = cudaMalloc(&st->workspace, kWorkspaceBytes)) != cudaSuccess) {
        (void)cudaGetLastError();
        set_err(err, errlen, "allocating the cuBLASLt workspace", e);
        goto fail;
    }
    st->workspace_bytes = kWorkspaceBytes;
    /* cuBLAS (fallback path) uses the same workspace: deterministic, no hidden allocation */
    CUBLAS_CHECK(cublasSetWorkspace(st->blas, st->workspace, st->workspace_bytes));

    be->ops = &cuda_ops;
    be->name = "cuda";
    be->act_bytes = sizeof(bf16);
    be->separate_master = 1;
    be->impl = st;
    {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, st->device) == cudaSuccess)
            snprintf(be->device, sizeof be->device, "%.100s (sm_%d%d)", p.name, p.major, p.minor);
        else
            snprintf(be->device, sizeof be->device, "CUDA device %d", st->device);
    }
    return be;

fail:
    if (st->workspace) cudaFree(st->workspace);
    if (st->blas) cublasDestroy(st->blas);
    if (st->lt) cublasLtDestroy(st->lt);
    if (st->stream) cudaStreamDestroy(st->stream);
    free(st);
    free(be);
    return NULL;
}

extern "C" void cuda_backend_destroy(Backend *be) {
    if (!be) return;
    CudaState *st = cu_state(be);
    if (st) {
        CUDA_CHECK(cudaStreamSynchronize(st->stream));
        for (int i = 0; i < SCRATCH_SLOTS; i++)
            if (st->scratch[i]) CUDA_CHECK(cudaFree(st->scratch[i]));
        if (st->workspace) CUDA_CHECK(cudaFree(st->workspace));
        CUBLAS_CHECK(cublasDestroy(st->blas));
        CUBLAS_CHECK(cublasLtDestroy(st->lt));
        CUDA_CHECK(cudaStreamDestroy(st->stream));
        free(st->host_buf);
        free(st);
    }
    free(be);
}

void *cu_scratch(Backend *be, int slot, size_t bytes) {
    CudaState *st = cu_state(be);
    if (bytes == 0) bytes = 256;
    if (st->scratch_bytes[slot] < bytes) {
        /* earlier work on the stream may still read the old buffer */
        CUDA_CHECK(cudaStreamSynchronize(st->stream));
        if (st->scratch[slot]) CUDA_CHECK(cudaFree(st->scratch[slot]));
        st->scratch[slot] = NULL;
        st->scratch_bytes[slot] = 0;
        cudaError_t e = cudaMalloc(&st->scratch[slot], bytes);
        if (e != cudaSuccess) {
            fprintf(stderr, "normbench: CUDA scratch allocation of %zu bytes failed: %s\n",
                    bytes, cudaGetErrorString(e));
            abort();
        }
        st->scratch_bytes[slot] = bytes;
    }
    return st->scratch[slot];
}

void *cu_host_buf(Backend *be, size_t bytes) {
    CudaState *st = cu_state(be);
    if (st->host_bytes < bytes) {
        free(st->host_buf);
        st->host_buf = malloc(bytes);
        if (!st->host_buf) {
            fprintf(stderr, "normbench: host staging allocation of %zu bytes failed\n", bytes);
            abort();
        }
        st->host_bytes = bytes;
    }
    return st->host_buf;
}
