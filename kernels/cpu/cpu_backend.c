/* cpu_backend.c — the CPU reference backend: its BackendOps table, construction (thread
 * counts for OpenMP and OpenBLAS, device description) and the scratch buffer it owns. */
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_ops.h"

static const BackendOps cpu_ops = {
    .alloc = cpu_alloc,
    .release = cpu_release,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .upload = cpu_upload,
    .download = cpu_download,
    .upload_act = cpu_upload_act,
    .download_act = cpu_download_act,
    .master_to_compute = cpu_master_to_compute,
    .synchronize = cpu_synchronize,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .matmul_forward = cpu_matmul_forward,
    .matmul_backward = cpu_matmul_backward,
    .norm_forward = cpu_norm_forward,
    .norm_backward = cpu_norm_backward,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_saved_bytes = cpu_attention_saved_bytes,
    .attention_forward = cpu_attention_forward,
    .attention_backward = cpu_attention_backward,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .residual_forward = cpu_residual_forward,
    .scaled_add = cpu_scaled_add,
    .crossentropy = cpu_crossentropy,
    .adamw_update = cpu_adamw_update,
    .sumsq_f32 = cpu_sumsq_f32,
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
