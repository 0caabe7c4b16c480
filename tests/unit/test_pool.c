/*
 * test_pool.c — the thread pool visits every index exactly once, for any size and grain,
 * from nested calls too; with three threads the work is really shared, and with one it all
 * runs on the caller.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "helpers.h"
#include "kernels/pool.h"

typedef struct counts {
    atomic_int *hits;
    int64_t nested_n;
} counts;

static void count_range(void *ctx, int64_t begin, int64_t end)
{
    counts *c = ctx;
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&c->hits[i], 1);
}

static void nested_range(void *ctx, int64_t begin, int64_t end)
{
    counts *c = ctx;
    for (int64_t i = begin; i < end; i++) {
        counts inner = {.hits = c->hits + i * c->nested_n};
        pool_parallel_for(c->nested_n, 1, count_range, &inner);
    }
}

static void check_all_once(atomic_int *hits, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (atomic_load(&hits[i]) != 1) fail_msg("index %lld visited %d times", (long long)i, atomic_load(&hits[i]));
}

static void test_every_index_once(void **state)
{
    (void)state;
    const int64_t sizes[] = {1, 2, 3, 7, 64, 1000, 4097};
    const int64_t grains[] = {1, 3, 64, 10000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
            atomic_int *hits = calloc((size_t)sizes[s], sizeof *hits);
            counts c = {.hits = hits};
            pool_parallel_for(sizes[s], grains[g], count_range, &c);
            check_all_once(hits, sizes[s]);
            free(hits);
        }
    }
    pool_parallel_for(0, 1, count_range, NULL); /* nothing to do */
    assert_int_equal(pool_thread_count(), 3); /* as main() set it */
}

/* Chunks wait (up to 10 s) until a second thread has joined: a pool that ran everything on
 * one thread fails here instead of passing slowly. */
typedef struct spread {
    atomic_ulong first_thread;
    atomic_int distinct_seen; /* 1, then 2 once another thread runs a chunk */
} spread;

static void wait_for_company(void *ctx, int64_t begin, int64_t end)
{
    (void)begin;
    (void)end;
    spread *s = ctx;
    unsigned long self = (unsigned long)pthread_self(), expected = 0;
    if (!atomic_compare_exchange_strong(&s->first_thread, &expected, self) && expected != self)
        atomic_store(&s->distinct_seen, 2);
    for (int i = 0; i < 10000 && atomic_load(&s->distinct_seen) < 2; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
}

/* Marks a chunk run by a thread other than the caller. */
static void wait_for_company_once(void *ctx, int64_t begin, int64_t end)
{
    (void)begin;
    (void)end;
    spread *s = ctx;
    if ((unsigned long)pthread_self() != atomic_load(&s->first_thread)) atomic_store(&s->distinct_seen, 2);
}

static void test_work_is_shared(void **state)
{
    (void)state;
    spread s = {0};
    pool_parallel_for(64, 1, wait_for_company, &s);
    assert_int_equal(atomic_load(&s.distinct_seen), 2);
}

/* With one thread everything runs on the caller, and still visits every index once. */
static void test_one_thread(void **state)
{
    (void)state;
    strata_set_num_threads(1);
    spread s = {0};
    atomic_int *hits = calloc(1000, sizeof *hits);
    counts c = {.hits = hits};
    pool_parallel_for(1000, 7, count_range, &c);
    check_all_once(hits, 1000);
    assert_int_equal(pool_thread_count(), 1);
    atomic_store(&s.first_thread, (unsigned long)pthread_self());
    pool_parallel_for(64, 1, wait_for_company_once, &s);
    assert_int_equal(atomic_load(&s.distinct_seen), 0);
    free(hits);
    strata_set_num_threads(3);
}

static void test_nested_calls(void **state)
{
    (void)state;
    enum { OUTER = 37, INNER = 11 };
    atomic_int *hits = calloc(OUTER * INNER, sizeof *hits);
    counts c = {.hits = hits, .nested_n = INNER};
    pool_parallel_for(OUTER, 1, nested_range, &c);
    check_all_once(hits, OUTER * INNER);
    free(hits);
}

int main(void)
{
    strata_set_num_threads(3); /* more threads than this machine's cores is fine too */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_index_once),
        cmocka_unit_test(test_nested_calls),
        cmocka_unit_test(test_work_is_shared),
        cmocka_unit_test(test_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
