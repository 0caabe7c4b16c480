/*
 * eval_print.c — a comparison with the original (strata_eval_compare) as people and
 * programs read it: llama-perplexity --kl-divergence's text layout, and JSON with 95%
 * intervals (what strata report --eval reads).
 */
#include "eval_print.h"

/* "value ± error" pairs and the rest, in llama-perplexity --kl-divergence's layout. */
void eval_print_comparison(FILE *f, const strata_eval_compare_result *r)
{
    static const char *kld_labels[STRATA_KLD_PERCENTILES] = {"Maximum", "99.9%  ", "99.0%  ", "95.0%  ",
                                                           "90.0%  ", "Median ", "10.0%  ", " 5.0%  ",
                                                           " 1.0%  ", " 0.1%  ", "Minimum"};
    static const char *dp_labels[STRATA_DP_PERCENTILES] = {"Maximum", "99.9%  ", "99.0%  ", "95.0%  ", "90.0%  ",
                                                         "75.0%  ", "Median ", "25.0%  ", "10.0%  ", " 5.0%  ",
                                                         " 1.0%  ", " 0.1%  ", "Minimum"};
    fprintf(f, "%lld windows of %lld tokens, %lld tokens scored (the second half of each window), base from %s\n\n",
            (long long)r->n_windows, (long long)r->window, (long long)r->n_scored,
            r->base_from_file ? "a saved file" : "the model");
    fprintf(f, "====== Perplexity statistics ======\n");
    fprintf(f, "Mean PPL(Q)                   : %10.6f \u00b1 %10.6f\n", r->ppl_q.value, r->ppl_q.error);
    fprintf(f, "Mean PPL(base)                : %10.6f \u00b1 %10.6f\n", r->ppl_base.value, r->ppl_base.error);
    fprintf(f, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100.0 * r->ln_ppl_correlation);
    fprintf(f, "Mean ln(PPL(Q)/PPL(base))     : %10.6f \u00b1 %10.6f\n", r->ln_ppl_ratio.value, r->ln_ppl_ratio.error);
    fprintf(f, "Mean PPL(Q)/PPL(base)         : %10.6f \u00b1 %10.6f\n", r->ppl_ratio.value, r->ppl_ratio.error);
    fprintf(f, "Mean PPL(Q)-PPL(base)         : %10.6f \u00b1 %10.6f\n", r->ppl_difference.value,
            r->ppl_difference.error);
    fprintf(f, "\n====== KL divergence statistics ======\n");
    fprintf(f, "Mean    KLD: %10.6f \u00b1 %10.6f\n", r->kld.value, r->kld.error);
    for (int i = 0; i < STRATA_KLD_PERCENTILES; i++)
        fprintf(f, "%s KLD: %10.6f\n", kld_labels[i], r->kld_percentile[i]);
    fprintf(f, "\n====== Token probability statistics ======\n");
    fprintf(f, "Mean    \u0394p: %6.3f \u00b1 %5.3f %%\n", 100.0 * r->p_diff.value, 100.0 * r->p_diff.error);
    for (int i = 0; i < STRATA_DP_PERCENTILES; i++)
        fprintf(f, "%s \u0394p: %6.3f%%\n", dp_labels[i], 100.0 * r->p_diff_percentile[i]);
    fprintf(f, "RMS \u0394p    : %6.3f \u00b1 %5.3f %%\n", 100.0 * r->p_diff_rms.value, 100.0 * r->p_diff_rms.error);
    fprintf(f, "Same top p: %6.3f \u00b1 %5.3f %%\n", 100.0 * r->same_top.value, 100.0 * r->same_top.error);
    fprintf(f, "\n\u00b1: one standard error, as llama.cpp prints it (a 95%% interval is 1.96 of them; --json)\n");
}

/* "name": {"value": v, "error": e, "ci95": [v - 1.96 e, v + 1.96 e]} */
static void print_estimate_json(FILE *f, const char *name, strata_estimate e, bool last)
{
    fprintf(f, "  \"%s\": {\"value\": %.9g, \"error\": %.9g, \"ci95\": [%.9g, %.9g]}%s\n", name, e.value, e.error,
            e.value - 1.96 * e.error, e.value + 1.96 * e.error, last ? "" : ",");
}

static void print_percentiles_json(FILE *f, const char *name, const double *fractions, const double *values, int n)
{
    fprintf(f, "  \"%s\": {", name);
    for (int i = 0; i < n; i++) fprintf(f, "%s\"%g\": %.9g", i ? ", " : "", 100.0 * fractions[i], values[i]);
    fprintf(f, "},\n");
}

void eval_print_comparison_json(FILE *f, const strata_eval_compare_result *r)
{
    fprintf(f,
            "{\n  \"windows\": %lld, \"window\": %lld, \"scored_tokens\": %lld, \"base\": \"%s\", "
            "\"precision\": \"%s\", \"seconds\": %.3f,\n",
            (long long)r->n_windows, (long long)r->window, (long long)r->n_scored,
            r->base_from_file ? "file" : "model", r->fp32 ? "fp32" : "bf16", r->seconds);
    print_estimate_json(f, "ppl_q", r->ppl_q, false);
    print_estimate_json(f, "ppl_base", r->ppl_base, false);
    fprintf(f, "  \"ln_ppl_correlation\": %.9g,\n", r->ln_ppl_correlation);
    print_estimate_json(f, "ln_ppl_ratio", r->ln_ppl_ratio, false);
    print_estimate_json(f, "ppl_ratio", r->ppl_ratio, false);
    print_estimate_json(f, "ppl_difference", r->ppl_difference, false);
    print_estimate_json(f, "kld", r->kld, false);
    print_percentiles_json(f, "kld_percentiles", strata_kld_percentiles, r->kld_percentile, STRATA_KLD_PERCENTILES);
    print_estimate_json(f, "p_diff", r->p_diff, false);
    print_percentiles_json(f, "p_diff_percentiles", strata_dp_percentiles, r->p_diff_percentile, STRATA_DP_PERCENTILES);
    print_estimate_json(f, "p_diff_rms", r->p_diff_rms, false);
    print_estimate_json(f, "same_top", r->same_top, true);
    fprintf(f, "}\n");
}
