/*
 * decision_share.c — the per-linear decisions dealt out to the ranks of an MPI job (see
 * layer_calib.h, docs/DISTRIBUTED.md).
 *
 * GPTQ (factorization and column updates) and the mse clip search dominate a layer's
 * decisions. With several ranks each linear is decided by one of them, round-robin: GPTQ's
 * by their Hessian, so the linears that share one (q/k/v, gate/up) go to the same rank,
 * which alone needs it; mse's by linear. Under expert parallelism a routed expert's
 * linears go to the rank holding it, which alone saw its tokens. The rank that decided sends every other rank what
 * the decision left in the linear's state:
 *
 *   header  F64 [10] = (weight_error, gptq_done, outcome, damping, dead columns,
 *                       error_rtn, error_gptq, global scale, n_clip, codes held)
 *   clip    F32 [n_clip]
 *   codes, scales, zero points: the quantized weight's bytes (when held; an expert of a
 *           layer in groups is recomputed from its clip instead)
 *
 * F64 holds every value and count exactly, so a decision received is the decision made:
 * the bytes do not depend on which rank made it, and N ranks write what one process writes.
 */
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "core/error.h"

enum { HEADER = 10 };

int linear_calib_decider(const layer_calib *lc, const linear_calib *c, int n_ranks)
{
    if (lc->expert_holder && c->desc->expert >= 0) return lc->expert_holder[c->desc->expert];
    int unit = c->hessian >= 0 ? c->hessian : (int)(c - lc->linears);
    return n_ranks > 1 ? unit % n_ranks : 0;
}

static strata_status broadcast(const calib_collective *coll, int from, void *data, size_t n)
{
    return n ? coll->broadcast_bytes(coll->ctx, from, data, n) : STRATA_OK;
}

strata_status linear_calib_share_decision(linear_calib *c, const calib_collective *coll, int from)
{
    bool mine = coll->rank == from;
    double header[HEADER] = {0};
    if (mine)
        memcpy(header, (double[HEADER]){c->weight_error, c->gptq_done, (double)c->gptq.outcome, c->gptq.damp,
                                        (double)c->gptq.dead_columns, c->gptq.error_rtn, c->gptq.error_gptq,
                                        c->weight_q.global_scale, (double)c->n_clip, c->weight_q.codes != NULL},
               sizeof header);
    strata_status status = broadcast(coll, from, header, sizeof header);
    if (status != STRATA_OK) return status;
    if (!mine) {
        c->weight_error = header[0];
        c->gptq_done = header[1] != 0;
        c->gptq = (gptq_report){.outcome = (gptq_outcome)header[2], .damp = header[3],
                                .dead_columns = (int64_t)header[4], .error_rtn = header[5], .error_gptq = header[6]};
        free(c->clip);
        c->clip = NULL;
        c->n_clip = (int64_t)header[8];
        if (c->n_clip > 0 && !(c->clip = malloc((size_t)c->n_clip * sizeof *c->clip)))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the clip factors of %s", c->desc->name);
        linear_calib_free_quantized(c);
        if (header[9] != 0 && (status = linear_calib_alloc_quantized(c, c->scheme)) != STRATA_OK) return status;
        c->weight_q.global_scale = (float)header[7];
    }
    status = broadcast(coll, from, c->clip, (size_t)c->n_clip * sizeof *c->clip);
    if (status != STRATA_OK || header[9] == 0) return status;
    strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
    status = broadcast(coll, from, c->weight_q.codes, shape.code_bytes);
    if (status == STRATA_OK) status = broadcast(coll, from, c->weight_q.scales, shape.scale_bytes);
    if (status == STRATA_OK) status = broadcast(coll, from, c->weight_q.zero_points, shape.zero_point_bytes);
    if (status != STRATA_OK) return strata_fail_context(status, "sharing the decision on %s", c->desc->name);
    return STRATA_OK;
}
