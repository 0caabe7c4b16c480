/*
 * export_layer.c — a layer's tensors into the output shards (see export.h).
 *
 * Per quantized linear <m> (ModelOpt names, scalar scales as 0-d F32 tensors):
 *   fp8                 <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 (), <m>.input_scale F32 ()
 *   fp8-dynamic         <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 (N)
 *   nvfp4               <m>.weight U8 (N, K/2), <m>.weight_scale F8_E4M3 (N, K/16),
 *                       <m>.weight_scale_2 F32 (), <m>.input_scale F32 ()
 *   nvfp4-weight-only   the same without input_scale
 *   int8                <m>.weight I8 (N, K), <m>.weight_scale F32 (N)
 *   int4                <m>.weight U8 (N/2, K) two rows per byte, <m>.weight_scale F32 (N, K/128)
 *   mxfp4               <m>.weight U8 (N, K/2), <m>.weight_scale U8 E8M0 (N, K/32); inputs are
 *                       quantized dynamically, so there is no input_scale
 *   fp8-block           <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 (ceil(N/128), 1, ceil(K/128), 1):
 *                       one scale per 128x128 tile, in the shape of ModelOpt's block amax
 *   int4-asym           fakequant only (ModelOpt has no asymmetric INT4)
 * plus the bias when the linear has one, and <k_proj>.k_scale / <v_proj>.v_scale F32 ()
 * with --kv-cache fp8. The fakequant format writes <m>.weight as bf16 of the dequantized
 * values instead, and nothing else. Experts stacked in the checkpoint (n_experts, out, in)
 * are written per expert, <block>.experts.E.<proj>.weight, quantized or not: each expert
 * was quantized with its own scales, and separate experts are what ModelOpt's export and
 * vLLM's loaders use.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "export/export.h"
#include "forward/layer_weights.h"
#include "kernels/gemm.h"
#include "quant/format.h"

static strata_status copy_tensor(exporter *e, const char *name)
{
    const strata_tensor *t = strata_safetensors_find(strata_model_tensors(e->model), name);
    if (!t) return strata_fail(STRATA_ERR_NOT_FOUND, "tensor %s is missing from the checkpoint", name);
    strata_status status =
        strata_safetensors_writer_add(e->writer, name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes);
    if (status == STRATA_OK) snprintf(e->last_tensor, sizeof e->last_tensor, "%s", name);
    return status;
}

static strata_status add(exporter *e, const char *module, const char *suffix, strata_dtype dtype, int n_dims,
                         const int64_t *shape, const void *data)
{
    char name[512];
    snprintf(name, sizeof name, "%s.%s", module, suffix);
    uint64_t bytes = strata_dtype_size(dtype);
    for (int d = 0; d < n_dims; d++) bytes *= (uint64_t)shape[d];
    strata_status status = strata_safetensors_writer_add(e->writer, name, dtype, n_dims, shape, data, bytes);
    if (status == STRATA_OK) snprintf(e->last_tensor, sizeof e->last_tensor, "%s", name);
    return status;
}

static strata_status add_scalar(exporter *e, const char *module, const char *suffix, float value)
{
    return add(e, module, suffix, STRATA_DTYPE_F32, 0, NULL, &value);
}

void export_kv_scale_name(const strata_linear *linear, char *out, size_t size)
{
    snprintf(out, size, "%s.%s", linear->name, linear->role == STRATA_LINEAR_K ? "k_scale" : "v_scale");
}

strata_status export_weight_tensors(exporter *e, const char *m, int64_t N, int64_t K, const strata_qtensor *q,
                                    const strata_quant_shape *shape)
{
    strata_status status = STRATA_OK;
    switch (e->scheme->weight_format) {
    case STRATA_FORMAT_FP8_TENSOR: {
        int64_t s[2] = {N, K};
        status = add(e, m, "weight", STRATA_DTYPE_F8_E4M3, 2, s, q->codes);
        if (status == STRATA_OK) status = add_scalar(e, m, "weight_scale", *(const float *)q->scales);
        break;
    }
    case STRATA_FORMAT_FP8_CHANNEL:
    case STRATA_FORMAT_INT8_CHANNEL: {
        int64_t s[2] = {N, K};
        strata_dtype dtype = e->scheme->weight_format == STRATA_FORMAT_FP8_CHANNEL ? STRATA_DTYPE_F8_E4M3 : STRATA_DTYPE_I8;
        status = add(e, m, "weight", dtype, 2, s, q->codes);
        if (status == STRATA_OK) status = add(e, m, "weight_scale", STRATA_DTYPE_F32, 1, &N, q->scales);
        break;
    }
    case STRATA_FORMAT_FP8_BLOCK: {
        int64_t s[2] = {N, K}, scale[4] = {shape->scale_rows, 1, shape->scale_cols, 1};
        status = add(e, m, "weight", STRATA_DTYPE_F8_E4M3, 2, s, q->codes);
        if (status == STRATA_OK) status = add(e, m, "weight_scale", STRATA_DTYPE_F32, 4, scale, q->scales);
        break;
    }
    case STRATA_FORMAT_NVFP4: {
        int64_t s[2] = {N, shape->code_row_bytes}, scale[2] = {shape->scale_rows, shape->scale_cols};
        status = add(e, m, "weight", STRATA_DTYPE_U8, 2, s, q->codes);
        if (status == STRATA_OK) status = add(e, m, "weight_scale", STRATA_DTYPE_F8_E4M3, 2, scale, q->scales);
        if (status == STRATA_OK) status = add_scalar(e, m, "weight_scale_2", q->global_scale);
        break;
    }
    case STRATA_FORMAT_MXFP4: {
        int64_t s[2] = {N, shape->code_row_bytes}, scale[2] = {shape->scale_rows, shape->scale_cols};
        status = add(e, m, "weight", STRATA_DTYPE_U8, 2, s, q->codes);
        if (status == STRATA_OK) status = add(e, m, "weight_scale", STRATA_DTYPE_U8, 2, scale, q->scales);
        break;
    }
    case STRATA_FORMAT_INT4_GROUP: {
        size_t bytes = strata_pack_int4_size(STRATA_INT4_MODELOPT_AWQ, N, K);
        if (bytes == 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: int4 export packs two rows per byte; %lld rows is odd",
                               m, (long long)N);
        uint8_t *packed = malloc(bytes);
        if (!packed) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory packing %s", m);
        status = strata_pack_int4(STRATA_INT4_MODELOPT_AWQ, q->codes, N, K, packed);
        int64_t s[2] = {N / 2, K}, scale[2] = {shape->scale_rows, shape->scale_cols};
        if (status == STRATA_OK) status = add(e, m, "weight", STRATA_DTYPE_U8, 2, s, packed);
        if (status == STRATA_OK) status = add(e, m, "weight_scale", STRATA_DTYPE_F32, 2, scale, q->scales);
        free(packed);
        break;
    }
    default:
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: format %s has no ModelOpt export", m,
                           strata_format_get(e->scheme->weight_format)->name);
    }
    return status;
}

/* The ModelOpt tensors of a calibrated linear: its weight's, then its input scale. */
static strata_status emit_quantized(exporter *e, const linear_calib *c, const strata_qtensor *q,
                                    const strata_quant_shape *shape)
{
    const strata_linear *l = c->desc;
    strata_status status = export_weight_tensors(e, l->name, l->n_out, l->n_in, q, shape);
    if (status == STRATA_OK && input_has_static_scale(e->scheme->input))
        status = add_scalar(e, l->name, "input_scale", scheme_input_scale(e->scheme, c->input_amax));
    return status;
}

/* An unquantized linear as <name>.weight with the checkpoint's bytes. A stacked expert's
 * slice becomes a tensor of its own: the output always stores experts separately, the
 * layout ModelOpt's export writes and vLLM loads. */
static strata_status copy_linear(exporter *e, const strata_linear *l)
{
    int64_t s[2] = {l->n_out, l->n_in};
    strata_status status = STRATA_OK;
    if (linear_weight_quantized(e->model, l)) {
        /* An FP8 source's excluded linear: dequantized to bf16, as ModelOpt's recipes
         * convert FP8 releases before quantizing. */
        size_t n = (size_t)l->n_out * (size_t)l->n_in;
        float *w = malloc(n * sizeof *w);
        uint16_t *bf16 = malloc(n * sizeof *bf16);
        if (!w || !bf16) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", l->name);
        if (status == STRATA_OK) status = linear_weight_f32(e->model, l, w);
        if (status == STRATA_OK) {
            gemm_round_to_bf16(w, bf16, n);
            status = add(e, l->name, "weight", STRATA_DTYPE_BF16, 2, s, bf16);
        }
        free(w);
        free(bf16);
    } else {
        strata_dtype dtype;
        const void *data;
        status = linear_weight_view(e->model, l, &dtype, &data);
        if (status == STRATA_OK) status = add(e, l->name, "weight", dtype, 2, s, data);
    }
    if (status == STRATA_OK && l->bias) status = copy_tensor(e, l->bias);
    return status;
}

/* Quantizes one linear's weight with its calibrated state (or takes GPTQ's quantized
 * weight) and appends its tensors. */
static strata_status export_quantized(exporter *e, const linear_calib *c)
{
    const strata_linear *l = c->desc;
    int64_t N = l->n_out, K = l->n_in;
    strata_quant_params p = scheme_weight_params(e->scheme, c->weight_amax);
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&p, N, K, &shape);
    if (status != STRATA_OK) return status;
    size_t n = (size_t)N * (size_t)K;
    bool fakequant = e->format == STRATA_EXPORT_FAKEQUANT, updated = c->updated.codes != NULL;
    float *w = updated && !fakequant ? NULL : malloc(n * sizeof *w);
    uint16_t *bf16 = fakequant ? malloc(n * sizeof *bf16) : NULL;
    strata_qtensor own = {0};
    if ((!w && (!updated || fakequant)) || (fakequant && !bf16) || (!updated && !quant_qtensor_alloc(&shape, &own)))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory exporting %s", l->weight);
    const strata_qtensor *q = updated ? &c->updated : &own;
    if (status == STRATA_OK && updated && fakequant) {
        status = strata_dequantize(&p, q, N, K, w);
    } else if (status == STRATA_OK && !updated) {
        status = linear_weight_f32(e->model, l, w);
        /* Fake quantization dequantizes in place: w becomes Q(W). */
        if (status == STRATA_OK) status = quant_tensor_clipped(&p, STRATA_DTYPE_F32, w, N, K, c->clip, &own, fakequant ? w : NULL);
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
    free(bf16);
    if (status != STRATA_OK) return strata_fail_context(status, "exporting %s", l->name);
    return STRATA_OK;
}

strata_status export_layer(exporter *e, const layer_calib *lc)
{
    const strata_layer *layer = lc->layer;
    const char *norms[4] = {layer->input_norm, layer->post_attention_norm, layer->q_norm, layer->k_norm};
    strata_status status = STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < 4; i++)
        if (norms[i]) status = copy_tensor(e, norms[i]);
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        const linear_calib *c = &lc->linears[i];
        if (!c->quantized) {
            status = copy_linear(e, c->desc);
            continue;
        }
        status = export_quantized(e, c);
        bool kv = c->desc->role == STRATA_LINEAR_K || c->desc->role == STRATA_LINEAR_V;
        if (status == STRATA_OK && kv && e->kv_cache && e->format == STRATA_EXPORT_MODELOPT)
            status = add_scalar(e, c->desc->name, c->desc->role == STRATA_LINEAR_K ? "k_scale" : "v_scale",
                                strata_fp8_kv_scale(c->output_amax));
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
    return status;
}
