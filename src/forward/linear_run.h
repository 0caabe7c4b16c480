/*
 * linear_run.h — running one linear of a layer over a chunk of tokens, with the hooks.
 *
 * Order for every linear: hooks observe the fp32 input; if any hook fake-quantizes
 * inputs, the linear gets its own copy to transform; the input is rounded to bf16 (GEMM
 * precision bf16; shared by every linear that reads the same untransformed input, e.g.
 * q/k/v); the product runs; the bias is added; hooks observe the output.
 */
#ifndef STRATA_FORWARD_LINEAR_RUN_H
#define STRATA_FORWARD_LINEAR_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "forward/hooks.h"
#include "forward/layer_weights.h"

/* Scratch shared by the linears of a chunk, sized for max_rows x max_in. */
typedef struct linear_scratch {
    gemm_precision precision;
    const forward_hooks *hooks;
    size_t n_hooks;
    bool transforms_input;          /* some hook has quantize_input */
    int64_t chunk_first_token;      /* index of the chunk's first row in the token matrix */
    uint16_t *bf16;                 /* (max_rows, max_in) rounded input */
    uint64_t bf16_input;            /* id of the linear_input whose rounding bf16 holds */
    uint64_t next_input;            /* ids handed out by linear_input_make */
    float *transformed;             /* (max_rows, max_in) fake-quantized input, if needed */
} linear_scratch;

/* An input matrix (rows, n_in) fp32 row-major, read by one or more linears. */
typedef struct linear_input {
    const float *x;
    int64_t rows, n_in;
    const int64_t *token_index; /* routed experts: source rows of the chunk, else NULL */
    const float *weights;       /* routed experts: routing weights, else NULL */
    uint64_t id;                /* identifies these contents for the bf16 rounding cache */
} linear_input;

/* Describes x after its contents are final; make a new one whenever they change. */
linear_input linear_input_make(linear_scratch *s, const float *x, int64_t rows, int64_t n_in);

strata_status linear_scratch_init(linear_scratch *s, gemm_precision precision, const forward_hooks *hooks,
                                  size_t n_hooks, int64_t max_rows, int64_t max_in);
void linear_scratch_free(linear_scratch *s);
/* Bytes per row of scratch for inputs up to max_in wide. */
size_t linear_scratch_row_bytes(gemm_precision precision, bool transforms_input, int64_t max_in);

/* y (in->rows, n_out) row stride ldy = l(in). */
strata_status linear_run(linear_scratch *s, const layer_linear *l, const linear_input *in, float *y, int64_t ldy);

/* y (in->rows, down's n_out) = down(silu(gate(x)) * up(x)): a dense MLP, one expert or a
 * shared expert. gate_buf and up_buf hold (in->rows, gate's n_out); the activation passed
 * to down keeps in's token rows and routing weights for the hooks. */
strata_status linear_run_gated_mlp(linear_scratch *s, const layer_linear *gate, const layer_linear *up,
                                   const layer_linear *down, const linear_input *in, float *gate_buf, float *up_buf,
                                   float *y);

#endif
