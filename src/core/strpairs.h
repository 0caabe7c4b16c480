/*
 * strpairs.h — an ordered list of owned string pairs (safetensors "__metadata__").
 * Small by nature, so lookups are linear.
 */
#ifndef STRATA_CORE_STRPAIRS_H
#define STRATA_CORE_STRPAIRS_H

#include <stdbool.h>
#include <stddef.h>

typedef struct string_pairs {
    char **keys, **values;   /* (count) each, owned */
    size_t count;
} string_pairs;

/* Copies key and value in; an existing key keeps its place and gets the new value unless
 * keep_existing is set. false on allocation failure. */
bool string_pairs_set(string_pairs *pairs, const char *key, const char *value, bool keep_existing);
const char *string_pairs_get(const string_pairs *pairs, const char *key);
void string_pairs_free(string_pairs *pairs);

#endif
