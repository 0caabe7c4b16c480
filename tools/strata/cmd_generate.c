/*
 * cmd_generate.c — `strata generate` (one synthetic model) and `strata demo` (the default
 * dense and MoE models, then their inspection: the project's main job until the
 * quantization pipeline lands).
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static bool parse_family(const char *name, strata_family *out)
{
    for (int f = 0; f < STRATA_FAMILY_COUNT; f++) {
        if (strcmp(strata_family_name((strata_family)f), name) == 0) {
            *out = (strata_family)f;
            return true;
        }
    }
    return false;
}

static void generate_help(void)
{
    printf("usage: strata generate -o DIR [--arch NAME] [--seed N] [--layers N] [--hidden N]\n"
           "                       [--experts N] [--stacked-experts]\n"
           "\n"
           "Writes a small synthetic model (config.json + model.safetensors, BF16) whose\n"
           "bytes depend only on the options. DIR must not exist.\n"
           "\n"
           "  -o, --output DIR       where to write the model\n"
           "  --arch NAME            llama (default), mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe\n"
           "  --seed N               random seed (default 0)\n"
           "  --layers N             decoder layers (default 4)\n"
           "  --hidden N             hidden size, a multiple of 32 (default 128)\n"
           "  --experts N            experts per MoE layer (default 8)\n"
           "  --stacked-experts      store experts as (experts, out, in) tensors (transformers v5)\n"
           "  -h, --help\n");
}

int cmd_generate(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"output", required_argument, NULL, 'o'}, {"arch", required_argument, NULL, 'a'},
        {"seed", required_argument, NULL, 's'},   {"layers", required_argument, NULL, 'l'},
        {"hidden", required_argument, NULL, 'H'}, {"experts", required_argument, NULL, 'e'},
        {"stacked-experts", no_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    strata_synth_params params = {.family = STRATA_FAMILY_LLAMA};
    const char *output = NULL;
    long long v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "ho:", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'a':
            if (!parse_family(optarg, &params.family))
                return cli_usage_error("generate", "unknown architecture '%s'", optarg);
            break;
        case 's':
            if (!cli_parse_int(optarg, 0, (1LL << 62), &v)) return cli_usage_error("generate", "invalid --seed '%s'", optarg);
            params.seed = (uint64_t)v;
            break;
        case 'l':
            if (!cli_parse_int(optarg, 1, 64, &v)) return cli_usage_error("generate", "--layers must be 1..64");
            params.n_layers = (int)v;
            break;
        case 'H':
            if (!cli_parse_int(optarg, 32, 4096, &v)) return cli_usage_error("generate", "--hidden must be 32..4096");
            params.hidden_size = v;
            break;
        case 'e':
            if (!cli_parse_int(optarg, 1, 64, &v)) return cli_usage_error("generate", "--experts must be 1..64");
            params.n_experts = (int)v;
            break;
        case 'S': params.stacked_experts = true; break;
        case 'h': generate_help(); return EXIT_OK;
        default: return cli_usage_error("generate", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (!output) return cli_usage_error("generate", "missing -o DIR");
    if (optind < argc) return cli_usage_error("generate", "unexpected argument '%s'", argv[optind]);
    strata_status status = strata_synth_model(output, &params);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0) fprintf(stderr, "strata: wrote %s model to %s\n", strata_family_name(params.family), output);
    return EXIT_OK;
}

static void demo_help(void)
{
    printf("usage: strata demo [-o DIR] [--force]\n"
           "\n"
           "Generates the default models, a dense Llama and a Qwen3-MoE (seed 0), into\n"
           "DIR/llama-dense and DIR/qwen3-moe, inspects both, then quantizes the dense model to\n"
           "FP8 layer by layer (DIR/llama-dense-fp8, calibrated on deterministic synthetic token\n"
           "ids, since a generated model has no tokenizer) and compares the perplexities.\n"
           "\n"
           "  -o, --output DIR   output directory (default strata-demo)\n"
           "  --force            replace models an earlier demo left in DIR\n"
           "  -h, --help\n");
}

/* Removes a model directory an earlier demo wrote (only the files it writes). */
static int remove_demo_model(const char *dir)
{
    static const char *const FILES[] = {"config.json", "model.safetensors"};
    char path[4096];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, FILES[i]);
        if (unlink(path) != 0 && errno != ENOENT) return -1;
    }
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* Deterministic token ids (a synthetic model has no tokenizer): xorshift over the vocab. */
static void demo_tokens(int32_t *ids, int64_t n, int64_t vocab, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)vocab);
    }
}

/* Quantizes the dense demo model to FP8 layer by layer and compares perplexities. */
static int demo_quantize(const char *output, bool force, const cli_context *ctx)
{
    enum { SAMPLES = 32, SEQ = 128, EVAL_TOKENS = 16 * SEQ };
    char model_dir[4096], quant_dir[4096];
    snprintf(model_dir, sizeof model_dir, "%s/llama-dense", output);
    snprintf(quant_dir, sizeof quant_dir, "%s/llama-dense-fp8", output);
    strata_model *model = NULL;
    strata_status status = strata_model_open(model_dir, &model);
    if (status != STRATA_OK) return cli_fail(status);
    int64_t vocab = strata_model_arch(model)->vocab_size;
    strata_model_close(model);
    int32_t *calib = malloc(SAMPLES * SEQ * sizeof *calib), *text = malloc(EVAL_TOKENS * sizeof *text);
    if (!calib || !text) {
        free(calib);
        free(text);
        fprintf(stderr, "strata: error: out of memory\n");
        return EXIT_RUNTIME;
    }
    demo_tokens(calib, SAMPLES * SEQ, vocab, 1);
    demo_tokens(text, EVAL_TOKENS, vocab, 2);
    strata_quantize_params qp = {.model_dir = model_dir, .output_dir = quant_dir, .scheme = STRATA_SCHEME_FP8,
                                 .kv_cache_fp8 = true, .tokens = calib, .n_samples = SAMPLES, .seq_len = SEQ,
                                 .progress = ctx->verbosity > 0 ? cli_print_progress : NULL, .overwrite = force};
    strata_quantize_result qr;
    status = strata_quantize_model(&qp, &qr);
    double ppl[2] = {0, 0};
    const char *dirs[2] = {model_dir, quant_dir};
    for (int i = 0; status == STRATA_OK && i < 2; i++) {
        strata_eval_params ep = {.window = SEQ};
        strata_eval_result er;
        status = strata_model_open(dirs[i], &model);
        if (status == STRATA_OK) status = strata_eval_perplexity(model, text, EVAL_TOKENS, &ep, &er);
        strata_model_close(model);
        ppl[i] = er.perplexity;
    }
    free(calib);
    free(text);
    if (status != STRATA_OK) return cli_fail(status);
    printf("\nquantized %s -> %s (FP8 weights and activations, FP8 KV cache; %lld linears, %.1f s)\n"
           "perplexity on %d synthetic tokens: bf16 %.4f, fp8 %.4f (%+.3f%%); summary in %s/quant_summary.txt\n",
           model_dir, quant_dir, (long long)qr.n_quantized_linears, qr.seconds, EVAL_TOKENS, ppl[0], ppl[1],
           100.0 * (ppl[1] / ppl[0] - 1.0), quant_dir);
    return EXIT_OK;
}

int cmd_demo(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    const char *output = "strata-demo";
    bool force = false;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "ho:", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'f': force = true; break;
        case 'h': demo_help(); return EXIT_OK;
        default: return cli_usage_error("demo", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    if (mkdir(output, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "strata: error: %s: cannot create directory: %s\n", output, strerror(errno));
        return EXIT_RUNTIME;
    }
    const struct {
        const char *name;
        strata_family family;
    } MODELS[] = {{"llama-dense", STRATA_FAMILY_LLAMA}, {"qwen3-moe", STRATA_FAMILY_QWEN3_MOE}};
    for (size_t m = 0; m < 2; m++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", output, MODELS[m].name);
        if (force && remove_demo_model(dir) != 0) {
            fprintf(stderr, "strata: error: %s: cannot remove the earlier demo model: %s\n", dir, strerror(errno));
            return EXIT_RUNTIME;
        }
        strata_synth_params params = {.family = MODELS[m].family, .seed = 0};
        strata_status status = strata_synth_model(dir, &params);
        if (status != STRATA_OK) {
            cli_fail(status);
            if (!force) fprintf(stderr, "strata: hint: 'strata demo --force' replaces an earlier demo's models\n");
            return EXIT_RUNTIME;
        }
        if (ctx->verbosity > 0) fprintf(stderr, "strata: generated %s\n", dir);
        char *report = NULL;
        status = strata_inspect(dir, NULL, &report);
        if (status != STRATA_OK) return cli_fail(status);
        printf("%s%s", m ? "\n" : "", report);
        strata_free(report);
    }
    return demo_quantize(output, force, ctx);
}
