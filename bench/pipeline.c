/*
 * bench/pipeline.c — the whole strata quantize on real layer sizes, per layer and per stage,
 * beside the limits of this machine measured in the same run.
 *
 * Synthetic models of two decoder layers with Llama-3-8B's shapes (hidden 4096, FFN 14336,
 * 32 heads of 128, 8 KV heads) and Llama-3-70B's (8192, 28672, 64 heads, 8 KV heads), bf16,
 * vocabulary 32000 (the embedding and lm_head are copied, not calibrated, so their size does
 * not enter a layer's time), are generated into build/ and deleted after (--keep keeps
 * them). Each is quantized with N x 256 calibration tokens (default 8) to FP8 (also with
 * --error-stats weights: no output errors, no quantized pass), NVFP4 and INT4 with GPTQ,
 * in a child process per run: first with the model's pages dropped from
 * the page cache (cold), then again with them cached (warm).
 *
 * Per layer the table splits quant_timings.json's stages: read (materializing the weights
 * for each pass, cold or warm), the weight-amax pass, the calibration / Hessian / quantized
 * passes, decide (scales, clip search, GPTQ) less the error statistics, the errors, export
 * and checkpoint. Beside them the limits measured here: the disk's read of the layer, and
 * the bf16 products of the layer's passes at this machine's oneDNN peak for each linear
 * shape (1024-row products, as the pipeline runs them). "x limit" is the layer's time less
 * GPTQ's own decide work over max(read limit, GEMM limit); peak RSS (getrusage) is given
 * beside the layer's size in bf16.
 *
 *   bench_pipeline [--shapes 8b,70b] [--schemes fp8,fp8-weights,nvfp4,int4-gptq] [--samples N]
 *                  [--threads N] [--dir DIR] [--keep]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"
#include "bench_disk.h"
#include "bench_layer_times.h"
#include "bench_memory.h"
#include "bench_peak.h"
#include "strata.h"

enum { SEQ = 256, LAYERS = BENCH_LAYERS, MAX_SAMPLES = 128, PEAK_ROWS = 1024 };

typedef struct shape {
    const char *name;
    int64_t hidden, ffn, heads, kv_heads, head_dim;
} shape;

static const shape SHAPES[] = {
    {"8b", 4096, 14336, 32, 8, 128},
    {"70b", 8192, 28672, 64, 8, 128},
};

typedef struct scheme_run {
    const char *name;
    strata_scheme scheme;
    const char *algo;
    int passes; /* bf16 passes over the layer: calibration and quantized (GPTQ's Hessians come
                 * from the calibration pass for weight-only schemes) */
    strata_error_stats stats;
} scheme_run;

static const scheme_run SCHEMES[] = {
    {"fp8", STRATA_SCHEME_FP8, "max", 2, STRATA_ERROR_STATS_FULL},
    {"fp8-weights", STRATA_SCHEME_FP8, "max", 1, STRATA_ERROR_STATS_WEIGHTS}, /* --error-stats weights */
    {"nvfp4", STRATA_SCHEME_NVFP4, "max", 2, STRATA_ERROR_STATS_FULL},
    {"int4-gptq", STRATA_SCHEME_INT4, "gptq", 2, STRATA_ERROR_STATS_FULL},
};

typedef struct quantize_job {
    const char *model, *out;
    const int32_t *tokens;
    int64_t samples;
    const scheme_run *scheme;
    int threads;
} quantize_job;

static bool run_quantize(void *ctx, void *out)
{
    const quantize_job *job = ctx;
    if (job->threads > 0) strata_set_num_threads(job->threads);
    strata_quantize_params p = {.model_dir = job->model, .output_dir = job->out, .scheme = job->scheme->scheme,
                                .algo = job->scheme->algo, .tokens = job->tokens, .n_samples = job->samples,
                                .seq_len = SEQ, .error_stats = job->scheme->stats};
    strata_quantize_result r = {0};
    return quantize_recording_times(&p, out, &r);
}

/* Seconds of the layer's bf16 products for `tokens` rows, each linear at its shape's
 * measured peak. */
typedef struct gemm_job {
    const shape *s;
    int64_t tokens;
    int threads;
} gemm_job;

static double layer_gemm_seconds(const shape *s, int64_t tokens);

static bool run_gemm(void *ctx, void *reply)
{
    const gemm_job *job = ctx;
    if (job->threads > 0) strata_set_num_threads(job->threads);
    *(double *)reply = layer_gemm_seconds(job->s, job->tokens);
    return true;
}

static double layer_gemm_seconds(const shape *s, int64_t tokens)
{
    int64_t q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;
    struct { int64_t out, in, count; } linears[] = {
        {q, s->hidden, 1}, {kv, s->hidden, 2}, {s->hidden, q, 1}, {s->ffn, s->hidden, 2}, {s->hidden, s->ffn, 1},
    };
    double seconds = 0;
    for (size_t i = 0; i < sizeof linears / sizeof linears[0]; i++) {
        double gflops = matmul_peak(GEMM_BF16, PEAK_ROWS, linears[i].out, linears[i].in);
        double flop = 2.0 * (double)tokens * (double)linears[i].out * (double)linears[i].in * (double)linears[i].count;
        if (gflops > 0) seconds += flop / (gflops * 1e9);
    }
    return seconds;
}

static double layer_bytes_bf16(const shape *s)
{
    int64_t q = s->heads * s->head_dim, kv = s->kv_heads * s->head_dim;
    return 2.0 * (double)(2 * q * s->hidden + 2 * kv * s->hidden + 3 * s->ffn * s->hidden);
}

static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) return true;
    return false;
}

static int run_shape(const shape *s, const char *schemes, int64_t samples, int threads, const char *dir, bool keep,
                     const int32_t *tokens)
{
    char model[4096], out[4200], file[4300], cmd[8800], patch[256];
    snprintf(model, sizeof model, "%s/llama-%s-shape", dir, s->name);
    snprintf(out, sizeof out, "%s-out", model);
    snprintf(file, sizeof file, "%s/model.safetensors", model);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, out);
    if (system(cmd) != 0) return 1;
    if (access(file, F_OK) != 0) {
        snprintf(patch, sizeof patch, "{\"vocab_size\": 32000, \"num_attention_heads\": %lld}", (long long)s->heads);
        strata_synth_params sp = {.family = STRATA_FAMILY_LLAMA, .seed = 5, .n_layers = LAYERS,
                                  .hidden_size = s->hidden, .intermediate_size = s->ffn, .head_dim = s->head_dim,
                                  .n_kv_heads = (int)s->kv_heads, .config_patch = patch};
        double t = now();
        if (strata_synth_model(model, &sp) != STRATA_OK) {
            fprintf(stderr, "bench: %s\n", strata_last_error());
            return 1;
        }
        fprintf(stderr, "bench: generated %s in %.0f s\n", model, now() - t);
    }
    double gib = 1024.0 * 1024.0 * 1024.0, layer = layer_bytes_bf16(s), disk = disk_read_rate(file);
    int64_t tokens_n = samples * SEQ;
    /* In a child, like every run: a process whose thread pool has run cannot fork safely. */
    gemm_job gj = {s, tokens_n, threads};
    double gemm_pass = 0, unused;
    if (!run_child(run_gemm, &gj, &gemm_pass, sizeof gemm_pass, &unused)) return 1;
    printf("\nLlama-3-%s-shaped layers (hidden %lld, FFN %lld, %lld/%lld heads): %.2f GiB per layer in bf16; "
           "%lld x %d tokens\n", s->name, (long long)s->hidden, (long long)s->ffn, (long long)s->heads,
           (long long)s->kv_heads, layer / gib, (long long)samples, SEQ);
    printf("limits: disk read %.0f MB/s = %.2f s per layer; bf16 products of one pass %.2f s at this machine's "
           "oneDNN peak; memory %.1f GiB\n", disk / 1e6, disk > 0 ? layer / disk : 0, gemm_pass,
           (double)mem_total_bytes() / gib);
    printf("%-11s %-4s %3s %6s %6s %6s %6s %6s %6s %6s %6s %6s %7s %7s %6s %8s\n", "scheme", "read", "lyr", "read",
           "amax", "calib", "hess", "decide", "errors", "quant", "export", "ckpt", "total", "limit", "x lim",
           "peak RSS");
    for (size_t k = 0; k < sizeof SCHEMES / sizeof SCHEMES[0]; k++) {
        const scheme_run *sr = &SCHEMES[k];
        if (!in_list(schemes, sr->name)) continue;
        for (int warm = 0; warm < 2; warm++) {
            if (!warm) drop_cache(file);
            quantize_job job = {model, out, tokens, samples, sr, threads};
            layer_times reply;
            double seconds = 0;
            uint64_t peak = run_child(run_quantize, &job, &reply, sizeof reply, &seconds);
            if (!peak) return 1;
            for (int l = 0; l < LAYERS; l++) {
                const strata_layer_timing *t = &reply.layers[l];
                bool gptq = strcmp(sr->algo, "gptq") == 0;
                double decide = t->decide_s - t->errors_s, own = gptq ? decide : 0;
                double read_limit = warm || disk <= 0 ? 0 : layer / disk;
                double gemm_limit = gemm_pass * sr->passes;
                double limit = read_limit > gemm_limit ? read_limit : gemm_limit;
                printf("%-11s %-4s %3d %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %6.1f %7.1f %7.1f %6.2f %6.2f G\n",
                       sr->name, warm ? "warm" : "cold", l, t->read_s - t->amax_s, t->amax_s, t->calibrate_s,
                       t->hessian_s, decide, t->errors_s, t->quantized_s, t->export_s, t->checkpoint_s, t->total_s,
                       limit, limit > 0 ? (t->total_s - own) / limit : 0, (double)peak / gib);
            }
            fflush(stdout);
            snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
            if (system(cmd) != 0) return 1;
        }
    }
    if (!keep) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", model);
        if (system(cmd) != 0) return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *shapes = "8b,70b", *schemes = "fp8,fp8-weights,nvfp4,int4-gptq", *dir = "build/bench-pipeline";
    int64_t samples = 8;
    int threads = 0;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--shapes") == 0 && i + 1 < argc) shapes = argv[++i];
        else if (strcmp(argv[i], "--schemes") == 0 && i + 1 < argc) schemes = argv[++i];
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) samples = atoll(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--keep") == 0) keep = true;
        else {
            fprintf(stderr, "usage: bench_pipeline [--shapes 8b,70b] [--schemes fp8,fp8-weights,nvfp4,int4-gptq] [--samples N] "
                            "[--threads N] [--dir DIR] [--keep]\n");
            return 2;
        }
    }
    if (samples < 1 || samples > MAX_SAMPLES) {
        fprintf(stderr, "bench: --samples must be in [1, %d]\n", MAX_SAMPLES);
        return 2;
    }
    static int32_t tokens[MAX_SAMPLES * SEQ];
    for (int64_t i = 0; i < samples * SEQ; i++) tokens[i] = (int32_t)((i * 7919 + 13) % 32000);
    printf("strata quantize per layer (seconds): read = materializing the weights for the passes (cold: "
           "page cache dropped), amax = the weight-amax pass, calib / hess / quant = the passes, decide = scales, "
           "clip search, GPTQ; errors = weight and output error statistics\n");
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        if (in_list(shapes, SHAPES[s].name) && run_shape(&SHAPES[s], schemes, samples, threads, dir, keep, tokens))
            return 1;
    return 0;
}
