/*
 * test_layerwise.c — the pieces of strata quantize below the CLI: the activation store
 * (RAM and spilled give the same bits, saved files verify), the resumable shard writer
 * (sealed shards adopted, their tensors skipped, the in-progress shard redone), the mse
 * clip search (a known optimum, never worse than max), and scheme input scales.
 */
#include <math.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "calib/scale_search.h"
#include "helpers.h"
#include "io/json.h"
#include "io/json_file.h"
#include "io/safetensors_resume.h"
#include "pipeline/act_store.h"
#include "pipeline/memory_plan.h"
#include "quant/format.h"
#include "quant/scheme.h"

static strata_status plan_for(const strata_arch *a, uint64_t limit, bool gptq, int group, memory_plan *out)
{
    memory_plan_request request = {.arch = a, .precision = GEMM_BF16, .n_samples = 8, .seq_len = 64,
                                   .max_memory = limit, .gptq = gptq, .weight_bits = 4, .experts_per_group = group};
    return memory_plan_make(&request, out);
}

/* A layer bigger than the limit: its routed experts are grouped, the largest group that
 * fits; one expert per group when little more than that fits; and below that the refusal
 * says what one expert at a time needs. Dense models are never grouped. */
static void test_memory_plan_groups_experts(void **state)
{
    (void)state;
    char *dir = test_path(test_dir, "ds");
    strata_synth_params sp = {.family = STRATA_FAMILY_DEEPSEEK_V3, .seed = 1, .n_layers = 3, .hidden_size = 256,
                              .n_experts = 64, .config_patch = "{\"moe_intermediate_size\": 1024}"};
    assert_int_equal(strata_synth_model(dir, &sp), STRATA_OK);
    strata_model *model;
    assert_int_equal(strata_model_open(dir, &model), STRATA_OK);
    const strata_arch *a = strata_model_arch(model);
    memory_plan whole, one, plan;
    assert_int_equal(plan_for(a, 0, false, 0, &whole), STRATA_OK);
    assert_int_equal(whole.experts_per_group, 0);
    assert_int_equal(plan_for(a, 0, false, 1, &one), STRATA_OK);
    assert_int_equal(one.experts_per_group, 1);
    assert_int_equal(one.expert_bytes, 3 * 256 * 1024 * 2); /* gate, up, down in bf16 */
    assert_true(one.fixed_bytes < whole.fixed_bytes);
    /* Room for one expert and ten more: eleven per group, within the limit. */
    uint64_t limit = one.fixed_bytes + 10 * one.expert_bytes + one.expert_bytes / 2;
    assert_int_equal(plan_for(a, limit, false, 0, &plan), STRATA_OK);
    assert_int_equal(plan.experts_per_group, 11);
    assert_true(plan.fixed_bytes <= limit);
    /* A limit whole layers fit: no grouping. */
    assert_int_equal(plan_for(a, whole.fixed_bytes + (64 << 20), false, 0, &plan), STRATA_OK);
    assert_int_equal(plan.experts_per_group, 0);
    /* Below one expert at a time: refused with the number. */
    assert_int_equal(plan_for(a, one.fixed_bytes - 1, false, 0, &plan),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("--max-memory", "with one routed expert at a time");
    /* GPTQ holds one group's Hessians (hidden^2 fp32 for gate/up, 1024^2 for down), not
     * every expert's. */
    memory_plan gptq_whole, gptq_one;
    assert_int_equal(plan_for(a, 0, true, 0, &gptq_whole), STRATA_OK);
    assert_int_equal(plan_for(a, 0, true, 1, &gptq_one), STRATA_OK);
    uint64_t hessians = 63ull * (256 * 256 + 1024 * 1024) * 4;
    assert_true(gptq_whole.layer_bytes - gptq_one.layer_bytes >= hessians);
    strata_model_close(model);
    free(dir);
}

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = ((float)(seed >> 8) / (float)(1u << 24) - 0.5f) * 8.0f;
    }
}

/* act_store_save's extra rows: the same piece `pieces` times. */
typedef struct appended_rows {
    const uint16_t *data;
    int pieces;
    size_t bytes;
} appended_rows;

static strata_status append_rows(void *ctx, const uint16_t **data, size_t *bytes)
{
    appended_rows *more = ctx;
    *data = more->data;
    *bytes = more->pieces-- > 0 ? more->bytes : 0;
    return STRATA_OK;
}

static void test_act_store_spill_matches_ram(void **state)
{
    (void)state;
    enum { ROWS = 5000, H = 64 };
    float *x = malloc(ROWS * H * sizeof *x), *a = malloc(ROWS * H * sizeof *a), *b = malloc(ROWS * H * sizeof *b);
    fill(x, ROWS * H, 3);
    act_store ram, disk;
    assert_int_equal(act_store_create(&ram, ROWS, H, false, test_dir), STRATA_OK);
    assert_int_equal(act_store_create(&disk, ROWS, H, true, test_dir), STRATA_OK);
    /* Written in uneven slices, read back whole after the swap. */
    for (int64_t r = 0; r < ROWS; r += 777) {
        int64_t n = ROWS - r < 777 ? ROWS - r : 777;
        assert_int_equal(act_store_write_next(&ram, r, n, x + r * H), STRATA_OK);
        assert_int_equal(act_store_write_next(&disk, r, n, x + r * H), STRATA_OK);
    }
    act_store_swap(&ram);
    act_store_swap(&disk);
    assert_int_equal(act_store_read(&ram, 0, ROWS, a), STRATA_OK);
    assert_int_equal(act_store_read(&disk, 0, ROWS, b), STRATA_OK);
    assert_memory_equal(a, b, ROWS * H * sizeof *a);
    for (int64_t i = 0; i < ROWS * H; i++) assert_true(fabsf(a[i] - x[i]) <= fabsf(x[i]) * 0x1p-8f);

    /* Saved by one, loaded by the other; a flipped byte is caught by the checksum. */
    char *path = test_path(test_dir, "inputs.bin");
    uint32_t crc = 0;
    uint64_t size = 0;
    assert_int_equal(act_store_save(&disk, path, NULL, NULL, &crc, &size), STRATA_OK);
    assert_int_equal(size, (uint64_t)ROWS * H * 2);
    act_store_swap(&ram);
    assert_int_equal(act_store_load(&ram, path, &crc, 0, ROWS), STRATA_OK);
    assert_int_equal(act_store_read(&ram, 0, ROWS, a), STRATA_OK);
    assert_memory_equal(a, b, ROWS * H * sizeof *a);

    /* A rank's share: rows [100, ROWS) of the file, spilled or not, with or without the CRC. */
    for (int spilled = 0; spilled < 2; spilled++) {
        act_store share;
        assert_int_equal(act_store_create(&share, ROWS - 100, H, spilled, test_dir), STRATA_OK);
        assert_int_equal(act_store_load(&share, path, spilled ? NULL : &crc, 100, ROWS), STRATA_OK);
        assert_int_equal(act_store_read(&share, 0, ROWS - 100, a), STRATA_OK);
        assert_memory_equal(a, b + 100 * H, (ROWS - 100) * H * sizeof *a);
        act_store_free(&share);
    }

    /* Rows from elsewhere (the other ranks' shares) appended after the store's own. */
    char *joined = test_path(test_dir, "joined.bin");
    appended_rows more = {.data = (const uint16_t *)(const void *)x, .pieces = 3, .bytes = 7 * H * 2};
    assert_int_equal(act_store_save(&disk, joined, append_rows, &more, &crc, &size), STRATA_OK);
    assert_int_equal(size, (uint64_t)(ROWS + 21) * H * 2);
    act_store tail;
    assert_int_equal(act_store_create(&tail, 21, H, false, NULL), STRATA_OK);
    assert_int_equal(act_store_load(&tail, joined, &crc, ROWS, ROWS + 21), STRATA_OK);
    assert_memory_equal(tail.ram[tail.current], x, 7 * H * 2);
    assert_memory_equal((const uint8_t *)tail.ram[tail.current] + 14 * H * 2, x, 7 * H * 2);
    act_store_free(&tail);
    assert_int_equal(act_store_load(&ram, joined, &crc, 0, ROWS), STRATA_ERR_FORMAT); /* sizes must agree */
    free(joined);

    size_t length = 0;
    char *bytes = test_read_file(path, &length);
    bytes[1234] ^= 1;
    test_write_file(path, bytes, length);
    assert_int_equal(act_store_load(&ram, path, &crc, 0, ROWS), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS("inputs.bin", "damaged checkpoint");
    free(bytes);
    free(path);
    act_store_free(&ram);
    act_store_free(&disk);
    free(x);
    free(a);
    free(b);
}

/* Adds tensors t0..t(n-1) of 1000 bytes each. */
static void add_tensors(strata_safetensors_writer *w, int n)
{
    static uint8_t data[1000];
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%02d", i);
        memset(data, i, sizeof data);
        int64_t shape = 1000;
        assert_int_equal(strata_safetensors_writer_add(w, name, STRATA_DTYPE_U8, 1, &shape, data, 1000), STRATA_OK);
    }
}

static void test_resumable_writer(void **state)
{
    (void)state;
    char *full = test_path(test_dir, "full"), *resumed = test_path(test_dir, "resumed");
    assert_true(mkdir(full, 0755) == 0 && mkdir(resumed, 0755) == 0);
    strata_writer_params wp = {.dir = full, .max_shard_bytes = 2500};
    strata_safetensors_writer *w = NULL;
    assert_int_equal(strata_safetensors_writer_create(&wp, &w), STRATA_OK);
    add_tensors(w, 10);
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);

    /* A first writer dies after 7 tensors: shards 1-3 (two tensors each) are sealed. */
    wp.dir = resumed;
    assert_int_equal(safetensors_writer_create_resumable(&wp, &w), STRATA_OK);
    add_tensors(w, 7);
    strata_safetensors_writer_free(w); /* unfinished: sealed shards stay */
    /* A file of someone else in the directory, and a sealed shard after a gap. */
    char *other = test_path(resumed, "config.json"), *gap = test_path(resumed, "shard-00009.safetensors");
    FILE *f = fopen(other, "w");
    assert_non_null(f);
    fputs("{}", f);
    fclose(f);
    assert_int_equal(link(other, gap), 0);
    assert_int_equal(safetensors_writer_create_resumable(&wp, &w), STRATA_OK);
    assert_int_equal(safetensors_writer_adopted_count(w), 3);
    assert_true(safetensors_writer_holds(w, "t05"));
    assert_false(safetensors_writer_holds(w, "t06"));
    struct stat st;
    assert_true(stat(gap, &st) != 0);   /* the writer's own stray shard went */
    assert_true(stat(other, &st) == 0); /* another file stays */
    add_tensors(w, 10); /* t00..t05 are skipped, t06.. redone */
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    for (int s = 1; s <= 5; s++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-00005.safetensors", s);
        test_assert_same_file(full, resumed, name);
        snprintf(name, sizeof name, "shard-%05d.safetensors", s);
        char *sealed = test_path(resumed, name);
        assert_true(stat(sealed, &st) != 0); /* renamed to its final name */
        free(sealed);
    }
    free(other);
    free(gap);
    free(full);
    free(resumed);
}

static void test_mse_clip(void **state)
{
    (void)state;
    /* One outlier per row: INT4 per-group max wastes levels on it, so mse clips below 1,
     * its error is below max's, and each group's clip is the best of the candidates. */
    enum { N = 8, K = 256 };
    float *w = malloc(N * K * sizeof *w), *q = malloc(N * K * sizeof *q);
    fill(w, N * K, 11);
    for (int r = 0; r < N; r++) w[r * K + 3] = 40.0f;
    strata_linear desc = {.name = "m", .n_out = N, .n_in = K};
    linear_calib c = {.desc = &desc, .quantized = true};
    const scheme_info *s = scheme_get(STRATA_SCHEME_INT4);
    assert_int_equal(mse_search_clip(s, &c, w), STRATA_OK);
    assert_int_equal(c.n_clip, N * (K / 128));
    double err_mse = 0, err_max = 0;
    strata_quant_params p = scheme_weight_params(s, STRATA_CONVENTION_MODELOPT, 0);
    assert_int_equal(quant_fake_clipped(&p, STRATA_DTYPE_F32, w, N, K, c.clip, q), STRATA_OK);
    for (int i = 0; i < N * K; i++) err_mse += (double)(w[i] - q[i]) * (w[i] - q[i]);
    assert_int_equal(strata_fake_quantize(&p, STRATA_DTYPE_F32, w, N, K, q), STRATA_OK);
    for (int i = 0; i < N * K; i++) err_max += (double)(w[i] - q[i]) * (w[i] - q[i]);
    assert_true(err_mse < err_max);
    assert_true(c.clip[0] < 1.0f); /* the group with the outlier is clipped */
    /* The known optimum: every group's clip gives that group the least squared error of all
     * the candidates (each tried on every group at once; a group's codes depend only on
     * its own scale). */
    enum { GROUPS = N * (K / 128) };
    double chosen[GROUPS] = {0}, best[GROUPS];
    float *clips = malloc(GROUPS * sizeof *clips);
    assert_int_equal(quant_fake_clipped(&p, STRATA_DTYPE_F32, w, N, K, c.clip, q), STRATA_OK);
    for (int i = 0; i < N * K; i++) chosen[(i / K) * (K / 128) + (i % K) / 128] += (double)(w[i] - q[i]) * (w[i] - q[i]);
    for (int g = 0; g < GROUPS; g++) best[g] = INFINITY;
    for (int k = 0; k < MSE_CANDIDATES; k++) {
        for (int g = 0; g < GROUPS; g++) clips[g] = mse_candidate(k);
        assert_int_equal(quant_fake_clipped(&p, STRATA_DTYPE_F32, w, N, K, clips, q), STRATA_OK);
        double err[GROUPS] = {0};
        for (int i = 0; i < N * K; i++) err[(i / K) * (K / 128) + (i % K) / 128] += (double)(w[i] - q[i]) * (w[i] - q[i]);
        for (int g = 0; g < GROUPS; g++) best[g] = fmin(best[g], err[g]);
    }
    for (int g = 0; g < GROUPS; g++)
        if (!(chosen[g] <= best[g] * (1 + 1e-9)))
            fail_msg("group %d: clip %g gives error %.9g; the best candidate gives %.9g", g, (double)c.clip[g], chosen[g],
                     best[g]);
    free(clips);
    for (int64_t i = 0; i < c.n_clip; i++) {
        int k = (int)lroundf((c.clip[i] - 0.25f) / 0.1f);
        assert_true(k >= 0 && k < MSE_CANDIDATES);
        assert_true(c.clip[i] == mse_candidate(k));
    }
    free(c.clip);
    free(w);
    free(q);
}

static void test_scheme_input_scales(void **state)
{
    (void)state;
    const scheme_info *fp8 = scheme_get(STRATA_SCHEME_FP8), *nvfp4 = scheme_get(STRATA_SCHEME_NVFP4);
    assert_true(scheme_input_scale(fp8, 448.0f) == 1.0f);
    assert_true(scheme_input_scale(fp8, 0.0f) == 1.0f); /* zero amax: scale 1, never 0 */
    assert_true(scheme_input_scale(nvfp4, 2688.0f) == 1.0f);
    assert_string_equal(fp8->modelopt_algo, "FP8");
    assert_string_equal(scheme_get(STRATA_SCHEME_NVFP4_WEIGHT_ONLY)->modelopt_algo, "W4A16_NVFP4");
    /* Static FP8 input: values within the calibrated range land on the E4M3 grid of the
     * stored scale; beyond it they saturate at 448 * scale. */
    float x[4] = {1.0f, -2.0f, 3.3f, 1000.0f};
    assert_int_equal(scheme_fake_quantize_input(fp8, 448.0f, x, 1, 4), STRATA_OK); /* scale 1 */
    assert_true(x[0] == 1.0f && x[1] == -2.0f);
    assert_true(x[2] == 3.25f);  /* E4M3 steps by 0.25 in [2, 4) */
    assert_true(x[3] == 448.0f); /* saturates */
    strata_scheme s;
    assert_true(strata_scheme_from_name("nvfp4-weight-only", &s) && s == STRATA_SCHEME_NVFP4_WEIGHT_ONLY);
    assert_false(strata_scheme_from_name("fp7", &s));

    /* MXFP4 inputs: dynamic E8M0 32-blocks whatever amax is given; no stored input scale. */
    const scheme_info *mx = scheme_get(STRATA_SCHEME_MXFP4);
    assert_false(input_has_static_scale(mx->input));
    float block[32], expected[32];
    for (int i = 0; i < 32; i++) block[i] = expected[i] = 0.37f * (float)(i - 16);
    strata_quant_params mxp = {.format = STRATA_FORMAT_MXFP4, .convention = STRATA_CONVENTION_MODELOPT};
    assert_int_equal(strata_fake_quantize(&mxp, STRATA_DTYPE_F32, expected, 1, 32, expected), STRATA_OK);
    assert_int_equal(scheme_fake_quantize_input(mx, 123.0f, block, 1, 32), STRATA_OK);
    assert_memory_equal(block, expected, sizeof block);
    /* int4-asym has no ModelOpt name, but a label for summaries and fakequant metadata. */
    const scheme_info *asym = scheme_get(STRATA_SCHEME_INT4_ASYM);
    assert_null(asym->modelopt_algo);
    assert_string_equal(asym->algo_label, "W4A16_ASYM");
    for (int i = 0; i < STRATA_SCHEME_COUNT; i++) assert_non_null(scheme_get((strata_scheme)i)->algo_label);
}

typedef struct progress_log {
    int reports, layers_done;
    bool peak_below_rss, bad_timing;
} progress_log;

static void log_progress(const strata_progress *p, void *user)
{
    progress_log *log = user;
    log->reports++;
    if (p->peak_rss_bytes < p->rss_bytes) log->peak_below_rss = true;
    if (!p->layer_done) return;
    const strata_layer_timing *t = p->layer_done;
    double parts = t->read_s + t->forward_s + t->decide_s + t->export_s + t->checkpoint_s;
    if (p->layer != log->layers_done || t->read_s < 0 || t->forward_s < 0 || t->decide_s < 0 || t->export_s < 0 ||
        t->checkpoint_s < 0 || parts > t->total_s + 1e-3 || t->tokens_per_second <= 0)
        log->bad_timing = true;
    log->layers_done++;
}

/* quant_timings.json: one entry per layer with where its time went (not its values: they
 * are the machine's), and the progress reports a layer's times once, at its end, with the
 * peak RSS beside the current one. */
static void test_layer_timings(void **state)
{
    (void)state;
    char *model = test_path(test_dir, "moe"), *out = test_path(test_dir, "out");
    strata_synth_params sp = {.family = STRATA_FAMILY_QWEN3_MOE, .seed = 2, .n_layers = 3};
    assert_int_equal(strata_synth_model(model, &sp), STRATA_OK);
    int32_t tokens[4 * 32];
    for (int i = 0; i < 4 * 32; i++) tokens[i] = (i * 37 + 5) % 256;
    progress_log log = {0};
    strata_quantize_params p = {.model_dir = model, .output_dir = out, .scheme = STRATA_SCHEME_NVFP4, .algo = "gptq",
                                .tokens = tokens, .n_samples = 4, .seq_len = 32, .experts_per_group = 3,
                                .progress = log_progress, .progress_user = &log};
    strata_quantize_result r;
    assert_int_equal(strata_quantize_model(&p, &r), STRATA_OK);
    assert_int_equal(log.layers_done, 3);
    assert_false(log.bad_timing);
    assert_false(log.peak_below_rss);

    char *path = test_path(out, "quant_timings.json");
    sjson *root = NULL;
    assert_int_equal(json_file_read(path, 1 << 20, true, &root), STRATA_OK);
    assert_string_equal(sjson_as_string(sjson_get(root, "unit")), "seconds");
    const sjson *layers = sjson_get(root, "layers");
    assert_int_equal(sjson_array_size(layers), 3);
    const char *keys[] = {"read", "forward", "decide", "export", "checkpoint", "total", "tokens_per_second"};
    for (size_t i = 0; i < 3; i++) {
        const sjson *layer = sjson_array_at(layers, i);
        int64_t index = -1;
        assert_true(sjson_as_int64(sjson_get(layer, "layer"), &index));
        assert_int_equal(index, (int64_t)i);
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
            double v = -1;
            if (!sjson_as_double(sjson_get(layer, keys[k]), &v) || v < 0) fail_msg("layer %zu: %s", i, keys[k]);
        }
    }
    sjson_free(root);
    free(path);
    free(out);
    free(model);
}

/* The quantized pass's time of each layer in dir/quant_timings.json, summed. */
static double quantized_pass_seconds(const char *dir)
{
    char *path = test_path(dir, "quant_timings.json");
    sjson *root = NULL;
    assert_int_equal(json_file_read(path, 1 << 20, true, &root), STRATA_OK);
    const sjson *layers = sjson_get(root, "layers");
    double sum = 0;
    for (size_t i = 0; i < sjson_array_size(layers); i++) {
        double v = -1;
        assert_true(sjson_as_double(sjson_get(sjson_get(sjson_array_at(layers, i), "parts"), "quantized_pass"), &v));
        sum += v;
    }
    sjson_free(root);
    free(path);
    return sum;
}

/* --error-stats weights: the same quantized weights (max, without a quantized pass; GPTQ,
 * whose quantized pass feeds the next layer, without its Hessian-weighted errors), output
 * errors absent from the summary. */
static void test_error_stats_weights(void **state)
{
    (void)state;
    char *model = test_path(test_dir, "dense");
    strata_synth_params sp = {.family = STRATA_FAMILY_LLAMA, .seed = 4, .n_layers = 3};
    assert_int_equal(strata_synth_model(model, &sp), STRATA_OK);
    int32_t tokens[4 * 32];
    for (int i = 0; i < 4 * 32; i++) tokens[i] = (i * 53 + 7) % 256;
    const char *algos[] = {"max", "gptq"};
    for (int a = 0; a < 2; a++) {
        char full_name[32], weights_name[32];
        snprintf(full_name, sizeof full_name, "full-%s", algos[a]);
        snprintf(weights_name, sizeof weights_name, "weights-%s", algos[a]);
        char *full = test_path(test_dir, full_name), *weights = test_path(test_dir, weights_name);
        strata_quantize_params p = {.model_dir = model, .output_dir = full, .scheme = STRATA_SCHEME_NVFP4,
                                    .algo = algos[a], .tokens = tokens, .n_samples = 4, .seq_len = 32};
        strata_quantize_result r;
        assert_int_equal(strata_quantize_model(&p, &r), STRATA_OK);
        p.output_dir = weights;
        p.error_stats = STRATA_ERROR_STATS_WEIGHTS;
        assert_int_equal(strata_quantize_model(&p, &r), STRATA_OK);
        test_assert_same_file(full, weights, "model.safetensors");
        test_assert_same_file(full, weights, "hf_quant_config.json");
        assert_true(quantized_pass_seconds(full) > 0);
        if (a == 0) assert_true(quantized_pass_seconds(weights) == 0); /* max: nothing needs it */
        else assert_true(quantized_pass_seconds(weights) > 0);         /* GPTQ: the next layer's inputs */
        char *path = test_path(weights, "quant_summary.json");
        sjson *root = NULL;
        assert_int_equal(json_file_read(path, 1 << 20, true, &root), STRATA_OK);
        assert_string_equal(sjson_as_string(sjson_get(root, "error_stats")), "weights");
        const sjson *layer = sjson_array_at(sjson_get(root, "layers"), 0);
        assert_null(sjson_get(layer, "output_error"));
        const sjson *linear = sjson_array_at(sjson_get(layer, "linears"), 0);
        double weight_error = 0;
        assert_true(sjson_as_double(sjson_get(linear, "weight_error"), &weight_error) && weight_error > 0);
        assert_null(sjson_get(linear, "output_error"));
        if (a == 1) { /* GPTQ applied, its Hessian-weighted errors not computed */
            assert_string_equal(sjson_as_string(sjson_get(sjson_get(linear, "gptq"), "outcome")), "gptq");
            assert_null(sjson_get(sjson_get(linear, "gptq"), "hessian_error_gptq"));
        }
        sjson_free(root);
        free(path);
        free(full);
        free(weights);
    }
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_act_store_spill_matches_ram, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_resumable_writer, test_setup_dir, test_teardown_dir),
        cmocka_unit_test(test_mse_clip),
        cmocka_unit_test_setup_teardown(test_memory_plan_groups_experts, test_setup_dir, test_teardown_dir),
        cmocka_unit_test(test_scheme_input_scales),
        cmocka_unit_test_setup_teardown(test_layer_timings, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_error_stats_weights, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
