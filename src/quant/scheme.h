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
} input_quant;

/* Whether the scheme stores a calibrated input_scale per linear. */
static inline bool input_has_static_scale(input_quant input)
{
    return input == INPUT_FP8_STATIC || input == INPUT_NVFP4;
}

typedef struct scheme_info {
    const char *name;             /* "fp8" */
    strata_format weight_format;
    int64_t group_size;           /* INT4 group; 0 otherwise */
    input_quant input;
    const char *modelopt_algo;    /* hf_quant_config.json quant_algo; NULL: no ModelOpt export */
    const char *algo_label;       /* what summaries and fakequant metadata call it: the
                                   * ModelOpt name, or strata's own where ModelOpt has none */
    bool share_group_amax;        /* fused groups share the tensor-level weight scale */
} scheme_info;

const scheme_info *scheme_get(strata_scheme scheme);

/* The quant params of a linear's weight (tensor_amax > 0 overrides the tensor-level amax). */
strata_quant_params scheme_weight_params(const scheme_info *s, float tensor_amax);

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

#endif
