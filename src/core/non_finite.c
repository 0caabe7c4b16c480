/*
 * non_finite.c — NaN/Inf scans on the bits of each dtype (see non_finite.h).
 *
 * Each loop first counts with a branch-free test the compiler vectorizes, and only looks
 * for the first position when the count is not zero: clean tensors (the rule) cost one
 * pass at memory speed.
 */
#include "core/non_finite.h"

#include <stdio.h>
#include <string.h>

/* Exponent all ones: Inf when the mantissa is zero, NaN otherwise. */
#define SCAN_IEEE(T, EXP_MASK, MANT_MASK)                                                                   \
    do {                                                                                                    \
        const T *x = data;                                                                                  \
        uint64_t count = 0;                                                                                 \
        for (uint64_t i = 0; i < n; i++) count += (x[i] & (EXP_MASK)) == (EXP_MASK);                        \
        out->count = count;                                                                                 \
        for (uint64_t i = 0; count && i < n; i++)                                                           \
            if ((x[i] & (EXP_MASK)) == (EXP_MASK)) {                                                        \
                out->first = i;                                                                             \
                out->first_is_nan = (x[i] & (MANT_MASK)) != 0;                                              \
                break;                                                                                      \
            }                                                                                               \
    } while (0)

void non_finite_find(strata_dtype dtype, const void *data, uint64_t n, non_finite_scan *out)
{
    *out = (non_finite_scan){0};
    switch (dtype) {
    case STRATA_DTYPE_F64: SCAN_IEEE(uint64_t, 0x7ff0000000000000ull, 0x000fffffffffffffull); break;
    case STRATA_DTYPE_F32: SCAN_IEEE(uint32_t, 0x7f800000u, 0x007fffffu); break;
    case STRATA_DTYPE_BF16: SCAN_IEEE(uint16_t, 0x7f80u, 0x007fu); break;
    case STRATA_DTYPE_F16: SCAN_IEEE(uint16_t, 0x7c00u, 0x03ffu); break;
    case STRATA_DTYPE_F8_E5M2: SCAN_IEEE(uint8_t, 0x7cu, 0x03u); break;
    case STRATA_DTYPE_F8_E4M3: /* no infinities; S.1111.111 is NaN */
        SCAN_IEEE(uint8_t, 0x7fu, 0x7fu);
        break;
    case STRATA_DTYPE_F8_E8M0: /* 0xFF is NaN */
        SCAN_IEEE(uint8_t, 0xffu, 0xffu);
        break;
    default: break;
    }
}

void non_finite_describe(const non_finite_scan *scan, int n_dims, const int64_t *shape, char *out, size_t size)
{
    int64_t coords[STRATA_MAX_DIMS] = {0};
    uint64_t rest = scan->first;
    for (int d = n_dims - 1; d >= 0; d--) {
        if (shape[d] > 0) {
            coords[d] = (int64_t)(rest % (uint64_t)shape[d]);
            rest /= (uint64_t)shape[d];
        }
    }
    int used = snprintf(out, size, "%s at %s", scan->first_is_nan ? "NaN" : "Inf", n_dims == 1 ? "[" : "(");
    for (int d = 0; d < n_dims && used > 0 && (size_t)used < size; d++)
        used += snprintf(out + used, size - (size_t)used, "%s%lld", d ? ", " : "", (long long)coords[d]);
    if (used > 0 && (size_t)used < size) snprintf(out + used, size - (size_t)used, "%s", n_dims == 1 ? "]" : ")");
    if (n_dims == 0) snprintf(out, size, "%s (a scalar)", scan->first_is_nan ? "NaN" : "Inf");
}
