/*
 * values_dtype.h — a value rounded as a weight's dtype holds it: what the reference libraries'
 * bf16 tensor arithmetic gives for each step of AWQ's and SmoothQuant's scales and folds
 * (fp32 values are kept as they are; strata reads fp16 weights as fp32 here, as before).
 */
#ifndef STRATA_CALIB_VALUES_DTYPE_H
#define STRATA_CALIB_VALUES_DTYPE_H

#include "kernels/minifloat.h"
#include "strata.h"

static inline float in_dtype(float x, strata_dtype dtype) { return dtype == STRATA_DTYPE_BF16 ? bf16_round(x) : x; }

#endif
