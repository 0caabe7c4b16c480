/*
 * cpu.h — runtime CPU-feature dispatch.
 *
 * The shipped build targets baseline x86-64; faster variants of each kernel are compiled
 * with per-function target attributes and chosen once, at first use, from what the CPU
 * (and OS) supports. Every variant must produce the same bytes as the generic one, which
 * is the reference; STRATA_FORCE_GENERIC=1 selects it. Tests iterate over all variants
 * this CPU can run and compare them with the reference.
 */
#ifndef STRATA_KERNELS_CPU_H
#define STRATA_KERNELS_CPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cpu_features {
    bool avx2, f16c, fma;
    bool avx512f, avx512bw, avx512vl, avx512bf16;
    bool amx_tile, amx_bf16;
} cpu_features;

/* The features of this CPU (detected once). */
const cpu_features *cpu_detect(void);

/* One set of kernels (contracts in variants.h). */
typedef struct kernel_set {
    const char *name;                                       /* "generic", "avx2", "avx512" */
    bool (*supported)(const cpu_features *features);
    void (*bf16_to_f32)(const void *src, float *dst, size_t n);
    void (*f16_to_f32)(const void *src, float *dst, size_t n);
    bool (*block_absmax)(const float *x, size_t n, size_t block, float *out);
    bool (*bf16_block_absmax)(const void *src, size_t n, size_t block, float *out);
    void (*e4m3_divide)(const float *x, size_t n, float divisor, bool round_bf16, uint8_t *out);
    void (*e2m1_divide_blocks)(const float *x, size_t n_blocks, const float *divisors, uint8_t *codes);
    void (*vecmat)(const float *v, const float *m, size_t ld, size_t rows, size_t cols, float *out);
} kernel_set;

/* The set in use: the best supported one, or generic under STRATA_FORCE_GENERIC=1. */
const kernel_set *kernels(void);
/* All compiled-in sets, best first, the generic reference last. */
size_t kernel_set_count(void);
const kernel_set *kernel_set_at(size_t i);

/* Uses this set (NULL: back to automatic selection); for benchmarks and tests that compare
 * variants. Not thread-safe against concurrent kernel use. */
void kernels_override(const kernel_set *set);

extern const kernel_set KERNELS_GENERIC, KERNELS_AVX2, KERNELS_AVX512;

#endif
