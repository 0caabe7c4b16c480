/*
 * utf8.h — UTF-8 as the tokenizer needs it: the length of one well-formed character, and
 * lossy repair of byte strings. Invalid input is replaced the way Python's
 * bytes.decode(errors="replace") and Rust's String::from_utf8_lossy do it (Unicode's
 * "maximal subpart" practice): each maximal prefix of a well-formed sequence that cannot be
 * completed, and each byte that cannot start one, becomes one U+FFFD.
 */
#ifndef STRATA_TOKENIZER_UTF8_H
#define STRATA_TOKENIZER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of the well-formed character at s[0..n), or 0 when none starts there. When 0 is
 * returned and *bad is non-NULL, *bad receives how many bytes one U+FFFD replaces. */
size_t utf8_char_length(const uint8_t *s, size_t n, size_t *bad);

/* Length of the character starting at s, which must be well-formed UTF-8. */
static inline size_t utf8_lead_length(uint8_t lead)
{
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

typedef struct utf8_repair {
    size_t replaced;       /* how many U+FFFD were written */
    size_t first_offset;   /* byte offset of the first invalid sequence in the input */
} utf8_repair;

/* A malloc'd, NUL-terminated, well-formed copy of s[0..n) in *out (*out_length bytes).
 * Returns false on allocation failure. */
bool utf8_make_valid(const char *s, size_t n, char **out, size_t *out_length, utf8_repair *repair);

/* Appends the UTF-8 encoding of code point cp (< 0x110000) to out; returns bytes written. */
size_t utf8_encode(uint32_t cp, char out[4]);

#endif
