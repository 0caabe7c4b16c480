/*
 * test_kernels.c — every SIMD variant of the quantization row kernels against the generic
 * reference, bit for bit, on random and adversarial inputs: zeros and negative zeros,
 * denormals, E4M3 rounding ties and the 448/464/480 boundaries, E2M1 midpoints, huge
 * values, every length from 1 to 70 (vector tails) and unaligned addresses.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/cpu.h"
#include "kernels/minifloat.h"

enum { N = 4096 };

static uint64_t state = 12345;

static uint32_t next(void)
{
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (uint32_t)(state >> 16);
}

/* Values that sit exactly on the decision points of both codecs, scaled by a few
 * divisors, mixed with random bit patterns of finite floats. */
static void fill(float *x, size_t n)
{
    static const float SPECIAL[] = {0.0f, -0.0f, 0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 7.0f,
                                    448.0f, 456.0f, 464.0f, 464.5f, 479.9f, 480.0f, 1e6f, 0x1p-6f, 0x1p-9f,
                                    0x1p-10f, 0x1.8p-10f, 0x1p-11f, 1.0625f, 1.1875f, 0x1p-126f, 0x1p-149f, FLT_MAX};
    for (size_t i = 0; i < n; i++) {
        uint32_t r = next();
        float v;
        switch (r % 4) {
        case 0: v = SPECIAL[(r >> 4) % (sizeof SPECIAL / sizeof SPECIAL[0])]; break;
        case 1: v = f32_from_bits(next() & 0x7f7fffffu); break;                 /* any finite magnitude */
        case 2: v = ((float)(int)(next() % 2001) - 1000.0f) / 64.0f; break;      /* dense small values */
        default: v = f32_from_bits((next() % 0x4480u + 0x3a00u) << 16); break;   /* bf16-like, around the E4M3 range */
        }
        x[i] = (r & (1u << 30)) ? -v : v;
    }
}

/* One absmax kernel (f32 input, or bf16 when name says so) of set against the reference,
 * for every block size up to dense_up_to and doubling sizes beyond, to 130. */
static void compare_absmax(const kernel_set *set, const char *name, const void *src, size_t n, size_t dense_up_to)
{
    bool bf16 = strcmp(name, "bf16_block_absmax") == 0;
    float ma[N], mb[N];
    for (size_t block = 1; block <= 130; block = block < dense_up_to ? block + 1 : block * 2) {
        bool fa = bf16 ? KERNELS_GENERIC.bf16_block_absmax(src, n, block, ma) : KERNELS_GENERIC.block_absmax(src, n, block, ma);
        bool fb = bf16 ? set->bf16_block_absmax(src, n, block, mb) : set->block_absmax(src, n, block, mb);
        assert_int_equal(fa, fb);
        for (size_t i = 0; i < (n + block - 1) / block; i++)
            if (f32_bits(ma[i]) != f32_bits(mb[i]))
                fail_msg("%s %s: n %zu block %zu [%zu]: %a vs %a", set->name, name, n, block, i, ma[i], mb[i]);
    }
}

static void compare_variants(const float *x, size_t n, const float *divisors)
{
    const kernel_set *ref = &KERNELS_GENERIC;
    for (size_t k = 0; k < kernel_set_count(); k++) {
        const kernel_set *set = kernel_set_at(k);
        if (set == ref || !set->supported(cpu_detect())) continue;
        uint8_t a[N], b[N];
        compare_absmax(set, "block_absmax", x, n, 20);
        uint16_t h[N];
        for (size_t i = 0; i < n; i++) h[i] = (uint16_t)(f32_bits(x[i]) >> 16);
        compare_absmax(set, "bf16_block_absmax", h, n, 34);
        for (int round = 0; round < 2; round++) {
            for (size_t d = 0; d < 4; d++) {
                memset(a, 0, n);
                memset(b, 0xee, n);
                ref->e4m3_divide(x, n, divisors[d], round, a);
                set->e4m3_divide(x, n, divisors[d], round, b);
                for (size_t i = 0; i < n; i++)
                    if (a[i] != b[i])
                        fail_msg("%s e4m3_divide: x %a / %a (bf16 %d): 0x%02x vs 0x%02x", set->name, x[i], divisors[d],
                                 round, a[i], b[i]);
            }
        }
        size_t blocks = n / 16;
        ref->e2m1_divide_blocks(x, blocks, divisors, a);
        set->e2m1_divide_blocks(x, blocks, divisors, b);
        for (size_t i = 0; i < blocks * 8; i++)
            if (a[i] != b[i]) fail_msg("%s e2m1_divide_blocks: byte %zu: 0x%02x vs 0x%02x", set->name, i, a[i], b[i]);
    }
}

static void test_variants_match_reference(void **state_)
{
    (void)state_;
    float *buffer = malloc((N + 8) * sizeof(float));
    float divisors[N / 16];
    for (size_t i = 0; i < N / 16; i++) divisors[i] = i % 3 == 0 ? 1.0f : i % 3 == 1 ? 0.0625f : 3.1e-3f;
    for (int trial = 0; trial < 50; trial++) {
        float *x = buffer + trial % 3; /* unaligned */
        fill(x, N);
        compare_variants(x, N, divisors);
        for (size_t n = 1; n <= 70; n++) compare_variants(x + 5, n, divisors);
    }
    /* Non-finite values are reported by every variant. */
    float *x = buffer;
    fill(x, 64);
    x[37] = NAN;
    float out[64];
    for (size_t k = 0; k < kernel_set_count(); k++) {
        const kernel_set *set = kernel_set_at(k);
        if (!set->supported(cpu_detect())) continue;
        assert_false(set->block_absmax(x, 64, 16, out));
        x[37] = INFINITY;
        assert_false(set->block_absmax(x, 64, 64, out));
        x[37] = 1.0f;
        assert_true(set->block_absmax(x, 64, 7, out));
        uint16_t h[64];
        for (size_t i = 0; i < 64; i++) h[i] = (uint16_t)(f32_bits(x[i]) >> 16);
        assert_true(set->bf16_block_absmax(h, 64, 16, out));
        h[40] = 0x7fc0; /* NaN */
        assert_false(set->bf16_block_absmax(h, 64, 16, out));
        h[40] = 0xff80; /* -Inf */
        assert_false(set->bf16_block_absmax(h, 64, 5, out));
        x[37] = NAN;
    }
    free(buffer);
}

/* Attention's vector-matrix product: every variant gives the reference's bits, for widths
 * that hit the full register blocks, the partial ones and the scalar tails. */
static void test_vecmat_matches_reference(void **state_)
{
    (void)state_;
    enum { MAX = 300, DEPTH = 70 };
    float *v = malloc(DEPTH * sizeof *v), *m = malloc(DEPTH * MAX * sizeof *m);
    float *want = malloc(MAX * sizeof *want), *got = malloc(MAX * sizeof *got);
    for (size_t i = 0; i < DEPTH; i++) v[i] = ((float)(int)(next() % 2001) - 1000.0f) / 997.0f;
    for (size_t i = 0; i < DEPTH * MAX; i++) m[i] = ((float)(int)(next() % 20001) - 10000.0f) / 9973.0f;
    static const size_t WIDTHS[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 128, 129, 255, 256, 300};
    for (size_t w = 0; w < sizeof WIDTHS / sizeof WIDTHS[0]; w++) {
        size_t cols = WIDTHS[w];
        for (size_t rows = 1; rows <= DEPTH; rows += 23) {
            KERNELS_GENERIC.vecmat(v, m, MAX, rows, cols, want);
            for (size_t k = 0; k < kernel_set_count(); k++) {
                const kernel_set *set = kernel_set_at(k);
                if (!set->supported(cpu_detect())) continue;
                set->vecmat(v, m, MAX, rows, cols, got);
                if (memcmp(want, got, cols * sizeof *got) != 0) fail_msg("%s vecmat cols=%zu rows=%zu", set->name, cols, rows);
            }
        }
    }
    /* The reference itself: a plain in-order sum. */
    KERNELS_GENERIC.vecmat(v, m, MAX, 3, 1, got);
    assert_true(got[0] == (0.0f + v[0] * m[0]) + v[1] * m[MAX] + v[2] * m[2 * MAX]);
    free(v);
    free(m);
    free(want);
    free(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_variants_match_reference),
        cmocka_unit_test(test_vecmat_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
