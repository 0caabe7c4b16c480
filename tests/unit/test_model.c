/*
 * test_model.c — strata_model_open on synthetic checkpoints of every family (experts
 * separate and stacked), the determinism of the generator, and the checkpoint check:
 * missing tensors, wrong shapes, integer dtypes, unexpected tensors, and quantized
 * checkpoints whose packed weights and scales must be recognised.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"


static char *synth(const char *name, strata_family family, bool stacked, uint64_t seed)
{
    char *dir = test_path(test_dir, name);
    strata_synth_params p = {.family = family, .seed = seed, .n_layers = 2, .hidden_size = 64, .n_experts = 4,
                             .stacked_experts = stacked};
    assert_int_equal(strata_synth_model(dir, &p), STRATA_OK);
    return dir;
}

static void test_every_family_round_trips(void **state)
{
    (void)state;
    for (int f = 0; f < STRATA_FAMILY_COUNT; f++) {
        for (int stacked = 0; stacked < 2; stacked++) {
            char name[64];
            snprintf(name, sizeof name, "%s-%d", strata_family_name((strata_family)f), stacked);
            char *dir = synth(name, (strata_family)f, stacked, 7);
            strata_model *m = NULL;
            assert_int_equal(strata_model_open(dir, &m), STRATA_OK);
            const strata_arch *a = strata_model_arch(m);
            assert_int_equal(a->family, f);
            assert_int_equal(a->n_layers, 2);
            assert_int_equal(a->hidden_size, 64);
            bool moe = a->moe.n_experts > 0;
            assert_int_equal(a->moe.stacked, moe && stacked);
            if (moe) assert_int_equal(a->moe.n_experts, 4);
            assert_int_equal(strata_model_unexpected_count(m), 0);
            assert_null(strata_model_quantization(m));
            /* Every linear's weight is in the checkpoint. */
            for (int l = 0; l < a->n_layers; l++)
                for (size_t k = 0; k < a->layers[l].n_linears; k++)
                    assert_non_null(strata_safetensors_find(strata_model_tensors(m), a->layers[l].linears[k].weight));
            strata_model_close(m);
            free(dir);
        }
    }
    strata_model_close(NULL);
}

static void test_generator_is_deterministic(void **state)
{
    (void)state;
    char *a = synth("a", STRATA_FAMILY_QWEN3_MOE, false, 3);
    char *b = synth("b", STRATA_FAMILY_QWEN3_MOE, false, 3);
    char *c = synth("c", STRATA_FAMILY_QWEN3_MOE, false, 4);
    char *pa = test_path(a, "model.safetensors"), *pb = test_path(b, "model.safetensors"), *pc = test_path(c, "model.safetensors");
    size_t na, nb, nc;
    char *da = test_read_file(pa, &na), *db = test_read_file(pb, &nb), *dc = test_read_file(pc, &nc);
    assert_int_equal(na, nb);
    assert_memory_equal(da, db, na);
    assert_int_equal(na, nc);
    assert_true(memcmp(da, dc, na) != 0);
    /* Refuses to overwrite. */
    strata_synth_params p = {.family = STRATA_FAMILY_LLAMA};
    assert_int_equal(strata_synth_model(a, &p), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS(a, "already exists");
    free(da); free(db); free(dc); free(pa); free(pb); free(pc); free(a); free(b); free(c);
}

/* Rewrites dir/model.safetensors through the writer, letting edit() drop, reshape or
 * add tensors. */
typedef void (*edit_fn)(strata_safetensors_writer *w, const strata_tensor *t, bool *keep);

static void rewrite(const char *dir, edit_fn edit, void (*append)(strata_safetensors_writer *w))
{
    char *tmp = test_path(dir, "new");
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(dir, &st), STRATA_OK);
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = tmp};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    for (size_t i = 0; i < strata_safetensors_count(st); i++) {
        const strata_tensor *t = strata_safetensors_at(st, i);
        bool keep = true;
        if (edit) edit(w, t, &keep);
        if (keep)
            assert_int_equal(strata_safetensors_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                             STRATA_OK);
    }
    if (append) append(w);
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    strata_safetensors_close(st);
    snprintf(cmd, sizeof cmd, "mv '%s/model.safetensors' '%s/model.safetensors' && rmdir '%s'", tmp, dir, tmp);
    assert_int_equal(system(cmd), 0);
    free(tmp);
}

static const char *const TARGET = "model.layers.1.mlp.down_proj.weight";

static void drop_target(strata_safetensors_writer *w, const strata_tensor *t, bool *keep)
{
    (void)w;
    *keep = strcmp(t->name, TARGET) != 0;
}

static void reshape_target(strata_safetensors_writer *w, const strata_tensor *t, bool *keep)
{
    if (strcmp(t->name, TARGET) != 0) return;
    int64_t shape[2] = {t->shape[1], t->shape[0]}; /* transposed */
    assert_int_equal(strata_safetensors_writer_add(w, t->name, t->dtype, 2, shape, t->data, t->n_bytes), STRATA_OK);
    *keep = false;
}

static void int_target(strata_safetensors_writer *w, const strata_tensor *t, bool *keep)
{
    if (strcmp(t->name, TARGET) != 0) return;
    assert_int_equal(strata_safetensors_writer_add(w, t->name, STRATA_DTYPE_I16, 2, t->shape, t->data, t->n_bytes),
                     STRATA_OK);
    *keep = false;
}

static void add_extra(strata_safetensors_writer *w)
{
    float v[4] = {0};
    int64_t shape[1] = {4};
    assert_int_equal(strata_safetensors_writer_add(w, "model.layers.0.self_attn.rotary_emb.inv_freq", STRATA_DTYPE_F32,
                                                   1, shape, v, sizeof v),
                     STRATA_OK);
}

static void test_checkpoint_check(void **state)
{
    (void)state;
    strata_model *m = NULL;
    char *dir = synth("missing", STRATA_FAMILY_LLAMA, false, 1);
    rewrite(dir, drop_target, NULL);
    assert_int_equal(strata_model_open(dir, &m), STRATA_ERR_MISMATCH);
    assert_null(m);
    ASSERT_ERROR_MENTIONS(dir, TARGET, "[64, 172]", "is missing");
    free(dir);

    dir = synth("reshaped", STRATA_FAMILY_LLAMA, false, 1);
    rewrite(dir, reshape_target, NULL);
    assert_int_equal(strata_model_open(dir, &m), STRATA_ERR_MISMATCH);
    ASSERT_ERROR_MENTIONS("model.safetensors", TARGET, "shape [172, 64]", "implies [64, 172]");
    free(dir);

    dir = synth("integer", STRATA_FAMILY_LLAMA, false, 1);
    rewrite(dir, int_target, NULL);
    assert_int_equal(strata_model_open(dir, &m), STRATA_ERR_MISMATCH);
    ASSERT_ERROR_MENTIONS(TARGET, "dtype I16");
    free(dir);

    dir = synth("extra", STRATA_FAMILY_LLAMA, false, 1);
    rewrite(dir, NULL, add_extra);
    assert_int_equal(strata_model_open(dir, &m), STRATA_OK);
    assert_int_equal(strata_model_unexpected_count(m), 1);
    assert_string_equal(strata_model_unexpected(m, 0), "model.layers.0.self_attn.rotary_emb.inv_freq");
    strata_model_close(m);
    free(dir);

    /* A config that no longer matches the weights (from another model). */
    dir = synth("other-config", STRATA_FAMILY_LLAMA, false, 1);
    char *config = test_path(dir, "config.json");
    char *text = test_read_file(config, NULL);
    char *p = strstr(text, "\"num_hidden_layers\": 2");
    assert_non_null(p);
    p[strlen("\"num_hidden_layers\": ")] = '3';
    test_write_file(config, text, strlen(text));
    assert_int_equal(strata_model_open(dir, &m), STRATA_ERR_MISMATCH);
    ASSERT_ERROR_MENTIONS("model.layers.2.", "is missing");
    free(text);
    free(config);
    free(dir);
}

/* A ModelOpt-style quantized checkpoint: FP8 q_proj, NVFP4-packed down_proj, scales. */
static void quantize_edit(strata_safetensors_writer *w, const strata_tensor *t, bool *keep)
{
    if (strstr(t->name, "self_attn.q_proj.weight")) {
        uint8_t *fp8 = calloc((size_t)t->n_elements, 1);
        assert_int_equal(strata_safetensors_writer_add(w, t->name, STRATA_DTYPE_F8_E4M3, 2, t->shape, fp8,
                                                       (uint64_t)t->n_elements),
                         STRATA_OK);
        free(fp8);
        char name[256];
        float scale = 0.5f;
        snprintf(name, sizeof name, "%.*s.weight_scale", (int)(strlen(t->name) - 7), t->name);
        assert_int_equal(strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &scale, 4), STRATA_OK);
        snprintf(name, sizeof name, "%.*s.input_scale", (int)(strlen(t->name) - 7), t->name);
        assert_int_equal(strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 0, NULL, &scale, 4), STRATA_OK);
        *keep = false;
    } else if (strstr(t->name, "mlp.down_proj.weight")) {
        int64_t packed[2] = {t->shape[0], (t->shape[1] + 1) / 2};
        uint8_t *bytes = calloc((size_t)(packed[0] * packed[1]), 1);
        assert_int_equal(strata_safetensors_writer_add(w, t->name, STRATA_DTYPE_U8, 2, packed, bytes,
                                                       (uint64_t)(packed[0] * packed[1])),
                         STRATA_OK);
        free(bytes);
        *keep = false;
    }
}

static void test_quantized_checkpoint(void **state)
{
    (void)state;
    char *dir = synth("quantized", STRATA_FAMILY_LLAMA, false, 2);
    rewrite(dir, quantize_edit, NULL);
    strata_model *m = NULL;
    /* Without a quantization config the FP8 weights are not accepted as such. */
    assert_int_equal(strata_model_open(dir, &m), STRATA_ERR_MISMATCH);
    ASSERT_ERROR_MENTIONS("model.layers.0.mlp.down_proj.weight", "shape [64, 86]");

    char *hf = test_path(dir, "hf_quant_config.json");
    const char *json = "{\"producer\":{\"name\":\"modelopt\",\"version\":\"0.29.0\"},\"quantization\":{"
                       "\"quant_algo\":\"NVFP4\",\"kv_cache_quant_algo\":\"FP8\",\"group_size\":16,"
                       "\"exclude_modules\":[\"lm_head\"]}}";
    test_write_file(hf, json, strlen(json));
    assert_int_equal(strata_model_open(dir, &m), STRATA_OK);
    const strata_quant_info *q = strata_model_quantization(m);
    assert_non_null(q);
    assert_string_equal(q->source, "hf_quant_config.json");
    assert_string_equal(q->method, "modelopt");
    assert_string_equal(q->algo, "NVFP4");
    assert_string_equal(q->kv_cache, "FP8");
    assert_string_equal(q->producer, "modelopt 0.29.0");
    assert_int_equal(q->group_size, 16);
    assert_int_equal(q->n_excluded, 1);
    assert_string_equal(q->excluded[0], "lm_head");
    assert_int_equal(strata_model_unexpected_count(m), 0); /* the scales belong to q_proj */
    strata_model_close(m);

    char *report = NULL;
    strata_inspect_params params = {.json = true};
    assert_int_equal(strata_inspect(dir, &params, &report), STRATA_OK);
    assert_non_null(strstr(report, "\"quant_tensors\": 4"));
    assert_non_null(strstr(report, "\"algo\": \"NVFP4\""));
    strata_free(report);
    free(hf);
    free(dir);
}

/* strata generate --fp8-block: the linears as DeepSeek ships them, FP8 128x128 blocks whose
 * values are the bf16 model's quantized by strata's FP8-block quantizer; the router stays
 * bf16; the config says quant_method fp8. */
static void test_fp8_block_source(void **state)
{
    (void)state;
    char *dirs[2];
    strata_model *m[2];
    for (int fp8 = 0; fp8 < 2; fp8++) {
        dirs[fp8] = test_path(test_dir, fp8 ? "ds-fp8" : "ds-bf16");
        strata_synth_params p = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 4, .n_layers = 2, .hidden_size = 256,
                                 .n_experts = 4, .fp8_block = fp8};
        assert_int_equal(strata_synth_model(dirs[fp8], &p), STRATA_OK);
        assert_int_equal(strata_model_open(dirs[fp8], &m[fp8]), STRATA_OK);
    }
    const strata_quant_info *q = strata_model_quantization(m[1]);
    assert_non_null(q);
    assert_string_equal(q->method, "fp8");
    assert_null(strata_model_quantization(m[0]));
    const strata_safetensors *bf16 = strata_model_tensors(m[0]), *fp8 = strata_model_tensors(m[1]);
    const strata_tensor *w = strata_safetensors_find(bf16, "model.layers.1.mlp.experts.2.down_proj.weight");
    const strata_tensor *c = strata_safetensors_find(fp8, "model.layers.1.mlp.experts.2.down_proj.weight");
    const strata_tensor *s = strata_safetensors_find(fp8, "model.layers.1.mlp.experts.2.down_proj.weight_scale_inv");
    assert_non_null(w);
    assert_non_null(c);
    assert_non_null(s);
    assert_int_equal(c->dtype, STRATA_DTYPE_F8_E4M3);
    assert_int_equal(s->dtype, STRATA_DTYPE_F32);
    int64_t N = w->shape[0], K = w->shape[1];
    assert_int_equal(s->shape[0], (N + 127) / 128);
    assert_int_equal(s->shape[1], (K + 127) / 128);
    strata_quant_params params = {.format = STRATA_FORMAT_FP8_BLOCK};
    strata_qtensor held = {.codes = (uint8_t *)c->data, .scales = (void *)s->data};
    float *expected = malloc((size_t)(N * K) * sizeof *expected), *got = malloc((size_t)(N * K) * sizeof *got);
    assert_int_equal(strata_fake_quantize(&params, STRATA_DTYPE_BF16, w->data, N, K, expected), STRATA_OK);
    assert_int_equal(strata_dequantize(&params, &held, N, K, got), STRATA_OK);
    assert_memory_equal(expected, got, (size_t)(N * K) * sizeof *got);
    const strata_tensor *r0 = strata_safetensors_find(bf16, "model.layers.1.mlp.gate.weight");
    const strata_tensor *r1 = strata_safetensors_find(fp8, "model.layers.1.mlp.gate.weight");
    assert_non_null(r1);
    assert_int_equal(r1->dtype, STRATA_DTYPE_BF16);
    assert_memory_equal(r0->data, r1->data, r0->n_bytes);
    for (int i = 0; i < 2; i++) {
        strata_model_close(m[i]);
        free(dirs[i]);
    }
    free(expected);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_family_round_trips), cmocka_unit_test(test_generator_is_deterministic),
        cmocka_unit_test(test_checkpoint_check),         cmocka_unit_test(test_quantized_checkpoint),
        cmocka_unit_test(test_fp8_block_source),
    };
    return cmocka_run_group_tests(tests, test_setup_dir, test_teardown_dir);
}
