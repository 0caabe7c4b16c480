/*
 * added_tokens.h — tokenizer.json's added tokens (special tokens such as "<s>" or
 * "<|im_start|>", and user additions), found in text before the model sees it. Matching is
 * leftmost-longest, as the reference's Aho-Corasick automaton does: the earliest start wins,
 * then the longest token starting there. Tokens are bucketed by first byte, longest first.
 */
#ifndef STRATA_TOKENIZER_ADDED_TOKENS_H
#define STRATA_TOKENIZER_ADDED_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct added_token {
    char *content;
    size_t length;
    int32_t id;
    bool special;      /* skipped by decode(skip_special) */
    bool normalized;   /* matched in normalized text (content normalized at load) */
} added_token;

typedef struct added_tokens {
    added_token *tokens;       /* (count) */
    size_t count, capacity;
    /* Per first byte and per set (0: matched in raw text, 1: in normalized text), indices
     * into tokens, longest first. */
    uint32_t *bucket[2][256];
    uint32_t bucket_size[2][256];
} added_tokens;

/* Takes ownership of content (malloc'd). false on allocation failure. */
bool added_tokens_add(added_tokens *set, char *content, int32_t id, bool special, bool normalized);
/* Builds the match buckets after the last add. false on allocation failure. */
bool added_tokens_finish(added_tokens *set);
void added_tokens_free(added_tokens *set);

/* The first match of a token of the given kind (normalized or not) in s[from..n): returns
 * the token's index and its start in *start, or -1 when there is none. */
int64_t added_tokens_find(const added_tokens *set, bool normalized, const char *s, size_t n, size_t from,
                          size_t *start);

#endif
