/*
 * progress.h — progress of a layerwise run: tokens per second, activation store size,
 * resident memory now and at its peak, and ETA, reported through the caller's callback at
 * most every PROGRESS_INTERVAL seconds and at every layer's end (with the layer's times).
 */
#ifndef STRATA_PIPELINE_PROGRESS_H
#define STRATA_PIPELINE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"
#include "strata.h"

#define PROGRESS_INTERVAL 2.0

typedef struct progress {
    strata_progress_fn fn;
    void *user;
    int n_layers, first_layer;   /* first_layer: where this run started (resume) */
    uint64_t act_store_bytes;
    bool spilled;
    double start, layer_start, last_report;
    int64_t layer_tokens;        /* tokens through the current layer's passes so far */
    int64_t layer_work;          /* tokens the current layer's passes will run */
    int done_layers;             /* layers this run has finished, and their seconds */
    double done_seconds;
} progress;

/* Resident set size of this process now and at its peak so far, 0 when unknown. */
uint64_t process_rss_bytes(void);
uint64_t process_peak_rss_bytes(void);

void progress_begin_layer(progress *p, int64_t layer_work);
/* Records n more tokens through layer `layer`; reports when due (or forced). */
void progress_tokens(progress *p, int layer, int64_t n, bool force);
/* Layer `layer` is done (exported and checkpointed): reports it with its times. */
void progress_end_layer(progress *p, int layer, const strata_layer_timing *timing);

#endif
