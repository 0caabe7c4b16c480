/*
 * utf8.c — well-formedness per the Unicode standard's table of UTF-8 byte sequences
 * (Table 3-7): the second byte's range depends on the lead byte, which excludes overlong
 * forms, surrogates and code points past U+10FFFF.
 */
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

size_t utf8_char_length(const uint8_t *s, size_t n, size_t *bad)
{
    if (n == 0) { if (bad) *bad = 0; return 0; }
    uint8_t lead = s[0];
    if (lead < 0x80) return 1;
    size_t need;
    uint8_t lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (lead >= 0xC2 && lead <= 0xDF) need = 2;
    else if (lead >= 0xE0 && lead <= 0xEF) {
        need = 3;
        if (lead == 0xE0) lo = 0xA0;
        if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        need = 4;
        if (lead == 0xF0) lo = 0x90;
        if (lead == 0xF4) hi = 0x8F;
    } else {
        if (bad) *bad = 1;
        return 0;
    }
    size_t have = 1;
    while (have < need && have < n) {
        uint8_t b = s[have];
        bool ok = have == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
        if (!ok) break;
        have++;
    }
    if (have == need) return need;
    if (bad) *bad = have;
    return 0;
}

size_t utf8_encode(uint32_t cp, char out[4])
{
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool utf8_make_valid(const char *s, size_t n, char **out, size_t *out_length, utf8_repair *repair)
{
    const uint8_t *in = (const uint8_t *)s;
    if (repair) *repair = (utf8_repair){0};
    /* Each invalid byte grows to at most 3 bytes (U+FFFD). */
    size_t capacity = n + 1;
    char *buffer = malloc(capacity);
    if (!buffer) return false;
    size_t length = 0, i = 0;
    while (i < n) {
        /* A well-formed character is copied; a maximal invalid subpart becomes U+FFFD. */
        size_t bad = 0, step = utf8_char_length(in + i, n - i, &bad);
        if (step) {
            memcpy(buffer + length, in + i, step);
            length += step;
            i += step;
            continue;
        }
        if (repair && repair->replaced++ == 0) repair->first_offset = i;
        if (length + 3 + (n - i - bad) + 1 > capacity) {
            size_t grown = capacity * 2 > length + 3 + (n - i) + 1 ? capacity * 2 : length + 3 + (n - i) + 1;
            char *bigger = realloc(buffer, grown);
            if (!bigger) { free(buffer); return false; }
            buffer = bigger;
            capacity = grown;
        }
        memcpy(buffer + length, "\xEF\xBF\xBD", 3);
        length += 3;
        i += bad;
    }
    buffer[length] = '\0';
    *out = buffer;
    *out_length = length;
    return true;
}
