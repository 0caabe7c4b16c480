/*
 * progress.c — rate-limited progress reports (see progress.h).
 *
 * ETA: the layers this run has finished took (now - start) together; the remaining ones
 * are assumed to take as long each, minus the fraction of the current layer done.
 */
#include "pipeline/progress.h"

#include <stdio.h>
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

void progress_begin_layer(progress *p, int64_t layer_work)
{
    p->layer_start = seconds_now();
    p->layer_tokens = 0;
    p->layer_work = layer_work;
}

void progress_tokens(progress *p, int layer, int64_t n, bool force)
{
    p->layer_tokens += n;
    double now = seconds_now();
    if (!p->fn || (!force && now - p->last_report < PROGRESS_INTERVAL)) return;
    p->last_report = now;
    double in_layer = now - p->layer_start;
    double fraction = p->layer_work > 0 ? (double)p->layer_tokens / (double)p->layer_work : 0;
    if (fraction > 1) fraction = 1;
    double done = (double)(layer - p->first_layer) + fraction;
    double elapsed = now - p->start;
    strata_progress report = {
        .layer = layer,
        .n_layers = p->n_layers,
        .tokens_per_second = in_layer > 0 ? (double)p->layer_tokens / in_layer : 0,
        .act_store_bytes = p->act_store_bytes,
        .act_store_spilled = p->spilled,
        .rss_bytes = process_rss_bytes(),
        .eta_seconds = done > 0 ? elapsed / done * ((double)(p->n_layers - p->first_layer) - done) : -1,
        .elapsed_seconds = elapsed,
    };
    p->fn(&report, p->user);
}
