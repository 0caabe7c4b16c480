/*
 * regex.h — the Split pre-tokenizer's regular expressions, the tokenizer's only use of
 * PCRE2. Patterns are compiled with UTF and UCP (so \p{L}, \s and \w are Unicode-aware,
 * as in Oniguruma, which Hugging Face tokenizers uses) and JIT-compiled when PCRE2 can.
 * A compiled regex is shared read-only; each matching thread brings a regex_matcher.
 */
#ifndef STRATA_TOKENIZER_REGEX_H
#define STRATA_TOKENIZER_REGEX_H

#include <stdbool.h>
#include <stddef.h>

typedef struct regex regex;
typedef struct regex_matcher regex_matcher;

/* Compiles pattern (UTF-8). On failure returns NULL and writes PCRE2's message with the
 * offset into error. */
regex *regex_compile(const char *pattern, char *error, size_t error_size);
void regex_free(regex *re);

regex_matcher *regex_matcher_create(const regex *re);
void regex_matcher_free(regex_matcher *m);

/* Finds the first match in subject[0..length) at or after start. subject must be well-formed
 * UTF-8 (it is not re-checked). Returns 1 with [*match_start, *match_end) on a match, 0 when
 * there is none, -1 when PCRE2 fails (match limit, out of memory). */
int regex_find(regex_matcher *m, const char *subject, size_t length, size_t start,
               size_t *match_start, size_t *match_end);

#endif
