/*
 * memory_plan.h — what a layerwise run will hold, decided before it starts: one
 * materialized layer (converted weights plus fp32 working copies of the widest linear),
 * the observers' input samples, the scratch of one chunk of sequences, and the two
 * activation buffers. With a --max-memory limit the activation store spills to disk when
 * everything does not fit, and a limit below what one layer needs is refused up front
 * with the number it would need.
 */
#ifndef STRATA_PIPELINE_MEMORY_PLAN_H
#define STRATA_PIPELINE_MEMORY_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/gemm.h"
#include "strata.h"

/* Scratch of one forward chunk; fixed, so results never depend on the memory limit. */
#define FORWARD_CHUNK_BUDGET ((size_t)256 << 20)

typedef struct memory_plan {
    uint64_t layer_bytes;         /* the largest layer, materialized, plus working copies */
    uint64_t sample_bytes;        /* observers' input samples of that layer */
    uint64_t chunk_bytes;         /* decoder scratch + chunk buffers */
    uint64_t store_buffer_bytes;  /* one activation buffer */
    uint64_t fixed_bytes;         /* everything but the store, with runtime slack */
    int64_t chunk_sequences;      /* sequences per forward chunk */
    size_t chunk_budget;
    bool spill;
    uint64_t max_memory;
} memory_plan;

strata_status memory_plan_make(const strata_arch *arch, gemm_precision precision, int64_t n_samples,
                                int64_t seq_len, uint64_t max_memory, bool gptq, memory_plan *out);
/* Logs the plan (sizes, where the store lives). */
void memory_plan_log(const memory_plan *plan, const char *spill_dir);

#endif
