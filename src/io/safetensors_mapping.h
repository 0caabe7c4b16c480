/*
 * safetensors_mapping.h — control over the read-only mappings behind a strata_safetensors.
 */
#ifndef STRATA_IO_SAFETENSORS_MAPPING_H
#define STRATA_IO_SAFETENSORS_MAPPING_H

#include "strata.h"

/* Drops the mapped pages from this process's resident set (they stay in the page cache
 * and fault back in when read again). Layerwise work calls it after each layer, so the
 * resident set holds one layer, not every layer read so far. */
void safetensors_release_pages(const strata_safetensors *st);

/* The same for the pages under [data, data + bytes) of one mapping (a routed expert's
 * weight, released once its group is done); nothing when data lies in no mapping. */
void safetensors_release_range(const strata_safetensors *st, const void *data, size_t bytes);

#endif
