/*
 * cli_options.h — one option table per command, from which its help, its parsing and the
 * validation of every value come (zstd's programs/ keep the same discipline by hand).
 *
 * A command describes its options as cli_option rows pointing (by offset) into a settings
 * struct of its own; cli_parse fills that struct from argv and checks every value against
 * its row (bounds, choices, scheme names), and cli_print_help writes the usage line and
 * one entry per row. Nothing about an option is written twice.
 */
#ifndef STRATA_CLI_OPTIONS_H
#define STRATA_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

typedef enum cli_kind {
    CLI_FLAG = 0,   /* bool, set when given */
    CLI_STRING,     /* const char * (the argument itself) */
    CLI_INT,        /* int64_t in [lo, hi] */
    CLI_MIB,        /* uint64_t bytes from a whole number of MiB in [lo, hi] */
    CLI_DOUBLE,     /* double in (0, hi] */
    CLI_CHOICE,     /* int, the value of the named choice */
    CLI_LIST,       /* repeatable: an array const char *[hi] in the settings, with a size_t count */
    CLI_THREADS,    /* 1..256, applied with strata_set_num_threads */
    CLI_SCHEME,     /* strata_scheme by name (strata_scheme_from_name); sets a have_ flag */
    CLI_FAMILY,     /* strata_family by name (strata_family_name) */
} cli_kind;

typedef struct cli_choice {
    const char *name;
    int value;
} cli_choice;

typedef struct cli_option {
    const char *name;           /* long name without "--" */
    char short_name;            /* 'o', or 0 */
    const char *value;          /* placeholder in help ("N", "DIR"); NULL for flags */
    cli_kind kind;
    size_t offset;              /* of the target in the settings struct */
    size_t extra_offset;        /* CLI_LIST: its size_t count; CLI_SCHEME: a bool set when given */
    int64_t lo, hi;             /* CLI_INT / CLI_MIB bounds; CLI_LIST: hi is the capacity */
    const cli_choice *choices;  /* CLI_CHOICE: ends with a NULL name */
    bool required;
    bool convertible;           /* CLI_SCHEME: name only the schemes strata convert takes */
    const char *help;           /* description; '\n' continues it on an indented line */
} cli_option;

typedef struct cli_command {
    const char *name;           /* "convert" */
    const char *operand;        /* "MODEL_DIR": the one positional argument */
    const char *about;          /* text between the usage line and the options */
    const cli_option *options;
    size_t n_options;
} cli_command;

/* Rows several commands share; `type` is the command's settings struct. */
extern const cli_choice CLI_CALIB_FORMATS[];
extern const cli_choice CLI_ATTENTION_MODES[]; /* --attention of quantize and convert */
#define CLI_THREADS_OPTION {.name = "threads", .value = "N", .kind = CLI_THREADS, .help = "worker threads (default: all CPUs)"}
#define CLI_CALIB_OPTIONS(type, calib)                                                                                 \
    {.name = "calib-samples", .value = "N", .kind = CLI_INT, .offset = offsetof(type, calib.n_samples), .lo = 1,      \
     .hi = INT64_C(1) << 30, .help = "calibration windows to draw"},                                                  \
    {.name = "calib-seq", .value = "T", .kind = CLI_INT, .offset = offsetof(type, calib.seq_len), .lo = 1,            \
     .hi = INT64_C(1) << 24, .help = "tokens per window"},                                                            \
    {.name = "seed", .value = "S", .kind = CLI_INT, .offset = offsetof(type, calib.seed), .lo = 0,                    \
     .hi = INT64_C(1) << 62, .help = "which windows are drawn (default 0)"},                                          \
    {.name = "calib-format", .value = "F", .kind = CLI_CHOICE, .offset = offsetof(type, calib.format),                \
     .choices = CLI_CALIB_FORMATS,                                                                                    \
     .help = "paragraphs (documents separated by blank lines; default for\n"                                           \
             "text), lines (one document per line), jsonl (default for\n"                                              \
             "*.jsonl), ids (default for *.bin and *.json)"},                                                         \
    {.name = "calib-field", .value = "NAME", .kind = CLI_STRING, .offset = offsetof(type, calib.text_field),          \
     .help = "the JSON Lines field holding the text (default \"text\")"}

/* Parses argv (argv[0] is the command's name) into settings and *operand. Returns -1 when
 * the command should run; otherwise the exit code: EXIT_OK after printing help (-h,
 * --help), EXIT_USAGE after one line on stderr naming the option and what it takes. */
int cli_parse(const cli_command *command, int argc, char **argv, void *settings, const char **operand);

/* The command's help on stdout: the usage line from the table, about, and each option. */
void cli_print_help(const cli_command *command);

/* "fp8, fp8-dynamic, ...": the names of the schemes accepted (all when calibrated is true,
 * else those that need no calibration data), into out. */
void cli_scheme_list(bool calibrated, char *out, size_t size);

#endif
