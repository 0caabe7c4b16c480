/*
 * bpe.c — the BPE model (see bpe.h). The merge loop mirrors tokenizers' Word::merge_all:
 * symbols form a doubly linked list over an array; a candidate popped from the heap is
 * skipped when its left symbol was merged away or its pair no longer produces the same
 * token; after a merge, the new symbol's pairs with both neighbours become candidates.
 */
#include "tokenizer/bpe.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/utf8.h"

#define MAX_VOCAB_ID (1 << 24)
#define CACHE_SLOTS 8192          /* a power of two */
#define CACHE_MAX_WORD 64         /* longer words are not cached */

typedef struct bpe_symbol {
    int32_t id;
    int64_t prev, next;    /* indices, -1 at the ends */
    size_t length;         /* bytes of the word covered; 0 once merged into its left neighbour */
} bpe_symbol;

typedef struct bpe_candidate {
    uint32_t rank;
    uint32_t position;     /* index of the left symbol */
    int32_t merged_id;
} bpe_candidate;

typedef struct cache_slot {
    uint64_t hash;
    uint32_t word_offset, word_length, ids_offset, ids_count;
    bool used;
} cache_slot;

typedef struct bpe_cache {
    cache_slot slots[CACHE_SLOTS];
    size_t count;
    char *words;
    size_t words_length, words_capacity;
    int32_t *ids;
    size_t ids_length, ids_capacity;
} bpe_cache;

/* ------------------------------------------------------------------ vocabulary, merges */

bool bpe_add_token(bpe *model, const char *token, int32_t id, bool *duplicate)
{
    *duplicate = false;
    if (id < 0 || id >= MAX_VOCAB_ID) { *duplicate = true; return true; }
    if (id >= model->n_tokens) {
        int32_t n = model->n_tokens ? model->n_tokens : 1024;
        while (n <= id) n *= 2;
        char **bigger = realloc(model->tokens, (size_t)n * sizeof *bigger);
        if (!bigger) return false;
        memset(bigger + model->n_tokens, 0, (size_t)(n - model->n_tokens) * sizeof *bigger);
        model->tokens = bigger;
        model->n_tokens = n;
    }
    if (model->tokens[id]) { *duplicate = true; return true; }
    char *copy = strdup(token);
    if (!copy) return false;
    bool present;
    if (!strmap_insert(&model->vocab, copy, (size_t)id, &present, NULL)) { free(copy); return false; }
    if (present) { free(copy); *duplicate = true; return true; }
    model->tokens[id] = copy;
    return true;
}

static bool lookup(const bpe *model, const char *s, size_t n, int32_t *id)
{
    size_t value;
    if (!strmap_find_n(&model->vocab, s, n, &value)) return false;
    *id = (int32_t)value;
    return true;
}

static uint64_t pair_key(int32_t left, int32_t right) { return (uint64_t)(uint32_t)left << 32 | (uint32_t)right; }

static size_t pair_slot(const bpe_merge_table *t, uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    size_t mask = t->capacity - 1, slot = (size_t)(h >> 17) & mask;
    while (t->keys[slot] != UINT64_MAX && t->keys[slot] != key) slot = (slot + 1) & mask;
    return slot;
}

static bool merges_grow(bpe_merge_table *t)
{
    size_t capacity = t->capacity ? t->capacity * 2 : 1024;
    bpe_merge_table bigger = {malloc(capacity * sizeof(uint64_t)), malloc(capacity * sizeof(uint64_t)), capacity, 0};
    if (!bigger.keys || !bigger.values) { free(bigger.keys); free(bigger.values); return false; }
    memset(bigger.keys, 0xFF, capacity * sizeof(uint64_t));
    for (size_t i = 0; i < t->capacity; i++) {
        if (t->keys[i] == UINT64_MAX) continue;
        size_t slot = pair_slot(&bigger, t->keys[i]);
        bigger.keys[slot] = t->keys[i];
        bigger.values[slot] = t->values[i];
        bigger.count++;
    }
    free(t->keys);
    free(t->values);
    *t = bigger;
    return true;
}

/* Later duplicates replace earlier ones, as the reference builds its map from the list. */
int bpe_add_merge(bpe *model, const char *left, const char *right, uint32_t rank, const char **missing)
{
    int32_t a, b, merged;
    if (!lookup(model, left, strlen(left), &a)) { *missing = left; return 1; }
    if (!lookup(model, right, strlen(right), &b)) { *missing = right; return 1; }
    /* The merged token drops the right part's continuing-subword prefix. */
    size_t skip = model->subword_prefix && strncmp(right, model->subword_prefix, strlen(model->subword_prefix)) == 0
                      ? strlen(model->subword_prefix) : 0;
    size_t n_left = strlen(left), n_right = strlen(right) - skip;
    char *joined = malloc(n_left + n_right + 1);
    if (!joined) return -1;
    memcpy(joined, left, n_left);
    memcpy(joined + n_left, right + skip, n_right + 1);
    bool found = lookup(model, joined, n_left + n_right, &merged);
    free(joined);
    if (!found) { *missing = NULL; return 1; }
    bpe_merge_table *t = &model->merges;
    if ((t->count + 1) * 2 > t->capacity && !merges_grow(t)) return -1;
    uint64_t key = pair_key(a, b);
    size_t slot = pair_slot(t, key);
    if (t->keys[slot] == UINT64_MAX) t->count++;
    t->keys[slot] = key;
    t->values[slot] = (uint64_t)rank << 32 | (uint32_t)merged;
    return 0;
}

static bool find_merge(const bpe *model, int32_t left, int32_t right, uint32_t *rank, int32_t *merged)
{
    const bpe_merge_table *t = &model->merges;
    if (t->count == 0) return false;
    size_t slot = pair_slot(t, pair_key(left, right));
    if (t->keys[slot] == UINT64_MAX) return false;
    *rank = (uint32_t)(t->values[slot] >> 32);
    *merged = (int32_t)(uint32_t)t->values[slot];
    return true;
}

void bpe_finish(bpe *model)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[7] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0};
        if (!lookup(model, name, 6, &model->byte_ids[b])) model->byte_ids[b] = -1;
    }
}

void bpe_free(bpe *model)
{
    for (int32_t i = 0; i < model->n_tokens; i++) free(model->tokens[i]);
    free(model->tokens);
    strmap_free(&model->vocab);
    free(model->merges.keys);
    free(model->merges.values);
    free(model->subword_prefix);
    free(model->word_suffix);
    *model = (bpe){0};
}

/* ------------------------------------------------------------------ scratch and heap */

static bool reserve(void **data, size_t *capacity, size_t needed, size_t element)
{
    if (needed <= *capacity) return true;
    size_t c = *capacity ? *capacity : 256;
    while (c < needed) c *= 2;
    void *bigger = realloc(*data, c * element);
    if (!bigger) return false;
    *data = bigger;
    *capacity = c;
    return true;
}

static bool before(const bpe_candidate *x, const bpe_candidate *y)
{
    return x->rank != y->rank ? x->rank < y->rank : x->position < y->position;
}

static void heap_push(bpe_candidate *heap, size_t *n, bpe_candidate c)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&c, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = c;
}

static bpe_candidate heap_pop(bpe_candidate *heap, size_t *n)
{
    bpe_candidate top = heap[0], last = heap[--*n];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && before(&heap[child + 1], &heap[child])) child++;
        if (!before(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n) heap[i] = last;
    return top;
}

/* ------------------------------------------------------------------ word cache */

static uint64_t hash_word(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static cache_slot *cache_find(bpe_cache *cache, const char *word, size_t length, uint64_t hash)
{
    size_t slot = (size_t)hash & (CACHE_SLOTS - 1);
    while (cache->slots[slot].used) {
        cache_slot *s = &cache->slots[slot];
        if (s->hash == hash && s->word_length == length && memcmp(cache->words + s->word_offset, word, length) == 0)
            return s;
        slot = (slot + 1) & (CACHE_SLOTS - 1);
    }
    return &cache->slots[slot];
}

static void cache_store(bpe_cache *cache, cache_slot *slot, const char *word, size_t length, uint64_t hash,
                        const int32_t *ids, size_t n_ids)
{
    if (!reserve((void **)&cache->words, &cache->words_capacity, cache->words_length + length, 1) ||
        !reserve((void **)&cache->ids, &cache->ids_capacity, cache->ids_length + n_ids, sizeof(int32_t)))
        return;   /* a cache that cannot grow just stops caching */
    memcpy(cache->words + cache->words_length, word, length);
    if (n_ids) memcpy(cache->ids + cache->ids_length, ids, n_ids * sizeof(int32_t));
    *slot = (cache_slot){hash, (uint32_t)cache->words_length, (uint32_t)length, (uint32_t)cache->ids_length,
                         (uint32_t)n_ids, true};
    cache->words_length += length;
    cache->ids_length += n_ids;
    cache->count++;
}

static void cache_reset(bpe_cache *cache)
{
    memset(cache->slots, 0, sizeof cache->slots);
    cache->count = cache->words_length = cache->ids_length = 0;
}

void bpe_scratch_free(bpe_scratch *scratch)
{
    free(scratch->symbols);
    free(scratch->heap);
    free(scratch->joined);
    if (scratch->cache) {
        free(scratch->cache->words);
        free(scratch->cache->ids);
        free(scratch->cache);
    }
    *scratch = (bpe_scratch){0};
}

/* ------------------------------------------------------------------ encoding */

static void add_symbol(bpe_symbol *symbols, size_t *n, int32_t id, size_t length)
{
    if (*n) symbols[*n - 1].next = (int64_t)*n;
    symbols[*n] = (bpe_symbol){id, (int64_t)*n - 1, -1, length};
    ++*n;
}

/* The id of one character, with the continuing-subword prefix (not first) and the
 * end-of-word suffix (last) added where the model has them. */
static bool char_id(const bpe *model, bpe_scratch *scratch, const char *c, size_t n, bool first, bool last,
                    int32_t *id, bool *ok)
{
    const char *prefix = !first ? model->subword_prefix : NULL, *suffix = last ? model->word_suffix : NULL;
    if (!prefix && !suffix) { *ok = lookup(model, c, n, id); return true; }
    size_t np = prefix ? strlen(prefix) : 0, ns = suffix ? strlen(suffix) : 0;
    if (!reserve((void **)&scratch->joined, &scratch->joined_capacity, np + n + ns, 1)) return false;
    if (np) memcpy(scratch->joined, prefix, np);
    memcpy(scratch->joined + np, c, n);
    if (ns) memcpy(scratch->joined + np + n, suffix, ns);
    *ok = lookup(model, scratch->joined, np + n + ns, id);
    return true;
}

static bool split_characters(const bpe *model, bpe_scratch *scratch, const char *word, size_t length, size_t *n)
{
    bpe_symbol *symbols = scratch->symbols;
    int32_t unk_pending = -1;
    size_t unk_length = 0;
    for (size_t i = 0; i < length;) {
        size_t step = utf8_lead_length((uint8_t)word[i]);
        int32_t id;
        bool found;
        if (!char_id(model, scratch, word + i, step, i == 0, i + step == length, &id, &found)) return false;
        if (found) {
            if (unk_pending >= 0) { add_symbol(symbols, n, unk_pending, unk_length); unk_pending = -1; }
            add_symbol(symbols, n, id, step);
        } else {
            bool all_bytes = model->byte_fallback;
            for (size_t k = 0; k < step && all_bytes; k++) all_bytes = model->byte_ids[(uint8_t)word[i + k]] >= 0;
            if (all_bytes) {
                /* As the reference does, a pending unknown is not flushed before bytes. */
                for (size_t k = 0; k < step; k++) add_symbol(symbols, n, model->byte_ids[(uint8_t)word[i + k]], 1);
            } else if (model->unk_id >= 0) {
                if (unk_pending >= 0 && model->fuse_unk) unk_length += step;
                else {
                    if (unk_pending >= 0) add_symbol(symbols, n, unk_pending, unk_length);
                    unk_pending = model->unk_id;
                    unk_length = step;
                }
            }
        }
        i += step;
    }
    if (unk_pending >= 0) add_symbol(symbols, n, unk_pending, unk_length);
    return true;
}

static void push_candidate(const bpe *model, bpe_scratch *scratch, size_t *n_heap, const bpe_symbol *symbols,
                           int64_t left)
{
    uint32_t rank;
    int32_t merged;
    int64_t right = symbols[left].next;
    if (right < 0) return;
    if (find_merge(model, symbols[left].id, symbols[right].id, &rank, &merged))
        heap_push(scratch->heap, n_heap, (bpe_candidate){rank, (uint32_t)left, merged});
}

static void merge_all(const bpe *model, bpe_scratch *scratch, size_t n)
{
    bpe_symbol *symbols = scratch->symbols;
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_candidate(model, scratch, &n_heap, symbols, (int64_t)i);
    while (n_heap) {
        bpe_candidate top = heap_pop(scratch->heap, &n_heap);
        bpe_symbol *left = &symbols[top.position];
        if (left->length == 0 || left->next < 0) continue;
        bpe_symbol *right = &symbols[left->next];
        uint32_t rank;
        int32_t merged;
        if (!find_merge(model, left->id, right->id, &rank, &merged) || merged != top.merged_id) continue;
        left->id = merged;
        left->length += right->length;
        left->next = right->next;
        right->length = 0;
        if (left->next >= 0) symbols[left->next].prev = top.position;
        if (left->prev >= 0) push_candidate(model, scratch, &n_heap, symbols, left->prev);
        push_candidate(model, scratch, &n_heap, symbols, top.position);
    }
}

bool bpe_encode_word(const bpe *model, bpe_scratch *scratch, const char *word, size_t length, id_list *out)
{
    if (length == 0) return true;
    int32_t whole;
    if (model->ignore_merges && lookup(model, word, length, &whole)) {
        id_list_push(out, whole);
        return !out->failed;
    }
    uint64_t hash = 0;
    cache_slot *slot = NULL;
    if (length <= CACHE_MAX_WORD) {
        if (!scratch->cache && !(scratch->cache = calloc(1, sizeof *scratch->cache))) return false;
        if (scratch->cache->count >= CACHE_SLOTS / 2) cache_reset(scratch->cache);
        hash = hash_word(word, length);
        slot = cache_find(scratch->cache, word, length, hash);
        if (slot->used) {
            for (uint32_t i = 0; i < slot->ids_count; i++) id_list_push(out, scratch->cache->ids[slot->ids_offset + i]);
            return !out->failed;
        }
    }
    /* At most one symbol per byte; each merge adds at most two candidates to the heap. */
    if (!reserve((void **)&scratch->symbols, &scratch->symbols_capacity, length, sizeof(bpe_symbol)) ||
        !reserve((void **)&scratch->heap, &scratch->heap_capacity, 3 * length + 2, sizeof(bpe_candidate)))
        return false;
    size_t n = 0;
    if (!split_characters(model, scratch, word, length, &n)) return false;
    merge_all(model, scratch, n);
    size_t first = out->count;
    for (size_t i = 0; i < n; i++)
        if (scratch->symbols[i].length) id_list_push(out, scratch->symbols[i].id);
    if (out->failed) return false;
    if (slot) cache_store(scratch->cache, slot, word, length, hash, out->ids ? out->ids + first : NULL, out->count - first);
    return true;
}
