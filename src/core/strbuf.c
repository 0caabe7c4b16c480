/*
 * strbuf.c — growable string (see strbuf.h).
 */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(strbuf *sb, size_t extra)
{
    if (sb->failed) return false;
    size_t need = sb->length + extra + 1;
    if (need < sb->length) { sb->failed = true; return false; }
    if (need <= sb->capacity) return true;
    size_t capacity = sb->capacity ? sb->capacity : 256;
    while (capacity < need) {
        if (capacity > SIZE_MAX / 2) { capacity = need; break; }
        capacity *= 2;
    }
    char *grown = realloc(sb->data, capacity);
    if (!grown) { sb->failed = true; return false; }
    sb->data = grown;
    sb->capacity = capacity;
    return true;
}

void strbuf_append_n(strbuf *sb, const char *text, size_t n)
{
    if (!reserve(sb, n)) return;
    memcpy(sb->data + sb->length, text, n);
    sb->length += n;
    sb->data[sb->length] = '\0';
}

void strbuf_append(strbuf *sb, const char *text) { strbuf_append_n(sb, text, strlen(text)); }

void strbuf_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) { sb->failed = true; return; }
    if (!reserve(sb, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->length, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->length += (size_t)n;
}

void strbuf_pad(strbuf *sb, char c, size_t n)
{
    if (!reserve(sb, n)) return;
    memset(sb->data + sb->length, c, n);
    sb->length += n;
    sb->data[sb->length] = '\0';
}

bool strbuf_ok(const strbuf *sb) { return !sb->failed; }

void strbuf_fail(strbuf *sb) { sb->failed = true; }

char *strbuf_take(strbuf *sb)
{
    if (sb->failed) { strbuf_free(sb); return NULL; }
    if (!sb->data && !reserve(sb, 0)) return NULL;
    if (sb->length == 0) sb->data[0] = '\0';
    char *out = sb->data;
    *sb = (strbuf){0};
    return out;
}

void strbuf_free(strbuf *sb)
{
    free(sb->data);
    *sb = (strbuf){0};
}
