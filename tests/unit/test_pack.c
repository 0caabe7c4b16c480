/*
 * test_pack.c — export layouts, checked against bytes the reference libraries produce
 * for the same values (docs/FORMAT-NUMERICS.md, sections 5 and 6d/6e).
 */
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Canonical int4 codes of a (rows, cols) matrix of values. */
static uint8_t *canonical(const int *q, int64_t rows, int64_t cols)
{
    int64_t row_bytes = (cols + 1) / 2;
    uint8_t *codes = calloc((size_t)(rows * row_bytes), 1);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            codes[r * row_bytes + c / 2] |= (uint8_t)((q[r * cols + c] & 0xf) << ((c & 1) * 4));
    return codes;
}

static void test_compressed_tensors_words(void **state)
{
    (void)state;
    /* One row of 28 values, -8..7 then -8..3, as pack_to_int32 packs them. */
    int q[28];
    for (int i = 0; i < 16; i++) q[i] = i - 8;
    for (int i = 0; i < 12; i++) q[16 + i] = i - 8;
    uint8_t *codes = canonical(q, 1, 28);
    assert_int_equal(strata_pack_int4_size(STRATA_INT4_COMPRESSED_TENSORS, 1, 28), 16);
    uint32_t words[4];
    assert_int_equal(strata_pack_int4(STRATA_INT4_COMPRESSED_TENSORS, codes, 1, 28, words), STRATA_OK);
    assert_int_equal(words[0], 0x76543210u);
    assert_int_equal(words[1], 0xfedcba98u);
    assert_int_equal(words[2], 0x76543210u);
    assert_int_equal(words[3], 0x0000ba98u); /* as compressed-tensors 0.20.0 pack_to_int32 gives */
    free(codes);
}

static void test_modelopt_awq_rows(void **state)
{
    (void)state;
    /* Rows (1, -1) and (3, -3): bytes 0x31, 0xdf. */
    int q[4] = {1, -1, 3, -3};
    uint8_t *codes = canonical(q, 2, 2);
    uint8_t out[2];
    assert_int_equal(strata_pack_int4_size(STRATA_INT4_MODELOPT_AWQ, 2, 2), 2);
    assert_int_equal(strata_pack_int4(STRATA_INT4_MODELOPT_AWQ, codes, 2, 2, out), STRATA_OK);
    assert_int_equal(out[0], 0x31);
    assert_int_equal(out[1], 0xdf);
    assert_int_equal(strata_pack_int4_size(STRATA_INT4_MODELOPT_AWQ, 3, 2), 0);
    assert_int_equal(strata_pack_int4(STRATA_INT4_MODELOPT_AWQ, codes, 3, 2, out), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("even row count");
    free(codes);
}

static void test_zero_points(void **state)
{
    (void)state;
    /* Zero points (1, 2, 3) down the rows of one column pack to 0xba9. */
    int8_t zp[3] = {1, 2, 3};
    int32_t out[1];
    assert_int_equal(strata_pack_zero_points_int4(zp, 3, 1, out), STRATA_OK);
    assert_int_equal(out[0], 0xba9);
}

static void test_kv_scale(void **state)
{
    (void)state;
    assert_true(strata_fp8_kv_scale(448.0f) == 1.0f);
    assert_true(strata_fp8_kv_scale(3.5f) == 3.5f / 448.0f);
    assert_true(strata_fp8_kv_scale(0.0f) == 1.0f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compressed_tensors_words), cmocka_unit_test(test_modelopt_awq_rows),
        cmocka_unit_test(test_zero_points),              cmocka_unit_test(test_kv_scale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
