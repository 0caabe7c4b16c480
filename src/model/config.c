/*
 * config.c — HF config.json -> strata_arch.
 *
 * Reads the keys transformers reads for each family, with that family's defaults for
 * missing keys (family.c), and refuses what strata cannot run faithfully: other
 * architectures, activations other than SiLU, RoPE scaling other than default / linear /
 * llama3 / yarn, partial rotary embeddings outside the families that use them (glm4_moe),
 * inconsistent head counts, DeepSeek routing other than V3's. Every message names the
 * file and the key.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/rope.h"
#include "model/desc.h"
#include "model/family.h"

/* Limits that no real checkpoint reaches; they keep later size arithmetic far from
 * overflow when a config is hostile. */
#define MAX_HIDDEN (1 << 20)
#define MAX_LAYERS 4096
#define MAX_HEADS 4096
#define MAX_VOCAB (1 << 24)
#define MAX_WIDTH (1 << 22)
#define MAX_EXPERTS 4096
#define MAX_TOTAL_EXPERTS (1 << 20) /* over all layers; DeepSeek-V3 has 15,677 */

typedef struct reader {
    const sjson *root;
    const char *path;
} reader;

/* Integer key: *out = value, or the default when absent/null. Fails on wrong type or a
 * value outside [lo, hi]. has_default false makes the key required. */
static strata_status get_int(const reader *r, const char *key, bool has_default, int64_t def, int64_t lo,
                             int64_t hi, int64_t *out)
{
    const sjson *v = sjson_get(r->root, key);
    if (!v || sjson_is_null(v)) {
        if (!has_default) return strata_fail(STRATA_ERR_FORMAT, "%s: missing required key \"%s\"", r->path, key);
        *out = def;
        return STRATA_OK;
    }
    int64_t value;
    if (!sjson_as_int64(v, &value))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"%s\" must be an integer, found %s", r->path, key, sjson_type_name(v));
    if (value < lo || value > hi)
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"%s\" is %lld, outside [%lld, %lld]", r->path, key,
                           (long long)value, (long long)lo, (long long)hi);
    *out = value;
    return STRATA_OK;
}

static strata_status get_double(const reader *r, const sjson *object, const char *key, double def, double *out)
{
    const sjson *v = sjson_get(object, key);
    if (!v || sjson_is_null(v)) {
        *out = def;
        return STRATA_OK;
    }
    if (!sjson_as_double(v, out) || !isfinite(*out))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"%s\" must be a finite number, found %s", r->path, key,
                           sjson_type_name(v));
    return STRATA_OK;
}

static strata_status get_bool(const reader *r, const char *key, bool def, bool *out)
{
    const sjson *v = sjson_get(r->root, key);
    if (!v || sjson_is_null(v)) {
        *out = def;
        return STRATA_OK;
    }
    if (!sjson_as_bool(v, out))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"%s\" must be true or false, found %s", r->path, key,
                           sjson_type_name(v));
    return STRATA_OK;
}

#define TRY(expr)                                  \
    do {                                           \
        strata_status try_status_ = (expr);        \
        if (try_status_ != STRATA_OK) return try_status_; \
    } while (0)

/* rope_scaling (transformers v4) or rope_parameters (v5). */
/* The qwen2/qwen3 families window only some layers: those layer_types marks
 * "sliding_attention", or else layers >= max_window_layers. strata runs one window for all
 * layers, so a config that mixes windowed and full layers is refused by name, and one
 * that windows no layer drops the window. */
static strata_status window_layers(const reader *r, const sjson *config, strata_arch *a)
{
    int64_t windowed = 0;
    const sjson *types = sjson_get(config, "layer_types");
    if (types && !sjson_is_null(types)) {
        if (!sjson_is_array(types) || sjson_array_size(types) != (size_t)a->n_layers)
            return strata_fail(STRATA_ERR_FORMAT, "%s: \"layer_types\" must list one type per layer", r->path);
        for (size_t i = 0; i < sjson_array_size(types); i++) {
            const char *type = sjson_as_string(sjson_array_at(types, i));
            if (type && strcmp(type, "sliding_attention") == 0) windowed++;
            else if (!type || strcmp(type, "full_attention") != 0)
                return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: layer_types[%zu] is not a supported attention type", r->path,
                                   i);
        }
    } else {
        int64_t first;
        TRY(get_int(r, "max_window_layers", true, 28, 0, MAX_LAYERS, &first));
        windowed = first >= a->n_layers ? 0 : a->n_layers - first;
    }
    if (windowed == 0) a->sliding_window = 0;
    else if (windowed != a->n_layers)
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "%s: sliding-window attention on %lld of %d layers (max_window_layers / layer_types) is not "
                           "supported; strata windows all layers or none",
                           r->path, (long long)windowed, a->n_layers);
    return STRATA_OK;
}

/* YaRN's mscale (its paper's Eq. 21): 0.1 * mscale * ln(scale) + 1, or 1 when scale <= 1. */
static double yarn_mscale(double scale, double mscale)
{
    return scale <= 1 ? 1.0 : 0.1 * mscale * log(scale) + 1.0;
}

/* rope_type "yarn", as transformers' _compute_yarn_parameters reads it. */
static strata_status parse_yarn(const reader *r, const sjson *params, strata_arch *a)
{
    a->rope.type = STRATA_ROPE_YARN;
    double original = 0, mscale = 0;
    TRY(get_double(r, params, "original_max_position_embeddings", 0, &original));
    if (original < 1 || original > 1e9 || original != floor(original))
        return strata_fail(STRATA_ERR_FORMAT, "%s: yarn rope scaling needs an integer \"original_max_position_embeddings\"",
                           r->path);
    a->rope.original_max_position = (int64_t)original;
    TRY(get_double(r, params, "factor", (double)a->max_position_embeddings / original, &a->rope.factor));
    TRY(get_double(r, params, "beta_fast", 32, &a->yarn.beta_fast));
    TRY(get_double(r, params, "beta_slow", 1, &a->yarn.beta_slow));
    if (a->yarn.beta_fast == 0) a->yarn.beta_fast = 32; /* `or 32`, as transformers */
    if (a->yarn.beta_slow == 0) a->yarn.beta_slow = 1;
    TRY(get_double(r, params, "mscale", 0, &mscale));
    TRY(get_double(r, params, "mscale_all_dim", 0, &a->yarn.mscale_all_dim));
    const sjson *truncate = sjson_get(params, "truncate");
    a->yarn.truncate = true;
    if (truncate && !sjson_is_null(truncate) && !sjson_as_bool(truncate, &a->yarn.truncate))
        return strata_fail(STRATA_ERR_FORMAT, "%s: yarn \"truncate\" must be true or false", r->path);
    if (!(a->rope.factor > 0) || !(a->yarn.beta_fast > 0) || !(a->yarn.beta_slow > 0))
        return strata_fail(STRATA_ERR_FORMAT, "%s: yarn rope scaling needs factor, beta_fast and beta_slow > 0", r->path);
    double given = 0;
    TRY(get_double(r, params, "attention_factor", 0, &given));
    if (given > 0) a->yarn.attention_factor = given;
    else if (mscale != 0 && a->yarn.mscale_all_dim != 0)
        a->yarn.attention_factor = yarn_mscale(a->rope.factor, mscale) / yarn_mscale(a->rope.factor, a->yarn.mscale_all_dim);
    else a->yarn.attention_factor = yarn_mscale(a->rope.factor, 1.0);
    return STRATA_OK;
}

static strata_status parse_rope(const reader *r, const family_traits *f, strata_arch *a)
{
    const sjson *params = sjson_get(r->root, "rope_parameters");
    const sjson *scaling = sjson_get(r->root, "rope_scaling");
    TRY(get_double(r, r->root, "rope_theta", f->default_rope_theta, &a->rope.theta));
    if (sjson_is_object(params)) TRY(get_double(r, params, "rope_theta", a->rope.theta, &a->rope.theta));
    else params = scaling;
    if (a->rope.theta <= 0) return strata_fail(STRATA_ERR_FORMAT, "%s: \"rope_theta\" must be positive", r->path);

    /* Partial rotary embeddings (glm4_moe): the first head_dim * factor dims of each head. */
    double partial;
    TRY(get_double(r, r->root, "partial_rotary_factor", f->default_partial_rotary ? f->default_partial_rotary : 1.0,
                   &partial));
    if (sjson_is_object(params)) TRY(get_double(r, params, "partial_rotary_factor", partial, &partial));
    if (partial != 1.0 && !f->default_partial_rotary)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: \"partial_rotary_factor\" %g is not supported for %s (only 1.0)",
                           r->path, partial, f->model_type);
    /* transformers' rope head_dim: DeepSeek's config sets it to qk_rope_head_dim. */
    int64_t rope_head_dim = f->mla ? a->mla.qk_rope_head_dim : a->head_dim;
    a->rotary_dim = (int64_t)((double)rope_head_dim * partial); /* int(head_dim * factor), as transformers */
    if (!(partial > 0 && partial <= 1) || a->rotary_dim < 2 || a->rotary_dim % 2 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"partial_rotary_factor\" %g of head_dim %lld gives %lld rotary dims; "
                           "they must be even and at least 2", r->path, partial, (long long)rope_head_dim,
                           (long long)a->rotary_dim);

    a->rope.type = STRATA_ROPE_DEFAULT;
    if (!params || sjson_is_null(params)) return STRATA_OK;
    if (!sjson_is_object(params))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"rope_scaling\" must be an object or null", r->path);
    const char *type = sjson_as_string(sjson_get(params, "rope_type"));
    if (!type) type = sjson_as_string(sjson_get(params, "type"));
    if (!type || strcmp(type, "default") == 0) return STRATA_OK;
    if (strcmp(type, "linear") == 0) {
        a->rope.type = STRATA_ROPE_LINEAR;
        TRY(get_double(r, params, "factor", 0, &a->rope.factor));
        if (a->rope.factor <= 0)
            return strata_fail(STRATA_ERR_FORMAT, "%s: linear rope scaling needs a positive \"factor\"", r->path);
        return STRATA_OK;
    }
    if (strcmp(type, "llama3") == 0) {
        a->rope.type = STRATA_ROPE_LLAMA3;
        double original = 0;
        TRY(get_double(r, params, "factor", 0, &a->rope.factor));
        TRY(get_double(r, params, "low_freq_factor", 0, &a->rope.low_freq_factor));
        TRY(get_double(r, params, "high_freq_factor", 0, &a->rope.high_freq_factor));
        TRY(get_double(r, params, "original_max_position_embeddings", 0, &original));
        if (a->rope.factor <= 0 || a->rope.low_freq_factor <= 0 || a->rope.high_freq_factor <= a->rope.low_freq_factor ||
            original < 1 || original > 1e9 || original != floor(original))
            return strata_fail(STRATA_ERR_FORMAT,
                               "%s: llama3 rope scaling needs factor > 0, 0 < low_freq_factor < high_freq_factor "
                               "and an integer original_max_position_embeddings",
                               r->path);
        a->rope.original_max_position = (int64_t)original;
        return STRATA_OK;
    }
    if (strcmp(type, "yarn") == 0) return parse_yarn(r, params, a);
    return strata_fail(STRATA_ERR_UNSUPPORTED,
                       "%s: rope scaling type '%s' is not supported (supported: default, linear, llama3, yarn)", r->path,
                       type);
}

static strata_status parse_moe(const reader *r, const family_traits *f, model_desc *d)
{
    strata_arch *a = &d->arch;
    int64_t v;
    TRY(get_int(r, f->n_experts_key, true, f->default_n_experts, 0, MAX_EXPERTS, &v));
    a->moe.n_experts = (int)v;
    TRY(get_int(r, "num_experts_per_tok", true, f->default_top_k, 1, MAX_EXPERTS, &v));
    a->moe.top_k = (int)v;
    if (a->moe.n_experts > 0 && a->moe.top_k > a->moe.n_experts)
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"num_experts_per_tok\" %d exceeds the %d experts", r->path,
                           a->moe.top_k, a->moe.n_experts);
    if ((int64_t)a->moe.n_experts * a->n_layers > MAX_TOTAL_EXPERTS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: %d layers of %d experts exceed the %d experts strata describes",
                           r->path, a->n_layers, a->moe.n_experts, MAX_TOTAL_EXPERTS);
    TRY(get_int(r, f->expert_width_key, false, 0, 1, MAX_WIDTH, &a->moe.intermediate_size));
    if (f->shared_expert)
        TRY(get_int(r, "shared_expert_intermediate_size", false, 0, 0, MAX_WIDTH, &a->moe.shared_intermediate_size));
    a->moe.softmax_before_topk = !f->sigmoid_routing;
    if (f->renormalize_always) a->moe.renormalize = true;
    else TRY(get_bool(r, "norm_topk_prob", f->default_norm_topk_prob, &a->moe.renormalize));
    if (f->sigmoid_routing) {
        a->routing.sigmoid = true;
        TRY(get_int(r, "n_group", true, 1, 1, MAX_EXPERTS, &v));
        a->routing.n_group = (int)v;
        TRY(get_int(r, "topk_group", true, 1, 1, MAX_EXPERTS, &v));
        a->routing.topk_group = (int)v;
        TRY(get_double(r, r->root, "routed_scaling_factor", 1.0, &a->routing.scaling));
        int per_group = a->moe.n_experts / a->routing.n_group;
        if (a->moe.n_experts % a->routing.n_group != 0 || per_group < 2 || a->routing.topk_group > a->routing.n_group ||
            a->moe.top_k > a->routing.topk_group * per_group || !(a->routing.scaling > 0))
            return strata_fail(STRATA_ERR_FORMAT,
                               "%s: %d experts in \"n_group\" %d groups with \"topk_group\" %d cannot give "
                               "\"num_experts_per_tok\" %d (groups of at least 2 experts; routed_scaling_factor > 0)",
                               r->path, a->moe.n_experts, a->routing.n_group, a->routing.topk_group, a->moe.top_k);
    }
    if (f->mla) {
        /* DeepSeek-V2's softmax scores and greedy group limit are another router. */
        const char *scoring = sjson_as_string(sjson_get(r->root, "scoring_func"));
        const char *method = sjson_as_string(sjson_get(r->root, "topk_method"));
        if ((scoring && strcmp(scoring, "sigmoid") != 0) || (method && strcmp(method, "noaux_tc") != 0))
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "%s: \"scoring_func\" '%s' / \"topk_method\" '%s' are not supported for %s "
                               "(only DeepSeek-V3's sigmoid / noaux_tc routing)",
                               r->path, scoring ? scoring : "sigmoid", method ? method : "noaux_tc", f->model_type);
    }
    if (f->shared_experts) {
        TRY(get_int(r, "n_shared_experts", true, 1, 0, 64, &v));
        a->moe.shared_intermediate_size = v * a->moe.intermediate_size;
    }

    int64_t step = 1;
    if (f->sparse_step) TRY(get_int(r, "decoder_sparse_step", true, 1, 0, MAX_LAYERS, &step));
    const sjson *only = sjson_get(r->root, "mlp_only_layers");
    if (only && !sjson_is_null(only) && !sjson_is_array(only))
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"mlp_only_layers\" must be an array of layer indices", r->path);
    int64_t first_dense = 0, freq = 1;
    if (f->first_dense_key) TRY(get_int(r, f->first_dense_key, true, 1, 0, MAX_LAYERS, &first_dense));
    if (f->moe_freq_key) TRY(get_int(r, f->moe_freq_key, true, 1, 1, MAX_LAYERS, &freq));
    for (int i = 0; i < a->n_layers; i++) {
        /* DeepSeek's own modeling code: layer_idx >= first_k_dense_replace and
         * layer_idx % moe_layer_freq == 0 (transformers reads only the first; V3 has freq 1) */
        bool sparse = a->moe.n_experts > 0 && i >= first_dense && i % freq == 0;
        if (f->sparse_step) sparse = sparse && step > 0 && (i + 1) % step == 0;
        d->moe_layer[i] = sparse;
    }
    for (size_t k = 0; f->sparse_step && k < sjson_array_size(only); k++) {
        int64_t layer;
        if (!sjson_as_int64(sjson_array_at(only, k), &layer) || layer < 0 || layer >= a->n_layers)
            return strata_fail(STRATA_ERR_FORMAT, "%s: \"mlp_only_layers\" entry %zu is not a layer index", r->path, k);
        d->moe_layer[layer] = false;
    }
    return STRATA_OK;
}

/* Multi-head latent attention (transformers' DeepseekV3Config keys and defaults). */
static strata_status parse_mla(const reader *r, strata_arch *a)
{
    const sjson *q_lora = sjson_get(r->root, "q_lora_rank");
    if (q_lora && sjson_is_null(q_lora)) a->mla.q_lora_rank = 0; /* a plain q_proj */
    else TRY(get_int(r, "q_lora_rank", true, 1536, 1, MAX_WIDTH, &a->mla.q_lora_rank));
    TRY(get_int(r, "kv_lora_rank", true, 512, 1, MAX_WIDTH, &a->mla.kv_lora_rank));
    TRY(get_int(r, "qk_nope_head_dim", true, 128, 0, MAX_WIDTH, &a->mla.qk_nope_head_dim));
    TRY(get_int(r, "qk_rope_head_dim", true, 64, 2, ROPE_MAX_INTERLEAVED_DIM, &a->mla.qk_rope_head_dim));
    TRY(get_int(r, "v_head_dim", true, 128, 1, MAX_WIDTH, &a->mla.v_head_dim));
    TRY(get_bool(r, "rope_interleave", true, &a->rope_interleave));
    if (a->mla.qk_rope_head_dim % 2 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: \"qk_rope_head_dim\" %lld must be even", r->path,
                           (long long)a->mla.qk_rope_head_dim);
    if (a->n_kv_heads != a->n_heads)
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "%s: \"num_key_value_heads\" %d differs from \"num_attention_heads\" %d; latent attention "
                           "expands its keys and values to every head",
                           r->path, a->n_kv_heads, a->n_heads);
    a->head_dim = a->mla.qk_nope_head_dim + a->mla.qk_rope_head_dim; /* transformers' qk_head_dim */
    return STRATA_OK;
}

/* The softmax scale: head_dim^-0.5, and for latent attention with YaRN also
 * yarn_mscale(factor, mscale_all_dim)^2 (transformers' yarn_apply_mscale). */
static void set_attention_scale(const family_traits *f, strata_arch *a)
{
    a->attention_scale = pow((double)a->head_dim, -0.5);
    if (f->mla && a->rope.type == STRATA_ROPE_YARN && a->yarn.mscale_all_dim != 0) {
        double m = yarn_mscale(a->rope.factor, a->yarn.mscale_all_dim);
        a->attention_scale = a->attention_scale * m * m;
    }
}

strata_status desc_from_config(const sjson *config, const char *path, model_desc *d)
{
    *d = (model_desc){0};
    reader r = {config, path};
    strata_arch *a = &d->arch;
    if (!sjson_is_object(config))
        return strata_fail(STRATA_ERR_FORMAT, "%s: must hold a JSON object, found %s", path, sjson_type_name(config));

    const char *model_type = sjson_as_string(sjson_get(config, "model_type"));
    if (!model_type) return strata_fail(STRATA_ERR_FORMAT, "%s: missing string \"model_type\"", path);
    const sjson *architectures = sjson_get(config, "architectures");
    const char *architecture = sjson_as_string(sjson_array_at(architectures, 0));
    if (!family_from_model_type(model_type, &a->family) &&
        !(architecture && family_from_architecture(architecture, &a->family)))
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "%s: architecture '%s' is not supported (supported: llama, mistral, qwen2, qwen3, "
                           "mixtral, qwen2_moe, qwen3_moe, glm4_moe, deepseek_v3 and models whose \"architectures\" "
                           "names one of theirs, such as Kimi-K2)",
                           path, model_type);
    const family_traits *f = &FAMILIES[a->family];
    a->model_type = f->model_type;
    a->architecture = "";
    if (sjson_array_size(architectures) > 0 && sjson_as_string(sjson_array_at(architectures, 0)))
        a->architecture = pool_printf(&d->pool, "%s", sjson_as_string(sjson_array_at(architectures, 0)));
    if (!a->architecture) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);

    const char *act = sjson_as_string(sjson_get(config, "hidden_act"));
    if (act && strcmp(act, "silu") != 0 && strcmp(act, "swish") != 0)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: \"hidden_act\" '%s' is not supported (only silu)", path, act);

    int64_t v;
    TRY(get_int(&r, "hidden_size", false, 0, 1, MAX_HIDDEN, &a->hidden_size));
    TRY(get_int(&r, "num_hidden_layers", false, 0, 1, MAX_LAYERS, &v));
    a->n_layers = (int)v;
    TRY(get_int(&r, "num_attention_heads", false, 0, 1, MAX_HEADS, &v));
    a->n_heads = (int)v;
    TRY(get_int(&r, "num_key_value_heads", true, a->n_heads, 1, MAX_HEADS, &v));
    a->n_kv_heads = (int)v;
    if (a->n_heads % a->n_kv_heads != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                           path, a->n_heads, a->n_kv_heads);
    int64_t default_head_dim = f->default_head_dim ? f->default_head_dim : a->hidden_size / a->n_heads;
    TRY(get_int(&r, "head_dim", true, default_head_dim, 1, MAX_HIDDEN, &a->head_dim));
    if (f->mla) TRY(parse_mla(&r, a));
    else if (a->head_dim % 2 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: head_dim %lld must be even for rotary embeddings", path,
                           (long long)a->head_dim);
    TRY(get_int(&r, "vocab_size", false, 0, 1, MAX_VOCAB, &a->vocab_size));
    TRY(get_int(&r, "intermediate_size", false, 0, 1, MAX_WIDTH, &a->intermediate_size));
    TRY(get_int(&r, "max_position_embeddings", true, 2048, 1, INT64_C(1) << 40, &a->max_position_embeddings));
    TRY(get_double(&r, config, "rms_norm_eps", f->default_rms_norm_eps, &a->rms_norm_eps));
    if (a->rms_norm_eps <= 0) return strata_fail(STRATA_ERR_FORMAT, "%s: \"rms_norm_eps\" must be positive", path);
    TRY(get_bool(&r, "tie_word_embeddings", false, &a->tie_word_embeddings));
    TRY(parse_rope(&r, f, a));
    set_attention_scale(f, a);

    /* Sliding-window attention. */
    bool windowed = !f->never_windowed;
    if (windowed && f->window_needs_flag) TRY(get_bool(&r, "use_sliding_window", false, &windowed));
    const sjson *window = sjson_get(config, "sliding_window");
    if (windowed && !sjson_is_null(window)) /* null: no window; absent: the family default */
        TRY(get_int(&r, "sliding_window", true, f->default_sliding_window, 0, INT64_C(1) << 40, &a->sliding_window));
    if (a->sliding_window > 0 && f->window_needs_flag) TRY(window_layers(&r, config, a));

    /* Biases and norms. */
    a->qkv_bias = f->qkv_bias_default;
    if (f->attention_bias_key) {
        TRY(get_bool(&r, "attention_bias", false, &a->qkv_bias));
        a->o_bias = a->qkv_bias && !f->qkv_bias_only;
    } else if (a->family == STRATA_FAMILY_QWEN2_MOE) {
        TRY(get_bool(&r, "qkv_bias", true, &a->qkv_bias));
    }
    if (a->family == STRATA_FAMILY_LLAMA) TRY(get_bool(&r, "mlp_bias", false, &a->mlp_bias));
    a->qk_norm = f->qk_norm;
    if (f->qk_norm_key) TRY(get_bool(&r, "use_qk_norm", false, &a->qk_norm));

    TRY(get_int(&r, "num_nextn_predict_layers", true, 0, 0, 16, &v));
    a->n_mtp_layers = (int)v;

    d->moe_layer = calloc((size_t)a->n_layers, sizeof *d->moe_layer);
    if (!d->moe_layer) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    if (f->moe) TRY(parse_moe(&r, f, d));
    return STRATA_OK;
}
