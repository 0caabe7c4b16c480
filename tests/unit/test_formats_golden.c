/*
 * test_formats_golden.c — strata's quantizers against golden files written by the
 * reference libraries (tools/gen_golden_formats.py: ModelOpt, compressed-tensors, torch):
 * codes, scales, zero points and global scales must be identical, byte for byte.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "io/json.h"
#include "kernels/cpu.h"

typedef struct golden {
    char name[128];
    strata_quant_params params;
    strata_dtype dtype;
    int64_t rows, cols;
    const uint8_t *input, *codes, *scales, *zero_points;
    size_t code_bytes, scale_bytes, zero_point_bytes;
    bool has_global;
    float global_scale;
} golden;

static bool parse_golden(const char *data, size_t length, golden *g)
{
    if (length < 12 || memcmp(data, "STGOLD01", 8) != 0) return false;
    uint32_t header_length;
    memcpy(&header_length, data + 8, 4);
    sjson_error error;
    sjson *h = sjson_parse(data + 12, header_length, true, &error);
    if (!h) return false;
    int64_t rows, cols, group, code_bytes, scale_bytes, zero_bytes;
    double amax;
    bool has_global;
    const char *format = sjson_as_string(sjson_get(h, "format"));
    const char *convention = sjson_as_string(sjson_get(h, "convention"));
    const char *dtype = sjson_as_string(sjson_get(h, "dtype"));
    const char *name = sjson_as_string(sjson_get(h, "case"));
    bool ok = format && convention && dtype && name && sjson_as_int64(sjson_get(h, "rows"), &rows) &&
              sjson_as_int64(sjson_get(h, "cols"), &cols) && sjson_as_int64(sjson_get(h, "group_size"), &group) &&
              sjson_as_int64(sjson_get(h, "code_bytes"), &code_bytes) &&
              sjson_as_int64(sjson_get(h, "scale_bytes"), &scale_bytes) &&
              sjson_as_int64(sjson_get(h, "zero_point_bytes"), &zero_bytes) &&
              sjson_as_double(sjson_get(h, "amax"), &amax) && sjson_as_bool(sjson_get(h, "has_global"), &has_global) &&
              strata_format_from_name(format, &g->params.format) && strata_dtype_from_name(dtype, &g->dtype);
    if (ok) {
        snprintf(g->name, sizeof g->name, "%s", name);
        g->params.convention = strcmp(convention, "modelopt") == 0 ? STRATA_CONVENTION_MODELOPT
                                                                   : STRATA_CONVENTION_COMPRESSED_TENSORS;
        g->params.group_size = group;
        g->params.amax = (float)amax;
        g->rows = rows;
        g->cols = cols;
        g->code_bytes = (size_t)code_bytes;
        g->scale_bytes = (size_t)scale_bytes;
        g->zero_point_bytes = (size_t)zero_bytes;
        g->has_global = has_global;
        size_t input_bytes = (size_t)(rows * cols) * strata_dtype_size(g->dtype);
        const uint8_t *p = (const uint8_t *)data + 12 + header_length;
        size_t need = 12 + header_length + input_bytes + g->code_bytes + g->scale_bytes + g->zero_point_bytes +
                      (has_global ? 4 : 0);
        ok = need == length;
        g->input = p;
        g->codes = p += input_bytes;
        g->scales = p += g->code_bytes;
        g->zero_points = p += g->scale_bytes;
        p += g->zero_point_bytes;
        if (has_global) memcpy(&g->global_scale, p, 4);
    }
    sjson_free(h);
    return ok;
}

static void compare_bytes(const char *what, const golden *g, const uint8_t *expected, const uint8_t *actual, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (expected[i] != actual[i])
            fail_msg("%s: %s byte %zu of %zu: reference 0x%02x, strata 0x%02x", g->name, what, i, n, expected[i],
                     actual[i]);
}

static void check_golden(const golden *g)
{
    strata_quant_shape shape;
    assert_int_equal(strata_quant_shape_get(&g->params, g->rows, g->cols, &shape), STRATA_OK);
    if (shape.code_bytes != g->code_bytes || shape.scale_bytes != g->scale_bytes ||
        shape.zero_point_bytes != g->zero_point_bytes)
        fail_msg("%s: sizes differ: codes %zu/%zu scales %zu/%zu zero points %zu/%zu", g->name, shape.code_bytes,
                 g->code_bytes, shape.scale_bytes, g->scale_bytes, shape.zero_point_bytes, g->zero_point_bytes);
    strata_qtensor q = {.codes = malloc(shape.code_bytes), .scales = malloc(shape.scale_bytes),
                        .zero_points = shape.zero_point_bytes ? malloc(shape.zero_point_bytes) : NULL};
    if (strata_quantize(&g->params, g->dtype, g->input, g->rows, g->cols, &q) != STRATA_OK)
        fail_msg("%s: %s", g->name, strata_last_error());
    compare_bytes("scales", g, g->scales, q.scales, g->scale_bytes);
    compare_bytes("codes", g, g->codes, q.codes, g->code_bytes);
    compare_bytes("zero points", g, g->zero_points, (const uint8_t *)q.zero_points, g->zero_point_bytes);
    if (g->has_global && memcmp(&g->global_scale, &q.global_scale, 4) != 0)
        fail_msg("%s: global scale: reference %.9g, strata %.9g", g->name, (double)g->global_scale,
                 (double)q.global_scale);
    free(q.codes);
    free(q.scales);
    free(q.zero_points);
}

static void test_golden_files(void **state)
{
    (void)state;
    DIR *dir = opendir(STRATA_GOLDEN_DIR "/formats");
    assert_non_null(dir);
    size_t checked = 0;
    for (struct dirent *e; (e = readdir(dir));) {
        size_t n = strlen(e->d_name);
        if (n < 8 || strcmp(e->d_name + n - 7, ".golden") != 0) continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/formats/%s", STRATA_GOLDEN_DIR, e->d_name);
        size_t length;
        char *data = test_read_file(path, &length);
        golden g = {0};
        if (!parse_golden(data, length, &g)) fail_msg("%s: malformed golden file", path);
        /* Every kernel set this CPU runs must reproduce the reference. */
        for (size_t k = 0; k < kernel_set_count(); k++) {
            const kernel_set *set = kernel_set_at(k);
            if (!set->supported(cpu_detect())) continue;
            kernels_override(set);
            check_golden(&g);
            print_message("%-24s %-11s %-5s [%lld, %lld] %-8s identical\n", g.name,
                          strata_format_get(g.params.format)->name, strata_dtype_name(g.dtype), (long long)g.rows,
                          (long long)g.cols, set->name);
        }
        kernels_override(NULL);
        free(data);
        checked++;
    }
    closedir(dir);
    assert_true(checked >= 16);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
