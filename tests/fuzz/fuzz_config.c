/*
 * fuzz_config.c — libFuzzer target: arbitrary bytes as config.json, through parsing, the
 * description, the tensor layout (both expert storages) and the expected-tensor list.
 */
#include <stdint.h>
#include <stdlib.h>

#include "io/json.h"
#include "model/desc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sjson_error error;
    sjson *config = sjson_parse((const char *)data, size, true, &error);
    if (!config) return 0;
    model_desc d;
    if (desc_from_config(config, "fuzz/config.json", &d) == STRATA_OK &&
        desc_layout(&d, "mlp", size > 0 && (data[0] & 1)) == STRATA_OK) {
        expected_tensor *expected = NULL;
        size_t count = 0;
        if (desc_expected(&d, &expected, &count) == STRATA_OK) free(expected);
    }
    desc_free(&d);
    sjson_free(config);
    return 0;
}
