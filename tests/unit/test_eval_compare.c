/*
 * test_eval_compare.c — the pieces of `strata eval --base` (docs/EVAL.md): llama.cpp's
 * statistics on values worked out by hand, the compressed log-probabilities of its base
 * file, and the file itself (written, read back, refused when damaged).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/base_logits.h"
#include "eval/kld_stats.h"
#include "helpers.h"

/* 20 tokens: kld i / 100, p_diff alternately +-i / 1000, nll_q = nll_base + 0.1, the
 * top agreeing on 15 of them. */
static void statistics_follow_llama_cpp(void **state)
{
    (void)state;
    enum { N = 20 };
    kld_token tokens[N];
    for (int i = 0; i < N; i++)
        tokens[i] = (kld_token){.nll_base = 1.0 + 0.05 * i, .nll_q = 1.1 + 0.05 * i, .kld = i / 100.0,
                                .p_diff = (i % 2 ? -1 : 1) * i / 1000.0, .same_top = i >= 5};
    kld_accumulator acc = {0};
    /* Added in two parts: the sums do not care. */
    assert_int_equal(kld_accumulate(&acc, tokens, 7), STRATA_OK);
    assert_int_equal(kld_accumulate(&acc, tokens + 7, N - 7), STRATA_OK);
    strata_eval_compare_result r = {0};
    kld_summarize(&acc, &r);
    assert_int_equal(r.n_scored, N);
    double mean = 0.095, variance = 0;
    for (int i = 0; i < N; i++) variance += (i / 100.0) * (i / 100.0) / N;
    variance -= mean * mean;
    assert_float_equal(r.kld.value, mean, 1e-12);
    assert_float_equal(r.kld.error, sqrt(variance / (N - 1)), 1e-12);
    /* Percentiles: index f (N - 1) interpolated; the median between the two middle values. */
    assert_float_equal(r.kld_percentile[0], 0.19, 1e-12);                     /* maximum */
    assert_float_equal(r.kld_percentile[2], 0.19 * 0.81 + 0.18 * 0.19, 1e-12); /* 99%: 18.81 */
    assert_float_equal(r.kld_percentile[5], 0.095, 1e-12);                    /* median */
    assert_float_equal(r.kld_percentile[STRATA_KLD_PERCENTILES - 1], 0, 1e-12);
    /* Every NLL is the base's plus 0.1: the ratio is exactly e^0.1, with no uncertainty,
     * and the two are perfectly correlated. */
    assert_float_equal(r.ln_ppl_ratio.value, 0.1, 1e-12);
    assert_float_equal(r.ppl_ratio.value, exp(0.1), 1e-12);
    assert_true(r.ln_ppl_ratio.error < 1e-6);
    assert_float_equal(r.ln_ppl_correlation, 1.0, 1e-9);
    assert_float_equal(r.ppl_q.value, exp(1.1 + 0.05 * 9.5), 1e-9);
    assert_float_equal(r.same_top.value, 0.75, 1e-12);
    assert_float_equal(r.same_top.error, sqrt(0.75 * 0.25 / (N - 1)), 1e-12);
    double dp2 = 0, dp4 = 0;
    for (int i = 0; i < N; i++) {
        double d = i / 1000.0;
        dp2 += d * d / N;
        dp4 += d * d * d * d / N;
    }
    double rms = sqrt(dp2), dp2_error = sqrt((dp4 - dp2 * dp2) / (N - 1));
    assert_float_equal(r.p_diff_rms.value, rms, 1e-12);
    assert_float_equal(r.p_diff_rms.error, 0.5 / rms * dp2_error, 1e-12);
    assert_float_equal(r.p_diff_percentile[0], 0.018, 1e-12);
    assert_float_equal(r.p_diff_percentile[STRATA_DP_PERCENTILES - 1], -0.019, 1e-12);
    kld_accumulator_free(&acc);

    /* Ten tokens or fewer: no standard errors, as llama.cpp gives none. */
    assert_int_equal(kld_accumulate(&acc, tokens, 10), STRATA_OK);
    kld_summarize(&acc, &r);
    assert_true(r.kld.error == 0 && r.ppl_q.error == 0);
    kld_accumulator_free(&acc);
}

/* A distribution against itself is 0, exactly; against another, the sum by hand. */
static void token_comparison(void **state)
{
    (void)state;
    float a[4] = {1.0f, 2.0f, 0.5f, -3.0f}, b[4] = {1.5f, 1.0f, 0.5f, -1.0f};
    kld_base_row self = {.logits = a, .log_sum_exp = kld_log_sum_exp(a, 4, NULL)};
    kld_token t = kld_token_compare(a, &self, 4, 2);
    assert_true(t.kld == 0 && t.p_diff == 0 && t.same_top);
    assert_float_equal(t.nll_q, self.log_sum_exp - 0.5, 1e-12);
    kld_base_row base = {.logits = b, .log_sum_exp = kld_log_sum_exp(b, 4, NULL)};
    t = kld_token_compare(a, &base, 4, 1);
    double lse_a = log(exp(1.0) + exp(2.0) + exp(0.5) + exp(-3.0)), lse_b = log(exp(1.5) + exp(1.0) + exp(0.5) + exp(-1.0));
    double kld = 0;
    for (int i = 0; i < 4; i++) kld += exp(b[i] - lse_b) * ((b[i] - lse_b) - (a[i] - lse_a));
    assert_float_equal(t.kld, kld, 1e-12);
    assert_float_equal(t.p_diff, exp(2.0 - lse_a) - exp(1.0 - lse_b), 1e-12);
    assert_false(t.same_top); /* argmax 1 against 0 */
}

/* llama.cpp's record: the log-softmax in 65536 levels over the 16 nats below the maximum,
 * nothing below; the maximum at the top level; a zero pad for an odd vocabulary. */
static void compressed_log_probabilities(void **state)
{
    (void)state;
    enum { V = 1001 };
    float logits[V];
    for (int i = 0; i < V; i++) logits[i] = 10.0f * sinf(0.37f * (float)i) - 0.01f * (float)i;
    logits[7] = 12.5f;
    int64_t words = base_logits_record_words(V);
    assert_int_equal(words, 1006);
    uint16_t *record = malloc((size_t)words * sizeof *record);
    memset(record, 0xff, (size_t)words * sizeof *record);
    base_logits_compress(logits, V, record);
    float scale, min_log_prob;
    memcpy(&scale, record, 4);
    memcpy(&min_log_prob, record + 2, 4);
    assert_float_equal(scale, 16.0f / 65535.f, 1e-9);
    assert_int_equal(record[4 + 7], 65535);
    assert_int_equal(record[words - 1], 0);
    double lse = kld_log_sum_exp(logits, V, NULL);
    for (int i = 0; i < V; i++) {
        if (logits[i] <= 12.5f - 16) {
            assert_int_equal(record[4 + i], 0);
            continue;
        }
        double decoded = scale * record[4 + i] + min_log_prob, exact = logits[i] - lse;
        assert_true(fabs(decoded - exact) <= scale / 2 + 1e-5);
    }
    /* Compared through the record, the distribution against its own logits is ~0. */
    kld_base_row compressed = {.compressed = record};
    kld_token t = kld_token_compare(logits, &compressed, V, 3);
    assert_true(fabs(t.kld) < 1e-4 && t.same_top);
    free(record);
}

static char *write_base_file(const char *name, int64_t n_ctx, int64_t vocab, int64_t n_chunk, uint16_t **records)
{
    char *path = test_path(test_dir, name);
    int32_t *tokens = malloc((size_t)(n_ctx * n_chunk) * sizeof *tokens);
    for (int64_t i = 0; i < n_ctx * n_chunk; i++) tokens[i] = (int32_t)(i % vocab);
    int64_t n = n_chunk * base_logits_records_per_window(n_ctx), words = base_logits_record_words(vocab);
    *records = malloc((size_t)(n * words) * sizeof **records);
    float *logits = malloc((size_t)vocab * sizeof *logits);
    for (int64_t r = 0; r < n; r++) {
        for (int64_t i = 0; i < vocab; i++) logits[i] = (float)((r * 7 + i * 3) % 11) - 5.0f;
        base_logits_compress(logits, vocab, *records + r * words);
    }
    base_logits_writer w;
    assert_int_equal(base_logits_create(path, n_ctx, vocab, n_chunk, tokens, &w), STRATA_OK);
    assert_int_equal(base_logits_append(&w, *records, 1), STRATA_OK);
    assert_int_equal(base_logits_append(&w, *records + words, n - 1), STRATA_OK);
    assert_int_equal(base_logits_commit(&w), STRATA_OK);
    base_logits_writer_free(&w);
    free(logits);
    free(tokens);
    return path;
}

static void base_file_round_trip(void **state)
{
    (void)state;
    enum { CTX = 9, VOCAB = 5, CHUNKS = 3 };
    uint16_t *records;
    char *path = write_base_file("base.kld", CTX, VOCAB, CHUNKS, &records);
    int64_t per_window = base_logits_records_per_window(CTX), words = base_logits_record_words(VOCAB);
    assert_int_equal(per_window, 9 - 1 - 4);
    base_logits_reader r;
    assert_int_equal(base_logits_open(path, &r), STRATA_OK);
    assert_int_equal(r.n_ctx, CTX);
    assert_int_equal(r.n_vocab, VOCAB);
    assert_int_equal(r.n_chunk, CHUNKS);
    assert_int_equal(r.tokens[CTX * CHUNKS - 1], (CTX * CHUNKS - 1) % VOCAB);
    uint16_t *read = malloc((size_t)(2 * per_window * words) * sizeof *read);
    assert_int_equal(base_logits_read(&r, 1, 2, read), STRATA_OK);
    assert_memory_equal(read, records + per_window * words, (size_t)(2 * per_window * words) * sizeof *read);
    base_logits_close(&r);
    free(read);

    /* One byte short, one byte long, another magic: refused, naming the file. */
    long size = 0;
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size - 1), 0);
    assert_int_equal(base_logits_open(path, &r), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "base.kld"));
    base_logits_close(&r);
    assert_int_equal(truncate(path, size + 1), 0);
    assert_int_equal(base_logits_open(path, &r), STRATA_ERR_FORMAT);
    base_logits_close(&r);
    f = fopen(path, "r+b");
    fputs("_gguf___", f);
    fclose(f);
    assert_int_equal(base_logits_open(path, &r), STRATA_ERR_FORMAT);
    assert_non_null(strstr(strata_last_error(), "_logits_"));
    base_logits_close(&r);
    free(records);
    free(path);
}

/* A writer given up before its last record leaves nothing, and the earlier file intact. */
static void unfinished_file_leaves_the_old_one(void **state)
{
    (void)state;
    uint16_t *records;
    char *path = write_base_file("kept.kld", 6, 4, 2, &records);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long before = ftell(f);
    fclose(f);
    int32_t tokens[12] = {0};
    base_logits_writer w;
    assert_int_equal(base_logits_create(path, 6, 4, 2, tokens, &w), STRATA_OK);
    assert_int_equal(base_logits_append(&w, records, 1), STRATA_OK);
    assert_int_equal(base_logits_commit(&w), STRATA_ERR_INTERNAL); /* records missing */
    base_logits_writer_free(&w);
    f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    assert_int_equal(ftell(f), before);
    fclose(f);
    base_logits_reader r;
    assert_int_equal(base_logits_open(path, &r), STRATA_OK);
    base_logits_close(&r);
    free(records);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statistics_follow_llama_cpp),
        cmocka_unit_test(token_comparison),
        cmocka_unit_test(compressed_log_probabilities),
        cmocka_unit_test_setup_teardown(base_file_round_trip, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(unfinished_file_leaves_the_old_one, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
