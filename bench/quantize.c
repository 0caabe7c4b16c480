/*
 * bench/quantize.c — memory of strata quantize against model depth: two synthetic Llama
 * models of equal width with 4 and 32 layers are quantized (FP8, 128 x 512 calibration
 * tokens) each in a child process, whose peak RSS (getrusage) is reported beside the
 * machine's memory and the model size. Layerwise calibration holds one layer plus the
 * activation store, so the two peaks should match within 15%. A third run of the 32-layer
 * model under a --max-memory limit spills the activation store to disk; its output must be
 * byte-identical to the unlimited run's.
 *
 *   bench_quantize [--hidden N]      (default 512)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"
#include "bench_memory.h"
#include "strata.h"

enum { SAMPLES = 128, SEQ = 512 };

static uint64_t dir_bytes(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "du -sb '%s'", dir);
    FILE *p = popen(cmd, "r");
    unsigned long long n = 0;
    if (p) {
        if (fscanf(p, "%llu", &n) != 1) n = 0;
        pclose(p);
    }
    return n;
}

typedef struct quantize_job {
    const char *model, *out;
    uint64_t max_memory;
    const int32_t *tokens;
} quantize_job;

static bool run_quantize(void *ctx, void *reply)
{
    const quantize_job *job = ctx;
    strata_quantize_params p = {.model_dir = job->model, .output_dir = job->out, .scheme = STRATA_SCHEME_FP8,
                                .tokens = job->tokens, .n_samples = SAMPLES, .seq_len = SEQ,
                                .max_memory = job->max_memory};
    strata_quantize_result r = {0};
    strata_status status = strata_quantize_model(&p, &r);
    if (status != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    *(char *)reply = r.act_store_spilled ? 's' : 'r';
    return status == STRATA_OK;
}

/* Quantizes in a child; returns its peak RSS in bytes (0 on failure) and the wall time. */
static uint64_t quantize_child(const char *model, const char *out, uint64_t max_memory, const int32_t *tokens,
                               double *seconds, bool *spilled)
{
    quantize_job job = {model, out, max_memory, tokens};
    char flag = 0;
    uint64_t peak = run_child(run_quantize, &job, &flag, 1, seconds);
    *spilled = flag == 's';
    return peak;
}

int main(int argc, char **argv)
{
    int64_t hidden = 512;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--hidden") == 0 && i + 1 < argc) hidden = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_quantize [--hidden N]\n");
            return 2;
        }
    }
    char root[] = "/tmp/strata-bench-quantize-XXXXXX";
    if (!mkdtemp(root)) return 1;
    strata_set_num_threads(0);
    int32_t *tokens = malloc(SAMPLES * SEQ * sizeof *tokens);
    uint64_t x = 1;
    for (int i = 0; i < SAMPLES * SEQ; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((x >> 33) % 512);
    }
    printf("strata %s: quantize --scheme fp8, %d x %d calibration tokens, hidden %lld; machine memory %.1f GiB\n\n",
           strata_version(), SAMPLES, SEQ, (long long)hidden, (double)mem_total_bytes() / (1 << 30));
    printf("%-8s %7s %12s %12s %14s %9s %s\n", "layers", "max MiB", "model MiB", "output MiB", "peak RSS MiB", "seconds",
           "activation store");
    const int LAYERS[2] = {4, 32};
    uint64_t peak[3] = {0};
    char model[2][600], out[3][600];
    for (int m = 0; m < 3; m++) {
        int layers = LAYERS[m < 2 ? m : 1];
        if (m < 2) {
            snprintf(model[m], sizeof model[m], "%s/model-%d", root, layers);
            strata_synth_params sp = {.family = STRATA_FAMILY_LLAMA, .seed = 1, .n_layers = layers, .hidden_size = hidden};
            if (strata_synth_model(model[m], &sp) != STRATA_OK) {
                fprintf(stderr, "bench: %s\n", strata_last_error());
                return 1;
            }
        }
        snprintf(out[m], sizeof out[m], "%s/out-%d", root, m);
        /* The third run: limits below the unlimited run's peak, 32 MiB lower each time, until
         * the activation store spills (or the limit no longer holds one layer). */
        uint64_t limit = 0;
        double seconds = 0;
        bool spilled = false;
        if (m < 2) peak[m] = quantize_child(model[m], out[m], 0, tokens, &seconds, &spilled);
        for (limit = peak[1]; m == 2 && limit > (64u << 20) && !spilled; limit -= 32u << 20)
            if (!(peak[m] = quantize_child(model[1], out[m], limit, tokens, &seconds, &spilled))) break;
        if (m == 2) limit += 32u << 20;
        if (m == 2 && !spilled) {
            printf("%-8d no limit both holds one layer and spills the store (see the messages above)\n", layers);
            peak[m] = 0;
            break;
        }
        char limit_text[32] = "-";
        if (m == 2) snprintf(limit_text, sizeof limit_text, "%.0f", (double)limit / (1 << 20));
        printf("%-8d %7s %12.1f %12.1f %14.1f %9.2f %s\n", layers, limit_text, (double)dir_bytes(model[m < 2 ? m : 1]) / (1 << 20),
               (double)dir_bytes(out[m]) / (1 << 20), (double)peak[m] / (1 << 20), seconds,
               spilled ? "spilled to disk" : "in RAM");
    }
    if (peak[0] && peak[1])
        printf("\npeak RSS 32 layers / 4 layers: %.3f (layerwise: should be within 1.15)\n",
               (double)peak[1] / (double)peak[0]);
    if (peak[2]) {
        char cmd[2000];
        snprintf(cmd, sizeof cmd, "diff -rq '%s' '%s' >/dev/null", out[1], out[2]);
        printf("spilled run output identical to the in-RAM run: %s\n", system(cmd) == 0 ? "yes" : "NO");
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "bench: could not remove %s\n", root);
    free(tokens);
    return 0;
}
