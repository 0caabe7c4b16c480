/*
 * test_convert.c — conversions to fp32 and the runtime dispatch: every kernel set this
 * CPU runs must match the generic reference bit for bit on all 65536 bf16 and f16
 * patterns, at every alignment and with tails; the narrow formats are checked against
 * values from their definitions.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/cpu.h"

static uint32_t bits(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

/* Whether /proc/cpuinfo's flags hold every feature the named kernel set needs (cpu.c);
 * false where the file is unreadable. */
static bool cpuinfo_has_set(const char *set)
{
    static const struct { const char *set; const char *flags[3]; } NEEDS[] = {
        {"avx2", {"avx2", "f16c", "fma"}},
        {"avx512", {"avx512f", "avx512bw", "avx512vl"}},
    };
    FILE *f = fopen("/proc/cpuinfo", "r"); /* its size reads as 0: read it by lines */
    if (!f) return false;
    char *text = NULL;
    size_t capacity = 0;
    while (getline(&text, &capacity, f) > 0 && strncmp(text, "flags", 5) != 0) {}
    fclose(f);
    char *line = text && strncmp(text, "flags", 5) == 0 ? text : NULL;
    char *end = line ? strchr(line + 1, '\n') : NULL;
    if (end) *end = '\0';
    bool has = false;
    for (size_t i = 0; line && i < sizeof NEEDS / sizeof NEEDS[0]; i++) {
        if (strcmp(NEEDS[i].set, set) != 0) continue;
        has = true;
        for (int k = 0; k < 3; k++) {
            char word[40];
            snprintf(word, sizeof word, " %s", NEEDS[i].flags[k]);
            const char *at = strstr(line, word);
            size_t n = strlen(word);
            if (!at || (at[n] != ' ' && at[n] != '\0' && at[n] != '\n')) has = false;
        }
    }
    free(text);
    return has;
}

static void test_sets_match_reference(void **state)
{
    (void)state;
    enum { N = 65536 };
    uint8_t *src = malloc(2 * N + 16);
    float *expected = malloc(N * sizeof(float)), *actual = malloc(N * sizeof(float));
    const cpu_features *features = cpu_detect();
    size_t checked = 0;
    bool ran[8] = {false};
    assert_true(kernel_set_count() <= 8);
    for (size_t s = 0; s < kernel_set_count(); s++) {
        const kernel_set *set = kernel_set_at(s);
        if (!set->supported(features)) {
            fprintf(stderr, "SKIPPED: kernel set %s: this CPU lacks its features; it was not tested here\n", set->name);
            continue;
        }
        checked++;
        ran[s] = true;
        for (size_t offset = 0; offset < 3; offset++) { /* unaligned sources */
            for (uint32_t i = 0; i < N; i++) {
                src[offset + 2 * i] = (uint8_t)i;
                src[offset + 2 * i + 1] = (uint8_t)(i >> 8);
            }
            for (int f16 = 0; f16 < 2; f16++) {
                void (*ref)(const void *, float *, size_t) = f16 ? KERNELS_GENERIC.f16_to_f32 : KERNELS_GENERIC.bf16_to_f32;
                void (*fn)(const void *, float *, size_t) = f16 ? set->f16_to_f32 : set->bf16_to_f32;
                ref(src + offset, expected, N);
                memset(actual, 0xAB, N * sizeof(float));
                fn(src + offset, actual, N - 5); /* a tail the vector loop does not cover */
                fn(src + offset + 2 * (N - 5), actual + N - 5, 5);
                for (uint32_t i = 0; i < N; i++)
                    if (bits(actual[i]) != bits(expected[i]))
                        fail_msg("%s %s: pattern 0x%04x gives 0x%08x, reference 0x%08x", set->name,
                                 f16 ? "f16" : "bf16", i, bits(actual[i]), bits(expected[i]));
            }
        }
    }
    /* The CPU's own word (/proc/cpuinfo, not strata's detection): a set whose features it
     * lists must have run, so a detection bug cannot leave AVX-512 untested unnoticed. */
    for (size_t s = 0; s < kernel_set_count(); s++)
        if (!ran[s] && cpuinfo_has_set(kernel_set_at(s)->name))
            fail_msg("kernel set %s: /proc/cpuinfo lists its features, but strata did not run it",
                     kernel_set_at(s)->name);
    for (size_t s = 0; s < kernel_set_count(); s++) /* the generic reference runs everywhere */
        if (strcmp(kernel_set_at(s)->name, "generic") == 0) assert_true(ran[s]);
    print_message("checked %zu kernel sets; in use: %s (cpu: %s)\n", checked, strata_cpu_kernel_set(),
                  strata_cpu_features());
    free(src);
    free(expected);
    free(actual);
}

static float convert_one(strata_dtype dtype, const void *src)
{
    float out;
    assert_int_equal(strata_convert_to_f32(dtype, src, 1, &out), STRATA_OK);
    return out;
}

static void test_reference_values(void **state)
{
    (void)state;
    uint16_t h;
    h = 0x3c00; assert_true(convert_one(STRATA_DTYPE_F16, &h) == 1.0f);
    h = 0x0001; assert_true(convert_one(STRATA_DTYPE_F16, &h) == 0x1p-24f);      /* smallest subnormal */
    h = 0x7bff; assert_true(convert_one(STRATA_DTYPE_F16, &h) == 65504.0f);
    h = 0xfc00; assert_true(isinf(convert_one(STRATA_DTYPE_F16, &h)) && convert_one(STRATA_DTYPE_F16, &h) < 0);
    h = 0x7d00; assert_int_equal(bits(convert_one(STRATA_DTYPE_F16, &h)), 0x7fe00000u); /* sNaN comes out quiet */
    h = 0xbf80; assert_true(convert_one(STRATA_DTYPE_BF16, &h) == -1.0f);
    uint8_t b;
    b = 0x7e; assert_true(convert_one(STRATA_DTYPE_F8_E4M3, &b) == 448.0f);       /* E4M3 max */
    b = 0xfe; assert_true(convert_one(STRATA_DTYPE_F8_E4M3, &b) == -448.0f);
    b = 0x7f; assert_true(isnan(convert_one(STRATA_DTYPE_F8_E4M3, &b)));
    b = 0x01; assert_true(convert_one(STRATA_DTYPE_F8_E4M3, &b) == 0x1p-9f);      /* smallest subnormal */
    b = 0x08; assert_true(convert_one(STRATA_DTYPE_F8_E4M3, &b) == 0x1p-6f);      /* smallest normal */
    b = 0x38; assert_true(convert_one(STRATA_DTYPE_F8_E4M3, &b) == 1.0f);
    b = 0x7b; assert_true(convert_one(STRATA_DTYPE_F8_E5M2, &b) == 57344.0f);     /* E5M2 max */
    b = 0x7c; assert_true(isinf(convert_one(STRATA_DTYPE_F8_E5M2, &b)));
    b = 127; assert_true(convert_one(STRATA_DTYPE_F8_E8M0, &b) == 1.0f);
    b = 0; assert_true(convert_one(STRATA_DTYPE_F8_E8M0, &b) == 0x1p-127f);
    b = 0xff; assert_true(isnan(convert_one(STRATA_DTYPE_F8_E8M0, &b)));
    double d = 0.1; assert_true(convert_one(STRATA_DTYPE_F64, &d) == 0.1f);
    float f = -2.5f; assert_true(convert_one(STRATA_DTYPE_F32, &f) == -2.5f);
    /* Every E4M3 code round-trips through its value's position in the ordering. */
    float previous = -INFINITY;
    for (int code = 0; code < 0x7f; code++) {
        b = (uint8_t)code;
        float v = convert_one(STRATA_DTYPE_F8_E4M3, &b);
        assert_true(v > previous || code == 0);
        previous = v;
    }
    int32_t i32 = 1;
    float out;
    assert_int_equal(strata_convert_to_f32(STRATA_DTYPE_I32, &i32, 1, &out), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("I32");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sets_match_reference),
        cmocka_unit_test(test_reference_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
