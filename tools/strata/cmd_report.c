/*
 * cmd_report.c — `strata report OUT [-o FILE] [--eval FILE]`: the HTML report of a
 * quantized output (strata_report).
 */
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "cli_options.h"

typedef struct report_settings {
    const char *output, *eval;
} report_settings;

static const cli_option OPTIONS[] = {
    {.name = "output", .short_name = 'o', .value = "FILE", .kind = CLI_STRING,
     .offset = offsetof(report_settings, output), .help = "where to write the page (default quant_report.html here)"},
    {.name = "eval", .value = "FILE", .kind = CLI_STRING, .offset = offsetof(report_settings, eval),
     .help = "add the comparison with the original: the output of\n"
             "strata eval OUT --base ORIGINAL --json"},
};

static const cli_command COMMAND = {
    .name = "report",
    .operand = "OUT",
    .about = "Writes one self-contained HTML page about a quantized output directory, from its\n"
             "quant_summary.json: the settings, each layer's output error and each linear\n"
             "family's weight and output errors as plots, the calibration tokens of every\n"
             "routed expert as a heat map (experts no token reached in red), and the largest\n"
             "errors. Inline SVG, no scripts: it opens offline. Prints the page's path.\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

int cmd_report(int argc, char **argv, const cli_context *ctx)
{
    (void)ctx;
    report_settings s = {0};
    const char *dir = NULL;
    int code = cli_parse(&COMMAND, argc, argv, &s, &dir);
    if (code >= 0) return code;
    const char *output = s.output ? s.output : "quant_report.html";
    strata_status status = strata_report(dir, s.eval, output);
    if (status != STRATA_OK) return cli_fail(status);
    printf("%s\n", output);
    return EXIT_OK;
}
