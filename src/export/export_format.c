/*
 * export_format.c — the export formats by name, and whose numerics each holds.
 *
 * A compressed-tensors checkpoint is read by compressed-tensors' decompressor and by vLLM,
 * which dequantize with that library's arithmetic (docs/FORMATS.md), so strata quantizes
 * for it under the compressed-tensors convention; ModelOpt outputs under ModelOpt's, and
 * fakequant ones under whichever the user asked for.
 */
#include <string.h>

#include "strata.h"

static const char *const NAMES[] = {
    [STRATA_EXPORT_MODELOPT] = "modelopt",
    [STRATA_EXPORT_FAKEQUANT] = "fakequant",
    [STRATA_EXPORT_COMPRESSED_TENSORS] = "compressed-tensors",
};

const char *strata_export_format_name(strata_export_format format)
{
    return (unsigned)format < sizeof NAMES / sizeof NAMES[0] ? NAMES[format] : "?";
}

bool strata_export_format_from_name(const char *name, strata_export_format *out)
{
    for (size_t i = 0; name && i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (strcmp(NAMES[i], name) == 0) {
            *out = (strata_export_format)i;
            return true;
        }
    return false;
}

strata_convention strata_export_convention(strata_export_format format, strata_convention fakequant)
{
    switch (format) {
    case STRATA_EXPORT_COMPRESSED_TENSORS: return STRATA_CONVENTION_COMPRESSED_TENSORS;
    case STRATA_EXPORT_FAKEQUANT: return fakequant;
    default: return STRATA_CONVENTION_MODELOPT;
    }
}
