/*
 * collective.h — the reductions calibration shares between participants.
 *
 * Every participant (one process, or the ranks of an MPI job: collective_mpi.c) calls each
 * reduction at the same point with the same count, also when it saw no tokens, so a rank
 * or a layer without tokens never leaves the others waiting. The values are reduced
 * element by element and every participant receives the result. The local collective,
 * for a single participant, leaves the values as they are.
 *
 * Floating-point sums are never reduced across ranks directly (their order would depend
 * on the number of ranks): each rank contributes its partial sums per calibration window
 * and every rank adds the gathered partials in window order (allgather_f64), which is the
 * order one process adds them in; or the values are integers whose sums are exact in
 * double, which any order adds alike (sum_exact_f64: GPTQ's Hessians, calib/hessian.c).
 */
#ifndef STRATA_CALIB_COLLECTIVE_H
#define STRATA_CALIB_COLLECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef struct calib_collective {
    void *ctx;
    int rank, n_ranks;     /* this participant and how many there are (0 of 1 locally) */
    /* values[i] = max over participants of values[i] (n floats). */
    strata_status (*max_f32)(void *ctx, float *values, size_t n);
    /* values[i] = sum over participants of values[i] (n integers). */
    strata_status (*sum_i64)(void *ctx, int64_t *values, size_t n);
    /* values[i] = sum over participants of values[i] (n doubles), which must be integers
     * whose partial sums stay below 2^53 in magnitude, so that every order adds them exactly;
     * on every participant (root -1) or on participant root only (the others' values are
     * then left unspecified). */
    strata_status (*sum_exact_f64)(void *ctx, double *values, size_t n, int root);
    /* all (n_ranks * n) = every participant's mine (n doubles), in rank order. */
    strata_status (*allgather_f64)(void *ctx, const double *mine, size_t n, double *all);
    /* Rank 0's out (max_rows, cols) gets the first max_rows of every participant's rows
     * (mine: rows x cols floats) taken in rank order, *out_rows how many; the others' out
     * is untouched (may be NULL). */
    strata_status (*gather_rows_f32)(void *ctx, const float *mine, int64_t rows, int64_t cols, int64_t max_rows,
                                     float *out, int64_t *out_rows);
    /* Every participant's data (n bytes) becomes participant root's (several ranks only;
     * NULL locally). */
    strata_status (*broadcast_bytes)(void *ctx, int root, void *data, size_t n);
    /* All to all (several ranks only; NULL locally): recv[k] = what participant k put in its
     * send[this participant] (n_ranks values each); and the bytes themselves: send holds this
     * participant's pieces for participants 0, 1, ... back to back (send_bytes[k] each), recv
     * receives theirs in participant order (recv_bytes[k] each, as they announced). */
    strata_status (*alltoall_i64)(void *ctx, const int64_t *send, int64_t *recv);
    strata_status (*alltoallv_bytes)(void *ctx, const void *send, const int64_t *send_bytes, void *recv,
                                     const int64_t *recv_bytes);
    /* Point to point: n bytes to participant `to`, which receives them from `from` with the
     * same n (several ranks only; NULL locally). */
    strata_status (*send_bytes)(void *ctx, int to, const void *data, size_t n);
    strata_status (*recv_bytes)(void *ctx, int from, void *data, size_t n);
    /* Stops every participant after a failure of this one (MPI_Abort); NULL locally. */
    void (*abort_all)(void *ctx);
} calib_collective;

/* The collective of a single participant. */
calib_collective calib_collective_local(void);

/* Whether this process was started by an MPI launcher (mpirun) with more than one rank,
 * and strata was built with MPI. */
bool calib_collective_mpi_launched(void);

/* The collective of MPI_COMM_WORLD (MPI initialized here when it is not yet). Every
 * failure of a collective aborts the job (MPI_ERRORS_ARE_FATAL), so no rank waits for one
 * that stopped. STRATA_ERR_UNSUPPORTED when strata was built without MPI. */
strata_status calib_collective_mpi(calib_collective *out);

/* Finalizes MPI when calib_collective_mpi initialized it. */
void calib_collective_mpi_end(void);

#endif
