/*
 * bench/deepseek_layer.c — time and memory per layer of a DeepSeek-V3-shaped model.
 *
 * A synthetic model with DeepSeek-V3's shapes (hidden 7168, 128 heads of 128 + 64 rope
 * dims, values 128, MLA ranks 1536 / 512, routed experts of 2048 in 8 groups with top-8 of
 * the 4 best groups, one shared expert, YaRN, vocabulary 129280) with two MoE layers of E
 * routed experts (default 32; V3 has 256, a 21 GiB layer in bf16, more than this machine
 * holds with its working copies: give --max-memory and the routed experts are materialized
 * in groups). Its linears are stored as DeepSeek ships them, FP8 in 128x128 blocks
 * (--bf16: bf16). It is generated once into build/ (kept; --clean deletes it after) and
 * quantized to NVFP4 with N x 256 calibration tokens (default 32) in a child process per
 * thread count, with the model file's page cache dropped first so every run reads it from
 * disk. The table gives per layer where the time went (quant_timings.json's split: read,
 * forward, decide, export) and the run's peak RSS (getrusage), beside the machine's memory,
 * the layer's size and the disk's read rate measured on the same file.
 *
 *   bench_deepseek_layer [--experts E] [--max-memory MIB] [--threads 1,2] [--samples N]
 *                        [--bf16] [--dir DIR] [--clean]
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
#include "strata.h"

enum { SEQ = 256, LAYERS = BENCH_LAYERS, MAX_SAMPLES = 512, MAX_RUNS = 4 };

/* V3's shapes; the routed experts' count is the bench's parameter. */
static const char V3_SHAPE[] =
    "{\"num_attention_heads\": 128, \"num_key_value_heads\": 128, \"q_lora_rank\": 1536, \"kv_lora_rank\": 512,"
    " \"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64, \"v_head_dim\": 128, \"intermediate_size\": 18432,"
    " \"moe_intermediate_size\": 2048, \"n_group\": 8, \"topk_group\": 4, \"num_experts_per_tok\": 8,"
    " \"routed_scaling_factor\": 2.5, \"n_shared_experts\": 1, \"first_k_dense_replace\": 0,"
    " \"vocab_size\": 129280,"
    " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 40, \"original_max_position_embeddings\": 4096,"
    " \"beta_fast\": 32, \"beta_slow\": 1, \"mscale\": 1.0, \"mscale_all_dim\": 1.0},"
    " \"max_position_embeddings\": 163840}";

/* What the child sends back: each layer's times and the grouping used. */
typedef struct quantize_reply {
    layer_times times;
    double experts_per_group;
} quantize_reply;

typedef struct quantize_job {
    const char *model, *out;
    const int32_t *tokens;
    int64_t samples;
    uint64_t max_memory;
    int threads;
} quantize_job;

static bool run_quantize(void *ctx, void *out)
{
    const quantize_job *job = ctx;
    quantize_reply *reply = out;
    strata_set_num_threads(job->threads);
    strata_quantize_params p = {.model_dir = job->model, .output_dir = job->out, .scheme = STRATA_SCHEME_NVFP4,
                                .tokens = job->tokens, .n_samples = job->samples, .seq_len = SEQ,
                                .max_memory = job->max_memory};
    strata_quantize_result r = {0};
    bool ok = quantize_recording_times(&p, &reply->times, &r);
    reply->experts_per_group = r.experts_per_group;
    return ok;
}

int main(int argc, char **argv)
{
    int experts = 32, threads[MAX_RUNS] = {0}, n_runs = 1;
    int64_t samples = 32;
    uint64_t max_memory = 0;
    const char *dir = "build/bench-deepseek";
    bool clean = false, bf16 = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--experts") == 0 && i + 1 < argc) experts = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *list = argv[++i], *end = NULL;
            for (n_runs = 0; n_runs < MAX_RUNS && *list; list = *end ? end + 1 : end) {
                threads[n_runs++] = (int)strtol(list, &end, 10);
                if (end == list) break;
            }
        } else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) samples = atoll(argv[++i]);
        else if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc) max_memory = (uint64_t)atoll(argv[++i]) << 20;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--bf16") == 0) bf16 = true;
        else if (strcmp(argv[i], "--clean") == 0) clean = true;
        else {
            fprintf(stderr, "usage: bench_deepseek_layer [--experts E] [--max-memory MIB] [--threads 1,2] "
                            "[--samples N] [--bf16] [--dir DIR] [--clean]\n");
            return 2;
        }
    }
    if (experts < 16 || experts % 8 != 0 || experts > 256) {
        fprintf(stderr, "bench: --experts must be a multiple of 8 in [16, 256] (8 groups of at least 2)\n");
        return 2;
    }
    if (samples < 1 || samples > MAX_SAMPLES || n_runs < 1) {
        fprintf(stderr, "bench: --samples must be in [1, %d] and --threads a list of counts\n", MAX_SAMPLES);
        return 2;
    }
    char model[4096], out[4200], file[4300], cmd[8800];
    snprintf(model, sizeof model, "%s/v3-shape-%d-experts-%s", dir, experts, bf16 ? "bf16" : "fp8");
    snprintf(out, sizeof out, "%s-nvfp4", model);
    snprintf(file, sizeof file, "%s/model.safetensors", model);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, out);
    if (system(cmd) != 0) return 1;
    if (access(file, F_OK) != 0) {
        fprintf(stderr, "bench: generating %s (once; kept for later runs, --clean removes it)\n", model);
        double t = now();
        strata_synth_params sp = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 3, .n_layers = LAYERS,
                                  .hidden_size = 7168, .n_experts = experts, .config_patch = V3_SHAPE,
                                  .fp8_block = !bf16};
        if (strata_synth_model(model, &sp) != STRATA_OK) {
            fprintf(stderr, "bench: %s\n", strata_last_error());
            return 1;
        }
        fprintf(stderr, "bench: generated in %.0f s\n", now() - t);
    }
    static int32_t tokens[MAX_SAMPLES * SEQ];
    for (int64_t i = 0; i < samples * SEQ; i++) tokens[i] = (int32_t)((i * 7919 + 13) % 129280);
    double gib = 1024.0 * 1024.0 * 1024.0, element = bf16 ? 2.0 : 1.0;
    double expert_bytes = 3.0 * 7168 * 2048 * element, moe_layer = experts * expert_bytes;
    double disk = disk_read_rate(file);
    printf("DeepSeek-V3-shaped MoE layers (hidden 7168, MLA 1536/512, %d routed experts of 2048, %s source), "
           "NVFP4, %lld x %d tokens\n", experts, bf16 ? "bf16" : "FP8 block-scaled", (long long)samples, SEQ);
    printf("machine memory %.1f GiB; a MoE layer's routed experts %.2f GiB as stored (256 would be %.1f GiB); "
           "disk read %.0f MB/s (so %.0f s per layer read)\n",
           (double)mem_total_bytes() / gib, moe_layer / gib, 256 * expert_bytes / gib, disk / 1e6,
           disk > 0 ? moe_layer / disk : 0);
    if (max_memory) printf("--max-memory %.2f GiB; the activation store spills beyond it\n", (double)max_memory / gib);
    printf("%7s %5s %8s %8s %8s %8s %8s %8s %10s %8s %10s\n", "threads", "layer", "read", "forward", "decide",
           "export", "ckpt", "total", "tok/s", "groups", "peak RSS");
    for (int run = 0; run < n_runs; run++) {
        drop_cache(file); /* each run reads the model from disk */
        quantize_job job = {model, out, tokens, samples, max_memory, threads[run]};
        quantize_reply reply;
        double seconds = 0;
        uint64_t peak = run_child(run_quantize, &job, &reply, sizeof reply, &seconds);
        if (!peak) return 1;
        for (int l = 0; l < LAYERS; l++) {
            const strata_layer_timing *t = &reply.times.layers[l];
            printf("%7d %5d %8.1f %8.1f %8.1f %8.1f %8.1f %8.1f %10.0f %8.0f %8.2f G\n", threads[run], l, t->read_s,
                   t->forward_s, t->decide_s, t->export_s, t->checkpoint_s, t->total_s, t->tokens_per_second,
                   reply.experts_per_group, (double)peak / gib);
        }
        printf("%7d total %.1f s (with embedding, lm_head copy, files)\n", threads[run], seconds);
        fflush(stdout);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        if (system(cmd) != 0) return 1;
    }
    if (clean) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", model);
        if (system(cmd) != 0) return 1;
    }
    return 0;
}
