/*
 * awq_modifier.h — the numerics of llm-compressor's AWQModifier (0.14), what `--algo awq
 * --format compressed-tensors` runs (docs/AWQ.md, "llm-compressor's AWQ").
 *
 * One mapping is a smooth layer (a norm, or v_proj / up_proj) and the balance linears reading
 * its output; its parent is the module whose output the loss is measured on (self_attn for
 * q/k/v, mlp for gate/up, the linear itself for o_proj and down_proj). Over 20 grid points:
 *
 *   point 0      s = 1 (the identity)
 *   point i > 0  ratio r = (i - 1) / 18, s = max(x^r / (w^(1-r) + 1e-4), 1e-4)  (float64)
 *   then         s /= sqrt(max s * min s); NaN / Inf -> 1
 *
 * with x[c] the mean |input| of channel c over every calibration token (float32 sums of each
 * window's column sums, torch's order) and w[c] the mean over the balance linears' rows of
 * |W| / (its quantization group's amax + 1e-6) (float64). Each point's trial weights are
 * Q(W s) / s, Q the scheme's min-max quantizer, each product rounded to the weight's dtype
 * through float32 as torch rounds a float64 result; the parent runs on the calibration pass's
 * inputs and the loss is
 *
 *   sum over windows of dtype(sum of dtype(dtype(y0 - y)^2)) / (number of output elements)
 *
 * summed in float32, y0 the parent's output with the weights as they were. The first point
 * with the least loss wins (strict <). This file holds the arithmetic; the layer's passes are
 * pipeline/awq_modifier_layer.c.
 */
#ifndef STRATA_CALIB_AWQ_MODIFIER_H
#define STRATA_CALIB_AWQ_MODIFIER_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

enum { AWQ_MODIFIER_GRID = 20 };

/* Grid point i's ratio, and whether it divides by the weight statistic (duo scaling). */
void awq_modifier_point(int i, double *ratio, bool *duo);

/* acc[c] += torch's float32 sum over rows of |x[row, c]| (x (rows, K), values as the linear
 * consumes them): one window's column sums added to the running sums, as the AWQModifier's
 * activation hook adds them. */
strata_status awq_modifier_add_column_sums(const float *x, int64_t rows, int64_t K, float *acc);

/* sum[c] += sum over rows of |W[r, c]| / dtype(amax of its group of `group` columns + 1e-6),
 * each quotient rounded to dtype, in float64 (W (n_out, K) holding values of dtype). */
void awq_modifier_add_weight_sums(const float *w, int64_t n_out, int64_t K, int64_t group, strata_dtype dtype,
                                  double *sum);

/* s (K) of grid point i from x_mean (float32) and w_mean (float64). Values of float32 for
 * the points without duo scaling (float32 arithmetic), float64 otherwise. */
void awq_modifier_scales(int point, const float *x_mean, const double *w_mean, int64_t K, double *s);

/* The trial weight of a point: out = dtype(dtype(Q(dtype(W s))) / s), W (n_out, K) fp32
 * holding values of the dtype in weight->values_dtype, Q the quantizer of weight (scales from
 * the scaled weight). duo: s holds float64 values (products in float64, rounded through
 * float32). out may not alias w. */
strata_status awq_modifier_trial_weight(const strata_quant_params *weight, const float *w, int64_t n_out, int64_t K,
                                        const double *s, bool duo, float *out);

/* One window's loss term: dtype(sum of dtype(dtype(y0 - y)^2)) over n outputs, where y0 and y
 * are the parent's outputs rounded to dtype. */
float awq_modifier_window_loss(const float *y0, const float *y, int64_t n, strata_dtype dtype);

#endif
