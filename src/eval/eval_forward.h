/*
 * eval_forward.h — what every evaluation does with a model: the windows it cuts, the
 * precision of its products, the windows' final hidden states layer by layer (a quantized
 * checkpoint's inputs fake-quantized as an engine runs it, quant_runtime.h), and logits
 * from them in chunks of rows.
 */
#ifndef STRATA_EVAL_EVAL_FORWARD_H
#define STRATA_EVAL_EVAL_FORWARD_H

#include "forward/decoder.h"
#include "strata.h"

/* The window (params->window, else 512 capped at max_position_embeddings) and the number
 * of whole windows of n_tokens to evaluate (at most params->max_windows); an error when
 * there is none or the window is out of the model's range. */
strata_status eval_windows(const strata_arch *arch, const strata_eval_params *params, int64_t n_tokens,
                           int64_t *window, int64_t *n_windows);

/* GEMM_F32 when asked for or when this CPU has no bf16 products (with a warning). */
strata_status eval_precision(bool fp32, gemm_precision *precision);

/* The scratch bytes of a chunk (params->memory_budget, else the decoder's default). */
size_t eval_budget(const strata_eval_params *params);

/* hidden (n_windows * window, hidden) = the decoder's output for the windows of tokens
 * (checked against the vocabulary), each window from position 0; `what` names the model in
 * progress messages. The mapping's pages are given back after every layer. */
strata_status eval_hidden_states(const strata_model *model, gemm_precision precision, size_t budget,
                                 const int32_t *tokens, int64_t n_windows, int64_t window, const char *what,
                                 float *hidden);

/* Calls each(ctx, first_row, rows, logits) for consecutive chunks of the rows of hidden
 * (n_rows, hidden): logits (rows, vocab) = lm_head(norm(hidden rows)). Chunks hold as many
 * rows as budget allows. */
typedef strata_status (*eval_logits_fn)(void *ctx, int64_t first_row, int64_t rows, const float *logits);
strata_status eval_logits(const strata_model *model, gemm_precision precision, size_t budget, const float *hidden,
                          int64_t n_rows, eval_logits_fn each, void *ctx);

#endif
