/*
 * activation.h — the gated MLP activation: out = silu(gate) * up, silu(x) = x / (1 + e^-x),
 * fp32, as transformers' act_fn(gate_proj(x)) * up_proj(x).
 */
#ifndef STRATA_KERNELS_ACTIVATION_H
#define STRATA_KERNELS_ACTIVATION_H

#include <stdint.h>

/* gate, up, out: (rows, n) with row strides ldg, ldu, ldo; out may alias gate. */
void silu_mul_rows(const float *gate, int64_t ldg, const float *up, int64_t ldu, int64_t rows, int64_t n, float *out,
                   int64_t ldo);

/* 1 / (1 + e^-x): the qwen2_moe shared-expert gate. */
float sigmoidf(float x);

#endif
