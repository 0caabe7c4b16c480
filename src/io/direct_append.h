/*
 * direct_append.h — appending byte strings of any length to a file with O_DIRECT, written
 * by a thread of its own.
 *
 * A buffered write of a multi-GB file pays a kernel copy into the page cache, the file
 * system's per-page bookkeeping and the writeback thread's work: on the 2-core development
 * machine writing 1.7 GB and fsyncing it costs 0.6-0.7 s of CPU buffered and 0.04 s with
 * O_DIRECT, which also finished in a quarter of the time. Direct writes need whole blocks
 * at block offsets from block-aligned memory, and safetensors packs tensors of any size
 * back to back, so the bytes are gathered in staging buffers of DIRECT_APPEND_STAGE bytes;
 * each full one is handed to the writing thread, which writes it in one direct write while
 * the caller fills the next (DIRECT_APPEND_STAGES of them: the caller waits only when the
 * disk is that far behind). direct_append_flush writes the tail as one padded block, waits
 * for every write, cuts the file back to the bytes appended and turns O_DIRECT off, so the
 * file can then be read, written and collapsed as any other. Where the file system refuses
 * O_DIRECT, or the device the alignment, plain writes at the same offsets.
 *
 * A failed write is reported (its errno) by the next direct_append_write or flush.
 */
#ifndef STRATA_IO_DIRECT_APPEND_H
#define STRATA_IO_DIRECT_APPEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DIRECT_APPEND_ALIGN 4096u
#define DIRECT_APPEND_STAGE ((size_t)8 << 20)
#define DIRECT_APPEND_STAGES 4

typedef struct direct_append direct_append;

/* Appends to fd (not owned) from byte start on. NULL with errno set when out of memory or
 * the thread cannot start. */
direct_append *direct_append_open(int fd, uint64_t start);

/* false with errno set when this or an earlier write failed. */
bool direct_append_write(direct_append *a, const void *data, size_t n);

/* Every byte appended is in the file, which ends there, and fd is a plain descriptor again;
 * later writes go straight to the file. false with errno set on failure. */
bool direct_append_flush(direct_append *a);

/* Stops the thread and frees everything (bytes not yet flushed are dropped); fd stays
 * open. Harmless on NULL. */
void direct_append_close(direct_append *a);

#endif
