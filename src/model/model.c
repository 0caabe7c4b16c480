/*
 * model.c — strata_model: a checkpoint directory opened and checked against its
 * description.
 *
 * Opening reads config.json, builds the description (config.c), finds how the checkpoint
 * stores its experts (probe_layout), lays out the names (layout.c), opens the tensors and
 * checks every expected tensor is present with the right shape. Quantized checkpoints
 * (hf_quant_config.json or config.json["quantization_config"]) are accepted with packed
 * weight shapes, and their scale tensors are attributed to the linears they belong to;
 * anything else left over is reported as unexpected, not refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strmap.h"
#include "io/fsutil.h"
#include "io/output_dir.h"
#include "io/json.h"
#include "io/json_file.h"
#include "model/desc.h"
#include "model/family.h"
#include "model/model_internal.h"

#define MAX_CONFIG_BYTES (16ull << 20)

struct strata_model {
    char *dir;
    model_desc desc;
    strata_safetensors *tensors;
    sjson *config;               /* config.json */
    sjson *hf_quant;             /* hf_quant_config.json, or NULL */
    bool quantized;
    strata_quant_info quant;     /* strings point into config / hf_quant / owned below */
    char *quant_json;
    char *quant_producer;
    char *quant_kv;
    const char **excluded;
    const char **unexpected;     /* (n_unexpected) names borrowed from tensors */
    size_t n_unexpected;
    const char **mtp;            /* (n_mtp) tensors of multi-token-prediction layers, borrowed */
    size_t n_mtp;
    size_t n_quant_tensors;
};

/* Tensor suffixes that quantized checkpoints attach to a linear module. */
static const char *const QUANT_SUFFIXES[] = {
    "weight_scale", "weight_scale_2", "input_scale", "weight_packed", "weight_global_scale",
    "input_global_scale", "weight_shape", "weight_zero_point", "weight_g_idx", "pre_quant_scale",
    "weight_scale_inv", "k_scale", "v_scale", "output_scale",
};

void strata_model_close(strata_model *model)
{
    if (!model) return;
    desc_free(&model->desc);
    strata_safetensors_close(model->tensors);
    sjson_free(model->config);
    sjson_free(model->hf_quant);
    free(model->quant_json);
    free(model->quant_producer);
    free(model->quant_kv);
    free(model->excluded);
    free(model->unexpected);
    free(model->mtp);
    free(model->dir);
    free(model);
}

static strata_status load_json(const char *path, sjson **out)
{
    return json_file_read(path, MAX_CONFIG_BYTES, true, out);
}

static strata_status collect_strings(const sjson *array, const char ***out, size_t *count)
{
    size_t n = sjson_array_size(array);
    *out = calloc(n ? n : 1, sizeof **out);
    if (!*out) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    *count = 0;
    for (size_t i = 0; i < n; i++) {
        const char *s = sjson_as_string(sjson_array_at(array, i));
        if (s) (*out)[(*count)++] = s;
    }
    return STRATA_OK;
}

static strata_status read_quantization(strata_model *m, const char *dir)
{
    char *path = path_join(dir, "hf_quant_config.json");
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = STRATA_OK;
    strata_quant_info *q = &m->quant;
    const sjson *section = NULL;
    if (path_exists(path)) {
        status = load_json(path, &m->hf_quant);
        free(path);
        if (status != STRATA_OK) return status;
        section = sjson_get(m->hf_quant, "quantization");
        if (!sjson_is_object(section))
            return strata_fail(STRATA_ERR_FORMAT, "%s/hf_quant_config.json: missing \"quantization\" object", dir);
        q->source = "hf_quant_config.json";
        q->method = "modelopt";
        const sjson *producer = sjson_get(m->hf_quant, "producer");
        const char *name = sjson_as_string(sjson_get(producer, "name"));
        const char *version = sjson_as_string(sjson_get(producer, "version"));
        if (name) {
            size_t n = strlen(name) + (version ? strlen(version) : 0) + 2;
            m->quant_producer = malloc(n);
            if (!m->quant_producer) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
            snprintf(m->quant_producer, n, "%s%s%s", name, version ? " " : "", version ? version : "");
            q->producer = m->quant_producer;
        }
    } else {
        free(path);
        section = sjson_get(m->config, "quantization_config");
        if (!section || sjson_is_null(section)) return STRATA_OK;
        if (!sjson_is_object(section))
            return strata_fail(STRATA_ERR_FORMAT, "%s/config.json: \"quantization_config\" must be an object", dir);
        q->source = "config.json";
        q->method = sjson_as_string(sjson_get(section, "quant_method"));
        if (!q->method) q->method = "unknown";
        const char *version = sjson_as_string(sjson_get(section, "version"));
        if (version && strcmp(q->method, "compressed-tensors") == 0) {
            size_t n = strlen(version) + sizeof "compressed-tensors ";
            m->quant_producer = malloc(n);
            if (!m->quant_producer) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
            snprintf(m->quant_producer, n, "compressed-tensors %s", version);
            q->producer = m->quant_producer;
        }
    }
    m->quantized = true;
    q->algo = sjson_as_string(sjson_get(section, "quant_algo"));
    if (!q->algo) q->algo = sjson_as_string(sjson_get(section, "format"));
    q->kv_cache = sjson_as_string(sjson_get(section, "kv_cache_quant_algo"));
    const sjson *kv_scheme = sjson_get(section, "kv_cache_scheme");
    if (!q->kv_cache && sjson_is_object(kv_scheme)) {
        m->quant_kv = sjson_dump(kv_scheme, 0);
        q->kv_cache = m->quant_kv;
    }
    int64_t group = 0;
    if (sjson_as_int64(sjson_get(section, "group_size"), &group) && group > 0 && group < (1 << 30))
        q->group_size = (int)group;
    const sjson *excluded = sjson_get(section, "exclude_modules");
    if (!excluded) excluded = sjson_get(section, "ignore");
    if (!excluded) excluded = sjson_get(section, "modules_to_not_convert");
    status = collect_strings(excluded, &m->excluded, &q->n_excluded);
    if (status != STRATA_OK) return status;
    q->excluded = m->excluded;
    m->quant_json = sjson_dump(section, 0);
    if (!m->quant_json) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    q->json = m->quant_json;
    return STRATA_OK;
}

/* How the checkpoint stores experts: which block name, and whether stacked. */
static void probe_layout(const strata_model *m, const char **block, bool *stacked)
{
    const model_desc *d = &m->desc;
    const family_traits *f = &FAMILIES[d->arch.family];
    *block = f->moe_block ? f->moe_block : "mlp";
    *stacked = false;
    int layer = -1;
    for (int i = 0; i < d->arch.n_layers && layer < 0; i++)
        if (d->moe_layer[i]) layer = i;
    if (layer < 0) return;
    const char *candidates[2] = {*block, "mlp"};
    char name[512];
    for (int c = 0; c < 2; c++) {
        snprintf(name, sizeof name, "model.layers.%d.%s.experts.gate_up_proj", layer, candidates[c]);
        if (strata_safetensors_find(m->tensors, name)) {
            *block = candidates[c];
            *stacked = true;
            return;
        }
        snprintf(name, sizeof name, "model.layers.%d.%s.gate.weight", layer, candidates[c]);
        if (strata_safetensors_find(m->tensors, name)) {
            *block = candidates[c];
            return;
        }
    }
}

static void format_shape(char *buffer, size_t size, int n_dims, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buffer, size, "[");
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (used < size) snprintf(buffer + used, size - used, "]");
}

/* Shapes a quantized export may give a (rows, cols) weight: unchanged, two 4-bit values
 * per byte along either axis, or along the input axis eight (int4) or four (int8) per
 * int32, or two per byte
 * after zero padding to NVFP4's 16-element or MX's 32-element blocks. */
static bool packed_extent_ok(int64_t actual, int64_t logical, bool input_axis)
{
    if (actual == logical || actual == (logical + 1) / 2) return true;
    return input_axis && (actual == (logical + 7) / 8 || actual == (logical + 3) / 4 || actual == (logical + 15) / 16 * 8 ||
                          actual == (logical + 31) / 32 * 16);
}

static bool quantized_shape_ok(const strata_tensor *t, const expected_tensor *e)
{
    if (t->n_dims != e->n_dims) return false;
    for (int d = 0; d < e->n_dims - 2; d++)
        if (t->shape[d] != e->shape[d]) return false;
    int r = e->n_dims - 2, c = e->n_dims - 1;
    return packed_extent_ok(t->shape[r], e->shape[r], false) && packed_extent_ok(t->shape[c], e->shape[c], true);
}

static bool shape_equal(const strata_tensor *t, const expected_tensor *e)
{
    if (t->n_dims != e->n_dims) return false;
    for (int d = 0; d < e->n_dims; d++)
        if (t->shape[d] != e->shape[d]) return false;
    return true;
}

static strata_status check_tensor(strata_model *m, const expected_tensor *e, strmap *accounted)
{
    const char *file = strata_safetensors_shard_path(m->tensors, 0);
    bool may_be_quantized = m->quantized && (e->kind == EXPECTED_WEIGHT || e->kind == EXPECTED_STACKED ||
                                             e->kind == EXPECTED_LM_HEAD || e->kind == EXPECTED_EMBEDDING);
    const strata_tensor *t = strata_safetensors_find(m->tensors, e->name);
    char expected_shape[96], actual_shape[96];
    format_shape(expected_shape, sizeof expected_shape, e->n_dims, e->shape);
    if (!t && may_be_quantized) {
        /* compressed-tensors stores packed weights as <module>.weight_packed. */
        char packed[512];
        size_t n = strlen(e->name);
        if (n > 7 && strcmp(e->name + n - 7, ".weight") == 0) {
            snprintf(packed, sizeof packed, "%.*s.weight_packed", (int)(n - 7), e->name);
            t = strata_safetensors_find(m->tensors, packed);
        }
    }
    if (!t)
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor '%s' %s is missing (config.json describes it)", m->dir,
                           e->name, expected_shape);
    file = strata_safetensors_shard_path(m->tensors, t->shard);
    format_shape(actual_shape, sizeof actual_shape, t->n_dims, t->shape);
    bool ok = shape_equal(t, e) || (may_be_quantized && quantized_shape_ok(t, e));
    if (!ok)
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor '%s' has shape %s, but config.json implies %s", file,
                           t->name, actual_shape, expected_shape);
    if (!may_be_quantized && !strata_dtype_is_float(t->dtype))
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor '%s' has dtype %s; expected a floating-point dtype", file,
                           t->name, strata_dtype_name(t->dtype));
    if (!strmap_insert(accounted, t->name, 0, NULL, NULL)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

/* A leftover tensor "<module>.<suffix>" is a quantization tensor when module is a
 * linear (or a self_attn block, for KV-cache scales) and suffix a known scale name. */
static bool is_quant_tensor(const strata_model *m, const strmap *modules, const char *name)
{
    if (!m->quantized) return false;
    const char *dot = strrchr(name, '.');
    if (!dot) return false;
    bool known = false;
    for (size_t i = 0; i < sizeof QUANT_SUFFIXES / sizeof QUANT_SUFFIXES[0]; i++)
        if (strcmp(dot + 1, QUANT_SUFFIXES[i]) == 0) known = true;
    if (!known) return false;
    char module[512];
    size_t n = (size_t)(dot - name);
    if (n >= sizeof module) return false;
    memcpy(module, name, n);
    module[n] = '\0';
    if (strmap_find(modules, module, NULL)) return true;
    /* KV-cache scales: on the attention block, or (latent attention, which has no k_proj or
     * v_proj) on self_attn.k_proj / self_attn.v_proj as ModelOpt names them */
    bool kv = strcmp(dot + 1, "k_scale") == 0 || strcmp(dot + 1, "v_scale") == 0;
    const char *tail = strstr(module, ".self_attn");
    return tail && (strcmp(tail, ".self_attn") == 0 ||
                    (kv && (strcmp(tail, ".self_attn.k_proj") == 0 || strcmp(tail, ".self_attn.v_proj") == 0)));
}

/* model.layers.L.* with n_layers <= L < n_layers + n_mtp_layers. */
static bool is_mtp_tensor(const strata_arch *a, const char *name)
{
    static const char PREFIX[] = "model.layers.";
    if (a->n_mtp_layers == 0 || strncmp(name, PREFIX, sizeof PREFIX - 1) != 0) return false;
    const char *p = name + sizeof PREFIX - 1;
    long layer = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++) layer = layer * 10 + (*p - '0');
    return digits > 0 && *p == '.' && layer >= a->n_layers && layer < (long)a->n_layers + a->n_mtp_layers;
}

static strata_status check_tensors(strata_model *m)
{
    expected_tensor *expected = NULL;
    size_t n_expected = 0;
    strmap accounted = {0}, modules = {0};
    strata_status status = desc_expected(&m->desc, &expected, &n_expected);
    for (size_t i = 0; status == STRATA_OK && i < n_expected; i++) status = check_tensor(m, &expected[i], &accounted);
    if (status != STRATA_OK) goto done;

    /* Module names quantization tensors may hang off. */
    for (size_t i = 0; i < m->desc.n_linears; i++) {
        if (!strmap_insert(&modules, m->desc.linears[i].name, 0, NULL, NULL)) goto oom;
    }
    if (!strmap_insert(&modules, "lm_head", 0, NULL, NULL)) goto oom;
    /* A tied model may still carry a copy of lm_head.weight. */
    if (m->desc.arch.tie_word_embeddings && !strmap_insert(&accounted, "lm_head.weight", 0, NULL, NULL)) goto oom;

    size_t n = strata_safetensors_count(m->tensors);
    m->unexpected = calloc(n ? n : 1, sizeof *m->unexpected);
    m->mtp = calloc(n ? n : 1, sizeof *m->mtp);
    if (!m->unexpected || !m->mtp) goto oom;
    for (size_t i = 0; i < n; i++) {
        const char *name = strata_safetensors_at(m->tensors, i)->name;
        if (strmap_find(&accounted, name, NULL)) continue;
        if (is_mtp_tensor(&m->desc.arch, name)) m->mtp[m->n_mtp++] = name;
        else if (is_quant_tensor(m, &modules, name)) m->n_quant_tensors++;
        else m->unexpected[m->n_unexpected++] = name;
    }
    goto done;
oom:
    status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory checking tensors", m->dir);
done:
    strmap_free(&accounted);
    strmap_free(&modules);
    free(expected);
    return status;
}

strata_status strata_model_open(const char *dir, strata_model **out)
{
    if (!dir || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_model_open: NULL argument");
    *out = NULL;
    if (!path_is_dir(dir)) return strata_fail(STRATA_ERR_NOT_FOUND, "%s: not a directory", dir);
    strata_model *m = calloc(1, sizeof *m);
    char *config_path = path_join(dir, "config.json");
    strata_status status = STRATA_OK;
    if (!m || !config_path || !(m->dir = strdup(dir))) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
        goto done;
    }
    /* An output whose run was interrupted is not a model yet. */
    status = output_check_complete(dir);
    if (status == STRATA_OK) status = load_json(config_path, &m->config);
    if (status != STRATA_OK) goto done;
    status = desc_from_config(m->config, config_path, &m->desc);
    if (status != STRATA_OK) goto done;
    status = read_quantization(m, dir);
    if (status != STRATA_OK) goto done;
    status = strata_safetensors_open(dir, &m->tensors);
    if (status != STRATA_OK) goto done;
    const char *block;
    bool stacked;
    probe_layout(m, &block, &stacked);
    status = desc_layout(&m->desc, block, stacked);
    if (status != STRATA_OK) goto done;
    status = check_tensors(m);
done:
    free(config_path);
    if (status != STRATA_OK) {
        strata_model_close(m);
        return status;
    }
    *out = m;
    return STRATA_OK;
}

const strata_arch *strata_model_arch(const strata_model *model) { return model ? &model->desc.arch : NULL; }

const strata_safetensors *strata_model_tensors(const strata_model *model) { return model ? model->tensors : NULL; }

const strata_quant_info *strata_model_quantization(const strata_model *model)
{
    return model && model->quantized ? &model->quant : NULL;
}

size_t strata_model_unexpected_count(const strata_model *model) { return model ? model->n_unexpected : 0; }

size_t strata_model_mtp_count(const strata_model *model) { return model ? model->n_mtp : 0; }

const char *strata_model_mtp(const strata_model *model, size_t i)
{
    return model && i < model->n_mtp ? model->mtp[i] : NULL;
}

const char *strata_model_unexpected(const strata_model *model, size_t i)
{
    return model && i < model->n_unexpected ? model->unexpected[i] : NULL;
}

size_t model_quant_tensor_count(const strata_model *model) { return model ? model->n_quant_tensors : 0; }

const model_desc *model_description(const strata_model *model) { return model ? &model->desc : NULL; }

const char *model_dir(const strata_model *model) { return model->dir; }
