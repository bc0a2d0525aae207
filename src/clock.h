/* clock.h — elapsed time for progress lines, ETAs, time limits and benchmarks: seconds of
 * CLOCK_MONOTONIC (never jumps with the wall clock). */
#ifndef NORMBENCH_CLOCK_H
#define NORMBENCH_CLOCK_H

#include <time.h>

static inline double monotonic_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif
