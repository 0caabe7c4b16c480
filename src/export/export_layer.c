/*
 * export_layer.c — a layer's tensors into the output shards (see export.h).
 *
 * Per quantized linear <m>: the weight's tensors in the format's ModelOpt layout (the table
 * in quant/weight_layout.c, which the reader of quantized checkpoints reads with), then
 * <m>.input_scale F32 () where the scheme has a static input scale,
 * plus the bias when the linear has one, and <k_proj>.k_scale / <v_proj>.v_scale F32 ()
 * with --kv-cache fp8. The fakequant format writes <m>.weight as bf16 of the dequantized
 * values instead, and nothing else. Experts stacked in the checkpoint (n_experts, out, in)
 * are written per expert, <block>.experts.E.<proj>.weight, quantized or not: each expert
 * was quantized with its own scales, and separate experts are what ModelOpt's export and
 * vLLM's loaders use.
 *
 * The compressed-tensors format writes the tensors of quant/weight_layout.c's
 * compressed-tensors rows (weight_packed, weight_shape, weight_zero_point, ...), the input
 * scale as that library stores it (<m>.input_scale in the weight's dtype, shape (1), for
 * FP8; <m>.input_global_scale F32 (1) = 2688 / amax for NVFP4) and the KV-cache scales on
 * the attention module, <attn>.k_scale / <attn>.v_scale, in the weight's dtype, shape (1):
 * the names vLLM's compressed-tensors loader maps onto its attention layer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/values_dtype.h"
#include "core/error.h"
#include "core/non_finite.h"
#include "export/export.h"
#include "forward/layer_weights.h"
#include "io/safetensors_mapping.h"
#include "kernels/gemm.h"
#include "kernels/minifloat.h"
#include "quant/format.h"
#include "quant/weight_layout.h"

strata_status export_tensor(exporter *e, const char *name, strata_dtype dtype, int n_dims, const int64_t *shape,
                            const void *data, const char *source)
{
    uint64_t count = 1;
    for (int d = 0; d < n_dims; d++) count *= (uint64_t)shape[d];
    non_finite_scan scan;
    non_finite_find(dtype, data, count, &scan);
    if (scan.count > 0) {
        char first[96];
        non_finite_describe(&scan, n_dims, shape, first, sizeof first);
        char from[600] = "";
        if (source) snprintf(from, sizeof from, " (from %s)", source);
        if (!e->allow_non_finite)
            return strata_fail(STRATA_ERR_FORMAT, "%s%s holds %llu non-finite value%s, the first %s; strata does not "
                               "write NaN or Inf (--allow-non-finite writes it anyway)", name, from,
                               (unsigned long long)scan.count, scan.count == 1 ? "" : "s", first);
        strata_log(STRATA_LOG_WARN, "%s%s holds %llu non-finite value%s (the first %s); written as it is "
                   "(--allow-non-finite)", name, from, (unsigned long long)scan.count, scan.count == 1 ? "" : "s", first);
        non_finite_note *grown = realloc(e->non_finite, (e->n_non_finite + 1) * sizeof *grown);
        if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        e->non_finite = grown;
        non_finite_note *note = &e->non_finite[e->n_non_finite];
        *note = (non_finite_note){.tensor = strdup(name), .count = scan.count};
        if (!note->tensor) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        snprintf(note->first, sizeof note->first, "%s", first);
        e->n_non_finite++;
    }
    strata_status status =
        strata_safetensors_writer_add(e->writer, name, dtype, n_dims, shape, data, count * strata_dtype_size(dtype));
    if (status == STRATA_OK) snprintf(e->last_tensor, sizeof e->last_tensor, "%s", name);
    return status;
}

void exporter_free_notes(exporter *e)
{
    for (size_t i = 0; i < e->n_non_finite; i++) free(e->non_finite[i].tensor);
    free(e->non_finite);
    e->non_finite = NULL;
    e->n_non_finite = 0;
}

/* A checkpoint tensor as it is. */
static strata_status copy_tensor(exporter *e, const char *name)
{
    const strata_safetensors *st = strata_model_tensors(e->model);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t) return strata_fail(STRATA_ERR_NOT_FOUND, "tensor %s is missing from the checkpoint", name);
    strata_status status =
        export_tensor(e, name, t->dtype, t->n_dims, t->shape, t->data, strata_safetensors_shard_path(st, t->shard));
    safetensors_release_range(st, t->data, (size_t)t->n_bytes); /* read once */
    return status;
}

bool export_router_in_f32(const strata_arch *arch, const strata_linear *linear)
{
    return linear->role == STRATA_LINEAR_ROUTER && arch->routing.sigmoid;
}

strata_status export_tensor_f32(exporter *e, const char *name, strata_dtype dtype, int n_dims, const int64_t *shape,
                                const void *data, const char *source)
{
    if (dtype == STRATA_DTYPE_F32) return export_tensor(e, name, dtype, n_dims, shape, data, source);
    size_t n = 1;
    for (int k = 0; k < n_dims; k++) n *= (size_t)shape[k];
    float *values = malloc((n ? n : 1) * sizeof *values);
    strata_status status = values ? strata_convert_to_f32(dtype, data, n, values)
                                  : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", name);
    if (status == STRATA_OK) status = export_tensor(e, name, STRATA_DTYPE_F32, n_dims, shape, values, source);
    free(values);
    return status;
}

/* A tensor strata computed for module m ("<m>.<suffix>"). */
static strata_status add(exporter *e, const char *module, const char *suffix, strata_dtype dtype, int n_dims,
                         const int64_t *shape, const void *data)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    return export_tensor(e, name, dtype, n_dims, shape, data, NULL);
}

static strata_status add_scalar(exporter *e, const char *module, const char *suffix, float value)
{
    return add(e, module, suffix, STRATA_DTYPE_F32, 0, NULL, &value);
}

/* compressed-tensors' one-element scale tensors: shape (1), in dtype (F32, BF16 or F16;
 * exact, the value having been computed in it). */
static strata_status add_one(exporter *e, const char *name, strata_dtype dtype, float value)
{
    int64_t one = 1;
    uint16_t half = dtype == STRATA_DTYPE_BF16 ? bf16_bits_from_f32(value) : f16_bits_from_f32(value);
    bool narrow = dtype == STRATA_DTYPE_BF16 || dtype == STRATA_DTYPE_F16;
    return export_tensor(e, name, narrow ? dtype : STRATA_DTYPE_F32, 1, &one, narrow ? (const void *)&half : &value,
                         NULL);
}

int export_kv_scale_names(const strata_linear *linear, char names[2][512])
{
    if (linear->role == STRATA_LINEAR_K || linear->role == STRATA_LINEAR_V) {
        snprintf(names[0], 512, "%s.%s", linear->name, linear->role == STRATA_LINEAR_K ? "k_scale" : "v_scale");
        return 1;
    }
    if (linear->role != STRATA_LINEAR_KV_A) return 0;
    const char *dot = strrchr(linear->name, '.'); /* "<layer>.self_attn" */
    int prefix = dot ? (int)(dot - linear->name) : (int)strlen(linear->name);
    snprintf(names[0], 512, "%.*s.k_proj.k_scale", prefix, linear->name);
    snprintf(names[1], 512, "%.*s.v_proj.v_scale", prefix, linear->name);
    return 2;
}

int export_kv_scale_names_compressed_tensors(const strata_linear *linear, char names[2][512])
{
    bool k = linear->role == STRATA_LINEAR_K, v = linear->role == STRATA_LINEAR_V;
    if (!k && !v && linear->role != STRATA_LINEAR_KV_A) return 0;
    const char *dot = strrchr(linear->name, '.'); /* "<layer>.self_attn" */
    int prefix = dot ? (int)(dot - linear->name) : (int)strlen(linear->name);
    snprintf(names[0], 512, "%.*s.%s", prefix, linear->name, v ? "v_scale" : "k_scale");
    if (k || v) return 1;
    snprintf(names[1], 512, "%.*s.v_scale", prefix, linear->name);
    return 2;
}

/* compressed-tensors' KV-cache scale: amax / 448 computed in the model's dtype, as its
 * calculate_qparams does; zero gives 1 (strata's rule for every KV scale). */
static float kv_scale_in(strata_dtype dtype, float amax)
{
    float a = dtype == STRATA_DTYPE_BF16 ? bf16_round(amax) : dtype == STRATA_DTYPE_F16 ? f16_round(amax) : amax;
    float s = strata_fp8_kv_scale(a);
    return dtype == STRATA_DTYPE_BF16 ? bf16_round(s) : dtype == STRATA_DTYPE_F16 ? f16_round(s) : s;
}

typedef struct module_emitter {
    exporter *e;
    const char *module;
} module_emitter;

static strata_status emit_module_tensor(void *ctx, const char *suffix, strata_dtype dtype, int n_dims,
                                        const int64_t *shape, const void *data)
{
    const module_emitter *m = ctx;
    return add(m->e, m->module, suffix, dtype, n_dims, shape, data);
}

strata_status export_weight_tensors(exporter *e, const scheme_info *s, const char *m, int64_t N, int64_t K,
                                    strata_dtype weight_dtype, const strata_qtensor *q, const strata_quant_shape *shape)
{
    bool ct = e->format == STRATA_EXPORT_COMPRESSED_TENSORS;
    const weight_layout *layout = ct ? weight_layout_compressed_tensors(s->weight_format, s->input != INPUT_NONE)
                                     : weight_layout_get(s->weight_format);
    if (!layout)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: format %s has no %s export", m,
                           strata_format_get(s->weight_format)->name, ct ? "compressed-tensors" : "ModelOpt");
    module_emitter emitter = {.e = e, .module = m};
    return weight_layout_write(layout, m, N, K, weight_dtype, q, shape, emit_module_tensor, &emitter);
}

/* The tensors of a calibrated linear: its weight's, then its input scale. */
static strata_status emit_quantized(exporter *e, const linear_calib *c, const strata_qtensor *q,
                                    const strata_quant_shape *shape)
{
    const strata_linear *l = c->desc;
    strata_dtype dtype = linear_values_dtype(e->model, l);
    strata_status status = export_weight_tensors(e, c->scheme, l->name, l->n_out, l->n_in, dtype, q, shape);
    if (status != STRATA_OK || !input_has_static_scale(c->scheme->input)) return status;
    if (e->format != STRATA_EXPORT_COMPRESSED_TENSORS)
        return add_scalar(e, l->name, "input_scale", scheme_input_scale(c->scheme, c->input_amax));
    bool nvfp4 = c->scheme->input == INPUT_NVFP4;
    char name[512];
    snprintf(name, sizeof name, "%s.%s", l->name, nvfp4 ? "input_global_scale" : "input_scale");
    float stored = scheme_input_scale_stored(c->scheme, STRATA_CONVENTION_COMPRESSED_TENSORS, dtype, c->input_amax);
    return add_one(e, name, nvfp4 ? STRATA_DTYPE_F32 : dtype, stored);
}

/* An unquantized linear as <name>.weight with the checkpoint's bytes. A stacked expert's
 * slice becomes a tensor of its own: the output always stores experts separately, the
 * layout ModelOpt's export writes and vLLM loads. */
static strata_status copy_linear(exporter *e, const linear_calib *c)
{
    const strata_linear *l = c->desc;
    int64_t s[2] = {l->n_out, l->n_in};
    strata_status status = STRATA_OK;
    bool f32 = export_router_in_f32(strata_model_arch(e->model), l);
    bool fp8_source = linear_weight_quantized(e->model, l);
    if (fp8_source || c->smooth.columns) {
        /* Converted: an FP8 source's excluded linear dequantized (to bf16, as ModelOpt's
         * recipes convert FP8 releases before quantizing); an MoE router whose columns
         * llm-compressor's AWQ scaled by the norm's s like the experts' (W s, in its dtype);
         * fp32 where the router is exported in fp32. */
        size_t n = (size_t)l->n_out * (size_t)l->n_in;
        bool narrow = !f32 && (fp8_source || linear_values_dtype(e->model, l) == STRATA_DTYPE_BF16);
        float *w = malloc(n * sizeof *w);
        uint16_t *bf16 = narrow ? malloc(n * sizeof *bf16) : NULL;
        if (!w || (narrow && !bf16)) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", l->name);
        if (status == STRATA_OK) status = linear_calib_weight_f32(e->model, c, w);
        if (status == STRATA_OK && narrow) gemm_round_to_bf16(w, bf16, n);
        if (status == STRATA_OK)
            status = narrow ? add(e, l->name, "weight", STRATA_DTYPE_BF16, 2, s, bf16)
                            : add(e, l->name, "weight", STRATA_DTYPE_F32, 2, s, w);
        free(w);
        free(bf16);
    } else {
        strata_dtype dtype;
        const void *data;
        status = linear_weight_view(e->model, l, &dtype, &data);
        const strata_safetensors *st = strata_model_tensors(e->model);
        const strata_tensor *t = strata_safetensors_find(st, l->weight);
        char name[512];
        snprintf(name, sizeof name, "%s.weight", l->name);
        const char *source = t ? strata_safetensors_shard_path(st, t->shard) : NULL;
        if (status == STRATA_OK)
            status = f32 ? export_tensor_f32(e, name, dtype, 2, s, data, source)
                         : export_tensor(e, name, dtype, 2, s, data, source);
    }
    if (status == STRATA_OK && l->bias) status = copy_tensor(e, l->bias);
    return status;
}

/* Appends one linear's tensors from the quantized weight the engine holds (c->weight_q, or
 * spilled), quantizing it here only when nothing holds it (a layer restored from a checkpoint, whose
 * non-GPTQ weights are not saved). */
static strata_status export_quantized(exporter *e, const linear_calib *c)
{
    const strata_linear *l = c->desc;
    int64_t N = l->n_out, K = l->n_in;
    strata_quant_params p = scheme_weight_params(c->scheme, c->convention, c->weight_amax);
    p.values_dtype = linear_values_dtype(e->model, l); /* quantized as the checkpoint's weight */
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&p, N, K, &shape);
    if (status != STRATA_OK) return status;
    size_t n = (size_t)N * (size_t)K;
    strata_qtensor fetched = {0};
    const strata_qtensor *decided = NULL;
    status = linear_calib_quantized(c, &fetched, &decided);
    if (status != STRATA_OK) return status;
    bool fakequant = e->format == STRATA_EXPORT_FAKEQUANT, held = decided->codes != NULL;
    float *w = held && !fakequant ? NULL : malloc(n * sizeof *w);
    uint16_t *bf16 = fakequant ? malloc(n * sizeof *bf16) : NULL;
    strata_qtensor own = {0};
    if ((!w && (!held || fakequant)) || (fakequant && !bf16) || (!held && !quant_qtensor_alloc(&shape, &own)))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", l->weight);
    const strata_qtensor *q = held ? decided : &own;
    if (status == STRATA_OK && held && fakequant) {
        status = strata_dequantize(&p, q, N, K, w);
    } else if (status == STRATA_OK && !held) {
        status = linear_calib_weight_f32(e->model, c, w);
        /* Fake quantization dequantizes in place: w becomes Q(W). */
        quant_block_adjust adjust = linear_calib_block_adjust(c);
        if (status == STRATA_OK) status = quant_tensor_adjusted(&p, STRATA_DTYPE_F32, w, N, K, &adjust, &own, fakequant ? w : NULL);
    }
    if (status == STRATA_OK && fakequant) {
        gemm_round_to_bf16(w, bf16, n);
        int64_t s[2] = {N, K};
        status = add(e, l->name, "weight", STRATA_DTYPE_BF16, 2, s, bf16);
    } else if (status == STRATA_OK) {
        status = emit_quantized(e, c, q, &shape);
    }
    if (status == STRATA_OK && l->bias) status = copy_tensor(e, l->bias);
    free(w);
    quant_qtensor_free(&own);
    quant_qtensor_free(&fetched);
    free(bf16);
    if (status != STRATA_OK) return strata_fail_context(status, "exporting %s", l->name);
    return STRATA_OK;
}

/* The smoothing folded into the norm the layer's linears of these roles read, or NULL (an MoE
 * layer's router stands for its experts). */
static const input_smoothing *norm_smoothing(const layer_calib *lc, strata_linear_role a, strata_linear_role b,
                                             strata_linear_role c)
{
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        const linear_calib *l = &lc->linears[i];
        strata_linear_role role = l->desc->role;
        if (l->smooth.in_norm && l->desc->expert < 0 && (role == a || role == b || role == c)) return &l->smooth;
    }
    return NULL;
}

/* A norm's weight with the smoothing folded in, in the weight's dtype: times AWQ's input
 * scale, as ModelOpt's fuse_prequant_layernorm does for norms that compute weight * x, or
 * divided by SmoothQuant's s, as llm-compressor's SmoothQuantModifier does. */
static strata_status export_scaled_norm(exporter *e, const char *name, const input_smoothing *smooth)
{
    const strata_safetensors *st = strata_model_tensors(e->model);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t) return strata_fail(STRATA_ERR_NOT_FOUND, "tensor %s is missing from the checkpoint", name);
    size_t n = (size_t)t->n_elements;
    float *w = malloc(n * sizeof *w);
    uint16_t *bf16 = malloc(n * sizeof *bf16);
    strata_status status = w && bf16 ? strata_convert_to_f32(t->dtype, t->data, n, w)
                                     : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", name);
    bool narrow = t->dtype == STRATA_DTYPE_BF16;
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        w[i] = smooth->norm_divided ? w[i] / smooth->columns[i] : w[i] * smooth->input[i];
        if (narrow) bf16[i] = bf16_bits_from_f32(w[i]);
    }
    if (status == STRATA_OK)
        status = export_tensor(e, name, narrow ? STRATA_DTYPE_BF16 : STRATA_DTYPE_F32, t->n_dims, t->shape,
                               narrow ? (const void *)bf16 : w, strata_safetensors_shard_path(st, t->shard));
    free(w);
    free(bf16);
    return status;
}

/* "<m>.pre_quant_scale" BF16 (n_in): AWQ's scale of a linear's input that no norm or previous
 * linear took, as ModelOpt exports it. */
static strata_status export_pre_quant_scale(exporter *e, const linear_calib *c)
{
    if (!c->smooth.input || c->smooth.in_norm || c->smooth.in_rows) return STRATA_OK;
    int64_t K = c->desc->n_in;
    uint16_t *bf16 = malloc((size_t)K * sizeof *bf16);
    if (!bf16) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", c->desc->name);
    for (int64_t k = 0; k < K; k++) bf16[k] = bf16_bits_from_f32(c->smooth.input[k]);
    strata_status status = add(e, c->desc->name, "pre_quant_scale", STRATA_DTYPE_BF16, 1, &K, bf16);
    free(bf16);
    return status;
}

strata_status export_layer(exporter *e, const layer_calib *lc)
{
    const strata_layer *layer = lc->layer;
    const char *norms[] = {layer->input_norm, layer->post_attention_norm, layer->q_norm, layer->k_norm,
                           layer->q_a_norm,   layer->kv_a_norm,           layer->router_bias};
    const input_smoothing *norm_scales[] = {norm_smoothing(lc, STRATA_LINEAR_Q, STRATA_LINEAR_K, STRATA_LINEAR_V),
                                            norm_smoothing(lc, STRATA_LINEAR_GATE, STRATA_LINEAR_UP, STRATA_LINEAR_ROUTER)};
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < sizeof norms / sizeof norms[0]; i++)
        if (norms[i] && i < 2 && norm_scales[i]) status = export_scaled_norm(e, norms[i], norm_scales[i]);
        else if (norms[i]) status = copy_tensor(e, norms[i]);
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        const linear_calib *c = &lc->linears[i];
        status = c->quantized ? export_quantized(e, c) : copy_linear(e, c);
        if (status == STRATA_OK && c->quantized) status = export_pre_quant_scale(e, c);
        /* A weight is not read again: its pages leave the resident set now, so a layer
         * bigger than memory is exported an expert at a time. */
        linear_weight_release_pages(e->model, c->desc);
        /* The cache's scales, whether or not the linear itself is quantized. */
        char names[2][512];
        bool ct = e->format == STRATA_EXPORT_COMPRESSED_TENSORS;
        int n = !e->kv_cache || e->format == STRATA_EXPORT_FAKEQUANT ? 0
                : ct ? export_kv_scale_names_compressed_tensors(c->desc, names)
                     : export_kv_scale_names(c->desc, names);
        float scale = strata_fp8_kv_scale(c->output_amax);
        strata_dtype dtype = linear_values_dtype(e->model, c->desc);
        for (int k = 0; status == STRATA_OK && k < n; k++)
            status = ct ? add_one(e, names[k], dtype, kv_scale_in(dtype, c->output_amax))
                        : export_tensor(e, names[k], STRATA_DTYPE_F32, 0, NULL, &scale, NULL);
    }
    return status;
}

strata_status export_model_rest(exporter *e)
{
    const strata_arch *arch = strata_model_arch(e->model);
    strata_status status = copy_tensor(e, arch->embed_tokens);
    if (status == STRATA_OK) status = copy_tensor(e, arch->final_norm);
    if (status == STRATA_OK && !arch->tie_word_embeddings && strcmp(arch->lm_head, arch->embed_tokens) != 0)
        status = copy_tensor(e, arch->lm_head);
    /* Multi-token-prediction layers are not run: their tensors go through unchanged. */
    for (size_t i = 0; status == STRATA_OK && i < strata_model_mtp_count(e->model); i++)
        status = copy_tensor(e, strata_model_mtp(e->model, i));
    return status;
}
