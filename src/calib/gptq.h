/*
 * gptq.h — GPTQ for one linear (REFERENCE.md, Calibration → GPTQ; docs/QUANTIZE.md).
 *
 * Given the linear's Hessian H = 2/n sum x x^T over its calibration inputs, GPTQ
 * quantizes the weight one column at a time and spreads each column's error over the
 * columns not yet quantized, weighted by the inverse Hessian, so the layer's output moves
 * as little as possible. The scales are fixed from the weights first and never change:
 * the exported scales are the ones used inside GPTQ, and the result is written under
 * them.
 */
#ifndef STRATA_CALIB_GPTQ_H
#define STRATA_CALIB_GPTQ_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

typedef struct gptq_options {
    double damp;          /* damping, a fraction of mean(diag H) added to the diagonal (0.01) */
    int64_t block;        /* columns per lazy-update block (128) */
    bool act_order;       /* columns in order of descending diag H (scales stay per original column) */
    int64_t min_tokens;   /* a linear that saw fewer tokens is rounded to nearest */
    bool skip_errors;     /* leave error_rtn / error_gptq at 0: their three Hessian-weighted
                           * products (n_out x n_in^2 each) are not computed */
} gptq_options;

typedef enum gptq_outcome {
    GPTQ_APPLIED = 0,
    GPTQ_RTN_FEW_TOKENS,           /* fewer than min_tokens: round-to-nearest */
    GPTQ_RTN_NOT_POSITIVE_DEFINITE /* Cholesky failed at every damping: round-to-nearest */
} gptq_outcome;

typedef struct gptq_report {
    gptq_outcome outcome;
    double damp;            /* the damping the factorization succeeded with */
    int64_t dead_columns;   /* input columns no token ever touched (diag H == 0) */
    double error_rtn;       /* Hessian-weighted relative error tr(D H D^T) / tr(W H W^T), D = W - Q, */
    double error_gptq;      /* of round-to-nearest and of the result (equal when GPTQ fell back) */
    /* Wall time of the phases (for bench/gptq; never written to an output): */
    double seconds_factorize, seconds_update, seconds_errors;
} gptq_report;

/* How many times the damping is multiplied by 10 after a failed factorization. */
enum { GPTQ_DAMP_RETRIES = 3 };

/* The text of an outcome ("gptq", "rtn: 3 tokens < 32", ...) without the numbers. */
const char *gptq_outcome_name(gptq_outcome outcome);

/* Runs GPTQ on w (n_out, n_in) fp32 with hessian (n_in, n_in) (read only; NULL when
 * tokens is 0). On return w holds the quantized values (each exactly the dequantized
 * value of its code) and q the codes and scales, as strata_quantize lays them out
 * (q's buffers sized by strata_quant_shape_get). Call outside pool tasks. */
strata_status gptq_quantize(const strata_quant_params *params, const float *hessian, int64_t tokens, float *w,
                            int64_t n_out, int64_t n_in, const gptq_options *options, strata_qtensor *q,
                            gptq_report *report);

#endif
