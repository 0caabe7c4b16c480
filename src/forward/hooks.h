/*
 * hooks.h — how calibration plugs into the forward pass.
 *
 * The forward pass knows nothing of quantization algorithms. Before every linear's
 * product it hands the input activations to the registered hooks (observers), and it lets
 * them replace a linear's input and weight by their fake-quantized versions. Every
 * callback is optional (NULL), runs on the thread that drives the forward pass, outside
 * pool tasks (so it may use the pool), and may fail by returning a status, which stops
 * the forward pass.
 */
#ifndef STRATA_FORWARD_HOOKS_H
#define STRATA_FORWARD_HOOKS_H

#include <stdbool.h>
#include <stdint.h>

#include "kernels/gemm.h"
#include "strata.h"

typedef struct forward_hooks {
    void *ctx;
    /* A linear's input x (n_tokens, linear->n_in) fp32, row-major, before any fake
     * quantization. For a routed expert, token_index[i] is the row of the chunk that token i
     * came from (ascending) and weights[i] its routing weight; both NULL otherwise.
     * chunk_first_token is the index of the chunk's first token in the whole token matrix. */
    strata_status (*observe_input)(void *ctx, const strata_linear *linear, const float *x, int64_t n_tokens,
                                   const int64_t *token_index, const float *weights, int64_t chunk_first_token);
    /* A linear's output y (n_tokens, linear->n_out) fp32 (bias added), e.g. k_proj and
     * v_proj for KV-cache scales. */
    strata_status (*observe_output)(void *ctx, const strata_linear *linear, const float *y, int64_t n_tokens);
    /* The keys (after q/k norm and RoPE) and values attention reads, (n_tokens, n_kv_heads *
     * head_dim) fp32 each: what an FP8 KV cache stores, for k_scale / v_scale. For latent
     * attention k_proj is kv_a_proj_with_mqa and k its cache entries (n_tokens, kv_lora_rank
     * + qk_rope_head_dim): the normed latent and the roped shared key; v_proj and v NULL. */
    strata_status (*observe_kv)(void *ctx, const strata_linear *k_proj, const float *k, const strata_linear *v_proj,
                                const float *v, int64_t n_tokens);
    /* Fake quantization of the input, in place; x is this linear's own copy. */
    strata_status (*quantize_input)(void *ctx, const strata_linear *linear, float *x, int64_t n_tokens);
    /* Fake quantization of the weight (n_out, n_in) fp32, in place, when the layer is
     * materialized. */
    strata_status (*quantize_weight)(void *ctx, const strata_linear *linear, float *w);
    /* Optional, tried before quantize_weight: when the hook holds the linear's quantized
     * weight, it writes its values into w (n_out, n_in) in the GEMM's precision (bf16 bits
     * for GEMM_BF16, else fp32), the same values quantize_weight would give, and sets
     * *written; the model's weight is then not read. */
    strata_status (*held_weight)(void *ctx, const strata_linear *linear, gemm_precision precision, void *w,
                                 bool *written);
} forward_hooks;

#endif
