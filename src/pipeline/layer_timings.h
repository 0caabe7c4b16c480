/*
 * layer_timings.h — where a quantize run's time went, per layer: materializing (read), the
 * passes (forward), the decisions (decide), export and checkpoint, in seconds, with the
 * tokens per second of its passes. Reported with the progress at each layer's end and
 * written to quant_timings.json beside the summary; the summary itself stays byte-identical
 * between runs, so no time ever goes there.
 */
#ifndef STRATA_PIPELINE_LAYER_TIMINGS_H
#define STRATA_PIPELINE_LAYER_TIMINGS_H

#include <stdbool.h>

#include "strata.h"

#define LAYER_TIMINGS_FILE "quant_timings.json"

typedef struct layer_timings {
    strata_layer_timing *layers; /* (n_layers) */
    bool *measured;              /* (n_layers) false: finished by an earlier run (restored) */
    int n_layers;
} layer_timings;

strata_status layer_timings_init(layer_timings *t, int n_layers);
void layer_timings_free(layer_timings *t);

/* Writes dir/quant_timings.json. */
strata_status layer_timings_write(const layer_timings *t, const char *dir);

#endif
