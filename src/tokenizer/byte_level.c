/*
 * byte_level.c — builds the map of byte_level.h from its definition.
 */
#include "tokenizer/byte_level.h"

#include <stdbool.h>

#include "tokenizer/utf8.h"

static bool stands_for_itself(uint32_t b)
{
    return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

void byte_level_map_init(byte_level_map *map)
{
    for (uint32_t cp = 0; cp < BYTE_LEVEL_CODE_POINTS; cp++) map->byte[cp] = -1;
    uint32_t shifted = 0;
    for (uint32_t b = 0; b < 256; b++) {
        uint32_t cp = stands_for_itself(b) ? b : 256 + shifted++;
        char buffer[4];
        size_t n = utf8_encode(cp, buffer);
        map->utf8[b][0] = buffer[0];
        map->utf8[b][1] = n > 1 ? buffer[1] : 0;
        map->utf8_length[b] = (uint8_t)n;
        map->byte[cp] = (int16_t)b;
    }
}
