/*
 * decoder.c — the decoder steps, each turning the list of token strings into the next, as
 * the reference's decode_chain does:
 *   Replace       literal replacement in every token ("▁" -> " ")
 *   ByteFallback  runs of "<0xXX>" tokens become their bytes when those form UTF-8, else one
 *                 U+FFFD per byte
 *   Fuse          all tokens become one
 *   Strip         up to start/stop copies of a character removed from each token's ends
 *   ByteLevel     characters back to bytes (a token with a character outside the map keeps
 *                 its own bytes), joined, invalid UTF-8 replaced
 * The decoded text is the final list joined; without a decoder, tokens are joined by " ".
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/utf8.h"

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The byte of a "<0xXX>" token (uppercase hex, as the reference writes them), or -1. */
static int fallback_byte(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hex_digit(s[3]), lo = hex_digit(s[4]);
    return hi < 0 || lo < 0 ? -1 : hi << 4 | lo;
}

static void flush_bytes(pieces *out, const char *bytes, size_t n)
{
    if (n == 0) return;
    size_t bad = 0, i = 0;
    while (i < n && utf8_char_length((const uint8_t *)bytes + i, n - i, &bad)) i += utf8_lead_length((uint8_t)bytes[i]);
    if (i == n) { pieces_push(out, bytes, n); return; }
    for (size_t k = 0; k < n; k++) pieces_push(out, "\xEF\xBF\xBD", 3);
}

static void byte_fallback(const pieces *in, pieces *out, char *bytes)
{
    size_t n_bytes = 0;
    for (size_t i = 0; i < in->count; i++) {
        int b = fallback_byte(pieces_at(in, i), pieces_length(in, i));
        if (b >= 0) { bytes[n_bytes++] = (char)b; continue; }
        flush_bytes(out, bytes, n_bytes);
        n_bytes = 0;
        pieces_push(out, pieces_at(in, i), pieces_length(in, i));
    }
    flush_bytes(out, bytes, n_bytes);
}

static void replace(const decoder_step *step, const pieces *in, pieces *out)
{
    size_t np = strlen(step->pattern), nr = strlen(step->replacement);
    for (size_t i = 0; i < in->count; i++) {
        const char *p = pieces_at(in, i), *end = p + pieces_length(in, i), *hit;
        pieces_begin(out);
        for (; (hit = memmem(p, (size_t)(end - p), step->pattern, np)); p = hit + np) {
            pieces_append(out, p, (size_t)(hit - p));
            pieces_append(out, step->replacement, nr);
        }
        pieces_append(out, p, (size_t)(end - p));
    }
}

static void strip(const decoder_step *step, const pieces *in, pieces *out)
{
    size_t nc = strlen(step->pattern);
    for (size_t i = 0; i < in->count; i++) {
        const char *s = pieces_at(in, i);
        size_t begin = 0, end = pieces_length(in, i);
        for (size_t k = 0; k < step->strip_start && end - begin >= nc && memcmp(s + begin, step->pattern, nc) == 0; k++)
            begin += nc;
        for (size_t k = 0; k < step->strip_stop && end - begin >= nc && memcmp(s + end - nc, step->pattern, nc) == 0; k++)
            end -= nc;
        pieces_push(out, s + begin, end - begin);
    }
}

static void fuse(const pieces *in, pieces *out)
{
    pieces_begin(out);
    for (size_t i = 0; i < in->count; i++) pieces_append(out, pieces_at(in, i), pieces_length(in, i));
}

/* Appends the bytes a byte-level token stands for; false (leaving a partial append for the
 * caller to undo) when one of its characters is outside the map. */
static bool token_bytes(const strata_tokenizer *tok, const char *s, size_t n, pieces *out)
{
    for (size_t i = 0; i < n;) {
        size_t step = utf8_lead_length((uint8_t)s[i]);
        uint32_t cp = step == 1 ? (uint8_t)s[i]
                    : step == 2 ? ((uint32_t)(s[i] & 0x1F) << 6 | (s[i + 1] & 0x3F))
                    : 0x110000;   /* 3- and 4-byte characters are never in the map */
        int b = byte_level_byte(&tok->byte_map, cp);
        if (b < 0) return false;
        char c = (char)b;
        pieces_append(out, &c, 1);
        i += step;
    }
    return true;
}

static void byte_level(const strata_tokenizer *tok, const pieces *in, pieces *out, pieces *joined)
{
    pieces_clear(joined);
    pieces_begin(joined);
    for (size_t i = 0; i < in->count; i++) {
        size_t before = joined->text_length, span = joined->spans[0].length;
        if (!token_bytes(tok, pieces_at(in, i), pieces_length(in, i), joined)) {   /* keep its own bytes */
            joined->text_length = before;
            joined->spans[0].length = span;
            pieces_append(joined, pieces_at(in, i), pieces_length(in, i));
        }
    }
    if (!pieces_ok(joined)) { out->failed = true; return; }
    char *valid;
    size_t length;
    if (!utf8_make_valid(pieces_at(joined, 0), pieces_length(joined, 0), &valid, &length, NULL)) {
        out->failed = true;
        return;
    }
    pieces_push(out, valid, length);
    free(valid);
}

strata_status decode_tokens(const strata_tokenizer *tok, pieces *tokens, char **text, size_t *length)
{
    pieces next = {0}, scratch = {0};
    size_t longest = 0;
    for (size_t i = 0; i < tokens->count; i++) longest += pieces_length(tokens, i);
    char *bytes = malloc(longest + 1);
    if (!bytes) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t s = 0; s < tok->n_decoders && pieces_ok(tokens); s++) {
        const decoder_step *step = &tok->decoders[s];
        pieces_clear(&next);
        switch (step->kind) {
        case DECODE_REPLACE: replace(step, tokens, &next); break;
        case DECODE_BYTE_FALLBACK: byte_fallback(tokens, &next, bytes); break;
        case DECODE_FUSE: fuse(tokens, &next); break;
        case DECODE_STRIP: strip(step, tokens, &next); break;
        case DECODE_BYTE_LEVEL: byte_level(tok, tokens, &next, &scratch); break;
        }
        if (!pieces_ok(&next)) tokens->failed = true;
        pieces tmp = *tokens;
        *tokens = next;
        next = tmp;
    }
    free(bytes);
    pieces_clear(&next);
    pieces_begin(&next);
    for (size_t i = 0; i < tokens->count; i++) {
        if (i && !tok->has_decoder) pieces_append(&next, " ", 1);
        pieces_append(&next, pieces_at(tokens, i), pieces_length(tokens, i));
    }
    bool ok = pieces_ok(tokens) && pieces_ok(&next) && (*text = malloc(next.text_length + 1));
    if (ok) {
        if (next.text_length) memcpy(*text, next.text, next.text_length);
        (*text)[next.text_length] = '\0';
        *length = next.text_length;
    }
    pieces_free(&next);
    pieces_free(&scratch);
    return ok ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
}
