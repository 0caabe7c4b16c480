/*
 * tokenizer.c — strata_tokenizer_encode / decode: the stages of tokenizer_internal.h joined.
 *
 * Encoding repairs invalid UTF-8 first (U+FFFD per maximal invalid subsequence, what
 * Python's errors="replace" gives the reference), then cuts the text at added tokens found
 * in the raw text; each piece between them is normalized, cut again at normalized added
 * tokens, pre-tokenized, and encoded word by word. Scratch lives per call, so one loaded
 * tokenizer serves any number of threads.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fsutil.h"
#include "tokenizer/tokenizer_internal.h"
#include "tokenizer/utf8.h"

#define MAX_TEXT_FILE_BYTES ((uint64_t)1 << 36)

static void scratch_free(const strata_tokenizer *tok, encode_scratch *scratch)
{
    for (size_t i = 0; i < tok->n_pretokenizers; i++) regex_matcher_free(scratch->matchers[i]);
    pieces_free(&scratch->words);
    pieces_free(&scratch->next);
    bpe_scratch_free(&scratch->bpe);
}

static strata_status scratch_init(const strata_tokenizer *tok, encode_scratch *scratch)
{
    *scratch = (encode_scratch){0};
    for (size_t i = 0; i < tok->n_pretokenizers; i++) {
        if (!tok->pretokenizers[i].pattern) continue;
        if (!(scratch->matchers[i] = regex_matcher_create(tok->pretokenizers[i].pattern))) {
            scratch_free(tok, scratch);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        }
    }
    return STRATA_OK;
}

/* Normalized text between added tokens: pre-tokenized, then BPE per word. */
static strata_status encode_words(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n,
                                  id_list *out)
{
    if (n == 0) return STRATA_OK;
    strata_status st = pretokenize(tok, scratch, s, n);
    if (st) return st;
    const pieces *words = &scratch->words;
    for (size_t w = 0; w < words->count; w++)
        if (!bpe_encode_word(&tok->model, &scratch->bpe, pieces_at(words, w), pieces_length(words, w), out))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return STRATA_OK;
}

/* Walks s[0..n) from added token to added token (of the given kind); text between them goes
 * to encode_text (raw pieces) or encode_words (normalized pieces). */
static strata_status encode_segment(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n,
                                    bool normalized, id_list *out);

static strata_status encode_text(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n,
                                 id_list *out)
{
    if (n == 0) return STRATA_OK;
    char *text;
    size_t length;
    if (!normalize_text(tok, s, n, &text, &length)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status st = encode_segment(tok, scratch, text, length, true, out);
    free(text);
    return st;
}

static strata_status encode_segment(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n,
                                    bool normalized, id_list *out)
{
    size_t from = 0, start;
    for (;;) {
        int64_t k = added_tokens_find(&tok->added, normalized, s, n, from, &start);
        size_t end = k < 0 ? n : start;
        strata_status st = normalized ? encode_words(tok, scratch, s + from, end - from, out)
                                      : encode_text(tok, scratch, s + from, end - from, out);
        if (st) return st;
        if (k < 0) return STRATA_OK;
        id_list_push(out, tok->added.tokens[k].id);
        from = start + tok->added.tokens[k].length;
    }
}

strata_status strata_tokenizer_encode(const strata_tokenizer *tok, const char *text, size_t length, bool add_special,
                                      int32_t **ids, int64_t *n_ids)
{
    if (!tok || (!text && length) || !ids || !n_ids)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokenizer_encode: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    char *valid;
    size_t n;
    if (!utf8_make_valid(text ? text : "", length, &valid, &n, NULL)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    encode_scratch scratch;
    id_list body = {0}, result = {0};
    strata_status st = scratch_init(tok, &scratch);
    if (st == STRATA_OK) {
        st = encode_segment(tok, &scratch, valid, n, false, &body);
        scratch_free(tok, &scratch);
    }
    free(valid);
    if (st == STRATA_OK && add_special && tok->template_items) {
        for (size_t i = 0; i < tok->n_template_items; i++) {
            const template_item *item = &tok->template_items[i];
            if (item->is_sequence)
                for (size_t k = 0; k < body.count; k++) id_list_push(&result, body.ids[k]);
            else
                for (size_t k = 0; k < item->n_ids; k++) id_list_push(&result, item->ids[k]);
        }
        id_list_free(&body);
        body = result;
    }
    if (st == STRATA_OK && body.failed) st = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (st) {
        id_list_free(&body);
        return st;
    }
    if (!body.ids && !(body.ids = malloc(sizeof *body.ids))) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    *ids = body.ids;
    *n_ids = (int64_t)body.count;
    return STRATA_OK;
}

strata_status strata_tokenizer_decode(const strata_tokenizer *tok, const int32_t *ids, int64_t n_ids, bool skip_special,
                                      char **text, size_t *length)
{
    if (!tok || (!ids && n_ids) || n_ids < 0 || !text)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokenizer_decode: NULL argument");
    pieces tokens = {0};
    for (int64_t i = 0; i < n_ids; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= tok->vocab_size || !tok->id_text[id]) {
            pieces_free(&tokens);
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: token id %d (position %lld) is not in the vocabulary",
                               tok->path, id, (long long)i);
        }
        if (skip_special && tok->id_special[id]) continue;
        pieces_push(&tokens, tok->id_text[id], strlen(tok->id_text[id]));
    }
    size_t n = 0;
    strata_status st = pieces_ok(&tokens) ? decode_tokens(tok, &tokens, text, &n)
                                          : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    pieces_free(&tokens);
    if (st == STRATA_OK && length) *length = n;
    return st;
}

strata_status strata_tokenizer_encode_file(const strata_tokenizer *tok, const char *path, bool add_special, int32_t **ids,
                                           int64_t *n_ids)
{
    if (!tok || !path) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokenizer_encode_file: NULL argument");
    char *text;
    size_t length;
    strata_status st = file_read_all(path, MAX_TEXT_FILE_BYTES, &text, &length);
    if (st) return st;
    st = strata_tokenizer_encode(tok, text, length, add_special, ids, n_ids);
    free(text);
    return st ? strata_fail_context(st, "%s", path) : STRATA_OK;
}

int64_t strata_tokenizer_vocab_size(const strata_tokenizer *tok) { return tok ? tok->vocab_size : 0; }
int32_t strata_tokenizer_bos(const strata_tokenizer *tok) { return tok ? tok->bos_id : -1; }
int32_t strata_tokenizer_eos(const strata_tokenizer *tok) { return tok ? tok->eos_id : -1; }

bool strata_tokenizer_adds_bos(const strata_tokenizer *tok)
{
    return tok && tok->n_template_items && !tok->template_items[0].is_sequence;
}

const char *strata_tokenizer_token(const strata_tokenizer *tok, int32_t id)
{
    return tok && id >= 0 && id < tok->vocab_size ? tok->id_text[id] : NULL;
}
