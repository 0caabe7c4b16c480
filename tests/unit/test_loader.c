/*
 * test_loader.c — the streaming quantize-on-load API: a weight fed as uneven
 * tensor-parallel slices in random order quantizes to the bytes of the unsplit tensor,
 * buffers exist only while a parameter is in flight, fused groups wait for every member
 * and share its largest amax, and every refused chunk names the parameter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "helpers.h"

/* What the ready callback saw: one parameter at a time is enough here. */
typedef struct captured {
    int calls;
    char names[8][64];
    float amax[8];
    uint8_t *codes[8];
    void *scales[8];
    size_t code_bytes, scale_bytes;
    float global[8];
    void *data;           /* the last pass-through parameter */
    size_t data_bytes;
    const strata_loader *loader;
    uint64_t in_flight_during_call;
} captured;

static strata_status capture(void *user, const strata_loaded *loaded)
{
    captured *c = user;
    int i = c->calls++;
    assert_true(i < 8);
    snprintf(c->names[i], sizeof c->names[i], "%s", loaded->name);
    strata_loader_stats stats;
    strata_loader_get_stats(c->loader, &stats);
    c->in_flight_during_call = stats.bytes_in_flight;
    if (!loaded->quant) {
        c->data_bytes = (size_t)loaded->shape[0] * strata_dtype_size(loaded->dtype);
        free(c->data);
        c->data = malloc(c->data_bytes);
        memcpy(c->data, loaded->data, c->data_bytes);
        return STRATA_OK;
    }
    c->amax[i] = loaded->quant->amax;
    c->code_bytes = loaded->q_shape->code_bytes;
    c->scale_bytes = loaded->q_shape->scale_bytes;
    c->codes[i] = malloc(c->code_bytes);
    c->scales[i] = malloc(c->scale_bytes);
    memcpy(c->codes[i], loaded->q->codes, c->code_bytes);
    memcpy(c->scales[i], loaded->q->scales, c->scale_bytes);
    c->global[i] = loaded->q->global_scale;
    return STRATA_OK;
}

static void captured_free(captured *c)
{
    for (int i = 0; i < 8; i++) {
        free(c->codes[i]);
        free(c->scales[i]);
    }
    free(c->data);
}

static uint16_t *random_bf16(int64_t n, uint64_t seed)
{
    uint16_t *w = malloc((size_t)n * sizeof *w);
    rng r = {.state = seed};
    for (int64_t i = 0; i < n; i++) {
        float x = (float)(0.2 * ((double)(rng_next(&r) >> 11) / 9007199254740992.0 - 0.5));
        uint32_t u;
        memcpy(&u, &x, 4);
        w[i] = (uint16_t)(u >> 16);
    }
    return w;
}

/* The box [r0, r1) x [c0, c1) of a (rows, cols) bf16 matrix, contiguous. */
static uint16_t *box_of(const uint16_t *w, int64_t cols, int64_t r0, int64_t r1, int64_t c0, int64_t c1)
{
    uint16_t *b = malloc((size_t)((r1 - r0) * (c1 - c0)) * sizeof *b);
    for (int64_t r = r0; r < r1; r++) memcpy(b + (r - r0) * (c1 - c0), w + r * cols + c0, (size_t)(c1 - c0) * 2);
    return b;
}

static void reference(const strata_quant_params *p, const uint16_t *w, int64_t rows, int64_t cols, strata_qtensor *q,
                      strata_quant_shape *shape)
{
    assert_int_equal(strata_quant_shape_get(p, rows, cols, shape), STRATA_OK);
    q->codes = malloc(shape->code_bytes);
    q->scales = malloc(shape->scale_bytes);
    assert_int_equal(strata_quantize(p, STRATA_DTYPE_BF16, w, rows, cols, q), STRATA_OK);
}

/* ---------------------------------------------------------------- whole parameters */

/* A parameter fed whole in one chunk is quantized from the caller's memory (nothing in
 * flight), and the reused code buffer carries nothing from a larger tensor into a smaller
 * one. */
static void whole_chunks_skip_the_buffer(void **state)
{
    (void)state;
    static const int64_t SHAPES[3][2] = {{256, 384}, {64, 130}, {200, 96}};
    static const strata_format FORMATS[] = {STRATA_FORMAT_FP8_CHANNEL, STRATA_FORMAT_INT4_GROUP, STRATA_FORMAT_NVFP4};
    for (size_t f = 0; f < sizeof FORMATS / sizeof FORMATS[0]; f++) {
        strata_quant_params p = {.format = FORMATS[f], .convention = STRATA_CONVENTION_MODELOPT};
        captured c = {0};
        strata_loader *l;
        assert_int_equal(strata_loader_create(capture, &c, &l), STRATA_OK);
        c.loader = l;
        char names[3][8];
        for (int i = 0; i < 3; i++) {
            snprintf(names[i], sizeof names[i], "w%d", i);
            strata_loader_param param = {.name = names[i], .n_dims = 2, .shape = SHAPES[i], .dtype = STRATA_DTYPE_BF16,
                                         .quantize = true, .quant = p};
            assert_int_equal(strata_loader_register(l, &param), STRATA_OK);
        }
        for (int i = 0; i < 3; i++) {
            int64_t rows = SHAPES[i][0], cols = SHAPES[i][1], offsets[2] = {0, 0};
            uint16_t *w = random_bf16(rows * cols, 40 + (uint64_t)i);
            assert_int_equal(strata_loader_feed(l, names[i], STRATA_DTYPE_BF16, 2, offsets, SHAPES[i], w), STRATA_OK);
            assert_int_equal(c.calls, i + 1);
            assert_int_equal(c.in_flight_during_call, 0);
            strata_qtensor want;
            strata_quant_shape shape;
            reference(&p, w, rows, cols, &want, &shape);
            assert_int_equal(c.code_bytes, shape.code_bytes);
            assert_memory_equal(c.codes[i], want.codes, shape.code_bytes);
            assert_memory_equal(c.scales[i], want.scales, shape.scale_bytes);
            free(want.codes);
            free(want.scales);
            free(w);
        }
        strata_loader_stats stats;
        strata_loader_get_stats(l, &stats);
        assert_int_equal(stats.peak_bytes_in_flight, 0);
        assert_int_equal(strata_loader_finish(l), STRATA_OK);
        strata_loader_free(l);
        captured_free(&c);
    }
}

/* ---------------------------------------------------------------- tensor-parallel slices */

static void slices_in_random_order_equal_the_whole(void **state)
{
    (void)state;
    enum { ROWS = 300, COLS = 520 };
    static const strata_format FORMATS[] = {STRATA_FORMAT_FP8_TENSOR, STRATA_FORMAT_FP8_CHANNEL, STRATA_FORMAT_NVFP4,
                                            STRATA_FORMAT_MXFP4, STRATA_FORMAT_INT8_CHANNEL, STRATA_FORMAT_INT4_GROUP,
                                            STRATA_FORMAT_FP8_BLOCK};
    uint16_t *w = random_bf16(ROWS * COLS, 11);
    /* Uneven cuts: 3 row slices x 4 column slices (a row split of column-parallel shards),
     * each fed as its own chunk, some of them partial rows. */
    static const int64_t ROW_CUTS[] = {0, 7, 181, ROWS}, COL_CUTS[] = {0, 33, 250, 251, COLS};
    for (size_t f = 0; f < sizeof FORMATS / sizeof FORMATS[0]; f++) {
        strata_quant_params p = {.format = FORMATS[f], .convention = STRATA_CONVENTION_MODELOPT};
        strata_qtensor want;
        strata_quant_shape shape;
        reference(&p, w, ROWS, COLS, &want, &shape);

        captured c = {0};
        strata_loader *l;
        assert_int_equal(strata_loader_create(capture, &c, &l), STRATA_OK);
        c.loader = l;
        int64_t dims[2] = {ROWS, COLS};
        strata_loader_param param = {.name = "w", .n_dims = 2, .shape = dims, .dtype = STRATA_DTYPE_BF16,
                                     .quantize = true, .quant = p};
        assert_int_equal(strata_loader_register(l, &param), STRATA_OK);
        strata_loader_stats stats;
        strata_loader_get_stats(l, &stats);
        assert_int_equal(stats.bytes_in_flight, 0); /* nothing allocated before the first chunk */

        int order[12];
        for (int i = 0; i < 12; i++) order[i] = i;
        rng r = {.state = 100 + f};
        for (int i = 11; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)(i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (int k = 0; k < 12; k++) {
            int a = order[k] / 4, b = order[k] % 4;
            int64_t offsets[2] = {ROW_CUTS[a], COL_CUTS[b]};
            int64_t extents[2] = {ROW_CUTS[a + 1] - ROW_CUTS[a], COL_CUTS[b + 1] - COL_CUTS[b]};
            uint16_t *chunk = box_of(w, COLS, ROW_CUTS[a], ROW_CUTS[a + 1], COL_CUTS[b], COL_CUTS[b + 1]);
            assert_int_equal(strata_loader_feed(l, "w", STRATA_DTYPE_BF16, 2, offsets, extents, chunk), STRATA_OK);
            free(chunk);
            assert_int_equal(c.calls, k == 11 ? 1 : 0); /* handed over the moment it is complete */
            strata_loader_get_stats(l, &stats);
            assert_int_equal(stats.bytes_in_flight, k == 11 ? 0 : ROWS * COLS * 2);
        }
        assert_int_equal(c.in_flight_during_call, ROWS * COLS * 2);
        assert_int_equal(stats.peak_bytes_in_flight, ROWS * COLS * 2);
        assert_int_equal(strata_loader_finish(l), STRATA_OK);
        assert_int_equal(c.code_bytes, shape.code_bytes);
        assert_memory_equal(c.codes[0], want.codes, shape.code_bytes);
        assert_memory_equal(c.scales[0], want.scales, shape.scale_bytes);
        assert_true(c.global[0] == want.global_scale);
        strata_loader_free(l);
        captured_free(&c);
        free(want.codes);
        free(want.scales);
    }
    free(w);
}

/* ---------------------------------------------------------------- fused groups */

static void fused_group_waits_and_shares_the_largest_amax(void **state)
{
    (void)state;
    enum { K = 256 };
    static const char *const NAMES[3] = {"q", "k", "v"};
    static const int64_t ROWS[3] = {256, 64, 64};
    uint16_t *w[3];
    for (int i = 0; i < 3; i++) w[i] = random_bf16(ROWS[i] * K, 20 + (uint64_t)i);
    w[1][5] = 0x4000; /* 2.0 in k: the group's amax */
    static const strata_format FORMATS[2] = {STRATA_FORMAT_FP8_TENSOR, STRATA_FORMAT_NVFP4};
    for (int f = 0; f < 2; f++) {
        captured c = {0};
        strata_loader *l;
        assert_int_equal(strata_loader_create(capture, &c, &l), STRATA_OK);
        c.loader = l;
        strata_quant_params p = {.format = FORMATS[f], .convention = STRATA_CONVENTION_MODELOPT};
        for (int i = 0; i < 3; i++) {
            int64_t dims[2] = {ROWS[i], K};
            strata_loader_param param = {.name = NAMES[i], .n_dims = 2, .shape = dims, .dtype = STRATA_DTYPE_BF16,
                                         .quantize = true, .quant = p, .group = "qkv"};
            assert_int_equal(strata_loader_register(l, &param), STRATA_OK);
        }
        for (int i = 0; i < 3; i++) {
            int64_t offsets[2] = {0, 0}, extents[2] = {ROWS[i], K};
            assert_int_equal(strata_loader_feed(l, NAMES[i], STRATA_DTYPE_BF16, 2, offsets, extents, w[i]), STRATA_OK);
            assert_int_equal(c.calls, i == 2 ? 3 : 0); /* q and k wait for v */
        }
        for (int i = 0; i < 3; i++) {
            assert_string_equal(c.names[i], NAMES[i]);
            assert_true(c.amax[i] == 2.0f);
            strata_quant_params shared = p;
            shared.amax = 2.0f;
            strata_qtensor want;
            strata_quant_shape shape;
            reference(&shared, w[i], ROWS[i], K, &want, &shape);
            assert_memory_equal(c.codes[i], want.codes, shape.code_bytes);
            free(want.codes);
            free(want.scales);
        }
        assert_int_equal(strata_loader_finish(l), STRATA_OK);
        strata_loader_free(l);
        captured_free(&c);
    }
    for (int i = 0; i < 3; i++) free(w[i]);
}

/* ---------------------------------------------------------------- refusals */

static void refused_chunks_name_the_parameter(void **state)
{
    (void)state;
    captured c = {0};
    strata_loader *l;
    assert_int_equal(strata_loader_create(capture, &c, &l), STRATA_OK);
    c.loader = l;
    int64_t wdims[2] = {32, 64}, ndims[1] = {64};
    strata_loader_param weight = {.name = "layers.0.q_proj.weight", .n_dims = 2, .shape = wdims,
                                  .dtype = STRATA_DTYPE_BF16, .quantize = true,
                                  .quant = {.format = STRATA_FORMAT_FP8_CHANNEL}};
    strata_loader_param norm = {.name = "layers.0.norm.weight", .n_dims = 1, .shape = ndims, .dtype = STRATA_DTYPE_F32};
    assert_int_equal(strata_loader_register(l, &weight), STRATA_OK);
    assert_int_equal(strata_loader_register(l, &norm), STRATA_OK);
    assert_int_equal(strata_loader_register(l, &norm), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("layers.0.norm.weight", "registered twice");
    strata_loader_param bad = weight;
    bad.name = "three.d";
    bad.n_dims = 3;
    int64_t three[3] = {2, 32, 64};
    bad.shape = three;
    assert_int_equal(strata_loader_register(l, &bad), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("three.d", "2-D");

    uint16_t *w = random_bf16(32 * 64, 3);
    int64_t at[2] = {0, 0}, top[2] = {16, 64};
    assert_int_equal(strata_loader_feed(l, "layers.0.k_proj.weight", STRATA_DTYPE_BF16, 2, at, top, w),
                     STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS("layers.0.k_proj.weight", "not a registered parameter");
    assert_int_equal(strata_loader_feed(l, "layers.0.q_proj.weight", STRATA_DTYPE_F16, 2, at, top, w),
                     STRATA_ERR_MISMATCH);
    ASSERT_ERROR_MENTIONS("layers.0.q_proj.weight", "F16", "BF16");
    int64_t beyond[2] = {20, 0};
    assert_int_equal(strata_loader_feed(l, "layers.0.q_proj.weight", STRATA_DTYPE_BF16, 2, beyond, top, w),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("layers.0.q_proj.weight", "[20:36, 0:64]", "outside the shape");
    strata_loader_stats stats;
    strata_loader_get_stats(l, &stats);
    assert_int_equal(stats.bytes_in_flight, 0); /* refused chunks allocate nothing */

    assert_int_equal(strata_loader_feed(l, "layers.0.q_proj.weight", STRATA_DTYPE_BF16, 2, at, top, w), STRATA_OK);
    int64_t middle[2] = {10, 8}, small[2] = {8, 8};
    assert_int_equal(strata_loader_feed(l, "layers.0.q_proj.weight", STRATA_DTYPE_BF16, 2, middle, small, w),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("layers.0.q_proj.weight", "[10:18, 8:16]", "overlaps", "[0:16, 0:64]");
    strata_loader_param late = norm;
    late.name = "late";
    assert_int_equal(strata_loader_register(l, &late), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("late", "after the first chunk");

    /* Incomplete at finish: both parameters named, with their missing counts. */
    float half[32] = {0};
    int64_t n0[1] = {0}, n32[1] = {32};
    assert_int_equal(strata_loader_feed(l, "layers.0.norm.weight", STRATA_DTYPE_F32, 1, n0, n32, half), STRATA_OK);
    assert_int_equal(strata_loader_finish(l), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("2 parameters incomplete", "layers.0.q_proj.weight (1024 of 2048 elements missing)",
                          "layers.0.norm.weight (32 of 64 elements missing)");

    /* The loader is still usable after every refusal. */
    int64_t bottom_at[2] = {16, 0};
    assert_int_equal(strata_loader_feed(l, "layers.0.q_proj.weight", STRATA_DTYPE_BF16, 2, bottom_at, top, w + 16 * 64),
                     STRATA_OK);
    float rest[32];
    for (int i = 0; i < 32; i++) rest[i] = (float)i;
    assert_int_equal(strata_loader_feed(l, "layers.0.norm.weight", STRATA_DTYPE_F32, 1, n32, n32, rest), STRATA_OK);
    assert_int_equal(c.calls, 2);
    assert_memory_equal((const float *)c.data + 32, rest, sizeof rest); /* passed through as received */
    assert_int_equal(strata_loader_feed(l, "layers.0.norm.weight", STRATA_DTYPE_F32, 1, n0, n32, half),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("layers.0.norm.weight", "after the parameter was complete");
    assert_int_equal(strata_loader_finish(l), STRATA_OK);

    strata_qtensor want;
    strata_quant_shape shape;
    reference(&weight.quant, w, 32, 64, &want, &shape);
    assert_memory_equal(c.codes[0], want.codes, shape.code_bytes);
    free(want.codes);
    free(want.scales);
    free(w);
    strata_loader_free(l);
    captured_free(&c);
}

/* A callback's error stops the feed that completed the parameter, with its message. */
static strata_status refuse(void *user, const strata_loaded *loaded)
{
    (void)user;
    return strata_fail(STRATA_ERR_IO, "disk full writing %s", loaded->name);
}

static void callback_errors_propagate(void **state)
{
    (void)state;
    strata_loader *l;
    assert_int_equal(strata_loader_create(refuse, NULL, &l), STRATA_OK);
    int64_t dims[1] = {4};
    strata_loader_param p = {.name = "bias", .n_dims = 1, .shape = dims, .dtype = STRATA_DTYPE_F32};
    assert_int_equal(strata_loader_register(l, &p), STRATA_OK);
    float x[4] = {1, 2, 3, 4};
    int64_t at[1] = {0};
    assert_int_equal(strata_loader_feed(l, "bias", STRATA_DTYPE_F32, 1, at, dims, x), STRATA_ERR_IO);
    ASSERT_ERROR_MENTIONS("disk full writing bias");
    strata_loader_stats stats;
    strata_loader_get_stats(l, &stats);
    assert_int_equal(stats.bytes_in_flight, 0);
    strata_loader_free(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slices_in_random_order_equal_the_whole),
        cmocka_unit_test(whole_chunks_skip_the_buffer),
        cmocka_unit_test(fused_group_waits_and_shares_the_largest_amax),
        cmocka_unit_test(refused_chunks_name_the_parameter),
        cmocka_unit_test(callback_errors_propagate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
