/*
 * bench/memory_plan.c — what strata quantize plans to hold for the largest MoE models, from
 * their config.json alone (no weights needed): per layer, the working set with the whole
 * layer materialized and with the routed experts grouped under a limit, the activation
 * store, and the bf16 checkpoint on disk. The shapes are the published configs of
 * DeepSeek-V3, Kimi-K2 and Qwen3-235B-A22B.
 *
 *   bench_memory_plan [--max-memory MIB] [--samples N] [--seq N]   (default 8192, 512, 2048)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"
#include "model/desc.h"
#include "pipeline/memory_plan.h"

typedef struct shape {
    const char *name;
    const char *config;
} shape;

static const shape SHAPES[] = {
    {"DeepSeek-V3 / R1",
     "{\"model_type\": \"deepseek_v3\", \"hidden_size\": 7168, \"num_hidden_layers\": 61, \"num_attention_heads\": 128,"
     " \"num_key_value_heads\": 128, \"q_lora_rank\": 1536, \"kv_lora_rank\": 512, \"qk_nope_head_dim\": 128,"
     " \"qk_rope_head_dim\": 64, \"v_head_dim\": 128, \"intermediate_size\": 18432, \"moe_intermediate_size\": 2048,"
     " \"n_routed_experts\": 256, \"num_experts_per_tok\": 8, \"n_group\": 8, \"topk_group\": 4,"
     " \"n_shared_experts\": 1, \"first_k_dense_replace\": 3, \"vocab_size\": 129280}"},
    {"Kimi-K2",
     "{\"model_type\": \"kimi_k2\", \"architectures\": [\"DeepseekV3ForCausalLM\"], \"hidden_size\": 7168,"
     " \"num_hidden_layers\": 61, \"num_attention_heads\": 64, \"num_key_value_heads\": 64, \"q_lora_rank\": 1536,"
     " \"kv_lora_rank\": 512, \"qk_nope_head_dim\": 128, \"qk_rope_head_dim\": 64, \"v_head_dim\": 128,"
     " \"intermediate_size\": 18432, \"moe_intermediate_size\": 2048, \"n_routed_experts\": 384,"
     " \"num_experts_per_tok\": 8, \"n_group\": 1, \"topk_group\": 1, \"n_shared_experts\": 1,"
     " \"first_k_dense_replace\": 1, \"vocab_size\": 163840}"},
    {"Qwen3-235B-A22B",
     "{\"model_type\": \"qwen3_moe\", \"hidden_size\": 4096, \"num_hidden_layers\": 94, \"num_attention_heads\": 64,"
     " \"num_key_value_heads\": 4, \"head_dim\": 128, \"intermediate_size\": 12288, \"moe_intermediate_size\": 1536,"
     " \"num_experts\": 128, \"num_experts_per_tok\": 8, \"norm_topk_prob\": true, \"vocab_size\": 151936}"},
};

static double gib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

int main(int argc, char **argv)
{
    uint64_t limit = (uint64_t)8192 << 20;
    int64_t samples = 512, seq = 2048;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--max-memory") == 0 && i + 1 < argc) limit = (uint64_t)atoll(argv[++i]) << 20;
        else if (strcmp(argv[i], "--samples") == 0 && i + 1 < argc) samples = atoll(argv[++i]);
        else if (strcmp(argv[i], "--seq") == 0 && i + 1 < argc) seq = atoll(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_memory_plan [--max-memory MIB] [--samples N] [--seq N]\n");
            return 2;
        }
    }
    printf("quantize's plan, NVFP4 (max, then GPTQ), bf16 GEMMs, %lld x %lld calibration tokens, --max-memory %.1f GiB\n",
           (long long)samples, (long long)seq, gib(limit));
    printf("%-18s %10s %12s %14s %10s %12s %12s %10s %14s %10s\n", "model", "bf16 disk", "whole layer",
           "grouped layer", "experts", "one expert", "samples", "act store", "GPTQ grouped", "experts");
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        sjson *config = sjson_parse(SHAPES[s].config, strlen(SHAPES[s].config), true, NULL);
        model_desc d;
        if (!config || desc_from_config(config, SHAPES[s].name, &d) != STRATA_OK ||
            desc_layout(&d, "mlp", false) != STRATA_OK) {
            fprintf(stderr, "bench: %s: %s\n", SHAPES[s].name, strata_last_error());
            return 1;
        }
        uint64_t disk = 2ull * (uint64_t)d.arch.vocab_size * (uint64_t)d.arch.hidden_size * 2;
        for (size_t l = 0; l < d.n_linears; l++) disk += 2ull * (uint64_t)d.linears[l].n_out * (uint64_t)d.linears[l].n_in;
        /* NVFP4 (4-bit codes); max, then GPTQ (its Hessians one group at a time, its quantized
         * experts held until export). */
        memory_plan_request request = {.arch = &d.arch, .precision = GEMM_BF16, .n_samples = samples, .seq_len = seq,
                                       .weight_bits = 4};
        memory_plan whole, grouped, gptq;
        strata_status a = memory_plan_make(&request, &whole);
        request.max_memory = limit;
        strata_status b = memory_plan_make(&request, &grouped);
        char b_error[512];
        snprintf(b_error, sizeof b_error, "%s", b == STRATA_OK ? "" : strata_last_error());
        request.gptq = true;
        strata_status c = memory_plan_make(&request, &gptq);
        if (a != STRATA_OK) return 1;
        char group[32], gptq_group[32];
        snprintf(group, sizeof group, b == STRATA_OK ? "%d" : "refused", grouped.experts_per_group);
        snprintf(gptq_group, sizeof gptq_group, c == STRATA_OK ? "%d" : "refused", gptq.experts_per_group);
        printf("%-18s %8.0f G %10.1f G %12.1f G %10s %10.2f G %10.2f G %8.1f G %12.1f G %10s\n", SHAPES[s].name,
               gib(disk), gib(whole.fixed_bytes), b == STRATA_OK ? gib(grouped.fixed_bytes) : 0.0, group,
               gib(whole.expert_bytes), gib(b == STRATA_OK ? grouped.sample_bytes : whole.sample_bytes),
               gib(2 * whole.store_buffer_bytes), c == STRATA_OK ? gib(gptq.fixed_bytes) : 0.0, gptq_group);
        if (b != STRATA_OK) printf("  max: %s\n", b_error);
        if (c != STRATA_OK) printf("  GPTQ: %s\n", strata_last_error());
        desc_free(&d);
        sjson_free(config);
    }
    return 0;
}
