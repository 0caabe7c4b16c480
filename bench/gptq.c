/*
 * bench/gptq.c — GPTQ per linear at Llama-3-8B sizes: a 4096 x 4096 weight (q_proj) and a
 * 14336 x 4096 one (gate_proj), with 512 x 512 calibration tokens, INT4 group 128 and
 * NVFP4. Reports seconds split into the Hessian (bf16 Gram products of the 262144 input
 * rows, in chunks of 8192 as the engine feeds them), the factorization (LAPACK Cholesky,
 * inverse, Cholesky), the column updates (per-row block loop on the pool plus the fp32
 * trailing GEMM), and the two Hessian-weighted error products; next to the oneDNN
 * matmul peaks measured in the same run. Not a test.
 *
 *   make bench        (or build/release/bench_gptq [--quick])
 *
 * The Hessian of one input serves q/k/v (or gate/up) together, so it is paid once per
 * group; the other phases once per linear. OPENBLAS_CORETYPE=SkylakeX in the environment
 * lets OpenBLAS use its AVX-512 kernels on CPUs it misdetects (see kernels/linalg.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_clock.h"
#include "bench_peak.h"
#include "calib/gptq.h"
#include "kernels/gemm.h"
#include "kernels/pool.h"
#include "strata.h"

enum { K = 4096, CHUNK = 8192 };

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float uniform(void)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (float)((rng_state >> 11) * 0x1.0p-53) - 0.5f;
}

/* H (K, K) = 2/n sum x x^T over `tokens` random rows, in chunks; returns seconds. */
static double hessian(float *h, int64_t tokens)
{
    uint16_t *x = malloc((size_t)CHUNK * K * sizeof *x);
    float *row = malloc((size_t)CHUNK * K * sizeof *row);
    for (size_t i = 0; i < (size_t)CHUNK * K; i++) row[i] = uniform() * (1.0f + (float)(i % K) / K);
    gemm_round_to_bf16(row, x, (size_t)CHUNK * K);
    memset(h, 0, sizeof(float) * K * K);
    double t = now();
    for (int64_t done = 0; done < tokens; done += CHUNK)
        if (gemm_gram_bf16(x, CHUNK, K, h) != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    t = now() - t;
    for (size_t i = 0; i < (size_t)K * K; i++) h[i] *= (float)(2.0 / (double)tokens);
    free(x);
    free(row);
    return t;
}

static void bench_linear(const char *label, strata_format format, int64_t n_out, const float *h, int64_t tokens,
                         double hessian_seconds)
{
    strata_quant_params p = {.format = format, .convention = STRATA_CONVENTION_MODELOPT, .group_size = 128};
    strata_quant_shape shape;
    strata_quant_shape_get(&p, n_out, K, &shape);
    strata_qtensor q = {.codes = malloc(shape.code_bytes), .scales = malloc(shape.scale_bytes)};
    float *w = malloc(sizeof(float) * (size_t)n_out * K);
    for (size_t i = 0; i < (size_t)n_out * K; i++) w[i] = 0.02f * uniform();
    gptq_options o = {.damp = 0.01, .block = 128, .min_tokens = 32};
    gptq_report r;
    double t = now();
    if (gptq_quantize(&p, h, tokens, w, n_out, K, &o, &q, &r) != STRATA_OK) {
        printf("%-22s failed: %s\n", label, strata_last_error());
    } else {
        double total = now() - t;
        double update_gf = 2.0 * (double)n_out * K * K / 2 / r.seconds_update * 1e-9;
        printf("%-22s %9.2f %9.2f %9.2f %9.2f %9.2f %10.1f   %.3e -> %.3e\n", label, hessian_seconds,
               r.seconds_factorize, r.seconds_update, r.seconds_errors, total, update_gf, r.error_rtn, r.error_gptq);
    }
    free(w);
    free(q.codes);
    free(q.scales);
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    if (argc > 1 && !quick) {
        fprintf(stderr, "usage: bench_gptq [--quick]\n");
        return 2;
    }
    int64_t tokens = quick ? 32 * 512 : 512 * 512;
    printf("strata %s, %s, %d threads, CPU: %s\n", strata_version(), gemm_library(), pool_thread_count(),
           strata_cpu_features());
    double peak_bf16 = matmul_peak(GEMM_BF16, 8192, 4096, 4096), peak_f32 = matmul_peak(GEMM_F32, 8192, 4096, 4096);
    printf("oneDNN matmul peak on this machine: bf16 %.1f GFLOP/s, fp32 %.1f GFLOP/s\n", peak_bf16, peak_f32);
    float *h = malloc(sizeof(float) * K * K);
    double hs = hessian(h, tokens);
    printf("Hessian (%d, %d) from %lld tokens: %.2f s, %.1f GFLOP/s (bf16 Gram products; %.0f%% of the bf16 peak)\n\n",
           K, K, (long long)tokens, hs, 2.0 * (double)tokens * K * K / hs * 1e-9,
           100.0 * 2.0 * (double)tokens * K * K / hs * 1e-9 / peak_bf16);
    printf("%-22s %9s %9s %9s %9s %9s %10s   %s\n", "linear", "hessian s", "factor s", "update s", "errors s",
           "gptq s", "update GF/s", "H-weighted error rtn -> gptq");
    bench_linear("q_proj 4096x4096 int4", STRATA_FORMAT_INT4_GROUP, 4096, h, tokens, hs);
    bench_linear("q_proj 4096x4096 nvfp4", STRATA_FORMAT_NVFP4, 4096, h, tokens, hs);
    bench_linear("gate 14336x4096 int4", STRATA_FORMAT_INT4_GROUP, 14336, h, tokens, hs);
    bench_linear("gate 14336x4096 nvfp4", STRATA_FORMAT_NVFP4, 14336, h, tokens, hs);
    printf("\n'gptq s' = factorization + column updates + error products (excludes the Hessian, shared by the\n"
           "linears of one input); 'update GF/s' counts the n_out * K^2 flops of the column updates against\n"
           "the fp32 peak above.\n");
    free(h);
    return 0;
}
