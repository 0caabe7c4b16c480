/*
 * recipe.c — which scheme each linear takes (see recipe.h).
 */
#include "quant/recipe.h"

#include <fnmatch.h>
#include <string.h>

static const char *const MODE_NAMES[] = {
    [STRATA_ATTENTION_AUTO] = "auto",
    [STRATA_ATTENTION_SCHEME] = "scheme",
    [STRATA_ATTENTION_NONE] = "none",
    [STRATA_ATTENTION_FP8] = "fp8",
};

const char *strata_attention_quant_name(strata_attention_quant mode)
{
    return (unsigned)mode < sizeof MODE_NAMES / sizeof MODE_NAMES[0] ? MODE_NAMES[mode] : "?";
}

bool strata_attention_quant_from_name(const char *name, strata_attention_quant *out)
{
    for (size_t i = 0; name && i < sizeof MODE_NAMES / sizeof MODE_NAMES[0]; i++) {
        if (strcmp(MODE_NAMES[i], name) == 0) {
            *out = (strata_attention_quant)i;
            return true;
        }
    }
    return false;
}

bool linear_is_attention(const strata_linear *linear)
{
    switch (linear->role) {
    case STRATA_LINEAR_Q:
    case STRATA_LINEAR_K:
    case STRATA_LINEAR_V:
    case STRATA_LINEAR_O:
    case STRATA_LINEAR_Q_A:
    case STRATA_LINEAR_Q_B:
    case STRATA_LINEAR_KV_A:
    case STRATA_LINEAR_KV_B: return true;
    default: return false;
    }
}

bool linear_feeds_kv_cache(const strata_linear *linear)
{
    return linear->role == STRATA_LINEAR_K || linear->role == STRATA_LINEAR_V || linear->role == STRATA_LINEAR_KV_A;
}

static bool fp4_weights(const scheme_info *scheme)
{
    return scheme->weight_format == STRATA_FORMAT_NVFP4 || scheme->weight_format == STRATA_FORMAT_MXFP4;
}

/* What AUTO means for the family. */
static strata_attention_quant resolve(const strata_arch *arch, strata_attention_quant mode)
{
    if (mode != STRATA_ATTENTION_AUTO) return mode;
    return arch->family == STRATA_FAMILY_DEEPSEEK_V3 ? STRATA_ATTENTION_AUTO : STRATA_ATTENTION_SCHEME;
}

bool module_excluded(const char *name, const char *const *patterns, size_t n_patterns)
{
    for (size_t i = 0; i < n_patterns; i++)
        if (fnmatch(patterns[i], name, 0) == 0) return true;
    return false;
}

const scheme_info *recipe_linear_scheme(const quant_recipe *recipe, const strata_linear *linear)
{
    const scheme_info *scheme = recipe->scheme;
    if (!linear->quantizable || module_excluded(linear->name, recipe->exclude, recipe->n_exclude)) return NULL;
    if (!linear_is_attention(linear)) return scheme;
    switch (resolve(recipe->arch, recipe->attention)) {
    case STRATA_ATTENTION_SCHEME: return scheme;
    case STRATA_ATTENTION_NONE: return NULL;
    case STRATA_ATTENTION_FP8: return scheme_get(STRATA_SCHEME_FP8);
    case STRATA_ATTENTION_AUTO: /* ModelOpt's DeepSeek example: only o_proj ("wo"), and only under FP4 */
        return linear->role == STRATA_LINEAR_O && fp4_weights(scheme) ? scheme : NULL;
    }
    return NULL;
}

int recipe_schemes_used(const quant_recipe *recipe, const scheme_info *out[STRATA_SCHEME_COUNT])
{
    int count = 0;
    const strata_arch *a = recipe->arch;
    for (int i = 0; i < a->n_layers; i++)
        for (size_t k = 0; k < a->layers[i].n_linears; k++) {
            const scheme_info *s = recipe_linear_scheme(recipe, &a->layers[i].linears[k]);
            bool seen = !s;
            for (int j = 0; j < count && !seen; j++) seen = out[j] == s;
            if (!seen && count < STRATA_SCHEME_COUNT) out[count++] = s;
        }
    return count;
}
