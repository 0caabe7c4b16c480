/*
 * expert_parallel.c — routed experts spread over the ranks (see expert_parallel.h).
 *
 * One exchange per chunk, in four steps:
 *   1. the chunk's (token, slot) pairs, ordered by (expert, token), become records
 *      (token in the whole matrix, routing weight, expert: F64 [3], then the row, F32
 *      [hidden]); ordered so, they are grouped by the rank holding the expert;
 *   2. MPI_Alltoallv sends each group to its rank. Records arrive from ranks 0, 1, ... in
 *      turn, and rank shares are contiguous in window order, so an expert's records, taken
 *      in arrival order, are its rows in token order: the rows one process gives it;
 *   3. each expert runs over its rows, whole windows at a time (a window's rows are one
 *      Gram product for GPTQ, calib/hessian.c), and its outputs go back in the order the
 *      records came;
 *   4. the chunk's rank adds the outputs it gets back, in its (expert, token) order, with
 *      moe_add_weighted: a token's experts in ascending order, as moe_run_experts adds them.
 * The GEMMs' rows do not depend on how many rows share a product (docs/DECISIONS.md), so
 * the layer output, the observations and the Hessians are one process's bytes.
 */
#include "pipeline/expert_parallel.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "forward/moe.h"

void expert_parallel_share(int n_experts, int rank, int n_ranks, int *first, int *end)
{
    *first = (int)((int64_t)n_experts * rank / n_ranks);
    *end = (int)((int64_t)n_experts * (rank + 1) / n_ranks);
}

int expert_parallel_holder(int e, int n_experts, int n_ranks)
{
    for (int r = 0; r < n_ranks; r++) {
        int first, end;
        expert_parallel_share(n_experts, r, n_ranks, &first, &end);
        if (e < end) return r;
    }
    return n_ranks - 1;
}

/* *buffer holds at least bytes (grown, contents not kept). */
static bool reserve(void **buffer, size_t *capacity, size_t bytes)
{
    if (bytes <= *capacity) return true;
    free(*buffer);
    *buffer = malloc(bytes);
    *capacity = *buffer ? bytes : 0;
    return *buffer != NULL;
}

static strata_status grow(expert_exchange *x, size_t sent_bytes, size_t received_bytes, size_t rows, size_t order)
{
    int64_t H = x->lw->arch->hidden_size;
    size_t rows_capacity = x->rows_capacity, order_capacity = x->order_capacity;
    bool ok = reserve((void **)&x->sent, &x->sent_capacity, sent_bytes + 1) &&
              reserve((void **)&x->received, &x->received_capacity, received_bytes + 1);
    if (ok && rows + 1 > rows_capacity) {
        free(x->rows);
        free(x->outputs);
        free(x->returned);
        free(x->tokens);
        free(x->weights);
        size_t n = rows + 1;
        x->rows = malloc(n * (size_t)H * sizeof *x->rows);
        x->outputs = malloc(n * (size_t)H * sizeof *x->outputs);
        x->returned = malloc(n * (size_t)H * sizeof *x->returned);
        x->tokens = malloc(n * sizeof *x->tokens);
        x->weights = malloc(n * sizeof *x->weights);
        ok = x->rows && x->outputs && x->returned && x->tokens && x->weights;
        x->rows_capacity = ok ? n : 0;
    }
    if (ok && order + 1 > order_capacity) {
        free(x->order);
        x->order = malloc((order + 1) * sizeof *x->order);
        ok = x->order != NULL;
        x->order_capacity = ok ? order + 1 : 0;
    }
    return ok ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the expert exchange");
}

/* order[i] = the i-th pair p (token p / k, slot p % k) by (expert, token); offsets (E + 1)
 * is scratch. */
static void order_pairs(const int32_t *experts, int64_t pairs, int n_experts, int64_t *offsets, int64_t *order)
{
    memset(offsets, 0, (size_t)(n_experts + 1) * sizeof *offsets);
    for (int64_t p = 0; p < pairs; p++) offsets[experts[p] + 1]++;
    for (int e = 0; e < n_experts; e++) offsets[e + 1] += offsets[e];
    for (int64_t p = 0; p < pairs; p++) order[offsets[experts[p]]++] = p; /* tokens ascending within an expert */
    for (int e = n_experts; e > 0; e--) offsets[e] = offsets[e - 1];
    offsets[0] = 0;
}

static double record_field(const unsigned char *record, int i)
{
    double v;
    memcpy(&v, record + (size_t)i * sizeof v, sizeof v);
    return v;
}

/* Expert e over its received records (record indices idx[0..n), in arrival order), whole
 * windows at a time; each output row goes to returned[record]. */
static strata_status run_received(expert_exchange *x, int e, const int64_t *idx, int64_t n, size_t record_bytes)
{
    int64_t H = x->lw->arch->hidden_size;
    strata_status status = STRATA_OK;
    for (int64_t begin = 0; status == STRATA_OK && begin < n;) {
        /* Whole windows while they fit (a window's rows for one expert never exceed it). */
        int64_t end = begin;
        while (end < n) {
            int64_t window = (int64_t)record_field(x->received + (size_t)idx[end] * record_bytes, 0) / x->seq_len;
            int64_t next = end;
            while (next < n &&
                   (int64_t)record_field(x->received + (size_t)idx[next] * record_bytes, 0) / x->seq_len == window)
                next++;
            if (next - begin > x->max_rows && end > begin) break;
            end = next;
        }
        for (int64_t i = begin; i < end; i++) {
            const unsigned char *record = x->received + (size_t)idx[i] * record_bytes;
            x->tokens[i - begin] = (int64_t)record_field(record, 0);
            x->weights[i - begin] = (float)record_field(record, 1);
            memcpy(x->rows + (i - begin) * H, record + 3 * sizeof(double), (size_t)H * sizeof(float));
        }
        status = decoder_moe_expert_rows(x->lw, x->ds, e, x->rows, end - begin, x->tokens, x->weights, x->outputs);
        for (int64_t i = begin; status == STRATA_OK && i < end; i++)
            memcpy(x->returned + idx[i] * H, x->outputs + (i - begin) * H, (size_t)H * sizeof(float));
        begin = end;
    }
    return status;
}

strata_status expert_exchange_chunk(expert_exchange *x, const float *normed, int64_t rows, const int32_t *experts,
                                    const float *weights, int64_t first_token, float *out)
{
    const calib_collective *coll = x->coll;
    const strata_arch *a = x->lw->arch;
    int N = coll->n_ranks, E = a->moe.n_experts, first_expert, end_expert;
    int64_t H = a->hidden_size, k = a->moe.top_k, pairs = rows * k;
    size_t record_bytes = 3 * sizeof(double) + (size_t)H * sizeof(float), row_bytes = (size_t)H * sizeof(float);
    expert_parallel_share(E, coll->rank, N, &first_expert, &end_expert);
    int64_t *counts = calloc(4 * (size_t)N + (size_t)E + 1, sizeof *counts);
    if (!counts) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the expert exchange");
    int64_t *send_n = counts, *recv_n = counts + N, *send_b = counts + 2 * N, *recv_b = counts + 3 * N,
            *offsets = counts + 4 * N;
    /* 1. Records by (expert, token), grouped by the expert's rank. */
    strata_status status = grow(x, (size_t)pairs * record_bytes, 0, 0, (size_t)pairs);
    if (status == STRATA_OK) order_pairs(experts, pairs, E, offsets, x->order);
    for (int64_t i = 0; status == STRATA_OK && i < pairs; i++) {
        int64_t p = x->order[i];
        unsigned char *record = x->sent + (size_t)i * record_bytes;
        double header[3] = {(double)(first_token + p / k), (double)weights[p], (double)experts[p]};
        memcpy(record, header, sizeof header);
        memcpy(record + sizeof header, normed + (p / k) * H, row_bytes);
        send_n[expert_parallel_holder(experts[p], E, N)]++;
    }
    /* 2. To the experts' ranks. */
    if (status == STRATA_OK) status = coll->alltoall_i64(coll->ctx, send_n, recv_n);
    int64_t received = 0;
    for (int r = 0; r < N; r++) {
        send_b[r] = send_n[r] * (int64_t)record_bytes;
        recv_b[r] = recv_n[r] * (int64_t)record_bytes;
        received += recv_n[r];
    }
    if (status == STRATA_OK) status = grow(x, (size_t)pairs * record_bytes, (size_t)received * record_bytes,
                                           (size_t)(received > pairs ? received : pairs), (size_t)pairs);
    if (status == STRATA_OK) status = coll->alltoallv_bytes(coll->ctx, x->sent, send_b, x->received, recv_b);
    /* 3. Each expert of this rank over its records, in arrival order (a stable bucketing). */
    int64_t *by_expert = status == STRATA_OK ? malloc((size_t)(received + 1) * sizeof *by_expert) : NULL;
    if (status == STRATA_OK && !by_expert) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int e = first_expert; status == STRATA_OK && e < end_expert; e++) {
        int64_t n = 0;
        for (int64_t i = 0; i < received; i++)
            if ((int)record_field(x->received + (size_t)i * record_bytes, 2) == e) by_expert[n++] = i;
        status = run_received(x, e, by_expert, n, record_bytes);
    }
    free(by_expert);
    /* 4. The outputs back, added in this rank's (expert, token) order. */
    for (int r = 0; r < N; r++) {
        send_b[r] = recv_n[r] * (int64_t)row_bytes;
        recv_b[r] = send_n[r] * (int64_t)row_bytes;
    }
    float *back = (float *)(void *)x->sent; /* (pairs, hidden): the records are sent */
    if (status == STRATA_OK) status = coll->alltoallv_bytes(coll->ctx, x->returned, send_b, back, recv_b);
    for (int64_t i = 0; status == STRATA_OK && i < pairs; i++) {
        int64_t p = x->order[i];
        moe_add_weighted(out + (p / k) * H, back + i * H, weights[p], H);
    }
    free(counts);
    if (status != STRATA_OK) return strata_fail_context(status, "exchanging tokens with the experts' ranks");
    return STRATA_OK;
}

void expert_exchange_free(expert_exchange *x)
{
    free(x->sent);
    free(x->received);
    free(x->rows);
    free(x->outputs);
    free(x->returned);
    free(x->order);
    free(x->tokens);
    free(x->weights);
    *x = (expert_exchange){0};
}
