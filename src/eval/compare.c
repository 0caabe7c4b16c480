/*
 * compare.c — strata_eval_compare: a quantized model against its base over the same
 * windows, with llama.cpp's KL-divergence statistics (kld_stats.h), and
 * strata_eval_save_base, which writes the base's side once (base_logits.h).
 *
 * Windows go in blocks small enough that a block's base logits fit the memory budget.
 * For each block:
 *   1. the base model runs over the block layer by layer (eval_forward.h), and the logits of
 *      its scored positions are kept (and compressed into the --save-base file), or the
 *      block's records are read from a base file instead;
 *   2. the quantized model runs over the same windows in the same buffer, and each scored
 *      position's logits are compared with the base's (in parallel over positions, added
 *      to the statistics in token order).
 * A window of n tokens scores the positions n/2 ... n - 2, each predicting the next token
 * (llama.cpp's choice: every scored token has at least n/2 tokens of context). Neither
 * model is ever whole in memory; the hidden states of one block are.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "eval/base_logits.h"
#include "eval/eval_forward.h"
#include "eval/kld_stats.h"
#include "forward/model_forward.h"
#include "kernels/pool.h"

typedef struct compare_run {
    const strata_model *quantized, *base;
    const strata_eval_compare_params *params;
    gemm_precision precision;
    size_t budget;
    const int32_t *tokens;
    int64_t window, n_windows, first, scored; /* scored positions per window: first ... window - 2 */
    int64_t vocab, hidden_size;
    int64_t block;                             /* windows per block */
    float *hidden;                             /* (block * window, hidden) */
    /* The block's base side, one row per scored position: */
    float *base_logits;                        /* (block * scored, vocab) from the base model, or NULL */
    double *base_lse;                          /* (block * scored) their log-sum-exp */
    uint16_t *records;                         /* (block * scored, record words) compressed, or NULL */
    int64_t record_words;
    base_logits_reader reader;                 /* the base file, when read */
    base_logits_writer writer;                 /* the --save-base file, when written */
    bool writing;
    /* The block being compared: */
    int64_t w0;
    kld_token *token_results;                  /* (rows of a logits chunk) */
    int64_t token_capacity;
    kld_accumulator acc;
    double base_nll;                           /* save-only: the base's NLL over the scored tokens */
} compare_run;

/* hidden rows of the scored positions moved to the front, window after window: row
 * (w * scored + j) = row (w * window + first + j); each moves to an index no larger. */
static void pack_scored_rows(compare_run *c, int64_t n_windows)
{
    size_t row = (size_t)c->hidden_size * sizeof *c->hidden;
    for (int64_t w = 0; w < n_windows; w++)
        memmove(c->hidden + (w * c->scored) * c->hidden_size, c->hidden + (w * c->window + c->first) * c->hidden_size,
                (size_t)c->scored * row);
}

/* The target of scored row r of the block. */
static int32_t target_of(const compare_run *c, int64_t r)
{
    int64_t w = c->w0 + r / c->scored, j = r % c->scored;
    return c->tokens[w * c->window + c->first + j + 1];
}

/* eval_logits callback of the base: the scored rows' logits kept, compressed when saving. */
static strata_status keep_base(void *ctx, int64_t first_row, int64_t rows, const float *logits)
{
    compare_run *c = ctx;
    for (int64_t r = 0; r < rows; r++) {
        const float *row = logits + r * c->vocab;
        int64_t at = first_row + r;
        double lse = kld_log_sum_exp(row, c->vocab, NULL);
        if (c->base_logits) {
            memcpy(c->base_logits + at * c->vocab, row, (size_t)c->vocab * sizeof *row);
            c->base_lse[at] = lse;
        } else {
            c->base_nll += lse - (double)row[target_of(c, at)];
        }
        if (c->writing) base_logits_compress(row, c->vocab, c->records + at * c->record_words);
    }
    return STRATA_OK;
}

typedef struct compare_chunk {
    compare_run *c;
    int64_t first_row;
    const float *logits;
} compare_chunk;

static void compare_rows(void *ctx, int64_t begin, int64_t end)
{
    const compare_chunk *k = ctx;
    compare_run *c = k->c;
    for (int64_t r = begin; r < end; r++) {
        int64_t at = k->first_row + r;
        kld_base_row base = c->base_logits
                                ? (kld_base_row){.logits = c->base_logits + at * c->vocab, .log_sum_exp = c->base_lse[at]}
                                : (kld_base_row){.compressed = c->records + at * c->record_words};
        c->token_results[r] = kld_token_compare(k->logits + r * c->vocab, &base, c->vocab, target_of(c, at));
    }
}

/* eval_logits callback of the quantized model: each row compared, added in order. */
static strata_status compare_quantized(void *ctx, int64_t first_row, int64_t rows, const float *logits)
{
    compare_run *c = ctx;
    if (rows > c->token_capacity) {
        free(c->token_results);
        if (!(c->token_results = malloc((size_t)rows * sizeof *c->token_results)))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        c->token_capacity = rows;
    }
    compare_chunk k = {.c = c, .first_row = first_row, .logits = logits};
    pool_parallel_for(rows, 4, compare_rows, &k);
    return kld_accumulate(&c->acc, c->token_results, rows);
}

/* Windows per block: the block's hidden states and its base side within the budget (at
 * least one window). */
static int64_t block_windows(const compare_run *c, bool base_logits, bool records)
{
    size_t per_window = (size_t)(c->window * c->hidden_size) * sizeof(float);
    if (base_logits) per_window += (size_t)(c->scored * c->vocab) * sizeof(float) + (size_t)c->scored * sizeof(double);
    if (records) per_window += (size_t)(c->scored * c->record_words) * sizeof(uint16_t);
    int64_t block = (int64_t)(c->budget / per_window);
    if (block < 1) block = 1;
    return block < c->n_windows ? block : c->n_windows;
}

static strata_status allocate_block(compare_run *c, bool base_logits, bool records)
{
    c->record_words = base_logits_record_words(c->vocab);
    c->block = block_windows(c, base_logits, records);
    size_t rows = (size_t)(c->block * c->scored);
    c->records = records ? malloc(rows * (size_t)c->record_words * sizeof *c->records) : NULL;
    c->hidden = malloc((size_t)(c->block * c->window * c->hidden_size) * sizeof *c->hidden);
    bool ok = c->hidden && (!records || c->records);
    if (base_logits) {
        c->base_logits = malloc(rows * (size_t)c->vocab * sizeof *c->base_logits);
        c->base_lse = malloc(rows * sizeof *c->base_lse);
        ok = ok && c->base_logits && c->base_lse;
    }
    if (!ok)
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a block of %lld windows of %lld tokens",
                           (long long)c->block, (long long)c->window);
    return STRATA_OK;
}

static void compare_run_free(compare_run *c)
{
    free(c->hidden);
    free(c->base_logits);
    free(c->base_lse);
    free(c->records);
    free(c->token_results);
    kld_accumulator_free(&c->acc);
    base_logits_close(&c->reader);
    base_logits_writer_free(&c->writer);
}

/* One block of windows [c->w0, c->w0 + n): the base side, then the comparison. */
static strata_status run_block(compare_run *c, int64_t n)
{
    const int32_t *tokens = c->tokens + c->w0 * c->window;
    int64_t rows = n * c->scored;
    strata_status status = STRATA_OK;
    if (c->base) {
        status = eval_hidden_states(c->base, c->precision, c->budget, tokens, n, c->window, "base", c->hidden);
        if (status == STRATA_OK) pack_scored_rows(c, n);
        if (status == STRATA_OK) status = eval_logits(c->base, c->precision, c->budget, c->hidden, rows, keep_base, c);
        if (status == STRATA_OK && c->writing) status = base_logits_append(&c->writer, c->records, rows);
    } else {
        status = base_logits_read(&c->reader, c->w0, n, c->records);
    }
    if (status != STRATA_OK || !c->quantized) return status;
    status = eval_hidden_states(c->quantized, c->precision, c->budget, tokens, n, c->window, "quantized", c->hidden);
    if (status == STRATA_OK) pack_scored_rows(c, n);
    if (status == STRATA_OK)
        status = eval_logits(c->quantized, c->precision, c->budget, c->hidden, rows, compare_quantized, c);
    return status;
}

/* The windows and the base side's source; then every block. */
static strata_status run_compare(compare_run *c, const int32_t *tokens, int64_t n_tokens)
{
    const strata_eval_compare_params *p = c->params;
    const strata_model *any = c->quantized ? c->quantized : c->base;
    const strata_arch *arch = strata_model_arch(any);
    c->vocab = arch->vocab_size;
    c->hidden_size = arch->hidden_size;
    strata_status status = eval_precision(p->eval.fp32, &c->precision);
    if (status != STRATA_OK) return status;
    c->budget = eval_budget(&p->eval);
    if (c->base) {
        const strata_arch *b = strata_model_arch(c->base);
        if (b->vocab_size != arch->vocab_size || b->hidden_size != arch->hidden_size)
            return strata_fail(STRATA_ERR_MISMATCH,
                               "the base model (vocabulary %lld, hidden %lld) is not the quantized model's "
                               "(vocabulary %lld, hidden %lld)",
                               (long long)b->vocab_size, (long long)b->hidden_size, (long long)arch->vocab_size,
                               (long long)arch->hidden_size);
        status = eval_windows(arch, &p->eval, n_tokens, &c->window, &c->n_windows);
        if (status == STRATA_OK) status = eval_windows(b, &p->eval, n_tokens, &c->window, &c->n_windows);
        c->tokens = tokens;
    } else {
        status = base_logits_open(p->base_logits, &c->reader);
        if (status == STRATA_OK && c->reader.n_vocab != c->vocab)
            status = strata_fail(STRATA_ERR_MISMATCH, "%s holds log-probabilities over %lld tokens; the model's "
                                 "vocabulary has %lld", p->base_logits, (long long)c->reader.n_vocab,
                                 (long long)c->vocab);
        c->window = c->reader.n_ctx;
        c->n_windows = c->reader.n_chunk;
        if (p->eval.max_windows > 0 && c->n_windows > p->eval.max_windows) c->n_windows = p->eval.max_windows;
        if (status == STRATA_OK) status = forward_check_seq_len(arch, c->window);
        c->tokens = c->reader.tokens;
    }
    if (status != STRATA_OK) return status;
    c->first = base_logits_first_position(c->window);
    c->scored = base_logits_records_per_window(c->window);
    if (c->scored < 1)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "a window of %lld tokens scores none (llama.cpp's rule: "
                           "positions n/2 to n - 2); use at least 3", (long long)c->window);
    c->writing = p->save_base != NULL;
    status = allocate_block(c, c->base && c->quantized, c->writing || !c->base);
    if (status == STRATA_OK && c->writing)
        status = base_logits_create(p->save_base, c->window, c->vocab, c->n_windows, c->tokens, &c->writer);
    for (c->w0 = 0; status == STRATA_OK && c->w0 < c->n_windows; c->w0 += c->block) {
        int64_t n = c->n_windows - c->w0 < c->block ? c->n_windows - c->w0 : c->block;
        if (c->n_windows > c->block)
            strata_log(STRATA_LOG_INFO, "eval: windows %lld to %lld of %lld", (long long)c->w0 + 1,
                       (long long)(c->w0 + n), (long long)c->n_windows);
        status = run_block(c, n);
    }
    if (status == STRATA_OK && c->writing) status = base_logits_commit(&c->writer);
    return status;
}

strata_status strata_eval_compare(const strata_model *quantized, const strata_model *base, const int32_t *tokens,
                                  int64_t n_tokens, const strata_eval_compare_params *params,
                                  strata_eval_compare_result *result)
{
    if (!quantized || !params || !result || (base && n_tokens > 0 && !tokens))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_eval_compare: NULL argument");
    if (!base == !params->base_logits)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "compare with a base model or a base log-probability file, "
                           "one of them");
    if (params->save_base && !base)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "saving the base's log-probabilities needs the base model");
    *result = (strata_eval_compare_result){0};
    double start = seconds_now();
    compare_run c = {.quantized = quantized, .base = base, .params = params, .reader = {.fd = -1}};
    strata_status status = run_compare(&c, tokens, n_tokens);
    if (status == STRATA_OK) {
        kld_summarize(&c.acc, result);
        result->n_windows = c.n_windows;
        result->window = c.window;
        result->base_from_file = base == NULL;
        result->fp32 = c.precision == GEMM_F32;
        result->seconds = seconds_now() - start;
    }
    compare_run_free(&c);
    return status;
}

strata_status strata_eval_save_base(const strata_model *model, const int32_t *tokens, int64_t n_tokens,
                                    const strata_eval_compare_params *params, strata_eval_result *result)
{
    if (!model || !params || !params->save_base || !result || (n_tokens > 0 && !tokens))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_eval_save_base: NULL argument");
    *result = (strata_eval_result){0};
    double start = seconds_now();
    compare_run c = {.base = model, .params = params, .reader = {.fd = -1}};
    strata_status status = run_compare(&c, tokens, n_tokens);
    if (status == STRATA_OK) {
        int64_t scored = c.n_windows * c.scored;
        *result = (strata_eval_result){.mean_nll = c.base_nll / (double)scored,
                                       .perplexity = exp(c.base_nll / (double)scored),
                                       .n_windows = c.n_windows,
                                       .n_predicted = scored,
                                       .fp32 = c.precision == GEMM_F32,
                                       .seconds = seconds_now() - start};
    }
    compare_run_free(&c);
    return status;
}
