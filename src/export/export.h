/*
 * export.h — writing the quantized checkpoint layer by layer (REFERENCE.md, "Export:
 * ModelOpt HF checkpoint"; docs/QUANTIZE.md).
 *
 * The exporter appends each layer's tensors to the output's streaming shard writer as
 * soon as the layer is calibrated: norms and unquantized tensors copied byte for byte,
 * quantized linears as their ModelOpt tensors (weight codes, weight_scale,
 * weight_scale_2, input_scale; k_scale / v_scale for an FP8 KV cache) or, for the
 * fakequant format, as bf16 weights with quantize-dequantize folded in. The files around
 * the shards (config.json, hf_quant_config.json, quant_scales.safetensors, tokenizer
 * files) are written by export_finish.
 */
#ifndef STRATA_EXPORT_EXPORT_H
#define STRATA_EXPORT_EXPORT_H

#include "calib/layer_calib.h"
#include "quant/recipe.h"
#include "strata.h"

/* Output shards are cut past this many bytes by default: ModelOpt's max_shard_size "10GB". */
#define EXPORT_DEFAULT_SHARD_BYTES 10000000000ull

/* A tensor written with NaN or Inf in it (--allow-non-finite). */
typedef struct non_finite_note {
    char *tensor;
    uint64_t count;
    char first[96];                  /* "NaN at (3, 17)" */
} non_finite_note;

typedef struct exporter {
    const strata_model *model;
    const char *model_dir, *output_dir;
    const scheme_info *scheme;
    strata_export_format format;
    strata_convention convention;    /* the numerics the output holds (strata_export_convention) */
    bool kv_cache;
    quant_recipe recipe;             /* which linears are quantized, for exclude_modules */
    strata_safetensors_writer *writer;
    char last_tensor[512];           /* the last tensor export_layer added */
    bool allow_non_finite;           /* write tensors holding NaN/Inf (with a warning) instead of failing */
    non_finite_note *non_finite;     /* (n_non_finite) what was written anyway */
    size_t n_non_finite;
} exporter;

/* Appends one tensor to the output; every tensor goes through here. Its values are checked
 * first: NaN or Inf is an error naming the tensor, the position and source (the file it
 * came from, or NULL), unless allow_non_finite. */
strata_status export_tensor(exporter *e, const char *name, strata_dtype dtype, int n_dims, const int64_t *shape,
                            const void *data, const char *source);
void exporter_free_notes(exporter *e);
/* The same, converted to F32 first (exactly, from BF16/F16). */
strata_status export_tensor_f32(exporter *e, const char *name, strata_dtype dtype, int n_dims, const int64_t *shape,
                                const void *data, const char *source);

/* Whether an unquantized linear is written in F32: the sigmoid routers (glm4_moe,
 * deepseek_v3), which transformers keeps in fp32 (_keep_in_fp32_modules_strict) and
 * ModelOpt's export therefore writes as F32. */
bool export_router_in_f32(const strata_arch *arch, const strata_linear *linear);

/* Appends the tensors of module m's quantized (N, K) weight in scheme s's format, in the
 * layout of the export format (ModelOpt's weight codes, weight_scale, weight_scale_2; or
 * compressed-tensors'); not the input scale. weight_dtype: the dtype it was quantized from. */
strata_status export_weight_tensors(exporter *e, const scheme_info *s, const char *m, int64_t N, int64_t K,
                                    strata_dtype weight_dtype, const strata_qtensor *q, const strata_quant_shape *shape);
/* Appends layer lc's tensors. */
strata_status export_layer(exporter *e, const layer_calib *lc);
/* Appends the tensors outside the decoder layers: embeddings, final norm, lm_head. */
strata_status export_model_rest(exporter *e);
/* Writes config.json, hf_quant_config.json (modelopt) or quant_scales.safetensors
 * (fakequant), and copies the tokenizer files; every file atomically. layers holds every
 * layer's state. */
strata_status export_finish(exporter *e, const layer_calib *layers, int n_layers);

/* The KV-cache scale tensors a linear's output gives (their count, 0 when it feeds no
 * cache): k_proj "<k_proj>.k_scale", v_proj "<v_proj>.v_scale"; MLA's kv_a_proj_with_mqa,
 * whose output becomes the latent cache vLLM quantizes with one scale, both
 * "<attn>.k_proj.k_scale" and "<attn>.v_proj.v_scale" (the names ModelOpt's export uses
 * and vLLM's DeepSeek loader maps onto its MLA layer; equal, as its MLA decode scales keys
 * and values read from that one cache alike). */
int export_kv_scale_names(const strata_linear *linear, char names[2][512]);
/* The same in a compressed-tensors checkpoint: on the attention module, "<attn>.k_scale" and
 * "<attn>.v_scale" (k_proj gives the first, v_proj the second, MLA's kv_a_proj both). */
int export_kv_scale_names_compressed_tensors(const strata_linear *linear, char names[2][512]);

#endif
