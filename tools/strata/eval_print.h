/*
 * eval_print.h — printing a comparison with the original (see eval_print.c).
 */
#ifndef STRATA_EVAL_PRINT_H
#define STRATA_EVAL_PRINT_H

#include <stdio.h>

#include "strata.h"

/* llama-perplexity --kl-divergence's three blocks, "value ± standard error". */
void eval_print_comparison(FILE *f, const strata_eval_compare_result *r);
/* One JSON object: each estimate as {"value", "error", "ci95"}, the percentiles by name. */
void eval_print_comparison_json(FILE *f, const strata_eval_compare_result *r);

#endif
