/*
 * bench/deepseek_layer.c — time and memory per layer of a DeepSeek-V3-shaped model.
 *
 * A synthetic model with DeepSeek-V3's layer shapes (hidden 7168, 128 heads of 128 + 64
 * rope dims, values 128, MLA ranks 1536 / 512, dense MLP 18432, routed experts of 2048 in
 * 8 groups with top-8 of the 4 best groups, one shared expert, YaRN) but a small
 * vocabulary, two layers (the dense first one and one MoE layer) and E routed experts
 * (default 32; V3 has 256, a 21 GiB layer in bf16, more than this machine holds with its
 * working copies: give --max-memory and the routed experts are materialized in groups).
 * It is generated once into build/ (kept; delete it with --clean) and quantized to NVFP4
 * with 8 x 256 calibration tokens in a child process: the table gives its peak RSS
 * (getrusage) beside the machine's memory and the layer's bf16 weights, the experts per
 * group used, and the seconds each layer took.
 *
 *   bench_deepseek_layer [--experts E] [--max-memory MIB] [--threads N] [--dir DIR] [--clean]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"
#include "bench_memory.h"
#include "strata.h"

enum { SAMPLES = 8, SEQ = 256, LAYERS = 2 };

/* V3's shapes; the routed experts' count is the bench's parameter. */
static const char V3_SHAPE[] =
    "{\"num_attention_heads\": 128, \"num_key_value_heads\": 128, \"q_lora_rank\": 1536, \"kv_lora_rank\": 512,"
    " \"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64, \"v_head_dim\": 128, \"intermediate_size\": 18432,"
    " \"moe_intermediate_size\": 2048, \"n_group\": 8, \"topk_group\": 4, \"num_experts_per_tok\": 8,"
    " \"routed_scaling_factor\": 2.5, \"n_shared_experts\": 1, \"first_k_dense_replace\": 1,"
    " \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 40, \"original_max_position_embeddings\": 4096,"
    " \"beta_fast\": 32, \"beta_slow\": 1, \"mscale\": 1.0, \"mscale_all_dim\": 1.0},"
    " \"max_position_embeddings\": 163840}";

typedef struct layer_clock {
    double start, seconds[LAYERS];
    int last;
} layer_clock;

static void on_progress(const strata_progress *p, void *user)
{
    layer_clock *c = user;
    double t = now();
    if (p->layer != c->last && c->last >= 0 && c->last < LAYERS) c->seconds[c->last] = t - c->start;
    if (p->layer != c->last) {
        c->start = t;
        c->last = p->layer;
    }
}

typedef struct quantize_job {
    const char *model, *out;
    const int32_t *tokens;
    uint64_t max_memory;
} quantize_job;

/* The reply: seconds per layer, then the experts per group used. */
static bool run_quantize(void *ctx, void *reply)
{
    const quantize_job *job = ctx;
    layer_clock clock = {.last = -1};
    strata_quantize_params p = {.model_dir = job->model, .output_dir = job->out, .scheme = STRATA_SCHEME_NVFP4,
                                .tokens = job->tokens, .n_samples = SAMPLES, .seq_len = SEQ,
                                .max_memory = job->max_memory, .progress = on_progress, .progress_user = &clock};
    strata_quantize_result r = {0};
    strata_status status = strata_quantize_model(&p, &r);
    if (status != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    if (clock.last >= 0 && clock.last < LAYERS) clock.seconds[clock.last] = now() - clock.start;
    double *report = reply;
    memcpy(report, clock.seconds, sizeof clock.seconds);
    report[LAYERS] = r.experts_per_group;
    return status == STRATA_OK;
}

/* Quantizes in a child; returns its peak RSS (0 on failure), the wall time and per-layer times. */
static uint64_t quantize_child(const char *model, const char *out, const int32_t *tokens, uint64_t max_memory,
                               double *seconds, double layer_seconds[LAYERS], int *group)
{
    quantize_job job = {model, out, tokens, max_memory};
    double report[LAYERS + 1];
    uint64_t peak = run_child(run_quantize, &job, report, sizeof report, seconds);
    memcpy(layer_seconds, report, sizeof(double) * LAYERS);
    *group = (int)report[LAYERS];
    return peak;
}

int main(int argc, char **argv)
{
    int experts = 32, threads = 0;
    uint64_t max_memory = 0;
    const char *dir = "build/bench-deepseek";
    bool clean = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--experts") == 0 && i + 1 < argc) experts = atoi(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc) max_memory = (uint64_t)atoll(argv[++i]) << 20;
        else if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--clean") == 0) clean = true;
        else {
            fprintf(stderr, "usage: bench_deepseek_layer [--experts E] [--max-memory MIB] [--threads N] [--dir DIR] "
                            "[--clean]\n");
            return 2;
        }
    }
    if (experts < 16 || experts % 8 != 0 || experts > 256) {
        fprintf(stderr, "bench: --experts must be a multiple of 8 in [16, 256] (8 groups of at least 2)\n");
        return 2;
    }
    if (threads > 0) strata_set_num_threads(threads);
    char model[4096], out[4200], config[4300], cmd[8800];
    snprintf(model, sizeof model, "%s/v3-shape-%d-experts", dir, experts);
    snprintf(out, sizeof out, "%s-nvfp4", model);
    snprintf(config, sizeof config, "%s/config.json", model);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && rm -rf '%s'", dir, out);
    if (system(cmd) != 0) return 1;
    if (access(config, F_OK) != 0) {
        fprintf(stderr, "bench: generating %s (once; kept for later runs, --clean removes it)\n", model);
        double t = now();
        strata_synth_params sp = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 3, .n_layers = LAYERS,
                                  .hidden_size = 7168, .n_experts = experts, .config_patch = V3_SHAPE};
        if (strata_synth_model(model, &sp) != STRATA_OK) {
            fprintf(stderr, "bench: %s\n", strata_last_error());
            return 1;
        }
        fprintf(stderr, "bench: generated in %.0f s\n", now() - t);
    }
    int32_t tokens[SAMPLES * SEQ];
    for (int i = 0; i < SAMPLES * SEQ; i++) tokens[i] = (int32_t)((i * 7919 + 13) % 512);
    double seconds = 0, layer_seconds[LAYERS] = {0};
    int group = 0;
    uint64_t peak = quantize_child(model, out, tokens, max_memory, &seconds, layer_seconds, &group);
    if (!peak) return 1;
    double gib = 1024.0 * 1024.0 * 1024.0;
    double expert_bytes = 3.0 * 7168 * 2048 * 2, moe_bf16 = experts * expert_bytes;
    printf("DeepSeek-V3-shaped layers (hidden 7168, MLA 1536/512, %d routed experts of 2048), NVFP4, %d x %d tokens\n",
           experts, SAMPLES, SEQ);
    printf("machine memory            %8.1f GiB\n", (double)mem_total_bytes() / gib);
    printf("MoE layer bf16 weights    %8.2f GiB (%d experts; 256 would be %.1f GiB)\n", moe_bf16 / gib, experts,
           256 * expert_bytes / gib);
    if (max_memory) printf("--max-memory              %8.2f GiB\n", (double)max_memory / gib);
    printf("experts per group         %8d%s\n", group, group ? "" : " (whole layer)");
    printf("peak RSS                  %8.2f GiB\n", (double)peak / gib);
    printf("layer 0 (dense MLP 18432) %8.1f s\n", layer_seconds[0]);
    printf("layer 1 (MoE)             %8.1f s\n", layer_seconds[1]);
    printf("total                     %8.1f s\n", seconds);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'%s%s%s", out, clean ? " '" : "", clean ? model : "", clean ? "'" : "");
    return system(cmd) == 0 ? 0 : 1;
}
