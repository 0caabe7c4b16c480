/*
 * algorithm.c — the algorithm table (see algorithm.h).
 */
#include "calib/algorithm.h"

#include <string.h>

#include "core/error.h"

typedef struct algorithm_entry {
    const char *name;
    bool layerwise;            /* strata runs it */
    calib_algorithm algorithm; /* when it does */
    const char *why_not;       /* when it does not */
} algorithm_entry;

static const algorithm_entry ALGORITHMS[] = {
    {.name = "max", .layerwise = true, .algorithm = CALIB_MAX},
    {.name = "mse", .layerwise = true, .algorithm = CALIB_MSE},
    {.name = "gptq", .layerwise = true, .algorithm = CALIB_GPTQ},
    {.name = "awq", .layerwise = true, .algorithm = CALIB_AWQ},
    {.name = "awq+gptq", .layerwise = true, .algorithm = CALIB_AWQ_GPTQ},
    {.name = "auto_quantize", .why_not = "it searches per-layer formats with gradients of the whole model's loss"},
    {.name = "svdquant", .why_not = "strata has no low-rank branch in its export formats"},
};

strata_status calib_algorithm_parse(const char *name, calib_algorithm *out)
{
    if (!name) name = "max";
    for (size_t i = 0; i < sizeof ALGORITHMS / sizeof ALGORITHMS[0]; i++) {
        if (strcmp(name, ALGORITHMS[i].name) != 0) continue;
        if (!ALGORITHMS[i].layerwise)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "algorithm '%s' cannot run layer by layer: %s", name,
                               ALGORITHMS[i].why_not);
        *out = ALGORITHMS[i].algorithm;
        return STRATA_OK;
    }
    return strata_fail(STRATA_ERR_UNSUPPORTED, "unknown algorithm '%s' (strata quantize runs: max, mse, gptq, awq, awq+gptq)", name);
}

const char *calib_algorithm_name(calib_algorithm algorithm)
{
    for (size_t i = 0; i < sizeof ALGORITHMS / sizeof ALGORITHMS[0]; i++)
        if (ALGORITHMS[i].layerwise && ALGORITHMS[i].algorithm == algorithm) return ALGORITHMS[i].name;
    return "?";
}
