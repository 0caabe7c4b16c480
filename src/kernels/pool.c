/*
 * pool.c — a fixed set of worker threads sharing one job at a time (see pool.h).
 *
 * A job is (fn, ctx, n, chunk); workers and the caller claim chunks with an atomic
 * counter until none are left. The caller waits for the last chunk to finish. Workers
 * sleep on a condition variable between jobs.
 */
#include "kernels/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "strata.h"

enum { MAX_THREADS = 256 };

typedef struct job {
    pool_task_fn fn;
    void *ctx;
    int64_t n, chunk;
    atomic_int_fast64_t next;      /* first unclaimed item */
    atomic_int_fast64_t remaining; /* items not yet finished */
    int helpers;                   /* workers that may join (the thread count asked for, less the caller) */
    int joined;                    /* workers that did (under pool.lock) */
} job;
/* The caller's job lives on its stack: it may return only when every item is done and no
 * worker still holds the job (busy == 0). */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    pthread_t threads[MAX_THREADS];
    int n_threads;             /* started, including the caller */
    uint64_t generation;       /* bumped for every job */
    job *current;
    int busy;                  /* workers inside the current job */
    bool started;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};

static pthread_mutex_t submit_lock = PTHREAD_MUTEX_INITIALIZER; /* one job at a time */
static atomic_int requested_threads;
static _Thread_local bool inside_job;

void strata_set_num_threads(int n) { atomic_store(&requested_threads, n > 0 ? (n < MAX_THREADS ? n : MAX_THREADS) : 0); }

static int default_threads(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void run_chunks(job *j)
{
    inside_job = true;
    for (;;) {
        int64_t begin = atomic_fetch_add(&j->next, j->chunk);
        if (begin >= j->n) break;
        int64_t end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
        j->fn(j->ctx, begin, end);
        atomic_fetch_sub(&j->remaining, end - begin);
    }
    inside_job = false;
}

static void *worker(void *arg)
{
    (void)arg;
    uint64_t seen = 0;
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (pool.generation == seen) pthread_cond_wait(&pool.wake, &pool.lock);
        seen = pool.generation;
        job *j = pool.current;
        if (!j || j->joined >= j->helpers) continue; /* fewer threads asked for than started */
        j->joined++;
        pool.busy++;
        pthread_mutex_unlock(&pool.lock);
        run_chunks(j);
        pthread_mutex_lock(&pool.lock);
        pool.busy--;
        pthread_cond_broadcast(&pool.done);
    }
    return NULL;
}

/* Starts workers until n threads (with the caller) exist; they are kept for later calls. */
static void start_workers(int n)
{
    if (!pool.started) pool.n_threads = 1;
    for (int i = pool.n_threads; i < n; i++) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&pool.threads[pool.n_threads], &attr, worker, NULL) == 0) pool.n_threads++;
        pthread_attr_destroy(&attr);
    }
    pool.started = true;
}

bool pool_in_task(void) { return inside_job; }

int pool_thread_count(void)
{
    int wanted = atomic_load(&requested_threads);
    if (!wanted) wanted = default_threads();
    if (wanted > MAX_THREADS) wanted = MAX_THREADS;
    pthread_mutex_lock(&pool.lock);
    if (!pool.started || wanted > pool.n_threads) start_workers(wanted);
    int n = wanted < pool.n_threads ? wanted : pool.n_threads;
    pthread_mutex_unlock(&pool.lock);
    return n;
}

void pool_parallel_for(int64_t n, int64_t grain, pool_task_fn fn, void *ctx)
{
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int threads = pool_thread_count();
    if (inside_job || threads == 1 || n <= grain) {
        fn(ctx, 0, n);
        return;
    }
    /* About four chunks per thread balances uneven rows without much overhead. */
    int64_t chunk = (n + 4 * threads - 1) / (4 * threads);
    if (chunk < grain) chunk = grain;
    pthread_mutex_lock(&submit_lock);
    job j = {.fn = fn, .ctx = ctx, .n = n, .chunk = chunk, .helpers = threads - 1};
    atomic_init(&j.next, 0);
    atomic_init(&j.remaining, n);
    pthread_mutex_lock(&pool.lock);
    pool.current = &j;
    pool.generation++;
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);

    run_chunks(&j);

    pthread_mutex_lock(&pool.lock);
    while (atomic_load(&j.remaining) > 0 || pool.busy > 0) pthread_cond_wait(&pool.done, &pool.lock);
    pool.current = NULL;
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_unlock(&submit_lock);
}
