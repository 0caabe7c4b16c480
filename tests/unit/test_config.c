/*
 * test_config.c — config.json -> strata_arch for every family, with the transformers
 * defaults, and refusals of what strata does not support, each naming the key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "helpers.h"
#include "io/json.h"
#include "model/desc.h"

static strata_status parse(const char *json, model_desc *d)
{
    sjson_error error;
    sjson *config = sjson_parse(json, strlen(json), true, &error);
    assert_non_null(config);
    strata_status status = desc_from_config(config, "cfg/config.json", d);
    if (status == STRATA_OK) status = desc_layout(d, d->arch.family == STRATA_FAMILY_MIXTRAL ? "block_sparse_moe" : "mlp", false);
    sjson_free(config);
    return status;
}

#define BASE "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100," \
             "\"intermediate_size\":96"

static void test_llama_defaults(void **state)
{
    (void)state;
    model_desc d;
    assert_int_equal(parse("{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"]," BASE "}", &d), STRATA_OK);
    const strata_arch *a = &d.arch;
    assert_int_equal(a->family, STRATA_FAMILY_LLAMA);
    assert_string_equal(a->architecture, "LlamaForCausalLM");
    assert_int_equal(a->n_kv_heads, 4);       /* defaults to num_attention_heads */
    assert_int_equal(a->head_dim, 16);        /* hidden / heads */
    assert_true(a->rope.theta == 10000.0);
    assert_true(a->rms_norm_eps == 1e-6);
    assert_int_equal(a->rope.type, STRATA_ROPE_DEFAULT);
    assert_false(a->tie_word_embeddings);
    assert_false(a->qkv_bias);
    assert_int_equal(a->sliding_window, 0);
    assert_int_equal(a->layers[1].n_linears, 7);
    const strata_linear *q = &a->layers[1].linears[0];
    assert_string_equal(q->name, "model.layers.1.self_attn.q_proj");
    assert_string_equal(q->weight, "model.layers.1.self_attn.q_proj.weight");
    assert_int_equal(q->role, STRATA_LINEAR_Q);
    assert_int_equal(q->n_out, 64);
    assert_null(q->bias);
    const strata_linear *down = &a->layers[1].linears[6];
    assert_int_equal(down->role, STRATA_LINEAR_DOWN);
    assert_int_equal(down->n_out, 64);
    assert_int_equal(down->n_in, 96);
    assert_string_equal(a->lm_head, "lm_head.weight");
    desc_free(&d);
}

static void test_llama3_rope_and_biases(void **state)
{
    (void)state;
    model_desc d;
    assert_int_equal(parse("{\"model_type\":\"llama\"," BASE ",\"num_key_value_heads\":2,\"attention_bias\":true,"
                           "\"mlp_bias\":true,\"tie_word_embeddings\":true,\"rope_theta\":500000.0,"
                           "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
                           "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":8192}}",
                           &d),
                     STRATA_OK);
    const strata_arch *a = &d.arch;
    assert_int_equal(a->rope.type, STRATA_ROPE_LLAMA3);
    assert_true(a->rope.factor == 8.0 && a->rope.high_freq_factor == 4.0);
    assert_int_equal(a->rope.original_max_position, 8192);
    assert_true(a->rope.theta == 500000.0);
    assert_true(a->qkv_bias && a->o_bias && a->mlp_bias);
    assert_string_equal(a->layers[0].linears[1].bias, "model.layers.0.self_attn.k_proj.bias");
    assert_int_equal(a->layers[0].linears[1].n_out, 2 * 16);
    assert_string_equal(a->lm_head, a->embed_tokens);
    desc_free(&d);

    /* transformers v5 spelling */
    assert_int_equal(parse("{\"model_type\":\"llama\"," BASE ",\"rope_parameters\":{\"rope_type\":\"linear\","
                           "\"factor\":2.0,\"rope_theta\":1234.0}}", &d), STRATA_OK);
    assert_int_equal(d.arch.rope.type, STRATA_ROPE_LINEAR);
    assert_true(d.arch.rope.theta == 1234.0 && d.arch.rope.factor == 2.0);
    desc_free(&d);
}

static void test_qwen_families(void **state)
{
    (void)state;
    model_desc d;
    assert_int_equal(parse("{\"model_type\":\"qwen2\"," BASE "}", &d), STRATA_OK);
    assert_true(d.arch.qkv_bias);   /* qwen2 always has q/k/v biases */
    assert_false(d.arch.o_bias);
    assert_int_equal(d.arch.sliding_window, 0); /* only with use_sliding_window */
    desc_free(&d);
    /* ...and then only on layers >= max_window_layers (default 28) or as layer_types says. */
    assert_int_equal(parse("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,\"sliding_window\":64}", &d),
                     STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 0); /* 2 layers < 28: none windowed */
    desc_free(&d);
    assert_int_equal(parse("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,\"sliding_window\":64,"
                           "\"max_window_layers\":0}",
                           &d),
                     STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 64);
    desc_free(&d);
    assert_int_equal(parse("{\"model_type\":\"qwen3\"," BASE ",\"use_sliding_window\":true,\"sliding_window\":64,"
                           "\"layer_types\":[\"sliding_attention\",\"sliding_attention\"]}",
                           &d),
                     STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 64);
    desc_free(&d);
    /* llama never windows, whatever the config says. */
    assert_int_equal(parse("{\"model_type\":\"llama\"," BASE ",\"sliding_window\":64}", &d), STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 0);
    desc_free(&d);

    assert_int_equal(parse("{\"model_type\":\"qwen3\"," BASE ",\"num_key_value_heads\":2}", &d), STRATA_OK);
    assert_true(d.arch.qk_norm);
    assert_int_equal(d.arch.head_dim, 128);     /* Qwen3Config's default */
    assert_string_equal(d.arch.layers[0].q_norm, "model.layers.0.self_attn.q_norm.weight");
    desc_free(&d);

    assert_int_equal(parse("{\"model_type\":\"qwen3_moe\"," BASE ",\"num_experts\":4,\"num_experts_per_tok\":2,"
                           "\"moe_intermediate_size\":32,\"norm_topk_prob\":true,\"mlp_only_layers\":[0]}", &d),
                     STRATA_OK);
    const strata_arch *a = &d.arch;
    assert_false(a->layers[0].is_moe);
    assert_true(a->layers[1].is_moe);
    assert_int_equal(a->layers[0].n_linears, 7);
    assert_int_equal(a->layers[1].n_linears, 4 + 1 + 12);
    const strata_linear *router = &a->layers[1].linears[4];
    assert_int_equal(router->role, STRATA_LINEAR_ROUTER);
    assert_false(router->quantizable);
    assert_string_equal(router->weight, "model.layers.1.mlp.gate.weight");
    const strata_linear *e3_up = &a->layers[1].linears[5 + 3 * 3 + 1];
    assert_string_equal(e3_up->weight, "model.layers.1.mlp.experts.3.up_proj.weight");
    assert_int_equal(e3_up->expert, 3);
    assert_int_equal(e3_up->n_out, 32);
    assert_true(a->moe.renormalize && a->moe.softmax_before_topk);
    desc_free(&d);

    assert_int_equal(parse("{\"model_type\":\"qwen2_moe\"," BASE ",\"num_experts\":4,\"num_experts_per_tok\":2,"
                           "\"moe_intermediate_size\":32,\"shared_expert_intermediate_size\":48,"
                           "\"decoder_sparse_step\":2}", &d),
                     STRATA_OK);
    a = &d.arch;
    assert_false(a->layers[0].is_moe); /* (0 + 1) % 2 != 0 */
    assert_true(a->layers[1].is_moe);
    assert_false(a->moe.renormalize); /* norm_topk_prob defaults to false */
    const strata_layer *l1 = &a->layers[1];
    const strata_linear *shared_gate = &l1->linears[l1->n_linears - 1];
    assert_int_equal(shared_gate->role, STRATA_LINEAR_SHARED_GATE);
    assert_int_equal(shared_gate->n_out, 1);
    assert_string_equal(l1->linears[l1->n_linears - 2].weight, "model.layers.1.mlp.shared_expert.down_proj.weight");
    assert_int_equal(l1->linears[l1->n_linears - 2].n_in, 48);
    desc_free(&d);
}

static void test_mistral_and_mixtral(void **state)
{
    (void)state;
    model_desc d;
    assert_int_equal(parse("{\"model_type\":\"mistral\"," BASE "}", &d), STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 4096); /* MistralConfig default */
    desc_free(&d);
    assert_int_equal(parse("{\"model_type\":\"mistral\"," BASE ",\"sliding_window\":null}", &d), STRATA_OK);
    assert_int_equal(d.arch.sliding_window, 0);
    desc_free(&d);

    assert_int_equal(parse("{\"model_type\":\"mixtral\"," BASE ",\"num_local_experts\":4}", &d), STRATA_OK);
    const strata_arch *a = &d.arch;
    assert_int_equal(a->moe.n_experts, 4);
    assert_int_equal(a->moe.top_k, 2);
    assert_int_equal(a->moe.intermediate_size, 96);
    assert_true(a->moe.renormalize);
    assert_true(a->rms_norm_eps == 1e-5 && a->rope.theta == 1e6);
    assert_string_equal(a->layers[0].linears[5].weight, "model.layers.0.block_sparse_moe.experts.0.w1.weight");
    assert_string_equal(a->layers[0].linears[6].weight, "model.layers.0.block_sparse_moe.experts.0.w3.weight");
    assert_int_equal(a->layers[0].linears[6].role, STRATA_LINEAR_UP);
    desc_free(&d);
}

static void test_stacked_layout(void **state)
{
    (void)state;
    const char *json = "{\"model_type\":\"qwen3_moe\"," BASE ",\"num_experts\":4,\"num_experts_per_tok\":2,\"moe_intermediate_size\":32}";
    sjson_error error;
    sjson *config = sjson_parse(json, strlen(json), true, &error);
    model_desc d;
    assert_int_equal(desc_from_config(config, "c", &d), STRATA_OK);
    assert_int_equal(desc_layout(&d, "mlp", true), STRATA_OK);
    const strata_linear *e2_up = &d.arch.layers[0].linears[5 + 2 * 3 + 1];
    assert_string_equal(e2_up->weight, "model.layers.0.mlp.experts.gate_up_proj");
    assert_int_equal(e2_up->stack_index, 2);
    assert_int_equal(e2_up->row_offset, 32);
    expected_tensor *expected;
    size_t n;
    assert_int_equal(desc_expected(&d, &expected, &n), STRATA_OK);
    bool found = false;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(expected[i].name, "model.layers.1.mlp.experts.gate_up_proj") != 0) continue;
        found = true;
        assert_int_equal(expected[i].n_dims, 3);
        assert_int_equal(expected[i].shape[0], 4);
        assert_int_equal(expected[i].shape[1], 64);
        assert_int_equal(expected[i].shape[2], 64);
    }
    assert_true(found);
    free(expected);
    desc_free(&d);
    sjson_free(config);
}

/* DeepSeek-V3 scaled down, as transformers reads it: MLA ranks and head dims, YaRN with
 * mscale on the softmax scale, grouped sigmoid routing, a dense first layer. */
#define DEEPSEEK "\"hidden_size\":64,\"num_hidden_layers\":3,\"num_attention_heads\":4,\"vocab_size\":100," \
                 "\"intermediate_size\":96,\"moe_intermediate_size\":32,\"n_routed_experts\":16,\"n_group\":4," \
                 "\"topk_group\":2,\"num_experts_per_tok\":4,\"first_k_dense_replace\":1,\"kv_lora_rank\":32," \
                 "\"qk_nope_head_dim\":16,\"qk_rope_head_dim\":8,\"v_head_dim\":16," \
                 "\"max_position_embeddings\":4096,\"rope_scaling\":{\"type\":\"yarn\",\"factor\":40," \
                 "\"original_max_position_embeddings\":64,\"mscale\":1.0,\"mscale_all_dim\":1.0}"

static void test_deepseek(void **state)
{
    (void)state;
    model_desc d;
    assert_int_equal(parse("{\"model_type\":\"deepseek_v3\",\"q_lora_rank\":48," DEEPSEEK "}", &d), STRATA_OK);
    const strata_arch *a = &d.arch;
    assert_int_equal(a->family, STRATA_FAMILY_DEEPSEEK_V3);
    assert_int_equal(a->mla.q_lora_rank, 48);
    assert_int_equal(a->mla.kv_lora_rank, 32);
    assert_int_equal(a->head_dim, 24);   /* nope + rope */
    assert_int_equal(a->rotary_dim, 8);  /* the rope part */
    assert_true(a->rope_interleave);     /* DeepseekV3Config's default */
    assert_int_equal(a->rope.type, STRATA_ROPE_YARN);
    assert_true(a->yarn.attention_factor == 1.0); /* mscale == mscale_all_dim */
    double m = 0.1 * log(40.0) + 1.0;
    assert_true(fabs(a->attention_scale - pow(24.0, -0.5) * m * m) < 1e-15);
    assert_true(a->routing.sigmoid);
    assert_int_equal(a->moe.shared_intermediate_size, 32); /* n_shared_experts defaults to 1 */
    assert_false(a->layers[0].is_moe);
    assert_true(a->layers[1].is_moe && a->layers[2].is_moe);
    /* q_a_proj, q_b_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj */
    const strata_layer *l0 = &a->layers[0];
    assert_int_equal(l0->linears[0].role, STRATA_LINEAR_Q_A);
    assert_int_equal(l0->linears[1].n_out, 4 * 24);
    assert_int_equal(l0->linears[2].n_out, 32 + 8);
    assert_int_equal(l0->linears[3].n_out, 4 * (16 + 16));
    assert_int_equal(l0->linears[4].n_in, 4 * 16);
    assert_non_null(l0->q_a_norm);
    assert_non_null(l0->kv_a_norm);
    desc_free(&d);

    /* q_lora_rank null: a plain q_proj; moe_layer_freq 2: layers 1.. alternate (DeepSeek's code) */
    assert_int_equal(parse("{\"model_type\":\"deepseek_v3\",\"q_lora_rank\":null,\"moe_layer_freq\":2," DEEPSEEK "}", &d),
                     STRATA_OK);
    assert_int_equal(d.arch.mla.q_lora_rank, 0);
    assert_int_equal(d.arch.layers[0].linears[0].role, STRATA_LINEAR_Q);
    assert_null(d.arch.layers[0].q_a_norm);
    assert_false(d.arch.layers[1].is_moe);
    assert_true(d.arch.layers[2].is_moe);
    desc_free(&d);

    /* Kimi-K2: model_type kimi_k2, architectures DeepseekV3ForCausalLM */
    assert_int_equal(parse("{\"model_type\":\"kimi_k2\",\"architectures\":[\"DeepseekV3ForCausalLM\"]," DEEPSEEK "}",
                           &d),
                     STRATA_OK);
    assert_int_equal(d.arch.family, STRATA_FAMILY_DEEPSEEK_V3);
    desc_free(&d);
}

static void expect_refusal(const char *json, strata_status status, const char *fragment)
{
    model_desc d;
    assert_int_equal(parse(json, &d), status);
    ASSERT_ERROR_MENTIONS("cfg/config.json", fragment);
    desc_free(&d);
}

static void test_refusals(void **state)
{
    (void)state;
    expect_refusal("{\"model_type\":\"gpt2\"," BASE "}", STRATA_ERR_UNSUPPORTED, "architecture 'gpt2' is not supported");
    expect_refusal("{" BASE "}", STRATA_ERR_FORMAT, "model_type");
    expect_refusal("{\"model_type\":\"llama\",\"hidden_act\":\"gelu\"," BASE "}", STRATA_ERR_UNSUPPORTED, "'gelu'");
    expect_refusal("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"type\":\"longrope\",\"factor\":4}}",
                   STRATA_ERR_UNSUPPORTED, "rope scaling type 'longrope'");
    expect_refusal("{\"model_type\":\"llama\"," BASE ",\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4}}",
                   STRATA_ERR_FORMAT, "original_max_position_embeddings");
    /* DeepSeek: V2's softmax router, grouped key/value heads, another model_type of another class */
    expect_refusal("{\"model_type\":\"deepseek_v3\"," BASE ",\"n_routed_experts\":8,\"n_group\":2,\"topk_group\":1,"
                   "\"num_experts_per_tok\":2,\"moe_intermediate_size\":32,\"scoring_func\":\"softmax\"}",
                   STRATA_ERR_UNSUPPORTED, "\"scoring_func\" 'softmax'");
    expect_refusal("{\"model_type\":\"deepseek_v3\"," BASE ",\"num_key_value_heads\":2,\"n_routed_experts\":8,"
                   "\"n_group\":2,\"topk_group\":1,\"num_experts_per_tok\":2,\"moe_intermediate_size\":32}",
                   STRATA_ERR_UNSUPPORTED, "latent attention");
    expect_refusal("{\"model_type\":\"kimi_k2\",\"architectures\":[\"Qwen3MoeForCausalLM\"]," BASE "}",
                   STRATA_ERR_UNSUPPORTED, "architecture 'kimi_k2' is not supported");
    expect_refusal("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,\"max_window_layers\":1}",
                   STRATA_ERR_UNSUPPORTED, "sliding-window attention on 1 of 2 layers");
    expect_refusal("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,"
                   "\"layer_types\":[\"full_attention\",\"sliding_attention\"]}",
                   STRATA_ERR_UNSUPPORTED, "sliding-window attention on 1 of 2 layers");
    expect_refusal("{\"model_type\":\"qwen2\"," BASE ",\"use_sliding_window\":true,\"layer_types\":[\"full_attention\"]}",
                   STRATA_ERR_FORMAT, "one type per layer");
    expect_refusal("{\"model_type\":\"llama\"," BASE ",\"num_key_value_heads\":3}", STRATA_ERR_FORMAT,
                   "not a multiple of num_key_value_heads 3");
    expect_refusal("{\"model_type\":\"llama\",\"hidden_size\":-5,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                   "\"vocab_size\":100,\"intermediate_size\":96}",
                   STRATA_ERR_FORMAT, "\"hidden_size\" is -5");
    expect_refusal("{\"model_type\":\"llama\",\"hidden_size\":\"64\",\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                   "\"vocab_size\":100,\"intermediate_size\":96}",
                   STRATA_ERR_FORMAT, "\"hidden_size\" must be an integer");
    expect_refusal("{\"model_type\":\"llama\",\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                   "\"vocab_size\":100,\"intermediate_size\":96}",
                   STRATA_ERR_FORMAT, "missing required key \"hidden_size\"");
    expect_refusal("{\"model_type\":\"llama\"," BASE ",\"partial_rotary_factor\":0.5}", STRATA_ERR_UNSUPPORTED,
                   "partial_rotary_factor");
    expect_refusal("{\"model_type\":\"mixtral\"," BASE ",\"num_local_experts\":2,\"num_experts_per_tok\":3}",
                   STRATA_ERR_FORMAT, "exceeds the 2 experts");
    expect_refusal("{\"model_type\":\"qwen3_moe\"," BASE ",\"num_experts\":4,\"num_experts_per_tok\":2}", STRATA_ERR_FORMAT,
                   "moe_intermediate_size");
    expect_refusal("{\"model_type\":\"llama\"," BASE ",\"head_dim\":15}", STRATA_ERR_FORMAT, "must be even");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama_defaults),      cmocka_unit_test(test_llama3_rope_and_biases),
        cmocka_unit_test(test_qwen_families),       cmocka_unit_test(test_mistral_and_mixtral),
        cmocka_unit_test(test_stacked_layout),      cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_deepseek),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
