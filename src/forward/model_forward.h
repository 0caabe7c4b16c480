/*
 * model_forward.h — the pieces around the decoder layers: token checks, embedding
 * lookup, one layer end to end (materialize, run, free), and the output head (final
 * norm and lm_head) for evaluation.
 */
#ifndef STRATA_FORWARD_MODEL_FORWARD_H
#define STRATA_FORWARD_MODEL_FORWARD_H

#include "forward/decoder.h"

/* Every id in [0, vocab_size); what names the token source in messages. */
strata_status forward_check_tokens(const strata_arch *arch, const int32_t *tokens, int64_t n, const char *what);
/* seq_len within max_position_embeddings (the rope limit). */
strata_status forward_check_seq_len(const strata_arch *arch, int64_t seq_len);

/* hidden (n, hidden) fp32 = embed_tokens[tokens]. */
strata_status forward_embed(const strata_model *model, const int32_t *tokens, int64_t n, float *hidden);

/* Materializes layer index, runs it over hidden (n_seq * seq_len, hidden) in place, frees it. */
strata_status forward_layer(const strata_model *model, int index, const forward_config *config,
                            const rope_table *rope, float *hidden, int64_t n_seq, int64_t seq_len);

typedef struct output_head {
    const strata_arch *arch;
    float *norm;         /* (hidden) */
    gemm_weight *lm_head; /* (vocab, hidden) */
    gemm_precision precision;
} output_head;

strata_status output_head_load(const strata_model *model, gemm_precision precision, output_head *out);
void output_head_free(output_head *head);
/* logits (rows, vocab) = lm_head(rmsnorm(hidden)) for hidden (rows, hidden); normed is
 * scratch (rows, hidden) fp32 and bf16 scratch (rows, hidden) for the bf16 precision. */
strata_status output_head_logits(const output_head *head, const float *hidden, int64_t rows, float *normed,
                                 uint16_t *bf16, float *logits);

#endif
