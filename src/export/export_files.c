/*
 * export_files.c — the files around the shards (see export.h): config.json with
 * quantization_config, hf_quant_config.json, the fakequant side file of scales, and the
 * tokenizer and generation files copied from the model. Layouts follow what ModelOpt
 * 0.47's export_hf_checkpoint writes (tests/golden/export/, one file per case); a
 * compressed-tensors checkpoint's quantization_config is compressed_tensors_config.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "export/compressed_tensors_config.h"
#include "export/exclude_modules.h"
#include "forward/layer_weights.h"
#include "export/export.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/json_file.h"

#define MAX_CONFIG_BYTES (16ull << 20)
#define MAX_COPY_BYTES (1ull << 30)

/* The unquantized modules as ModelOpt lists them (exclude_modules.h). */
static sjson *exclude_list(const exporter *e)
{
    return exclude_modules_list(&e->recipe);
}

static int by_string(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* The value built with sjson_put / sjson_push, or NULL (freed) when any step failed. */
static sjson *built(sjson *value, bool ok)
{
    if (ok) return value;
    sjson_free(value);
    return NULL;
}

static sjson *producer(void)
{
    bool ok = true;
    sjson *p = sjson_new_object();
    sjson_put(&ok, p, "name", sjson_new_string("strata"));
    sjson_put(&ok, p, "version", sjson_new_string(strata_version()));
    return built(p, ok);
}

static sjson *float_quant(int bits, int64_t group)
{
    bool ok = true;
    sjson *q = sjson_new_object();
    sjson_put(&ok, q, "dynamic", sjson_new_bool(false));
    sjson_put(&ok, q, "num_bits", sjson_new_int(bits));
    sjson_put(&ok, q, "type", sjson_new_string("float"));
    if (group) sjson_put(&ok, q, "group_size", sjson_new_int(group));
    return built(q, ok);
}

/* ModelOpt writes MIXED_PRECISION when its linears use more than one format. */
static bool mixed_precision(const exporter *e)
{
    const scheme_info *used[STRATA_SCHEME_COUNT];
    return recipe_schemes_used(&e->recipe, used) > 1;
}

/* One layer's entry of quantized_layers (quant_utils.py's process_layer_quant_config). */
static sjson *layer_quant_config(const scheme_info *s)
{
    bool ok = true;
    sjson *q = sjson_new_object();
    sjson_put(&ok, q, "quant_algo", sjson_new_string(s->modelopt_algo));
    if (s->config_group_size) sjson_put(&ok, q, "group_size", sjson_new_int(s->config_group_size));
    if (s->awq_flags) {
        sjson_put(&ok, q, "has_zero_point", sjson_new_bool(false));
        sjson_put(&ok, q, "pre_quant_scale", sjson_new_bool(true));
    }
    return built(q, ok);
}

/* The module a mixed-precision config names for a linear: the linear itself, or for a
 * routed expert its layer's experts module ("model.layers.1.mlp.experts"), as ModelOpt
 * names transformers v5's fused experts and vLLM's FusedMoE looks its prefix up. */
static void config_module_name(const strata_linear *l, char *out, size_t size)
{
    const char *experts = l->expert >= 0 ? strstr(l->name, ".experts.") : NULL;
    if (experts) snprintf(out, size, "%.*s", (int)(experts - l->name + strlen(".experts")), l->name);
    else snprintf(out, size, "%s", l->name);
}

/* {module: its layer config} for every quantized module, in model order. */
static sjson *quantized_layers(const exporter *e)
{
    bool ok = true;
    sjson *map = sjson_new_object();
    const strata_arch *a = e->recipe.arch;
    for (int i = 0; i < a->n_layers; i++)
        for (size_t k = 0; k < a->layers[i].n_linears; k++) {
            const strata_linear *l = &a->layers[i].linears[k];
            const scheme_info *s = recipe_linear_scheme(&e->recipe, l);
            char name[512];
            config_module_name(l, name, sizeof name);
            if (s && !sjson_get(map, name)) sjson_put(&ok, map, name, layer_quant_config(s));
        }
    return built(map, ok);
}

static sjson *hf_quant_config(const exporter *e)
{
    const scheme_info *s = e->scheme;
    bool ok = true;
    sjson *root = sjson_new_object(), *q = sjson_new_object();
    sjson_put(&ok, root, "producer", producer());
    if (mixed_precision(e)) {
        /* Per layer instead of exclude_modules, as ModelOpt's mixed-format export. */
        sjson_put(&ok, q, "quant_algo", sjson_new_string("MIXED_PRECISION"));
        sjson_put(&ok, q, "kv_cache_quant_algo", e->kv_cache ? sjson_new_string("FP8") : sjson_new_null());
        sjson_put(&ok, q, "quantized_layers", quantized_layers(e));
        sjson_put(&ok, root, "quantization", q);
        return built(root, ok);
    }
    sjson_put(&ok, q, "quant_algo", sjson_new_string(s->modelopt_algo));
    sjson_put(&ok, q, "kv_cache_quant_algo", e->kv_cache ? sjson_new_string("FP8") : sjson_new_null());
    if (s->config_group_size) sjson_put(&ok, q, "group_size", sjson_new_int(s->config_group_size));
    /* ModelOpt's INT4 AWQ export says pre_quant_scale: true even when (as with max) it writes
     * no pre_quant_scale tensors; loaders treat a missing one as ones. */
    if (s->awq_flags) {
        sjson_put(&ok, q, "has_zero_point", sjson_new_bool(false));
        sjson_put(&ok, q, "pre_quant_scale", sjson_new_bool(true));
    }
    sjson_put(&ok, q, "exclude_modules", exclude_list(e));
    sjson_put(&ok, root, "quantization", q);
    return built(root, ok);
}

static sjson *float_or_int_quant(int bits, bool is_int, int64_t group, bool channel)
{
    bool ok = true;
    sjson *q = sjson_new_object();
    sjson_put(&ok, q, "dynamic", sjson_new_bool(false));
    sjson_put(&ok, q, "num_bits", sjson_new_int(bits));
    sjson_put(&ok, q, "type", sjson_new_string(is_int ? "int" : "float"));
    if (group) sjson_put(&ok, q, "group_size", sjson_new_int(group));
    if (channel) sjson_put(&ok, q, "strategy", sjson_new_string("channel"));
    return built(q, ok);
}

/* A MIXED_PRECISION config group: the scheme's quantization and its layers, sorted. */
static sjson *mixed_group(const exporter *e, const scheme_info *s)
{
    bool ok = true;
    sjson *g = sjson_new_object(), *targets = sjson_new_array();
    if (s->mixed_group.input_bits)
        sjson_put(&ok, g, "input_activations",
                  float_or_int_quant(s->mixed_group.input_bits, false,
                                     s->input == INPUT_NVFP4 ? s->config_group_size : 0, false));
    sjson_put(&ok, g, "weights",
              float_or_int_quant(s->mixed_group.weight_bits, s->mixed_group.int_weights, s->config_group_size,
                                 s->mixed_group.channel));
    /* the modules of quantized_layers in this group, sorted by bytes as Python's sorted() */
    sjson *layers = quantized_layers(e);
    size_t n = 0;
    const char **names = layers ? malloc((sjson_object_size(layers) + 1) * sizeof *names) : NULL;
    ok = ok && names;
    for (void *it = names ? sjson_iter(layers) : NULL; it; it = sjson_iter_next(layers, it)) {
        const scheme_info *of = scheme_from_modelopt_algo(sjson_as_string(sjson_get(sjson_iter_value(it), "quant_algo")));
        if (of == s) names[n++] = sjson_iter_key(it);
    }
    if (names) qsort(names, n, sizeof *names, by_string);
    for (size_t i = 0; names && i < n; i++) sjson_push(&ok, targets, sjson_new_string(names[i]));
    free(names);
    sjson_free(layers);
    sjson_put(&ok, g, "targets", targets);
    return built(g, ok);
}

/* config.json["quantization_config"], as ModelOpt writes it. */
static sjson *quantization_config(const exporter *e)
{
    const scheme_info *s = e->scheme;
    bool ok = true;
    sjson *qc = sjson_new_object();
    bool mixed = mixed_precision(e);
    if (mixed) {
        const scheme_info *used[STRATA_SCHEME_COUNT];
        int n_used = recipe_schemes_used(&e->recipe, used);
        sjson *groups = sjson_new_object();
        for (int i = 0; i < n_used; i++) {
            char key[32];
            snprintf(key, sizeof key, "group_%d", i);
            sjson_put(&ok, groups, key, mixed_group(e, used[i]));
        }
        sjson_put(&ok, qc, "config_groups", groups);
        sjson_put(&ok, qc, "quantized_layers", quantized_layers(e));
        sjson_put(&ok, qc, "ignore", sjson_new_array());
    } else if (s->config_groups_bits) {
        sjson *groups = sjson_new_object(), *g0 = sjson_new_object(), *targets = sjson_new_array();
        sjson_push(&ok, targets, sjson_new_string("Linear"));
        if (s->input != INPUT_NONE)
            sjson_put(&ok, g0, "input_activations", float_quant(s->config_groups_bits, s->config_group_size));
        sjson_put(&ok, g0, "weights", float_quant(s->config_groups_bits, s->config_group_size));
        sjson_put(&ok, g0, "targets", targets);
        sjson_put(&ok, groups, "group_0", g0);
        sjson_put(&ok, qc, "config_groups", groups);
    }
    if (!mixed) sjson_put(&ok, qc, "ignore", exclude_list(e));
    sjson_put(&ok, qc, "quant_algo", sjson_new_string(mixed ? "MIXED_PRECISION" : s->modelopt_algo));
    if (e->kv_cache) sjson_put(&ok, qc, "kv_cache_scheme", float_quant(8, 0));
    sjson_put(&ok, qc, "producer", producer());
    sjson_put(&ok, qc, "quant_method", sjson_new_string("modelopt"));
    return built(qc, ok);
}

static strata_status write_json(const char *dir, const char *name, const sjson *value)
{
    char *path = path_join(dir, name);
    strata_status status = path ? json_file_write(path, value, 2) : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    free(path);
    return status;
}

static strata_status write_config(const exporter *e)
{
    char *path = path_join(e->model_dir, "config.json");
    sjson *config = NULL;
    strata_status status = path ? json_file_read(path, MAX_CONFIG_BYTES, false, &config)
                                : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK && e->format != STRATA_EXPORT_FAKEQUANT &&
        !sjson_set(config, "quantization_config",
                   e->format == STRATA_EXPORT_COMPRESSED_TENSORS
                       ? compressed_tensors_quantization_config(&e->recipe, e->kv_cache)
                       : quantization_config(e)))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK) status = write_json(e->output_dir, "config.json", config);
    sjson_free(config);
    free(path);
    return status;
}

/* The tokenizer and generation files a loader expects beside the weights. */
static strata_status copy_side_files(const exporter *e)
{
    static const char *const FILES[] = {"tokenizer.json",   "tokenizer_config.json", "special_tokens_map.json",
                                        "tokenizer.model",  "generation_config.json", "chat_template.jinja",
                                        "vocab.json",       "merges.txt"};
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < sizeof FILES / sizeof FILES[0]; i++) {
        char *from = path_join(e->model_dir, FILES[i]), *to = path_join(e->output_dir, FILES[i]), *data = NULL;
        size_t length = 0;
        if (!from || !to) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        else if (path_exists(from)) {
            status = file_read_all(from, MAX_COPY_BYTES, &data, &length);
            if (status == STRATA_OK) status = file_write_atomic(to, data, length);
        }
        free(data);
        free(from);
        free(to);
    }
    return status;
}

/* fakequant of mixed schemes: metadata strata.quantized_layers, {linear: algo label} for the
 * linears whose scheme is not the run's, so an evaluator quantizes their inputs their way. */
static strata_status write_other_schemes(const exporter *e, strata_safetensors_writer *w)
{
    bool ok = true;
    sjson *map = sjson_new_object();
    const strata_arch *a = e->recipe.arch;
    for (int i = 0; i < a->n_layers; i++)
        for (size_t k = 0; k < a->layers[i].n_linears; k++) {
            const strata_linear *l = &a->layers[i].linears[k];
            const scheme_info *s = recipe_linear_scheme(&e->recipe, l);
            if (s && s != e->scheme) sjson_put(&ok, map, l->name, sjson_new_string(s->algo_label));
        }
    char *text = ok ? sjson_dump(map, 0) : NULL;
    sjson_free(map);
    strata_status status = text ? strata_safetensors_writer_set_metadata(w, "strata.quantized_layers", text)
                                : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    free(text);
    return status;
}

/* fakequant: the scalar scales a runtime needs beside the folded bf16 weights. */
static strata_status write_scales_file(const exporter *e, const layer_calib *layers, int n_layers)
{
    strata_writer_params wp = {.dir = e->output_dir, .stem = "quant_scales"};
    strata_safetensors_writer *w = NULL;
    strata_status status = strata_safetensors_writer_create(&wp, &w);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(w, "format", "pt");
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(w, "strata.scheme", e->scheme->name);
    if (status == STRATA_OK)
        status = strata_safetensors_writer_set_metadata(w, "strata.quant_algo", e->scheme->algo_label);
    bool ct = e->convention == STRATA_CONVENTION_COMPRESSED_TENSORS;
    if (status == STRATA_OK && ct) status = strata_safetensors_writer_set_metadata(w, "strata.convention", "compressed-tensors");
    if (status == STRATA_OK && mixed_precision(e)) status = write_other_schemes(e, w);
    for (int i = 0; status == STRATA_OK && i < n_layers; i++) {
        for (size_t l = 0; status == STRATA_OK && l < layers[i].layer->n_linears; l++) {
            const linear_calib *c = &layers[i].linears[l];
            char names[2][512];
            int n_kv = e->kv_cache ? export_kv_scale_names(c->desc, names) : 0;
            float kv_scale = strata_fp8_kv_scale(c->output_amax);
            for (int k = 0; status == STRATA_OK && k < n_kv; k++)
                status = strata_safetensors_writer_add(w, names[k], STRATA_DTYPE_F32, 0, NULL, &kv_scale, 4);
            if (!c->quantized) continue;
            char name[600];
            snprintf(name, sizeof name, "%s.weight_amax", c->desc->name);
            status = strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &c->weight_amax, 4);
            if (status == STRATA_OK && input_has_static_scale(c->scheme->input)) {
                /* compressed-tensors' numerics: its stored value and name (the NVFP4 global
                 * scale is 2688 / amax), kept in F32 */
                float scale = scheme_input_scale_stored(c->scheme, e->convention,
                                                        linear_values_dtype(e->model, c->desc), c->input_amax);
                bool global = ct && c->scheme->input == INPUT_NVFP4;
                snprintf(name, sizeof name, "%s.%s", c->desc->name, global ? "input_global_scale" : "input_scale");
                status = strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &scale, 4);
            }
        }
    }
    if (status == STRATA_OK) status = strata_safetensors_writer_finish(w);
    strata_safetensors_writer_free(w);
    return status;
}

strata_status export_finish(exporter *e, const layer_calib *layers, int n_layers)
{
    strata_status status = write_config(e);
    if (status == STRATA_OK && e->format == STRATA_EXPORT_MODELOPT) {
        sjson *hf = hf_quant_config(e);
        status = hf ? write_json(e->output_dir, "hf_quant_config.json", hf)
                    : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        sjson_free(hf);
    }
    if (status == STRATA_OK && e->format == STRATA_EXPORT_FAKEQUANT) status = write_scales_file(e, layers, n_layers);
    if (status == STRATA_OK) status = copy_side_files(e);
    return status;
}
