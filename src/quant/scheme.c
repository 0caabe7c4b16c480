/*
 * scheme.c — the scheme table (see scheme.h).
 */
#include "quant/scheme.h"

#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "kernels/minifloat.h"
#include "quant/format.h"

static const scheme_info SCHEMES[STRATA_SCHEME_COUNT] = {
    /* ModelOpt 0.47 keeps one weight scale per linear for FP8 per tensor (its exporter fuses
     * NVFP4's global scale, not this one), except a routed expert's gate/up, one parameter
     * in transformers v5; --fuse-fp8-scales shares them all. */
    [STRATA_SCHEME_FP8] = {
        .name = "fp8", .weight_format = STRATA_FORMAT_FP8_TENSOR, .input = INPUT_FP8_STATIC,
        .modelopt_algo = "FP8", .algo_label = "FP8",
        .sharing = SHARE_EXPERT_GATE_UP, .sharing_fused = SHARE_FUSED_GROUPS, .config_groups_bits = 8,
        .mixed_group = {.known = true, .input_bits = 8, .weight_bits = 8},
    },
    [STRATA_SCHEME_FP8_DYNAMIC] = {
        .name = "fp8-dynamic", .weight_format = STRATA_FORMAT_FP8_CHANNEL, .input = INPUT_FP8_PER_TOKEN,
        .modelopt_algo = "FP8_PER_CHANNEL_PER_TOKEN", .algo_label = "FP8_PER_CHANNEL_PER_TOKEN",
        .mixed_group = {.known = true, .input_bits = 8, .weight_bits = 8, .channel = true},
    },
    [STRATA_SCHEME_NVFP4] = {
        .name = "nvfp4", .weight_format = STRATA_FORMAT_NVFP4, .input = INPUT_NVFP4,
        .modelopt_algo = "NVFP4", .algo_label = "NVFP4",
        .sharing = SHARE_FUSED_GROUPS, .sharing_fused = SHARE_FUSED_GROUPS,
        .config_group_size = 16, .config_groups_bits = 4,
        .mixed_group = {.known = true, .input_bits = 4, .weight_bits = 4},
    },
    [STRATA_SCHEME_NVFP4_WEIGHT_ONLY] = {
        .name = "nvfp4-weight-only", .weight_format = STRATA_FORMAT_NVFP4, .input = INPUT_NONE,
        .modelopt_algo = "W4A16_NVFP4", .algo_label = "W4A16_NVFP4",
        .sharing = SHARE_FUSED_GROUPS, .sharing_fused = SHARE_FUSED_GROUPS,
        .config_group_size = 16, .config_groups_bits = 4,
        .mixed_group = {.known = true, .weight_bits = 4},
    },
    [STRATA_SCHEME_INT8] = {
        .name = "int8", .weight_format = STRATA_FORMAT_INT8_CHANNEL, .input = INPUT_NONE,
        .modelopt_algo = "W8A16", .algo_label = "W8A16",
        .mixed_group = {.known = true, .weight_bits = 8, .int_weights = true},
    },
    [STRATA_SCHEME_INT4] = {
        .name = "int4", .weight_format = STRATA_FORMAT_INT4_GROUP, .group_size = 128, .input = INPUT_NONE,
        .modelopt_algo = "W4A16_AWQ", .algo_label = "W4A16_AWQ", .config_group_size = 128, .awq_flags = true,
        .mixed_group = {.known = true, .weight_bits = 4, .int_weights = true},
    },
    /* ModelOpt's MXFP4_DEFAULT_CFG; its exporter writes quant_algo "mxfp4" in lower case. */
    [STRATA_SCHEME_MXFP4] = {
        .name = "mxfp4", .weight_format = STRATA_FORMAT_MXFP4, .input = INPUT_MXFP4,
        .modelopt_algo = "mxfp4", .algo_label = "mxfp4",
    },
    [STRATA_SCHEME_INT4_ASYM] = {
        .name = "int4-asym", .weight_format = STRATA_FORMAT_INT4_GROUP_ASYM, .group_size = 128, .input = INPUT_NONE,
        .modelopt_algo = NULL, .algo_label = "W4A16_ASYM",
    },
    /* ModelOpt's FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG; exported as quant_algo "fp8_pb_wo". */
    [STRATA_SCHEME_FP8_BLOCK] = {
        .name = "fp8-block", .weight_format = STRATA_FORMAT_FP8_BLOCK, .input = INPUT_NONE,
        .modelopt_algo = "fp8_pb_wo", .algo_label = "fp8_pb_wo",
    },
    /* llm-compressor's W8A8 (INT8): per-channel int8 weights, dynamic per-token int8 inputs.
     * ModelOpt has no export of it; compressed-tensors' int-quantized holds it. */
    [STRATA_SCHEME_INT8_W8A8] = {
        .name = "int8-w8a8", .weight_format = STRATA_FORMAT_INT8_CHANNEL, .input = INPUT_INT8_PER_TOKEN,
        .modelopt_algo = NULL, .algo_label = "W8A8",
    },
};

/* How each kind of input quantization runs: the format of its fake quantization, and for a
 * calibrated (static) scale, the amax one unit of the stored scale stands for. */
typedef struct input_info {
    bool quantized;
    strata_format format;
    float scale_range;    /* stored scale = amax / scale_range; 0: dynamic, no stored scale */
} input_info;

static const input_info INPUTS[] = {
    [INPUT_NONE] = {.quantized = false},
    [INPUT_FP8_STATIC] = {.quantized = true, .format = STRATA_FORMAT_FP8_TENSOR, .scale_range = E4M3_MAX},
    [INPUT_FP8_PER_TOKEN] = {.quantized = true, .format = STRATA_FORMAT_FP8_CHANNEL},
    [INPUT_NVFP4] = {.quantized = true, .format = STRATA_FORMAT_NVFP4, .scale_range = NVFP4_GLOBAL_RANGE},
    [INPUT_MXFP4] = {.quantized = true, .format = STRATA_FORMAT_MXFP4},
    [INPUT_INT8_PER_TOKEN] = {.quantized = true, .format = STRATA_FORMAT_INT8_CHANNEL},
};

const scheme_info *scheme_get(strata_scheme scheme)
{
    return (unsigned)scheme < STRATA_SCHEME_COUNT ? &SCHEMES[scheme] : NULL;
}

/* NVFP4 after awq_lite: ModelOpt's NVFP4_AWQ_LITE_CFG exports quant_algo NVFP4_AWQ with the
 * AWQ flags and no config_groups (convert_hf_config.py has no branch for it). */
static const scheme_info NVFP4_AWQ = {
    .name = "nvfp4", .weight_format = STRATA_FORMAT_NVFP4, .input = INPUT_NVFP4,
    .modelopt_algo = "NVFP4_AWQ", .algo_label = "NVFP4_AWQ",
    .sharing = SHARE_FUSED_GROUPS, .sharing_fused = SHARE_FUSED_GROUPS,
    .config_group_size = 16, .awq_flags = true,
};

const scheme_info *scheme_with_awq(strata_scheme scheme)
{
    switch (scheme) {
    case STRATA_SCHEME_INT4: return &SCHEMES[scheme]; /* W4A16_AWQ with or without scales */
    case STRATA_SCHEME_NVFP4: return &NVFP4_AWQ;
    default: return NULL;
    }
}

const char *strata_scheme_name(strata_scheme scheme)
{
    const scheme_info *s = scheme_get(scheme);
    return s ? s->name : "?";
}

bool strata_scheme_from_name(const char *name, strata_scheme *out)
{
    for (int i = 0; name && i < STRATA_SCHEME_COUNT; i++)
        if (strcmp(SCHEMES[i].name, name) == 0) {
            *out = (strata_scheme)i;
            return true;
        }
    return false;
}

strata_quant_params scheme_weight_params(const scheme_info *s, strata_convention convention, float tensor_amax)
{
    return (strata_quant_params){.format = s->weight_format, .convention = convention, .group_size = s->group_size,
                                 .amax = tensor_amax};
}

amax_sharing scheme_sharing(const scheme_info *s, strata_convention convention, bool fuse_fp8_scales)
{
    if (fuse_fp8_scales) return s->sharing_fused;
    if (convention == STRATA_CONVENTION_COMPRESSED_TENSORS && s->sharing == SHARE_EXPERT_GATE_UP) return SHARE_NONE;
    return s->sharing;
}

const scheme_info *scheme_from_modelopt_algo(const char *algo)
{
    for (int i = 0; algo && i < STRATA_SCHEME_COUNT; i++)
        if (SCHEMES[i].modelopt_algo && strcasecmp(SCHEMES[i].modelopt_algo, algo) == 0) return &SCHEMES[i];
    if (algo && strcasecmp(NVFP4_AWQ.modelopt_algo, algo) == 0) return &NVFP4_AWQ;
    return NULL;
}

const scheme_info *scheme_from_algo_label(const char *label)
{
    for (int i = 0; label && i < STRATA_SCHEME_COUNT; i++)
        if (strcasecmp(SCHEMES[i].algo_label, label) == 0) return &SCHEMES[i];
    if (label && strcasecmp(NVFP4_AWQ.algo_label, label) == 0) return &NVFP4_AWQ;
    return NULL;
}

strata_status scheme_fake_quantize_input_amax(const scheme_info *s, float amax, float *x, int64_t rows, int64_t cols)
{
    const input_info *in = &INPUTS[s->input];
    if (!in->quantized) return STRATA_OK;
    /* Dynamic kinds compute their scales from x; static ones take the calibrated amax. */
    strata_quant_params p = {.format = in->format, .convention = STRATA_CONVENTION_MODELOPT,
                             .amax = in->scale_range > 0 ? amax : 0};
    return strata_fake_quantize(&p, STRATA_DTYPE_F32, x, rows, cols, x);
}

strata_status scheme_fake_quantize_input(const scheme_info *s, float input_amax, float *x, int64_t rows, int64_t cols)
{
    /* Through the stored scale, as an engine (and strata eval) applies it. */
    return scheme_fake_quantize_input_amax(s, scheme_input_amax(s->input, scheme_input_scale(s, input_amax)), x, rows,
                                           cols);
}

float scheme_input_scale(const scheme_info *s, float input_amax)
{
    float range = INPUTS[s->input].scale_range;
    float scale = range > 0 ? input_amax / range : 0;
    return scale > 0 ? scale : 1.0f;
}

float scheme_input_scale_stored(const scheme_info *s, strata_convention convention, strata_dtype dtype,
                                float input_amax)
{
    if (convention == STRATA_CONVENTION_MODELOPT) return scheme_input_scale(s, input_amax);
    /* The weight path's own arithmetic on a one-block tensor of that amax. */
    const input_info *in = &INPUTS[s->input];
    strata_quant_params p = {.format = in->format, .convention = convention, .amax = input_amax,
                             .values_dtype = dtype};
    quant_plan plan;
    if (quant_plan_init(&p, STRATA_DTYPE_F32, 1, 16, &plan) != STRATA_OK) {
        strata_error_clear();
        return 1.0f;
    }
    float amax = quant_round_to_source(&plan, input_amax), stored = 0;
    quant_scales scales = {.stored = &stored};
    quant_global_from_amax(&plan, amax, &scales);
    if (in->format == STRATA_FORMAT_NVFP4) return scales.global;
    quant_scales_from_stats(&plan, &amax, NULL, NULL, 0, &scales);
    return stored;
}

float scheme_input_amax_compressed_tensors(input_quant input, float stored)
{
    return input == INPUT_NVFP4 ? NVFP4_GLOBAL_RANGE / stored : stored * INPUTS[input].scale_range;
}

float scheme_input_amax(input_quant input, float input_scale)
{
    return input_scale * INPUTS[input].scale_range;
}
