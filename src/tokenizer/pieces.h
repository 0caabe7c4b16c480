/*
 * pieces.h — a list of strings in one buffer: what each tokenizer stage hands the next
 * (text segments, pre-tokenized words, decoded tokens). Allocation failure is sticky, as in
 * strbuf: appends become no-ops and pieces_ok() turns false, so stages check once.
 */
#ifndef STRATA_TOKENIZER_PIECES_H
#define STRATA_TOKENIZER_PIECES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct piece_span {
    size_t offset, length;   /* into pieces.text */
} piece_span;

typedef struct pieces {
    char *text;
    size_t text_length, text_capacity;
    piece_span *spans;       /* (count) */
    size_t count, capacity;
    bool failed;
} pieces;

/* Starts a new empty piece; later appends extend it. */
void pieces_begin(pieces *p);
void pieces_append(pieces *p, const char *bytes, size_t n);
/* pieces_begin + pieces_append. */
void pieces_push(pieces *p, const char *bytes, size_t n);
static inline const char *pieces_at(const pieces *p, size_t i) { return p->text ? p->text + p->spans[i].offset : ""; }
static inline size_t pieces_length(const pieces *p, size_t i) { return p->spans[i].length; }
bool pieces_ok(const pieces *p);
/* Empties the list, keeping its memory. */
void pieces_clear(pieces *p);
void pieces_free(pieces *p);

/* A growable array of token ids. */
typedef struct id_list {
    int32_t *ids;
    size_t count, capacity;
    bool failed;
} id_list;

void id_list_push(id_list *list, int32_t id);
void id_list_free(id_list *list);

#endif
