/*
 * cpu.c — feature detection and kernel selection (see cpu.h).
 */
#include "kernels/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/variants.h"
#include "strata.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define STRATA_X86 1
#endif

static bool always(const cpu_features *f)
{
    (void)f;
    return true;
}
static bool has_avx2(const cpu_features *f) { return f->avx2 && f->f16c && f->fma; }
static bool has_avx512(const cpu_features *f) { return f->avx512f && f->avx512bw && f->avx512vl; }

#define KERNEL_SET(prefix, check)                                                                            \
    {                                                                                                        \
        .name = #prefix, .supported = check, .bf16_to_f32 = prefix##_bf16_to_f32,                            \
        .f16_to_f32 = prefix##_f16_to_f32, .block_absmax = prefix##_block_absmax,                            \
        .bf16_block_absmax = prefix##_bf16_block_absmax,                                                     \
        .e4m3_divide = prefix##_e4m3_divide, .e2m1_divide_blocks = prefix##_e2m1_divide_blocks,              \
        .vecmat = prefix##_vecmat,                                                                           \
    }

const kernel_set KERNELS_GENERIC = KERNEL_SET(generic, always);
const kernel_set KERNELS_AVX2 = KERNEL_SET(avx2, has_avx2);
const kernel_set KERNELS_AVX512 = KERNEL_SET(avx512, has_avx512);

static cpu_features detected;
static const kernel_set *selected, *overridden;
static char feature_list[160];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static const kernel_set *const ALL_SETS[] = {&KERNELS_AVX512, &KERNELS_AVX2, &KERNELS_GENERIC};

static void append_feature(bool present, const char *name)
{
    if (!present) return;
    if (feature_list[0]) strncat(feature_list, " ", sizeof feature_list - strlen(feature_list) - 1);
    strncat(feature_list, name, sizeof feature_list - strlen(feature_list) - 1);
}

#ifdef STRATA_X86
/* Which register states the OS saves on context switch (XCR0). */
static uint64_t os_saved_state(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}
#endif

/* CPUID plus XCR0, so a feature counts only when the OS also saves its registers. */
static void detect_once(void)
{
#ifdef STRATA_X86
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1) /* OSXSAVE */) {
        uint64_t xcr0 = os_saved_state();
        bool avx_state = (xcr0 & 0x6) == 0x6;
        bool avx512_state = avx_state && (xcr0 & 0xe0) == 0xe0;
        bool amx_state = (xcr0 & 0x60000) == 0x60000;
        bool avx = avx_state && (c >> 28 & 1);
        detected.fma = avx && (c >> 12 & 1);
        detected.f16c = avx && (c >> 29 & 1);
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
            detected.avx2 = avx && (b >> 5 & 1);
            detected.avx512f = avx512_state && (b >> 16 & 1);
            detected.avx512bw = detected.avx512f && (b >> 30 & 1);
            detected.avx512vl = detected.avx512f && (b >> 31 & 1);
            detected.amx_bf16 = amx_state && (d >> 22 & 1);
            detected.amx_tile = amx_state && (d >> 24 & 1);
        }
        if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) detected.avx512bf16 = detected.avx512f && (a >> 5 & 1);
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
    return overridden ? overridden : selected;
}

void kernels_override(const kernel_set *set) { overridden = set; }

size_t kernel_set_count(void) { return sizeof ALL_SETS / sizeof ALL_SETS[0]; }

const kernel_set *kernel_set_at(size_t i) { return i < kernel_set_count() ? ALL_SETS[i] : NULL; }

const char *strata_cpu_features(void)
{
    pthread_once(&once, detect_once);
    return feature_list;
}

const char *strata_cpu_kernel_set(void) { return kernels()->name; }
