/*
 * decoder.h — one decoder layer over a matrix of tokens.
 *
 * hidden holds n_seq sequences of seq_len tokens each, (n_seq * seq_len, hidden) fp32;
 * the layer replaces it with its output (the residual stream after the layer). Whole
 * sequences are run in chunks whose scratch fits the memory budget (at least one
 * sequence per chunk).
 */
#ifndef STRATA_FORWARD_DECODER_H
#define STRATA_FORWARD_DECODER_H

#include "forward/hooks.h"
#include "forward/layer_weights.h"
#include "kernels/rope.h"

typedef struct forward_config {
    gemm_precision precision;
    size_t memory_budget;        /* scratch bytes for one chunk; 0: DECODER_DEFAULT_BUDGET */
    const forward_hooks *hooks;  /* (n_hooks), called in order */
    size_t n_hooks;
    bool observe_all_experts;    /* MoE: the hooks see every expert on every token (moe.h) */
} forward_config;

#define DECODER_DEFAULT_BUDGET ((size_t)1 << 30)

/* Scratch bytes one token needs while a layer runs. */
size_t decoder_token_bytes(const strata_arch *arch, const forward_config *config);
/* Sequences per chunk under config's budget (>= 1). */
int64_t decoder_chunk_sequences(const strata_arch *arch, const forward_config *config, int64_t seq_len);

/* rope covers at least seq_len positions. first_token: index of hidden's first row in the
 * caller's whole token matrix (reported to hooks). */
strata_status decoder_layer_forward(const layer_weights *lw, const forward_config *config, const rope_table *rope,
                                    float *hidden, int64_t n_seq, int64_t seq_len, int64_t first_token);

/* An MoE layer in steps, for a caller that runs its routed experts a group at a time over
 * every chunk of tokens (token-major), so a layer bigger than memory reads each expert once
 * per pass. Per chunk the arithmetic is decoder_layer_forward's, in the same order:
 *   decoder_moe_begin: attention (x updated), the MLP input normed into `normed` (rows,
 *     hidden) and the router's choice (experts, weights: (rows, top_k));
 *   decoder_moe_experts: routed experts [first, first + count) added into out (rows,
 *     hidden), zeroed by the caller; groups in ascending order;
 *   decoder_moe_finish: the shared expert(s) into out, then x += out.
 * One chunk must be one decoder chunk (n_seq <= decoder_chunk_sequences). */
typedef struct decoder_scratch decoder_scratch;
strata_status decoder_scratch_create(const strata_arch *arch, const forward_config *config, int64_t rows,
                                     decoder_scratch **out);
void decoder_scratch_free(decoder_scratch *s);
strata_status decoder_moe_begin(const layer_weights *lw, decoder_scratch *s, const rope_table *rope, float *x,
                                int64_t n_seq, int64_t seq_len, int64_t first_token, float *normed, int32_t *experts,
                                float *weights);
strata_status decoder_moe_experts(const layer_weights *lw, decoder_scratch *s, const float *normed, int64_t rows,
                                  const int32_t *experts, const float *weights, int first, int count,
                                  int64_t first_token, float *out);
strata_status decoder_moe_finish(const layer_weights *lw, decoder_scratch *s, float *x, const float *normed,
                                 int64_t rows, int64_t first_token, float *out);
/* Expert e over rows from any chunk (moe_run_expert_rows): y (n, hidden), unweighted;
 * token_index holds the rows' indices in the caller's whole token matrix. */
strata_status decoder_moe_expert_rows(const layer_weights *lw, decoder_scratch *s, int e, const float *x, int64_t n,
                                      const int64_t *token_index, const float *weights, float *y);

/* Parts of a layer run on inputs the caller kept (llm-compressor's AWQ measures its loss on
 * them: pipeline/awq_modifier_layer.c), one chunk (n_seq <= decoder_chunk_sequences) at a
 * time, without residual:
 *   attention: out (rows, hidden) = o_proj(attention(q, k, v of normed)), normed the
 *     input_layernorm's output;
 *   mlp: out (rows, hidden) = down(silu(gate(normed)) * up(normed)), or an MoE layer's
 *     block: routed experts weighted and summed, shared experts added (moe_forward);
 *   gated_hidden: act (rows, gate's n_out) = silu(gate(x)) * up(x), what down_proj reads;
 *     up_out (rows, up's n_out) scratch;
 *   linear: y (rows, l's n_out) = l(x). */
strata_status decoder_attention_output(const layer_weights *lw, decoder_scratch *s, const rope_table *rope,
                                       const float *normed, int64_t n_seq, int64_t seq_len, float *out);
strata_status decoder_mlp_output(const layer_weights *lw, decoder_scratch *s, const float *normed, int64_t rows,
                                 float *out);
strata_status decoder_gated_hidden(decoder_scratch *s, const layer_linear *gate, const layer_linear *up,
                                   const float *x, int64_t rows, float *act, float *up_out);
strata_status decoder_linear_output(decoder_scratch *s, const layer_linear *l, const float *x, int64_t rows, float *y);

#endif
