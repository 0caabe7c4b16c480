/*
 * pool.h — the project's one thread pool.
 *
 * Work is split into index ranges handed to the workers and to the calling thread. Every
 * kernel that uses it computes each output element from its own inputs only, so results
 * do not depend on the number of threads. Each call runs on strata_set_num_threads()
 * threads as set at that moment (default: the CPUs this process may run on): workers are
 * started when first needed and kept, and a call that asks for fewer leaves the rest
 * asleep. The pool is
 * the only source of parallelism besides the GEMM library: gemm.c gives oneDNN's team the
 * pool's thread count and products run outside pool tasks (the workers sleep meanwhile),
 * so cores are never oversubscribed.
 */
#ifndef STRATA_KERNELS_POOL_H
#define STRATA_KERNELS_POOL_H

#include <stdbool.h>
#include <stdint.h>

/* fn(ctx, begin, end) processes items [begin, end). */
typedef void (*pool_task_fn)(void *ctx, int64_t begin, int64_t end);

/* Runs fn over [0, n) in chunks of at least grain items, in parallel, and returns when
 * all are done. Concurrent callers take turns; calls from inside a task run serially. */
void pool_parallel_for(int64_t n, int64_t grain, pool_task_fn fn, void *ctx);

/* True on a thread that is running a pool task. */
bool pool_in_task(void);

/* Threads the next call uses (including the caller); starts workers it lacks. */
int pool_thread_count(void);

#endif
