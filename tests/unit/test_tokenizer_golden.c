/*
 * test_tokenizer_golden.c — strata's tokenizer against Hugging Face `tokenizers`.
 *
 * tests/golden/tokenizer/<name>.json (tools/gen_golden_tokenizer.py) holds, for every
 * tokenizer.json in ../shared, the ids the reference gives for each text of the text set
 * (tests/golden/tokenizer/texts/: prose, code, numbers, whitespace runs, CRLF, emoji, CJK,
 * Cyrillic, combining marks, invalid UTF-8, special tokens, ...), the decoded text, ids
 * without special tokens, transformers' ids (BOS policy), and the count and FNV-1a hash of
 * the ids of the whole WikiText-2 test file. Every one must match exactly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "io/json.h"

static const char *shared;

static sjson *read_golden(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/%s.json", STRATA_GOLDEN_DIR, name);
    size_t length;
    char *text = test_read_file(path, &length);
    sjson_error error;
    sjson *golden = sjson_parse(text, length, false, &error);
    free(text);
    assert_non_null(golden);
    return golden;
}

static char *read_text(const char *name, size_t *length)
{
    char path[512];
    snprintf(path, sizeof path, "%s/tokenizer/texts/%s.txt", STRATA_GOLDEN_DIR, name);
    return test_read_file(path, length);
}

static void assert_ids_equal(const char *what, const sjson *expected, const int32_t *ids, int64_t n)
{
    int64_t n_expected = (int64_t)sjson_array_size(expected);
    int64_t first_diff = -1;
    for (int64_t i = 0; i < n && i < n_expected && first_diff < 0; i++) {
        int64_t e;
        assert_true(sjson_as_int64(sjson_array_at(expected, (size_t)i), &e));
        if (e != ids[i]) first_diff = i;
    }
    if (first_diff < 0 && n != n_expected) first_diff = n < n_expected ? n : n_expected;
    if (first_diff >= 0) {
        int64_t e = -1;
        sjson_as_int64(sjson_array_at(expected, (size_t)first_diff), &e);
        fail_msg("%s: %lld ids, expected %lld; first difference at %lld: %d, expected %lld", what, (long long)n,
                 (long long)n_expected, (long long)first_diff, first_diff < n ? ids[first_diff] : -1, (long long)e);
    }
}

static uint64_t fnv1a64_ids(const int32_t *ids, int64_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 4; k++) h = (h ^ ((uint32_t)ids[i] >> (8 * k) & 0xFF)) * 0x100000001b3ull;
    return h;
}

static void check_texts(const strata_tokenizer *tok, const char *dir, const sjson *golden)
{
    const sjson *texts = sjson_get(golden, "texts"), *plain = sjson_get(golden, "plain_ids");
    assert_true(sjson_object_size(texts) >= 19);
    for (void *it = sjson_iter(texts); it; it = sjson_iter_next(texts, it)) {
        const char *name = sjson_iter_key(it);
        const sjson *expected = sjson_iter_value(it);
        size_t length;
        char *text = read_text(name, &length);
        char what[256];
        snprintf(what, sizeof what, "%s: text \"%s\"", dir, name);
        int32_t *ids;
        int64_t n;
        assert_int_equal(strata_tokenizer_encode(tok, text, length, true, &ids, &n), STRATA_OK);
        assert_ids_equal(what, sjson_get(expected, "ids"), ids, n);
        char *decoded;
        size_t decoded_length;
        assert_int_equal(strata_tokenizer_decode(tok, ids, n, true, &decoded, &decoded_length), STRATA_OK);
        const char *want = sjson_as_string(sjson_get(expected, "decoded"));
        if (strlen(want) != decoded_length || memcmp(want, decoded, decoded_length) != 0)
            fail_msg("%s: decoded \"%s\", expected \"%s\"", what, decoded, want);
        free(decoded);
        strata_free(ids);
        const sjson *plain_ids = sjson_get(plain, name);
        if (plain_ids) {
            assert_int_equal(strata_tokenizer_encode(tok, text, length, false, &ids, &n), STRATA_OK);
            snprintf(what, sizeof what, "%s: text \"%s\" without special tokens", dir, name);
            assert_ids_equal(what, plain_ids, ids, n);
            strata_free(ids);
        }
        free(text);
    }
}

static void check_transformers_policy(const strata_tokenizer *tok, const char *dir, const sjson *golden)
{
    size_t length;
    char *text = read_text("prose", &length);
    int32_t *ids;
    int64_t n;
    assert_int_equal(strata_tokenizer_encode(tok, text, length, true, &ids, &n), STRATA_OK);
    char what[256];
    snprintf(what, sizeof what, "%s: transformers' BOS/EOS policy on \"prose\"", dir);
    assert_ids_equal(what, sjson_get(golden, "transformers_ids"), ids, n);
    strata_free(ids);
    free(text);
}

static void check_wiki(const strata_tokenizer *tok, const char *dir, const sjson *golden)
{
    const sjson *wiki = sjson_get(golden, "wiki");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", shared, sjson_as_string(sjson_get(wiki, "file")));
    size_t length;
    char *text = test_read_file(path, &length);
    int32_t *ids;
    int64_t n, count;
    assert_int_equal(strata_tokenizer_encode(tok, text, length, true, &ids, &n), STRATA_OK);
    assert_true(sjson_as_int64(sjson_get(wiki, "count"), &count));
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx", (unsigned long long)fnv1a64_ids(ids, n));
    if (n != count || strcmp(hash, sjson_as_string(sjson_get(wiki, "fnv1a64"))) != 0)
        fail_msg("%s: wiki.test.raw gives %lld ids (hash %s), expected %lld (hash %s)", dir, (long long)n, hash,
                 (long long)count, sjson_as_string(sjson_get(wiki, "fnv1a64")));
    strata_free(ids);
    free(text);
}

static void check_golden(const char *name)
{
    sjson *golden = read_golden(name);
    const sjson *paths = sjson_get(golden, "paths");
    assert_true(sjson_array_size(paths) >= 1);
    for (size_t i = 0; i < sjson_array_size(paths); i++) {
        char dir[512];
        snprintf(dir, sizeof dir, "%s/%s", shared, sjson_as_string(sjson_array_at(paths, i)));
        strata_tokenizer *tok;
        if (strata_tokenizer_load(dir, &tok) != STRATA_OK) fail_msg("%s: %s", dir, strata_last_error());
        check_texts(tok, dir, golden);
        check_transformers_policy(tok, dir, golden);
        if (i == 0) check_wiki(tok, dir, golden);   /* the other paths hold the same file */
        strata_tokenizer_free(tok);
    }
    sjson_free(golden);
}

static void llama2(void **state) { (void)state; check_golden("llama2"); }
static void llama3(void **state) { (void)state; check_golden("llama3"); }
static void qwen3(void **state) { (void)state; check_golden("qwen3"); }
static void llama19m(void **state) { (void)state; check_golden("llama-19m"); }
static void stories260k(void **state) { (void)state; check_golden("stories260K-hf"); }

int main(void)
{
    shared = test_shared_dir();
    if (!shared) return 77;
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(stories260k), cmocka_unit_test(llama19m), cmocka_unit_test(llama2),
        cmocka_unit_test(llama3), cmocka_unit_test(qwen3),
    };
    return cmocka_run_group_tests_name("tokenizer golden ids", tests, NULL, NULL);
}
