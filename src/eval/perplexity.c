/*
 * perplexity.c — strata_eval_perplexity: windows of tokens through the model layer by
 * layer, then the output head in chunks, summing each position's negative log-likelihood
 * (log-sum-exp in double) in token order, so the result does not depend on threads or
 * chunk sizes. The mapping's pages are given back after every layer, so a model larger
 * than memory is evaluated with a flat resident set.
 */
#include <math.h>
#include <stdlib.h>

#include "core/clock.h"
#include "core/error.h"
#include "eval/quant_runtime.h"
#include "forward/model_forward.h"
#include "io/safetensors_mapping.h"

enum { DEFAULT_WINDOW = 512 };

/* -log softmax(logits)[target], in double. */
static double token_nll(const float *logits, int64_t vocab, int32_t target)
{
    float max = logits[0];
    for (int64_t i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
    double sum = 0.0;
    for (int64_t i = 0; i < vocab; i++) sum += exp((double)logits[i] - (double)max);
    return log(sum) + (double)max - (double)logits[target];
}

/* Sums the NLL of every predicting position of the windows in hidden. */
static strata_status score_windows(const strata_model *model, gemm_precision precision, size_t budget,
                                   const float *hidden, const int32_t *tokens, int64_t n_windows, int64_t window,
                                   double *nll_sum)
{
    const strata_arch *arch = strata_model_arch(model);
    int64_t H = arch->hidden_size, V = arch->vocab_size;
    size_t row_bytes = (size_t)V * 4 + (size_t)H * 6;
    int64_t rows = (int64_t)(budget / row_bytes);
    if (rows < 1) rows = 1;
    if (rows > window * n_windows) rows = window * n_windows;
    output_head head;
    strata_status status = output_head_load(model, precision, &head);
    if (status != STRATA_OK) return status;
    float *logits = malloc((size_t)rows * (size_t)V * sizeof(float));
    float *normed = malloc((size_t)rows * (size_t)H * sizeof(float));
    uint16_t *bf16 = malloc((size_t)rows * (size_t)H * sizeof(uint16_t));
    if (!logits || !normed || !bf16) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for logits");
    *nll_sum = 0.0;
    int64_t total = window * n_windows;
    for (int64_t begin = 0; status == STRATA_OK && begin < total; begin += rows) {
        int64_t n = total - begin < rows ? total - begin : rows;
        status = output_head_logits(&head, hidden + begin * H, n, normed, bf16, logits);
        for (int64_t r = 0; status == STRATA_OK && r < n; r++) {
            int64_t token = begin + r;
            if (token % window == window - 1) continue; /* the last position predicts nothing */
            *nll_sum += token_nll(logits + r * V, V, tokens[token + 1]);
        }
    }
    free(logits);
    free(normed);
    free(bf16);
    output_head_free(&head);
    return status;
}

strata_status strata_eval_perplexity(const strata_model *model, const int32_t *tokens, int64_t n_tokens,
                                     const strata_eval_params *params, strata_eval_result *result)
{
    if (!model || !params || !result || (n_tokens > 0 && !tokens))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_eval_perplexity: NULL argument");
    if (n_tokens < 0 || params->window < 0 || params->max_windows < 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_eval_perplexity: negative token or window count");
    *result = (strata_eval_result){0};
    double start = seconds_now();
    const strata_arch *arch = strata_model_arch(model);
    int64_t window = params->window ? params->window : DEFAULT_WINDOW;
    if (!params->window && arch->max_position_embeddings > 0 && window > arch->max_position_embeddings)
        window = arch->max_position_embeddings;
    strata_status status = forward_check_seq_len(arch, window);
    if (status != STRATA_OK) return status;
    if (window < 2) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "a window needs at least 2 tokens");
    int64_t n_windows = n_tokens / window;
    if (params->max_windows > 0 && n_windows > params->max_windows) n_windows = params->max_windows;
    if (n_windows == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "perplexity needs at least one window of %lld tokens; got %lld",
                           (long long)window, (long long)n_tokens);
    int64_t n = n_windows * window, H = arch->hidden_size;
    status = forward_check_tokens(arch, tokens, n, "evaluation text");
    if (status != STRATA_OK) return status;

    gemm_precision precision = params->fp32 ? GEMM_F32 : GEMM_BF16;
    bool bf16 = false;
    if (precision == GEMM_BF16 && (status = gemm_bf16_available(&bf16)) != STRATA_OK) return status;
    if (precision == GEMM_BF16 && !bf16) {
        strata_log(STRATA_LOG_WARN, "this CPU has no bf16 matrix products in oneDNN; evaluating in fp32");
        precision = GEMM_F32;
    }
    quant_runtime runtime;
    bool quantized_inputs = false;
    strata_status rt_status = quant_runtime_open(model, &runtime, &quantized_inputs);
    if (rt_status != STRATA_OK) return rt_status;
    forward_hooks hooks = quant_runtime_hooks(&runtime);
    forward_config config = {.precision = precision, .memory_budget = params->memory_budget,
                             .hooks = quantized_inputs ? &hooks : NULL, .n_hooks = quantized_inputs ? 1 : 0};
    float *hidden = malloc((size_t)n * (size_t)H * sizeof(float));
    rope_table rope = {0};
    if (!hidden) {
        quant_runtime_close(&runtime);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %lld x %lld hidden states", (long long)n,
                           (long long)H);
    }
    /* Each step's mapped pages leave the resident set once it is done (they stay in the page
     * cache): the peak RSS is one layer's, not the checkpoint's size. */
    const strata_safetensors *st = strata_model_tensors(model);
    status = forward_embed(model, tokens, n, hidden);
    safetensors_release_pages(st);
    if (status == STRATA_OK) status = rope_table_create(arch, window, &rope);
    for (int layer = 0; status == STRATA_OK && layer < arch->n_layers; layer++) {
        status = forward_layer(model, layer, &config, &rope, hidden, n_windows, window);
        safetensors_release_pages(st);
        double elapsed = seconds_now() - start;
        strata_log(STRATA_LOG_INFO, "eval: layer %d/%d done, %.1f s elapsed, ETA %.1f s", layer + 1, arch->n_layers,
                   elapsed, elapsed / (layer + 1) * (arch->n_layers - layer - 1));
    }
    double nll_sum = 0.0;
    size_t budget = params->memory_budget ? params->memory_budget : DECODER_DEFAULT_BUDGET;
    if (status == STRATA_OK) status = score_windows(model, precision, budget, hidden, tokens, n_windows, window, &nll_sum);
    safetensors_release_pages(st);
    rope_table_free(&rope);
    quant_runtime_close(&runtime);
    free(hidden);
    if (status != STRATA_OK) return status;
    int64_t predicted = n_windows * (window - 1);
    *result = (strata_eval_result){.mean_nll = nll_sum / (double)predicted,
                                   .perplexity = exp(nll_sum / (double)predicted),
                                   .n_windows = n_windows,
                                   .n_predicted = predicted,
                                   .fp32 = precision == GEMM_F32,
                                   .seconds = seconds_now() - start};
    return STRATA_OK;
}
