/* stats.h — the sample mean and standard deviation (divisor n - 1) that `report` and `tables`
 * print over seeds. */
#ifndef NORMBENCH_STATS_H
#define NORMBENCH_STATS_H

#include <math.h>
#include <stddef.h>

/* mean: NaN when n == 0; std: NaN when n < 2. Sums in index order. */
static inline void stats_mean_std(const double *x, size_t n, double *mean, double *std) {
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sum += x[i];
    *mean = n ? sum / (double)n : NAN;
    for (size_t i = 0; i < n; i++) sq += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(sq / (double)(n - 1)) : NAN;
}

#endif
