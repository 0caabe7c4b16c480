/*
 * cmd_tokenize.c — `strata tokenize TOKENIZER ...`: the tokenizer and the calibration
 * dataset loader from the command line. Three modes:
 *   --text FILE            encode a text file (ids on stdout, or -o FILE)
 *   --decode FILE          decode ids back to text
 *   --calib FILE ...       draw the calibration windows `strata quantize` would use
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_options.h"

typedef struct tokenize_settings {
    const char *text_path, *decode_path, *calib_path, *output;
    bool no_special, keep_special;
    strata_calib_params calib;
} tokenize_settings;

#define AT(member) offsetof(tokenize_settings, member)

static const cli_option OPTIONS[] = {
    {.name = "text", .value = "FILE", .kind = CLI_STRING, .offset = AT(text_path),
     .help = "encode the whole file (invalid UTF-8 is read as U+FFFD)"},
    {.name = "no-special", .kind = CLI_FLAG, .offset = AT(no_special),
     .help = "do not add the special tokens the tokenizer adds (BOS)"},
    {.name = "decode", .value = "FILE", .kind = CLI_STRING, .offset = AT(decode_path),
     .help = "decode ids (*.json, *.bin or whitespace-separated) to text"},
    {.name = "keep-special", .kind = CLI_FLAG, .offset = AT(keep_special),
     .help = "keep special tokens such as BOS when decoding"},
    {.name = "calib", .value = "FILE", .kind = CLI_STRING, .offset = AT(calib_path),
     .help = "calibration dataset: N windows of T tokens, drawn with --seed\n"
             "from the packed documents (BOS first when the tokenizer adds it)"},
    CLI_CALIB_OPTIONS(tokenize_settings, calib),
    {.name = "output", .short_name = 'o', .value = "OUT", .kind = CLI_STRING, .offset = AT(output),
     .help = "write ids to OUT (*.bin int32, *.json array, else text) or\n"
             "decoded text; default stdout"},
};

static const cli_command COMMAND = {
    .name = "tokenize",
    .operand = "TOKENIZER",
    .about = "Three modes: --text FILE encodes a file; --decode IDS_FILE decodes ids; --calib FILE\n"
             "--calib-samples N --calib-seq T draws the calibration windows strata quantize would use.\n"
             "TOKENIZER is a tokenizer.json or a model directory holding one (tokenizer_config.json\n"
             "beside it is read for BOS/EOS). Ids come out the way Hugging Face tokenizers gives them.\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

static const char *format_name(strata_calib_format format)
{
    switch (format) {
    case STRATA_CALIB_PARAGRAPHS: return "paragraphs";
    case STRATA_CALIB_LINES: return "lines";
    case STRATA_CALIB_JSONL: return "jsonl";
    case STRATA_CALIB_IDS: return "ids";
    default: return "auto";
    }
}

strata_status cli_tokenize_file(const char *tokenizer_path, const char *text_path, int32_t **ids, int64_t *n_ids)
{
    strata_tokenizer *tok;
    strata_status status = strata_tokenizer_load(tokenizer_path, &tok);
    if (status != STRATA_OK) return status;
    status = strata_tokenizer_encode_file(tok, text_path, true, ids, n_ids);
    strata_tokenizer_free(tok);
    return status;
}

static int print_ids(const int32_t *ids, int64_t n, int64_t per_line)
{
    for (int64_t i = 0; i < n; i++)
        printf("%d%s", ids[i], i + 1 == n || (per_line && (i + 1) % per_line == 0) ? "\n" : " ");
    return EXIT_OK;
}

static bool same_file(const char *a, const char *b)
{
    struct stat x, y;
    return a && b && stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

/* The output must not replace an input: the text, ids or calibration file, the tokenizer,
 * or any file of the model directory the tokenizer was taken from. */
static bool output_is_input(const char *output, const char *const *inputs, size_t n, const char *tokenizer_path)
{
    for (size_t i = 0; i < n; i++)
        if (same_file(output, inputs[i])) return true;
    struct stat st;
    if (tokenizer_path && stat(tokenizer_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", output);
        char *slash = strrchr(parent, '/');
        if (slash) *slash = '\0';
        return same_file(slash ? (parent[0] ? parent : "/") : ".", tokenizer_path);
    }
    return false;
}

int cmd_tokenize(int argc, char **argv, const cli_context *ctx)
{
    tokenize_settings s = {0};
    const char *tokenizer_path = NULL;
    int code = cli_parse(&COMMAND, argc, argv, &s, &tokenizer_path);
    if (code >= 0) return code;
    const char *text_path = s.text_path, *decode_path = s.decode_path, *calib_path = s.calib_path, *output = s.output;
    bool add_special = !s.no_special, keep_special = s.keep_special;
    strata_calib_params calib = s.calib;
    if ((text_path != NULL) + (decode_path != NULL) + (calib_path != NULL) != 1)
        return cli_usage_error("tokenize", "give one of --text, --decode or --calib");
    if (calib_path && (!calib.n_samples || !calib.seq_len))
        return cli_usage_error("tokenize", "--calib needs --calib-samples N and --calib-seq T");

    const char *inputs[4] = {text_path, decode_path, calib_path, tokenizer_path};
    if (output && output_is_input(output, inputs, 4, tokenizer_path)) {
        fprintf(stderr, "strata: error: refusing to write %s: it is an input of this run (or in the model "
                        "directory %s); choose another -o\n", output, tokenizer_path);
        return EXIT_RUNTIME;
    }

    strata_tokenizer *tok;
    strata_status status = strata_tokenizer_load(tokenizer_path, &tok);
    if (status != STRATA_OK) return cli_fail(status);
    int32_t *ids = NULL;
    int64_t n = 0, per_line = 0;
    int rc = EXIT_OK;
    if (text_path) {
        status = strata_tokenizer_encode_file(tok, text_path, add_special, &ids, &n);
    } else if (calib_path) {
        strata_calib_info info;
        status = strata_calib_load(calib_path, tok, &calib, &ids, &info);
        if (status == STRATA_OK && ctx->verbosity > 0)
            fprintf(stderr, "strata: %s (%s): %lld documents, %lld tokens, %lld windows of %lld; drew %lld with seed %llu\n",
                    calib_path, format_name(info.format), (long long)info.n_documents, (long long)info.n_stream_tokens,
                    (long long)info.n_windows, (long long)calib.seq_len, (long long)calib.n_samples,
                    (unsigned long long)calib.seed);
        n = calib.n_samples * calib.seq_len;
        per_line = calib.seq_len;
    } else {
        status = strata_tokens_read(decode_path, &ids, &n);
        char *text = NULL;
        size_t length = 0;
        if (status == STRATA_OK) status = strata_tokenizer_decode(tok, ids, n, !keep_special, &text, &length);
        if (status == STRATA_OK) rc = cli_write_text(output, text, length);
        strata_free(text);
        strata_free(ids);
        strata_tokenizer_free(tok);
        return status != STRATA_OK ? cli_fail(status) : rc;
    }
    strata_tokenizer_free(tok);
    if (status == STRATA_OK)
        rc = output ? (strata_tokens_write(output, ids, n, per_line) == STRATA_OK ? EXIT_OK : cli_fail(STRATA_ERR_IO))
                    : print_ids(ids, n, per_line);
    strata_free(ids);
    return status != STRATA_OK ? cli_fail(status) : rc;
}
