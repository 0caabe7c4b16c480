/*
 * strmap.c — string hash map (see strmap.h). The table is kept at most half full so
 * probe sequences stay short.
 */
#include "core/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_bytes(const char *s, size_t length)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < length; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static bool key_equals(const char *stored, const char *key, size_t length)
{
    return strncmp(stored, key, length) == 0 && strnlen(stored, length + 1) == length;
}

/* key[0..length) need not be NUL-terminated; stored keys are. */
static size_t find_slot(const char **keys, size_t capacity, const char *key, size_t length)
{
    size_t mask = capacity - 1;
    size_t slot = (size_t)hash_bytes(key, length) & mask;
    while (keys[slot] && !key_equals(keys[slot], key, length)) slot = (slot + 1) & mask;
    return slot;
}

static bool grow(strmap *map)
{
    size_t capacity = map->capacity ? map->capacity * 2 : 64;
    if (capacity < map->capacity) return false;
    const char **keys = calloc(capacity, sizeof *keys);
    size_t *values = calloc(capacity, sizeof *values);
    if (!keys || !values) { free(keys); free(values); return false; }
    for (size_t i = 0; i < map->capacity; i++) {
        if (!map->keys[i]) continue;
        size_t slot = find_slot(keys, capacity, map->keys[i], strlen(map->keys[i]));
        keys[slot] = map->keys[i];
        values[slot] = map->values[i];
    }
    free(map->keys);
    free(map->values);
    map->keys = keys;
    map->values = values;
    map->capacity = capacity;
    return true;
}

bool strmap_insert(strmap *map, const char *key, size_t value, bool *was_present,
                   size_t *existing)
{
    if (was_present) *was_present = false;
    if ((map->count + 1) * 2 > map->capacity && !grow(map)) return false;
    size_t slot = find_slot(map->keys, map->capacity, key, strlen(key));
    if (map->keys[slot]) {
        if (was_present) *was_present = true;
        if (existing) *existing = map->values[slot];
        return true;
    }
    map->keys[slot] = key;
    map->values[slot] = value;
    map->count++;
    return true;
}

bool strmap_find(const strmap *map, const char *key, size_t *value)
{
    return strmap_find_n(map, key, strlen(key), value);
}

bool strmap_find_n(const strmap *map, const char *key, size_t length, size_t *value)
{
    if (map->count == 0) return false;
    size_t slot = find_slot(map->keys, map->capacity, key, length);
    if (!map->keys[slot]) return false;
    if (value) *value = map->values[slot];
    return true;
}

void strmap_free(strmap *map)
{
    free(map->keys);
    free(map->values);
    *map = (strmap){0};
}
