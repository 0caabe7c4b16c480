/*
 * fuzz_safetensors_header.c — libFuzzer target: arbitrary bytes as a safetensors file.
 * Must never crash, leak or read out of bounds; accepted headers must describe data that
 * lies inside the input.
 */
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors_header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_header header;
    if (st_header_parse(data, size, "fuzz.safetensors", &header) == STRATA_OK) {
        for (size_t i = 0; i < header.n_entries; i++) {
            const st_entry *e = &header.entries[i];
            if (header.data_start + e->end > size || e->begin > e->end) abort();
            /* Touch the first and last byte the entry claims. */
            if (e->end > e->begin) {
                volatile uint8_t first = data[header.data_start + e->begin];
                volatile uint8_t last = data[header.data_start + e->end - 1];
                (void)first;
                (void)last;
            }
        }
        st_header_free(&header);
    }
    return 0;
}
