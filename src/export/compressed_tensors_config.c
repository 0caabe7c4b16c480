/*
 * compressed_tensors_config.c — config.json's quantization_config of a compressed-tensors
 * checkpoint (see compressed_tensors_config.h), as llm-compressor 0.14 with
 * compressed-tensors 0.19 saves it (tests/golden/e2e-ct/, tools/gen_golden_ct.py).
 *
 * Every key the library writes is written, nulls included, so that a reader comparing with
 * its own output (or validating with pydantic) sees the same object. One config group per
 * scheme: group_0 targets "Linear" when every quantized linear takes one scheme, else each
 * group lists its modules and the format is "mixed-precision".
 */
#include "export/compressed_tensors_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant/weight_layout.h"

/* The compressed-tensors version whose output strata's reproduces. */
#define COMPRESSED_TENSORS_VERSION "0.19.0"

/* One QuantizationArgs. */
typedef struct quant_args {
    int num_bits;
    const char *type;        /* "int", "float" */
    const char *strategy;    /* "tensor", "channel", "group", "block", "tensor_group", "token" */
    int64_t group_size;      /* 0: null */
    bool block_128;          /* block_structure [128, 128] */
    bool symmetric;
    const char *dynamic;     /* "false", "true", "local" */
    const char *observer;    /* NULL: null */
    const char *scale_dtype; /* NULL: null */
    const char *zp_dtype;    /* NULL: null */
} quant_args;

static quant_args weight_args(strata_format format)
{
    quant_args a = {.symmetric = true, .dynamic = "false", .observer = "memoryless_minmax"};
    switch (format) {
    case STRATA_FORMAT_FP8_TENSOR: a.num_bits = 8, a.type = "float", a.strategy = "tensor"; break;
    case STRATA_FORMAT_FP8_CHANNEL: a.num_bits = 8, a.type = "float", a.strategy = "channel"; break;
    case STRATA_FORMAT_FP8_BLOCK: a.num_bits = 8, a.type = "float", a.strategy = "block", a.block_128 = true; break;
    case STRATA_FORMAT_NVFP4:
        a.num_bits = 4, a.type = "float", a.strategy = "tensor_group", a.group_size = 16;
        a.scale_dtype = "torch.float8_e4m3fn";
        break;
    case STRATA_FORMAT_MXFP4:
        a.num_bits = 4, a.type = "float", a.strategy = "group", a.group_size = 32, a.scale_dtype = "torch.uint8";
        break;
    case STRATA_FORMAT_MXFP8:
        a.num_bits = 8, a.type = "float", a.strategy = "group", a.group_size = 32, a.scale_dtype = "torch.uint8";
        break;
    case STRATA_FORMAT_INT8_CHANNEL: a.num_bits = 8, a.type = "int", a.strategy = "channel"; break;
    case STRATA_FORMAT_INT4_GROUP: a.num_bits = 4, a.type = "int", a.strategy = "group", a.group_size = 128; break;
    case STRATA_FORMAT_INT4_GROUP_ASYM:
        a.num_bits = 4, a.type = "int", a.strategy = "group", a.group_size = 128, a.symmetric = false;
        a.zp_dtype = "torch.int8";
        break;
    case STRATA_FORMAT_COUNT: break;
    }
    return a;
}

/* The scheme's input_activations; false when it leaves inputs unquantized. */
static bool input_args(input_quant input, quant_args *a)
{
    *a = (quant_args){.symmetric = true, .dynamic = "true"};
    switch (input) {
    case INPUT_NONE: return false;
    case INPUT_FP8_STATIC:
        a->num_bits = 8, a->type = "float", a->strategy = "tensor", a->dynamic = "false";
        a->observer = "static_minmax";
        return true;
    case INPUT_FP8_PER_TOKEN: a->num_bits = 8, a->type = "float", a->strategy = "token"; return true;
    case INPUT_NVFP4:
        a->num_bits = 4, a->type = "float", a->strategy = "tensor_group", a->group_size = 16, a->dynamic = "local";
        a->observer = "static_minmax", a->scale_dtype = "torch.float8_e4m3fn";
        return true;
    case INPUT_MXFP4:
        a->num_bits = 4, a->type = "float", a->strategy = "group", a->group_size = 32, a->scale_dtype = "torch.uint8";
        return true;
    case INPUT_INT8_PER_TOKEN: a->num_bits = 8, a->type = "int", a->strategy = "token"; return true;
    }
    return false;
}

static sjson *string_or_null(const char *s) { return s ? sjson_new_string(s) : sjson_new_null(); }

/* The value built with sjson_put / sjson_push, or NULL (freed) when any step failed. */
static sjson *built(sjson *value, bool ok)
{
    if (ok) return value;
    sjson_free(value);
    return NULL;
}

static sjson *args_json(const quant_args *a)
{
    bool ok = true;
    sjson *j = sjson_new_object();
    sjson_put(&ok, j, "actorder", sjson_new_null());
    sjson *block = a->block_128 ? sjson_new_array() : sjson_new_null();
    if (a->block_128) {
        sjson_push(&ok, block, sjson_new_int(128));
        sjson_push(&ok, block, sjson_new_int(128));
    }
    sjson_put(&ok, j, "block_structure", block);
    sjson_put(&ok, j, "dynamic",
              strcmp(a->dynamic, "local") == 0 ? sjson_new_string("local") : sjson_new_bool(strcmp(a->dynamic, "true") == 0));
    sjson_put(&ok, j, "group_size", a->group_size ? sjson_new_int(a->group_size) : sjson_new_null());
    sjson_put(&ok, j, "num_bits", sjson_new_int(a->num_bits));
    sjson_put(&ok, j, "observer", string_or_null(a->observer));
    sjson_put(&ok, j, "observer_kwargs", sjson_new_object());
    sjson_put(&ok, j, "scale_dtype", string_or_null(a->scale_dtype));
    sjson_put(&ok, j, "strategy", sjson_new_string(a->strategy));
    sjson_put(&ok, j, "symmetric", sjson_new_bool(a->symmetric));
    sjson_put(&ok, j, "type", sjson_new_string(a->type));
    sjson_put(&ok, j, "zp_dtype", string_or_null(a->zp_dtype));
    return built(j, ok);
}

const char *compressed_tensors_format_name(const scheme_info *s)
{
    const weight_layout *layout = weight_layout_compressed_tensors(s->weight_format, s->input != INPUT_NONE);
    return layout ? layout->name : NULL;
}

/* One config group: the scheme's weights and inputs, its format, and its targets ("Linear",
 * or the names of its linears when schemes are mixed). */
static sjson *config_group(const quant_recipe *recipe, const scheme_info *s, bool by_name)
{
    bool ok = true;
    sjson *g = sjson_new_object(), *targets = sjson_new_array();
    sjson_put(&ok, g, "format", string_or_null(compressed_tensors_format_name(s)));
    quant_args in;
    sjson_put(&ok, g, "input_activations", input_args(s->input, &in) ? args_json(&in) : sjson_new_null());
    sjson_put(&ok, g, "output_activations", sjson_new_null());
    const strata_arch *a = recipe->arch;
    if (!by_name) sjson_push(&ok, targets, sjson_new_string("Linear"));
    for (int i = 0; by_name && i < a->n_layers; i++)
        for (size_t k = 0; k < a->layers[i].n_linears; k++)
            if (recipe_linear_scheme(recipe, &a->layers[i].linears[k]) == s)
                sjson_push(&ok, targets, sjson_new_string(a->layers[i].linears[k].name));
    sjson_put(&ok, g, "targets", targets);
    quant_args w = weight_args(s->weight_format);
    sjson_put(&ok, g, "weights", args_json(&w));
    return built(g, ok);
}

/* The linears left unquantized (routers, shared-expert gates, --exclude) in model order,
 * then lm_head: the Linear modules llm-compressor's ignore matched, as it lists them. */
static sjson *ignore_list(const quant_recipe *recipe)
{
    bool ok = true;
    sjson *list = sjson_new_array();
    const strata_arch *a = recipe->arch;
    for (int i = 0; i < a->n_layers; i++)
        for (size_t k = 0; k < a->layers[i].n_linears; k++)
            if (!recipe_linear_scheme(recipe, &a->layers[i].linears[k]))
                sjson_push(&ok, list, sjson_new_string(a->layers[i].linears[k].name));
    sjson_push(&ok, list, sjson_new_string("lm_head"));
    return built(list, ok);
}

sjson *compressed_tensors_quantization_config(const quant_recipe *recipe, bool kv_cache)
{
    const scheme_info *used[STRATA_SCHEME_COUNT];
    int n = recipe_schemes_used(recipe, used);
    bool ok = true;
    sjson *qc = sjson_new_object(), *groups = sjson_new_object();
    for (int i = 0; i < n; i++) {
        char key[32];
        snprintf(key, sizeof key, "group_%d", i);
        sjson_put(&ok, groups, key, config_group(recipe, used[i], n > 1));
    }
    sjson_put(&ok, qc, "config_groups", groups);
    sjson_put(&ok, qc, "format",
              n > 1 ? sjson_new_string("mixed-precision") : string_or_null(n ? compressed_tensors_format_name(used[0]) : "dense"));
    sjson_put(&ok, qc, "global_compression_ratio", sjson_new_null());
    sjson_put(&ok, qc, "ignore", ignore_list(recipe));
    quant_args kv = {.num_bits = 8, .type = "float", .strategy = "tensor", .symmetric = true, .dynamic = "false"};
    sjson_put(&ok, qc, "kv_cache_scheme", kv_cache ? args_json(&kv) : sjson_new_null());
    sjson_put(&ok, qc, "quant_method", sjson_new_string("compressed-tensors"));
    sjson_put(&ok, qc, "quantization_status", sjson_new_string("compressed"));
    sjson_put(&ok, qc, "sparsity_config", sjson_new_object());
    sjson_put(&ok, qc, "transform_config", sjson_new_object());
    sjson_put(&ok, qc, "version", sjson_new_string(COMPRESSED_TENSORS_VERSION));
    return built(qc, ok);
}
