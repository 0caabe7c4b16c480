/*
 * rng.h — splitmix64, strata's deterministic generator: synthetic weights and the draw of
 * calibration windows come from it, so a seed gives the same bytes on every machine.
 */
#ifndef STRATA_CORE_RNG_H
#define STRATA_CORE_RNG_H

#include <stdint.h>

typedef struct rng {
    uint64_t state;
} rng;

static inline uint64_t rng_next(rng *r)
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n) for n > 0, without modulo bias (rejection of the short last range). */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = rng_next(r);
    while (x >= limit);
    return x % n;
}

#endif
