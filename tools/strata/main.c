/*
 * main.c — `strata <command> [options]`: parses global options and hands the rest of the
 * command line to the subcommand. Every subcommand is a thin client of include/strata.h.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv, const cli_context *ctx);
    const char *summary;
} command;

static const command COMMANDS[] = {
    {"quantize", cmd_quantize, "calibrate layer by layer and write a quantized checkpoint"},
    {"resume", cmd_resume, "finish a quantize run from its --checkpoint-dir"},
    {"convert", cmd_convert, "quantize weights without data, streaming shard by shard"},
    {"inspect", cmd_inspect, "architecture, tensors, dtypes, sizes and quantization of a checkpoint"},
    {"generate", cmd_generate, "write a small deterministic synthetic model (dense or MoE)"},
    {"eval", cmd_eval, "perplexity of a model, or its KL divergence from the original"},
    {"report", cmd_report, "an HTML page of a quantized output's errors and expert tokens"},
    {"tokenize", cmd_tokenize, "encode or decode text, or draw calibration windows from a dataset"},
    {"demo", cmd_demo, "generate the default dense and MoE models and inspect them"},
};

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: strata [--quiet | --verbose] <command> [options]\n"
            "\n"
            "strata %s: post-training quantization of large language models.\n"
            "\n"
            "commands:\n",
            strata_version());
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        fprintf(out, "  %-10s %s\n", COMMANDS[i].name, COMMANDS[i].summary);
    fprintf(out,
            "\n"
            "options:\n"
            "  -q, --quiet     only errors on stderr\n"
            "  -v, --verbose   debug messages on stderr\n"
            "  -V, --version   print the version and exit\n"
            "  -h, --help      print this help and exit\n"
            "\n"
            "'strata <command> --help' describes a command.\n");
}

int main(int argc, char **argv)
{
    cli_context ctx = {.verbosity = 1};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(stdout);
            return EXIT_OK;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("strata %s\n", strata_version());
            const char *mpi = strata_mpi_library();
            printf("mpi: %s\n", mpi ? mpi : "not built in (one process; install libopenmpi-dev and rebuild for mpirun)");
            if (ctx.verbosity > 1) printf("cpu: %s\nkernels: %s\n", strata_cpu_features(), strata_cpu_kernel_set());
            return EXIT_OK;
        }
        if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) ctx.verbosity = 0;
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) ctx.verbosity = 2;
        else {
            fprintf(stderr, "strata: unknown option '%s' (see 'strata --help')\n", a);
            return EXIT_USAGE;
        }
    }
    if (strata_mpi_rank() > 0) ctx.verbosity = 0; /* under mpirun rank 0 speaks for the run; errors still show */
    if (i >= argc) {
        fprintf(stderr, "strata: missing command (see 'strata --help')\n");
        return EXIT_USAGE;
    }
    cli_install_logging(&ctx);
    for (size_t c = 0; c < sizeof COMMANDS / sizeof COMMANDS[0]; c++)
        if (strcmp(argv[i], COMMANDS[c].name) == 0) return COMMANDS[c].run(argc - i, argv + i, &ctx);
    fprintf(stderr, "strata: unknown command '%s' (see 'strata --help')\n", argv[i]);
    return EXIT_USAGE;
}
