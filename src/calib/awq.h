/*
 * awq.h — activation-aware weight scaling, ModelOpt's awq_lite (docs/AWQ.md).
 *
 * Per linear and input channel c, s[c] = act[c]^a / w[c]^(1 - a), clamped to [1e-4, 1e4]
 * and divided by sqrt(max s * min s), where act is the mean |x| of the channel's inputs and
 * w the mean over rows of |W| relative to its quantization block's amax. For each a of
 * 0, 0.1, ..., 1 the weight is scaled (W s), quantized with scales from the scaled weight,
 * and its error measured on the layer's calibration inputs through the Hessian H = 2/n X^T X
 * of those inputs:
 *
 *     loss(a) = tr(dW H dW^T) / (2 n_out),   dW = W - Q(W diag s) diag(1/s)
 *
 * which is the mean squared output error per element, ModelOpt's loss up to its rounding of
 * the outputs to the model's dtype. The first a with the least loss wins. The input is then
 * divided by s (pre_quant_scale = 1/s, folded where the format allows) and the weight
 * multiplied by it (awq_layer.c).
 *
 * Arithmetic follows ModelOpt's dtypes: with a bf16 weight, the weight statistics, s and
 * 1/s as the quantizers apply them, and the scaled weight are bf16 values (values_dtype).
 */
#ifndef STRATA_CALIB_AWQ_H
#define STRATA_CALIB_AWQ_H

#include <stdint.h>

#include "strata.h"

enum { AWQ_ALPHAS = 11 }; /* a = 0, 0.1, ..., 1 */

/* The a of grid point i, the float32 value ModelOpt's torch.arange grid holds. */
float awq_alpha(int i);

/* ModelOpt's get_weight_scale: for each input channel, the mean over the rows of |W| divided
 * by the amax of its block of `block` consecutive inputs (block 0: the whole row). w (n_out,
 * n_in) fp32 holding values of dtype values_dtype, in whose arithmetic it is computed. */
strata_status awq_weight_scale(const float *w, int64_t n_out, int64_t n_in, int64_t block, strata_dtype values_dtype,
                               float *out);

/* ModelOpt's get_scale: s (n_in) from the activation and weight statistics for one a. */
void awq_scale(const float *act, const float *weight_scale, int64_t n_in, float alpha, float *s);

/* The search over the grid for one linear. */
typedef struct awq_search_input {
    const strata_quant_params *weight; /* the weight's quantizer; its amax is replaced by the
                                        * scaled weight's for each candidate (dynamic scales) */
    const float *w;                    /* (n_out, n_in) fp32 */
    int64_t n_out, n_in;
    int64_t block;                     /* the quantizer's block along the input (0: per channel) */
    const float *act;                  /* (n_in) mean |x| per channel */
    const float *h;                    /* (n_in, n_in) 2/n X^T X of the inputs */
} awq_search_input;

typedef struct awq_search_result {
    int best;                          /* grid index of the chosen a */
    double loss[AWQ_ALPHAS];
} awq_search_result;

/* Runs the search; scale (n_in) receives s of the chosen a. name is used in messages. */
strata_status awq_search(const awq_search_input *in, const char *name, float *scale, awq_search_result *out);

#endif
