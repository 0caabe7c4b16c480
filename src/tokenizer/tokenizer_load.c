/*
 * tokenizer_load.c — reads tokenizer.json (and tokenizer_config.json beside it) into a
 * strata_tokenizer.
 *
 * Supported, as real checkpoints use them:
 *   model          BPE (vocab, merges as "a b" strings or [a, b] pairs, unk_token, fuse_unk,
 *                  byte_fallback, ignore_merges, continuing_subword_prefix, end_of_word_suffix)
 *   normalizer     Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace (string patterns)
 *   pre_tokenizer  Sequence, Split (regex or string; Isolated, Removed, MergedWithPrevious,
 *                  MergedWithNext; invert), ByteLevel (add_prefix_space, use_regex)
 *   post_processor TemplateProcessing (single sequence), ByteLevel, Sequence of those
 *   decoder        Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip
 * Anything else, and options that change ids (truncation, BPE dropout, added tokens with
 * lstrip/rstrip/single_word), is refused with its name and the file.
 *
 * BOS/EOS: the post-processor's template decides which special tokens encode() adds. When
 * tokenizer_config.json sets add_bos_token or add_eos_token, the template becomes
 * [bos_token] text [eos_token] as those flags say, which is what transformers' Llama-style
 * tokenizers do on load.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "tokenizer/tokenizer_internal.h"

#define MAX_TOKENIZER_JSON_BYTES ((uint64_t)1 << 30)
#define GPT2_PATTERN "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef struct loader {
    strata_tokenizer *tok;
    const char *path;
} loader;

static strata_status unsupported(const loader *ld, const char *what, const char *type, const char *supported)
{
    return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: %s type \"%s\" is not supported by strata (supported: %s)",
                       ld->path, what, type ? type : "(missing)", supported);
}

static strata_status malformed(const loader *ld, const char *what)
{
    return strata_fail(STRATA_ERR_FORMAT, "%s: malformed %s", ld->path, what);
}

static const char *type_of(const sjson *o) { return sjson_as_string(sjson_get(o, "type")); }

static bool is(const char *type, const char *name) { return type && strcmp(type, name) == 0; }

static bool flag(const sjson *o, const char *key, bool fallback)
{
    bool b;
    return sjson_as_bool(sjson_get(o, key), &b) ? b : fallback;
}

static char *dup_string(const sjson *v)
{
    const char *s = sjson_as_string(v);
    return s ? strdup(s) : NULL;
}

/* A {"String": s} pattern's text; NULL for {"Regex": ...} or anything else. */
static const char *string_pattern(const sjson *pattern) { return sjson_as_string(sjson_get(pattern, "String")); }

typedef strata_status (*step_adder)(loader *ld, const sjson *node);

/* A {"type": "Sequence", key: [...]} node: adds each member in order. */
static strata_status add_sequence(loader *ld, const sjson *node, const char *key, const char *what, step_adder add)
{
    const sjson *list = sjson_get(node, key);
    if (!sjson_is_array(list)) return malformed(ld, what);
    for (size_t i = 0; i < sjson_array_size(list); i++) {
        strata_status st = add(ld, sjson_array_at(list, i));
        if (st) return st;
    }
    return STRATA_OK;
}

/* ------------------------------------------------------------------ normalizer */

static strata_status add_normalizer(loader *ld, const sjson *n)
{
    static const char *supported = "Sequence, NFC, NFD, NFKC, NFKD, Prepend, Replace";
    strata_tokenizer *tok = ld->tok;
    if (!n || sjson_is_null(n)) return STRATA_OK;
    const char *type = type_of(n);
    if (is(type, "Sequence")) return add_sequence(ld, n, "normalizers", "normalizer Sequence", add_normalizer);
    if (tok->n_normalizers == TOKENIZER_MAX_STEPS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: more than %d normalizers", ld->path, TOKENIZER_MAX_STEPS);
    normalizer_step *step = &tok->normalizers[tok->n_normalizers];
    static const struct { const char *name; unicode_form form; } forms[] = {
        {"NFC", UNICODE_NFC}, {"NFD", UNICODE_NFD}, {"NFKC", UNICODE_NFKC}, {"NFKD", UNICODE_NFKD}};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++)
        if (is(type, forms[i].name)) {
            *step = (normalizer_step){.kind = NORMALIZE_UNICODE, .form = forms[i].form};
            tok->n_normalizers++;
            return STRATA_OK;
        }
    if (is(type, "Prepend")) {
        char *prefix = dup_string(sjson_get(n, "prepend"));
        if (!prefix) return malformed(ld, "Prepend normalizer");
        *step = (normalizer_step){.kind = NORMALIZE_PREPEND, .text = prefix};
        tok->n_normalizers++;
        return STRATA_OK;
    }
    if (is(type, "Replace")) {
        const char *pattern = string_pattern(sjson_get(n, "pattern"));
        const char *content = sjson_as_string(sjson_get(n, "content"));
        if (!pattern)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: Replace normalizer with a Regex pattern is not supported by strata",
                               ld->path);
        if (!content || !*pattern) return malformed(ld, "Replace normalizer");
        *step = (normalizer_step){.kind = NORMALIZE_REPLACE, .text = strdup(pattern), .replacement = strdup(content)};
        tok->n_normalizers++;
        if (!step->text || !step->replacement) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        return STRATA_OK;
    }
    return unsupported(ld, "normalizer", type, supported);
}

/* ------------------------------------------------------------------ pre-tokenizer */

static strata_status compile(loader *ld, const char *pattern, regex **out)
{
    char error[256];
    *out = regex_compile(pattern, error, sizeof error);
    if (!*out) return strata_fail(STRATA_ERR_FORMAT, "%s: pre-tokenizer regex /%s/: %s", ld->path, pattern, error);
    return STRATA_OK;
}

/* A literal string as a PCRE2 pattern: ASCII punctuation and spaces escaped. */
static char *escape_literal(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(2 * n + 1), *p = out;
    if (!out) return NULL;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x80 && !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) *p++ = '\\';
        *p++ = *s;
    }
    *p = '\0';
    return out;
}

static strata_status add_split(loader *ld, const sjson *n, pretokenizer_step *step)
{
    const sjson *pattern = sjson_get(n, "pattern");
    const char *regex_text = sjson_as_string(sjson_get(pattern, "Regex"));
    const char *literal = string_pattern(pattern);
    if (!regex_text && !literal) return malformed(ld, "Split pre-tokenizer pattern");
    static const struct { const char *name; split_behavior behavior; } behaviors[] = {
        {"Isolated", SPLIT_ISOLATED}, {"Removed", SPLIT_REMOVED},
        {"MergedWithPrevious", SPLIT_MERGED_WITH_PREVIOUS}, {"MergedWithNext", SPLIT_MERGED_WITH_NEXT}};
    const char *behavior = sjson_as_string(sjson_get(n, "behavior"));
    size_t i = 0;
    while (i < 4 && !is(behavior, behaviors[i].name)) i++;
    if (i == 4)
        return strata_fail(STRATA_ERR_UNSUPPORTED,
                           "%s: Split pre-tokenizer behavior \"%s\" is not supported by strata (supported: Isolated, "
                           "Removed, MergedWithPrevious, MergedWithNext)", ld->path, behavior ? behavior : "(missing)");
    *step = (pretokenizer_step){.kind = PRETOKENIZE_SPLIT, .behavior = behaviors[i].behavior,
                                .invert = flag(n, "invert", false)};
    if (regex_text) return compile(ld, regex_text, &step->pattern);
    char *escaped = escape_literal(literal);
    if (!escaped) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
    strata_status st = compile(ld, escaped, &step->pattern);
    free(escaped);
    return st;
}

static strata_status add_pretokenizer(loader *ld, const sjson *n)
{
    strata_tokenizer *tok = ld->tok;
    if (!n || sjson_is_null(n)) return STRATA_OK;
    const char *type = type_of(n);
    if (is(type, "Sequence")) return add_sequence(ld, n, "pretokenizers", "pre-tokenizer Sequence", add_pretokenizer);
    if (tok->n_pretokenizers == TOKENIZER_MAX_STEPS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: more than %d pre-tokenizers", ld->path, TOKENIZER_MAX_STEPS);
    pretokenizer_step *step = &tok->pretokenizers[tok->n_pretokenizers];
    if (is(type, "Split")) {
        strata_status st = add_split(ld, n, step);
        if (st == STRATA_OK) tok->n_pretokenizers++;
        return st;
    }
    if (is(type, "ByteLevel")) {
        *step = (pretokenizer_step){.kind = PRETOKENIZE_BYTE_LEVEL, .add_prefix_space = flag(n, "add_prefix_space", true),
                                    .behavior = SPLIT_ISOLATED};
        tok->byte_level = true;
        if (flag(n, "use_regex", true)) {
            strata_status st = compile(ld, GPT2_PATTERN, &step->pattern);
            if (st) return st;
        }
        tok->n_pretokenizers++;
        return STRATA_OK;
    }
    return unsupported(ld, "pre_tokenizer", type, "Sequence, Split, ByteLevel");
}

/* ------------------------------------------------------------------ model */

static strata_status load_model(loader *ld, const sjson *m)
{
    strata_tokenizer *tok = ld->tok;
    bpe *model = &tok->model;
    if (!sjson_is_object(m)) return malformed(ld, "model");
    const char *type = type_of(m);
    if (type && !is(type, "BPE")) return unsupported(ld, "model", type, "BPE");
    const sjson *dropout = sjson_get(m, "dropout");
    double p;
    if (dropout && !sjson_is_null(dropout) && !(sjson_as_double(dropout, &p) && p == 0.0))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: BPE dropout is not supported by strata (it makes encoding random)",
                           ld->path);
    model->byte_fallback = flag(m, "byte_fallback", false);
    model->fuse_unk = flag(m, "fuse_unk", false);
    model->ignore_merges = flag(m, "ignore_merges", false);
    const char *prefix = sjson_as_string(sjson_get(m, "continuing_subword_prefix"));
    const char *suffix = sjson_as_string(sjson_get(m, "end_of_word_suffix"));
    if (prefix && *prefix) model->subword_prefix = strdup(prefix);
    if (suffix && *suffix) model->word_suffix = strdup(suffix);

    const sjson *vocab = sjson_get(m, "vocab");
    if (!sjson_is_object(vocab) || sjson_object_size(vocab) == 0) return malformed(ld, "model.vocab (an object of token: id)");
    for (void *it = sjson_iter(vocab); it; it = sjson_iter_next(vocab, it)) {
        int64_t id;
        bool duplicate;
        if (!sjson_as_int64(sjson_iter_value(it), &id) || id < 0 || id > INT32_MAX)
            return strata_fail(STRATA_ERR_FORMAT, "%s: model.vocab[\"%s\"] is not a token id", ld->path, sjson_iter_key(it));
        if (!bpe_add_token(model, sjson_iter_key(it), (int32_t)id, &duplicate))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        if (duplicate)
            return strata_fail(STRATA_ERR_FORMAT, "%s: model.vocab[\"%s\"] = %lld repeats an id or is out of range",
                               ld->path, sjson_iter_key(it), (long long)id);
    }

    const sjson *merges = sjson_get(m, "merges");
    if (merges && !sjson_is_array(merges)) return malformed(ld, "model.merges");
    for (size_t i = 0; i < sjson_array_size(merges); i++) {
        const sjson *entry = sjson_array_at(merges, i);
        char *left = NULL;
        const char *right = NULL;
        if (sjson_as_string(entry)) {   /* "left right" */
            left = strdup(sjson_as_string(entry));
            char *space = left ? strchr(left, ' ') : NULL;
            if (space && !strchr(space + 1, ' ')) { *space = '\0'; right = space + 1; }
        } else if (sjson_array_size(entry) == 2 && sjson_as_string(sjson_array_at(entry, 0)) &&
                   sjson_as_string(sjson_array_at(entry, 1))) {
            left = strdup(sjson_as_string(sjson_array_at(entry, 0)));
            right = sjson_as_string(sjson_array_at(entry, 1));
        }
        if (!right) {
            free(left);
            return strata_fail(STRATA_ERR_FORMAT, "%s: model.merges[%zu] is not a pair of tokens", ld->path, i);
        }
        const char *missing = NULL;
        int rc = bpe_add_merge(model, left, right, (uint32_t)i, &missing);
        if (rc == 1)
            strata_fail(STRATA_ERR_FORMAT, "%s: model.merges[%zu] (\"%s\" \"%s\"): %s%s%s is not in the vocabulary",
                        ld->path, i, left, right, missing ? "\"" : "the merged token", missing ? missing : "",
                        missing ? "\"" : "");
        free(left);
        if (rc == 1) return STRATA_ERR_FORMAT;
        if (rc < 0) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
    }

    model->unk_id = -1;
    const char *unk = sjson_as_string(sjson_get(m, "unk_token"));
    if (unk) {
        size_t id;
        if (!strmap_find(&model->vocab, unk, &id))
            return strata_fail(STRATA_ERR_FORMAT, "%s: model.unk_token \"%s\" is not in the vocabulary", ld->path, unk);
        model->unk_id = (int32_t)id;
    }
    bpe_finish(model);
    return STRATA_OK;
}

/* ------------------------------------------------------------------ added tokens */

static strata_status load_added_tokens(loader *ld, const sjson *list)
{
    strata_tokenizer *tok = ld->tok;
    if (!list || sjson_is_null(list)) return added_tokens_finish(&tok->added) ? STRATA_OK : STRATA_ERR_OUT_OF_MEMORY;
    if (!sjson_is_array(list)) return malformed(ld, "added_tokens");
    for (size_t i = 0; i < sjson_array_size(list); i++) {
        const sjson *t = sjson_array_at(list, i);
        const char *content = sjson_as_string(sjson_get(t, "content"));
        int64_t id;
        if (!content || !*content || !sjson_as_int64(sjson_get(t, "id"), &id) || id < 0 || id > INT32_MAX)
            return strata_fail(STRATA_ERR_FORMAT, "%s: added_tokens[%zu] needs a non-empty content and an id", ld->path, i);
        static const char *options[] = {"lstrip", "rstrip", "single_word"};
        for (int k = 0; k < 3; k++)
            if (flag(t, options[k], false))
                return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: added token \"%s\" sets %s, which strata does not support",
                                   ld->path, content, options[k]);
        bool special = flag(t, "special", false);
        bool normalized = flag(t, "normalized", !special);
        char *text = NULL;
        size_t length;
        if (normalized) {
            /* The reference matches normalized tokens by their normalized form. */
            if (!normalize_text(tok, content, strlen(content), &text, &length))
                return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        } else if (!(text = strdup(content))) {
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        }
        if (!added_tokens_add(&tok->added, text, (int32_t)id, special, normalized)) {
            free(text);
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        }
    }
    return added_tokens_finish(&tok->added) ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
}

/* ------------------------------------------------------------------ post-processor, decoder */

static strata_status set_template(loader *ld, const sjson *p)
{
    strata_tokenizer *tok = ld->tok;
    const sjson *single = sjson_get(p, "single"), *specials = sjson_get(p, "special_tokens");
    if (!sjson_is_array(single)) return malformed(ld, "TemplateProcessing.single");
    size_t n = sjson_array_size(single);
    tok->template_items = calloc(n ? n : 1, sizeof *tok->template_items);
    if (!tok->template_items) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
    tok->n_template_items = n;
    for (size_t i = 0; i < n; i++) {
        const sjson *item = sjson_array_at(single, i);
        template_item *out = &tok->template_items[i];
        if (sjson_get(item, "Sequence")) { out->is_sequence = true; continue; }
        const char *name = sjson_as_string(sjson_get(sjson_get(item, "SpecialToken"), "id"));
        const sjson *ids = sjson_get(sjson_get(specials, name ? name : ""), "ids");
        if (!name || !sjson_is_array(ids))
            return strata_fail(STRATA_ERR_FORMAT, "%s: TemplateProcessing.single[%zu] names no special token with ids",
                               ld->path, i);
        out->n_ids = sjson_array_size(ids);
        out->ids = calloc(out->n_ids ? out->n_ids : 1, sizeof *out->ids);
        if (!out->ids) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
        for (size_t k = 0; k < out->n_ids; k++) {
            int64_t id;
            if (!sjson_as_int64(sjson_array_at(ids, k), &id) || id < 0 || id > INT32_MAX)
                return strata_fail(STRATA_ERR_FORMAT, "%s: special token \"%s\" has an invalid id", ld->path, name);
            out->ids[k] = (int32_t)id;
        }
    }
    return STRATA_OK;
}

static strata_status load_post_processor(loader *ld, const sjson *p)
{
    if (!p || sjson_is_null(p)) return STRATA_OK;
    const char *type = type_of(p);
    if (is(type, "ByteLevel")) return STRATA_OK;   /* adjusts offsets only */
    if (is(type, "TemplateProcessing")) return set_template(ld, p);
    if (is(type, "Sequence")) return add_sequence(ld, p, "processors", "post_processor Sequence", load_post_processor);
    return unsupported(ld, "post_processor", type, "TemplateProcessing, ByteLevel, Sequence");
}

static strata_status add_decoder(loader *ld, const sjson *d)
{
    strata_tokenizer *tok = ld->tok;
    const char *type = type_of(d);
    if (is(type, "Sequence")) return add_sequence(ld, d, "decoders", "decoder Sequence", add_decoder);
    if (tok->n_decoders == TOKENIZER_MAX_STEPS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: more than %d decoders", ld->path, TOKENIZER_MAX_STEPS);
    decoder_step *step = &tok->decoders[tok->n_decoders];
    if (is(type, "ByteLevel")) *step = (decoder_step){.kind = DECODE_BYTE_LEVEL};
    else if (is(type, "ByteFallback")) *step = (decoder_step){.kind = DECODE_BYTE_FALLBACK};
    else if (is(type, "Fuse")) *step = (decoder_step){.kind = DECODE_FUSE};
    else if (is(type, "Replace")) {
        const char *pattern = string_pattern(sjson_get(d, "pattern"));
        const char *content = sjson_as_string(sjson_get(d, "content"));
        if (!pattern || !*pattern || !content)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: Replace decoder needs a non-empty String pattern", ld->path);
        *step = (decoder_step){.kind = DECODE_REPLACE, .pattern = strdup(pattern), .replacement = strdup(content)};
    } else if (is(type, "Strip")) {
        const char *content = sjson_as_string(sjson_get(d, "content"));
        int64_t start = 0, stop = 0;
        if (!content || !*content || !sjson_as_int64(sjson_get(d, "start"), &start) ||
            !sjson_as_int64(sjson_get(d, "stop"), &stop) || start < 0 || stop < 0)
            return malformed(ld, "Strip decoder");
        *step = (decoder_step){.kind = DECODE_STRIP, .pattern = strdup(content), .strip_start = (size_t)start,
                               .strip_stop = (size_t)stop};
    } else {
        return unsupported(ld, "decoder", type, "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip");
    }
    tok->n_decoders++;
    if ((step->kind == DECODE_REPLACE && (!step->pattern || !step->replacement)) ||
        (step->kind == DECODE_STRIP && !step->pattern))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
    return STRATA_OK;
}

/* ------------------------------------------------------------------ ids, tokenizer_config.json */

static strata_status build_id_table(loader *ld)
{
    strata_tokenizer *tok = ld->tok;
    int32_t n = 0;
    for (int32_t i = 0; i < tok->model.n_tokens; i++)
        if (tok->model.tokens[i]) n = i + 1;
    for (size_t i = 0; i < tok->added.count; i++)
        if (tok->added.tokens[i].id >= n) n = tok->added.tokens[i].id + 1;
    tok->vocab_size = n;
    tok->id_text = calloc((size_t)n, sizeof *tok->id_text);
    tok->id_special = calloc((size_t)n, sizeof *tok->id_special);
    if (!tok->id_text || !tok->id_special) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ld->path);
    for (int32_t i = 0; i < tok->model.n_tokens && i < n; i++) tok->id_text[i] = tok->model.tokens[i];
    for (size_t i = 0; i < tok->added.count; i++) {
        const added_token *t = &tok->added.tokens[i];
        tok->id_text[t->id] = t->content;
        tok->id_special[t->id] = t->special;
    }
    for (size_t i = 0; i < tok->n_template_items; i++)
        for (size_t k = 0; k < tok->template_items[i].n_ids; k++)
            if (tok->template_items[i].ids[k] >= n)
                return strata_fail(STRATA_ERR_FORMAT, "%s: the post-processor adds id %d, which no token has", ld->path,
                                   tok->template_items[i].ids[k]);
    return STRATA_OK;
}

static int32_t id_of(const strata_tokenizer *tok, const char *text)
{
    if (!text) return -1;
    for (size_t i = 0; i < tok->added.count; i++)
        if (strcmp(tok->added.tokens[i].content, text) == 0) return tok->added.tokens[i].id;
    size_t id;
    return strmap_find(&tok->model.vocab, text, &id) ? (int32_t)id : -1;
}

/* bos_token / eos_token: a string, or an object with "content" (older files). */
static const char *special_name(const sjson *config, const char *key)
{
    const sjson *v = sjson_get(config, key);
    return sjson_as_string(v) ? sjson_as_string(v) : sjson_as_string(sjson_get(v, "content"));
}

static strata_status template_from_flags(loader *ld, const char *config_path, bool add_bos, bool add_eos)
{
    strata_tokenizer *tok = ld->tok;
    for (size_t i = 0; i < tok->n_template_items; i++) free(tok->template_items[i].ids);
    free(tok->template_items);
    tok->template_items = calloc(3, sizeof *tok->template_items);
    if (!tok->template_items) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t n = 0;
    const struct { bool wanted; int32_t id; const char *name; } ends[2] = {{add_bos, tok->bos_id, "bos_token"},
                                                                           {add_eos, tok->eos_id, "eos_token"}};
    for (int e = 0; e < 2; e++) {
        if (e == 1) tok->template_items[n++].is_sequence = true;
        if (!ends[e].wanted) continue;
        if (ends[e].id < 0)
            return strata_fail(STRATA_ERR_FORMAT, "%s: add_%s is set but %s names no token", config_path,
                               e ? "eos_token" : "bos_token", ends[e].name);
        template_item *item = &tok->template_items[n++];
        if (!(item->ids = malloc(sizeof *item->ids))) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        item->ids[0] = ends[e].id;
        item->n_ids = 1;
    }
    tok->n_template_items = n;
    return STRATA_OK;
}

static strata_status load_config(loader *ld, const char *config_path)
{
    strata_tokenizer *tok = ld->tok;
    tok->bos_id = tok->eos_id = -1;
    /* Without a config, the template's first and last special tokens are BOS and EOS. */
    if (tok->n_template_items && !tok->template_items[0].is_sequence && tok->template_items[0].n_ids)
        tok->bos_id = tok->template_items[0].ids[0];
    template_item *last = tok->n_template_items ? &tok->template_items[tok->n_template_items - 1] : NULL;
    if (last && !last->is_sequence && last->n_ids) tok->eos_id = last->ids[0];
    if (!config_path) return STRATA_OK;
    char *data;
    size_t length;
    strata_status st = file_read_all(config_path, 64u << 20, &data, &length);
    if (st) return st;
    sjson_error error;
    sjson *config = sjson_parse_numbers_as_reals(data, length, &error);
    free(data);
    if (!config || !sjson_is_object(config)) {
        sjson_free(config);
        return strata_fail(STRATA_ERR_FORMAT, "%s: not a JSON object (line %d: %s)", config_path, error.line, error.text);
    }
    const char *bos = special_name(config, "bos_token"), *eos = special_name(config, "eos_token");
    if (bos) tok->bos_id = id_of(tok, bos);
    if (eos) tok->eos_id = id_of(tok, eos);
    bool add_bos, add_eos;
    bool has_bos = sjson_as_bool(sjson_get(config, "add_bos_token"), &add_bos);
    bool has_eos = sjson_as_bool(sjson_get(config, "add_eos_token"), &add_eos);
    sjson_free(config);
    if (!has_bos && !has_eos) return STRATA_OK;
    if (!has_bos) add_bos = tok->n_template_items && !tok->template_items[0].is_sequence;
    if (!has_eos) add_eos = last && !last->is_sequence;
    return template_from_flags(ld, config_path, add_bos, add_eos);
}

/* ------------------------------------------------------------------ entry point */

static void free_steps(strata_tokenizer *tok)
{
    for (size_t i = 0; i < tok->n_normalizers; i++) {
        free(tok->normalizers[i].text);
        free(tok->normalizers[i].replacement);
    }
    for (size_t i = 0; i < tok->n_pretokenizers; i++) regex_free(tok->pretokenizers[i].pattern);
    for (size_t i = 0; i < tok->n_decoders; i++) {
        free(tok->decoders[i].pattern);
        free(tok->decoders[i].replacement);
    }
    for (size_t i = 0; i < tok->n_template_items; i++) free(tok->template_items[i].ids);
    free(tok->template_items);
}

void strata_tokenizer_free(strata_tokenizer *tok)
{
    if (!tok) return;
    free_steps(tok);
    bpe_free(&tok->model);
    added_tokens_free(&tok->added);
    free(tok->id_text);
    free(tok->id_special);
    free(tok->path);
    free(tok);
}

static strata_status load_json(loader *ld, const sjson *root)
{
    strata_tokenizer *tok = ld->tok;
    if (!sjson_is_object(root)) return strata_fail(STRATA_ERR_FORMAT, "%s: not a JSON object", ld->path);
    const sjson *truncation = sjson_get(root, "truncation");
    if (truncation && !sjson_is_null(truncation))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: \"truncation\" is set; strata encodes whole texts (remove it)",
                           ld->path);
    strata_status st;
    if ((st = add_normalizer(ld, sjson_get(root, "normalizer")))) return st;
    if ((st = add_pretokenizer(ld, sjson_get(root, "pre_tokenizer")))) return st;
    if ((st = load_model(ld, sjson_get(root, "model")))) return st;
    if ((st = load_added_tokens(ld, sjson_get(root, "added_tokens")))) return st;
    if ((st = load_post_processor(ld, sjson_get(root, "post_processor")))) return st;
    const sjson *decoder = sjson_get(root, "decoder");
    tok->has_decoder = decoder && !sjson_is_null(decoder);
    if (tok->has_decoder && (st = add_decoder(ld, decoder))) return st;
    return build_id_table(ld);
}

strata_status tokenizer_load_json(const char *name, const char *json, size_t length, const char *config_path,
                                  strata_tokenizer **out)
{
    *out = NULL;
    strata_tokenizer *tok = calloc(1, sizeof *tok);
    if (!tok || !(tok->path = strdup(name))) {
        free(tok);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    byte_level_map_init(&tok->byte_map);
    loader ld = {tok, tok->path};
    sjson_error error;
    sjson *root = sjson_parse(json, length, false, &error);
    strata_status st = root ? load_json(&ld, root)
                            : strata_fail(STRATA_ERR_FORMAT, "%s: invalid JSON at line %d, column %d: %s", name,
                                          error.line, error.column, error.text);
    sjson_free(root);
    if (st == STRATA_OK) st = load_config(&ld, config_path);
    if (st) {
        strata_tokenizer_free(tok);
        return st;
    }
    *out = tok;
    return STRATA_OK;
}

strata_status strata_tokenizer_load(const char *path, strata_tokenizer **out)
{
    if (!path || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_tokenizer_load: NULL argument");
    *out = NULL;
    char *json_path = path_is_dir(path) ? path_join(path, "tokenizer.json") : strdup(path);
    char *config_path = NULL;
    if (json_path) {
        const char *slash = strrchr(json_path, '/');
        if (!slash) config_path = strdup("tokenizer_config.json");
        else if ((config_path = malloc((size_t)(slash - json_path) + 32)))
            sprintf(config_path, "%.*s/tokenizer_config.json", (int)(slash - json_path), json_path);
    }
    char *data = NULL;
    size_t length;
    strata_status st = !json_path || !config_path ? strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory")
                                                  : file_read_all(json_path, MAX_TOKENIZER_JSON_BYTES, &data, &length);
    if (st == STRATA_OK) st = tokenizer_load_json(json_path, data, length, path_exists(config_path) ? config_path : NULL, out);
    free(data);
    free(json_path);
    free(config_path);
    return st;
}
