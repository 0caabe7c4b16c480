/*
 * version.c — the library's version, compiled in from the CMake project version so the
 * header's STRATA_VERSION_* and the binary can be compared by clients.
 */
#include "strata.h"

#include <stdlib.h>

#ifndef STRATA_VERSION_FROM_CMAKE
#define STRATA_VERSION_FROM_CMAKE STRATA_VERSION_STRING
#endif

_Static_assert(STRATA_VERSION_MINOR < 100 && STRATA_VERSION_PATCH < 100,
               "strata_version_number packs two decimal digits per component");

const char *strata_version(void) { return STRATA_VERSION_FROM_CMAKE; }

int strata_version_number(void)
{
    return STRATA_VERSION_MAJOR * 10000 + STRATA_VERSION_MINOR * 100 + STRATA_VERSION_PATCH;
}

void strata_free(void *ptr) { free(ptr); }
