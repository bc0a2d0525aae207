/* cpu_backend.c — the CPU reference backend: its BackendOps table, construction (thread
 * counts for OpenMP and OpenBLAS, device description) and the scratch buffer it owns. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_kernels.h"
#include "cpu_ops.h"

/* Generated from the op list, each entry keyed by name: the table cannot pair an op with
 * another op's function, and a new op without a cpu_<op> fails to link. */
static const BackendOps cpu_ops = {
#define NB_OP(ret, name, params) .name = cpu_##name,
#include "backend_ops.def"
};

void cpu_model_name(char *out, size_t outlen) {
    snprintf(out, outlen, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *colon = strchr(line, ':');
        if (!colon) continue;
        const char *name = colon + 1;
        while (*name == ' ' || *name == '\t') name++;
        size_t len = strcspn(name, "\n");
        if (len > 0) snprintf(out, outlen, "%.*s", (int)len, name);
        break;
    }
    fclose(f);
}

void cpu_describe(char *out, size_t outlen) {
    char model[96];
    cpu_model_name(model, sizeof model);
    snprintf(out, outlen, "%s, %d hardware threads", model, omp_get_num_procs());
}

float *cpu_scratch(Backend *be, size_t floats) {
    CpuImpl *impl = be->impl;
    if (floats <= impl->scratch_floats) return impl->scratch;
    float *grown = realloc(impl->scratch, floats * sizeof(float));
    if (!grown) return NULL;
    impl->scratch = grown;
    impl->scratch_floats = floats;
    return grown;
}

Backend *cpu_backend_create(int threads, char *err, size_t errlen) {
    Backend *be = calloc(1, sizeof *be);
    CpuImpl *impl = calloc(1, sizeof *impl);
    if (!be || !impl) {
        free(be);
        free(impl);
        if (err && errlen) snprintf(err, errlen, "cpu backend: out of memory");
        return NULL;
    }
    if (threads <= 0) threads = omp_get_max_threads();
    omp_set_num_threads(threads);
    /* OpenBLAS single-threaded: matmul.c splits the products over the OpenMP threads (two
     * thread pools busy-waiting beside each other oversubscribe the cores) */
    openblas_set_num_threads(1);
    impl->threads = threads;

    be->ops = &cpu_ops;
    be->name = "cpu";
    be->act_bytes = sizeof(float);
    be->separate_master = 0;
    be->impl = impl;
    char model[96];
    cpu_model_name(model, sizeof model);
    snprintf(be->device, sizeof be->device, "%s, %d thread%s", model, threads,
             threads == 1 ? "" : "s");
    /* fixed when OpenBLAS loaded (src/cpu_kernels.c settles it at process start) */
    const char *core = openblas_get_corename();
    snprintf(be->kernels, sizeof be->kernels, "OpenBLAS %s", core ? core : "unknown");
    const CpuIsa blas_isa = cpu_kernels_core_isa(core), cpu = cpu_isa();
    const CpuIsa vector_isa = blas_isa < cpu ? blas_isa : cpu;
    impl->vector_isa = vector_isa >= CPU_ISA_AVX512 ? CPU_VECTOR_AVX512
                       : vector_isa >= CPU_ISA_AVX2 ? CPU_VECTOR_AVX2
                                                    : CPU_VECTOR_4;
    return be;
}

void cpu_backend_destroy(Backend *be) {
    if (!be) return;
    CpuImpl *impl = be->impl;
    if (impl) {
        free(impl->scratch);
        free(impl->rope_cs);
    }
    free(impl);
    free(be);
}
