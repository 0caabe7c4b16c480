/*
 * regex.c — PCRE2 (8-bit) behind regex.h. The subject is validated once by the tokenizer,
 * so matches run with PCRE2_NO_UTF_CHECK: checking the whole subject on every call would
 * make splitting a long text quadratic. JIT matching gets its own stack (up to 8 MiB) for
 * long runs of one character class.
 */
#include "tokenizer/regex.h"

#include <stdio.h>
#include <stdlib.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

struct regex {
    pcre2_code *code;
    bool jit;
};

struct regex_matcher {
    const regex *re;
    pcre2_match_data *data;
    pcre2_match_context *context;
    pcre2_jit_stack *jit_stack;
};

regex *regex_compile(const char *pattern, char *error, size_t error_size)
{
    int code_error;
    PCRE2_SIZE offset;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                                     &code_error, &offset, NULL);
    if (!code) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(code_error, message, sizeof message);
        snprintf(error, error_size, "%s at offset %zu", (const char *)message, (size_t)offset);
        return NULL;
    }
    regex *re = malloc(sizeof *re);
    if (!re) {
        pcre2_code_free(code);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    re->code = code;
    re->jit = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
    return re;
}

void regex_free(regex *re)
{
    if (!re) return;
    pcre2_code_free(re->code);
    free(re);
}

regex_matcher *regex_matcher_create(const regex *re)
{
    regex_matcher *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->re = re;
    m->data = pcre2_match_data_create_from_pattern(re->code, NULL);
    m->context = pcre2_match_context_create(NULL);
    if (re->jit) {
        m->jit_stack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
        if (m->jit_stack && m->context) pcre2_jit_stack_assign(m->context, NULL, m->jit_stack);
    }
    if (!m->data || !m->context || (re->jit && !m->jit_stack)) {
        regex_matcher_free(m);
        return NULL;
    }
    return m;
}

void regex_matcher_free(regex_matcher *m)
{
    if (!m) return;
    pcre2_match_data_free(m->data);
    pcre2_match_context_free(m->context);
    if (m->jit_stack) pcre2_jit_stack_free(m->jit_stack);
    free(m);
}

int regex_find(regex_matcher *m, const char *subject, size_t length, size_t start,
               size_t *match_start, size_t *match_end)
{
    int rc = pcre2_match(m->re->code, (PCRE2_SPTR)subject, length, start, PCRE2_NO_UTF_CHECK, m->data,
                         m->context);
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (rc < 0) return -1;
    PCRE2_SIZE *ovector = pcre2_get_ovector_pointer(m->data);
    *match_start = ovector[0];
    *match_end = ovector[1];
    return 1;
}
