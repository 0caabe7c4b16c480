/*
 * test_shared_models.c — strata_model_open and strata_inspect on the real checkpoints in
 * ../shared/models, with the facts MANIFEST.md states about each (layers, heads, widths,
 * parameter counts, experts, tied embeddings). Skips (exit 77) when ../shared is absent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static const char *shared;

typedef struct expected_model {
    const char *dir;
    strata_family family;
    int n_layers, n_heads, n_kv_heads;
    int64_t hidden, intermediate, vocab, head_dim, parameters;
    bool tied, qk_norm;
    int n_experts, top_k;
    strata_dtype dtype;
    size_t n_tensors;
} expected_model;

static const expected_model MODELS[] = {
    {"stories260K-hf", STRATA_FAMILY_LLAMA, 5, 8, 4, 64, 172, 512, 8, 260032, true, false, 0, 0, STRATA_DTYPE_F32, 47},
    {"stories260K-hf-bf16", STRATA_FAMILY_LLAMA, 5, 8, 4, 64, 172, 512, 8, 260032, true, false, 0, 0, STRATA_DTYPE_BF16, 47},
    {"llama-19m", STRATA_FAMILY_LLAMA, 8, 6, 2, 384, 1024, 8192, 64, 18880896, false, false, 0, 0, STRATA_DTYPE_BF16, 75},
    {"qwen3moe-47m", STRATA_FAMILY_QWEN3_MOE, 8, 6, 2, 384, 1024, 8192, 64, 47218048, false, true, 8, 2,
     STRATA_DTYPE_BF16, 267},
    {"stories260K-moe-mixtral-synthetic", STRATA_FAMILY_MIXTRAL, 5, 8, 4, 64, 172, 512, 8, 756672, true, false, 4, 2,
     STRATA_DTYPE_F32, 97},
};

static void test_models(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        const expected_model *e = &MODELS[i];
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/models/%s", shared, e->dir);
        strata_model *m = NULL;
        if (strata_model_open(dir, &m) != STRATA_OK) fail_msg("%s: %s", dir, strata_last_error());
        const strata_arch *a = strata_model_arch(m);
        assert_int_equal(a->family, e->family);
        assert_int_equal(a->n_layers, e->n_layers);
        assert_int_equal(a->n_heads, e->n_heads);
        assert_int_equal(a->n_kv_heads, e->n_kv_heads);
        assert_int_equal(a->hidden_size, e->hidden);
        assert_int_equal(a->intermediate_size, e->intermediate);
        assert_int_equal(a->vocab_size, e->vocab);
        assert_int_equal(a->head_dim, e->head_dim);
        assert_int_equal(a->tie_word_embeddings, e->tied);
        assert_int_equal(a->qk_norm, e->qk_norm);
        assert_int_equal(a->moe.n_experts, e->n_experts);
        assert_int_equal(a->moe.top_k, e->top_k);
        assert_false(a->moe.stacked);
        const strata_safetensors *st = strata_model_tensors(m);
        assert_int_equal(strata_safetensors_count(st), e->n_tensors);
        int64_t parameters = 0;
        for (size_t t = 0; t < strata_safetensors_count(st); t++) {
            parameters += strata_safetensors_at(st, t)->n_elements;
            assert_int_equal(strata_safetensors_at(st, t)->dtype, e->dtype);
        }
        assert_int_equal(parameters, e->parameters);
        assert_int_equal(strata_model_unexpected_count(m), 0);
        assert_null(strata_model_quantization(m));
        if (e->n_experts) {
            /* Every MoE layer: router (not quantizable) + 3 linears per expert. */
            const strata_layer *last = &a->layers[a->n_layers - 1];
            assert_true(last->is_moe);
            assert_int_equal(last->n_linears, 4 + 1 + 3 * (size_t)e->n_experts);
            assert_false(last->linears[4].quantizable);
        }
        strata_model_close(m);

        char *report = NULL;
        strata_inspect_params params = {.stats = true};
        assert_int_equal(strata_inspect(dir, &params, &report), STRATA_OK);
        assert_non_null(strstr(report, "0 NaN, 0 Inf")); /* trained weights are finite */
        assert_non_null(strstr(report, "unexpected    0"));
        strata_free(report);
    }
}

/* Facts that only hold for the trained qwen3moe-47m. */
static void test_qwen3moe_details(void **state)
{
    (void)state;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/qwen3moe-47m", shared);
    strata_model *m = NULL;
    assert_int_equal(strata_model_open(dir, &m), STRATA_OK);
    const strata_arch *a = strata_model_arch(m);
    assert_true(a->moe.renormalize); /* norm_topk_prob */
    assert_int_equal(a->moe.intermediate_size, 512);
    assert_string_equal(a->layers[7].q_norm, "model.layers.7.self_attn.q_norm.weight");
    const strata_tensor *router = strata_safetensors_find(strata_model_tensors(m), "model.layers.7.mlp.gate.weight");
    assert_non_null(router);
    assert_int_equal(router->shape[0], 8);
    assert_int_equal(router->shape[1], 384);
    strata_model_close(m);

    char *report = NULL;
    strata_inspect_params params = {.json = true};
    assert_int_equal(strata_inspect(dir, &params, &report), STRATA_OK);
    assert_non_null(strstr(report, "\"model_type\": \"qwen3_moe\""));
    assert_non_null(strstr(report, "\"role\": \"router\""));
    assert_non_null(strstr(report, "\"elements\": 47218048"));
    strata_free(report);
}

int main(void)
{
    shared = test_shared_dir();
    if (!shared) return 77;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_qwen3moe_details),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
