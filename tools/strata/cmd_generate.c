/*
 * cmd_generate.c — `strata generate` (one synthetic model) and `strata demo` (the default
 * dense and MoE models, then their inspection: the project's main job until the
 * quantization pipeline lands).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_options.h"

typedef struct generate_settings {
    strata_synth_params params;
    const char *output;
    int64_t n_layers, n_experts, n_mtp_layers;
} generate_settings;

static const cli_option GENERATE_OPTIONS[] = {
    {.name = "output", .short_name = 'o', .value = "DIR", .kind = CLI_STRING,
     .offset = offsetof(generate_settings, output), .required = true, .help = "where to write the model"},
    {.name = "arch", .value = "NAME", .kind = CLI_FAMILY, .offset = offsetof(generate_settings, params.family),
     .help = "llama (default), mistral, qwen2, qwen3, mixtral, qwen2_moe, qwen3_moe,\n"
             "glm4_moe, deepseek_v3"},
    {.name = "seed", .value = "N", .kind = CLI_INT, .offset = offsetof(generate_settings, params.seed), .lo = 0,
     .hi = INT64_C(1) << 62, .help = "random seed (default 0)"},
    {.name = "layers", .value = "N", .kind = CLI_INT, .offset = offsetof(generate_settings, n_layers), .lo = 1,
     .hi = 64, .help = "decoder layers (default 4)"},
    {.name = "hidden", .value = "N", .kind = CLI_INT, .offset = offsetof(generate_settings, params.hidden_size),
     .lo = 32, .hi = 8192, .help = "hidden size, a multiple of 32 (default 128)"},
    {.name = "experts", .value = "N", .kind = CLI_INT, .offset = offsetof(generate_settings, n_experts), .lo = 1,
     .hi = 256, .help = "experts per MoE layer (default 8; 16 for deepseek_v3)"},
    {.name = "mtp-layers", .value = "N", .kind = CLI_INT, .offset = offsetof(generate_settings, n_mtp_layers), .lo = 0,
     .hi = 4, .help = "multi-token-prediction layers after the decoder layers (default 0);\n"
                      "strata copies them into outputs and never runs them"},
    {.name = "config", .value = "JSON", .kind = CLI_STRING, .offset = offsetof(generate_settings, params.config_patch),
     .help = "a JSON object whose members replace or add config.json keys\n"
             "before the tensors are made, e.g. '{\"q_lora_rank\": null}'"},
    {.name = "stacked-experts", .kind = CLI_FLAG, .offset = offsetof(generate_settings, params.stacked_experts),
     .help = "store experts as (experts, out, in) tensors (transformers v5)"},
    {.name = "fp8-block", .kind = CLI_FLAG, .offset = offsetof(generate_settings, params.fp8_block),
     .help = "store linears (not routers) as DeepSeek ships them: FP8 E4M3 in\n"
             "128x128 blocks with weight_scale_inv (quant_method fp8)"},
};

static const cli_command GENERATE = {
    .name = "generate",
    .about = "Writes a small synthetic model (config.json + model.safetensors, BF16) whose\n"
             "bytes depend only on the options. DIR must not exist.\n",
    .options = GENERATE_OPTIONS,
    .n_options = sizeof GENERATE_OPTIONS / sizeof GENERATE_OPTIONS[0],
};

int cmd_generate(int argc, char **argv, const cli_context *ctx)
{
    generate_settings s = {.params = {.family = STRATA_FAMILY_LLAMA}};
    int code = cli_parse(&GENERATE, argc, argv, &s, NULL);
    if (code >= 0) return code;
    s.params.n_layers = (int)s.n_layers;
    s.params.n_experts = (int)s.n_experts;
    s.params.n_mtp_layers = (int)s.n_mtp_layers;
    strata_status status = strata_synth_model(s.output, &s.params);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0) fprintf(stderr, "strata: wrote %s model to %s\n", strata_family_name(s.params.family), s.output);
    return EXIT_OK;
}

typedef struct demo_settings {
    const char *output;
    bool force;
} demo_settings;

static const cli_option DEMO_OPTIONS[] = {
    {.name = "output", .short_name = 'o', .value = "DIR", .kind = CLI_STRING, .offset = offsetof(demo_settings, output),
     .help = "output directory (default strata-demo)"},
    {.name = "force", .kind = CLI_FLAG, .offset = offsetof(demo_settings, force),
     .help = "replace models an earlier demo left in DIR"},
};

static const cli_command DEMO = {
    .name = "demo",
    .about = "Generates the default models, a dense Llama and a Qwen3-MoE (seed 0), into\n"
             "DIR/llama-dense and DIR/qwen3-moe, inspects both, then quantizes the dense model to\n"
             "FP8 layer by layer (DIR/llama-dense-fp8, calibrated on deterministic synthetic token\n"
             "ids, since a generated model has no tokenizer) and compares the perplexities.\n",
    .options = DEMO_OPTIONS,
    .n_options = sizeof DEMO_OPTIONS / sizeof DEMO_OPTIONS[0],
};

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
    demo_settings s = {.output = "strata-demo"};
    int code = cli_parse(&DEMO, argc, argv, &s, NULL);
    if (code >= 0) return code;
    const char *output = s.output;
    bool force = s.force;
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
