/*
 * read_ahead.c — see read_ahead.h.
 *
 * Range i goes into slot i % READ_AHEAD_SLOTS. The reader fills a slot once the caller
 * has handed it back (slot.state EMPTY), the caller takes it once it is FULL; one mutex
 * and one condition variable guard the states. The caller hands a slot back by asking for
 * the next range.
 */
#include "io/read_ahead.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/big_buffer.h"
#include "core/error.h"
#include "io/direct_read.h"

typedef enum { SLOT_EMPTY, SLOT_FULL } slot_state;

typedef struct slot {
    uint8_t *buffer;          /* direct_read_capacity(largest range), block-aligned */
    const uint8_t *data;      /* where the range starts in buffer */
    slot_state state;
    strata_status status;     /* of the read; STRATA_OK or the error */
    char message[1024];
} slot;

struct read_ahead {
    const char *const *paths;
    size_t n_files;
    const read_range *ranges;
    size_t n_ranges;
    slot slots[READ_AHEAD_SLOTS];
    size_t next;              /* the caller's next range */
    bool failed;              /* a read failed: the thread has stopped */
    bool stopping;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
    bool thread_started;
};

static strata_status read_range_into(const read_ahead *ra, direct_reader *file, size_t *open_file,
                                     const read_range *range, slot *s)
{
    if (range->file >= ra->n_files)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "read ahead: file %zu of %zu", range->file, ra->n_files);
    if (*open_file != range->file) {
        direct_reader_close(file);
        *open_file = (size_t)-1;
        strata_status status = direct_reader_open(file, ra->paths[range->file]);
        if (status != STRATA_OK) return status;
        *open_file = range->file;
    }
    return direct_reader_read(file, s->buffer, range->bytes, range->offset, &s->data);
}

static void *reader_main(void *arg)
{
    read_ahead *ra = arg;
    direct_reader file = {.fd = -1, .direct_fd = -1};
    size_t open_file = (size_t)-1;
    for (size_t i = 0; i < ra->n_ranges; i++) {
        slot *s = &ra->slots[i % READ_AHEAD_SLOTS];
        pthread_mutex_lock(&ra->lock);
        while (s->state != SLOT_EMPTY && !ra->stopping) pthread_cond_wait(&ra->changed, &ra->lock);
        bool stop = ra->stopping;
        pthread_mutex_unlock(&ra->lock);
        if (stop) break;
        strata_status status = read_range_into(ra, &file, &open_file, &ra->ranges[i], s);
        if (status != STRATA_OK) snprintf(s->message, sizeof s->message, "%s", strata_last_error());
        pthread_mutex_lock(&ra->lock);
        s->status = status;
        s->state = SLOT_FULL;
        pthread_cond_broadcast(&ra->changed);
        pthread_mutex_unlock(&ra->lock);
        if (status != STRATA_OK) break;
    }
    direct_reader_close(&file);
    return NULL;
}

void read_ahead_stop(read_ahead *ra)
{
    if (!ra) return;
    if (ra->thread_started) {
        pthread_mutex_lock(&ra->lock);
        ra->stopping = true;
        pthread_cond_broadcast(&ra->changed);
        pthread_mutex_unlock(&ra->lock);
        pthread_join(ra->thread, NULL);
    }
    for (int k = 0; k < READ_AHEAD_SLOTS; k++) free(ra->slots[k].buffer);
    pthread_cond_destroy(&ra->changed);
    pthread_mutex_destroy(&ra->lock);
    free(ra);
}

strata_status read_ahead_start(const char *const *paths, size_t n_files, const read_range *ranges, size_t n_ranges,
                               read_ahead **out)
{
    *out = NULL;
    read_ahead *ra = calloc(1, sizeof *ra);
    if (!ra) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    *ra = (read_ahead){.paths = paths, .n_files = n_files, .ranges = ranges, .n_ranges = n_ranges};
    pthread_mutex_init(&ra->lock, NULL);
    pthread_cond_init(&ra->changed, NULL);
    size_t largest = 0;
    for (size_t i = 0; i < n_ranges; i++)
        if (ranges[i].bytes > largest) largest = ranges[i].bytes;
    size_t capacity = direct_read_capacity(largest);
    for (int k = 0; k < READ_AHEAD_SLOTS; k++) {
        /* big_buffer_alloc aligns buffers of 8 MiB and more to 2 MiB; smaller ones get
         * the block alignment direct reads need from posix_memalign. */
        void *p = NULL;
        if (capacity >= ((size_t)8 << 20)) p = big_buffer_alloc(capacity);
        else if (posix_memalign(&p, DIRECT_READ_ALIGN, capacity) != 0) p = NULL;
        ra->slots[k].buffer = p;
        if (!p) {
            read_ahead_stop(ra);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a %zu-byte read buffer", capacity);
        }
    }
    if (pthread_create(&ra->thread, NULL, reader_main, ra) != 0) {
        read_ahead_stop(ra);
        return strata_fail(STRATA_ERR_INTERNAL, "cannot start the reading thread");
    }
    ra->thread_started = true;
    *out = ra;
    return STRATA_OK;
}

strata_status read_ahead_next(read_ahead *ra, const uint8_t **data)
{
    if (ra->failed) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "read ahead: stopped by an earlier failed read");
    if (ra->next >= ra->n_ranges)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "read ahead: all %zu ranges were read", ra->n_ranges);
    pthread_mutex_lock(&ra->lock);
    if (ra->next > 0) { /* the previous range is handed back */
        ra->slots[(ra->next - 1) % READ_AHEAD_SLOTS].state = SLOT_EMPTY;
        pthread_cond_broadcast(&ra->changed);
    }
    slot *s = &ra->slots[ra->next % READ_AHEAD_SLOTS];
    while (s->state != SLOT_FULL) pthread_cond_wait(&ra->changed, &ra->lock);
    pthread_mutex_unlock(&ra->lock);
    ra->next++;
    if (s->status != STRATA_OK) {
        ra->failed = true;
        return strata_fail(s->status, "%s", s->message);
    }
    *data = s->data;
    return STRATA_OK;
}
