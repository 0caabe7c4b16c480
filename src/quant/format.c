/*
 * format.c — the traits table (one entry per format), name lookup, buffer shapes, and
 * the resolved plan every quantization starts from.
 */
#include "quant/format.h"

#include <string.h>

#include "core/checked.h"
#include "core/error.h"

static const strata_format_info FORMATS[STRATA_FORMAT_COUNT] = {
    [STRATA_FORMAT_FP8_TENSOR] = {.name = "fp8", .element_bits = 8, .scale_dtype = STRATA_DTYPE_F32},
    [STRATA_FORMAT_FP8_CHANNEL] = {.name = "fp8-channel", .element_bits = 8, .block_rows = 1,
                                   .scale_dtype = STRATA_DTYPE_F32},
    [STRATA_FORMAT_FP8_BLOCK] = {.name = "fp8-block", .element_bits = 8, .block_rows = 128, .block_cols = 128,
                                 .scale_dtype = STRATA_DTYPE_F32},
    [STRATA_FORMAT_NVFP4] = {.name = "nvfp4", .element_bits = 4, .block_rows = 1, .block_cols = 16,
                             .scale_dtype = STRATA_DTYPE_F8_E4M3, .has_global_scale = true, .pads_columns = true},
    [STRATA_FORMAT_MXFP8] = {.name = "mxfp8", .element_bits = 8, .block_rows = 1, .block_cols = 32,
                             .scale_dtype = STRATA_DTYPE_F8_E8M0},
    [STRATA_FORMAT_MXFP4] = {.name = "mxfp4", .element_bits = 4, .block_rows = 1, .block_cols = 32,
                             .scale_dtype = STRATA_DTYPE_F8_E8M0, .pads_columns = true},
    [STRATA_FORMAT_INT8_CHANNEL] = {.name = "int8", .element_bits = 8, .block_rows = 1,
                                    .scale_dtype = STRATA_DTYPE_F32},
    /* INT4's group is the caller's (strata_quant_params.group_size); 128 by default. */
    [STRATA_FORMAT_INT4_GROUP] = {.name = "int4", .element_bits = 4, .block_rows = 1, .block_cols = 128,
                                  .scale_dtype = STRATA_DTYPE_F32},
    [STRATA_FORMAT_INT4_GROUP_ASYM] = {.name = "int4-asym", .element_bits = 4, .block_rows = 1, .block_cols = 128,
                                       .scale_dtype = STRATA_DTYPE_F32, .has_zero_point = true},
};

const strata_format_info *strata_format_get(strata_format format)
{
    return (unsigned)format < STRATA_FORMAT_COUNT ? &FORMATS[format] : NULL;
}

bool quant_format_has_tensor_amax(strata_format format)
{
    const strata_format_info *info = strata_format_get(format);
    return info && ((info->block_rows == 0 && info->block_cols == 0) || info->has_global_scale);
}

int quant_format_element_bits(strata_format format)
{
    const strata_format_info *info = strata_format_get(format);
    return info ? info->element_bits : 0;
}

bool strata_format_from_name(const char *name, strata_format *out)
{
    for (int f = 0; f < STRATA_FORMAT_COUNT; f++) {
        if (strcmp(FORMATS[f].name, name) == 0) {
            *out = (strata_format)f;
            return true;
        }
    }
    return false;
}

/* Whose numerics strata reproduces for each (format, convention). */
static bool convention_supported(strata_format format, strata_convention convention)
{
    if (convention == STRATA_CONVENTION_MODELOPT) return format != STRATA_FORMAT_INT4_GROUP_ASYM;
    if (convention == STRATA_CONVENTION_COMPRESSED_TENSORS) return true;
    return false;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static strata_status plan_shape(const strata_quant_params *p, int64_t rows, int64_t cols, quant_plan *plan)
{
    const strata_format_info *info = strata_format_get(p->format);
    if (!info) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "invalid quantization format %d", (int)p->format);
    if (rows <= 0 || cols <= 0 || rows > (INT64_C(1) << 40) || cols > (INT64_C(1) << 40))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: invalid tensor shape [%lld, %lld]", info->name,
                           (long long)rows, (long long)cols);
    strata_convention convention = p->convention;
    if (p->format == STRATA_FORMAT_INT4_GROUP_ASYM && convention == STRATA_CONVENTION_MODELOPT)
        convention = STRATA_CONVENTION_COMPRESSED_TENSORS; /* ModelOpt has no asymmetric int4 */
    if (!convention_supported(p->format, convention))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: unknown quantization convention %d", info->name, (int)convention);
    int64_t block_cols = info->block_cols ? info->block_cols : cols;
    if (p->format == STRATA_FORMAT_INT4_GROUP || p->format == STRATA_FORMAT_INT4_GROUP_ASYM) {
        block_cols = p->group_size ? p->group_size : 128;
        if (block_cols < 2 || block_cols % 2 != 0 || block_cols > (1 << 20))
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: group size %lld must be even and positive", info->name,
                               (long long)block_cols);
    }
    *plan = (quant_plan){
        .format = p->format,
        .convention = convention,
        .info = info,
        .rows = rows,
        .cols = cols,
        .block_cols = block_cols,
        .blocks_per_row = ceil_div(cols, block_cols),
        .block_rows = info->block_rows ? info->block_rows : rows,
        .calibrated_amax = p->amax,
    };
    strata_quant_shape *s = &plan->shape;
    s->padded_cols = info->pads_columns ? plan->blocks_per_row * block_cols : cols;
    s->code_row_bytes = info->element_bits == 8 ? s->padded_cols : ceil_div(s->padded_cols, 2);
    s->scale_rows = ceil_div(rows, plan->block_rows);
    s->scale_cols = plan->blocks_per_row;
    uint64_t code_bytes, scales, scale_bytes;
    if (!checked_mul_u64((uint64_t)rows, (uint64_t)s->code_row_bytes, &code_bytes) ||
        !checked_mul_u64((uint64_t)s->scale_rows, (uint64_t)s->scale_cols, &scales) ||
        !checked_mul_u64(scales, strata_dtype_size(info->scale_dtype), &scale_bytes) || code_bytes > SIZE_MAX)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: tensor [%lld, %lld] is too large", info->name,
                           (long long)rows, (long long)cols);
    s->code_bytes = (size_t)code_bytes;
    s->scale_bytes = (size_t)scale_bytes;
    s->zero_point_bytes = info->has_zero_point ? (size_t)scales : 0;
    return STRATA_OK;
}

strata_status strata_quant_shape_get(const strata_quant_params *params, int64_t rows, int64_t cols,
                                     strata_quant_shape *out)
{
    if (!params || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_quant_shape_get: NULL argument");
    quant_plan plan;
    strata_status status = plan_shape(params, rows, cols, &plan);
    if (status == STRATA_OK) *out = plan.shape;
    return status;
}

strata_status quant_plan_init(const strata_quant_params *params, strata_dtype dtype, int64_t rows, int64_t cols,
                              quant_plan *plan)
{
    if (!params) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quantization: NULL parameters");
    if (dtype != STRATA_DTYPE_F32 && dtype != STRATA_DTYPE_BF16 && dtype != STRATA_DTYPE_F16)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "quantization input must be F32, BF16 or F16, not %s",
                           strata_dtype_name(dtype));
    if (!(params->amax >= 0.0f) || params->amax > 3.0e38f)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "calibrated amax %g must be finite and non-negative",
                           (double)params->amax);
    strata_dtype values = params->values_dtype;
    if (values != 0 && values != STRATA_DTYPE_F32 && values != STRATA_DTYPE_BF16 && values != STRATA_DTYPE_F16)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quantization: values_dtype must be F32, BF16 or F16, not %s",
                           strata_dtype_name(values));
    strata_status status = plan_shape(params, rows, cols, plan);
    plan->data_dtype = dtype;
    plan->source_dtype = values != 0 ? values : dtype;
    return status;
}
