/*
 * bpe.h — the BPE model of tokenizer.json: a vocabulary (token -> id through a hash map),
 * ranked merges (pair of ids -> rank and merged id, an open-addressing table keyed by the
 * pair), and the encoding of one pre-tokenized word as Hugging Face tokenizers does it:
 *
 *   1. the word is split into characters; each becomes its vocabulary id, or with
 *      byte_fallback its "<0xXX>" byte tokens, or the unknown token (consecutive unknowns
 *      fused into one when fuse_unk is set);
 *   2. merges are applied lowest rank first (ties: leftmost) from a binary heap of candidate
 *      pairs, so a word of n characters costs O(n log n), however long it is;
 *   3. with ignore_merges, a word that is itself in the vocabulary is one token.
 */
#ifndef STRATA_TOKENIZER_BPE_H
#define STRATA_TOKENIZER_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/strmap.h"
#include "tokenizer/pieces.h"

typedef struct bpe_merge_table {
    uint64_t *keys;      /* (capacity) (left id << 32 | right id); UINT64_MAX marks empty */
    uint64_t *values;    /* (capacity) (rank << 32 | merged id) */
    size_t capacity, count;
} bpe_merge_table;

typedef struct bpe {
    char **tokens;          /* (n_tokens) id -> token, NULL where the vocabulary has a gap */
    int32_t n_tokens;
    strmap vocab;           /* token -> id; keys are the strings in tokens */
    bpe_merge_table merges;
    int32_t byte_ids[256];  /* id of "<0xXX>", -1 when absent */
    int32_t unk_id;         /* -1 when the model has no unknown token */
    bool byte_fallback, fuse_unk, ignore_merges;
    char *subword_prefix;   /* continuing_subword_prefix, NULL when none or empty */
    char *word_suffix;      /* end_of_word_suffix, NULL when none or empty */
} bpe;

/* Scratch for encoding words, one per encoding thread; grows as needed. */
typedef struct bpe_scratch {
    struct bpe_symbol *symbols;
    size_t symbols_capacity;
    struct bpe_candidate *heap;
    size_t heap_capacity;
    char *joined;            /* a character with prefix/suffix added */
    size_t joined_capacity;
    struct bpe_cache *cache; /* recently encoded short words */
} bpe_scratch;

/* Adds token with id (ids may come in any order). false on allocation failure; *duplicate
 * is set when the token or the id is already present. */
bool bpe_add_token(bpe *model, const char *token, int32_t id, bool *duplicate);
/* Adds the merge (left, right) with the given rank. Returns 0, or 1 when a part or the
 * merged token is not in the vocabulary (*missing names which), -1 on allocation failure. */
int bpe_add_merge(bpe *model, const char *left, const char *right, uint32_t rank, const char **missing);
/* Looks up the byte-fallback tokens once the vocabulary is complete. */
void bpe_finish(bpe *model);
void bpe_free(bpe *model);

/* Appends the ids of word[0..length) (well-formed UTF-8) to out. false on allocation failure. */
bool bpe_encode_word(const bpe *model, bpe_scratch *scratch, const char *word, size_t length, id_list *out);
void bpe_scratch_free(bpe_scratch *scratch);

#endif
