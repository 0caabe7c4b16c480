/*
 * quant_runtime.c — activation quantization of quantized checkpoints at evaluation time
 * (see quant_runtime.h). The static scale s is applied as the calibration's quantized pass
 * applies it: through amax = s * 448 (FP8) or s * 2688 (NVFP4) (scheme_input_amax), so strata's own pass, its
 * ModelOpt export and its fakequant export give the same activations.
 */
#include "eval/quant_runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fsutil.h"
#include "model/model_internal.h"

/* How a checkpoint's activations are quantized, from its quant_algo (scheme.c's table). */
static input_quant input_of_algo(const char *algo)
{
    const scheme_info *s = scheme_from_modelopt_algo(algo);
    return s ? s->input : INPUT_NONE;
}

strata_status quant_runtime_open(const strata_model *model, quant_runtime *rt, bool *active)
{
    *rt = (quant_runtime){.model = model};
    *active = false;
    char *side = path_join(model_dir(model), "quant_scales.safetensors");
    if (!side) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = STRATA_OK;
    const strata_quant_info *info = strata_model_quantization(model);
    if (info && info->method && strcmp(info->method, "modelopt") == 0) {
        rt->algo = info->algo;
    } else if (!info && path_exists(side)) {
        status = strata_safetensors_open(side, &rt->side);
        if (status == STRATA_OK) rt->algo = strata_safetensors_metadata(rt->side, "strata.quant_algo");
        if (status == STRATA_OK && !rt->algo)
            status = strata_fail(STRATA_ERR_FORMAT, "%s: no strata.quant_algo metadata", side);
    }
    free(side);
    if (status != STRATA_OK) return status;
    rt->input = input_of_algo(rt->algo);
    *active = rt->input != INPUT_NONE;
    if (*active) strata_log(STRATA_LOG_INFO, "eval: activations quantized as %s prescribes", rt->algo);
    return STRATA_OK;
}

void quant_runtime_close(quant_runtime *rt)
{
    strata_safetensors_close(rt->side);
    *rt = (quant_runtime){0};
}

static const strata_tensor *find(const quant_runtime *rt, const strata_linear *linear, const char *suffix)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", linear->name, suffix);
    return strata_safetensors_find(rt->side ? rt->side : strata_model_tensors(rt->model), name);
}

static strata_status quantize_input(void *ctx, const strata_linear *linear, float *x, int64_t n_tokens)
{
    quant_runtime *rt = ctx;
    if (!find(rt, linear, rt->side ? "weight_amax" : "weight_scale") || n_tokens == 0) return STRATA_OK;
    float amax = 0;
    if (input_has_static_scale(rt->input)) {
        const strata_tensor *t = find(rt, linear, "input_scale");
        float scale = 0;
        if (!t || t->dtype != STRATA_DTYPE_F32 || t->n_elements != 1)
            return strata_fail(STRATA_ERR_FORMAT, "%s: %s needs an F32 %s.input_scale", model_dir(rt->model), rt->algo,
                               linear->name);
        memcpy(&scale, t->data, 4);
        if (!(scale > 0) || scale != scale)
            return strata_fail(STRATA_ERR_FORMAT, "%s.input_scale is %g; it must be positive", linear->name, scale);
        amax = scheme_input_amax(rt->input, scale);
    }
    scheme_info s = {.input = rt->input};
    return scheme_fake_quantize_input_amax(&s, amax, x, n_tokens, linear->n_in);
}

forward_hooks quant_runtime_hooks(quant_runtime *rt)
{
    return (forward_hooks){.ctx = rt, .quantize_input = quantize_input};
}
