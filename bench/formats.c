/*
 * bench/formats.c — quantization throughput of every format and kernel variant on
 * 4096x4096 and 14336x4096 BF16 weights, in GB/s of input, next to this machine's
 * memcpy bandwidth measured in the same run. One thread unless STRATA_THREADS says
 * otherwise. Not a test: it prints a table.
 *
 *   make bench            (or build/release/bench_formats [--quick] [--format NAME] [--kernels NAME])
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_clock.h"
#include "kernels/cpu.h"
#include "strata.h"

/* Best of `repeats` timings of fn. */
#define BEST_OF(repeats, seconds, body)                      \
    do {                                                     \
        seconds = 1e30;                                      \
        for (int rep_ = 0; rep_ < (repeats); rep_++) {       \
            double t0_ = now();                              \
            body;                                            \
            double dt_ = now() - t0_;                        \
            if (dt_ < seconds) seconds = dt_;                \
        }                                                    \
    } while (0)

static uint16_t *random_bf16(size_t n)
{
    uint16_t *w = malloc(n * sizeof *w);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        /* sign, exponent around 2^-6..2^1, random mantissa: weight-like magnitudes */
        uint16_t exponent = (uint16_t)(121 + (s >> 20) % 8);
        w[i] = (uint16_t)(((s >> 40) & 0x8000) | (exponent << 7) | ((s >> 8) & 0x7f));
    }
    return w;
}

int main(int argc, char **argv)
{
    bool quick = false;
    const char *only_format = NULL, *only_kernels = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) quick = true;
        else if (strcmp(argv[i], "--format") == 0 && i + 1 < argc) only_format = argv[++i];
        else if (strcmp(argv[i], "--kernels") == 0 && i + 1 < argc) only_kernels = argv[++i];
        else {
            fprintf(stderr, "usage: bench_formats [--quick] [--format NAME] [--kernels generic|avx2|avx512]\n");
            return 2;
        }
    }
    const char *threads_env = getenv("STRATA_THREADS");
    int threads = threads_env ? atoi(threads_env) : 1;
    strata_set_num_threads(threads);
    const int64_t shapes[2][2] = {{4096, 4096}, {14336, 4096}};
    int n_shapes = quick ? 1 : 2, repeats = quick ? 1 : 3;

    size_t largest = (size_t)(shapes[n_shapes - 1][0] * shapes[n_shapes - 1][1]) * 2;
    char *a = malloc(largest), *b = malloc(largest);
    memset(a, 1, largest);
    memset(b, 2, largest);
    double copy_seconds;
    BEST_OF(5, copy_seconds, memcpy(b, a, largest));
    double memcpy_gbs = (double)largest / copy_seconds / 1e9;
    free(a);
    free(b);

    printf("strata %s bench/formats: quantize a BF16 weight, GB/s of input, %d thread%s, best of %d\n",
           strata_version(), threads, threads == 1 ? "" : "s", repeats);
    printf("cpu features: %s\n", strata_cpu_features());
    printf("memcpy bandwidth on this machine, same run: %.2f GB/s (%zu MB copied)\n\n", memcpy_gbs, largest >> 20);
    printf("%-12s %-12s", "format", "shape");
    for (size_t k = 0; k < kernel_set_count(); k++) printf(" %14s", kernel_set_at(kernel_set_count() - 1 - k)->name);
    printf("  %s\n", "best / memcpy");

    for (int s = 0; s < n_shapes; s++) {
        int64_t rows = shapes[s][0], cols = shapes[s][1];
        size_t n = (size_t)(rows * cols);
        uint16_t *w = random_bf16(n);
        for (int f = 0; f < STRATA_FORMAT_COUNT; f++) {
            strata_quant_params p = {.format = (strata_format)f};
            strata_quant_shape shape;
            if (only_format && strcmp(only_format, strata_format_get(p.format)->name) != 0) continue;
            if (strata_quant_shape_get(&p, rows, cols, &shape) != STRATA_OK) continue;
            strata_qtensor q = {.codes = malloc(shape.code_bytes), .scales = malloc(shape.scale_bytes),
                                .zero_points = shape.zero_point_bytes ? malloc(shape.zero_point_bytes) : NULL};
            char shape_text[32];
            snprintf(shape_text, sizeof shape_text, "%lldx%lld", (long long)rows, (long long)cols);
            printf("%-12s %-12s", strata_format_get(p.format)->name, shape_text);
            double best = 0;
            for (size_t k = 0; k < kernel_set_count(); k++) {
                const kernel_set *set = kernel_set_at(kernel_set_count() - 1 - k); /* generic first */
                if (!set->supported(cpu_detect()) || (only_kernels && strcmp(only_kernels, set->name) != 0)) {
                    printf(" %14s", "n/a");
                    continue;
                }
                kernels_override(set);
                double seconds;
                strata_status status = STRATA_OK;
                BEST_OF(repeats, seconds, status = strata_quantize(&p, STRATA_DTYPE_BF16, w, rows, cols, &q));
                if (status != STRATA_OK) {
                    fprintf(stderr, "bench: %s\n", strata_last_error());
                    return 1;
                }
                double gbs = (double)(n * 2) / seconds / 1e9;
                if (gbs > best) best = gbs;
                printf(" %9.2f GB/s", gbs);
            }
            kernels_override(NULL);
            printf("  %5.0f%%\n", 100.0 * best / memcpy_gbs);
            fflush(stdout);
            free(q.codes);
            free(q.scales);
            free(q.zero_points);
        }
        free(w);
    }
    printf("\nColumns select the kernel set for the whole tensor. FP8 and NVFP4 elements have SIMD\n"
           "kernels; the other formats' element code is the scalar reference in every column, so only\n"
           "their statistics pass and BF16 widening change between columns.\n");
    return 0;
}
