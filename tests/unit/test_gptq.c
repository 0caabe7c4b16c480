/*
 * test_gptq.c — GPTQ on small matrices:
 *   - the element quantizer GPTQ uses agrees with quant_row/dequant_row on every format;
 *   - against llm-compressor's GPTQ on the same H and W (tests/golden/gptq, written by
 *     tools/gen_golden_gptq.py), with the compressed-tensors convention;
 *   - against a straightforward reference in this file (double precision, one column at a
 *     time, Cholesky by hand) with the ModelOpt convention strata exports;
 *   - the returned values are exactly the dequantized codes, under the scales of the
 *     original weights;
 *   - fallbacks: too few tokens, a Hessian that needs more damping, one that never
 *     factorizes;
 *   - the Hessian's binned sum (calib/hessian.c): the same bytes whatever the order and
 *     grouping of the windows, close to a double-precision sum, with windows of very
 *     different magnitudes.
 * Every element must equal the reference's, as docs/DECISIONS.md promises. Summation order
 * differs from the references (blocked LAPACK and GEMM against torch or plain loops), so
 * the error sums may differ in their last bits; the quantized values do not on these
 * inputs, and a change that moves one across a rounding boundary fails here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/gptq.h"
#include "calib/layer_calib.h"
#include "kernels/gemm.h"
#include "core/rng.h"
#include "helpers.h"
#include "io/json.h"
#include "quant/format.h"

enum { ROWS = 32, COLS = 128 };

typedef struct buffers {
    strata_qtensor q;
    strata_quant_shape shape;
} buffers;

static void buffers_make(const strata_quant_params *p, int64_t rows, int64_t cols, buffers *b)
{
    assert_int_equal(strata_quant_shape_get(p, rows, cols, &b->shape), STRATA_OK);
    b->q = (strata_qtensor){.codes = calloc(b->shape.code_bytes + 1, 1), .scales = calloc(b->shape.scale_bytes + 1, 1),
                            .zero_points = calloc(b->shape.zero_point_bytes + 1, 1)};
}

static void buffers_free(buffers *b)
{
    free(b->q.codes);
    free(b->q.scales);
    free(b->q.zero_points);
}

/* Standard normal (Box-Muller). */
static double rng_normal(rng *g)
{
    double u = ((double)(rng_next(g) >> 11) + 0.5) / 9007199254740992.0;
    double v = (double)(rng_next(g) >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

static void rng_seed(rng *g, uint64_t seed) { g->state = seed; }

static void random_matrix(rng *g, float *m, int64_t n, float scale)
{
    for (int64_t i = 0; i < n; i++) m[i] = (float)rng_normal(g) * scale;
}

/* H = 2/n X^T X of bf16-rounded activations with uneven column scales. */
static void random_hessian(rng *g, float *h, int64_t K, int64_t tokens, int64_t dead)
{
    double *col_scale = malloc((size_t)K * sizeof *col_scale), *x = malloc((size_t)(tokens * K) * sizeof *x);
    for (int64_t k = 0; k < K; k++) col_scale[k] = exp(rng_normal(g));
    for (int64_t t = 0; t < tokens; t++)
        for (int64_t k = 0; k < K; k++) x[t * K + k] = k == dead ? 0 : rng_normal(g) * col_scale[k];
    for (int64_t i = 0; i < K; i++)
        for (int64_t j = 0; j < K; j++) {
            double s = 0;
            for (int64_t t = 0; t < tokens; t++) s += x[t * K + i] * x[t * K + j];
            h[i * K + j] = (float)(2.0 * s / (double)tokens);
        }
    free(col_scale);
    free(x);
}

/* ------------------------------------------------------------ the element quantizer */

static void test_element_quantizer_matches_rows(void **state)
{
    (void)state;
    static const struct { strata_format format; strata_convention convention; int64_t cols; } cases[] = {
        {STRATA_FORMAT_FP8_TENSOR, STRATA_CONVENTION_MODELOPT, 96},
        {STRATA_FORMAT_FP8_CHANNEL, STRATA_CONVENTION_MODELOPT, 96},
        {STRATA_FORMAT_FP8_BLOCK, STRATA_CONVENTION_MODELOPT, 200},
        {STRATA_FORMAT_NVFP4, STRATA_CONVENTION_MODELOPT, 40},
        {STRATA_FORMAT_MXFP8, STRATA_CONVENTION_MODELOPT, 96},
        {STRATA_FORMAT_MXFP4, STRATA_CONVENTION_MODELOPT, 72},
        {STRATA_FORMAT_INT8_CHANNEL, STRATA_CONVENTION_MODELOPT, 96},
        {STRATA_FORMAT_INT4_GROUP, STRATA_CONVENTION_MODELOPT, 256},
        {STRATA_FORMAT_INT4_GROUP_ASYM, STRATA_CONVENTION_COMPRESSED_TENSORS, 256},
        {STRATA_FORMAT_FP8_TENSOR, STRATA_CONVENTION_COMPRESSED_TENSORS, 96},
        {STRATA_FORMAT_INT8_CHANNEL, STRATA_CONVENTION_COMPRESSED_TENSORS, 96},
        {STRATA_FORMAT_INT4_GROUP, STRATA_CONVENTION_COMPRESSED_TENSORS, 256},
        {STRATA_FORMAT_NVFP4, STRATA_CONVENTION_COMPRESSED_TENSORS, 96},
        {STRATA_FORMAT_MXFP4, STRATA_CONVENTION_COMPRESSED_TENSORS, 96},
    };
    rng g;
    rng_seed(&g, 11);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t rows = 24, cols = cases[c].cols;
        strata_quant_params p = {.format = cases[c].format, .convention = cases[c].convention};
        float *w = malloc((size_t)(rows * cols) * sizeof *w), *dq = malloc((size_t)(rows * cols) * sizeof *dq);
        random_matrix(&g, w, rows * cols, 0.1f);
        w[5] = 3.0f; /* saturating values too */
        buffers b;
        buffers_make(&p, rows, cols, &b);
        assert_int_equal(strata_quantize(&p, STRATA_DTYPE_F32, w, rows, cols, &b.q), STRATA_OK);
        assert_int_equal(strata_dequantize(&p, &b.q, rows, cols, dq), STRATA_OK);
        quant_plan plan;
        assert_int_equal(quant_plan_init(&p, STRATA_DTYPE_F32, rows, cols, &plan), STRATA_OK);
        quant_scales s = {.stored = b.q.scales, .global = b.q.global_scale, .zero_points = b.q.zero_points};
        for (int64_t r = 0; r < rows; r++)
            for (int64_t k = 0; k < cols; k++) {
                float e = quant_element(&plan, &s, r, k, w[r * cols + k]);
                if (memcmp(&e, &dq[r * cols + k], sizeof e) != 0)
                    fail_msg("%s (convention %d) element (%lld, %lld): element %g, row %g",
                             strata_format_get(p.format)->name, (int)p.convention, (long long)r, (long long)k,
                             (double)e, (double)dq[r * cols + k]);
            }
        buffers_free(&b);
        free(w);
        free(dq);
    }
}

/* ------------------------------------------------------------ the reference GPTQ */

/* In place: the lower Cholesky factor of a (n, n), double. */
static bool cholesky_lower(double *a, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t k = 0; k < j; k++) d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0)) return false;
        a[j * n + j] = sqrt(d);
        for (int64_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int64_t k = 0; k < j; k++) s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / a[j * n + j];
        }
        for (int64_t k = j + 1; k < n; k++) a[j * n + k] = 0;
    }
    return true;
}

/* The GPTQ recurrence with no blocks and no tricks: U upper with (H + damp)^-1 = U^T U,
 * then column by column w_j -= (w_i - q_i) / U[i,i] * U[i,j] for every j > i. */
static void reference_gptq(const quant_plan *plan, const quant_scales *s, const float *w, const float *h, int64_t n,
                           int64_t K, double damp, float *out)
{
    double *a = calloc((size_t)(K * K), sizeof *a), *inv = calloc((size_t)(K * K), sizeof *inv);
    double *row = malloc((size_t)K * sizeof *row);
    bool *dead = calloc((size_t)K, sizeof *dead);
    double mean = 0;
    for (int64_t i = 0; i < K; i++) {
        dead[i] = h[i * K + i] == 0;
        mean += dead[i] ? 1 : h[i * K + i];
    }
    mean /= (double)K;
    for (int64_t i = 0; i < K * K; i++) a[i] = h[i];
    for (int64_t i = 0; i < K; i++) a[i * K + i] = (dead[i] ? 1 : a[i * K + i]) + damp * mean;
    assert_true(cholesky_lower(a, K));
    /* inv = (L L^T)^-1, column by column: solve L y = e_c, then L^T x = y. */
    for (int64_t c = 0; c < K; c++) {
        for (int64_t i = 0; i < K; i++) {
            double y = i == c ? 1 : 0;
            for (int64_t k = 0; k < i; k++) y -= a[i * K + k] * row[k];
            row[i] = y / a[i * K + i];
        }
        for (int64_t i = K - 1; i >= 0; i--) {
            double x = row[i];
            for (int64_t k = i + 1; k < K; k++) x -= a[k * K + i] * inv[k * K + c];
            inv[i * K + c] = x / a[i * K + i];
        }
    }
    assert_true(cholesky_lower(inv, K)); /* inv = L2 L2^T; U = L2^T */
    for (int64_t r = 0; r < n; r++) {
        for (int64_t k = 0; k < K; k++) row[k] = dead[k] ? 0 : w[r * K + k];
        for (int64_t i = 0; i < K; i++) {
            float q = quant_element(plan, s, r, i, (float)row[i]);
            double e = (row[i] - q) / inv[i * K + i];
            for (int64_t j = i + 1; j < K; j++) row[j] -= e * inv[j * K + i];
            out[r * K + i] = q;
        }
    }
    free(a);
    free(inv);
    free(row);
    free(dead);
}

/* tr(D H D^T) for D = a - b. */
static double weighted(const float *a, const float *b, const float *h, int64_t n, int64_t K)
{
    double sum = 0;
    for (int64_t r = 0; r < n; r++)
        for (int64_t i = 0; i < K; i++) {
            double di = (double)a[r * K + i] - (b ? b[r * K + i] : 0);
            for (int64_t j = 0; j < K; j++) sum += di * h[i * K + j] * ((double)a[r * K + j] - (b ? b[r * K + j] : 0));
        }
    return sum;
}

/* The fraction of elements that are equal. */
static double agreement(const float *a, const float *b, int64_t n)
{
    int64_t same = 0;
    for (int64_t i = 0; i < n; i++) same += a[i] == b[i];
    return (double)same / (double)n;
}

/* Runs strata's GPTQ and checks what holds for every result: the values are the
 * dequantized codes, bit for bit, and the scales are those of the original weights. */
static void run_gptq(const strata_quant_params *p, const float *w, const float *h, int64_t tokens,
                     const gptq_options *o, float *out, gptq_report *report)
{
    buffers b, rtn;
    buffers_make(p, ROWS, COLS, &b);
    buffers_make(p, ROWS, COLS, &rtn);
    memcpy(out, w, sizeof(float) * ROWS * COLS);
    assert_int_equal(gptq_quantize(p, h, tokens, out, ROWS, COLS, o, &b.q, report), STRATA_OK);
    float *dq = malloc(sizeof(float) * ROWS * COLS);
    assert_int_equal(strata_dequantize(p, &b.q, ROWS, COLS, dq), STRATA_OK);
    assert_memory_equal(dq, out, sizeof(float) * ROWS * COLS);
    assert_int_equal(strata_quantize(p, STRATA_DTYPE_F32, w, ROWS, COLS, &rtn.q), STRATA_OK);
    assert_memory_equal(b.q.scales, rtn.q.scales, b.shape.scale_bytes);
    assert_memory_equal(b.q.zero_points, rtn.q.zero_points, b.shape.zero_point_bytes);
    assert_true(b.q.global_scale == rtn.q.global_scale);
    free(dq);
    buffers_free(&b);
    buffers_free(&rtn);
}

static void test_gptq_against_llm_compressor(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/gptq/gptq.safetensors", STRATA_GOLDEN_DIR);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    const strata_tensor *w = strata_safetensors_find(st, "weight"), *h = strata_safetensors_find(st, "hessian");
    assert_non_null(w);
    assert_non_null(h);
    assert_int_equal(w->shape[0], ROWS);
    assert_int_equal(w->shape[1], COLS);
    sjson_error error;
    const char *text = strata_safetensors_metadata(st, "cases");
    int64_t tokens = atoll(strata_safetensors_metadata(st, "tokens"));
    sjson *cases = sjson_parse(text, strlen(text), true, &error);
    assert_non_null(cases);
    assert_true(sjson_object_size(cases) >= 9);
    float *out = malloc(sizeof(float) * ROWS * COLS);
    for (void *it = sjson_iter(cases); it; it = sjson_iter_next(cases, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *c = sjson_iter_value(it);
        int64_t group, block;
        bool act_order;
        strata_quant_params p = {.convention = STRATA_CONVENTION_COMPRESSED_TENSORS};
        assert_true(strata_format_from_name(sjson_as_string(sjson_get(c, "format")), &p.format));
        assert_true(sjson_as_int64(sjson_get(c, "group_size"), &group));
        assert_true(sjson_as_int64(sjson_get(c, "block"), &block));
        assert_true(sjson_as_bool(sjson_get(c, "act_order"), &act_order));
        p.group_size = group;
        char key[128];
        snprintf(key, sizeof key, "%s.result", name);
        const strata_tensor *expected = strata_safetensors_find(st, key);
        assert_non_null(expected);
        gptq_options o = {.damp = 0.01, .block = block, .act_order = act_order};
        gptq_report report;
        run_gptq(&p, w->data, h->data, tokens, &o, out, &report);
        assert_int_equal(report.outcome, GPTQ_APPLIED);
        assert_int_equal(report.dead_columns, 1);
        double same = agreement(out, expected->data, ROWS * COLS);
        double ours = weighted(w->data, out, h->data, ROWS, COLS), theirs = weighted(w->data, expected->data, h->data, ROWS, COLS);
        print_message("  %-18s %.4f of elements equal to llm-compressor's; H-weighted error %.6g vs %.6g\n", name, same,
                      ours, theirs);
        if (same < 1.0) fail_msg("%s: only %.4f of the elements equal llm-compressor's", name, same);
        if (ours > theirs * 1.02 + 1e-12) fail_msg("%s: error %g exceeds llm-compressor's %g", name, ours, theirs);
    }
    free(out);
    sjson_free(cases);
    strata_safetensors_close(st);
}

static void test_gptq_against_reference(void **state)
{
    (void)state;
    static const struct { strata_format format; int64_t group; bool act_order; int64_t block; } cases[] = {
        {STRATA_FORMAT_INT4_GROUP, 32, false, 128}, {STRATA_FORMAT_INT4_GROUP, 32, false, 48},
        {STRATA_FORMAT_INT8_CHANNEL, 0, false, 128}, {STRATA_FORMAT_FP8_TENSOR, 0, false, 64},
        {STRATA_FORMAT_FP8_CHANNEL, 0, false, 128}, {STRATA_FORMAT_NVFP4, 0, false, 128},
        {STRATA_FORMAT_MXFP4, 0, false, 128},
    };
    rng g;
    rng_seed(&g, 5);
    float *w = malloc(sizeof(float) * ROWS * COLS), *h = malloc(sizeof(float) * COLS * COLS);
    float *out = malloc(sizeof(float) * ROWS * COLS), *ref = malloc(sizeof(float) * ROWS * COLS);
    random_matrix(&g, w, ROWS * COLS, 0.05f);
    random_hessian(&g, h, COLS, 400, 9);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        strata_quant_params p = {.format = cases[c].format, .convention = STRATA_CONVENTION_MODELOPT,
                                 .group_size = cases[c].group};
        gptq_options o = {.damp = 0.01, .block = cases[c].block};
        gptq_report report;
        run_gptq(&p, w, h, 400, &o, out, &report);
        buffers b;
        buffers_make(&p, ROWS, COLS, &b);
        assert_int_equal(strata_quantize(&p, STRATA_DTYPE_F32, w, ROWS, COLS, &b.q), STRATA_OK);
        quant_plan plan;
        assert_int_equal(quant_plan_init(&p, STRATA_DTYPE_F32, ROWS, COLS, &plan), STRATA_OK);
        quant_scales s = {.stored = b.q.scales, .global = b.q.global_scale, .zero_points = b.q.zero_points};
        reference_gptq(&plan, &s, w, h, ROWS, COLS, 0.01, ref);
        double same = agreement(out, ref, ROWS * COLS);
        double ours = weighted(w, out, h, ROWS, COLS), theirs = weighted(w, ref, h, ROWS, COLS);
        double reference = weighted(w, NULL, h, ROWS, COLS);
        print_message("  %-12s block %3lld: %.4f equal to the reference; error %.6g vs %.6g; reported %.6g (rtn %.6g)\n",
                      strata_format_get(p.format)->name, (long long)cases[c].block, same, ours / reference,
                      theirs / reference, report.error_gptq, report.error_rtn);
        if (same < 1.0)
            fail_msg("%s: only %.4f of the elements equal the reference", strata_format_get(p.format)->name, same);
        assert_true(fabs(report.error_gptq - ours / reference) <= 1e-3 * report.error_gptq + 1e-12);
        assert_true(report.error_gptq < report.error_rtn);
        assert_int_equal(report.dead_columns, 1);
        for (int64_t r = 0; r < ROWS; r++) assert_true(out[r * COLS + 9] == 0.0f);
        buffers_free(&b);
    }
    free(w);
    free(h);
    free(out);
    free(ref);
}

static void test_gptq_fallbacks(void **state)
{
    (void)state;
    rng g;
    rng_seed(&g, 9);
    strata_quant_params p = {.format = STRATA_FORMAT_INT4_GROUP, .convention = STRATA_CONVENTION_MODELOPT,
                             .group_size = 32};
    float *w = malloc(sizeof(float) * ROWS * COLS), *h = calloc(COLS * COLS, sizeof(float));
    float *out = malloc(sizeof(float) * ROWS * COLS), *rtn = malloc(sizeof(float) * ROWS * COLS);
    random_matrix(&g, w, ROWS * COLS, 0.05f);
    assert_int_equal(strata_fake_quantize(&p, STRATA_DTYPE_F32, w, ROWS, COLS, rtn), STRATA_OK);
    gptq_report report;

    /* Too few tokens: round-to-nearest, said so. */
    random_hessian(&g, h, COLS, 64, -1);
    gptq_options few = {.damp = 0.01, .block = 128, .min_tokens = 100};
    run_gptq(&p, w, h, 64, &few, out, &report);
    assert_int_equal(report.outcome, GPTQ_RTN_FEW_TOKENS);
    assert_memory_equal(out, rtn, sizeof(float) * ROWS * COLS);

    /* I - 1.05 v v^T / |v|^2 has one eigenvalue -0.05: damping 0.01 * mean(diag) cannot
     * lift it, 0.1 * mean(diag) can. */
    double norm = 0;
    float v[COLS];
    for (int i = 0; i < COLS; i++) {
        v[i] = (float)rng_normal(&g);
        norm += (double)v[i] * v[i];
    }
    for (int i = 0; i < COLS; i++)
        for (int j = 0; j < COLS; j++) h[i * COLS + j] = (float)((i == j) - 1.05 * v[i] * v[j] / norm);
    gptq_options o = {.damp = 0.01, .block = 128};
    run_gptq(&p, w, h, 1000, &o, out, &report);
    assert_int_equal(report.outcome, GPTQ_APPLIED);
    assert_true(fabs(report.damp - 0.1) < 1e-12);

    /* Negative definite at every damping: round-to-nearest, said so. */
    for (int i = 0; i < COLS * COLS; i++) h[i] = 0;
    for (int i = 0; i < COLS; i++) h[i * COLS + i] = -1.0f;
    run_gptq(&p, w, h, 1000, &o, out, &report);
    assert_int_equal(report.outcome, GPTQ_RTN_NOT_POSITIVE_DEFINITE);
    assert_memory_equal(out, rtn, sizeof(float) * ROWS * COLS);
    free(w);
    free(h);
    free(out);
    free(rtn);
}

/* One linear's Hessian over `windows` windows of `seq` rows of x (windows * seq, K), the
 * windows added in `order`, `per_call` windows per call (consecutive in order only when
 * per_call > 1). Returns H (K, K), malloc'd. */
static float *binned_hessian(const float *x, int64_t K, int64_t seq, int windows, const int *order, int per_call)
{
    strata_linear lin = {.name = "mlp.down_proj", .n_in = K, .n_out = 4, .expert = -1, .role = STRATA_LINEAR_DOWN};
    strata_layer layer = {.index = 0, .linears = &lin, .n_linears = 1};
    linear_calib c = {.desc = &lin, .quantized = true, .fused_group = -1};
    layer_calib lc = {.index = 0, .layer = &layer, .linears = &c};
    calib_collective one = calib_collective_local();
    assert_int_equal(layer_hessians_init(&lc, seq), STRATA_OK);
    for (int i = 0; i < windows; i += per_call) {
        int w = order[i];
        assert_int_equal(layer_hessians_add(&lc, &c, x + (size_t)(w * seq * K), per_call * seq, NULL, w * seq), STRATA_OK);
    }
    assert_int_equal(layer_hessians_finish(&lc, &one, false), STRATA_OK);
    assert_int_equal(lc.hessians[0].tokens, windows * seq);
    float *h = malloc((size_t)(K * K) * sizeof *h);
    memcpy(h, lc.hessians[0].h, (size_t)(K * K) * sizeof *h);
    layer_hessians_free(&lc);
    return h;
}

static void test_hessian_binned_sum(void **state)
{
    (void)state;
    enum { K = 48, SEQ = 16, WINDOWS = 12 };
    rng g;
    rng_seed(&g, 99);
    float *x = malloc(sizeof(float) * WINDOWS * SEQ * K);
    /* Magnitudes from 2^-40 to 2^30 by window, the largest arriving late; a window of zeros;
     * window 9 is window 8 with half its columns negated, so their products cancel exactly
     * where one column is negated, and window 10's tiny ones then survive in a plain sum
     * in one order and not in another. */
    static const float window_scale[WINDOWS] = {1e-12f, 1.0f, 3.0f, 0.0f, 1e3f, 2.5f, 1e-3f, 7.0f, 1e9f, 1e9f, 1e-6f, 4.0f};
    for (int w = 0; w < WINDOWS; w++) random_matrix(&g, x + w * SEQ * K, SEQ * K, window_scale[w]);
    for (int i = 0; i < SEQ * K; i++) x[9 * SEQ * K + i] = i % K < K / 2 ? -x[8 * SEQ * K + i] : x[8 * SEQ * K + i];
    int forward[WINDOWS], backward[WINDOWS], shuffled[WINDOWS] = {5, 8, 0, 11, 2, 9, 3, 7, 1, 10, 4, 6};
    for (int w = 0; w < WINDOWS; w++) forward[w] = w, backward[w] = WINDOWS - 1 - w;
    float *one_call = binned_hessian(x, K, SEQ, WINDOWS, forward, WINDOWS);
    float *pairs = binned_hessian(x, K, SEQ, WINDOWS, forward, 2);
    float *reversed = binned_hessian(x, K, SEQ, WINDOWS, backward, 1);
    float *random_order = binned_hessian(x, K, SEQ, WINDOWS, shuffled, 1);
    assert_memory_equal(one_call, pairs, sizeof(float) * K * K);
    assert_memory_equal(one_call, reversed, sizeof(float) * K * K);
    assert_memory_equal(one_call, random_order, sizeof(float) * K * K);
    /* Against 2/n sum x x^T in double of the bf16-rounded rows. */
    uint16_t *b = malloc(sizeof(uint16_t) * WINDOWS * SEQ * K);
    gemm_round_to_bf16(x, b, WINDOWS * SEQ * K);
    double largest = 0, worst = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) {
            double sum = 0;
            for (int t = 0; t < WINDOWS * SEQ; t++) {
                uint32_t xi = (uint32_t)b[t * K + i] << 16, xj = (uint32_t)b[t * K + j] << 16;
                float fi, fj;
                memcpy(&fi, &xi, 4);
                memcpy(&fj, &xj, 4);
                sum += (double)fi * (double)fj;
            }
            sum *= 2.0 / (WINDOWS * SEQ);
            largest = fabs(sum) > largest ? fabs(sum) : largest;
            worst = fabs(sum - one_call[i * K + j]) > worst ? fabs(sum - one_call[i * K + j]) : worst;
        }
    assert_true(largest > 1e15);
    assert_true(worst <= largest * 0x1p-22); /* fp32 rounding of each window's sums and of H itself */
    free(b);
    free(x);
    free(one_call);
    free(pairs);
    free(reversed);
    free(random_order);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_element_quantizer_matches_rows),
        cmocka_unit_test(test_gptq_against_llm_compressor),
        cmocka_unit_test(test_gptq_against_reference),
        cmocka_unit_test(test_gptq_fallbacks),
        cmocka_unit_test(test_hessian_binned_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
