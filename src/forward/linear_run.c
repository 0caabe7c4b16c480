/*
 * linear_run.c — one linear over a chunk, hooks included (see linear_run.h).
 */
#include "forward/linear_run.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "kernels/activation.h"

size_t linear_scratch_row_bytes(gemm_precision precision, bool transforms_input, int64_t max_in)
{
    size_t bytes = 0;
    if (precision == GEMM_BF16) bytes += (size_t)max_in * 2;
    if (transforms_input) bytes += (size_t)max_in * sizeof(float);
    return bytes;
}

strata_status linear_scratch_init(linear_scratch *s, gemm_precision precision, const forward_hooks *hooks,
                                  size_t n_hooks, int64_t max_rows, int64_t max_in)
{
    *s = (linear_scratch){.precision = precision, .hooks = hooks, .n_hooks = n_hooks};
    for (size_t h = 0; h < n_hooks; h++) s->transforms_input |= hooks[h].quantize_input != NULL;
    size_t n = (size_t)max_rows * (size_t)max_in;
    if (precision == GEMM_BF16) s->bf16 = aligned_alloc(64, (n * 2 + 63) / 64 * 64);
    if (s->transforms_input) s->transformed = aligned_alloc(64, (n * 4 + 63) / 64 * 64);
    if ((precision == GEMM_BF16 && !s->bf16) || (s->transforms_input && !s->transformed)) {
        linear_scratch_free(s);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for %lld x %lld linear scratch",
                           (long long)max_rows, (long long)max_in);
    }
    return STRATA_OK;
}

void linear_scratch_free(linear_scratch *s)
{
    free(s->bf16);
    free(s->transformed);
    *s = (linear_scratch){0};
}

linear_input linear_input_make(linear_scratch *s, const float *x, int64_t rows, int64_t n_in)
{
    return (linear_input){.x = x, .rows = rows, .n_in = n_in, .id = ++s->next_input};
}

strata_status linear_run(linear_scratch *s, const layer_linear *l, const linear_input *in, float *y, int64_t ldy)
{
    const strata_linear *d = l->desc;
    int64_t m = in->rows;
    size_t n = (size_t)m * (size_t)d->n_in;
    strata_status status = STRATA_OK;
    for (size_t h = 0; h < s->n_hooks && status == STRATA_OK; h++)
        if (s->hooks[h].observe_input)
            status = s->hooks[h].observe_input(s->hooks[h].ctx, d, in->x, m, in->token_index, in->weights,
                                               s->chunk_first_token);
    if (status != STRATA_OK) return status;

    const float *x = in->x;
    if (s->transforms_input) {
        memcpy(s->transformed, in->x, n * sizeof(float));
        for (size_t h = 0; h < s->n_hooks && status == STRATA_OK; h++)
            if (s->hooks[h].quantize_input) status = s->hooks[h].quantize_input(s->hooks[h].ctx, d, s->transformed, m);
        if (status != STRATA_OK) return status;
        x = s->transformed;
    }
    const void *src = x;
    if (gemm_weight_precision(l->weight) == GEMM_BF16) { /* a weight kept in fp32 takes fp32 inputs */
        if (x != in->x || s->bf16_input != in->id) gemm_round_to_bf16(x, s->bf16, n);
        s->bf16_input = x == in->x ? in->id : 0;
        src = s->bf16;
    }
    status = gemm_linear(l->weight, src, d->n_in, m, y, ldy);
    if (status != STRATA_OK) return strata_fail_context(status, "%s", d->name);
    if (l->bias) {
        for (int64_t r = 0; r < m; r++)
            for (int64_t c = 0; c < d->n_out; c++) y[r * ldy + c] += l->bias[c];
    }
    for (size_t h = 0; h < s->n_hooks && status == STRATA_OK; h++)
        if (s->hooks[h].observe_output) status = s->hooks[h].observe_output(s->hooks[h].ctx, d, y, m);
    return status;
}

strata_status linear_run_gated_mlp(linear_scratch *s, const layer_linear *gate, const layer_linear *up,
                                   const layer_linear *down, const linear_input *in, float *gate_buf, float *up_buf,
                                   float *y)
{
    int64_t I = gate->desc->n_out;
    strata_status status = linear_run(s, gate, in, gate_buf, I);
    if (status == STRATA_OK) status = linear_run(s, up, in, up_buf, I);
    if (status != STRATA_OK) return status;
    silu_mul_rows(gate_buf, I, up_buf, I, in->rows, I, gate_buf, I);
    linear_input act = linear_input_make(s, gate_buf, in->rows, I);
    act.token_index = in->token_index;
    act.weights = in->weights;
    return linear_run(s, down, &act, y, down->desc->n_out);
}
