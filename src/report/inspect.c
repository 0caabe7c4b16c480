/*
 * inspect.c — strata_inspect: what a checkpoint holds, as text for people or JSON for
 * machines.
 *
 * The report is built in two steps: gather() opens the checkpoint and collects the
 * architecture, the per-layer tensor groups and the optional statistics into an
 * inspect_data, then render_text() or render_json() formats it, each summing the totals
 * over the same tensors, so both outputs always say the same thing. A directory
 * with config.json is opened as a model (and checked against its description); a lone
 * .safetensors file, or a directory without config.json, is reported as tensors only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/family.h"
#include "core/strbuf.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/safetensors_mapping.h"
#include "model/model_internal.h"
#include "tokenizer/utf8.h"

typedef struct tensor_stats {
    bool computed;
    double absmax;
    int64_t n_nan, n_inf, n_zero;
} tensor_stats;

typedef struct inspect_data {
    const char *path;
    strata_model *model;             /* NULL when reporting tensors only */
    const strata_safetensors *st;
    strata_safetensors *st_owned;
    int n_groups;                    /* decoder layers + 1 (the "other" group, last) */
    size_t *group_of;                /* (n_tensors) group index of each tensor */
    tensor_stats *stats;             /* (n_tensors) when requested */
} inspect_data;

static void data_free(inspect_data *d)
{
    strata_model_close(d->model);
    strata_safetensors_close(d->st_owned);
    free(d->group_of);
    free(d->stats);
}

/* "model.layers.12.mlp..." -> 12; -1 when the name is not inside a decoder layer. */
static int layer_of(const char *name)
{
    static const char PREFIX[] = "model.layers.";
    if (strncmp(name, PREFIX, sizeof PREFIX - 1) != 0) return -1;
    const char *p = name + sizeof PREFIX - 1;
    long value = 0;
    if (*p < '0' || *p > '9') return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        value = value * 10 + (*p - '0');
        if (value > 1000000) return -1;
    }
    return *p == '.' ? (int)value : -1;
}

static strata_status compute_stats(const strata_tensor *t, tensor_stats *s)
{
    enum { CHUNK = 1 << 16 };
    static _Thread_local float buffer[CHUNK];
    *s = (tensor_stats){.computed = true};
    size_t element_size = strata_dtype_size(t->dtype);
    for (int64_t done = 0; done < t->n_elements; done += CHUNK) {
        size_t n = (size_t)(t->n_elements - done < CHUNK ? t->n_elements - done : CHUNK);
        strata_status status = strata_convert_to_f32(t->dtype, (const char *)t->data + (size_t)done * element_size, n, buffer);
        if (status != STRATA_OK) return status;
        for (size_t i = 0; i < n; i++) {
            float v = buffer[i];
            if (isnan(v)) s->n_nan++;
            else if (isinf(v)) s->n_inf++;
            else {
                if (v == 0.0f) s->n_zero++;
                if (fabsf(v) > s->absmax) s->absmax = fabsf(v);
            }
        }
    }
    return STRATA_OK;
}

static strata_status gather(const char *path, const strata_inspect_params *params, inspect_data *d)
{
    *d = (inspect_data){.path = path};
    strata_status status;
    bool dir = path_is_dir(path);
    char *config = dir ? path_join(path, "config.json") : NULL;
    if (dir && !config) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (config && path_exists(config)) {
        status = strata_model_open(path, &d->model);
        if (status != STRATA_OK) { free(config); return status; }
        d->st = strata_model_tensors(d->model);
    } else {
        status = strata_safetensors_open(path, &d->st_owned);
        if (status != STRATA_OK) { free(config); return status; }
        d->st = d->st_owned;
    }
    free(config);

    size_t n = strata_safetensors_count(d->st);
    d->group_of = calloc(n ? n : 1, sizeof *d->group_of);
    if (!d->group_of) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    int n_layers = d->model ? strata_model_arch(d->model)->n_layers : 0;
    for (size_t i = 0; i < n; i++) {
        int layer = layer_of(strata_safetensors_at(d->st, i)->name);
        if (layer + 1 > n_layers) n_layers = layer + 1;
    }
    d->n_groups = n_layers + 1;
    for (size_t i = 0; i < n; i++) {
        int layer = layer_of(strata_safetensors_at(d->st, i)->name);
        d->group_of[i] = layer >= 0 ? (size_t)layer : (size_t)n_layers;
    }
    if (params->stats) {
        d->stats = calloc(n ? n : 1, sizeof *d->stats);
        if (!d->stats) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t i = 0; i < n; i++) {
            const strata_tensor *t = strata_safetensors_at(d->st, i);
            if (!strata_dtype_is_float(t->dtype)) continue;
            status = compute_stats(t, &d->stats[i]);
            /* Read once: its pages leave the resident set (a model larger than memory). */
            safetensors_release_range(d->st, t->data, (size_t)t->n_bytes);
            if (status != STRATA_OK) return strata_fail_context(status, "%s: tensor '%s'", path, t->name);
        }
    }
    return STRATA_OK;
}

/* ------------------------------------------------------------------ text */

/* 1234567 -> "1,234,567" */
static void thousands(char out[40], uint64_t v)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
    for (int i = 0; i < n; i++) {
        if (i > 0 && (n - i) % 3 == 0) out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
}

static void append_thousands(strbuf *sb, uint64_t v)
{
    char text[40];
    thousands(text, v);
    strbuf_append(sb, text);
}

static void append_bytes_human(strbuf *sb, uint64_t bytes)
{
    static const char *const UNITS[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) { v /= 1024; u++; }
    if (u == 0) strbuf_printf(sb, "%llu B", (unsigned long long)bytes);
    else strbuf_printf(sb, "%.2f %s", v, UNITS[u]);
}

static void shape_text(char *buffer, size_t size, const strata_tensor *t)
{
    size_t used = (size_t)snprintf(buffer, size, "[");
    for (int k = 0; k < t->n_dims && used < size; k++)
        used += (size_t)snprintf(buffer + used, size - used, "%s%lld", k ? ", " : "", (long long)t->shape[k]);
    if (used < size) snprintf(buffer + used, size - used, "]");
}


static void text_arch(strbuf *sb, const strata_arch *a)
{
    strbuf_printf(sb, "  architecture  %s (%s)\n", a->architecture[0] ? a->architecture : "?", a->model_type);
    strbuf_printf(sb, "  layers        %d decoder layers, hidden %lld, vocab %lld\n", a->n_layers,
                  (long long)a->hidden_size, (long long)a->vocab_size);
    if (a->mla.kv_lora_rank > 0) {
        strbuf_printf(sb, "  attention     latent (MLA), %d heads, ", a->n_heads);
        if (a->mla.q_lora_rank > 0) strbuf_printf(sb, "q rank %lld, ", (long long)a->mla.q_lora_rank);
        else strbuf_append(sb, "plain q_proj, ");
        strbuf_printf(sb, "kv rank %lld, q/k head %lld + %lld rope, v head %lld, softmax scale %.6g%s\n",
                      (long long)a->mla.kv_lora_rank, (long long)a->mla.qk_nope_head_dim,
                      (long long)a->mla.qk_rope_head_dim, (long long)a->mla.v_head_dim, a->attention_scale,
                      a->qkv_bias ? ", biases" : "");
    } else {
        strbuf_printf(sb, "  attention     %d heads, %d kv heads, head_dim %lld%s%s\n", a->n_heads, a->n_kv_heads,
                      (long long)a->head_dim, a->qk_norm ? ", q/k norm" : "", a->qkv_bias ? ", q/k/v bias" : "");
    }
    strbuf_printf(sb, "  rope          %s, theta %g", rope_type_name(a->rope.type), a->rope.theta);
    if (a->rope.type == STRATA_ROPE_LINEAR) strbuf_printf(sb, ", factor %g", a->rope.factor);
    if (a->rope.type == STRATA_ROPE_LLAMA3)
        strbuf_printf(sb, ", factor %g, low/high freq factor %g/%g, original context %lld", a->rope.factor,
                      a->rope.low_freq_factor, a->rope.high_freq_factor, (long long)a->rope.original_max_position);
    if (a->rope.type == STRATA_ROPE_YARN)
        strbuf_printf(sb, ", factor %g, original context %lld, beta %g/%g, attention factor %g", a->rope.factor,
                      (long long)a->rope.original_max_position, a->yarn.beta_fast, a->yarn.beta_slow,
                      a->yarn.attention_factor);
    if (a->rope_interleave) strbuf_append(sb, ", interleaved pairs");
    if (a->rotary_dim && a->rotary_dim != a->head_dim)
        strbuf_printf(sb, ", rotating %lld of %lld dims per head", (long long)a->rotary_dim, (long long)a->head_dim);
    strbuf_printf(sb, "; context %lld", (long long)a->max_position_embeddings);
    if (a->sliding_window) strbuf_printf(sb, ", sliding window %lld", (long long)a->sliding_window);
    strbuf_append(sb, "\n");
    int n_moe = 0;
    for (int i = 0; i < a->n_layers; i++) n_moe += a->layers[i].is_moe;
    if (n_moe == 0) {
        strbuf_printf(sb, "  mlp           dense SiLU-gated, intermediate %lld\n", (long long)a->intermediate_size);
    } else {
        strbuf_printf(sb, "  mlp           MoE in %d of %d layers: %d experts, top-%d, expert width %lld, %s%s%s\n",
                      n_moe, a->n_layers, a->moe.n_experts, a->moe.top_k, (long long)a->moe.intermediate_size,
                      a->moe.renormalize ? "top-k renormalized" : "top-k not renormalized",
                      a->moe.stacked ? ", stacked experts" : ", experts stored separately",
                      a->moe.shared_intermediate_size ? ", shared expert" : "");
        if (a->routing.sigmoid)
            strbuf_printf(sb, "                routing: sigmoid scores + correction bias, %d groups, best %d "
                              "eligible, weights x %g\n",
                          a->routing.n_group, a->routing.topk_group, a->routing.scaling);
        if (a->moe.shared_intermediate_size)
            strbuf_printf(sb, "                shared expert width %lld (%s)\n", (long long)a->moe.shared_intermediate_size,
                          a->routing.sigmoid ? "ungated" : "sigmoid-gated");
        if (n_moe < a->n_layers)
            strbuf_printf(sb, "                dense layers use intermediate %lld\n", (long long)a->intermediate_size);
    }
    if (a->n_mtp_layers)
        strbuf_printf(sb, "  mtp           %d multi-token-prediction layer%s (model.layers.%d..): copied, never run\n",
                      a->n_mtp_layers, a->n_mtp_layers == 1 ? "" : "s", a->n_layers);
    strbuf_printf(sb, "  norms         RMSNorm eps %g\n", a->rms_norm_eps);
    strbuf_printf(sb, "  embeddings    %s\n", a->tie_word_embeddings ? "tied (lm_head = embed_tokens)" : "untied");
}

static void text_quant(strbuf *sb, const strata_model *model)
{
    const strata_quant_info *q = model ? strata_model_quantization(model) : NULL;
    if (!q) {
        strbuf_append(sb, "  quantization  none\n");
        return;
    }
    strbuf_printf(sb, "  quantization  %s %s (from %s)\n", q->method, q->algo ? q->algo : "", q->source);
    if (q->producer) strbuf_printf(sb, "                producer %s\n", q->producer);
    if (q->group_size) strbuf_printf(sb, "                group size %d\n", q->group_size);
    strbuf_printf(sb, "                kv cache %s\n", q->kv_cache ? q->kv_cache : "not quantized");
    strbuf_printf(sb, "                %zu scale/packing tensors on quantized linears\n",
                  model_quant_tensor_count(model));
    if (q->n_excluded) {
        strbuf_append(sb, "                excluded:");
        for (size_t i = 0; i < q->n_excluded; i++) strbuf_printf(sb, " %s", q->excluded[i]);
        strbuf_append(sb, "\n");
    }
}

static void text_layer_summary(strbuf *sb, const strata_layer *layer, const strata_arch *a)
{
    if (!layer) {
        strbuf_printf(sb, "multi-token prediction (copied, never run)");
        return;
    }
    const char *attention = a->mla.kv_lora_rank == 0 ? "attention q/k/v/o"
                            : a->mla.q_lora_rank > 0 ? "latent attention q_a/q_b/kv_a/kv_b/o"
                                                     : "latent attention q/kv_a/kv_b/o";
    if (!layer->is_moe) {
        strbuf_printf(sb, "%s, dense MLP gate/up/down", attention);
        return;
    }
    strbuf_printf(sb, "%s, router%s, %d experts x gate/up/down%s", attention, layer->router_bias ? " + bias" : "",
                  a->moe.n_experts,
                  !a->moe.shared_intermediate_size ? "" : a->routing.sigmoid ? ", shared experts" : ", shared expert + gate");
}

static void text_group(strbuf *sb, const inspect_data *d, size_t group)
{
    size_t n = strata_safetensors_count(d->st), width = 6, count = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < n; i++) {
        if (d->group_of[i] != group) continue;
        size_t len = strlen(strata_safetensors_at(d->st, i)->name);
        if (len > width) width = len;
        count++;
    }
    if (count == 0) return;
    strbuf_printf(sb, "  %-*s  %-7s  %-20s  %14s", (int)width, "tensor", "dtype", "shape", "bytes");
    if (d->stats) strbuf_printf(sb, "  %12s  %s", "absmax", "nan/inf");
    strbuf_append(sb, "\n");
    for (size_t i = 0; i < n; i++) {
        if (d->group_of[i] != group) continue;
        const strata_tensor *t = strata_safetensors_at(d->st, i);
        char shape[128];
        shape_text(shape, sizeof shape, t);
        strbuf_printf(sb, "  %-*s  %-7s  %-20s  ", (int)width, t->name, strata_dtype_name(t->dtype), shape);
        char number[40];
        thousands(number, t->n_bytes);
        strbuf_printf(sb, "%14s", number);
        if (d->stats && d->stats[i].computed)
            strbuf_printf(sb, "  %12.6g  %lld/%lld", d->stats[i].absmax, (long long)d->stats[i].n_nan,
                          (long long)d->stats[i].n_inf);
        strbuf_append(sb, "\n");
        bytes += t->n_bytes;
    }
    strbuf_printf(sb, "  %zu tensors, ", count);
    append_thousands(sb, bytes);
    strbuf_append(sb, " bytes\n");
}

static void text_totals(strbuf *sb, const inspect_data *d)
{
    uint64_t elements = 0, bytes = 0, by_dtype_bytes[STRATA_DTYPE_COUNT] = {0};
    size_t by_dtype_count[STRATA_DTYPE_COUNT] = {0};
    int64_t nan = 0, inf = 0;
    size_t n = strata_safetensors_count(d->st);
    for (size_t i = 0; i < n; i++) {
        const strata_tensor *t = strata_safetensors_at(d->st, i);
        elements += (uint64_t)t->n_elements;
        bytes += t->n_bytes;
        by_dtype_bytes[t->dtype] += t->n_bytes;
        by_dtype_count[t->dtype]++;
        if (d->stats) { nan += d->stats[i].n_nan; inf += d->stats[i].n_inf; }
    }
    bool quantized = d->model && strata_model_quantization(d->model);
    strbuf_append(sb, "\ntotals\n");
    strbuf_printf(sb, "  %-14s", quantized ? "elements" : "parameters");
    append_thousands(sb, elements);
    strbuf_printf(sb, "%s\n", quantized ? " (as stored; packed weights hold several values per element)" : "");
    strbuf_printf(sb, "  %-14s%zu in %zu file%s, ", "tensors", n, strata_safetensors_shard_count(d->st),
                  strata_safetensors_shard_count(d->st) == 1 ? "" : "s");
    append_thousands(sb, bytes);
    strbuf_append(sb, " bytes (");
    append_bytes_human(sb, bytes);
    strbuf_append(sb, ")\n");
    for (int k = 0; k < STRATA_DTYPE_COUNT; k++) {
        if (!by_dtype_count[k]) continue;
        strbuf_printf(sb, "  %-14s%zu tensors, ", strata_dtype_name((strata_dtype)k), by_dtype_count[k]);
        append_thousands(sb, by_dtype_bytes[k]);
        strbuf_append(sb, " bytes\n");
    }
    if (d->stats) strbuf_printf(sb, "  %-14s%lld NaN, %lld Inf\n", "non-finite", (long long)nan, (long long)inf);
    if (d->model) {
        size_t unexpected = strata_model_unexpected_count(d->model);
        strbuf_printf(sb, "  %-14s%zu%s\n", "unexpected", unexpected,
                      unexpected ? " tensors the architecture does not use:" : "");
        for (size_t i = 0; i < unexpected; i++) strbuf_printf(sb, "    %s\n", strata_model_unexpected(d->model, i));
    }
}

static char *render_text(const inspect_data *d)
{
    strbuf sb = {0};
    strbuf_printf(&sb, "%s\n", d->path);
    strbuf_printf(&sb, "  checkpoint    %zu file%s:", strata_safetensors_shard_count(d->st),
                  strata_safetensors_shard_count(d->st) == 1 ? "" : "s");
    for (size_t s = 0; s < strata_safetensors_shard_count(d->st); s++) {
        const char *file = strata_safetensors_shard_path(d->st, s);
        const char *base = strrchr(file, '/');
        strbuf_printf(&sb, "%s%s", s ? ", " : " ", base ? base + 1 : file);
        if (s == 7 && strata_safetensors_shard_count(d->st) > 9) {
            strbuf_printf(&sb, ", ... (%zu more)", strata_safetensors_shard_count(d->st) - 8);
            break;
        }
    }
    strbuf_append(&sb, "\n");
    const strata_arch *a = d->model ? strata_model_arch(d->model) : NULL;
    if (a) text_arch(&sb, a);
    else strbuf_append(&sb, "  architecture  unknown (no config.json): tensors only\n");
    text_quant(&sb, d->model);
    for (int g = 0; g < d->n_groups; g++) {
        bool other = g == d->n_groups - 1;
        if (other) strbuf_append(&sb, "\nembeddings, final norm, lm_head and other tensors\n");
        else {
            strbuf_printf(&sb, "\nlayer %d", g);
            if (a && g < a->n_layers + a->n_mtp_layers) {
                strbuf_append(&sb, ": ");
                text_layer_summary(&sb, g < a->n_layers ? &a->layers[g] : NULL, a);
            }
            strbuf_append(&sb, "\n");
        }
        text_group(&sb, d, (size_t)g);
    }
    text_totals(&sb, d);
    return strbuf_take(&sb);
}

/* ------------------------------------------------------------------ json */

/* A path as a JSON string: bytes that are not UTF-8 (a file name may hold any) become
 * U+FFFD, so only a failed allocation leaves it NULL. */
static sjson *json_path(const char *path)
{
    char *valid = NULL;
    size_t length;
    utf8_repair repair;
    if (!utf8_make_valid(path, strlen(path), &valid, &length, &repair)) return NULL;
    sjson *value = sjson_new_string(valid);
    free(valid);
    return value;
}

static sjson *json_arch(const strata_arch *a, bool *ok)
{
    sjson *o = sjson_new_object();
    sjson_put(ok, o, "model_type", sjson_new_string(a->model_type));
    sjson_put(ok, o, "architecture", sjson_new_string(a->architecture));
    sjson_put(ok, o, "num_layers", sjson_new_int(a->n_layers));
    sjson_put(ok, o, "hidden_size", sjson_new_int(a->hidden_size));
    sjson_put(ok, o, "intermediate_size", sjson_new_int(a->intermediate_size));
    sjson_put(ok, o, "vocab_size", sjson_new_int(a->vocab_size));
    sjson_put(ok, o, "num_attention_heads", sjson_new_int(a->n_heads));
    sjson_put(ok, o, "num_key_value_heads", sjson_new_int(a->n_kv_heads));
    sjson_put(ok, o, "head_dim", sjson_new_int(a->head_dim));
    sjson_put(ok, o, "rotary_dim", sjson_new_int(a->rotary_dim));
    sjson_put(ok, o, "attention_scale", sjson_new_real(a->attention_scale));
    if (a->mla.kv_lora_rank > 0) {
        sjson *mla = sjson_new_object();
        sjson_put(ok, mla, "q_lora_rank", a->mla.q_lora_rank ? sjson_new_int(a->mla.q_lora_rank) : sjson_new_null());
        sjson_put(ok, mla, "kv_lora_rank", sjson_new_int(a->mla.kv_lora_rank));
        sjson_put(ok, mla, "qk_nope_head_dim", sjson_new_int(a->mla.qk_nope_head_dim));
        sjson_put(ok, mla, "qk_rope_head_dim", sjson_new_int(a->mla.qk_rope_head_dim));
        sjson_put(ok, mla, "v_head_dim", sjson_new_int(a->mla.v_head_dim));
        sjson_put(ok, o, "mla", mla);
    }
    sjson_put(ok, o, "mtp_layers", sjson_new_int(a->n_mtp_layers));
    sjson_put(ok, o, "rms_norm_eps", sjson_new_real(a->rms_norm_eps));
    sjson_put(ok, o, "max_position_embeddings", sjson_new_int(a->max_position_embeddings));
    sjson_put(ok, o, "sliding_window", a->sliding_window ? sjson_new_int(a->sliding_window) : sjson_new_null());
    sjson *rope = sjson_new_object();
    sjson_put(ok, rope, "type", sjson_new_string(rope_type_name(a->rope.type)));
    sjson_put(ok, rope, "theta", sjson_new_real(a->rope.theta));
    if (a->rope.type != STRATA_ROPE_DEFAULT) sjson_put(ok, rope, "factor", sjson_new_real(a->rope.factor));
    if (a->rope.type == STRATA_ROPE_LLAMA3) {
        sjson_put(ok, rope, "low_freq_factor", sjson_new_real(a->rope.low_freq_factor));
        sjson_put(ok, rope, "high_freq_factor", sjson_new_real(a->rope.high_freq_factor));
        sjson_put(ok, rope, "original_max_position_embeddings", sjson_new_int(a->rope.original_max_position));
    }
    if (a->rope.type == STRATA_ROPE_YARN) {
        sjson_put(ok, rope, "original_max_position_embeddings", sjson_new_int(a->rope.original_max_position));
        sjson_put(ok, rope, "beta_fast", sjson_new_real(a->yarn.beta_fast));
        sjson_put(ok, rope, "beta_slow", sjson_new_real(a->yarn.beta_slow));
        sjson_put(ok, rope, "attention_factor", sjson_new_real(a->yarn.attention_factor));
        sjson_put(ok, rope, "mscale_all_dim", sjson_new_real(a->yarn.mscale_all_dim));
    }
    sjson_put(ok, rope, "interleaved", sjson_new_bool(a->rope_interleave));
    sjson_put(ok, o, "rope", rope);
    sjson_put(ok, o, "tie_word_embeddings", sjson_new_bool(a->tie_word_embeddings));
    sjson_put(ok, o, "qkv_bias", sjson_new_bool(a->qkv_bias));
    sjson_put(ok, o, "o_bias", sjson_new_bool(a->o_bias));
    sjson_put(ok, o, "mlp_bias", sjson_new_bool(a->mlp_bias));
    sjson_put(ok, o, "qk_norm", sjson_new_bool(a->qk_norm));
    if (a->moe.n_experts > 0) {
        sjson *moe = sjson_new_object();
        sjson_put(ok, moe, "num_experts", sjson_new_int(a->moe.n_experts));
        sjson_put(ok, moe, "top_k", sjson_new_int(a->moe.top_k));
        sjson_put(ok, moe, "expert_intermediate_size", sjson_new_int(a->moe.intermediate_size));
        sjson_put(ok, moe, "shared_expert_intermediate_size", sjson_new_int(a->moe.shared_intermediate_size));
        sjson_put(ok, moe, "softmax_before_topk", sjson_new_bool(a->moe.softmax_before_topk));
        sjson_put(ok, moe, "renormalize", sjson_new_bool(a->moe.renormalize));
        sjson_put(ok, moe, "stacked_experts", sjson_new_bool(a->moe.stacked));
        sjson_put(ok, moe, "scoring", sjson_new_string(a->routing.sigmoid ? "sigmoid" : "softmax"));
        if (a->routing.sigmoid) {
            sjson_put(ok, moe, "n_group", sjson_new_int(a->routing.n_group));
            sjson_put(ok, moe, "topk_group", sjson_new_int(a->routing.topk_group));
            sjson_put(ok, moe, "routed_scaling_factor", sjson_new_real(a->routing.scaling));
        }
        sjson_put(ok, o, "moe", moe);
    } else {
        sjson_put(ok, o, "moe", sjson_new_null());
    }
    sjson_put(ok, o, "embed_tokens", sjson_new_string(a->embed_tokens));
    sjson_put(ok, o, "final_norm", sjson_new_string(a->final_norm));
    sjson_put(ok, o, "lm_head", sjson_new_string(a->lm_head));
    return o;
}

static sjson *json_linears(const strata_layer *layer, bool *ok)
{
    sjson *list = sjson_new_array();
    for (size_t k = 0; k < layer->n_linears; k++) {
        const strata_linear *l = &layer->linears[k];
        sjson *o = sjson_new_object();
        sjson_put(ok, o, "name", sjson_new_string(l->name));
        sjson_put(ok, o, "role", sjson_new_string(strata_linear_role_name(l->role)));
        sjson_put(ok, o, "weight", sjson_new_string(l->weight));
        if (l->stack_index >= 0) {
            sjson_put(ok, o, "stack_index", sjson_new_int(l->stack_index));
            sjson_put(ok, o, "row_offset", sjson_new_int(l->row_offset));
        }
        if (l->bias) sjson_put(ok, o, "bias", sjson_new_string(l->bias));
        if (l->expert >= 0) sjson_put(ok, o, "expert", sjson_new_int(l->expert));
        if (l->shared_expert) sjson_put(ok, o, "shared_expert", sjson_new_bool(true));
        sjson *shape = sjson_new_array();
        sjson_push(ok, shape, sjson_new_int(l->n_out));
        sjson_push(ok, shape, sjson_new_int(l->n_in));
        sjson_put(ok, o, "shape", shape);
        sjson_put(ok, o, "quantizable", sjson_new_bool(l->quantizable));
        sjson_push(ok, list, o);
    }
    return list;
}

static sjson *json_tensor(const inspect_data *d, size_t i, bool *ok)
{
    const strata_tensor *t = strata_safetensors_at(d->st, i);
    sjson *o = sjson_new_object();
    sjson_put(ok, o, "name", sjson_new_string(t->name));
    sjson_put(ok, o, "dtype", sjson_new_string(strata_dtype_name(t->dtype)));
    sjson *shape = sjson_new_array();
    for (int k = 0; k < t->n_dims; k++) sjson_push(ok, shape, sjson_new_int(t->shape[k]));
    sjson_put(ok, o, "shape", shape);
    sjson_put(ok, o, "bytes", sjson_new_int((int64_t)t->n_bytes));
    sjson_put(ok, o, "shard", sjson_new_int((int64_t)t->shard));
    if (d->stats && d->stats[i].computed) {
        sjson_put(ok, o, "absmax", sjson_new_real(d->stats[i].absmax));
        sjson_put(ok, o, "nan", sjson_new_int(d->stats[i].n_nan));
        sjson_put(ok, o, "inf", sjson_new_int(d->stats[i].n_inf));
        sjson_put(ok, o, "zeros", sjson_new_int(d->stats[i].n_zero));
    }
    return o;
}

static sjson *json_quant(const strata_model *model, bool *ok)
{
    const strata_quant_info *q = model ? strata_model_quantization(model) : NULL;
    if (!q) return sjson_new_null();
    sjson *o = sjson_new_object();
    sjson_put(ok, o, "source", sjson_new_string(q->source));
    sjson_put(ok, o, "method", sjson_new_string(q->method));
    sjson_put(ok, o, "algo", q->algo ? sjson_new_string(q->algo) : sjson_new_null());
    sjson_put(ok, o, "kv_cache", q->kv_cache ? sjson_new_string(q->kv_cache) : sjson_new_null());
    sjson_put(ok, o, "producer", q->producer ? sjson_new_string(q->producer) : sjson_new_null());
    sjson_put(ok, o, "group_size", q->group_size ? sjson_new_int(q->group_size) : sjson_new_null());
    sjson *excluded = sjson_new_array();
    for (size_t i = 0; i < q->n_excluded; i++) sjson_push(ok, excluded, sjson_new_string(q->excluded[i]));
    sjson_put(ok, o, "excluded", excluded);
    sjson_put(ok, o, "quant_tensors", sjson_new_int((int64_t)model_quant_tensor_count(model)));
    sjson_error error;
    sjson *raw = sjson_parse(q->json, strlen(q->json), false, &error);
    sjson_put(ok, o, "config", raw ? raw : sjson_new_null());
    return o;
}

/* NULL when building the report failed (out of memory): never a truncated report. */
static char *render_json(const inspect_data *d)
{
    bool all_set = true, *ok = &all_set;
    const strata_arch *a = d->model ? strata_model_arch(d->model) : NULL;
    sjson *root = sjson_new_object();
    sjson_put(ok, root, "path", json_path(d->path));
    sjson *shards = sjson_new_array();
    for (size_t s = 0; s < strata_safetensors_shard_count(d->st); s++) {
        sjson *o = sjson_new_object();
        sjson_put(ok, o, "file", json_path(strata_safetensors_shard_path(d->st, s)));
        sjson_put(ok, o, "bytes", sjson_new_int((int64_t)strata_safetensors_shard_size(d->st, s)));
        sjson_push(ok, shards, o);
    }
    sjson_put(ok, root, "shards", shards);
    sjson *meta = sjson_new_object();
    for (size_t i = 0; i < strata_safetensors_metadata_count(d->st); i++) {
        const char *key, *value;
        strata_safetensors_metadata_at(d->st, i, &key, &value);
        sjson_put(ok, meta, key, sjson_new_string(value));
    }
    sjson_put(ok, root, "metadata", meta);
    sjson_put(ok, root, "architecture", a ? json_arch(a, ok) : sjson_new_null());
    sjson_put(ok, root, "quantization", json_quant(d->model, ok));

    sjson *layers = sjson_new_array(), *other = sjson_new_array();
    size_t n = strata_safetensors_count(d->st);
    for (int g = 0; g < d->n_groups - 1; g++) {
        sjson *layer = sjson_new_object();
        sjson_put(ok, layer, "index", sjson_new_int(g));
        if (a && g < a->n_layers) {
            sjson_put(ok, layer, "moe", sjson_new_bool(a->layers[g].is_moe));
            sjson_put(ok, layer, "linears", json_linears(&a->layers[g], ok));
        }
        sjson *tensors = sjson_new_array();
        for (size_t i = 0; i < n; i++)
            if (d->group_of[i] == (size_t)g) sjson_push(ok, tensors, json_tensor(d, i, ok));
        sjson_put(ok, layer, "tensors", tensors);
        sjson_push(ok, layers, layer);
    }
    for (size_t i = 0; i < n; i++)
        if (d->group_of[i] == (size_t)(d->n_groups - 1)) sjson_push(ok, other, json_tensor(d, i, ok));
    sjson_put(ok, root, "layers", layers);
    sjson_put(ok, root, "other_tensors", other);

    uint64_t elements = 0, bytes = 0;
    sjson *by_dtype = sjson_new_object();
    for (int k = 0; k < STRATA_DTYPE_COUNT; k++) {
        uint64_t dtype_bytes = 0;
        int64_t count = 0;
        for (size_t i = 0; i < n; i++) {
            const strata_tensor *t = strata_safetensors_at(d->st, i);
            if (t->dtype != (strata_dtype)k) continue;
            dtype_bytes += t->n_bytes;
            count++;
        }
        if (!count) continue;
        sjson *o = sjson_new_object();
        sjson_put(ok, o, "tensors", sjson_new_int(count));
        sjson_put(ok, o, "bytes", sjson_new_int((int64_t)dtype_bytes));
        sjson_put(ok, by_dtype, strata_dtype_name((strata_dtype)k), o);
    }
    for (size_t i = 0; i < n; i++) {
        elements += (uint64_t)strata_safetensors_at(d->st, i)->n_elements;
        bytes += strata_safetensors_at(d->st, i)->n_bytes;
    }
    sjson *totals = sjson_new_object();
    sjson_put(ok, totals, "tensors", sjson_new_int((int64_t)n));
    sjson_put(ok, totals, "elements", sjson_new_int((int64_t)elements));
    sjson_put(ok, totals, "bytes", sjson_new_int((int64_t)bytes));
    sjson_put(ok, totals, "by_dtype", by_dtype);
    sjson_put(ok, root, "totals", totals);
    sjson *unexpected = sjson_new_array();
    for (size_t i = 0; d->model && i < strata_model_unexpected_count(d->model); i++)
        sjson_push(ok, unexpected, sjson_new_string(strata_model_unexpected(d->model, i)));
    sjson_put(ok, root, "unexpected", unexpected);

    char *text = all_set ? sjson_dump(root, 2) : NULL;
    sjson_free(root);
    if (!text) return NULL;
    size_t length = strlen(text);
    char *out = realloc(text, length + 2);
    if (!out) { free(text); return NULL; }
    out[length] = '\n';
    out[length + 1] = '\0';
    return out;
}

strata_status strata_inspect(const char *path, const strata_inspect_params *params, char **report)
{
    if (!path || !report) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_inspect: NULL argument");
    *report = NULL;
    strata_inspect_params defaults = {0};
    if (!params) params = &defaults;
    inspect_data d;
    strata_status status = gather(path, params, &d);
    if (status == STRATA_OK) {
        *report = params->json ? render_json(&d) : render_text(&d);
        if (!*report) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory writing the report", path);
    }
    data_free(&d);
    return status;
}
