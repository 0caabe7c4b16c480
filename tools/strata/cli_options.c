/*
 * cli_options.c — the table-driven option parser and help writer (see cli_options.h).
 */
#include "cli_options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { MAX_OPTIONS = 64, HELP_COLUMN = 23 };

_Static_assert(sizeof(strata_calib_format) == sizeof(int), "CLI_CHOICE stores an int");

const cli_choice CLI_CALIB_FORMATS[] = {
    {"paragraphs", STRATA_CALIB_PARAGRAPHS}, {"lines", STRATA_CALIB_LINES}, {"jsonl", STRATA_CALIB_JSONL},
    {"ids", STRATA_CALIB_IDS},               {NULL, 0},
};

const cli_choice CLI_ATTENTION_MODES[] = {
    {"auto", STRATA_ATTENTION_AUTO}, {"scheme", STRATA_ATTENTION_SCHEME}, {"none", STRATA_ATTENTION_NONE},
    {"fp8", STRATA_ATTENTION_FP8},   {NULL, 0},
};
_Static_assert(sizeof(strata_attention_quant) == sizeof(int), "CLI_CHOICE stores an int");

void cli_scheme_list(bool calibrated, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < STRATA_SCHEME_COUNT; i++) {
        strata_scheme s = (strata_scheme)i;
        if (!calibrated && !strata_scheme_convertible(s)) continue;
        int n = snprintf(out + used, size - used, "%s%s", used ? ", " : "", strata_scheme_name(s));
        if (n < 0 || (size_t)n >= size - used) break;
        used += (size_t)n;
    }
}

static void *field(void *settings, size_t offset) { return (char *)settings + offset; }

/* "a, b or c" of a choice list. */
static void choice_names(const cli_choice *choices, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; choices[i].name; i++) {
        const char *sep = i == 0 ? "" : choices[i + 1].name ? ", " : " or ";
        int n = snprintf(out + used, size - used, "%s%s", sep, choices[i].name);
        if (n < 0 || (size_t)n >= size - used) break;
        used += (size_t)n;
    }
}

/* Stores the value of one option; EXIT_USAGE (with the message printed) when it is bad. */
static int apply(const cli_command *command, const cli_option *o, const char *arg, void *settings)
{
    long long v;
    double d;
    char names[512];
    switch (o->kind) {
    case CLI_FLAG: *(bool *)field(settings, o->offset) = true; return -1;
    case CLI_STRING: *(const char **)field(settings, o->offset) = arg; return -1;
    case CLI_INT:
        if (!cli_parse_int(arg, o->lo, o->hi, &v))
            return cli_usage_error(command->name, "--%s must be a whole number in %lld..%lld", o->name,
                                   (long long)o->lo, (long long)o->hi);
        *(int64_t *)field(settings, o->offset) = v;
        return -1;
    case CLI_MIB:
        if (!cli_parse_int(arg, o->lo, o->hi, &v))
            return cli_usage_error(command->name, "--%s must be a whole number of MiB in %lld..%lld", o->name,
                                   (long long)o->lo, (long long)o->hi);
        *(uint64_t *)field(settings, o->offset) = (uint64_t)v << 20;
        return -1;
    case CLI_DOUBLE:
        if (!cli_parse_double(arg, 1e-300, (double)o->hi, &d))
            return cli_usage_error(command->name, "--%s must be a number in (0, %lld]", o->name, (long long)o->hi);
        *(double *)field(settings, o->offset) = d;
        return -1;
    case CLI_CHOICE:
        for (int i = 0; o->choices[i].name; i++)
            if (strcmp(arg, o->choices[i].name) == 0) {
                *(int *)field(settings, o->offset) = o->choices[i].value;
                return -1;
            }
        choice_names(o->choices, names, sizeof names);
        return cli_usage_error(command->name, "--%s must be %s, not '%s'", o->name, names, arg);
    case CLI_LIST: {
        size_t *count = field(settings, o->extra_offset);
        if (*count >= (size_t)o->hi)
            return cli_usage_error(command->name, "at most %lld --%s values", (long long)o->hi, o->name);
        ((const char **)field(settings, o->offset))[(*count)++] = arg;
        return -1;
    }
    case CLI_THREADS:
        if (!cli_parse_int(arg, 1, 256, &v)) return cli_usage_error(command->name, "--%s must be 1..256", o->name);
        strata_set_num_threads((int)v);
        return -1;
    case CLI_SCHEME: {
        strata_scheme scheme;
        if (!strata_scheme_from_name(arg, &scheme)) {
            cli_scheme_list(!o->convertible, names, sizeof names);
            return cli_usage_error(command->name, "unknown scheme '%s' (%s)", arg, names);
        }
        *(strata_scheme *)field(settings, o->offset) = scheme;
        *(bool *)field(settings, o->extra_offset) = true;
        return -1;
    }
    case CLI_FAMILY:
        for (int f = 0; f < STRATA_FAMILY_COUNT; f++)
            if (strcmp(strata_family_name((strata_family)f), arg) == 0) {
                *(strata_family *)field(settings, o->offset) = (strata_family)f;
                return -1;
            }
        return cli_usage_error(command->name, "unknown architecture '%s'", arg);
    }
    return cli_usage_error(command->name, "--%s: unknown option kind", o->name);
}

int cli_parse(const cli_command *command, int argc, char **argv, void *settings, const char **operand)
{
    struct option longs[MAX_OPTIONS + 2];
    char shorts[2 * MAX_OPTIONS + 2] = "h";
    size_t n_shorts = 1;
    if (command->n_options > MAX_OPTIONS) return cli_usage_error(command->name, "too many options");
    for (size_t i = 0; i < command->n_options; i++) {
        const cli_option *o = &command->options[i];
        bool takes = o->kind != CLI_FLAG;
        longs[i] = (struct option){o->name, takes ? required_argument : no_argument, NULL, 256 + (int)i};
        if (o->short_name) {
            shorts[n_shorts++] = o->short_name;
            if (takes) shorts[n_shorts++] = ':';
        }
    }
    shorts[n_shorts] = '\0';
    longs[command->n_options] = (struct option){"help", no_argument, NULL, 'h'};
    longs[command->n_options + 1] = (struct option){0, 0, 0, 0};
    bool seen[MAX_OPTIONS] = {false};
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, shorts, longs, NULL)) != -1;) {
        if (c == 'h') {
            cli_print_help(command);
            return EXIT_OK;
        }
        const cli_option *o = NULL;
        if (c >= 256 && c < 256 + (int)command->n_options) o = &command->options[c - 256];
        for (size_t i = 0; !o && c < 256 && i < command->n_options; i++)
            if (command->options[i].short_name == c) o = &command->options[i];
        if (!o) return cli_usage_error(command->name, "unknown option or missing value '%s'", argv[optind - 1]);
        seen[o - command->options] = true;
        int code = apply(command, o, optarg, settings);
        if (code >= 0) return code;
    }
    if (command->operand) {
        if (optind >= argc) return cli_usage_error(command->name, "missing %s", command->operand);
        *operand = argv[optind++];
    }
    if (optind < argc) return cli_usage_error(command->name, "unexpected argument '%s'", argv[optind]);
    for (size_t i = 0; i < command->n_options; i++) {
        const cli_option *o = &command->options[i];
        if (!o->required || seen[i]) continue;
        if (o->short_name) return cli_usage_error(command->name, "missing -%c %s", o->short_name, o->value);
        return cli_usage_error(command->name, "missing --%s%s%s", o->name, o->value ? " " : "", o->value ? o->value : "");
    }
    return -1;
}

/* "--name VALUE" (with "-o, " before it when it has a short name). */
static int option_label(const cli_option *o, char *out, size_t size)
{
    char short_part[8] = "";
    if (o->short_name) snprintf(short_part, sizeof short_part, "-%c, ", o->short_name);
    return snprintf(out, size, "%s--%s%s%s", short_part, o->name, o->value ? " " : "", o->value ? o->value : "");
}

void cli_print_help(const cli_command *command)
{
    /* The usage line: the operand, the required options, then the rest in brackets, wrapped. */
    char line[128];
    int indent = snprintf(line, sizeof line, "usage: strata %s", command->name);
    printf("%s", line);
    int column = indent;
    const char *operand = command->operand ? command->operand : "";
    if (operand[0]) column += printf(" %s", operand);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < command->n_options; i++) {
            const cli_option *o = &command->options[i];
            if (o->required != (pass == 0)) continue;
            char label[96], item[112];
            snprintf(label, sizeof label, "%s%s%s%s", o->short_name ? "-" : "--",
                     o->short_name ? (char[2]){o->short_name, 0} : o->name, o->value ? " " : "",
                     o->value ? o->value : "");
            snprintf(item, sizeof item, o->required ? "%s" : "[%s]%s", label, o->kind == CLI_LIST ? "..." : "");
            if (column + 1 + (int)strlen(item) > 100) column = printf("\n%*s", indent, "") - 1;
            column += printf(" %s", item);
        }
    }
    printf("\n\n%s\n", command->about);
    for (size_t i = 0; i < command->n_options; i++) {
        const cli_option *o = &command->options[i];
        char label[96];
        int width = option_label(o, label, sizeof label);
        printf("  %s", label);
        if (width + 2 > HELP_COLUMN - 2) printf("\n%*s", HELP_COLUMN, "");
        else printf("%*s", HELP_COLUMN - 2 - width, "");
        for (const char *h = o->help; *h; h++) {
            putchar(*h);
            if (*h == '\n') printf("%*s", HELP_COLUMN, "");
        }
        putchar('\n');
    }
    printf("  -h, --help\n");
}
