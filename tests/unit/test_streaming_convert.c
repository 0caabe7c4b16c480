/*
 * test_streaming_convert.c — strata convert: for every data-free scheme its output equals
 * strata quantize --algo max's tensor for tensor (and its hf_quant_config.json byte for
 * byte), on a dense model and on a MoE model whose experts are stacked, read in pieces
 * smaller than a tensor; schemes that need calibration, quantized inputs and empty
 * patterns are refused without leaving an output directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

enum { N_SEQ = 2, SEQ_LEN = 16 };

static char *synth(const char *name, strata_family family, bool stacked)
{
    char *dir = test_path(test_dir, name);
    strata_synth_params p = {.family = family, .seed = 9, .n_layers = 2, .hidden_size = 256, .n_experts = 4,
                             .stacked_experts = stacked};
    assert_int_equal(strata_synth_model(dir, &p), STRATA_OK);
    return dir;
}

/* Every tensor of a's single shard is in b with the same dtype, shape and bytes. */
static void assert_same_tensors(const char *a_dir, const char *b_dir)
{
    char *a_path = test_path(a_dir, "model.safetensors"), *b_path = test_path(b_dir, "model.safetensors");
    strata_safetensors *a, *b;
    assert_int_equal(strata_safetensors_open(a_path, &a), STRATA_OK);
    assert_int_equal(strata_safetensors_open(b_path, &b), STRATA_OK);
    assert_int_equal(strata_safetensors_count(a), strata_safetensors_count(b));
    for (size_t i = 0; i < strata_safetensors_count(a); i++) {
        const strata_tensor *x = strata_safetensors_at(a, i), *y = strata_safetensors_find(b, x->name);
        if (!y) fail_msg("%s: %s is missing from %s", a_dir, x->name, b_dir);
        assert_int_equal(x->dtype, y->dtype);
        assert_int_equal(x->n_dims, y->n_dims);
        for (int d = 0; d < x->n_dims; d++) assert_int_equal(x->shape[d], y->shape[d]);
        if (x->n_bytes != y->n_bytes || memcmp(x->data, y->data, x->n_bytes) != 0)
            fail_msg("%s differs between %s and %s", x->name, a_dir, b_dir);
    }
    strata_safetensors_close(a);
    strata_safetensors_close(b);
    free(a_path);
    free(b_path);
    test_assert_same_file(a_dir, b_dir, "hf_quant_config.json");
}

static void convert_equals_quantize_max(void **state)
{
    (void)state;
    static const strata_scheme SCHEMES[] = {STRATA_SCHEME_FP8_DYNAMIC, STRATA_SCHEME_NVFP4_WEIGHT_ONLY,
                                            STRATA_SCHEME_MXFP4, STRATA_SCHEME_INT8, STRATA_SCHEME_INT4,
                                            STRATA_SCHEME_FP8_BLOCK};
    static const char *const EXCLUDE[] = {"*.layers.1.self_attn.o_proj", "*.experts.2.*"};
    char *models[2] = {synth("dense", STRATA_FAMILY_LLAMA, false), synth("moe-stacked", STRATA_FAMILY_QWEN3_MOE, true)};
    int32_t tokens[N_SEQ * SEQ_LEN];
    for (int i = 0; i < N_SEQ * SEQ_LEN; i++) tokens[i] = (i * 37 + 5) % 512;
    for (int m = 0; m < 2; m++)
        for (size_t s = 0; s < sizeof SCHEMES / sizeof SCHEMES[0]; s++) {
            char name[96];
            snprintf(name, sizeof name, "convert-%d-%s", m, strata_scheme_name(SCHEMES[s]));
            char *converted = test_path(test_dir, name);
            /* 4 KiB reads: every weight arrives in several pieces. */
            strata_convert_params cp = {.model_dir = models[m], .output_dir = converted, .scheme = SCHEMES[s],
                                        .exclude = EXCLUDE, .n_exclude = 2, .read_bytes = 4096};
            strata_convert_result cr;
            if (strata_convert_model(&cp, &cr) != STRATA_OK) fail_msg("%s: %s", name, strata_last_error());
            assert_true(cr.n_quantized > 0 && cr.n_copied > 0);
            snprintf(name, sizeof name, "quantize-%d-%s", m, strata_scheme_name(SCHEMES[s]));
            char *quantized = test_path(test_dir, name);
            strata_quantize_params qp = {.model_dir = models[m], .output_dir = quantized, .scheme = SCHEMES[s],
                                         .exclude = EXCLUDE, .n_exclude = 2, .tokens = tokens, .n_samples = N_SEQ,
                                         .seq_len = SEQ_LEN};
            strata_quantize_result qr;
            if (strata_quantize_model(&qp, &qr) != STRATA_OK) fail_msg("%s: %s", name, strata_last_error());
            assert_int_equal(cr.n_quantized, qr.n_quantized_linears);
            assert_same_tensors(converted, quantized);
            free(converted);
            free(quantized);
        }
    free(models[0]);
    free(models[1]);
}

static void refusals_leave_nothing(void **state)
{
    (void)state;
    char *model = synth("refused", STRATA_FAMILY_LLAMA, false);
    char *out = test_path(test_dir, "refused-out");
    strata_convert_params p = {.model_dir = model, .output_dir = out, .scheme = STRATA_SCHEME_FP8};
    strata_convert_result r;
    assert_int_equal(strata_convert_model(&p, &r), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("scheme fp8", "calibrated static scale", "strata quantize");
    p.scheme = STRATA_SCHEME_INT4_ASYM;
    assert_int_equal(strata_convert_model(&p, &r), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("int4-asym", "no ModelOpt format");
    static const char *const EMPTY[] = {""};
    p.scheme = STRATA_SCHEME_INT8;
    p.exclude = EMPTY;
    p.n_exclude = 1;
    assert_int_equal(strata_convert_model(&p, &r), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("empty --exclude pattern");
    assert_false(access(out, F_OK) == 0);

    /* A quantized checkpoint is refused by name, and the new directory removed. */
    p.exclude = NULL;
    p.n_exclude = 0;
    assert_int_equal(strata_convert_model(&p, &r), STRATA_OK);
    char *again = test_path(test_dir, "again");
    strata_convert_params q = {.model_dir = out, .output_dir = again, .scheme = STRATA_SCHEME_INT4};
    assert_int_equal(strata_convert_model(&q, &r), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("already quantized", "modelopt");
    assert_false(access(again, F_OK) == 0);
    free(again);
    free(out);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(convert_equals_quantize_max, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(refusals_leave_nothing, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
