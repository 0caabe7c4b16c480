/*
 * bench_layer_times.h — a measured quantize run's per-layer times (strata_layer_timing, as
 * the progress callback reports each finished layer), for benchmarks of two-layer models.
 */
#ifndef STRATA_BENCH_LAYER_TIMES_H
#define STRATA_BENCH_LAYER_TIMES_H

#include <stdbool.h>
#include <stdio.h>

#include "strata.h"

enum { BENCH_LAYERS = 2 };

typedef struct layer_times {
    strata_layer_timing layers[BENCH_LAYERS];
} layer_times;

static inline void record_layer_time(const strata_progress *p, void *user)
{
    layer_times *times = user;
    if (p->layer_done && p->layer >= 0 && p->layer < BENCH_LAYERS) times->layers[p->layer] = *p->layer_done;
}

/* strata_quantize_model with p, each finished layer's times recorded in *times; a failure
 * is printed. */
static inline bool quantize_recording_times(strata_quantize_params *p, layer_times *times,
                                            strata_quantize_result *result)
{
    p->progress = record_layer_time;
    p->progress_user = times;
    strata_status status = strata_quantize_model(p, result);
    if (status != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    return status == STRATA_OK;
}

#endif
