/*
 * model_forward.c — embeddings, single layers and the output head (see model_forward.h).
 */
#include "forward/model_forward.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/family.h"
#include "kernels/rmsnorm.h"

strata_status forward_check_tokens(const strata_arch *arch, const int32_t *tokens, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= arch->vocab_size)
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                               "%s: token %lld is id %d, outside the model's vocabulary [0, %lld)", what,
                               (long long)i, (int)tokens[i], (long long)arch->vocab_size);
    return STRATA_OK;
}

strata_status forward_check_seq_len(const strata_arch *arch, int64_t seq_len)
{
    if (seq_len <= 0) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "sequence length must be positive");
    if (arch->max_position_embeddings > 0 && seq_len > arch->max_position_embeddings)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                           "sequence length %lld exceeds max_position_embeddings %lld of config.json (rope type %s%s); "
                           "use shorter sequences",
                           (long long)seq_len, (long long)arch->max_position_embeddings,
                           rope_type_name(arch->rope.type), arch->rope.type == STRATA_ROPE_DEFAULT ? ", no scaling" : "");
    return STRATA_OK;
}

strata_status forward_embed(const strata_model *model, const int32_t *tokens, int64_t n, float *hidden)
{
    const strata_arch *arch = strata_model_arch(model);
    const strata_tensor *t = strata_safetensors_find(strata_model_tensors(model), arch->embed_tokens);
    if (!t) return strata_fail(STRATA_ERR_NOT_FOUND, "tensor %s is missing from the checkpoint", arch->embed_tokens);
    if (t->dtype != STRATA_DTYPE_F32 && t->dtype != STRATA_DTYPE_BF16 && t->dtype != STRATA_DTYPE_F16)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "tensor %s is %s; embeddings must be F32, BF16 or F16",
                           arch->embed_tokens, strata_dtype_name(t->dtype));
    if (t->n_elements != arch->vocab_size * arch->hidden_size)
        return strata_fail(STRATA_ERR_MISMATCH, "tensor %s has %lld elements, expected vocab_size x hidden_size",
                           arch->embed_tokens, (long long)t->n_elements);
    strata_status status = forward_check_tokens(arch, tokens, n, "input");
    if (status != STRATA_OK) return status;
    int64_t H = arch->hidden_size;
    size_t row_bytes = (size_t)H * strata_dtype_size(t->dtype);
    for (int64_t i = 0; i < n; i++) {
        float *row = hidden + i * H;
        strata_convert_to_f32(t->dtype, (const uint8_t *)t->data + (size_t)tokens[i] * row_bytes, (size_t)H, row);
        int64_t c = first_non_finite(row, H);
        if (c >= 0)
            return strata_fail(STRATA_ERR_FORMAT, "%s: tensor %s holds %s in row %d, column %lld",
                               strata_safetensors_shard_path(strata_model_tensors(model), t->shard), arch->embed_tokens,
                               non_finite_name(row[c]), (int)tokens[i], (long long)c);
    }
    return STRATA_OK;
}

strata_status forward_layer(const strata_model *model, int index, const forward_config *config,
                            const rope_table *rope, float *hidden, int64_t n_seq, int64_t seq_len)
{
    layer_weights lw;
    strata_status status = layer_weights_load(model, index, config->precision, config->hooks, config->n_hooks, &lw);
    if (status != STRATA_OK) return status;
    status = decoder_layer_forward(&lw, config, rope, hidden, n_seq, seq_len, 0);
    layer_weights_free(&lw);
    return status;
}

strata_status output_head_load(const strata_model *model, gemm_precision precision, output_head *out)
{
    const strata_arch *arch = strata_model_arch(model);
    *out = (output_head){.arch = arch, .precision = precision};
    out->norm = malloc((size_t)arch->hidden_size * sizeof *out->norm);
    if (!out->norm) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the final norm");
    strata_status status = model_tensor_f32(model, arch->final_norm, (size_t)arch->hidden_size, out->norm);
    if (status == STRATA_OK) status = model_tensor_gemm(model, arch->lm_head, precision, &out->lm_head);
    if (status == STRATA_OK && (gemm_weight_n_out(out->lm_head) != arch->vocab_size ||
                                gemm_weight_n_in(out->lm_head) != arch->hidden_size))
        status = strata_fail(STRATA_ERR_MISMATCH, "tensor %s is not (vocab_size, hidden_size)", arch->lm_head);
    if (status != STRATA_OK) output_head_free(out);
    return status;
}

void output_head_free(output_head *head)
{
    if (!head) return;
    free(head->norm);
    gemm_weight_free(head->lm_head);
    *head = (output_head){0};
}

strata_status output_head_logits(const output_head *head, const float *hidden, int64_t rows, float *normed,
                                 uint16_t *bf16, float *logits)
{
    int64_t H = head->arch->hidden_size;
    rmsnorm_rows(hidden, H, rows, H, head->norm, (float)head->arch->rms_norm_eps, normed, H);
    const void *src = normed;
    if (head->precision == GEMM_BF16) {
        gemm_round_to_bf16(normed, bf16, (size_t)(rows * H));
        src = bf16;
    }
    return gemm_linear(head->lm_head, src, H, rows, logits, head->arch->vocab_size);
}
