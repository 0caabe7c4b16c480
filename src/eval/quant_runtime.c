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
#include "io/json.h"
#include "model/model_internal.h"

/* How a checkpoint's activations are quantized, from its quant_algo or strata's algo label
 * (scheme.c's table). */
static input_quant input_of_algo(const char *algo)
{
    const scheme_info *s = scheme_from_algo_label(algo);
    return s ? s->input : INPUT_NONE;
}

/* The input quantization one config group's input_activations describe (NULL or null:
 * none); false when strata has no such kind. */
static bool input_of_args(const sjson *args, input_quant *out)
{
    *out = INPUT_NONE;
    if (!args || sjson_is_null(args)) return true;
    int64_t bits = 0, group = 0;
    const char *type = sjson_as_string(sjson_get(args, "type")), *strategy = sjson_as_string(sjson_get(args, "strategy"));
    sjson_as_int64(sjson_get(args, "num_bits"), &bits);
    sjson_as_int64(sjson_get(args, "group_size"), &group);
    bool dynamic = false, local = false;
    const sjson *d = sjson_get(args, "dynamic");
    if (!sjson_as_bool(d, &dynamic)) local = sjson_as_string(d) && strcmp(sjson_as_string(d), "local") == 0;
    if (!type || !strategy) return false;
    bool is_float = strcmp(type, "float") == 0, is_int = strcmp(type, "int") == 0;
    if (is_float && bits == 8 && strcmp(strategy, "tensor") == 0 && !dynamic && !local) *out = INPUT_FP8_STATIC;
    else if (is_float && bits == 8 && strcmp(strategy, "token") == 0 && dynamic) *out = INPUT_FP8_PER_TOKEN;
    else if (is_float && bits == 4 && strcmp(strategy, "tensor_group") == 0 && group == 16 && local) *out = INPUT_NVFP4;
    else if (is_float && bits == 4 && strcmp(strategy, "group") == 0 && group == 32 && dynamic) *out = INPUT_MXFP4;
    else if (is_int && bits == 8 && strcmp(strategy, "token") == 0 && dynamic) *out = INPUT_INT8_PER_TOKEN;
    else return false;
    return true;
}

/* A mixed checkpoint's module gets its own kind (keys borrowed from rt->config). */
static strata_status name_module(quant_runtime *rt, const char *module, input_quant kind)
{
    if (!strmap_insert(&rt->per_module, module, (size_t)kind, NULL, NULL))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

/* compressed-tensors: each config group's input_activations, for the group's targets
 * ("Linear": every linear no other group names). */
static strata_status compressed_tensors_inputs(quant_runtime *rt)
{
    const sjson *groups = sjson_get(rt->config, "config_groups");
    strata_status status = STRATA_OK;
    for (void *it = sjson_is_object(groups) ? sjson_iter(groups) : NULL; it && status == STRATA_OK;
         it = sjson_iter_next(groups, it)) {
        const sjson *group = sjson_iter_value(it), *args = sjson_get(group, "input_activations");
        const sjson *targets = sjson_get(group, "targets");
        input_quant kind;
        if (!input_of_args(args, &kind)) {
            char *text = sjson_dump(args, 0);
            status = strata_fail(STRATA_ERR_UNSUPPORTED, "%s/config.json: config group %s quantizes inputs as %s, which "
                                 "strata eval does not apply", model_dir(rt->model), sjson_iter_key(it), text ? text : "?");
            free(text);
        }
        for (size_t t = 0; status == STRATA_OK && t < sjson_array_size(targets); t++) {
            const char *target = sjson_as_string(sjson_array_at(targets, t));
            if (!target) continue;
            if (strcmp(target, "Linear") == 0) rt->input = kind;
            else status = name_module(rt, target, kind);
        }
    }
    return status;
}

/* ModelOpt MIXED_PRECISION: quantized_layers {module: {quant_algo}}, a routed expert's
 * under its experts module. */
static strata_status modelopt_mixed_inputs(quant_runtime *rt)
{
    const sjson *layers = sjson_get(rt->config, "quantized_layers");
    strata_status status = STRATA_OK;
    for (void *it = sjson_is_object(layers) ? sjson_iter(layers) : NULL; it && status == STRATA_OK;
         it = sjson_iter_next(layers, it))
        status = name_module(rt, sjson_iter_key(it),
                             input_of_algo(sjson_as_string(sjson_get(sjson_iter_value(it), "quant_algo"))));
    return status;
}

/* The kind a linear's inputs take: its own module's, its experts module's, or the default. */
static input_quant input_of_linear(const quant_runtime *rt, const strata_linear *linear)
{
    size_t kind;
    if (strmap_find(&rt->per_module, linear->name, &kind)) return (input_quant)kind;
    const char *experts = linear->expert >= 0 ? strstr(linear->name, ".experts.") : NULL;
    if (experts && strmap_find_n(&rt->per_module, linear->name, (size_t)(experts - linear->name) + strlen(".experts"),
                                 &kind))
        return (input_quant)kind;
    return rt->input;
}

static strata_status parse_config(quant_runtime *rt, const char *json, const char *where)
{
    rt->config = json ? sjson_parse(json, strlen(json), false, NULL) : NULL;
    if (json && !rt->config) return strata_fail(STRATA_ERR_FORMAT, "%s: unreadable quantization settings", where);
    return STRATA_OK;
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
        rt->input = input_of_algo(rt->algo);
        status = parse_config(rt, info->json, model_dir(model));
        if (status == STRATA_OK && rt->algo && strcmp(rt->algo, "MIXED_PRECISION") == 0) status = modelopt_mixed_inputs(rt);
    } else if (info && info->method && strcmp(info->method, "compressed-tensors") == 0) {
        rt->algo = info->algo;
        rt->compressed_tensors = true;
        status = parse_config(rt, info->json, model_dir(model));
        if (status == STRATA_OK) status = compressed_tensors_inputs(rt);
    } else if (!info && path_exists(side)) {
        status = strata_safetensors_open(side, &rt->side);
        if (status == STRATA_OK) rt->algo = strata_safetensors_metadata(rt->side, "strata.quant_algo");
        if (status == STRATA_OK && !rt->algo)
            status = strata_fail(STRATA_ERR_FORMAT, "%s: no strata.quant_algo metadata", side);
        const char *convention = status == STRATA_OK ? strata_safetensors_metadata(rt->side, "strata.convention") : NULL;
        rt->compressed_tensors = convention && strcmp(convention, "compressed-tensors") == 0;
        rt->input = input_of_algo(rt->algo);
        /* the linears whose scheme differs from the run's (strata.quantized_layers {module: algo}) */
        if (status == STRATA_OK)
            status = parse_config(rt, strata_safetensors_metadata(rt->side, "strata.quantized_layers"), side);
        for (void *it = rt->config ? sjson_iter(rt->config) : NULL; it && status == STRATA_OK;
             it = sjson_iter_next(rt->config, it))
            status = name_module(rt, sjson_iter_key(it), input_of_algo(sjson_as_string(sjson_iter_value(it))));
    }
    free(side);
    if (status != STRATA_OK) {
        quant_runtime_close(rt);
        return status;
    }
    /* AWQ's pre_quant_scale tensors scale inputs even without quantizing them (W4A16_AWQ). */
    const strata_safetensors *st = strata_model_tensors(model);
    for (size_t i = 0; status == STRATA_OK && i < strata_safetensors_count(st) && !rt->pre_quant_scales; i++) {
        const char *name = strata_safetensors_at(st, i)->name;
        size_t n = strlen(name), suffix = strlen(".pre_quant_scale");
        rt->pre_quant_scales = n > suffix && strcmp(name + n - suffix, ".pre_quant_scale") == 0;
    }
    *active = rt->input != INPUT_NONE || rt->per_module.count > 0 || rt->pre_quant_scales;
    if (*active) strata_log(STRATA_LOG_INFO, "eval: activations quantized as %s prescribes", rt->algo);
    return STRATA_OK;
}

void quant_runtime_close(quant_runtime *rt)
{
    strata_safetensors_close(rt->side);
    strmap_free(&rt->per_module);
    sjson_free(rt->config);
    *rt = (quant_runtime){0};
}

static const strata_tensor *find(const quant_runtime *rt, const strata_linear *linear, const char *suffix)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", linear->name, suffix);
    return strata_safetensors_find(rt->side ? rt->side : strata_model_tensors(rt->model), name);
}

/* x times the linear's pre_quant_scale (AWQ's 1/s of each input channel), as ModelOpt's
 * loaders apply it before the product; nothing when it has none. */
static strata_status apply_pre_quant_scale(const quant_runtime *rt, const strata_linear *linear, float *x,
                                           int64_t n_tokens)
{
    const strata_tensor *t = rt->pre_quant_scales ? find(rt, linear, "pre_quant_scale") : NULL;
    if (!t) return STRATA_OK;
    int64_t K = linear->n_in;
    if (!strata_dtype_is_float(t->dtype) || t->n_elements != K || strata_dtype_size(t->dtype) > 4 ||
        t->dtype == STRATA_DTYPE_F8_E4M3)
        return strata_fail(STRATA_ERR_FORMAT, "%s: %s.pre_quant_scale must hold %lld values (F32, BF16 or F16)",
                           model_dir(rt->model), linear->name, (long long)K);
    float *scale = malloc((size_t)K * sizeof *scale);
    if (!scale) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = strata_convert_to_f32(t->dtype, t->data, (size_t)K, scale);
    for (int64_t i = 0; status == STRATA_OK && i < n_tokens; i++)
        for (int64_t k = 0; k < K; k++) x[i * K + k] *= scale[k];
    free(scale);
    return status;
}

static strata_status quantize_input(void *ctx, const strata_linear *linear, float *x, int64_t n_tokens)
{
    quant_runtime *rt = ctx;
    if (!find(rt, linear, rt->side ? "weight_amax" : "weight_scale") || n_tokens == 0) return STRATA_OK;
    strata_status scaled = apply_pre_quant_scale(rt, linear, x, n_tokens);
    if (scaled != STRATA_OK) return scaled;
    input_quant kind = input_of_linear(rt, linear);
    float amax = 0;
    if (input_has_static_scale(kind) && rt->compressed_tensors) {
        const char *suffix = kind == INPUT_NVFP4 ? "input_global_scale" : "input_scale";
        const strata_tensor *t = find(rt, linear, suffix);
        float stored = 0;
        if (!t || !strata_dtype_is_float(t->dtype) || t->n_elements != 1 || t->dtype == STRATA_DTYPE_F8_E4M3 ||
            strata_dtype_size(t->dtype) > 4)
            return strata_fail(STRATA_ERR_FORMAT, "%s: %s inputs need a one-element %s.%s (F32, BF16 or F16)",
                               model_dir(rt->model), rt->algo, linear->name, suffix);
        strata_convert_to_f32(t->dtype, t->data, 1, &stored);
        if (!(stored > 0) || stored > 3.0e38f)
            return strata_fail(STRATA_ERR_FORMAT, "%s.%s is %g; it must be positive and finite", linear->name, suffix,
                               (double)stored);
        amax = scheme_input_amax_compressed_tensors(kind, stored);
    } else if (input_has_static_scale(kind)) {
        const strata_tensor *t = find(rt, linear, "input_scale");
        float scale = 0;
        if (!t || t->dtype != STRATA_DTYPE_F32 || t->n_elements != 1)
            return strata_fail(STRATA_ERR_FORMAT, "%s: %s needs an F32 %s.input_scale", model_dir(rt->model), rt->algo,
                               linear->name);
        memcpy(&scale, t->data, 4);
        if (!(scale > 0) || scale != scale)
            return strata_fail(STRATA_ERR_FORMAT, "%s.input_scale is %g; it must be positive", linear->name, scale);
        amax = scheme_input_amax(kind, scale);
    }
    scheme_info s = {.input = kind};
    return scheme_fake_quantize_input_amax(&s, amax, x, n_tokens, linear->n_in);
}

forward_hooks quant_runtime_hooks(quant_runtime *rt)
{
    return (forward_hooks){.ctx = rt, .quantize_input = quantize_input};
}
