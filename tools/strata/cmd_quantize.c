/*
 * cmd_quantize.c — `strata quantize MODEL -o OUT --scheme S --calib FILE ...` and
 * `strata resume CKPT`: layerwise calibration and export (strata_quantize_model).
 * Calibration windows come from strata_calib_load with the model's tokenizer.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { MAX_EXCLUDE = 64 };

static void quantize_help(void)
{
    printf("usage: strata quantize MODEL_DIR -o OUT_DIR --scheme SCHEME --calib FILE\n"
           "                      [--calib-samples N] [--calib-seq T] [--algo max|mse|gptq] [--kv-cache fp8]\n"
           "                      [--format modelopt|fakequant] [--exclude PATTERN]... [--propagate MODE]\n"
           "                      [--checkpoint-dir DIR] [--save-every K] [--max-memory MIB] [--threads N]\n"
           "                      [--max-shard-mib N] [--gptq-damp F] [--gptq-block N] [--gptq-act-order]\n"
           "                      [--gptq-min-tokens N] [--calib-all-experts] [--overwrite]\n"
           "                      [--allow-non-finite] [--fuse-fp8-scales]\n"
           "\n"
           "Calibrates the model one decoder layer at a time and writes a quantized checkpoint:\n"
           "shards with their index, config.json with quantization_config, hf_quant_config.json,\n"
           "the tokenizer files, and quant_summary.txt / .json (docs/QUANTIZE.md).\n"
           "\n"
           "OUT_DIR must be new or empty: the output is built in OUT_DIR/.strata-partial-<id> and\n"
           "moved into place at the end, strata_output.json (its list of files) last. OUT_DIR may\n"
           "not be a directory the run reads (the model, the checkpoint directory).\n"
           "\n"
           "  --scheme S           fp8 (W8A8 per-tensor, static inputs), fp8-dynamic (per-channel\n"
           "                       weights, per-token inputs), nvfp4 (W4A4), nvfp4-weight-only,\n"
           "                       int8 (per-channel weight-only), int4 (group 128 weight-only),\n"
           "                       mxfp4 (W4A4, dynamic 32-blocks), fp8-block (FP8 weights in\n"
           "                       128x128 tiles, weight-only), int4-asym (group 128 with zero\n"
           "                       points, weight-only; --format fakequant only)\n"
           "  --algo A             max (default): amax; mse: per-block clip search of weight scales;\n"
           "                       gptq: weights updated column by column against the layer's Hessian\n"
           "                       (scales from the weights; inputs from the quantized layers)\n"
           "  --kv-cache fp8       k_scale / v_scale for an FP8 KV cache\n"
           "  --fuse-fp8-scales    fp8: q/k/v and gate/up share one weight scale (their maximum), so\n"
           "                       an engine runs each fused GEMM without requantizing (default: one\n"
           "                       scale per linear, as ModelOpt exports it)\n"
           "  --format F           modelopt (default), or fakequant: bf16 weights with\n"
           "                       quantize-dequantize folded in, scales in quant_scales.safetensors\n"
           "  --exclude PATTERN    leave matching modules unquantized (glob on names such as\n"
           "                       model.layers.0.mlp.down_proj; repeatable). lm_head, embeddings and\n"
           "                       routers are never quantized\n"
           "  --propagate MODE     next layer's inputs from the unquantized or quantized layer (default:\n"
           "                       quantized with gptq, unquantized otherwise)\n"
           "  --gptq-damp F        damping added to diag H as a fraction of its mean (default 0.01;\n"
           "                       raised 10x up to 3 times when the Cholesky factorization fails)\n"
           "  --gptq-block N       columns per lazy-update block (default 128)\n"
           "  --gptq-act-order     quantize columns in order of descending diag H (scales unchanged)\n"
           "  --gptq-min-tokens N  round linears (experts) that saw fewer tokens to nearest (default 32)\n"
           "  --calib-all-experts  MoE: calibrate every expert on every token (the layer output still\n"
           "                       combines the router's top-k); default: the model's own routing.\n"
           "                       Either way each expert's input scale is the layer's peer maximum\n"
           "  --calib FILE         calibration text, JSON Lines or ids (see strata tokenize --help)\n"
           "  --calib-samples N    windows (default 128)     --calib-seq T   tokens each (default 512)\n"
           "  --seed S             which windows are drawn (default 0)\n"
           "  --calib-format F     paragraphs, lines, jsonl or ids   --calib-field NAME  (jsonl)\n"
           "  --tokenizer PATH     tokenizer.json or its directory (default: MODEL_DIR)\n"
           "  --checkpoint-dir DIR save every layer's state there; running again with the same\n"
           "                       directory (or strata resume DIR) continues after the last saved layer\n"
           "  --save-every K       save the next layer's inputs every K layers (default 1)\n"
           "  --max-memory MIB     memory limit; the activation store spills to disk beyond it\n"
           "  --max-shard-mib N    start a new output shard past N MiB (default 10 GB, as ModelOpt)\n"
           "  --threads N          worker threads (default: all CPUs)\n"
           "  --overwrite          replace an earlier strata output in OUT_DIR (only the files its\n"
           "                       strata_output.json lists; other files stay)\n"
           "  --allow-non-finite   write copied tensors holding NaN/Inf (a warning each, listed in the\n"
           "                       summary) instead of failing\n"
           "  -h, --help\n");
}

static void resume_help(void)
{
    printf("usage: strata resume CHECKPOINT_DIR [--max-memory MIB] [--threads N]\n"
           "\n"
           "Finishes a strata quantize run from its --checkpoint-dir: the model, output directory,\n"
           "settings and calibration tokens recorded there are used; the output is byte-identical\n"
           "to an uninterrupted run.\n");
}

static int report(strata_status status, const strata_quantize_result *r, const cli_context *ctx)
{
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0) {
        fprintf(stderr, "strata: %lld linears quantized in %d layers%s, %.1f s; summary in %s/quant_summary.txt\n",
                (long long)r->n_quantized_linears, r->n_layers, r->resumed_from_layer ? " (resumed)" : "", r->seconds,
                r->output_dir);
        if (r->n_non_finite_tensors > 0)
            fprintf(stderr, "strata: warning: %lld tensor%s written with NaN/Inf (--allow-non-finite); listed in the "
                            "summary\n", (long long)r->n_non_finite_tensors, r->n_non_finite_tensors == 1 ? "" : "s");
    }
    printf("%s\n", r->output_dir);
    return EXIT_OK;
}

int cmd_quantize(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"output", required_argument, NULL, 'o'},        {"scheme", required_argument, NULL, 's'},
        {"algo", required_argument, NULL, 'a'},          {"kv-cache", required_argument, NULL, 'K'},
        {"format", required_argument, NULL, 'F'},        {"exclude", required_argument, NULL, 'x'},
        {"propagate", required_argument, NULL, 'p'},     {"calib", required_argument, NULL, 'c'},
        {"calib-samples", required_argument, NULL, 'n'}, {"calib-seq", required_argument, NULL, 't'},
        {"seed", required_argument, NULL, 'S'},          {"calib-format", required_argument, NULL, 'f'},
        {"calib-field", required_argument, NULL, 'd'},   {"tokenizer", required_argument, NULL, 'k'},
        {"checkpoint-dir", required_argument, NULL, 'C'}, {"save-every", required_argument, NULL, 'e'},
        {"max-memory", required_argument, NULL, 'm'},    {"threads", required_argument, NULL, 'j'},
        {"max-shard-mib", required_argument, NULL, 'M'}, {"help", no_argument, NULL, 'h'},
        {"gptq-damp", required_argument, NULL, 'g'},     {"gptq-block", required_argument, NULL, 'B'},
        {"gptq-act-order", no_argument, NULL, 'A'},      {"gptq-min-tokens", required_argument, NULL, 'T'},
        {"calib-all-experts", no_argument, NULL, 'E'},   {"overwrite", no_argument, NULL, 'O'},
        {"allow-non-finite", no_argument, NULL, 'N'},    {"fuse-fp8-scales", no_argument, NULL, 'U'},
        {0, 0, 0, 0},
    };
    strata_quantize_params params = {0};
    strata_calib_params calib = {.n_samples = 128, .seq_len = 512};
    const char *calib_path = NULL, *tokenizer_path = NULL, *exclude[MAX_EXCLUDE];
    bool have_scheme = false;
    long long v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "o:h", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'o': params.output_dir = optarg; break;
        case 's':
            if (!strata_scheme_from_name(optarg, &params.scheme))
                return cli_usage_error("quantize", "unknown scheme '%s' (fp8, fp8-dynamic, nvfp4, nvfp4-weight-only, "
                                       "int8, int4, mxfp4, fp8-block, int4-asym)", optarg);
            have_scheme = true;
            break;
        case 'a': params.algo = optarg; break;
        case 'K':
            if (strcmp(optarg, "fp8") != 0) return cli_usage_error("quantize", "--kv-cache takes fp8");
            params.kv_cache_fp8 = true;
            break;
        case 'F':
            if (strcmp(optarg, "modelopt") == 0) params.format = STRATA_EXPORT_MODELOPT;
            else if (strcmp(optarg, "fakequant") == 0) params.format = STRATA_EXPORT_FAKEQUANT;
            else return cli_usage_error("quantize", "--format must be modelopt or fakequant");
            break;
        case 'x':
            if (params.n_exclude == MAX_EXCLUDE) return cli_usage_error("quantize", "at most %d --exclude patterns", MAX_EXCLUDE);
            exclude[params.n_exclude++] = optarg;
            break;
        case 'p':
            if (strcmp(optarg, "quantized") == 0) params.propagate = STRATA_PROPAGATE_QUANTIZED;
            else if (strcmp(optarg, "unquantized") == 0) params.propagate = STRATA_PROPAGATE_UNQUANTIZED;
            else
                return cli_usage_error("quantize", "--propagate must be quantized or unquantized");
            break;
        case 'c': calib_path = optarg; break;
        case 'n':
            if (!cli_parse_int(optarg, 1, 1LL << 30, &v)) return cli_usage_error("quantize", "--calib-samples must be positive");
            calib.n_samples = v;
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1LL << 24, &v)) return cli_usage_error("quantize", "--calib-seq must be 1..16777216");
            calib.seq_len = v;
            break;
        case 'S':
            if (!cli_parse_int(optarg, 0, 1LL << 62, &v)) return cli_usage_error("quantize", "--seed must be a non-negative integer");
            calib.seed = (uint64_t)v;
            break;
        case 'f':
            if (!cli_parse_calib_format(optarg, &calib.format))
                return cli_usage_error("quantize", "--calib-format must be paragraphs, lines, jsonl or ids");
            break;
        case 'd': calib.text_field = optarg; break;
        case 'k': tokenizer_path = optarg; break;
        case 'C': params.checkpoint_dir = optarg; break;
        case 'e':
            if (!cli_parse_int(optarg, 1, 1 << 20, &v)) return cli_usage_error("quantize", "--save-every must be positive");
            params.save_every = (int)v;
            break;
        case 'm':
            if (!cli_parse_int(optarg, 1, 1LL << 40, &v)) return cli_usage_error("quantize", "--max-memory must be positive (MiB)");
            params.max_memory = (uint64_t)v << 20;
            break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("quantize", "--threads must be 1..256");
            strata_set_num_threads((int)v);
            break;
        case 'M':
            if (!cli_parse_int(optarg, 1, 1LL << 30, &v)) return cli_usage_error("quantize", "--max-shard-mib must be positive");
            params.max_shard_bytes = (uint64_t)v << 20;
            break;
        case 'g':
            if (!cli_parse_double(optarg, 1e-9, 100, &params.gptq_damp))
                return cli_usage_error("quantize", "--gptq-damp must be a number in (0, 100]");
            break;
        case 'B':
            if (!cli_parse_int(optarg, 1, 1 << 20, &v)) return cli_usage_error("quantize", "--gptq-block must be positive");
            params.gptq_block = v;
            break;
        case 'A': params.gptq_act_order = true; break;
        case 'E': params.calib_all_experts = true; break;
        case 'O': params.overwrite = true; break;
        case 'N': params.allow_non_finite = true; break;
        case 'U': params.fuse_fp8_scales = true; break;
        case 'T':
            if (!cli_parse_int(optarg, 1, 1LL << 40, &v)) return cli_usage_error("quantize", "--gptq-min-tokens must be positive");
            params.gptq_min_tokens = v;
            break;
        case 'h': quantize_help(); return EXIT_OK;
        default: return cli_usage_error("quantize", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("quantize", "missing MODEL_DIR");
    params.model_dir = argv[optind++];
    if (optind < argc) return cli_usage_error("quantize", "unexpected argument '%s'", argv[optind]);
    if (!params.output_dir) return cli_usage_error("quantize", "missing -o OUT_DIR");
    if (!have_scheme) return cli_usage_error("quantize", "missing --scheme");
    if (!calib_path) return cli_usage_error("quantize", "missing --calib FILE");
    params.exclude = exclude;
    const char *inputs[2] = {calib_path, tokenizer_path};
    params.input_files = inputs;
    params.n_input_files = 2;

    strata_tokenizer *tok = NULL;
    int32_t *tokens = NULL;
    strata_calib_info info;
    /* Before anything is read. */
    strata_status status = strata_output_check(params.output_dir, params.model_dir, params.checkpoint_dir, inputs, 2);
    if (status != STRATA_OK) return cli_fail(status);
    if (strata_calib_format_resolve(calib_path, calib.format) != STRATA_CALIB_IDS) status = strata_tokenizer_load(tokenizer_path ? tokenizer_path : params.model_dir, &tok);
    if (status == STRATA_OK) status = strata_calib_load(calib_path, tok, &calib, &tokens, &info);
    strata_tokenizer_free(tok);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0)
        fprintf(stderr, "strata: calibration: %lld windows of %lld tokens from %s (%lld windows available)\n",
                (long long)calib.n_samples, (long long)calib.seq_len, calib_path, (long long)info.n_windows);
    params.tokens = tokens;
    params.n_samples = calib.n_samples;
    params.seq_len = calib.seq_len;
    params.progress = ctx->verbosity > 0 ? cli_print_progress : NULL;
    strata_quantize_result result;
    status = strata_quantize_model(&params, &result);
    strata_free(tokens);
    return report(status, &result, ctx);
}

int cmd_resume(int argc, char **argv, const cli_context *ctx)
{
    static const struct option OPTIONS[] = {
        {"max-memory", required_argument, NULL, 'm'},
        {"threads", required_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    uint64_t max_memory = 0;
    long long v;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "h", OPTIONS, NULL)) != -1;) {
        switch (c) {
        case 'm':
            if (!cli_parse_int(optarg, 1, 1LL << 40, &v)) return cli_usage_error("resume", "--max-memory must be positive (MiB)");
            max_memory = (uint64_t)v << 20;
            break;
        case 'j':
            if (!cli_parse_int(optarg, 1, 256, &v)) return cli_usage_error("resume", "--threads must be 1..256");
            strata_set_num_threads((int)v);
            break;
        case 'h': resume_help(); return EXIT_OK;
        default: return cli_usage_error("resume", "unknown option or missing value '%s'", argv[optind - 1]);
        }
    }
    if (optind >= argc) return cli_usage_error("resume", "missing CHECKPOINT_DIR");
    const char *dir = argv[optind++];
    if (optind < argc) return cli_usage_error("resume", "unexpected argument '%s'", argv[optind]);
    strata_quantize_result result;
    strata_status status =
        strata_quantize_resume(dir, max_memory, ctx->verbosity > 0 ? cli_print_progress : NULL, NULL, &result);
    return report(status, &result, ctx);
}
