/*
 * test_moe_calib.c — mixture-of-experts calibration: the peer maximum of the experts'
 * input amax (and that every layer calls the collective), calibration with every expert
 * leaving the layer output unchanged, and a model whose router never picks one expert
 * quantizing completely with finite, nonzero, peer-synced scales.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calib/layer_calib.h"
#include "forward/model_forward.h"
#include "helpers.h"

/* ---------------------------------------------------------------- peer maximum */

typedef struct counting_collective {
    int max_calls, sum_calls;
} counting_collective;

static strata_status count_max(void *ctx, float *values, size_t n)
{
    (void)values;
    (void)n;
    ((counting_collective *)ctx)->max_calls++;
    return STRATA_OK;
}

static strata_status count_sum(void *ctx, int64_t *values, size_t n)
{
    (void)values;
    (void)n;
    ((counting_collective *)ctx)->sum_calls++;
    return STRATA_OK;
}

static void peer_max_per_family(void **state)
{
    (void)state;
    /* q, three experts' gate/up/down, a shared expert's gate. */
    strata_linear linears[11] = {{.name = "q", .role = STRATA_LINEAR_Q, .expert = -1}};
    for (int e = 0; e < 3; e++) {
        linears[1 + 3 * e] = (strata_linear){.name = "gate", .role = STRATA_LINEAR_GATE, .expert = e};
        linears[2 + 3 * e] = (strata_linear){.name = "up", .role = STRATA_LINEAR_UP, .expert = e};
        linears[3 + 3 * e] = (strata_linear){.name = "down", .role = STRATA_LINEAR_DOWN, .expert = e};
    }
    linears[10] = (strata_linear){.name = "shared", .role = STRATA_LINEAR_GATE, .expert = -1, .shared_expert = true};
    strata_layer layer = {.index = 0, .linears = linears, .n_linears = 11, .is_moe = true};
    linear_calib calib[11] = {0};
    layer_calib lc = {.layer = &layer, .linears = calib};
    float amax[11] = {9.0f, 1.0f, 1.0f, 4.0f, 2.5f, 2.5f, 7.0f, 0.0f, 0.0f, 0.0f, 100.0f};
    for (int i = 0; i < 11; i++) calib[i] = (linear_calib){.desc = &linears[i], .quantized = true,
                                                          .input_amax = amax[i], .tokens = amax[i] > 0 ? 5 : 0};
    counting_collective counts = {0};
    calib_collective coll = {.ctx = &counts, .max_f32 = count_max, .sum_i64 = count_sum};
    assert_int_equal(layer_calib_sync(&lc, &coll), STRATA_OK);
    assert_int_equal(counts.max_calls, 1);
    assert_int_equal(counts.sum_calls, 1);
    assert_true(calib[0].input_amax == 9.0f);    /* attention: its own */
    assert_true(calib[10].input_amax == 100.0f); /* shared expert: an ordinary MLP */
    for (int e = 0; e < 3; e++) {
        assert_true(calib[1 + 3 * e].input_amax == 2.5f); /* gate/up: max over every expert's gate/up */
        assert_true(calib[2 + 3 * e].input_amax == 2.5f);
        assert_true(calib[3 + 3 * e].input_amax == 7.0f); /* down: its own family */
    }
    assert_int_equal(calib[7].tokens, 0); /* expert 2 saw nothing and says so */
    assert_int_equal(linear_calib_expert_family(&calib[10]), -1);

    /* A dense layer calls the collective as well: every participant, every layer. */
    strata_layer dense = {.index = 1, .linears = linears, .n_linears = 1};
    layer_calib lc_dense = {.layer = &dense, .linears = calib};
    assert_int_equal(layer_calib_sync(&lc_dense, &coll), STRATA_OK);
    assert_int_equal(counts.max_calls, 2);
}

/* ---------------------------------------------------------------- models */

enum { SEQ_LEN = 16, N_SEQ = 4 };

static char *moe_model(const char *name)
{
    char *dir = test_path(test_dir, name);
    strata_synth_params params = {.family = STRATA_FAMILY_QWEN3_MOE, .seed = 5, .n_layers = 2, .n_experts = 8};
    assert_int_equal(strata_synth_model(dir, &params), STRATA_OK);
    return dir;
}

static int32_t *calibration_tokens(int64_t vocab)
{
    int32_t *tokens = malloc(N_SEQ * SEQ_LEN * sizeof *tokens);
    for (int i = 0; i < N_SEQ * SEQ_LEN; i++) tokens[i] = (int32_t)((i * 7919 + 13) % vocab);
    return tokens;
}

typedef struct token_counter {
    const strata_layer *layer;
    int64_t *tokens; /* per linear of the layer */
} token_counter;

static strata_status count_tokens(void *ctx, const strata_linear *linear, const float *x, int64_t n_tokens,
                                  const int64_t *token_index, const float *weights, int64_t chunk_first_token)
{
    (void)x;
    (void)token_index;
    (void)weights;
    (void)chunk_first_token;
    token_counter *c = ctx;
    c->tokens[linear - c->layer->linears] += n_tokens;
    return STRATA_OK;
}

/* Layer 0 over the calibration tokens; returns its output and counts each linear's tokens. */
static float *run_layer0(const strata_model *model, bool all_experts, int64_t *tokens)
{
    const strata_arch *arch = strata_model_arch(model);
    token_counter counter = {.layer = &arch->layers[0], .tokens = tokens};
    forward_hooks hooks = {.ctx = &counter, .observe_input = count_tokens};
    forward_config config = {.precision = GEMM_F32, .hooks = &hooks, .n_hooks = 1, .observe_all_experts = all_experts};
    int32_t *ids = calibration_tokens(arch->vocab_size);
    float *hidden = malloc((size_t)(N_SEQ * SEQ_LEN * arch->hidden_size) * sizeof *hidden);
    assert_int_equal(forward_embed(model, ids, N_SEQ * SEQ_LEN, hidden), STRATA_OK);
    rope_table rope;
    assert_int_equal(rope_table_create(arch, SEQ_LEN, &rope), STRATA_OK);
    strata_status status = forward_layer(model, 0, &config, &rope, hidden, N_SEQ, SEQ_LEN);
    if (status != STRATA_OK) fail_msg("%s", strata_last_error());
    rope_table_free(&rope);
    free(ids);
    return hidden;
}

static void all_experts_leaves_the_output_unchanged(void **state)
{
    (void)state;
    char *dir = moe_model("all-experts");
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    const strata_layer *layer = &arch->layers[0];
    int64_t *topk = calloc(layer->n_linears, sizeof *topk), *all = calloc(layer->n_linears, sizeof *all);
    float *a = run_layer0(model, false, topk), *b = run_layer0(model, true, all);
    assert_memory_equal(a, b, (size_t)(N_SEQ * SEQ_LEN * arch->hidden_size) * sizeof *a);
    int64_t routed = 0, rows = N_SEQ * SEQ_LEN;
    for (size_t i = 0; i < layer->n_linears; i++) {
        const strata_linear *l = &layer->linears[i];
        if (l->expert < 0) {
            assert_int_equal(topk[i], all[i]); /* attention and router: unchanged */
            continue;
        }
        assert_int_equal(all[i], rows); /* every expert saw every token */
        if (l->role == STRATA_LINEAR_GATE) routed += topk[i];
    }
    assert_int_equal(routed, rows * arch->moe.top_k);
    free(a);
    free(b);
    free(topk);
    free(all);
    strata_model_close(model);
    free(dir);
}

/* ---------------------------------------------------------------- an expert no token reaches */

static uint16_t bf16_at(const uint16_t *row, int64_t i) { return row[i]; }

/* Rewrites every layer's router so that the last expert never makes the top-k: rows
 * (2j, 2j+1) become (v_j, -v_j), so for every token one of each pair scores >= 0, the
 * last row is zero, and ties go to the lower index. */
static void starve_last_expert(const char *dir, int n_experts, int top_k, int n_layers)
{
    char *path = test_path(dir, "model.safetensors");
    strata_safetensors *st;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_true(n_experts - 1 >= 2 * top_k);
    for (int L = 0; L < n_layers; L++) {
        char name[96];
        snprintf(name, sizeof name, "model.layers.%d.mlp.gate.weight", L);
        const strata_tensor *t = strata_safetensors_find(st, name);
        assert_non_null(t);
        assert_int_equal(t->dtype, STRATA_DTYPE_BF16);
        int64_t H = t->shape[1];
        uint16_t *w = malloc((size_t)t->n_bytes);
        memcpy(w, t->data, (size_t)t->n_bytes);
        for (int j = 0; j < top_k; j++)
            for (int64_t c = 0; c < H; c++) w[(2 * j + 1) * H + c] = (uint16_t)(bf16_at(w + 2 * j * H, c) ^ 0x8000u);
        memset(w + (int64_t)(n_experts - 1) * H, 0, (size_t)H * sizeof *w);
        assert_int_equal(pwrite(fd, w, (size_t)t->n_bytes, (off_t)t->file_offset), (ssize_t)t->n_bytes);
        free(w);
    }
    close(fd);
    strata_safetensors_close(st);
    free(path);
}

static float scalar(const strata_safetensors *st, const char *module, const char *what)
{
    char name[160];
    snprintf(name, sizeof name, "%s.%s", module, what);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t) fail_msg("%s is missing", name);
    assert_int_equal(t->dtype, STRATA_DTYPE_F32);
    float v;
    memcpy(&v, t->data, 4);
    if (!(isfinite(v) && v > 0)) fail_msg("%s is %g", name, v);
    return v;
}

static void nonzero_block_scales(const strata_safetensors *st, const char *module)
{
    char name[160];
    snprintf(name, sizeof name, "%s.weight_scale", module);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t) fail_msg("%s is missing", name);
    const uint8_t *b = t->data;
    for (uint64_t i = 0; i < t->n_bytes; i++)
        if (b[i] == 0 || (b[i] & 0x7f) == 0x7f) fail_msg("%s[%llu] is %#x", name, (unsigned long long)i, b[i]);
}

static void quantize(const char *model, const char *out, int32_t *tokens, bool all_experts)
{
    strata_quantize_params p = {.model_dir = model, .output_dir = out, .scheme = STRATA_SCHEME_NVFP4,
                                .tokens = tokens, .n_samples = N_SEQ, .seq_len = SEQ_LEN,
                                .calib_all_experts = all_experts};
    strata_quantize_result r;
    strata_status status = strata_quantize_model(&p, &r);
    if (status != STRATA_OK) fail_msg("%s", strata_last_error());
}

static void starved_expert_is_quantized_with_peer_scales(void **state)
{
    (void)state;
    char *dir = moe_model("starved");
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    int E = arch->moe.n_experts, k = arch->moe.top_k, n_layers = arch->n_layers;
    int64_t vocab = arch->vocab_size;
    strata_model_close(model);
    starve_last_expert(dir, E, k, n_layers);

    /* By construction the last expert gets no token. */
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_layer *layer0 = &strata_model_arch(model)->layers[0];
    int64_t *counts = calloc(layer0->n_linears, sizeof *counts);
    free(run_layer0(model, false, counts));
    for (size_t i = 0; i < layer0->n_linears; i++)
        if (layer0->linears[i].expert == E - 1) assert_int_equal(counts[i], 0);
    free(counts);
    strata_model_close(model);

    int32_t *tokens = calibration_tokens(vocab);
    char *out = test_path(test_dir, "starved-nvfp4");
    quantize(dir, out, tokens, false);
    char *weights = test_path(out, "model.safetensors"), *summary_path = test_path(out, "quant_summary.json");
    strata_safetensors *st;
    assert_int_equal(strata_safetensors_open(weights, &st), STRATA_OK);
    static const char *const PROJ[3] = {"gate_proj", "up_proj", "down_proj"};
    for (int L = 0; L < n_layers; L++) {
        float peer[3] = {0, 0, 0};
        for (int e = 0; e < E; e++) {
            float global[3];
            for (int p = 0; p < 3; p++) {
                char module[128];
                snprintf(module, sizeof module, "model.layers.%d.mlp.experts.%d.%s", L, e, PROJ[p]);
                float input = scalar(st, module, "input_scale");
                global[p] = scalar(st, module, "weight_scale_2");
                nonzero_block_scales(st, module);
                if (e == 0) peer[p] = input;
                if (input != peer[p]) fail_msg("%s input_scale %g differs from its peers' %g", module, input, peer[p]);
            }
            assert_true(global[0] == global[1]); /* w1/w3 share one global scale */
        }
        assert_true(peer[0] == peer[1]); /* gate and up read the same input */
    }
    strata_safetensors_close(st);
    char *summary = test_read_file(summary_path, NULL);
    assert_non_null(strstr(summary, "\"peer_max_input\": true"));
    assert_non_null(strstr(summary, "\"expert_calibration\": \"top-k\""));
    free(summary);

    /* --calib-all-experts: the starved expert is calibrated on every token. */
    char *out_all = test_path(test_dir, "starved-all");
    quantize(dir, out_all, tokens, true);
    char *summary_all_path = test_path(out_all, "quant_summary.json");
    summary = test_read_file(summary_all_path, NULL);
    assert_null(strstr(summary, "\"peer_max_input\""));
    assert_non_null(strstr(summary, "\"expert_calibration\": \"all-experts\""));
    free(summary);

    free(summary_all_path);
    free(out_all);
    free(weights);
    free(summary_path);
    free(out);
    free(tokens);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peer_max_per_family),
        cmocka_unit_test_setup_teardown(all_experts_leaves_the_output_unchanged, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(starved_expert_is_quantized_with_peer_scales, test_setup_dir,
                                        test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
