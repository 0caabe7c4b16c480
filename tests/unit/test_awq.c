/*
 * test_awq.c — the pieces of --algo awq (calib/awq.h, docs/AWQ.md): ModelOpt's alpha grid,
 * its weight statistics and scale formula on values worked out by hand, and the search's
 * loss through the Hessian against the output error computed from the inputs themselves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/awq.h"
#include "core/rng.h"
#include "helpers.h"
#include "kernels/minifloat.h"
#include "quant/format.h"
#include "quant/scheme.h"

/* torch.arange(0, 1.1, 0.1) in float32, as ModelOpt's awq_lite keys its losses. */
static void alpha_grid_is_modelopts(void **state)
{
    (void)state;
    const double expected[AWQ_ALPHAS] = {0.0, 0.10000000149011612, 0.20000000298023224, 0.30000001192092896,
                                         0.4000000059604645, 0.5, 0.6000000238418579, 0.699999988079071,
                                         0.800000011920929, 0.8999999761581421, 1.0};
    for (int i = 0; i < AWQ_ALPHAS; i++) assert_true((double)awq_alpha(i) == expected[i]);
}

/* Two rows of 4 inputs in blocks of 2: |w| / its block's amax, averaged over the rows. */
static void weight_statistics(void **state)
{
    (void)state;
    const float w[8] = {1, -2, 4, 0, /* blocks (1, -2) amax 2, (4, 0) amax 4 */
                        -3, 3, 0, 0}; /* (-3, 3) amax 3, (0, 0) amax 0: zero, not NaN */
    float out[4];
    assert_int_equal(awq_weight_scale(w, 2, 4, 2, STRATA_DTYPE_F32, out), STRATA_OK);
    assert_float_equal(out[0], (0.5 + 1.0) / 2, 1e-7);
    assert_float_equal(out[1], (1.0 + 1.0) / 2, 1e-7);
    assert_float_equal(out[2], (1.0 + 0.0) / 2, 1e-7);
    assert_float_equal(out[3], 0.0, 0);
    /* In bf16 arithmetic each ratio and the mean are bf16 values: 1/3 becomes 0.333984375. */
    const float w3[3] = {1, 3, 3};
    float b[3];
    assert_int_equal(awq_weight_scale(w3, 1, 3, 0, STRATA_DTYPE_BF16, b), STRATA_OK);
    assert_true(b[0] == bf16_round(1.0f / 3.0f) && b[0] != 1.0f / 3.0f);
}

/* s = act^a / w^(1-a), clamped to [1e-4, 1e4], divided by sqrt(max s * min s). */
static void scale_formula(void **state)
{
    (void)state;
    const float act[3] = {4, 1, 0}, wscale[3] = {1, 0.25f, 1};
    float s[3];
    awq_scale(act, wscale, 3, 0.5f, s);
    /* raw: 2, 1 / 0.5 = 2, 0 -> 1e-4; normalized by sqrt(2 * 1e-4) */
    float norm = sqrtf(2.0f * 1e-4f);
    assert_float_equal(s[0], 2.0f / norm, 1e-4);
    assert_float_equal(s[1], 2.0f / norm, 1e-4);
    assert_float_equal(s[2], 1e-4f / norm, 1e-9);
    /* a = 0: 1 / w; a = 1: act */
    awq_scale(act, wscale, 3, 0.0f, s);
    assert_float_equal(s[1] / s[0], 4.0, 1e-5);
    awq_scale(act, wscale, 3, 1.0f, s);
    assert_float_equal(s[0] / s[1], 4.0, 1e-5);
}

/* Uniform in [-1, 1). */
static float uniform(rng *g) { return (float)((double)(rng_next(g) >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

/* The loss the search minimizes, tr(dW H dW^T) / (2 n_out) with H = 2/n X^T X, is the mean
 * squared output error of (X / s) Q(W s)^T against X W^T, computed here from X itself;
 * and the chosen a is the first with the least loss. */
static void loss_is_the_output_error(void **state)
{
    (void)state;
    enum { N = 32, K = 128, T = 200 };
    rng g = {.state = 7};
    float *w = malloc(N * K * sizeof *w), *x = malloc(T * K * sizeof *x), *h = calloc(K * K, sizeof *h);
    float act[K], scale[K], s[K];
    for (int i = 0; i < N * K; i++) w[i] = uniform(&g) * 0.05f;
    for (int t = 0; t < T; t++)
        for (int k = 0; k < K; k++) x[t * K + k] = uniform(&g) * (k % 8 == 0 ? 8.0f : 1.0f); /* outlier channels */
    for (int k = 0; k < K; k++) {
        double sum = 0;
        for (int t = 0; t < T; t++) sum += fabs(x[t * K + k]);
        act[k] = (float)(sum / T);
    }
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            double sum = 0;
            for (int t = 0; t < T; t++) sum += (double)x[t * K + a] * x[t * K + b];
            h[a * K + b] = (float)(2.0 * sum / T);
        }
    strata_quant_params qp = scheme_weight_params(scheme_get(STRATA_SCHEME_INT4), STRATA_CONVENTION_MODELOPT, 0);
    qp.values_dtype = STRATA_DTYPE_F32;
    awq_search_input in = {.weight = &qp, .w = w, .n_out = N, .n_in = K, .block = 128, .act = act, .h = h};
    awq_search_result result;
    assert_int_equal(awq_search(&in, "test", scale, &result), STRATA_OK);
    float wscale[K], *q = malloc(N * K * sizeof *q);
    assert_int_equal(awq_weight_scale(w, N, K, 128, STRATA_DTYPE_F32, wscale), STRATA_OK);
    int best = 0;
    for (int i = 0; i < AWQ_ALPHAS; i++) {
        awq_scale(act, wscale, K, awq_alpha(i), s);
        for (int r = 0; r < N; r++)
            for (int k = 0; k < K; k++) q[r * K + k] = w[r * K + k] * s[k];
        assert_int_equal(quant_fake_clipped(&qp, STRATA_DTYPE_F32, q, N, K, NULL, q), STRATA_OK);
        double sq = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < N; r++) {
                double y = 0, yq = 0;
                for (int k = 0; k < K; k++) {
                    y += (double)x[t * K + k] * w[r * K + k];
                    yq += (double)(x[t * K + k] * (1.0f / s[k])) * q[r * K + k];
                }
                sq += (y - yq) * (y - yq);
            }
        double direct = sq / (T * N);
        assert_float_equal(result.loss[i], direct, 1e-4 * direct);
        if (result.loss[i] < result.loss[best]) best = i;
    }
    assert_int_equal(result.best, best);
    /* With outlier channels the activation-aware scale beats a = 0 (weights alone). */
    assert_true(result.best > 0 && result.loss[result.best] < result.loss[0]);
    awq_scale(act, wscale, K, awq_alpha(best), s);
    assert_memory_equal(s, scale, sizeof s);
    free(w);
    free(x);
    free(h);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alpha_grid_is_modelopts),
        cmocka_unit_test(weight_statistics),
        cmocka_unit_test(scale_formula),
        cmocka_unit_test(loss_is_the_output_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
