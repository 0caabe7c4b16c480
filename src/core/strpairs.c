/*
 * strpairs.c — ordered string pairs (see strpairs.h).
 */
#include "core/strpairs.h"

#include <stdlib.h>
#include <string.h>

bool string_pairs_set(string_pairs *pairs, const char *key, const char *value, bool keep_existing)
{
    for (size_t i = 0; i < pairs->count; i++) {
        if (strcmp(pairs->keys[i], key) != 0) continue;
        if (keep_existing) return true;
        char *copy = strdup(value);
        if (!copy) return false;
        free(pairs->values[i]);
        pairs->values[i] = copy;
        return true;
    }
    char **keys = realloc(pairs->keys, (pairs->count + 1) * sizeof *keys);
    if (keys) pairs->keys = keys;
    char **values = realloc(pairs->values, (pairs->count + 1) * sizeof *values);
    if (values) pairs->values = values;
    char *k = strdup(key), *v = strdup(value);
    if (!keys || !values || !k || !v) {
        free(k);
        free(v);
        return false;
    }
    pairs->keys[pairs->count] = k;
    pairs->values[pairs->count] = v;
    pairs->count++;
    return true;
}

const char *string_pairs_get(const string_pairs *pairs, const char *key)
{
    for (size_t i = 0; i < pairs->count; i++)
        if (strcmp(pairs->keys[i], key) == 0) return pairs->values[i];
    return NULL;
}

void string_pairs_free(string_pairs *pairs)
{
    for (size_t i = 0; i < pairs->count; i++) {
        free(pairs->keys[i]);
        free(pairs->values[i]);
    }
    free(pairs->keys);
    free(pairs->values);
    *pairs = (string_pairs){0};
}
