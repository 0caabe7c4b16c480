/*
 * gemm.c — the one file that calls oneDNN (see gemm.h).
 *
 * A weight (n_out, n_in) row-major is, in oneDNN's matmul terms, the (K, N) weights tensor
 * in the transposed plain layout "ba"; the bf16 matmul reaches the library's peak with it
 * (measured on this project's machines: the same speed as the blocked layout oneDNN would
 * pick itself), so weights are only converted, never reordered. The source and
 * destination row counts are runtime dimensions, so one primitive per (precision, n_out,
 * n_in) serves every row count; primitives are cached by that key for the process.
 *
 * oneDNN here uses the OpenMP runtime (libgomp). Its thread count is the pool's: set on
 * the calling thread before every product. omp_set_num_threads is declared below rather
 * than taken from a compiler's omp.h, since the runtime is oneDNN's, not ours.
 */
#include "kernels/gemm.h"

#include <dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/big_buffer.h"
#include "core/error.h"
#include "kernels/minifloat.h"
#include "kernels/pool.h"

void omp_set_num_threads(int n);

/* Row-count independence: a row's result should not depend on how many rows share the
 * product (chunks of sequences, tokens routed to an expert, MPI ranks later). Measured
 * with oneDNN 2.6 on AVX512-BF16: for fixed (n_out, n_in) the bf16 matmul gives every
 * row the same bits for any row count, but the fp32 one switches kernels below 16 rows.
 * Products of fewer rows are therefore padded with zero rows to MIN_ROWS. */
enum { MIN_ROWS = 16 };

struct gemm_weight {
    gemm_precision precision;
    int64_t n_out, n_in;
    void *data;                 /* (n_out, n_in) row-major, bf16 bits or fp32; 64-byte aligned */
    bool borrowed;              /* data is the caller's (gemm_weight_borrow), not freed here */
    dnnl_primitive_t primitive; /* borrowed from the cache */
};

typedef struct cached_primitive {
    gemm_precision precision;
    int64_t n_out, n_in;
    dnnl_primitive_t primitive;
} cached_primitive;

static struct {
    pthread_mutex_t lock;
    bool ready;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    cached_primitive *cache;
    size_t n_cached, capacity;
} lib = {.lock = PTHREAD_MUTEX_INITIALIZER};

static strata_status dnnl_error(dnnl_status_t status, const char *what, const char *name)
{
    return strata_fail(STRATA_ERR_INTERNAL, "oneDNN %s failed for %s (dnnl status %d)", what, name, (int)status);
}

/* Under lib.lock. */
static strata_status start_library(void)
{
    if (lib.ready) return STRATA_OK;
    dnnl_status_t s = dnnl_engine_create(&lib.engine, dnnl_cpu, 0);
    if (s != dnnl_success) return dnnl_error(s, "engine creation", "the CPU");
    s = dnnl_stream_create(&lib.stream, lib.engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        dnnl_engine_destroy(lib.engine);
        return dnnl_error(s, "stream creation", "the CPU");
    }
    lib.ready = true;
    return STRATA_OK;
}

static dnnl_data_type_t dnnl_type(gemm_precision precision) { return precision == GEMM_BF16 ? dnnl_bf16 : dnnl_f32; }

/* Under lib.lock: the cached primitive for this shape, created on first use. */
static strata_status primitive_for(gemm_precision precision, int64_t n_out, int64_t n_in, const char *name,
                                   dnnl_primitive_t *out)
{
    for (size_t i = 0; i < lib.n_cached; i++) {
        const cached_primitive *c = &lib.cache[i];
        if (c->precision == precision && c->n_out == n_out && c->n_in == n_in) {
            *out = c->primitive;
            return STRATA_OK;
        }
    }
    if (lib.n_cached == lib.capacity) {
        size_t capacity = lib.capacity ? 2 * lib.capacity : 16;
        cached_primitive *grown = realloc(lib.cache, capacity * sizeof *grown);
        if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory caching a GEMM for %s", name);
        lib.cache = grown;
        lib.capacity = capacity;
    }
    /* dnnl_dims_t is a fixed-size array; the library reads all of it. */
    dnnl_dims_t src_dims = {DNNL_RUNTIME_DIM_VAL, n_in}, src_strides = {DNNL_RUNTIME_DIM_VAL, 1};
    dnnl_dims_t w_dims = {n_in, n_out}, w_strides = {1, n_in};
    dnnl_dims_t dst_dims = {DNNL_RUNTIME_DIM_VAL, n_out}, dst_strides = {DNNL_RUNTIME_DIM_VAL, 1};
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&src_md, 2, src_dims, dnnl_type(precision), src_strides);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&w_md, 2, w_dims, dnnl_type(precision), w_strides);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_strides);
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, &src_md, &w_md, NULL, &dst_md);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, NULL, lib.engine, NULL);
    if (s != dnnl_success) {
        if (precision == GEMM_BF16 && s == dnnl_unimplemented)
            return strata_fail(STRATA_ERR_UNSUPPORTED,
                               "this CPU has no bf16 matrix product in oneDNN (%s); use fp32 precision", name);
        return dnnl_error(s, "matmul setup", name);
    }
    dnnl_primitive_t primitive;
    s = dnnl_primitive_create(&primitive, pd);
    dnnl_primitive_desc_destroy(pd);
    if (s != dnnl_success) return dnnl_error(s, "matmul creation", name);
    lib.cache[lib.n_cached++] = (cached_primitive){precision, n_out, n_in, primitive};
    *out = primitive;
    return STRATA_OK;
}

typedef struct round_job {
    const float *src;
    uint16_t *dst;
} round_job;

static void round_range(void *ctx, int64_t begin, int64_t end)
{
    const round_job *job = ctx;
    for (int64_t i = begin; i < end; i++) job->dst[i] = bf16_bits_from_f32(job->src[i]);
}

void gemm_round_to_bf16(const float *src, uint16_t *dst, size_t n)
{
    round_job job = {src, dst};
    pool_parallel_for((int64_t)n, 1 << 14, round_range, &job);
}

/* Fills g->data from w (n elements of dtype) in g's precision. */
static strata_status convert_weight(gemm_weight *g, strata_dtype dtype, const void *w, size_t n)
{
    if (g->precision == GEMM_F32) return strata_convert_to_f32(dtype, w, n, g->data);
    if (dtype == STRATA_DTYPE_BF16) {
        memcpy(g->data, w, n * 2);
        return STRATA_OK;
    }
    if (dtype == STRATA_DTYPE_F32) {
        gemm_round_to_bf16(w, g->data, n);
        return STRATA_OK;
    }
    float *staging = malloc(n * sizeof *staging);
    if (!staging) return STRATA_ERR_OUT_OF_MEMORY;
    strata_status status = strata_convert_to_f32(dtype, w, n, staging);
    if (status == STRATA_OK) gemm_round_to_bf16(staging, g->data, n);
    free(staging);
    return status;
}

static strata_status finish_weight(gemm_weight *g, strata_status status, const char *name, gemm_weight **out);

static strata_status check_shape(int64_t n_out, int64_t n_in, const char *name)
{
    if (n_out > 0 && n_in > 0) return STRATA_OK;
    return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: empty weight (%lld, %lld)", name, (long long)n_out,
                       (long long)n_in);
}

strata_status gemm_weight_alloc(gemm_precision precision, int64_t n_out, int64_t n_in, const char *name,
                                gemm_weight **out)
{
    *out = NULL;
    strata_status shape = check_shape(n_out, n_in, name);
    if (shape != STRATA_OK) return shape;
    size_t element = precision == GEMM_BF16 ? 2 : 4;
    gemm_weight *g = calloc(1, sizeof *g);
    if (g) g->data = big_buffer_alloc((size_t)n_out * (size_t)n_in * element);
    if (g) {
        g->precision = precision;
        g->n_out = n_out;
        g->n_in = n_in;
    }
    return finish_weight(g, g && g->data ? STRATA_OK : STRATA_ERR_OUT_OF_MEMORY, name, out);
}

void *gemm_weight_data(gemm_weight *w) { return w->data; }

strata_status gemm_weight_create(gemm_precision precision, strata_dtype dtype, const void *w, int64_t n_out,
                                 int64_t n_in, const char *name, gemm_weight **out)
{
    *out = NULL;
    if (dtype != STRATA_DTYPE_F32 && dtype != STRATA_DTYPE_BF16 && dtype != STRATA_DTYPE_F16)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s: weights of dtype %s cannot feed a matrix product", name,
                           strata_dtype_name(dtype));
    gemm_weight *g = NULL;
    strata_status status = gemm_weight_alloc(precision, n_out, n_in, name, &g);
    if (status == STRATA_OK) status = convert_weight(g, dtype, w, (size_t)n_out * (size_t)n_in);
    if (status == STRATA_OK) {
        *out = g;
        return STRATA_OK;
    }
    gemm_weight_free(g);
    if (status == STRATA_ERR_OUT_OF_MEMORY) return strata_fail(status, "out of memory converting %s", name);
    return status;
}

strata_status gemm_weight_borrow(gemm_precision precision, const void *w, int64_t n_out, int64_t n_in,
                                 const char *name, gemm_weight **out)
{
    *out = NULL;
    strata_status shape = check_shape(n_out, n_in, name);
    if (shape != STRATA_OK) return shape;
    gemm_weight *g = calloc(1, sizeof *g);
    if (g) *g = (gemm_weight){.precision = precision, .n_out = n_out, .n_in = n_in, .data = (void *)w, .borrowed = true};
    return finish_weight(g, g ? STRATA_OK : STRATA_ERR_OUT_OF_MEMORY, name, out);
}

/* The primitive for g's shape, or g freed on failure. */
static strata_status finish_weight(gemm_weight *g, strata_status status, const char *name, gemm_weight **out)
{
    if (status == STRATA_OK) {
        pthread_mutex_lock(&lib.lock);
        status = start_library();
        if (status == STRATA_OK) status = primitive_for(g->precision, g->n_out, g->n_in, name, &g->primitive);
        pthread_mutex_unlock(&lib.lock);
    }
    if (status != STRATA_OK) {
        gemm_weight_free(g);
        if (status == STRATA_ERR_OUT_OF_MEMORY) return strata_fail(status, "out of memory for the weight %s", name);
        return status;
    }
    *out = g;
    return STRATA_OK;
}

void gemm_weight_free(gemm_weight *w)
{
    if (!w) return;
    if (!w->borrowed) free(w->data);
    free(w);
}

gemm_precision gemm_weight_precision(const gemm_weight *w) { return w->precision; }
int64_t gemm_weight_n_out(const gemm_weight *w) { return w->n_out; }
int64_t gemm_weight_n_in(const gemm_weight *w) { return w->n_in; }
size_t gemm_weight_bytes(const gemm_weight *w)
{
    return (size_t)w->n_out * (size_t)w->n_in * (w->precision == GEMM_BF16 ? 2 : 4);
}

/* Runs a primitive on the shared stream with the pool's thread count. */
static dnnl_status_t execute(dnnl_primitive_t primitive, int n_args, const dnnl_exec_arg_t *args)
{
    omp_set_num_threads(pool_thread_count());
    pthread_mutex_lock(&lib.lock);
    dnnl_status_t s = dnnl_primitive_execute(primitive, lib.stream, n_args, args);
    if (s == dnnl_success) s = dnnl_stream_wait(lib.stream);
    pthread_mutex_unlock(&lib.lock);
    return s;
}

/* Runs fewer than MIN_ROWS rows padded with zero rows to MIN_ROWS (see the top of the file). */
static strata_status small_linear(const gemm_weight *w, const void *x, int64_t ldx, int64_t m, float *y, int64_t ldy)
{
    size_t element = w->precision == GEMM_BF16 ? 2 : 4;
    uint8_t *padded_x = calloc((size_t)(MIN_ROWS * w->n_in), element);
    float *padded_y = malloc((size_t)(MIN_ROWS * w->n_out) * sizeof *padded_y);
    strata_status status = STRATA_OK;
    if (!padded_x || !padded_y) {
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for a %lld-row product", (long long)m);
    } else {
        for (int64_t r = 0; r < m; r++)
            memcpy(padded_x + (size_t)(r * w->n_in) * element, (const uint8_t *)x + (size_t)(r * ldx) * element,
                   (size_t)w->n_in * element);
        status = gemm_linear(w, padded_x, w->n_in, MIN_ROWS, padded_y, w->n_out);
        for (int64_t r = 0; status == STRATA_OK && r < m; r++)
            memcpy(y + r * ldy, padded_y + r * w->n_out, (size_t)w->n_out * sizeof *y);
    }
    free(padded_x);
    free(padded_y);
    return status;
}

strata_status gemm_linear(const gemm_weight *w, const void *x, int64_t ldx, int64_t m, float *y, int64_t ldy)
{
    if (m == 0) return STRATA_OK;
    if (pool_in_task()) /* oneDNN's threads would compete with the pool's */
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "gemm_linear called from inside a pool task");
    if (m < MIN_ROWS) return small_linear(w, x, ldx, m, y, ldy);
    dnnl_dims_t src_dims = {m, w->n_in}, src_strides = {ldx, 1};
    dnnl_dims_t w_dims = {w->n_in, w->n_out}, w_strides = {1, w->n_in};
    dnnl_dims_t dst_dims = {m, w->n_out}, dst_strides = {ldy, 1};
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_memory_t src = NULL, weights = NULL, dst = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&src_md, 2, src_dims, dnnl_type(w->precision), src_strides);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_strides(&w_md, 2, w_dims, dnnl_type(w->precision), w_strides);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_strides);
    if (s == dnnl_success) s = dnnl_memory_create(&src, &src_md, lib.engine, (void *)x);
    if (s == dnnl_success) s = dnnl_memory_create(&weights, &w_md, lib.engine, w->data);
    if (s == dnnl_success) s = dnnl_memory_create(&dst, &dst_md, lib.engine, y);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        s = execute(w->primitive, 3, args);
    }
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(weights);
    dnnl_memory_destroy(dst);
    if (s != dnnl_success) return dnnl_error(s, "matmul", "a linear layer");
    return STRATA_OK;
}

/* The Gram product as a matmul: src = x^T (n, rows) read through transposed strides,
 * weights = x (rows, n), dst = g (n, n) with a sum post-op, so g accumulates. */
strata_status gemm_gram_bf16(const uint16_t *x, int64_t rows, int64_t n, float *g)
{
    if (rows == 0) return STRATA_OK;
    if (pool_in_task()) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "gemm_gram_bf16 called from inside a pool task");
    pthread_mutex_lock(&lib.lock);
    strata_status status = start_library();
    pthread_mutex_unlock(&lib.lock);
    if (status != STRATA_OK) return status;
    dnnl_dims_t src_dims = {n, rows}, src_strides = {1, n};
    dnnl_dims_t w_dims = {rows, n}, w_strides = {n, 1};
    dnnl_dims_t dst_dims = {n, n}, dst_strides = {n, 1};
    dnnl_memory_desc_t src_md, w_md, dst_md;
    dnnl_matmul_desc_t desc;
    dnnl_post_ops_t post_ops = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t primitive = NULL;
    dnnl_memory_t src = NULL, weights = NULL, dst = NULL;
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(&src_md, 2, src_dims, dnnl_bf16, src_strides);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&w_md, 2, w_dims, dnnl_bf16, w_strides);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_strides(&dst_md, 2, dst_dims, dnnl_f32, dst_strides);
    if (s == dnnl_success) s = dnnl_matmul_desc_init(&desc, &src_md, &w_md, NULL, &dst_md);
    if (s == dnnl_success) s = dnnl_post_ops_create(&post_ops);
    if (s == dnnl_success) s = dnnl_post_ops_append_sum(post_ops, 1.0f);
    if (s == dnnl_success) s = dnnl_primitive_attr_create(&attr);
    if (s == dnnl_success) s = dnnl_primitive_attr_set_post_ops(attr, post_ops);
    if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &desc, attr, lib.engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(&primitive, pd);
    if (s == dnnl_success) s = dnnl_memory_create(&src, &src_md, lib.engine, (void *)x);
    if (s == dnnl_success) s = dnnl_memory_create(&weights, &w_md, lib.engine, (void *)x);
    if (s == dnnl_success) s = dnnl_memory_create(&dst, &dst_md, lib.engine, g);
    if (s == dnnl_success) {
        dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        s = execute(primitive, 3, args);
    }
    dnnl_memory_destroy(src);
    dnnl_memory_destroy(weights);
    dnnl_memory_destroy(dst);
    dnnl_primitive_destroy(primitive);
    dnnl_primitive_desc_destroy(pd);
    dnnl_primitive_attr_destroy(attr);
    dnnl_post_ops_destroy(post_ops);
    if (s != dnnl_success) return dnnl_error(s, "Gram product", "a Hessian");
    return STRATA_OK;
}

strata_status gemm_f32(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                       int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc)
{
    if (m == 0 || n == 0) return STRATA_OK;
    if (pool_in_task()) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "gemm_f32 called from inside a pool task");
    omp_set_num_threads(pool_thread_count());
    dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    if (s != dnnl_success) return dnnl_error(s, "sgemm", "a GPTQ update");
    return STRATA_OK;
}

strata_status gemm_bf16_available(bool *available)
{
    static int probed = -1; /* once known: 1 available, 0 not */
    strata_status status = STRATA_OK;
    pthread_mutex_lock(&lib.lock);
    if (probed < 0) {
        dnnl_primitive_t probe;
        status = start_library();
        if (status == STRATA_OK) status = primitive_for(GEMM_BF16, 16, 16, "a bf16 probe", &probe);
        if (status == STRATA_OK || status == STRATA_ERR_UNSUPPORTED) {
            probed = status == STRATA_OK;
            status = STRATA_OK;
            strata_error_clear();
        }
    }
    *available = probed == 1;
    pthread_mutex_unlock(&lib.lock);
    return status;
}

const char *gemm_library(void)
{
    static char text[64];
    const dnnl_version_t *v = dnnl_version();
    snprintf(text, sizeof text, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "threads");
    return text;
}
