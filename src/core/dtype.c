/*
 * dtype.c — the safetensors element types: names and sizes, one table.
 */
#include "strata.h"

#include <string.h>

typedef struct dtype_traits {
    const char *name;
    size_t size;
    bool is_float;
} dtype_traits;

static const dtype_traits DTYPES[STRATA_DTYPE_COUNT] = {
    [STRATA_DTYPE_BOOL] = {"BOOL", 1, false},
    [STRATA_DTYPE_U8] = {"U8", 1, false},
    [STRATA_DTYPE_I8] = {"I8", 1, false},
    [STRATA_DTYPE_F8_E5M2] = {"F8_E5M2", 1, true},
    [STRATA_DTYPE_F8_E4M3] = {"F8_E4M3", 1, true},
    [STRATA_DTYPE_I16] = {"I16", 2, false},
    [STRATA_DTYPE_U16] = {"U16", 2, false},
    [STRATA_DTYPE_F16] = {"F16", 2, true},
    [STRATA_DTYPE_BF16] = {"BF16", 2, true},
    [STRATA_DTYPE_I32] = {"I32", 4, false},
    [STRATA_DTYPE_U32] = {"U32", 4, false},
    [STRATA_DTYPE_F32] = {"F32", 4, true},
    [STRATA_DTYPE_F64] = {"F64", 8, true},
    [STRATA_DTYPE_I64] = {"I64", 8, false},
    [STRATA_DTYPE_U64] = {"U64", 8, false},
    [STRATA_DTYPE_F8_E8M0] = {"F8_E8M0", 1, true},
};

static bool valid(strata_dtype dtype) { return (unsigned)dtype < STRATA_DTYPE_COUNT; }

const char *strata_dtype_name(strata_dtype dtype) { return valid(dtype) ? DTYPES[dtype].name : "?"; }

size_t strata_dtype_size(strata_dtype dtype) { return valid(dtype) ? DTYPES[dtype].size : 0; }

bool strata_dtype_is_float(strata_dtype dtype) { return valid(dtype) && DTYPES[dtype].is_float; }

bool strata_dtype_from_name(const char *name, strata_dtype *out)
{
    for (int i = 0; i < STRATA_DTYPE_COUNT; i++) {
        if (strcmp(DTYPES[i].name, name) == 0) {
            *out = (strata_dtype)i;
            return true;
        }
    }
    return false;
}
