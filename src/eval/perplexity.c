/*
 * perplexity.c — strata_eval_perplexity: windows of tokens through the model layer by
 * layer (eval_forward.h), then the output head in chunks, summing each position's negative
 * log-likelihood (log-sum-exp in double) in token order, so the result does not depend on
 * threads or chunk sizes. The mapping's pages are given back after every layer, so a model
 * larger than memory is evaluated with a flat resident set.
 */
#include <math.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/error.h"
#include "eval/eval_forward.h"
#include "eval/kld_stats.h"

typedef struct nll_sum {
    const int32_t *tokens;
    int64_t vocab, window;
    double sum;
} nll_sum;

/* Adds the NLL of every predicting position of a chunk of rows. */
static strata_status add_nll(void *ctx, int64_t first_row, int64_t rows, const float *logits)
{
    nll_sum *s = ctx;
    for (int64_t r = 0; r < rows; r++) {
        int64_t token = first_row + r;
        if (token % s->window == s->window - 1) continue; /* the last position predicts nothing */
        const float *row = logits + r * s->vocab;
        s->sum += kld_log_sum_exp(row, s->vocab, NULL) - (double)row[s->tokens[token + 1]];
    }
    return STRATA_OK;
}

strata_status strata_eval_perplexity(const strata_model *model, const int32_t *tokens, int64_t n_tokens,
                                     const strata_eval_params *params, strata_eval_result *result)
{
    if (!model || !params || !result || (n_tokens > 0 && !tokens))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_eval_perplexity: NULL argument");
    *result = (strata_eval_result){0};
    double start = seconds_now();
    const strata_arch *arch = strata_model_arch(model);
    int64_t window = 0, n_windows = 0;
    gemm_precision precision;
    strata_status status = eval_windows(arch, params, n_tokens, &window, &n_windows);
    if (status == STRATA_OK) status = eval_precision(params->fp32, &precision);
    if (status != STRATA_OK) return status;
    int64_t n = n_windows * window, H = arch->hidden_size;
    float *hidden = malloc((size_t)n * (size_t)H * sizeof(float));
    if (!hidden)
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %lld x %lld hidden states", (long long)n,
                           (long long)H);
    size_t budget = eval_budget(params);
    nll_sum nll = {.tokens = tokens, .vocab = arch->vocab_size, .window = window};
    status = eval_hidden_states(model, precision, budget, tokens, n_windows, window, "model", hidden);
    if (status == STRATA_OK) status = eval_logits(model, precision, budget, hidden, n, add_nll, &nll);
    free(hidden);
    if (status != STRATA_OK) return status;
    int64_t predicted = n_windows * (window - 1);
    *result = (strata_eval_result){.mean_nll = nll.sum / (double)predicted,
                                   .perplexity = exp(nll.sum / (double)predicted),
                                   .n_windows = n_windows,
                                   .n_predicted = predicted,
                                   .fp32 = precision == GEMM_F32,
                                   .seconds = seconds_now() - start};
    return STRATA_OK;
}
