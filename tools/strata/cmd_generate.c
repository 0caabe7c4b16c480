/*
 * cmd_generate.c — `strata generate`: one synthetic model whose bytes depend only on the
 * options (strata_synth_model).
 */
#include <stddef.h>
#include <stdio.h>

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
