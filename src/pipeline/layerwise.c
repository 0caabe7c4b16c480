/*
 * layerwise.c — strata_quantize_model: the layer loop (DESIGN.md point 1, docs/QUANTIZE.md).
 *
 *   X0 = embeddings of the calibration tokens                      (activation store)
 *   for layer i from the first incomplete one:
 *       pass 1: materialize layer i; run every chunk of X(i) through it with observers
 *               (input amax, tokens, samples, k/v output amax; GPTQ's Hessians);
 *               outputs -> X(i+1)
 *       decide: weight amax (fused groups share it), mse clip search or GPTQ (which
 *               updates the weights); every linear's weight quantized once and held
 *               (codes and scales); weight and output error of every linear on its
 *               sampled inputs
 *       pass 2: materialize the layer with the held weights dequantized; run X(i) again;
 *               compare with X(i+1) (the layer's output error); with --propagate
 *               quantized its outputs replace X(i+1)
 *       export layer i to the shard writer from the held weights; checkpoint its state
 *       (GPTQ: with its quantized weights); every --save-every layers save X(i+1) and
 *       the manifest
 *   embeddings, final norm and lm_head copied; configs, tokenizer files, summary.
 *
 * Memory: one materialized layer at a time, the two activation buffers (RAM or spill
 * file), a fixed chunk of scratch. Chunks have a fixed size (FORWARD_CHUNK_BUDGET) so the
 * numbers never depend on the memory limit, and errors are summed per sequence in order,
 * so the output is the same whether or not the store spills or the run resumed.
 *
 * Under mpirun each rank runs this loop on its contiguous share of the windows; after pass
 * 1 the observations are reduced over the ranks (layer_calib_sync), the decisions are
 * dealt out by linear, after pass 2 the per-window error sums are gathered and added in
 * window order, and rank 0 alone exports and writes, so N ranks write what one process
 * writes (docs/DISTRIBUTED.md).
 *
 * The passes are in layer_passes.c, the decisions in decisions.c; run.h holds the run.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "calib/algorithm.h"
#include "calib/layer_calib.h"
#include "core/error.h"
#include "export/export.h"
#include "export/summary.h"
#include "forward/model_forward.h"
#include "io/checksum.h"
#include "io/dir_lock.h"
#include "io/fsutil.h"
#include "io/output_dir.h"
#include "io/safetensors_mapping.h"
#include "io/safetensors_resume.h"
#include "pipeline/act_store.h"
#include "pipeline/checkpoint.h"
#include "pipeline/expert_parallel.h"
#include "pipeline/identity.h"
#include "pipeline/layer_timings.h"
#include "pipeline/memory_plan.h"
#include "pipeline/progress.h"
#include "pipeline/run.h"
#include "quant/format.h"

/* Materializes the layer (its routed experts later, a group at a time, when grouped) with
 * the hooks' fake quantization (hooks may be NULL), the time it takes, and later the
 * experts' too, counted as the layer's reading. */
static strata_status load_layer(run *r, layer_calib *lc, const forward_hooks *hooks, layer_weights *lw)
{
    strata_layer_timing *timing = &r->timings.layers[lc->index];
    double start = seconds_now();
    /* Expert parallelism materializes this rank's experts only (one at a time on demand). */
    int group = r->expert_parallel && lc->layer->is_moe ? 1 : r->plan.experts_per_group;
    strata_status status = layer_weights_load_grouped(r->model, lc->index, r->precision, hooks, hooks ? 1 : 0, group,
                                                      lw);
    timing->read_s += seconds_now() - start;
    if (status == STRATA_OK) lw->read_seconds = &timing->read_s;
    return status;
}

/* GPTQ on an MoE layer whose routed experts are materialized in groups: each group's
 * Hessians are accumulated, its linears decided and the Hessians freed before the next
 * group's, so one group's exist at a time (784 MiB of sums per expert at hidden 7168). Group-major
 * over the windows: attention and routing run again for each group unless one window holds
 * every token. hooks: calib_gram_hooks after a calibration pass that accumulated the other
 * linears' Hessians (weight-only schemes), or calib_hessian_hooks with with_others, whose
 * first group also accumulates attention's and the shared experts' (in place of the
 * layer's Hessian pass). Each Hessian sums the same rows in the same order as in a layer
 * held whole. */
static strata_status gptq_experts_grouped(run *r, layer_calib *lc, const forward_hooks *hooks, bool with_others)
{
    const strata_quantize_params *p = r->params;
    layer_weights lw;
    /* With smoothing, the smoothed weights (the hooks' quantize_weight) */
    strata_status status = load_layer(r, lc, hooks->quantize_weight ? hooks : NULL, &lw);
    if (status != STRATA_OK) return status;
    grouped_pass g;
    status = grouped_open(r, lc, &lw, hooks, p->calib_all_experts, false, &g);
    if (status != STRATA_OK) {
        layer_weights_free(&lw);
        return status;
    }
    int E = r->arch->moe.n_experts, group = lw.experts_per_group;
    int64_t tokens = p->n_samples * p->seq_len;
    bool one_window = g.window >= p->n_samples;
    strata_layer_timing *timing = &r->timings.layers[lc->index];
    double start = seconds_now(), read_before = timing->read_s, decide_before = timing->decide_s;
    for (int e = 0; e < E && status == STRATA_OK; e += group) {
        int count = E - e < group ? E - e : group;
        bool others = with_others && e == 0;
        layer_hessians_scope(lc, others, e, e + count);
        for (int64_t w0 = 0; status == STRATA_OK && w0 < p->n_samples; w0 += g.window) {
            if (!one_window || e == 0) status = grouped_begin(&g, w0);
            if (status == STRATA_OK) status = grouped_experts(&g, e, count);
            if (status == STRATA_OK && others) status = grouped_finish(&g, false, false, false);
        }
        layer_weights_release_experts(&lw, e, count);
        if (status == STRATA_OK) status = layer_hessians_finish_experts(lc, e, e + count, &r->collective);
        for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++) {
            linear_calib *c = &lc->linears[i];
            if (c->quantized && c->desc->expert >= e && c->desc->expert < e + count) status = decide_linear(r, lc, c);
        }
        decide_scratch_free(r); /* not held through the next group's passes */
        layer_hessians_free_experts(lc, e, e + count);
        progress_tokens(&r->progress, lc->index, tokens * (e + count) / E - tokens * e / E, false);
    }
    grouped_close(&g);
    layer_weights_free(&lw);
    timing->hessian_s += seconds_now() - start - (timing->read_s - read_before) - (timing->decide_s - decide_before);
    return status;
}

/* Smoothing's decisions (AWQ's search, SmoothQuant's scales) from the calibration pass's
 * observations; afterwards the layer's weights and inputs are the smoothed ones. */
static strata_status decide_smoothing(run *r, layer_calib *lc)
{
    strata_layer_timing *timing = &r->timings.layers[lc->index];
    double start = seconds_now();
    strata_status status = STRATA_OK;
    if (calib_awq_is_llm_compressor(r->algorithm, r->params->format)) {
        status = awq_modifier_decide(r, lc);
    } else if (calib_algorithm_awq(r->algorithm)) {
        /* every rank searches every linear (on the whole Hessians and window means), so every
         * rank holds the scales its quantized pass and the export need */
        status = layer_hessians_finish(lc, &r->collective, false);
        if (status == STRATA_OK) status = awq_gather_windows(lc, &r->collective, r->max_share);
        if (status == STRATA_OK) status = awq_decide_layer(lc, r->model);
    }
    if (status == STRATA_OK && r->params->smooth > 0) status = smoothquant_decide_layer(lc, r->model, r->params->smooth);
    timing->decide_s += seconds_now() - start;
    return status;
}

static strata_status calibrate_layer(run *r, layer_calib *lc)
{
    const strata_quantize_params *p = r->params;
    /* GPTQ's Hessians come from the inputs as deployed: the calibration pass's for
     * weight-only schemes, a pass with quantized inputs (and the amax just observed)
     * otherwise. A layer with its experts in groups accumulates theirs group by group
     * afterwards (gptq_experts_grouped), which is then its Hessian pass. */
    int group = r->plan.experts_per_group;
    bool awq_modifier = calib_awq_is_llm_compressor(r->algorithm, p->format);
    bool awq = calib_algorithm_awq(r->algorithm) && !awq_modifier, smoothed = awq || awq_modifier || p->smooth > 0;
    /* ... and the experts' AWQ Hessians weigh each window's mean, not each token: GPTQ
     * after them takes a Hessian pass of its own. */
    bool gptq = calib_algorithm_gptq(r->algorithm);
    bool hessian_pass = gptq && (layer_calib_quantizes_inputs(lc) || (awq && lc->layer->is_moe));
    /* ModelOpt's AWQ searches on the Hessians of the unquantized inputs, from the calibration
     * pass; llm-compressor's reruns parts of the layer on the inputs the pass kept.
     * Smoothing (AWQ, SmoothQuant) changes the layer's weights and inputs once decided: a
     * weight-only GPTQ then turns the calibration pass's Hessians into the smoothed inputs',
     * and a Hessian pass materializes the layer again with the smoothed weights. */
    bool grouped_gptq = gptq && group > 0 && lc->layer->is_moe;
    bool quantized_pass = p->propagate == STRATA_PROPAGATE_QUANTIZED || p->error_stats == STRATA_ERROR_STATS_FULL;
    int64_t work = (1 + (hessian_pass || grouped_gptq) + quantized_pass) * p->n_samples * p->seq_len;
    /* llm-compressor's AWQ reruns each mapping's parent 21 times (its time is the decision's) */
    int64_t search = awq_modifier ? (int64_t)awq_modifier_mappings(lc) * (AWQ_MODIFIER_GRID + 1) : 0;
    progress_begin_layer(&r->progress, work + search * p->n_samples * p->seq_len);
    strata_layer_timing *timing = &r->timings.layers[lc->index];
    double start = seconds_now();
    layer_weights lw;
    strata_status status = r->spill.fd >= 0 ? weight_spill_reset(&r->spill) : STRATA_OK;
    if (status == STRATA_OK && ((gptq && !hessian_pass) || awq)) status = layer_hessians_init(lc, p->seq_len);
    lc->awq = awq;
    lc->hessian_window_mean = awq;
    lc->observe_channels = smoothed && !awq_modifier;
    lc->inputs_bf16 = r->precision == GEMM_BF16;
    if (status == STRATA_OK && awq_modifier) status = awq_modifier_prepare(r, lc);
    if (status == STRATA_OK && grouped_gptq && !hessian_pass) layer_hessians_scope(lc, true, 0, 0);
    if (status == STRATA_OK) status = load_layer(r, lc, NULL, &lw);
    forward_hooks observe = calib_observer_hooks(lc), gram = calib_gram_hooks(lc);
    forward_hooks hessian = smoothed ? calib_smoothed_hessian_hooks(lc) : calib_hessian_hooks(lc);
    bool all_experts = p->calib_all_experts;
    if (status == STRATA_OK) {
        status = timed_pass(r, lc, &lw, &observe, all_experts, true, false, &timing->calibrate_s);
        /* A linear running in bf16 consumes its input rounded to bf16, and that is what
         * ModelOpt observes; rounding is monotonic, so the amax of the rounded values is
         * the rounded amax (the same holds for the k/v cache). */
        if (status == STRATA_OK && r->precision == GEMM_BF16) layer_calib_round_observed_to_bf16(lc);
        /* Every layer, with or without experts or tokens: the collective needs everyone. */
        if (status == STRATA_OK) status = layer_calib_sync(lc, &r->collective);
        if (status == STRATA_OK && hessian_pass && !smoothed) status = layer_hessians_init(lc, p->seq_len);
        if (status == STRATA_OK && hessian_pass && !smoothed && !grouped_gptq)
            status = timed_pass(r, lc, &lw, &hessian, all_experts, false, false, &timing->hessian_s);
        layer_weights_free(&lw);
    }
    if (status == STRATA_OK && smoothed) status = decide_smoothing(r, lc);
    if (status == STRATA_OK && smoothed && gptq && !hessian_pass) layer_hessians_smooth(lc);
    if (status == STRATA_OK && smoothed && hessian_pass) {
        layer_hessians_free(lc); /* AWQ's, of the unquantized inputs */
        lc->hessian_window_mean = false;
        status = layer_hessians_init(lc, p->seq_len);
        if (status == STRATA_OK && !grouped_gptq) {
            status = load_layer(r, lc, &hessian, &lw);
            if (status == STRATA_OK) {
                status = timed_pass(r, lc, &lw, &hessian, all_experts, false, false, &timing->hessian_s);
                layer_weights_free(&lw);
            }
        }
    }
    double amax_start = seconds_now();
    if (status == STRATA_OK) status = layer_calib_weight_amax(lc, r->model);
    timing->amax_s = seconds_now() - amax_start;
    timing->read_s += timing->amax_s;
    if (status == STRATA_OK && grouped_gptq)
        status = gptq_experts_grouped(r, lc, hessian_pass ? &hessian : &gram, hessian_pass);
    /* The rest (all but a grouped layer's experts) are decided where decide_layer deals them. */
    if (status == STRATA_OK && gptq) status = layer_hessians_finish(lc, &r->collective, true);
    if (status == STRATA_OK) status = decide_layer(r, lc);
    decide_scratch_free(r); /* before the quantized pass materializes the layer again */
    layer_calib_free_samples(lc);
    layer_hessians_free(lc);
    /* The quantized pass: the next layer's inputs (propagate quantized) and the layer's
     * output error; with --error-stats weights only the former. */
    forward_hooks quantize = calib_quantizer_hooks(lc);
    if (status == STRATA_OK && quantized_pass) status = load_layer(r, lc, &quantize, &lw);
    if (status == STRATA_OK && quantized_pass) {
        status = timed_pass(r, lc, &lw, &quantize, false, p->propagate == STRATA_PROPAGATE_QUANTIZED,
                            p->error_stats == STRATA_ERROR_STATS_FULL, &timing->quantized_s);
        layer_weights_free(&lw);
    }
    if (status == STRATA_OK && quantized_pass && p->error_stats == STRATA_ERROR_STATS_FULL)
        status = fold_output_error(r, lc);
    if (status == STRATA_OK)
        lc->output_error = lc->output_sq_sum > 0 ? sqrt(lc->output_diff_sq_sum / lc->output_sq_sum) : 0;
    /* What is neither reading nor deciding is the passes'. */
    timing->forward_s = seconds_now() - start - timing->read_s - timing->decide_s;
    timing->tokens_per_second = timing->forward_s > 0 ? (double)work / timing->forward_s : 0;
    if (status != STRATA_OK) return strata_fail_context(status, "calibrating layer %d", lc->index);
    act_store_swap(&r->store);
    return STRATA_OK;
}

static strata_status embed_inputs(run *r)
{
    const strata_quantize_params *p = r->params;
    int64_t seq = p->seq_len, chunk = r->plan.chunk_sequences, H = r->arch->hidden_size;
    float *x = malloc((size_t)(chunk * seq * H) * sizeof *x);
    if (!x) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory embedding the calibration tokens");
    strata_status status = STRATA_OK;
    for (int64_t s0 = 0; status == STRATA_OK && s0 < p->n_samples; s0 += chunk) {
        int64_t n = p->n_samples - s0 < chunk ? p->n_samples - s0 : chunk;
        status = forward_embed(r->model, p->tokens + s0 * seq, n * seq, x);
        safetensors_release_pages(strata_model_tensors(r->model)); /* the embedding's rows */
        if (status == STRATA_OK) status = act_store_write_next(&r->store, s0 * seq, n * seq, x);
    }
    free(x);
    if (status == STRATA_OK) act_store_swap(&r->store);
    return status;
}

/* What --algo awq runs (docs/AWQ.md): ModelOpt's INT4_AWQ and NVFP4_AWQ_LITE, exported in
 * ModelOpt's format; llm-compressor's AWQModifier before W4A16 (int4, int4-asym) for
 * compressed-tensors. */
static strata_status check_awq(const strata_quantize_params *p, calib_algorithm algorithm)
{
    if (calib_awq_is_llm_compressor(algorithm, p->format)) {
        if (p->scheme != STRATA_SCHEME_INT4 && p->scheme != STRATA_SCHEME_INT4_ASYM)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq --format compressed-tensors runs llm-compressor's "
                               "AWQ before W4A16: --scheme int4 or int4-asym (W4A16_ASYM, its examples' scheme); "
                               "not %s", strata_scheme_name(p->scheme));
        if (p->attention == STRATA_ATTENTION_FP8)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq --format compressed-tensors with --attention fp8: "
                               "llm-compressor's AWQ runs before one W4A16 scheme");
        return STRATA_OK;
    }
    if (!scheme_with_awq(p->scheme))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq runs with --scheme int4 (W4A16_AWQ) or nvfp4 "
                           "(NVFP4_AWQ), ModelOpt's AWQ configs; not with %s", strata_scheme_name(p->scheme));
    if (p->format != STRATA_EXPORT_MODELOPT)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq writes ModelOpt's format (awq_lite) or compressed-tensors "
                           "(llm-compressor's AWQ), not %s", strata_export_format_name(p->format));
    if (p->attention == STRATA_ATTENTION_FP8)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq with --attention fp8: ModelOpt has no "
                           "mixed-precision AWQ layout");
    return STRATA_OK;
}

/* What --smooth runs (docs/SMOOTHQUANT.md): llm-compressor's SmoothQuantModifier, for schemes
 * that quantize inputs, before max, mse or GPTQ. */
static strata_status check_smooth(const strata_quantize_params *p, calib_algorithm algorithm)
{
    if (!(p->smooth > 0 && p->smooth <= 1))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--smooth %g: the migration strength is in (0, 1]", p->smooth);
    if (calib_algorithm_awq(algorithm))
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--smooth with --algo %s: AWQ searches its own input scales; use "
                           "one or the other", calib_algorithm_name(algorithm));
    if (scheme_get(p->scheme)->input == INPUT_NONE)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--smooth with scheme %s: SmoothQuant moves the inputs' range "
                           "into the weights for schemes that quantize inputs (fp8, nvfp4, int8-w8a8...); %s "
                           "quantizes weights only (for int4, --algo awq is the activation-aware method)",
                           strata_scheme_name(p->scheme), strata_scheme_name(p->scheme));
    return STRATA_OK;
}

static strata_status check_params(const strata_quantize_params *p, calib_algorithm *algorithm)
{
    if (!p || !p->model_dir || !p->output_dir)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_quantize_model: missing model or output directory");
    if (!scheme_get(p->scheme)) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "unknown scheme %d", (int)p->scheme);
    if (strcmp(strata_export_format_name(p->format), "?") == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "unknown export format %d", (int)p->format);
    if ((unsigned)p->convention > STRATA_CONVENTION_COMPRESSED_TENSORS)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "unknown convention %d", (int)p->convention);
    if (p->convention != STRATA_CONVENTION_MODELOPT && p->format != STRATA_EXPORT_FAKEQUANT)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--convention applies to --format fakequant; a %s checkpoint "
                           "holds %s numerics", strata_export_format_name(p->format),
                           p->format == STRATA_EXPORT_MODELOPT ? "ModelOpt's" : "compressed-tensors'");
    if (p->format == STRATA_EXPORT_MODELOPT && !scheme_get(p->scheme)->modelopt_algo)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "scheme %s has no ModelOpt format; use --format compressed-tensors "
                           "(vLLM's format) or fakequant", strata_scheme_name(p->scheme));
    if (!p->tokens || p->n_samples <= 0 || p->seq_len <= 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "quantize needs calibration tokens (got %lld samples of %lld)",
                           (long long)p->n_samples, (long long)p->seq_len);
    if (p->save_every < 0) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--save-every must be positive");
    if (!(p->gptq_damp > 0 && p->gptq_damp <= 100))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--gptq-damp %g must be in (0, 100]", p->gptq_damp);
    if (p->gptq_block <= 0 || p->gptq_min_tokens < 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--gptq-block must be positive and --gptq-min-tokens not negative");
    for (size_t i = 0; i < p->n_exclude; i++)
        if (!p->exclude || !p->exclude[i] || !p->exclude[i][0])
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "empty --exclude pattern");
    if ((unsigned)p->attention > STRATA_ATTENTION_FP8)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "unknown attention mode %d", (int)p->attention);
    const scheme_info *s = scheme_get(p->scheme);
    if (p->attention == STRATA_ATTENTION_FP8 && p->format == STRATA_EXPORT_MODELOPT && p->scheme != STRATA_SCHEME_FP8 &&
        !s->mixed_group.known)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--attention fp8 with scheme %s: ModelOpt has no mixed-precision "
                           "layout for %s layers; use --attention none or scheme", s->name, s->modelopt_algo);
    strata_status status = calib_algorithm_parse(p->algo, algorithm);
    if (status == STRATA_OK && calib_algorithm_awq(*algorithm)) status = check_awq(p, *algorithm);
    if (status == STRATA_OK && p->smooth != 0) status = check_smooth(p, *algorithm);
    return status;
}

static strata_status check_model(const run *r)
{
    const strata_arch *a = r->arch;
    /* FP8 releases are dequantized as they are read, the way ModelOpt's recipes convert
     * them to bf16 first: block-scaled ones (DeepSeek-V3, Qwen3-FP8; quant_method fp8) and
     * compressed-tensors float-quantized ones (llm-compressor's FP8 checkpoints). Other
     * quantized checkpoints would be quantized twice. */
    const strata_quant_info *q = strata_model_quantization(r->model);
    bool fp8_release = q && (strcmp(q->method, "fp8") == 0 ||
                             (strcmp(q->method, "compressed-tensors") == 0 && q->algo &&
                              strcmp(q->algo, "float-quantized") == 0));
    if (q && !fp8_release)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s is already quantized (%s%s%s, from %s); strata quantize reads "
                           "bf16/fp16/fp32 checkpoints and FP8 ones (quant_method fp8, or compressed-tensors "
                           "float-quantized)", r->params->model_dir, q->method, q->algo ? " " : "",
                           q->algo ? q->algo : "", q->source);
    if (calib_algorithm_awq(r->algorithm)) {
        bool llm_compressor = calib_awq_is_llm_compressor(r->algorithm, r->params->format);
        if (a->mla.kv_lora_rank > 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq runs on models with standard attention for now; %s "
                               "has latent attention", r->params->model_dir);
        for (int i = 0; i < a->n_layers; i++) {
            bool shared = false;
            for (size_t l = 0; l < a->layers[i].n_linears; l++) shared |= a->layers[i].linears[l].shared_expert;
            if (a->layers[i].is_moe && !llm_compressor && r->params->calib_all_experts)
                return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq (ModelOpt's awq_lite) with --calib-all-experts: "
                                   "ModelOpt's AWQ calibrates each expert on the tokens routed to it; not built with "
                                   "every expert on every token (docs/AWQ.md)");
            if (shared)
                return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq on %s: layer %d has a shared expert, %s; not "
                                   "built (docs/AWQ.md)", r->params->model_dir, i,
                                   llm_compressor ? "which llm-compressor's mappings leave reading the smoothed input "
                                                    "uncompensated"
                                                  : "whose scales ModelOpt's export does not share with the routed "
                                                    "experts' (not checked against it)");
        }
        if (r->params->expert_parallel && r->collective.n_ranks > 1)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq with --expert-parallel: %s; run it without "
                               "--expert-parallel", llm_compressor ? "llm-compressor's AWQ reruns every expert of a "
                               "layer on each rank's tokens" : "every rank searches every expert on the layer's "
                               "summed statistics");
    }
    if (r->params->smooth > 0) {
        if (a->mla.kv_lora_rank > 0)
            return strata_fail(STRATA_ERR_UNSUPPORTED, "--smooth runs on models with standard attention for now; %s "
                               "has latent attention", r->params->model_dir);
    }
    strata_status status = forward_check_seq_len(a, r->params->seq_len);
    if (status == STRATA_OK)
        status = forward_check_tokens(a, r->params->tokens, r->params->n_samples * r->params->seq_len,
                                      "calibration tokens");
    return status;
}

static void free_run(run *r)
{
    for (int i = 0; r->layers && r->arch && i < r->arch->n_layers; i++) layer_calib_free(&r->layers[i]);
    free(r->layers);
    strata_safetensors_writer_free(r->ex.writer);
    exporter_free_notes(&r->ex);
    weight_spill_close(&r->spill);
    decide_scratch_free(r);
    layer_timings_free(&r->timings);
    act_store_free(&r->store);
    free(r->window_sq);
    free(r->window_diff);
    free(r->rank_rows);
    free(r->expert_holder);
    rope_table_free(&r->rope);
    checkpoint_close(&r->ck);
    /* A checkpoint directory this run created and never wrote a manifest into goes. */
    const char *ckpt = r->params->checkpoint_dir;
    if (ckpt && r->checkpoint_created && dir_lock_held(&r->checkpoint_lock)) {
        char *manifest = path_join(ckpt, "manifest.json");
        if (manifest && !path_exists(manifest)) dir_remove_files(ckpt, true);
        free(manifest);
    }
    dir_lock_release(&r->checkpoint_lock);
    output_close(&r->out);
    strata_model_close(r->model);
}

/* Layers restored from the checkpoint whose tensors are not in a kept shard are exported
 * again (from the saved state; weights come from the model). */
static strata_status restore_layers(run *r, int completed)
{
    strata_status status = STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < completed; i++) {
        char *last = NULL;
        status = checkpoint_load_layer(&r->ck, i, &r->layers[i], &last);
        if (status == STRATA_OK && !safetensors_writer_holds(r->ex.writer, last)) status = export_layer(&r->ex, &r->layers[i]);
        layer_calib_release_quantized(&r->layers[i]);
        free(last);
    }
    return status;
}

static strata_status run_layers(run *r, int first)
{
    const strata_quantize_params *p = r->params;
    int every = p->save_every > 0 ? p->save_every : 1;
    strata_status status = STRATA_OK;
    for (int i = first; status == STRATA_OK && i < r->arch->n_layers; i++) {
        layer_calib *lc = &r->layers[i];
        strata_layer_timing *timing = &r->timings.layers[i];
        double start = seconds_now();
        status = calibrate_layer(r, lc);
        /* Tensors a kept shard already holds are skipped by the writer. */
        double export_start = seconds_now();
        if (status == STRATA_OK && r->collective.rank == 0) status = export_layer(&r->ex, lc);
        /* The layer's weights leave the resident set with it. */
        safetensors_release_pages(strata_model_tensors(r->model));
        double checkpoint_start = seconds_now();
        timing->export_s = checkpoint_start - export_start;
        if (status == STRATA_OK && r->checkpointing) status = checkpoint_save_layer(&r->ck, lc, r->ex.last_tensor);
        /* The quantized weights are in the output (and GPTQ's in the checkpoint) now. */
        layer_calib_release_quantized(lc);
        bool last = i == r->arch->n_layers - 1;
        /* Rank 0 saves the next layer's inputs with the other ranks' rows. */
        bool commit = p->checkpoint_dir && ((i + 1) % every == 0 || last);
        if (status == STRATA_OK && commit && r->checkpointing)
            status = checkpoint_commit(&r->ck, i + 1, &r->store, &r->collective, r->rank_rows);
        else if (status == STRATA_OK && commit && r->collective.rank != 0 && !last)
            status = checkpoint_send_inputs(&r->store, &r->collective);
        timing->checkpoint_s = seconds_now() - checkpoint_start;
        timing->total_s = seconds_now() - start;
        r->timings.measured[i] = status == STRATA_OK;
        if (status == STRATA_OK) progress_end_layer(&r->progress, i, timing);
    }
    return status;
}

/* Phase 1: the model, and what identifies this run (its fingerprints and the id that
 * names its staging area). */
static strata_status open_model(run *r, run_identity *id, char **settings, sjson **settings_json, char run_id[16])
{
    const strata_quantize_params *p = r->params;
    strata_status status = strata_model_open(p->model_dir, &r->model);
    if (status != STRATA_OK) return status;
    r->arch = strata_model_arch(r->model);
    status = check_model(r);
    if (status != STRATA_OK) return status;
    bool bf16 = false;
    status = gemm_bf16_available(&bf16);
    if (status != STRATA_OK) return status;
    r->precision = bf16 ? GEMM_BF16 : GEMM_F32;
    if (r->precision == GEMM_F32) strata_log(STRATA_LOG_WARN, "this CPU has no bf16 products in oneDNN; calibrating in fp32");
    *id = (run_identity){.model_dir = p->model_dir, .n_layers = r->arch->n_layers, .n_samples = p->n_samples,
                         .seq_len = p->seq_len};
    status = identity_model_fingerprint(r->model, p->model_dir, id->model_fingerprint, sizeof id->model_fingerprint);
    identity_data_fingerprint(p->tokens, p->n_samples, p->seq_len, id->data_fingerprint, sizeof id->data_fingerprint);
    if (status == STRATA_OK) status = identity_settings(p, r->algorithm, settings, settings_json);
    if (status != STRATA_OK) return status;
    id->settings = *settings;
    id->settings_json = *settings_json;
    char all[1024];
    snprintf(all, sizeof all, "%s|%s|%s", id->model_fingerprint, id->data_fingerprint, *settings);
    snprintf(run_id, 16, "%08x", (unsigned)checksum_update(0, all, strlen(all)));
    return STRATA_OK;
}

/* Phase 2: the output directory (locked, its staging area ready) and the checkpoint
 * directory (locked, opened or resumed). */
static strata_status open_directories(run *r, run_identity *id, const char *run_id, const output_inputs *inputs)
{
    const strata_quantize_params *p = r->params;
    output_params op = {.dir = p->output_dir, .run_id = run_id, .command = "quantize", .overwrite = p->overwrite,
                        .keep_staging = p->checkpoint_dir != NULL, .inputs = inputs};
    strata_status status = output_open(&op, &r->out);
    if (status != STRATA_OK || !p->checkpoint_dir) return status;
    id->output_dir = r->out.dir;
    r->checkpoint_created = !path_exists(p->checkpoint_dir);
    if (!make_dirs(p->checkpoint_dir))
        return strata_fail(STRATA_ERR_IO, "%s: cannot create the checkpoint directory: %s", p->checkpoint_dir,
                           strerror(errno));
    status = dir_lock_acquire(p->checkpoint_dir, "checkpoint directory", &r->checkpoint_lock);
    if (status == STRATA_OK) status = checkpoint_open(p->checkpoint_dir, id, p->tokens, &r->ck);
    r->checkpointing = status == STRATA_OK;
    return status;
}

/* Phase 3: per-layer state, the activation store and the exporter. */
static strata_status prepare_layers(run *r)
{
    const strata_quantize_params *p = r->params;
    const char *tmp = getenv("TMPDIR");
    const char *spill_dir = p->checkpoint_dir ? p->checkpoint_dir : r->out.staging ? r->out.staging : tmp ? tmp : "/tmp";
    memory_plan_log(&r->plan, spill_dir);
    r->window_sq = calloc((size_t)r->max_share + 1, sizeof *r->window_sq);
    r->window_diff = calloc((size_t)r->max_share + 1, sizeof *r->window_diff);
    if (!r->window_sq || !r->window_diff) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    r->layers = calloc((size_t)r->arch->n_layers, sizeof *r->layers);
    if (!r->layers) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status timings = layer_timings_init(&r->timings, r->arch->n_layers);
    if (timings != STRATA_OK) return timings;
    /* Fused groups share the tensor-level weight amax where ModelOpt's exporter fuses it
     * (NVFP4's global scale), and for FP8 per tensor when asked (--fuse-fp8-scales). */
    layer_calib_options options = {.arch = r->arch, .scheme = r->scheme, .attention = p->attention,
                                   .kv_cache = p->kv_cache_fp8, .fuse_fp8_scales = p->fuse_fp8_scales,
                                   .convention = strata_export_convention(p->format, p->convention),
                                   .sample_inputs = p->error_stats == STRATA_ERROR_STATS_FULL,
                                   .exclude = p->exclude, .n_exclude = p->n_exclude};
    strata_status status = STRATA_OK;
    for (int i = 0; status == STRATA_OK && i < r->arch->n_layers; i++) {
        status = layer_calib_init(&r->layers[i], &r->arch->layers[i], &options);
        if (r->expert_parallel && r->arch->layers[i].is_moe) r->layers[i].expert_holder = r->expert_holder;
    }
    if (status == STRATA_OK && calib_algorithm_gptq(r->algorithm) && r->plan.experts_per_group > 0)
        status = weight_spill_open(&r->spill, spill_dir);
    if (status == STRATA_OK) status = rope_table_create(r->arch, p->seq_len, &r->rope);
    if (status == STRATA_OK)
        status = act_store_create(&r->store, p->n_samples * p->seq_len, r->arch->hidden_size, r->plan.spill, spill_dir);
    r->ex = (exporter){.model = r->model, .model_dir = p->model_dir, .output_dir = r->out.staging, .scheme = r->scheme,
                       .format = p->format, .convention = strata_export_convention(p->format, p->convention),
                       .kv_cache = p->kv_cache_fp8, .allow_non_finite = p->allow_non_finite,
                       .recipe = {.arch = r->arch, .scheme = r->scheme, .attention = p->attention,
                                  .exclude = p->exclude, .n_exclude = p->n_exclude}};
    if (r->collective.rank != 0) return status; /* rank 0 alone writes */
    strata_writer_params wp = {.dir = r->out.staging, .max_shard_bytes = p->max_shard_bytes};
    if (status == STRATA_OK) status = safetensors_writer_create_resumable(&wp, &r->ex.writer);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(r->ex.writer, "format", "pt");
    if (status == STRATA_OK && safetensors_writer_adopted_count(r->ex.writer) > 0)
        strata_log(STRATA_LOG_INFO, "resuming the output: %zu finished shard(s) kept",
                   safetensors_writer_adopted_count(r->ex.writer));
    return status;
}

/* quant_report.html beside the summary it is drawn from (docs/EVAL.md). */
static strata_status write_report(const char *staging)
{
    char *path = path_join(staging, "quant_report.html");
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = strata_report(staging, NULL, path);
    free(path);
    return status;
}

/* Phase 5: the rest of the model, the files around the shards, the summary; then the
 * output moves into place. */
static strata_status finish_output(run *r)
{
    strata_status status = export_model_rest(&r->ex);
    if (status == STRATA_OK) status = strata_safetensors_writer_finish(r->ex.writer);
    if (status == STRATA_OK) status = export_finish(&r->ex, r->layers, r->arch->n_layers);
    if (status == STRATA_OK) status = summary_write(r->whole, r->algorithm, r->out.staging, r->arch, r->layers, &r->ex);
    if (status == STRATA_OK && !r->whole->no_report) status = write_report(r->out.staging);
    if (status == STRATA_OK) status = layer_timings_write(&r->timings, r->out.staging);
    if (status == STRATA_OK) status = output_commit(&r->out);
    return status;
}

/* The memory plan of the run (pipeline/memory_plan.h). */
static strata_status plan_memory(run *r)
{
    const strata_quantize_params *p = r->params;
    /* Attention may be FP8 under a 4-bit scheme (--attention fp8). */
    int bits = quant_format_element_bits(r->scheme->weight_format);
    if (p->attention == STRATA_ATTENTION_FP8 && bits < 8) bits = 8;
    memory_plan_request request = {.arch = r->arch, .precision = r->precision, .n_samples = p->n_samples,
                                   .seq_len = p->seq_len, .max_memory = p->max_memory,
                                   .gptq = calib_algorithm_gptq(r->algorithm) ||
                                           (calib_algorithm_awq(r->algorithm) &&
                                            !calib_awq_is_llm_compressor(r->algorithm, p->format)),
                                   .awq_modifier = calib_awq_is_llm_compressor(r->algorithm, p->format),
                                   .weight_bits = bits,
                                   .experts_per_group = p->experts_per_group,
                                   .no_samples = p->error_stats == STRATA_ERROR_STATS_WEIGHTS};
    /* Expert parallelism: the largest share of experts a rank holds. */
    int N = r->collective.n_ranks, E = r->arch->moe.n_experts;
    if (p->expert_parallel && N > 1 && E > 0) request.experts_held = (E + N - 1) / N;
    return memory_plan_make(&request, &r->plan);
}

/* Several ranks (docs/DISTRIBUTED.md): rank r calibrates windows [n r / N, n (r + 1) / N);
 * the run's params become that share, after the identity has been taken from all of them. */
static strata_status share_windows(run *r)
{
    const strata_quantize_params *p = r->params;
    int64_t n = p->n_samples, N = r->collective.n_ranks, rank = r->collective.rank;
    r->first_window = 0;
    r->max_share = n;
    if (N == 1) return STRATA_OK;
    if (n < N)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%lld calibration windows for %lld ranks: each rank needs one",
                           (long long)n, (long long)N);
    r->first_window = n * rank / N;
    r->max_share = 0;
    r->rank_rows = malloc((size_t)N * sizeof *r->rank_rows);
    if (!r->rank_rows) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int64_t k = 0; k < N; k++) {
        int64_t share = n * (k + 1) / N - n * k / N;
        r->rank_rows[k] = share * p->seq_len;
        if (share > r->max_share) r->max_share = share;
    }
    r->share = *p;
    r->share.tokens = p->tokens + r->first_window * p->seq_len;
    r->share.n_samples = n * (rank + 1) / N - r->first_window;
    if (rank != 0) r->share.progress = NULL; /* rank 0 reports */
    r->params = &r->share;
    return STRATA_OK;
}

/* --expert-parallel: with several ranks and an MoE model; not yet with every expert on every
 * token (the exchange carries routed rows only) or with experts in groups. With one rank
 * there is nothing to spread. */
static strata_status check_expert_parallel(run *r)
{
    const strata_quantize_params *p = r->params;
    if (!p->expert_parallel) return STRATA_OK;
    if (r->collective.n_ranks == 1) {
        strata_log(STRATA_LOG_INFO, "--expert-parallel: one rank, so every expert stays here");
        return STRATA_OK;
    }
    if (r->arch->moe.n_experts == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "--expert-parallel: %s has no routed experts", p->model_dir);
    if (p->calib_all_experts)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--expert-parallel with --calib-all-experts is not built yet "
                           "(docs/DISTRIBUTED.md)");
    if (r->plan.experts_per_group > 0)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "--expert-parallel with experts in groups (--experts-per-group, or "
                           "a layer bigger than --max-memory) is not built yet (docs/DISTRIBUTED.md)");
    r->expert_parallel = true;
    int E = r->arch->moe.n_experts;
    if (!(r->expert_holder = malloc((size_t)E * sizeof *r->expert_holder)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int e = 0; e < E; e++) r->expert_holder[e] = expert_parallel_holder(e, E, r->collective.n_ranks);
    int first, end;
    expert_parallel_share(r->arch->moe.n_experts, r->collective.rank, r->collective.n_ranks, &first, &end);
    strata_log(STRATA_LOG_INFO, "expert parallel: this rank holds routed experts %d to %d of %d", first, end - 1,
               r->arch->moe.n_experts);
    return STRATA_OK;
}

static strata_status quantize(run *r, const output_inputs *inputs, strata_quantize_result *result)
{
    const strata_quantize_params *p = r->params;
    r->scheme = calib_algorithm_awq(r->algorithm) && !calib_awq_is_llm_compressor(r->algorithm, p->format)
                    ? scheme_with_awq(p->scheme)
                    : scheme_get(p->scheme);
    r->gptq_options = (gptq_options){.damp = p->gptq_damp, .block = p->gptq_block, .act_order = p->gptq_act_order,
                                     .min_tokens = p->gptq_min_tokens,
                                     .skip_errors = p->error_stats == STRATA_ERROR_STATS_WEIGHTS};
    run_identity id;
    char *settings = NULL, run_id[16] = "";
    sjson *settings_json = NULL;
    strata_status status = open_model(r, &id, &settings, &settings_json, run_id);
    if (status == STRATA_OK) status = share_windows(r);
    p = r->params;
    if (status == STRATA_OK) status = plan_memory(r);
    if (status == STRATA_OK && r->plan.experts_per_group > 0 && calib_algorithm_awq(r->algorithm))
        status = strata_fail(STRATA_ERR_UNSUPPORTED, "--algo awq %s; with experts in groups (--experts-per-group, or "
                             "a layer bigger than --max-memory) it is not built yet",
                             calib_awq_is_llm_compressor(r->algorithm, p->format)
                                 ? "--format compressed-tensors reruns a layer's MoE block with every expert's trial "
                                   "weights at once"
                                 : "searches a layer's experts together (their scales are averaged)");
    if (status == STRATA_OK) status = check_expert_parallel(r);
    if (status == STRATA_OK && r->collective.rank == 0) status = open_directories(r, &id, run_id, inputs);
    free(settings);
    sjson_free(settings_json);
    /* The first layer the checkpoint has not finished, as rank 0 read it: the other ranks
     * wait for it here, and find the checkpoint directory (their spill directory) made. */
    int64_t first_layer = r->checkpointing ? r->ck.completed : 0;
    if (status == STRATA_OK && r->collective.n_ranks > 1 && p->checkpoint_dir)
        status = r->collective.sum_i64(r->collective.ctx, &first_layer, 1);
    if (status == STRATA_OK) status = prepare_layers(r);
    if (status != STRATA_OK) return status;

    /* Phase 4: the layers, from the first one the checkpoint has not finished. */
    int first = (int)first_layer;
    r->progress = (progress){.fn = p->progress, .user = p->progress_user, .n_layers = r->arch->n_layers,
                             .first_layer = first, .act_store_bytes = 2 * r->plan.store_buffer_bytes,
                             .spilled = r->plan.spill, .start = seconds_now()};
    if (first > 0) {
        strata_log(STRATA_LOG_INFO, "resuming after layer %d of %d from %s", first - 1, r->arch->n_layers,
                   p->checkpoint_dir);
        int64_t row0 = r->first_window * p->seq_len, rows = r->whole->n_samples * p->seq_len;
        /* Rank 0 exports what the kept shards lack and checks the inputs' checksum. */
        if (r->collective.rank == 0) status = restore_layers(r, first);
        if (status == STRATA_OK && first < r->arch->n_layers)
            status = r->collective.rank == 0 ? checkpoint_load_inputs(&r->ck, &r->store, row0, rows)
                                             : checkpoint_load_share(p->checkpoint_dir, first, &r->store, row0, rows);
    } else {
        status = embed_inputs(r);
    }
    if (status == STRATA_OK) status = run_layers(r, first);
    if (status == STRATA_OK && r->collective.rank == 0) status = finish_output(r);
    if (status != STRATA_OK) return status;
    int64_t quantized = 0;
    for (int i = 0; i < r->arch->n_layers; i++)
        for (size_t l = 0; l < r->layers[i].layer->n_linears; l++) quantized += r->layers[i].linears[l].quantized;
    *result = (strata_quantize_result){.resumed_from_layer = first, .n_layers = r->arch->n_layers,
                                       .n_quantized_linears = quantized,
                                       .act_store_bytes = 2 * r->plan.store_buffer_bytes,
                                       .act_store_spilled = r->plan.spill,
                                       .experts_per_group = r->plan.experts_per_group,
                                       .seconds = seconds_now() - r->progress.start,
                                       .n_non_finite_tensors = (int64_t)r->ex.n_non_finite,
                                       .report = !r->whole->no_report};
    snprintf(result->output_dir, sizeof result->output_dir, "%s", r->out.dir ? r->out.dir : "");
    return STRATA_OK;
}

/* Under mpirun, rank 0's calibration windows become every rank's: the others need not read
 * the data (the command line leaves it to rank 0); *received holds their copy. */
static strata_status receive_calibration(const calib_collective *coll, strata_quantize_params *p, int32_t **received)
{
    int64_t shape[2] = {p->tokens ? p->n_samples : 0, p->tokens ? p->seq_len : 0};
    strata_status status = coll->broadcast_bytes(coll->ctx, 0, shape, sizeof shape);
    if (status != STRATA_OK) return status;
    if (coll->rank != 0) p->tokens = NULL, p->n_samples = shape[0], p->seq_len = shape[1];
    if (shape[0] <= 0 || shape[1] <= 0 || shape[0] > INT64_MAX / shape[1] / 4) return STRATA_OK; /* refused later */
    size_t bytes = (size_t)(shape[0] * shape[1]) * sizeof *p->tokens;
    if (coll->rank != 0 && !(p->tokens = *received = malloc(bytes)))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the calibration tokens");
    return coll->broadcast_bytes(coll->ctx, 0, (void *)p->tokens, bytes);
}

/* strata_quantize_model once the participants are known: the checks, then the run. */
static strata_status quantize_checked(strata_quantize_params *p, const calib_collective *collective,
                                      strata_quantize_result *result)
{
    /* Refused settings, and an output directory the run reads from, leave nothing behind:
     * both are checked before anything is read or created. */
    calib_algorithm algorithm = CALIB_MAX;
    strata_status status = check_params(p, &algorithm);
    if (p->propagate == STRATA_PROPAGATE_DEFAULT)
        p->propagate = calib_algorithm_gptq(algorithm) ? STRATA_PROPAGATE_QUANTIZED : STRATA_PROPAGATE_UNQUANTIZED;
    output_inputs inputs = {.model_dir = p->model_dir, .checkpoint_dir = p->checkpoint_dir, .files = p->input_files,
                            .n_files = p->n_input_files};
    if (status == STRATA_OK && collective->rank == 0) status = output_check_inputs(p->output_dir, &inputs);
    if (status != STRATA_OK) return status;
    /* Absolute paths: the checkpoint records them for strata resume from anywhere. */
    char *model_dir = realpath(p->model_dir, NULL);
    if (!model_dir)
        return strata_fail(STRATA_ERR_NOT_FOUND, "%s: cannot open the model directory: %s", p->model_dir, strerror(errno));
    p->model_dir = model_dir;
    inputs.model_dir = model_dir;
    run r = {.params = p, .whole = p, .algorithm = algorithm, .collective = *collective, .checkpoint_lock = {.fd = -1},
             .spill = {.fd = -1}};
    status = quantize(&r, &inputs, result);
    free_run(&r);
    free(model_dir);
    return status;
}

strata_status strata_quantize_model(const strata_quantize_params *params, strata_quantize_result *result)
{
    if (!params || !result) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_quantize_model: NULL argument");
    *result = (strata_quantize_result){0};
    strata_quantize_params p = *params;
    calib_collective collective = calib_collective_local();
    int32_t *received = NULL;
    strata_status status = STRATA_OK;
    if (calib_collective_mpi_launched()) status = calib_collective_mpi(&collective);
    if (status == STRATA_OK && collective.n_ranks > 1) status = receive_calibration(&collective, &p, &received);
    if (!p.max_shard_bytes) p.max_shard_bytes = EXPORT_DEFAULT_SHARD_BYTES;
    if (!p.save_every) p.save_every = 1;
    if (p.gptq_damp == 0) p.gptq_damp = 0.01;
    if (p.gptq_block == 0) p.gptq_block = 128;
    if (p.gptq_min_tokens == 0) p.gptq_min_tokens = 32;
    if (status == STRATA_OK) status = quantize_checked(&p, &collective, result);
    free(received);
    if (status != STRATA_OK && collective.abort_all) {
        /* No rank may wait for this one: say why, then stop them all. */
        strata_log(STRATA_LOG_ERROR, "rank %d of %d: %s", collective.rank, collective.n_ranks, strata_last_error());
        collective.abort_all(collective.ctx);
    }
    if (collective.abort_all) calib_collective_mpi_end();
    return status;
}

strata_status strata_quantize_resume(const char *checkpoint_dir, uint64_t max_memory, strata_progress_fn progress_fn,
                                     void *progress_user, strata_quantize_result *result)
{
    if (!checkpoint_dir || !result) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_quantize_resume: NULL argument");
    resume_info info;
    strata_status status = checkpoint_read_resume(checkpoint_dir, &info);
    if (status != STRATA_OK) return status;
    strata_quantize_params p = {.model_dir = info.model_dir, .output_dir = info.output_dir, .tokens = info.tokens,
                                .n_samples = info.n_samples, .seq_len = info.seq_len, .checkpoint_dir = checkpoint_dir,
                                .max_memory = max_memory, .progress = progress_fn, .progress_user = progress_user};
    const char **exclude = NULL;
    status = identity_params_from_json(info.settings, &p, &exclude);
    if (status == STRATA_OK) status = strata_quantize_model(&p, result);
    free(exclude);
    resume_info_free(&info);
    return status;
}
