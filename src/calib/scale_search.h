/*
 * scale_search.h — the mse algorithm: per scale block, the clip factor of the block's
 * amax that minimizes the squared quantization error of the weight.
 *
 * Candidates are m = 0.25 + 0.1 k for k = 0..37 (0.25 to 3.95), as ModelOpt's mse
 * calibrator sweeps them; the first minimum wins, so the result is deterministic. Each
 * block (a row for per-channel formats, a group for INT4, a 16-element block for NVFP4,
 * the whole tensor for FP8 per-tensor) chooses independently; NVFP4's global scale keeps
 * the tensor amax.
 */
#ifndef STRATA_CALIB_SCALE_SEARCH_H
#define STRATA_CALIB_SCALE_SEARCH_H

#include "calib/layer_calib.h"

enum { MSE_CANDIDATES = 38 };

float mse_candidate(int k);

/* Sets c->clip / c->n_clip for the weight w (n_out, n_in) fp32 under the scheme's format
 * and c->weight_amax. */
strata_status mse_search_clip(const scheme_info *scheme, linear_calib *c, const float *w);

#endif
