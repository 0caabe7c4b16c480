/*
 * vecmat_simd.h — the SIMD vector-matrix product, written once for every vector width.
 *
 * Included by vecmat_avx2.c and vecmat_avx512.c after they define:
 *   VECMAT_NAME  the function's name          VEC      the vector type
 *   LANES        floats per vector            TARGET   the function attribute
 *   VZERO() VSET1(x) VLOAD(p) VSTORE(p, v) VADD(a, b) VMUL(a, b)
 * UNROLL vectors of outputs stay in registers across the whole reduction; each step is a
 * separate multiply and add, in row order, as in generic_vecmat (bit-identical).
 */
enum { UNROLL = 4 };

TARGET void VECMAT_NAME(const float *v, const float *m, size_t ld, size_t rows, size_t cols, float *out)
{
    size_t c = 0;
    while (c + LANES <= cols) {
        size_t left = (cols - c) / LANES;
        int k = left < UNROLL ? (int)left : UNROLL;
        VEC acc[UNROLL];
        for (int u = 0; u < UNROLL; u++) acc[u] = VZERO();
        for (size_t r = 0; r < rows; r++) {
            VEC vr = VSET1(v[r]);
            const float *row = m + r * ld + c;
            for (int u = 0; u < k; u++) acc[u] = VADD(acc[u], VMUL(vr, VLOAD(row + u * LANES)));
        }
        for (int u = 0; u < k; u++) VSTORE(out + c + u * LANES, acc[u]);
        c += (size_t)k * LANES;
    }
    if (c < cols) generic_vecmat(v, m + c, ld, rows, cols - c, out + c);
}
