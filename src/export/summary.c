/*
 * summary.c — the quantization summary (see summary.h).
 */
#include "export/summary.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/json_file.h"
#include "quant/recipe.h"

/* "model.layers.3.self_attn.q_proj" -> "self_attn.q_proj" */
static const char *short_name(const char *module)
{
    const char *p = strstr(module, "layers.");
    if (!p) return module;
    p = strchr(p + 7, '.');
    return p ? p + 1 : module;
}

static const char *linear_format(const linear_calib *c)
{
    if (c->quantized) return c->scheme->name;
    return c->desc->quantizable ? "excluded" : "bf16 (never)";
}

/* The scheme as the run exports it (AWQ's own ModelOpt names). */
static const scheme_info *run_scheme(const strata_quantize_params *p, calib_algorithm algorithm)
{
    return calib_algorithm_awq(algorithm) && !calib_awq_is_llm_compressor(algorithm, p->format)
               ? scheme_with_awq(p->scheme)
               : scheme_get(p->scheme);
}

/* What the attention mode did, in words. */
static const char *attention_text(const strata_arch *arch, const strata_quantize_params *p)
{
    switch (p->attention) {
    case STRATA_ATTENTION_SCHEME: return "quantized with the scheme (--attention scheme)";
    case STRATA_ATTENTION_NONE: return "unquantized (--attention none)";
    case STRATA_ATTENTION_FP8: return "per-tensor FP8 weights and inputs (--attention fp8)";
    case STRATA_ATTENTION_AUTO: break;
    }
    if (arch->family != STRATA_FAMILY_DEEPSEEK_V3) return "quantized with the scheme";
    const scheme_info *s = scheme_get(p->scheme);
    return s->weight_format == STRATA_FORMAT_NVFP4 || s->weight_format == STRATA_FORMAT_MXFP4
               ? "ModelOpt's DeepSeek recipe: unquantized but for o_proj (FP4 weights)"
               : "ModelOpt's DeepSeek recipe: unquantized";
}

/* The least and largest SmoothQuant s of a smoothed linear (its column factors). */
static bool smooth_range(const linear_calib *c, float *lo, float *hi)
{
    if (!c->smooth.columns || !c->smooth.norm_divided) return false;
    *lo = *hi = c->smooth.columns[0];
    for (int64_t k = 1; k < c->desc->n_in; k++) {
        *lo = c->smooth.columns[k] < *lo ? c->smooth.columns[k] : *lo;
        *hi = c->smooth.columns[k] > *hi ? c->smooth.columns[k] : *hi;
    }
    return true;
}

/* A routed expert that no calibration token reached: its input amax is the peer maximum
 * and its weight scales come from its weights (GPTQ rounds it to nearest). */
static bool without_tokens(const linear_calib *c)
{
    return c->quantized && linear_calib_expert_family(c) >= 0 && c->tokens == 0;
}

/* Calibration tokens per routed expert of the layer, from each expert's gate (or up). */
static void expert_tokens(const layer_calib *lc, int n_experts, int64_t *tokens)
{
    for (int e = 0; e < n_experts; e++) tokens[e] = -1;
    for (size_t l = 0; l < lc->layer->n_linears; l++) {
        const linear_calib *c = &lc->linears[l];
        int e = c->desc->expert;
        if (linear_calib_expert_family(c) == 0 && e < n_experts && tokens[e] < 0) tokens[e] = c->tokens;
    }
}

static const char *expert_mode(const strata_quantize_params *p)
{
    return p->calib_all_experts ? "all-experts" : "top-k";
}

static char *summary_text(const strata_quantize_params *p, calib_algorithm algorithm, const strata_arch *arch,
                          const layer_calib *layers, const exporter *ex)
{
    strbuf sb = {0};
    int64_t quantized = 0, excluded = 0, n_gptq = 0, n_fallback = 0, n_experts_seen = 0, n_experts_empty = 0;
    int n_experts = arch->moe.n_experts;
    int64_t *tokens = n_experts > 0 ? malloc((size_t)n_experts * sizeof *tokens) : NULL; /* per expert of a layer */
    if (n_experts > 0 && !tokens) return NULL;
    double weight_error_sum = 0, rtn_sum = 0, gptq_sum = 0;
    strbuf_printf(&sb, "strata %s quantization summary\n", strata_version());
    strbuf_printf(&sb, "model        %s (%s, %d layers)\n", p->model_dir, arch->model_type, arch->n_layers);
    strbuf_printf(&sb, "scheme       %s (%s %s), algorithm %s, KV cache %s, export %s\n",
                  strata_scheme_name(p->scheme), scheme_get(p->scheme)->modelopt_algo ? "ModelOpt" : "strata",
                  run_scheme(p, algorithm)->algo_label, calib_algorithm_name(algorithm),
                  p->kv_cache_fp8 ? "fp8" : "unquantized", strata_export_format_name(p->format));
    strbuf_printf(&sb, "calibration  %lld samples x %lld tokens; next-layer inputs from the %s layer\n",
                  (long long)p->n_samples, (long long)p->seq_len, p->propagate == STRATA_PROPAGATE_QUANTIZED ? "quantized" : "unquantized");
    bool gptq = calib_algorithm_gptq(algorithm);
    if (gptq)
        strbuf_printf(&sb, "gptq         damping %g of mean(diag H), block %lld, act-order %s, round-to-nearest below %lld tokens\n",
                      p->gptq_damp, (long long)p->gptq_block, p->gptq_act_order ? "yes" : "no",
                      (long long)p->gptq_min_tokens);
    bool awq_modifier = calib_awq_is_llm_compressor(algorithm, p->format);
    if (awq_modifier)
        strbuf_printf(&sb, "awq          llm-compressor's AWQ: per mapping (input_layernorm -> q/k/v, v -> o unless "
                           "grouped-query, post_attention_layernorm\n             -> gate/up, up -> down) s = x^r / "
                           "w^(1-r), r by least loss of the parent's output over 20 points;\n             the norm "
                           "(or v/up's rows) divided by s, the weights' columns times s\n");
    if (awq_modifier && n_experts > 0)
        strbuf_printf(&sb, "             MoE layers: post_attention_layernorm -> the router and every expert's gate/up "
                           "(one s, loss on\n             the block's routed output; the router's columns scaled, "
                           "unquantized), each expert's up -> down on\n             every calibration token\n");
    if (!awq_modifier && calib_algorithm_awq(algorithm))
        strbuf_printf(&sb, "awq          ModelOpt's awq_lite: per linear s = act^a / w^(1-a), a in 0, 0.1 .. 1 by least "
                           "output loss\n             on the calibration inputs; inputs x 1/s (q/k/v and gate/up: "
                           "their average, in the norm), weights x s\n");
    if (!awq_modifier && calib_algorithm_awq(algorithm) && n_experts > 0)
        strbuf_printf(&sb, "             MoE layers: each expert searched on its routed tokens; per linear name the "
                           "experts' 1/s\n             averaged, each expert's gate/up their mean, written as "
                           "pre_quant_scale tensors\n");
    if (p->smooth > 0)
        strbuf_printf(&sb, "smooth       SmoothQuant a %g (llm-compressor's): per input channel of q/k/v and gate/up "
                           "s = max|x|^a / max|w|^(1-a),\n             the norm divided by s, the weights' columns "
                           "times s\n", p->smooth);
    /* ModelOpt's AWQ smooths each expert's input amax with its own scale after the peer
     * maximum (per channel), so the experts' input scales differ, as ModelOpt writes them */
    bool modelopt_awq = calib_algorithm_awq(algorithm) && !awq_modifier;
    if (n_experts > 0)
        strbuf_printf(&sb, "experts      %s: %s; %s\n", expert_mode(p),
                      p->calib_all_experts ? "every token calibrates every expert (outputs still top-k)"
                                           : "calibrated on the tokens the model's router sends them",
                      modelopt_awq ? "every routed expert's per-channel input amax is the layer's peer maximum, "
                                     "then times its own AWQ scale"
                                   : "every routed expert's input amax is the layer's peer maximum (gate/up and down "
                                     "separately)");
    strbuf_printf(&sb, "attention    %s\n", attention_text(arch, p));
    strbuf_printf(&sb, "excluded     lm_head, model.embed_tokens, routers");
    for (size_t i = 0; i < p->n_exclude; i++) strbuf_printf(&sb, ", %s", p->exclude[i]);
    bool outputs = p->error_stats == STRATA_ERROR_STATS_FULL;
    if (outputs)
        strbuf_printf(&sb, "\n\nerrors are relative L2 norms: weight ||W-Q(W)||/||W||; linear output on up to %d sampled "
                           "input rows; layer output over every calibration token\n\n",
                      CALIB_SAMPLE_ROWS);
    else
        strbuf_printf(&sb, "\n\nerrors are relative L2 norms: weight ||W-Q(W)||/||W||; output errors not measured "
                           "(--error-stats weights)\n\n");
    if (gptq && outputs)
        strbuf_printf(&sb, "gptq: Hessian-weighted relative error tr(D H D^T)/tr(W H W^T), D = W - Q, of round-to-nearest "
                           "-> of GPTQ\n\n");
    int width = 28; /* the linear column fits the longest name (Mixtral's experts.E.w1 are longer) */
    for (int i = 0; i < arch->n_layers; i++)
        for (size_t l = 0; l < layers[i].layer->n_linears; l++) {
            int n = (int)strlen(short_name(layers[i].linears[l].desc->name));
            if (n > width) width = n;
        }
    strbuf_printf(&sb, "%-5s %-*s %-18s %12s %12s %10s %11s %11s\n", "layer", width, "linear", "format", "weight amax",
                  "input amax", "tokens", "weight err", "output err");
    for (int i = 0; i < arch->n_layers; i++) {
        const layer_calib *lc = &layers[i];
        for (size_t l = 0; l < lc->layer->n_linears; l++) {
            const linear_calib *c = &lc->linears[l];
            strbuf_printf(&sb, "%-5d %-*s %-18s ", i, width, short_name(c->desc->name), linear_format(c));
            if (c->quantized && (c->tokens == 0 || !outputs)) /* no input rows to measure an output error on */
                strbuf_printf(&sb, "%12.6g %12.6g %10lld %11.3e %11s", c->weight_amax, c->input_amax,
                              (long long)c->tokens, c->weight_error, "-");
            else if (c->quantized)
                strbuf_printf(&sb, "%12.6g %12.6g %10lld %11.3e %11.3e", c->weight_amax, c->input_amax,
                              (long long)c->tokens, c->weight_error, c->output_error);
            else
                strbuf_printf(&sb, "%12s %12.6g %10lld %11s %11s", "-", c->input_amax, (long long)c->tokens, "-", "-");
            if (lc->kv_cache && linear_feeds_kv_cache(c->desc))
                strbuf_printf(&sb, "  %s amax %.6g",
                              c->desc->role == STRATA_LINEAR_K ? "k" : c->desc->role == STRATA_LINEAR_V ? "v" : "latent cache",
                              c->output_amax);
            if (c->gptq_done && c->gptq.outcome == GPTQ_APPLIED) {
                if (outputs) strbuf_printf(&sb, "  gptq %.3e -> %.3e", c->gptq.error_rtn, c->gptq.error_gptq);
                else strbuf_printf(&sb, "  gptq");
                if (c->gptq.damp != p->gptq_damp) strbuf_printf(&sb, " (damping %g)", c->gptq.damp);
                n_gptq++;
                rtn_sum += c->gptq.error_rtn;
                gptq_sum += c->gptq.error_gptq;
            } else if (c->gptq_done) {
                strbuf_printf(&sb, "  WARNING %s", gptq_outcome_name(c->gptq.outcome));
                n_fallback++;
            }
            if (without_tokens(c)) strbuf_printf(&sb, "  no tokens: peer-max input amax");
            if (c->quantized && awq_modifier && c->awq_alpha > 0) {
                double ratio;
                bool duo;
                awq_modifier_point(c->awq_alpha, &ratio, &duo);
                strbuf_printf(&sb, "  awq r %.3f (loss %.3f of unscaled)", ratio,
                              c->awq_loss[0] > 0 ? c->awq_loss[c->awq_alpha] / c->awq_loss[0] : 1.0);
            } else if (!c->quantized && awq_modifier && c->smooth.columns) {
                strbuf_printf(&sb, "  awq: columns times the experts' s");
            } else if (c->quantized && awq_modifier)
                strbuf_printf(&sb, "  awq %s", c->awq_alpha == 0 ? "unscaled (least loss)" : "not scaled");
            else if (c->quantized && calib_algorithm_awq(algorithm) && c->awq_alpha >= 0)
                strbuf_printf(&sb, "  awq a %.1f (loss %.3f of a 0's)", awq_alpha(c->awq_alpha),
                              c->awq_loss[0] > 0 ? c->awq_loss[c->awq_alpha] / c->awq_loss[0] : 1.0);
            else if (c->quantized && calib_algorithm_awq(algorithm))
                strbuf_printf(&sb, "  awq not searched: pre_quant_scale 1");
            float s_min, s_max;
            if (c->quantized && p->smooth > 0 && smooth_range(c, &s_min, &s_max))
                strbuf_printf(&sb, "  smooth s %.3g..%.3g", s_min, s_max);
            strbuf_printf(&sb, "\n");
            quantized += c->quantized;
            excluded += !c->quantized;
            if (c->quantized) weight_error_sum += c->weight_error;
        }
        if (lc->layer->is_moe && tokens) {
            expert_tokens(lc, n_experts, tokens);
            int empty = 0;
            strbuf_printf(&sb, "%-5d %-*s tokens per expert:", i, width, "(experts)");
            for (int e = 0; e < n_experts; e++) {
                strbuf_printf(&sb, " %lld", (long long)(tokens[e] < 0 ? 0 : tokens[e]));
                empty += tokens[e] == 0;
            }
            if (empty) strbuf_printf(&sb, "; %d without tokens (peer-max input scale, weight scales from weights)", empty);
            strbuf_printf(&sb, "\n");
            n_experts_seen += n_experts;
            n_experts_empty += empty;
        }
        if (outputs) strbuf_printf(&sb, "%-5d %-*s layer output error %.3e\n", i, width, "(decoder layer)", lc->output_error);
    }
    strbuf_printf(&sb, "\n%lld linears quantized, %lld left in bf16; mean weight error %.3e\n", (long long)quantized,
                  (long long)excluded, quantized ? weight_error_sum / (double)quantized : 0.0);
    if (n_experts > 0)
        strbuf_printf(&sb, "experts (%s): %lld of %lld got no calibration tokens; all are quantized\n", expert_mode(p),
                      (long long)n_experts_empty, (long long)n_experts_seen);
    if (gptq && outputs)
        strbuf_printf(&sb, "gptq: %lld linears, mean Hessian-weighted error %.3e (round-to-nearest) -> %.3e; %lld rounded "
                           "to nearest instead (marked WARNING above)\n",
                      (long long)n_gptq, n_gptq ? rtn_sum / (double)n_gptq : 0.0, n_gptq ? gptq_sum / (double)n_gptq : 0.0,
                      (long long)n_fallback);
    else if (gptq)
        strbuf_printf(&sb, "gptq: %lld linears; %lld rounded to nearest instead (marked WARNING above)\n",
                      (long long)n_gptq, (long long)n_fallback);
    if (ex->n_non_finite > 0) {
        strbuf_printf(&sb, "non-finite: %zu tensor%s written with NaN/Inf (--allow-non-finite):\n", ex->n_non_finite,
                      ex->n_non_finite == 1 ? "" : "s");
        for (size_t i = 0; i < ex->n_non_finite; i++)
            strbuf_printf(&sb, "  %s: %llu value%s, the first %s\n", ex->non_finite[i].tensor,
                          (unsigned long long)ex->non_finite[i].count, ex->non_finite[i].count == 1 ? "" : "s",
                          ex->non_finite[i].first);
    }
    free(tokens);
    return strbuf_ok(&sb) ? strbuf_take(&sb) : (strbuf_free(&sb), NULL);
}

static sjson *summary_json(const strata_quantize_params *p, calib_algorithm algorithm, const strata_arch *arch,
                           const layer_calib *layers, const exporter *ex)
{
    bool ok = true;
    sjson *root = sjson_new_object(), *list = sjson_new_array();
    sjson_put(&ok, root, "producer", sjson_new_string("strata"));
    sjson_put(&ok, root, "version", sjson_new_string(strata_version()));
    sjson_put(&ok, root, "model", sjson_new_string(p->model_dir));
    sjson_put(&ok, root, "scheme", sjson_new_string(strata_scheme_name(p->scheme)));
    sjson_put(&ok, root, "quant_algo", sjson_new_string(run_scheme(p, algorithm)->algo_label));
    sjson_put(&ok, root, "attention", sjson_new_string(strata_attention_quant_name(p->attention)));
    sjson_put(&ok, root, "algorithm", sjson_new_string(calib_algorithm_name(algorithm)));
    bool awq_modifier = calib_awq_is_llm_compressor(algorithm, p->format);
    if (calib_algorithm_awq(algorithm))
        sjson_put(&ok, root, "awq", sjson_new_string(awq_modifier ? "llm-compressor AWQModifier" : "ModelOpt awq_lite"));
    if (p->smooth > 0) sjson_put(&ok, root, "smooth", sjson_new_real(p->smooth));
    sjson_put(&ok, root, "kv_cache", p->kv_cache_fp8 ? sjson_new_string("fp8") : sjson_new_null());
    sjson_put(&ok, root, "calib_samples", sjson_new_int(p->n_samples));
    sjson_put(&ok, root, "calib_seq_len", sjson_new_int(p->seq_len));
    sjson_put(&ok, root, "propagate",
              sjson_new_string(p->propagate == STRATA_PROPAGATE_QUANTIZED ? "quantized" : "unquantized"));
    if (arch->moe.n_experts > 0) sjson_put(&ok, root, "expert_calibration", sjson_new_string(expert_mode(p)));
    /* Output errors that were not measured are absent, not zero. */
    bool outputs = p->error_stats == STRATA_ERROR_STATS_FULL;
    if (!outputs) sjson_put(&ok, root, "error_stats", sjson_new_string("weights"));
    for (int i = 0; ok && i < arch->n_layers; i++) {
        const layer_calib *lc = &layers[i];
        sjson *layer = sjson_new_object(), *linears = sjson_new_array();
        sjson_put(&ok, layer, "layer", sjson_new_int(i));
        if (outputs) sjson_put(&ok, layer, "output_error", sjson_new_real(lc->output_error));
        for (size_t l = 0; ok && l < lc->layer->n_linears; l++) {
            const linear_calib *c = &lc->linears[l];
            sjson *o = sjson_new_object();
            sjson_put(&ok, o, "name", sjson_new_string(c->desc->name));
            sjson_put(&ok, o, "format", sjson_new_string(linear_format(c)));
            sjson_put(&ok, o, "input_amax", sjson_new_real(c->input_amax));
            sjson_put(&ok, o, "tokens", sjson_new_int(c->tokens));
            if (without_tokens(c)) sjson_put(&ok, o, "peer_max_input", sjson_new_bool(true));
            if (c->quantized) {
                sjson_put(&ok, o, "weight_amax", sjson_new_real(c->weight_amax));
                sjson_put(&ok, o, "weight_error", sjson_new_real(c->weight_error));
                if (outputs) sjson_put(&ok, o, "output_error", sjson_new_real(c->output_error));
            }
            if (lc->kv_cache && linear_feeds_kv_cache(c->desc))
                sjson_put(&ok, o, "cache_amax", sjson_new_real(c->output_amax));
            if ((c->quantized || c->smooth.columns) && calib_algorithm_awq(algorithm)) {
                sjson *a = sjson_new_object(), *losses = sjson_new_array();
                bool searched = c->awq_alpha >= 0;
                int points = awq_modifier ? AWQ_MODIFIER_GRID : AWQ_ALPHAS;
                if (awq_modifier) {
                    double ratio = 0;
                    bool duo = false;
                    if (searched) awq_modifier_point(c->awq_alpha, &ratio, &duo);
                    sjson_put(&ok, a, "point", searched ? sjson_new_int(c->awq_alpha) : sjson_new_null());
                    sjson_put(&ok, a, "ratio", searched ? sjson_new_real(ratio) : sjson_new_null());
                    sjson_put(&ok, a, "duo_scaling", sjson_new_bool(duo));
                } else {
                    sjson_put(&ok, a, "alpha", searched ? sjson_new_real(c->awq_alpha / 10.0) : sjson_new_null());
                }
                for (int k = 0; searched && k < points; k++) sjson_push(&ok, losses, sjson_new_real(c->awq_loss[k]));
                sjson_put(&ok, a, "loss", losses);
                if (!awq_modifier || searched)
                    sjson_put(&ok, a, awq_modifier ? "scale" : "pre_quant_scale",
                              sjson_new_string(!c->quantized  ? "columns scaled (unquantized)"
                                               : c->smooth.in_norm ? "folded into the norm"
                                               : c->smooth.in_rows ? "folded into the previous linear" : "tensor"));
                sjson_put(&ok, o, "awq", a);
            }
            float s_min, s_max;
            if (c->quantized && p->smooth > 0 && smooth_range(c, &s_min, &s_max)) {
                sjson *sq = sjson_new_object();
                sjson_put(&ok, sq, "s_min", sjson_new_real(s_min));
                sjson_put(&ok, sq, "s_max", sjson_new_real(s_max));
                sjson_put(&ok, o, "smooth", sq);
            }
            if (c->gptq_done) {
                sjson *g = sjson_new_object();
                sjson_put(&ok, g, "outcome", sjson_new_string(gptq_outcome_name(c->gptq.outcome)));
                sjson_put(&ok, g, "damp", sjson_new_real(c->gptq.damp));
                sjson_put(&ok, g, "dead_columns", sjson_new_int(c->gptq.dead_columns));
                if (outputs) {
                    sjson_put(&ok, g, "hessian_error_rtn", sjson_new_real(c->gptq.error_rtn));
                    sjson_put(&ok, g, "hessian_error_gptq", sjson_new_real(c->gptq.error_gptq));
                }
                sjson_put(&ok, o, "gptq", g);
            }
            sjson_push(&ok, linears, o);
        }
        sjson_put(&ok, layer, "linears", linears);
        sjson_push(&ok, list, layer);
    }
    sjson_put(&ok, root, "layers", list);
    if (ex->n_non_finite > 0) {
        sjson *notes = sjson_new_array();
        for (size_t i = 0; ok && i < ex->n_non_finite; i++) {
            sjson *o = sjson_new_object();
            sjson_put(&ok, o, "tensor", sjson_new_string(ex->non_finite[i].tensor));
            sjson_put(&ok, o, "count", sjson_new_int((int64_t)ex->non_finite[i].count));
            sjson_put(&ok, o, "first", sjson_new_string(ex->non_finite[i].first));
            sjson_push(&ok, notes, o);
        }
        sjson_put(&ok, root, "non_finite", notes);
    }
    if (!ok) {
        sjson_free(root);
        return NULL;
    }
    return root;
}

strata_status summary_write(const strata_quantize_params *p, calib_algorithm algorithm, const char *dir,
                            const strata_arch *arch, const layer_calib *layers, const exporter *ex)
{
    char *text = summary_text(p, algorithm, arch, layers, ex);
    sjson *json = summary_json(p, algorithm, arch, layers, ex);
    char *txt_path = path_join(dir, "quant_summary.txt");
    char *json_path = path_join(dir, "quant_summary.json");
    strata_status status;
    if (!text || !json || !txt_path || !json_path) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    else status = file_write_atomic(txt_path, text, strlen(text));
    if (status == STRATA_OK) status = json_file_write(json_path, json, 2);
    free(text);
    sjson_free(json);
    free(txt_path);
    free(json_path);
    return status;
}
