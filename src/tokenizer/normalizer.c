/*
 * normalizer.c — the normalizer steps: Unicode forms (through unicode.c), Prepend (only to
 * non-empty text, as the reference does) and Replace of a literal string (left to right,
 * non-overlapping).
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

static char *copy_bytes(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    if (!out) return NULL;
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

static char *prepend(const char *prefix, const char *s, size_t n, size_t *out_length)
{
    size_t np = strlen(prefix);
    char *out = malloc(np + n + 1);
    if (!out) return NULL;
    memcpy(out, prefix, np);
    memcpy(out + np, s, n);
    out[np + n] = '\0';
    *out_length = np + n;
    return out;
}

static char *replace_all(const char *pattern, const char *replacement, const char *s, size_t n, size_t *out_length)
{
    size_t np = strlen(pattern), nr = strlen(replacement), count = 0;
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), pattern, np)); p += np) count++;
    size_t length = n - count * np + count * nr;
    char *out = malloc(length + 1), *w = out;
    if (!out) return NULL;
    const char *p = s, *end = s + n;
    for (const char *hit; (hit = memmem(p, (size_t)(end - p), pattern, np)); p = hit + np) {
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, replacement, nr);
        w += nr;
    }
    memcpy(w, p, (size_t)(end - p));
    w += end - p;
    *w = '\0';
    *out_length = length;
    return out;
}

bool normalize_text(const strata_tokenizer *tok, const char *s, size_t n, char **out, size_t *out_length)
{
    char *text = copy_bytes(s, n);
    size_t length = n;
    for (size_t i = 0; text && i < tok->n_normalizers; i++) {
        const normalizer_step *step = &tok->normalizers[i];
        char *next = NULL;
        size_t next_length = 0;
        switch (step->kind) {
        case NORMALIZE_UNICODE:
            if (!unicode_normalize(step->form, text, length, &next, &next_length)) next = NULL;
            break;
        case NORMALIZE_PREPEND:
            if (length == 0) continue;
            next = prepend(step->text, text, length, &next_length);
            break;
        case NORMALIZE_REPLACE:
            next = replace_all(step->text, step->replacement, text, length, &next_length);
            break;
        }
        free(text);
        text = next;
        length = next_length;
    }
    if (!text) return false;
    *out = text;
    *out_length = length;
    return true;
}
