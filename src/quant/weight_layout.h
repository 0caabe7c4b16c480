/*
 * weight_layout.h — how a quantized weight is stored in a checkpoint: one row per format
 * and family (ModelOpt, compressed-tensors) names its tensors (suffix, dtype, shape as a
 * function of N, K and the quantized shape) and which part of the quantized tensor each
 * holds. The exporter writes through weight_layout_write and the reader of quantized
 * checkpoints (forward/quantized_weight.c) recognizes and decodes through
 * weight_layout_match / weight_layout_dequantize, both driven by the same rows, so writer
 * and reader cannot drift apart; test_weight_layout round-trips every row.
 *
 * ModelOpt, per quantized linear <m> (scalar scales as 0-d F32 tensors):
 *   fp8          <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 ()
 *   fp8-channel  <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 (N)
 *   int8         <m>.weight I8 (N, K), <m>.weight_scale F32 (N)
 *   fp8-block    <m>.weight F8_E4M3 (N, K), <m>.weight_scale F32 (ceil(N/128), 1, ceil(K/128), 1):
 *                one scale per 128x128 tile, in the shape of ModelOpt's block amax
 *   nvfp4        <m>.weight U8 (N, K/2), <m>.weight_scale F8_E4M3 (N, K/16), <m>.weight_scale_2 F32 ()
 *   mxfp4        <m>.weight U8 (N, K/2), <m>.weight_scale U8 E8M0 (N, K/32)
 *   int4         <m>.weight U8 (N/2, K) two rows per byte, <m>.weight_scale F32 (N, K/group)
 * mxfp8 and int4-asym have no ModelOpt layout. Reading also accepts what other producers
 * of the same numerics write: weight_scale_inv for weight_scale (DeepSeek, Qwen FP8
 * releases), 2-D (ceil(N/128), ceil(K/128)) block grids, BF16 block scales, (1) for a
 * scalar and (N, 1) for a per-row scale.
 *
 * compressed-tensors (0.19/0.20, as llm-compressor saves with save_compressed=True; W is the
 * weight's own dtype, in which that library computes and stores these scales):
 *   float-quantized   fp8 / fp8-channel / fp8-block: <m>.weight F8_E4M3 (N, K),
 *                     <m>.weight_scale W (1) / (N, 1) / (ceil(N/128), ceil(K/128))
 *   int-quantized     int8 with quantized inputs: <m>.weight I8 (N, K), <m>.weight_scale W (N, 1)
 *   pack-quantized    int8 weight-only, int4, int4-asym: <m>.weight_packed I32 (N, ceil(K*bits/32))
 *                     offset binary, little-endian words along a row; <m>.weight_scale W (N, 1) or
 *                     (N, K/group); <m>.weight_shape I64 (2) = [N, K]; asymmetric:
 *                     <m>.weight_zero_point I32 (ceil(N/8), K/group) packed along rows
 *   nvfp4-pack-quantized  <m>.weight_packed U8 (N, K/2), <m>.weight_scale F8_E4M3 (N, K/16),
 *                     <m>.weight_global_scale F32 (1) = 2688 / amax (the reciprocal of ModelOpt's)
 *   mxfp4-pack-quantized  <m>.weight_packed U8 (N, K/2), <m>.weight_scale U8 (N, K/32)
 */
#ifndef STRATA_QUANT_WEIGHT_LAYOUT_H
#define STRATA_QUANT_WEIGHT_LAYOUT_H

#include "strata.h"

/* Which part of a strata_qtensor a stored tensor holds. */
typedef enum layout_part {
    PART_CODES = 0,   /* qtensor.codes */
    PART_SCALES,      /* qtensor.scales */
    PART_GLOBAL,      /* qtensor.global_scale, one F32 */
    PART_ZERO_POINTS, /* qtensor.zero_points, int4 packed along rows in int32 words */
    PART_SHAPE,       /* the weight's (N, K) as two I64 */
} layout_part;

/* Whose checkpoint layout. */
typedef enum layout_family {
    LAYOUT_MODELOPT = 0,
    LAYOUT_COMPRESSED_TENSORS,
} layout_family;

/* How the codes tensor stores strata's canonical codes. */
typedef enum layout_codes {
    CODES_CANONICAL = 0,  /* as strata_qtensor holds them */
    CODES_ROWS_PAIRED,    /* ModelOpt INT4 AWQ: codes of rows 2r and 2r+1 share a byte */
    CODES_INT32_WORDS,    /* compressed-tensors pack_to_int32: value + 2^(bits-1), packed into
                           * little-endian int32 words along a row, element i at bit bits*i */
} layout_codes;

/* One extent of a stored tensor, as a function of the weight (N, K) and its quantized shape. */
typedef enum layout_extent {
    EXTENT_N = 1,          /* output rows */
    EXTENT_K,              /* input columns */
    EXTENT_HALF_N,         /* N / 2 (rows paired in a byte) */
    EXTENT_CODE_ROW_BYTES, /* shape.code_row_bytes */
    EXTENT_SCALE_ROWS,     /* shape.scale_rows */
    EXTENT_SCALE_COLS,     /* shape.scale_cols */
    EXTENT_ONE,            /* 1 */
    EXTENT_CODE_WORDS,     /* int32 words of a row of K codes: ceil(K * bits / 32) */
    EXTENT_ZERO_POINT_WORDS, /* int32 words of a column of int4 zero points: ceil(scale_rows / 8) */
    EXTENT_TWO,            /* 2 */
} layout_extent;

typedef struct layout_dims {
    int n_dims;                 /* 0: a scalar; -1: no such form */
    layout_extent extents[4];
} layout_dims;

typedef struct layout_tensor {
    const char *suffix;         /* "weight_scale": stored as <module>.<suffix> */
    const char *read_alias;     /* another name readers accept, or NULL */
    layout_part part;
    strata_dtype dtype;         /* as written */
    bool read_bf16;             /* readers also accept BF16 (converted to F32) */
    bool weight_dtype;          /* written in the weight's dtype (BF16, F16 or F32) instead of
                                 * dtype; readers accept any of the three */
    layout_dims dims;           /* as written */
    layout_dims read_dims;      /* another shape readers accept (n_dims -1: none) */
} layout_tensor;

#define LAYOUT_MAX_TENSORS 4

typedef struct weight_layout {
    layout_family family;
    const char *name;            /* compressed-tensors' format name ("pack-quantized"); NULL for ModelOpt */
    strata_format format;
    strata_convention convention; /* whose arithmetic the stored scales follow */
    layout_codes codes;
    bool group_from_scales;      /* the group size is read from the scale tensor's columns */
    int n_tensors;
    layout_tensor tensors[LAYOUT_MAX_TENSORS];
} weight_layout;

/* The ModelOpt layout of a format; NULL when ModelOpt has none. */
const weight_layout *weight_layout_get(strata_format format);

/* The compressed-tensors layout of a format; inputs_quantized picks int-quantized over
 * pack-quantized for int8 (llm-compressor's W8A8 and W8A16). NULL when it has none. */
const weight_layout *weight_layout_compressed_tensors(strata_format format, bool inputs_quantized);

/* Writes one tensor (exporter callback): <module>.<suffix>. */
typedef strata_status (*layout_emit_fn)(void *ctx, const char *suffix, strata_dtype dtype, int n_dims,
                                        const int64_t *shape, const void *data);

/* Emits the tensors of module's weight (N, K), quantized as q with shape, in the layout's
 * order (module names it in messages). weight_dtype is the dtype of the weight quantized:
 * the dtype of the layout's weight_dtype tensors. */
strata_status weight_layout_write(const weight_layout *layout, const char *module, int64_t N, int64_t K,
                                  strata_dtype weight_dtype, const strata_qtensor *q, const strata_quant_shape *shape,
                                  layout_emit_fn emit, void *ctx);

/* Looks up <module>.<suffix> in the checkpoint being read; NULL when absent. */
typedef const strata_tensor *(*layout_find_fn)(void *ctx, const char *suffix);

/* A stored weight recognized by weight_layout_match. */
typedef struct stored_weight {
    const weight_layout *layout;
    strata_quant_params params;                 /* format, group size, the layout's convention */
    strata_quant_shape shape;
    int64_t N, K;
    const strata_tensor *tensors[LAYOUT_MAX_TENSORS]; /* by layout tensor */
} stored_weight;

/* Recognizes how the weight of an (N, K) linear is stored: the first layout (ModelOpt's,
 * then compressed-tensors') whose every tensor is present with its dtype and shape. group_hint is the INT4 group the checkpoint's
 * config names (0: none). STRATA_ERR_UNSUPPORTED, naming what was found, when none fits. */
strata_status weight_layout_match(layout_find_fn find, void *ctx, int64_t N, int64_t K, int64_t group_hint,
                                  stored_weight *out);

/* Dequantizes a recognized weight into out (N, K) fp32. */
strata_status weight_layout_dequantize(const stored_weight *w, float *out);

#endif
