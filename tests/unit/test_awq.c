/*
 * test_awq.c — the pieces of --algo awq (calib/awq.h, docs/AWQ.md): ModelOpt's alpha grid,
 * its weight statistics and scale formula on values worked out by hand, and the search's
 * loss through the Hessian against the output error computed from the inputs themselves; and
 * llm-compressor's AWQModifier arithmetic (calib/awq_modifier.h): its grid, torch's float32
 * column sums, the scales, the trial weights and the per-window loss.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/awq.h"
#include "calib/awq_modifier.h"
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

/* llm-compressor's duo_scaling=True grid: the identity, then (i - 1) / 18 with duo scaling. */
static void modifier_grid(void **state)
{
    (void)state;
    double ratio;
    bool duo;
    awq_modifier_point(0, &ratio, &duo);
    assert_true(ratio == 0 && !duo);
    awq_modifier_point(1, &ratio, &duo);
    assert_true(ratio == 0 && duo);
    awq_modifier_point(10, &ratio, &duo);
    assert_true(ratio == 0.5 && duo);
    awq_modifier_point(AWQ_MODIFIER_GRID - 1, &ratio, &duo);
    assert_true(ratio == 1.0 && duo);
    awq_modifier_point(4, &ratio, &duo);
    assert_true(ratio == 3.0 / 18);
}

/* torch.from_numpy(x).sum(0) for x[i, c] = float32((37 i + 11 c) % 97) * float32(0.01), 300 x 64:
 * aten's cascade order, which a sequential float32 sum misses in 43 of the 64 columns. */
static void modifier_column_sums_are_torchs(void **state)
{
    (void)state;
    static const float torch_sums[64] = {
        0x1.1e9998p+7f, 0x1.1ea3d6p+7f, 0x1.209eb8p+7f, 0x1.1eb850p+7f, 0x1.20b334p+7f, 0x1.20bd70p+7f,
        0x1.20c7acp+7f, 0x1.20d1eap+7f, 0x1.20dc28p+7f, 0x1.1ef5c0p+7f, 0x1.1f0000p+7f, 0x1.1f0a3ep+7f,
        0x1.1f147ap+7f, 0x1.1f1eb8p+7f, 0x1.211998p+7f, 0x1.2123d6p+7f, 0x1.212e16p+7f, 0x1.213850p+7f,
        0x1.1f51ecp+7f, 0x1.1f5c28p+7f, 0x1.1f6666p+7f, 0x1.1f70a4p+7f, 0x1.1f7ae2p+7f, 0x1.2175c2p+7f,
        0x1.1f8f5cp+7f, 0x1.218a3ep+7f, 0x1.1fa3d8p+7f, 0x1.1fae14p+7f, 0x1.1fb852p+7f, 0x1.1fc290p+7f,
        0x1.1fcccep+7f, 0x1.1fd70ap+7f, 0x1.1fe148p+7f, 0x1.1feb84p+7f, 0x1.1ff5c2p+7f, 0x1.1ffffep+7f,
        0x1.200a3cp+7f, 0x1.20147ap+7f, 0x1.201eb8p+7f, 0x1.2028f4p+7f, 0x1.203332p+7f, 0x1.203d70p+7f,
        0x1.2047acp+7f, 0x1.2051eap+7f, 0x1.205c28p+7f, 0x1.1e75c0p+7f, 0x1.2070a2p+7f, 0x1.1e8a3cp+7f,
        0x1.20851ep+7f, 0x1.208f5ap+7f, 0x1.209998p+7f, 0x1.20a3d8p+7f, 0x1.20ae12p+7f, 0x1.1ec7acp+7f,
        0x1.1ed1ecp+7f, 0x1.1edc28p+7f, 0x1.1ee666p+7f, 0x1.20e148p+7f, 0x1.20eb84p+7f, 0x1.20f5c0p+7f,
        0x1.20fffep+7f, 0x1.210a3cp+7f, 0x1.1f23d6p+7f, 0x1.1f2e14p+7f};
    enum { R = 300, K = 64 };
    float *x = malloc(R * K * sizeof *x), sums[K] = {0};
    assert_non_null(x);
    for (int i = 0; i < R; i++)
        for (int c = 0; c < K; c++) x[i * K + c] = (float)((37 * i + 11 * c) % 97) * 0.01f;
    assert_int_equal(awq_modifier_add_column_sums(x, R, K, sums), STRATA_OK);
    for (int c = 0; c < K; c++) assert_true(sums[c] == torch_sums[c]);
    /* adds to what is there: a second window */
    assert_int_equal(awq_modifier_add_column_sums(x, R, K, sums), STRATA_OK);
    assert_true(sums[0] == torch_sums[0] + torch_sums[0]);
    free(x);
}

/* Scales by hand: x = (1, 4), w = (1, 1); r = 1/2 gives (1, 2) / 1.0001, normalized by
 * sqrt(2) / 1.0001 to (1/sqrt 2, sqrt 2); the identity point gives ones; a NaN gives ones. */
static void modifier_scales(void **state)
{
    (void)state;
    const float x[2] = {1, 4};
    const double w[2] = {1, 1};
    double s[2];
    awq_modifier_scales(10, x, w, 2, s);
    assert_float_equal(s[0], 1 / sqrt(2.0), 1e-12);
    assert_float_equal(s[1], sqrt(2.0), 1e-12);
    awq_modifier_scales(0, x, w, 2, s);
    assert_true(s[0] == 1 && s[1] == 1);
    const float nan_x[2] = {NAN, 4};
    awq_modifier_scales(5, nan_x, w, 2, s);
    assert_true(s[0] == 1 && s[1] == 1);
    /* The weight statistic: |w| / bf16(group amax + 1e-6), summed in float64 */
    const float wt[4] = {1, -2, 0.5f, 0.25f};
    double sum[2] = {0};
    awq_modifier_add_weight_sums(wt, 2, 2, 2, STRATA_DTYPE_BF16, sum);
    assert_true(sum[0] == 0.5 + 1 && sum[1] == 1 + 0.5);
}

/* The trial weight at s = 1 is the quantizer's dequantized weight; the loss of one window
 * rounds each difference and square to bf16 and the sum too. */
static void modifier_trial_and_loss(void **state)
{
    (void)state;
    enum { N = 4, K = 128 };
    float w[N * K], trial[N * K], fake[N * K];
    for (int i = 0; i < N * K; i++) w[i] = bf16_round((float)((i * 29) % 31 - 15) / 64.0f);
    strata_quant_params qp = scheme_weight_params(scheme_get(STRATA_SCHEME_INT4_ASYM),
                                                  STRATA_CONVENTION_COMPRESSED_TENSORS, 0);
    qp.values_dtype = STRATA_DTYPE_BF16;
    double ones[K];
    for (int k = 0; k < K; k++) ones[k] = 1;
    assert_int_equal(awq_modifier_trial_weight(&qp, w, N, K, ones, true, trial), STRATA_OK);
    assert_int_equal(strata_fake_quantize(&qp, STRATA_DTYPE_F32, w, N, K, fake), STRATA_OK);
    for (int i = 0; i < N * K; i++) assert_true(trial[i] == bf16_round(fake[i]));
    const float y0[3] = {1, 2, 3}, y[3] = {1.5f, 2, 3.0078125f};
    /* 0.25 + 0 + bf16(0.0078125^2) */
    assert_true(awq_modifier_window_loss(y0, y, 3, STRATA_DTYPE_BF16) == bf16_round(0.25f + 0.00006103515625f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alpha_grid_is_modelopts),
        cmocka_unit_test(weight_statistics),
        cmocka_unit_test(scale_formula),
        cmocka_unit_test(loss_is_the_output_error),
        cmocka_unit_test(modifier_grid),
        cmocka_unit_test(modifier_column_sums_are_torchs),
        cmocka_unit_test(modifier_scales),
        cmocka_unit_test(modifier_trial_and_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
