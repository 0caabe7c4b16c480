/*
 * bench_memory.h — the machine's memory, printed beside the peaks the benchmarks measure.
 */
#ifndef STRATA_BENCH_MEMORY_H
#define STRATA_BENCH_MEMORY_H

#include <stdint.h>
#include <stdio.h>

/* MemTotal from /proc/meminfo in bytes (0 when unreadable). */
static inline uint64_t mem_total_bytes(void)
{
    FILE *f = fopen("/proc/meminfo", "r");
    unsigned long long kib = 0;
    if (f) {
        if (fscanf(f, "MemTotal: %llu kB", &kib) != 1) kib = 0;
        fclose(f);
    }
    return (uint64_t)kib << 10;
}

#endif
