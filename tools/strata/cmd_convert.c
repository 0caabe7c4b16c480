/*
 * cmd_convert.c — `strata convert MODEL -o OUT --scheme S`: data-free conversion through
 * the streaming loader (strata_convert_model; docs/CONVERT.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { MAX_EXCLUDE = 64 };

static void convert_help(void)
{
    printf("usage: strata convert MODEL_DIR -o OUT_DIR --scheme SCHEME [--exclude PATTERN]...\n"
           "                     [--max-shard-mib N] [--read-mib N] [--threads N] [--overwrite]\n"
           "                     [--allow-non-finite]\n"
           "\n"
           "Quantizes a bf16/fp16/fp32 checkpoint's weights without calibration data, streaming:\n"
           "each shard is read once and every weight is quantized the moment it has been read,\n"
           "so memory holds a tensor or two, not the model. Writes a ModelOpt checkpoint (shards,\n"
           "config.json with quantization_config, hf_quant_config.json, tokenizer files); weight\n"
           "scales equal those of strata quantize --algo max (docs/CONVERT.md).\n"
           "\n"
           "  --scheme S         fp8-dynamic (per-channel FP8 weights, per-token inputs),\n"
           "                     fp8-block (FP8 weights in 128x128 tiles, weight-only),\n"
           "                     nvfp4-weight-only, mxfp4 (inputs quantized at run time), int8\n"
           "                     (per-channel weight-only), int4 (group 128 weight-only). fp8 and\n"
           "                     nvfp4 need calibrated input scales: use strata quantize\n"
           "  --exclude PATTERN  leave matching modules unquantized (glob on module names;\n"
           "                     repeatable). lm_head, embeddings and routers are never quantized\n"
           "  --max-shard-mib N  start a new output shard past N MiB (default 10 GB)\n"
           "  --read-mib N       the most read at once (default 1024): a tensor up to this size\n"
           "                     is read whole and quantized without a copy, larger ones in pieces;\n"
           "                     two read buffers of up to this size are most of the memory used\n"
           "  --threads N        threads for quantization (default: all cores)\n"
           "  -o, --output DIR   output directory: new or empty; the output is built in\n"
           "                     DIR/.strata-partial-<id> and moved into place at the end,\n"
           "                     strata_output.json (its list of files) last. Never the model's\n"
           "  --overwrite        replace an earlier strata output in DIR (only the files its\n"
           "                     strata_output.json lists; other files stay)\n"
           "  --allow-non-finite write tensors holding NaN/Inf (a warning each) instead of failing\n");
}

int cmd_convert(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"output", required_argument, NULL, 'o'},        {"scheme", required_argument, NULL, 's'},
        {"exclude", required_argument, NULL, 'x'},       {"max-shard-mib", required_argument, NULL, 'M'},
        {"read-mib", required_argument, NULL, 'r'},      {"threads", required_argument, NULL, 'j'},
        {"overwrite", no_argument, NULL, 'O'},           {"allow-non-finite", no_argument, NULL, 'N'},
        {"help", no_argument, NULL, 'h'},                {0, 0, 0, 0},
    };
    strata_convert_params params = {0};
    const char *exclude[MAX_EXCLUDE];
    bool have_scheme = false;
    long long v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:h", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'o': params.output_dir = optarg; break;
        case 's':
            if (!strata_scheme_from_name(optarg, &params.scheme))
                return cli_usage_error("convert", "unknown scheme '%s' (fp8-dynamic, fp8-block, nvfp4-weight-only, "
                                                  "mxfp4, int8, int4)", optarg);
            have_scheme = true;
            break;
        case 'x':
            if (params.n_exclude == MAX_EXCLUDE) return cli_usage_error("convert", "at most %d --exclude patterns", MAX_EXCLUDE);
            exclude[params.n_exclude++] = optarg;
            break;
        case 'M':
            if (!cli_parse_int(optarg, 1, 1LL << 30, &v)) return cli_usage_error("convert", "--max-shard-mib must be positive");
            params.max_shard_bytes = (uint64_t)v << 20;
            break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 1LL << 20, &v)) return cli_usage_error("convert", "--read-mib must be positive");
            params.read_bytes = (uint64_t)v << 20;
            break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("convert", "--threads must be 1..256");
            strata_set_num_threads((int)v);
            break;
        case 'O': params.overwrite = true; break;
        case 'N': params.allow_non_finite = true; break;
        case 'h': convert_help(); return EXIT_OK;
        default: return cli_usage_error("convert", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("convert", "missing MODEL_DIR");
    params.model_dir = argv[optind++];
    if (optind < argc) return cli_usage_error("convert", "unexpected argument '%s'", argv[optind]);
    if (!params.output_dir) return cli_usage_error("convert", "missing -o OUT_DIR");
    if (!have_scheme) return cli_usage_error("convert", "missing --scheme");
    params.exclude = exclude;
    strata_convert_result result;
    strata_status status = strata_convert_model(&params, &result);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0)
        fprintf(stderr, "strata: %lld weights quantized, %lld tensors copied; %.2f GiB read in %.1f s; at most %.1f MiB "
                        "in flight\n",
                (long long)result.n_quantized, (long long)result.n_copied, (double)result.bytes_read / (1u << 30),
                result.seconds, (double)result.peak_bytes_in_flight / (1u << 20));
    if (ctx->verbosity > 0 && result.n_non_finite_tensors > 0)
        fprintf(stderr, "strata: warning: %lld tensor%s written with NaN/Inf (--allow-non-finite)\n",
                (long long)result.n_non_finite_tensors, result.n_non_finite_tensors == 1 ? "" : "s");
    printf("%s\n", params.output_dir);
    return EXIT_OK;
}
