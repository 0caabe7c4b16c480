/*
 * byte_level.h — GPT-2's reversible byte <-> character map used by byte-level BPE
 * (Llama-3, Qwen, GPT-2): printable Latin-1 bytes stand for themselves, the other 68 bytes
 * become U+0100.. in byte order, so every byte string is a string of visible characters.
 */
#ifndef STRATA_TOKENIZER_BYTE_LEVEL_H
#define STRATA_TOKENIZER_BYTE_LEVEL_H

#include <stddef.h>
#include <stdint.h>

#define BYTE_LEVEL_CODE_POINTS (256 + 68)

typedef struct byte_level_map {
    char utf8[256][2];                     /* the character of each byte, UTF-8 */
    uint8_t utf8_length[256];              /* 1 or 2 */
    int16_t byte[BYTE_LEVEL_CODE_POINTS];  /* code point -> byte, -1 for none */
} byte_level_map;

void byte_level_map_init(byte_level_map *map);

/* The byte that code point cp stands for, or -1 when cp is not one of the 256 characters. */
static inline int byte_level_byte(const byte_level_map *map, uint32_t cp)
{
    return cp < BYTE_LEVEL_CODE_POINTS ? map->byte[cp] : -1;
}

#endif
