/*
 * golden_json.h — comparing strata's JSON files (hf_quant_config.json, quantization_config)
 * with the golden ones the reference libraries wrote: a golden "*" matches anything
 * (version and producer fields), and lists of module names compare as sets.
 */
#ifndef STRATA_TEST_GOLDEN_JSON_H
#define STRATA_TEST_GOLDEN_JSON_H

#include <stdbool.h>

#include "io/json.h"

bool golden_json_same(const sjson *golden, const sjson *actual, const char *key);
/* Fails the test naming `what` and both values when they differ. */
void golden_assert_json_same(const char *what, const sjson *golden, const sjson *actual);

#endif
