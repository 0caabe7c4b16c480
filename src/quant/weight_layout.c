/*
 * weight_layout.c — the ModelOpt layout table and its one writer and one reader (see
 * weight_layout.h).
 */
#include "quant/weight_layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define DIMS0 {.n_dims = 0}
#define DIMS1(a) {.n_dims = 1, .extents = {a}}
#define DIMS2(a, b) {.n_dims = 2, .extents = {a, b}}
#define DIMS4(a, b, c, d) {.n_dims = 4, .extents = {a, b, c, d}}
#define NO_DIMS {.n_dims = -1}

/* Codes of (N, K) one byte per element. */
#define BYTE_CODES(dtype_) \
    {.suffix = "weight", .part = PART_CODES, .dtype = dtype_, .dims = DIMS2(EXTENT_N, EXTENT_K), .read_dims = NO_DIMS}
/* Codes of (N, K) two per byte along a row. */
#define NIBBLE_CODES \
    {.suffix = "weight", .part = PART_CODES, .dtype = STRATA_DTYPE_U8, \
     .dims = DIMS2(EXTENT_N, EXTENT_CODE_ROW_BYTES), .read_dims = NO_DIMS}
#define SCALES(dtype_, dims_, read_dims_) \
    {.suffix = "weight_scale", .read_alias = "weight_scale_inv", .part = PART_SCALES, .dtype = dtype_, \
     .dims = dims_, .read_dims = read_dims_}
#define GRID DIMS2(EXTENT_SCALE_ROWS, EXTENT_SCALE_COLS)

static const weight_layout LAYOUTS[STRATA_FORMAT_COUNT] = {
    [STRATA_FORMAT_FP8_TENSOR] = {
        .format = STRATA_FORMAT_FP8_TENSOR, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3), SCALES(STRATA_DTYPE_F32, DIMS0, DIMS1(EXTENT_ONE))},
    },
    [STRATA_FORMAT_FP8_CHANNEL] = {
        .format = STRATA_FORMAT_FP8_CHANNEL, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3),
                    SCALES(STRATA_DTYPE_F32, DIMS1(EXTENT_N), DIMS2(EXTENT_N, EXTENT_ONE))},
    },
    [STRATA_FORMAT_INT8_CHANNEL] = {
        .format = STRATA_FORMAT_INT8_CHANNEL, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_I8), SCALES(STRATA_DTYPE_F32, DIMS1(EXTENT_N), DIMS2(EXTENT_N, EXTENT_ONE))},
    },
    [STRATA_FORMAT_FP8_BLOCK] = {
        .format = STRATA_FORMAT_FP8_BLOCK, .n_tensors = 2,
        .tensors = {BYTE_CODES(STRATA_DTYPE_F8_E4M3),
                    {.suffix = "weight_scale", .read_alias = "weight_scale_inv", .part = PART_SCALES,
                     .dtype = STRATA_DTYPE_F32, .read_bf16 = true,
                     .dims = DIMS4(EXTENT_SCALE_ROWS, EXTENT_ONE, EXTENT_SCALE_COLS, EXTENT_ONE), .read_dims = GRID}},
    },
    [STRATA_FORMAT_NVFP4] = {
        .format = STRATA_FORMAT_NVFP4, .n_tensors = 3,
        .tensors = {NIBBLE_CODES, SCALES(STRATA_DTYPE_F8_E4M3, GRID, NO_DIMS),
                    {.suffix = "weight_scale_2", .part = PART_GLOBAL, .dtype = STRATA_DTYPE_F32, .dims = DIMS0,
                     .read_dims = DIMS1(EXTENT_ONE)}},
    },
    [STRATA_FORMAT_MXFP4] = {
        .format = STRATA_FORMAT_MXFP4, .n_tensors = 2,
        .tensors = {NIBBLE_CODES, SCALES(STRATA_DTYPE_U8, GRID, NO_DIMS)},
    },
    [STRATA_FORMAT_INT4_GROUP] = {
        .format = STRATA_FORMAT_INT4_GROUP, .rows_paired = true, .group_from_scales = true, .n_tensors = 2,
        .tensors = {{.suffix = "weight", .part = PART_CODES, .dtype = STRATA_DTYPE_U8,
                     .dims = DIMS2(EXTENT_HALF_N, EXTENT_K), .read_dims = NO_DIMS},
                    SCALES(STRATA_DTYPE_F32, GRID, NO_DIMS)},
    },
};

/* The order readers try: per tensor before per row before tiles, so that a shape two
 * layouts could share resolves as it always has. */
static const strata_format READ_ORDER[] = {
    STRATA_FORMAT_FP8_TENSOR, STRATA_FORMAT_FP8_CHANNEL, STRATA_FORMAT_INT8_CHANNEL, STRATA_FORMAT_FP8_BLOCK,
    STRATA_FORMAT_NVFP4,      STRATA_FORMAT_MXFP4,       STRATA_FORMAT_INT4_GROUP,
};

const weight_layout *weight_layout_get(strata_format format)
{
    return (unsigned)format < STRATA_FORMAT_COUNT && LAYOUTS[format].n_tensors > 0 ? &LAYOUTS[format] : NULL;
}

static int64_t extent_value(layout_extent e, int64_t N, int64_t K, const strata_quant_shape *shape)
{
    switch (e) {
    case EXTENT_N: return N;
    case EXTENT_K: return K;
    case EXTENT_HALF_N: return N / 2;
    case EXTENT_CODE_ROW_BYTES: return shape->code_row_bytes;
    case EXTENT_SCALE_ROWS: return shape->scale_rows;
    case EXTENT_SCALE_COLS: return shape->scale_cols;
    case EXTENT_ONE: return 1;
    }
    return 0;
}

static int dims_values(const layout_dims *d, int64_t N, int64_t K, const strata_quant_shape *shape, int64_t *out)
{
    for (int i = 0; i < d->n_dims; i++) out[i] = extent_value(d->extents[i], N, K, shape);
    return d->n_dims;
}

strata_status weight_layout_write(const weight_layout *layout, const char *module, int64_t N, int64_t K,
                                  const strata_qtensor *q, const strata_quant_shape *shape, layout_emit_fn emit,
                                  void *ctx)
{
    uint8_t *paired = NULL;
    if (layout->rows_paired) {
        size_t bytes = strata_pack_int4_size(STRATA_INT4_MODELOPT_AWQ, N, K);
        if (bytes == 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: int4 export packs two rows per byte; %lld rows is odd",
                               module, (long long)N);
        paired = malloc(bytes);
        if (!paired) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory packing %s", module);
    }
    strata_status status = paired ? strata_pack_int4(STRATA_INT4_MODELOPT_AWQ, q->codes, N, K, paired) : STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < layout->n_tensors; i++) {
        const layout_tensor *t = &layout->tensors[i];
        const void *data = t->part == PART_CODES ? (paired ? (const void *)paired : q->codes)
                           : t->part == PART_SCALES ? q->scales
                                                    : (const void *)&q->global_scale;
        int64_t dims[4];
        int n_dims = dims_values(&t->dims, N, K, shape, dims);
        status = emit(ctx, t->suffix, t->dtype, n_dims, dims, data);
    }
    free(paired);
    return status;
}

static bool shape_is(const strata_tensor *t, const layout_dims *d, int64_t N, int64_t K,
                     const strata_quant_shape *shape)
{
    if (d->n_dims < 0 || t->n_dims != d->n_dims) return false;
    int64_t want[4];
    dims_values(d, N, K, shape, want);
    for (int i = 0; i < d->n_dims; i++)
        if (t->shape[i] != want[i]) return false;
    return true;
}

/* The INT4 group of a row of K columns with `groups` scales: the config's group when it
 * fits (the last group of a row may be short), else K / groups when that divides. */
static int64_t group_for(int64_t K, int64_t groups, int64_t hint)
{
    int64_t g = hint > 0 ? hint : 128;
    if (groups > 0 && (K + g - 1) / g == groups) return g;
    return groups > 0 && K % groups == 0 ? K / groups : 0;
}

static const strata_tensor *find_tensor(layout_find_fn find, void *ctx, const layout_tensor *t)
{
    const strata_tensor *found = find(ctx, t->suffix);
    return found || !t->read_alias ? found : find(ctx, t->read_alias);
}

/* Whether layout holds the weight; fills out when it does. */
static bool matches(const weight_layout *layout, layout_find_fn find, void *ctx, int64_t N, int64_t K,
                    int64_t group_hint, stored_weight *out)
{
    *out = (stored_weight){.layout = layout, .N = N, .K = K,
                           .params = {.format = layout->format, .convention = STRATA_CONVENTION_MODELOPT}};
    for (int i = 0; i < layout->n_tensors; i++) {
        out->tensors[i] = find_tensor(find, ctx, &layout->tensors[i]);
        if (!out->tensors[i]) return false;
    }
    if (layout->group_from_scales) {
        for (int i = 0; i < layout->n_tensors; i++) {
            const strata_tensor *t = out->tensors[i];
            if (layout->tensors[i].part == PART_SCALES && t->n_dims == 2)
                out->params.group_size = group_for(K, t->shape[1], group_hint);
        }
        if (out->params.group_size == 0) return false;
    }
    strata_quant_params probe = out->params;
    if (strata_quant_shape_get(&probe, N, K, &out->shape) != STRATA_OK) return false;
    for (int i = 0; i < layout->n_tensors; i++) {
        const layout_tensor *spec = &layout->tensors[i];
        const strata_tensor *t = out->tensors[i];
        bool dtype_ok = t->dtype == spec->dtype || (spec->read_bf16 && t->dtype == STRATA_DTYPE_BF16);
        if (!dtype_ok) return false;
        if (!shape_is(t, &spec->dims, N, K, &out->shape) && !shape_is(t, &spec->read_dims, N, K, &out->shape))
            return false;
    }
    return true;
}

strata_status weight_layout_match(layout_find_fn find, void *ctx, int64_t N, int64_t K, int64_t group_hint,
                                  stored_weight *out)
{
    for (size_t i = 0; i < sizeof READ_ORDER / sizeof READ_ORDER[0]; i++)
        if (matches(&LAYOUTS[READ_ORDER[i]], find, ctx, N, K, group_hint, out)) return STRATA_OK;
    const strata_tensor *weight = find(ctx, "weight"), *scale = find(ctx, "weight_scale");
    if (!scale) scale = find(ctx, "weight_scale_inv");
    char shape[64] = "";
    for (int d = 0; scale && d < scale->n_dims && d < 4; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%lld", d ? ", " : "",
                 (long long)scale->shape[d]);
    if (!scale)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "tensor %s is %s without a weight_scale strata can read",
                           weight ? weight->name : "weight", weight ? strata_dtype_name(weight->dtype) : "missing");
    return strata_fail(STRATA_ERR_UNSUPPORTED,
                       "tensor %s (%s) of a (%lld, %lld) linear with %s %s (%s): a layout strata cannot read",
                       weight ? weight->name : "weight", weight ? strata_dtype_name(weight->dtype) : "missing",
                       (long long)N, (long long)K, scale->name, strata_dtype_name(scale->dtype), shape);
}

/* ModelOpt INT4 AWQ (N / 2, K) bytes -> canonical (N, ceil(K / 2)) nibbles. */
static void unpair_rows(const uint8_t *paired, int64_t N, int64_t K, uint8_t *codes)
{
    int64_t row_bytes = (K + 1) / 2;
    memset(codes, 0, (size_t)(N * row_bytes));
    for (int64_t r = 0; r < N; r++)
        for (int64_t c = 0; c < K; c++) {
            uint8_t v = (uint8_t)(paired[(r / 2) * K + c] >> (4 * (r & 1))) & 0xF;
            codes[r * row_bytes + c / 2] |= (uint8_t)(v << (4 * (c & 1)));
        }
}

strata_status weight_layout_dequantize(const stored_weight *w, float *out)
{
    const weight_layout *layout = w->layout;
    strata_qtensor q = {0};
    uint8_t *unpaired = NULL;
    float *scales_f32 = NULL;
    strata_status status = STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < layout->n_tensors; i++) {
        const strata_tensor *t = w->tensors[i];
        switch (layout->tensors[i].part) {
        case PART_CODES:
            q.codes = (uint8_t *)(uintptr_t)t->data;
            if (layout->rows_paired) {
                unpaired = malloc(w->shape.code_bytes);
                if (!unpaired) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
                else unpair_rows(t->data, w->N, w->K, unpaired);
                q.codes = unpaired;
            }
            break;
        case PART_SCALES:
            q.scales = (void *)(uintptr_t)t->data;
            if (t->dtype != layout->tensors[i].dtype) { /* BF16 block scales */
                scales_f32 = malloc((size_t)t->n_elements * sizeof *scales_f32);
                status = scales_f32 ? strata_convert_to_f32(t->dtype, t->data, (size_t)t->n_elements, scales_f32)
                                    : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", t->name);
                q.scales = scales_f32;
            }
            break;
        case PART_GLOBAL: memcpy(&q.global_scale, t->data, sizeof q.global_scale); break;
        }
    }
    if (status == STRATA_OK) status = strata_dequantize(&w->params, &q, w->N, w->K, out);
    free(unpaired);
    free(scales_f32);
    return status;
}
