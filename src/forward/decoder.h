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

#endif
