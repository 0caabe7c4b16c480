/*
 * cmd_eval.c — `strata eval MODEL --text FILE | --tokens FILE`: perplexity over
 * non-overlapping windows. Text is tokenized whole with the model's tokenizer.json (BOS
 * once at the start when the tokenizer adds one), as transformers' perplexity recipe does;
 * --tokens takes ids tokenized elsewhere (see strata_tokens_read).
 *
 * With --base ORIGINAL (or --base-logits FILE) it compares the model with its base and
 * prints llama.cpp's KL-divergence statistics, in llama-perplexity's layout
 * (docs/EVAL.md); --save-base FILE writes the base's side for later comparisons.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_options.h"
#include "eval_print.h"

typedef struct eval_settings {
    strata_eval_params params;
    const char *tokens_path, *text_path, *tokenizer_path;
    const char *base_dir, *base_logits, *save_base;
    bool json;
} eval_settings;

#define AT(member) offsetof(eval_settings, member)

static const cli_option OPTIONS[] = {
    {.name = "text", .value = "FILE", .kind = CLI_STRING, .offset = AT(text_path),
     .help = "UTF-8 text, tokenized whole with the model's tokenizer.json\n"
             "(BOS once at the start, as the tokenizer adds it)"},
    {.name = "tokenizer", .value = "PATH", .kind = CLI_STRING, .offset = AT(tokenizer_path),
     .help = "tokenizer.json or its directory (default: MODEL_DIR)"},
    {.name = "tokens", .value = "FILE", .kind = CLI_STRING, .offset = AT(tokens_path),
     .help = "token ids instead of text: *.json array, *.bin little-endian\n"
             "int32, or whitespace-separated integers"},
    {.name = "window", .value = "N", .kind = CLI_INT, .offset = AT(params.window), .lo = 2, .hi = INT64_C(1) << 24,
     .help = "tokens per window (default 512, at most max_position_embeddings)"},
    {.name = "max-windows", .value = "N", .kind = CLI_INT, .offset = AT(params.max_windows), .lo = 1,
     .hi = INT64_C(1) << 40, .help = "evaluate only the first N windows"},
    {.name = "fp32", .kind = CLI_FLAG, .offset = AT(params.fp32),
     .help = "matrix products in fp32 (default bf16 with fp32 accumulation)"},
    {.name = "memory-budget", .value = "MIB", .kind = CLI_MIB, .offset = AT(params.memory_budget), .lo = 1,
     .hi = INT64_C(1) << 30, .help = "scratch memory per chunk of windows (default 1024)"},
    {.name = "base", .value = "DIR", .kind = CLI_STRING, .offset = AT(base_dir),
     .help = "compare MODEL_DIR with this original model: perplexities,\n"
             "KL divergence, top-token agreement (llama.cpp's statistics)"},
    {.name = "base-logits", .value = "FILE", .kind = CLI_STRING, .offset = AT(base_logits),
     .help = "compare with the base log-probabilities saved in FILE\n"
             "(--save-base, or llama.cpp's --kl-divergence-base); the\n"
             "windows and tokens are the file's"},
    {.name = "save-base", .value = "FILE", .kind = CLI_STRING, .offset = AT(save_base),
     .help = "write the base's log-probabilities to FILE (llama.cpp's\n"
             "--kl-divergence-base format): of --base, or of MODEL_DIR alone"},
    CLI_THREADS_OPTION,
    {.name = "json", .kind = CLI_FLAG, .offset = AT(json), .help = "print the result as JSON"},
};

static const cli_command COMMAND = {
    .name = "eval",
    .operand = "MODEL_DIR",
    .about = "Perplexity of a model over non-overlapping windows of text (--text FILE or --tokens FILE):\n"
             "each window runs independently from position 0; every position but the last predicts\n"
             "the next token; a trailing partial window is dropped. Runs one decoder layer at\n"
             "a time. Prints the perplexity on stdout.\n"
             "\n"
             "With --base DIR or --base-logits FILE, compares MODEL_DIR (the quantized model)\n"
             "with the original over the same windows, as llama-perplexity --kl-divergence\n"
             "does: each window scores its second half (positions n/2 + 1 to n - 1); prints\n"
             "both perplexities and their ratio, KL divergence (mean, percentiles), the change\n"
             "in the correct token's probability and how often the top token agrees, each\n"
             "with its standard error (--json adds 95% intervals). The two models run one\n"
             "after the other, a block of windows at a time.\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "--memory-budget is stored as CLI_MIB's uint64_t");

static void print_perplexity(const strata_eval_result *result, bool json, const cli_context *ctx)
{
    if (json) {
        printf("{\"perplexity\": %.6f, \"mean_nll\": %.8f, \"windows\": %lld, \"predicted_tokens\": %lld, "
               "\"precision\": \"%s\", \"seconds\": %.3f}\n",
               result->perplexity, result->mean_nll, (long long)result->n_windows, (long long)result->n_predicted,
               result->fp32 ? "fp32" : "bf16", result->seconds);
        return;
    }
    if (ctx->verbosity > 0)
        fprintf(stderr, "strata: %lld windows, %lld predicted tokens, %s products, %.1f s\n",
                (long long)result->n_windows, (long long)result->n_predicted, result->fp32 ? "fp32" : "bf16",
                result->seconds);
    printf("perplexity %.4f\n", result->perplexity);
}

int cmd_eval(int argc, char **argv, const cli_context *ctx)
{
    eval_settings s = {0};
    const char *model_dir = NULL;
    int code = cli_parse(&COMMAND, argc, argv, &s, &model_dir);
    if (code >= 0) return code;
    if (s.base_dir && s.base_logits) return cli_usage_error("eval", "give one of --base DIR or --base-logits FILE");
    if (s.base_logits && (s.tokens_path || s.text_path))
        return cli_usage_error("eval", "--base-logits brings its own windows; leave out --text and --tokens");
    if (!s.base_logits && !s.tokens_path == !s.text_path)
        return cli_usage_error("eval", "give one of --text FILE or --tokens FILE");
    if (s.save_base && s.base_logits) return cli_usage_error("eval", "--save-base needs the base model, not a file");
    const char *tokenizer_path = s.tokenizer_path ? s.tokenizer_path : s.base_dir ? s.base_dir : model_dir;
    strata_eval_compare_params compare = {.eval = s.params, .base_logits = s.base_logits, .save_base = s.save_base};

    strata_model *model = NULL, *base = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    strata_status status = strata_model_open(model_dir, &model);
    if (status == STRATA_OK && s.base_dir) status = strata_model_open(s.base_dir, &base);
    if (status == STRATA_OK && s.tokens_path) status = strata_tokens_read(s.tokens_path, &ids, &n_ids);
    if (status == STRATA_OK && s.text_path) status = cli_tokenize_file(tokenizer_path, s.text_path, &ids, &n_ids);
    strata_eval_result result;
    strata_eval_compare_result comparison;
    bool compared = s.base_dir || s.base_logits;
    if (status == STRATA_OK && compared)
        status = strata_eval_compare(model, base, ids, n_ids, &compare, &comparison);
    else if (status == STRATA_OK && s.save_base)
        status = strata_eval_save_base(model, ids, n_ids, &compare, &result);
    else if (status == STRATA_OK)
        status = strata_eval_perplexity(model, ids, n_ids, &s.params, &result);
    strata_free(ids);
    strata_model_close(model);
    strata_model_close(base);
    if (status != STRATA_OK) return cli_fail(status);
    if (compared && s.json) eval_print_comparison_json(stdout, &comparison);
    else if (compared) eval_print_comparison(stdout, &comparison);
    else print_perplexity(&result, s.json, ctx);
    if (s.save_base && !s.json) fprintf(stderr, "strata: base log-probabilities written to %s\n", s.save_base);
    return EXIT_OK;
}
