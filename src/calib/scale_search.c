/*
 * scale_search.c — mse clip search (see scale_search.h).
 */
#include "calib/scale_search.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"
#include "quant/format.h"

float mse_candidate(int k) { return 0.25f + 0.1f * (float)k; }

strata_status mse_search_clip(const scheme_info *scheme, linear_calib *c, const float *w)
{
    int64_t rows = c->desc->n_out, cols = c->desc->n_in;
    strata_quant_params p = scheme_weight_params(scheme, c->convention, c->weight_amax);
    p.values_dtype = c->values_dtype; /* errors of the codes the export writes */
    quant_plan plan;
    strata_status status = quant_plan_init(&p, STRATA_DTYPE_F32, rows, cols, &plan);
    if (status != STRATA_OK) return status;
    int64_t grid_rows = plan.shape.scale_rows, per_row = plan.blocks_per_row, cells = grid_rows * per_row;
    size_t n = (size_t)rows * (size_t)cols;
    float *clip = malloc((size_t)cells * sizeof *clip), *best = malloc((size_t)cells * sizeof *best);
    double *best_error = malloc((size_t)cells * sizeof *best_error), *error = malloc((size_t)cells * sizeof *error);
    float *dq = malloc(n * sizeof *dq);
    if (!clip || !best || !best_error || !error || !dq) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory searching the scales of %s", c->desc->name);
        goto done;
    }
    for (int k = 0; status == STRATA_OK && k < MSE_CANDIDATES; k++) {
        float m = mse_candidate(k);
        for (int64_t i = 0; i < cells; i++) clip[i] = m;
        status = quant_fake_clipped(&p, STRATA_DTYPE_F32, w, rows, cols, clip, dq);
        if (status != STRATA_OK) break;
        for (int64_t i = 0; i < cells; i++) error[i] = 0;
        for (int64_t r = 0; r < rows; r++) {
            double *row_error = error + (r / plan.block_rows) * per_row;
            const float *a = w + r * cols, *b = dq + r * cols;
            for (int64_t col = 0; col < cols; col++) {
                double d = (double)a[col] - (double)b[col];
                row_error[col / plan.block_cols] += d * d;
            }
        }
        for (int64_t i = 0; i < cells; i++)
            if (k == 0 || error[i] < best_error[i]) {
                best_error[i] = error[i];
                best[i] = m;
            }
    }
    if (status == STRATA_OK) {
        free(c->clip);
        c->clip = best;
        c->n_clip = cells;
        best = NULL;
    }
done:
    free(clip);
    free(best);
    free(best_error);
    free(error);
    free(dq);
    return status;
}
