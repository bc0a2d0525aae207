/* fma-peak.c — the fp32 FMA throughput the cores reach (issue 18's "physical peak" check):
 * per thread, CHAINS independent chains c = c * a + b of 512-bit (then 256-bit) vectors, one
 * fused multiply-add each (-ffp-contract=fast), each chain started at a different value so
 * that the compiler cannot merge them. Prints GFLOP/s with N threads, 3 times (best of 3 is
 * the figure).
 *   gcc -O2 -fopenmp -ffp-contract=fast -o /tmp/fma-peak bench/probes/fma-peak.c && /tmp/fma-peak 2
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { CHAINS = 12 };
typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* NAME(n): n steps of the CHAINS chains in vectors VT under TARGET; returns the sum of every
 * lane of every chain, so that none of them is dead code. */
#define FMA_CHAINS(NAME, TARGET, VT)                                                          \
    __attribute__((target(TARGET))) static double NAME(long n) {                             \
        const VT a = (VT){0} + 1.0000001f, b = (VT){0} + 0.9999999f;                          \
        VT c[CHAINS];                                                                         \
        for (int k = 0; k < CHAINS; k++) c[k] = (VT){0} + (float)k;                           \
        for (long i = 0; i < n; i++) {                                                        \
            _Pragma("GCC unroll 12") for (int k = 0; k < CHAINS; k++) c[k] = c[k] * a + b;    \
        }                                                                                     \
        double s = 0;                                                                         \
        for (int k = 0; k < CHAINS; k++)                                                      \
            for (size_t l = 0; l < sizeof(VT) / sizeof(float); l++) s += c[k][l];             \
        return s;                                                                             \
    }
FMA_CHAINS(fma_zmm, "avx512f", v16f)
FMA_CHAINS(fma_ymm, "avx2,fma", v8f)

int main(int argc, char **argv) {
    const int threads = argc > 1 ? atoi(argv[1]) : 2;
    const long n = 200000000 / threads;
    double sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        double t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_zmm(n);
        const double t_zmm = now() - t0;
        t0 = now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_ymm(n);
        const double t_ymm = now() - t0;
        /* FLOP per step: CHAINS chains x lanes x 2 */
        printf("threads %d: AVX-512 FMA %.1f GFLOP/s  AVX2 FMA %.1f GFLOP/s\n", threads,
               threads * n * CHAINS * 32.0 / t_zmm * 1e-9,
               threads * n * CHAINS * 16.0 / t_ymm * 1e-9);
    }
    return sink == 1.2345; /* keeps the sums alive */
}
