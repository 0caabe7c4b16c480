/*
 * test_tokenizer.c — the tokenizer on small hand-written tokenizer.json files: BPE merge
 * order, unknown-token fusing, byte fallback, added tokens, BOS/EOS from the template and
 * from tokenizer_config.json, long words, UTF-8 repair, and every refusal by name.
 * (Agreement with Hugging Face on real tokenizers is test_tokenizer_golden.c.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "tokenizer/utf8.h"

/* SentencePiece style: "▁" prepended, spaces become "▁"; ids 0 <unk>, 1 <s>, 2 </s>. */
#define SP_VOCAB                                                                                              \
    "{\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2, \"\\u2581\": 3, \"a\": 4, \"b\": 5, \"ab\": 6, \"\\u2581ab\": 7, " \
    "\"aa\": 8, \"aaaa\": 9, \"<0x0A>\": 10, \"<0xC3>\": 11, \"<0xA9>\": 12}"
#define SP_MERGES "[\"a b\", \"\\u2581 ab\", \"a a\", \"aa aa\"]"
#define SP_ADDED                                                                                              \
    "[{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"normalized\": false},"                          \
    " {\"id\": 1, \"content\": \"<s>\", \"special\": true, \"normalized\": false},"                           \
    " {\"id\": 2, \"content\": \"</s>\", \"special\": true, \"normalized\": false}]"
#define SP_NORMALIZER                                                                                         \
    "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"           \
    " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]}"
#define SP_POST                                                                                               \
    "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"  \
    " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\","       \
    " \"ids\": [1], \"tokens\": [\"<s>\"]}}}"
#define SP_DECODER                                                                                            \
    "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"},"  \
    " \"content\": \" \"}, {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"                               \
    " {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]}"

static char *sp_json(const char *model_extra, const char *normalizer, const char *pre_tokenizer, const char *post,
                     const char *decoder, const char *added)
{
    char *json = malloc(8192);
    snprintf(json, 8192,
             "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": %s,"
             " \"normalizer\": %s, \"pre_tokenizer\": %s, \"post_processor\": %s, \"decoder\": %s,"
             " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"fuse_unk\": true,"
             " \"byte_fallback\": true%s, \"vocab\": " SP_VOCAB ", \"merges\": " SP_MERGES "}}",
             added ? added : SP_ADDED, normalizer ? normalizer : SP_NORMALIZER, pre_tokenizer ? pre_tokenizer : "null",
             post ? post : SP_POST, decoder ? decoder : SP_DECODER, model_extra ? model_extra : "");
    return json;
}

/* Writes dir/tokenizer.json (and tokenizer_config.json when config is non-NULL). */
static char *write_tokenizer(const char *name, const char *json, const char *config)
{
    char *dir = test_path(test_dir, name);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    assert_int_equal(system(cmd), 0);
    char *path = test_path(dir, "tokenizer.json");
    test_write_file(path, json, strlen(json));
    free(path);
    if (config) {
        path = test_path(dir, "tokenizer_config.json");
        test_write_file(path, config, strlen(config));
        free(path);
    }
    return dir;
}

static strata_tokenizer *load(const char *name, const char *json, const char *config)
{
    char *dir = write_tokenizer(name, json, config);
    strata_tokenizer *tok = NULL;
    if (strata_tokenizer_load(dir, &tok) != STRATA_OK) fail_msg("%s", strata_last_error());
    free(dir);
    return tok;
}

static void assert_encodes(const strata_tokenizer *tok, const char *text, bool special, const int32_t *want, int64_t n_want)
{
    int32_t *ids;
    int64_t n;
    assert_int_equal(strata_tokenizer_encode(tok, text, strlen(text), special, &ids, &n), STRATA_OK);
    if (n != n_want) fail_msg("\"%s\": %lld ids, expected %lld", text, (long long)n, (long long)n_want);
    for (int64_t i = 0; i < n; i++)
        if (ids[i] != want[i]) fail_msg("\"%s\": id %lld is %d, expected %d", text, (long long)i, ids[i], want[i]);
    strata_free(ids);
}

#define ENCODES(tok, text, special, ...)                                                            \
    do {                                                                                           \
        static const int32_t want_[] = {__VA_ARGS__};                                              \
        assert_encodes(tok, text, special, want_, (int64_t)(sizeof want_ / sizeof want_[0]));     \
    } while (0)

static void sentencepiece_style(void **state)
{
    (void)state;
    char *json = sp_json(NULL, NULL, NULL, NULL, NULL, NULL);
    strata_tokenizer *tok = load("sp", json, NULL);
    free(json);
    assert_int_equal(strata_tokenizer_vocab_size(tok), 13);
    assert_int_equal(strata_tokenizer_bos(tok), 1);
    assert_true(strata_tokenizer_adds_bos(tok));
    ENCODES(tok, "ab ab", true, 1, 7, 7);
    ENCODES(tok, "ab ab", false, 7, 7);
    /* unknown characters fuse into one <unk>; é falls back to its two bytes */
    ENCODES(tok, "abxyz", false, 7, 0);
    ENCODES(tok, "ab\xc3\xa9", false, 7, 11, 12);
    ENCODES(tok, "ab\n", false, 7, 10);
    /* added tokens are cut out before normalization; each side is normalized on its own */
    ENCODES(tok, "ab<s>ab", false, 7, 1, 7);
    /* merges by rank, ties to the left: "aaaaa" -> aaaa a; "▁" has no merge with "aaaa" */
    ENCODES(tok, "aaaaa", false, 3, 9, 4);
    char *text;
    size_t length;
    static const int32_t ids[] = {1, 7, 3, 6, 11, 12, 10};
    assert_int_equal(strata_tokenizer_decode(tok, ids, 7, true, &text, &length), STRATA_OK);
    assert_string_equal(text, "ab ab\xc3\xa9\n");
    free(text);
    assert_int_equal(strata_tokenizer_decode(tok, ids, 7, false, &text, &length), STRATA_OK);
    assert_string_equal(text, "<s> ab ab\xc3\xa9\n");
    free(text);
    static const int32_t lone_byte[] = {6, 11, 6};   /* an invalid byte run decodes to U+FFFD */
    assert_int_equal(strata_tokenizer_decode(tok, lone_byte, 3, true, &text, &length), STRATA_OK);
    assert_string_equal(text, "ab\xef\xbf\xbd" "ab");
    free(text);
    static const int32_t bad[] = {6, 13};
    assert_int_equal(strata_tokenizer_decode(tok, bad, 2, true, &text, &length), STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("token id 13", "position 1");
    strata_tokenizer_free(tok);
}

static void long_word_is_not_quadratic(void **state)
{
    (void)state;
    char *json = sp_json(NULL, "null", NULL, "null", "null", NULL);
    strata_tokenizer *tok = load("long", json, NULL);
    free(json);
    size_t n = 400000;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    int32_t *ids;
    int64_t count;
    assert_int_equal(strata_tokenizer_encode(tok, text, n, true, &ids, &count), STRATA_OK);
    assert_int_equal(count, (int64_t)n / 4);   /* a a -> aa everywhere first, then aa aa -> aaaa */
    for (int64_t i = 0; i < count; i++) assert_int_equal(ids[i], 9);
    strata_free(ids);
    /* without a decoder, tokens are joined by spaces */
    static const int32_t two[] = {9, 6};
    char *decoded;
    assert_int_equal(strata_tokenizer_decode(tok, two, 2, true, &decoded, NULL), STRATA_OK);
    assert_string_equal(decoded, "aaaa ab");
    free(decoded);
    free(text);
    strata_tokenizer_free(tok);
}

static void byte_level_with_split(void **state)
{
    (void)state;
    /* GPT-2-like: a Split regex, then ByteLevel; "Ġ" is the space byte's character. */
    const char *json =
        "{\"added_tokens\": [{\"id\": 9, \"content\": \"<|end|>\", \"special\": true, \"normalized\": false}],"
        " \"normalizer\": {\"type\": \"NFC\"},"
        " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\":"
        " {\"Regex\": \" ?\\\\p{L}+|\\\\p{N}\"}, \"behavior\": \"Isolated\", \"invert\": false},"
        " {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
        " \"post_processor\": {\"type\": \"ByteLevel\"}, \"decoder\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"ignore_merges\": true, \"vocab\": {\"h\": 0, \"i\": 1, \"\\u0120\": 2,"
        " \"hi\": 3, \"\\u0120hi\": 4, \"1\": 5, \"\\u00c3\": 6, \"\\u00a9\": 7, \"\\u0120hih\": 8},"
        " \"merges\": [[\"h\", \"i\"], [\"\\u0120\", \"hi\"]]}}";
    strata_tokenizer *tok = load("bytelevel", json, NULL);
    assert_false(strata_tokenizer_adds_bos(tok));
    ENCODES(tok, "hi hi11", true, 3, 4, 5, 5);
    ENCODES(tok, " hih", true, 8);                 /* ignore_merges: a whole word in the vocab */
    ENCODES(tok, "e\xcc\x81", true, 6, 7);         /* NFC: e + combining acute -> é = C3 A9 */
    ENCODES(tok, "hi<|end|>hi", true, 3, 9, 3);
    ENCODES(tok, "hi\xff", true, 3);               /* U+FFFD has no token here and no unk: dropped */
    static const int32_t ids[] = {3, 4, 6, 7, 9};
    char *text;
    assert_int_equal(strata_tokenizer_decode(tok, ids, 5, true, &text, NULL), STRATA_OK);
    assert_string_equal(text, "hi hi\xc3\xa9");
    free(text);
    assert_int_equal(strata_tokenizer_decode(tok, ids, 5, false, &text, NULL), STRATA_OK);
    assert_string_equal(text, "hi hi\xc3\xa9<|end|>");
    free(text);
    strata_tokenizer_free(tok);
}

static void bos_eos_from_tokenizer_config(void **state)
{
    (void)state;
    char *json = sp_json(NULL, NULL, NULL, NULL, NULL, NULL);
    strata_tokenizer *tok = load("cfg1", json,
                                 "{\"add_bos_token\": false, \"add_eos_token\": true, \"bos_token\": \"<s>\","
                                 " \"eos_token\": {\"content\": \"</s>\"}, \"model_max_length\": 1000000000000000019884624838656}");
    assert_false(strata_tokenizer_adds_bos(tok));
    assert_int_equal(strata_tokenizer_eos(tok), 2);
    ENCODES(tok, "ab", true, 7, 2);
    ENCODES(tok, "ab", false, 7);
    strata_tokenizer_free(tok);
    char *dir = write_tokenizer("cfg2", json, "{\"add_eos_token\": true, \"eos_token\": \"<nope>\"}");
    assert_int_equal(strata_tokenizer_load(dir, &tok), STRATA_ERR_FORMAT);
    ASSERT_ERROR_MENTIONS("tokenizer_config.json", "add_eos_token", "eos_token");
    free(dir);
    free(json);
}

static void utf8_repair_matches_python(void **state)
{
    (void)state;
    /* bytes.decode("utf-8", errors="replace") of the same input */
    static const struct { const char *in, *out; size_t replaced; } cases[] = {
        {"a\xff" "b", "a\xef\xbf\xbd" "b", 1},
        {"\xe2\x82" "x", "\xef\xbf\xbd" "x", 1},                  /* truncated 3-byte: one U+FFFD */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 3}, /* surrogate: each byte */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd", 2},              /* overlong */
        {"\xf0\x9f\x98", "\xef\xbf\xbd", 1},                      /* truncated 4-byte at the end */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 4}, /* > U+10FFFF */
        {"ok \xc3\xa9", "ok \xc3\xa9", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out;
        size_t n;
        utf8_repair repair;
        assert_true(utf8_make_valid(cases[i].in, strlen(cases[i].in), &out, &n, &repair));
        assert_string_equal(out, cases[i].out);
        assert_int_equal(repair.replaced, cases[i].replaced);
        free(out);
    }
}

static void refuse(const char *name, const char *json, strata_status status, const char *fragment)
{
    char *dir = write_tokenizer(name, json, NULL);
    strata_tokenizer *tok = (strata_tokenizer *)1;
    assert_int_equal(strata_tokenizer_load(dir, &tok), status);
    assert_null(tok);
    ASSERT_ERROR_MENTIONS(name, "tokenizer.json", fragment);
    free(dir);
}

static void refusals_name_what_is_unsupported(void **state)
{
    (void)state;
    char *j;
    /* sp_json() loads (sentencepiece_style); each change below is refused by name */
    const char *json_unigram = "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}";
    refuse("unigram", json_unigram, STRATA_ERR_UNSUPPORTED, "\"Unigram\"");
    refuse("lowercase", j = sp_json(NULL, "{\"type\": \"Lowercase\"}", NULL, NULL, NULL, NULL), STRATA_ERR_UNSUPPORTED,
           "normalizer type \"Lowercase\"");
    free(j);
    refuse("metaspace", j = sp_json(NULL, NULL, "{\"type\": \"Metaspace\", \"replacement\": \"x\"}", NULL, NULL, NULL),
           STRATA_ERR_UNSUPPORTED, "pre_tokenizer type \"Metaspace\"");
    free(j);
    refuse("roberta", j = sp_json(NULL, NULL, NULL, "{\"type\": \"RobertaProcessing\"}", NULL, NULL),
           STRATA_ERR_UNSUPPORTED, "post_processor type \"RobertaProcessing\"");
    free(j);
    refuse("wpdecoder", j = sp_json(NULL, NULL, NULL, NULL, "{\"type\": \"WordPiece\"}", NULL), STRATA_ERR_UNSUPPORTED,
           "decoder type \"WordPiece\"");
    free(j);
    refuse("contiguous", j = sp_json(NULL, NULL, "{\"type\": \"Split\", \"pattern\": {\"String\": \" \"},"
                                     " \"behavior\": \"Contiguous\"}", NULL, NULL, NULL),
           STRATA_ERR_UNSUPPORTED, "\"Contiguous\"");
    free(j);
    refuse("badregex", j = sp_json(NULL, NULL, "{\"type\": \"Split\", \"pattern\": {\"Regex\": \"(a\"},"
                                   " \"behavior\": \"Isolated\"}", NULL, NULL, NULL),
           STRATA_ERR_FORMAT, "regex /(a/");
    free(j);
    refuse("dropout", j = sp_json(", \"dropout\": 0.1", NULL, NULL, NULL, NULL, NULL), STRATA_ERR_UNSUPPORTED, "dropout");
    free(j);
    refuse("lstrip", j = sp_json(NULL, NULL, NULL, NULL, NULL,
                                 "[{\"id\": 0, \"content\": \"<unk>\", \"special\": true, \"lstrip\": true}]"),
           STRATA_ERR_UNSUPPORTED, "\"<unk>\" sets lstrip");
    free(j);
    const char *missing_merge =
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}";
    refuse("merge", missing_merge, STRATA_ERR_FORMAT, "model.merges[0]");
    const char *truncation = "{\"truncation\": {\"max_length\": 8}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}}}";
    refuse("truncation", truncation, STRATA_ERR_UNSUPPORTED, "\"truncation\"");
    refuse("notjson", "{\"model\": ", STRATA_ERR_FORMAT, "invalid JSON");
    strata_tokenizer *tok;
    assert_int_equal(strata_tokenizer_load("/nonexistent/tokenizer.json", &tok), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS("/nonexistent/tokenizer.json");
}

int main(void)
{
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(sentencepiece_style),        cmocka_unit_test(long_word_is_not_quadratic),
        cmocka_unit_test(byte_level_with_split),      cmocka_unit_test(bos_eos_from_tokenizer_config),
        cmocka_unit_test(utf8_repair_matches_python), cmocka_unit_test(refusals_name_what_is_unsupported),
    };
    return cmocka_run_group_tests_name("tokenizer", tests, test_setup_dir, test_teardown_dir);
}
