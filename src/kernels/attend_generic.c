/*
 * attend_generic.c — the reference inner loops of attention (contracts in variants.h):
 * scores as dot products of a query with the columns of the transposed keys, and the
 * weighted sum of value rows. attend_avx2.c / attend_avx512.c keep the same order of
 * operations in vector registers and match these bit for bit.
 */
#include "kernels/variants.h"

void generic_dot_columns(const float *a, const float *m, size_t ld, size_t depth, size_t n, float *out)
{
    for (size_t j = 0; j < n; j++) out[j] = 0.0f;
    for (size_t d = 0; d < depth; d++) {
        const float ad = a[d];
        const float *row = m + d * ld;
        for (size_t j = 0; j < n; j++) out[j] += ad * row[j];
    }
}

void generic_weighted_rows(const float *w, const float *m, size_t ld, size_t n_rows, size_t width, float *out)
{
    for (size_t c = 0; c < width; c++) out[c] = 0.0f;
    for (size_t r = 0; r < n_rows; r++) {
        const float wr = w[r];
        const float *row = m + r * ld;
        for (size_t c = 0; c < width; c++) out[c] += wr * row[c];
    }
}
