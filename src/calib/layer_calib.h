/*
 * layer_calib.h — what calibration learns about one decoder layer: per linear, the
 * observed input range and token count, the weight's tensor amax (shared across a fused
 * group), the mse clip factors, and the errors measured after quantization.
 *
 * This is the state a checkpoint saves per layer (pipeline/checkpoint.c), the export
 * reads (export/), and the summary reports. Observation runs through forward hooks
 * (observer.c); the errors are filled in by the engine. With GPTQ, observation also
 * accumulates one Hessian per distinct input (hessian.c). Each quantized linear's weight
 * is quantized once, when the engine decides it (GPTQ's updated weight, or the weight as
 * it is with its clip), and held as codes and scales (weight_q) that the quantized pass,
 * the checkpoint (GPTQ's only) and the export reuse, until the layer is exported.
 */
#ifndef STRATA_CALIB_LAYER_CALIB_H
#define STRATA_CALIB_LAYER_CALIB_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/awq.h"
#include "calib/awq_modifier.h"
#include "calib/collective.h"
#include "calib/gptq.h"
#include "calib/weight_spill.h"
#include "forward/hooks.h"
#include "quant/format.h"
#include "quant/scheme.h"
#include "strata.h"

enum { CALIB_SAMPLE_ROWS = 256 }; /* input rows kept per linear to measure its output error */
enum { AWQ_LOSSES = AWQ_MODIFIER_GRID }; /* losses kept per linear: the longer of the two AWQ grids */

/* A per-input-channel scale moved from a linear's input into its weight, by AWQ or
 * SmoothQuant (smoothing.c, docs/AWQ.md, docs/SMOOTHQUANT.md): the deployed linear computes
 * (x * input) W'^T, W' its weight with the columns multiplied by `columns`, then the rows by
 * `rows`, then (a group member whose own scale differs from its group's) by own / input, or
 * (a routed expert under ModelOpt's AWQ) by own / experts, then by experts / input, each
 * product rounded to the weight's dtype. All NULL without smoothing. */
typedef struct input_smoothing {
    float *columns;            /* (n_in) the weight's column factors; NULL when not searched */
    float *own;                /* (n_in) the linear's own input scale (AWQ: bf16(1/s); ones when not
                                * searched) */
    float *input;              /* (n_in) the scale its input is multiplied by: its own, or its group's
                                * (bf16 values) */
    float *experts;            /* (n_in) ModelOpt's AWQ on a routed expert: the average of `own` over
                                * the layer's experts for this linear (bf16 values); else NULL */
    float *rows;               /* (n_out) its rows were multiplied by the next linear's input scale
                                * (NVFP4_AWQ's fold of down_proj into up_proj), or NULL */
    bool rows_divided;         /* ... divided by the next linear's column factors instead
                                * (llm-compressor's AWQ: v_proj -> o_proj, up_proj -> down_proj) */
    bool in_norm;              /* `input` is folded into the norm before it */
    bool norm_divided;         /* ... as the norm's weight divided by `columns` (SmoothQuant) rather
                                * than multiplied by `input` (AWQ) */
    bool in_rows;              /* `input` went into the previous linear's rows (`rows` there) */
} input_smoothing;

typedef struct linear_calib {
    const strata_linear *desc;
    bool quantized;            /* false: excluded, or a router / shared-expert gate */
    const scheme_info *scheme; /* the scheme it takes (quant/recipe.h); NULL when not quantized */
    amax_sharing sharing;      /* which fused groups its scheme shares the tensor-level amax in */
    strata_convention convention; /* whose numerics its weight is quantized with (the export format's) */
    int fused_group;           /* linears sharing one input and one tensor-level scale; -1 alone */
    /* Observed during the calibration pass: */
    float input_amax;          /* max |x| over every token that reached the linear */
    int64_t tokens;
    float output_amax;         /* k_proj: max |k| after RoPE; v_proj: max |v| (KV-cache scales) */
    float *sample;             /* (sample_rows, n_in) the inputs of the earliest tokens, or NULL */
    int64_t *sample_tokens;    /* (sample_rows) their tokens' indices in the run */
    int64_t sample_rows;
    int sample_owner;          /* the linear (index in the layer) whose sample this one reads: the
                                * first quantized linear of its fused group (they share the input),
                                * else itself */
    /* Decided by the algorithm: */
    float weight_amax;         /* tensor amax used for the tensor-level scale (group max when shared) */
    strata_dtype values_dtype; /* the weight's dtype in the checkpoint (F32 for a dequantized FP8
                                * source): what the reference rounds intermediates to */
    float *clip;               /* (n_clip) mse clip per scale block, or NULL (max) */
    int64_t n_clip;
    float *amax_floor;         /* (n_amax_floor) per scale block, the least amax its scale takes
                                * (ModelOpt's AWQ: an expert's gate and up share their maximum), or
                                * NULL */
    int64_t n_amax_floor;
    /* Measured after quantization: */
    double weight_error;       /* ||W - Q(W)|| / ||W|| */
    double output_error;       /* ||xW^T - xQ(W)^T|| / ||xW^T|| on the sampled inputs (weights only) */
    /* GPTQ: */
    int hessian;               /* index of its input's Hessian in layer_calib.hessians, or -1 */
    bool gptq_done;            /* GPTQ ran (or fell back): gptq is set */
    gptq_report gptq;
    float *channel_range;      /* (2, n_in) each input channel's least, then largest x, for
                                * smoothing; or NULL */
    /* AWQ (--algo awq, calib/awq.h and awq_layer.c), observed: */
    float *awq_window_means;   /* (awq_windows, n_in) each window's mean |x| per channel (bf16 values
                                * when inputs_bf16), in window order: their float sum in that order
                                * is ModelOpt's act statistic, whichever rank saw which window */
    int64_t awq_windows, awq_window_capacity;
    double *awq_window_sum;    /* (n_in) the open window's sum of |x| ... */
    int64_t awq_open_window, awq_open_count; /* ... its index and rows so far (0: none open) */
    /* and decided: */
    int awq_alpha;             /* grid index of the chosen a (ModelOpt's) or point (llm-compressor's);
                                * -1: not searched (no tokens, NaN, a skipped mapping) */
    double awq_loss[AWQ_LOSSES]; /* each grid point's loss */
    void *awq_inputs;          /* llm-compressor's AWQ: (layer_calib.awq_rows, n_in) the calibration
                                * pass's inputs of a mapping's first balance linear, as the linear
                                * consumes them (bf16 bits when inputs_bf16, else fp32); or NULL */
    input_smoothing smooth;    /* AWQ's or SmoothQuant's scale, once decided */
    /* The quantized weight (see above): */
    strata_qtensor weight_q;   /* codes and scales; codes NULL when not held */
    const weight_spill *spill; /* where it was moved instead of held (weight_spill.h), or NULL */
    uint64_t spill_offset;
} linear_calib;

/* The Hessian 2/n sum x x^T of one input shared by the linears that read it (q/k/v;
 * gate/up; one expert's gate/up), over the tokens that reached them (hessian.c). */
typedef struct calib_hessian {
    int64_t n_in;
    int64_t tokens;            /* tokens counted (windows with hessian_window_mean) */
    double *bins;              /* (2, n_in, n_in) sum x x^T as slices in bins top and top - 1
                                * (integers in units of each bin's quantum); NULL until the first
                                * token and once finished */
    int top;                   /* the top bin (hessian.c) */
    float *h;                  /* (n_in, n_in) H once finished; NULL before, or without tokens */
    int owner;                 /* the linear (index in the layer) whose input hook accumulates it */
    bool finished;             /* summed over the participants and scaled by 2/n */
} calib_hessian;

typedef struct layer_calib {
    int index;
    const strata_layer *layer;
    const scheme_info *scheme; /* the run's scheme (a linear may take another: linear_calib.scheme) */
    bool kv_cache;
    bool sample_inputs;        /* the observers keep input rows for the linears' output errors */
    bool awq;                  /* the observers gather AWQ's activation statistics */
    bool observe_channels;     /* ... and each quantized linear's channel amax (smoothing) */
    bool inputs_bf16;          /* the linears consume their inputs rounded to bf16 (what AWQ's mean
                                * |x| is of) */
    int64_t awq_first_token, awq_rows; /* the tokens linear_calib.awq_inputs hold */
    linear_calib *linears;     /* (layer->n_linears), parallel to layer->linears */
    double output_error;       /* ||out - out_q|| / ||out|| of the decoder layer over all tokens */
    double output_sq_sum, output_diff_sq_sum; /* the sums behind it */
    calib_hessian *hessians;   /* (n_hessians) with GPTQ, else NULL */
    size_t n_hessians;
    int64_t hessian_seq_len;   /* tokens per calibration window: each window is one Gram product */
    bool hessian_window_mean;  /* ModelOpt's AWQ loss on experts: each window's Gram product over its
                                * routed rows' count, H = 2/w sum over the w windows that reached the
                                * expert (each window's mean squared error weighs the same) */
    float *hessian_gram;       /* (widest n_in, widest n_in) one window's Gram product */
    /* Which Hessians the hooks accumulate (layer_hessians_scope): every one after init; a
     * layer whose experts are materialized in groups accumulates its routed experts' one
     * group at a time, so only one group's Hessians exist at once. */
    bool hessians_non_experts;  /* those of attention, dense MLP, shared experts */
    int hessian_experts_first, hessian_experts_end; /* routed experts [first, end) */
    /* Expert parallelism (docs/DISTRIBUTED.md): the rank holding each routed expert, which
     * alone sees its tokens, so it alone accumulates its Hessians, keeps them without a
     * reduction and decides its linears; NULL otherwise. */
    const int *expert_holder;   /* (n_experts) */
} layer_calib;

/* What every layer of a run is calibrated with. */
typedef struct layer_calib_options {
    const strata_arch *arch;
    const scheme_info *scheme;
    strata_attention_quant attention; /* how attention linears are quantized (quant/recipe.h) */
    bool kv_cache;
    bool fuse_fp8_scales;          /* the schemes' sharing_fused instead of their sharing */
    strata_convention convention;  /* the output's numerics (strata_export_convention) */
    bool sample_inputs;            /* keep input rows for output errors (STRATA_ERROR_STATS_FULL) */
    const char *const *exclude;    /* (n_exclude) module name patterns left unquantized */
    size_t n_exclude;
} layer_calib_options;

/* Sets up the state of a layer: which scheme each linear takes (the recipe, then the
 * exclude patterns) and the fused groups. */
strata_status layer_calib_init(layer_calib *lc, const strata_layer *layer, const layer_calib_options *options);
void layer_calib_free(layer_calib *lc);

/* Scratch for the layer's widest linear weight, fp32 (free it); NULL (error set) when out of
 * memory. */
float *layer_calib_weight_scratch(const layer_calib *lc);
/* A linear's weight (n_out, n_in) fp32 as the model holds it, then with its smoothing
 * (linear_calib_smooth_weight): what its quantization starts from. */
strata_status linear_calib_weight_f32(const strata_model *model, const linear_calib *c, float *w);
/* Smoothing (smoothing.c): the weight w (the model's values, fp32 holding values of dtype)
 * changed in place, in the reference's order and in that dtype (see input_smoothing); an input
 * x (n_tokens, n_in) multiplied by the input scale, unless the previous linear's rows did it;
 * each Hessian of the layer turned into its smoothed input's; the vectors freed. Nothing
 * without smoothing. */
void linear_calib_smooth_weight(const linear_calib *c, strata_dtype dtype, float *w);
void linear_calib_smooth_input(const linear_calib *c, float *x, int64_t n_tokens);
void layer_hessians_smooth(layer_calib *lc);
void input_smoothing_free(input_smoothing *s);
/* c's columns, own and input vectors (n_in each) for a decision to fill (smoothing.c); on
 * failure what was allocated is freed with the linear's smoothing. */
strata_status linear_calib_alloc_smoothing(linear_calib *c);
/* AWQ's statistics and decisions of one layer (awq_layer.c): per quantized linear the search
 * on its Hessian, then ModelOpt's export-time folds. Before the weights' amax are taken. */
strata_status awq_decide_layer(layer_calib *lc, const strata_model *model);
/* Under mpirun, before awq_decide_layer: every rank's per-window means gathered, in window
 * order (each rank holds a contiguous share of at most max_share windows), so every rank
 * decides what one process decides. */
strata_status awq_gather_windows(layer_calib *lc, const calib_collective *coll, int64_t max_share);
/* Closes c's open AWQ window: its mean joins awq_window_means (observer.c). */
strata_status awq_close_window(const layer_calib *lc, linear_calib *c);
/* c's channel_range, allocated when absent with least +inf and largest -inf (observer.c). */
strata_status linear_calib_alloc_channel_range(linear_calib *c);
/* max |x| of input channel k, from channel_range. */
static inline float linear_calib_channel_amax(const linear_calib *c, int64_t k)
{
    float least = -c->channel_range[k], largest = c->channel_range[c->desc->n_in + k];
    return least > largest ? least : largest;
}
/* SmoothQuant's scales of one layer (smoothquant.c), migration strength in (0, 1]: the norms'
 * groups smoothed as llm-compressor's SmoothQuantModifier does. Before the weights' amax. */
strata_status smoothquant_decide_layer(layer_calib *lc, const strata_model *model, double strength);
/* Frees a linear's smoothing statistics and decisions. */
void linear_calib_free_smoothing(linear_calib *c);

/* Frees the observers' input samples once every linear is decided. */
void layer_calib_free_samples(layer_calib *lc);

/* Whether some quantized linear of the layer quantizes its input. */
bool layer_calib_quantizes_inputs(const layer_calib *lc);

/* The linear_calib of a linear of the layer. */
linear_calib *layer_calib_find(layer_calib *lc, const strata_linear *linear);

/* Hooks of the calibration pass: input amax, token counts, samples, k/v cache amax. */
forward_hooks calib_observer_hooks(layer_calib *lc);
/* Hooks of GPTQ's Hessian pass for schemes that quantize inputs: Hessians of the
 * quantized inputs, with quantized inputs and unquantized weights. (For weight-only
 * schemes the calibration pass accumulates them.) The smoothed variant also materializes
 * the weights smoothed (linear_calib_smooth_weight), for a layer smoothing changed. */
forward_hooks calib_hessian_hooks(layer_calib *lc);
forward_hooks calib_smoothed_hessian_hooks(layer_calib *lc);
/* Hooks that only accumulate Hessians, of the inputs as they arrive: a grouped layer's routed
 * experts for a weight-only scheme, group by group after the calibration pass. */
forward_hooks calib_gram_hooks(layer_calib *lc);
/* Hooks of the quantized pass: fake-quantized weights (with the decided scales) and inputs. */
forward_hooks calib_quantizer_hooks(layer_calib *lc);

/* A linear's quantized weight: buffers sized for the scheme (strata_quant_shape_get), and
 * their release once exported and checkpointed. */
strata_status linear_calib_alloc_quantized(linear_calib *c, const scheme_info *scheme);
void linear_calib_free_quantized(linear_calib *c);
/* Moves c's held quantized weight to the spill file, freeing it from memory (weight_spill.c). */
strata_status linear_calib_spill_quantized(linear_calib *c, weight_spill *spill);
/* c's quantized weight: *out is c->weight_q when held, *fetched read back when spilled (the
 * caller frees it with quant_qtensor_free), or c->weight_q with NULL codes when neither. */
strata_status linear_calib_quantized(const linear_calib *c, strata_qtensor *fetched, const strata_qtensor **out);
void layer_calib_release_quantized(layer_calib *lc);
/* Bytes of the quantized weight's codes, scales and zero points. */
strata_quant_shape linear_calib_quantized_shape(const linear_calib *c, const scheme_info *scheme);

/* Hessians (hessian.c): one per distinct input of the layer's quantized linears; the
 * observer hooks (weight-only schemes) or the Hessian hooks accumulate them, by
 * calibration window (seq_len tokens each). finish adds every participant's sums (every
 * participant calls it, with or without tokens) and scales them by 2/n. */
strata_status layer_hessians_init(layer_calib *lc, int64_t seq_len);
strata_status layer_hessians_add(layer_calib *lc, const linear_calib *c, const float *x, int64_t n_tokens,
                                 const int64_t *token_index, int64_t chunk_first_token);
/* The calibration window of input row i of a chunk (its token's index over the run / seq_len). */
int64_t layer_calib_row_window(const layer_calib *lc, const int64_t *token_index, int64_t chunk_first_token, int64_t i);
/* What changes c's scale blocks' statistics when its weight is quantized (the clip, the amax floor). */
static inline quant_block_adjust linear_calib_block_adjust(const linear_calib *c)
{
    return (quant_block_adjust){.clip = c->clip, .amax_floor = c->amax_floor};
}
/* Whether c's input hook is the one that accumulates its Hessian. */
bool layer_hessians_accumulates(const layer_calib *lc, const linear_calib *c);
/* to_deciders: each Hessian is summed on the rank that decides its linears
 * (linear_calib_decider) alone; the others drop theirs. Under expert parallelism a routed
 * expert's Hessians are complete on its rank and are not sent at all. */
strata_status layer_hessians_finish(layer_calib *lc, const calib_collective *coll, bool to_deciders);
void layer_hessians_free(layer_calib *lc);
/* Restricts accumulation to the non-expert linears (when non_experts) and routed experts
 * [first_expert, end_expert). */
void layer_hessians_scope(layer_calib *lc, bool non_experts, int first_expert, int end_expert);
/* finish and free for the Hessians of routed experts [first, end) only. */
strata_status layer_hessians_finish_experts(layer_calib *lc, int first, int end, const calib_collective *coll);
void layer_hessians_free_experts(layer_calib *lc, int first, int end);

/* Decisions dealt out to the ranks (decision_share.c): the rank that decides c (GPTQ's
 * linears by Hessian, others by linear, round-robin; a routed expert's by its holder under
 * expert parallelism; 0 with one rank), and every rank's
 * copy of what rank `from` decided for c (its quantized weight, clip, weight error, GPTQ
 * report). Every rank calls share for the same linears in the same order. */
int linear_calib_decider(const layer_calib *lc, const linear_calib *c, int n_ranks);
strata_status linear_calib_share_decision(linear_calib *c, const calib_collective *coll, int from);

/* Peer maximum (moe_sync.c): reduces every linear's input/output amax (MAX) and token
 * count (SUM) over the participants, then sets each quantized routed expert's input amax
 * to the maximum over the layer's experts of its family. Every participant calls it for
 * every layer, with or without tokens. */
strata_status layer_calib_sync(layer_calib *lc, const calib_collective *coll);
/* 0: a routed expert's gate/up (reads the MLP input); 1: its down; -1: not a routed expert. */
int linear_calib_expert_family(const linear_calib *c);

/* The tensor-level amax each quantized linear's weight uses: its own, or its fused
 * group's maximum when the scheme shares one; weights come from the model. */
/* Rounds every observed input and k/v amax to bf16: what the linears of a bf16 forward pass
 * receive. */
void layer_calib_round_observed_to_bf16(layer_calib *lc);
strata_status layer_calib_weight_amax(layer_calib *lc, const strata_model *model);

#endif
