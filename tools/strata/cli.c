/*
 * cli.c — shared CLI helpers (see cli.h).
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

bool cli_parse_double(const char *text, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !(v >= lo && v <= hi)) return false;
    *out = v;
    return true;
}

void cli_print_progress(const strata_progress *p, void *user)
{
    (void)user;
    char eta[32] = "?";
    if (p->eta_seconds >= 0) {
        long s = (long)(p->eta_seconds + 0.5);
        if (s >= 3600) snprintf(eta, sizeof eta, "%ldh%02ldm", s / 3600, s / 60 % 60);
        else if (s >= 60) snprintf(eta, sizeof eta, "%ldm%02lds", s / 60, s % 60);
        else snprintf(eta, sizeof eta, "%lds", s);
    }
    const strata_layer_timing *t = p->layer_done;
    if (t) {
        fprintf(stderr,
                "strata: layer %d/%d done in %.1f s: read %.1f, forward %.1f (%.0f tok/s), decide %.1f, export %.1f, "
                "checkpoint %.1f | RSS %.1f GiB, peak %.1f GiB | ETA %s\n",
                p->layer + 1, p->n_layers, t->total_s, t->read_s, t->forward_s, t->tokens_per_second, t->decide_s,
                t->export_s, t->checkpoint_s, (double)p->rss_bytes / (1 << 30), (double)p->peak_rss_bytes / (1 << 30),
                eta);
        return;
    }
    fprintf(stderr, "strata: layer %d/%d | %.0f tok/s | act store %.1f GiB%s | RSS %.1f GiB, peak %.1f GiB | ETA %s\n",
            p->layer + 1, p->n_layers, p->tokens_per_second, (double)p->act_store_bytes / (1 << 30),
            p->act_store_spilled ? " (disk)" : "", (double)p->rss_bytes / (1 << 30),
            (double)p->peak_rss_bytes / (1 << 30), eta);
}
uint64_t cli_default_memory_limit(const cli_context *ctx)
{
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    unsigned long long kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %llu kB", &kib) == 1) break;
    if (f) fclose(f);
    uint64_t limit = (uint64_t)kib * 1024 / 5 * 4;
    if (limit && ctx->verbosity > 0)
        fprintf(stderr, "strata: memory limit %.1f GiB (80%% of the %.1f GiB available; --max-memory sets it)\n",
                (double)limit / (1u << 30), (double)kib / (1u << 20));
    return limit;
}

/* Text to stdout, or to output under a temporary name renamed into place, so an
 * existing file is either replaced whole or left as it was. */
int cli_write_text(const char *output, const char *text, size_t length)
{
    if (!output) {
        if (fwrite(text, 1, length, stdout) == length) return EXIT_OK;
        fprintf(stderr, "strata: error: cannot write to stdout\n");
        return EXIT_RUNTIME;
    }
    char temp[4096];
    snprintf(temp, sizeof temp, "%s.tmp-XXXXXX", output);
    int fd = mkstemp(temp);
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    bool ok = f && fwrite(text, 1, length, f) == length && fflush(f) == 0 && fsync(fd) == 0;
    if (f) ok &= fclose(f) == 0;
    else if (fd >= 0) close(fd);
    ok = ok && rename(temp, output) == 0;
    if (!ok) {
        fprintf(stderr, "strata: error: cannot write %s: %s\n", output, strerror(errno));
        if (fd >= 0) unlink(temp);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}
