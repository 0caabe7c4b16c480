/*
 * layout.c — tensor names of a described model, and the list of tensors a checkpoint of
 * it must hold.
 *
 * Naming follows transformers:
 *   model.embed_tokens.weight (vocab, hidden)   model.norm.weight (hidden)   lm_head.weight
 *   model.layers.N.{input_layernorm,post_attention_layernorm}.weight (hidden)
 *   model.layers.N.self_attn.{q,k,v,o}_proj.weight  [+ .bias]   [+ q_norm/k_norm (head_dim)]
 *   MLA:    model.layers.N.self_attn.q_a_proj (q_lora, hidden) [+ bias], q_a_layernorm (q_lora),
 *           q_b_proj (heads * qk_head, q_lora)  -- or q_proj (heads * qk_head, hidden) --
 *           kv_a_proj_with_mqa (kv_lora + rope, hidden) [+ bias], kv_a_layernorm (kv_lora),
 *           kv_b_proj (heads * (nope + v), kv_lora), o_proj (hidden, heads * v) [+ bias]
 *   dense:  model.layers.N.mlp.{gate,up,down}_proj.weight
 *   MoE:    model.layers.N.<block>.gate.weight (n_experts, hidden)        router
 *           model.layers.N.<block>.experts.E.<gate|up|down>.weight        per expert, or
 *           model.layers.N.<block>.experts.gate_up_proj (E, 2*width, hidden)  stacked,
 *           model.layers.N.<block>.experts.down_proj    (E, hidden, width)
 *           model.layers.N.mlp.shared_expert.{gate,up,down}_proj.weight   qwen2_moe
 *           model.layers.N.mlp.shared_expert_gate.weight (1, hidden)     qwen2_moe
 *           model.layers.N.mlp.shared_experts.{gate,up,down}_proj.weight  glm4_moe (n_shared wide)
 *           model.layers.N.mlp.gate.e_score_correction_bias (n_experts)   glm4_moe, F32
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/desc.h"
#include "model/family.h"

const char *pool_printf(string_pool *pool, const char *fmt, ...)
{
    if (pool->count == pool->capacity) {
        size_t capacity = pool->capacity ? pool->capacity * 2 : 256;
        char **items = realloc(pool->items, capacity * sizeof *items);
        if (!items) return NULL;
        pool->items = items;
        pool->capacity = capacity;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return NULL;
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    pool->items[pool->count++] = s;
    return s;
}

void desc_free(model_desc *d)
{
    if (!d) return;
    for (size_t i = 0; i < d->pool.count; i++) free(d->pool.items[i]);
    free(d->pool.items);
    free(d->layers);
    free(d->linears);
    free(d->moe_layer);
    *d = (model_desc){0};
}

typedef struct layout_builder {
    model_desc *d;
    size_t n;        /* linears written so far */
    bool failed;
} layout_builder;

static strata_linear *add_linear(layout_builder *b, strata_linear_role role, const char *name, int64_t n_out,
                                 int64_t n_in, bool bias)
{
    strata_linear *l = &b->d->linears[b->n++];
    *l = (strata_linear){.name = name, .role = role, .expert = -1, .n_out = n_out, .n_in = n_in,
                         .stack_index = -1, .quantizable = true};
    if (!name) { b->failed = true; return l; }
    l->weight = pool_printf(&b->d->pool, "%s.weight", name);
    if (bias) l->bias = pool_printf(&b->d->pool, "%s.bias", name);
    if (!l->weight || (bias && !l->bias)) b->failed = true;
    return l;
}

static void add_mlp(layout_builder *b, const char *prefix, int64_t width, bool bias, bool shared)
{
    model_desc *d = b->d;
    int64_t hidden = d->arch.hidden_size;
    static const char *const NAMES[3] = {"gate_proj", "up_proj", "down_proj"};
    static const strata_linear_role ROLES[3] = {STRATA_LINEAR_GATE, STRATA_LINEAR_UP, STRATA_LINEAR_DOWN};
    for (int k = 0; k < 3; k++) {
        bool down = ROLES[k] == STRATA_LINEAR_DOWN;
        strata_linear *l = add_linear(b, ROLES[k], pool_printf(&d->pool, "%s.%s", prefix, NAMES[k]),
                                      down ? hidden : width, down ? width : hidden, bias);
        l->shared_expert = shared;
    }
}

static void add_experts(layout_builder *b, const char *block, bool stacked)
{
    model_desc *d = b->d;
    const family_traits *f = &FAMILIES[d->arch.family];
    int64_t hidden = d->arch.hidden_size, width = d->arch.moe.intermediate_size;
    const char *names[3] = {f->expert_gate, f->expert_up, f->expert_down};
    static const strata_linear_role ROLES[3] = {STRATA_LINEAR_GATE, STRATA_LINEAR_UP, STRATA_LINEAR_DOWN};
    const char *gate_up = stacked ? pool_printf(&d->pool, "%s.experts.gate_up_proj", block) : NULL;
    const char *down_stack = stacked ? pool_printf(&d->pool, "%s.experts.down_proj", block) : NULL;
    if (stacked && (!gate_up || !down_stack)) b->failed = true;
    for (int e = 0; e < d->arch.moe.n_experts; e++) {
        for (int k = 0; k < 3; k++) {
            bool down = ROLES[k] == STRATA_LINEAR_DOWN;
            /* Stacked experts have no module per expert; the logical name is the same. */
            const char *name = pool_printf(&d->pool, "%s.experts.%d.%s", block, e, names[k]);
            strata_linear *l = add_linear(b, ROLES[k], name, down ? hidden : width, down ? width : hidden, false);
            l->expert = e;
            if (stacked) {
                l->weight = down ? down_stack : gate_up;
                l->stack_index = e;
                l->row_offset = ROLES[k] == STRATA_LINEAR_UP ? width : 0;
            }
        }
    }
}

/* Multi-head latent attention's linears and norms (deepseek_v3). */
static void add_mla(layout_builder *b, strata_layer *layer, const char *p)
{
    model_desc *d = b->d;
    const strata_arch *a = &d->arch;
    int64_t hidden = a->hidden_size, heads = a->n_heads;
    if (a->mla.q_lora_rank > 0) {
        add_linear(b, STRATA_LINEAR_Q_A, pool_printf(&d->pool, "%s.self_attn.q_a_proj", p), a->mla.q_lora_rank, hidden,
                   a->qkv_bias);
        layer->q_a_norm = pool_printf(&d->pool, "%s.self_attn.q_a_layernorm.weight", p);
        if (!layer->q_a_norm) b->failed = true;
        add_linear(b, STRATA_LINEAR_Q_B, pool_printf(&d->pool, "%s.self_attn.q_b_proj", p), heads * a->head_dim,
                   a->mla.q_lora_rank, false);
    } else {
        add_linear(b, STRATA_LINEAR_Q, pool_printf(&d->pool, "%s.self_attn.q_proj", p), heads * a->head_dim, hidden,
                   false);
    }
    add_linear(b, STRATA_LINEAR_KV_A, pool_printf(&d->pool, "%s.self_attn.kv_a_proj_with_mqa", p),
               a->mla.kv_lora_rank + a->mla.qk_rope_head_dim, hidden, a->qkv_bias);
    layer->kv_a_norm = pool_printf(&d->pool, "%s.self_attn.kv_a_layernorm.weight", p);
    if (!layer->kv_a_norm) b->failed = true;
    add_linear(b, STRATA_LINEAR_KV_B, pool_printf(&d->pool, "%s.self_attn.kv_b_proj", p),
               heads * (a->mla.qk_nope_head_dim + a->mla.v_head_dim), a->mla.kv_lora_rank, false);
    add_linear(b, STRATA_LINEAR_O, pool_printf(&d->pool, "%s.self_attn.o_proj", p), hidden, heads * a->mla.v_head_dim,
               a->o_bias);
}

strata_status desc_layout(model_desc *d, const char *moe_block, bool stacked)
{
    strata_arch *a = &d->arch;
    const family_traits *f = &FAMILIES[a->family];
    int64_t hidden = a->hidden_size, q_rows = a->n_heads * a->head_dim, kv_rows = a->n_kv_heads * a->head_dim;

    /* Count linears first so the array never moves while names point into it. */
    size_t n_linears = 0;
    for (int i = 0; i < a->n_layers; i++) {
        n_linears += 5; /* four for attention, five for MLA with q_lora_rank */
        if (!d->moe_layer[i]) n_linears += 3;
        else n_linears += 1 + 3 * (size_t)a->moe.n_experts + (a->moe.shared_intermediate_size > 0 ? 4 : 0);
    }
    free(d->layers);
    free(d->linears);
    d->layers = calloc((size_t)a->n_layers, sizeof *d->layers);
    d->linears = calloc(n_linears, sizeof *d->linears);
    if (!d->layers || !d->linears) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory describing %d layers", a->n_layers);
    a->moe.stacked = stacked && f->moe;

    layout_builder b = {.d = d};
    for (int i = 0; i < a->n_layers; i++) {
        strata_layer *layer = &d->layers[i];
        size_t first = b.n;
        const char *p = pool_printf(&d->pool, "model.layers.%d", i);
        if (!p) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        layer->index = i;
        layer->is_moe = d->moe_layer[i];
        layer->input_norm = pool_printf(&d->pool, "%s.input_layernorm.weight", p);
        layer->post_attention_norm = pool_printf(&d->pool, "%s.post_attention_layernorm.weight", p);
        if (a->qk_norm) {
            layer->q_norm = pool_printf(&d->pool, "%s.self_attn.q_norm.weight", p);
            layer->k_norm = pool_printf(&d->pool, "%s.self_attn.k_norm.weight", p);
        }
        if (a->mla.kv_lora_rank > 0) {
            add_mla(&b, layer, p);
        } else {
            add_linear(&b, STRATA_LINEAR_Q, pool_printf(&d->pool, "%s.self_attn.q_proj", p), q_rows, hidden, a->qkv_bias);
            add_linear(&b, STRATA_LINEAR_K, pool_printf(&d->pool, "%s.self_attn.k_proj", p), kv_rows, hidden, a->qkv_bias);
            add_linear(&b, STRATA_LINEAR_V, pool_printf(&d->pool, "%s.self_attn.v_proj", p), kv_rows, hidden, a->qkv_bias);
            add_linear(&b, STRATA_LINEAR_O, pool_printf(&d->pool, "%s.self_attn.o_proj", p), hidden, q_rows, a->o_bias);
        }
        if (!layer->is_moe) {
            add_mlp(&b, pool_printf(&d->pool, "%s.mlp", p), a->intermediate_size, a->mlp_bias, false);
        } else {
            const char *block = pool_printf(&d->pool, "%s.%s", p, moe_block);
            if (!block) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
            strata_linear *router = add_linear(&b, STRATA_LINEAR_ROUTER, pool_printf(&d->pool, "%s.gate", block),
                                               a->moe.n_experts, hidden, false);
            router->quantizable = false;
            if (a->routing.sigmoid) {
                layer->router_bias = pool_printf(&d->pool, "%s.gate.e_score_correction_bias", block);
                if (!layer->router_bias) b.failed = true;
            }
            add_experts(&b, block, stacked);
            if (a->moe.shared_intermediate_size > 0 && f->shared_experts) {
                add_mlp(&b, pool_printf(&d->pool, "%s.mlp.shared_experts", p), a->moe.shared_intermediate_size, false,
                        true);
            } else if (a->moe.shared_intermediate_size > 0) {
                add_mlp(&b, pool_printf(&d->pool, "%s.mlp.shared_expert", p), a->moe.shared_intermediate_size, false,
                        true);
                strata_linear *gate = add_linear(&b, STRATA_LINEAR_SHARED_GATE,
                                                 pool_printf(&d->pool, "%s.mlp.shared_expert_gate", p), 1, hidden,
                                                 false);
                gate->quantizable = false;
            }
        }
        layer->linears = &d->linears[first];
        layer->n_linears = b.n - first;
        if (!layer->input_norm || !layer->post_attention_norm || (a->qk_norm && (!layer->q_norm || !layer->k_norm)))
            b.failed = true;
    }
    d->n_linears = b.n;
    a->layers = d->layers;
    a->embed_tokens = "model.embed_tokens.weight";
    a->final_norm = "model.norm.weight";
    a->lm_head = a->tie_word_embeddings ? a->embed_tokens : "lm_head.weight";
    if (b.failed) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory naming tensors");
    return STRATA_OK;
}

typedef struct expected_list {
    expected_tensor *items;
    size_t count, capacity;
    bool failed;
} expected_list;

static expected_tensor *expect(expected_list *list, const char *name, expected_kind kind, int layer, int n_dims,
                               int64_t d0, int64_t d1, int64_t d2)
{
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 256;
        expected_tensor *items = realloc(list->items, capacity * sizeof *items);
        if (!items) { list->failed = true; return NULL; }
        list->items = items;
        list->capacity = capacity;
    }
    expected_tensor *t = &list->items[list->count++];
    *t = (expected_tensor){.name = name, .kind = kind, .n_dims = n_dims, .shape = {d0, d1, d2}, .layer = layer};
    return t;
}

strata_status desc_expected(const model_desc *d, expected_tensor **out, size_t *count)
{
    const strata_arch *a = &d->arch;
    expected_list list = {0};
    expect(&list, a->embed_tokens, EXPECTED_EMBEDDING, -1, 2, a->vocab_size, a->hidden_size, 0);
    for (int i = 0; i < a->n_layers; i++) {
        const strata_layer *layer = &a->layers[i];
        expect(&list, layer->input_norm, EXPECTED_NORM, i, 1, a->hidden_size, 0, 0);
        if (layer->q_norm) {
            expect(&list, layer->q_norm, EXPECTED_NORM, i, 1, a->head_dim, 0, 0);
            expect(&list, layer->k_norm, EXPECTED_NORM, i, 1, a->head_dim, 0, 0);
        }
        if (layer->q_a_norm) expect(&list, layer->q_a_norm, EXPECTED_NORM, i, 1, a->mla.q_lora_rank, 0, 0);
        if (layer->kv_a_norm) expect(&list, layer->kv_a_norm, EXPECTED_NORM, i, 1, a->mla.kv_lora_rank, 0, 0);
        expect(&list, layer->post_attention_norm, EXPECTED_NORM, i, 1, a->hidden_size, 0, 0);
        for (size_t k = 0; k < layer->n_linears; k++) {
            const strata_linear *l = &layer->linears[k];
            expected_tensor *t = NULL;
            if (l->stack_index < 0) {
                t = expect(&list, l->weight, EXPECTED_WEIGHT, i, 2, l->n_out, l->n_in, 0);
            } else if (l->stack_index == 0 && l->row_offset == 0) {
                /* The stack holds gate and up rows together for the gate_up tensor. */
                int64_t rows = l->role == STRATA_LINEAR_DOWN ? l->n_out : 2 * l->n_out;
                t = expect(&list, l->weight, EXPECTED_STACKED, i, 3, a->moe.n_experts, rows, l->n_in);
            }
            if (t) t->linear = l;
            if (l->bias && (t = expect(&list, l->bias, EXPECTED_BIAS, i, 1, l->n_out, 0, 0))) t->linear = l;
            if (l->role == STRATA_LINEAR_ROUTER && layer->router_bias)
                expect(&list, layer->router_bias, EXPECTED_ROUTER_BIAS, i, 1, a->moe.n_experts, 0, 0);
        }
    }
    expect(&list, a->final_norm, EXPECTED_NORM, -1, 1, a->hidden_size, 0, 0);
    if (!a->tie_word_embeddings) expect(&list, a->lm_head, EXPECTED_LM_HEAD, -1, 2, a->vocab_size, a->hidden_size, 0);
    if (list.failed) {
        free(list.items);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory listing tensors");
    }
    *out = list.items;
    *count = list.count;
    return STRATA_OK;
}
