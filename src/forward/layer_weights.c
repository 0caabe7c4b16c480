/*
 * layer_weights.c — reading a decoder layer out of the checkpoint (see layer_weights.h).
 *
 * A linear's weight is a whole 2-D tensor or a slice of a stacked expert tensor
 * (n_experts, rows, n_in): rows [row_offset, row_offset + n_out) of slice stack_index,
 * which is contiguous in the file. Non-finite values are found with the kernels' blocked
 * absmax (one block per row), which reports them without converting the tensor.
 */
#include "forward/layer_weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/big_buffer.h"
#include "core/error.h"
#include "forward/quantized_weight.h"
#include "io/safetensors_mapping.h"
#include "kernels/cpu.h"

static const strata_tensor *find_tensor(const strata_model *model, const char *name)
{
    const strata_tensor *t = strata_safetensors_find(strata_model_tensors(model), name);
    if (!t) strata_fail(STRATA_ERR_NOT_FOUND, "tensor %s is missing from the checkpoint", name);
    return t;
}

/* A linear's weight tensor: <m>.weight, or in a compressed-tensors checkpoint the packed
 * codes <m>.weight_packed that stand for it. */
static const strata_tensor *find_weight(const strata_model *model, const strata_linear *linear)
{
    const strata_safetensors *st = strata_model_tensors(model);
    const strata_tensor *t = strata_safetensors_find(st, linear->weight);
    size_t n = strlen(linear->weight);
    if (!t && strata_model_quantization(model) && n > 7 && strcmp(linear->weight + n - 7, ".weight") == 0) {
        char packed[600];
        snprintf(packed, sizeof packed, "%.*s.weight_packed", (int)(n - 7), linear->weight);
        t = strata_safetensors_find(st, packed);
    }
    return t ? t : find_tensor(model, linear->weight);
}

static const char *file_of(const strata_model *model, const strata_tensor *t)
{
    return strata_safetensors_shard_path(strata_model_tensors(model), t->shard);
}

int64_t first_non_finite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (x[i] - x[i] != 0.0f) return i;
    return -1;
}

const char *non_finite_name(float x) { return x != x ? "NaN" : "Inf"; }

static bool floating(strata_dtype dtype)
{
    return dtype == STRATA_DTYPE_F32 || dtype == STRATA_DTYPE_BF16 || dtype == STRATA_DTYPE_F16;
}

/* Checks the linear's rows x cols weight elements at data are finite; names the first
 * bad one by its place in the tensor. */
static strata_status check_finite(const strata_model *model, const strata_tensor *t, const strata_linear *linear,
                                  const void *data)
{
    int64_t rows = linear->n_out, cols = linear->n_in;
    float *row = malloc((size_t)cols * sizeof *row);
    float *row_max = malloc((size_t)rows * sizeof *row_max);
    strata_status status = STRATA_OK;
    if (!row || !row_max) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory checking %s", t->name);
        goto done;
    }
    size_t n = (size_t)rows * (size_t)cols;
    bool finite = t->dtype == STRATA_DTYPE_BF16 ? kernels()->bf16_block_absmax(data, n, (size_t)cols, row_max)
                  : t->dtype == STRATA_DTYPE_F32 ? kernels()->block_absmax(data, n, (size_t)cols, row_max)
                                                 : false;
    if (finite) goto done;
    size_t element = strata_dtype_size(t->dtype);
    for (int64_t r = 0; r < rows; r++) {
        strata_convert_to_f32(t->dtype, (const uint8_t *)data + (size_t)(r * cols) * element, (size_t)cols, row);
        int64_t c = first_non_finite(row, cols);
        if (c >= 0) {
            const char *what = non_finite_name(row[c]);
            if (linear->stack_index >= 0)
                status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s holds %s at [%lld, %lld, %lld] (%s)",
                                     file_of(model, t), t->name, what, (long long)linear->stack_index,
                                     (long long)(linear->row_offset + r), (long long)c, linear->name);
            else
                status = strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s holds %s at row %lld, column %lld",
                                     file_of(model, t), t->name, what, (long long)r, (long long)c);
            goto done;
        }
    }
done:
    free(row);
    free(row_max);
    return status;
}

strata_status model_tensor_f32(const strata_model *model, const char *name, size_t n, float *out)
{
    const strata_tensor *t = find_tensor(model, name);
    if (!t) return STRATA_ERR_NOT_FOUND;
    if (!floating(t->dtype))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s is %s; strata runs F32, BF16 or F16 weights",
                           file_of(model, t), name, strata_dtype_name(t->dtype));
    if ((size_t)t->n_elements != n)
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor %s has %lld elements, expected %zu", file_of(model, t),
                           name, (long long)t->n_elements, n);
    strata_status status = strata_convert_to_f32(t->dtype, t->data, n, out);
    if (status != STRATA_OK) return status;
    int64_t bad = first_non_finite(out, (int64_t)n);
    if (bad >= 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s holds %s at element %lld", file_of(model, t), name,
                           non_finite_name(out[bad]), (long long)bad);
    return STRATA_OK;
}

/* The (n_out, n_in) weight of a linear inside its tensor. */
static strata_status locate_weight(const strata_model *model, const strata_linear *linear, const strata_tensor **t,
                                   const void **data)
{
    *t = find_weight(model, linear);
    if (!*t) return STRATA_ERR_NOT_FOUND;
    if (!floating((*t)->dtype) && strata_model_quantization(model)) return STRATA_OK; /* quantized_weight.c */
    if (!floating((*t)->dtype))
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "%s: tensor %s is %s; strata runs F32, BF16 or F16 weights (this checkpoint is already "
                           "quantized?)",
                           file_of(model, *t), linear->weight, strata_dtype_name((*t)->dtype));
    size_t offset = 0;
    if (linear->stack_index >= 0)
        offset = ((size_t)linear->stack_index * (size_t)(*t)->shape[1] + (size_t)linear->row_offset) *
                 (size_t)linear->n_in;
    if ((uint64_t)(*t)->n_elements < offset + (uint64_t)linear->n_out * (uint64_t)linear->n_in)
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor %s has %lld elements, too few for %s (%lld, %lld)",
                           file_of(model, *t), linear->weight, (long long)(*t)->n_elements, linear->name,
                           (long long)linear->n_out, (long long)linear->n_in);
    *data = (const uint8_t *)(*t)->data + offset * strata_dtype_size((*t)->dtype);
    return STRATA_OK;
}

void linear_weight_release_pages(const strata_model *model, const strata_linear *linear)
{
    const strata_tensor *t = NULL;
    const void *data = NULL;
    if (locate_weight(model, linear, &t, &data) != STRATA_OK) {
        strata_error_clear();
        return;
    }
    const strata_safetensors *st = strata_model_tensors(model);
    if (floating(t->dtype))
        safetensors_release_range(st, data, (size_t)linear->n_out * (size_t)linear->n_in * strata_dtype_size(t->dtype));
    else if (linear->stack_index < 0) /* an FP8 weight of its own */
        safetensors_release_range(st, t->data, (size_t)t->n_bytes);
}

bool linear_weight_quantized(const strata_model *model, const strata_linear *linear)
{
    const strata_tensor *t = find_weight(model, linear);
    return t && !floating(t->dtype);
}

strata_dtype linear_values_dtype(const strata_model *model, const strata_linear *linear)
{
    const strata_tensor *t = find_weight(model, linear);
    bool plain = t && (t->dtype == STRATA_DTYPE_BF16 || t->dtype == STRATA_DTYPE_F16 || t->dtype == STRATA_DTYPE_F32);
    return plain ? t->dtype : STRATA_DTYPE_F32;
}

strata_status linear_weight_view(const strata_model *model, const strata_linear *linear, strata_dtype *dtype,
                                 const void **data)
{
    const strata_tensor *t = NULL;
    strata_status status = locate_weight(model, linear, &t, data);
    if (status == STRATA_ERR_NOT_FOUND)
        return strata_fail(status, "tensor %s is missing from the checkpoint", linear->weight);
    if (status == STRATA_OK && !floating(t->dtype))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s is %s, not a floating weight", file_of(model, t),
                           linear->weight, strata_dtype_name(t->dtype));
    if (status == STRATA_OK) *dtype = t->dtype;
    return status;
}

strata_status linear_weight_f32(const strata_model *model, const strata_linear *linear, float *out)
{
    const strata_tensor *t = NULL;
    const void *data = NULL;
    strata_status status = locate_weight(model, linear, &t, &data);
    if (status == STRATA_OK && !floating(t->dtype)) return quantized_weight_f32(model, linear, t, out);
    if (status == STRATA_OK) status = check_finite(model, t, linear, data);
    if (status == STRATA_OK) status = strata_convert_to_f32(t->dtype, data, (size_t)linear->n_out * (size_t)linear->n_in, out);
    return status;
}

/* mapped: NULL, or set when the weight is used in place from the model's mapping (a
 * weight stored in the GEMM's dtype that no hook transforms: no copy, no fresh pages). */
static strata_status gemm_from(const strata_model *model, const strata_linear *linear, gemm_precision precision,
                               const forward_hooks *hooks, size_t n_hooks, gemm_weight **out, bool *mapped)
{
    const strata_tensor *t = NULL;
    const void *data = NULL;
    strata_status status = locate_weight(model, linear, &t, &data);
    if (status != STRATA_OK) return status;
    /* The quantized pass's weights: held by the (only) hook, not read from the model again. */
    if (n_hooks == 1 && hooks[0].held_weight) {
        gemm_weight *g = NULL;
        bool written = false;
        status = gemm_weight_alloc(precision, linear->n_out, linear->n_in, linear->name, &g);
        if (status == STRATA_OK) status = hooks[0].held_weight(hooks[0].ctx, linear, precision, gemm_weight_data(g), &written);
        if (status == STRATA_OK && written) {
            *out = g;
            return STRATA_OK;
        }
        gemm_weight_free(g);
        if (status != STRATA_OK) return status;
    }
    bool quantized = !floating(t->dtype);
    if (!quantized) status = check_finite(model, t, linear, data);
    if (status != STRATA_OK) return status;
    bool transform = quantized;
    for (size_t h = 0; h < n_hooks; h++) transform |= hooks[h].quantize_weight != NULL;
    strata_dtype gemm_dtype = precision == GEMM_BF16 ? STRATA_DTYPE_BF16 : STRATA_DTYPE_F32;
    if (!transform && mapped && t->dtype == gemm_dtype) {
        *mapped = true;
        return gemm_weight_borrow(precision, data, linear->n_out, linear->n_in, linear->name, out);
    }
    if (!transform) return gemm_weight_create(precision, t->dtype, data, linear->n_out, linear->n_in, linear->name, out);

    size_t n = (size_t)linear->n_out * (size_t)linear->n_in;
    float *w = big_buffer_alloc(n * sizeof *w);
    if (!w) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory fake-quantizing %s", linear->name);
    status = quantized ? quantized_weight_f32(model, linear, t, w) : strata_convert_to_f32(t->dtype, data, n, w);
    for (size_t h = 0; h < n_hooks && status == STRATA_OK; h++)
        if (hooks[h].quantize_weight) status = hooks[h].quantize_weight(hooks[h].ctx, linear, w);
    if (status == STRATA_OK)
        status = gemm_weight_create(precision, STRATA_DTYPE_F32, w, linear->n_out, linear->n_in, linear->name, out);
    free(w);
    return status;
}

strata_status model_tensor_gemm(const strata_model *model, const char *name, gemm_precision precision,
                                gemm_weight **out)
{
    const strata_tensor *t = find_tensor(model, name);
    if (!t) return STRATA_ERR_NOT_FOUND;
    if (t->n_dims != 2)
        return strata_fail(STRATA_ERR_MISMATCH, "%s: tensor %s is not 2-D", file_of(model, t), name);
    strata_linear whole = {.name = name, .weight = name, .n_out = t->shape[0], .n_in = t->shape[1],
                           .stack_index = -1, .expert = -1};
    return gemm_from(model, &whole, precision, NULL, 0, out, NULL);
}

static float *load_vector(const strata_model *model, const char *name, int64_t n, size_t *bytes,
                          strata_status *status)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) {
        *status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", name);
        return NULL;
    }
    *status = model_tensor_f32(model, name, (size_t)n, v);
    if (*status != STRATA_OK) {
        free(v);
        return NULL;
    }
    *bytes += (size_t)n * sizeof *v;
    return v;
}

/* Points the lookups of lw at its linears. */
static strata_status index_linears(layer_weights *lw)
{
    int n_experts = lw->arch->moe.n_experts;
    if (lw->layer->is_moe) {
        lw->expert_gate = calloc((size_t)n_experts, sizeof *lw->expert_gate);
        lw->expert_up = calloc((size_t)n_experts, sizeof *lw->expert_up);
        lw->expert_down = calloc((size_t)n_experts, sizeof *lw->expert_down);
        if (!lw->expert_gate || !lw->expert_up || !lw->expert_down)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory indexing layer %d", lw->layer->index);
    }
    for (size_t i = 0; i < lw->layer->n_linears; i++) {
        layer_linear *l = &lw->linears[i];
        const strata_linear *d = l->desc;
        bool routed = d->expert >= 0 && d->expert < n_experts;
        switch (d->role) {
        case STRATA_LINEAR_Q: lw->q = l; break;
        case STRATA_LINEAR_K: lw->k = l; break;
        case STRATA_LINEAR_V: lw->v = l; break;
        case STRATA_LINEAR_O: lw->o = l; break;
        case STRATA_LINEAR_Q_A: lw->q_a = l; break;
        case STRATA_LINEAR_Q_B: lw->q_b = l; break;
        case STRATA_LINEAR_KV_A: lw->kv_a = l; break;
        case STRATA_LINEAR_KV_B: lw->kv_b = l; break;
        case STRATA_LINEAR_ROUTER: lw->router = l; break;
        case STRATA_LINEAR_SHARED_GATE: lw->shared_expert_gate = l; break;
        case STRATA_LINEAR_GATE:
            if (routed) lw->expert_gate[d->expert] = l;
            else if (d->shared_expert) lw->shared_gate = l;
            else lw->gate = l;
            break;
        case STRATA_LINEAR_UP:
            if (routed) lw->expert_up[d->expert] = l;
            else if (d->shared_expert) lw->shared_up = l;
            else lw->up = l;
            break;
        case STRATA_LINEAR_DOWN:
            if (routed) lw->expert_down[d->expert] = l;
            else if (d->shared_expert) lw->shared_down = l;
            else lw->down = l;
            break;
        }
    }
    bool complete = lw->arch->mla.kv_lora_rank > 0
                        ? (lw->q || (lw->q_a && lw->q_b && lw->q_a_norm)) && lw->kv_a && lw->kv_b && lw->kv_a_norm && lw->o
                        : lw->q && lw->k && lw->v && lw->o;
    if (lw->layer->is_moe) {
        complete = complete && lw->router;
        for (int e = 0; e < n_experts; e++)
            complete = complete && lw->expert_gate[e] && lw->expert_up[e] && lw->expert_down[e];
    } else {
        complete = complete && lw->gate && lw->up && lw->down;
    }
    if (!complete)
        return strata_fail(STRATA_ERR_MISMATCH, "layer %d of the model description lacks a linear the forward pass needs",
                           lw->layer->index);
    return STRATA_OK;
}

strata_status layer_weights_load(const strata_model *model, int index, gemm_precision precision,
                                 const forward_hooks *hooks, size_t n_hooks, layer_weights *out)
{
    return layer_weights_load_grouped(model, index, precision, hooks, n_hooks, 0, out);
}

/* One linear's GEMM weight and bias (a sigmoid router in fp32, as transformers keeps it). */
static strata_status load_linear(const layer_weights *lw, layer_linear *l)
{
    bool fp32_router = l->desc->role == STRATA_LINEAR_ROUTER && lw->arch->routing.sigmoid;
    l->mapped = false;
    strata_status status = gemm_from(lw->model, l->desc, fp32_router ? GEMM_F32 : lw->precision, lw->hooks,
                                     lw->n_hooks, &l->weight, &l->mapped);
    /* A GEMM holding its own copy: the source's pages leave the resident set now (they stay
     * in the page cache), so a layer holds its converted weights, not their source too. */
    if (!l->mapped || status != STRATA_OK) linear_weight_release_pages(lw->model, l->desc);
    if (status == STRATA_OK && l->desc->bias) {
        size_t bytes = 0;
        l->bias = load_vector(lw->model, l->desc->bias, l->desc->n_out, &bytes, &status);
    }
    return status;
}

static void unload_linear(const layer_weights *lw, layer_linear *l)
{
    gemm_weight_free(l->weight);
    if (l->mapped) linear_weight_release_pages(lw->model, l->desc);
    free(l->bias);
    l->weight = NULL;
    l->bias = NULL;
    l->mapped = false;
}

static bool grouped_expert(const layer_weights *lw, const strata_linear *d)
{
    return lw->experts_per_group > 0 && d->expert >= 0;
}

strata_status layer_weights_materialize_experts(const layer_weights *lw, int first, int count)
{
    if (lw->experts_per_group <= 0) return STRATA_OK;
    double start = seconds_now();
    strata_status status = STRATA_OK;
    for (int e = first; e < first + count && status == STRATA_OK; e++) {
        layer_linear *parts[3] = {lw->expert_gate[e], lw->expert_up[e], lw->expert_down[e]};
        for (int k = 0; k < 3 && status == STRATA_OK; k++) {
            if (parts[k]->weight) continue;
            status = load_linear(lw, parts[k]);
        }
    }
    if (status != STRATA_OK) layer_weights_release_experts(lw, first, count);
    if (lw->read_seconds) *lw->read_seconds += seconds_now() - start;
    return status;
}

void layer_weights_release_experts(const layer_weights *lw, int first, int count)
{
    if (lw->experts_per_group <= 0) return;
    for (int e = first; e < first + count; e++) {
        unload_linear(lw, lw->expert_gate[e]);
        unload_linear(lw, lw->expert_up[e]);
        unload_linear(lw, lw->expert_down[e]);
    }
}

strata_status layer_weights_load_grouped(const strata_model *model, int index, gemm_precision precision,
                                         const forward_hooks *hooks, size_t n_hooks, int experts_per_group,
                                         layer_weights *out)
{
    const strata_arch *arch = strata_model_arch(model);
    const strata_layer *target = &arch->layers[index];
    *out = (layer_weights){.arch = arch, .layer = target, .model = model, .precision = precision, .hooks = hooks,
                           .n_hooks = n_hooks,
                           .experts_per_group = target->is_moe && experts_per_group < arch->moe.n_experts
                                                    ? experts_per_group : 0};
    layer_weights *lw = out;
    const strata_layer *layer = lw->layer;
    strata_status status = STRATA_OK;
    lw->input_norm = load_vector(model, layer->input_norm, arch->hidden_size, &lw->bytes, &status);
    if (status == STRATA_OK)
        lw->post_attention_norm = load_vector(model, layer->post_attention_norm, arch->hidden_size, &lw->bytes, &status);
    if (status == STRATA_OK && layer->q_norm)
        lw->q_norm = load_vector(model, layer->q_norm, arch->head_dim, &lw->bytes, &status);
    if (status == STRATA_OK && layer->k_norm)
        lw->k_norm = load_vector(model, layer->k_norm, arch->head_dim, &lw->bytes, &status);
    if (status == STRATA_OK && layer->q_a_norm)
        lw->q_a_norm = load_vector(model, layer->q_a_norm, arch->mla.q_lora_rank, &lw->bytes, &status);
    if (status == STRATA_OK && layer->kv_a_norm)
        lw->kv_a_norm = load_vector(model, layer->kv_a_norm, arch->mla.kv_lora_rank, &lw->bytes, &status);
    if (status == STRATA_OK && layer->router_bias)
        lw->router_bias = load_vector(model, layer->router_bias, (int64_t)arch->moe.n_experts, &lw->bytes, &status);
    if (status == STRATA_OK) {
        lw->linears = calloc(layer->n_linears, sizeof *lw->linears);
        if (!lw->linears) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory loading layer %d", index);
    }
    for (size_t i = 0; status == STRATA_OK && i < layer->n_linears; i++) {
        layer_linear *l = &lw->linears[i];
        l->desc = &layer->linears[i];
        if (grouped_expert(lw, l->desc)) continue; /* materialized by the MoE block, a group at a time */
        status = load_linear(lw, l);
        if (status == STRATA_OK) lw->bytes += gemm_weight_bytes(l->weight) + (l->bias ? (size_t)l->desc->n_out * 4 : 0);
    }
    if (status == STRATA_OK) status = index_linears(lw);
    if (status != STRATA_OK) layer_weights_free(lw);
    return status;
}

void layer_weights_free(layer_weights *lw)
{
    if (!lw) return;
    if (lw->linears) {
        for (size_t i = 0; i < lw->layer->n_linears; i++) unload_linear(lw, &lw->linears[i]);
    }
    free(lw->linears);
    free(lw->input_norm);
    free(lw->post_attention_norm);
    free(lw->q_norm);
    free(lw->k_norm);
    free(lw->q_a_norm);
    free(lw->kv_a_norm);
    free(lw->router_bias);
    free(lw->expert_gate);
    free(lw->expert_up);
    free(lw->expert_down);
    *lw = (layer_weights){0};
}
