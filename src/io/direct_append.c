/*
 * direct_append.c — see direct_append.h.
 *
 * The stages form a ring. The caller fills stage `filling`; when it is full it is queued
 * (its file offset and length fixed) and the caller moves to the next, waiting while that
 * one is still queued. The thread writes queued stages in ring order and hands each back.
 * One mutex and one condition variable guard the queued flags, the error and stopping.
 */
#include "io/direct_append.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "io/fsutil.h"

typedef struct stage {
    uint8_t *bytes;    /* (DIRECT_APPEND_STAGE) block-aligned */
    uint64_t offset;   /* where it goes in the file, set when queued */
    size_t length;     /* whole blocks, set when queued */
    bool queued;
} stage;

struct direct_append {
    int fd;
    uint64_t start;              /* file offset of the first byte appended */
    uint64_t appended;           /* bytes appended by the caller */
    bool direct;                 /* staging and the thread; false: plain writes */
    stage stages[DIRECT_APPEND_STAGES];
    int filling;                 /* the caller's stage */
    size_t staged;               /* bytes in it */
    uint64_t queued_bytes;       /* bytes in stages queued so far (whole stages) */
    int writing;                 /* the thread's next stage */
    int error;                   /* errno of the first failed write, else 0 */
    bool stopping;
    bool thread_started;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed;
};

static bool set_direct(int fd, bool on)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return false;
    return fcntl(fd, F_SETFL, on ? flags | O_DIRECT : flags & ~O_DIRECT) == 0;
}

/* A device that refuses the alignment (EINVAL) gets the stage as a plain write, and plain
 * writes from then on. */
static bool write_stage(const direct_append *a, const stage *s)
{
    if (fd_pwrite_all(a->fd, s->bytes, s->length, s->offset)) return true;
    if (errno != EINVAL || !set_direct(a->fd, false)) return false;
    return fd_pwrite_all(a->fd, s->bytes, s->length, s->offset);
}

static void *writer_main(void *arg)
{
    direct_append *a = arg;
    pthread_mutex_lock(&a->lock);
    for (;;) {
        stage *s = &a->stages[a->writing];
        while (!s->queued && !a->stopping) pthread_cond_wait(&a->changed, &a->lock);
        if (!s->queued) break;
        bool skip = a->error != 0; /* after a failure nothing more is written */
        pthread_mutex_unlock(&a->lock);
        bool ok = skip || write_stage(a, s);
        int err = errno;
        pthread_mutex_lock(&a->lock);
        if (!ok && a->error == 0) a->error = err ? err : EIO;
        s->queued = false;
        a->writing = (a->writing + 1) % DIRECT_APPEND_STAGES;
        pthread_cond_broadcast(&a->changed);
    }
    pthread_mutex_unlock(&a->lock);
    return NULL;
}

static void stop_thread(direct_append *a)
{
    if (!a->thread_started) return;
    pthread_mutex_lock(&a->lock);
    a->stopping = true;
    pthread_cond_broadcast(&a->changed);
    pthread_mutex_unlock(&a->lock);
    pthread_join(a->thread, NULL);
    a->thread_started = false;
}

static void free_stages(direct_append *a)
{
    for (int k = 0; k < DIRECT_APPEND_STAGES; k++) {
        if (a->stages[k].bytes) munmap(a->stages[k].bytes, DIRECT_APPEND_STAGE);
        a->stages[k].bytes = NULL;
    }
}

void direct_append_close(direct_append *a)
{
    if (!a) return;
    stop_thread(a);
    free_stages(a);
    pthread_cond_destroy(&a->changed);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

direct_append *direct_append_open(int fd, uint64_t start)
{
    direct_append *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->fd = fd;
    a->start = start;
    pthread_mutex_init(&a->lock, NULL);
    pthread_cond_init(&a->changed, NULL);
    if (start % DIRECT_APPEND_ALIGN != 0 || !set_direct(fd, true)) return a; /* plain writes */
    /* Mapped, not malloc'd: page-aligned, and given back to the system when the shard
     * ends (malloc keeps freed 8 MiB blocks for later, and a writer of many shards grew
     * by the ring per shard). */
    for (int k = 0; k < DIRECT_APPEND_STAGES; k++) {
        void *bytes = mmap(NULL, DIRECT_APPEND_STAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (bytes == MAP_FAILED) {
            int err = errno;
            (void)set_direct(fd, false);
            direct_append_close(a);
            errno = err;
            return NULL;
        }
        a->stages[k].bytes = bytes;
    }
    int err = pthread_create(&a->thread, NULL, writer_main, a);
    if (err != 0) {
        (void)set_direct(fd, false);
        direct_append_close(a);
        errno = err;
        return NULL;
    }
    a->thread_started = true;
    a->direct = true;
    return a;
}

/* Queues the first length bytes of the caller's stage and moves to the next stage once the
 * thread has written it; false with errno set once a write has failed. */
static bool queue_stage(direct_append *a, size_t length)
{
    pthread_mutex_lock(&a->lock);
    stage *s = &a->stages[a->filling];
    s->offset = a->start + a->queued_bytes;
    s->length = length;
    s->queued = true;
    a->queued_bytes += length;
    a->filling = (a->filling + 1) % DIRECT_APPEND_STAGES;
    a->staged = 0;
    pthread_cond_broadcast(&a->changed);
    while (a->stages[a->filling].queued && a->error == 0) pthread_cond_wait(&a->changed, &a->lock);
    int err = a->error;
    pthread_mutex_unlock(&a->lock);
    if (err) errno = err;
    return err == 0;
}

bool direct_append_write(direct_append *a, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (!a->direct) {
        if (!fd_pwrite_all(a->fd, p, n, a->start + a->appended)) return false;
        a->appended += n;
        return true;
    }
    while (n > 0) {
        size_t take = DIRECT_APPEND_STAGE - a->staged < n ? DIRECT_APPEND_STAGE - a->staged : n;
        memcpy(a->stages[a->filling].bytes + a->staged, p, take);
        a->staged += take;
        a->appended += take;
        p += take;
        n -= take;
        if (a->staged == DIRECT_APPEND_STAGE && !queue_stage(a, DIRECT_APPEND_STAGE)) return false;
    }
    return true;
}

bool direct_append_flush(direct_append *a)
{
    if (!a->direct) return true;
    /* The tail as whole blocks, zero-padded; the file is cut back below. */
    size_t tail = a->staged, padded = (tail + DIRECT_APPEND_ALIGN - 1) / DIRECT_APPEND_ALIGN * DIRECT_APPEND_ALIGN;
    memset(a->stages[a->filling].bytes + tail, 0, padded - tail);
    if (padded > 0 && !queue_stage(a, padded)) return false;
    stop_thread(a); /* writes whatever is queued first */
    if (a->error) {
        errno = a->error;
        return false;
    }
    free_stages(a);
    a->direct = false;
    return ftruncate(a->fd, (off_t)(a->start + a->appended)) == 0 && set_direct(a->fd, false);
}
