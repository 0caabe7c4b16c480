/*
 * progress.c — rate-limited progress reports (see progress.h).
 *
 * ETA: once a layer is done, every remaining layer is assumed to take the mean of those
 * this run finished, less the fraction of the current one done (its tokens through its
 * passes); before that, the time so far scaled by that fraction. A busy machine or a slow
 * pass inside a layer then moves the estimate little.
 */
#include "pipeline/progress.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

uint64_t process_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    long page = sysconf(_SC_PAGESIZE);
    return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

uint64_t process_peak_rss_bytes(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
    return (uint64_t)usage.ru_maxrss * 1024; /* KiB on Linux */
}

void progress_begin_layer(progress *p, int64_t layer_work)
{
    p->layer_start = seconds_now();
    p->layer_tokens = 0;
    p->layer_work = layer_work;
}

static void report(progress *p, int layer, const strata_layer_timing *timing)
{
    double now = seconds_now();
    p->last_report = now;
    double in_layer = now - p->layer_start;
    double fraction = p->layer_work > 0 ? (double)p->layer_tokens / (double)p->layer_work : 0;
    if (fraction > 1 || timing) fraction = 1;
    double elapsed = now - p->start, eta = -1;
    int after = p->n_layers - layer - 1; /* layers after this one */
    if (p->done_layers > 0) {
        double mean = p->done_seconds / p->done_layers;
        eta = mean * (double)after + mean * (1 - fraction);
    } else if (fraction > 0) {
        eta = in_layer / fraction * (1 - fraction) + in_layer / fraction * (double)after;
    }
    strata_progress r = {
        .layer = layer,
        .n_layers = p->n_layers,
        .tokens_per_second = in_layer > 0 ? (double)p->layer_tokens / in_layer : 0,
        .act_store_bytes = p->act_store_bytes,
        .act_store_spilled = p->spilled,
        .rss_bytes = process_rss_bytes(),
        .peak_rss_bytes = process_peak_rss_bytes(),
        .eta_seconds = eta,
        .elapsed_seconds = elapsed,
        .layer_done = timing,
    };
    p->fn(&r, p->user);
}

void progress_tokens(progress *p, int layer, int64_t n, bool force)
{
    p->layer_tokens += n;
    if (!p->fn || (!force && seconds_now() - p->last_report < PROGRESS_INTERVAL)) return;
    report(p, layer, NULL);
}

void progress_end_layer(progress *p, int layer, const strata_layer_timing *timing)
{
    p->done_layers++;
    p->done_seconds += timing->total_s;
    if (p->fn) report(p, layer, timing);
}
