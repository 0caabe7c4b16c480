/*
 * decoder.c — attention block and MLP block of a decoder layer (see decoder.h), as
 * transformers' LlamaDecoderLayer (and its Mistral/Qwen2/Qwen3/MoE relatives) runs them:
 *
 *   h   = x + o_proj(attention(rope(qk_norm(q_proj(n1))), rope(qk_norm(k_proj(n1))), v_proj(n1)))
 *         where n1 = rmsnorm(x, input_layernorm)
 *   out = h + mlp(rmsnorm(h, post_attention_layernorm))
 *
 * mlp is down(silu(gate(n2)) * up(n2)) or the MoE block (moe.c). Latent attention
 * (deepseek_v3) makes q, k and v its own way (mla.c); attention and o_proj are shared.
 */
#include "forward/decoder.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "forward/linear_run.h"
#include "forward/mla.h"
#include "forward/moe.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/pool.h"
#include "kernels/rmsnorm.h"

/* Buffers for one chunk of up to max_rows tokens. */
typedef struct chunk_scratch {
    float *normed;  /* (rows, hidden) */
    float *q;       /* (rows, n_heads * head_dim) */
    float *k;       /* (rows, n_kv_heads * head_dim) */
    float *v;       /* (rows, n_kv_heads * v_head_dim) */
    float *attn;    /* (rows, n_heads * v_head_dim) */
    float *proj;    /* (rows, hidden) o_proj, then the MLP's output */
    float *gate;    /* (rows, intermediate) */
    float *up;      /* (rows, intermediate) */
    linear_scratch linear;
    moe_scratch moe;
    mla_scratch mla;
} chunk_scratch;

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

static bool is_mla(const strata_arch *a) { return a->mla.kv_lora_rank > 0; }
static int64_t v_head_dim(const strata_arch *a) { return is_mla(a) ? a->mla.v_head_dim : a->head_dim; }
static int64_t q_width(const strata_arch *a) { return (int64_t)a->n_heads * a->head_dim; }
static int64_t kv_width(const strata_arch *a) { return (int64_t)a->n_kv_heads * a->head_dim; }
static int64_t v_width(const strata_arch *a) { return (int64_t)a->n_kv_heads * v_head_dim(a); }
static int64_t attn_width(const strata_arch *a) { return (int64_t)a->n_heads * v_head_dim(a); }
static int64_t widest_input(const strata_arch *a)
{
    int64_t attention = max3(attn_width(a), a->mla.q_lora_rank, a->mla.kv_lora_rank);
    return max3(a->hidden_size, attention, max3(a->intermediate_size, a->moe.intermediate_size,
                                                a->moe.shared_intermediate_size));
}

static bool has_input_transform(const forward_config *config)
{
    for (size_t h = 0; h < config->n_hooks; h++)
        if (config->hooks[h].quantize_input) return true;
    return false;
}

size_t decoder_token_bytes(const strata_arch *a, const forward_config *config)
{
    size_t floats = (size_t)(2 * a->hidden_size + q_width(a) + kv_width(a) + v_width(a) + attn_width(a) +
                             2 * a->intermediate_size);
    size_t bytes = floats * sizeof(float) +
                   linear_scratch_row_bytes(config->precision, has_input_transform(config), widest_input(a));
    if (a->moe.n_experts > 0) bytes += moe_scratch_row_bytes(a);
    if (is_mla(a)) bytes += mla_scratch_row_bytes(a);
    return bytes;
}

int64_t decoder_chunk_sequences(const strata_arch *arch, const forward_config *config, int64_t seq_len)
{
    size_t budget = config->memory_budget ? config->memory_budget : DECODER_DEFAULT_BUDGET;
    size_t per_sequence = decoder_token_bytes(arch, config) * (size_t)seq_len;
    int64_t n = per_sequence ? (int64_t)(budget / per_sequence) : 1;
    return n > 0 ? n : 1;
}

static void chunk_scratch_free(chunk_scratch *s)
{
    free(s->normed);
    free(s->q);
    free(s->k);
    free(s->v);
    free(s->attn);
    free(s->proj);
    free(s->gate);
    free(s->up);
    linear_scratch_free(&s->linear);
    moe_scratch_free(&s->moe);
    mla_scratch_free(&s->mla);
    *s = (chunk_scratch){0}; /* a second free (init failed, then the caller's) is harmless */
}

static strata_status chunk_scratch_init(chunk_scratch *s, const strata_arch *a, const forward_config *config,
                                        int64_t rows)
{
    size_t r = (size_t)rows;
    *s = (chunk_scratch){
        .normed = malloc(r * (size_t)a->hidden_size * sizeof(float)),
        .q = malloc(r * (size_t)q_width(a) * sizeof(float)),
        .k = malloc(r * (size_t)kv_width(a) * sizeof(float)),
        .v = malloc(r * (size_t)v_width(a) * sizeof(float)),
        .attn = malloc(r * (size_t)attn_width(a) * sizeof(float)),
        .proj = malloc(r * (size_t)a->hidden_size * sizeof(float)),
        .gate = malloc(r * (size_t)(a->intermediate_size > 0 ? a->intermediate_size : 1) * sizeof(float)),
        .up = malloc(r * (size_t)(a->intermediate_size > 0 ? a->intermediate_size : 1) * sizeof(float)),
    };
    strata_status status = STRATA_OK;
    if (!s->normed || !s->q || !s->k || !s->v || !s->attn || !s->proj || !s->gate || !s->up)
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the scratch of %lld tokens",
                             (long long)rows);
    if (status == STRATA_OK)
        status = linear_scratch_init(&s->linear, config->precision, config->hooks, config->n_hooks, rows,
                                     widest_input(a));
    if (status == STRATA_OK && a->moe.n_experts > 0)
        status = moe_scratch_init(&s->moe, a, rows, config->observe_all_experts);
    if (status == STRATA_OK && is_mla(a)) status = mla_scratch_init(&s->mla, a, rows);
    if (status != STRATA_OK) chunk_scratch_free(s);
    return status;
}

typedef struct add_job {
    float *dst;
    const float *src;
} add_job;

static void add_range(void *ctx, int64_t begin, int64_t end)
{
    const add_job *job = ctx;
    for (int64_t i = begin; i < end; i++) job->dst[i] += job->src[i];
}

/* dst += src over n elements. */
static void add_in_place(float *dst, const float *src, int64_t n)
{
    add_job job = {dst, src};
    pool_parallel_for(n, 1 << 15, add_range, &job);
}

/* q, k, v of grouped-query attention: projections, q/k norms (qwen3), rope. */
static strata_status gqa_project(const layer_weights *lw, chunk_scratch *s, const rope_table *rope,
                                 const linear_input *in, int64_t n_seq, int64_t seq_len)
{
    const strata_arch *a = lw->arch;
    int64_t rows = in->rows, QW = q_width(a), KW = kv_width(a);
    strata_status status = linear_run(&s->linear, lw->q, in, s->q, QW);
    if (status == STRATA_OK) status = linear_run(&s->linear, lw->k, in, s->k, KW);
    if (status == STRATA_OK) status = linear_run(&s->linear, lw->v, in, s->v, KW);
    if (status != STRATA_OK) return status;
    if (lw->q_norm) {
        /* qwen3: RMSNorm over each head's vector, before RoPE. */
        rmsnorm_rows(s->q, a->head_dim, rows * a->n_heads, a->head_dim, lw->q_norm, (float)a->rms_norm_eps, s->q,
                     a->head_dim);
        rmsnorm_rows(s->k, a->head_dim, rows * a->n_kv_heads, a->head_dim, lw->k_norm, (float)a->rms_norm_eps, s->k,
                     a->head_dim);
    }
    rope_apply(rope, s->q, QW, a->head_dim, n_seq, seq_len, a->n_heads);
    rope_apply(rope, s->k, KW, a->head_dim, n_seq, seq_len, a->n_kv_heads);
    for (size_t h = 0; h < s->linear.n_hooks && status == STRATA_OK; h++)
        if (s->linear.hooks[h].observe_kv)
            status = s->linear.hooks[h].observe_kv(s->linear.hooks[h].ctx, lw->k->desc, s->k, lw->v->desc, s->v, rows);
    return status;
}

/* out (rows, hidden) = o_proj(attention(q, k, v of normed)): the attention module's output. */
static strata_status attention_output(const layer_weights *lw, chunk_scratch *s, const rope_table *rope,
                                      const float *normed, int64_t n_seq, int64_t seq_len, float *out)
{
    const strata_arch *a = lw->arch;
    int64_t rows = n_seq * seq_len, H = a->hidden_size, AW = attn_width(a);
    linear_input in = linear_input_make(&s->linear, normed, rows, H);
    strata_status status = is_mla(a) ? mla_project(lw, &s->linear, &s->mla, rope, &in, n_seq, seq_len, s->q, s->k, s->v)
                                     : gqa_project(lw, s, rope, &in, n_seq, seq_len);
    if (status != STRATA_OK) return status;
    attention_shape shape = {.n_seq = n_seq, .seq_len = seq_len, .n_heads = a->n_heads, .n_kv_heads = a->n_kv_heads,
                             .head_dim = a->head_dim, .v_head_dim = v_head_dim(a), .scale = (float)a->attention_scale,
                             .window = a->sliding_window};
    status = attention_forward(&shape, s->q, q_width(a), s->k, kv_width(a), s->v, v_width(a), s->attn, AW);
    if (status != STRATA_OK) return status;
    linear_input attn = linear_input_make(&s->linear, s->attn, rows, AW);
    return linear_run(&s->linear, lw->o, &attn, out, H);
}

static strata_status attention_block(const layer_weights *lw, chunk_scratch *s, const rope_table *rope, float *x,
                                     int64_t n_seq, int64_t seq_len)
{
    const strata_arch *a = lw->arch;
    int64_t rows = n_seq * seq_len, H = a->hidden_size;
    rmsnorm_rows(x, H, rows, H, lw->input_norm, (float)a->rms_norm_eps, s->normed, H);
    strata_status status = attention_output(lw, s, rope, s->normed, n_seq, seq_len, s->proj);
    if (status == STRATA_OK) add_in_place(x, s->proj, rows * H);
    return status;
}

static strata_status mlp_block(const layer_weights *lw, chunk_scratch *s, float *x, int64_t rows)
{
    const strata_arch *a = lw->arch;
    int64_t H = a->hidden_size;
    rmsnorm_rows(x, H, rows, H, lw->post_attention_norm, (float)a->rms_norm_eps, s->normed, H);
    strata_status status;
    if (lw->layer->is_moe) {
        status = moe_forward(lw, &s->linear, &s->moe, s->normed, rows, s->proj);
    } else {
        linear_input in = linear_input_make(&s->linear, s->normed, rows, H);
        status = linear_run_gated_mlp(&s->linear, lw->gate, lw->up, lw->down, &in, s->gate, s->up, s->proj);
    }
    if (status == STRATA_OK) add_in_place(x, s->proj, rows * H);
    return status;
}

strata_status decoder_layer_forward(const layer_weights *lw, const forward_config *config, const rope_table *rope,
                                    float *hidden, int64_t n_seq, int64_t seq_len, int64_t first_token)
{
    const strata_arch *a = lw->arch;
    if (seq_len > rope->n_positions)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "sequence length %lld exceeds the rope table (%lld)",
                           (long long)seq_len, (long long)rope->n_positions);
    int64_t per_chunk = decoder_chunk_sequences(a, config, seq_len);
    if (per_chunk > n_seq) per_chunk = n_seq;
    chunk_scratch s;
    strata_status status = chunk_scratch_init(&s, a, config, per_chunk * seq_len);
    for (int64_t seq = 0; status == STRATA_OK && seq < n_seq; seq += per_chunk) {
        int64_t n = n_seq - seq < per_chunk ? n_seq - seq : per_chunk;
        float *x = hidden + seq * seq_len * a->hidden_size;
        s.linear.chunk_first_token = first_token + seq * seq_len;
        status = attention_block(lw, &s, rope, x, n, seq_len);
        if (status == STRATA_OK) status = mlp_block(lw, &s, x, n * seq_len);
    }
    chunk_scratch_free(&s);
    if (status != STRATA_OK) return strata_fail_context(status, "layer %d", lw->layer->index);
    return STRATA_OK;
}

/* ---------------------------------------------------------------- an MoE layer in steps */

struct decoder_scratch {
    chunk_scratch chunk;
};

strata_status decoder_scratch_create(const strata_arch *arch, const forward_config *config, int64_t rows,
                                     decoder_scratch **out)
{
    decoder_scratch *s = calloc(1, sizeof *s);
    if (!s) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for decoder scratch");
    strata_status status = chunk_scratch_init(&s->chunk, arch, config, rows);
    if (status != STRATA_OK) {
        free(s);
        return status;
    }
    *out = s;
    return STRATA_OK;
}

void decoder_scratch_free(decoder_scratch *s)
{
    if (!s) return;
    chunk_scratch_free(&s->chunk);
    free(s);
}

strata_status decoder_moe_begin(const layer_weights *lw, decoder_scratch *s, const rope_table *rope, float *x,
                                int64_t n_seq, int64_t seq_len, int64_t first_token, float *normed, int32_t *experts,
                                float *weights)
{
    const strata_arch *a = lw->arch;
    int64_t rows = n_seq * seq_len, H = a->hidden_size;
    if (seq_len > rope->n_positions)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "sequence length %lld exceeds the rope table (%lld)",
                           (long long)seq_len, (long long)rope->n_positions);
    s->chunk.linear.chunk_first_token = first_token;
    strata_status status = attention_block(lw, &s->chunk, rope, x, n_seq, seq_len);
    if (status != STRATA_OK) return status;
    rmsnorm_rows(x, H, rows, H, lw->post_attention_norm, (float)a->rms_norm_eps, normed, H);
    return moe_route(lw, &s->chunk.linear, &s->chunk.moe, normed, rows, experts, weights);
}

strata_status decoder_moe_experts(const layer_weights *lw, decoder_scratch *s, const float *normed, int64_t rows,
                                  const int32_t *experts, const float *weights, int first, int count,
                                  int64_t first_token, float *out)
{
    s->chunk.linear.chunk_first_token = first_token;
    return moe_run_experts(lw, &s->chunk.linear, &s->chunk.moe, normed, rows, experts, weights, first, count, out);
}

strata_status decoder_moe_finish(const layer_weights *lw, decoder_scratch *s, float *x, const float *normed,
                                 int64_t rows, int64_t first_token, float *out)
{
    s->chunk.linear.chunk_first_token = first_token;
    strata_status status = moe_add_shared(lw, &s->chunk.linear, &s->chunk.moe, normed, rows, out);
    if (status == STRATA_OK) add_in_place(x, out, rows * lw->arch->hidden_size);
    return status;
}


strata_status decoder_moe_expert_rows(const layer_weights *lw, decoder_scratch *s, int e, const float *x, int64_t n,
                                      const int64_t *token_index, const float *weights, float *y)
{
    s->chunk.linear.chunk_first_token = 0;
    return moe_run_expert_rows(lw, &s->chunk.linear, &s->chunk.moe, e, x, n, token_index, weights, y);
}

/* ---------------------------------------------------------------- parts of a layer */

strata_status decoder_attention_output(const layer_weights *lw, decoder_scratch *s, const rope_table *rope,
                                       const float *normed, int64_t n_seq, int64_t seq_len, float *out)
{
    if (seq_len > rope->n_positions)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "sequence length %lld exceeds the rope table (%lld)",
                           (long long)seq_len, (long long)rope->n_positions);
    return attention_output(lw, &s->chunk, rope, normed, n_seq, seq_len, out);
}

strata_status decoder_mlp_output(const layer_weights *lw, decoder_scratch *s, const float *normed, int64_t rows,
                                 float *out)
{
    if (lw->layer->is_moe) return moe_forward(lw, &s->chunk.linear, &s->chunk.moe, normed, rows, out);
    linear_input in = linear_input_make(&s->chunk.linear, normed, rows, lw->arch->hidden_size);
    return linear_run_gated_mlp(&s->chunk.linear, lw->gate, lw->up, lw->down, &in, s->chunk.gate, s->chunk.up, out);
}

strata_status decoder_gated_hidden(decoder_scratch *s, const layer_linear *gate, const layer_linear *up,
                                   const float *x, int64_t rows, float *act, float *up_out)
{
    int64_t I = gate->desc->n_out;
    linear_input in = linear_input_make(&s->chunk.linear, x, rows, gate->desc->n_in);
    strata_status status = linear_run(&s->chunk.linear, gate, &in, act, I);
    if (status == STRATA_OK) status = linear_run(&s->chunk.linear, up, &in, up_out, I);
    if (status == STRATA_OK) silu_mul_rows(act, I, up_out, I, rows, I, act, I);
    return status;
}

strata_status decoder_linear_output(decoder_scratch *s, const layer_linear *l, const float *x, int64_t rows, float *y)
{
    linear_input in = linear_input_make(&s->chunk.linear, x, rows, l->desc->n_in);
    return linear_run(&s->chunk.linear, l, &in, y, l->desc->n_out);
}
