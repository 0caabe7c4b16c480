/*
 * exclude_modules.h — which modules a ModelOpt checkpoint says it left unquantized
 * (hf_quant_config.json's exclude_modules, config.json's quantization_config.ignore),
 * written as ModelOpt 0.47's exporter writes them: embeddings, lm_head and every linear not
 * quantized (routers, shared-expert gates, --exclude), summarized by prefix wildcards.
 */
#ifndef STRATA_EXPORT_EXCLUDE_MODULES_H
#define STRATA_EXPORT_EXCLUDE_MODULES_H

#include "calib/layer_calib.h"
#include "io/json.h"
#include "quant/recipe.h"
#include "strata.h"

/* A new sorted JSON array of names and wildcards, or NULL when out of memory. A linear is
 * quantized when the recipe gives it a scheme. */
sjson *exclude_modules_list(const quant_recipe *recipe);

#endif
