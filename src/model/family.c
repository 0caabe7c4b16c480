/*
 * family.c — the per-family table (defaults as in transformers' configuration classes).
 */
#include "model/family.h"

#include <string.h>

const family_traits FAMILIES[STRATA_FAMILY_COUNT] = {
    [STRATA_FAMILY_LLAMA] = {
        .model_type = "llama", .architecture = "LlamaForCausalLM",
        .attention_bias_key = true,
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .never_windowed = true,
    },
    [STRATA_FAMILY_MISTRAL] = {
        .model_type = "mistral", .architecture = "MistralForCausalLM",
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .default_sliding_window = 4096,
    },
    [STRATA_FAMILY_QWEN2] = {
        .model_type = "qwen2", .architecture = "Qwen2ForCausalLM",
        .qkv_bias_default = true, .window_needs_flag = true,
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .default_sliding_window = 4096,
    },
    [STRATA_FAMILY_QWEN3] = {
        .model_type = "qwen3", .architecture = "Qwen3ForCausalLM",
        .qk_norm = true, .attention_bias_key = true, .window_needs_flag = true,
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6, .default_head_dim = 128,
        .default_sliding_window = 4096,
    },
    [STRATA_FAMILY_MIXTRAL] = {
        .model_type = "mixtral", .architecture = "MixtralForCausalLM",
        .moe = true, .renormalize_always = true,
        .moe_block = "block_sparse_moe", .expert_gate = "w1", .expert_up = "w3", .expert_down = "w2",
        .n_experts_key = "num_local_experts", .expert_width_key = "intermediate_size",
        .default_rope_theta = 1e6, .default_rms_norm_eps = 1e-5,
        .default_n_experts = 8, .default_top_k = 2,
    },
    [STRATA_FAMILY_QWEN2_MOE] = {
        .model_type = "qwen2_moe", .architecture = "Qwen2MoeForCausalLM",
        .moe = true, .qkv_bias_default = true, .shared_expert = true, .sparse_step = true,
        .window_needs_flag = true,
        .moe_block = "mlp", .expert_gate = "gate_proj", .expert_up = "up_proj", .expert_down = "down_proj",
        .n_experts_key = "num_experts", .expert_width_key = "moe_intermediate_size",
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .default_sliding_window = 4096,
        .default_n_experts = 60, .default_top_k = 4,
    },
    [STRATA_FAMILY_QWEN3_MOE] = {
        .model_type = "qwen3_moe", .architecture = "Qwen3MoeForCausalLM",
        .moe = true, .qk_norm = true, .attention_bias_key = true, .sparse_step = true,
        .window_needs_flag = true,
        .moe_block = "mlp", .expert_gate = "gate_proj", .expert_up = "up_proj", .expert_down = "down_proj",
        .n_experts_key = "num_experts", .expert_width_key = "moe_intermediate_size",
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .default_sliding_window = 4096,
        .default_n_experts = 128, .default_top_k = 8,
    },
    [STRATA_FAMILY_GLM4_MOE] = {
        .model_type = "glm4_moe", .architecture = "Glm4MoeForCausalLM",
        .moe = true, .attention_bias_key = true, .qkv_bias_only = true, .qk_norm_key = true,
        .shared_experts = true, .sigmoid_routing = true, .first_dense_key = "first_k_dense_replace",
        .never_windowed = true,
        .moe_block = "mlp", .expert_gate = "gate_proj", .expert_up = "up_proj", .expert_down = "down_proj",
        .n_experts_key = "n_routed_experts", .expert_width_key = "moe_intermediate_size",
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-5, .default_partial_rotary = 0.5,
        .default_n_experts = 128, .default_top_k = 8, .default_norm_topk_prob = true,
    },
    [STRATA_FAMILY_DEEPSEEK_V3] = {
        .model_type = "deepseek_v3", .architecture = "DeepseekV3ForCausalLM",
        .moe = true, .mla = true, .any_model_type = true, .attention_bias_key = true,
        .shared_experts = true, .sigmoid_routing = true, .first_dense_key = "first_k_dense_replace",
        .moe_freq_key = "moe_layer_freq", .never_windowed = true,
        .moe_block = "mlp", .expert_gate = "gate_proj", .expert_up = "up_proj", .expert_down = "down_proj",
        .n_experts_key = "n_routed_experts", .expert_width_key = "moe_intermediate_size",
        .default_rope_theta = 10000.0, .default_rms_norm_eps = 1e-6,
        .default_n_experts = 256, .default_top_k = 8, .default_norm_topk_prob = true,
    },
};

const char *rope_type_name(strata_rope_type type)
{
    switch (type) {
    case STRATA_ROPE_DEFAULT: return "default";
    case STRATA_ROPE_LINEAR: return "linear";
    case STRATA_ROPE_LLAMA3: return "llama3";
    case STRATA_ROPE_YARN: return "yarn";
    }
    return "?";
}

bool family_from_architecture(const char *architecture, strata_family *out)
{
    for (int i = 0; i < STRATA_FAMILY_COUNT; i++) {
        if (FAMILIES[i].any_model_type && strcmp(FAMILIES[i].architecture, architecture) == 0) {
            *out = (strata_family)i;
            return true;
        }
    }
    return false;
}

bool family_from_model_type(const char *model_type, strata_family *out)
{
    for (int i = 0; i < STRATA_FAMILY_COUNT; i++) {
        if (strcmp(FAMILIES[i].model_type, model_type) == 0) {
            *out = (strata_family)i;
            return true;
        }
    }
    return false;
}

const char *strata_family_name(strata_family family)
{
    return (unsigned)family < STRATA_FAMILY_COUNT ? FAMILIES[family].model_type : "?";
}

const char *strata_linear_role_name(strata_linear_role role)
{
    switch (role) {
    case STRATA_LINEAR_Q: return "q";
    case STRATA_LINEAR_K: return "k";
    case STRATA_LINEAR_V: return "v";
    case STRATA_LINEAR_O: return "o";
    case STRATA_LINEAR_GATE: return "gate";
    case STRATA_LINEAR_UP: return "up";
    case STRATA_LINEAR_DOWN: return "down";
    case STRATA_LINEAR_ROUTER: return "router";
    case STRATA_LINEAR_SHARED_GATE: return "shared_expert_gate";
    case STRATA_LINEAR_Q_A: return "q_a";
    case STRATA_LINEAR_Q_B: return "q_b";
    case STRATA_LINEAR_KV_A: return "kv_a";
    case STRATA_LINEAR_KV_B: return "kv_b";
    }
    return "?";
}
