/*
 * quant_runtime.h — evaluating a quantized checkpoint as an inference engine runs it:
 * weights are dequantized when the layer is materialized (quantized_weight.c), and this
 * module fake-quantizes each quantized linear's input the way the checkpoint says:
 * AWQ's pre_quant_scale first where the checkpoint has one, then
 * static FP8 or NVFP4 with the stored input_scale, FP8 or int8 per token, or MXFP4 with
 * scales computed per 32-element block (scheme.c's table, looked up by the checkpoint's
 * quant_algo). A mixed checkpoint names each module's kind.
 *
 * Sources: a ModelOpt checkpoint (hf_quant_config.json; quant_algo, <m>.input_scale,
 * <m>.weight_scale marking the quantized linears), a compressed-tensors checkpoint
 * (config.json's config_groups: their input_activations say how; <m>.input_scale in any
 * float dtype for FP8, <m>.input_global_scale = 2688 / amax for NVFP4; <m>.weight_scale
 * marking the quantized linears), or strata's fakequant output (quant_scales.safetensors
 * beside bf16 weights: metadata strata.quant_algo, <m>.weight_amax marking the quantized
 * linears, <m>.input_scale).
 */
#ifndef STRATA_EVAL_QUANT_RUNTIME_H
#define STRATA_EVAL_QUANT_RUNTIME_H

#include "core/strmap.h"
#include "forward/hooks.h"
#include "io/json.h"
#include "quant/scheme.h"
#include "strata.h"

typedef struct quant_runtime {
    const strata_model *model;
    strata_safetensors *side;   /* quant_scales.safetensors, or NULL */
    input_quant input;          /* the kind of the linears per_module does not name */
    sjson *config;              /* the quantization settings per_module's names come from, or NULL */
    strmap per_module;          /* module -> input_quant in mixed checkpoints (ModelOpt MIXED_PRECISION's
                                 * quantized_layers, compressed-tensors' groups by name, strata's
                                 * fakequant strata.quantized_layers) */
    const char *algo;
    bool pre_quant_scales;      /* some linear has <m>.pre_quant_scale (AWQ): inputs are multiplied by it
                                 * before their quantization */
    bool compressed_tensors;    /* scales stored as compressed-tensors stores them (its checkpoints, and
                                 * fakequant outputs of its convention: metadata strata.convention) */
} quant_runtime;

/* *active is false for an unquantized checkpoint (no hooks needed). */
strata_status quant_runtime_open(const strata_model *model, quant_runtime *rt, bool *active);
void quant_runtime_close(quant_runtime *rt);
forward_hooks quant_runtime_hooks(quant_runtime *rt);

#endif
