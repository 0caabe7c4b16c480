/*
 * big_buffer.h — allocations of tensors that come and go (the streaming loader's buffers,
 * quantized tensors on their way to the writer). Fresh memory costs a page fault per 4 KiB
 * page when first touched, which for a stream of 100 MB tensors costs more than the
 * quantization; buffers of 8 MiB and more are therefore 2 MiB aligned and advised as
 * transparent huge pages (MADV_HUGEPAGE; a no-op where THP is off); smaller ones are 64-byte
 * aligned (a cache line, what the GEMM library's weights want). Free with free().
 */
#ifndef STRATA_CORE_BIG_BUFFER_H
#define STRATA_CORE_BIG_BUFFER_H

#include <stddef.h>

void *big_buffer_alloc(size_t bytes);

#endif
