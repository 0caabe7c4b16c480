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

/* GPTQ's Hessians of a layer (one per distinct input: q/k/v, MLA's q_a/kv_a and gate/up
 * share theirs),
 * plus its working copies for the widest linear: the Hessian's copy and factor, and the
 * original and rounded weights. */
static uint64_t gptq_bytes(const strata_layer *layer)
{
    uint64_t hessians = 0, widest_in = 0, widest = 0;
    for (size_t l = 0; l < layer->n_linears; l++) {
        const strata_linear *lin = &layer->linears[l];
        uint64_t k = (uint64_t)lin->n_in, n = (uint64_t)lin->n_out * k;
        bool shares = lin->role == STRATA_LINEAR_K || lin->role == STRATA_LINEAR_V || lin->role == STRATA_LINEAR_UP ||
                      lin->role == STRATA_LINEAR_KV_A;
        if (!shares) hessians += k * k * 4;
        widest_in = k > widest_in ? k : widest_in;
        widest = n > widest ? n : widest;
    }
    return hessians + 2 * widest_in * widest_in * 4 + 2 * widest * 4;
}

strata_status memory_plan_make(const strata_arch *arch, gemm_precision precision, int64_t n_samples,
                                int64_t seq_len, uint64_t max_memory, bool gptq, memory_plan *out)
{
    *out = (memory_plan){.max_memory = max_memory, .chunk_budget = FORWARD_CHUNK_BUDGET};
    uint64_t element = precision == GEMM_BF16 ? 2 : 4;
    for (int i = 0; i < arch->n_layers; i++) {
        const strata_layer *layer = &arch->layers[i];
        uint64_t weights = 0, widest = 0, samples = 0, quantized = 0;
        for (size_t l = 0; l < layer->n_linears; l++) {
            const strata_linear *lin = &layer->linears[l];
            uint64_t n = (uint64_t)lin->n_out * (uint64_t)lin->n_in;
            weights += n * element;
            quantized += n * 2;
            widest = n > widest ? n : widest;
            samples += (uint64_t)CALIB_SAMPLE_ROWS * 4 * (uint64_t)lin->n_in;
        }
        /* fp32 weight + quantized copy + two fp32 GEMM copies for the output error, and every
         * linear's quantized weight (codes and scales, at most its bf16 size) until export. */
        uint64_t held = weights + 4 * widest * 4 + (uint64_t)arch->hidden_size * 16 + quantized +
                        (gptq ? gptq_bytes(layer) : 0);
        if (held > out->layer_bytes) out->layer_bytes = held;
        if (samples > out->sample_bytes) out->sample_bytes = samples;
    }
    forward_config config = {.precision = precision, .memory_budget = FORWARD_CHUNK_BUDGET};
    out->chunk_sequences = decoder_chunk_sequences(arch, &config, seq_len);
    if (out->chunk_sequences > n_samples) out->chunk_sequences = n_samples;
    uint64_t tokens = (uint64_t)(out->chunk_sequences * seq_len);
    out->chunk_bytes = tokens * (decoder_token_bytes(arch, &config) + 2 * (uint64_t)arch->hidden_size * 4);
    out->store_buffer_bytes = act_store_buffer_bytes(n_samples * seq_len, arch->hidden_size);
    out->fixed_bytes = out->layer_bytes + out->sample_bytes + out->chunk_bytes + RUNTIME_SLACK;
    if (max_memory == 0) return STRATA_OK;
    if (out->fixed_bytes > max_memory)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                           "--max-memory %.0f MiB is below what one layer needs: %.0f MiB (layer %.0f MiB, samples "
                           "%.0f MiB, scratch of %lld sequences %.0f MiB, runtime %.0f MiB); the activation store "
                           "(%.0f MiB) can spill to disk, the layer cannot",
                           mib(max_memory), mib(out->fixed_bytes), mib(out->layer_bytes), mib(out->sample_bytes),
                           (long long)out->chunk_sequences, mib(out->chunk_bytes), mib(RUNTIME_SLACK),
                           mib(2 * out->store_buffer_bytes));
    out->spill = out->fixed_bytes + 2 * out->store_buffer_bytes > max_memory;
    return STRATA_OK;
}

void memory_plan_log(const memory_plan *p, const char *spill_dir)
{
    strata_log(STRATA_LOG_INFO,
               "memory: activation store %.1f MiB (2 x %.1f MiB bf16) %s%s; layer %.1f MiB, samples %.1f MiB, "
               "scratch %.1f MiB (%lld sequences per chunk)%s",
               mib(2 * p->store_buffer_bytes), mib(p->store_buffer_bytes), p->spill ? "spilled to " : "in RAM",
               p->spill ? spill_dir : "", mib(p->layer_bytes), mib(p->sample_bytes), mib(p->chunk_bytes),
               (long long)p->chunk_sequences, p->max_memory ? "" : "; no --max-memory limit");
}
