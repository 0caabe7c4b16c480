/*
 * quantized_weight.c — dequantizing ModelOpt-exported weights (see quantized_weight.h).
 * Which tensors hold what is quant/weight_layout.c's table, the one the exporter writes
 * with; values go through strata_dequantize, the same arithmetic the export used.
 */
#include "forward/quantized_weight.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "forward/layer_weights.h"
#include "quant/weight_layout.h"

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

typedef struct linear_lookup {
    const strata_model *model;
    const strata_linear *linear;
} linear_lookup;

static const strata_tensor *find_companion(void *ctx, const char *suffix)
{
    const linear_lookup *l = ctx;
    return companion(l->model, l->linear, suffix);
}

strata_status quantized_weight_f32(const strata_model *model, const strata_linear *linear, const strata_tensor *t,
                                   float *out)
{
    int64_t N = linear->n_out, K = linear->n_in;
    if (linear->stack_index >= 0)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s is %s; strata reads quantized experts only "
                           "stored one per tensor", file_of(model, t), t->name, strata_dtype_name(t->dtype));
    const strata_quant_info *info = strata_model_quantization(model);
    linear_lookup lookup = {.model = model, .linear = linear};
    stored_weight stored;
    strata_status status = weight_layout_match(find_companion, &lookup, N, K, info ? info->group_size : 0, &stored);
    if (status != STRATA_OK) return strata_fail_context(status, "%s", file_of(model, t));
    status = weight_layout_dequantize(&stored, out);
    int64_t bad = status == STRATA_OK ? first_non_finite(out, N * K) : -1;
    if (bad >= 0)
        status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s dequantizes to %s at element %lld (row %lld)",
                             file_of(model, t), t->name, non_finite_name(out[bad]), (long long)bad, (long long)(bad / K));
    return status;
}
