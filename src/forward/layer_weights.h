/*
 * layer_weights.h — one decoder layer materialized for the forward pass.
 *
 * The layer's tensors are read from the checkpoint's mapping once, checked for NaN and
 * Inf, and converted into the GEMM's precision (linears) or fp32 (norms, biases). Only
 * the layer being run is materialized; everything else stays in the mapping.
 *
 * A layer bigger than memory keeps its routed experts in the mapping: with
 * experts_per_group > 0 they are materialized by the MoE block a group at a time
 * (layer_weights_materialize_experts) and released before the next group, so the layer's
 * working set is attention, router, shared experts and one group. Results do not depend
 * on the grouping: every expert runs on the same tokens in the same order.
 */
#ifndef STRATA_FORWARD_LAYER_WEIGHTS_H
#define STRATA_FORWARD_LAYER_WEIGHTS_H

#include <stddef.h>

#include "forward/hooks.h"
#include "kernels/gemm.h"
#include "strata.h"

typedef struct layer_linear {
    const strata_linear *desc;
    gemm_weight *weight; /* (n_out, n_in) in the GEMM's precision */
    float *bias;         /* (n_out) fp32, or NULL */
    bool mapped;         /* weight reads the model's mapping in place (stored in the GEMM's
                          * dtype, untransformed): its pages are released when it is unloaded */
} layer_linear;

typedef struct layer_weights {
    const strata_arch *arch;
    const strata_layer *layer;
    float *input_norm, *post_attention_norm; /* (hidden) */
    float *q_norm, *k_norm;                  /* (head_dim), or NULL */
    float *q_a_norm, *kv_a_norm;             /* MLA: (q_lora_rank), (kv_lora_rank), or NULL */
    layer_linear *linears;                   /* (layer->n_linears), parallel to layer->linears */
    /* Lookups into linears (NULL where the layer has none): */
    layer_linear *q, *k, *v, *o;
    layer_linear *q_a, *q_b, *kv_a, *kv_b;                    /* MLA (q_a, q_b NULL with a plain q) */
    layer_linear *gate, *up, *down;                           /* dense MLP */
    layer_linear *router;                                     /* MoE */
    layer_linear **expert_gate, **expert_up, **expert_down;   /* (n_experts) each */
    layer_linear *shared_gate, *shared_up, *shared_down;      /* qwen2_moe shared expert */
    layer_linear *shared_expert_gate;                         /* (1, hidden) sigmoid gate */
    float *router_bias;                                       /* (n_experts) fp32, glm4_moe, or NULL */
    size_t bytes;                                             /* memory the layer holds (experts aside
                                                               * when grouped) */
    /* Routed experts materialized in groups (0: all of them at load), and what that needs: */
    int experts_per_group;
    const strata_model *model;
    gemm_precision precision;
    const forward_hooks *hooks;
    size_t n_hooks;
    double *read_seconds; /* when set, the seconds materializing experts take are added here */
} layer_weights;

/* Reads and converts layer `index` of the model. Hooks' quantize_weight callbacks (if
 * any) fake-quantize each linear's weight on the way. */
strata_status layer_weights_load(const strata_model *model, int index, gemm_precision precision,
                                 const forward_hooks *hooks, size_t n_hooks, layer_weights *out);
/* The same with the routed experts left in the mapping, experts_per_group at a time (0:
 * all materialized, as layer_weights_load). hooks must outlive lw. */
strata_status layer_weights_load_grouped(const strata_model *model, int index, gemm_precision precision,
                                         const forward_hooks *hooks, size_t n_hooks, int experts_per_group,
                                         layer_weights *out);
void layer_weights_free(layer_weights *lw);

/* Materializes routed experts [first, first + count) of a grouped layer (with the load's
 * hooks), and releases them; both do nothing when the experts were loaded whole. */
strata_status layer_weights_materialize_experts(const layer_weights *lw, int first, int count);
void layer_weights_release_experts(const layer_weights *lw, int first, int count);

/* Index of the first NaN or Inf among x[0..n), or -1; and the word for a non-finite value. */
int64_t first_non_finite(const float *x, int64_t n);
const char *non_finite_name(float x);

/* Reads a 1-D or 2-D floating tensor of the model as fp32 (n elements), refusing NaN/Inf
 * and a wrong element count with a message naming the file and tensor. */
strata_status model_tensor_f32(const strata_model *model, const char *name, size_t n, float *out);

/* Reads a linear's (n_out, n_in) weight as fp32, refusing NaN/Inf by file and place. */
strata_status linear_weight_f32(const strata_model *model, const strata_linear *linear, float *out);

/* Drops the mapped pages of a linear's weight from the resident set (they stay in the page
 * cache): a grouped layer's experts, once read, so the resident set holds one group. */
void linear_weight_release_pages(const strata_model *model, const strata_linear *linear);

/* Whether a linear's weight is stored quantized (an FP8 or ModelOpt checkpoint). */
bool linear_weight_quantized(const strata_model *model, const strata_linear *linear);

/* The dtype a linear's weight values have: the checkpoint's (BF16, F16, F32), or F32 for a
 * weight dequantized from FP8. Quantizing an fp32 copy with this as values_dtype gives the
 * codes the reference gives the weight itself. */
strata_dtype linear_values_dtype(const strata_model *model, const strata_linear *linear);

/* Where a linear's (n_out, n_in) floating weight lies in the mapping, unconverted: the
 * whole tensor, or its slice of a stacked expert tensor (n_experts, rows, n_in). */
strata_status linear_weight_view(const strata_model *model, const strata_linear *linear, strata_dtype *dtype,
                                 const void **data);

/* Materializes a whole (n_out, n_in) 2-D tensor as a GEMM weight (used for lm_head). */
strata_status model_tensor_gemm(const strata_model *model, const char *name, gemm_precision precision,
                                gemm_weight **out);

#endif
