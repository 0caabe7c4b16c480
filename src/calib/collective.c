/*
 * collective.c — the single-participant collective (see collective.h).
 */
#include <string.h>

#include "calib/collective.h"

static strata_status local_max_f32(void *ctx, float *values, size_t n)
{
    (void)ctx;
    (void)values;
    (void)n;
    return STRATA_OK;
}

static strata_status local_sum_i64(void *ctx, int64_t *values, size_t n)
{
    (void)ctx;
    (void)values;
    (void)n;
    return STRATA_OK;
}

static strata_status local_sum_exact_f64(void *ctx, double *values, size_t n, int root)
{
    (void)ctx;
    (void)values;
    (void)n;
    (void)root;
    return STRATA_OK;
}

static strata_status local_allgather_f64(void *ctx, const double *mine, size_t n, double *all)
{
    (void)ctx;
    if (n) memmove(all, mine, n * sizeof *all);
    return STRATA_OK;
}

static strata_status local_gather_rows_f32(void *ctx, const float *mine, int64_t rows, int64_t cols, int64_t max_rows,
                                           float *out, int64_t *out_rows)
{
    (void)ctx;
    int64_t take = rows < max_rows ? rows : max_rows;
    if (take > 0 && out != mine) memmove(out, mine, (size_t)(take * cols) * sizeof *out);
    *out_rows = take;
    return STRATA_OK;
}

calib_collective calib_collective_local(void)
{
    return (calib_collective){.rank = 0, .n_ranks = 1, .max_f32 = local_max_f32, .sum_i64 = local_sum_i64,
                              .sum_exact_f64 = local_sum_exact_f64,
                              .allgather_f64 = local_allgather_f64, .gather_rows_f32 = local_gather_rows_f32};
}
