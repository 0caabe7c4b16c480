/*
 * cmd_quantize.c — `strata quantize MODEL -o OUT --scheme S --calib FILE ...` and
 * `strata resume CKPT`: layerwise calibration and export (strata_quantize_model).
 * Calibration windows come from strata_calib_load with the model's tokenizer.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_options.h"

enum { MAX_EXCLUDE = 64 };

typedef struct quantize_settings {
    strata_quantize_params params;
    strata_calib_params calib;
    bool have_scheme;
    const char *calib_path, *tokenizer_path, *algo, *exclude[MAX_EXCLUDE];
    size_t n_exclude;
    int64_t save_every, experts_per_group;
    int kv_cache; /* 1: fp8 */
} quantize_settings;

#define AT(member) offsetof(quantize_settings, member)

static const cli_choice KV_CACHE[] = {{"fp8", 1}, {NULL, 0}};
static const cli_choice EXPORT_FORMATS[] = {
    {"modelopt", STRATA_EXPORT_MODELOPT}, {"compressed-tensors", STRATA_EXPORT_COMPRESSED_TENSORS},
    {"fakequant", STRATA_EXPORT_FAKEQUANT}, {NULL, 0}};
static const cli_choice CONVENTIONS[] = {
    {"modelopt", STRATA_CONVENTION_MODELOPT}, {"compressed-tensors", STRATA_CONVENTION_COMPRESSED_TENSORS}, {NULL, 0}};
static const cli_choice PROPAGATE[] = {
    {"quantized", STRATA_PROPAGATE_QUANTIZED}, {"unquantized", STRATA_PROPAGATE_UNQUANTIZED}, {NULL, 0}};
static const cli_choice ERROR_STATS[] = {
    {"full", STRATA_ERROR_STATS_FULL}, {"weights", STRATA_ERROR_STATS_WEIGHTS}, {NULL, 0}};
_Static_assert(sizeof(strata_export_format) == sizeof(int) && sizeof(strata_propagation) == sizeof(int) &&
                   sizeof(strata_convention) == sizeof(int) &&
                   sizeof(strata_error_stats) == sizeof(int),
               "CLI_CHOICE stores an int");

static const cli_option QUANTIZE_OPTIONS[] = {
    {.name = "output", .short_name = 'o', .value = "OUT_DIR", .kind = CLI_STRING, .offset = AT(params.output_dir),
     .required = true,
     .help = "new or empty: the output is built in OUT_DIR/.strata-partial-<id>\n"
             "and moved into place at the end, strata_output.json (its list of\n"
             "files) last. Not a directory the run reads (the model, the checkpoint)"},
    {.name = "scheme", .value = "S", .kind = CLI_SCHEME, .offset = AT(params.scheme), .extra_offset = AT(have_scheme),
     .required = true,
     .help = "fp8 (W8A8 per-tensor, static inputs), fp8-dynamic (per-channel\n"
             "weights, per-token inputs), nvfp4 (W4A4), nvfp4-weight-only,\n"
             "int8 (per-channel weight-only), int4 (group 128 weight-only),\n"
             "mxfp4 (W4A4, dynamic 32-blocks), fp8-block (FP8 weights in\n"
             "128x128 tiles, weight-only), int4-asym (group 128 with zero\n"
             "points, weight-only), int8-w8a8 (per-channel weights, dynamic\n"
             "per-token int8 inputs); the last two have no ModelOpt format"},
    {.name = "calib", .value = "FILE", .kind = CLI_STRING, .offset = AT(calib_path), .required = true,
     .help = "calibration text, JSON Lines or ids (see strata tokenize --help)"},
    CLI_CALIB_OPTIONS(quantize_settings, calib),
    {.name = "tokenizer", .value = "PATH", .kind = CLI_STRING, .offset = AT(tokenizer_path),
     .help = "tokenizer.json or its directory (default: MODEL_DIR)"},
    {.name = "algo", .value = "A", .kind = CLI_STRING, .offset = AT(algo),
     .help = "max (default): amax; mse: per-block clip search of weight scales;\n"
             "gptq: weights updated column by column against the layer's Hessian\n"
             "(scales from the weights; inputs from the quantized layers);\n"
             "awq: ModelOpt's awq_lite, per-channel scales moved from inputs to\n"
             "weights (int4 -> W4A16_AWQ, nvfp4 -> NVFP4_AWQ; MoE experts each on\n"
             "their routed tokens, scales averaged per layer as ModelOpt exports them;\n"
             "docs/AWQ.md); with --format compressed-tensors llm-compressor's AWQ\n"
             "(int4, int4-asym; dense and MoE models);\n"
             "awq+gptq: AWQ's scales, then GPTQ on the scaled weights"},
    {.name = "smooth", .value = "A", .kind = CLI_DOUBLE, .offset = AT(params.smooth), .hi = 1,
     .help = "SmoothQuant (llm-compressor's) before the algorithm: per input\n"
             "channel s = range(x)^A / (2 max|w|)^(1-A) moved from the inputs of\n"
             "q/k/v and gate/up into their weights, the norms divided by s; for\n"
             "schemes that quantize inputs (fp8, nvfp4, int8-w8a8...). A in\n"
             "(0, 1]: 0.5 is llm-compressor's default, 0.8 its W8A8 examples'\n"
             "(docs/SMOOTHQUANT.md)"},
    {.name = "kv-cache", .value = "fp8", .kind = CLI_CHOICE, .offset = AT(kv_cache), .choices = KV_CACHE,
     .help = "k_scale / v_scale for an FP8 KV cache"},
    {.name = "attention", .value = "MODE", .kind = CLI_CHOICE, .offset = AT(params.attention),
     .choices = CLI_ATTENTION_MODES,
     .help = "auto (default): the family's recipe, for deepseek_v3 ModelOpt's\n"
             "(attention unquantized, o_proj too unless the weights are FP4);\n"
             "scheme: attention takes the scheme; none: attention unquantized;\n"
             "fp8: attention in per-tensor FP8, the MLPs in the scheme\n"
             "(a MIXED_PRECISION checkpoint)"},
    {.name = "fuse-fp8-scales", .kind = CLI_FLAG, .offset = AT(params.fuse_fp8_scales),
     .help = "fp8: q/k/v and gate/up share one weight scale (their maximum), so\n"
             "an engine runs each fused GEMM without requantizing (default: one\n"
             "scale per linear, as ModelOpt exports it)"},
    {.name = "format", .value = "F", .kind = CLI_CHOICE, .offset = AT(params.format), .choices = EXPORT_FORMATS,
     .help = "modelopt (default): ModelOpt's HF checkpoint; compressed-tensors:\n"
             "llm-compressor's, vLLM's native format, every scheme (numerics of\n"
             "compressed-tensors' convention); fakequant: bf16 weights with\n"
             "quantize-dequantize folded in, scales in quant_scales.safetensors"},
    {.name = "convention", .value = "C", .kind = CLI_CHOICE, .offset = AT(params.convention), .choices = CONVENTIONS,
     .help = "with --format fakequant: whose numerics the folded weights follow,\n"
             "modelopt (default) or compressed-tensors (what the compressed-tensors\n"
             "checkpoint of the same run holds)"},
    {.name = "exclude", .value = "PATTERN", .kind = CLI_LIST, .offset = AT(exclude), .extra_offset = AT(n_exclude),
     .hi = MAX_EXCLUDE,
     .help = "leave matching modules unquantized (glob on names such as\n"
             "model.layers.0.mlp.down_proj; repeatable). lm_head, embeddings and\n"
             "routers are never quantized"},
    {.name = "propagate", .value = "MODE", .kind = CLI_CHOICE, .offset = AT(params.propagate), .choices = PROPAGATE,
     .help = "next layer's inputs from the unquantized or quantized layer (default:\n"
             "quantized with gptq, unquantized otherwise)"},
    {.name = "error-stats", .value = "WHAT", .kind = CLI_CHOICE, .offset = AT(params.error_stats),
     .choices = ERROR_STATS,
     .help = "full (default): weight errors, each linear's output error on sampled\n"
             "inputs and each layer's over every token (a pass of the quantized\n"
             "layer); weights: weight errors only, about twice as fast with max\n"
             "(the quantized weights are the same bytes)"},
    {.name = "gptq-damp", .value = "F", .kind = CLI_DOUBLE, .offset = AT(params.gptq_damp), .hi = 100,
     .help = "damping added to diag H as a fraction of its mean (default 0.01;\n"
             "raised 10x up to 3 times when the Cholesky factorization fails)"},
    {.name = "gptq-block", .value = "N", .kind = CLI_INT, .offset = AT(params.gptq_block), .lo = 1, .hi = 1 << 20,
     .help = "columns per lazy-update block (default 128)"},
    {.name = "gptq-act-order", .kind = CLI_FLAG, .offset = AT(params.gptq_act_order),
     .help = "quantize columns in order of descending diag H (scales unchanged)"},
    {.name = "gptq-min-tokens", .value = "N", .kind = CLI_INT, .offset = AT(params.gptq_min_tokens), .lo = 1,
     .hi = INT64_C(1) << 40, .help = "round linears (experts) that saw fewer tokens to nearest (default 32)"},
    {.name = "calib-all-experts", .kind = CLI_FLAG, .offset = AT(params.calib_all_experts),
     .help = "MoE: calibrate every expert on every token (the layer output still\n"
             "combines the router's top-k); default: the model's own routing.\n"
             "Either way each expert's input scale is the layer's peer maximum"},
    {.name = "checkpoint-dir", .value = "DIR", .kind = CLI_STRING, .offset = AT(params.checkpoint_dir),
     .help = "save every layer's state there; running again with the same\n"
             "directory (or strata resume DIR) continues after the last saved layer"},
    {.name = "save-every", .value = "K", .kind = CLI_INT, .offset = AT(save_every), .lo = 1, .hi = 1 << 20,
     .help = "save the next layer's inputs every K layers (default 1)"},
    {.name = "max-memory", .value = "MIB", .kind = CLI_MIB, .offset = AT(params.max_memory), .lo = 1,
     .hi = INT64_C(1) << 40,
     .help = "memory limit (default 80% of the memory available at start): the\n"
             "activation store spills to disk, then MoE experts are grouped"},
    {.name = "experts-per-group", .value = "N", .kind = CLI_INT, .offset = AT(experts_per_group), .lo = 1,
     .hi = 1 << 20,
     .help = "materialize an MoE layer's routed experts N at a time (default: the\n"
             "whole layer, or the largest group under --max-memory when a layer\n"
             "does not fit); the output is the same for every N"},
    {.name = "expert-parallel", .kind = CLI_FLAG, .offset = AT(params.expert_parallel),
     .help = "under mpirun: each rank holds 1/N of an MoE layer's routed experts\n"
             "and the tokens travel to them; the output is the same bytes"},
    {.name = "max-shard-mib", .value = "N", .kind = CLI_MIB, .offset = AT(params.max_shard_bytes), .lo = 1,
     .hi = INT64_C(1) << 30, .help = "start a new output shard past N MiB (default 10 GB, as ModelOpt)"},
    CLI_THREADS_OPTION,
    {.name = "overwrite", .kind = CLI_FLAG, .offset = AT(params.overwrite),
     .help = "replace an earlier strata output in OUT_DIR (only the files its\n"
             "strata_output.json lists; other files stay)"},
    {.name = "no-report", .kind = CLI_FLAG, .offset = AT(params.no_report),
     .help = "no quant_report.html (the page strata report draws from the\n"
             "summary) beside quant_summary.txt"},
    {.name = "allow-non-finite", .kind = CLI_FLAG, .offset = AT(params.allow_non_finite),
     .help = "write copied tensors holding NaN/Inf (a warning each, listed in the\n"
             "summary) instead of failing"},
};

static const cli_command QUANTIZE = {
    .name = "quantize",
    .operand = "MODEL_DIR",
    .about = "Calibrates the model one decoder layer at a time and writes a quantized checkpoint:\n"
             "shards with their index, config.json with quantization_config (hf_quant_config.json for\n"
             "ModelOpt's format), the tokenizer files, quant_summary.txt / .json and\n"
             "quant_report.html (docs/QUANTIZE.md). Calibration draws 128 windows of 512 tokens unless --calib-samples /\n"
             "--calib-seq say otherwise. Under `mpirun -np N` the ranks share the windows and the\n"
             "decisions, and rank 0 writes the same bytes one process would (GPTQ: with the same\n"
             "--threads per process); checkpoints resume with any N (docs/DISTRIBUTED.md).\n",
    .options = QUANTIZE_OPTIONS,
    .n_options = sizeof QUANTIZE_OPTIONS / sizeof QUANTIZE_OPTIONS[0],
};

typedef struct resume_settings {
    uint64_t max_memory;
} resume_settings;

static const cli_option RESUME_OPTIONS[] = {
    {.name = "max-memory", .value = "MIB", .kind = CLI_MIB, .offset = offsetof(resume_settings, max_memory), .lo = 1,
     .hi = INT64_C(1) << 40, .help = "memory limit; the activation store spills to disk beyond it"},
    CLI_THREADS_OPTION,
};

static const cli_command RESUME = {
    .name = "resume",
    .operand = "CHECKPOINT_DIR",
    .about = "Finishes a strata quantize run from its --checkpoint-dir: the model, output directory,\n"
             "settings and calibration tokens recorded there are used; the output is byte-identical\n"
             "to an uninterrupted run (GPTQ: with its --threads). Runs under `mpirun -np N` too,\n"
             "whatever N the interrupted run had.\n",
    .options = RESUME_OPTIONS,
    .n_options = sizeof RESUME_OPTIONS / sizeof RESUME_OPTIONS[0],
};

static int report(strata_status status, const strata_quantize_result *r, const cli_context *ctx)
{
    if (status != STRATA_OK) return cli_fail(status);
    if (strata_mpi_rank() > 0) return EXIT_OK; /* rank 0 reports a run of several ranks */
    if (ctx->verbosity > 0) {
        fprintf(stderr, "strata: %lld linears quantized in %d layers%s, %.1f s; summary in %s/quant_summary.txt\n",
                (long long)r->n_quantized_linears, r->n_layers, r->resumed_from_layer ? " (resumed)" : "", r->seconds,
                r->output_dir);
        if (r->report) fprintf(stderr, "strata: report: %s/quant_report.html\n", r->output_dir);
        if (r->n_non_finite_tensors > 0)
            fprintf(stderr, "strata: warning: %lld tensor%s written with NaN/Inf (--allow-non-finite); listed in the "
                            "summary\n", (long long)r->n_non_finite_tensors, r->n_non_finite_tensors == 1 ? "" : "s");
    }
    printf("%s\n", r->output_dir);
    return EXIT_OK;
}

int cmd_quantize(int argc, char **argv, const cli_context *ctx)
{
    quantize_settings s = {.calib = {.n_samples = 128, .seq_len = 512}};
    int code = cli_parse(&QUANTIZE, argc, argv, &s, &s.params.model_dir);
    if (code >= 0) return code;
    strata_quantize_params params = s.params;
    strata_calib_params calib = s.calib;
    const char *calib_path = s.calib_path, *tokenizer_path = s.tokenizer_path;
    params.algo = s.algo;
    params.save_every = (int)s.save_every;
    params.kv_cache_fp8 = s.kv_cache == 1;
    params.n_exclude = s.n_exclude;
    params.experts_per_group = (int)s.experts_per_group;
    const char **exclude = s.exclude;
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
    /* Under mpirun rank 0 reads the calibration data and sends the windows to the others. */
    bool reads_calibration = strata_mpi_rank() == 0;
    if (reads_calibration && strata_calib_format_resolve(calib_path, calib.format) != STRATA_CALIB_IDS)
        status = strata_tokenizer_load(tokenizer_path ? tokenizer_path : params.model_dir, &tok);
    if (status == STRATA_OK && reads_calibration) status = strata_calib_load(calib_path, tok, &calib, &tokens, &info);
    strata_tokenizer_free(tok);
    if (status != STRATA_OK) return cli_fail(status);
    if (ctx->verbosity > 0 && reads_calibration)
        fprintf(stderr, "strata: calibration: %lld windows of %lld tokens from %s (%lld windows available)\n",
                (long long)calib.n_samples, (long long)calib.seq_len, calib_path, (long long)info.n_windows);
    if (params.max_memory == 0) params.max_memory = cli_default_memory_limit(ctx);
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
    resume_settings s = {0};
    const char *dir = NULL;
    int code = cli_parse(&RESUME, argc, argv, &s, &dir);
    if (code >= 0) return code;
    uint64_t max_memory = s.max_memory ? s.max_memory : cli_default_memory_limit(ctx);
    strata_quantize_result result;
    strata_status status =
        strata_quantize_resume(dir, max_memory, ctx->verbosity > 0 ? cli_print_progress : NULL, NULL, &result);
    return report(status, &result, ctx);
}
