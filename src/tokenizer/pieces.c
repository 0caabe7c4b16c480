/*
 * pieces.c — the growable lists of pieces.h (geometric growth, sticky failure).
 */
#include "tokenizer/pieces.h"

#include <stdlib.h>
#include <string.h>

static bool grow(void **data, size_t *capacity, size_t needed, size_t element)
{
    if (needed <= *capacity) return true;
    size_t c = *capacity ? *capacity : 64;
    while (c < needed) {
        if (c > SIZE_MAX / 2 / element) return false;
        c *= 2;
    }
    void *bigger = realloc(*data, c * element);
    if (!bigger) return false;
    *data = bigger;
    *capacity = c;
    return true;
}

void pieces_begin(pieces *p)
{
    if (p->failed) return;
    if (!grow((void **)&p->spans, &p->capacity, p->count + 1, sizeof *p->spans)) { p->failed = true; return; }
    p->spans[p->count++] = (piece_span){p->text_length, 0};
}

void pieces_append(pieces *p, const char *bytes, size_t n)
{
    if (p->failed || n == 0) return;
    if (!grow((void **)&p->text, &p->text_capacity, p->text_length + n, 1)) { p->failed = true; return; }
    memcpy(p->text + p->text_length, bytes, n);
    p->text_length += n;
    p->spans[p->count - 1].length += n;
}

void pieces_push(pieces *p, const char *bytes, size_t n)
{
    pieces_begin(p);
    pieces_append(p, bytes, n);
}

bool pieces_ok(const pieces *p) { return !p->failed; }

void pieces_clear(pieces *p)
{
    p->text_length = 0;
    p->count = 0;
}

void pieces_free(pieces *p)
{
    free(p->text);
    free(p->spans);
    *p = (pieces){0};
}

void id_list_push(id_list *list, int32_t id)
{
    if (list->failed) return;
    if (!grow((void **)&list->ids, &list->capacity, list->count + 1, sizeof *list->ids)) {
        list->failed = true;
        return;
    }
    list->ids[list->count++] = id;
}

void id_list_free(id_list *list)
{
    free(list->ids);
    *list = (id_list){0};
}
