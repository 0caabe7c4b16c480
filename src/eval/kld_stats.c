/*
 * kld_stats.c — per-token comparison of two next-token distributions and llama.cpp's
 * statistics over them (see kld_stats.h; llama.cpp tools/perplexity/perplexity.cpp,
 * kl_divergence()).
 *
 * The formulas are llama.cpp's: a mean's error is sqrt((E[x^2] - E[x]^2) / (N - 1)) (0 for
 * N <= 10); the ratio and difference of perplexities subtract the covariance of the two
 * mean NLLs; RMS dp's error is 0.5 / rms times the error of mean(dp^2); the agreement's
 * is sqrt(s (1 - s) / (N - 1)); percentiles interpolate linearly at index f (N - 1), the
 * median is the middle value (or the mean of the two middle ones). strata computes in
 * double throughout (llama.cpp rounds some per-token values to float).
 */
#include "eval/kld_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

const double strata_kld_percentiles[STRATA_KLD_PERCENTILES] = {1, 0.999, 0.99, 0.95, 0.9, 0.5,
                                                               0.1, 0.05, 0.01, 0.001, 0};
const double strata_dp_percentiles[STRATA_DP_PERCENTILES] = {1,   0.999, 0.99, 0.95, 0.9,  0.75,  0.5,
                                                             0.25, 0.1,  0.05, 0.01, 0.001, 0};

enum { COMPRESSED_HEADER = 4 }; /* uint16 words of a record before its values: float scale, float min */

double kld_log_sum_exp(const float *logits, int64_t vocab, int64_t *argmax)
{
    int64_t best = 0;
    for (int64_t i = 1; i < vocab; i++)
        if (logits[i] > logits[best]) best = i;
    double max = logits[best], sum = 0;
    for (int64_t i = 0; i < vocab; i++) sum += exp((double)logits[i] - max);
    if (argmax) *argmax = best;
    return max + log(sum);
}

/* A compressed record's log p_i = scale q_i + min (float, as llama.cpp decodes it). */
static inline float compressed_log_prob(float scale, float min, const uint16_t *q, int64_t i)
{
    return scale * (float)q[i] + min;
}

static kld_token token_result(double nll_q, double nll_base, double kld, bool same_top)
{
    return (kld_token){.nll_q = nll_q, .nll_base = nll_base, .kld = kld, .p_diff = exp(-nll_q) - exp(-nll_base),
                       .same_top = same_top};
}

static kld_token compare_compressed(const float *logits_q, double lse_q, int64_t argmax_q, const uint16_t *record,
                                    int64_t vocab, int32_t target)
{
    float scale, min;
    memcpy(&scale, record, sizeof scale);
    memcpy(&min, record + 2, sizeof min);
    const uint16_t *q = record + COMPRESSED_HEADER;
    double kld = 0;
    int64_t argmax_base = 0;
    float best = compressed_log_prob(scale, min, q, 0);
    for (int64_t i = 0; i < vocab; i++) {
        float lp = compressed_log_prob(scale, min, q, i);
        if (lp > best) {
            best = lp;
            argmax_base = i;
        }
        if (lp > -16.0f) kld += exp((double)lp) * ((double)lp - ((double)logits_q[i] - lse_q));
    }
    return token_result(lse_q - (double)logits_q[target], -(double)compressed_log_prob(scale, min, q, target), kld,
                        argmax_q == argmax_base);
}

kld_token kld_token_compare(const float *logits_q, const kld_base_row *base, int64_t vocab, int32_t target)
{
    int64_t argmax_q = 0;
    double lse_q = kld_log_sum_exp(logits_q, vocab, &argmax_q);
    if (base->compressed) return compare_compressed(logits_q, lse_q, argmax_q, base->compressed, vocab, target);
    const float *b = base->logits;
    double lse_b = base->log_sum_exp, kld = 0;
    int64_t argmax_base = 0;
    for (int64_t i = 0; i < vocab; i++) {
        if (b[i] > b[argmax_base]) argmax_base = i;
        double lp = (double)b[i] - lse_b, lq = (double)logits_q[i] - lse_q;
        kld += exp(lp) * (lp - lq);
    }
    return token_result(lse_q - (double)logits_q[target], lse_b - (double)b[target], kld, argmax_q == argmax_base);
}

strata_status kld_accumulate(kld_accumulator *acc, const kld_token *tokens, int64_t n)
{
    if (acc->count + n > acc->capacity) {
        int64_t capacity = acc->capacity ? acc->capacity : 1024;
        while (capacity < acc->count + n) capacity *= 2;
        double *kld = realloc(acc->kld, (size_t)capacity * sizeof *kld);
        if (kld) acc->kld = kld;
        double *p_diff = kld ? realloc(acc->p_diff, (size_t)capacity * sizeof *p_diff) : NULL;
        if (p_diff) acc->p_diff = p_diff;
        if (!kld || !p_diff) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for per-token statistics");
        acc->capacity = capacity;
    }
    for (int64_t i = 0; i < n; i++) {
        const kld_token *t = &tokens[i];
        acc->sum_q += t->nll_q;
        acc->sum_q2 += t->nll_q * t->nll_q;
        acc->sum_base += t->nll_base;
        acc->sum_base2 += t->nll_base * t->nll_base;
        acc->sum_q_base += t->nll_q * t->nll_base;
        acc->sum_kld += t->kld;
        acc->sum_kld2 += t->kld * t->kld;
        double dp2 = t->p_diff * t->p_diff;
        acc->sum_dp += t->p_diff;
        acc->sum_dp2 += dp2;
        acc->sum_dp4 += dp2 * dp2;
        acc->same_top += t->same_top;
        acc->kld[acc->count] = t->kld;
        acc->p_diff[acc->count] = t->p_diff;
        acc->count++;
    }
    return STRATA_OK;
}

/* The mean of n values and its standard error. */
static strata_estimate mean_and_error(double sum, double sum2, int64_t n)
{
    if (n < 1) return (strata_estimate){0, 0};
    double mean = sum / (double)n, variance = sum2 / (double)n - mean * mean;
    return (strata_estimate){mean, variance > 0 && n > 10 ? sqrt(variance / (double)(n - 1)) : 0};
}

/* The covariance of two means. */
static double covariance(double sum_a, double sum_b, double sum_ab, int64_t n)
{
    if (n < 10) return 0;
    return (sum_ab / (double)n - (sum_a / (double)n) * (sum_b / (double)n)) / (double)(n - 1);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* sorted (n) at fraction f: the median as the middle value(s), others interpolated. */
static double percentile(const double *sorted, int64_t n, double f)
{
    if (n == 0) return 0;
    if (f <= 0) return sorted[0];
    if (f >= 1) return sorted[n - 1];
    if (f == 0.5) return n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]);
    double p = f * (double)(n - 1);
    int64_t i = (int64_t)p;
    p -= (double)i;
    return (1 - p) * sorted[i] + p * sorted[i + 1 < n ? i + 1 : n - 1];
}

void kld_summarize(kld_accumulator *acc, strata_eval_compare_result *out)
{
    int64_t n = acc->count;
    out->n_scored = n;
    strata_estimate q = mean_and_error(acc->sum_q, acc->sum_q2, n), b = mean_and_error(acc->sum_base, acc->sum_base2, n);
    double cov = covariance(acc->sum_q, acc->sum_base, acc->sum_q_base, n);
    double ppl_q = exp(q.value), ppl_b = exp(b.value);
    out->ppl_q = (strata_estimate){ppl_q, ppl_q * q.error};
    out->ppl_base = (strata_estimate){ppl_b, ppl_b * b.error};
    out->ln_ppl_correlation = q.error > 0 && b.error > 0 ? cov / (q.error * b.error) : 0;
    double ratio_variance = q.error * q.error + b.error * b.error - 2 * cov;
    double ratio_error = ratio_variance > 0 ? sqrt(ratio_variance) : 0;
    out->ln_ppl_ratio = (strata_estimate){q.value - b.value, ratio_error};
    out->ppl_ratio = (strata_estimate){exp(q.value - b.value), exp(q.value - b.value) * ratio_error};
    double difference_variance = ppl_q * q.error * ppl_q * q.error + ppl_b * b.error * ppl_b * b.error -
                                 2 * ppl_q * ppl_b * cov;
    out->ppl_difference = (strata_estimate){ppl_q - ppl_b, difference_variance > 0 ? sqrt(difference_variance) : 0};
    out->kld = mean_and_error(acc->sum_kld, acc->sum_kld2, n);
    out->p_diff = mean_and_error(acc->sum_dp, acc->sum_dp2, n);
    strata_estimate dp2 = mean_and_error(acc->sum_dp2, acc->sum_dp4, n);
    double rms = sqrt(dp2.value);
    out->p_diff_rms = (strata_estimate){rms, rms > 0 ? 0.5 / rms * dp2.error : 0};
    double same = n ? (double)acc->same_top / (double)n : 0;
    out->same_top = (strata_estimate){same, n > 1 ? sqrt(same * (1 - same) / (double)(n - 1)) : 0};
    if (n) {
        qsort(acc->kld, (size_t)n, sizeof *acc->kld, compare_doubles);
        qsort(acc->p_diff, (size_t)n, sizeof *acc->p_diff, compare_doubles);
    }
    for (int i = 0; i < STRATA_KLD_PERCENTILES; i++)
        out->kld_percentile[i] = percentile(acc->kld, n, strata_kld_percentiles[i]);
    for (int i = 0; i < STRATA_DP_PERCENTILES; i++)
        out->p_diff_percentile[i] = percentile(acc->p_diff, n, strata_dp_percentiles[i]);
}

void kld_accumulator_free(kld_accumulator *acc)
{
    free(acc->kld);
    free(acc->p_diff);
    *acc = (kld_accumulator){0};
}
