/*
 * unicode.c — normalization through utf8proc (the only file that includes utf8proc.h).
 * utf8proc_map with an explicit length processes NUL code points like any other, so text
 * holding U+0000 normalizes whole.
 */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <utf8proc.h>

bool unicode_normalize(unicode_form form, const char *s, size_t n, char **out, size_t *out_length)
{
    int options = UTF8PROC_STABLE;
    switch (form) {
    case UNICODE_NFC: options |= UTF8PROC_COMPOSE; break;
    case UNICODE_NFD: options |= UTF8PROC_DECOMPOSE; break;
    case UNICODE_NFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case UNICODE_NFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    if (n == 0) {
        *out = calloc(1, 1);
        *out_length = 0;
        return *out != NULL;
    }
    utf8proc_uint8_t *result = NULL;
    utf8proc_ssize_t length = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &result,
                                           (utf8proc_option_t)options);
    if (length < 0) return false;
    *out = (char *)result;
    *out_length = (size_t)length;
    return true;
}
