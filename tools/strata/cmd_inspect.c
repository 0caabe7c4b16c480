/*
 * cmd_inspect.c — `strata inspect PATH [--json] [--stats]`.
 */
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "cli_options.h"

static const cli_option OPTIONS[] = {
    {.name = "json", .kind = CLI_FLAG, .offset = offsetof(strata_inspect_params, json),
     .help = "machine-readable JSON on stdout"},
    {.name = "stats", .kind = CLI_FLAG, .offset = offsetof(strata_inspect_params, stats),
     .help = "read every floating-point tensor: absmax and NaN/Inf counts"},
};

static const cli_command COMMAND = {
    .name = "inspect",
    .operand = "PATH",
    .about = "Describes a Hugging Face checkpoint directory (config.json + safetensors), a\n"
             "quantized output directory, or a lone .safetensors file: architecture, layer\n"
             "count, per-layer tensor tables (name, dtype, shape, bytes), totals, and the\n"
             "quantization found (hf_quant_config.json or quantization_config). Every header\n"
             "is validated and every tensor the config implies is checked.\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

int cmd_inspect(int argc, char **argv, const cli_context *ctx)
{
    (void)ctx;
    strata_inspect_params params = {0};
    const char *path = NULL;
    int code = cli_parse(&COMMAND, argc, argv, &params, &path);
    if (code >= 0) return code;
    char *report = NULL;
    strata_status status = strata_inspect(path, &params, &report);
    if (status != STRATA_OK) return cli_fail(status);
    fputs(report, stdout);
    strata_free(report);
    return EXIT_OK;
}
