/*
 * model_internal.h — what other modules (inspect, synth) may see of a strata_model
 * beyond the public accessors.
 */
#ifndef STRATA_MODEL_INTERNAL_H
#define STRATA_MODEL_INTERNAL_H

#include "model/desc.h"
#include "strata.h"

/* Number of tensors attributed to quantized linears (scales, zero points, shapes). */
size_t model_quant_tensor_count(const strata_model *model);
/* The description behind strata_model_arch (layout, expected tensors). */
const model_desc *model_description(const strata_model *model);

/* The checkpoint directory the model was opened from. */
const char *model_dir(const strata_model *model);

#endif
