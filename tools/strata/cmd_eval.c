/*
 * cmd_eval.c — `strata eval MODEL --text FILE | --tokens FILE`: perplexity over
 * non-overlapping windows. Text is tokenized whole with the model's tokenizer.json (BOS
 * once at the start when the tokenizer adds one), as transformers' perplexity recipe does;
 * --tokens takes ids tokenized elsewhere (see strata_tokens_read).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void eval_help(void)
{
    printf("usage: strata eval MODEL_DIR (--text FILE | --tokens FILE) [--window N] [--max-windows N]\n"
           "                  [--fp32] [--memory-budget MIB] [--threads N] [--json]\n"
           "\n"
           "Perplexity of a model over non-overlapping windows of text: each\n"
           "window runs independently from position 0; every position but the last predicts\n"
           "the next token; a trailing partial window is dropped. Runs one decoder layer at\n"
           "a time. Prints the perplexity on stdout.\n"
           "\n"
           "  --text FILE          UTF-8 text, tokenized whole with the model's tokenizer.json\n"
           "                       (BOS once at the start, as the tokenizer adds it)\n"
           "  --tokenizer PATH     tokenizer.json or its directory (default: MODEL_DIR)\n"
           "  --tokens FILE        token ids instead of text: *.json array, *.bin little-endian\n"
           "                       int32, or whitespace-separated integers\n"
           "  --window N           tokens per window (default 512, at most max_position_embeddings)\n"
           "  --max-windows N      evaluate only the first N windows\n"
           "  --fp32               matrix products in fp32 (default bf16 with fp32 accumulation)\n"
           "  --memory-budget MIB  scratch memory per chunk of windows (default 1024)\n"
           "  --threads N          worker threads (default: all CPUs)\n"
           "  --json               print the result as JSON\n"
           "  -h, --help\n");
}

int cmd_eval(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"tokens", required_argument, NULL, 't'},      {"text", required_argument, NULL, 'x'},
        {"window", required_argument, NULL, 'w'},      {"max-windows", required_argument, NULL, 'm'},
        {"fp32", no_argument, NULL, 'f'},              {"memory-budget", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 'j'},     {"json", no_argument, NULL, 'J'},
        {"tokenizer", required_argument, NULL, 'k'},  {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    strata_eval_params params = {0};
    const char *tokens_path = NULL, *text_path = NULL, *tokenizer_path = NULL;
    bool json = false;
    long long v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 't': tokens_path = optarg; break;
        case 'x': text_path = optarg; break;
        case 'k': tokenizer_path = optarg; break;
        case 'w':
            if (!cli_parse_int(optarg, 2, 1LL << 24, &v)) return cli_usage_error("eval", "--window must be 2..16777216");
            params.window = v;
            break;
        case 'm':
            if (!cli_parse_int(optarg, 1, 1LL << 40, &v)) return cli_usage_error("eval", "--max-windows must be positive");
            params.max_windows = v;
            break;
        case 'f': params.fp32 = true; break;
        case 'b':
            if (!cli_parse_int(optarg, 1, 1LL << 30, &v)) return cli_usage_error("eval", "--memory-budget must be positive (MiB)");
            params.memory_budget = (size_t)v << 20;
            break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("eval", "--threads must be 1..256");
            strata_set_num_threads((int)v);
            break;
        case 'J': json = true; break;
        case 'h': eval_help(); return EXIT_OK;
        default: return cli_usage_error("eval", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("eval", "missing MODEL_DIR");
    const char *model_dir = argv[optind++];
    if (optind < argc) return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
    if (!tokens_path == !text_path) return cli_usage_error("eval", "give one of --text FILE or --tokens FILE");

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
