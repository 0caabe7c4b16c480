/*
 * desc.h — the model description behind strata_arch: built from config.json, then laid
 * out as tensor names once the checkpoint's expert storage is known.
 *
 * Two steps because one config can be stored two ways: experts as separate 2-D tensors
 * (HF checkpoints on the hub) or stacked (n_experts, out, in) tensors (transformers v5),
 * and Mixtral's MoE block may be named block_sparse_moe or mlp. model.c probes the
 * checkpoint and calls desc_layout() with what it found; synth.c chooses.
 */
#ifndef STRATA_MODEL_DESC_H
#define STRATA_MODEL_DESC_H

#include "io/json.h"
#include "strata.h"

typedef struct string_pool {
    char **items;
    size_t count, capacity;
} string_pool;

typedef struct model_desc {
    strata_arch arch;            /* the public view; pointers into the fields below */
    strata_layer *layers;        /* (n_layers) */
    strata_linear *linears;      /* every layer's linears, layer after layer */
    size_t n_linears;
    bool *moe_layer;             /* (n_layers) true where the MLP is a routed MoE block */
    string_pool pool;            /* owns every string the description points to */
} model_desc;

/* Parses config.json (already loaded as JSON) into d->arch and d->moe_layer; the names
 * are laid out later. path names the file in messages. */
strata_status desc_from_config(const sjson *config, const char *path, model_desc *d);

/* Lays out tensor names. moe_block: module name of the MoE block ("block_sparse_moe" or
 * "mlp"); stacked: experts stored as (n_experts, out, in) tensors
 * experts.gate_up_proj (gate rows first, then up) and experts.down_proj. */
strata_status desc_layout(model_desc *d, const char *moe_block, bool stacked);

void desc_free(model_desc *d);

typedef enum expected_kind {
    EXPECTED_EMBEDDING,
    EXPECTED_NORM,
    EXPECTED_WEIGHT,     /* a 2-D linear weight */
    EXPECTED_STACKED,    /* a 3-D stacked expert weight */
    EXPECTED_BIAS,
    EXPECTED_LM_HEAD,
    EXPECTED_ROUTER_BIAS, /* e_score_correction_bias (n_experts), F32 in real checkpoints */
} expected_kind;

typedef struct expected_tensor {
    const char *name;
    expected_kind kind;
    int n_dims;
    int64_t shape[3];
    const strata_linear *linear; /* for weights and biases (first expert of a stack) */
    int layer;                   /* -1 for embeddings, final norm and lm_head */
} expected_tensor;

/* Every tensor the description expects, each once, in model order. Caller frees. */
strata_status desc_expected(const model_desc *d, expected_tensor **out, size_t *count);

/* printf into the pool; NULL on allocation failure. */
const char *pool_printf(string_pool *pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
