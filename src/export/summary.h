/*
 * summary.h — quant_summary.txt and quant_summary.json in the output directory: per layer
 * and linear, the format, weight and input amax, tokens seen, and the relative errors of
 * the weight and of the linear's output, plus each layer's output error. Nothing in them
 * depends on timing or on whether the run was resumed, so they are part of the
 * byte-identical output.
 */
#ifndef STRATA_EXPORT_SUMMARY_H
#define STRATA_EXPORT_SUMMARY_H

#include "calib/layer_calib.h"
#include "strata.h"

strata_status summary_write(const strata_quantize_params *params, const strata_arch *arch, const layer_calib *layers);

#endif
