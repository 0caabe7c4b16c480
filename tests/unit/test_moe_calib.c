/*
 * test_moe_calib.c — mixture-of-experts calibration: the peer maximum of the experts'
 * input amax (and that every layer calls the collective), calibration with every expert
 * leaving the layer output unchanged, and a model whose router never picks one expert
 * quantizing completely with finite, nonzero, peer-synced scales, experts stored stacked
 * quantizing to the same bytes as the same experts stored separately, and the shared MoE
 * models (qwen3moe-47m, the synthetic Mixtral) calibrated on so little text that some
 * experts see nothing, still quantized completely. An FP8 block-scaled checkpoint
 * (DeepSeek-V3's layout) quantizes as the values it represents.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/layer_calib.h"
#include "forward/model_forward.h"
#include "helpers.h"
#include "pipeline/memory_plan.h"

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

/* An NVFP4 output of a MoE model: every quantized routed expert of every layer has finite, nonzero
 * block and global scales, gate and up share the global scale, and every expert's input
 * scale equals its peers' per family (gate/up, down). The output must also load and run:
 * its perplexity over a few tokens is finite. */
static void assert_experts_complete(const char *out, const int32_t *tokens, int64_t n_tokens)
{
    strata_model *model;
    if (strata_model_open(out, &model) != STRATA_OK) fail_msg("%s", strata_last_error());
    const strata_arch *arch = strata_model_arch(model);
    const strata_safetensors *st = strata_model_tensors(model);
    for (int L = 0; L < arch->n_layers; L++) {
        const strata_layer *layer = &arch->layers[L];
        float peer[2] = {0, 0}, gate_global = 0;
        for (size_t k = 0; k < layer->n_linears; k++) {
            const strata_linear *l = &layer->linears[k];
            char scale_name[160];
            snprintf(scale_name, sizeof scale_name, "%s.weight_scale", l->name);
            if (l->expert < 0 || !strata_safetensors_find(st, scale_name)) continue; /* not an expert, or excluded */
            int family = l->role == STRATA_LINEAR_DOWN;
            float input = scalar(st, l->name, "input_scale"), global = scalar(st, l->name, "weight_scale_2");
            nonzero_block_scales(st, l->name);
            if (peer[family] == 0) peer[family] = input;
            if (input != peer[family]) fail_msg("%s input_scale %g differs from its peers' %g", l->name, input, peer[family]);
            if (l->role == STRATA_LINEAR_GATE) gate_global = global;
            if (l->role == STRATA_LINEAR_UP && global != gate_global)
                fail_msg("%s weight_scale_2 %g differs from its gate's %g", l->name, global, gate_global);
        }
    }
    strata_eval_params ep = {.window = 8};
    strata_eval_result er;
    if (strata_eval_perplexity(model, tokens, n_tokens, &ep, &er) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_true(isfinite(er.perplexity) && er.perplexity > 1);
    strata_model_close(model);
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
    char *summary_path = test_path(out, "quant_summary.json");
    assert_experts_complete(out, tokens, N_SEQ * SEQ_LEN);
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
    free(summary_path);
    free(out);
    free(tokens);
    free(dir);
}

/* ---------------------------------------------------------------- stacked experts */

/* The separate-experts form of a stacked checkpoint: each slice of an (n_experts, rows,
 * in) stack becomes the tensor <block>.experts.E.<proj>.weight; everything else is copied. */
static char *unstack(const char *stacked_dir, const char *name)
{
    strata_model *model;
    assert_int_equal(strata_model_open(stacked_dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    assert_true(arch->moe.stacked);
    const strata_safetensors *st = strata_model_tensors(model);
    char *dir = test_path(test_dir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char *from = test_path(stacked_dir, "config.json"), *to = test_path(dir, "config.json");
    size_t length;
    char *config = test_read_file(from, &length);
    test_write_file(to, config, length);
    strata_writer_params wp = {.dir = dir};
    strata_safetensors_writer *w;
    assert_int_equal(strata_safetensors_writer_create(&wp, &w), STRATA_OK);
    for (size_t i = 0; i < strata_safetensors_count(st); i++) {
        const strata_tensor *t = strata_safetensors_at(st, i);
        if (t->n_dims != 3) {
            assert_int_equal(strata_safetensors_writer_add(w, t->name, t->dtype, t->n_dims, t->shape, t->data, t->n_bytes),
                             STRATA_OK);
            continue;
        }
        size_t row_bytes = (size_t)t->shape[2] * strata_dtype_size(t->dtype);
        int written = 0;
        for (int L = 0; L < arch->n_layers; L++)
            for (size_t k = 0; k < arch->layers[L].n_linears; k++) {
                const strata_linear *l = &arch->layers[L].linears[k];
                if (!l->weight || strcmp(l->weight, t->name) != 0) continue;
                char weight[160];
                snprintf(weight, sizeof weight, "%s.weight", l->name);
                const uint8_t *slice = (const uint8_t *)t->data +
                                       ((size_t)l->stack_index * (size_t)t->shape[1] + (size_t)l->row_offset) * row_bytes;
                int64_t shape[2] = {l->n_out, l->n_in};
                assert_int_equal(strata_safetensors_writer_add(w, weight, t->dtype, 2, shape, slice,
                                                               (uint64_t)l->n_out * row_bytes),
                                 STRATA_OK);
                written++;
            }
        assert_true(written == arch->moe.n_experts || written == 2 * arch->moe.n_experts);
    }
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    free(config);
    free(from);
    free(to);
    strata_model_close(model);
    return dir;
}

/* The checkpoint directory the quantizations below give the output `out`. */
static void checkpoint_of(const char *out, char *path, size_t size) { snprintf(path, size, "%s-checkpoint", out); }

static char *quantize_to(const char *model, const char *name, const int32_t *tokens, strata_scheme scheme, const char *algo)
{
    static const char *const EXCLUDE[] = {"*.experts.3.*"}; /* one expert stays bf16 */
    char *out = test_path(test_dir, name), ckpt[4096];
    checkpoint_of(out, ckpt, sizeof ckpt);
    strata_quantize_params p = {.model_dir = model, .output_dir = out, .checkpoint_dir = ckpt, .scheme = scheme,
                                .algo = algo,
                                .tokens = tokens, .n_samples = N_SEQ, .seq_len = SEQ_LEN,
                                .exclude = EXCLUDE, .n_exclude = 1};
    strata_quantize_result r;
    if (strata_quantize_model(&p, &r) != STRATA_OK) fail_msg("%s: %s", model, strata_last_error());
    return out;
}

/* Experts stored stacked quantize exactly as the same experts stored separately: one
 * scale set per expert (never one for the stack), written per expert. */
static void stacked_experts_quantize_like_separate_ones(void **state)
{
    (void)state;
    char *stacked = test_path(test_dir, "stacked");
    strata_synth_params params = {.family = STRATA_FAMILY_QWEN3_MOE, .seed = 5, .n_layers = 2, .n_experts = 8,
                                  .stacked_experts = true};
    assert_int_equal(strata_synth_model(stacked, &params), STRATA_OK);
    char *separate = unstack(stacked, "separate");
    int32_t *tokens = calibration_tokens(512);
    const struct { strata_scheme scheme; const char *algo; } RUNS[] = {{STRATA_SCHEME_NVFP4, "max"},
                                                                       {STRATA_SCHEME_INT4, "gptq"}};
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++) {
        char a_name[64], b_name[64];
        snprintf(a_name, sizeof a_name, "stacked-%zu", i);
        snprintf(b_name, sizeof b_name, "separate-%zu", i);
        char *a = quantize_to(stacked, a_name, tokens, RUNS[i].scheme, RUNS[i].algo);
        char *b = quantize_to(separate, b_name, tokens, RUNS[i].scheme, RUNS[i].algo);
        char *a_file = test_path(a, "model.safetensors"), *b_file = test_path(b, "model.safetensors");
        size_t a_length, b_length;
        char *a_bytes = test_read_file(a_file, &a_length), *b_bytes = test_read_file(b_file, &b_length);
        assert_int_equal(a_length, b_length);
        assert_memory_equal(a_bytes, b_bytes, a_length);

        /* Per expert: its own scales, and the excluded expert's slice as bf16. */
        strata_safetensors *st;
        assert_int_equal(strata_safetensors_open(a_file, &st), STRATA_OK);
        const strata_tensor *s0 = strata_safetensors_find(st, "model.layers.0.mlp.experts.0.gate_proj.weight_scale");
        const strata_tensor *s1 = strata_safetensors_find(st, "model.layers.0.mlp.experts.1.gate_proj.weight_scale");
        assert_non_null(s0);
        assert_non_null(s1);
        assert_int_equal(s0->n_bytes, s1->n_bytes);
        assert_true(memcmp(s0->data, s1->data, s0->n_bytes) != 0);
        const strata_tensor *kept = strata_safetensors_find(st, "model.layers.1.mlp.experts.3.up_proj.weight");
        assert_non_null(kept);
        assert_int_equal(kept->dtype, STRATA_DTYPE_BF16);
        assert_null(strata_safetensors_find(st, "model.layers.1.mlp.experts.3.up_proj.weight_scale"));
        assert_null(strata_safetensors_find(st, "model.layers.0.mlp.experts.gate_up_proj"));
        strata_safetensors_close(st);
        free(a_bytes);
        free(b_bytes);
        free(a_file);
        free(b_file);
        free(a);
        free(b);
    }
    free(tokens);
    free(separate);
    free(stacked);
}

/* ---------------------------------------------------------------- an FP8 block-scaled source */

static const strata_linear *linear_of_weight(const strata_arch *arch, const char *tensor)
{
    for (int L = 0; L < arch->n_layers; L++)
        for (size_t k = 0; k < arch->layers[L].n_linears; k++)
            if (strcmp(arch->layers[L].linears[k].weight, tensor) == 0) return &arch->layers[L].linears[k];
    return NULL;
}

/* Two forms of a model: every quantizable linear as FP8 128x128 blocks (F8_E4M3 weight,
 * F32 weight_scale_inv, config quant_method fp8: DeepSeek-V3's layout) in fp8_dir, and
 * the fp32 values those blocks represent in f32_dir; every other tensor copied to both. */
static void fp8_block_twins(const char *src_dir, const char *fp8_dir, const char *f32_dir)
{
    strata_model *model;
    assert_int_equal(strata_model_open(src_dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    const strata_safetensors *st = strata_model_tensors(model);
    char *config_path = test_path(src_dir, "config.json");
    size_t length;
    char *config = test_read_file(config_path, &length);
    char *end = strrchr(config, '}');
    assert_non_null(end);
    *end = '\0';
    const char *dirs[2] = {fp8_dir, f32_dir};
    strata_safetensors_writer *w[2];
    for (int d = 0; d < 2; d++) {
        assert_int_equal(mkdir(dirs[d], 0755), 0);
        char *path = test_path(dirs[d], "config.json");
        char *text = malloc(length + 256);
        snprintf(text, length + 256, "%s%s}\n", config,
                 d == 0 ? ", \"quantization_config\": {\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", "
                          "\"activation_scheme\": \"dynamic\", \"weight_block_size\": [128, 128]}"
                        : "");
        test_write_file(path, text, strlen(text));
        free(text);
        free(path);
        strata_writer_params wp = {.dir = dirs[d]};
        assert_int_equal(strata_safetensors_writer_create(&wp, &w[d]), STRATA_OK);
    }
    strata_quant_params fp8 = {.format = STRATA_FORMAT_FP8_BLOCK};
    for (size_t i = 0; i < strata_safetensors_count(st); i++) {
        const strata_tensor *t = strata_safetensors_at(st, i);
        const strata_linear *l = linear_of_weight(arch, t->name);
        if (!l || !l->quantizable) {
            for (int d = 0; d < 2; d++)
                assert_int_equal(strata_safetensors_writer_add(w[d], t->name, t->dtype, t->n_dims, t->shape, t->data,
                                                               t->n_bytes),
                                 STRATA_OK);
            continue;
        }
        int64_t N = l->n_out, K = l->n_in;
        strata_quant_shape shape;
        assert_int_equal(strata_quant_shape_get(&fp8, N, K, &shape), STRATA_OK);
        strata_qtensor q = {.codes = malloc(shape.code_bytes), .scales = malloc(shape.scale_bytes)};
        float *values = malloc((size_t)(N * K) * sizeof *values);
        assert_int_equal(strata_quantize(&fp8, t->dtype, t->data, N, K, &q), STRATA_OK);
        assert_int_equal(strata_dequantize(&fp8, &q, N, K, values), STRATA_OK);
        char scale_name[160];
        snprintf(scale_name, sizeof scale_name, "%s.weight_scale_inv", l->name);
        int64_t scale_shape[2] = {shape.scale_rows, shape.scale_cols};
        assert_int_equal(strata_safetensors_writer_add(w[0], t->name, STRATA_DTYPE_F8_E4M3, 2, t->shape, q.codes,
                                                       shape.code_bytes),
                         STRATA_OK);
        assert_int_equal(strata_safetensors_writer_add(w[0], scale_name, STRATA_DTYPE_F32, 2, scale_shape, q.scales,
                                                       shape.scale_bytes),
                         STRATA_OK);
        assert_int_equal(strata_safetensors_writer_add(w[1], t->name, STRATA_DTYPE_F32, 2, t->shape, values,
                                                       (uint64_t)(N * K) * sizeof *values),
                         STRATA_OK);
        free(values);
        free(q.codes);
        free(q.scales);
    }
    for (int d = 0; d < 2; d++) {
        assert_int_equal(strata_safetensors_writer_finish(w[d]), STRATA_OK);
        strata_safetensors_writer_free(w[d]);
    }
    free(config);
    free(config_path);
    strata_model_close(model);
}

static uint16_t bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* Quantizes the FP8 block-scaled twin of src and its fp32-values twin to NVFP4 and checks the
 * outputs are the same bytes, except the linears the output leaves unquantized, which must
 * be bf16 of the FP8 values: the return value counts them (expert 3, which quantize_to
 * excludes, or a name holding `excluded`). */
static int quantize_fp8_twins_alike(const char *src, const char *excluded, const int32_t *tokens, char **fp8_out)
{
    char *fp8 = test_path(test_dir, "fp8-block"), *f32 = test_path(test_dir, "fp8-values");
    fp8_block_twins(src, fp8, f32);
    char *a = quantize_to(fp8, "from-fp8", tokens, STRATA_SCHEME_NVFP4, "max");
    char *b = quantize_to(f32, "from-values", tokens, STRATA_SCHEME_NVFP4, "max");
    char *a_file = test_path(a, "model.safetensors"), *b_file = test_path(b, "model.safetensors");
    strata_safetensors *sa, *sb;
    assert_int_equal(strata_safetensors_open(a_file, &sa), STRATA_OK);
    assert_int_equal(strata_safetensors_open(b_file, &sb), STRATA_OK);
    assert_int_equal(strata_safetensors_count(sa), strata_safetensors_count(sb));
    int n_excluded = 0;
    for (size_t i = 0; i < strata_safetensors_count(sb); i++) {
        const strata_tensor *y = strata_safetensors_at(sb, i), *x = strata_safetensors_find(sa, y->name);
        if (!x) fail_msg("%s is missing from the output of the FP8 source", y->name);
        if (x->dtype == y->dtype) {
            assert_int_equal(x->n_bytes, y->n_bytes);
            if (memcmp(x->data, y->data, x->n_bytes) != 0) fail_msg("%s differs", y->name);
            continue;
        }
        /* An unquantized linear: bf16 of the dequantized weight. */
        assert_int_equal(x->dtype, STRATA_DTYPE_BF16);
        assert_int_equal(y->dtype, STRATA_DTYPE_F32);
        if (!strstr(y->name, ".experts.3.") && !(excluded && strstr(y->name, excluded)))
            fail_msg("%s was left unquantized", y->name);
        const uint16_t *xb = x->data;
        const float *yf = y->data;
        for (int64_t k = 0; k < y->n_elements; k++)
            if (xb[k] != bf16_round(yf[k])) fail_msg("%s[%lld] is not bf16 of the FP8 value", y->name, (long long)k);
        n_excluded++;
    }
    strata_safetensors_close(sa);
    strata_safetensors_close(sb);
    test_remove_tree(b);
    free(a_file);
    free(b_file);
    free(b);
    free(fp8);
    free(f32);
    *fp8_out = a;
    return n_excluded;
}

/* An FP8 block-scaled checkpoint quantizes as the values it represents: every expert,
 * the starved one included, gets its scales from the dequantized weights, and an
 * excluded expert is written as bf16 of them. A checkpoint quantized otherwise is refused. */
static void fp8_block_source_is_dequantized_first(void **state)
{
    (void)state;
    char *src = moe_model("fp8-source");
    starve_last_expert(src, 8, 2, 2);
    int32_t *tokens = calibration_tokens(512);
    char *a;
    assert_int_equal(quantize_fp8_twins_alike(src, NULL, tokens, &a), 2 * 3); /* two layers x gate, up, down */
    assert_experts_complete(a, tokens, N_SEQ * SEQ_LEN);

    /* Quantizing the NVFP4 output again is refused by name. */
    char *again = test_path(test_dir, "again");
    strata_quantize_params p = {.model_dir = a, .output_dir = again, .scheme = STRATA_SCHEME_FP8, .tokens = tokens,
                                .n_samples = N_SEQ, .seq_len = SEQ_LEN};
    strata_quantize_result r;
    assert_int_equal(strata_quantize_model(&p, &r), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("already quantized", "modelopt", "quant_method fp8");
    assert_false(access(again, F_OK) == 0);

    free(again);
    free(a);
    free(tokens);
    free(src);
}

/* DeepSeek-V3 as DeepSeek ships it (every linear but the router in FP8 128x128 blocks with
 * weight_scale_inv): the same NVFP4 output as from the values, its latent attention (left
 * unquantized by the recipe, but for o_proj) written as bf16 of the FP8 values. */
static void fp8_block_deepseek_source(void **state)
{
    (void)state;
    char *src = test_path(test_dir, "deepseek");
    strata_synth_params params = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 5, .n_layers = 3,
                                  .config_patch = "{\"intermediate_size\": 352}"};
    assert_int_equal(strata_synth_model(src, &params), STRATA_OK);
    int32_t *tokens = calibration_tokens(512);
    char *a;
    /* q_a, q_b, kv_a, kv_b in each of 3 layers; gate, up, down of expert 3 in the 2 MoE layers */
    assert_int_equal(quantize_fp8_twins_alike(src, ".self_attn.", tokens, &a), 3 * 4 + 2 * 3);
    free(a);
    free(tokens);
    free(src);
}

/* ---------------------------------------------------------------- experts in groups */

/* One quantization of model with the routed experts materialized `group` at a time, or (group
 * 0, max_memory set) as many as fit the limit. */
static char *quantize_grouped(const char *model, const char *name, const int32_t *tokens, int64_t n_tokens,
                              strata_scheme scheme, const char *algo, bool all_experts, int group, uint64_t max_memory)
{
    char *out = test_path(test_dir, name), ckpt[4096];
    checkpoint_of(out, ckpt, sizeof ckpt);
    strata_quantize_params p = {.model_dir = model, .output_dir = out, .checkpoint_dir = ckpt, .scheme = scheme,
                                .algo = algo, .tokens = tokens, .n_samples = n_tokens / SEQ_LEN, .seq_len = SEQ_LEN,
                                .calib_all_experts = all_experts, .experts_per_group = group,
                                .max_memory = max_memory};
    strata_quantize_result r;
    if (strata_quantize_model(&p, &r) != STRATA_OK) fail_msg("%s: %s", model, strata_last_error());
    if (max_memory) assert_true(r.experts_per_group > 1 && r.experts_per_group < 8);
    else assert_int_equal(r.experts_per_group, group);
    return out;
}

/* A memory limit under which the model's MoE layers take 2 or 3 experts per group. */
static uint64_t limit_for_small_groups(const char *model, int64_t n_tokens, bool gptq)
{
    strata_model *m;
    assert_int_equal(strata_model_open(model, &m), STRATA_OK);
    memory_plan one;
    memory_plan_request request = {.arch = strata_model_arch(m), .precision = GEMM_BF16, .n_samples = n_tokens / SEQ_LEN,
                                   .seq_len = SEQ_LEN, .gptq = gptq, .weight_bits = 4, .experts_per_group = 1};
    assert_int_equal(memory_plan_make(&request, &one), STRATA_OK);
    strata_model_close(m);
    return one.fixed_bytes + one.expert_bytes * 3 / 2;
}

/* The grouping of experts decides memory, never the output: the same checkpoint and summary
 * with one expert at a time, three (groups that straddle nothing in particular), as many as
 * a memory limit allows (which also spills the activation store) and the whole layer, for max and GPTQ (whose Hessians a grouped layer accumulates group by group:
 * from quantized inputs for NVFP4, from the calibration inputs for weight-only NVFP4), with
 * the model's routing and with every expert. */
static void expert_groups_give_the_same_output(const char *model, const int32_t *tokens, int64_t n_tokens,
                                               size_t max_runs)
{
    const struct { strata_scheme scheme; const char *algo; bool all; } RUNS[] = {
        {STRATA_SCHEME_NVFP4, "max", false}, {STRATA_SCHEME_NVFP4, "gptq", false},
        {STRATA_SCHEME_NVFP4_WEIGHT_ONLY, "gptq", true}, {STRATA_SCHEME_NVFP4, "max", true}};
    size_t n_runs = sizeof RUNS / sizeof RUNS[0];
    if (max_runs < n_runs) n_runs = max_runs;
#ifdef STRATA_SANITIZE_BUILD
    n_runs = 1; /* the sanitizers see the same code with max */
#endif
    for (size_t r = 0; r < n_runs; r++) {
        char *whole =
            quantize_grouped(model, "whole", tokens, n_tokens, RUNS[r].scheme, RUNS[r].algo, RUNS[r].all, 0, 0);
        const int groups[] = {1, 3, 0};
        for (size_t g = 0; g < 3; g++) {
            uint64_t limit = groups[g] ? 0 : limit_for_small_groups(model, n_tokens, strcmp(RUNS[r].algo, "gptq") == 0);
            char *grouped = quantize_grouped(model, "grouped", tokens, n_tokens, RUNS[r].scheme, RUNS[r].algo,
                                             RUNS[r].all, groups[g], limit);
            test_assert_same_file(whole, grouped, "model.safetensors");
            test_assert_same_file(whole, grouped, "quant_summary.json");
            test_assert_same_file(whole, grouped, "hf_quant_config.json");
            /* The checkpoint too: GPTQ's experts, read back from the spill file, are saved. */
            char ckpt_whole[4096], ckpt_grouped[4096];
            checkpoint_of(whole, ckpt_whole, sizeof ckpt_whole);
            checkpoint_of(grouped, ckpt_grouped, sizeof ckpt_grouped);
            for (int l = 0; l < 3; l++) {
                char layer[32];
                snprintf(layer, sizeof layer, "layer-%05d.safetensors", l);
                test_assert_same_file(ckpt_whole, ckpt_grouped, layer);
            }
            test_remove_tree(ckpt_grouped);
            test_remove_tree(grouped);
            free(grouped);
        }
        char ckpt_whole[4096];
        checkpoint_of(whole, ckpt_whole, sizeof ckpt_whole);
        test_remove_tree(ckpt_whole);
        test_remove_tree(whole);
        free(whole);
    }
}

static void expert_groups_deepseek(void **state)
{
    (void)state;
    char *src = test_path(test_dir, "deepseek");
    strata_synth_params params = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 9, .n_layers = 3,
                                  .config_patch = "{\"intermediate_size\": 352}"};
    assert_int_equal(strata_synth_model(src, &params), STRATA_OK);
    int32_t *tokens = calibration_tokens(512);
    expert_groups_give_the_same_output(src, tokens, N_SEQ * SEQ_LEN, 4);
    free(tokens);
    free(src);
}

/* Long sequences, one per chunk, and a limit whose token-major window holds fewer chunks than
 * there are: the grouped layer runs window by window (each reading the experts again) and
 * still writes the whole layer's bytes; so does GPTQ, whose grouped Hessian pass goes group
 * by group over every window. */
static void expert_groups_over_windows(void **state)
{
    (void)state;
#ifdef STRATA_SANITIZE_BUILD
    skip(); /* 16k tokens of a 1024-wide model: once, in release */
#endif
    enum { SEQ = 4096, N = 4 };
    char *src = test_path(test_dir, "deepseek-wide");
    strata_synth_params params = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 3, .n_layers = 2, .hidden_size = 1024,
                                  .config_patch = "{\"intermediate_size\": 1024, \"max_position_embeddings\": 4096, "
                                                  "\"num_attention_heads\": 4, \"num_key_value_heads\": 4}"};
    assert_int_equal(strata_synth_model(src, &params), STRATA_OK);
    int32_t *tokens = malloc(sizeof *tokens * N * SEQ);
    for (int i = 0; i < N * SEQ; i++) tokens[i] = (int32_t)((i * 7919 + 13) % 512);
    strata_model *model;
    assert_int_equal(strata_model_open(src, &model), STRATA_OK);
    const char *algos[] = {"max", "gptq"};
    /* GPTQ's plan adds the Hessians (two doubles per entry) and the held codes. */
    const uint64_t limits[] = {(uint64_t)700 << 20, (uint64_t)740 << 20};
    for (int a = 0; a < 2; a++) {
        memory_plan plan;
        memory_plan_request request = {.arch = strata_model_arch(model), .precision = GEMM_BF16, .n_samples = N,
                                       .seq_len = SEQ, .max_memory = limits[a], .experts_per_group = 5,
                                       .gptq = a == 1, .weight_bits = 4};
        if (memory_plan_make(&request, &plan) != STRATA_OK) fail_msg("%s: %s", algos[a], strata_last_error());
        assert_int_equal(plan.chunk_sequences, 1);
        assert_true(plan.window_sequences > 1 && plan.window_sequences < N); /* windows of several chunks */
    }
    strata_model_close(model);
    for (int a = 0; a < 2; a++) {
        char *outs[2];
        for (int run = 0; run < 2; run++) {
            outs[run] = test_path(test_dir, run ? "windowed" : "whole");
            strata_quantize_params p = {.model_dir = src, .output_dir = outs[run], .scheme = STRATA_SCHEME_NVFP4,
                                        .algo = algos[a], .tokens = tokens, .n_samples = N, .seq_len = SEQ,
                                        .experts_per_group = run ? 5 : 0, .max_memory = run ? limits[a] : 0};
            strata_quantize_result r;
            if (strata_quantize_model(&p, &r) != STRATA_OK) fail_msg("%s: %s", algos[a], strata_last_error());
            assert_int_equal(r.experts_per_group, run ? 5 : 0);
        }
        test_assert_same_file(outs[0], outs[1], "model.safetensors");
        test_assert_same_file(outs[0], outs[1], "quant_summary.json");
        for (int run = 0; run < 2; run++) {
            test_remove_tree(outs[run]);
            free(outs[run]);
        }
    }
    free(tokens);
    free(src);
}

static void expert_groups_qwen3moe(void **state)
{
    (void)state;
#ifdef STRATA_SANITIZE_BUILD
    skip(); /* the same code as the synthetic DeepSeek's, on a bigger model with trained routing */
#endif
    const char *shared = test_shared_dir();
    if (!shared) skip();
    char *models = test_path(shared, "models"), *model = test_path(models, "qwen3moe-47m");
    strata_model *m;
    assert_int_equal(strata_model_open(model, &m), STRATA_OK);
    int32_t *tokens = calibration_tokens(strata_model_arch(m)->vocab_size);
    strata_model_close(m);
    /* max and GPTQ with the trained routing; the synthetic DeepSeek runs the other two */
    expert_groups_give_the_same_output(model, tokens, N_SEQ * SEQ_LEN, 2);
    free(tokens);
    free(model);
    free(models);
}

/* ---------------------------------------------------------------- the shared MoE models */

/* qwen3moe-47m (trained routing) and the synthetic Mixtral calibrated on one short
 * sentence: some experts receive no token, and the NVFP4 output is still complete. */
static void shared_models_quantize_every_expert(void **state)
{
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) skip();
    /* Mixtral has 4 experts, top-2: four tokens leave some of them without any. */
    static const struct { const char *name; int64_t n_samples, seq_len; } MODELS[] = {
        {"qwen3moe-47m", 2, 8}, {"stories260K-moe-mixtral-synthetic", 1, 4}};
    static const char TEXT[] = "Once upon a time, a little girl named Lily found a big red ball in the park.";
    for (size_t i = 0; i < sizeof MODELS / sizeof MODELS[0]; i++) {
        char *models = test_path(shared, "models"), *model = test_path(models, MODELS[i].name);
        strata_tokenizer *tokenizer;
        if (strata_tokenizer_load(model, &tokenizer) != STRATA_OK) fail_msg("%s", strata_last_error());
        int32_t *ids;
        int64_t n_ids;
        assert_int_equal(strata_tokenizer_encode(tokenizer, TEXT, strlen(TEXT), true, &ids, &n_ids), STRATA_OK);
        assert_true(n_ids >= 16);
        char *out = test_path(test_dir, MODELS[i].name);
        strata_quantize_params p = {.model_dir = model, .output_dir = out, .scheme = STRATA_SCHEME_NVFP4,
                                    .tokens = ids, .n_samples = MODELS[i].n_samples, .seq_len = MODELS[i].seq_len};
        strata_quantize_result r;
        if (strata_quantize_model(&p, &r) != STRATA_OK) fail_msg("%s: %s", model, strata_last_error());
        char *summary_path = test_path(out, "quant_summary.json");
        char *summary = test_read_file(summary_path, NULL);
        if (!strstr(summary, "\"peer_max_input\": true")) fail_msg("%s: every expert received tokens", MODELS[i].name);
        assert_experts_complete(out, ids, n_ids);
        free(summary);
        free(summary_path);
        free(out);
        strata_free(ids);
        strata_tokenizer_free(tokenizer);
        free(model);
        free(models);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(peer_max_per_family),
        cmocka_unit_test_setup_teardown(all_experts_leaves_the_output_unchanged, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(starved_expert_is_quantized_with_peer_scales, test_setup_dir,
                                        test_teardown_dir),
        cmocka_unit_test_setup_teardown(stacked_experts_quantize_like_separate_ones, test_setup_dir,
                                        test_teardown_dir),
        cmocka_unit_test_setup_teardown(fp8_block_source_is_dequantized_first, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(fp8_block_deepseek_source, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(expert_groups_deepseek, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(expert_groups_qwen3moe, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(expert_groups_over_windows, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(shared_models_quantize_every_expert, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
