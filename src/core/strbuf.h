/*
 * strbuf.h — a growable NUL-terminated string for building reports, paths and headers.
 * Allocation failure is sticky: once an append fails, every later call is a no-op and
 * strbuf_ok() reports false, so builders check once at the end.
 */
#ifndef STRATA_CORE_STRBUF_H
#define STRATA_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct strbuf {
    char *data;       /* NUL-terminated; NULL until the first append */
    size_t length;
    size_t capacity;
    bool failed;
} strbuf;

void strbuf_append(strbuf *sb, const char *text);
void strbuf_append_n(strbuf *sb, const char *text, size_t n);
void strbuf_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n copies of c. */
void strbuf_pad(strbuf *sb, char c, size_t n);
bool strbuf_ok(const strbuf *sb);
/* Marks the builder failed: an allocation the text depends on failed, so the text is not
 * whole (strbuf_ok says so). */
void strbuf_fail(strbuf *sb);
/* Hands the string to the caller (never NULL on success) and resets the builder. */
char *strbuf_take(strbuf *sb);
void strbuf_free(strbuf *sb);

#endif
