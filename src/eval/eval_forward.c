/*
 * eval_forward.c — windows, precision, hidden states and logits of an evaluation (see
 * eval_forward.h).
 */
#include "eval/eval_forward.h"

#include <stdlib.h>

#include "core/clock.h"
#include "core/error.h"
#include "eval/quant_runtime.h"
#include "forward/model_forward.h"
#include "io/safetensors_mapping.h"

enum { DEFAULT_WINDOW = 512 };

strata_status eval_windows(const strata_arch *arch, const strata_eval_params *params, int64_t n_tokens,
                           int64_t *window, int64_t *n_windows)
{
    if (n_tokens < 0 || params->window < 0 || params->max_windows < 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "negative token or window count");
    int64_t w = params->window ? params->window : DEFAULT_WINDOW;
    if (!params->window && arch->max_position_embeddings > 0 && w > arch->max_position_embeddings)
        w = arch->max_position_embeddings;
    strata_status status = forward_check_seq_len(arch, w);
    if (status != STRATA_OK) return status;
    if (w < 2) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "a window needs at least 2 tokens");
    int64_t n = n_tokens / w;
    if (params->max_windows > 0 && n > params->max_windows) n = params->max_windows;
    if (n == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "evaluation needs at least one window of %lld tokens; got %lld",
                           (long long)w, (long long)n_tokens);
    *window = w;
    *n_windows = n;
    return STRATA_OK;
}

strata_status eval_precision(bool fp32, gemm_precision *precision)
{
    *precision = fp32 ? GEMM_F32 : GEMM_BF16;
    bool bf16 = false;
    strata_status status = STRATA_OK;
    if (*precision == GEMM_BF16 && (status = gemm_bf16_available(&bf16)) != STRATA_OK) return status;
    if (*precision == GEMM_BF16 && !bf16) {
        strata_log(STRATA_LOG_WARN, "this CPU has no bf16 matrix products in oneDNN; evaluating in fp32");
        *precision = GEMM_F32;
    }
    return STRATA_OK;
}

size_t eval_budget(const strata_eval_params *params)
{
    return params->memory_budget ? params->memory_budget : DECODER_DEFAULT_BUDGET;
}

strata_status eval_hidden_states(const strata_model *model, gemm_precision precision, size_t budget,
                                 const int32_t *tokens, int64_t n_windows, int64_t window, const char *what,
                                 float *hidden)
{
    const strata_arch *arch = strata_model_arch(model);
    strata_status status = forward_check_tokens(arch, tokens, n_windows * window, "evaluation text");
    if (status != STRATA_OK) return status;
    quant_runtime runtime;
    bool quantized_inputs = false;
    status = quant_runtime_open(model, &runtime, &quantized_inputs);
    if (status != STRATA_OK) return status;
    forward_hooks hooks = quant_runtime_hooks(&runtime);
    forward_config config = {.precision = precision, .memory_budget = budget,
                             .hooks = quantized_inputs ? &hooks : NULL, .n_hooks = quantized_inputs ? 1 : 0};
    rope_table rope = {0};
    double start = seconds_now();
    /* Each step's mapped pages leave the resident set once it is done (they stay in the page
     * cache): the peak RSS is one layer's, not the checkpoint's size. */
    const strata_safetensors *st = strata_model_tensors(model);
    status = forward_embed(model, tokens, n_windows * window, hidden);
    safetensors_release_pages(st);
    if (status == STRATA_OK) status = rope_table_create(arch, window, &rope);
    for (int layer = 0; status == STRATA_OK && layer < arch->n_layers; layer++) {
        status = forward_layer(model, layer, &config, &rope, hidden, n_windows, window);
        safetensors_release_pages(st);
        double elapsed = seconds_now() - start;
        strata_log(STRATA_LOG_INFO, "eval: %s: layer %d/%d done, %.1f s elapsed, ETA %.1f s", what, layer + 1,
                   arch->n_layers, elapsed, elapsed / (layer + 1) * (arch->n_layers - layer - 1));
    }
    rope_table_free(&rope);
    quant_runtime_close(&runtime);
    return status;
}

strata_status eval_logits(const strata_model *model, gemm_precision precision, size_t budget, const float *hidden,
                          int64_t n_rows, eval_logits_fn each, void *ctx)
{
    const strata_arch *arch = strata_model_arch(model);
    int64_t H = arch->hidden_size, V = arch->vocab_size;
    size_t row_bytes = (size_t)V * 4 + (size_t)H * 6;
    int64_t rows = (int64_t)(budget / row_bytes);
    if (rows < 1) rows = 1;
    if (rows > n_rows) rows = n_rows;
    output_head head;
    strata_status status = output_head_load(model, precision, &head);
    if (status != STRATA_OK) return status;
    float *logits = malloc((size_t)rows * (size_t)V * sizeof(float));
    float *normed = malloc((size_t)rows * (size_t)H * sizeof(float));
    uint16_t *bf16 = malloc((size_t)rows * (size_t)H * sizeof(uint16_t));
    if (!logits || !normed || !bf16) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for logits");
    for (int64_t begin = 0; status == STRATA_OK && begin < n_rows; begin += rows) {
        int64_t n = n_rows - begin < rows ? n_rows - begin : rows;
        status = output_head_logits(&head, hidden + begin * H, n, normed, bf16, logits);
        if (status == STRATA_OK) status = each(ctx, begin, n, logits);
    }
    free(logits);
    free(normed);
    free(bf16);
    output_head_free(&head);
    safetensors_release_pages(strata_model_tensors(model));
    return status;
}
