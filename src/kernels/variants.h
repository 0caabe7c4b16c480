/*
 * variants.h — the kernel functions of every instruction-set variant. cpu.c assembles
 * them into kernel sets; nothing else calls them directly.
 *
 * Contracts shared by all variants (the generic one defines the bytes):
 * - *_to_f32: widen n elements; src may be unaligned.
 * - block_absmax: out[b] = max |x| over block b of `block` elements (the last block may be
 *   shorter); returns false if any element is NaN or infinite.
 * - bf16_block_absmax: the same on BF16 input (src may be unaligned), computed on the bit
 *   patterns: magnitudes of finite bf16 values order like their low 15 bits.
 * - e4m3_divide: out[i] = e4m3(round_to(x[i] / divisor)), round_to = identity or bf16
 *   (ModelOpt's per-tensor FP8 quotient in the weight dtype).
 * - e2m1_divide_blocks: for each block b of 16 elements, code = e2m1(x / divisors[b]),
 *   packed two per byte, element 2i in the low nibble (8 bytes per block).
 * - vecmat: out[c] = sum over r < rows of v[r] * m[r * ld + c], for c < cols; the sum
 *   starts at 0 and adds the products in row order, each product rounded before the add
 *   (no fused multiply-add), so every variant gives the same bits.
 */
#ifndef STRATA_KERNELS_VARIANTS_H
#define STRATA_KERNELS_VARIANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VARIANT_FUNCTIONS(prefix)                                                                        \
    void prefix##_bf16_to_f32(const void *src, float *dst, size_t n);                                    \
    void prefix##_f16_to_f32(const void *src, float *dst, size_t n);                                     \
    bool prefix##_block_absmax(const float *x, size_t n, size_t block, float *out);                      \
    bool prefix##_bf16_block_absmax(const void *src, size_t n, size_t block, float *out);                \
    void prefix##_e4m3_divide(const float *x, size_t n, float divisor, bool round_bf16, uint8_t *out);   \
    void prefix##_e2m1_divide_blocks(const float *x, size_t n_blocks, const float *divisors, uint8_t *codes);   \
    void prefix##_vecmat(const float *v, const float *m, size_t ld, size_t rows, size_t cols, float *out);

VARIANT_FUNCTIONS(generic)
VARIANT_FUNCTIONS(avx2)
VARIANT_FUNCTIONS(avx512)

#endif
