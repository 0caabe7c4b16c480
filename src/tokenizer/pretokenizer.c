/*
 * pretokenizer.c — the pre-tokenizer steps, each turning a list of pieces into the next:
 * Split cuts a piece at the matches of its regex and keeps matches and gaps as its
 * behavior says (the reference's SplitDelimiterBehavior); ByteLevel optionally adds a
 * leading space, splits with GPT-2's pattern, and maps every byte to its character.
 * Empty pieces are dropped, as the reference drops them.
 */
#include <string.h>

#include "core/error.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/utf8.h"

typedef struct segment {
    size_t start, end;
    bool is_match;
} segment;

/* Cuts piece s[0..n) at the matches of the step's regex and pushes the resulting pieces. */
static strata_status split_piece(const strata_tokenizer *tok, const pretokenizer_step *step, regex_matcher *m,
                                 const char *s, size_t n, pieces *out)
{
    size_t previous = 0, from = 0, match_start, match_end;
    bool have_last = false, last_was_match = false;   /* for the Merged behaviors */
    bool pending_next = false;                        /* MergedWithNext: a match waits for its gap */
    for (;;) {
        segment seg[2];
        int n_seg = 0;
        int rc = from <= n ? regex_find(m, s, n, from, &match_start, &match_end) : 0;
        if (rc < 0) return strata_fail(STRATA_ERR_INTERNAL, "%s: the pre-tokenizer regex failed on a %zu-byte piece", tok->path, n);
        if (rc == 1 && match_end == match_start) {   /* empty matches cut nothing */
            from = match_end + (match_end < n ? utf8_lead_length((uint8_t)s[match_end]) : 1);
            continue;
        }
        if (rc == 0) {
            if (previous < n) seg[n_seg++] = (segment){previous, n, false};
        } else {
            if (previous < match_start) seg[n_seg++] = (segment){previous, match_start, false};
            seg[n_seg++] = (segment){match_start, match_end, true};
            previous = from = match_end;
        }
        for (int k = 0; k < n_seg; k++) {
            segment g = seg[k];
            if (step->invert) g.is_match = !g.is_match;
            const char *text = s + g.start;
            size_t length = g.end - g.start;
            switch (step->behavior) {
            case SPLIT_ISOLATED: pieces_push(out, text, length); break;
            case SPLIT_REMOVED:
                if (!g.is_match) pieces_push(out, text, length);
                break;
            case SPLIT_MERGED_WITH_PREVIOUS:
                if (g.is_match && !last_was_match && have_last) pieces_append(out, text, length);
                else pieces_push(out, text, length);
                break;
            case SPLIT_MERGED_WITH_NEXT:
                /* Reading right to left, the reference prepends a match to the piece after
                 * it unless that piece is itself a match; left to right that is: a match
                 * starts a piece, and the next non-match joins it. */
                if (pending_next && !g.is_match) pieces_append(out, text, length);
                else pieces_push(out, text, length);
                pending_next = g.is_match;
                break;
            }
            have_last = true;
            last_was_match = g.is_match;
        }
        if (rc == 0) break;
    }
    (void)tok;
    return STRATA_OK;
}

static void push_byte_level(const strata_tokenizer *tok, const char *s, size_t n, pieces *out)
{
    pieces_begin(out);
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        pieces_append(out, tok->byte_map.utf8[b], tok->byte_map.utf8_length[b]);
    }
}

static strata_status byte_level_piece(const strata_tokenizer *tok, const pretokenizer_step *step, regex_matcher *m,
                                      const char *s, size_t n, pieces *out, pieces *spaced)
{
    if (step->add_prefix_space && (n == 0 || s[0] != ' ')) {
        pieces_clear(spaced);
        pieces_push(spaced, " ", 1);
        pieces_append(spaced, s, n);
        if (!pieces_ok(spaced)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        s = pieces_at(spaced, 0);
        n = pieces_length(spaced, 0);
    }
    if (!step->pattern) {
        push_byte_level(tok, s, n, out);
        return STRATA_OK;
    }
    size_t first = out->count;
    strata_status st = split_piece(tok, step, m, s, n, out);
    if (st) return st;
    /* Map the split pieces' bytes in place: re-push them mapped, then drop the originals. */
    size_t last = out->count;
    for (size_t i = first; i < last; i++) {
        size_t offset = out->spans[i].offset, length = out->spans[i].length;
        pieces_begin(out);
        for (size_t k = 0; k < length && pieces_ok(out); k++) {
            uint8_t b = (uint8_t)out->text[offset + k];
            pieces_append(out, tok->byte_map.utf8[b], tok->byte_map.utf8_length[b]);
        }
    }
    if (!pieces_ok(out)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    memmove(out->spans + first, out->spans + last, (out->count - last) * sizeof *out->spans);
    out->count -= last - first;
    return STRATA_OK;
}

strata_status pretokenize(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n)
{
    pieces *words = &scratch->words, *next = &scratch->next;
    pieces_clear(words);
    pieces_push(words, s, n);
    pieces spaced = {0};
    for (size_t i = 0; i < tok->n_pretokenizers; i++) {
        const pretokenizer_step *step = &tok->pretokenizers[i];
        pieces_clear(next);
        for (size_t w = 0; w < words->count; w++) {
            const char *text = pieces_at(words, w);
            size_t length = pieces_length(words, w);
            strata_status st = step->kind == PRETOKENIZE_SPLIT
                                   ? split_piece(tok, step, scratch->matchers[i], text, length, next)
                                   : byte_level_piece(tok, step, scratch->matchers[i], text, length, next, &spaced);
            if (st) { pieces_free(&spaced); return st; }
        }
        pieces tmp = *words;
        *words = *next;
        *next = tmp;
        if (!pieces_ok(words)) { pieces_free(&spaced); return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory"); }
    }
    pieces_free(&spaced);
    return STRATA_OK;
}
