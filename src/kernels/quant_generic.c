/*
 * quant_generic.c — the scalar reference of the row kernels the quantizers run (contracts
 * in variants.h). The SIMD variants in quant_avx2.c and quant_avx512.c must match these
 * bit for bit.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "kernels/minifloat.h"
#include "kernels/variants.h"

bool generic_block_absmax(const float *x, size_t n, size_t block, float *out)
{
    bool finite = true;
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n;
        float a = 0;
        for (size_t i = start; i < end; i++) {
            float m = fabsf(x[i]);
            if (!(m <= FLT_MAX)) {
                finite = false;
                m = 0;
            }
            a = m > a ? m : a;
        }
        out[b] = a;
    }
    return finite;
}

bool generic_bf16_block_absmax(const void *src, size_t n, size_t block, float *out)
{
    const uint8_t *bytes = src;
    bool finite = true;
    for (size_t start = 0, b = 0; start < n; start += block, b++) {
        size_t end = start + block < n ? start + block : n;
        uint16_t a = 0;
        for (size_t i = start; i < end; i++) {
            uint16_t m;
            memcpy(&m, bytes + 2 * i, 2);
            m &= 0x7fff;
            if ((m & 0x7f80) == 0x7f80) {
                finite = false;
                m = 0;
            }
            a = m > a ? m : a;
        }
        out[b] = f32_from_bits((uint32_t)a << 16);
    }
    return finite;
}

void generic_e4m3_divide(const float *x, size_t n, float divisor, bool round_bf16, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float y = x[i] / divisor;
        out[i] = e4m3_encode(round_bf16 ? bf16_round(y) : y);
    }
}

void generic_e2m1_divide_blocks(const float *x, size_t n_blocks, const float *divisors, uint8_t *codes)
{
    for (size_t b = 0; b < n_blocks; b++) {
        float d = divisors[b];
        for (size_t j = 0; j < 16; j += 2) {
            uint8_t lo = e2m1_encode(x[16 * b + j] / d), hi = e2m1_encode(x[16 * b + j + 1] / d);
            codes[8 * b + j / 2] = (uint8_t)(lo | hi << 4);
        }
    }
}
