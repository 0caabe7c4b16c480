/*
 * quantize.c — strata_quantize / strata_dequantize / strata_fake_quantize: the driver
 * that runs a format's two passes (block statistics, then codes) over rows on the pool.
 *
 * Pass 1 records each row's per-block absmax (and min/max for asymmetric formats) into a
 * (rows, blocks_per_row) table and rejects NaN/Inf: BF16 rows straight from their bits (the
 * kernel reports a non-finite value, and only such a row is widened to find it), other
 * rows after converting them to fp32. The table is reduced
 * over each scale block's rows (1, 128 or all) into the scale grid. Pass 2 converts each
 * row again and writes its codes. Each row is independent, so the bytes do not depend on
 * the number of threads.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/big_buffer.h"
#include "core/error.h"
#include "kernels/cpu.h"
#include "kernels/minifloat.h"
#include "kernels/pool.h"
#include "quant/format.h"

typedef struct quant_job {
    const quant_plan *plan;
    const void *src;
    size_t element_size;
    float *absmax, *min, *max;          /* (rows, blocks_per_row) statistics of pass 1 */
    quant_scales *scales;               /* written by the scales pass, read by the codes pass */
    uint8_t *codes;                     /* (rows, code_row_bytes) */
    float *dequantized;                 /* (rows, cols) for fake quantization, or NULL */
    atomic_int_fast64_t first_bad;      /* smallest row*cols+col holding NaN/Inf, or INT64_MAX */
    atomic_int failed_alloc;
} quant_job;

static const void *row_source(const quant_job *job, int64_t row)
{
    return (const char *)job->src + (size_t)row * (size_t)job->plan->cols * job->element_size;
}

/* Records the first non-finite element of this row, if it comes before any seen so far. */
static void note_bad(quant_job *job, int64_t row, const float *x)
{
    int64_t cols = job->plan->cols, c = 0;
    while (c < cols && isfinite(x[c])) c++;
    int_fast64_t at = row * cols + c, seen = atomic_load(&job->first_bad);
    while (at < seen && !atomic_compare_exchange_weak(&job->first_bad, &seen, at)) {}
}

static void stats_task(void *ctx, int64_t begin, int64_t end)
{
    quant_job *job = ctx;
    const quant_plan *plan = job->plan;
    float *x = malloc((size_t)plan->cols * sizeof *x);
    if (!x) { atomic_store(&job->failed_alloc, 1); return; }
    const kernel_set *k = kernels();
    for (int64_t row = begin; row < end; row++) {
        float *absmax = job->absmax + row * plan->blocks_per_row;
        if (!job->min && plan->data_dtype == STRATA_DTYPE_BF16) {
            /* Straight from the BF16 bits: no widening pass. */
            if (k->bf16_block_absmax(row_source(job, row), (size_t)plan->cols, (size_t)plan->block_cols, absmax))
                continue;
            strata_convert_to_f32(plan->data_dtype, row_source(job, row), (size_t)plan->cols, x);
            note_bad(job, row, x);
            continue;
        }
        strata_convert_to_f32(plan->data_dtype, row_source(job, row), (size_t)plan->cols, x);
        if (!job->min) {
            if (!k->block_absmax(x, (size_t)plan->cols, (size_t)plan->block_cols, absmax)) note_bad(job, row, x);
            continue;
        }
        for (int64_t b = 0; b < plan->blocks_per_row; b++) {
            int64_t c0 = b * plan->block_cols, c1 = c0 + plan->block_cols < plan->cols ? c0 + plan->block_cols : plan->cols;
            float a = 0, lo = INFINITY, hi = -INFINITY;
            for (int64_t c = c0; c < c1; c++) {
                float v = x[c];
                if (!isfinite(v)) {
                    note_bad(job, row, x);
                    v = 0;
                }
                float m = fabsf(v);
                a = m > a ? m : a;
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
            absmax[b] = a;
            job->min[row * plan->blocks_per_row + b] = lo;
            job->max[row * plan->blocks_per_row + b] = hi;
        }
    }
    free(x);
}

static void codes_task(void *ctx, int64_t begin, int64_t end)
{
    quant_job *job = ctx;
    const quant_plan *plan = job->plan;
    float *x = calloc((size_t)plan->shape.padded_cols, sizeof *x); /* zeros past cols stay zero */
    if (!x) { atomic_store(&job->failed_alloc, 1); return; }
    for (int64_t row = begin; row < end; row++) {
        uint8_t *codes = job->codes + row * plan->shape.code_row_bytes;
        strata_convert_to_f32(plan->data_dtype, row_source(job, row), (size_t)plan->cols, x);
        quant_row(plan, job->scales, row, x, codes);
        if (job->dequantized) dequant_row(plan, job->scales, row, codes, job->dequantized + row * plan->cols);
    }
    free(x);
}

static void scales_task(void *ctx, int64_t begin, int64_t end)
{
    quant_job *job = ctx;
    const quant_plan *plan = job->plan;
    for (int64_t sr = begin; sr < end; sr++) {
        int64_t offset = sr * plan->blocks_per_row;
        quant_scales_from_stats(plan, job->absmax + offset, job->min ? job->min + offset : NULL,
                                job->max ? job->max + offset : NULL, sr, job->scales);
    }
}

/* Reduces row statistics over each scale block's rows into the scale grid (in place:
 * scale row r's statistics end up in row r of the tables). */
static void reduce_to_grid(const quant_plan *plan, float *absmax, float *min, float *max)
{
    int64_t n = plan->blocks_per_row;
    if (plan->block_rows == 1) return; /* already one row of statistics per scale row */
    for (int64_t sr = 0; sr < plan->shape.scale_rows; sr++) {
        int64_t r0 = sr * plan->block_rows, r1 = r0 + plan->block_rows < plan->rows ? r0 + plan->block_rows : plan->rows;
        for (int64_t b = 0; b < n; b++) {
            float a = absmax[r0 * n + b];
            float lo = min ? min[r0 * n + b] : 0, hi = max ? max[r0 * n + b] : 0;
            for (int64_t r = r0 + 1; r < r1; r++) {
                a = absmax[r * n + b] > a ? absmax[r * n + b] : a;
                if (min) {
                    lo = min[r * n + b] < lo ? min[r * n + b] : lo;
                    hi = max[r * n + b] > hi ? max[r * n + b] : hi;
                }
            }
            absmax[sr * n + b] = a;
            if (min) {
                min[sr * n + b] = lo;
                max[sr * n + b] = hi;
            }
        }
    }
}

/* The statistics pass: job's absmax (and min, max) tables allocated and filled, reduced to
 * the scale grid; *tensor_amax the data's amax. */
static strata_status gather_stats(const quant_plan *plan, quant_job *job, float *tensor_amax)
{
    int64_t n_stats = plan->rows * plan->blocks_per_row;
    job->absmax = malloc((size_t)n_stats * sizeof(float));
    if (plan->info->has_zero_point) {
        job->min = malloc((size_t)n_stats * sizeof(float));
        job->max = malloc((size_t)n_stats * sizeof(float));
    }
    if (!job->absmax || (plan->info->has_zero_point && (!job->min || !job->max)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the statistics of a [%lld, %lld] tensor",
                           (long long)plan->rows, (long long)plan->cols);
    pool_parallel_for(plan->rows, 1, stats_task, job);
    int_fast64_t bad = atomic_load(&job->first_bad);
    if (bad != INT64_MAX)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "non-finite value (NaN or Inf) at row %lld, column %lld",
                           (long long)(bad / plan->cols), (long long)(bad % plan->cols));
    if (atomic_load(&job->failed_alloc))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory quantizing a [%lld, %lld] tensor",
                           (long long)plan->rows, (long long)plan->cols);
    *tensor_amax = 0;
    kernels()->block_absmax(job->absmax, (size_t)n_stats, (size_t)n_stats, tensor_amax);
    reduce_to_grid(plan, job->absmax, job->min, job->max);
    return STRATA_OK;
}

static quant_job job_for(const quant_plan *plan, const void *src, strata_qtensor *out, float *dequantized)
{
    quant_job job = {.plan = plan, .src = src, .element_size = strata_dtype_size(plan->data_dtype),
                     .codes = out ? out->codes : NULL, .dequantized = dequantized};
    atomic_init(&job.first_bad, INT64_MAX);
    atomic_init(&job.failed_alloc, 0);
    return job;
}

/* Runs both passes (only the first when codes is false); adjust and dequantized may be NULL. */
static strata_status run(const quant_plan *plan, const void *src, const quant_block_adjust *adjust, bool codes,
                         strata_qtensor *out, float *dequantized)
{
    quant_job job = job_for(plan, src, out, dequantized);
    float tensor_amax = 0;
    strata_status status = gather_stats(plan, &job, &tensor_amax);
    if (status != STRATA_OK) goto done;
    /* A calibrated amax replaces the data's for the tensor-level scale. */
    if (plan->calibrated_amax > 0) {
        tensor_amax = plan->calibrated_amax;
        if (plan->format == STRATA_FORMAT_FP8_TENSOR) job.absmax[0] = tensor_amax;
    }
    /* A searched clip shrinks or widens each scale block's range, a floor raises it (the
     * global scale keeps the tensor's amax). */
    const float *clip = adjust ? adjust->clip : NULL, *at_least = adjust ? adjust->amax_floor : NULL;
    for (int64_t i = 0; (clip || at_least) && i < plan->shape.scale_rows * plan->blocks_per_row; i++) {
        if (clip) {
            job.absmax[i] *= clip[i];
            if (job.min) {
                job.min[i] *= clip[i];
                job.max[i] *= clip[i];
            }
        }
        if (at_least && at_least[i] > job.absmax[i]) job.absmax[i] = at_least[i];
    }
    quant_scales scales = {.stored = out->scales, .zero_points = out->zero_points};
    quant_global_from_amax(plan, tensor_amax, &scales);
    job.scales = &scales;
    pool_parallel_for(plan->shape.scale_rows, 16, scales_task, &job);
    out->global_scale = scales.global;
    if (codes) pool_parallel_for(plan->rows, 1, codes_task, &job);
    if (atomic_load(&job.failed_alloc))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory quantizing a [%lld, %lld] tensor",
                             (long long)plan->rows, (long long)plan->cols);
done:
    free(job.absmax);
    free(job.min);
    free(job.max);
    return status;
}

static strata_status check_buffers(const quant_plan *plan, const strata_qtensor *q)
{
    if (!q || !q->codes || !q->scales || (plan->info->has_zero_point && !q->zero_points))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: missing output buffers", plan->info->name);
    return STRATA_OK;
}

/* Checks the arguments, then runs the passes (see run). */
static strata_status quantize_checked(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                      int64_t rows, int64_t cols, const quant_block_adjust *adjust, bool codes,
                                      strata_qtensor *out, float *dequantized)
{
    quant_plan plan;
    strata_status status = quant_plan_init(params, dtype, rows, cols, &plan);
    if (status == STRATA_OK && !src) status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_quantize: NULL input");
    if (status == STRATA_OK) status = check_buffers(&plan, out);
    if (status != STRATA_OK) return status;
    return run(&plan, src, adjust, codes, out, dequantized);
}

strata_status strata_quantize(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                              int64_t cols, strata_qtensor *out)
{
    return quantize_checked(params, dtype, src, rows, cols, NULL, true, out, NULL);
}

typedef struct dequant_job {
    const quant_plan *plan;
    const quant_scales *scales;
    const uint8_t *codes;
    float *dst;        /* fp32 output, or */
    uint16_t *dst_bf16; /* bf16 output (each row dequantized to fp32, then rounded) */
    atomic_int failed_alloc;
} dequant_job;

static void dequant_task(void *ctx, int64_t begin, int64_t end)
{
    dequant_job *job = ctx;
    int64_t cols = job->plan->cols;
    float *row_values = job->dst_bf16 ? malloc((size_t)cols * sizeof *row_values) : NULL;
    if (job->dst_bf16 && !row_values) {
        atomic_store(&job->failed_alloc, 1);
        return;
    }
    for (int64_t row = begin; row < end; row++) {
        const uint8_t *codes = job->codes + row * job->plan->shape.code_row_bytes;
        if (!job->dst_bf16) {
            dequant_row(job->plan, job->scales, row, codes, job->dst + row * cols);
            continue;
        }
        dequant_row(job->plan, job->scales, row, codes, row_values);
        uint16_t *out = job->dst_bf16 + row * cols;
        for (int64_t c = 0; c < cols; c++) out[c] = bf16_bits_from_f32(row_values[c]);
    }
    free(row_values);
}

static strata_status dequantize_into(const strata_quant_params *params, const strata_qtensor *q, int64_t rows,
                                     int64_t cols, float *dst, uint16_t *dst_bf16)
{
    quant_plan plan;
    strata_status status = quant_plan_init(params, STRATA_DTYPE_F32, rows, cols, &plan);
    if (status == STRATA_OK) status = check_buffers(&plan, q);
    if (status == STRATA_OK && !dst && !dst_bf16)
        status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_dequantize: NULL output");
    if (status != STRATA_OK) return status;
    quant_scales scales = {.stored = q->scales, .global = q->global_scale, .zero_points = q->zero_points};
    dequant_job job = {.plan = &plan, .scales = &scales, .codes = q->codes, .dst = dst, .dst_bf16 = dst_bf16};
    atomic_init(&job.failed_alloc, 0);
    pool_parallel_for(rows, dst_bf16 ? 16 : 1, dequant_task, &job);
    if (atomic_load(&job.failed_alloc)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory dequantizing");
    return STRATA_OK;
}

strata_status strata_dequantize(const strata_quant_params *params, const strata_qtensor *q, int64_t rows, int64_t cols,
                                float *dst)
{
    return dequantize_into(params, q, rows, cols, dst, NULL);
}

strata_status quant_dequantize_bf16(const strata_quant_params *params, const strata_qtensor *q, int64_t rows,
                                    int64_t cols, uint16_t *dst)
{
    if (!dst) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quant_dequantize_bf16: NULL output");
    return dequantize_into(params, q, rows, cols, NULL, dst);
}

strata_status quant_tensor_clipped(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                   int64_t rows, int64_t cols, const float *clip, strata_qtensor *out,
                                   float *dequantized)
{
    quant_block_adjust adjust = {.clip = clip};
    return quantize_checked(params, dtype, src, rows, cols, &adjust, true, out, dequantized);
}

strata_status quant_tensor_adjusted(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                    int64_t rows, int64_t cols, const quant_block_adjust *adjust, strata_qtensor *out,
                                    float *dequantized)
{
    return quantize_checked(params, dtype, src, rows, cols, adjust, true, out, dequantized);
}

strata_status quant_fake_adjusted(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                                  int64_t cols, const quant_block_adjust *adjust, float *dst)
{
    quant_plan plan;
    strata_status status = quant_plan_init(params, dtype, rows, cols, &plan);
    if (status == STRATA_OK && (!src || !dst))
        status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_fake_quantize: NULL buffer");
    if (status != STRATA_OK) return status;
    strata_qtensor q;
    if (!quant_qtensor_alloc(&plan.shape, &q))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory fake-quantizing a [%lld, %lld] tensor",
                             (long long)rows, (long long)cols);
    /* In place (dst == src) is safe: each row is read completely before it is written. */
    if (status == STRATA_OK) status = run(&plan, src, adjust, true, &q, dst);
    quant_qtensor_free(&q);
    return status;
}

strata_status quant_fake_clipped(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                                 int64_t cols, const float *clip, float *dst)
{
    quant_block_adjust adjust = {.clip = clip};
    return quant_fake_adjusted(params, dtype, src, rows, cols, &adjust, dst);
}

strata_status quant_block_amax(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                               int64_t cols, float *amax)
{
    quant_plan plan;
    strata_status status = quant_plan_init(params, dtype, rows, cols, &plan);
    if (status == STRATA_OK && (!src || !amax))
        status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quant_block_amax: NULL buffer");
    if (status != STRATA_OK) return status;
    quant_job job = job_for(&plan, src, NULL, NULL);
    float tensor_amax = 0;
    status = gather_stats(&plan, &job, &tensor_amax);
    if (status == STRATA_OK)
        memcpy(amax, job.absmax, (size_t)(plan.shape.scale_rows * plan.blocks_per_row) * sizeof *amax);
    free(job.absmax);
    free(job.min);
    free(job.max);
    return status;
}

bool quant_qtensor_alloc_scales(const strata_quant_shape *shape, strata_qtensor *q)
{
    q->scales = malloc(shape->scale_bytes ? shape->scale_bytes : 1);
    q->zero_points = shape->zero_point_bytes ? malloc(shape->zero_point_bytes) : NULL;
    return q->scales && (!shape->zero_point_bytes || q->zero_points);
}

bool quant_qtensor_alloc(const strata_quant_shape *shape, strata_qtensor *q)
{
    *q = (strata_qtensor){.codes = big_buffer_alloc(shape->code_bytes)};
    if (quant_qtensor_alloc_scales(shape, q) && q->codes) return true;
    quant_qtensor_free(q);
    return false;
}

void quant_qtensor_free(strata_qtensor *q)
{
    free(q->codes);
    free(q->scales);
    free(q->zero_points);
    *q = (strata_qtensor){0};
}

strata_status strata_fake_quantize(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                                   int64_t cols, float *dst)
{
    return quant_fake_clipped(params, dtype, src, rows, cols, NULL, dst);
}

strata_status quant_scales_of(const strata_quant_params *params, strata_dtype dtype, const void *src, int64_t rows,
                              int64_t cols, strata_qtensor *out)
{
    return quantize_checked(params, dtype, src, rows, cols, NULL, false, out, NULL);
}

strata_status quant_codes_with_scales(const strata_quant_params *params, const float *values, int64_t rows,
                                      int64_t cols, strata_qtensor *q, float *dequantized)
{
    quant_plan plan;
    strata_status status = quant_plan_init(params, STRATA_DTYPE_F32, rows, cols, &plan);
    if (status == STRATA_OK && !values) status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quantize: NULL input");
    if (status == STRATA_OK) status = check_buffers(&plan, q);
    if (status != STRATA_OK) return status;
    quant_scales scales = {.stored = q->scales, .global = q->global_scale, .zero_points = q->zero_points};
    quant_job job = {.plan = &plan, .src = values, .element_size = sizeof(float), .scales = &scales,
                     .codes = q->codes, .dequantized = dequantized};
    atomic_init(&job.first_bad, INT64_MAX);
    atomic_init(&job.failed_alloc, 0);
    pool_parallel_for(rows, 1, codes_task, &job);
    if (atomic_load(&job.failed_alloc))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory quantizing a [%lld, %lld] tensor", (long long)rows,
                           (long long)cols);
    return STRATA_OK;
}
