/*
 * unicode.h — Unicode normalization forms, the tokenizer's only use of utf8proc.
 */
#ifndef STRATA_TOKENIZER_UNICODE_H
#define STRATA_TOKENIZER_UNICODE_H

#include <stdbool.h>
#include <stddef.h>

typedef enum unicode_form { UNICODE_NFC, UNICODE_NFD, UNICODE_NFKC, UNICODE_NFKD } unicode_form;

/* Normalizes the well-formed UTF-8 string s[0..n) into a new malloc'd NUL-terminated
 * string. Returns false on allocation failure (or malformed input, which callers exclude). */
bool unicode_normalize(unicode_form form, const char *s, size_t n, char **out, size_t *out_length);

#endif
