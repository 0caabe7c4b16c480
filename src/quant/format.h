/*
 * format.h — the quantization formats inside strata: the traits table, buffer shapes, and
 * the per-format operations the driver (quantize.c) runs over rows.
 *
 * Every format is computed in two passes over the rows of a tensor:
 *   1. block_absmax: per row, the absolute maximum of each scale block along the row
 *      (and the minimum/maximum for asymmetric formats); rows are reduced to the scale
 *      grid (tiles of 128 rows, or the whole tensor) afterwards;
 *   2. quantize_row: per row, elements to codes with the scales of pass 1.
 * The functions here are the scalar reference: they define the bytes.
 */
#ifndef STRATA_QUANT_FORMAT_H
#define STRATA_QUANT_FORMAT_H

#include "strata.h"

/* Resolved parameters of one quantization, shared by every row task. */
typedef struct quant_plan {
    strata_format format;
    strata_convention convention;
    const strata_format_info *info;
    strata_dtype data_dtype;     /* of the input as stored (F32, BF16, F16) */
    strata_dtype source_dtype;   /* of the weight the values came from (params->values_dtype, else
                                  * data_dtype): some references round intermediates to it */
    int64_t rows, cols;
    int64_t block_cols;          /* elements per scale along a row (cols for whole-row scales) */
    int64_t blocks_per_row;      /* ceil(cols / block_cols) */
    int64_t block_rows;          /* rows per scale (rows for per-tensor) */
    strata_quant_shape shape;
    float calibrated_amax;       /* > 0 overrides the data's tensor amax */
} quant_plan;

/* Whether the format quantizes with one amax for the whole tensor (FP8 per tensor, NVFP4's
 * global scale): the amax fused linears can share. */
bool quant_format_has_tensor_amax(strata_format format);
/* Bits of one code (8 or 4); 0 for an unknown format. */
int quant_format_element_bits(strata_format format);

strata_status quant_plan_init(const strata_quant_params *params, strata_dtype dtype, int64_t rows, int64_t cols,
                              quant_plan *plan);

/* Rounds an intermediate to the precision of the input dtype (identity for F32): the
 * references compute some steps in the weight's dtype. */
float quant_round_to_source(const quant_plan *plan, float x);

/* Per-block statistics of pass 1, for one row: absmax[b], and for asymmetric formats
 * min[b] and max[b]. */
typedef struct block_stats {
    float *absmax;   /* (blocks_per_row) */
    float *min, *max;
} block_stats;

/* Scales derived from pass 1, in the canonical scale layout, plus what the element kernels
 * need in fp32 (the decoded scale of every block and, for asymmetric formats, the zero
 * point). */
typedef struct quant_scales {
    void *stored;            /* (scale_rows, scale_cols) of scale_dtype: the output */
    float global;            /* NVFP4 global scale as stored (convention-dependent) */
    float tensor_amax;       /* the amax the global/tensor scale came from */
    int8_t *zero_points;     /* (scale_rows, scale_cols) or NULL */
} quant_scales;

/* Computes the stored scales of scale-grid row sr from the reduced block statistics
 * (absmax/min/max of each scale block, reduced over the block's rows). */
void quant_scales_from_stats(const quant_plan *plan, const float *absmax, const float *min, const float *max,
                             int64_t scale_row, quant_scales *scales);
/* The global / tensor scale from the tensor amax (before quant_scales_from_stats). */
void quant_global_from_amax(const quant_plan *plan, float amax, quant_scales *scales);

/* Quantizes one row x (cols fp32 values, then zeros up to padded_cols) into codes
 * (code_row_bytes). */
void quant_row(const quant_plan *plan, const quant_scales *scales, int64_t row, const float *x, uint8_t *codes);
/* Dequantizes one row. */
void dequant_row(const quant_plan *plan, const quant_scales *scales, int64_t row, const uint8_t *codes, float *out);

/* strata_dequantize into bf16 bits: each value dequantized in fp32 as strata_dequantize
 * gives it, then rounded to the nearest bf16 (what a bf16 GEMM weight holds). */
strata_status quant_dequantize_bf16(const strata_quant_params *params, const strata_qtensor *q, int64_t rows,
                                    int64_t cols, uint16_t *dst);

/* The value x becomes as element (row, col) of the tensor: quantized with the block's
 * scale and dequantized, exactly as quant_row then dequant_row would (GPTQ quantizes one
 * column at a time with it). */
float quant_element(const quant_plan *plan, const quant_scales *s, int64_t row, int64_t col, float x);

/* Quantization with a clip factor per scale block: the statistics of scale-grid cell
 * (sr, b) are multiplied by clip[sr * blocks_per_row + b] before its scale is computed
 * (the mse search's result; NVFP4's global scale keeps the tensor amax). clip NULL is
 * strata_quantize / strata_fake_quantize. dequantized (rows, cols) may be NULL. */
strata_status quant_tensor_clipped(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                   int64_t rows, int64_t cols, const float *clip, strata_qtensor *out,
                                   float *dequantized);
strata_status quant_fake_clipped(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                                 int64_t cols, const float *clip, float *dst);

/* What may change each scale block's statistics (symmetric formats), on the scale grid
 * (scale_rows, blocks_per_row): first a clip factor, then a floor on the block's amax (another
 * tensor's block amax it must share: ModelOpt's elementwise maximum of an expert's gate and up
 * INT4 amax). Either may be NULL. */
typedef struct quant_block_adjust {
    const float *clip;
    const float *amax_floor;
} quant_block_adjust;
strata_status quant_tensor_adjusted(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                    int64_t rows, int64_t cols, const quant_block_adjust *adjust, strata_qtensor *out,
                                    float *dequantized);
strata_status quant_fake_adjusted(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                                  int64_t cols, const quant_block_adjust *adjust, float *dst);
/* Each scale block's amax (scale_rows, blocks_per_row) of src, as the quantizer takes it. */
strata_status quant_block_amax(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                               int64_t cols, float *amax);

/* Buffers for a quantized tensor of the given shape (zero points only when it has them);
 * false when out of memory (nothing left allocated). free leaves q zeroed. */
bool quant_qtensor_alloc(const strata_quant_shape *shape, strata_qtensor *q);
/* Only the scales and zero points (codes supplied by the caller); free them with free(). */
bool quant_qtensor_alloc_scales(const strata_quant_shape *shape, strata_qtensor *q);
void quant_qtensor_free(strata_qtensor *q);

/* Scales fixed from one tensor, codes from another (GPTQ): quant_scales_of computes only
 * the scales strata_quantize would give src (into out->scales, zero_points and
 * global_scale; codes untouched); quant_codes_with_scales then writes the codes of
 * values (rows, cols) fp32 under the scales already in q, and their dequantized values
 * when dequantized is not NULL. */
strata_status quant_scales_of(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                              int64_t cols, strata_qtensor *out);
strata_status quant_codes_with_scales(const strata_quant_params *params, const float *values, int64_t rows,
                                      int64_t cols, strata_qtensor *q, float *dequantized);

#endif
