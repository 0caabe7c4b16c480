/*
 * cmd_eval.c — `strata eval MODEL --text FILE | --tokens FILE`: perplexity over
 * non-overlapping windows. Text is tokenized whole with the model's tokenizer.json (BOS
 * once at the start when the tokenizer adds one), as transformers' perplexity recipe does;
 * --tokens takes ids tokenized elsewhere (see strata_tokens_read).
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_options.h"

typedef struct eval_settings {
    strata_eval_params params;
    const char *tokens_path, *text_path, *tokenizer_path;
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
    CLI_THREADS_OPTION,
    {.name = "json", .kind = CLI_FLAG, .offset = AT(json), .help = "print the result as JSON"},
};

static const cli_command COMMAND = {
    .name = "eval",
    .operand = "MODEL_DIR",
    .about = "Perplexity of a model over non-overlapping windows of text (--text FILE or --tokens FILE):\n"
             "each window runs independently from position 0; every position but the last predicts\n"
             "the next token; a trailing partial window is dropped. Runs one decoder layer at\n"
             "a time. Prints the perplexity on stdout.\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

_Static_assert(sizeof(size_t) == sizeof(uint64_t), "--memory-budget is stored as CLI_MIB's uint64_t");

int cmd_eval(int argc, char **argv, const cli_context *ctx)
{
    eval_settings s = {0};
    const char *model_dir = NULL;
    int code = cli_parse(&COMMAND, argc, argv, &s, &model_dir);
    if (code >= 0) return code;
    if (!s.tokens_path == !s.text_path) return cli_usage_error("eval", "give one of --text FILE or --tokens FILE");
    strata_eval_params params = s.params;
    const char *tokens_path = s.tokens_path, *text_path = s.text_path, *tokenizer_path = s.tokenizer_path;
    bool json = s.json;

    strata_model *model = NULL;
    int32_t *ids = NULL;
    int64_t n_ids = 0;
    strata_status status = strata_model_open(model_dir, &model);
    if (status == STRATA_OK && tokens_path) status = strata_tokens_read(tokens_path, &ids, &n_ids);
    if (status == STRATA_OK && text_path)
        status = cli_tokenize_file(tokenizer_path ? tokenizer_path : model_dir, text_path, &ids, &n_ids);
    strata_eval_result result;
    if (status == STRATA_OK) status = strata_eval_perplexity(model, ids, n_ids, &params, &result);
    strata_free(ids);
    strata_model_close(model);
    if (status != STRATA_OK) return cli_fail(status);
    if (json) {
        printf("{\"perplexity\": %.6f, \"mean_nll\": %.8f, \"windows\": %lld, \"predicted_tokens\": %lld, "
               "\"precision\": \"%s\", \"seconds\": %.3f}\n",
               result.perplexity, result.mean_nll, (long long)result.n_windows, (long long)result.n_predicted,
               result.fp32 ? "fp32" : "bf16", result.seconds);
    } else {
        if (ctx->verbosity > 0)
            fprintf(stderr, "strata: %lld windows, %lld predicted tokens, %s products, %.1f s\n",
                    (long long)result.n_windows, (long long)result.n_predicted, result.fp32 ? "fp32" : "bf16",
                    result.seconds);
        printf("perplexity %.4f\n", result.perplexity);
    }
    return EXIT_OK;
}
