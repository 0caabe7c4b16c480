/*
 * test_calib_data.c — strata_calib_load on every input kind (paragraphs, lines, JSON Lines
 * with the default and a named field, ids in .bin and .json) and every error: missing
 * field, non-string field, invalid JSON line, non-object record, invalid UTF-8 (replaced in
 * text, refused in JSONL), empty dataset, fewer tokens than asked, bad sizes, no tokenizer.
 *
 * The tokenizer is a tiny byte-fallback BPE whose ids are easy to predict: "<s>" is 1, "▁"
 * is 3, each of the letters a..e is 4..8, "<0x0A>" is 9; merges make nothing, so a
 * document "ab" followed by "\n\n" is ▁ a b \n \n = 3 4 5 9 9.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static strata_tokenizer *tok;

static int setup(void **state)
{
    if (test_setup_dir(state)) return -1;
    const char *json =
        "{\"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false}],"
        " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
        " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
        " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
        " {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1]}}},"
        " \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", \"byte_fallback\": true, \"vocab\": {\"<unk>\": 0,"
        " \"<s>\": 1, \"x\": 2, \"\\u2581\": 3, \"a\": 4, \"b\": 5, \"c\": 6, \"d\": 7, \"e\": 8, \"<0x0A>\": 9},"
        " \"merges\": []}}";
    char *path = test_path(test_dir, "tokenizer.json");
    test_write_file(path, json, strlen(json));
    int rc = strata_tokenizer_load(path, &tok) == STRATA_OK ? 0 : -1;
    free(path);
    return rc;
}

static int teardown(void **state)
{
    strata_tokenizer_free(tok);
    return test_teardown_dir(state);
}

static char *dataset(const char *name, const char *content, size_t length)
{
    char *path = test_path(test_dir, name);
    test_write_file(path, content, length ? length : strlen(content));
    return path;
}

static strata_status load(const char *path, strata_calib_format format, int64_t samples, int64_t seq, uint64_t seed,
                          int32_t **tokens, strata_calib_info *info)
{
    strata_calib_params params = {.format = format, .n_samples = samples, .seq_len = seq, .seed = seed};
    return strata_calib_load(path, tok, &params, tokens, info);
}

static void paragraphs_are_packed_with_bos_windows(void **state)
{
    (void)state;
    /* three documents (blank lines separate them; CRLF reads as LF; a line of spaces is blank) */
    char *path = dataset("para.txt", "ab\r\ncd\r\n\r\nabc\n   \n\n\ne\n", 0);
    int32_t *t;
    strata_calib_info info;
    /* stream: ▁ a b \n c d \n \n | ▁ a b c \n \n | ▁ e \n \n  = 8 + 6 + 4 = 18 tokens */
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 6, 4, 0, &t, &info), STRATA_OK);
    assert_int_equal(info.format, STRATA_CALIB_PARAGRAPHS);
    assert_int_equal(info.n_documents, 3);
    assert_int_equal(info.n_stream_tokens, 18);
    assert_int_equal(info.n_windows, 6);   /* BOS + 3 stream tokens each */
    static const int32_t all[6][4] = {{1, 3, 4, 5}, {1, 9, 6, 7}, {1, 9, 9, 3}, {1, 4, 5, 6},
                                      {1, 9, 9, 3}, {1, 8, 9, 9}};
    assert_memory_equal(t, all, sizeof all);   /* all windows drawn: stream order */
    strata_free(t);
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 7, 4, 0, &t, &info), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS(path, "18 tokens make 6 windows of 4 tokens", "7 samples", "21 tokens needed");
    free(path);
}

static void draws_depend_on_the_seed_only(void **state)
{
    (void)state;
    char text[4096] = "";
    for (int i = 0; i < 200; i++) strcat(text, i % 3 ? "abcde\n" : "edcba\n\n");
    char *path = dataset("many.txt", text, 0);
    int32_t *a, *b, *c;
    strata_calib_info info;
    /* 200 documents of 7 tokens; windows of BOS + 5 tokens start at every phase */
    assert_int_equal(load(path, STRATA_CALIB_LINES, 10, 6, 42, &a, &info), STRATA_OK);
    assert_int_equal(info.n_documents, 200);
    assert_int_equal(info.n_windows, 280);
    assert_int_equal(load(path, STRATA_CALIB_LINES, 10, 6, 42, &b, &info), STRATA_OK);
    assert_int_equal(load(path, STRATA_CALIB_LINES, 10, 6, 43, &c, &info), STRATA_OK);
    assert_memory_equal(a, b, 60 * sizeof *a);
    assert_memory_not_equal(a, c, 60 * sizeof *a);
    for (int w = 0; w < 10; w++) assert_int_equal(a[6 * w], 1);   /* BOS first */
    strata_free(a);
    strata_free(b);
    strata_free(c);
    free(path);
}

static void lines_one_document_each(void **state)
{
    (void)state;
    char *path = dataset("lines.txt", "ab\n\ncd\nx\n", 0);
    int32_t *t;
    strata_calib_info info;
    /* ▁ a b \n | ▁ c d \n | ▁ x \n = 11 tokens; windows of 1 + 11 */
    assert_int_equal(load(path, STRATA_CALIB_LINES, 1, 12, 0, &t, &info), STRATA_OK);
    assert_int_equal(info.n_documents, 3);
    static const int32_t want[12] = {1, 3, 4, 5, 9, 3, 6, 7, 9, 3, 2, 9};
    assert_memory_equal(t, want, sizeof want);
    strata_free(t);
    free(path);
}

static void json_lines_fields_and_errors(void **state)
{
    (void)state;
    char *path = dataset("d.jsonl", "{\"text\": \"ab\", \"n\": 1}\n\n{\"text\": \"c\"}\n", 0);
    int32_t *t;
    strata_calib_info info;
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 10, 0, &t, &info), STRATA_OK);
    assert_int_equal(info.format, STRATA_CALIB_JSONL);
    static const int32_t want[10] = {1, 3, 4, 5, 9, 9, 3, 6, 9, 9};
    assert_memory_equal(t, want, sizeof want);
    strata_free(t);
    free(path);

    path = dataset("field.jsonl", "{\"body\": \"abc\"}\n", 0);
    strata_calib_params params = {.text_field = "body", .n_samples = 1, .seq_len = 4};
    assert_int_equal(strata_calib_load(path, tok, &params, &t, &info), STRATA_OK);
    strata_free(t);
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 4, 0, &t, &info), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(path, ":1:", "no \"text\" field", "--calib-field");
    free(path);

    static const struct { const char *content, *fragment; } bad[] = {
        {"{\"text\": \"ab\"}\n{\"text\": 7}\n", ":2: field \"text\" is an integer, not a string"},
        {"{\"text\": \"ab\"}\n{\"text\": \"a\n", ":2: invalid JSON"},
        {"[\"ab\"]\n", ":1: a JSON Lines record must be an object"},
        {"{\"text\": \"a\xff\"}\n", ":1: invalid JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        path = dataset("bad.jsonl", bad[i].content, 0);
        assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 2, 0, &t, &info), STRATA_ERR_FORMAT);
        ASSERT_ERROR_MENTIONS(path, bad[i].fragment);
        free(path);
    }
}

static void invalid_utf8_in_text_is_replaced_and_counted(void **state)
{
    (void)state;
    char *path = dataset("bad.txt", "ab\xff\xfe" "cd", 0);
    int32_t *t;
    strata_calib_info info;
    /* ▁ a b U+FFFD U+FFFD c d \n \n: U+FFFD has no byte tokens here, so each is <unk> */
    assert_int_equal(load(path, STRATA_CALIB_PARAGRAPHS, 1, 10, 0, &t, &info), STRATA_OK);
    assert_int_equal(info.invalid_utf8, 2);
    assert_int_equal(info.first_invalid_offset, 2);
    static const int32_t want[10] = {1, 3, 4, 5, 0, 0, 6, 7, 9, 9};
    assert_memory_equal(t, want, sizeof want);
    strata_free(t);
    free(path);
}

static void ids_files_are_used_as_they_are(void **state)
{
    (void)state;
    static const int32_t ids[6] = {5, 6, 7, 8, 9, 10};
    char *path = dataset("ids.bin", (const char *)ids, sizeof ids);
    int32_t *t;
    strata_calib_info info;
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 2, 3, 0, &t, &info), STRATA_OK);
    assert_int_equal(info.format, STRATA_CALIB_IDS);
    assert_memory_equal(t, ids, sizeof ids);   /* no BOS added to ids */
    strata_free(t);
    free(path);
    path = dataset("ids.json", "[5, 6, 7]", 0);
    strata_calib_params params = {.n_samples = 1, .seq_len = 3};
    assert_int_equal(strata_calib_load(path, NULL, &params, &t, &info), STRATA_OK);   /* no tokenizer needed */
    strata_free(t);
    free(path);
}

static void empty_and_invalid_requests(void **state)
{
    (void)state;
    int32_t *t;
    strata_calib_info info;
    char *path = dataset("empty.txt", "\n  \n\t\n", 0);
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 2, 0, &t, &info), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(path, "holds no text");
    free(path);
    path = dataset("empty.jsonl", "{\"text\": \"\"}\n", 0);
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 2, 0, &t, &info), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS(path, "holds no text");
    free(path);
    path = dataset("ok.txt", "abc\n", 0);
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 1, 1, 0, &t, &info), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("at least 2 tokens");   /* BOS leaves no room */
    assert_int_equal(load(path, STRATA_CALIB_AUTO, 0, 4, 0, &t, &info), STRATA_ERR_INVALID_ARGUMENT);
    strata_calib_params params = {.n_samples = 1, .seq_len = 2};
    assert_int_equal(strata_calib_load(path, NULL, &params, &t, &info), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS(path, "needs a tokenizer");
    free(path);
    char *missing = test_path(test_dir, "missing.txt");
    assert_int_equal(load(missing, STRATA_CALIB_AUTO, 1, 2, 0, &t, &info), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS(missing);
    free(missing);
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(paragraphs_are_packed_with_bos_windows), cmocka_unit_test(draws_depend_on_the_seed_only),
        cmocka_unit_test(lines_one_document_each),               cmocka_unit_test(json_lines_fields_and_errors),
        cmocka_unit_test(invalid_utf8_in_text_is_replaced_and_counted),
        cmocka_unit_test(ids_files_are_used_as_they_are),        cmocka_unit_test(empty_and_invalid_requests),
    };
    return cmocka_run_group_tests_name("calibration data", tests, setup, teardown);
}
