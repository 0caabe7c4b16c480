/*
 * vecmat_generic.c — the reference vector-matrix product (contract in variants.h), the
 * inner loop of attention: scores are a query times the transposed keys, outputs the
 * softmax weights times the values. vecmat_avx2.c / vecmat_avx512.c keep the same order of
 * operations in vector registers and match it bit for bit.
 */
#include "kernels/variants.h"

void generic_vecmat(const float *v, const float *m, size_t ld, size_t rows, size_t cols, float *out)
{
    for (size_t c = 0; c < cols; c++) out[c] = 0.0f;
    for (size_t r = 0; r < rows; r++) {
        const float vr = v[r];
        const float *row = m + r * ld;
        for (size_t c = 0; c < cols; c++) out[c] += vr * row[c];
    }
}
