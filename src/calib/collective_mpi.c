/*
 * collective_mpi.c — the collective of an MPI job (see collective.h); the one file that
 * talks to Open MPI. Built without MPI, it says so.
 *
 * Reductions go through MPI_Allreduce on MPI_COMM_WORLD: MAX of floats, SUM of 64-bit
 * integers and SUM of integer-valued doubles are exact in any order. Floating-point sums are not reduced here; their
 * per-window partials are gathered (MPI_Allgather) and added in window order by the
 * caller. MPI_COMM_WORLD keeps MPI_ERRORS_ARE_FATAL, so a collective that fails aborts
 * every rank instead of leaving them waiting, and Open MPI's mpirun stops the whole job
 * when one rank exits abnormally.
 *
 * A rank that hangs (stopped, stuck on a dead disk) would leave the others waiting in a
 * collective for ever: a watchdog thread ends this rank when one collective has waited
 * longer than STRATA_MPI_TIMEOUT seconds (default 3600; it covers the slowest rank's
 * layer too), printing why, and mpirun then stops the job. It calls no MPI function, so
 * MPI's single-threaded mode stays enough.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calib/collective.h"
#include "core/error.h"

int strata_mpi_rank(void)
{
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank) rank = getenv("PMI_RANK");
    return calib_collective_mpi_launched() && rank ? atoi(rank) : 0;
}

#ifdef STRATA_HAVE_MPI
#include <mpi.h>

static bool initialized_here;
static double timeout_seconds = 3600;
static _Atomic double deadline;   /* monotonic seconds a waiting collective may last until; 0: none waits */
static pthread_t watchdog;
static atomic_bool watchdog_running;

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void *watch(void *arg)
{
    (void)arg;
    while (atomic_load(&watchdog_running)) {
        double until = atomic_load(&deadline);
        if (until > 0 && now_seconds() > until) {
            int rank = 0;
            const char *r = getenv("OMPI_COMM_WORLD_RANK");
            if (r) rank = atoi(r);
            fprintf(stderr, "strata: error: rank %d: the other ranks have not answered a collective for %g s "
                            "(STRATA_MPI_TIMEOUT); stopping the job\n", rank, timeout_seconds);
            _exit(1);
        }
        usleep(100 * 1000);
    }
    return NULL;
}

/* Brackets one collective for the watchdog. */
static void waiting(void) { atomic_store(&deadline, now_seconds() + timeout_seconds); }
static void answered(void) { atomic_store(&deadline, 0.0); }

static strata_status mpi_max_f32(void *ctx, float *values, size_t n)
{
    (void)ctx;
    if (n > (size_t)INT32_MAX) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "collective of %zu values", n);
    waiting();
    MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_FLOAT, MPI_MAX, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

static strata_status mpi_sum_i64(void *ctx, int64_t *values, size_t n)
{
    (void)ctx;
    if (n > (size_t)INT32_MAX) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "collective of %zu values", n);
    waiting();
    MPI_Allreduce(MPI_IN_PLACE, values, (int)n, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

/* In pieces of at most 2^28 values (MPI counts are int). */
static strata_status mpi_sum_exact_f64(void *ctx, double *values, size_t n, int root)
{
    (void)ctx;
    const size_t piece = (size_t)1 << 28;
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    waiting();
    for (size_t i = 0; i < n; i += piece) {
        int count = (int)(n - i < piece ? n - i : piece);
        if (root < 0) MPI_Allreduce(MPI_IN_PLACE, values + i, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        else MPI_Reduce(rank == root ? MPI_IN_PLACE : values + i, values + i, count, MPI_DOUBLE, MPI_SUM, root,
                        MPI_COMM_WORLD);
    }
    answered();
    return STRATA_OK;
}

static strata_status mpi_allgather_f64(void *ctx, const double *mine, size_t n, double *all)
{
    (void)ctx;
    if (n > (size_t)INT32_MAX) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "collective of %zu values", n);
    waiting();
    MPI_Allgather(mine, (int)n, MPI_DOUBLE, all, (int)n, MPI_DOUBLE, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

static strata_status mpi_gather_rows_f32(void *ctx, const float *mine, int64_t rows, int64_t cols, int64_t max_rows,
                                         float *out, int64_t *out_rows)
{
    (void)ctx;
    int rank = 0, n_ranks = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    int64_t *counts = malloc((size_t)n_ranks * sizeof *counts);
    if (!counts) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    waiting();
    MPI_Allgather(&rows, 1, MPI_INT64_T, counts, 1, MPI_INT64_T, MPI_COMM_WORLD);
    /* Every rank works out the same takes: the first max_rows rows in rank order. */
    int64_t taken = 0, mine_take = 0;
    for (int r = 0; r < n_ranks; r++) {
        int64_t take = counts[r] < max_rows - taken ? counts[r] : max_rows - taken;
        if (take < 0) take = 0;
        if (r == rank) mine_take = take;
        if (rank == 0 && r == 0 && take > 0 && out != mine) memmove(out, mine, (size_t)(take * cols) * sizeof *out);
        if (rank == 0 && r > 0 && take > 0)
            MPI_Recv(out + taken * cols, (int)(take * cols), MPI_FLOAT, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        taken += take;
    }
    if (rank != 0 && mine_take > 0) MPI_Send(mine, (int)(mine_take * cols), MPI_FLOAT, 0, 0, MPI_COMM_WORLD);
    answered();
    if (rank == 0) *out_rows = taken;
    free(counts);
    return STRATA_OK;
}

/* In pieces of at most 1 GiB (MPI counts are int). */
static strata_status mpi_broadcast_bytes(void *ctx, int root, void *data, size_t n)
{
    (void)ctx;
    const size_t piece = (size_t)1 << 30;
    waiting();
    for (size_t i = 0; i < n; i += piece)
        MPI_Bcast((char *)data + i, (int)(n - i < piece ? n - i : piece), MPI_BYTE, root, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

static strata_status mpi_send_bytes(void *ctx, int to, const void *data, size_t n)
{
    (void)ctx;
    const size_t piece = (size_t)1 << 30;
    waiting();
    for (size_t i = 0; i < n; i += piece)
        MPI_Send((const char *)data + i, (int)(n - i < piece ? n - i : piece), MPI_BYTE, to, 1, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

static strata_status mpi_recv_bytes(void *ctx, int from, void *data, size_t n)
{
    (void)ctx;
    const size_t piece = (size_t)1 << 30;
    waiting();
    for (size_t i = 0; i < n; i += piece)
        MPI_Recv((char *)data + i, (int)(n - i < piece ? n - i : piece), MPI_BYTE, from, 1, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
    answered();
    return STRATA_OK;
}

static strata_status mpi_alltoall_i64(void *ctx, const int64_t *send, int64_t *recv)
{
    (void)ctx;
    waiting();
    MPI_Alltoall(send, 1, MPI_INT64_T, recv, 1, MPI_INT64_T, MPI_COMM_WORLD);
    answered();
    return STRATA_OK;
}

static strata_status mpi_alltoallv_bytes(void *ctx, const void *send, const int64_t *send_bytes, void *recv,
                                         const int64_t *recv_bytes)
{
    (void)ctx;
    int n_ranks = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &n_ranks);
    int *counts = malloc(4 * (size_t)n_ranks * sizeof *counts);
    if (!counts) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    int *send_counts = counts, *send_offsets = counts + n_ranks, *recv_counts = counts + 2 * n_ranks,
        *recv_offsets = counts + 3 * n_ranks;
    int64_t sent = 0, received = 0;
    for (int k = 0; k < n_ranks; k++) {
        send_counts[k] = (int)send_bytes[k];
        recv_counts[k] = (int)recv_bytes[k];
        send_offsets[k] = (int)sent;
        recv_offsets[k] = (int)received;
        sent += send_bytes[k];
        received += recv_bytes[k];
    }
    if (sent > INT32_MAX || received > INT32_MAX) {
        free(counts);
        return strata_fail(STRATA_ERR_UNSUPPORTED, "an exchange of %lld bytes (MPI counts stop at 2 GiB)",
                           (long long)(sent > received ? sent : received));
    }
    waiting();
    MPI_Alltoallv(send, send_counts, send_offsets, MPI_BYTE, recv, recv_counts, recv_offsets, MPI_BYTE, MPI_COMM_WORLD);
    answered();
    free(counts);
    return STRATA_OK;
}

static void mpi_abort_all(void *ctx)
{
    (void)ctx;
    MPI_Abort(MPI_COMM_WORLD, 1);
}

bool calib_collective_mpi_launched(void)
{
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (!size) size = getenv("PMI_SIZE");
    return size && atoi(size) > 1;
}

strata_status calib_collective_mpi(calib_collective *out)
{
    int ready = 0;
    MPI_Initialized(&ready);
    if (!ready) {
        if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return strata_fail(STRATA_ERR_IO, "MPI_Init failed");
        initialized_here = true;
    }
    const char *timeout = getenv("STRATA_MPI_TIMEOUT");
    if (timeout && atof(timeout) > 0) timeout_seconds = atof(timeout);
    if (!atomic_load(&watchdog_running)) {
        atomic_store(&watchdog_running, true);
        if (pthread_create(&watchdog, NULL, watch, NULL) != 0) atomic_store(&watchdog_running, false);
    }
    *out = (calib_collective){.max_f32 = mpi_max_f32, .sum_i64 = mpi_sum_i64,
                              .sum_exact_f64 = mpi_sum_exact_f64, .allgather_f64 = mpi_allgather_f64,
                              .gather_rows_f32 = mpi_gather_rows_f32, .broadcast_bytes = mpi_broadcast_bytes,
                              .alltoall_i64 = mpi_alltoall_i64, .alltoallv_bytes = mpi_alltoallv_bytes,
                              .send_bytes = mpi_send_bytes,
                              .recv_bytes = mpi_recv_bytes, .abort_all = mpi_abort_all};
    MPI_Comm_rank(MPI_COMM_WORLD, &out->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &out->n_ranks);
    return STRATA_OK;
}

void calib_collective_mpi_end(void)
{
    if (atomic_load(&watchdog_running)) {
        atomic_store(&watchdog_running, false);
        pthread_join(watchdog, NULL);
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (initialized_here && !finalized) MPI_Finalize();
    initialized_here = false;
}

const char *strata_mpi_library(void)
{
    static char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    if (!version[0] && MPI_Get_library_version(version, &length) == MPI_SUCCESS) {
        char *newline = strchr(version, '\n'); /* "Open MPI v4.1.4, package: ..." : the first line */
        char *comma = strchr(version, ',');
        if (comma) *comma = '\0';
        if (newline) *newline = '\0';
    }
    return version;
}

#else

bool calib_collective_mpi_launched(void) { return false; }

strata_status calib_collective_mpi(calib_collective *out)
{
    *out = calib_collective_local();
    return strata_fail(STRATA_ERR_UNSUPPORTED, "this strata was built without MPI (see strata --version); install "
                       "libopenmpi-dev and rebuild");
}

void calib_collective_mpi_end(void) {}

const char *strata_mpi_library(void) { return NULL; }

#endif
