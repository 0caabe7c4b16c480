/*
 * pack.c — export layouts of quantized codes that differ from strata's canonical one, and
 * the KV-cache scale.
 *
 * ModelOpt's INT4 AWQ export pairs output rows in each byte; compressed-tensors packs
 * offset-binary values into little-endian int32 words along a row (weights) or along the
 * rows (zero points). NVFP4 and MXFP4 codes need no repacking: both references store them
 * like the canonical layout (even element in the low nibble).
 */
#include <string.h>

#include "core/error.h"
#include "kernels/minifloat.h"
#include "strata.h"

static uint8_t nibble(const uint8_t *codes, int64_t row_bytes, int64_t row, int64_t col)
{
    return (codes[row * row_bytes + col / 2] >> ((col & 1) * 4)) & 0xf;
}

size_t strata_pack_int4_size(strata_int4_layout layout, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0) return 0;
    switch (layout) {
    case STRATA_INT4_MODELOPT_AWQ: return rows % 2 ? 0 : (size_t)(rows / 2) * (size_t)cols;
    case STRATA_INT4_COMPRESSED_TENSORS: return (size_t)rows * (size_t)((cols + 7) / 8) * 4;
    }
    return 0;
}

strata_status strata_pack_int4(strata_int4_layout layout, const uint8_t *codes, int64_t rows, int64_t cols, void *out)
{
    if (!codes || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_pack_int4: NULL buffer");
    if (strata_pack_int4_size(layout, rows, cols) == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "int4 packing: a [%lld, %lld] tensor does not fit this layout%s",
                           (long long)rows, (long long)cols,
                           layout == STRATA_INT4_MODELOPT_AWQ ? " (ModelOpt AWQ needs an even row count)" : "");
    int64_t row_bytes = (cols + 1) / 2;
    if (layout == STRATA_INT4_MODELOPT_AWQ) {
        uint8_t *bytes = out;
        for (int64_t r = 0; r < rows; r += 2)
            for (int64_t c = 0; c < cols; c++)
                bytes[(r / 2) * cols + c] =
                    (uint8_t)(nibble(codes, row_bytes, r, c) | nibble(codes, row_bytes, r + 1, c) << 4);
        return STRATA_OK;
    }
    int64_t words = (cols + 7) / 8;
    uint8_t *bytes = out;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t w = 0; w < words; w++) {
            uint32_t word = 0;
            for (int64_t k = 0; k < 8 && w * 8 + k < cols; k++) {
                uint32_t offset_binary = (nibble(codes, row_bytes, r, w * 8 + k) ^ 0x8) & 0xf; /* q + 8 */
                word |= offset_binary << (4 * k);
            }
            uint8_t little_endian[4] = {(uint8_t)word, (uint8_t)(word >> 8), (uint8_t)(word >> 16), (uint8_t)(word >> 24)};
            memcpy(bytes + (r * words + w) * 4, little_endian, 4);
        }
    }
    return STRATA_OK;
}

strata_status strata_pack_zero_points_int4(const int8_t *zero_points, int64_t rows, int64_t cols, int32_t *out)
{
    if (!zero_points || !out || rows <= 0 || cols <= 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_pack_zero_points_int4: invalid arguments");
    int64_t words = (rows + 7) / 8;
    for (int64_t w = 0; w < words; w++) {
        for (int64_t c = 0; c < cols; c++) {
            uint32_t word = 0;
            for (int64_t k = 0; k < 8 && w * 8 + k < rows; k++)
                word |= (uint32_t)((zero_points[(w * 8 + k) * cols + c] + 8) & 0xf) << (4 * k);
            out[w * cols + c] = (int32_t)word;
        }
    }
    return STRATA_OK;
}

float strata_fp8_kv_scale(float amax)
{
    float scale = amax / E4M3_MAX;
    return scale > 0 && scale < 3.0e38f ? scale : 1.0f;
}
