/*
 * scheme.c — the scheme table (see scheme.h).
 */
#include "quant/scheme.h"

#include <string.h>

static const scheme_info SCHEMES[STRATA_SCHEME_COUNT] = {
    [STRATA_SCHEME_FP8] = {"fp8", STRATA_FORMAT_FP8_TENSOR, 0, INPUT_FP8_STATIC, "FP8", "FP8", true},
    [STRATA_SCHEME_FP8_DYNAMIC] = {"fp8-dynamic", STRATA_FORMAT_FP8_CHANNEL, 0, INPUT_FP8_PER_TOKEN,
                                   "FP8_PER_CHANNEL_PER_TOKEN", "FP8_PER_CHANNEL_PER_TOKEN", false},
    [STRATA_SCHEME_NVFP4] = {"nvfp4", STRATA_FORMAT_NVFP4, 0, INPUT_NVFP4, "NVFP4", "NVFP4", true},
    [STRATA_SCHEME_NVFP4_WEIGHT_ONLY] = {"nvfp4-weight-only", STRATA_FORMAT_NVFP4, 0, INPUT_NONE, "W4A16_NVFP4",
                                         "W4A16_NVFP4", true},
    [STRATA_SCHEME_INT8] = {"int8", STRATA_FORMAT_INT8_CHANNEL, 0, INPUT_NONE, "W8A16", "W8A16", false},
    [STRATA_SCHEME_INT4] = {"int4", STRATA_FORMAT_INT4_GROUP, 128, INPUT_NONE, "W4A16_AWQ", "W4A16_AWQ", false},
    /* ModelOpt's MXFP4_DEFAULT_CFG; its exporter writes quant_algo "mxfp4" in lower case. */
    [STRATA_SCHEME_MXFP4] = {"mxfp4", STRATA_FORMAT_MXFP4, 0, INPUT_MXFP4, "mxfp4", "mxfp4", false},
    [STRATA_SCHEME_INT4_ASYM] = {"int4-asym", STRATA_FORMAT_INT4_GROUP_ASYM, 128, INPUT_NONE, NULL, "W4A16_ASYM",
                                 false},
    /* ModelOpt's FP8_2D_BLOCKWISE_WEIGHT_ONLY_CFG; exported as quant_algo "fp8_pb_wo". */
    [STRATA_SCHEME_FP8_BLOCK] = {"fp8-block", STRATA_FORMAT_FP8_BLOCK, 0, INPUT_NONE, "fp8_pb_wo", "fp8_pb_wo",
                                 false},
};

const scheme_info *scheme_get(strata_scheme scheme)
{
    return (unsigned)scheme < STRATA_SCHEME_COUNT ? &SCHEMES[scheme] : NULL;
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

strata_quant_params scheme_weight_params(const scheme_info *s, float tensor_amax)
{
    return (strata_quant_params){.format = s->weight_format, .convention = STRATA_CONVENTION_MODELOPT,
                                 .group_size = s->group_size, .amax = tensor_amax};
}

strata_status scheme_fake_quantize_input_amax(const scheme_info *s, float amax, float *x, int64_t rows, int64_t cols)
{
    strata_quant_params p = {.convention = STRATA_CONVENTION_MODELOPT, .amax = amax};
    switch (s->input) {
    case INPUT_NONE: return STRATA_OK;
    case INPUT_FP8_STATIC: p.format = STRATA_FORMAT_FP8_TENSOR; break;
    case INPUT_FP8_PER_TOKEN:
        p.format = STRATA_FORMAT_FP8_CHANNEL;
        p.amax = 0;
        break;
    case INPUT_NVFP4: p.format = STRATA_FORMAT_NVFP4; break;
    case INPUT_MXFP4:
        p.format = STRATA_FORMAT_MXFP4;
        p.amax = 0;
        break;
    }
    return strata_fake_quantize(&p, STRATA_DTYPE_F32, x, rows, cols, x);
}

strata_status scheme_fake_quantize_input(const scheme_info *s, float input_amax, float *x, int64_t rows, int64_t cols)
{
    /* Through the stored scale, as an engine (and strata eval) applies it. */
    float scale = scheme_input_scale(s, input_amax);
    return scheme_fake_quantize_input_amax(s, scale * (s->input == INPUT_NVFP4 ? 2688.0f : 448.0f), x, rows, cols);
}

float scheme_input_scale(const scheme_info *s, float input_amax)
{
    float scale = s->input == INPUT_NVFP4 ? input_amax / 2688.0f : input_amax / 448.0f;
    return scale > 0 ? scale : 1.0f;
}
