/*
 * bench/quantize_once.c — the weight quantization work of one decoder layer, before and
 * after strata held each linear's quantized weight (issue 29): before, a layer quantized
 * every linear three times (the decision's fake quantization, the quantized pass's, and
 * the export's); now once, with its values (the decision), then the quantized pass
 * dequantizes the held codes and the export writes them. Shapes of a Llama-3-8B and a
 * Llama-3-70B layer; fp32 weights as the engine holds them; next to the time one memcpy of
 * each fp32 weight takes on this machine in the same run (the memory-bandwidth floor).
 * Not a test: it prints a table.
 *
 *   make bench            (or build/release/bench_quantize_once [--quick]: the 8B layer only)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "kernels/pool.h"
#include "quant/format.h"
#include "strata.h"

typedef struct linear_shape {
    const char *name;
    int64_t n_out, n_in;
} linear_shape;

static const linear_shape LLAMA3_8B[] = {
    {"q_proj", 4096, 4096},  {"k_proj", 1024, 4096},   {"v_proj", 1024, 4096},  {"o_proj", 4096, 4096},
    {"gate_proj", 14336, 4096}, {"up_proj", 14336, 4096}, {"down_proj", 4096, 14336},
};
static const linear_shape LLAMA3_70B[] = {
    {"q_proj", 8192, 8192},  {"k_proj", 1024, 8192},   {"v_proj", 1024, 8192},  {"o_proj", 8192, 8192},
    {"gate_proj", 28672, 8192}, {"up_proj", 28672, 8192}, {"down_proj", 8192, 28672},
};

static void fill_weight(float *w, size_t n)
{
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        w[i] = ((float)(s >> 40) / (float)(1u << 24) - 0.5f) * 0.05f;
    }
}

typedef struct layer_times {
    double before, after, memcpy_floor;
} layer_times;

static int time_layer(const linear_shape *shapes, size_t n_shapes, strata_scheme scheme_id, layer_times *t)
{
    strata_format format;
    strata_quant_params p = {.convention = STRATA_CONVENTION_MODELOPT};
    if (scheme_id == STRATA_SCHEME_FP8) format = STRATA_FORMAT_FP8_TENSOR;
    else if (scheme_id == STRATA_SCHEME_NVFP4) format = STRATA_FORMAT_NVFP4;
    else format = STRATA_FORMAT_INT4_GROUP, p.group_size = 128;
    p.format = format;
    *t = (layer_times){0};
    for (size_t i = 0; i < n_shapes; i++) {
        int64_t N = shapes[i].n_out, K = shapes[i].n_in;
        size_t n = (size_t)(N * K);
        float *w = malloc(n * sizeof *w), *q = malloc(n * sizeof *q);
        strata_quant_shape shape;
        strata_qtensor held = {0};
        if (!w || !q || strata_quant_shape_get(&p, N, K, &shape) != STRATA_OK || !quant_qtensor_alloc(&shape, &held)) {
            fprintf(stderr, "out of memory for %s\n", shapes[i].name);
            return 1;
        }
        fill_weight(w, n);
        memset(held.codes, 0, shape.code_bytes); /* every buffer touched before timing */
        memset(held.scales, 0, shape.scale_bytes);
        double t0 = now();
        memcpy(q, w, n * sizeof *w);
        t->memcpy_floor += now() - t0;
        /* Before: the decision's and the quantized pass's fake quantization, the export's. */
        t0 = now();
        int failed = strata_fake_quantize(&p, STRATA_DTYPE_F32, w, N, K, q) != STRATA_OK;
        failed |= strata_fake_quantize(&p, STRATA_DTYPE_F32, w, N, K, q) != STRATA_OK;
        failed |= strata_quantize(&p, STRATA_DTYPE_F32, w, N, K, &held) != STRATA_OK;
        t->before += now() - t0;
        /* After: quantized once with its values; the quantized pass dequantizes the codes. */
        t0 = now();
        failed |= quant_tensor_clipped(&p, STRATA_DTYPE_F32, w, N, K, NULL, &held, q) != STRATA_OK;
        failed |= strata_dequantize(&p, &held, N, K, q) != STRATA_OK;
        t->after += now() - t0;
        quant_qtensor_free(&held);
        free(w);
        free(q);
        if (failed) {
            fprintf(stderr, "%s: %s\n", shapes[i].name, strata_last_error());
            return 1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    const struct {
        const char *model;
        const linear_shape *shapes;
        size_t n;
    } layers[] = {
        {"Llama-3-8B", LLAMA3_8B, sizeof LLAMA3_8B / sizeof LLAMA3_8B[0]},
        {"Llama-3-70B", LLAMA3_70B, sizeof LLAMA3_70B / sizeof LLAMA3_70B[0]},
    };
    const strata_scheme schemes[] = {STRATA_SCHEME_FP8, STRATA_SCHEME_NVFP4, STRATA_SCHEME_INT4};
    printf("weight quantization per decoder layer (fp32 weights, %s kernels, %d threads)\n", strata_cpu_kernel_set(),
           pool_thread_count());
    printf("%-12s %-6s %12s %12s %8s %14s\n", "layer", "scheme", "before (s)", "after (s)", "saved", "memcpy floor");
    for (size_t l = 0; l < (quick ? 1 : 2); l++) {
        for (size_t s = 0; s < sizeof schemes / sizeof schemes[0]; s++) {
            layer_times t;
            if (time_layer(layers[l].shapes, layers[l].n, schemes[s], &t)) return 1;
            printf("%-12s %-6s %12.3f %12.3f %7.0f%% %12.3f s\n", layers[l].model, strata_scheme_name(schemes[s]),
                   t.before, t.after, 100.0 * (t.before - t.after) / t.before, t.memcpy_floor);
            fflush(stdout);
        }
    }
    return 0;
}
