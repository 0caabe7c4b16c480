/*
 * run.h — what one strata_quantize_model run holds, shared by the files of the layer loop
 * (internal to src/pipeline): layerwise.c (the loop and its phases), layer_passes.c (a
 * layer's passes over the calibration tokens), decisions.c (each linear's quantized
 * weight and errors).
 */
#ifndef STRATA_PIPELINE_RUN_H
#define STRATA_PIPELINE_RUN_H

#include "calib/algorithm.h"
#include "calib/layer_calib.h"
#include "export/export.h"
#include "forward/decoder.h"
#include "forward/model_forward.h"
#include "io/dir_lock.h"
#include "io/output_dir.h"
#include "pipeline/act_store.h"
#include "pipeline/checkpoint.h"
#include "pipeline/layer_timings.h"
#include "pipeline/memory_plan.h"
#include "pipeline/progress.h"

/* Everything one run holds. */
typedef struct run {
    const strata_quantize_params *params; /* with several ranks, this rank's share of the windows */
    const strata_quantize_params *whole;  /* the run as asked: every window (what the summary states) */
    strata_quantize_params share;
    const scheme_info *scheme;
    calib_algorithm algorithm;
    gptq_options gptq_options;
    strata_model *model;
    const strata_arch *arch;
    gemm_precision precision;
    rope_table rope;
    act_store store;
    memory_plan plan;
    checkpoint ck;
    bool checkpointing;
    exporter ex;
    layer_calib *layers;     /* (n_layers) */
    weight_spill spill;      /* GPTQ's quantized experts of a grouped layer, until export */
    float *decide_w, *decide_q; /* the decisions' fp32 working copies of a weight and its quantized values */
    size_t decide_capacity;  /* elements of each: the widest linear decided so far in the layer */
    calib_collective collective; /* reductions over the participants: this process, or the ranks of an
                              * MPI job (docs/DISTRIBUTED.md) */
    int64_t first_window;    /* this rank's share of the windows starts here; params holds the share */
    int64_t max_share;       /* the most windows any rank holds */
    int64_t *rank_rows;      /* (n_ranks) the calibration tokens of each rank's share */
    bool expert_parallel;    /* MoE layers' routed experts spread over the ranks (expert_parallel.h) */
    int *expert_holder;      /* (n_experts) under expert parallelism: the rank holding each */
    double *window_sq, *window_diff; /* (max_share) each window's output sums of the layer's quantized pass */
    progress progress;
    layer_timings timings;   /* where each layer's time went (quant_timings.json) */
    output_dir out;          /* the output directory: lock, staging area, commit */
    dir_lock checkpoint_lock;
    bool checkpoint_created; /* the checkpoint directory did not exist before this run */
} run;

/* A grouped MoE layer's pass works on windows of whole chunks (plan.window_sequences; all
 * of them without a limit) and holds, for one window, the residual x, the MLP input, the
 * routed experts' sum and the routing. */
typedef struct grouped_pass {
    run *r;
    layer_calib *lc;
    const layer_weights *lw;
    decoder_scratch *ds;
    int64_t window;          /* sequences per window */
    int64_t w0, w1;          /* the sequences of the window in the buffers */
    float *x, *normed, *out; /* (window * seq, hidden) each */
    float *weights;          /* (window * seq, top_k) */
    int32_t *experts;        /* (window * seq, top_k) */
    float *ref;              /* (chunk * seq, hidden) when comparing, else NULL */
} grouped_pass;

/* layer_passes.c */
/* One pass of layer lw over every chunk of this rank's windows (layer_pass), its time
 * (less the reading of grouped experts during it) added to *seconds. hooks may be NULL;
 * write: the outputs replace the next buffer; compare: they are compared with it first. */
strata_status timed_pass(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                         bool observe_all_experts, bool write, bool compare, double *seconds);
/* The layer's output error sums: every rank's windows, added in window order. */
strata_status fold_output_error(run *r, layer_calib *lc);
/* A grouped layer's pass in its steps (layer_passes.c), for GPTQ's group-by-group Hessians. */
strata_status grouped_open(run *r, layer_calib *lc, const layer_weights *lw, const forward_hooks *hooks,
                           bool observe_all_experts, bool compare, grouped_pass *g);
strata_status grouped_begin(grouped_pass *g, int64_t w0);
strata_status grouped_experts(grouped_pass *g, int first, int count);
strata_status grouped_finish(grouped_pass *g, bool finishing, bool write, bool compare);
void grouped_close(grouped_pass *g);

/* awq_modifier_layer.c: llm-compressor's AWQ on one layer. prepare, before the calibration
 * pass: the linears whose inputs its mappings' parents read keep them; decide, after it: each
 * mapping's grid search, its winner set as the members' smoothing. */
strata_status awq_modifier_prepare(run *r, layer_calib *lc);
/* The mappings the layer searches: each reruns its parent over the tokens 21 times (progress). */
int awq_modifier_mappings(layer_calib *lc);
strata_status awq_modifier_decide(run *r, layer_calib *lc);

/* decisions.c */
/* Every quantized linear of the layer not decided yet, dealt out to the ranks. */
strata_status decide_layer(run *r, layer_calib *lc);
/* One linear: mse clip search or GPTQ, its quantized weight, its errors. */
strata_status decide_linear(run *r, layer_calib *lc, linear_calib *c);
void decide_scratch_free(run *r);

#endif
