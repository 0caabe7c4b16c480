/*
 * test_alloc_faults.c — the Nth allocation fails, for N = 1, 2, ... every allocation a run
 * makes, in quantize (max with SmoothQuant, llm-compressor's AWQ then GPTQ, ModelOpt's AWQ), convert, eval and inspect on a small synthetic model, the way
 * SQLite's test harness fails malloc. After each failure:
 *   - the call returns an error status with a message (or succeeds: a failure strata may
 *     absorb, then with exactly the undisturbed run's output);
 *   - nothing is leaked (LeakSanitizer, checked after every run in the sanitizer build);
 *   - nothing is left behind: the output directory of a run that failed does not exist.
 *
 * The allocator is wrapped at link time (-Wl,--wrap=malloc,...), so only strata's own
 * calls go through fail_point(): the sanitizers' allocator underneath stays in place,
 * which an LD_PRELOAD shim (tests/fault/fault_inject.c, release build) cannot do. Calls made
 * inside shared libraries (jansson, oneDNN) are not counted. One thread, so the Nth
 * allocation is the same one on every run.
 *
 * STRATA_ALLOC_FAULT_STRIDE=K tries every Kth allocation (default 1: all of them; the
 * sanitizer build's AWQ scenarios 6 and 4);
 * STRATA_ALLOC_FAULT_FIRST=N starts at the Nth; STRATA_ALLOC_FAULT_TRACE=1 prints a
 * backtrace of each failed allocation (link with -rdynamic for names).
 */
#include <dirent.h>
#include <errno.h>
#include <execinfo.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "helpers.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define LEAK_CHECK() 0
#endif

/* ------------------------------------------------------------------ the wrapped allocator */

static atomic_long allocations; /* counted since the last arm() */
static atomic_long fail_at;     /* 0: never fail */
static atomic_int failed;       /* the armed allocation was reached */

static bool trace; /* STRATA_ALLOC_FAULT_TRACE: print where each armed failure happens */

static bool fail_point(void)
{
    long n = atomic_fetch_add(&allocations, 1) + 1;
    if (n != atomic_load(&fail_at)) return false;
    atomic_store(&failed, 1);
    if (trace) {
        void *frames[16];
        int depth = backtrace(frames, 16);
        fprintf(stderr, "-- allocation %ld fails here:\n", n);
        backtrace_symbols_fd(frames, depth, 2);
    }
    return true;
}

static void arm(long n)
{
    atomic_store(&allocations, 0);
    atomic_store(&failed, 0);
    atomic_store(&fail_at, n);
}

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t alignment, size_t size);
int __real_posix_memalign(void **p, size_t alignment, size_t size);
char *__real_realpath(const char *path, char *resolved);
void *__real_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);

void *__wrap_malloc(size_t size) { return fail_point() ? NULL : __real_malloc(size); }
void *__wrap_calloc(size_t n, size_t size) { return fail_point() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t size) { return fail_point() ? NULL : __real_realloc(p, size); }
char *__wrap_strdup(const char *s) { return fail_point() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return fail_point() ? NULL : __real_strndup(s, n); }
void *__wrap_aligned_alloc(size_t alignment, size_t size)
{
    return fail_point() ? NULL : __real_aligned_alloc(alignment, size);
}
int __wrap_posix_memalign(void **p, size_t alignment, size_t size)
{
    return fail_point() ? ENOMEM : __real_posix_memalign(p, alignment, size);
}
char *__wrap_realpath(const char *path, char *resolved)
{
    if (!resolved && fail_point()) {
        errno = ENOMEM;
        return NULL;
    }
    return __real_realpath(path, resolved);
}
void *__wrap_mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset)
{
    if ((flags & MAP_ANONYMOUS) && fail_point()) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    return __real_mmap(addr, length, prot, flags, fd, offset);
}

/* ------------------------------------------------------------------ the scenarios */

typedef struct fixture {
    char *dir;
    char *model;       /* a synthetic Llama */
    char *one_layer;   /* one Qwen3-MoE layer of two experts (both AWQs; llm-compressor's calls repeat
                        * per layer; the MoE block's and the experts' mappings) */
    char *quantized;   /* its fp8 quantization (eval and inspect read it) */
    char *out;         /* where each faulted run writes */
    int32_t *tokens;   /* (N_SAMPLES, SEQ) */
} fixture;

enum { N_SAMPLES = 2, SEQ = 16 };

/* One run of a scenario; *output is what it produced (a report, a perplexity) when that
 * is not a directory, malloc'd, or NULL. */
typedef strata_status (*scenario_fn)(const fixture *f, const char *out, char **output);

static strata_status run_quantize(const fixture *f, const char *out, char **output)
{
    *output = NULL;
    /* SmoothQuant's statistics and decisions on top of the plain run's */
    strata_quantize_params p = {.model_dir = f->model, .output_dir = out, .scheme = STRATA_SCHEME_FP8,
                                .tokens = f->tokens, .n_samples = N_SAMPLES, .seq_len = SEQ, .kv_cache_fp8 = true,
                                .smooth = 0.5};
    strata_quantize_result r;
    return strata_quantize_model(&p, &r);
}

static strata_status run_quantize_gptq(const fixture *f, const char *out, char **output)
{
    *output = NULL;
    /* llm-compressor's AWQ (its kept inputs, parent reruns, trial weights), then GPTQ */
    strata_quantize_params p = {.model_dir = f->one_layer, .output_dir = out, .scheme = STRATA_SCHEME_INT4_ASYM,
                                .algo = "awq+gptq", .format = STRATA_EXPORT_COMPRESSED_TENSORS, .tokens = f->tokens,
                                .n_samples = N_SAMPLES, .seq_len = SEQ};
    strata_quantize_result r;
    return strata_quantize_model(&p, &r);
}

static strata_status run_quantize_awq(const fixture *f, const char *out, char **output)
{
    *output = NULL;
    /* ModelOpt's AWQ on an MoE layer: each expert's window means and window-mean Hessian,
     * the experts' input amax, the down -> up folds, the experts' averaged scales */
    strata_quantize_params p = {.model_dir = f->one_layer, .output_dir = out, .scheme = STRATA_SCHEME_NVFP4,
                                .algo = "awq", .tokens = f->tokens, .n_samples = N_SAMPLES, .seq_len = SEQ};
    strata_quantize_result r;
    return strata_quantize_model(&p, &r);
}

static strata_status run_convert(const fixture *f, const char *out, char **output)
{
    *output = NULL;
    strata_convert_params p = {.model_dir = f->model, .output_dir = out, .scheme = STRATA_SCHEME_NVFP4_WEIGHT_ONLY};
    strata_convert_result r;
    return strata_convert_model(&p, &r);
}

static strata_status run_eval(const fixture *f, const char *out, char **output)
{
    (void)out;
    *output = NULL;
    strata_model *model = NULL;
    strata_status status = strata_model_open(f->quantized, &model);
    strata_eval_params p = {.window = SEQ};
    strata_eval_result r;
    if (status == STRATA_OK) status = strata_eval_perplexity(model, f->tokens, N_SAMPLES * SEQ, &p, &r);
    strata_model_close(model);
    if (status == STRATA_OK) {
        char text[64];
        snprintf(text, sizeof text, "%.17g", r.perplexity);
        *output = __real_strdup(text);
    }
    return status;
}

static strata_status run_inspect(const fixture *f, const char *out, char **output)
{
    (void)out;
    strata_inspect_params p = {.json = true, .stats = true};
    char *report = NULL;
    strata_status status = strata_inspect(f->quantized, &p, &report);
    *output = report ? __real_strdup(report) : NULL;
    strata_free(report);
    return status;
}

static bool exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Runs the scenario with allocation n failing (0: none); false (with a message) when it
 * broke a promise. reference: the undisturbed run's output directory or text. */
static bool faulted_run(const fixture *f, scenario_fn fn, long n, const char *reference_dir, const char *reference,
                        const char *name, long *n_errors, long *n_absorbed)
{
    test_remove_tree(f->out);
    arm(n);
    char *output = NULL;
    strata_status status = fn(f, f->out, &output);
    bool reached = atomic_load(&failed);
    arm(0);
    bool ok = true;
    if (status != STRATA_OK) (*n_errors)++;
    else if (reached) (*n_absorbed)++;
    if (status != STRATA_OK) {
        if (!strata_last_error()[0]) {
            fprintf(stderr, "%s, allocation %ld: status %d without a message\n", name, n, (int)status);
            ok = false;
        }
        if (exists(f->out)) {
            fprintf(stderr, "%s, allocation %ld failed (%s) and left %s behind\n", name, n, strata_last_error(), f->out);
            ok = false;
        }
    } else if (n > 0) {
        /* Absorbed: the output must be the undisturbed one. */
        if (reference && (!output || strcmp(output, reference) != 0)) {
            fprintf(stderr, "%s, allocation %ld: succeeded with a different result:\n%.400s\n", name, n,
                    output ? output : "(none)");
            ok = false;
        }
        if (reference_dir) {
            const char *files[] = {"model.safetensors", "config.json", "hf_quant_config.json"};
            for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                char *in_reference = test_path(reference_dir, files[i]);
                if (exists(in_reference)) test_assert_same_file(reference_dir, f->out, files[i]);
                free(in_reference);
            }
        }
    }
    free(output);
    if (LEAK_CHECK()) {
        fprintf(stderr, "%s, allocation %ld (%s): leaked (see above)\n", name, n,
                status == STRATA_OK ? "absorbed" : strata_last_error());
        ok = false;
    }
    return ok;
}

static void run_scenario_every(const fixture *f, scenario_fn fn, bool writes_dir, const char *name, long every)
{
    /* The undisturbed run: its allocation count, and the reference output. */
    char *reference_dir = test_path(f->dir, "reference");
    char *reference = NULL;
    test_remove_tree(reference_dir);
    arm(0);
    strata_status status = fn(f, writes_dir ? reference_dir : f->out, &reference);
    long total = atomic_load(&allocations);
    if (status != STRATA_OK) fail_msg("%s: the undisturbed run failed: %s", name, strata_last_error());
    const char *stride_env = getenv("STRATA_ALLOC_FAULT_STRIDE");
    long stride = stride_env && atol(stride_env) > 0 ? atol(stride_env) : every;
    const char *first_env = getenv("STRATA_ALLOC_FAULT_FIRST");
    long first = first_env && atol(first_env) > 0 ? atol(first_env) : 1;
    long tried = 0, errors = 0, absorbed = 0;
    bool ok = true;
    for (long n = first; n <= total; n += stride) {
        ok = faulted_run(f, fn, n, writes_dir ? reference_dir : NULL, reference, name, &errors, &absorbed) && ok;
        tried++;
    }
    printf("%s: %ld allocations in an undisturbed run; %ld allocation points tried: %ld clean errors, %ld absorbed "
           "with the same output\n", name, total, tried, errors, absorbed);
    fflush(stdout);
    test_remove_tree(f->out);
    test_remove_tree(reference_dir);
    free(reference_dir);
    free(reference);
    assert_true(tried > 0);
    assert_true(ok);
}

static void run_scenario(const fixture *f, scenario_fn fn, bool writes_dir, const char *name)
{
    run_scenario_every(f, fn, writes_dir, name, 1);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_temp_dir();
    f->model = test_path(f->dir, "model");
    f->one_layer = test_path(f->dir, "one-layer");
    f->quantized = test_path(f->dir, "quantized");
    f->out = test_path(f->dir, "out");
    strata_set_num_threads(1);
    trace = getenv("STRATA_ALLOC_FAULT_TRACE") != NULL;
    void *warm[1];
    backtrace(warm, 1); /* loads what backtrace needs before any allocation is armed */
    strata_synth_params sp = {.family = STRATA_FAMILY_LLAMA, .seed = 7, .n_layers = 2, .hidden_size = 64};
    if (strata_synth_model(f->model, &sp) != STRATA_OK) return -1;
    strata_synth_params moe = {.family = STRATA_FAMILY_QWEN3_MOE, .seed = 7, .n_layers = 1, .hidden_size = 64,
                               .n_experts = 2};
    if (strata_synth_model(f->one_layer, &moe) != STRATA_OK) return -1;
    f->tokens = calloc(N_SAMPLES * SEQ, sizeof *f->tokens);
    for (int i = 0; i < N_SAMPLES * SEQ; i++) f->tokens[i] = (i * 37 + 11) % 200;
    char *unused = NULL;
    if (run_quantize(f, f->quantized, &unused) != STRATA_OK) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_remove_tree(f->dir);
    free(f->dir);
    free(f->model);
    free(f->one_layer);
    free(f->quantized);
    free(f->out);
    free(f->tokens);
    free(f);
    return 0;
}

static void test_quantize(void **state) { run_scenario(*state, run_quantize, true, "quantize fp8 --smooth 0.5"); }
/* Each point is a whole quantize run, llm-compressor's AWQ and GPTQ on one MoE layer about
 * 2,900 of them (its trials repeat the same calls 20 times per mapping) and ModelOpt's AWQ on
 * it fewer, the most of any scenario: under the sanitizers every 6th and 4th, in release every one. */
static void test_quantize_gptq(void **state)
{
#ifdef STRATA_SANITIZE_BUILD
    run_scenario_every(*state, run_quantize_gptq, true,
                       "quantize int4-asym awq+gptq --format compressed-tensors (every 6th point)", 6);
#else
    run_scenario_every(*state, run_quantize_gptq, true, "quantize int4-asym awq+gptq --format compressed-tensors", 1);
#endif
}
static void test_quantize_awq(void **state)
{
#ifdef STRATA_SANITIZE_BUILD
    run_scenario_every(*state, run_quantize_awq, true, "quantize nvfp4 awq (every 4th point)", 4);
#else
    run_scenario_every(*state, run_quantize_awq, true, "quantize nvfp4 awq", 1);
#endif
}
static void test_convert(void **state) { run_scenario(*state, run_convert, true, "convert nvfp4-weight-only"); }
static void test_eval(void **state) { run_scenario(*state, run_eval, false, "eval"); }
static void test_inspect(void **state) { run_scenario(*state, run_inspect, false, "inspect --json --stats"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize),
        cmocka_unit_test(test_quantize_gptq),
        cmocka_unit_test(test_quantize_awq),
        cmocka_unit_test(test_convert),
        cmocka_unit_test(test_eval),
        cmocka_unit_test(test_inspect),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
