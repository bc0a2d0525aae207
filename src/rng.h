/* rng.h — counter-based random numbers with no hidden state: splitmix64 (Steele et al.
 * 2014) steps a caller-owned 64-bit state. Used for parameter init and data order, so that
 * every stream is a pure function of (seed, stream id) and never of thread count or call
 * order elsewhere. */
#ifndef NORMBENCH_RNG_H
#define NORMBENCH_RNG_H

#include <math.h>
#include <stdint.h>

static inline uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A state for stream `stream` of `seed`: the two are mixed so that nearby seeds and
 * nearby streams give unrelated sequences. */
static inline uint64_t rng_stream(uint64_t seed, uint64_t stream) {
    uint64_t s = seed ^ (stream * 0xD1B54A32D192ED03ull);
    return rng_next(&s);
}

/* uniform in (0, 1] with 53 random bits */
static inline double rng_uniform(uint64_t *state) {
    return ((double)(rng_next(state) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
}

/* standard normal by Box-Muller; one value per call, nothing cached */
static inline double rng_normal(uint64_t *state) {
    double u1 = rng_uniform(state), u2 = rng_uniform(state);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

#endif
