/*
 * cpu.c — feature detection and kernel selection (see cpu.h).
 */
#include "kernels/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "strata.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define STRATA_X86 1
#endif

static cpu_features detected;
static const kernel_set *selected;
static char feature_list[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const kernel_set *const ALL_SETS[] = {&KERNELS_AVX512, &KERNELS_AVX2, &KERNELS_GENERIC};

static void append_feature(bool present, const char *name)
{
    if (!present) return;
    if (feature_list[0]) strncat(feature_list, " ", sizeof feature_list - strlen(feature_list) - 1);
    strncat(feature_list, name, sizeof feature_list - strlen(feature_list) - 1);
}

static void detect_once(void)
{
#ifdef STRATA_X86
    __builtin_cpu_init();
    /* __builtin_cpu_supports also checks that the OS saves the wider registers. */
    detected.avx2 = __builtin_cpu_supports("avx2");
    detected.f16c = __builtin_cpu_supports("f16c");
    detected.fma = __builtin_cpu_supports("fma");
    detected.avx512f = __builtin_cpu_supports("avx512f");
    detected.avx512bw = __builtin_cpu_supports("avx512bw");
    detected.avx512vl = __builtin_cpu_supports("avx512vl");
    detected.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    unsigned a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        detected.amx_bf16 = (d >> 22) & 1;
        detected.amx_tile = (d >> 24) & 1;
    }
#endif
    append_feature(detected.avx2, "avx2");
    append_feature(detected.f16c, "f16c");
    append_feature(detected.fma, "fma");
    append_feature(detected.avx512f, "avx512f");
    append_feature(detected.avx512bw, "avx512bw");
    append_feature(detected.avx512vl, "avx512vl");
    append_feature(detected.avx512bf16, "avx512bf16");
    append_feature(detected.amx_tile, "amx-tile");
    append_feature(detected.amx_bf16, "amx-bf16");

    const char *force = getenv("STRATA_FORCE_GENERIC");
    bool generic = force && force[0] && strcmp(force, "0") != 0;
    selected = &KERNELS_GENERIC;
    for (size_t i = 0; !generic && i < sizeof ALL_SETS / sizeof ALL_SETS[0]; i++) {
        if (ALL_SETS[i]->supported(&detected)) {
            selected = ALL_SETS[i];
            break;
        }
    }
}

const cpu_features *cpu_detect(void)
{
    pthread_once(&once, detect_once);
    return &detected;
}

const kernel_set *kernels(void)
{
    pthread_once(&once, detect_once);
    return selected;
}

size_t kernel_set_count(void) { return sizeof ALL_SETS / sizeof ALL_SETS[0]; }

const kernel_set *kernel_set_at(size_t i) { return i < kernel_set_count() ? ALL_SETS[i] : NULL; }

const char *strata_cpu_features(void)
{
    pthread_once(&once, detect_once);
    return feature_list;
}

const char *strata_cpu_kernel_set(void) { return kernels()->name; }
