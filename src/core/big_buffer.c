/*
 * big_buffer.c — see big_buffer.h.
 */
#include "core/big_buffer.h"

#include <stdlib.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define ADVISE_FROM ((size_t)8 << 20)

void *big_buffer_alloc(size_t bytes)
{
    if (bytes < ADVISE_FROM) return aligned_alloc(64, (bytes + 63) / 64 * 64 + (bytes ? 0 : 64));
    size_t rounded = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, rounded) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, rounded, MADV_HUGEPAGE);
#endif
    return p;
}
