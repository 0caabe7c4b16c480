/*
 * test_weight_layout.c — every ModelOpt and compressed-tensors weight layout round-trips: a
 * tensor quantized by strata_quantize, written through weight_layout_write, is recognized
 * by weight_layout_match as the same format with the same parameters, and dequantizes to
 * exactly what strata_dequantize gives the original quantized tensor. Also: the forms only
 * readers accept (weight_scale_inv, 2-D block grids, BF16 block scales, (N, 1) row scales),
 * compressed-tensors' int32 packing against the words that library packs, and a layout that
 * fits no row is refused naming what was found.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kernels/minifloat.h"
#include "quant/weight_layout.h"

/* Tensors written by the layout writer, held in memory for the reader. */
typedef struct memory_store {
    int n;
    char names[LAYOUT_MAX_TENSORS][64];
    strata_tensor tensors[LAYOUT_MAX_TENSORS];
    void *data[LAYOUT_MAX_TENSORS];
} memory_store;

static strata_status store_emit(void *ctx, const char *suffix, strata_dtype dtype, int n_dims, const int64_t *shape,
                                const void *data)
{
    memory_store *s = ctx;
    assert_true(s->n < LAYOUT_MAX_TENSORS);
    strata_tensor *t = &s->tensors[s->n];
    snprintf(s->names[s->n], sizeof s->names[0], "%s", suffix);
    *t = (strata_tensor){.name = s->names[s->n], .dtype = dtype, .n_dims = n_dims, .n_elements = 1};
    for (int d = 0; d < n_dims; d++) {
        t->shape[d] = shape[d];
        t->n_elements *= shape[d];
    }
    t->n_bytes = (uint64_t)t->n_elements * strata_dtype_size(dtype);
    s->data[s->n] = malloc(t->n_bytes);
    memcpy(s->data[s->n], data, t->n_bytes);
    t->data = s->data[s->n];
    s->n++;
    return STRATA_OK;
}

static const strata_tensor *store_find(void *ctx, const char *suffix)
{
    memory_store *s = ctx;
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->names[i], suffix) == 0) return &s->tensors[i];
    return NULL;
}

static void store_free(memory_store *s)
{
    for (int i = 0; i < s->n; i++) free(s->data[i]);
    s->n = 0;
}

static strata_tensor *store_get(memory_store *s, const char *suffix)
{
    return (strata_tensor *)store_find(s, suffix);
}

/* (N, K) values of a few magnitudes, so every block gets its own scale. */
static float *test_weight(int64_t N, int64_t K, unsigned seed)
{
    float *w = malloc((size_t)(N * K) * sizeof *w);
    srand(seed);
    for (int64_t i = 0; i < N * K; i++)
        w[i] = ((float)rand() / (float)RAND_MAX - 0.5f) * (float)(1 + (i / 37) % 9) * 0.01f;
    return w;
}

typedef struct written {
    strata_quant_params params;
    strata_quant_shape shape;
    strata_qtensor q;
    float *expected; /* (N, K): strata_dequantize of q */
} written;

/* Quantizes a test weight as the layout's format and convention (values of weight_dtype)
 * and writes it through the layout into store. */
static void write_layout(const weight_layout *layout, strata_dtype weight_dtype, int64_t N, int64_t K,
                         memory_store *store, written *out)
{
    assert_non_null(layout);
    strata_format format = layout->format;
    bool grouped = format == STRATA_FORMAT_INT4_GROUP || format == STRATA_FORMAT_INT4_GROUP_ASYM;
    out->params = (strata_quant_params){.format = format, .convention = layout->convention,
                                        .group_size = grouped ? 64 : 0, .values_dtype = weight_dtype};
    assert_int_equal(strata_quant_shape_get(&out->params, N, K, &out->shape), STRATA_OK);
    out->q = (strata_qtensor){.codes = malloc(out->shape.code_bytes), .scales = malloc(out->shape.scale_bytes),
                              .zero_points = out->shape.zero_point_bytes ? malloc(out->shape.zero_point_bytes) : NULL};
    float *w = test_weight(N, K, (unsigned)format + 1);
    if (weight_dtype == STRATA_DTYPE_BF16) /* values a bf16 weight holds */
        for (int64_t i = 0; i < N * K; i++) w[i] = bf16_round(w[i]);
    assert_int_equal(strata_quantize(&out->params, STRATA_DTYPE_F32, w, N, K, &out->q), STRATA_OK);
    out->expected = malloc((size_t)(N * K) * sizeof *out->expected);
    assert_int_equal(strata_dequantize(&out->params, &out->q, N, K, out->expected), STRATA_OK);
    free(w);
    *store = (memory_store){0};
    assert_int_equal(weight_layout_write(layout, "m", N, K, weight_dtype, &out->q, &out->shape, store_emit, store),
                     STRATA_OK);
    assert_int_equal(store->n, layout->n_tensors);
}

static void write_format(strata_format format, int64_t N, int64_t K, memory_store *store, written *out)
{
    write_layout(weight_layout_get(format), STRATA_DTYPE_F32, N, K, store, out);
}

static void written_free(written *w)
{
    free(w->q.codes);
    free(w->q.scales);
    free(w->q.zero_points);
    free(w->expected);
}

static void read_back(memory_store *store, const written *w, int64_t N, int64_t K, int64_t group_hint)
{
    stored_weight stored;
    assert_int_equal(weight_layout_match(store_find, store, N, K, group_hint, &stored), STRATA_OK);
    assert_int_equal(stored.params.format, w->params.format);
    assert_int_equal(stored.params.group_size, w->params.group_size);
    assert_memory_equal(&stored.shape, &w->shape, sizeof stored.shape);
    float *out = malloc((size_t)(N * K) * sizeof *out);
    assert_int_equal(weight_layout_dequantize(&stored, out), STRATA_OK);
    assert_memory_equal(out, w->expected, (size_t)(N * K) * sizeof *out);
    free(out);
}

static void test_every_layout_round_trips(void **state)
{
    (void)state;
    int checked = 0;
    for (int f = 0; f < STRATA_FORMAT_COUNT; f++) {
        if (!weight_layout_get((strata_format)f)) continue;
        /* K = 300 leaves partial NVFP4 / MXFP4 / INT4 / FP8-block groups; N = 130 pairs rows. */
        const int64_t N = 130, K = 300;
        memory_store store;
        written w;
        write_format((strata_format)f, N, K, &store, &w);
        read_back(&store, &w, N, K, w.params.group_size);
        store_free(&store);
        written_free(&w);
        checked++;
    }
    assert_int_equal(checked, 7); /* fp8, fp8-channel, fp8-block, nvfp4, mxfp4, int8, int4 */
    assert_null(weight_layout_get(STRATA_FORMAT_MXFP8));
    assert_null(weight_layout_get(STRATA_FORMAT_INT4_GROUP_ASYM));
}

/* Every compressed-tensors row, from bf16 values (the scales are written in bf16) and f32. */
static void test_compressed_tensors_layouts_round_trip(void **state)
{
    (void)state;
    int checked = 0;
    for (int f = 0; f < STRATA_FORMAT_COUNT; f++)
        for (int inputs = 0; inputs < 2; inputs++) {
            const weight_layout *layout = weight_layout_compressed_tensors((strata_format)f, inputs);
            if (!layout || (inputs && f != STRATA_FORMAT_INT8_CHANNEL)) continue;
            assert_int_equal(layout->family, LAYOUT_COMPRESSED_TENSORS);
            for (int d = 0; d < 2; d++) {
                strata_dtype dtype = d ? STRATA_DTYPE_F32 : STRATA_DTYPE_BF16;
                const int64_t N = 130, K = 320;
                memory_store store;
                written w;
                write_layout(layout, dtype, N, K, &store, &w);
                read_back(&store, &w, N, K, w.params.group_size);
                const strata_tensor *scale = store_find(&store, "weight_scale");
                if (layout->format != STRATA_FORMAT_NVFP4 && layout->format != STRATA_FORMAT_MXFP4)
                    assert_int_equal(scale->dtype, dtype);
                store_free(&store);
                written_free(&w);
            }
            checked++;
        }
    /* fp8, fp8-channel, fp8-block, nvfp4, mxfp4, int8 packed and int-quantized, int4, int4-asym */
    assert_int_equal(checked, 9);
    assert_null(weight_layout_compressed_tensors(STRATA_FORMAT_MXFP8, false));
}

/* pack_to_int32's words as compressed-tensors packs them (docs/FORMAT-NUMERICS.md 6d):
 * int4 -8..7 gives 0x76543210, 0xfedcba98; int8 -128, 127, 0, 1 gives 0x8180ff00. And a
 * weight_shape naming another linear does not match. */
static void test_compressed_tensors_packing(void **state)
{
    (void)state;
    const int64_t N = 1, K = 16;
    strata_quant_params p4 = {.format = STRATA_FORMAT_INT4_GROUP, .convention = STRATA_CONVENTION_COMPRESSED_TENSORS,
                              .group_size = 16};
    strata_quant_shape shape4;
    assert_int_equal(strata_quant_shape_get(&p4, N, K, &shape4), STRATA_OK);
    uint8_t codes4[8];
    for (int i = 0; i < 16; i++) {
        int v = i - 8;
        if (i % 2 == 0) codes4[i / 2] = (uint8_t)(v & 0xf);
        else codes4[i / 2] |= (uint8_t)((v & 0xf) << 4);
    }
    float scale = 1.0f;
    strata_qtensor q4 = {.codes = codes4, .scales = &scale};
    memory_store store = {0};
    const weight_layout *int4 = weight_layout_compressed_tensors(STRATA_FORMAT_INT4_GROUP, false);
    assert_int_equal(weight_layout_write(int4, "m", N, K, STRATA_DTYPE_F32, &q4, &shape4, store_emit, &store), STRATA_OK);
    const strata_tensor *packed = store_find(&store, "weight_packed");
    const uint8_t want4[8] = {0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe};
    assert_int_equal(packed->dtype, STRATA_DTYPE_I32);
    assert_memory_equal(packed->data, want4, 8);
    stored_weight stored;
    assert_int_equal(weight_layout_match(store_find, &store, N, K, 0, &stored), STRATA_OK);
    assert_int_equal(weight_layout_match(store_find, &store, N, 24, 0, &stored), STRATA_ERR_UNSUPPORTED);
    store_free(&store);

    strata_quant_params p8 = {.format = STRATA_FORMAT_INT8_CHANNEL, .convention = STRATA_CONVENTION_COMPRESSED_TENSORS};
    strata_quant_shape shape8;
    assert_int_equal(strata_quant_shape_get(&p8, 1, 5, &shape8), STRATA_OK);
    uint8_t codes8[5] = {0x80, 0x7f, 0x00, 0x01, 0x05}; /* -128, 127, 0, 1, 5 */
    strata_qtensor q8 = {.codes = codes8, .scales = &scale};
    const weight_layout *int8 = weight_layout_compressed_tensors(STRATA_FORMAT_INT8_CHANNEL, false);
    assert_int_equal(weight_layout_write(int8, "m", 1, 5, STRATA_DTYPE_F32, &q8, &shape8, store_emit, &store), STRATA_OK);
    const uint8_t want8[8] = {0x00, 0xff, 0x80, 0x81, 0x85, 0x00, 0x00, 0x00};
    assert_memory_equal(store_find(&store, "weight_packed")->data, want8, 8);
    store_free(&store);
}

static void test_written_shapes(void **state)
{
    (void)state;
    memory_store store;
    written w;
    write_format(STRATA_FORMAT_NVFP4, 130, 300, &store, &w);
    strata_tensor *codes = store_get(&store, "weight"), *scales = store_get(&store, "weight_scale"),
                  *global = store_get(&store, "weight_scale_2");
    assert_true(codes && scales && global);
    assert_int_equal(codes->dtype, STRATA_DTYPE_U8);
    assert_int_equal(codes->shape[0], 130);
    assert_int_equal(codes->shape[1], 152); /* 300 padded to 304, two per byte */
    assert_int_equal(scales->dtype, STRATA_DTYPE_F8_E4M3);
    assert_int_equal(scales->shape[1], 19);
    assert_int_equal(global->n_dims, 0);
    store_free(&store);
    written_free(&w);

    write_format(STRATA_FORMAT_INT4_GROUP, 130, 300, &store, &w);
    codes = store_get(&store, "weight");
    assert_int_equal(codes->shape[0], 65); /* two rows per byte */
    assert_int_equal(codes->shape[1], 300);
    assert_int_equal(store_get(&store, "weight_scale")->shape[1], 5); /* ceil(300 / 64) */
    store_free(&store);
    written_free(&w);

    write_format(STRATA_FORMAT_FP8_BLOCK, 130, 300, &store, &w);
    scales = store_get(&store, "weight_scale");
    assert_int_equal(scales->n_dims, 4);
    int64_t want[4] = {2, 1, 3, 1};
    assert_memory_equal(scales->shape, want, sizeof want);
    store_free(&store);
    written_free(&w);
}

/* What other producers write for the same numerics reads back the same. */
static void test_reader_forms(void **state)
{
    (void)state;
    const int64_t N = 130, K = 300;
    memory_store store;
    written w;

    /* DeepSeek-V3 style: weight_scale_inv, a 2-D grid. */
    write_format(STRATA_FORMAT_FP8_BLOCK, N, K, &store, &w);
    strata_tensor *scales = store_get(&store, "weight_scale");
    snprintf(store.names[1], sizeof store.names[1], "weight_scale_inv");
    scales->n_dims = 2;
    scales->shape[1] = 3;
    read_back(&store, &w, N, K, 0);
    /* ... with BF16 scales: read as the BF16 values they hold. */
    uint16_t *bf16 = malloc((size_t)scales->n_elements * 2);
    const float *f32 = scales->data;
    for (int64_t i = 0; i < scales->n_elements; i++) {
        uint32_t bits;
        memcpy(&bits, &f32[i], 4);
        bf16[i] = (uint16_t)(bits >> 16); /* truncation: the test only needs some BF16 */
    }
    scales->dtype = STRATA_DTYPE_BF16;
    scales->n_bytes = (uint64_t)scales->n_elements * 2;
    scales->data = bf16;
    stored_weight stored;
    assert_int_equal(weight_layout_match(store_find, &store, N, K, 0, &stored), STRATA_OK);
    assert_int_equal(stored.params.format, STRATA_FORMAT_FP8_BLOCK);
    float *out = malloc((size_t)(N * K) * sizeof *out);
    assert_int_equal(weight_layout_dequantize(&stored, out), STRATA_OK);
    for (int64_t i = 0; i < N * K; i++) assert_true(isfinite(out[i]));
    free(out);
    free(bf16);
    store_free(&store);
    written_free(&w);

    /* Per-row scales as (N, 1). */
    write_format(STRATA_FORMAT_FP8_CHANNEL, N, K, &store, &w);
    scales = store_get(&store, "weight_scale");
    scales->n_dims = 2;
    scales->shape[1] = 1;
    read_back(&store, &w, N, K, 0);
    store_free(&store);
    written_free(&w);

    /* INT4: the config's group when it fits the scale columns, else K / columns (a config
     * without group_size, groups of 64 in rows of 256). */
    write_format(STRATA_FORMAT_INT4_GROUP, N, 256, &store, &w);
    read_back(&store, &w, N, 256, 64);
    read_back(&store, &w, N, 256, 0);
    store_free(&store);
    written_free(&w);
}

static void test_unreadable_layout_is_refused(void **state)
{
    (void)state;
    memory_store store;
    written w;
    write_format(STRATA_FORMAT_NVFP4, 130, 300, &store, &w);
    store_get(&store, "weight_scale")->shape[1] = 20; /* one block too many */
    stored_weight stored;
    assert_int_equal(weight_layout_match(store_find, &store, 130, 300, 0, &stored), STRATA_ERR_UNSUPPORTED);
    ASSERT_ERROR_MENTIONS("weight_scale", "F8_E4M3", "130, 20", "cannot read");
    store_get(&store, "weight_scale")->shape[1] = 19;
    snprintf(store.names[2], sizeof store.names[2], "weight_scale_3"); /* no global scale */
    assert_int_equal(weight_layout_match(store_find, &store, 130, 300, 0, &stored), STRATA_ERR_UNSUPPORTED);
    store_free(&store);
    written_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_layout_round_trips),
        cmocka_unit_test(test_compressed_tensors_layouts_round_trip),
        cmocka_unit_test(test_compressed_tensors_packing),
        cmocka_unit_test(test_written_shapes),
        cmocka_unit_test(test_reader_forms),
        cmocka_unit_test(test_unreadable_layout_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
