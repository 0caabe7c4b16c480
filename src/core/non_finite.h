/*
 * non_finite.h — finding NaN and Inf in a tensor of any floating-point dtype, on its bits
 * (no conversion), so every tensor strata writes can be checked at memory speed.
 */
#ifndef STRATA_CORE_NON_FINITE_H
#define STRATA_CORE_NON_FINITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef struct non_finite_scan {
    uint64_t count;      /* NaN and Inf values */
    uint64_t first;      /* element index of the first one (valid when count > 0) */
    bool first_is_nan;   /* else it is an infinity */
} non_finite_scan;

/* Scans n elements of dtype; integer dtypes have none. */
void non_finite_find(strata_dtype dtype, const void *data, uint64_t n, non_finite_scan *out);

/* "NaN at (3, 17)" / "Inf at [5]": the first value found as coordinates of shape. */
void non_finite_describe(const non_finite_scan *scan, int n_dims, const int64_t *shape, char *out, size_t size);

#endif
