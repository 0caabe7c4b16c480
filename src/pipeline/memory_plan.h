/*
 * memory_plan.h — what a layerwise run will hold, decided before it starts: one
 * materialized layer (converted weights plus fp32 working copies of the widest linear),
 * the observers' input samples, the scratch of one chunk of sequences, and the two
 * activation buffers. With a --max-memory limit the activation store spills to disk when
 * everything does not fit; when even one layer does not, an MoE layer keeps its routed
 * experts in the mapping and materializes them a group at a time (the largest group that
 * fits; every result is the same whatever the group), and their quantized weights are
 * recomputed where needed instead of held (GPTQ's wait on disk), and GPTQ accumulates one
 * group's Hessians at a time. A limit below what the layer
 * needs with one expert per group is refused up front with the number it would need.
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
    bool gptq;                    /* Hessians and GPTQ's quantized weights are counted */
    uint64_t max_memory;
    int experts_per_group;        /* routed experts materialized at a time; 0: whole layers */
    uint64_t expert_bytes;        /* one more routed expert in a group: materialized (gate, up, down),
                                   * and with GPTQ its Hessians */
    int64_t window_sequences;     /* a grouped layer's token-major window: sequences whose residual,
                                   * MLP input and output it holds at once (whole chunks; each window
                                   * reads the experts again) */
} memory_plan;

/* What a run asks of its plan. */
typedef struct memory_plan_request {
    const strata_arch *arch;
    gemm_precision precision;
    int64_t n_samples, seq_len;
    uint64_t max_memory;     /* 0: no limit */
    bool gptq;               /* Hessians, and every quantized weight held until export */
    bool awq_modifier;       /* llm-compressor's AWQ: kept inputs, the parent's output, trial weights */
    int weight_bits;         /* bits of a quantized weight's codes (8 or 4); 0: counted as 16 */
    int experts_per_group;   /* > 0 asks for that grouping whatever the limit (it must still fit) */
    bool no_samples;         /* the observers keep no input rows (--error-stats weights) */
    int experts_held;        /* routed experts of an MoE layer this rank materializes (expert
                              * parallelism); 0: all of them */
} memory_plan_request;

strata_status memory_plan_make(const memory_plan_request *request, memory_plan *out);
/* What the plan expects the run's resident memory to peak at: everything it holds, with the
 * activation store when in RAM. */
uint64_t memory_plan_peak_bytes(const memory_plan *plan);
/* Logs the plan (sizes, where the store lives, the expected peak). */
void memory_plan_log(const memory_plan *plan, const char *spill_dir);

#endif
