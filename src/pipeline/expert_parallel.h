/*
 * expert_parallel.h — an MoE layer's routed experts spread over the ranks of an MPI job
 * (`--expert-parallel`, docs/DISTRIBUTED.md).
 *
 * Rank r holds experts [r E / N, (r + 1) E / N). Per chunk of its own tokens, each rank
 * sends every (token, slot) row to the rank holding its expert, runs its experts over the
 * rows it receives, and sends their outputs back; the token's rank adds them in ascending
 * expert order, as one process does. Every rank takes part in every exchange, with no rows
 * when its share has run out.
 */
#ifndef STRATA_PIPELINE_EXPERT_PARALLEL_H
#define STRATA_PIPELINE_EXPERT_PARALLEL_H

#include "calib/collective.h"
#include "forward/decoder.h"

/* The experts [*first, *end) rank `rank` of n_ranks holds. */
void expert_parallel_share(int n_experts, int rank, int n_ranks, int *first, int *end);
/* The rank holding expert e. */
int expert_parallel_holder(int e, int n_experts, int n_ranks);

typedef struct expert_exchange {
    const calib_collective *coll;
    const layer_weights *lw;
    decoder_scratch *ds;
    int64_t seq_len;     /* an expert runs over whole windows' rows at a time, as in one process */
    int64_t max_rows;    /* rows the scratch takes in one run */
    /* Buffers, grown as needed: */
    unsigned char *sent, *received;   /* records: (token, weight, expert) F64 [3] then the row */
    float *rows, *outputs, *returned; /* (n, hidden) an expert's rows, their outputs, the outputs sent back */
    int64_t *order;                   /* the chunk's pairs by (expert, token) */
    int64_t *tokens;                  /* an expert's rows' tokens and routing weights */
    float *weights;
    size_t sent_capacity, received_capacity, rows_capacity, order_capacity;
} expert_exchange;

/* out (rows, hidden) += the routed experts' outputs for the chunk: normed (rows, hidden)
 * the MLP input, experts and weights (rows, top_k) the router's choice, first_token the
 * chunk's first row in the whole token matrix. rows may be 0. */
strata_status expert_exchange_chunk(expert_exchange *x, const float *normed, int64_t rows, const int32_t *experts,
                                    const float *weights, int64_t first_token, float *out);
void expert_exchange_free(expert_exchange *x);

#endif
