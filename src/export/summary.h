/*
 * summary.h — quant_summary.txt and quant_summary.json in the output directory: per layer
 * and linear, the format, weight and input amax, tokens seen, and the relative errors of
 * the weight and of the linear's output, plus each layer's output error. Nothing in them
 * depends on timing or on whether the run was resumed, so they are part of the
 * byte-identical output.
 */
#ifndef STRATA_EXPORT_SUMMARY_H
#define STRATA_EXPORT_SUMMARY_H

#include "calib/algorithm.h"
#include "calib/layer_calib.h"
#include "export/export.h"
#include "strata.h"

/* Writes quant_summary.txt and quant_summary.json into dir; ex lists the tensors written
 * with NaN/Inf under --allow-non-finite. */
strata_status summary_write(const strata_quantize_params *params, calib_algorithm algorithm, const char *dir,
                            const strata_arch *arch, const layer_calib *layers, const exporter *ex);

#endif
