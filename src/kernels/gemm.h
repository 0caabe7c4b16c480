/*
 * gemm.h — every matrix product strata runs: y = x W^T for a linear layer, and the two
 * general products GPTQ needs (a Gram matrix x^T x of activations, and fp32 C += A B).
 *
 * gemm.c is the only file that talks to the GEMM library (oneDNN); nothing else includes
 * its header. A weight is converted once into the precision the product runs in and kept
 * with a prepared primitive that accepts any number of rows, so one weight serves every
 * chunk of tokens and every expert's token group.
 *
 * Precisions:
 * - GEMM_BF16: weights and inputs in bf16 (inputs rounded to nearest even), products
 *   accumulated in fp32, output fp32; AVX512-BF16 / AMX when the CPU has them.
 * - GEMM_F32: everything fp32 (the reference and the fallback).
 *
 * Threads: oneDNN runs its own OpenMP team. gemm_linear() must be called outside pool
 * tasks; it gives oneDNN the pool's thread count, and the pool's workers sleep while it
 * runs, so the cores are never oversubscribed.
 */
#ifndef STRATA_KERNELS_GEMM_H
#define STRATA_KERNELS_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "strata.h"

typedef enum gemm_precision {
    GEMM_BF16 = 0,
    GEMM_F32,
} gemm_precision;

typedef struct gemm_weight gemm_weight;

/* Converts w (n_out, n_in) row-major, dtype F32/BF16/F16 (src may be unaligned), into the
 * GEMM's layout. name is used in messages. */
strata_status gemm_weight_create(gemm_precision precision, strata_dtype dtype, const void *w, int64_t n_out,
                                 int64_t n_in, const char *name, gemm_weight **out);
/* A weight of this shape whose values the caller writes into gemm_weight_data: (n_out,
 * n_in) row-major, bf16 bits for GEMM_BF16, else fp32. */
strata_status gemm_weight_alloc(gemm_precision precision, int64_t n_out, int64_t n_in, const char *name,
                                gemm_weight **out);
void *gemm_weight_data(gemm_weight *w);
/* A weight used in place, without a copy: w (n_out, n_in) row-major, bf16 bits for
 * GEMM_BF16, else fp32, at any address (oneDNN packs the weights itself; the products are
 * the same bits as from an aligned copy: test_kernels), must outlive the gemm_weight. */
strata_status gemm_weight_borrow(gemm_precision precision, const void *w, int64_t n_out, int64_t n_in,
                                 const char *name, gemm_weight **out);
void gemm_weight_free(gemm_weight *w);

gemm_precision gemm_weight_precision(const gemm_weight *w);
int64_t gemm_weight_n_out(const gemm_weight *w);
int64_t gemm_weight_n_in(const gemm_weight *w);
/* Bytes the converted weight occupies. */
size_t gemm_weight_bytes(const gemm_weight *w);

/* y (m, n_out) fp32 = x (m, n_in) W^T. x is bf16 (uint16 bit patterns) for a GEMM_BF16
 * weight and fp32 for a GEMM_F32 one; both row-major with the given row strides
 * (elements). m may be 0. */
strata_status gemm_linear(const gemm_weight *w, const void *x, int64_t ldx, int64_t m, float *y, int64_t ldy);

/* g (n, n) += x^T x for x (rows, n) bf16 (uint16 bit patterns), row-major: the Gram
 * matrix of activations (GPTQ's Hessian). Products of bf16 values are exact in fp32 and
 * are accumulated in fp32. For a given shape and thread count the bits are the same on
 * every call. */
strata_status gemm_gram_bf16(const uint16_t *x, int64_t rows, int64_t n, float *g);

/* C (m, n) = alpha op(A) op(B) + beta C, fp32, row-major, as BLAS sgemm: op(A) is (m, k),
 * op(B) is (k, n); trans_a / trans_b transpose the stored A / B. */
strata_status gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc);

/* Whether this CPU runs bf16 products in oneDNN (AVX512-BF16, AMX, or AVX512 emulation);
 * callers fall back to GEMM_F32 when it does not. Only oneDNN saying "unimplemented"
 * means no: any other failure of the probe (out of memory) is an error, never a silent
 * switch to other numerics. */
strata_status gemm_bf16_available(bool *available);

/* f32 -> bf16, round to nearest even (NaN stays NaN), on the thread pool. */
void gemm_round_to_bf16(const float *src, uint16_t *dst, size_t n);

/* The GEMM library and its version ("oneDNN 2.6.3"). */
const char *gemm_library(void);

#endif
