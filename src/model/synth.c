/*
 * synth.c — strata_synth_model: small deterministic models for demos and tests.
 *
 * No model ships with strata, so the demo and many tests generate one. The config is
 * built here; the tensor list comes from the same description code that checks real
 * checkpoints (desc_expected), so a synthetic model has exactly the tensors a real one
 * of its family has. Values come from a per-tensor splitmix64 stream seeded by the tensor
 * name and the seed, turned into approximately normal numbers with the Irwin-Hall sum
 * of twelve uniforms: only additions and multiplications, so the bytes are the same on
 * every machine and libm (no log/cos whose last bit may vary). Weights are drawn with
 * standard deviation 1/sqrt(fan_in), embeddings with 1, norm weights around 1.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "model/desc.h"
#include "model/family.h"

/* Mean 0, variance 1. */
static double rng_normal(rng *r)
{
    double sum = 0;
    for (int i = 0; i < 12; i++) sum += (double)(rng_next(r) >> 11) * 0x1p-53;
    return sum - 6.0;
}

static rng rng_for(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ seed;
    for (const char *p = name; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return (rng){h};
}

static uint16_t f32_to_bf16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    bits += 0x7fff + ((bits >> 16) & 1); /* round to nearest even; values here are finite */
    return (uint16_t)(bits >> 16);
}

static sjson *synth_config(const strata_synth_params *p, int64_t hidden, int n_layers, int n_experts)
{
    const family_traits *f = &FAMILIES[p->family];
    int64_t head_dim = p->head_dim ? p->head_dim : 32;
    int n_heads = (int)(hidden / head_dim);
    sjson *c = sjson_new_object();
    sjson *architectures = sjson_new_array();
    sjson_append(architectures, sjson_new_string(f->architecture));
    sjson_set(c, "architectures", architectures);
    sjson_set(c, "model_type", sjson_new_string(f->model_type));
    sjson_set(c, "hidden_size", sjson_new_int(hidden));
    /* 344 for 128 by default: not a multiple of 16 */
    sjson_set(c, "intermediate_size", sjson_new_int(p->intermediate_size ? p->intermediate_size : hidden * 43 / 16));
    sjson_set(c, "num_hidden_layers", sjson_new_int(n_layers));
    sjson_set(c, "num_attention_heads", sjson_new_int(n_heads));
    if (f->mla) { /* DeepSeek-V3's ratios: ranks 1536 and 512 of 7168, heads 128 + 64 rope, v 128 */
        sjson_set(c, "num_key_value_heads", sjson_new_int(n_heads));
        sjson_set(c, "q_lora_rank", sjson_new_int(hidden * 3 / 4));
        sjson_set(c, "kv_lora_rank", sjson_new_int(hidden / 2));
        sjson_set(c, "qk_nope_head_dim", sjson_new_int(head_dim));
        sjson_set(c, "qk_rope_head_dim", sjson_new_int(head_dim / 2));
        sjson_set(c, "v_head_dim", sjson_new_int(head_dim));
        sjson_set(c, "rope_interleave", sjson_new_bool(true));
        sjson_set(c, "attention_bias", sjson_new_bool(false));
        /* V3's YaRN (factor 40 over 4096 positions) scaled to 32 over 64 */
        sjson *yarn = sjson_new_object();
        sjson_set(yarn, "type", sjson_new_string("yarn"));
        sjson_set(yarn, "factor", sjson_new_real(32.0));
        sjson_set(yarn, "original_max_position_embeddings", sjson_new_int(64));
        sjson_set(yarn, "beta_fast", sjson_new_int(32));
        sjson_set(yarn, "beta_slow", sjson_new_int(1));
        sjson_set(yarn, "mscale", sjson_new_real(1.0));
        sjson_set(yarn, "mscale_all_dim", sjson_new_real(1.0));
        sjson_set(c, "rope_scaling", yarn);
    } else {
        sjson_set(c, "num_key_value_heads", sjson_new_int(p->n_kv_heads ? p->n_kv_heads : n_heads > 1 ? n_heads / 2 : 1));
        sjson_set(c, "head_dim", sjson_new_int(head_dim));
    }
    sjson_set(c, "vocab_size", sjson_new_int(512));
    sjson_set(c, "max_position_embeddings", sjson_new_int(2048));
    sjson_set(c, "rms_norm_eps", sjson_new_real(1e-6));
    sjson_set(c, "rope_theta", sjson_new_real(10000.0));
    sjson_set(c, "hidden_act", sjson_new_string("silu"));
    sjson_set(c, "tie_word_embeddings", sjson_new_bool(false));
    sjson_set(c, "bos_token_id", sjson_new_int(1));
    sjson_set(c, "eos_token_id", sjson_new_int(2));
    sjson_set(c, "torch_dtype", sjson_new_string("bfloat16"));
    if (f->moe) {
        sjson_set(c, f->n_experts_key, sjson_new_int(n_experts));
        /* deepseek_v3: 4 of 16 experts, as 8 of 256 is a few of many */
        int top_k = f->mla && n_experts >= 8 ? 4 : n_experts >= 2 ? 2 : 1;
        sjson_set(c, "num_experts_per_tok", sjson_new_int(top_k));
        if (strcmp(f->expert_width_key, "intermediate_size") != 0)
            sjson_set(c, f->expert_width_key, sjson_new_int(hidden * 3 / 4));
        if (f->sparse_step) {
            sjson_set(c, "norm_topk_prob", sjson_new_bool(true));
            sjson_set(c, "decoder_sparse_step", sjson_new_int(1));
            sjson_set(c, "mlp_only_layers", sjson_new_array());
        }
        if (f->shared_expert) sjson_set(c, "shared_expert_intermediate_size", sjson_new_int(hidden * 3 / 2));
        if (f->sigmoid_routing) {
            /* GLM-4.5's choices, scaled down: groups of 2 experts, half the groups eligible;
             * DeepSeek-V3's: groups of 4 (of 32 in V3), half the groups eligible */
            int per_group = f->mla ? 4 : 2;
            bool grouped = n_experts >= 2 * per_group && n_experts % per_group == 0;
            sjson_set(c, "n_group", sjson_new_int(grouped ? n_experts / per_group : 1));
            sjson_set(c, "topk_group", sjson_new_int(grouped ? n_experts / per_group / 2 : 1));
            sjson_set(c, "routed_scaling_factor", sjson_new_real(2.5));
            sjson_set(c, "norm_topk_prob", sjson_new_bool(true));
        }
        if (f->mla) {
            sjson_set(c, "scoring_func", sjson_new_string("sigmoid"));
            sjson_set(c, "topk_method", sjson_new_string("noaux_tc"));
            sjson_set(c, "moe_layer_freq", sjson_new_int(1));
        }
        if (f->shared_experts) sjson_set(c, "n_shared_experts", sjson_new_int(1));
        if (f->first_dense_key) sjson_set(c, f->first_dense_key, sjson_new_int(n_layers > 1 ? 1 : 0));
    }
    if (p->n_mtp_layers) sjson_set(c, "num_nextn_predict_layers", sjson_new_int(p->n_mtp_layers));
    if (f->default_partial_rotary) {
        sjson_set(c, "partial_rotary_factor", sjson_new_real(f->default_partial_rotary));
        sjson_set(c, "attention_bias", sjson_new_bool(true)); /* q/k/v biases, none on o (GLM-4.5) */
        sjson_set(c, "use_qk_norm", sjson_new_bool(false));
    }
    return c;
}

/* Sets the members of patch (a JSON object) in config. */
static strata_status apply_patch(sjson *config, const char *patch)
{
    if (!patch) return STRATA_OK;
    sjson_error error;
    sjson *changes = sjson_parse(patch, strlen(patch), true, &error);
    if (!changes || !sjson_is_object(changes)) {
        sjson_free(changes);
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic model: the config patch must be a JSON object%s%s",
                           changes ? "" : ": ", changes ? "" : error.text);
    }
    bool ok = true;
    for (void *it = sjson_iter(changes); it; it = sjson_iter_next(changes, it))
        ok = sjson_set(config, sjson_iter_key(it), sjson_ref(sjson_iter_value(it))) && ok;
    sjson_free(changes);
    return ok ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
}

static double std_for(const expected_tensor *e)
{
    switch (e->kind) {
    case EXPECTED_EMBEDDING: return 1.0;
    case EXPECTED_NORM: return 0.05;
    case EXPECTED_BIAS: return 0.02;
    case EXPECTED_ROUTER_BIAS: return 0.02;
    default: return 1.0 / sqrt((double)e->shape[e->n_dims - 1]);
    }
}

/* The tensors of one multi-token-prediction layer L, as GLM-4.5 and DeepSeek-V3 store them
 * (the projection of [embedding; hidden], its norms, the shared head's norm, and a decoder
 * layer's attention); strata copies them and never runs them. */
static strata_status write_mtp_layer(strata_safetensors_writer *w, const model_desc *d, int L, uint64_t seed,
                                     uint16_t **values)
{
    const strata_arch *a = &d->arch;
    int64_t H = a->hidden_size, q = a->n_heads * a->head_dim;
    static const char *const NAMES[] = {"eh_proj.weight", "enorm.weight", "hnorm.weight", "shared_head.norm.weight",
                                        "input_layernorm.weight", "self_attn.q_proj.weight"};
    const int64_t shapes[][2] = {{H, 2 * H}, {H, 0}, {H, 0}, {H, 0}, {H, 0}, {q, H}};
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < sizeof NAMES / sizeof NAMES[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "model.layers.%d.%s", L, NAMES[i]);
        int n_dims = shapes[i][1] ? 2 : 1;
        int64_t n = shapes[i][0] * (shapes[i][1] ? shapes[i][1] : 1);
        uint16_t *grown = realloc(*values, (size_t)n * sizeof **values);
        if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        *values = grown;
        rng r = rng_for(seed, name);
        bool norm = n_dims == 1;
        for (int64_t k = 0; k < n; k++)
            grown[k] = f32_to_bf16((float)((norm ? 1.0 : 0.0) + (norm ? 0.05 : 1.0 / sqrt((double)shapes[i][1])) *
                                                                    rng_normal(&r)));
        status = strata_safetensors_writer_add(w, name, STRATA_DTYPE_BF16, n_dims, shapes[i], grown,
                                               (uint64_t)n * sizeof *grown);
    }
    return status;
}

/* A linear weight (n_out, n_in) bf16 as FP8 128x128 blocks and its fp32 weight_scale_inv. */
static strata_status write_fp8_block(strata_safetensors_writer *w, const expected_tensor *e, const uint16_t *values)
{
    strata_quant_params fp8 = {.format = STRATA_FORMAT_FP8_BLOCK};
    int64_t N = e->shape[0], K = e->shape[1];
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&fp8, N, K, &shape);
    if (status != STRATA_OK) return status;
    strata_qtensor q = {.codes = malloc(shape.code_bytes ? shape.code_bytes : 1),
                        .scales = malloc(shape.scale_bytes ? shape.scale_bytes : 1)};
    if (!q.codes || !q.scales) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %s", e->name);
    if (status == STRATA_OK) status = strata_quantize(&fp8, STRATA_DTYPE_BF16, values, N, K, &q);
    char scale_name[600];
    snprintf(scale_name, sizeof scale_name, "%s_scale_inv", e->name);
    int64_t scale_shape[2] = {shape.scale_rows, shape.scale_cols};
    if (status == STRATA_OK)
        status = strata_safetensors_writer_add(w, e->name, STRATA_DTYPE_F8_E4M3, 2, e->shape, q.codes, shape.code_bytes);
    if (status == STRATA_OK)
        status = strata_safetensors_writer_add(w, scale_name, STRATA_DTYPE_F32, 2, scale_shape, q.scales,
                                               shape.scale_bytes);
    free(q.codes);
    free(q.scales);
    return status;
}

static strata_status write_tensors(const char *dir, const model_desc *d, uint64_t seed, bool fp8_block)
{
    expected_tensor *expected = NULL;
    size_t count = 0;
    uint16_t *values = NULL;
    strata_safetensors_writer *w = NULL;
    strata_status status = desc_expected(d, &expected, &count);
    if (status != STRATA_OK) return status;
    strata_writer_params params = {.dir = dir};
    status = strata_safetensors_writer_create(&params, &w);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(w, "format", "pt");
    char seed_text[32];
    snprintf(seed_text, sizeof seed_text, "%llu", (unsigned long long)seed);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(w, "strata_synth_seed", seed_text);
    for (size_t i = 0; status == STRATA_OK && i < count; i++) {
        const expected_tensor *e = &expected[i];
        int64_t n = 1;
        for (int k = 0; k < e->n_dims; k++) n *= e->shape[k];
        uint16_t *grown = realloc(values, (size_t)n * sizeof *values);
        if (!grown) {
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
            break;
        }
        values = grown;
        rng r = rng_for(seed, e->name);
        double std = std_for(e), mean = e->kind == EXPECTED_NORM ? 1.0 : 0.0;
        if (e->kind == EXPECTED_ROUTER_BIAS) { /* F32, as transformers keeps it */
            float *bias = malloc((size_t)n * sizeof *bias);
            if (!bias) {
                status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", dir);
                break;
            }
            for (int64_t k = 0; k < n; k++) bias[k] = (float)(std * rng_normal(&r));
            status = strata_safetensors_writer_add(w, e->name, STRATA_DTYPE_F32, e->n_dims, e->shape, bias,
                                                   (uint64_t)n * sizeof *bias);
            free(bias);
            continue;
        }
        for (int64_t k = 0; k < n; k++) values[k] = f32_to_bf16((float)(mean + std * rng_normal(&r)));
        if (fp8_block && e->kind == EXPECTED_WEIGHT && e->linear && e->linear->quantizable)
            status = write_fp8_block(w, e, values);
        else
            status = strata_safetensors_writer_add(w, e->name, STRATA_DTYPE_BF16, e->n_dims, e->shape, values,
                                                   (uint64_t)n * sizeof *values);
    }
    for (int L = 0; status == STRATA_OK && L < d->arch.n_mtp_layers; L++)
        status = write_mtp_layer(w, d, d->arch.n_layers + L, seed, &values);
    if (status == STRATA_OK) status = strata_safetensors_writer_finish(w);
    strata_safetensors_writer_free(w);
    free(values);
    free(expected);
    return status;
}

static void remove_tree_shallow(const char *dir)
{
    static const char *const FILES[] = {"config.json", "model.safetensors"};
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        char *path = path_join(dir, FILES[i]);
        if (path) unlink(path);
        free(path);
    }
    rmdir(dir);
}

strata_status strata_synth_model(const char *dir, const strata_synth_params *p)
{
    if (!dir || !p) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_synth_model: NULL argument");
    if ((unsigned)p->family >= STRATA_FAMILY_COUNT)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_synth_model: invalid family %d", (int)p->family);
    int n_layers = p->n_layers ? p->n_layers : 4;
    int64_t hidden = p->hidden_size ? p->hidden_size : 128;
    int n_experts = p->n_experts ? p->n_experts : p->family == STRATA_FAMILY_DEEPSEEK_V3 ? 16 : 8;
    if (n_layers < 1 || n_layers > 64)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic models have 1 to 64 layers, not %d", n_layers);
    if (hidden < 32 || hidden > 8192 || hidden % 32 != 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic hidden size must be a multiple of 32 in [32, 8192], not %lld",
                           (long long)hidden);
    int64_t head_dim = p->head_dim ? p->head_dim : 32;
    if (head_dim < 8 || head_dim > 256 || hidden % head_dim != 0 || p->intermediate_size < 0 ||
        p->intermediate_size > 65536 || p->n_kv_heads < 0 || (p->n_kv_heads && (hidden / head_dim) % p->n_kv_heads))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic model: head_dim %lld, intermediate %lld, %d kv heads "
                           "do not fit hidden %lld", (long long)head_dim, (long long)p->intermediate_size,
                           p->n_kv_heads, (long long)hidden);
    if (p->n_mtp_layers < 0 || p->n_mtp_layers > 4)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic models have 0 to 4 MTP layers, not %d", p->n_mtp_layers);
    if (n_experts < 1 || n_experts > 256)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "synthetic models have 1 to 256 experts, not %d", n_experts);
    if (path_exists(dir)) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: already exists; not overwriting it", dir);

    char *temp = path_temp_template(dir);
    if (!temp) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (!mkdtemp(temp)) {
        strata_status status = strata_fail(STRATA_ERR_IO, "%s: cannot create a directory: %s", temp, strerror(errno));
        free(temp);
        return status;
    }

    model_desc d = {0};
    char *text = NULL, *config_path = path_join(temp, "config.json");
    sjson *config = synth_config(p, hidden, n_layers, n_experts);
    strata_status status = config ? apply_patch(config, p->config_patch) : STRATA_OK;
    if (status == STRATA_OK && config && p->fp8_block)
        status = apply_patch(config, "{\"quantization_config\": {\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", "
                                     "\"activation_scheme\": \"dynamic\", \"weight_block_size\": [128, 128]}}");
    if (status != STRATA_OK) goto done;
    text = config ? sjson_dump(config, 2) : NULL;
    if (!text || !config_path) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        goto done;
    }
    status = desc_from_config(config, config_path, &d);
    if (status == STRATA_OK) status = desc_layout(&d, FAMILIES[p->family].moe ? FAMILIES[p->family].moe_block : "mlp",
                                                  p->stacked_experts);
    if (status == STRATA_OK) status = file_write_atomic(config_path, text, strlen(text));
    if (status == STRATA_OK) status = write_tensors(temp, &d, p->seed, p->fp8_block);
    if (status == STRATA_OK && rename(temp, dir) != 0)
        status = strata_fail(STRATA_ERR_IO, "%s: cannot rename into place: %s", dir, strerror(errno));
done:
    if (status != STRATA_OK) remove_tree_shallow(temp);
    desc_free(&d);
    sjson_free(config);
    free(text);
    free(config_path);
    free(temp);
    return status;
}
