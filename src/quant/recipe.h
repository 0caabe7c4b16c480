/*
 * recipe.h — which scheme each linear of a model takes.
 *
 * The scheme the user chose applies to every quantizable linear (not routers or
 * shared-expert gates) that no --exclude pattern names, except attention, which follows
 * the attention mode: for deepseek_v3 the default (STRATA_ATTENTION_AUTO) is ModelOpt's
 * DeepSeek example (examples/deepseek/ptq.py), which leaves attention unquantized except
 * o_proj when the weights are FP4 (NVFP4, MXFP4); STRATA_ATTENTION_FP8 gives attention
 * per-tensor FP8 weights and inputs (the example's mla_quant "per_tensor_fp8") and makes
 * the checkpoint mixed precision. quantize, convert and the exclude_modules list all ask
 * here, so they cannot disagree.
 */
#ifndef STRATA_QUANT_RECIPE_H
#define STRATA_QUANT_RECIPE_H

#include "quant/scheme.h"
#include "strata.h"

typedef struct quant_recipe {
    const strata_arch *arch;
    const scheme_info *scheme;
    strata_attention_quant attention;
    const char *const *exclude; /* (n_exclude) module name patterns left unquantized */
    size_t n_exclude;
} quant_recipe;

/* The scheme the linear takes, or NULL when it stays unquantized. */
const scheme_info *recipe_linear_scheme(const quant_recipe *recipe, const strata_linear *linear);

/* The distinct schemes the recipe gives the model's linears, in model order, into out;
 * their count (more than one: a mixed-precision checkpoint). */
int recipe_schemes_used(const quant_recipe *recipe, const scheme_info *out[STRATA_SCHEME_COUNT]);

/* Whether the linear belongs to attention (q/k/v/o, MLA's q_a/q_b/kv_a/kv_b). */
bool linear_is_attention(const strata_linear *linear);

/* Whether the linear's output is what an FP8 KV cache stores: k_proj, v_proj, and MLA's
 * kv_a_proj_with_mqa (its normed latent and roped key are the cache). */
bool linear_feeds_kv_cache(const strata_linear *linear);

/* Whether a module name matches one of the glob patterns (fnmatch, '*' crosses dots). */
bool module_excluded(const char *name, const char *const *patterns, size_t n_patterns);

#endif
