/*
 * cmd_convert.c — `strata convert MODEL -o OUT --scheme S`: data-free conversion through
 * the streaming loader (strata_convert_model; docs/CONVERT.md).
 */
#include <stddef.h>
#include <stdio.h>

#include "cli.h"
#include "cli_options.h"

enum { MAX_EXCLUDE = 64 };

typedef struct convert_settings {
    strata_convert_params params;
    bool have_scheme;
    const char *exclude[MAX_EXCLUDE];
    size_t n_exclude;
} convert_settings;

#define AT(member) offsetof(convert_settings, member)

static const cli_choice FORMATS[] = {
    {"modelopt", STRATA_EXPORT_MODELOPT}, {"compressed-tensors", STRATA_EXPORT_COMPRESSED_TENSORS}, {NULL, 0}};
_Static_assert(sizeof(strata_export_format) == sizeof(int), "CLI_CHOICE stores an int");

static const cli_option OPTIONS[] = {
    {.name = "scheme", .value = "S", .kind = CLI_SCHEME, .offset = AT(params.scheme), .extra_offset = AT(have_scheme),
     .required = true, .convertible = true,
     .help = "fp8-dynamic (per-channel FP8 weights, per-token inputs),\n"
             "fp8-block (FP8 weights in 128x128 tiles, weight-only),\n"
             "nvfp4-weight-only, mxfp4 (inputs quantized at run time), int8\n"
             "(per-channel weight-only), int4 (group 128 weight-only),\n"
             "int4-asym and int8-w8a8 (compressed-tensors only). fp8 and\n"
             "nvfp4 need calibrated input scales: use strata quantize"},
    {.name = "format", .value = "F", .kind = CLI_CHOICE, .offset = AT(params.format), .choices = FORMATS,
     .help = "modelopt (default) or compressed-tensors (vLLM's native format,\n"
             "as llm-compressor saves it)"},
    {.name = "output", .short_name = 'o', .value = "DIR", .kind = CLI_STRING, .offset = AT(params.output_dir),
     .required = true,
     .help = "output directory: new or empty; the output is built in\n"
             "DIR/.strata-partial-<id> and moved into place at the end,\n"
             "strata_output.json (its list of files) last. Never the model's"},
    {.name = "exclude", .value = "PATTERN", .kind = CLI_LIST, .offset = AT(exclude), .extra_offset = AT(n_exclude),
     .hi = MAX_EXCLUDE,
     .help = "leave matching modules unquantized (glob on module names;\n"
             "repeatable). lm_head, embeddings and routers are never quantized"},
    {.name = "attention", .value = "MODE", .kind = CLI_CHOICE, .offset = AT(params.attention),
     .choices = CLI_ATTENTION_MODES,
     .help = "auto (default), scheme or none, as for strata quantize"},
    {.name = "max-shard-mib", .value = "N", .kind = CLI_MIB, .offset = AT(params.max_shard_bytes), .lo = 1,
     .hi = INT64_C(1) << 30, .help = "start a new output shard past N MiB (default 10 GB)"},
    {.name = "read-mib", .value = "N", .kind = CLI_MIB, .offset = AT(params.read_bytes), .lo = 1, .hi = 1 << 20,
     .help = "the most read at once (default 1024): a tensor up to this size\n"
             "is read whole and quantized without a copy, larger ones in pieces;\n"
             "two read buffers of up to this size are most of the memory used"},
    {.name = "threads", .value = "N", .kind = CLI_THREADS, .help = "threads for quantization (default: all cores)"},
    {.name = "overwrite", .kind = CLI_FLAG, .offset = AT(params.overwrite),
     .help = "replace an earlier strata output in DIR (only the files its\n"
             "strata_output.json lists; other files stay)"},
    {.name = "allow-non-finite", .kind = CLI_FLAG, .offset = AT(params.allow_non_finite),
     .help = "write tensors holding NaN/Inf (a warning each) instead of failing"},
};

static const cli_command COMMAND = {
    .name = "convert",
    .operand = "MODEL_DIR",
    .about = "Quantizes a bf16/fp16/fp32 checkpoint's weights without calibration data, streaming:\n"
             "each shard is read once and every weight is quantized the moment it has been read,\n"
             "so memory holds a tensor or two, not the model. Writes a ModelOpt checkpoint (shards,\n"
             "config.json with quantization_config, hf_quant_config.json, tokenizer files); weight\n"
             "scales equal those of strata quantize --algo max (docs/CONVERT.md).\n",
    .options = OPTIONS,
    .n_options = sizeof OPTIONS / sizeof OPTIONS[0],
};

int cmd_convert(int argc, char **argv, const cli_context *ctx)
{
    convert_settings s = {0};
    int code = cli_parse(&COMMAND, argc, argv, &s, &s.params.model_dir);
    if (code >= 0) return code;
    s.params.exclude = s.exclude;
    s.params.n_exclude = s.n_exclude;
    strata_convert_result result;
    strata_status status = strata_convert_model(&s.params, &result);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0)
        fprintf(stderr, "strata: %lld weights quantized, %lld tensors copied; %.2f GiB read in %.1f s; at most %.1f MiB "
                        "in flight\n",
                (long long)result.n_quantized, (long long)result.n_copied, (double)result.bytes_read / (1u << 30),
                result.seconds, (double)result.peak_bytes_in_flight / (1u << 20));
    if (ctx->verbosity > 0 && result.n_non_finite_tensors > 0)
        fprintf(stderr, "strata: warning: %lld tensor%s written with NaN/Inf (--allow-non-finite)\n",
                (long long)result.n_non_finite_tensors, result.n_non_finite_tensors == 1 ? "" : "s");
    printf("%s\n", s.params.output_dir);
    return EXIT_OK;
}
