/*
 * strmap.h — a string-keyed hash map (open addressing, linear probing, FNV-1a) mapping
 * borrowed keys to size_t values: tensor name -> index. Keys are not copied; they must
 * outlive the map. Used for lookups by name in checkpoints with up to ~10^6 tensors.
 */
#ifndef STRATA_CORE_STRMAP_H
#define STRATA_CORE_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strmap {
    const char **keys;  /* (capacity), NULL marks an empty slot */
    size_t *values;     /* (capacity) */
    size_t capacity;    /* a power of two */
    size_t count;
} strmap;

/* Inserts key -> value. Returns false on allocation failure. When the key is already
 * present nothing changes and *existing (if non-NULL) receives its value. */
bool strmap_insert(strmap *map, const char *key, size_t value, bool *was_present,
                   size_t *existing);
/* Looks key up; false when absent. */
bool strmap_find(const strmap *map, const char *key, size_t *value);
/* The same for the key key[0..length), which need not be NUL-terminated. */
bool strmap_find_n(const strmap *map, const char *key, size_t length, size_t *value);
void strmap_free(strmap *map);

#endif
