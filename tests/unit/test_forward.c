/*
 * test_forward.c — the forward pass's contracts that the golden files do not reach: hooks
 * (observers see every linear and every routed token; fake-quant hooks replace inputs and
 * weights), chunking that does not change results, and bad input (token ids outside the
 * vocabulary, sequences beyond the rope limit, NaN/Inf weights) failing with messages
 * that name the file, tensor and place.
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "forward/model_forward.h"
#include "kernels/gemm.h"
#include "helpers.h"

enum { SEQ_LEN = 19, N_SEQ = 3 };

static char *model_dir(strata_family family, bool stacked)
{
    static int made;
    char name[64];
    snprintf(name, sizeof name, "%s%s-%d", strata_family_name(family), stacked ? "-stacked" : "", made++);
    char *dir = test_path(test_dir, name);
    strata_synth_params params = {.family = family, .seed = 3, .n_layers = 2, .stacked_experts = stacked};
    assert_int_equal(strata_synth_model(dir, &params), STRATA_OK);
    return dir;
}

static float *embedded(const strata_model *model)
{
    const strata_arch *arch = strata_model_arch(model);
    int32_t tokens[N_SEQ * SEQ_LEN];
    for (int i = 0; i < N_SEQ * SEQ_LEN; i++) tokens[i] = (int32_t)((i * 37 + 5) % arch->vocab_size);
    float *hidden = malloc((size_t)(N_SEQ * SEQ_LEN * arch->hidden_size) * sizeof *hidden);
    assert_int_equal(forward_embed(model, tokens, N_SEQ * SEQ_LEN, hidden), STRATA_OK);
    return hidden;
}

/* Runs layer 0 over the standard tokens with config; returns the output. */
static float *layer0(const strata_model *model, const forward_config *config)
{
    rope_table rope;
    assert_int_equal(rope_table_create(strata_model_arch(model), SEQ_LEN, &rope), STRATA_OK);
    float *hidden = embedded(model);
    strata_status status = forward_layer(model, 0, config, &rope, hidden, N_SEQ, SEQ_LEN);
    if (status != STRATA_OK) fail_msg("%s", strata_last_error());
    rope_table_free(&rope);
    return hidden;
}

static size_t hidden_bytes(const strata_model *model)
{
    return (size_t)(N_SEQ * SEQ_LEN * strata_model_arch(model)->hidden_size) * sizeof(float);
}

/* ---------------------------------------------------------------- chunking */

static void chunking_does_not_change_results(void **state)
{
    (void)state;
    strata_family families[] = {STRATA_FAMILY_LLAMA, STRATA_FAMILY_QWEN3_MOE};
    for (int f = 0; f < 2; f++) {
        for (int p = 0; p < 2; p++) {
            char *dir = model_dir(families[f], false);
            strata_model *model;
            assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
            forward_config whole = {.precision = p ? GEMM_F32 : GEMM_BF16, .memory_budget = (size_t)1 << 30};
            forward_config one = whole;
            one.memory_budget = 1; /* one sequence per chunk */
            assert_int_equal(decoder_chunk_sequences(strata_model_arch(model), &one, SEQ_LEN), 1);
            assert_true(decoder_chunk_sequences(strata_model_arch(model), &whole, SEQ_LEN) >= N_SEQ);
            float *a = layer0(model, &whole), *b = layer0(model, &one);
            if (memcmp(a, b, hidden_bytes(model)) != 0)
                fail_msg("%s %s: chunking changed the output", strata_family_name(families[f]), p ? "fp32" : "bf16");
            free(a);
            free(b);
            strata_model_close(model);
            test_remove_tree(dir);
            free(dir);
        }
    }
}

/* A DeepSeek-V3 MoE layer run token-major in steps, its experts materialized two at a time
 * across one-sequence chunks (what a layer bigger than memory does), gives the bytes of the
 * same layer loaded whole and run chunk by chunk; and a grouped layer run by
 * decoder_layer_forward too. */
static void grouped_experts_token_major_match_chunked(void **state)
{
    (void)state;
    char *dir = test_path(test_dir, "deepseek");
    strata_synth_params sp = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 4, .n_layers = 2};
    assert_int_equal(strata_synth_model(dir, &sp), STRATA_OK);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *a = strata_model_arch(model);
    assert_true(a->layers[1].is_moe);
    rope_table rope;
    assert_int_equal(rope_table_create(a, SEQ_LEN, &rope), STRATA_OK);
    forward_config one = {.precision = GEMM_BF16, .memory_budget = 1}; /* one sequence per chunk */
    int64_t H = a->hidden_size, rows = SEQ_LEN, k = a->moe.top_k, n = N_SEQ * SEQ_LEN;
    float *chunked = embedded(model), *grouped = embedded(model), *direct = embedded(model);

    layer_weights whole, two;
    assert_int_equal(layer_weights_load(model, 1, GEMM_BF16, NULL, 0, &whole), STRATA_OK);
    assert_int_equal(layer_weights_load_grouped(model, 1, GEMM_BF16, NULL, 0, 2, &two), STRATA_OK);
    assert_int_equal(two.experts_per_group, 2);
    for (int c = 0; c < N_SEQ; c++) {
        assert_int_equal(decoder_layer_forward(&whole, &one, &rope, chunked + c * rows * H, 1, SEQ_LEN, c * rows), STRATA_OK);
        assert_int_equal(decoder_layer_forward(&two, &one, &rope, direct + c * rows * H, 1, SEQ_LEN, c * rows), STRATA_OK);
    }

    decoder_scratch *ds;
    assert_int_equal(decoder_scratch_create(a, &one, rows, &ds), STRATA_OK);
    float *normed = malloc((size_t)(n * H) * sizeof *normed), *out = calloc((size_t)(n * H), sizeof *out);
    float *weights = malloc((size_t)(n * k) * sizeof *weights);
    int32_t *experts = malloc((size_t)(n * k) * sizeof *experts);
    for (int c = 0; c < N_SEQ; c++)
        assert_int_equal(decoder_moe_begin(&two, ds, &rope, grouped + c * rows * H, 1, SEQ_LEN, c * rows,
                                           normed + c * rows * H, experts + c * rows * k, weights + c * rows * k),
                         STRATA_OK);
    for (int g = 0; g < a->moe.n_experts; g += 2) {
        for (int c = 0; c < N_SEQ; c++)
            assert_int_equal(decoder_moe_experts(&two, ds, normed + c * rows * H, rows, experts + c * rows * k,
                                                 weights + c * rows * k, g, 2, c * rows, out + c * rows * H),
                             STRATA_OK);
        layer_weights_release_experts(&two, g, 2);
    }
    for (int c = 0; c < N_SEQ; c++)
        assert_int_equal(decoder_moe_finish(&two, ds, grouped + c * rows * H, normed + c * rows * H, rows, c * rows,
                                            out + c * rows * H),
                         STRATA_OK);
    size_t bytes = (size_t)(n * H) * sizeof(float);
    if (memcmp(chunked, grouped, bytes) != 0) fail_msg("token-major grouped experts changed the output");
    if (memcmp(chunked, direct, bytes) != 0) fail_msg("a grouped layer run chunk by chunk changed the output");

    decoder_scratch_free(ds);
    layer_weights_free(&whole);
    layer_weights_free(&two);
    free(normed);
    free(out);
    free(weights);
    free(experts);
    free(chunked);
    free(grouped);
    free(direct);
    rope_table_free(&rope);
    strata_model_close(model);
    test_remove_tree(dir);
    free(dir);
}

/* ---------------------------------------------------------------- hooks */

typedef struct tally {
    int64_t inputs_seen;       /* observe_input calls */
    int64_t expert_tokens;     /* tokens handed to routed experts' gate_proj */
    int64_t router_tokens;
    int top_k;
    bool ascending;            /* token_index ascending within each call */
    bool weights_valid;        /* routing weights in (0, 1] */
    int64_t outputs_seen;
} tally;

static strata_status count_input(void *ctx, const strata_linear *l, const float *x, int64_t n, const int64_t *index,
                                 const float *weights, int64_t first)
{
    (void)x, (void)first;
    tally *t = ctx;
    t->inputs_seen++;
    if (l->role == STRATA_LINEAR_ROUTER) t->router_tokens += n;
    if (l->expert >= 0 && l->role == STRATA_LINEAR_GATE) {
        t->expert_tokens += n;
        assert_non_null(index);
        assert_non_null(weights);
        for (int64_t i = 0; i < n; i++) {
            if (i > 0 && index[i] <= index[i - 1]) t->ascending = false;
            if (!(weights[i] > 0.0f && weights[i] <= 1.0f)) t->weights_valid = false;
        }
    } else if (l->expert < 0) {
        assert_null(index);
    }
    return STRATA_OK;
}

static strata_status count_output(void *ctx, const strata_linear *l, const float *y, int64_t n)
{
    (void)l, (void)y, (void)n;
    ((tally *)ctx)->outputs_seen++;
    return STRATA_OK;
}

static void observers_see_every_linear_and_routed_token(void **state)
{
    (void)state;
    char *dir = model_dir(STRATA_FAMILY_QWEN3_MOE, true);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    tally t = {.top_k = arch->moe.top_k, .ascending = true, .weights_valid = true};
    forward_hooks hooks = {.ctx = &t, .observe_input = count_input, .observe_output = count_output};
    forward_config config = {.precision = GEMM_F32, .hooks = &hooks, .n_hooks = 1};
    float *with = layer0(model, &config);
    assert_int_equal(t.router_tokens, N_SEQ * SEQ_LEN);
    assert_int_equal(t.expert_tokens, N_SEQ * SEQ_LEN * arch->moe.top_k);
    assert_true(t.ascending);
    assert_true(t.weights_valid);
    assert_int_equal(t.inputs_seen, t.outputs_seen);
    /* attention (4) + router + 3 per expert that received tokens: at least 5 + 3 */
    assert_true(t.inputs_seen >= 8);
    /* Observing changes nothing. */
    forward_config plain = {.precision = GEMM_F32};
    float *without = layer0(model, &plain);
    assert_memory_equal(with, without, hidden_bytes(model));
    free(with);
    free(without);
    strata_model_close(model);
    test_remove_tree(dir);
    free(dir);
}

static strata_status keep_input(void *ctx, const strata_linear *l, float *x, int64_t n)
{
    (void)ctx, (void)l, (void)x, (void)n;
    return STRATA_OK;
}

static strata_status keep_weight(void *ctx, const strata_linear *l, float *w)
{
    (void)ctx, (void)l, (void)w;
    return STRATA_OK;
}

static strata_status zero_input(void *ctx, const strata_linear *l, float *x, int64_t n)
{
    (void)ctx;
    memset(x, 0, (size_t)(n * l->n_in) * sizeof *x);
    return STRATA_OK;
}

static strata_status zero_weight(void *ctx, const strata_linear *l, float *w)
{
    (void)ctx;
    if (l->role == STRATA_LINEAR_O || l->role == STRATA_LINEAR_DOWN)
        memset(w, 0, (size_t)(l->n_out * l->n_in) * sizeof *w);
    return STRATA_OK;
}

static void fake_quant_hooks_replace_inputs_and_weights(void **state)
{
    (void)state;
    char *dir = model_dir(STRATA_FAMILY_QWEN2_MOE, false); /* biases, shared expert */
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    for (int p = 0; p < 2; p++) {
        gemm_precision precision = p ? GEMM_F32 : GEMM_BF16;
        forward_config plain = {.precision = precision};
        float *reference = layer0(model, &plain);
        /* Identity transforms give the same bits (bf16 weights survive fp32 exactly). */
        forward_hooks identity = {.quantize_input = keep_input, .quantize_weight = keep_weight};
        forward_config with_identity = {.precision = precision, .hooks = &identity, .n_hooks = 1};
        float *same = layer0(model, &with_identity);
        assert_memory_equal(reference, same, hidden_bytes(model));
        /* Zeroing o_proj and down_proj weights leaves only the residual stream... */
        forward_hooks zero_w = {.quantize_weight = zero_weight};
        forward_config zeroed = {.precision = precision, .hooks = &zero_w, .n_hooks = 1};
        float *residual = layer0(model, &zeroed);
        float *input = embedded(model);
        /* ...up to the biases of o_proj (none in qwen2) and the shared expert's gate mix. */
        int64_t n = N_SEQ * SEQ_LEN * strata_model_arch(model)->hidden_size;
        for (int64_t i = 0; i < n; i++) assert_true(fabsf(residual[i] - input[i]) <= 1e-6f * (1 + fabsf(input[i])));
        free(residual);
        free(input);
        free(reference);
        free(same);
    }
    /* Zeroing every input: attention and MLP outputs are their biases only. */
    char *llama = model_dir(STRATA_FAMILY_LLAMA, false);
    strata_model *dense;
    assert_int_equal(strata_model_open(llama, &dense), STRATA_OK);
    forward_hooks zero_x = {.quantize_input = zero_input};
    forward_config zeroed = {.precision = GEMM_BF16, .hooks = &zero_x, .n_hooks = 1};
    float *out = layer0(dense, &zeroed), *input = embedded(dense);
    assert_memory_equal(out, input, hidden_bytes(dense)); /* llama has no biases */
    free(out);
    free(input);
    strata_model_close(dense);
    strata_model_close(model);
    free(llama);
    free(dir);
}

/* A weight used in place (the model's mapping, at whatever address its tensor has) gives
 * the same products, bit for bit, as the aligned copy gemm_weight_create makes, in both
 * precisions and for row counts below and above the GEMM's padding. */
static void gemm_weight_in_place_matches_copy(void **state)
{
    (void)state;
    enum { N_OUT = 96, N_IN = 1040, MAX_ROWS = 40 };
    uint64_t seed = 7;
    for (int p = 0; p < 2; p++) {
        gemm_precision precision = p ? GEMM_F32 : GEMM_BF16;
        size_t element = p ? 4 : 2, bytes = (size_t)N_OUT * N_IN * element;
        unsigned char *storage = malloc(bytes + 64), *in_place = storage + element; /* misaligned */
        float *x = malloc((size_t)MAX_ROWS * N_IN * sizeof *x);
        float *y_copy = malloc((size_t)MAX_ROWS * N_OUT * sizeof *y_copy);
        float *y_place = malloc((size_t)MAX_ROWS * N_OUT * sizeof *y_place);
        for (size_t i = 0; i < (size_t)N_OUT * N_IN; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            float v = (float)((int64_t)(seed >> 40) - (1 << 23)) / (float)(1 << 23);
            if (p) memcpy(in_place + i * 4, &v, 4);
            else {
                uint32_t bits;
                memcpy(&bits, &v, 4);
                uint16_t half = (uint16_t)(bits >> 16);
                memcpy(in_place + i * 2, &half, 2);
            }
        }
        for (size_t i = 0; i < (size_t)MAX_ROWS * N_IN; i++) x[i] = (float)((int)(i * 7919 % 2001) - 1000) / 512.0f;
        strata_dtype dtype = p ? STRATA_DTYPE_F32 : STRATA_DTYPE_BF16;
        gemm_weight *copy = NULL, *place = NULL;
        assert_int_equal(gemm_weight_create(precision, dtype, in_place, N_OUT, N_IN, "copy", &copy), STRATA_OK);
        assert_int_equal(gemm_weight_borrow(precision, in_place, N_OUT, N_IN, "in place", &place), STRATA_OK);
        static const int64_t ROWS[] = {1, 5, 16, 17, MAX_ROWS};
        for (size_t r = 0; r < sizeof ROWS / sizeof ROWS[0]; r++) {
            int64_t m = ROWS[r];
            uint16_t *xb = malloc((size_t)m * N_IN * sizeof *xb);
            const void *xin = x;
            if (!p) {
                gemm_round_to_bf16(x, xb, (size_t)m * N_IN);
                xin = xb;
            }
            assert_int_equal(gemm_linear(copy, xin, N_IN, m, y_copy, N_OUT), STRATA_OK);
            assert_int_equal(gemm_linear(place, xin, N_IN, m, y_place, N_OUT), STRATA_OK);
            assert_memory_equal(y_copy, y_place, (size_t)m * N_OUT * sizeof *y_copy);
            free(xb);
        }
        gemm_weight_free(copy);
        gemm_weight_free(place);
        free(storage);
        free(x);
        free(y_copy);
        free(y_place);
    }
}

/* ---------------------------------------------------------------- bad input */

static void token_outside_vocabulary_is_named(void **state)
{
    (void)state;
    char *dir = model_dir(STRATA_FAMILY_LLAMA, false);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    int32_t tokens[4] = {1, 2, 512, 3};
    float hidden[4 * 128];
    assert_int_equal(forward_embed(model, tokens, 4, hidden), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("token 2 is id 512", "[0, 512)");
    tokens[2] = -1;
    assert_int_equal(forward_embed(model, tokens, 4, hidden), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("token 2 is id -1");
    strata_eval_params params = {.window = 2};
    strata_eval_result result;
    assert_int_equal(strata_eval_perplexity(model, tokens, 4, &params, &result), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("evaluation text", "token 2 is id -1");
    strata_model_close(model);
    free(dir);
}

/* The child's work: evaluating (and inspecting with --stats) the model in dir. */
static int eval_child(const char *dir)
{
    strata_model *model = NULL;
    int32_t tokens[2 * 64];
    for (int i = 0; i < 2 * 64; i++) tokens[i] = (i * 31 + 7) % 256;
    strata_eval_params params = {.window = 64};
    strata_eval_result result;
    char *report = NULL;
    strata_inspect_params inspect = {.stats = true};
    bool ok = strata_model_open(dir, &model) == STRATA_OK &&
              strata_eval_perplexity(model, tokens, 2 * 64, &params, &result) == STRATA_OK &&
              strata_inspect(dir, &inspect, &report) == STRATA_OK;
    return ok ? 0 : 1;
}

/* Peak RSS in bytes of eval_child(dir) in a new process of this program (a fork alone would
 * inherit a thread pool without its threads), so the peak is that work's alone; 0 when it
 * failed. */
static uint64_t eval_peak_rss(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        execl("/proc/self/exe", "test_forward", "--eval-child", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) return 0;
    return (uint64_t)usage.ru_maxrss << 10;
}

/* Evaluation gives each layer's mapped pages back when it is done (so does inspect
 * --stats per tensor): the peak resident set of 16 layers is that of 4, not 12 layers' worth
 * (23 MB each in bf16) more. */
static void eval_resident_memory_is_flat_in_layers(void **state)
{
    (void)state;
#ifdef STRATA_SANITIZE_BUILD
    skip(); /* the sanitizers' shadow memory is not the engine's */
#endif
    uint64_t peak[2];
    const int layers[2] = {4, 16};
    for (int i = 0; i < 2; i++) {
        char name[32];
        snprintf(name, sizeof name, "deep-%d", layers[i]);
        char *dir = test_path(test_dir, name);
        strata_synth_params params = {.family = STRATA_FAMILY_LLAMA, .seed = 1, .n_layers = layers[i],
                                      .hidden_size = 1024};
        assert_int_equal(strata_synth_model(dir, &params), STRATA_OK);
        peak[i] = eval_peak_rss(dir);
        assert_true(peak[i] > 0);
        free(dir);
    }
    uint64_t layer_bytes = 2ull * (3 * 1024 * 1024 + 3 * 1024 * 2752); /* attention + MLP, bf16 */
    if (peak[1] > peak[0] + 2 * layer_bytes)
        fail_msg("peak RSS %.0f MiB with 16 layers, %.0f MiB with 4 (a layer is %.0f MiB)", peak[1] / 1048576.0,
                 peak[0] / 1048576.0, layer_bytes / 1048576.0);
}

static void sequence_beyond_rope_limit_is_refused(void **state)
{
    (void)state;
    char *dir = model_dir(STRATA_FAMILY_LLAMA, false);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *arch = strata_model_arch(model);
    int64_t too_long = arch->max_position_embeddings + 1;
    int32_t *tokens = calloc((size_t)too_long, sizeof *tokens);
    strata_eval_params params = {.window = too_long};
    strata_eval_result result;
    assert_int_equal(strata_eval_perplexity(model, tokens, too_long, &params, &result), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("sequence length 2049", "max_position_embeddings 2048", "no scaling");
    params.window = arch->max_position_embeddings;
    assert_int_equal(strata_eval_perplexity(model, tokens, too_long, &params, &result), STRATA_OK);
    assert_int_equal(result.n_windows, 1);
    assert_true(isfinite(result.perplexity));
    free(tokens);
    strata_model_close(model);
    free(dir);
}

/* Overwrites element (i0, i1, i2) of a bf16 tensor of the model in dir with bits. */
static void poke_bf16(const char *dir, const char *tensor, int64_t index, uint16_t bits)
{
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_tensor *t = strata_safetensors_find(strata_model_tensors(model), tensor);
    assert_non_null(t);
    assert_int_equal(t->dtype, STRATA_DTYPE_BF16);
    char *path = strdup(strata_safetensors_shard_path(strata_model_tensors(model), t->shard));
    off_t offset = (off_t)(t->file_offset + (uint64_t)index * 2);
    strata_model_close(model);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &bits, 2, offset), 2);
    close(fd);
    free(path);
}

static void nan_and_inf_weights_are_named(void **state)
{
    (void)state;
    forward_config config = {.precision = GEMM_BF16};
    char *dir = model_dir(STRATA_FAMILY_LLAMA, false);
    /* q_proj is (128, 128): element (3, 5). */
    poke_bf16(dir, "model.layers.0.self_attn.q_proj.weight", 3 * 128 + 5, 0x7fc0);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    rope_table rope;
    assert_int_equal(rope_table_create(strata_model_arch(model), SEQ_LEN, &rope), STRATA_OK);
    float *hidden = embedded(model);
    assert_int_equal(forward_layer(model, 0, &config, &rope, hidden, N_SEQ, SEQ_LEN), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS("model.safetensors", "model.layers.0.self_attn.q_proj.weight", "NaN at row 3, column 5");
    /* Layer 1 is intact. */
    assert_int_equal(forward_layer(model, 1, &config, &rope, hidden, N_SEQ, SEQ_LEN), STRATA_OK);
    free(hidden);
    rope_table_free(&rope);
    strata_model_close(model);
    free(dir);

    /* Inf inside a stacked expert tensor (n_experts, 2 * moe_intermediate, hidden). */
    dir = model_dir(STRATA_FAMILY_QWEN3_MOE, true);
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_tensor *t = strata_safetensors_find(strata_model_tensors(model), "model.layers.1.mlp.experts.gate_up_proj");
    assert_non_null(t);
    int64_t rows = t->shape[1], cols = t->shape[2];
    strata_model_close(model);
    poke_bf16(dir, "model.layers.1.mlp.experts.gate_up_proj", (2 * rows + rows / 2 + 1) * cols + 7, 0xff80);
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    assert_int_equal(rope_table_create(strata_model_arch(model), SEQ_LEN, &rope), STRATA_OK);
    hidden = embedded(model);
    assert_int_equal(forward_layer(model, 1, &config, &rope, hidden, N_SEQ, SEQ_LEN), STRATA_ERR_FORMAT);
    char where[128];
    snprintf(where, sizeof where, "Inf at [2, %lld, 7]", (long long)(rows / 2 + 1));
    ASSERT_ERROR_MENTIONS("model.layers.1.mlp.experts.gate_up_proj", where, "experts.2.up_proj");
    free(hidden);
    rope_table_free(&rope);
    strata_model_close(model);
    free(dir);

    /* NaN in a norm and in the embedding rows actually used. */
    dir = model_dir(STRATA_FAMILY_LLAMA, false);
    poke_bf16(dir, "model.layers.0.post_attention_layernorm.weight", 9, 0x7fc0);
    poke_bf16(dir, "model.embed_tokens.weight", 5 * 128 + 2, 0x7fc0); /* token 5 is the first input */
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    int32_t token = 5;
    float row[128];
    assert_int_equal(forward_embed(model, &token, 1, row), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS("model.embed_tokens.weight", "NaN in row 5, column 2");
    layer_weights lw;
    assert_int_equal(layer_weights_load(model, 0, GEMM_F32, NULL, 0, &lw), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS("model.layers.0.post_attention_layernorm.weight", "NaN at element 9");
    strata_model_close(model);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--eval-child") == 0) return eval_child(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chunking_does_not_change_results, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(grouped_experts_token_major_match_chunked, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(observers_see_every_linear_and_routed_token, test_setup_dir,
                                        test_teardown_dir),
        cmocka_unit_test_setup_teardown(fake_quant_hooks_replace_inputs_and_weights, test_setup_dir,
                                        test_teardown_dir),
        cmocka_unit_test(gemm_weight_in_place_matches_copy),
        cmocka_unit_test_setup_teardown(token_outside_vocabulary_is_named, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(sequence_beyond_rope_limit_is_refused, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(eval_resident_memory_is_flat_in_layers, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(nan_and_inf_weights_are_named, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
