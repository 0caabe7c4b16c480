/*
 * cli.h — what every strata subcommand shares: exit codes, error printing, the log
 * callback, and global verbosity.
 *
 * Exit codes: 0 success; 1 runtime failure ("strata: error: ..." on stderr); 2 usage
 * error (one line on stderr). -h/--help prints to stdout and exits 0.
 */
#ifndef STRATA_CLI_H
#define STRATA_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "strata.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct cli_context {
    int verbosity;   /* 0 quiet, 1 normal, 2 verbose */
} cli_context;

/* Prints "strata: error: <last error>" and returns EXIT_RUNTIME. */
int cli_fail(strata_status status);
/* Prints "strata <command>: <message>" plus a hint, returns EXIT_USAGE. */
int cli_usage_error(const char *command, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parses a decimal integer in [lo, hi] (the whole text); false otherwise. */
bool cli_parse_int(const char *text, long long lo, long long hi, long long *out);
/* A finite number in [lo, hi]. */
bool cli_parse_double(const char *text, double lo, double hi, double *out);
/* Routes library log messages to stderr according to verbosity. */
void cli_install_logging(const cli_context *ctx);

/* Reads a text file and encodes it whole (with special tokens) with the tokenizer at
 * tokenizer_path; *ids is freed with strata_free. */
strata_status cli_tokenize_file(const char *tokenizer_path, const char *text_path, int32_t **ids, int64_t *n_ids);

/* Writes text to stdout when output is NULL, else to output under a temporary name renamed
 * into place (an existing file is replaced whole or left as it was). An exit code. */
int cli_write_text(const char *output, const char *text, size_t length);

/* The memory limit of quantize and resume when --max-memory is not given: 80% of the
 * memory available now (MemAvailable), so a layer bigger than what remains is grouped and
 * the activation store spills instead of the run being killed; 0 when unknown (no limit).
 * The output never depends on it. Says so on stderr unless quiet. */
uint64_t cli_default_memory_limit(const cli_context *ctx);

/* The progress line of long runs on stderr ("layer 7/32 | 312 tok/s | ... | ETA 4m10s"). */
void cli_print_progress(const strata_progress *progress, void *user);

int cmd_quantize(int argc, char **argv, const cli_context *ctx);
int cmd_resume(int argc, char **argv, const cli_context *ctx);
int cmd_convert(int argc, char **argv, const cli_context *ctx);
int cmd_inspect(int argc, char **argv, const cli_context *ctx);
int cmd_generate(int argc, char **argv, const cli_context *ctx);
int cmd_demo(int argc, char **argv, const cli_context *ctx);
int cmd_eval(int argc, char **argv, const cli_context *ctx);
int cmd_tokenize(int argc, char **argv, const cli_context *ctx);
int cmd_report(int argc, char **argv, const cli_context *ctx);

#endif
