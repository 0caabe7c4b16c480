/*
 * tokenizer_internal.h — strata_tokenizer: the stages of a tokenizer.json as plain data.
 *
 *   text -> [added tokens matched in raw text] -> normalizer -> [added tokens matched in
 *   normalized text] -> pre-tokenizer -> BPE per word -> post-processor (BOS/EOS template)
 *   ids  -> tokens -> decoder steps -> text
 *
 * tokenizer_load.c fills the structure (refusing by name whatever strata does not
 * implement); normalizer.c, pretokenizer.c and decoder.c run the stages; tokenizer.c joins
 * them behind the public API.
 */
#ifndef STRATA_TOKENIZER_INTERNAL_H
#define STRATA_TOKENIZER_INTERNAL_H

#include "strata.h"
#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pieces.h"
#include "tokenizer/regex.h"
#include "tokenizer/unicode.h"

typedef enum normalizer_kind { NORMALIZE_UNICODE, NORMALIZE_PREPEND, NORMALIZE_REPLACE } normalizer_kind;

typedef struct normalizer_step {
    normalizer_kind kind;
    unicode_form form;       /* NORMALIZE_UNICODE */
    char *text;              /* PREPEND: the prefix; REPLACE: the pattern */
    char *replacement;       /* REPLACE */
} normalizer_step;

typedef enum split_behavior { SPLIT_ISOLATED, SPLIT_REMOVED, SPLIT_MERGED_WITH_PREVIOUS, SPLIT_MERGED_WITH_NEXT } split_behavior;

typedef enum pretokenizer_kind { PRETOKENIZE_SPLIT, PRETOKENIZE_BYTE_LEVEL } pretokenizer_kind;

typedef struct pretokenizer_step {
    pretokenizer_kind kind;
    regex *pattern;          /* SPLIT, and BYTE_LEVEL with use_regex (GPT-2's pattern) */
    split_behavior behavior; /* SPLIT */
    bool invert;             /* SPLIT: the pieces between matches are the delimiters */
    bool add_prefix_space;   /* BYTE_LEVEL */
} pretokenizer_step;

typedef enum decoder_kind { DECODE_BYTE_LEVEL, DECODE_REPLACE, DECODE_BYTE_FALLBACK, DECODE_FUSE, DECODE_STRIP } decoder_kind;

typedef struct decoder_step {
    decoder_kind kind;
    char *pattern, *replacement;   /* REPLACE; STRIP: pattern is the character stripped */
    size_t strip_start, strip_stop;
} decoder_step;

/* One item of the post-processor's template for a single sequence. */
typedef struct template_item {
    bool is_sequence;        /* the encoded text itself */
    int32_t *ids;            /* a special token's ids (usually one) */
    size_t n_ids;
} template_item;

#define TOKENIZER_MAX_STEPS 16

struct strata_tokenizer {
    char *path;                         /* the tokenizer.json, for messages */
    normalizer_step normalizers[TOKENIZER_MAX_STEPS];
    size_t n_normalizers;
    pretokenizer_step pretokenizers[TOKENIZER_MAX_STEPS];
    size_t n_pretokenizers;
    bool byte_level;                    /* a ByteLevel pre-tokenizer maps bytes to characters */
    byte_level_map byte_map;
    bpe model;
    added_tokens added;
    template_item *template_items;      /* (n_template_items); NULL: no special tokens added */
    size_t n_template_items;
    bool has_decoder;
    decoder_step decoders[TOKENIZER_MAX_STEPS];
    size_t n_decoders;
    int32_t vocab_size;                 /* 1 + the largest id of the model or an added token */
    const char **id_text;               /* (vocab_size) id -> token text, NULL for gaps */
    bool *id_special;                   /* (vocab_size) special added tokens */
    int32_t bos_id, eos_id;             /* -1 when none */
};

/* Builds a tokenizer from tokenizer.json bytes; name is used in messages. config_path
 * names a tokenizer_config.json to read, or is NULL. */
strata_status tokenizer_load_json(const char *name, const char *json, size_t length, const char *config_path,
                                  strata_tokenizer **out);

/* Runs the normalizer steps on s[0..n); the result replaces *out (malloc'd, NUL-terminated). */
bool normalize_text(const strata_tokenizer *tok, const char *s, size_t n, char **out, size_t *out_length);

/* Scratch for one encoding thread. */
typedef struct encode_scratch {
    regex_matcher *matchers[TOKENIZER_MAX_STEPS];  /* per pre-tokenizer step */
    pieces words, next;
    bpe_scratch bpe;
} encode_scratch;

/* Splits normalized text into the words BPE encodes (in scratch->words). false with the
 * thread's error set when the regex engine or an allocation fails. */
strata_status pretokenize(const strata_tokenizer *tok, encode_scratch *scratch, const char *s, size_t n);

/* Decodes tokens (one piece per id) into text. */
strata_status decode_tokens(const strata_tokenizer *tok, pieces *tokens, char **text, size_t *length);

#endif
