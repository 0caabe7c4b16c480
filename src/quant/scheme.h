/*
 * scheme.h — the quantization schemes of strata quantize: for each, the weight format, how
 * activations are quantized, and the names the ModelOpt export uses.
 */
#ifndef STRATA_QUANT_SCHEME_H
#define STRATA_QUANT_SCHEME_H

#include "strata.h"

typedef enum input_quant {
    INPUT_NONE = 0,        /* weight-only */
    INPUT_FP8_STATIC,      /* one calibrated per-tensor scale: amax / 448 */
    INPUT_FP8_PER_TOKEN,   /* dynamic: one scale per token (row), computed at run time */
    INPUT_NVFP4,           /* calibrated global scale amax / (6 * 448), dynamic 16-element blocks */
    INPUT_MXFP4,           /* dynamic: E8M0 scale per 32-element block, computed at run time */
    INPUT_INT8_PER_TOKEN,  /* dynamic: int8, one scale amax / 127 per token (row), at run time */
} input_quant;

/* Whether the scheme stores a calibrated input_scale per linear. */
static inline bool input_has_static_scale(input_quant input)
{
    return input == INPUT_FP8_STATIC || input == INPUT_NVFP4;
}

/* Which fused groups share the tensor-level weight amax, as ModelOpt 0.47 exports them. */
typedef enum amax_sharing {
    SHARE_NONE = 0,        /* each linear its own (and formats without a tensor-level scale) */
    SHARE_EXPERT_GATE_UP,  /* only a routed expert's gate/up: transformers v5 holds them as one
                            * gate_up_proj parameter per expert, with one weight quantizer */
    SHARE_FUSED_GROUPS,    /* q/k/v, gate/up, an expert's gate/up: the exporter fuses them */
} amax_sharing;

typedef struct scheme_info {
    const char *name;             /* "fp8" */
    strata_format weight_format;
    int64_t group_size;           /* INT4 group; 0 otherwise */
    input_quant input;
    const char *modelopt_algo;    /* hf_quant_config.json quant_algo; NULL: no ModelOpt export */
    const char *algo_label;       /* what summaries and fakequant metadata call it: the
                                   * ModelOpt name, or strata's own where ModelOpt has none */
    amax_sharing sharing;         /* which fused groups share the tensor-level weight amax */
    amax_sharing sharing_fused;   /* the same with --fuse-fp8-scales */
    /* What ModelOpt's exporter writes about the scheme besides quant_algo: */
    int64_t config_group_size;    /* hf_quant_config group_size (0: none written) */
    int config_groups_bits;       /* config.json config_groups num_bits (0: no config_groups) */
    bool awq_flags;               /* has_zero_point false, pre_quant_scale true (INT4 AWQ) */
    /* The config group ModelOpt's MIXED_PRECISION export writes for the scheme's layers
     * (convert_hf_config.py's _quant_algo_to_group_config); group sizes are
     * config_group_size. known false: ModelOpt has none, strata refuses to mix it. */
    struct {
        bool known;
        int input_bits;           /* input_activations num_bits; 0: none written */
        int weight_bits;
        bool int_weights;         /* weights type "int" instead of "float" */
        bool channel;             /* weights strategy "channel" */
    } mixed_group;
} scheme_info;

const scheme_info *scheme_get(strata_scheme scheme);
/* The scheme as ModelOpt exports it after awq_lite (INT4_AWQ_CFG, NVFP4_AWQ_LITE_CFG); NULL
 * for the schemes strata's AWQ does not run. */
const scheme_info *scheme_with_awq(strata_scheme scheme);

/* The scheme a ModelOpt checkpoint's quant_algo names (case-insensitive); NULL when none. */
const scheme_info *scheme_from_modelopt_algo(const char *algo);
/* The scheme an algo_label names (case-insensitive; a ModelOpt quant_algo is one): what
 * strata's fakequant side file records. NULL when none. */
const scheme_info *scheme_from_algo_label(const char *label);

/* The quant params of a linear's weight under a convention (tensor_amax > 0 overrides the
 * tensor-level amax). */
strata_quant_params scheme_weight_params(const scheme_info *s, strata_convention convention, float tensor_amax);

/* Which fused groups share the tensor-level weight amax: the scheme's sharing (sharing_fused
 * with --fuse-fp8-scales). Under the compressed-tensors convention a routed expert's gate and
 * up keep their own FP8 scales, as llm-compressor calibrates them as separate linears. */
amax_sharing scheme_sharing(const scheme_info *s, strata_convention convention, bool fuse_fp8_scales);

/* Fake-quantizes activations x (rows, cols) in place as the scheme's engine would at run
 * time, with the calibrated input amax where the scheme has a static scale: the stored
 * scale s = scheme_input_scale(amax) is applied as amax' = s * 448 (FP8) or s * 2688
 * (NVFP4 global), exactly as strata eval applies a checkpoint's input_scale. */
strata_status scheme_fake_quantize_input(const scheme_info *s, float input_amax, float *x, int64_t rows, int64_t cols);

/* The same from an effective amax (the per-token scheme ignores it). */
strata_status scheme_fake_quantize_input_amax(const scheme_info *s, float amax, float *x, int64_t rows, int64_t cols);

/* The stored input scale of a static scheme: FP8 amax / 448, NVFP4 amax / (6 * 448);
 * a zero amax gives 1. */
float scheme_input_scale(const scheme_info *s, float input_amax);

/* The input scale a checkpoint of the convention stores for a static scheme: ModelOpt's
 * scheme_input_scale; compressed-tensors' FP8 input_scale amax / 448 and NVFP4
 * input_global_scale 2688 / amax, computed as that library does in dtype (the weight's;
 * its activations have the same). */
float scheme_input_scale_stored(const scheme_info *s, strata_convention convention, strata_dtype dtype,
                                float input_amax);

/* The amax a compressed-tensors input scale stands for: scale * 448 (FP8), 2688 / scale
 * (NVFP4's global scale, a reciprocal). */
float scheme_input_amax_compressed_tensors(input_quant input, float stored);

/* The amax a stored input scale stands for: scale * 448 (FP8), scale * 2688 (NVFP4). */
float scheme_input_amax(input_quant input, float input_scale);

#endif
