/*
 * fuzz_tokenizer_json.c — libFuzzer target: arbitrary bytes as tokenizer.json. Whatever
 * loads is then used: a fixed set of texts (ASCII, CJK, invalid UTF-8, an added-token-like
 * string) and the input itself are encoded, and the ids decoded again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const strata_tokenizer *tok, const char *text, size_t length)
{
    int32_t *ids;
    int64_t n;
    if (strata_tokenizer_encode(tok, text, length, true, &ids, &n) != STRATA_OK) return;
    char *decoded;
    if (strata_tokenizer_decode(tok, ids, n, false, &decoded, NULL) == STRATA_OK) free(decoded);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    strata_tokenizer *tok;
    if (tokenizer_load_json("fuzz/tokenizer.json", (const char *)data, size, NULL, &tok) != STRATA_OK) return 0;
    static const char *texts[] = {"Hello, world! It's 2026.\n\n  x", "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x9a\x80",
                                  "bad \xff\xc3( end", "<s>a</s><|x|>", ""};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) round_trip(tok, texts[i], strlen(texts[i]));
    round_trip(tok, (const char *)data, size < 512 ? size : 512);
    strata_tokenizer_free(tok);
    return 0;
}
