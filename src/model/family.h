/*
 * family.h — what differs between the supported model families, in one table.
 *
 * Everything that is a per-family fact of Hugging Face transformers (config defaults,
 * tensor names of the MoE block, bias conventions, routing) lives in FAMILIES; the code
 * that parses configs and names tensors is shared and reads it.
 */
#ifndef STRATA_MODEL_FAMILY_H
#define STRATA_MODEL_FAMILY_H

#include "strata.h"

typedef struct family_traits {
    const char *model_type;        /* config.json "model_type" */
    const char *architecture;      /* the *ForCausalLM class */
    bool moe;
    bool qk_norm;                  /* per-head q_norm / k_norm */
    bool qkv_bias_default;         /* q/k/v biases without a config key saying so */
    bool attention_bias_key;       /* "attention_bias" sets q/k/v (and o) biases */
    bool shared_expert;            /* qwen2_moe: shared MLP + sigmoid gate */
    bool shared_experts;           /* glm4_moe: n_shared_experts shared MLPs as one, no gate */
    bool sigmoid_routing;          /* glm4_moe: sigmoid scores, correction bias, expert groups */
    bool qkv_bias_only;            /* "attention_bias" sets q/k/v biases but not o's */
    bool qk_norm_key;              /* "use_qk_norm" turns q_norm / k_norm on */
    const char *first_dense_key;   /* "first_k_dense_replace": that many dense layers first */
    const char *moe_freq_key;      /* "moe_layer_freq": past the dense ones, every n-th layer is MoE */
    bool mla;                      /* multi-head latent attention (deepseek_v3) */
    bool any_model_type;           /* configs of another model_type whose "architectures" names this
                                    * class are read as this family (Kimi-K2's kimi_k2) */
    double default_partial_rotary; /* 0: 1.0 */
    bool sparse_step;              /* decoder_sparse_step / mlp_only_layers apply */
    bool renormalize_always;       /* mixtral renormalizes top-k; qwen reads norm_topk_prob */
    bool window_needs_flag;        /* sliding_window applies only with use_sliding_window, and then
                                      only to layers >= max_window_layers (or per layer_types) */
    bool never_windowed;           /* transformers ignores sliding_window (llama) */
    const char *moe_block;         /* module holding router + experts in per-expert layout */
    const char *expert_gate, *expert_up, *expert_down; /* per-expert linear names */
    const char *n_experts_key;     /* "num_local_experts" or "num_experts" */
    const char *expert_width_key;  /* "intermediate_size" or "moe_intermediate_size" */
    double default_rope_theta;
    double default_rms_norm_eps;
    int64_t default_head_dim;      /* 0: hidden_size / num_attention_heads */
    int64_t default_sliding_window;/* 0: none */
    int default_n_experts, default_top_k;
    bool default_norm_topk_prob;
} family_traits;

extern const family_traits FAMILIES[STRATA_FAMILY_COUNT];

/* "default", "linear", "llama3", "yarn". */
const char *rope_type_name(strata_rope_type type);

/* The family whose model_type is given, or false. */
bool family_from_model_type(const char *model_type, strata_family *out);

/* The family whose *ForCausalLM class is given, among those with any_model_type (Kimi-K2
 * ships model_type "kimi_k2" with DeepseekV3ForCausalLM), or false. */
bool family_from_architecture(const char *architecture, strata_family *out);

#endif
