/*
 * calib_data.c — strata_calib_load: calibration windows from a dataset file.
 *
 * The choices (see docs/DECISIONS.md, "Calibration data"):
 *   - documents are packed, not padded: each is tokenized on its own (no special tokens)
 *     with its separator appended, and the ids are concatenated into one stream, so every
 *     calibration token is real text and no attention mask is needed — what GPTQ's
 *     reference loaders and llama.cpp's imatrix do with WikiText/C4;
 *   - the stream is cut into consecutive windows; when the tokenizer adds BOS, each window
 *     starts with BOS (as every sequence a model sees in transformers does), followed by
 *     seq_len - 1 stream tokens;
 *   - n_samples windows are drawn without replacement (partial Fisher-Yates, splitmix64
 *     seeded with seed) and kept in stream order, so a seed names one sample set;
 *   - text is read like Python's text mode reads it (CRLF -> LF); invalid UTF-8 in plain
 *     text is replaced by U+FFFD and reported, while JSON Lines must be valid UTF-8 (a JSON
 *     requirement) and an invalid line is an error naming it.
 */
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/rng.h"
#include "core/strbuf.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "tokenizer/utf8.h"

#define MAX_DATASET_BYTES ((uint64_t)1 << 36)

strata_calib_format strata_calib_format_resolve(const char *path, strata_calib_format format)
{
    if (format != STRATA_CALIB_AUTO) return format;
    if (path_has_suffix(path, ".jsonl")) return STRATA_CALIB_JSONL;
    if (path_has_suffix(path, ".bin") || path_has_suffix(path, ".json")) return STRATA_CALIB_IDS;
    return STRATA_CALIB_PARAGRAPHS;
}

/* The token stream being packed. */
typedef struct stream {
    int32_t *ids;
    int64_t count, capacity;
} stream;

static strata_status append_document(stream *s, const strata_tokenizer *tok, strbuf *doc, const char *separator)
{
    strbuf_append(doc, separator);
    if (!strbuf_ok(doc)) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    int32_t *ids;
    int64_t n;
    strata_status st = strata_tokenizer_encode(tok, doc->data, doc->length, false, &ids, &n);
    if (st) return st;
    if (s->count + n > s->capacity) {
        int64_t c = s->capacity ? s->capacity : 4096;
        while (c < s->count + n) c *= 2;
        int32_t *bigger = realloc(s->ids, (size_t)c * sizeof *bigger);
        if (!bigger) { strata_free(ids); return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory"); }
        s->ids = bigger;
        s->capacity = c;
    }
    memcpy(s->ids + s->count, ids, (size_t)n * sizeof *ids);
    s->count += n;
    strata_free(ids);
    return STRATA_OK;
}

static bool is_blank(const char *line, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r' && line[i] != '\f' && line[i] != '\v') return false;
    return true;
}

/* CRLF -> LF in place; returns the new length. */
static size_t universal_newlines(char *text, size_t n)
{
    size_t w = 0;
    for (size_t r = 0; r < n; r++) {
        if (text[r] == '\r' && r + 1 < n && text[r + 1] == '\n') continue;
        text[w++] = text[r];
    }
    text[w] = '\0';
    return w;
}

/* Plain text: paragraphs (separated by blank lines) or lines. */
static strata_status read_text(const char *path, char *text, size_t n, const strata_tokenizer *tok, bool lines,
                               stream *s, strata_calib_info *info)
{
    strbuf doc = {0};
    strata_status st = STRATA_OK;
    const char *separator = lines ? "\n" : "\n\n";
    for (size_t at = 0; at <= n && st == STRATA_OK;) {
        const char *line = text + at, *newline = memchr(line, '\n', n - at);
        size_t length = newline ? (size_t)(newline - line) : n - at;
        bool blank = is_blank(line, length);
        if (!blank) {
            if (!lines && doc.length) strbuf_append(&doc, "\n");
            strbuf_append_n(&doc, line, length);
        }
        bool last = !newline;
        if ((lines || blank || last) && doc.length) {
            st = append_document(s, tok, &doc, separator);
            info->n_documents++;
            doc.length = 0;
            if (doc.data) doc.data[0] = '\0';
        }
        if (last) break;
        at += length + 1;
    }
    strbuf_free(&doc);
    (void)path;
    return st;
}

static strata_status read_jsonl(const char *path, const char *text, size_t n, const strata_tokenizer *tok,
                                const char *field, stream *s, strata_calib_info *info)
{
    strbuf doc = {0};
    strata_status st = STRATA_OK;
    size_t line_number = 0;
    for (size_t at = 0; at < n && st == STRATA_OK;) {
        const char *line = text + at, *newline = memchr(line, '\n', n - at);
        size_t length = newline ? (size_t)(newline - line) : n - at;
        at += length + 1;
        line_number++;
        if (is_blank(line, length)) continue;
        sjson_error error;
        sjson *record = sjson_parse(line, length, false, &error);
        if (!record) {
            st = strata_fail(STRATA_ERR_FORMAT, "%s:%zu: invalid JSON (column %d: %s)", path, line_number, error.column,
                             error.text);
            break;
        }
        const sjson *value = sjson_get(record, field);
        if (!sjson_is_object(record))
            st = strata_fail(STRATA_ERR_FORMAT, "%s:%zu: a JSON Lines record must be an object, not %s", path, line_number,
                             sjson_type_name(record));
        else if (!value)
            st = strata_fail(STRATA_ERR_FORMAT, "%s:%zu: no \"%s\" field (use --calib-field to name the text field)", path,
                             line_number, field);
        else if (!sjson_as_string(value))
            st = strata_fail(STRATA_ERR_FORMAT, "%s:%zu: field \"%s\" is %s, not a string", path, line_number, field,
                             sjson_type_name(value));
        else if (!is_blank(sjson_as_string(value), strlen(sjson_as_string(value)))) {
            strbuf_append(&doc, sjson_as_string(value));
            st = append_document(s, tok, &doc, "\n\n");
            info->n_documents++;
            doc.length = 0;
        }
        sjson_free(record);
    }
    strbuf_free(&doc);
    return st;
}

static strata_status read_stream(const char *path, const strata_tokenizer *tok, const strata_calib_params *params,
                                 stream *s, strata_calib_info *info)
{
    if (info->format == STRATA_CALIB_IDS) {
        strata_status st = strata_tokens_read(path, &s->ids, &s->count);
        s->capacity = s->count;
        return st;
    }
    if (!tok)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: a text dataset needs a tokenizer", path);
    char *data;
    size_t length;
    strata_status st = file_read_all(path, MAX_DATASET_BYTES, &data, &length);
    if (st) return st;
    if (info->format == STRATA_CALIB_JSONL) {
        st = read_jsonl(path, data, length, tok, params->text_field ? params->text_field : "text", s, info);
        free(data);
        return st;
    }
    char *text;
    size_t n;
    utf8_repair repair;
    bool ok = utf8_make_valid(data, length, &text, &n, &repair);
    free(data);
    if (!ok) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (repair.replaced) {
        info->invalid_utf8 = (int64_t)repair.replaced;
        info->first_invalid_offset = (int64_t)repair.first_offset;
        strata_log(STRATA_LOG_WARN, "%s: %zu invalid UTF-8 sequence(s) replaced by U+FFFD (the first at byte %zu)", path,
                   repair.replaced, repair.first_offset);
    }
    n = universal_newlines(text, n);
    st = read_text(path, text, n, tok, info->format == STRATA_CALIB_LINES, s, info);
    free(text);
    return st;
}

static int ascending(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* n of the windows 0..available-1, drawn without replacement, in increasing order. */
static int64_t *draw_windows(int64_t available, int64_t n, uint64_t seed)
{
    int64_t *order = malloc((size_t)available * sizeof *order);
    if (!order) return NULL;
    for (int64_t i = 0; i < available; i++) order[i] = i;
    rng r = {seed};
    for (int64_t i = 0; i < n; i++) {
        int64_t j = i + (int64_t)rng_below(&r, (uint64_t)(available - i));
        int64_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    qsort(order, (size_t)n, sizeof *order, ascending);
    return order;
}

strata_status strata_calib_load(const char *path, const strata_tokenizer *tok, const strata_calib_params *params,
                                int32_t **tokens, strata_calib_info *info)
{
    if (!path || !params || !tokens)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_calib_load: NULL argument");
    *tokens = NULL;
    strata_calib_info local = {0};
    if (!info) info = &local;
    *info = (strata_calib_info){.format = strata_calib_format_resolve(path, params->format), .first_invalid_offset = -1};
    bool bos = info->format != STRATA_CALIB_IDS && strata_tokenizer_adds_bos(tok);
    if (params->n_samples <= 0 || params->seq_len <= (bos ? 1 : 0) || params->seq_len > (1 << 24))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                           "calibration needs at least one sample of at least %d tokens (got %lld samples of %lld)",
                           bos ? 2 : 1, (long long)params->n_samples, (long long)params->seq_len);

    stream s = {0};
    strata_status st = read_stream(path, tok, params, &s, info);
    if (st) { free(s.ids); return st; }
    info->n_stream_tokens = s.count;
    if (s.count == 0) {
        free(s.ids);
        return strata_fail(STRATA_ERR_FORMAT, "%s: the dataset holds no text (%lld documents)", path,
                           (long long)info->n_documents);
    }
    int64_t body = params->seq_len - (bos ? 1 : 0);
    info->n_windows = s.count / body;
    if (info->n_windows < params->n_samples) {
        st = strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                         "%s: %lld tokens make %lld windows of %lld tokens, fewer than the %lld samples asked for "
                         "(%lld tokens needed); lower --calib-samples or --calib-seq, or add text",
                         path, (long long)s.count, (long long)info->n_windows, (long long)params->seq_len,
                         (long long)params->n_samples, (long long)(params->n_samples * body));
        free(s.ids);
        return st;
    }
    int64_t *chosen = draw_windows(info->n_windows, params->n_samples, params->seed);
    int32_t *out = malloc((size_t)(params->n_samples * params->seq_len) * sizeof *out);
    if (!chosen || !out) {
        free(chosen);
        free(out);
        free(s.ids);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int64_t i = 0; i < params->n_samples; i++) {
        int32_t *w = out + i * params->seq_len;
        if (bos) *w++ = strata_tokenizer_bos(tok);
        memcpy(w, s.ids + chosen[i] * body, (size_t)body * sizeof *w);
    }
    free(chosen);
    free(s.ids);
    *tokens = out;
    return STRATA_OK;
}
