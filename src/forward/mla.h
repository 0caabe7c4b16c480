/*
 * mla.h — the projections of multi-head latent attention (DeepSeek-V2/V3), as
 * transformers' DeepseekV3Attention computes them, up to the ordinary attention:
 *
 *   q      = q_b_proj(rmsnorm(q_a_proj(x), q_a_layernorm))   or q_proj(x)   (rows, heads * (nope + rope))
 *   ckv    = kv_a_proj_with_mqa(x)                           (rows, kv_lora + rope)
 *   latent = rmsnorm(ckv[:, :kv_lora], kv_a_layernorm)        (rows, kv_lora)   cached with k_rot
 *   k_rot  = rope(ckv[:, kv_lora:])                           (rows, rope)      one key head shared by all
 *   kv     = kv_b_proj(latent)                                (rows, heads * (nope + v))
 *   k[h]   = [kv[h][:nope], k_rot],  v[h] = kv[h][nope:],  q[h][nope:] = rope(q[h][nope:])
 *
 * x is the input-normed hidden state. The caller runs attention over q, k, v with
 * arch->attention_scale and o_proj over its output. Hooks with observe_kv see each row's
 * cache entry [latent, k_rot], what vLLM's MLA stores per token in its KV cache.
 */
#ifndef STRATA_FORWARD_MLA_H
#define STRATA_FORWARD_MLA_H

#include "forward/layer_weights.h"
#include "forward/linear_run.h"
#include "kernels/rope.h"

/* Buffers for up to max_rows tokens. */
typedef struct mla_scratch {
    float *q_latent;      /* (max_rows, q_lora_rank), or NULL without q_lora_rank */
    float *kv_compressed; /* (max_rows, kv_lora_rank + qk_rope_head_dim) */
    float *kv_latent;     /* (max_rows, kv_lora_rank) */
    float *kv;            /* (max_rows, heads * (qk_nope_head_dim + v_head_dim)) */
} mla_scratch;

size_t mla_scratch_row_bytes(const strata_arch *arch);
strata_status mla_scratch_init(mla_scratch *s, const strata_arch *arch, int64_t max_rows);
void mla_scratch_free(mla_scratch *s);

/* q (rows, heads * head_dim), k (rows, heads * head_dim), v (rows, heads * v_head_dim) from
 * the normed input x (n_seq * seq_len rows), with rope applied to q and k. */
strata_status mla_project(const layer_weights *lw, linear_scratch *ls, mla_scratch *s, const rope_table *rope,
                          const linear_input *x, int64_t n_seq, int64_t seq_len, float *q, float *k, float *v);

#endif
