/*
 * kld_stats.h — how far a quantized model's next-token distributions are from its base
 * model's, token by token, and the statistics llama.cpp's `llama-perplexity
 * --kl-divergence` prints over them (docs/EVAL.md gives the definitions and where strata
 * differs).
 *
 * Per scored token t (the target is the next token of the window):
 *   nll_q, nll_base   -log p(target) under each model
 *   kld               KL(base || quantized) = sum_i p_base,i (log p_base,i - log q_i)
 *   p_diff            q(target) - p_base(target)
 *   same_top          the two argmaxes (first index of the maximum) agree
 * The statistics are the means with their standard errors, percentiles, and the
 * perplexities with their ratio and difference, as llama.cpp computes them, in double and
 * in token order, so they do not depend on threads.
 */
#ifndef STRATA_EVAL_KLD_STATS_H
#define STRATA_EVAL_KLD_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

typedef struct kld_token {
    double nll_q, nll_base, kld, p_diff;
    bool same_top;
} kld_token;

/* The base distribution of one token: its logits and log-sum-exp (from the base model), or
 * llama.cpp's compressed log-probabilities (from a --kl-divergence-base file). */
typedef struct kld_base_row {
    const float *logits;        /* (vocab) or NULL */
    double log_sum_exp;         /* with logits: log sum_i exp(logits_i) */
    const uint16_t *compressed; /* (vocab + 4 rounded to even) llama.cpp's record, or NULL */
} kld_base_row;

/* One token's quantities: logits_q (vocab) the quantized model's logits, base the base
 * model's distribution, target the correct next token. With the base's logits every
 * vocabulary entry counts (a model against itself gives exactly 0); with a compressed
 * record only those above log p = -16, as llama.cpp counts them. */
kld_token kld_token_compare(const float *logits_q, const kld_base_row *base, int64_t vocab, int32_t target);

/* log sum_i exp(logits_i) in double, and the first index of the maximum. */
double kld_log_sum_exp(const float *logits, int64_t vocab, int64_t *argmax);

typedef struct kld_accumulator {
    int64_t count, same_top;
    double sum_q, sum_q2, sum_base, sum_base2, sum_q_base; /* nll sums */
    double sum_kld, sum_kld2, sum_dp, sum_dp2, sum_dp4;
    double *kld, *p_diff;       /* (count) every token's, for the percentiles */
    int64_t capacity;
} kld_accumulator;

/* Adds the tokens in order (out of memory is an error). */
strata_status kld_accumulate(kld_accumulator *acc, const kld_token *tokens, int64_t n);
/* The statistics of everything added (sorts the per-token values). */
void kld_summarize(kld_accumulator *acc, strata_eval_compare_result *out);
void kld_accumulator_free(kld_accumulator *acc);

#endif
