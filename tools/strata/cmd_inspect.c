/*
 * cmd_inspect.c — `strata inspect PATH [--json] [--stats]`.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void help(void)
{
    printf("usage: strata inspect PATH [--json] [--stats]\n"
           "\n"
           "Describes a Hugging Face checkpoint directory (config.json + safetensors), a\n"
           "quantized output directory, or a lone .safetensors file: architecture, layer\n"
           "count, per-layer tensor tables (name, dtype, shape, bytes), totals, and the\n"
           "quantization found (hf_quant_config.json or quantization_config). Every header\n"
           "is validated and every tensor the config implies is checked.\n"
           "\n"
           "  --json    machine-readable JSON on stdout\n"
           "  --stats   read every floating-point tensor: absmax and NaN/Inf counts\n"
           "  -h, --help\n");
}

int cmd_inspect(int argc, char **argv, const cli_context *ctx)
{
    (void)ctx;
    static const struct option OPTIONS[] = {
        {"json", no_argument, NULL, 'j'},
        {"stats", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    strata_inspect_params params = {0};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'j': params.json = true; break;
        case 's': params.stats = true; break;
        case 'h': help(); return EXIT_OK;
        default: return cli_usage_error("inspect", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("inspect", "missing PATH");
    if (optind + 1 < argc) return cli_usage_error("inspect", "unexpected argument '%s'", argv[optind + 1]);
    char *report = NULL;
    strata_status status = strata_inspect(argv[optind], &params, &report);
    if (status != STRATA_OK) return cli_fail(status);
    fputs(report, stdout);
    strata_free(report);
    return EXIT_OK;
}
