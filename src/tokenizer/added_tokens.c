/*
 * added_tokens.c — leftmost-longest matching of added tokens (see added_tokens.h).
 */
#include "tokenizer/added_tokens.h"

#include <stdlib.h>
#include <string.h>

bool added_tokens_add(added_tokens *set, char *content, int32_t id, bool special, bool normalized)
{
    if (set->count == set->capacity) {
        size_t c = set->capacity ? set->capacity * 2 : 16;
        added_token *bigger = realloc(set->tokens, c * sizeof *bigger);
        if (!bigger) return false;
        set->tokens = bigger;
        set->capacity = c;
    }
    set->tokens[set->count++] = (added_token){content, strlen(content), id, special, normalized};
    return true;
}

/* Sort keys: longest first, then in the order added. */
static int ascending(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

bool added_tokens_finish(added_tokens *set)
{
    for (size_t i = 0; i < set->count; i++) {
        const added_token *t = &set->tokens[i];
        if (t->length == 0) continue;
        set->bucket_size[t->normalized][(uint8_t)t->content[0]]++;
    }
    uint64_t *keys = malloc((set->count + 1) * sizeof *keys);
    if (!keys) return false;
    for (int kind = 0; kind < 2; kind++)
        for (int b = 0; b < 256; b++) {
            uint32_t n = 0;
            if (!set->bucket_size[kind][b]) continue;
            for (size_t i = 0; i < set->count; i++) {
                const added_token *t = &set->tokens[i];
                if (t->length && t->normalized == (kind == 1) && (uint8_t)t->content[0] == b)
                    keys[n++] = (uint64_t)(UINT32_MAX - (uint32_t)t->length) << 32 | (uint32_t)i;
            }
            qsort(keys, n, sizeof *keys, ascending);
            set->bucket[kind][b] = malloc(n * sizeof(uint32_t));
            if (!set->bucket[kind][b]) { free(keys); return false; }
            for (uint32_t k = 0; k < n; k++) set->bucket[kind][b][k] = (uint32_t)keys[k];
        }
    free(keys);
    return true;
}

void added_tokens_free(added_tokens *set)
{
    for (size_t i = 0; i < set->count; i++) free(set->tokens[i].content);
    free(set->tokens);
    for (int kind = 0; kind < 2; kind++)
        for (int b = 0; b < 256; b++) free(set->bucket[kind][b]);
    *set = (added_tokens){0};
}

int64_t added_tokens_find(const added_tokens *set, bool normalized, const char *s, size_t n, size_t from,
                          size_t *start)
{
    for (size_t i = from; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        const uint32_t *bucket = set->bucket[normalized][b];
        for (uint32_t k = 0; k < set->bucket_size[normalized][b]; k++) {
            const added_token *t = &set->tokens[bucket[k]];
            if (t->length <= n - i && memcmp(s + i, t->content, t->length) == 0) {
                *start = i;
                return bucket[k];
            }
        }
    }
    return -1;
}
