/* main.c — the GPU test runner (build/run_gpu_tests, `make test-gpu`).
 *
 * Without a CUDA device it prints "skipped: no GPU" and exits 0; with one it runs every GPU
 * suite and exits non-zero on any failure, or when no comparison ran at all, so it never
 * passes silently. */
#include <stdio.h>

#include "backend.h"

int gpu_tests_run(void); /* test_gpu.c: number of failures (or -1 when nothing ran) */

int main(void) {
#ifndef NB_HAVE_CUDA
    printf("skipped: no GPU (CUDA backend not compiled in)\n");
    return 0;
#else
    int n = cuda_device_count();
    if (n == 0) {
        printf("skipped: no GPU\n");
        return 0;
    }
    char desc[512];
    cuda_describe(desc, sizeof desc);
    printf("GPU: %s\n", desc);
    int failed = gpu_tests_run();
    if (failed < 0) {
        fprintf(stderr, "run_gpu_tests: FAILED: no GPU comparison ran\n");
        return 1;
    }
    return failed == 0 ? 0 : 1;
#endif
}
