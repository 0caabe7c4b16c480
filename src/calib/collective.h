/*
 * collective.h — the reductions calibration shares between participants.
 *
 * Every participant (one process today; MPI ranks later) calls each reduction at the
 * same point with the same count, also when it saw no tokens, so a rank or a layer
 * without tokens never leaves the others waiting. The values are reduced element by
 * element and every participant receives the result. The local collective, for a single
 * participant, leaves the values as they are.
 */
#ifndef STRATA_CALIB_COLLECTIVE_H
#define STRATA_CALIB_COLLECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef struct calib_collective {
    void *ctx;
    /* values[i] = max over participants of values[i] (n floats). */
    strata_status (*max_f32)(void *ctx, float *values, size_t n);
    /* values[i] = sum over participants of values[i] (n integers). */
    strata_status (*sum_i64)(void *ctx, int64_t *values, size_t n);
} calib_collective;

/* The collective of a single participant. */
calib_collective calib_collective_local(void);

#endif
