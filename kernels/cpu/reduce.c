/* reduce.c — reductions for gradient norms and probes: sum of squares in double.
 *
 * Deterministic independently of the thread count: the input is cut into a fixed number of
 * chunks at fixed boundaries, each chunk is summed in index order (in double), and the chunk
 * sums are added in chunk order. */
#include "cpu_ops.h"

enum { SUMSQ_CHUNKS = 64 };

/* first index of chunk c when n items are split into SUMSQ_CHUNKS near-equal chunks */
static size_t chunk_begin(size_t n, size_t c) {
    size_t base = n / SUMSQ_CHUNKS, extra = n % SUMSQ_CHUNKS;
    return base * c + (c < extra ? c : extra);
}

double cpu_sumsq_f32(Backend *be, const float *x, size_t n) {
    (void)be;
    double partial[SUMSQ_CHUNKS];
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < SUMSQ_CHUNKS; c++) {
        size_t lo = chunk_begin(n, (size_t)c), hi = chunk_begin(n, (size_t)c + 1);
        double s = 0.0;
        for (size_t i = lo; i < hi; i++) s += (double)x[i] * x[i];
        partial[c] = s;
    }
    double total = 0.0;
    for (int c = 0; c < SUMSQ_CHUNKS; c++) total += partial[c];
    return total;
}
