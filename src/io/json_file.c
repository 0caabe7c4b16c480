/*
 * json_file.c — JSON files (see json_file.h).
 */
#include "io/json_file.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fsutil.h"

strata_status json_file_read(const char *path, uint64_t max_bytes, bool reject_duplicates, sjson **out)
{
    char *text = NULL;
    size_t length = 0;
    *out = NULL;
    strata_status status = file_read_all(path, max_bytes, &text, &length);
    if (status != STRATA_OK) return status;
    sjson_error error;
    *out = sjson_parse(text, length, reject_duplicates, &error);
    free(text);
    if (!*out)
        return strata_fail(STRATA_ERR_FORMAT, "%s: not valid JSON (line %d, column %d): %s", path, error.line,
                           error.column, error.text);
    return STRATA_OK;
}

strata_status json_file_write(const char *path, const sjson *value, int indent)
{
    char *text = sjson_dump(value, indent);
    if (!text) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    size_t n = strlen(text);
    char *terminated = realloc(text, n + 2);
    if (!terminated) {
        free(text);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    }
    terminated[n++] = '\n';
    terminated[n] = '\0';
    strata_status status = file_write_atomic(path, terminated, n);
    free(terminated);
    return status;
}
