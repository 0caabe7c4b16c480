/*
 * test_export_golden.c — strata's ModelOpt checkpoints against what ModelOpt's own exporter
 * writes (tests/golden/export/<case>.json, from tools/gen_golden_export.py with ModelOpt
 * 0.47 on ../shared/models/llama-19m): for every case, strata quantize (and strata convert,
 * for the data-free schemes) on the same model gives the same tensor names, dtypes and
 * shapes, the same hf_quant_config.json and config.json quantization_config (producer name
 * and version aside), the same safetensors metadata, and every file ModelOpt writes that
 * is strata's to write.
 * These are the rules of tools/check_export.py, so CI checks them without Python.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden_json.h"
#include "helpers.h"
#include "io/json_file.h"
#include "quant/scheme.h"

enum { N_SEQ = 2, SEQ_LEN = 32 };

static sjson *read_json(const char *dir, const char *name)
{
    char *path = test_path(dir, name);
    sjson *value;
    if (json_file_read(path, 1 << 24, false, &value) != STRATA_OK) fail_msg("%s", strata_last_error());
    free(path);
    return value;
}

/* out's one shard holds exactly the golden tensors, with their dtypes and shapes. */
static void assert_golden_tensors(const char *out, const sjson *golden, const char *label)
{
    const sjson *tensors = sjson_get(golden, "tensors");
    char *path = test_path(out, "model.safetensors");
    strata_safetensors *st;
    if (strata_safetensors_open(path, &st) != STRATA_OK) fail_msg("%s: %s", label, strata_last_error());
    if (strata_safetensors_count(st) != sjson_object_size(tensors))
        fail_msg("%s: %zu tensors, ModelOpt writes %zu", label, strata_safetensors_count(st),
                 sjson_object_size(tensors));
    for (void *it = sjson_iter(tensors); it; it = sjson_iter_next(tensors, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *want = sjson_iter_value(it), *shape = sjson_get(want, "shape");
        const strata_tensor *t = strata_safetensors_find(st, name);
        if (!t) fail_msg("%s: tensor %s is missing", label, name);
        if (strcmp(strata_dtype_name(t->dtype), sjson_as_string(sjson_get(want, "dtype"))) != 0)
            fail_msg("%s: %s is %s, ModelOpt writes %s", label, name, strata_dtype_name(t->dtype),
                     sjson_as_string(sjson_get(want, "dtype")));
        bool same_shape = (size_t)t->n_dims == sjson_array_size(shape);
        for (int d = 0; same_shape && d < t->n_dims; d++) {
            int64_t extent;
            same_shape = sjson_as_int64(sjson_array_at(shape, (size_t)d), &extent) && extent == t->shape[d];
        }
        if (!same_shape) fail_msg("%s: %s has another shape than ModelOpt's %s", label, name, sjson_dump(shape, 0));
    }
    const sjson *metadata = sjson_get(golden, "safetensors_metadata");
    for (void *it = sjson_iter(metadata); it; it = sjson_iter_next(metadata, it)) {
        const char *value = strata_safetensors_metadata(st, sjson_iter_key(it));
        if (!value || strcmp(value, sjson_as_string(sjson_iter_value(it))) != 0)
            fail_msg("%s: __metadata__.%s is %s", label, sjson_iter_key(it), value ? value : "absent");
    }
    strata_safetensors_close(st);
    free(path);
}

/* A file ModelOpt writes that strata must write too: its own outputs, and the side files
 * the source has (transformers derives a generation_config.json from config.json when the
 * source has none; strata copies one but does not invent it). */
static bool file_expected(const char *name, const char *model)
{
    if (!strcmp(name, "config.json") || !strcmp(name, "hf_quant_config.json") || !strcmp(name, "model.safetensors"))
        return true;
    char *source = test_path(model, name);
    bool present = access(source, F_OK) == 0;
    free(source);
    return present;
}

static void assert_matches_golden(const char *out, const char *model, const sjson *golden, const char *label)
{
    assert_golden_tensors(out, golden, label);
    sjson *hf = read_json(out, "hf_quant_config.json"), *config = read_json(out, "config.json");
    char what[256];
    snprintf(what, sizeof what, "%s: hf_quant_config.json", label);
    golden_assert_json_same(what, sjson_get(golden, "hf_quant_config"), hf);
    snprintf(what, sizeof what, "%s: config.json quantization_config", label);
    golden_assert_json_same(what, sjson_get(golden, "quantization_config"), sjson_get(config, "quantization_config"));
    const sjson *files = sjson_get(golden, "files");
    for (size_t i = 0; i < sjson_array_size(files); i++) {
        const char *name = sjson_as_string(sjson_array_at(files, i));
        if (!file_expected(name, model)) continue;
        char *path = test_path(out, name);
        if (access(path, F_OK) != 0) fail_msg("%s: ModelOpt writes %s, strata does not", label, path);
        free(path);
    }
    sjson_free(hf);
    sjson_free(config);
}

static void every_golden_case(void **state)
{
    (void)state;
    const char *shared = test_shared_dir();
    if (!shared) skip();
    char *models = test_path(shared, "models"), *model = test_path(models, "llama-19m");
    char *golden_dir = test_path(STRATA_GOLDEN_DIR, "export");
    int32_t tokens[N_SEQ * SEQ_LEN];
    for (int i = 0; i < N_SEQ * SEQ_LEN; i++) tokens[i] = (i * 131 + 7) % 8000;
    DIR *dir = opendir(golden_dir);
    assert_non_null(dir);
    int n_cases = 0;
    for (struct dirent *entry; (entry = readdir(dir));) {
        size_t length = strlen(entry->d_name);
        if (length < 6 || strcmp(entry->d_name + length - 5, ".json") != 0) continue;
        sjson *golden = read_json(golden_dir, entry->d_name);
        const char *scheme_name = sjson_as_string(sjson_get(golden, "scheme"));
        strata_scheme scheme;
        if (!scheme_name || !strata_scheme_from_name(scheme_name, &scheme))
            fail_msg("%s: scheme %s is not strata's", entry->d_name, scheme_name ? scheme_name : "(none)");
        bool kv_fp8 = sjson_as_string(sjson_get(golden, "kv_cache")) != NULL;
        char label[300];
        snprintf(label, sizeof label, "quantize (%s)", entry->d_name);
        char *out = test_path(test_dir, entry->d_name);
        strata_quantize_params qp = {.model_dir = model, .output_dir = out, .scheme = scheme, .kv_cache_fp8 = kv_fp8,
                                     .tokens = tokens, .n_samples = N_SEQ, .seq_len = SEQ_LEN};
        strata_quantize_result qr;
        if (strata_quantize_model(&qp, &qr) != STRATA_OK) fail_msg("%s: %s", label, strata_last_error());
        assert_matches_golden(out, model, golden, label);
        test_remove_tree(out);
        /* The data-free schemes also through strata convert. */
        if (!kv_fp8 && !input_has_static_scale(scheme_get(scheme)->input)) {
            snprintf(label, sizeof label, "convert (%s)", entry->d_name);
            strata_convert_params cp = {.model_dir = model, .output_dir = out, .scheme = scheme};
            strata_convert_result cr;
            if (strata_convert_model(&cp, &cr) != STRATA_OK) fail_msg("%s: %s", label, strata_last_error());
            assert_matches_golden(out, model, golden, label);
            test_remove_tree(out);
        }
        free(out);
        sjson_free(golden);
        n_cases++;
    }
    closedir(dir);
    print_message("%d ModelOpt export cases matched\n", n_cases);
    assert_true(n_cases >= 10);
    free(golden_dir);
    free(model);
    free(models);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_golden_case, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
