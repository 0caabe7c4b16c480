/*
 * test_core.c — the small pieces everything uses: version, status strings, the error
 * buffer, dtype table, string map, string builder and the JSON layer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "core/strmap.h"
#include "helpers.h"
#include "io/json.h"

static void test_version_and_status(void **state)
{
    (void)state;
    assert_string_equal(strata_version(), STRATA_VERSION_STRING);
    assert_int_equal(strata_version_number(),
                     STRATA_VERSION_MAJOR * 10000 + STRATA_VERSION_MINOR * 100 + STRATA_VERSION_PATCH);
    assert_string_equal(strata_status_str(STRATA_ERR_FORMAT), "malformed file");
    assert_string_equal(strata_status_str((strata_status)999), "unknown status");
    assert_int_equal(strata_fail(STRATA_ERR_IO, "file %s", "x"), STRATA_ERR_IO);
    assert_string_equal(strata_last_error(), "file x");
    strata_fail_context(STRATA_ERR_IO, "while %s", "reading");
    assert_string_equal(strata_last_error(), "while reading: file x");
    strata_error_clear();
    assert_string_equal(strata_last_error(), "");
}

static void test_dtypes(void **state)
{
    (void)state;
    const char *names[] = {"BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
                           "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "F8_E8M0"};
    const size_t sizes[] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8, 1};
    for (int d = 0; d < STRATA_DTYPE_COUNT; d++) {
        strata_dtype parsed;
        assert_true(strata_dtype_from_name(names[d], &parsed));
        assert_int_equal(parsed, d);
        assert_string_equal(strata_dtype_name((strata_dtype)d), names[d]);
        assert_int_equal(strata_dtype_size((strata_dtype)d), sizes[d]);
    }
    strata_dtype unused;
    assert_false(strata_dtype_from_name("bf16", &unused));
    assert_false(strata_dtype_from_name("F4", &unused));
    assert_int_equal(strata_dtype_size(STRATA_DTYPE_COUNT), 0);
    assert_true(strata_dtype_is_float(STRATA_DTYPE_BF16));
    assert_false(strata_dtype_is_float(STRATA_DTYPE_I8));
}

static void test_strmap(void **state)
{
    (void)state;
    enum { N = 5000 };
    static char keys[N][16];
    strmap map = {0};
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "tensor.%d", i);
        bool present = true;
        assert_true(strmap_insert(&map, keys[i], (size_t)i * 3, &present, NULL));
        assert_false(present);
    }
    assert_int_equal(map.count, N);
    for (int i = 0; i < N; i++) {
        size_t v = 0;
        assert_true(strmap_find(&map, keys[i], &v));
        assert_int_equal(v, (size_t)i * 3);
    }
    bool present = false;
    size_t existing = 0;
    assert_true(strmap_insert(&map, "tensor.17", 1, &present, &existing));
    assert_true(present);
    assert_int_equal(existing, 51);
    assert_false(strmap_find(&map, "tensor.5000", NULL));
    strmap_free(&map);
    assert_false(strmap_find(&map, "tensor.1", NULL));
}

static void test_strbuf(void **state)
{
    (void)state;
    strbuf sb = {0};
    char *empty = strbuf_take(&sb);
    assert_string_equal(empty, "");
    free(empty);
    strbuf_append(&sb, "a");
    strbuf_printf(&sb, "%d-%s", 42, "b");
    strbuf_pad(&sb, '.', 3);
    for (int i = 0; i < 1000; i++) strbuf_append(&sb, "x");
    assert_true(strbuf_ok(&sb));
    char *s = strbuf_take(&sb);
    assert_int_equal(strlen(s), 1 + 4 + 3 + 1000);
    assert_memory_equal(s, "a42-b...x", 9);
    free(s);
}

static void test_json(void **state)
{
    (void)state;
    const char *text = "{\"b\": 1, \"a\": [1.5, \"x\", true, null], \"big\": 9007199254740993, \"r\": 3.0}";
    sjson_error error;
    sjson *root = sjson_parse(text, strlen(text), true, &error);
    assert_non_null(root);
    void *it = sjson_iter(root);
    assert_string_equal(sjson_iter_key(it), "b"); /* insertion order kept */
    int64_t i64;
    assert_true(sjson_as_int64(sjson_get(root, "big"), &i64));
    assert_true(i64 == 9007199254740993LL); /* exact beyond 2^53 */
    assert_true(sjson_as_int64(sjson_get(root, "r"), &i64) && i64 == 3);
    double d;
    assert_false(sjson_as_int64(sjson_array_at(sjson_get(root, "a"), 0), &i64));
    assert_true(sjson_as_double(sjson_array_at(sjson_get(root, "a"), 0), &d) && d == 1.5);
    assert_string_equal(sjson_as_string(sjson_array_at(sjson_get(root, "a"), 1)), "x");
    assert_true(sjson_is_null(sjson_array_at(sjson_get(root, "a"), 3)));
    assert_null(sjson_get(root, "missing"));
    assert_string_equal(sjson_type_name(sjson_get(root, "a")), "an array");
    sjson_free(root);

    assert_null(sjson_parse("{\"k\":1,\"k\":2}", 13, true, &error));
    assert_non_null(strstr(error.text, "duplicate"));
    assert_null(sjson_parse("{\"k\":", 5, false, &error));
    assert_int_equal(error.line, 1);

    sjson *o = sjson_new_object();
    assert_true(sjson_set(o, "eps", sjson_new_real(1e-6)));
    assert_true(sjson_set(o, "theta", sjson_new_real(10000.0)));
    assert_true(sjson_set(o, "nan", sjson_new_real(0.0 / 0.0)));
    char *dumped = sjson_dump(o, 0);
    assert_string_equal(dumped, "{\"eps\":1e-6,\"theta\":10000.0,\"nan\":null}");
    free(dumped);
    sjson_free(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_status), cmocka_unit_test(test_dtypes), cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_strbuf),             cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
