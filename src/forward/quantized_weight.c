/*
 * quantized_weight.c — dequantizing ModelOpt-exported weights (see quantized_weight.h).
 * The layouts are the ones tests/golden/export records from ModelOpt's exporter; values go
 * through strata_dequantize, the same arithmetic the export used.
 */
#include "forward/quantized_weight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "forward/layer_weights.h"

static const strata_tensor *companion(const strata_model *model, const strata_linear *linear, const char *suffix)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", linear->name, suffix);
    return strata_safetensors_find(strata_model_tensors(model), name);
}

static const char *file_of(const strata_model *model, const strata_tensor *t)
{
    return strata_safetensors_shard_path(strata_model_tensors(model), t->shard);
}

/* ModelOpt INT4 AWQ (rows / 2, cols) bytes -> canonical (rows, ceil(cols / 2)) nibbles. */
static void unpack_awq(const uint8_t *packed, int64_t rows, int64_t cols, uint8_t *codes)
{
    int64_t row_bytes = (cols + 1) / 2;
    memset(codes, 0, (size_t)(rows * row_bytes));
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            uint8_t v = (uint8_t)(packed[(r / 2) * cols + c] >> (4 * (r & 1))) & 0xF;
            codes[r * row_bytes + c / 2] |= (uint8_t)(v << (4 * (c & 1)));
        }
}

/* The INT4 group of a row of K columns with `groups` scales: hf_quant_config.json's
 * group_size when it fits (the last group of a row may be short), else K / groups when
 * that divides; 0 when neither does. */
static int64_t int4_group_size(const strata_model *model, int64_t K, int64_t groups)
{
    const strata_quant_info *info = strata_model_quantization(model);
    int64_t g = info && info->group_size > 0 ? info->group_size : 128;
    if ((K + g - 1) / g == groups) return g;
    return K % groups == 0 ? K / groups : 0;
}

/* FP8 128x128 block scales of an (N, K) weight: F32 or BF16 (ceil(N/128), ceil(K/128)), as
 * DeepSeek-style checkpoints store them, or (ceil(N/128), 1, ceil(K/128), 1), as ModelOpt's
 * fp8_pb_wo export does. A per-channel scale (N, 1) is not one, even when the grid has that
 * shape. */
static bool fp8_block_scales(const strata_tensor *scale, int64_t N, int64_t K)
{
    int64_t rows = (N + 127) / 128, cols = (K + 127) / 128;
    bool floating = scale->dtype == STRATA_DTYPE_F32 || scale->dtype == STRATA_DTYPE_BF16;
    bool grid = (scale->n_dims == 2 && scale->shape[0] == rows && scale->shape[1] == cols) ||
                (scale->n_dims == 4 && scale->shape[0] == rows && scale->shape[1] == 1 && scale->shape[2] == cols &&
                 scale->shape[3] == 1);
    bool channel = scale->n_elements == N && (scale->n_dims == 1 || (scale->n_dims == 2 && scale->shape[1] == 1));
    return floating && grid && !channel;
}

strata_status quantized_weight_f32(const strata_model *model, const strata_linear *linear, const strata_tensor *t,
                                   float *out)
{
    int64_t N = linear->n_out, K = linear->n_in;
    const strata_tensor *scale = companion(model, linear, "weight_scale");
    if (!scale) scale = companion(model, linear, "weight_scale_inv"); /* DeepSeek / Qwen FP8 */
    if (!scale || linear->stack_index >= 0)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s is %s without a weight_scale strata can read",
                           file_of(model, t), t->name, strata_dtype_name(t->dtype));
    strata_quant_params p = {.convention = STRATA_CONVENTION_MODELOPT};
    strata_qtensor q = {.codes = (uint8_t *)(uintptr_t)t->data, .scales = (void *)(uintptr_t)scale->data};
    uint8_t *unpacked = NULL;
    float *block_scales = NULL;
    if (t->dtype == STRATA_DTYPE_F8_E4M3 && fp8_block_scales(scale, N, K)) {
        /* 128x128 tiles, w = e4m3 * scale (weight_scale_inv is the dequantization factor
         * despite its name); the scales may be stored as bf16. */
        p.format = STRATA_FORMAT_FP8_BLOCK;
        block_scales = malloc((size_t)scale->n_elements * sizeof *block_scales);
        if (!block_scales) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
        strata_status status = strata_convert_to_f32(scale->dtype, scale->data, (size_t)scale->n_elements, block_scales);
        if (status != STRATA_OK) {
            free(block_scales);
            return status;
        }
        q.scales = block_scales;
    } else if (t->dtype == STRATA_DTYPE_F8_E4M3 && scale->n_elements == 1) p.format = STRATA_FORMAT_FP8_TENSOR;
    else if (t->dtype == STRATA_DTYPE_F8_E4M3 && scale->n_elements == N) p.format = STRATA_FORMAT_FP8_CHANNEL;
    else if (t->dtype == STRATA_DTYPE_I8 && scale->n_elements == N) p.format = STRATA_FORMAT_INT8_CHANNEL;
    else if (t->dtype == STRATA_DTYPE_U8 && scale->dtype == STRATA_DTYPE_F8_E4M3) {
        const strata_tensor *global = companion(model, linear, "weight_scale_2");
        if (!global || global->dtype != STRATA_DTYPE_F32 || global->n_elements != 1)
            return strata_fail(STRATA_ERR_FORMAT, "%s: NVFP4 tensor %s has no F32 weight_scale_2", file_of(model, t),
                               t->name);
        p.format = STRATA_FORMAT_NVFP4;
        memcpy(&q.global_scale, global->data, 4);
    } else if (t->dtype == STRATA_DTYPE_U8 && scale->dtype == STRATA_DTYPE_U8) {
        p.format = STRATA_FORMAT_MXFP4; /* E2M1 pairs, E8M0 scale per 32 */
    } else if (t->dtype == STRATA_DTYPE_U8 && scale->dtype == STRATA_DTYPE_F32 && t->n_dims == 2 &&
               t->shape[0] * 2 == N && scale->n_dims == 2 && scale->shape[1] > 0 &&
               (p.group_size = int4_group_size(model, K, scale->shape[1])) > 0) {
        p.format = STRATA_FORMAT_INT4_GROUP;
        unpacked = malloc((size_t)(N * ((K + 1) / 2)));
        if (!unpacked) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
        unpack_awq(t->data, N, K, unpacked);
        q.codes = unpacked;
    } else {
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s (%s) with weight_scale %s: a layout strata cannot read",
                           file_of(model, t), t->name, strata_dtype_name(t->dtype), strata_dtype_name(scale->dtype));
    }
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&p, N, K, &shape);
    if (status == STRATA_OK && (p.format != STRATA_FORMAT_INT4_GROUP && t->n_bytes != shape.code_bytes))
        status = strata_fail(STRATA_ERR_MISMATCH, "%s: tensor %s holds %llu bytes; (%lld, %lld) %s needs %zu",
                             file_of(model, t), t->name, (unsigned long long)t->n_bytes, (long long)N, (long long)K,
                             strata_format_get(p.format)->name, shape.code_bytes);
    if (status == STRATA_OK && scale->n_bytes != shape.scale_bytes)
        status = strata_fail(STRATA_ERR_MISMATCH, "%s: tensor %s.weight_scale holds %llu bytes, expected %zu",
                             file_of(model, scale), linear->name, (unsigned long long)scale->n_bytes, shape.scale_bytes);
    if (status == STRATA_OK) status = strata_dequantize(&p, &q, N, K, out);
    free(unpacked);
    free(block_scales);
    int64_t bad = status == STRATA_OK ? first_non_finite(out, N * K) : -1;
    if (bad >= 0)
        status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s dequantizes to %s at element %lld (row %lld)",
                             file_of(model, t), t->name, non_finite_name(out[bad]), (long long)bad, (long long)(bad / K));
    return status;
}
