/*
 * test_e2e_golden.c — strata's ModelOpt checkpoints against ModelOpt's own, byte for byte
 * (tests/golden/e2e/<model>/<case>.json, from tools/gen_golden_e2e.py: ModelOpt 0.47's
 * mtq.quantize and export_hf_checkpoint on the bf16 models of ../shared, calibrated on
 * calib-ids.json). strata quantize runs on the same model with the same calibration windows
 * and every tensor it writes must have the SHA-256 ModelOpt's has: weight codes, block and
 * global scales, per-channel scales, biases, norms, embeddings, routers. The one allowance
 * is for the scalar input and KV-cache scales: ModelOpt observes them in its bf16 forward
 * pass (a bf16 residual stream, bf16 attention), strata in its fp32 one with each linear's
 * input rounded to bf16 as the linear receives it, so an amax may land a bf16 step or two
 * away, more in deeper layers (the two forward passes drift apart: 1.5% on the last
 * layers of qwen3moe-47m); those are accepted within two steps (a factor of (1 + 2^-7)^2)
 * and counted. hf_quant_config.json
 * and quantization_config must be equal (versions aside).
 *
 * The same for compressed-tensors checkpoints against llm-compressor's own
 * (tests/golden/e2e-ct/<model>/<case>.json, from tools/gen_golden_ct.py: llm-compressor
 * 0.14's oneshot with round-to-nearest and save_compressed=True), strata quantizing with
 * --format compressed-tensors. Every weight tensor must be identical. Activation scales are
 * calibrated differently by design, so beyond two bf16 steps they are counted and printed,
 * not failed (their names, dtypes and shapes must still agree; the arithmetic from an amax
 * to the stored value is checked against compressed-tensors itself in
 * input_scale_arithmetic, and the amax against ModelOpt's above):
 * - llm-compressor calibrates with quantization on: each linear observes inputs computed
 *   through the fake-quantized linears before it (layer 0's o_proj of qwen3moe-47m sees
 *   max |x| 2.06 under NVFP4; the bf16 model, ModelOpt and strata see 2.22);
 * - routed experts: it sends every token through every expert and keeps each expert's own
 *   maximum; strata routes the model's top-k and sets each expert to its layer's peer
 *   maximum (docs/QUANTIZE.md);
 * - KV-cache scales: it observes its own k/v states; strata's are ModelOpt's definition,
 *   max |k| after RoPE / 448.
 *
 * The release build runs every case; the sanitizer build one per model (the same code).
 */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden_json.h"
#include "helpers.h"
#include "io/json_file.h"
#include "quant/scheme.h"
#include "sha256.h"

enum { N_WINDOWS = 16, WINDOW = 128 };

/* Two bf16 steps: the most an activation amax may differ by (see the top). */
#define BOUND ((1.0 + 0x1p-7) * (1.0 + 0x1p-7) * (1.0 + 1e-6))

typedef struct tally {
    int identical, scales_within_step, calibrated_differently, different;
    double worst_scale_ratio;
} tally;

static bool is_activation_scale(const char *name)
{
    return test_ends_with(name, ".input_scale") || test_ends_with(name, ".input_global_scale") || test_ends_with(name, ".k_scale") ||
           test_ends_with(name, ".v_scale");
}

/* Scales llm-compressor calibrates another way (see the top). */
static bool calibrated_differently(const sjson *golden, const char *name)
{
    return sjson_get(golden, "llmcompressor_version") && is_activation_scale(name);
}

/* The value of a one-element F32 or BF16 tensor. */
static bool scalar_value(const strata_tensor *x, double *out)
{
    if (x->n_elements != 1) return false;
    if (x->dtype == STRATA_DTYPE_F32) {
        float f;
        memcpy(&f, x->data, 4);
        *out = f;
        return true;
    }
    if (x->dtype == STRATA_DTYPE_BF16) {
        uint16_t h;
        memcpy(&h, x->data, 2);
        uint32_t bits = (uint32_t)h << 16;
        float f;
        memcpy(&f, &bits, 4);
        *out = f;
        return true;
    }
    return false;
}

/* Every tensor of the output against the golden record. */
static void compare_tensors(const char *out, const sjson *golden, const char *label, tally *t)
{
    const sjson *tensors = sjson_get(golden, "tensors");
    const char *reference = sjson_get(golden, "llmcompressor_version") ? "llm-compressor" : "ModelOpt";
    strata_safetensors *st;
    if (strata_safetensors_open(out, &st) != STRATA_OK) fail_msg("%s: %s", label, strata_last_error());
    if (strata_safetensors_count(st) != sjson_object_size(tensors))
        fail_msg("%s: strata wrote %zu tensors, %s %zu", label, strata_safetensors_count(st), reference,
                 sjson_object_size(tensors));
    for (void *it = sjson_iter(tensors); it; it = sjson_iter_next(tensors, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *want = sjson_iter_value(it);
        const strata_tensor *x = strata_safetensors_find(st, name);
        if (!x) fail_msg("%s: %s writes %s, strata does not", label, reference, name);
        if (strcmp(strata_dtype_name(x->dtype), sjson_as_string(sjson_get(want, "dtype"))) != 0)
            fail_msg("%s: %s is %s, %s's %s", label, name, strata_dtype_name(x->dtype), reference,
                     sjson_as_string(sjson_get(want, "dtype")));
        const sjson *shape = sjson_get(want, "shape");
        bool same_shape = (size_t)x->n_dims == sjson_array_size(shape);
        for (int d = 0; same_shape && d < x->n_dims; d++) {
            int64_t extent;
            same_shape = sjson_as_int64(sjson_array_at(shape, (size_t)d), &extent) && extent == x->shape[d];
        }
        if (!same_shape) fail_msg("%s: %s has another shape than %s's %s", label, name, reference, sjson_dump(shape, 0));
        char hex[65];
        test_sha256_hex(x->data, (size_t)x->n_bytes, hex);
        if (strcmp(hex, sjson_as_string(sjson_get(want, "sha256"))) == 0) {
            t->identical++;
            continue;
        }
        double golden_value, mine;
        if (is_activation_scale(name) && scalar_value(x, &mine) && sjson_as_double(sjson_get(want, "value"), &golden_value)) {
            double ratio = mine > golden_value ? mine / golden_value : golden_value / mine;
            if (ratio <= BOUND) {
                if (ratio > t->worst_scale_ratio) t->worst_scale_ratio = ratio;
                t->scales_within_step++;
                continue;
            }
            if (calibrated_differently(golden, name)) {
                t->calibrated_differently++;
                continue;
            }
            print_message("%s: %s is %.9g, %s's %.9g (more than two bf16 steps)\n", label, name, mine, reference,
                          golden_value);
        } else {
            print_message("%s: %s differs from %s's (%s)\n", label, name, reference, sjson_dump(want, 0));
        }
        t->different++;
    }
    strata_safetensors_close(st);
}

/* A synthetic model regenerated from the golden's "synthetic" list of `strata generate`
 * options (--arch, --seed, --layers, --config) into dir. */
static void synthesize(const sjson *options, const char *dir)
{
    strata_synth_params params = {0};
    for (size_t i = 0; i + 1 < sjson_array_size(options); i += 2) {
        const char *key = sjson_as_string(sjson_array_at(options, i));
        const char *value = sjson_as_string(sjson_array_at(options, i + 1));
        if (strcmp(key, "--arch") == 0) {
            bool found = false;
            for (int f = 0; f < STRATA_FAMILY_COUNT && !found; f++)
                if ((found = strcmp(strata_family_name((strata_family)f), value) == 0)) params.family = (strata_family)f;
            assert_true(found);
        } else if (strcmp(key, "--seed") == 0) {
            params.seed = (uint64_t)atoll(value);
        } else if (strcmp(key, "--layers") == 0) {
            params.n_layers = atoi(value);
        } else if (strcmp(key, "--config") == 0) {
            params.config_patch = value;
        } else {
            fail_msg("unknown synthetic option %s", key);
        }
    }
    if (strata_synth_model(dir, &params) != STRATA_OK) fail_msg("%s", strata_last_error());
}

static void run_case(const char *model, const char *golden_path, const int32_t *ids, tally *total)
{
    sjson *golden = test_read_json(golden_path);
    const char *label = golden_path + strlen(STRATA_GOLDEN_DIR) + 1;
    if (sjson_get(golden, "export_error")) {
        print_message("%s: ModelOpt cannot export this case (%s); nothing to compare\n", label,
                      sjson_as_string(sjson_get(golden, "export_error")));
        sjson_free(golden);
        return;
    }
    const sjson *synthetic = sjson_get(golden, "synthetic");
    char *synth_dir = synthetic ? test_path(test_dir, "model") : NULL;
    int32_t *calib = NULL;
    if (synthetic) { /* the windows' ids modulo the synthetic vocabulary, as the generator feeds them */
        synthesize(synthetic, synth_dir);
        model = synth_dir;
        strata_model *m = NULL;
        if (strata_model_open(model, &m) != STRATA_OK) fail_msg("%s", strata_last_error());
        int64_t vocab = strata_model_arch(m)->vocab_size;
        strata_model_close(m);
        calib = malloc(sizeof *calib * N_WINDOWS * WINDOW);
        for (int64_t i = 0; i < N_WINDOWS * WINDOW; i++) calib[i] = (int32_t)(ids[i] % vocab);
        ids = calib;
    }
    strata_scheme scheme;
    const char *scheme_name = sjson_as_string(sjson_get(golden, "scheme"));
    if (!scheme_name || !strata_scheme_from_name(scheme_name, &scheme)) fail_msg("%s: unknown scheme", label);
    char *out = test_path(test_dir, "out");
    strata_quantize_params qp = {.model_dir = model, .output_dir = out, .scheme = scheme,
                                 .kv_cache_fp8 = sjson_as_string(sjson_get(golden, "kv_cache")) != NULL,
                                 .tokens = ids, .n_samples = N_WINDOWS, .seq_len = WINDOW};
    const char *format = sjson_as_string(sjson_get(golden, "format"));
    if (format && !strata_export_format_from_name(format, &qp.format)) fail_msg("%s: bad format %s", label, format);
    const char *attention = sjson_as_string(sjson_get(golden, "attention"));
    if (attention && !strata_attention_quant_from_name(attention, &qp.attention)) fail_msg("%s: bad attention", label);
    strata_quantize_result qr;
    if (strata_quantize_model(&qp, &qr) != STRATA_OK) fail_msg("%s: %s", label, strata_last_error());
    tally t = {0};
    compare_tensors(out, golden, label, &t);
    char *hf_path = test_path(out, "hf_quant_config.json"), *config_path = test_path(out, "config.json");
    sjson *config = test_read_json(config_path);
    char what[512];
    if (qp.format == STRATA_EXPORT_MODELOPT) {
        sjson *hf = test_read_json(hf_path);
        snprintf(what, sizeof what, "%s: hf_quant_config.json", label);
        golden_assert_json_same(what, sjson_get(golden, "hf_quant_config"), hf);
        sjson_free(hf);
    } else if (access(hf_path, F_OK) == 0) {
        fail_msg("%s: a compressed-tensors checkpoint with an hf_quant_config.json (vLLM would read it as ModelOpt's)",
                 label);
    }
    snprintf(what, sizeof what, "%s: config.json quantization_config", label);
    golden_assert_json_same(what, sjson_get(golden, "quantization_config"), sjson_get(config, "quantization_config"));
    print_message("%-36s %4d tensors: %4d identical, %3d activation scales within two bf16 steps (worst x%.5f), "
                  "%3d calibrated differently, %d different\n", label,
                  t.identical + t.scales_within_step + t.calibrated_differently + t.different, t.identical,
                  t.scales_within_step, t.worst_scale_ratio > 0 ? t.worst_scale_ratio : 1.0, t.calibrated_differently,
                  t.different);
    total->identical += t.identical;
    total->scales_within_step += t.scales_within_step;
    total->calibrated_differently += t.calibrated_differently;
    total->different += t.different;
    sjson_free(config);
    free(hf_path);
    free(config_path);
    test_remove_tree(out);
    free(out);
    if (synth_dir) test_remove_tree(synth_dir);
    free(synth_dir);
    free(calib);
    sjson_free(golden);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every golden file of one directory (tests/golden/<kind>/<model>), in name order. */
static void cases_of(const char *kind, const char *model_name, const char *sanitized_case, const int32_t *ids,
                     tally *total)
{
    const char *shared = test_shared_dir();
    char *golden = test_path(STRATA_GOLDEN_DIR, kind), *cases_dir = test_path(golden, model_name);
    char *models_dir = test_path(shared, "models"), *model = test_path(models_dir, model_name);
    DIR *dir = opendir(cases_dir);
    if (!dir) fail_msg("%s: no golden files", cases_dir);
    char *names[64];
    size_t n = 0;
    for (struct dirent *entry; n < 64 && (entry = readdir(dir));) {
        size_t length = strlen(entry->d_name);
        if (length > 5 && strcmp(entry->d_name + length - 5, ".json") == 0) names[n++] = strdup(entry->d_name);
    }
    closedir(dir);
    qsort(names, n, sizeof *names, by_name);
    for (size_t i = 0; i < n; i++) {
#ifdef STRATA_SANITIZE_BUILD
        /* The sanitizers see the same code on one case per model. */
        if (strcmp(names[i], sanitized_case) != 0) {
            free(names[i]);
            continue;
        }
#else
        (void)sanitized_case;
#endif
        char *path = test_path(cases_dir, names[i]);
        run_case(model, path, ids, total);
        free(path);
        free(names[i]);
    }
    free(cases_dir);
    free(golden);
    free(model);
    free(models_dir);
}

/* ModelOpt checkpoints against ModelOpt's. */
static void modelopt_cases(void **state)
{
    (void)state;
    if (!test_shared_dir()) skip();
    int32_t *ids = test_e2e_calib_ids(N_WINDOWS * WINDOW);
    const char *models[] = {"llama-19m", "qwen3moe-47m", "synth-deepseek-v3", "synth-glm4-moe"};
    const char *sanitized[] = {"fp8-kv-fp8.json", "nvfp4.json", "nvfp4-attention-fp8.json", "fp8.json"};
    tally total = {0};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) cases_of("e2e", models[m], sanitized[m], ids, &total);
    print_message("all cases: %d tensors identical to ModelOpt's, %d activation scales within two bf16 steps, "
                  "%d different\n", total.identical, total.scales_within_step, total.different);
    assert_int_equal(total.different, 0);
    assert_int_equal(total.calibrated_differently, 0);
    strata_free(ids);
}

/* The stored input scale of an amax, against compressed-tensors' calculate_qparams and
 * generate_gparam (tests/golden/e2e-ct/input-scales.json): bit for bit. */
static void input_scale_arithmetic(void **state)
{
    (void)state;
    char *path = test_path(STRATA_GOLDEN_DIR, "e2e-ct/input-scales.json");
    sjson *golden = test_read_json(path);
    const sjson *cases = sjson_get(golden, "cases");
    assert_true(sjson_array_size(cases) >= 10);
    const scheme_info *fp8 = scheme_get(STRATA_SCHEME_FP8), *nvfp4 = scheme_get(STRATA_SCHEME_NVFP4);
    for (size_t i = 0; i < sjson_array_size(cases); i++) {
        const sjson *c = sjson_array_at(cases, i);
        double amax, want_fp8, want_nvfp4;
        strata_dtype dtype;
        assert_true(sjson_as_double(sjson_get(c, "amax"), &amax) &&
                    sjson_as_double(sjson_get(c, "fp8_input_scale"), &want_fp8) &&
                    sjson_as_double(sjson_get(c, "nvfp4_input_global_scale"), &want_nvfp4) &&
                    strata_dtype_from_name(sjson_as_string(sjson_get(c, "dtype")), &dtype));
        float got_fp8 = scheme_input_scale_stored(fp8, STRATA_CONVENTION_COMPRESSED_TENSORS, dtype, (float)amax);
        float got_nvfp4 = scheme_input_scale_stored(nvfp4, STRATA_CONVENTION_COMPRESSED_TENSORS, dtype, (float)amax);
        if (got_fp8 != (float)want_fp8 || got_nvfp4 != (float)want_nvfp4)
            fail_msg("amax %.9g (%s): strata stores %.9g and %.9g, compressed-tensors %.9g and %.9g", amax,
                     strata_dtype_name(dtype), (double)got_fp8, (double)got_nvfp4, want_fp8, want_nvfp4);
    }
    sjson_free(golden);
    free(path);
}

/* compressed-tensors checkpoints against llm-compressor's. */
static void compressed_tensors_cases(void **state)
{
    (void)state;
    if (!test_shared_dir()) skip();
    int32_t *ids = test_e2e_calib_ids(N_WINDOWS * WINDOW);
    const char *models[] = {"llama-19m", "qwen3moe-47m"};
    const char *sanitized[] = {"int4-asym.json", "nvfp4.json"};
    tally total = {0};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) cases_of("e2e-ct", models[m], sanitized[m], ids, &total);
    print_message("all cases: %d tensors identical to llm-compressor's, %d activation scales within two bf16 steps, "
                  "%d calibrated differently, %d different\n", total.identical, total.scales_within_step,
                  total.calibrated_differently, total.different);
    assert_int_equal(total.different, 0);
    strata_free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(modelopt_cases, test_setup_dir, test_teardown_dir),
        cmocka_unit_test(input_scale_arithmetic),
        cmocka_unit_test_setup_teardown(compressed_tensors_cases, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
