/*
 * memory_plan.c — the memory estimate of a layerwise run (see memory_plan.h).
 */
#include "pipeline/memory_plan.h"

#include "core/error.h"
#include "forward/decoder.h"
#include "calib/layer_calib.h"
#include "pipeline/act_store.h"

#define RUNTIME_SLACK ((uint64_t)96 << 20) /* oneDNN, the thread pool, the mapping's page tables */

static double mib(uint64_t bytes) { return (double)bytes / (1024.0 * 1024.0); }

/* Whether the linear reads the input of an earlier one of its fused group (k/v with q, MLA's
 * kv_a with q_a or q, up with gate): they share its Hessian and its input samples. */
static bool shares_input(const strata_linear *l)
{
    return l->role == STRATA_LINEAR_K || l->role == STRATA_LINEAR_V || l->role == STRATA_LINEAR_UP ||
           l->role == STRATA_LINEAR_KV_A;
}

/* GPTQ's Hessians of a layer (one per distinct input; with experts in groups, one group's
 * routed experts' at a time), plus its working copies for the widest linear: the Hessian's
 * copy and factor (or, while accumulating, one window's Gram product), and the original and
 * rounded weights. */
static uint64_t gptq_bytes(const strata_layer *layer, const memory_plan_request *req, int group)
{
    uint64_t hessians = 0, widest_in = 0, widest = 0;
    for (size_t l = 0; l < layer->n_linears; l++) {
        const strata_linear *lin = &layer->linears[l];
        uint64_t k = (uint64_t)lin->n_in, n = (uint64_t)lin->n_out * k;
        /* experts [0, group) stand for any group, [0, experts_held) for this rank's share */
        bool held = (group <= 0 || lin->expert < group) && (req->experts_held <= 0 || lin->expert < req->experts_held);
        if (!shares_input(lin) && held) hessians += k * k * 16; /* two bins of doubles (calib/hessian.c) */
        widest_in = k > widest_in ? k : widest_in;
        widest = n > widest ? n : widest;
    }
    return hessians + 2 * widest_in * widest_in * 4 + 2 * widest * 4;
}

/* llm-compressor's AWQ on a layer (awq_modifier_layer.c): the calibration inputs the mappings'
 * parents rerun on, kept in the GEMM's element size (q's; gate's, down's, and o's without
 * grouped-query attention; an MoE layer's router's, and one expert's down inputs at a time),
 * the parent's reference output (fp32, tokens x hidden), and while a mapping is searched its
 * trial weights (in the GEMM's precision: every expert's gate and up for an MoE block) and two
 * fp32 copies of its widest balance weight. */
static uint64_t awq_modifier_bytes(const strata_layer *layer, const memory_plan_request *req, uint64_t element,
                                   int64_t hidden)
{
    uint64_t tokens = (uint64_t)(req->n_samples * req->seq_len), kept = 0, attention = 0, mlp = 0, widest = 0;
    uint64_t expert_inputs = 0;
    const strata_linear *v = NULL, *o = NULL;
    for (size_t l = 0; l < layer->n_linears; l++) {
        const strata_linear *lin = &layer->linears[l];
        if (lin->shared_expert) continue;
        uint64_t n = (uint64_t)lin->n_out * (uint64_t)lin->n_in, inputs = tokens * (uint64_t)lin->n_in * element;
        widest = n * 4 > widest ? n * 4 : widest;
        if (lin->expert >= 0) {
            if (lin->role == STRATA_LINEAR_GATE || lin->role == STRATA_LINEAR_UP) mlp += n * element;
            if (lin->role == STRATA_LINEAR_DOWN && inputs > expert_inputs) expert_inputs = inputs;
            continue;
        }
        switch (lin->role) {
        case STRATA_LINEAR_Q: kept += inputs; attention += n * element; break;
        case STRATA_LINEAR_K: attention += n * element; break;
        case STRATA_LINEAR_V: v = lin; attention += n * element; break;
        case STRATA_LINEAR_O: o = lin; break;
        case STRATA_LINEAR_GATE: kept += inputs; mlp += n * element; break;
        case STRATA_LINEAR_UP: mlp += n * element; break;
        case STRATA_LINEAR_DOWN: kept += inputs; break;
        case STRATA_LINEAR_ROUTER: kept += inputs; break;
        default: break;
        }
    }
    if (v && o && v->n_out == o->n_in) kept += tokens * (uint64_t)o->n_in * element;
    return kept + expert_inputs + tokens * (uint64_t)hidden * 4 + (attention > mlp ? attention : mlp) + 2 * widest;
}

/* What layer `layer` holds with its routed experts materialized `group` at a time (0: all):
 * converted weights, fp32 working copies of the widest linear, every quantized linear's
 * quantized weight until export (a grouped layer recomputes its experts' instead, or for
 * GPTQ reads them back from disk, calib/weight_spill.h), GPTQ's Hessians. */
static uint64_t layer_held_bytes(const strata_layer *layer, uint64_t element, int64_t hidden,
                                 const memory_plan_request *req, int group, uint64_t *expert_bytes)
{
    uint64_t weights = 0, widest = 0, quantized = 0, one_expert = 0;
    /* A quantized weight: its codes, and at most one byte of scales per 8 of them. */
    uint64_t code_bits = req->weight_bits > 0 ? (uint64_t)req->weight_bits + 1 : 16;
    for (size_t l = 0; l < layer->n_linears; l++) {
        const strata_linear *lin = &layer->linears[l];
        uint64_t n = (uint64_t)lin->n_out * (uint64_t)lin->n_in;
        widest = n > widest ? n : widest;
        /* One more expert in a group: its weights, and with GPTQ its Hessians. */
        if (lin->expert == 0) one_expert += n * element;
        if (lin->expert == 0 && req->gptq && !shares_input(lin)) one_expert += (uint64_t)lin->n_in * (uint64_t)lin->n_in * 16;
        bool grouped = group > 0 && lin->expert >= 0, mine = req->experts_held <= 0 || lin->expert < req->experts_held;
        if ((!grouped || lin->expert < group) && mine) weights += n * element; /* one group, this rank's share */
        if (!grouped || lin->expert == 0) quantized += (n * code_bits + 7) / 8;
    }
    if (expert_bytes) *expert_bytes = one_expert;
    /* The decisions' two fp32 working copies (the weight and its quantized values; the error
     * products read them in place), or the quantized pass's one of a weight it fake-quantizes. */
    return weights + 2 * widest * 4 + (uint64_t)hidden * 16 + quantized + (req->gptq ? gptq_bytes(layer, req, group) : 0) +
           (req->awq_modifier ? awq_modifier_bytes(layer, req, element, hidden) : 0);
}

/* The observers' input samples of a layer: CALIB_SAMPLE_ROWS rows per distinct input. */
static uint64_t layer_sample_bytes(const strata_layer *layer)
{
    uint64_t samples = 0;
    for (size_t l = 0; l < layer->n_linears; l++)
        if (!shares_input(&layer->linears[l])) samples += (uint64_t)CALIB_SAMPLE_ROWS * 4 * (uint64_t)layer->linears[l].n_in;
    return samples;
}

/* out->layer_bytes, sample_bytes, expert_bytes and fixed_bytes (the largest layer's) with MoE
 * layers grouped `group` experts at a time (0: whole), whose token-major pass holds
 * `token_major` bytes more; chunk bytes must be set. */
static void fixed_bytes_with(const memory_plan_request *req, uint64_t element, int group, uint64_t token_major,
                             memory_plan *out)
{
    const strata_arch *arch = req->arch;
    out->fixed_bytes = 0;
    for (int i = 0; i < arch->n_layers; i++) {
        uint64_t expert = 0;
        uint64_t held = layer_held_bytes(&arch->layers[i], element, arch->hidden_size, req,
                                         arch->layers[i].is_moe ? group : 0, &expert);
        uint64_t samples = req->no_samples ? 0 : layer_sample_bytes(&arch->layers[i]);
        uint64_t fixed = held + samples + out->chunk_bytes + RUNTIME_SLACK +
                         (group > 0 && arch->layers[i].is_moe ? token_major : 0);
        if (fixed > out->fixed_bytes) {
            out->fixed_bytes = fixed;
            out->layer_bytes = held;
            out->sample_bytes = samples;
        }
        if (expert > out->expert_bytes) out->expert_bytes = expert;
    }
}

strata_status memory_plan_make(const memory_plan_request *req, memory_plan *out)
{
    const strata_arch *arch = req->arch;
    int64_t n_samples = req->n_samples, seq_len = req->seq_len;
    uint64_t max_memory = req->max_memory;
    int experts_per_group = req->experts_per_group;
    gemm_precision precision = req->precision;
    *out = (memory_plan){.max_memory = max_memory, .chunk_budget = FORWARD_CHUNK_BUDGET, .gptq = req->gptq};
    uint64_t element = precision == GEMM_BF16 ? 2 : 4;
    forward_config config = {.precision = precision, .memory_budget = FORWARD_CHUNK_BUDGET};
    out->chunk_sequences = decoder_chunk_sequences(arch, &config, seq_len);
    if (out->chunk_sequences > n_samples) out->chunk_sequences = n_samples;
    uint64_t tokens = (uint64_t)(out->chunk_sequences * seq_len);
    out->chunk_bytes = tokens * (decoder_token_bytes(arch, &config) + 2 * (uint64_t)arch->hidden_size * 4);
    out->store_buffer_bytes = act_store_buffer_bytes(n_samples * seq_len, arch->hidden_size);
    int n_experts = arch->moe.n_experts;
    /* A grouped layer's pass holds a window of tokens' residual, MLP input and output, and
     * routing: every token without a limit, else whole chunks within a quarter of it (at
     * least one chunk); each window reads the experts once. */
    uint64_t per_token = 3 * (uint64_t)arch->hidden_size * 4 + (uint64_t)arch->moe.top_k * 8;
    out->window_sequences = n_samples;
    if (max_memory > 0) {
        uint64_t fit = max_memory / 4 / (per_token * (uint64_t)seq_len);
        int64_t chunks = (int64_t)(fit / (uint64_t)out->chunk_sequences);
        int64_t window = (chunks > 0 ? chunks : 1) * out->chunk_sequences;
        if (window < out->window_sequences) out->window_sequences = window;
    }
    uint64_t token_major = (uint64_t)(out->window_sequences * seq_len) * per_token;
    bool moe = false;
    for (int i = 0; i < arch->n_layers; i++) moe |= arch->layers[i].is_moe;
    /* The grouping: asked for, or when whole layers do not fit the largest group that does
     * (from one expert per group, each more adds expert_bytes). */
    int group = moe && experts_per_group > 0 && experts_per_group < n_experts ? experts_per_group : 0;
    fixed_bytes_with(req, element, group, token_major, out);
    if (moe && experts_per_group <= 0 && max_memory > 0 && out->fixed_bytes > max_memory) {
        fixed_bytes_with(req, element, 1, token_major, out);
        uint64_t more = max_memory > out->fixed_bytes && out->expert_bytes > 0
                            ? (max_memory - out->fixed_bytes) / out->expert_bytes : 0;
        group = (int)(1 + (more < (uint64_t)n_experts ? more : (uint64_t)n_experts));
        if (group >= n_experts) group = n_experts - 1;
        fixed_bytes_with(req, element, group, token_major, out);
    }
    out->experts_per_group = group;
    if (max_memory == 0) return STRATA_OK;
    if (out->fixed_bytes > max_memory)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                           "--max-memory %.0f MiB is below what one layer needs: %.0f MiB (layer %.0f MiB%s, samples "
                           "%.0f MiB, scratch of %lld sequences %.0f MiB, runtime %.0f MiB); the activation store "
                           "(%.0f MiB) can spill to disk, the layer cannot",
                           mib(max_memory), mib(out->fixed_bytes), mib(out->layer_bytes),
                           group > 0 ? (group == 1 ? " with one routed expert at a time" : " with its experts in groups")
                                     : "",
                           mib(out->sample_bytes), (long long)out->chunk_sequences, mib(out->chunk_bytes),
                           mib(RUNTIME_SLACK), mib(2 * out->store_buffer_bytes));
    out->spill = out->fixed_bytes + 2 * out->store_buffer_bytes > max_memory;
    return STRATA_OK;
}

uint64_t memory_plan_peak_bytes(const memory_plan *p)
{
    return p->fixed_bytes + (p->spill ? 0 : 2 * p->store_buffer_bytes);
}

void memory_plan_log(const memory_plan *p, const char *spill_dir)
{
    strata_log(STRATA_LOG_INFO,
               "memory: activation store %.1f MiB (2 x %.1f MiB bf16) %s%s; layer %.1f MiB, samples %.1f MiB, "
               "scratch %.1f MiB (%lld sequences per chunk); expected peak %.1f GiB%s",
               mib(2 * p->store_buffer_bytes), mib(p->store_buffer_bytes), p->spill ? "spilled to " : "in RAM",
               p->spill ? spill_dir : "", mib(p->layer_bytes), mib(p->sample_bytes), mib(p->chunk_bytes),
               (long long)p->chunk_sequences, mib(memory_plan_peak_bytes(p)) / 1024,
               p->max_memory ? "" : "; no --max-memory limit");
    if (p->experts_per_group > 0)
        strata_log(STRATA_LOG_INFO,
                   "memory: routed experts materialized %d at a time (%.1f MiB each), their quantized weights %s",
                   p->experts_per_group, mib(p->expert_bytes),
                   p->gptq ? "kept on disk until export, their Hessians a group at a time"
                           : "recomputed where needed");
}
