/*
 * test_awq_golden.c — `strata quantize --algo awq` against ModelOpt's awq_lite and its HF
 * export (tests/golden/awq/<model>/<case>.json, from tools/gen_golden_awq.py: ModelOpt 0.47's
 * INT4_AWQ_CFG and NVFP4_AWQ_LITE_CFG on bf16 llama-19m and qwen3moe-47m, calibrated on the
 * e2e golden's 16 windows). strata quantizes the same model on the same windows; then
 *
 *   - the checkpoint holds ModelOpt's tensors (names, dtypes, shapes) and its
 *     hf_quant_config.json and quantization_config;
 *   - each linear's losses are ModelOpt's over the count of windows that reached it (ModelOpt
 *     sums the windows' mean errors, strata averages them), within 3%;
 *   - each linear's a is ModelOpt's, or one whose loss in ModelOpt's own search is within a
 *     near tie of its least (INT4 0.5%, NVFP4 1%), which the two forward passes decide
 *     differently (ModelOpt's runs in bf16 throughout and rounds every output to bf16;
 *     strata's keeps an fp32 residual stream and measures through the Hessian); at least 85%
 *     (INT4) and 60% (NVFP4, whose loss curves are jagged and within 1% of flat) are equal;
 *   - where every linear reading an input chose ModelOpt's a, the scales AWQ leaves in the
 *     checkpoint for that input (the norm it was folded into, or the pre_quant_scale tensor)
 *     are ModelOpt's within two bf16 steps each (a norm is the product of two rounded values),
 *     and at least 85% of them bit for bit (the activation statistics of the two forward
 *     passes differ in their last bits);
 *   - the other 1-D bf16 tensors (the final norm) are identical;
 *   - NVFP4's input scales show no bias against ModelOpt's (geometric mean ratio within 2%);
 *   - MoE: every expert of a layer holds the same pre_quant_scale per linear name, and
 *     INT4's gate and up of an expert the same weight_scale.
 * The sanitizer build skips it (test_awq.sh runs the same code on a generated model).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden_json.h"
#include "helpers.h"
#include "io/json_file.h"

enum { N_WINDOWS = 16, WINDOW = 128 };

/* strata's AWQ record of a linear in its quant_summary.json ({"alpha", "loss", ...}), or NULL
 * (not searched). */
static const sjson *strata_awq(const sjson *summary, const char *name)
{
    const sjson *layers = sjson_get(summary, "layers");
    for (size_t i = 0; i < sjson_array_size(layers); i++) {
        const sjson *linears = sjson_get(sjson_array_at(layers, i), "linears");
        for (size_t j = 0; j < sjson_array_size(linears); j++) {
            const sjson *l = sjson_array_at(linears, j);
            if (strcmp(sjson_as_string(sjson_get(l, "name")), name) == 0) return sjson_get(l, "awq");
        }
    }
    return NULL;
}

/* ModelOpt's loss is the sum over the windows that reached the linear of each window's mean
 * squared error, strata's their mean: their ratio is that count of windows (an expert's may
 * be fewer than all), within the two forward passes' differences (3%). */
static void check_loss_ratio(const char *case_name, const char *name, const sjson *want, const sjson *mine)
{
    double ratio = 0;
    for (size_t k = 0; k < 11; k++) {
        double a = 0, b = 0;
        assert_true(sjson_as_double(sjson_array_at(want, k), &a) && sjson_as_double(sjson_array_at(mine, k), &b));
        ratio += a / b / 11;
    }
    double windows = round(ratio);
    if (windows < 1 || windows > N_WINDOWS || fabs(ratio / windows - 1) > 0.03)
        fail_msg("%s: %s's losses are ModelOpt's / %.3f, not / a count of windows", case_name, name, ratio);
}

/* Whether every routed expert's linear of this role in the layer of `prefix` ("<layer>.mlp.experts.")
 * chose ModelOpt's a. */
static bool experts_agree(const char *prefix, const char *role, const sjson *agree)
{
    char name[512];
    for (int e = 0;; e++) {
        snprintf(name, sizeof name, "%s%d.%s", prefix, e, role);
        bool yes = false;
        const sjson *v = sjson_get(agree, name);
        if (!v) return e > 0;
        if (!sjson_as_bool(v, &yes) || !yes) return false;
    }
}

/* Whether every linear whose input a 1-D tensor scales chose ModelOpt's a: the q/k/v of an
 * input_layernorm, the gate/up of a post_attention_layernorm, the linear of a
 * pre_quant_scale; a routed expert's pre_quant_scale is the layer's experts' average (gate
 * and up: of both). *owned is false for tensors AWQ does not touch. */
static bool group_agrees(const char *tensor, const sjson *agree, bool *owned)
{
    char prefix[512];
    const char *const *roles = NULL;
    static const char *const QKV[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", NULL};
    static const char *const GATE_UP[] = {"mlp.gate_proj", "mlp.up_proj", NULL};
    *owned = true;
    if (test_ends_with(tensor, ".pre_quant_scale")) {
        snprintf(prefix, sizeof prefix, "%.*s", (int)(strlen(tensor) - strlen(".pre_quant_scale")), tensor);
        const char *experts = strstr(prefix, ".experts.");
        if (experts) {
            char layer[512];
            snprintf(layer, sizeof layer, "%.*s", (int)(experts - prefix + strlen(".experts.")), prefix);
            if (test_ends_with(prefix, ".down_proj")) return experts_agree(layer, "down_proj", agree);
            return experts_agree(layer, "gate_proj", agree) && experts_agree(layer, "up_proj", agree);
        }
        bool yes = false;
        return sjson_as_bool(sjson_get(agree, prefix), &yes) && yes;
    }
    if (test_ends_with(tensor, ".input_layernorm.weight")) roles = QKV;
    else if (test_ends_with(tensor, ".post_attention_layernorm.weight")) roles = GATE_UP;
    if (!roles) {
        *owned = false;
        return true;
    }
    const char *norm = strrchr(tensor, '.');
    while (norm > tensor && norm[-1] != '.') norm--; /* "<layer>." */
    for (int i = 0; roles[i]; i++) {
        snprintf(prefix, sizeof prefix, "%.*s%s", (int)(norm - tensor), tensor, roles[i]);
        bool yes = false;
        const sjson *v = sjson_get(agree, prefix);
        if (!v && roles == GATE_UP) { /* an MoE layer: its norm is not AWQ's */
            *owned = false;
            return true;
        }
        if (!sjson_as_bool(v, &yes) || !yes) return false;
    }
    return true;
}

/* ModelOpt's INT4 export of an MoE block: every expert of a layer holds the same
 * pre_quant_scale per linear name (gate and up one), and each expert's gate and up the same
 * weight_scale (the elementwise maximum of their block amax). */
static void check_expert_sharing(const strata_safetensors *st, const char *case_name, int n_layers, int n_experts)
{
    static const char *const ROLES[] = {"gate_proj", "up_proj", "down_proj"};
    char name[256], other[256];
    for (int L = 0; L < n_layers; L++) {
        for (int e = 0; e < n_experts; e++) {
            for (int r = 0; r < 3; r++) {
                snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.%s.pre_quant_scale", L, e, ROLES[r]);
                snprintf(other, sizeof other, "model.layers.%d.mlp.experts.0.%s.pre_quant_scale", L,
                         r == 1 ? "gate_proj" : ROLES[r]);
                const strata_tensor *a = strata_safetensors_find(st, name), *b = strata_safetensors_find(st, other);
                if (!a) continue; /* NVFP4's down_proj: folded into up_proj */
                assert_non_null(b);
                if (a->n_bytes != b->n_bytes || memcmp(a->data, b->data, a->n_bytes) != 0)
                    fail_msg("%s: %s differs from %s", case_name, name, other);
            }
            if (strcmp(case_name, "int4") != 0) continue;
            snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.gate_proj.weight_scale", L, e);
            snprintf(other, sizeof other, "model.layers.%d.mlp.experts.%d.up_proj.weight_scale", L, e);
            const strata_tensor *a = strata_safetensors_find(st, name), *b = strata_safetensors_find(st, other);
            assert_non_null(a);
            assert_non_null(b);
            if (a->n_bytes != b->n_bytes || memcmp(a->data, b->data, a->n_bytes) != 0)
                fail_msg("%s: %s differs from %s", case_name, name, other);
        }
    }
}

/* One golden case: the model under ../shared/models, ModelOpt's config, how near a tie
 * ModelOpt's own losses may make a different a (relative), and the least share of linears
 * choosing ModelOpt's a. */
typedef struct awq_case {
    const char *model;
    const char *name;          /* "int4", "nvfp4" */
    double tie, min_equal;
    double min_identical;      /* least share of the compared scale values bit for bit */
    size_t n_linears;          /* searched by ModelOpt */
    int n_layers, n_experts;   /* an MoE model's, for the experts' shared scales; 0 for dense */
} awq_case;

static void run_case(const awq_case *ac, const int32_t *ids)
{
    const char *case_name = ac->name;
    double tie = ac->tie, min_equal = ac->min_equal;
    char golden_name[128], out_name[128];
    snprintf(golden_name, sizeof golden_name, "awq/%s/%s.json", ac->model, case_name);
    snprintf(out_name, sizeof out_name, "%s-%s", ac->model, case_name);
    char *golden_path = test_path(STRATA_GOLDEN_DIR, golden_name);
    sjson *golden = test_read_json(golden_path);
    char *models = test_path(test_shared_dir(), "models"), *model = test_path(models, ac->model);
    char *out = test_path(test_dir, out_name);
    strata_quantize_params qp = {.model_dir = model, .output_dir = out, .algo = "awq", .tokens = ids,
                                 .n_samples = N_WINDOWS, .seq_len = WINDOW, .error_stats = STRATA_ERROR_STATS_WEIGHTS,
                                 .scheme = strcmp(case_name, "int4") == 0 ? STRATA_SCHEME_INT4 : STRATA_SCHEME_NVFP4};
    strata_quantize_result qr;
    if (strata_quantize_model(&qp, &qr) != STRATA_OK) fail_msg("%s: %s", case_name, strata_last_error());

    /* The configs. */
    char *hf_path = test_path(out, "hf_quant_config.json"), *config_path = test_path(out, "config.json");
    char *summary_path = test_path(out, "quant_summary.json"), *weights = test_path(out, "model.safetensors");
    sjson *hf = test_read_json(hf_path), *config = test_read_json(config_path), *summary = test_read_json(summary_path);
    golden_assert_json_same("hf_quant_config.json", sjson_get(golden, "hf_quant_config"), hf);
    golden_assert_json_same("quantization_config", sjson_get(golden, "quantization_config"),
                            sjson_get(config, "quantization_config"));

    /* The choices. */
    const sjson *linears = sjson_get(golden, "linears");
    sjson *agree = sjson_new_object();
    int equal = 0, ties = 0;
    for (void *it = sjson_iter(linears); it; it = sjson_iter_next(linears, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *l = sjson_iter_value(it), *loss = sjson_get(l, "loss"), *awq = strata_awq(summary, name);
        double want = -1, mine = -1, best = INFINITY, at_mine = INFINITY;
        if (!awq || !sjson_as_double(sjson_get(awq, "alpha"), &mine))
            fail_msg("%s: ModelOpt searched %s, strata did not", case_name, name);
        assert_true(sjson_as_double(sjson_get(l, "alpha"), &want));
        assert_int_equal(sjson_array_size(loss), 11);
        check_loss_ratio(case_name, name, loss, sjson_get(awq, "loss"));
        for (size_t k = 0; k < 11; k++) {
            double v = 0;
            assert_true(sjson_as_double(sjson_array_at(loss, k), &v));
            best = v < best ? v : best;
            if (fabs((double)k / 10 - mine) < 1e-6) at_mine = v;
        }
        bool same = fabs(want - mine) < 1e-6;
        sjson_set(agree, name, sjson_new_bool(same));
        equal += same;
        if (!same && at_mine <= best * (1 + tie)) ties++;
        else if (!same)
            fail_msg("%s: %s chose a = %.1f, ModelOpt %.1f, whose own loss there is %.6g, %.3g%% above its least",
                     case_name, name, mine, want, at_mine, 100 * (at_mine / best - 1));
    }
    size_t n_linears = sjson_object_size(linears);
    assert_true(n_linears == ac->n_linears);
    if (equal < min_equal * (double)n_linears)
        fail_msg("%s: %d of %zu linears chose ModelOpt's a", case_name, equal, n_linears);

    /* The tensors, and the scales AWQ leaves. */
    const sjson *tensors = sjson_get(golden, "tensors");
    strata_safetensors *st;
    if (strata_safetensors_open(weights, &st) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_int_equal(strata_safetensors_count(st), sjson_object_size(tensors));
    int64_t values = 0, identical = 0, groups_compared = 0, groups_skipped = 0, input_scales = 0;
    double log_input_ratio = 0;
    for (void *it = sjson_iter(tensors); it; it = sjson_iter_next(tensors, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *want = sjson_iter_value(it);
        const strata_tensor *x = strata_safetensors_find(st, name);
        if (!x) fail_msg("%s: ModelOpt writes %s, strata does not", case_name, name);
        assert_string_equal(strata_dtype_name(x->dtype), sjson_as_string(sjson_get(want, "dtype")));
        const sjson *shape = sjson_get(want, "shape");
        assert_int_equal((size_t)x->n_dims, sjson_array_size(shape));
        for (int d = 0; d < x->n_dims; d++) {
            int64_t extent = 0;
            assert_true(sjson_as_int64(sjson_array_at(shape, (size_t)d), &extent) && extent == x->shape[d]);
        }
        double value = 0;
        if (test_ends_with(name, ".input_scale") && sjson_as_double(sjson_get(want, "value"), &value)) {
            float mine = 0;
            memcpy(&mine, x->data, sizeof mine);
            log_input_ratio += log(mine / value);
            input_scales++;
        }
        const char *hex = sjson_as_string(sjson_get(want, "bf16"));
        if (!hex) continue;
        bool owned;
        if (!group_agrees(name, agree, &owned)) {
            groups_skipped++;
            continue;
        }
        const uint16_t *mine = x->data;
        int64_t n = x->n_elements, same = 0;
        assert_int_equal((int64_t)strlen(hex), 4 * n);
        for (int64_t i = 0; i < n; i++) {
            uint16_t bits = test_bf16_hex_at(hex, i);
            float a = test_bf16_value(bits), b = test_bf16_value(mine[i]);
            same += bits == mine[i];
            if (!owned && bits != mine[i]) fail_msg("%s: %s[%lld] is %g, ModelOpt's %g", case_name, name, (long long)i, b, a);
            if (!test_within_bf16_steps(a, b, 2))
                fail_msg("%s: %s[%lld] is %g, ModelOpt's %g: more than two bf16 steps", case_name, name, (long long)i, b, a);
        }
        if (owned) {
            values += n;
            identical += same;
            groups_compared++;
        }
    }
    if (ac->n_experts > 0) check_expert_sharing(st, case_name, ac->n_layers, ac->n_experts);
    /* NVFP4's input scales (each the channel amax times the linear's own p, its own a's):
     * without bias against ModelOpt's, their geometric mean ratio within 2% */
    double input_ratio = input_scales ? exp(log_input_ratio / (double)input_scales) : 1;
    if (input_scales) print_message("%s %s: %lld input scales, geometric mean ratio to ModelOpt's %.4f\n", ac->model,
                                    case_name, (long long)input_scales, input_ratio);
    assert_true(fabs(input_ratio - 1) < 0.02);
    print_message("%s %s: %d of %zu linears chose ModelOpt's a (%d near ties); AWQ's scales of %lld inputs compared "
                  "(%lld skipped for a tie): %lld of %lld values bit for bit, the rest within two bf16 steps\n",
                  ac->model, case_name, equal, n_linears, ties, (long long)groups_compared, (long long)groups_skipped,
                  (long long)identical, (long long)values);
    assert_true(groups_compared > 0 && identical >= ac->min_identical * (double)values);
    strata_safetensors_close(st);
    sjson_free(agree);
    sjson_free(hf);
    sjson_free(config);
    sjson_free(summary);
    free(hf_path);
    free(config_path);
    free(summary_path);
    free(weights);
    free(out);
    free(model);
    free(models);
    free(golden_path);
    sjson_free(golden);
}

static void modelopt_awq(void **state)
{
    (void)state;
#ifdef STRATA_SANITIZE_BUILD
    skip();
#endif
    if (!test_shared_dir()) skip();
    int32_t *ids = test_e2e_calib_ids(N_WINDOWS * WINDOW);
    static const awq_case CASES[] = {
        {"llama-19m", "int4", 5e-3, 0.85, 0.85, 56, 0, 0},
        {"llama-19m", "nvfp4", 1e-2, 0.6, 0.85, 56, 0, 0},
        /* MoE: each expert searches on its routed tokens, which a last-bit difference in the
         * router's scores can move; the experts' scales are averages, compared where every
         * expert of the layer chose ModelOpt's a */
        {"qwen3moe-47m", "int4", 1e-2, 0.75, 0.75, 224, 8, 8},
        {"qwen3moe-47m", "nvfp4", 2.5e-2, 0.55, 0.75, 224, 8, 8},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) run_case(&CASES[i], ids);
    strata_free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(modelopt_awq, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
