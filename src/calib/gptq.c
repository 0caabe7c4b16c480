/*
 * gptq.c — GPTQ for one linear (see gptq.h). The steps, as llm-compressor's
 * quantize_weight runs them (the golden tests compare with it):
 *
 *   scales  <- the format's scales of W (unchanged from here on)
 *   dead    <- columns d with H[d,d] == 0: H[d,d] = 1, W[:,d] = 0
 *   act-order (option): permute W's columns and H by descending diag H; each column
 *             keeps the scale of its original position
 *   Hinv    <- upper U with (H + damp * mean(diag H) * I)^-1 = U^T U (LAPACK); on failure
 *             damp *= 10, up to GPTQ_DAMP_RETRIES times, then round-to-nearest
 *   for each block of `block` columns [i1, i2):
 *       per row (threads): for i in block: q = Q(w_i); e = (w_i - q) / U[i,i];
 *                          w_i = q; w_j -= e * U[i,j] for j in (i, i2)
 *       W[:, i2:] -= E (n_out, block) * U[i1:i2, i2:]            (GEMM)
 *   undo the permutation; the codes of W under the fixed scales.
 *
 * Rows are independent inside a block, so the pool splits rows; the trailing update is
 * one fp32 GEMM per block. Everything is fp32 as in the reference; the relative errors
 * reported are summed in double.
 */
#include "calib/gptq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/error.h"
#include "kernels/gemm.h"
#include "kernels/linalg.h"
#include "kernels/pool.h"
#include "quant/format.h"

const char *gptq_outcome_name(gptq_outcome outcome)
{
    switch (outcome) {
    case GPTQ_APPLIED: return "gptq";
    case GPTQ_RTN_FEW_TOKENS: return "rtn (too few tokens)";
    case GPTQ_RTN_NOT_POSITIVE_DEFINITE: return "rtn (Hessian not positive definite)";
    }
    return "?";
}

/* One block of columns over a range of rows. */
typedef struct block_job {
    const quant_plan *plan;
    const quant_scales *scales;
    float *w;              /* (n_out, n_in), permuted columns */
    const float *hinv;     /* (n_in, n_in) upper factor */
    const int64_t *perm;   /* position -> original column, or NULL */
    float *err;            /* (n_out, width) */
    int64_t n_in, i1, width;
} block_job;

static void block_task(void *ctx, int64_t begin, int64_t end)
{
    const block_job *job = ctx;
    int64_t K = job->n_in, i1 = job->i1, width = job->width;
    for (int64_t r = begin; r < end; r++) {
        float *w = job->w + r * K + i1, *err = job->err + r * width;
        for (int64_t i = 0; i < width; i++) {
            const float *u = job->hinv + (i1 + i) * K + i1;
            int64_t column = job->perm ? job->perm[i1 + i] : i1 + i;
            float q = quant_element(job->plan, job->scales, r, column, w[i]);
            float e = (w[i] - q) / u[i];
            w[i] = q;
            err[i] = e;
            for (int64_t j = i + 1; j < width; j++) w[j] -= e * u[j];
        }
    }
}

/* Row dot products of two (m, K) matrices, summed in double per row. */
typedef struct dot_job {
    const float *a, *b;
    int64_t K;
    double *rows;
} dot_job;

static void dot_task(void *ctx, int64_t begin, int64_t end)
{
    const dot_job *job = ctx;
    for (int64_t r = begin; r < end; r++) {
        double sum = 0;
        for (int64_t i = 0; i < job->K; i++) sum += (double)job->a[r * job->K + i] * (double)job->b[r * job->K + i];
        job->rows[r] = sum;
    }
}

/* sum over rows of d_r H d_r^T for d (n, K), in chunks of rows: T = D H by GEMM, then
 * the row dot products of D and T on the pool, added in row order. */
static strata_status hessian_norm(const float *d, int64_t n, int64_t K, const float *hessian, double *out)
{
    enum { CHUNK = 512 };
    float *t = malloc((size_t)CHUNK * (size_t)K * sizeof *t);
    double *rows = malloc(CHUNK * sizeof *rows);
    if (!t || !rows) {
        free(t);
        free(rows);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for GPTQ's error");
    }
    double sum = 0;
    strata_status status = STRATA_OK;
    for (int64_t r0 = 0; status == STRATA_OK && r0 < n; r0 += CHUNK) {
        int64_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
        status = gemm_f32(false, false, m, K, K, 1.0f, d + r0 * K, K, hessian, K, 0.0f, t, K);
        if (status != STRATA_OK) break;
        dot_job job = {.a = d + r0 * K, .b = t, .K = K, .rows = rows};
        pool_parallel_for(m, 8, dot_task, &job);
        for (int64_t r = 0; r < m; r++) sum += rows[r];
    }
    free(t);
    free(rows);
    *out = sum;
    return status;
}

/* tr((W - Q) H (W - Q)^T) / reference, reference = tr(W H W^T); scratch holds n * K
 * floats and may be q. */
static strata_status weighted_error(const float *w, const float *q, int64_t n, int64_t K, const float *hessian,
                                    double reference, float *scratch, double *out)
{
    double error = 0;
    for (int64_t i = 0; i < n * K; i++) scratch[i] = w[i] - q[i];
    strata_status status = hessian_norm(scratch, n, K, hessian, &error);
    *out = reference > 0 ? error / reference : 0;
    return status;
}

/* Columns in order of descending diag H; ties keep the lower index first. */
typedef struct ranked_column {
    float diag;
    int64_t index;
} ranked_column;

static int by_descending_diag(const void *a, const void *b)
{
    const ranked_column *x = a, *y = b;
    if (x->diag != y->diag) return x->diag > y->diag ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void permute_columns(float *m, int64_t rows, int64_t K, const int64_t *perm, float *row_scratch)
{
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < K; i++) row_scratch[i] = m[r * K + perm[i]];
        memcpy(m + r * K, row_scratch, (size_t)K * sizeof *m);
    }
}

/* H <- P^T H P (rows and columns by perm); w's columns likewise. */
static strata_status apply_act_order(float *h, float *w, int64_t n_out, int64_t K, int64_t *perm)
{
    ranked_column *ranked = malloc((size_t)K * sizeof *ranked);
    float *scratch = malloc((size_t)K * sizeof *scratch), *rows = malloc((size_t)K * (size_t)K * sizeof *rows);
    if (!ranked || !scratch || !rows) {
        free(ranked);
        free(scratch);
        free(rows);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory ordering GPTQ's columns");
    }
    for (int64_t i = 0; i < K; i++) ranked[i] = (ranked_column){h[i * K + i], i};
    qsort(ranked, (size_t)K, sizeof *ranked, by_descending_diag);
    for (int64_t i = 0; i < K; i++) perm[i] = ranked[i].index;
    for (int64_t i = 0; i < K; i++) memcpy(rows + i * K, h + perm[i] * K, (size_t)K * sizeof *h);
    memcpy(h, rows, (size_t)K * (size_t)K * sizeof *h);
    permute_columns(h, K, K, perm, scratch);
    permute_columns(w, n_out, K, perm, scratch);
    free(ranked);
    free(scratch);
    free(rows);
    return STRATA_OK;
}

/* Dampens a copy of h and factorizes it, retrying with more damping. */
static bool factorize(const float *h, int64_t K, double damp, float *hinv, double *used)
{
    double mean = 0;
    for (int64_t i = 0; i < K; i++) mean += h[i * K + i];
    mean /= (double)K;
    for (int attempt = 0; attempt <= GPTQ_DAMP_RETRIES; attempt++, damp *= 10) {
        memcpy(hinv, h, (size_t)K * (size_t)K * sizeof *hinv);
        float add = (float)(damp * mean);
        for (int64_t i = 0; i < K; i++) hinv[i * K + i] += add;
        if (linalg_inverse_cholesky_upper(hinv, K) == 0) {
            *used = damp;
            return true;
        }
    }
    return false;
}

/* The GPTQ loop over column blocks on w (permuted when perm is set). */
static strata_status update_columns(const quant_plan *plan, const quant_scales *scales, float *w, int64_t n_out,
                                    int64_t K, const float *hinv, const int64_t *perm, int64_t block)
{
    float *err = malloc((size_t)n_out * (size_t)block * sizeof *err);
    if (!err) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for GPTQ's block errors");
    strata_status status = STRATA_OK;
    for (int64_t i1 = 0; status == STRATA_OK && i1 < K; i1 += block) {
        int64_t width = K - i1 < block ? K - i1 : block, i2 = i1 + width;
        block_job job = {.plan = plan, .scales = scales, .w = w, .hinv = hinv, .perm = perm, .err = err, .n_in = K,
                         .i1 = i1, .width = width};
        pool_parallel_for(n_out, 4, block_task, &job);
        if (i2 < K)
            status = gemm_f32(false, false, n_out, K - i2, width, -1.0f, err, width, hinv + i1 * K + i2, K, 1.0f,
                              w + i2, K);
    }
    free(err);
    return status;
}

strata_status gptq_quantize(const strata_quant_params *params, const float *hessian, int64_t tokens, float *w,
                            int64_t n_out, int64_t n_in, const gptq_options *options, strata_qtensor *q,
                            gptq_report *report)
{
    *report = (gptq_report){.outcome = GPTQ_APPLIED, .damp = options->damp};
    int64_t K = n_in;
    size_t n = (size_t)n_out * (size_t)K;
    quant_plan plan;
    strata_status status = quant_plan_init(params, STRATA_DTYPE_F32, n_out, K, &plan);
    if (status == STRATA_OK) status = quant_scales_of(params, STRATA_DTYPE_F32, w, n_out, K, q);
    if (status != STRATA_OK) return status;
    quant_scales scales = {.stored = q->scales, .global = q->global_scale, .zero_points = q->zero_points};

    float *original = malloc(n * sizeof *original), *rtn = malloc(n * sizeof *rtn);
    float *h = NULL, *hinv = NULL;
    int64_t *perm = NULL;
    if (!original || !rtn) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for GPTQ on a (%lld, %lld) weight",
                             (long long)n_out, (long long)K);
        goto done;
    }
    memcpy(original, w, n * sizeof *w);
    status = quant_codes_with_scales(params, original, n_out, K, q, rtn);
    if (status != STRATA_OK) goto done;
    if (tokens < options->min_tokens || tokens <= 0 || !hessian) {
        report->outcome = GPTQ_RTN_FEW_TOKENS;
        memcpy(w, rtn, n * sizeof *w);
        goto done; /* no Hessian to weigh errors with: both stay 0 */
    }

    h = malloc((size_t)K * (size_t)K * sizeof *h);
    hinv = malloc((size_t)K * (size_t)K * sizeof *hinv);
    perm = options->act_order ? malloc((size_t)K * sizeof *perm) : NULL;
    if (!h || !hinv || (options->act_order && !perm)) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a (%lld, %lld) Hessian", (long long)K,
                             (long long)K);
        goto done;
    }
    memcpy(h, hessian, (size_t)K * (size_t)K * sizeof *h);
    for (int64_t d = 0; d < K; d++) {
        if (h[d * K + d] != 0) continue;
        report->dead_columns++;
        h[d * K + d] = 1;
        for (int64_t r = 0; r < n_out; r++) w[r * K + d] = 0;
    }
    if (perm) status = apply_act_order(h, w, n_out, K, perm);
    if (status != STRATA_OK) goto done;
    double t0 = seconds_now();
    bool factorized = factorize(h, K, options->damp, hinv, &report->damp);
    double t1 = seconds_now();
    report->seconds_factorize = t1 - t0;
    if (!factorized) {
        report->outcome = GPTQ_RTN_NOT_POSITIVE_DEFINITE;
        memcpy(w, rtn, n * sizeof *w);
    } else {
        status = update_columns(&plan, &scales, w, n_out, K, hinv, perm, options->block > 0 ? options->block : 128);
        if (status == STRATA_OK && perm) {
            /* Back to the original column order: position i holds column perm[i]. */
            for (int64_t r = 0; r < n_out; r++) {
                for (int64_t i = 0; i < K; i++) h[perm[i]] = w[r * K + i]; /* h's first row as scratch */
                memcpy(w + r * K, h, (size_t)K * sizeof *w);
            }
        }
    }
    if (status == STRATA_OK) status = quant_codes_with_scales(params, w, n_out, K, q, NULL);
    double t2 = seconds_now();
    report->seconds_update = t2 - t1;
    double reference = 0;
    if (options->skip_errors) goto done;
    if (status == STRATA_OK) status = hessian_norm(original, n_out, K, hessian, &reference);
    if (status == STRATA_OK)
        status = weighted_error(original, rtn, n_out, K, hessian, reference, rtn, &report->error_rtn);
    if (status == STRATA_OK) status = weighted_error(original, w, n_out, K, hessian, reference, rtn, &report->error_gptq);
    report->seconds_errors = seconds_now() - t2;
done:
    free(original);
    free(rtn);
    free(h);
    free(hinv);
    free(perm);
    return status;
}
