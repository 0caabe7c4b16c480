/*
 * bench/forward.c — one decoder layer over 8192 tokens (16 sequences of 512): llama-19m and
 * qwen3moe-47m from ../shared/models (skipped when absent) and a synthetic layer of
 * Llama-3-8B shape (hidden 4096, 32 heads, 8 KV heads, intermediate 14336), in bf16 and
 * in the fp32 fallback. Prints tokens/s and the GFLOP/s of the linear layers next to the
 * oneDNN matmul peak measured in the same run (8192 x 4096 x 14336). Not a test.
 *
 *   make bench            (or build/release/bench_forward [--quick] [--shared DIR])
 *
 * "linear" time is measured from just before each linear's input is observed to just
 * after its output is observed (rounding to bf16, product and bias); "layer" time is the
 * whole layer (norms, RoPE, attention, routing, residuals included).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_clock.h"
#include "bench_peak.h"
#include "forward/model_forward.h"
#include "kernels/pool.h"
#include "strata.h"

enum { SEQ_LEN = 512, N_SEQ = 16 };

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float uniform(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * 0x1.0p-53) - 0.5f;
}

static uint16_t bf16_of(float f)
{
    uint32_t b;
    memcpy(&b, &f, 4);
    return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

/* ---------------------------------------------------------------- timing hooks */

typedef struct linear_timer {
    double started, seconds, flops;
} linear_timer;

static strata_status timer_start(void *ctx, const strata_linear *l, const float *x, int64_t n, const int64_t *ti,
                                 const float *w, int64_t first)
{
    (void)l, (void)x, (void)n, (void)ti, (void)w, (void)first;
    ((linear_timer *)ctx)->started = now();
    return STRATA_OK;
}

static strata_status timer_stop(void *ctx, const strata_linear *l, const float *y, int64_t n)
{
    (void)y;
    linear_timer *t = ctx;
    t->seconds += now() - t->started;
    t->flops += 2.0 * (double)n * (double)l->n_out * (double)l->n_in;
    return STRATA_OK;
}

/* ---------------------------------------------------------------- the 8B-shaped layer */

static void write_tensor(strata_safetensors_writer *w, const char *name, int64_t rows, int64_t cols, float scale,
                         bool ones)
{
    size_t n = (size_t)(cols ? rows * cols : rows);
    uint16_t *data = malloc(n * sizeof *data);
    for (size_t i = 0; i < n; i++) data[i] = bf16_of(ones ? 1.0f : scale * uniform());
    int64_t shape[2] = {rows, cols};
    if (strata_safetensors_writer_add(w, name, STRATA_DTYPE_BF16, cols ? 2 : 1, cols ? shape : &rows, data,
                                      n * 2) != STRATA_OK)
        fprintf(stderr, "bench: %s\n", strata_last_error());
    free(data);
}

static char *make_llama8b_layer(void)
{
    static char dir[256];
    snprintf(dir, sizeof dir, "%s/strata-bench-llama8b-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) return NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    fprintf(f, "{\"model_type\": \"llama\", \"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 4096,"
               " \"intermediate_size\": 14336, \"num_hidden_layers\": 1, \"num_attention_heads\": 32,"
               " \"num_key_value_heads\": 8, \"vocab_size\": 1024, \"max_position_embeddings\": 8192,"
               " \"rms_norm_eps\": 1e-5, \"rope_theta\": 500000.0, \"hidden_act\": \"silu\","
               " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\"}\n");
    fclose(f);
    strata_safetensors_writer *w;
    strata_writer_params wp = {.dir = dir};
    if (strata_safetensors_writer_create(&wp, &w) != STRATA_OK) return NULL;
    const int64_t H = 4096, I = 14336, KV = 1024;
    write_tensor(w, "model.embed_tokens.weight", 1024, H, 1.0f, false);
    write_tensor(w, "model.layers.0.input_layernorm.weight", H, 0, 0, true);
    write_tensor(w, "model.layers.0.self_attn.q_proj.weight", H, H, 0.03f, false);
    write_tensor(w, "model.layers.0.self_attn.k_proj.weight", KV, H, 0.03f, false);
    write_tensor(w, "model.layers.0.self_attn.v_proj.weight", KV, H, 0.03f, false);
    write_tensor(w, "model.layers.0.self_attn.o_proj.weight", H, H, 0.03f, false);
    write_tensor(w, "model.layers.0.post_attention_layernorm.weight", H, 0, 0, true);
    write_tensor(w, "model.layers.0.mlp.gate_proj.weight", I, H, 0.03f, false);
    write_tensor(w, "model.layers.0.mlp.up_proj.weight", I, H, 0.03f, false);
    write_tensor(w, "model.layers.0.mlp.down_proj.weight", H, I, 0.016f, false);
    write_tensor(w, "model.norm.weight", H, 0, 0, true);
    write_tensor(w, "lm_head.weight", 1024, H, 0.03f, false);
    if (strata_safetensors_writer_finish(w) != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    strata_safetensors_writer_free(w);
    return dir;
}

static void remove_model(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    unlink(path);
    rmdir(dir);
}

/* ---------------------------------------------------------------- measurements */

/* Best GFLOP/s of y (m, n) = x (m, k) W^T over a few runs. */
static void bench_layer(const char *label, const char *dir, int layer, gemm_precision precision, int64_t n_seq,
                        double peak)
{
    strata_model *model;
    if (strata_model_open(dir, &model) != STRATA_OK) {
        printf("%-14s skipped: %s\n", label, strata_last_error());
        return;
    }
    const strata_arch *arch = strata_model_arch(model);
    int64_t rows = n_seq * SEQ_LEN;
    int32_t *tokens = malloc((size_t)rows * sizeof *tokens);
    for (int64_t i = 0; i < rows; i++) tokens[i] = (int32_t)((i * 7919 + 13) % arch->vocab_size);
    float *hidden = malloc((size_t)(rows * arch->hidden_size) * sizeof *hidden);
    linear_timer timer = {0};
    forward_hooks hooks = {.ctx = &timer, .observe_input = timer_start, .observe_output = timer_stop};
    forward_config config = {.precision = precision, .hooks = &hooks, .n_hooks = 1};
    rope_table rope;
    layer_weights lw;
    if (forward_embed(model, tokens, rows, hidden) != STRATA_OK || rope_table_create(arch, SEQ_LEN, &rope) != STRATA_OK ||
        layer_weights_load(model, layer, precision, NULL, 0, &lw) != STRATA_OK) {
        printf("%-14s failed: %s\n", label, strata_last_error());
    } else {
        double t = now();
        strata_status status = decoder_layer_forward(&lw, &config, &rope, hidden, n_seq, SEQ_LEN, 0);
        double seconds = now() - t;
        if (status != STRATA_OK) printf("%-14s failed: %s\n", label, strata_last_error());
        else
            printf("%-14s %-5s %7lld %6lld %8.3f %9.0f %8.1f %7.3f %9.1f %9.1f %6.1f%%\n", label,
                   precision == GEMM_BF16 ? "bf16" : "fp32", (long long)rows,
                   (long long)decoder_chunk_sequences(arch, &config, SEQ_LEN) * SEQ_LEN, seconds, rows / seconds,
                   timer.flops * 1e-9, timer.seconds, timer.flops / timer.seconds * 1e-9, timer.flops / seconds * 1e-9,
                   100.0 * timer.flops / timer.seconds * 1e-9 / peak);
        layer_weights_free(&lw);
        rope_table_free(&rope);
    }
    free(hidden);
    free(tokens);
    strata_model_close(model);
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *shared = "../shared";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--shared") == 0 && i + 1 < argc) shared = argv[++i];
        else {
            fprintf(stderr, "usage: bench_forward [--quick] [--shared DIR]\n");
            return 2;
        }
    }
    int64_t n_seq = quick ? 2 : N_SEQ;
    printf("strata %s, %s, %d threads, CPU: %s\n", strata_version(), gemm_library(), pool_thread_count(),
           strata_cpu_features());
    double peak_bf16 = matmul_peak(GEMM_BF16, 8192, 4096, quick ? 4096 : 14336);
    double peak_f32 = matmul_peak(GEMM_F32, 8192, 4096, quick ? 4096 : 14336);
    printf("oneDNN matmul peak on this machine: bf16 %.1f GFLOP/s, fp32 %.1f GFLOP/s\n\n", peak_bf16, peak_f32);
    printf("%-14s %-5s %7s %6s %8s %9s %8s %7s %9s %9s %7s\n", "layer", "prec", "tokens", "chunk", "seconds",
           "tokens/s", "lin GF", "lin s", "lin GF/s", "layer GF/s", "of peak");
    char dir[4096];
    char *big = make_llama8b_layer();
    for (int p = 0; p < 2; p++) {
        gemm_precision precision = p == 0 ? GEMM_BF16 : GEMM_F32;
        double peak = p == 0 ? peak_bf16 : peak_f32;
        snprintf(dir, sizeof dir, "%s/models/llama-19m", shared);
        bench_layer("llama-19m", dir, 0, precision, n_seq, peak);
        snprintf(dir, sizeof dir, "%s/models/qwen3moe-47m", shared);
        bench_layer("qwen3moe-47m", dir, 0, precision, n_seq, peak);
        if (big) bench_layer("llama-3-8b", big, 0, precision, n_seq, peak);
    }
    if (big) remove_model(big);
    printf("\n'of peak' compares the linear layers' GFLOP/s with the matmul peak of the same precision.\n");
    return 0;
}
