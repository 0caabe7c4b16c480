/*
 * cmd_demo.c — `strata demo`, the main job of the README's `make demo`:
 *   1. the default synthetic models, a dense Llama and a Qwen3-MoE (seed 0), a line each;
 *   2. the dense one quantized to FP8 on synthetic token ids (a generated model has no
 *      tokenizer), its perplexity beside bf16's;
 *   3. stories260K, a trained model shipped in data/demo with two TinyStories texts:
 *      quantized to FP8 and to NVFP4 on one text, each compared with the bf16 original on
 *      the other (perplexity, KL divergence, top-token agreement: what `strata eval --base`
 *      prints), and the NVFP4 run's report written with that comparison.
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
#include "eval_print.h"

#ifndef STRATA_DEMO_DATA
#define STRATA_DEMO_DATA "data/demo"
#endif

typedef struct demo_settings {
    const char *output, *data;
    bool force;
} demo_settings;

static const cli_option DEMO_OPTIONS[] = {
    {.name = "output", .short_name = 'o', .value = "DIR", .kind = CLI_STRING, .offset = offsetof(demo_settings, output),
     .help = "output directory (default strata-demo)"},
    {.name = "data", .value = "DIR", .kind = CLI_STRING, .offset = offsetof(demo_settings, data),
     .help = "the trained model and its texts (default: data/demo of the source\n"
             "tree strata was built from)"},
    {.name = "force", .kind = CLI_FLAG, .offset = offsetof(demo_settings, force),
     .help = "replace models and outputs an earlier demo left in DIR"},
};

static const cli_command DEMO = {
    .name = "demo",
    .about = "Generates the default models, a dense Llama and a Qwen3-MoE (seed 0), into\n"
             "DIR/llama-dense and DIR/qwen3-moe and quantizes the dense one to FP8 layer by layer\n"
             "(calibrated on deterministic synthetic token ids: a generated model has no\n"
             "tokenizer). Then quantizes stories260K, a trained model shipped in data/demo, to FP8\n"
             "and NVFP4 on TinyStories text, compares both with the bf16 original on other\n"
             "stories (perplexity, KL divergence, top-token agreement) and writes the NVFP4 run's\n"
             "report. `strata inspect DIR` lists any model's tensors.\n",
    .options = DEMO_OPTIONS,
    .n_options = sizeof DEMO_OPTIONS / sizeof DEMO_OPTIONS[0],
};

enum { CALIB_SAMPLES = 32, CALIB_SEQ = 256, EVAL_WINDOW = 256 };

static void join(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* Removes a model directory an earlier demo wrote (only the files it writes). */
static int remove_demo_model(const char *dir)
{
    static const char *const FILES[] = {"config.json", "model.safetensors"};
    char path[4096];
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        join(path, sizeof path, dir, FILES[i]);
        if (unlink(path) != 0 && errno != ENOENT) return -1;
    }
    return rmdir(dir) == 0 || errno == ENOENT ? 0 : -1;
}

/* Deterministic token ids (a synthetic model has no tokenizer): xorshift over the vocab. */
static void demo_tokens(int32_t *ids, int64_t n, int64_t vocab, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)vocab);
    }
}

/* One line about a model: "LlamaForCausalLM, 4 layers, hidden 128, vocab 512, 1.05 M
 * parameters (2.1 MB)", the experts when it has some. */
static strata_status describe_model(const char *dir, char *line, size_t size)
{
    strata_model *model = NULL;
    strata_status status = strata_model_open(dir, &model);
    if (status != STRATA_OK) return status;
    const strata_arch *a = strata_model_arch(model);
    const strata_safetensors *st = strata_model_tensors(model);
    int64_t params = 0;
    uint64_t bytes = 0;
    for (size_t i = 0; i < strata_safetensors_count(st); i++) {
        params += strata_safetensors_at(st, i)->n_elements;
        bytes += strata_safetensors_at(st, i)->n_bytes;
    }
    char experts[64] = "";
    if (a->moe.n_experts > 0)
        snprintf(experts, sizeof experts, ", %d experts (top %d)", a->moe.n_experts, a->moe.top_k);
    snprintf(line, size, "%s, %d layers, hidden %lld, vocab %lld%s, %.2f M parameters (%.1f MB)", a->architecture,
             a->n_layers, (long long)a->hidden_size, (long long)a->vocab_size, experts, params / 1e6, bytes / 1e6);
    strata_model_close(model);
    return STRATA_OK;
}

/* Part 1: the synthetic models. */
static int generate_models(const char *output, bool force, const cli_context *ctx)
{
    static const struct {
        const char *name;
        strata_family family;
    } MODELS[] = {{"llama-dense", STRATA_FAMILY_LLAMA}, {"qwen3-moe", STRATA_FAMILY_QWEN3_MOE}};
    for (size_t m = 0; m < sizeof MODELS / sizeof MODELS[0]; m++) {
        char dir[4096], line[256];
        join(dir, sizeof dir, output, MODELS[m].name);
        if (force && remove_demo_model(dir) != 0) {
            fprintf(stderr, "strata: error: %s: cannot remove the earlier demo model: %s\n", dir, strerror(errno));
            return EXIT_RUNTIME;
        }
        strata_synth_params params = {.family = MODELS[m].family, .seed = 0};
        strata_status status = strata_synth_model(dir, &params);
        if (status != STRATA_OK) {
            cli_fail(status);
            if (!force) fprintf(stderr, "strata: hint: 'strata demo --force' replaces an earlier demo's models\n");
            return EXIT_RUNTIME;
        }
        if (ctx->verbosity > 0) fprintf(stderr, "strata: generated %s\n", dir);
        status = describe_model(dir, line, sizeof line);
        if (status != STRATA_OK) return cli_fail(status);
        printf("generated %s: %s\n", dir, line);
    }
    return EXIT_OK;
}

/* Part 2: the dense synthetic model to FP8, perplexities before and after. */
static int quantize_synthetic(const char *output, bool force, const cli_context *ctx)
{
    enum { SAMPLES = 32, SEQ = 128, EVAL_TOKENS = 16 * SEQ };
    char model_dir[4096], quant_dir[4096];
    join(model_dir, sizeof model_dir, output, "llama-dense");
    join(quant_dir, sizeof quant_dir, output, "llama-dense-fp8");
    strata_model *model = NULL;
    strata_status status = strata_model_open(model_dir, &model);
    if (status != STRATA_OK) return cli_fail(status);
    int64_t vocab = strata_model_arch(model)->vocab_size;
    strata_model_close(model);
    int32_t *calib = malloc(SAMPLES * SEQ * sizeof *calib), *text = malloc(EVAL_TOKENS * sizeof *text);
    if (!calib || !text) {
        free(calib);
        free(text);
        fprintf(stderr, "strata: error: out of memory\n");
        return EXIT_RUNTIME;
    }
    demo_tokens(calib, SAMPLES * SEQ, vocab, 1);
    demo_tokens(text, EVAL_TOKENS, vocab, 2);
    strata_quantize_params qp = {.model_dir = model_dir, .output_dir = quant_dir, .scheme = STRATA_SCHEME_FP8,
                                 .kv_cache_fp8 = true, .tokens = calib, .n_samples = SAMPLES, .seq_len = SEQ,
                                 .progress = ctx->verbosity > 0 ? cli_print_progress : NULL, .overwrite = force};
    strata_quantize_result qr;
    status = strata_quantize_model(&qp, &qr);
    double ppl[2] = {0, 0};
    const char *dirs[2] = {model_dir, quant_dir};
    for (int i = 0; status == STRATA_OK && i < 2; i++) {
        strata_eval_params ep = {.window = SEQ};
        strata_eval_result er;
        status = strata_model_open(dirs[i], &model);
        if (status == STRATA_OK) status = strata_eval_perplexity(model, text, EVAL_TOKENS, &ep, &er);
        strata_model_close(model);
        ppl[i] = er.perplexity;
    }
    free(calib);
    free(text);
    if (status != STRATA_OK) return cli_fail(status);
    printf("\nquantized %s -> %s (FP8 weights and activations, FP8 KV cache; %lld linears, %.1f s)\n"
           "perplexity on %d synthetic tokens: bf16 %.4f, fp8 %.4f (%+.3f%%)\n",
           model_dir, quant_dir, (long long)qr.n_quantized_linears, qr.seconds, EVAL_TOKENS, ppl[0], ppl[1],
           100.0 * (ppl[1] / ppl[0] - 1.0));
    return EXIT_OK;
}

/* One quantization of the trained model and its comparison with the original. */
typedef struct trained_run {
    const char *name;                /* "fp8" */
    strata_scheme scheme;
    char dir[4096];                  /* OUT/stories260K-<name> */
    strata_eval_compare_result comparison;
} trained_run;

static strata_status quantize_and_compare(trained_run *run, const char *model_dir, const strata_model *base,
                                          const int32_t *calib, const int32_t *eval_ids, int64_t n_eval,
                                          const char *const inputs[2], bool force, const cli_context *ctx)
{
    strata_quantize_params qp = {.model_dir = model_dir, .output_dir = run->dir, .scheme = run->scheme,
                                 .tokens = calib, .n_samples = CALIB_SAMPLES, .seq_len = CALIB_SEQ,
                                 .input_files = inputs, .n_input_files = 2,
                                 .progress = ctx->verbosity > 0 ? cli_print_progress : NULL, .overwrite = force};
    strata_quantize_result qr;
    strata_status status = strata_quantize_model(&qp, &qr);
    strata_model *quantized = NULL;
    if (status == STRATA_OK) status = strata_model_open(run->dir, &quantized);
    strata_eval_compare_params cp = {.eval = {.window = EVAL_WINDOW}};
    if (status == STRATA_OK) status = strata_eval_compare(quantized, base, eval_ids, n_eval, &cp, &run->comparison);
    strata_model_close(quantized);
    return status;
}

/* The comparison as JSON (what strata eval --json prints), then the report drawn with it.
 * An exit code. */
static int write_report(const trained_run *run, const char *json_path, const char *html_path)
{
    char *json = NULL;
    size_t length = 0;
    FILE *f = open_memstream(&json, &length);
    if (f) eval_print_comparison_json(f, &run->comparison);
    if (!f || fclose(f) != 0) {
        free(json);
        fprintf(stderr, "strata: error: out of memory\n");
        return EXIT_RUNTIME;
    }
    int code = cli_write_text(json_path, json, length);
    free(json);
    if (code != EXIT_OK) return code;
    strata_status status = strata_report(run->dir, json_path, html_path);
    return status == STRATA_OK ? EXIT_OK : cli_fail(status);
}

static void print_trained_table(const char *eval_text, const trained_run *runs, size_t n)
{
    const strata_eval_compare_result *first = &runs[0].comparison;
    printf("\nstories260K compared with its bf16 original on %s:\n"
           "%lld windows of %lld tokens, %lld tokens scored; \u00b1 one standard error (llama.cpp's statistics,\n"
           "docs/EVAL.md)\n\n",
           eval_text, (long long)first->n_windows, (long long)first->window, (long long)first->n_scored);
    printf("  %-6s  %-18s  %-17s  %-21s  %s\n", "model", "perplexity", "PPL ratio", "mean KLD", "same top token");
    printf("  %-6s  %8.4f \u00b1 %-7.4f  %-17s  %-21s  %s\n", "bf16", first->ppl_base.value, first->ppl_base.error,
           "1", "0", "100 %");
    for (size_t i = 0; i < n; i++) {
        const strata_eval_compare_result *r = &runs[i].comparison;
        printf("  %-6s  %8.4f \u00b1 %-7.4f  %6.4f \u00b1 %-8.4f  %8.6f \u00b1 %-10.6f  %5.2f \u00b1 %.2f %%\n",
               runs[i].name, r->ppl_q.value, r->ppl_q.error, r->ppl_ratio.value, r->ppl_ratio.error, r->kld.value,
               r->kld.error, 100.0 * r->same_top.value, 100.0 * r->same_top.error);
    }
}

/* Part 3: stories260K to FP8 and NVFP4, compared with the original, and the report. */
static int demo_trained(const char *output, const char *data, bool force, const cli_context *ctx)
{
    char model_dir[4096], calib_text[4096], eval_text[4096], json_path[4096], html_path[4096];
    join(model_dir, sizeof model_dir, data, "stories260K");
    join(calib_text, sizeof calib_text, data, "tinystories-calib.txt");
    join(eval_text, sizeof eval_text, data, "tinystories-eval.txt");
    join(json_path, sizeof json_path, output, "stories260K-nvfp4-eval.json");
    join(html_path, sizeof html_path, output, "stories260K-nvfp4-report.html");
    trained_run runs[] = {{.name = "fp8", .scheme = STRATA_SCHEME_FP8}, {.name = "nvfp4", .scheme = STRATA_SCHEME_NVFP4}};
    enum { N_RUNS = sizeof runs / sizeof runs[0] };
    for (size_t i = 0; i < N_RUNS; i++) snprintf(runs[i].dir, sizeof runs[i].dir, "%s/stories260K-%s", output, runs[i].name);

    char line[256];
    int code;
    strata_status status = describe_model(model_dir, line, sizeof line);
    if (status != STRATA_OK) return cli_fail(status);
    printf("\nstories260K (%s): %s, trained on TinyStories\n", model_dir, line);

    strata_tokenizer *tok = NULL;
    strata_model *base = NULL;
    int32_t *calib = NULL, *eval_ids = NULL;
    int64_t n_eval = 0;
    strata_calib_params cp = {.format = STRATA_CALIB_LINES, .n_samples = CALIB_SAMPLES, .seq_len = CALIB_SEQ};
    strata_calib_info info;
    const char *const inputs[2] = {calib_text, eval_text};
    status = strata_tokenizer_load(model_dir, &tok);
    if (status == STRATA_OK) status = strata_calib_load(calib_text, tok, &cp, &calib, &info);
    if (status == STRATA_OK) status = strata_tokenizer_encode_file(tok, eval_text, true, &eval_ids, &n_eval);
    if (status == STRATA_OK) status = strata_model_open(model_dir, &base);
    for (size_t i = 0; status == STRATA_OK && i < N_RUNS; i++) {
        status = quantize_and_compare(&runs[i], model_dir, base, calib, eval_ids, n_eval, inputs, force, ctx);
        if (status == STRATA_OK)
            printf("quantized to %s on %d windows of %d tokens of %s -> %s\n", runs[i].name, CALIB_SAMPLES, CALIB_SEQ,
                   calib_text, runs[i].dir);
    }
    strata_model_close(base);
    strata_tokenizer_free(tok);
    strata_free(calib);
    strata_free(eval_ids);
    if (status != STRATA_OK) return cli_fail(status);
    code = write_report(&runs[N_RUNS - 1], json_path, html_path);
    if (code != EXIT_OK) return code;
    print_trained_table(eval_text, runs, N_RUNS);
    printf("\nreport of the NVFP4 run with this comparison: %s\n"
           "(each output also holds its own quant_report.html, and quant_summary.txt)\n",
           html_path);
    return EXIT_OK;
}

int cmd_demo(int argc, char **argv, const cli_context *ctx)
{
    demo_settings s = {.output = "strata-demo"};
    int code = cli_parse(&DEMO, argc, argv, &s, NULL);
    if (code >= 0) return code;
    struct stat st;
    const char *data = s.data ? s.data : STRATA_DEMO_DATA;
    bool have_data = stat(data, &st) == 0 && S_ISDIR(st.st_mode);
    if (s.data && !have_data) {
        fprintf(stderr, "strata: error: %s: not a directory (--data wants data/demo of strata's sources)\n", data);
        return EXIT_RUNTIME;
    }
    if (mkdir(s.output, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "strata: error: %s: cannot create directory: %s\n", s.output, strerror(errno));
        return EXIT_RUNTIME;
    }
    /* The demo's own lines say what happened; the progress of each short run and the
     * library's notes show with -v. */
    cli_context quiet = {.verbosity = ctx->verbosity > 0 ? ctx->verbosity - 1 : 0};
    cli_install_logging(&quiet);
    ctx = &quiet;
    code = generate_models(s.output, s.force, ctx);
    if (code == EXIT_OK) code = quantize_synthetic(s.output, s.force, ctx);
    if (code != EXIT_OK) return code;
    if (!have_data) {
        fprintf(stderr, "strata: the trained model's part needs data/demo of strata's sources (%s is missing); "
                        "pass --data DIR\n", data);
        return EXIT_OK;
    }
    return demo_trained(s.output, data, s.force, ctx);
}
