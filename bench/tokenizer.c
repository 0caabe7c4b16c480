/*
 * bench/tokenizer.c — tokenization throughput on WikiText-2's test file (1.29 MB) with the
 * Llama-3, Qwen3 and llama-19m (SentencePiece-style) tokenizers from ../shared, one thread,
 * the whole file as one text (best of 3). Printed beside:
 *   - Hugging Face tokenizers on the same file, one thread, as measured on this machine by
 *     tools/gen_golden_tokenizer.py (build/bench-hf-tokenizers.json; "-" when not run);
 *   - this machine's limits measured in the same run: memcpy of the file, and splitting it
 *     with the Llama-3 pre-tokenizer regex alone (PCRE2 JIT), the floor for byte-level BPE.
 * Not a test.
 *
 *   make bench            (or build/release/bench_tokenizer [--shared DIR])
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "strata.h"
#include "tokenizer/tokenizer_internal.h"

static double hf_mb_per_s(const char *name)
{
    char *data;
    size_t length;
    if (file_read_all("build/bench-hf-tokenizers.json", 1 << 20, &data, &length) != STRATA_OK) return -1;
    sjson_error error;
    sjson *root = sjson_parse(data, length, false, &error);
    free(data);
    double v = -1;
    if (!sjson_as_double(sjson_get(sjson_get(sjson_get(root, "results"), name), "mb_per_s"), &v)) v = -1;
    sjson_free(root);
    return v;
}

/* seconds = the best of 3 wall times of body. */
#define BEST_OF_3(seconds, ...)                   \
    do {                                           \
        seconds = 1e30;                            \
        for (int rep_ = 0; rep_ < 3; rep_++) {     \
            double t0_ = now();                    \
            __VA_ARGS__;                           \
            double dt_ = now() - t0_;              \
            if (dt_ < seconds) seconds = dt_;      \
        }                                          \
    } while (0)

int main(int argc, char **argv)
{
    const char *shared = "../shared";
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--shared") == 0 && i + 1 < argc) shared = argv[++i];
    char path[1024];
    snprintf(path, sizeof path, "%s/data/wikitext-2-raw/wiki.test.raw", shared);
    char *text;
    size_t length;
    if (file_read_all(path, 1u << 30, &text, &length) != STRATA_OK) {
        printf("bench_tokenizer: %s not found; skipped\n", path);
        return 0;
    }
    double mb = (double)length / 1e6, seconds;
    printf("tokenization of %s (%.2f MB), 1 thread, best of 3\n\n", path, mb);

    char *copy = malloc(length);
    BEST_OF_3(seconds, for (int k = 0; k < 20; k++) memcpy(copy, text, length));
    volatile char sink = copy[length / 2];   /* keeps the copies */
    (void)sink;
    free(copy);
    printf("machine: memcpy %.0f MB/s\n", 20 * mb / seconds);

    snprintf(path, sizeof path, "%s/tokenizers/llama3", shared);
    strata_tokenizer *llama3;
    if (strata_tokenizer_load(path, &llama3) == STRATA_OK && llama3->n_pretokenizers > 0) {
        regex_matcher *m = regex_matcher_create(llama3->pretokenizers[0].pattern);
        size_t n_pieces = 0;
        BEST_OF_3(seconds, {
            size_t from = 0, s, e;
            n_pieces = 0;
            while (from < length && regex_find(m, text, length, from, &s, &e) == 1) { from = e; n_pieces++; }
        });
        regex_matcher_free(m);
        printf("machine: Llama-3 split regex alone (PCRE2 JIT) %.1f MB/s, %zu pieces\n\n", mb / seconds, n_pieces);
    }
    strata_tokenizer_free(llama3);

    printf("%-12s %10s %12s %12s %10s\n", "tokenizer", "tokens", "strata MB/s", "HF MB/s", "strata/HF");
    static const char *names[][2] = {{"llama3", "tokenizers/llama3"}, {"qwen3", "tokenizers/qwen3"},
                                     {"llama-19m", "models/llama-19m"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", shared, names[i][1]);
        strata_tokenizer *tok;
        if (strata_tokenizer_load(path, &tok) != STRATA_OK) {
            printf("%-12s %s\n", names[i][0], strata_last_error());
            continue;
        }
        int64_t n = 0;
        BEST_OF_3(seconds, {
            int32_t *ids;
            if (strata_tokenizer_encode(tok, text, length, true, &ids, &n) == STRATA_OK) strata_free(ids);
        });
        double hf = hf_mb_per_s(names[i][0]);
        if (hf > 0) printf("%-12s %10lld %12.2f %12.2f %9.2fx\n", names[i][0], (long long)n, mb / seconds, hf, mb / seconds / hf);
        else printf("%-12s %10lld %12.2f %12s %10s\n", names[i][0], (long long)n, mb / seconds, "-", "-");
        strata_tokenizer_free(tok);
    }
    free(text);
    return 0;
}
