/*
 * test_collective.c — the reductions calibration shares between participants
 * (calib/collective.h). Run plainly it checks the single-participant collective; run under
 * mpirun (tests/CMakeLists.txt: -np 2 and -np 3) it checks the MPI one on every rank: MAX
 * of floats, SUM of 64-bit integers past 2^32, the exact SUM of integer-valued doubles up
 * to 2^52, the gathered per-rank doubles in rank order, each rank contributing values only
 * it has, bytes broadcast from the last rank, all-to-all counts and bytes, and bytes sent
 * from every rank to rank 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/collective.h"
#include "helpers.h"

static void local_collective(void **state)
{
    (void)state;
    calib_collective c = calib_collective_local();
    assert_int_equal(c.rank, 0);
    assert_int_equal(c.n_ranks, 1);
    float f[2] = {1.5f, -2.0f};
    int64_t i[2] = {INT64_C(5) << 40, -3};
    double mine[2] = {0.25, 7.0}, all[2] = {0}, exact[2] = {0x1p52, -3};
    assert_int_equal(c.sum_exact_f64(c.ctx, exact, 2, -1), STRATA_OK);
    assert_true(exact[0] == 0x1p52 && exact[1] == -3);
    assert_true(!c.send_bytes && !c.recv_bytes && !c.broadcast_bytes && !c.alltoall_i64 && !c.alltoallv_bytes);
    assert_int_equal(c.max_f32(c.ctx, f, 2), STRATA_OK);
    assert_int_equal(c.sum_i64(c.ctx, i, 2), STRATA_OK);
    assert_int_equal(c.allgather_f64(c.ctx, mine, 2, all), STRATA_OK);
    assert_true(f[0] == 1.5f && f[1] == -2.0f);
    assert_true(i[0] == INT64_C(5) << 40 && i[1] == -3);
    assert_memory_equal(all, mine, sizeof mine);
}

static void mpi_collective(void **state)
{
    (void)state;
    if (!calib_collective_mpi_launched()) {
        calib_collective c;
        if (!strata_mpi_library()) {
            assert_int_equal(calib_collective_mpi(&c), STRATA_ERR_UNSUPPORTED);
            ASSERT_ERROR_MENTIONS("built without MPI");
        }
        skip(); /* not started by mpirun: tests/CMakeLists.txt runs this under it */
    }
    calib_collective c;
    assert_int_equal(calib_collective_mpi(&c), STRATA_OK);
    assert_true(c.n_ranks > 1 && c.rank >= 0 && c.rank < c.n_ranks);
    /* Each rank holds the maximum in a different slot; the empty rank (last) holds -inf-like values. */
    float f[3] = {(float)c.rank, -(float)c.rank, c.rank == 1 ? 9.5f : 0.25f};
    assert_int_equal(c.max_f32(c.ctx, f, 3), STRATA_OK);
    assert_true(f[0] == (float)(c.n_ranks - 1) && f[1] == 0.0f && f[2] == 9.5f);
    int64_t i[2] = {(INT64_C(1) << 33) + c.rank, c.rank == 0 ? 0 : 1};
    assert_int_equal(c.sum_i64(c.ctx, i, 2), STRATA_OK);
    int64_t ranks_sum = (int64_t)c.n_ranks * (c.n_ranks - 1) / 2;
    assert_true(i[0] == (INT64_C(1) << 33) * c.n_ranks + ranks_sum && i[1] == c.n_ranks - 1);
    double mine[2] = {c.rank + 0.5, -c.rank * 1e300};
    double *all = malloc((size_t)c.n_ranks * sizeof mine);
    assert_int_equal(c.allgather_f64(c.ctx, mine, 2, all), STRATA_OK);
    for (int r = 0; r < c.n_ranks; r++) assert_true(all[2 * r] == r + 0.5 && all[2 * r + 1] == -r * 1e300);
    free(all);
    /* Integers whose sum is exact in double, however the ranks' values are combined. */
    double exact[2] = {0x1p51 / c.n_ranks * 2 - c.rank, c.rank == 0 ? -0x1p40 : 1};
    double to_last[2] = {exact[0], exact[1]};
    assert_int_equal(c.sum_exact_f64(c.ctx, exact, 2, -1), STRATA_OK);
    assert_true(exact[0] == (0x1p51 / c.n_ranks * 2) * c.n_ranks - (double)ranks_sum);
    assert_true(exact[1] == -0x1p40 + (c.n_ranks - 1));
    assert_int_equal(c.sum_exact_f64(c.ctx, to_last, 2, c.n_ranks - 1), STRATA_OK);
    if (c.rank == c.n_ranks - 1) assert_memory_equal(to_last, exact, sizeof exact);
    /* The last rank's bytes to every rank. */
    char shout[16] = "";
    if (c.rank == c.n_ranks - 1) snprintf(shout, sizeof shout, "from %d", c.rank);
    assert_int_equal(c.broadcast_bytes(c.ctx, c.n_ranks - 1, shout, sizeof shout), STRATA_OK);
    char expected[16];
    snprintf(expected, sizeof expected, "from %d", c.n_ranks - 1);
    assert_string_equal(shout, expected);
    /* All to all: rank r sends k + 1 bytes of value 10 r + k to rank k. */
    int64_t *to = malloc(2 * (size_t)c.n_ranks * sizeof *to), *from = to + c.n_ranks;
    for (int k = 0; k < c.n_ranks; k++) to[k] = k + 1;
    assert_int_equal(c.alltoall_i64(c.ctx, to, from), STRATA_OK);
    for (int k = 0; k < c.n_ranks; k++) assert_int_equal(from[k], c.rank + 1);
    unsigned char out_bytes[64], in_bytes[64], *p = out_bytes;
    for (int k = 0; k < c.n_ranks; k++)
        for (int j = 0; j <= k; j++) *p++ = (unsigned char)(10 * c.rank + k);
    assert_int_equal(c.alltoallv_bytes(c.ctx, out_bytes, to, in_bytes, from), STRATA_OK);
    for (int k = 0; k < c.n_ranks; k++)
        for (int j = 0; j <= c.rank; j++) assert_int_equal(in_bytes[k * (c.rank + 1) + j], 10 * k + c.rank);
    free(to);
    /* Each rank's bytes to rank 0, received in rank order. */
    char text[32];
    snprintf(text, sizeof text, "rank %d", c.rank);
    if (c.rank != 0) assert_int_equal(c.send_bytes(c.ctx, 0, text, sizeof text), STRATA_OK);
    for (int r = 1; c.rank == 0 && r < c.n_ranks; r++) {
        char got[32], want[32];
        snprintf(want, sizeof want, "rank %d", r);
        assert_int_equal(c.recv_bytes(c.ctx, r, got, sizeof got), STRATA_OK);
        assert_string_equal(got, want);
    }
    calib_collective_mpi_end();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(local_collective),
        cmocka_unit_test(mpi_collective),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
