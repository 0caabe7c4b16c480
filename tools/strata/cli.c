/*
 * cli.c — shared CLI helpers (see cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

int cli_fail(strata_status status)
{
    const char *message = strata_last_error();
    fprintf(stderr, "strata: error: %s\n", message[0] ? message : strata_status_str(status));
    return EXIT_RUNTIME;
}

int cli_usage_error(const char *command, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "strata %s: ", command);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see 'strata %s --help')\n", command);
    return EXIT_USAGE;
}

static void log_to_stderr(strata_log_level level, const char *message, void *user)
{
    (void)user;
    static const char *const PREFIX[] = {"error", "warning", "info", "debug"};
    fprintf(stderr, "strata: %s: %s\n", PREFIX[level], message);
}

void cli_install_logging(const cli_context *ctx)
{
    strata_log_level level = ctx->verbosity <= 0 ? STRATA_LOG_ERROR
                             : ctx->verbosity == 1 ? STRATA_LOG_INFO
                                                   : STRATA_LOG_DEBUG;
    strata_log_set(log_to_stderr, NULL, level);
}

bool cli_parse_int(const char *text, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi) return false;
    *out = v;
    return true;
}
