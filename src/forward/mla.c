/*
 * mla.c — multi-head latent attention's projections (see mla.h).
 *
 * The latent and the shared rope key are expanded to every head here, so attention.c
 * runs as for any other model with head_dim nope + rope for queries and keys and
 * v_head_dim for values. transformers expands them the same way in its eager path.
 */
#include "forward/mla.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/rmsnorm.h"

static int64_t kv_row_width(const strata_arch *a) { return a->n_heads * (a->mla.qk_nope_head_dim + a->mla.v_head_dim); }
static int64_t compressed_width(const strata_arch *a) { return a->mla.kv_lora_rank + a->mla.qk_rope_head_dim; }

size_t mla_scratch_row_bytes(const strata_arch *a)
{
    return (size_t)(a->mla.q_lora_rank + compressed_width(a) + a->mla.kv_lora_rank + kv_row_width(a)) * sizeof(float);
}

void mla_scratch_free(mla_scratch *s)
{
    free(s->q_latent);
    free(s->kv_compressed);
    free(s->kv_latent);
    free(s->kv);
    *s = (mla_scratch){0};
}

strata_status mla_scratch_init(mla_scratch *s, const strata_arch *a, int64_t max_rows)
{
    size_t r = (size_t)max_rows;
    *s = (mla_scratch){
        .q_latent = a->mla.q_lora_rank > 0 ? malloc(r * (size_t)a->mla.q_lora_rank * sizeof(float)) : NULL,
        .kv_compressed = malloc(r * (size_t)compressed_width(a) * sizeof(float)),
        .kv_latent = malloc(r * (size_t)a->mla.kv_lora_rank * sizeof(float)),
        .kv = malloc(r * (size_t)kv_row_width(a) * sizeof(float)),
    };
    if ((a->mla.q_lora_rank > 0 && !s->q_latent) || !s->kv_compressed || !s->kv_latent || !s->kv) {
        mla_scratch_free(s);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the latent-attention scratch of %lld tokens",
                           (long long)max_rows);
    }
    return STRATA_OK;
}

/* q (rows, heads * head_dim): q_proj(x), or q_b_proj(rmsnorm(q_a_proj(x))). */
static strata_status project_queries(const layer_weights *lw, linear_scratch *ls, mla_scratch *s,
                                     const linear_input *x, float *q)
{
    const strata_arch *a = lw->arch;
    int64_t rows = x->rows, width = a->n_heads * a->head_dim, rank = a->mla.q_lora_rank;
    if (!lw->q_a) return linear_run(ls, lw->q, x, q, width);
    strata_status status = linear_run(ls, lw->q_a, x, s->q_latent, rank);
    if (status != STRATA_OK) return status;
    rmsnorm_rows(s->q_latent, rank, rows, rank, lw->q_a_norm, (float)a->rms_norm_eps, s->q_latent, rank);
    linear_input latent = linear_input_make(ls, s->q_latent, rows, rank);
    return linear_run(ls, lw->q_b, &latent, q, width);
}

/* The rows of kv_compressed become what an MLA KV cache stores (the normed latent, then the
 * roped shared key), for the hooks that observe the cache. */
static strata_status observe_cache(const layer_weights *lw, linear_scratch *ls, mla_scratch *s, int64_t rows)
{
    const strata_arch *a = lw->arch;
    int64_t rank = a->mla.kv_lora_rank, cw = compressed_width(a);
    bool wanted = false;
    for (size_t h = 0; h < ls->n_hooks; h++) wanted |= ls->hooks[h].observe_kv != NULL;
    if (!wanted) return STRATA_OK;
    for (int64_t r = 0; r < rows; r++)
        memcpy(s->kv_compressed + r * cw, s->kv_latent + r * rank, (size_t)rank * sizeof(float));
    strata_status status = STRATA_OK;
    for (size_t h = 0; h < ls->n_hooks && status == STRATA_OK; h++)
        if (ls->hooks[h].observe_kv)
            status = ls->hooks[h].observe_kv(ls->hooks[h].ctx, lw->kv_a->desc, s->kv_compressed, NULL, NULL, rows);
    return status;
}

strata_status mla_project(const layer_weights *lw, linear_scratch *ls, mla_scratch *s, const rope_table *rope,
                          const linear_input *x, int64_t n_seq, int64_t seq_len, float *q, float *k, float *v)
{
    const strata_arch *a = lw->arch;
    int64_t rows = x->rows, heads = a->n_heads, D = a->head_dim, nope = a->mla.qk_nope_head_dim;
    int64_t rank = a->mla.kv_lora_rank, rot = a->mla.qk_rope_head_dim, dv = a->mla.v_head_dim;
    int64_t cw = compressed_width(a), kvw = kv_row_width(a);
    /* kv_a first: it reads the same input as q_a (or q), so the bf16 rounding is shared. */
    strata_status status = linear_run(ls, lw->kv_a, x, s->kv_compressed, cw);
    if (status == STRATA_OK) status = project_queries(lw, ls, s, x, q);
    if (status != STRATA_OK) return status;

    rmsnorm_rows(s->kv_compressed, cw, rows, rank, lw->kv_a_norm, (float)a->rms_norm_eps, s->kv_latent, rank);
    linear_input latent = linear_input_make(ls, s->kv_latent, rows, rank);
    status = linear_run(ls, lw->kv_b, &latent, s->kv, kvw);
    if (status != STRATA_OK) return status;

    rope_apply(rope, q + nope, heads * D, D, n_seq, seq_len, (int)heads);
    rope_apply(rope, s->kv_compressed + rank, cw, rot, n_seq, seq_len, 1);
    status = observe_cache(lw, ls, s, rows);
    if (status != STRATA_OK) return status;
    for (int64_t r = 0; r < rows; r++) {
        const float *kv_row = s->kv + r * kvw, *k_rot = s->kv_compressed + r * cw + rank;
        for (int64_t h = 0; h < heads; h++) {
            float *k_head = k + r * heads * D + h * D;
            memcpy(k_head, kv_row + h * (nope + dv), (size_t)nope * sizeof(float));
            memcpy(k_head + nope, k_rot, (size_t)rot * sizeof(float));
            memcpy(v + r * heads * dv + h * dv, kv_row + h * (nope + dv) + nope, (size_t)dv * sizeof(float));
        }
    }
    return STRATA_OK;
}
