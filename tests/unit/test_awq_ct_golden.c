/*
 * test_awq_ct_golden.c — `strata quantize --algo awq --format compressed-tensors` against
 * llm-compressor's AWQModifier (tests/golden/awq-ct/llama-19m/w4a16-asym.json, from
 * tools/gen_golden_awq_ct.py: llm-compressor 0.14.0.1's oneshot with AWQ then W4A16_ASYM on
 * bf16 llama-19m, the e2e golden's 16 windows). strata quantizes the same model on the same
 * windows to int4-asym; then, per mapping (24: input_layernorm -> q/k/v, post_attention_layernorm
 * -> gate/up, up_proj -> down_proj in 8 layers; v_proj -> o_proj is skipped under GQA by both):
 *
 *   - each of the 20 grid losses is llm-compressor's within 6% and their mean ratio within 2%
 *     (measured: 3.5% at most, mean 0.992 on attention, 0.999 on the MLP);
 *   - at least 19 of the 24 chosen grid points are llm-compressor's (measured 20; the other four
 *     are near ties, within 1.1% of its least loss in llm-compressor's own losses);
 *   - where the choice agrees, the scaled norm (bf16(g / s)) is llm-compressor's bit for bit in
 *     at least 95% of its values, the rest within two bf16 steps (measured 96.6%, one step);
 *   - every o_proj, which no mapping scales under GQA, is llm-compressor's pack-quantized bytes
 *     (weight_packed, weight_scale, weight_zero_point), and at least 40 of the 168 tensors are
 *     (measured 44: the two gate_proj whose point (ratio 0) depends on the weights alone too).
 * The losses come from the two forward passes (transformers' bf16 attention and MLP, strata's
 * fp32 ones), hence the tolerances. The sanitizer build skips it (test_awq.sh runs the code on a
 * generated model).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "io/json_file.h"
#include "sha256.h"

enum { N_WINDOWS = 16, WINDOW = 128, GRID = 20, MAPPINGS = 24 };

/* The linear whose summary entry holds a mapping's search: its first balance linear. */
static void first_balance(const char *parent, char *out, size_t n)
{
    const char *suffix = strstr(parent, ".self_attn.o_proj") ? ""
                         : strstr(parent, ".self_attn")      ? ".q_proj"
                         : strstr(parent, ".mlp.down_proj")  ? ""
                                                             : ".gate_proj";
    snprintf(out, n, "%s%s", parent, suffix);
}

/* The "awq" object of a linear in strata's quant_summary.json. */
static const sjson *summary_awq(const sjson *summary, const char *name)
{
    const sjson *layers = sjson_get(summary, "layers");
    for (size_t l = 0; l < sjson_array_size(layers); l++) {
        const sjson *linears = sjson_get(sjson_array_at(layers, l), "linears");
        for (size_t i = 0; i < sjson_array_size(linears); i++) {
            const sjson *o = sjson_array_at(linears, i);
            const char *n = sjson_as_string(sjson_get(o, "name"));
            if (n && strcmp(n, name) == 0) return sjson_get(o, "awq");
        }
    }
    fail_msg("%s: no awq entry in quant_summary.json", name);
    return NULL;
}

/* Compares one norm with the golden's hex; counts its equal values and checks the steps. */
static int64_t compare_norm(const strata_safetensors *st, const char *name, const char *hex, int max_steps)
{
    const strata_tensor *x = strata_safetensors_find(st, name);
    if (!x || x->dtype != STRATA_DTYPE_BF16) fail_msg("no BF16 %s", name);
    assert_int_equal((int64_t)strlen(hex), 4 * x->n_elements);
    const uint16_t *mine = x->data;
    int64_t identical = 0;
    for (int64_t i = 0; i < x->n_elements; i++) {
        uint16_t bits = test_bf16_hex_at(hex, i);
        identical += bits == mine[i];
        if (max_steps >= 0 && !test_within_bf16_steps(test_bf16_value(bits), test_bf16_value(mine[i]), max_steps))
            fail_msg("%s[%lld] is %g, llm-compressor's %g", name, (long long)i, test_bf16_value(mine[i]),
                     test_bf16_value(bits));
    }
    return identical;
}

static void llmcompressor_awq(void **state)
{
    (void)state;
#ifdef STRATA_SANITIZE_BUILD
    skip();
#endif
    if (!test_shared_dir()) skip();
    int32_t *ids = test_e2e_calib_ids(N_WINDOWS * WINDOW);
    char *models = test_path(test_shared_dir(), "models"), *model = test_path(models, "llama-19m");
    char *out = test_path(test_dir, "awq");
    strata_quantize_params qp = {.model_dir = model, .output_dir = out, .scheme = STRATA_SCHEME_INT4_ASYM,
                                 .algo = "awq", .format = STRATA_EXPORT_COMPRESSED_TENSORS, .tokens = ids,
                                 .n_samples = N_WINDOWS, .seq_len = WINDOW, .error_stats = STRATA_ERROR_STATS_WEIGHTS,
                                 .no_report = true};
    strata_quantize_result qr;
    if (strata_quantize_model(&qp, &qr) != STRATA_OK) fail_msg("awq: %s", strata_last_error());
    char *golden_path = test_path(STRATA_GOLDEN_DIR, "awq-ct/llama-19m/w4a16-asym.json");
    sjson *golden = test_read_json(golden_path);
    char *summary_path = test_path(out, "quant_summary.json");
    sjson *summary = test_read_json(summary_path);
    char *weights = test_path(out, "model.safetensors");
    strata_safetensors *st;
    if (strata_safetensors_open(weights, &st) != STRATA_OK) fail_msg("%s", strata_last_error());

    /* The searches: losses and choices */
    const sjson *mappings = sjson_get(golden, "mappings");
    assert_int_equal(sjson_array_size(mappings), MAPPINGS);
    int same_choice = 0;
    double ratio_sum = 0, worst = 0;
    int64_t norm_values = 0, norm_identical = 0;
    const sjson *norms = sjson_get(golden, "norms");
    for (size_t m = 0; m < MAPPINGS; m++) {
        const sjson *g = sjson_array_at(mappings, m);
        const char *parent = sjson_as_string(sjson_get(g, "parent")), *smooth = sjson_as_string(sjson_get(g, "smooth"));
        char name[256];
        first_balance(parent, name, sizeof name);
        const sjson *mine = summary_awq(summary, name);
        int64_t best = -1, point = -1;
        assert_true(sjson_as_int64(sjson_get(g, "best"), &best));
        assert_true(sjson_as_int64(sjson_get(mine, "point"), &point));
        const sjson *want = sjson_get(g, "losses"), *got = sjson_get(mine, "loss");
        assert_int_equal(sjson_array_size(want), GRID);
        assert_int_equal(sjson_array_size(got), GRID);
        for (size_t i = 0; i < GRID; i++) {
            double a = 0, b = 0;
            assert_true(sjson_as_double(sjson_array_at(got, i), &a) && sjson_as_double(sjson_array_at(want, i), &b));
            double ratio = a / b;
            ratio_sum += ratio;
            worst = fabs(ratio - 1) > worst ? fabs(ratio - 1) : worst;
            if (fabs(ratio - 1) > 0.06)
                fail_msg("%s: grid point %zu's loss is %g, llm-compressor's %g", name, i, a, b);
        }
        same_choice += point == best;
        /* Where the choice agrees, the scaled norm */
        const char *norm = strstr(smooth, "layernorm");
        if (point == best && norm) {
            char key[256];
            snprintf(key, sizeof key, "%s.weight", smooth);
            const char *hex = sjson_as_string(sjson_get(norms, key));
            if (!hex) fail_msg("golden has no %s", key);
            norm_identical += compare_norm(st, key, hex, 2);
            norm_values += (int64_t)strlen(hex) / 4;
        }
    }
    double mean_ratio = ratio_sum / (MAPPINGS * GRID);

    /* The pack-quantized tensors */
    const sjson *tensors = sjson_get(golden, "tensors");
    int equal_tensors = 0;
    for (void *it = sjson_iter(tensors); it; it = sjson_iter_next(tensors, it)) {
        const char *name = sjson_iter_key(it), *sha = sjson_as_string(sjson_get(sjson_iter_value(it), "sha256"));
        const strata_tensor *x = strata_safetensors_find(st, name);
        if (!x) fail_msg("strata wrote no %s", name);
        char hex[65];
        test_sha256_hex(x->data, x->n_bytes, hex);
        bool equal = strcmp(hex, sha) == 0;
        equal_tensors += equal;
        if (!equal && strstr(name, ".o_proj.")) fail_msg("%s, which AWQ leaves unscaled, differs from llm-compressor's", name);
    }
    print_message("%d of %d grid choices llm-compressor's; losses within %.1f%% (mean ratio %.4f); %lld of %lld values "
                  "of the norms scaled alike bit for bit; %d of %zu pack-quantized tensors byte for byte\n",
                  same_choice, MAPPINGS, 100 * worst, mean_ratio, (long long)norm_identical, (long long)norm_values,
                  equal_tensors, sjson_object_size(tensors));
    assert_true(same_choice >= 19);
    assert_true(fabs(mean_ratio - 1) <= 0.02);
    assert_true(norm_identical >= 0.95 * (double)norm_values);
    assert_int_equal(sjson_object_size(tensors), 168);
    assert_true(equal_tensors >= 40);
    strata_safetensors_close(st);
    free(weights);
    free(summary_path);
    sjson_free(summary);
    free(golden_path);
    sjson_free(golden);
    free(out);
    free(model);
    free(models);
    strata_free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(llmcompressor_awq, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
