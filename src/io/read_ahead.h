/*
 * read_ahead.h — a thread that reads the next byte ranges of a list of files while the
 * caller works on the current one.
 *
 * The caller gives every range it will consume, in order; the thread reads them one after
 * another (direct_read: from the cache where cached, else O_DIRECT) into READ_AHEAD_SLOTS
 * buffers of the largest range's size and hands them out in the same order. A buffer is
 * the caller's from read_ahead_next until its next call, so reading range i + 1 overlaps
 * whatever the caller does with range i: the disk and the cores work at once. Memory is
 * READ_AHEAD_SLOTS buffers, whatever the number of ranges.
 *
 * A failed read is returned, with its message, by the read_ahead_next that would have
 * returned its range; the thread reads nothing after it, and later calls fail too.
 */
#ifndef STRATA_IO_READ_AHEAD_H
#define STRATA_IO_READ_AHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#define READ_AHEAD_SLOTS 2

typedef struct read_range {
    size_t file;     /* index into the paths */
    uint64_t offset;
    size_t bytes;
} read_range;

typedef struct read_ahead read_ahead;

/* Starts reading. paths and ranges must stay valid until read_ahead_stop. */
strata_status read_ahead_start(const char *const *paths, size_t n_files, const read_range *ranges, size_t n_ranges,
                               read_ahead **out);

/* The next range's bytes (valid until the next call), in the order given. */
strata_status read_ahead_next(read_ahead *ra, const uint8_t **data);

/* Stops the thread (at any point: a range being read is finished first) and frees
 * everything; harmless on NULL. */
void read_ahead_stop(read_ahead *ra);

#endif
