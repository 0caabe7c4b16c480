/*
 * compressed_tensors_config.h — the quantization_config a compressed-tensors checkpoint
 * carries in config.json (quant_method "compressed-tensors", quantization_status
 * "compressed"): its config groups, the format name of each scheme, the ignore list and the
 * KV-cache scheme. The tensors themselves are quant/weight_layout.c's compressed-tensors rows.
 */
#ifndef STRATA_EXPORT_COMPRESSED_TENSORS_CONFIG_H
#define STRATA_EXPORT_COMPRESSED_TENSORS_CONFIG_H

#include "io/json.h"
#include "quant/recipe.h"
#include "strata.h"

/* The compressed-tensors format a scheme's linears are stored in ("pack-quantized"), or NULL. */
const char *compressed_tensors_format_name(const scheme_info *s);

/* A new quantization_config object, or NULL when out of memory. */
sjson *compressed_tensors_quantization_config(const quant_recipe *recipe, bool kv_cache);

#endif
