/*
 * bench_clock.h — the benchmarks' wall clock (monotonic seconds).
 */
#ifndef STRATA_BENCH_CLOCK_H
#define STRATA_BENCH_CLOCK_H

#include <time.h>

static inline double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#endif
