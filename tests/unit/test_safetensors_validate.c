/*
 * test_safetensors_validate.c — every malformed-file case the reader must refuse, each
 * with a message naming the file and, where there is one, the tensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"


/* Writes header + data_length zero bytes to bad.safetensors and expects `status` with a
 * message mentioning the path and each fragment. */
static void expect_refused(const char *header, size_t data_length, strata_status status, const char *fragment1,
                           const char *fragment2)
{
    char *path = test_path(test_dir, "bad.safetensors");
    void *data = calloc(1, data_length ? data_length : 1);
    test_write_safetensors(path, header, data, data_length);
    strata_safetensors *st = (strata_safetensors *)0x1;
    assert_int_equal(strata_safetensors_open(path, &st), status);
    assert_null(st);
    ASSERT_ERROR_MENTIONS(path, fragment1, fragment2 ? fragment2 : "");
    free(data);
    free(path);
}

static void expect_raw_refused(const unsigned char *bytes, size_t length, const char *fragment)
{
    char *path = test_path(test_dir, "raw.safetensors");
    test_write_file(path, bytes, length);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(path, fragment);
    free(path);
}

static void test_truncated_files(void **state)
{
    (void)state;
    expect_raw_refused((const unsigned char *)"", 0, "too short");
    expect_raw_refused((const unsigned char *)"\x10\x00\x00", 3, "too short");
    /* Header length 100 with 10 bytes after it. */
    unsigned char past[18] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    expect_raw_refused(past, sizeof past, "runs past the end of the file");
    /* Header length 2^40: absurd, refused before any allocation. */
    unsigned char huge[16] = {0, 0, 0, 0, 0, 1, 0, 0, '{', '}'};
    expect_raw_refused(huge, sizeof huge, "absurdly large");
    unsigned char max[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    expect_raw_refused(max, sizeof max, "absurdly large");
}

static void test_bad_json(void **state)
{
    (void)state;
    expect_refused("{\"a\":{\"dtype\":\"F32\",", 0, STRATA_ERR_FORMAT, "not valid JSON", "line 1");
    expect_refused("[1, 2]", 0, STRATA_ERR_FORMAT, "does not start with '{'", NULL);
    expect_refused("{\"a\": 5}", 0, STRATA_ERR_FORMAT, "tensor 'a'", "must be an object");
    expect_refused("{\"__metadata__\":{\"k\":1}}", 0, STRATA_ERR_FORMAT, "__metadata__", "'k' must be a string");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                   8, STRATA_ERR_FORMAT, "duplicate", "w");
}

static void test_bad_entries(void **state)
{
    (void)state;
    expect_refused("{\"layer.w\":{\"dtype\":\"F7\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1, STRATA_ERR_FORMAT,
                   "tensor 'layer.w'", "unknown dtype 'F7'");
    expect_refused("{\"w\":{\"shape\":[1],\"data_offsets\":[0,1]}}", 1, STRATA_ERR_FORMAT, "tensor 'w'", "dtype");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, STRATA_ERR_FORMAT,
                   "tensor 'w'", "non-negative");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, STRATA_ERR_FORMAT,
                   "tensor 'w'", "\"shape\" must be an array");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
                   STRATA_ERR_UNSUPPORTED, "tensor 'w'", "9 dimensions");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, STRATA_ERR_FORMAT,
                   "tensor 'w'", "data_offsets");
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, STRATA_ERR_FORMAT,
                   "tensor 'w'", "end before they begin");
}

static void test_size_mismatch_and_bounds(void **state)
{
    (void)state;
    /* numel * dtype size != end - begin */
    expect_refused("{\"q_proj\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,10]}}", 10, STRATA_ERR_FORMAT,
                   "tensor 'q_proj'", "need 12 bytes but data_offsets [0, 10] span 10");
    /* Offsets past the end of the data. */
    expect_refused("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, STRATA_ERR_FORMAT,
                   "tensor 'w'", "run past the end of the data (8 bytes)");
    /* Offsets far beyond any file, near 2^63. */
    expect_refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[9223372036854775800,9223372036854775804]}}",
                   8, STRATA_ERR_FORMAT, "tensor 'w'", "run past the end");
}

static void test_overflow(void **state)
{
    (void)state;
    /* Element count overflows 64 bits. */
    expect_refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0,
                   STRATA_ERR_FORMAT, "tensor 'w'", "overflows");
    /* Element count fits, byte count does not. */
    expect_refused("{\"w\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}", 0,
                   STRATA_ERR_FORMAT, "tensor 'w'", "overflows");
    /* An integer beyond int64 is not valid here. */
    expect_refused("{\"w\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,0]}}", 0,
                   STRATA_ERR_FORMAT, "not valid JSON", NULL);
}

static void test_overlap_and_gaps(void **state)
{
    (void)state;
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                   12, STRATA_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                   "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                   12, STRATA_ERR_FORMAT, "tensor 'b'", "4 unaccounted bytes");
    expect_refused("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9, STRATA_ERR_FORMAT,
                   "5 bytes after the last tensor", NULL);
}

/* Index json problems: missing shard, tensor absent from its shard, path traversal. */
static void test_bad_index(void **state)
{
    (void)state;
    float a = 1;
    char *shard = test_path(test_dir, "s1.safetensors");
    test_write_safetensors(shard, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &a, 4);
    char *index = test_path(test_dir, "model.safetensors.index.json");
    strata_safetensors *st = NULL;

    const char *missing_shard = "{\"weight_map\":{\"a\":\"s1.safetensors\",\"lm_head.weight\":\"s9.safetensors\"}}";
    test_write_file(index, missing_shard, strlen(missing_shard));
    assert_int_equal(strata_safetensors_open(index, &st), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS(index, "shard 's9.safetensors'", "lm_head.weight", "does not exist");

    const char *absent = "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\"}}";
    test_write_file(index, absent, strlen(absent));
    assert_int_equal(strata_safetensors_open(index, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(index, "tensor 'b'", "'s1.safetensors'", "does not contain it");

    const char *traversal = "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}";
    test_write_file(index, traversal, strlen(traversal));
    assert_int_equal(strata_safetensors_open(index, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(index, "tensor 'a'", "file name beside the index");

    const char *no_map = "{\"metadata\":{}}";
    test_write_file(index, no_map, strlen(no_map));
    assert_int_equal(strata_safetensors_open(index, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(index, "weight_map");

    test_write_file(index, "{\"weight_map\":", 14);
    assert_int_equal(strata_safetensors_open(test_dir, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(index, "not valid JSON");

    /* A broken shard behind a valid index is reported with the shard's name. */
    const char *ok = "{\"weight_map\":{\"a\":\"s1.safetensors\"}}";
    test_write_file(index, ok, strlen(ok));
    test_write_safetensors(shard, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", &a, 4);
    assert_int_equal(strata_safetensors_open(test_dir, &st), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(shard, "tensor 'a'", "need 8 bytes");
    assert_null(st);
    free(shard);
    free(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_files),   cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_entries),       cmocka_unit_test(test_size_mismatch_and_bounds),
        cmocka_unit_test(test_overflow),          cmocka_unit_test(test_overlap_and_gaps),
        cmocka_unit_test(test_bad_index),
    };
    return cmocka_run_group_tests(tests, test_setup_dir, test_teardown_dir);
}
