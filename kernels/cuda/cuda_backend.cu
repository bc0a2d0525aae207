/* cuda_backend.cu — the CUDA backend's op table, creation and destruction, device queries
 * (cuda_device_count, cuda_describe) and the scratch/staging buffers of its state. */
#include <string.h>

#include "common.cuh"

/* Generated from the op list, each entry keyed by name (C++20 designated initializers,
 * hence nvcc's -std=c++20): the table cannot pair an op with another op's function, and a
 * new op without a cu_<op> fails to link. */
static const BackendOps cuda_ops = {
#define NB_OP(ret, name, params) .name = cu_##name,
#include "backend_ops.def"
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

/* ---- peak dense bf16 rate (for MFU) --------------------------------------------------------
 * Backend.peak_flops is the device's dense (no 2:4 sparsity) bf16 tensor-core rate with fp32
 * accumulation, the compute type of every GEMM here. Known parts come from the vendor's
 * datasheets, matched by compute capability, SM count and name; the SXM H100 and the H200
 * share the same chip and clocks (132 SMs at the 1830 MHz the datasheet rates them at):
 *   H100 SXM5 / H200 / GH200   sm_90, 132 SMs   989.4 TFLOP/s
 *   H100 NVL                   sm_90, 132 SMs   835   TFLOP/s (lower power limit)
 *   H100 PCIe                  sm_90, 114 SMs   756   TFLOP/s
 *   A100 (SXM4 and PCIe)       sm_80, 108 SMs   312   TFLOP/s
 *   L40S                       sm_89, 142 SMs   362   TFLOP/s
 * Anything else is estimated as SMs x max SM clock x dense bf16 FLOPs per SM per clock of its
 * architecture, read off the same datasheets (FLOPs = 2 x FMAs):
 *   sm_80 2048 (A100: 108 x 1410 MHz x 2048 = 312e12)
 *   sm_86, sm_87, sm_89  1024 (A40: 84 x 1740 MHz x 1024 = 150e12; L40S 142 x 2520 x 1024 =
 *        366e12 vs 362 rated; GeForce parts run fp32-accumulate at half this, so the estimate
 *        is their upper bound)
 *   sm_90 4096 (H100 SXM5 at 1830 MHz: 989e12)
 *   sm_100, sm_103 8192 (B200: 148 SMs at ~1.9 GHz, ~2.25e15 rated)
 * cudaDevAttrClockRate is the maximum boost clock, above the clock the datasheets rate
 * tensor throughput at (H100 SXM5: 1980 vs 1830 MHz), so an estimate is an upper bound on the
 * peak and an MFU computed from it a lower bound. Architectures before sm_80 have no bf16
 * tensor cores, and unknown newer ones no table entry: 0 (unknown). */
static double cu_peak_bf16_flops(const cudaDeviceProp *p, int device) {
    static const struct {
        int major, minor, sms;
        const char *name; /* substring of cudaDeviceProp.name; NULL: any */
        double flops;
    } known[] = {
        {9, 0, 132, "H100 NVL", 835e12},
        {9, 0, 132, NULL, 989.4e12}, /* H100 SXM5, H200, GH200 */
        {9, 0, 114, NULL, 756e12},   /* H100 PCIe */
        {8, 0, 108, NULL, 312e12},   /* A100 */
        {8, 9, 142, NULL, 362e12},   /* L40S */
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].major == p->major && known[i].minor == p->minor &&
            known[i].sms == p->multiProcessorCount &&
            (!known[i].name || strstr(p->name, known[i].name)))
            return known[i].flops;
    int per_sm_clock = 0; /* dense bf16 FLOPs per SM per clock */
    switch (p->major) {
    case 8: per_sm_clock = p->minor == 0 ? 2048 : 1024; break;
    case 9: per_sm_clock = 4096; break;
    case 10: per_sm_clock = 8192; break;
    default: per_sm_clock = 0; break;
    }
    int khz = 0;
    if (cudaDeviceGetAttribute(&khz, cudaDevAttrClockRate, device) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0.0;
    }
    return (double)p->multiProcessorCount * (double)khz * 1e3 * (double)per_sm_clock;
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
    snprintf(be->kernels, sizeof be->kernels, "cuBLASLt");
    {
        cudaDeviceProp p;
        if (cudaGetDeviceProperties(&p, st->device) == cudaSuccess) {
            snprintf(be->device, sizeof be->device, "%.100s (sm_%d%d)", p.name, p.major, p.minor);
            be->peak_flops = cu_peak_bf16_flops(&p, st->device);
        } else {
            (void)cudaGetLastError();
            snprintf(be->device, sizeof be->device, "CUDA device %d", st->device);
            be->peak_flops = 0.0; /* unknown */
        }
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
        if (st->rope_cs) CUDA_CHECK(cudaFree(st->rope_cs));
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
