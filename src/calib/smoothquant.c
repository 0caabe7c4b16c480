/*
 * smoothquant.c — SmoothQuant's scales for one layer (--smooth A; docs/SMOOTHQUANT.md), as
 * llm-compressor's SmoothQuantModifier computes and folds them.
 *
 * For each norm and the linears reading its output (input_layernorm -> q/k/v;
 * post_attention_layernorm -> gate/up; attention only in a mixture-of-experts model, whose
 * routers read the MLPs' norms), over the calibration pass:
 *
 *   act[c] = max x_c - min x_c over every token (the norm's output: its range)
 *   w[c]   = 2 max over the linears and their rows of |W[r, c]|
 *   s[c]   = max(act^A / w^(1-A), 1e-5)   (in the weights' dtype, as torch's bf16 ops round)
 *
 * then the norm's weight is divided by s and each linear's columns multiplied by it, so the
 * product is unchanged and the input's outlier channels move into the weights, where the
 * quantizer has a scale per channel, block or tensor to absorb them. The linears' input
 * amax become max over channels of |x| / s. A group with an unquantized member (an exclude
 * pattern) or one no token reached is left as it is (llm-compressor would scale an ignored
 * member's weight too; strata copies unquantized weights unchanged).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "calib/layer_calib.h"
#include "calib/values_dtype.h"
#include "core/error.h"
#include "forward/layer_weights.h"
#include "kernels/minifloat.h"

enum { MAX_MEMBERS = 4 };
#define SMOOTHQUANT_MIN_SCALE 1e-5f /* llm-compressor's MINIMUM_SMOOTHING_SCALE */

/* The linears of the layer with these roles (not routed experts), at most MAX_MEMBERS;
 * 0 when one of them is not quantized or has no channel ranges. */
static int group_members(layer_calib *lc, const strata_linear_role *roles, int n_roles, linear_calib **out)
{
    int n = 0;
    for (size_t i = 0; i < lc->layer->n_linears; i++) {
        linear_calib *c = &lc->linears[i];
        bool member = false;
        for (int r = 0; r < n_roles; r++) member |= c->desc->role == roles[r];
        if (!member || c->desc->expert >= 0) continue;
        if (!c->quantized || !c->channel_range || n == MAX_MEMBERS) {
            /* An excluded linear is the user's choice; the others are worth a warning */
            strata_log(c->quantized ? STRATA_LOG_WARN : STRATA_LOG_INFO, "smoothquant: %s is %s; its norm is not smoothed",
                       c->desc->name, !c->quantized ? "not quantized" : n == MAX_MEMBERS ? "one reader too many"
                                                                                    : "reached by no calibration token");
            return 0;
        }
        out[n++] = c;
    }
    return n;
}

/* x^e as torch's bf16 pow gives it for the exponent: the exponent rounded to bf16 first (0.8
 * is 0.80078125), 0.5 a square root, 1 a copy; each result rounded to the dtype. */
static float power(float x, double e, strata_dtype dtype)
{
    if (e == 1) return x;
    if (e == 0.5) return in_dtype(sqrtf(x), dtype);
    float exponent = in_dtype((float)e, dtype);
    return in_dtype((float)pow((double)x, (double)exponent), dtype);
}

/* s for one group (llm-compressor's _calculate_smoothing_scales), in the weights' dtype:
 * act = max - min of the input channel, w = 2 max |W| over the members' rows,
 * s = max(act^A / w^(1-A) (act where w is 0), 1e-5). w is scratch for the widest member. */
static strata_status group_scales(linear_calib **members, int n, const strata_model *model, double strength,
                                  float *w, float *s)
{
    int64_t K = members[0]->desc->n_in;
    strata_dtype dtype = linear_values_dtype(model, members[0]->desc);
    float *wmax = calloc((size_t)K, sizeof *wmax);
    if (!wmax) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for SmoothQuant's scales");
    strata_status status = STRATA_OK;
    for (int m = 0; status == STRATA_OK && m < n; m++) {
        const strata_linear *l = members[m]->desc;
        status = linear_weight_f32(model, l, w);
        for (int64_t r = 0; status == STRATA_OK && r < l->n_out; r++)
            for (int64_t k = 0; k < K; k++) {
                float v = fabsf(w[r * K + k]);
                if (v > wmax[k]) wmax[k] = v;
            }
        linear_weight_release_pages(model, l);
    }
    const float *least = members[0]->channel_range, *largest = members[0]->channel_range + K;
    for (int64_t k = 0; status == STRATA_OK && k < K; k++) {
        float act = in_dtype(in_dtype(largest[k], dtype) - in_dtype(least[k], dtype), dtype);
        float weight = in_dtype(2.0f * wmax[k], dtype);
        float v = weight > 0 ? in_dtype(power(act, strength, dtype) / power(weight, 1.0 - strength, dtype), dtype) : act;
        s[k] = v < SMOOTHQUANT_MIN_SCALE ? SMOOTHQUANT_MIN_SCALE : v;
    }
    free(wmax);
    return status;
}

/* The group's decisions: each member's columns times s, its input divided by s (the norm's
 * weight divided by s at export), its input amax recomputed from its channel ranges. */
static strata_status apply_group(linear_calib **members, int n, const float *s, bool inputs_bf16)
{
    int64_t K = members[0]->desc->n_in;
    for (int m = 0; m < n; m++) {
        linear_calib *c = members[m];
        input_smoothing *sm = &c->smooth;
        strata_status status = linear_calib_alloc_smoothing(c);
        if (status != STRATA_OK) return status;
        float amax = 0;
        for (int64_t k = 0; k < K; k++) {
            sm->columns[k] = s[k];
            sm->own[k] = sm->input[k] = 1.0f / s[k];
            float v = linear_calib_channel_amax(c, k) / s[k];
            amax = v > amax ? v : amax;
        }
        sm->in_norm = sm->norm_divided = true;
        c->input_amax = inputs_bf16 ? bf16_round(amax) : amax;
    }
    return STRATA_OK;
}

/* llm-compressor's mappings for mixture-of-experts models (Mixtral, Qwen-MoE) smooth attention
 * only, in every layer. */
static bool has_experts(const strata_model *model)
{
    const strata_arch *a = strata_model_arch(model);
    for (int i = 0; i < a->n_layers; i++)
        if (a->layers[i].is_moe) return true;
    return false;
}

strata_status smoothquant_decide_layer(layer_calib *lc, const strata_model *model, double strength)
{
    static const strata_linear_role attention[] = {STRATA_LINEAR_Q, STRATA_LINEAR_K, STRATA_LINEAR_V},
                                    mlp[] = {STRATA_LINEAR_GATE, STRATA_LINEAR_UP};
    int64_t widest = 1;
    for (size_t i = 0; i < lc->layer->n_linears; i++)
        widest = lc->layer->linears[i].n_in > widest ? lc->layer->linears[i].n_in : widest;
    float *w = layer_calib_weight_scratch(lc);
    float *s = malloc((size_t)widest * sizeof *s);
    strata_status status = w && s ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int g = 0; status == STRATA_OK && g < (has_experts(model) ? 1 : 2); g++) {
        linear_calib *members[MAX_MEMBERS];
        int n = g == 0 ? group_members(lc, attention, 3, members) : group_members(lc, mlp, 2, members);
        if (n == 0) continue;
        status = group_scales(members, n, model, strength, w, s);
        if (status == STRATA_OK) status = apply_group(members, n, s, lc->inputs_bf16);
    }
    free(w);
    free(s);
    if (status != STRATA_OK) return strata_fail_context(status, "SmoothQuant on layer %d", lc->index);
    return STRATA_OK;
}
