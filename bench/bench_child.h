/*
 * bench_child.h — a benchmark's measured run in a child process: the child's peak RSS
 * (getrusage) is the run's alone, and the child sends a small reply (its own counters)
 * back through a pipe.
 */
#ifndef STRATA_BENCH_CHILD_H
#define STRATA_BENCH_CHILD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_clock.h"

/* Fills reply (reply_size bytes, zeroed first) and says whether the run succeeded. */
typedef bool (*child_job)(void *ctx, void *reply);

/* Runs job in a child; returns the child's peak RSS in bytes (0 when it failed), its wall
 * time in *seconds and its reply (zeros when none came). */
static inline uint64_t run_child(child_job job, void *ctx, void *reply, size_t reply_size, double *seconds)
{
    int fds[2];
    if (pipe(fds) != 0) return 0;
    double start = now();
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        memset(reply, 0, reply_size);
        bool ok = job(ctx, reply);
        if (write(fds[1], reply, reply_size) != (ssize_t)reply_size) _exit(1);
        _exit(ok ? 0 : 1);
    }
    close(fds[1]);
    if (read(fds[0], reply, reply_size) != (ssize_t)reply_size) memset(reply, 0, reply_size);
    close(fds[0]);
    int wstatus = 0;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &wstatus, 0, &usage) < 0 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) return 0;
    *seconds = now() - start;
    return (uint64_t)usage.ru_maxrss << 10;
}

#endif
