/* A program outside the tree, built against the installed strata with pkg-config. */
#include <stdio.h>
#include <strata.h>

int main(void)
{
    if (strata_version_number() != STRATA_VERSION_MAJOR * 10000 + STRATA_VERSION_MINOR * 100 + STRATA_VERSION_PATCH)
        return 1;
    strata_safetensors *st = NULL;
    if (strata_safetensors_open("/nonexistent.safetensors", &st) != STRATA_ERR_NOT_FOUND) return 1;
    printf("strata %s: %s\n", strata_version(), strata_last_error());
    return 0;
}
