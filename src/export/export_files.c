/*
 * export_files.c — the files around the shards (see export.h): config.json with
 * quantization_config, hf_quant_config.json, the fakequant side file of scales, and the
 * tokenizer and generation files copied from the model. Layouts follow what ModelOpt
 * 0.47's export_hf_checkpoint writes (tests/golden/export/, one file per case).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "export/exclude_modules.h"
#include "export/export.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/json_file.h"

#define MAX_CONFIG_BYTES (16ull << 20)
#define MAX_COPY_BYTES (1ull << 30)

/* The unquantized modules as ModelOpt lists them (exclude_modules.h). */
static sjson *exclude_list(const exporter *e)
{
    return exclude_modules_list(strata_model_arch(e->model), e->exclude, e->n_exclude);
}

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

static sjson *hf_quant_config(const exporter *e)
{
    const scheme_info *s = e->scheme;
    bool ok = true;
    sjson *root = sjson_new_object(), *q = sjson_new_object();
    sjson_put(&ok, root, "producer", producer());
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

/* config.json["quantization_config"], as ModelOpt writes it. */
static sjson *quantization_config(const exporter *e)
{
    const scheme_info *s = e->scheme;
    bool ok = true;
    sjson *qc = sjson_new_object();
    if (s->config_groups_bits) {
        sjson *groups = sjson_new_object(), *g0 = sjson_new_object(), *targets = sjson_new_array();
        sjson_push(&ok, targets, sjson_new_string("Linear"));
        if (s->input != INPUT_NONE)
            sjson_put(&ok, g0, "input_activations", float_quant(s->config_groups_bits, s->config_group_size));
        sjson_put(&ok, g0, "weights", float_quant(s->config_groups_bits, s->config_group_size));
        sjson_put(&ok, g0, "targets", targets);
        sjson_put(&ok, groups, "group_0", g0);
        sjson_put(&ok, qc, "config_groups", groups);
    }
    sjson_put(&ok, qc, "ignore", exclude_list(e));
    sjson_put(&ok, qc, "quant_algo", sjson_new_string(s->modelopt_algo));
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
    if (status == STRATA_OK && e->format == STRATA_EXPORT_MODELOPT &&
        !sjson_set(config, "quantization_config", quantization_config(e)))
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
    for (int i = 0; status == STRATA_OK && i < n_layers; i++) {
        for (size_t l = 0; status == STRATA_OK && l < layers[i].layer->n_linears; l++) {
            const linear_calib *c = &layers[i].linears[l];
            if (!c->quantized) continue;
            char name[600];
            snprintf(name, sizeof name, "%s.weight_amax", c->desc->name);
            status = strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &c->weight_amax, 4);
            if (status == STRATA_OK && input_has_static_scale(e->scheme->input)) {
                float scale = scheme_input_scale(e->scheme, c->input_amax);
                snprintf(name, sizeof name, "%s.input_scale", c->desc->name);
                status = strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &scale, 4);
            }
            bool kv = c->desc->role == STRATA_LINEAR_K || c->desc->role == STRATA_LINEAR_V;
            if (status == STRATA_OK && kv && e->kv_cache) {
                float scale = strata_fp8_kv_scale(c->output_amax);
                export_kv_scale_name(c->desc, name, sizeof name);
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
