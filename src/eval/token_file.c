/*
 * token_file.c — strata_tokens_read: pre-tokenized ids from a file, for evaluation and
 * calibration until (and besides) strata's own tokenizer. Three encodings, chosen by the
 * file name: *.json (an array of integers), *.bin (little-endian int32), anything else
 * (decimal integers separated by whitespace, as `" ".join(map(str, ids))` writes them).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "io/fsutil.h"
#include "io/json.h"

#define MAX_TOKEN_FILE_BYTES ((uint64_t)1 << 34)

static strata_status from_binary(const char *path, const char *data, size_t length, int32_t *ids, int64_t *n)
{
    if (length % 4 != 0)
        return strata_fail(STRATA_ERR_FORMAT, "%s: %zu bytes is not a whole number of int32 token ids", path, length);
    *n = (int64_t)(length / 4);
    for (int64_t i = 0; i < *n; i++) {
        const uint8_t *b = (const uint8_t *)data + 4 * i;
        uint32_t v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        if (v > INT32_MAX) return strata_fail(STRATA_ERR_FORMAT, "%s: token %lld is negative", path, (long long)i);
        ids[i] = (int32_t)v;
    }
    return STRATA_OK;
}

static strata_status from_text(const char *path, const char *data, size_t length, int32_t *ids, int64_t *n)
{
    if (memchr(data, '\0', length))
        return strata_fail(STRATA_ERR_FORMAT, "%s: a NUL byte in a text file of token ids (UTF-16? binary?)", path);
    const char *p = data;
    *n = 0;
    for (;;) {
        while (isspace((unsigned char)*p)) p++;
        if (!*p) return STRATA_OK;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && !isspace((unsigned char)*end)))
            return strata_fail(STRATA_ERR_FORMAT, "%s: token %lld is not an id in [0, 2^31): '%.20s'", path,
                               (long long)*n, p);
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
}

static strata_status from_json(const char *path, const char *data, size_t length, int32_t **ids, int64_t *n)
{
    sjson_error error;
    sjson *root = sjson_parse(data, length, false, &error);
    if (!root)
        return strata_fail(STRATA_ERR_FORMAT, "%s:%d:%d: %s", path, error.line, error.column, error.text);
    strata_status status = STRATA_OK;
    if (!sjson_is_array(root)) {
        status = strata_fail(STRATA_ERR_FORMAT, "%s: expected a JSON array of token ids, found %s", path,
                             sjson_type_name(root));
        goto done;
    }
    *n = (int64_t)sjson_array_size(root);
    int32_t *grown = realloc(*ids, (size_t)(*n > 0 ? *n : 1) * sizeof **ids);
    if (!grown) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
        goto done;
    }
    *ids = grown;
    for (int64_t i = 0; i < *n; i++) {
        int64_t v;
        if (!sjson_as_int64(sjson_array_at(root, (size_t)i), &v) || v < 0 || v > INT32_MAX) {
            status = strata_fail(STRATA_ERR_FORMAT, "%s: element %lld is not a token id in [0, 2^31)", path,
                                 (long long)i);
            goto done;
        }
        (*ids)[i] = (int32_t)v;
    }
done:
    sjson_free(root);
    return status;
}

strata_status strata_tokens_read(const char *path, int32_t **ids, int64_t *n_ids)
{
    if (!path || !ids || !n_ids) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokens_read: NULL argument");
    *ids = NULL;
    *n_ids = 0;
    char *data;
    size_t length;
    strata_status status = file_read_all(path, MAX_TOKEN_FILE_BYTES, &data, &length);
    if (status != STRATA_OK) return status;
    /* Every encoding needs at most one id per 2 bytes (text: a digit and a separator). */
    int32_t *out = malloc((length / 2 + 1) * sizeof *out);
    int64_t n = 0;
    if (!out) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory reading %s", path);
    else if (path_has_suffix(path, ".json")) status = from_json(path, data, length, &out, &n);
    else if (path_has_suffix(path, ".bin")) status = from_binary(path, data, length, out, &n);
    else status = from_text(path, data, length, out, &n);
    free(data);
    if (status == STRATA_OK && n == 0) status = strata_fail(STRATA_ERR_FORMAT, "%s holds no token ids", path);
    if (status != STRATA_OK) {
        free(out);
        return status;
    }
    *ids = out;
    *n_ids = n;
    return STRATA_OK;
}

strata_status strata_tokens_write(const char *path, const int32_t *ids, int64_t n_ids, int64_t per_line)
{
    if (!path || (!ids && n_ids) || n_ids < 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokens_write: NULL argument");
    strbuf out = {0};
    bool json = path_has_suffix(path, ".json"), binary = path_has_suffix(path, ".bin");
    if (json) strbuf_append(&out, "[");
    for (int64_t i = 0; i < n_ids; i++) {
        if (binary) {
            uint32_t v = (uint32_t)ids[i];
            char b[4] = {(char)(v & 0xFF), (char)(v >> 8 & 0xFF), (char)(v >> 16 & 0xFF), (char)(v >> 24)};
            strbuf_append_n(&out, b, 4);
            continue;
        }
        bool line_end = per_line > 0 && (i + 1) % per_line == 0;
        strbuf_printf(&out, "%d%s", ids[i], i + 1 == n_ids ? "" : json ? (line_end ? ",\n" : ", ") : (line_end ? "\n" : " "));
    }
    if (json) strbuf_append(&out, "]");
    if (!binary) strbuf_append(&out, "\n");
    if (!strbuf_ok(&out)) {
        strbuf_free(&out);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    }
    strata_status st = file_write_atomic(path, out.data ? out.data : "", out.length);
    strbuf_free(&out);
    return st;
}
