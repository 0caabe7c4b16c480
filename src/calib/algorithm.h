/*
 * algorithm.h — the calibration algorithms of strata quantize, parsed once from the name
 * the caller gives (strata_quantize_params.algo) into an enum the run carries.
 */
#ifndef STRATA_CALIB_ALGORITHM_H
#define STRATA_CALIB_ALGORITHM_H

#include <stdbool.h>

#include "strata.h"

typedef enum calib_algorithm {
    CALIB_MAX = 0,   /* amax of weights and activations (ModelOpt's "max") */
    CALIB_MSE,       /* per-block clip search minimizing the weight's squared error */
    CALIB_GPTQ,      /* second-order weight updates from each linear's input Hessian */
    CALIB_AWQ,       /* activation-aware input-channel scales searched per linear (awq.h),
                      * ModelOpt's awq_lite, then amax */
    CALIB_AWQ_GPTQ,  /* AWQ's scales, then GPTQ on the scaled weights and inputs */
} calib_algorithm;

/* Whether the algorithm searches AWQ's scales; whether it updates weights with GPTQ. */
static inline bool calib_algorithm_awq(calib_algorithm a) { return a == CALIB_AWQ || a == CALIB_AWQ_GPTQ; }
static inline bool calib_algorithm_gptq(calib_algorithm a) { return a == CALIB_GPTQ || a == CALIB_AWQ_GPTQ; }

/* Whose AWQ `--algo awq` runs, by the output's format (docs/AWQ.md): ModelOpt's awq_lite and
 * its export (pre_quant_scale, W4A16_AWQ / NVFP4_AWQ) for ModelOpt's format, llm-compressor's
 * AWQModifier (scales folded into norms and rows, a plain pack-quantized checkpoint) for
 * compressed-tensors. */
static inline bool calib_awq_is_llm_compressor(calib_algorithm a, strata_export_format format)
{
    return calib_algorithm_awq(a) && format == STRATA_EXPORT_COMPRESSED_TENSORS;
}

/* name NULL is "max". Names ModelOpt offers that cannot run layer by layer are refused
 * saying why; unknown names list the ones strata runs. */
strata_status calib_algorithm_parse(const char *name, calib_algorithm *out);

const char *calib_algorithm_name(calib_algorithm algorithm);

#endif
