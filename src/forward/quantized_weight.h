/*
 * quantized_weight.h — reading the weight of a linear that a ModelOpt export (or an FP8
 * block-scaled release) quantized, as the fp32 values it represents, so strata evaluates quantized checkpoints (its own
 * and ModelOpt's) through the same forward pass.
 */
#ifndef STRATA_FORWARD_QUANTIZED_WEIGHT_H
#define STRATA_FORWARD_QUANTIZED_WEIGHT_H

#include "strata.h"

/* out (n_out, n_in) = the dequantized weight of linear, whose weight tensor t is
 * quantized: FP8 (F8_E4M3 with weight_scale () or (N)), NVFP4 (U8 (N, K/2) with F8_E4M3
 * weight_scale (N, K/16) and weight_scale_2), INT8 (I8 with weight_scale (N)), INT4 AWQ
 * (U8 (N/2, K), two rows per byte, with weight_scale (N, K/G)), MXFP4, and FP8 128x128
 * blocks (F8_E4M3 with weight_scale_inv or weight_scale (ceil(N/128), ceil(K/128)), F32 or
 * BF16, as DeepSeek-V3 and Qwen3-FP8 ship). A NaN or Inf in the result is an error. */
strata_status quantized_weight_f32(const strata_model *model, const strata_linear *linear, const strata_tensor *t,
                                   float *out);

#endif
