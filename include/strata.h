/*
 * strata.h — the public API of libstrata, post-training quantization of LLMs.
 *
 * Conventions
 * - Every fallible function returns a strata_status. On failure a message naming the
 *   file and tensor involved is available from strata_last_error() on the same thread
 *   until the next failing call.
 * - Objects are opaque handles with one constructor/destructor pair: _open/_close for
 *   files and models, _create/_free for objects. Destructors accept NULL.
 * - Pointers returned by accessors are borrowed: they stay valid until the handle they
 *   came from is closed or freed, unless said otherwise.
 * - The library never prints to stdout or stderr and never exits; it logs through the
 *   callback installed with strata_log_set().
 * - Enums are append-only: new values are added at the end.
 */
#ifndef STRATA_H
#define STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(STRATA_BUILDING)
#define STRATA_API __attribute__((visibility("default")))
#else
#define STRATA_API
#endif

/* ---------------------------------------------------------------- version */

#define STRATA_VERSION_MAJOR 0
#define STRATA_VERSION_MINOR 2
#define STRATA_VERSION_PATCH 0
#define STRATA_VERSION_STRING "0.2.0"

/* The library's version string, e.g. "0.2.0"; may differ from the header's. */
STRATA_API const char *strata_version(void);
/* The MPI library strata was built with ("Open MPI v4.1.4"), or NULL when built without. */
STRATA_API const char *strata_mpi_library(void);
/* This process's rank when an MPI launcher started several (strata quantize then calibrates
 * a share of the windows on each and rank 0 writes; docs/DISTRIBUTED.md), else 0. Read
 * from the launcher's environment: MPI need not be initialized yet. */
STRATA_API int strata_mpi_rank(void);
/* MAJOR * 10000 + MINOR * 100 + PATCH of the library. */
STRATA_API int strata_version_number(void);

/* ---------------------------------------------------------------- errors */

typedef enum strata_status {
    STRATA_OK = 0,
    STRATA_ERR_INVALID_ARGUMENT, /* a caller passed something out of contract */
    STRATA_ERR_OUT_OF_MEMORY,
    STRATA_ERR_IO,          /* a file could not be opened, read, written or renamed */
    STRATA_ERR_FORMAT,      /* a file is malformed: safetensors, JSON, config */
    STRATA_ERR_UNSUPPORTED, /* architecture, option or dtype strata does not handle */
    STRATA_ERR_MISMATCH,    /* a checkpoint does not match its description */
    STRATA_ERR_NOT_FOUND,   /* a named file or tensor does not exist */
    STRATA_ERR_INTERNAL,    /* a library strata relies on (oneDNN, LAPACK) failed */
} strata_status;

/* A short constant description of a status ("malformed file"). */
STRATA_API const char *strata_status_str(strata_status status);
/* The message of the last failure on this thread ("" when none). */
STRATA_API const char *strata_last_error(void);

/* Frees memory the library returned to the caller (strings from strata_inspect). */
STRATA_API void strata_free(void *ptr);

/* ---------------------------------------------------------------- logging */

typedef enum strata_log_level {
    STRATA_LOG_ERROR = 0,
    STRATA_LOG_WARN,
    STRATA_LOG_INFO,
    STRATA_LOG_DEBUG,
} strata_log_level;

typedef void (*strata_log_fn)(strata_log_level level, const char *message, void *user);

/* Installs the log callback (NULL: discard) and the most verbose level passed to it.
 * Process-wide; set it before starting work on other threads. */
STRATA_API void strata_log_set(strata_log_fn fn, void *user, strata_log_level max_level);

/* ---------------------------------------------------------------- dtypes */

/* Element types of the safetensors format. */
typedef enum strata_dtype {
    STRATA_DTYPE_BOOL = 0,
    STRATA_DTYPE_U8,
    STRATA_DTYPE_I8,
    STRATA_DTYPE_F8_E5M2,
    STRATA_DTYPE_F8_E4M3,
    STRATA_DTYPE_I16,
    STRATA_DTYPE_U16,
    STRATA_DTYPE_F16,
    STRATA_DTYPE_BF16,
    STRATA_DTYPE_I32,
    STRATA_DTYPE_U32,
    STRATA_DTYPE_F32,
    STRATA_DTYPE_F64,
    STRATA_DTYPE_I64,
    STRATA_DTYPE_U64,
    STRATA_DTYPE_F8_E8M0,
    STRATA_DTYPE_COUNT
} strata_dtype;

/* The safetensors name of a dtype ("BF16"); "?" for an invalid value. */
STRATA_API const char *strata_dtype_name(strata_dtype dtype);
/* Bytes per element; 0 for an invalid value. */
STRATA_API size_t strata_dtype_size(strata_dtype dtype);
/* Parses a safetensors dtype name; false when unknown. */
STRATA_API bool strata_dtype_from_name(const char *name, strata_dtype *out);
/* True for the floating-point dtypes (F8_E8M0 included). */
STRATA_API bool strata_dtype_is_float(strata_dtype dtype);

/* Converts n elements of a floating-point dtype to fp32 (exact for every dtype but F64,
 * which rounds to nearest). src may be unaligned. Uses the fastest variant this CPU has;
 * STRATA_FORCE_GENERIC=1 in the environment forces the scalar reference. */
STRATA_API strata_status strata_convert_to_f32(strata_dtype dtype, const void *src, size_t n,
                                               float *dst);

/* Threads strata's pool uses (including the caller); 0 means one per available CPU.
 * Takes effect at the next parallel work; may be called at any time. */
STRATA_API void strata_set_num_threads(int n_threads);

/* A space-separated list of the CPU features strata dispatches on ("avx2 f16c avx512f ..."),
 * and the name of the kernel set in use ("avx512", "avx2" or "generic"). */
STRATA_API const char *strata_cpu_features(void);
STRATA_API const char *strata_cpu_kernel_set(void);

/* ---------------------------------------------------------------- quantization formats */

/* The formats strata quantizes to. The numerics are ModelOpt's (HF export path) unless a
 * convention says otherwise; docs/FORMATS.md names every rounding and edge case. */
typedef enum strata_format {
    STRATA_FORMAT_FP8_TENSOR = 0, /* E4M3, one fp32 scale for the tensor */
    STRATA_FORMAT_FP8_CHANNEL,    /* E4M3, one fp32 scale per output row */
    STRATA_FORMAT_FP8_BLOCK,      /* E4M3, one fp32 scale per 128x128 tile */
    STRATA_FORMAT_NVFP4,          /* E2M1, E4M3 scale per 16 elements, fp32 global scale */
    STRATA_FORMAT_MXFP8,          /* E4M3, E8M0 scale per 32 elements */
    STRATA_FORMAT_MXFP4,          /* E2M1, E8M0 scale per 32 elements */
    STRATA_FORMAT_INT8_CHANNEL,   /* int8, fp32 scale per output row */
    STRATA_FORMAT_INT4_GROUP,     /* int4 symmetric, fp32 scale per group of a row */
    STRATA_FORMAT_INT4_GROUP_ASYM,/* int4 asymmetric: scale and zero point per group */
    STRATA_FORMAT_COUNT
} strata_format;

/* Whose arithmetic defines the bytes where the references differ. */
typedef enum strata_convention {
    STRATA_CONVENTION_MODELOPT = 0,
    STRATA_CONVENTION_COMPRESSED_TENSORS,
} strata_convention;

/* Traits of a format: one table entry each. */
typedef struct strata_format_info {
    const char *name;          /* "nvfp4" */
    int element_bits;          /* 8 or 4 */
    int64_t block_rows;        /* rows sharing a scale: 1, 128, or 0 for all rows */
    int64_t block_cols;        /* columns sharing a scale: 16, 32, 128, or 0 for a whole row */
    strata_dtype scale_dtype;  /* F32, F8_E4M3 or F8_E8M0 */
    bool has_global_scale;     /* NVFP4's second-level fp32 scale */
    bool has_zero_point;       /* asymmetric INT4 */
    bool pads_columns;         /* rows are zero-padded to a multiple of block_cols */
} strata_format_info;

/* NULL for an invalid format. */
STRATA_API const strata_format_info *strata_format_get(strata_format format);
STRATA_API bool strata_format_from_name(const char *name, strata_format *out);

typedef struct strata_quant_params {
    strata_format format;
    strata_convention convention;
    int64_t group_size;   /* INT4 group along a row; 0 means 128 */
    float amax;           /* > 0: calibrated absolute maximum of the tensor to use instead of
                           * the data's (FP8 per-tensor scale, NVFP4 global scale); 0: from the data */
    strata_dtype values_dtype; /* the dtype the values were stored in when src is a wider copy
                           * (an F32 copy of a BF16 weight): the references compute some steps in
                           * the weight's dtype, so strata rounds them as that dtype; 0 (BOOL):
                           * src's own dtype */
} strata_quant_params;

/* How big the buffers of a quantized (rows, cols) tensor are. */
typedef struct strata_quant_shape {
    int64_t padded_cols;       /* cols rounded up to the element block where the format pads */
    int64_t code_row_bytes;    /* bytes of codes per row */
    int64_t scale_rows, scale_cols;
    size_t code_bytes;         /* rows * code_row_bytes */
    size_t scale_bytes;        /* scale_rows * scale_cols * size of scale_dtype */
    size_t zero_point_bytes;   /* one int8 per scale, asymmetric formats only */
} strata_quant_shape;

STRATA_API strata_status strata_quant_shape_get(const strata_quant_params *params, int64_t rows, int64_t cols,
                                                strata_quant_shape *out);

/* A quantized tensor in strata's canonical layout; the caller owns the buffers, sized by
 * strata_quant_shape_get:
 * - codes (rows, code_row_bytes): 8-bit formats one byte per element (E4M3 bits or int8);
 *   4-bit formats two per byte, element 2i in the low nibble (E2M1 codes, or int4 two's
 *   complement); padding columns encode zero;
 * - scales (scale_rows, scale_cols) of the format's scale_dtype;
 * - global_scale: NVFP4 only: under the ModelOpt convention weight_scale_2 =
 *   amax / (6 * 448); under the compressed-tensors convention weight_global_scale =
 *   (6 * 448) / amax, computed as that library does;
 * - zero_points (scale_rows, scale_cols) int8, asymmetric formats only. */
typedef struct strata_qtensor {
    uint8_t *codes;
    void *scales;
    float global_scale;
    int8_t *zero_points;
} strata_qtensor;

/* Quantizes a row-major (rows, cols) tensor of dtype F32, BF16 or F16. NaN or Inf in the
 * input is an error naming the row and column; nothing is written then. Runs on the
 * thread pool over rows; the result does not depend on the number of threads. */
STRATA_API strata_status strata_quantize(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                         int64_t rows, int64_t cols, strata_qtensor *out);
/* Reconstructs fp32 values (rows, cols) from a quantized tensor. */
STRATA_API strata_status strata_dequantize(const strata_quant_params *params, const strata_qtensor *q, int64_t rows,
                                           int64_t cols, float *dst);
/* Quantize-dequantize (the fake-quant used during calibration): dst (rows, cols) fp32 gets
 * what the quantized tensor represents. dst may alias src when dtype is F32. */
STRATA_API strata_status strata_fake_quantize(const strata_quant_params *params, strata_dtype dtype, const void *src,
                                              int64_t rows, int64_t cols, float *dst);

/* Export layouts of int4 codes (canonical: two's complement nibbles along a row, element
 * 2i in the low nibble). */
typedef enum strata_int4_layout {
    /* ModelOpt INT4 AWQ: two ROWS per byte, byte[r][c] = (q[2r][c] & 0xF) | (q[2r+1][c] & 0xF) << 4,
     * two's complement; shape (rows / 2, cols), rows even. */
    STRATA_INT4_MODELOPT_AWQ = 0,
    /* compressed-tensors pack-quantized weight_packed: value + 8 (offset binary), eight per
     * little-endian int32 along a row, element i at bits 4i; shape (rows, ceil(cols / 8)). */
    STRATA_INT4_COMPRESSED_TENSORS,
} strata_int4_layout;

/* Bytes strata_pack_int4 writes for a (rows, cols) tensor, or 0 when the layout cannot hold it. */
STRATA_API size_t strata_pack_int4_size(strata_int4_layout layout, int64_t rows, int64_t cols);
/* Repacks canonical int4 codes (rows, ceil(cols / 2) bytes) into an export layout. */
STRATA_API strata_status strata_pack_int4(strata_int4_layout layout, const uint8_t *codes, int64_t rows, int64_t cols,
                                          void *out);
/* compressed-tensors weight_zero_point: int8 zero points (rows, cols), value + 8, packed
 * eight per int32 along ROWS; shape (ceil(rows / 8), cols) int32. */
STRATA_API strata_status strata_pack_zero_points_int4(const int8_t *zero_points, int64_t rows, int64_t cols,
                                                      int32_t *out);

/* The FP8 KV-cache scale for the calibrated amax of the keys (after RoPE) or values: amax / 448
 * (k_scale, v_scale); a zero amax gives 1.0. */
STRATA_API float strata_fp8_kv_scale(float amax);

/* ---------------------------------------------------------------- safetensors reading */

#define STRATA_MAX_DIMS 8

/* One tensor of a checkpoint. All fields are borrowed from the strata_safetensors that
 * returned it; data points into a read-only mapping of the file and may be unaligned. */
typedef struct strata_tensor {
    const char *name;
    strata_dtype dtype;
    int n_dims;                       /* 0 for a scalar */
    int64_t shape[STRATA_MAX_DIMS];   /* (shape[0], ..., shape[n_dims-1]) row-major */
    int64_t n_elements;
    uint64_t n_bytes;
    const void *data;
    size_t shard;                     /* index of the file holding it */
    uint64_t file_offset;             /* absolute byte offset of data in that file */
} strata_tensor;

typedef struct strata_safetensors strata_safetensors;

/* Opens a checkpoint's tensors, validating every header against its file:
 * - a *.safetensors file;
 * - a model.safetensors.index.json (sharded), whose shards are opened beside it;
 * - a directory holding model.safetensors.index.json, model.safetensors, or exactly one
 *   *.safetensors file.
 * Tensors are enumerated in file order (shard by shard, by data offset). */
STRATA_API strata_status strata_safetensors_open(const char *path, strata_safetensors **out);
STRATA_API void strata_safetensors_close(strata_safetensors *st);

STRATA_API size_t strata_safetensors_count(const strata_safetensors *st);
/* The i-th tensor in file order, or NULL when i is out of range. */
STRATA_API const strata_tensor *strata_safetensors_at(const strata_safetensors *st, size_t i);
/* The tensor with this name, or NULL. */
STRATA_API const strata_tensor *strata_safetensors_find(const strata_safetensors *st,
                                                        const char *name);
STRATA_API size_t strata_safetensors_shard_count(const strata_safetensors *st);
STRATA_API const char *strata_safetensors_shard_path(const strata_safetensors *st, size_t shard);
STRATA_API uint64_t strata_safetensors_shard_size(const strata_safetensors *st, size_t shard);
/* The string metadata ("__metadata__") of all shards, first shard first. */
STRATA_API size_t strata_safetensors_metadata_count(const strata_safetensors *st);
STRATA_API bool strata_safetensors_metadata_at(const strata_safetensors *st, size_t i,
                                               const char **key, const char **value);
/* The value of one metadata key, or NULL. */
STRATA_API const char *strata_safetensors_metadata(const strata_safetensors *st, const char *key);

/* ---------------------------------------------------------------- safetensors writing */

typedef struct strata_safetensors_writer strata_safetensors_writer;

typedef struct strata_writer_params {
    const char *dir;          /* output directory; must exist */
    const char *stem;         /* file name stem; NULL means "model" */
    uint64_t max_shard_bytes; /* start a new shard past this many data bytes; 0: one file */
} strata_writer_params;

/* A streaming writer: tensors are appended as they are produced and never held in memory.
 * Shards are written under temporary names in dir; strata_safetensors_writer_finish()
 * renames them into place as <stem>.safetensors (one shard) or
 * <stem>-0000i-of-0000n.safetensors plus <stem>.safetensors.index.json. Existing files
 * of those names are replaced only at that moment; freeing an unfinished writer removes
 * its temporary files and leaves the directory as it was. */
STRATA_API strata_status strata_safetensors_writer_create(const strata_writer_params *params,
                                                          strata_safetensors_writer **out);
/* Adds a "__metadata__" entry to every shard (and to the index json's metadata). */
STRATA_API strata_status strata_safetensors_writer_set_metadata(strata_safetensors_writer *w,
                                                                const char *key,
                                                                const char *value);
/* Appends one tensor; n_bytes must equal the product of shape times the dtype size. */
STRATA_API strata_status strata_safetensors_writer_add(strata_safetensors_writer *w,
                                                       const char *name, strata_dtype dtype,
                                                       int n_dims, const int64_t *shape,
                                                       const void *data, uint64_t n_bytes);
STRATA_API strata_status strata_safetensors_writer_finish(strata_safetensors_writer *w);
STRATA_API void strata_safetensors_writer_free(strata_safetensors_writer *w);

/* ---------------------------------------------------------------- model description */

typedef enum strata_family {
    STRATA_FAMILY_LLAMA = 0,
    STRATA_FAMILY_MISTRAL,
    STRATA_FAMILY_QWEN2,
    STRATA_FAMILY_QWEN3,
    STRATA_FAMILY_MIXTRAL,
    STRATA_FAMILY_QWEN2_MOE,
    STRATA_FAMILY_QWEN3_MOE,
    STRATA_FAMILY_GLM4_MOE,        /* GLM-4.5 / 4.6: grouped sigmoid routing, shared experts */
    STRATA_FAMILY_DEEPSEEK_V3,     /* DeepSeek-V3 / R1 / V3.1, Kimi-K2: MLA attention, glm4_moe's routing */
    STRATA_FAMILY_COUNT
} strata_family;

/* The HF model_type of a family ("qwen3_moe"). */
STRATA_API const char *strata_family_name(strata_family family);

typedef enum strata_rope_type {
    STRATA_ROPE_DEFAULT = 0,
    STRATA_ROPE_LINEAR,
    STRATA_ROPE_LLAMA3,
    STRATA_ROPE_YARN,
} strata_rope_type;

typedef enum strata_linear_role {
    STRATA_LINEAR_Q = 0,
    STRATA_LINEAR_K,
    STRATA_LINEAR_V,
    STRATA_LINEAR_O,
    STRATA_LINEAR_GATE,        /* gate_proj / w1 */
    STRATA_LINEAR_UP,          /* up_proj / w3 */
    STRATA_LINEAR_DOWN,        /* down_proj / w2 */
    STRATA_LINEAR_ROUTER,      /* MoE router (never quantized) */
    STRATA_LINEAR_SHARED_GATE, /* qwen2_moe shared_expert_gate (never quantized) */
    STRATA_LINEAR_Q_A,         /* MLA: q_a_proj (hidden -> q_lora_rank) */
    STRATA_LINEAR_Q_B,         /* MLA: q_b_proj (q_lora_rank -> heads * qk_head_dim) */
    STRATA_LINEAR_KV_A,        /* MLA: kv_a_proj_with_mqa (hidden -> kv_lora_rank + qk_rope_head_dim) */
    STRATA_LINEAR_KV_B,        /* MLA: kv_b_proj (kv_lora_rank -> heads * (qk_nope_head_dim + v_head_dim)) */
} strata_linear_role;

STRATA_API const char *strata_linear_role_name(strata_linear_role role);

/* One linear layer y = x W^T (+ b) of a decoder layer. Its weight, of logical shape
 * (n_out, n_in), is either a whole 2-D tensor or rows [row_offset, row_offset + n_out) of
 * slice stack_index of a stacked expert tensor (n_experts, rows, n_in). */
typedef struct strata_linear {
    const char *name;          /* module name: "model.layers.0.mlp.experts.3.up_proj" */
    const char *weight;        /* tensor holding the weight */
    const char *bias;          /* bias tensor (n_out), or NULL */
    strata_linear_role role;
    int expert;                /* routed expert index, -1 otherwise */
    bool shared_expert;        /* part of a shared expert (qwen2_moe, glm4_moe) */
    bool quantizable;          /* false for routers and shared-expert gates */
    int64_t n_out, n_in;
    int64_t stack_index;       /* -1 unless the weight is a stacked expert tensor */
    int64_t row_offset;        /* first row inside the stacked slice (0 otherwise) */
} strata_linear;

typedef struct strata_layer {
    int index;
    bool is_moe;
    const char *input_norm;          /* (hidden) */
    const char *post_attention_norm; /* (hidden) */
    const char *q_norm, *k_norm;     /* (head_dim), qwen3 families; NULL otherwise */
    size_t n_linears;
    const strata_linear *linears;    /* attention first, then router, experts, shared expert */
    const char *router_bias;         /* (n_experts) F32 e_score_correction_bias (glm4_moe), or NULL */
    const char *q_a_norm;            /* MLA: q_a_layernorm (q_lora_rank), NULL without q_lora_rank */
    const char *kv_a_norm;           /* MLA: kv_a_layernorm (kv_lora_rank); NULL for other attention */
} strata_layer;

typedef struct strata_arch {
    strata_family family;
    const char *model_type;        /* "llama" */
    const char *architecture;      /* "LlamaForCausalLM", or "" */
    int64_t vocab_size;
    int64_t hidden_size;
    int64_t intermediate_size;     /* dense MLP width */
    int n_layers;
    int n_heads, n_kv_heads;
    int64_t head_dim;
    double rms_norm_eps;
    int64_t max_position_embeddings;
    int64_t sliding_window;        /* 0 when attention is not windowed */
    struct {
        strata_rope_type type;
        double theta;
        double factor;                  /* linear and llama3 */
        double low_freq_factor;         /* llama3 */
        double high_freq_factor;        /* llama3 */
        int64_t original_max_position;  /* llama3 */
    } rope;
    bool tie_word_embeddings;
    bool qkv_bias, o_bias, mlp_bias;
    bool qk_norm;                  /* per-head RMSNorm on q and k before RoPE (qwen3) */
    struct {
        int n_experts;             /* 0 for dense models */
        int top_k;
        int64_t intermediate_size; /* per routed expert */
        int64_t shared_intermediate_size; /* qwen2_moe shared expert, 0 when none */
        bool softmax_before_topk;  /* routing weights: softmax over all experts, then top-k */
        bool renormalize;          /* top-k weights renormalized to sum 1 */
        bool stacked;              /* experts stored as stacked (n_experts, out, in) tensors */
    } moe;
    const strata_layer *layers;    /* n_layers of them */
    const char *embed_tokens;      /* (vocab, hidden) */
    const char *final_norm;        /* (hidden) */
    const char *lm_head;           /* (vocab, hidden); equals embed_tokens when tied */
    int64_t rotary_dim;            /* leading dims of each head RoPE rotates: head_dim * partial_rotary_factor */
    /* Routing by sigmoid scores (glm4_moe): the choice adds each expert's correction bias
     * (strata_layer.router_bias) and is limited to the topk_group best of n_group groups
     * (a group scores the sum of its two best); the weights are the chosen experts' plain
     * scores, renormalized when moe.renormalize, times scaling. sigmoid false: softmax. */
    struct {
        bool sigmoid;
        int n_group, topk_group;
        double scaling;            /* routed_scaling_factor */
    } routing;
    int n_mtp_layers;              /* num_nextn_predict_layers: multi-token-prediction layers stored as
                                    * model.layers.{n_layers ...}.*, never run, copied into outputs */
    /* YaRN rope scaling (rope.type STRATA_ROPE_YARN; rope.factor and rope.original_max_position
     * apply): the ramp between beta_slow and beta_fast rotations, and the factor cos and sin
     * are multiplied by (attention_factor, from mscale / mscale_all_dim when not given). */
    struct {
        double beta_fast, beta_slow;
        double attention_factor;
        double mscale_all_dim;     /* MLA multiplies its softmax scale by yarn_mscale(factor, this)^2 */
        bool truncate;
    } yarn;
    /* Multi-head latent attention (deepseek_v3); kv_lora_rank is 0 for every other family.
     * head_dim is qk_nope_head_dim + qk_rope_head_dim and rotary_dim qk_rope_head_dim. */
    struct {
        int64_t q_lora_rank;       /* 0: a plain q_proj */
        int64_t kv_lora_rank;
        int64_t qk_nope_head_dim, qk_rope_head_dim, v_head_dim;
    } mla;
    bool rope_interleave;          /* rotary pairs are (x0, x1), (x2, x3)... (DeepSeek's rope_interleave) */
    double attention_scale;        /* softmax scale of q k^T: head_dim^-0.5, times YaRN's mscale^2 for MLA */
} strata_arch;

/* What a quantized checkpoint says about itself (hf_quant_config.json or
 * config.json["quantization_config"]). Every string may be NULL when absent. */
typedef struct strata_quant_info {
    const char *source;       /* "hf_quant_config.json" or "config.json" */
    const char *method;       /* "modelopt", "compressed-tensors", "fp8", ... */
    const char *algo;         /* quant_algo (modelopt) or format (compressed-tensors) */
    const char *kv_cache;     /* kv cache quantization, or NULL */
    const char *producer;     /* "name version" of the tool that wrote it */
    int group_size;           /* 0 when not given */
    size_t n_excluded;
    const char *const *excluded; /* exclude_modules / ignore */
    const char *json;         /* the quantization section, compact JSON */
} strata_quant_info;

typedef struct strata_model strata_model;

/* Opens a Hugging Face checkpoint directory: parses config.json into a strata_arch,
 * opens its safetensors and checks every expected tensor is present with its shape.
 * Unsupported architectures or options are refused with a message naming them. */
STRATA_API strata_status strata_model_open(const char *dir, strata_model **out);
STRATA_API void strata_model_close(strata_model *model);
STRATA_API const strata_arch *strata_model_arch(const strata_model *model);
STRATA_API const strata_safetensors *strata_model_tensors(const strata_model *model);
/* The quantization the checkpoint declares, or NULL for an unquantized one. */
STRATA_API const strata_quant_info *strata_model_quantization(const strata_model *model);
/* Tensors present in the checkpoint that the description does not account for. */
STRATA_API size_t strata_model_unexpected_count(const strata_model *model);
/* The tensors of multi-token-prediction layers (arch->n_mtp_layers), in checkpoint order. */
STRATA_API size_t strata_model_mtp_count(const strata_model *model);
STRATA_API const char *strata_model_mtp(const strata_model *model, size_t i);
STRATA_API const char *strata_model_unexpected(const strata_model *model, size_t i);

/* ---------------------------------------------------------------- inspect */

typedef struct strata_inspect_params {
    bool json;   /* machine-readable JSON instead of text */
    bool stats;  /* per-tensor absmax and NaN/Inf counts (reads every floating tensor) */
} strata_inspect_params;

/* Describes a model directory, an output directory, or a lone .safetensors file: the
 * architecture, per-layer tensor tables, totals and the quantization found. On success
 * *report holds a NUL-terminated string to release with strata_free(). */
STRATA_API strata_status strata_inspect(const char *path, const strata_inspect_params *params,
                                        char **report);

/* ---------------------------------------------------------------- tokenizer */

/* A Hugging Face tokenizer.json (BPE: byte-level as in Llama-3 and Qwen, or SentencePiece
 * style with byte fallback as in Llama-2), giving the ids the `tokenizers` library gives.
 * Components strata does not implement are refused by name when loading. A loaded
 * tokenizer is read-only: any number of threads may encode and decode with it. */
typedef struct strata_tokenizer strata_tokenizer;

/* path: a tokenizer.json, or a directory holding one. tokenizer_config.json beside it,
 * when present, names the BOS/EOS tokens and may switch adding them on or off
 * (add_bos_token / add_eos_token), as transformers does. */
STRATA_API strata_status strata_tokenizer_load(const char *path, strata_tokenizer **tokenizer);
STRATA_API void strata_tokenizer_free(strata_tokenizer *tokenizer);

/* Encodes length bytes of UTF-8 text (invalid sequences are read as U+FFFD, one per maximal
 * invalid subsequence). add_special adds what the post-processor adds (BOS for Llama).
 * *ids is malloc'd (free with strata_free). */
STRATA_API strata_status strata_tokenizer_encode(const strata_tokenizer *tokenizer, const char *text, size_t length,
                                                 bool add_special, int32_t **ids, int64_t *n_ids);
/* Decodes ids into a malloc'd NUL-terminated string (*length bytes, may be NULL).
 * skip_special leaves out special added tokens such as BOS. An id outside the vocabulary
 * is an error. */
STRATA_API strata_status strata_tokenizer_decode(const strata_tokenizer *tokenizer, const int32_t *ids, int64_t n_ids,
                                                 bool skip_special, char **text, size_t *length);
/* Reads a text file and encodes it whole, as strata_tokenizer_encode does. */
STRATA_API strata_status strata_tokenizer_encode_file(const strata_tokenizer *tokenizer, const char *path,
                                                      bool add_special, int32_t **ids, int64_t *n_ids);
/* 1 + the largest token id. */
STRATA_API int64_t strata_tokenizer_vocab_size(const strata_tokenizer *tokenizer);
/* BOS / EOS ids (-1 when the tokenizer has none), and whether encode(add_special) starts
 * with BOS. */
STRATA_API int32_t strata_tokenizer_bos(const strata_tokenizer *tokenizer);
STRATA_API int32_t strata_tokenizer_eos(const strata_tokenizer *tokenizer);
STRATA_API bool strata_tokenizer_adds_bos(const strata_tokenizer *tokenizer);
/* The text of token id (NULL outside the vocabulary); owned by the tokenizer. */
STRATA_API const char *strata_tokenizer_token(const strata_tokenizer *tokenizer, int32_t id);

/* ---------------------------------------------------------------- calibration data */

typedef enum strata_calib_format {
    STRATA_CALIB_AUTO = 0,     /* by name: *.jsonl JSONL, *.bin and *.json ids, else paragraphs */
    STRATA_CALIB_PARAGRAPHS,   /* plain text; documents are separated by blank lines */
    STRATA_CALIB_LINES,        /* plain text; one document per line */
    STRATA_CALIB_JSONL,        /* JSON Lines; each object's text_field is a document */
    STRATA_CALIB_IDS,          /* pre-tokenized ids (strata_tokens_read formats) */
} strata_calib_format;

typedef struct strata_calib_params {
    strata_calib_format format;
    const char *text_field;    /* JSONL field holding the text; NULL: "text" */
    int64_t n_samples;         /* windows to draw (--calib-samples) */
    int64_t seq_len;           /* tokens per window (--calib-seq) */
    uint64_t seed;             /* which windows are drawn (--seed) */
} strata_calib_params;

typedef struct strata_calib_info {
    strata_calib_format format;   /* the format used (AUTO resolved) */
    int64_t n_documents;          /* non-empty documents read (0 for ids) */
    int64_t n_stream_tokens;      /* tokens of all documents, packed */
    int64_t n_windows;            /* whole windows the stream holds */
    int64_t invalid_utf8;         /* invalid byte sequences replaced by U+FFFD */
    int64_t first_invalid_offset; /* byte offset of the first one, -1 when none */
} strata_calib_info;

/* The format a dataset file is read as: format itself unless AUTO, else by name. */
STRATA_API strata_calib_format strata_calib_format_resolve(const char *path, strata_calib_format format);

/* Calibration windows from a dataset file: n_samples windows of seq_len tokens in
 * *tokens (n_samples * seq_len ids, malloc'd; free with strata_free).
 *
 * Text documents are tokenized one by one without special tokens, each followed by its
 * separator ("\n\n" between paragraphs and JSONL records, "\n" between lines), and packed
 * into one stream (CRLF read as LF, as Python's text mode does; invalid UTF-8 replaced and
 * counted). The stream is cut into consecutive windows; when the tokenizer adds BOS, every
 * window is BOS followed by seq_len - 1 stream tokens. n_samples of the windows are drawn
 * without replacement by a generator seeded with seed and returned in stream order. Ids
 * files are cut into windows as they are (no BOS added). tokenizer may be NULL for ids.
 * Fewer windows than n_samples, an empty dataset, a JSONL line without the field, or a
 * field that is not a string is an error naming the file (and line). */
STRATA_API strata_status strata_calib_load(const char *path, const strata_tokenizer *tokenizer,
                                           const strata_calib_params *params, int32_t **tokens,
                                           strata_calib_info *info);

/* ---------------------------------------------------------------- evaluation */

typedef struct strata_eval_params {
    int64_t window;        /* tokens per window; 0: 512, capped at max_position_embeddings */
    int64_t max_windows;   /* evaluate at most this many windows; 0: every full window */
    bool fp32;             /* matrix products in fp32 instead of bf16 */
    size_t memory_budget;  /* scratch bytes for one chunk of windows; 0: 1 GiB */
} strata_eval_params;

typedef struct strata_eval_result {
    double perplexity;     /* exp(mean_nll) */
    double mean_nll;       /* mean negative log-likelihood (nats) per predicted token */
    int64_t n_windows;
    int64_t n_predicted;   /* window - 1 per window */
    bool fp32;             /* products ran in fp32 (asked for, or no bf16 on this CPU) */
    double seconds;
} strata_eval_result;

/* Reads pre-tokenized ids: a JSON array of integers (*.json), raw little-endian int32
 * (*.bin), or otherwise text holding integers separated by whitespace. *ids is
 * malloc'd (free with strata_free). An empty file, a non-integer, or an id outside
 * [0, 2^31) is an error naming the file and the position. */
STRATA_API strata_status strata_tokens_read(const char *path, int32_t **ids, int64_t *n_ids);
/* Writes ids in the encoding strata_tokens_read picks for the name (.json, .bin, else
 * text), replacing path atomically. Text and JSON put per_line ids on a line (0: all). */
STRATA_API strata_status strata_tokens_write(const char *path, const int32_t *ids, int64_t n_ids, int64_t per_line);

/* Perplexity over non-overlapping windows of tokens, as transformers users compute it:
 * tokens are cut into consecutive windows of params->window (a trailing partial window
 * is dropped), each window is run independently from position 0, and every position but
 * the last predicts the next token. Runs layer by layer: one layer is materialized at a
 * time, and the hidden states of all windows (n_windows * window * hidden fp32) are
 * kept in memory. Token ids outside the vocabulary are an error naming the position. */
STRATA_API strata_status strata_eval_perplexity(const strata_model *model, const int32_t *tokens, int64_t n_tokens,
                                                const strata_eval_params *params, strata_eval_result *result);

/* A quantized model against its base (`strata eval QUANT --base ORIGINAL`): llama.cpp's
 * `llama-perplexity --kl-divergence` statistics over the same windows (docs/EVAL.md). As
 * llama.cpp does, each window of n tokens scores the targets at positions n/2 + 1 to
 * n - 1 (the second half, with context before it). */
typedef struct strata_eval_compare_params {
    strata_eval_params eval;     /* window, max_windows, fp32, memory_budget */
    const char *base_logits;     /* read the base's log-probabilities from this file (llama.cpp's
                                  * --kl-divergence-base format) instead of running a base model; its
                                  * tokens and window are the evaluation's */
    const char *save_base;       /* write the base's log-probabilities there (that format) */
} strata_eval_compare_params;

/* Percentiles, in the order llama.cpp prints them. */
#define STRATA_KLD_PERCENTILES 11 /* maximum, 99.9, 99, 95, 90, median, 10, 5, 1, 0.1, minimum */
#define STRATA_DP_PERCENTILES 13  /* maximum, 99.9, 99, 95, 90, 75, median, 25, 10, 5, 1, 0.1, minimum */
extern STRATA_API const double strata_kld_percentiles[STRATA_KLD_PERCENTILES]; /* 1, 0.999, ..., 0.5 for the median, ..., 0 */
extern STRATA_API const double strata_dp_percentiles[STRATA_DP_PERCENTILES];

/* A value and its standard error (0 with 10 tokens or fewer, as llama.cpp gives it). */
typedef struct strata_estimate {
    double value, error;
} strata_estimate;

typedef struct strata_eval_compare_result {
    int64_t n_windows, window;
    int64_t n_scored;                       /* tokens compared */
    strata_estimate ppl_q, ppl_base;        /* perplexities over the scored tokens */
    double ln_ppl_correlation;              /* Pearson correlation of the two models' token NLLs */
    strata_estimate ln_ppl_ratio, ppl_ratio, ppl_difference;
    strata_estimate kld;                    /* mean KL(base || quantized), nats */
    double kld_percentile[STRATA_KLD_PERCENTILES];
    strata_estimate p_diff;                 /* mean q(target) - p_base(target), as a fraction */
    double p_diff_percentile[STRATA_DP_PERCENTILES];
    strata_estimate p_diff_rms;
    strata_estimate same_top;               /* fraction of tokens whose most likely next token agrees */
    bool base_from_file;                    /* the base came from params->base_logits */
    bool fp32;
    double seconds;
} strata_eval_compare_result;

/* Runs both models (or the quantized one and a base log-probability file) over the same
 * windows, layer by layer, a block of windows at a time: the base's logits of a block are
 * held until the quantized model has been compared on them. base may be NULL with
 * params->base_logits. With params->save_base the base's log-probabilities are also
 * written, to a temporary name renamed into place at the end. */
STRATA_API strata_status strata_eval_compare(const strata_model *quantized, const strata_model *base,
                                             const int32_t *tokens, int64_t n_tokens,
                                             const strata_eval_compare_params *params,
                                             strata_eval_compare_result *result);

/* Writes the base log-probability file of params->save_base (llama.cpp's
 * --kl-divergence-base format) for one model, without a comparison; result->perplexity is
 * the model's over the scored half of each window. */
STRATA_API strata_status strata_eval_save_base(const strata_model *model, const int32_t *tokens, int64_t n_tokens,
                                               const strata_eval_compare_params *params, strata_eval_result *result);

/* One self-contained HTML page about a quantized output directory (docs/EVAL.md, "The
 * report"): settings, layer and linear errors as inline SVG plots, tokens per routed expert
 * as a heat map, the largest errors; with eval_json (the output of `strata eval --base
 * --json`, or NULL) the comparison with the original. Reads output_dir/quant_summary.json;
 * writes html_path atomically. */
STRATA_API strata_status strata_report(const char *output_dir, const char *eval_json, const char *html_path);

/* ---------------------------------------------------------------- layerwise quantization */

/* What strata quantize produces: weight format, activation handling, and the ModelOpt
 * quant_algo it is exported as (docs/QUANTIZE.md). */
typedef enum strata_scheme {
    STRATA_SCHEME_FP8 = 0,          /* "fp8": E4M3 weights per tensor, static per-tensor input scale (W8A8) */
    STRATA_SCHEME_FP8_DYNAMIC,      /* "fp8-dynamic": per-channel weights, dynamic per-token activations */
    STRATA_SCHEME_NVFP4,            /* "nvfp4": W4A4, static input global scale, dynamic 16-blocks */
    STRATA_SCHEME_NVFP4_WEIGHT_ONLY,/* "nvfp4-weight-only": W4A16 */
    STRATA_SCHEME_INT8,             /* "int8": per-channel int8 weights only (W8A16) */
    STRATA_SCHEME_INT4,             /* "int4": group-wise (128) symmetric int4 weights only (W4A16) */
    STRATA_SCHEME_MXFP4,            /* "mxfp4": W4A4 MXFP4, weights and dynamic inputs in 32-blocks (E8M0) */
    STRATA_SCHEME_INT4_ASYM,        /* "int4-asym": group-wise (128) int4 with zero points, weight only;
                                     * ModelOpt has no such format: compressed-tensors or fakequant export */
    STRATA_SCHEME_FP8_BLOCK,        /* "fp8-block": E4M3 weights, one fp32 scale per 128x128 tile, weight only
                                     * (ModelOpt fp8_pb_wo) */
    STRATA_SCHEME_INT8_W8A8,        /* "int8-w8a8": per-channel int8 weights, dynamic per-token int8 inputs
                                     * (llm-compressor W8A8): compressed-tensors or fakequant export */
    STRATA_SCHEME_COUNT
} strata_scheme;

STRATA_API const char *strata_scheme_name(strata_scheme scheme);
STRATA_API bool strata_scheme_from_name(const char *name, strata_scheme *out);

typedef enum strata_export_format {
    STRATA_EXPORT_MODELOPT = 0,  /* ModelOpt HF checkpoint: packed weights + scales + hf_quant_config.json */
    STRATA_EXPORT_FAKEQUANT,     /* bf16 weights with quantize-dequantize folded in; scales in quant_scales.safetensors */
    STRATA_EXPORT_COMPRESSED_TENSORS, /* compressed-tensors checkpoint (vLLM's native format, llm-compressor's
                                       * output): quantization_config in config.json, the compressed-tensors
                                       * convention's numerics */
} strata_export_format;

/* "modelopt", "fakequant", "compressed-tensors" ("?" for an invalid value), and back. */
STRATA_API const char *strata_export_format_name(strata_export_format format);
STRATA_API bool strata_export_format_from_name(const char *name, strata_export_format *out);
/* The convention whose numerics an output holds: compressed-tensors' for its format,
 * ModelOpt's for ModelOpt's, and for fakequant the one asked for (a preview, in bf16, of
 * what either engine path computes). */
STRATA_API strata_convention strata_export_convention(strata_export_format format, strata_convention fakequant);

/* Progress of a long run, passed to the callback at most every couple of seconds and at
 * the end of every layer. */
/* Where one layer's time went, in seconds (quant_timings.json has the same per layer). */
typedef struct strata_layer_timing {
    double read_s;        /* materializing weights (reading the mapping, checking, converting) and
                           * the weight-amax pass over them */
    double forward_s;     /* the calibration, Hessian and quantized passes, less their reading */
    double decide_s;      /* mse clip search or GPTQ, the quantized weights and their errors */
    double export_s;      /* writing the layer's tensors */
    double checkpoint_s;  /* saving its state (and, every --save-every layers, the activations) */
    double total_s;
    double tokens_per_second; /* calibration tokens through its passes per second of forward_s */
    /* The parts of the above: */
    double amax_s;        /* read_s's weight-amax pass */
    double calibrate_s;   /* forward_s's calibration pass (observers) */
    double hessian_s;     /* forward_s's Hessian pass (GPTQ with quantized inputs), and the grouped
                           * experts' Hessian passes */
    double quantized_s;   /* forward_s's quantized pass (the next layer's inputs, the output error) */
    double errors_s;      /* decide_s's weight and output errors of the quantized linears */
} strata_layer_timing;

typedef struct strata_progress {
    int layer;                 /* 0-based layer being calibrated */
    int n_layers;
    double tokens_per_second;  /* calibration tokens through the current pass */
    uint64_t act_store_bytes;  /* both activation buffers */
    bool act_store_spilled;
    uint64_t rss_bytes;        /* resident memory of the process now */
    double eta_seconds;        /* < 0 while unknown */
    double elapsed_seconds;
    uint64_t peak_rss_bytes;   /* the most resident memory the process has had so far */
    const strata_layer_timing *layer_done; /* the report that ends a layer: its times; else NULL */
} strata_progress;

typedef void (*strata_progress_fn)(const strata_progress *progress, void *user);

/* Where a layer's calibration inputs come from. */
typedef enum strata_propagation {
    STRATA_PROPAGATE_DEFAULT = 0,   /* quantized for gptq (it corrects for the quantized inputs), else unquantized */
    STRATA_PROPAGATE_UNQUANTIZED,   /* the previous layer's output with its original weights */
    STRATA_PROPAGATE_QUANTIZED,     /* the previous layer's output once quantized */
} strata_propagation;

/* How attention linears are quantized (strata_quantize_params.attention). */
typedef enum strata_attention_quant {
    STRATA_ATTENTION_AUTO = 0, /* the family's recipe: deepseek_v3 follows ModelOpt's DeepSeek example
                                * (attention unquantized but for o_proj under FP4 weight formats);
                                * every other family quantizes attention with the scheme */
    STRATA_ATTENTION_SCHEME,   /* attention takes the scheme like every other linear */
    STRATA_ATTENTION_NONE,     /* attention stays unquantized (listed in exclude_modules) */
    STRATA_ATTENTION_FP8,      /* attention in per-tensor FP8 (weights and static inputs) while the
                                * MLPs take the scheme: a MIXED_PRECISION checkpoint */
} strata_attention_quant;

STRATA_API const char *strata_attention_quant_name(strata_attention_quant mode);
STRATA_API bool strata_attention_quant_from_name(const char *name, strata_attention_quant *out);

/* What strata quantize measures of the quantization's error (quant_summary.txt/.json). */
typedef enum strata_error_stats {
    STRATA_ERROR_STATS_FULL = 0, /* weight errors; each quantized linear's output error on its sampled
                                  * input rows (fp32 products of the weight and its quantized values);
                                  * each layer's output error over every calibration token (a pass of
                                  * the quantized layer) */
    STRATA_ERROR_STATS_WEIGHTS,  /* weight errors only: no input samples, no output products, and no
                                  * quantized pass unless it feeds the next layer (propagate
                                  * quantized). The quantized weights are the same bytes */
} strata_error_stats;

typedef struct strata_quantize_params {
    const char *model_dir;
    const char *output_dir;        /* created when missing; must be new or empty unless overwrite. The
                                    * output appears there whole, at the end (strata_output.json last) */
    strata_scheme scheme;
    const char *algo;              /* "max", "mse", "gptq", "awq" or "awq+gptq"; NULL: "max" */
    bool kv_cache_fp8;             /* k_scale / v_scale: amax of the keys (after RoPE) and values / 448 */
    strata_export_format format;
    strata_convention convention;  /* fakequant only: whose numerics (default ModelOpt's); the other
                                    * formats hold their own (strata_export_convention) */
    const char *const *exclude;    /* (n_exclude) glob patterns on module names, beside the defaults */
    size_t n_exclude;
    strata_propagation propagate;  /* the next layer's inputs */
    strata_error_stats error_stats; /* what the summary measures (FULL by default) */
    bool calib_all_experts;        /* MoE: every token calibrates every expert (the layer output
                                    * still combines only the top-k); false: the model's routing */
    /* GPTQ (algo "gptq"); 0 takes the default in brackets: */
    double gptq_damp;              /* added to diag H, as a fraction of its mean [0.01] */
    int64_t gptq_block;            /* columns per lazy-update block [128] */
    bool gptq_act_order;           /* columns in order of descending diag H (scales stay per column) */
    int64_t gptq_min_tokens;       /* a linear (an expert) that saw fewer tokens is rounded to nearest [32] */
    const int32_t *tokens;         /* (n_samples, seq_len) calibration windows */
    int64_t n_samples, seq_len;
    const char *checkpoint_dir;    /* NULL: no checkpoint, no resume */
    int save_every;                /* save next-layer inputs every K layers (0: 1) */
    uint64_t max_memory;           /* bytes; 0: no limit. Beyond it the activation store spills to disk */
    uint64_t max_shard_bytes;      /* 0: 10 GB, as ModelOpt's export */
    strata_progress_fn progress;   /* may be NULL */
    void *progress_user;
    bool overwrite;                /* replace an earlier strata output in output_dir: the files its
                                    * strata_output.json lists, nothing else */
    bool allow_non_finite;         /* write copied tensors holding NaN/Inf (a warning each, listed in
                                    * the summary) instead of failing */
    bool fuse_fp8_scales;          /* FP8 per tensor: q/k/v and gate/up share one weight scale (their
                                    * maximum), so an engine runs each fused GEMM without
                                    * requantizing; ModelOpt's exporter keeps one per linear */
    const char *const *input_files; /* (n_input_files) other files the run reads (calibration data,
                                    * tokenizer): never replaced by the output; NULLs are skipped */
    size_t n_input_files;
    strata_attention_quant attention; /* how attention linears are quantized (AUTO: the family's recipe) */
    int experts_per_group;         /* MoE layers: routed experts materialized at a time; 0: whole layers
                                    * unless one does not fit max_memory (then the largest group that
                                    * does). The output is the same for every value */
    bool expert_parallel;          /* under mpirun: each rank holds 1/N of every MoE layer's routed
                                    * experts, and tokens travel to them (docs/DISTRIBUTED.md); the
                                    * output is the same */
    bool no_report;                /* no quant_report.html beside the summary (strata_report) */
    double smooth;                 /* SmoothQuant before the algorithm: its migration strength in
                                    * (0, 1] (docs/SMOOTHQUANT.md); 0: none */
} strata_quantize_params;

typedef struct strata_quantize_result {
    int resumed_from_layer;        /* first layer calibrated by this call (0 for a fresh run) */
    int n_layers;
    int64_t n_quantized_linears;
    uint64_t act_store_bytes;
    bool act_store_spilled;
    double seconds;
    int64_t n_non_finite_tensors;  /* written with NaN/Inf under allow_non_finite */
    char output_dir[4096];         /* where the output is (the real path) */
    int experts_per_group;         /* routed experts materialized at a time (0: whole layers) */
    bool report;                   /* quant_report.html was written */
} strata_quantize_result;

/* Calibrates the model one decoder layer at a time on the calibration windows and writes
 * the quantized checkpoint to output_dir (docs/QUANTIZE.md): quantized shards with their
 * index, config.json with quantization_config, hf_quant_config.json (ModelOpt format) or
 * quant_scales.safetensors (fakequant), the tokenizer files, quant_summary.txt/.json and
 * quant_report.html (unless no_report).
 * With checkpoint_dir, every layer's state is saved there and a later call with the same
 * directory (and the same model, data and settings, else an error) resumes after the last
 * saved layer, giving byte-identical output. Started by mpirun with several ranks, the
 * ranks share the work (docs/DISTRIBUTED.md): every rank calls it with the same settings,
 * rank 0's calibration windows are sent to the others (theirs may be NULL), and rank 0
 * writes the output. */
STRATA_API strata_status strata_quantize_model(const strata_quantize_params *params, strata_quantize_result *result);

/* Refuses (STRATA_ERR_INVALID_ARGUMENT, a message naming both paths) an output directory
 * that is, or would overwrite, something a run reads: the model directory, a directory
 * where one of its files really is (through symlinks), the checkpoint directory, or a
 * directory holding an input file whose name the output uses. Paths are compared by
 * device and inode. strata_quantize_model and strata_convert_model check the same; this
 * is for callers that read inputs (calibration data) before calling them. Any argument
 * but output_dir may be NULL. */
STRATA_API strata_status strata_output_check(const char *output_dir, const char *model_dir, const char *checkpoint_dir,
                                             const char *const *input_files, size_t n_input_files);

/* Resumes from a checkpoint directory alone: the model, output directory, settings and
 * calibration tokens recorded there are used. progress may be NULL. */
STRATA_API strata_status strata_quantize_resume(const char *checkpoint_dir, uint64_t max_memory,
                                                strata_progress_fn progress, void *progress_user,
                                                strata_quantize_result *result);

/* ---------------------------------------------------------------- streaming quantize-on-load */

/* A loader for parameters that arrive in pieces (docs/CONVERT.md). Register every
 * parameter first (name, shape, dtype, target format), then feed chunks in any order from
 * any source: a chunk is a box of the parameter (an offset and an extent per dimension,
 * so tensor-parallel slices and partial rows are covered) holding extent[0] x ... values,
 * row-major. The loader counts the elements each parameter received; the moment one is
 * complete it is quantized with scales computed from the whole tensor, handed to the ready
 * callback, and its high-precision buffer is freed. That buffer is allocated only when the
 * parameter's first chunk arrives, so memory holds the parameters in flight, not the model;
 * a chunk that is a whole parameter outside a group needs none (quantized from the
 * caller's memory).
 * Members of a fused group (q/k/v, gate/up) whose format has a tensor-level scale (FP8 per
 * tensor, NVFP4's global scale) wait until every member is complete and share the largest
 * amax. A chunk for an unknown parameter, of another dtype or rank, outside the shape, or
 * overlapping what the parameter already received is refused by name before any byte is
 * copied, and the loader stays usable; finish() names every incomplete parameter with its
 * missing element count. Calls on one loader must not run concurrently; quantization
 * itself runs on the thread pool. */
typedef struct strata_loader strata_loader;

#define STRATA_LOADER_MAX_DIMS 4

typedef struct strata_loader_param {
    const char *name;             /* copied */
    int n_dims;                   /* 1..STRATA_LOADER_MAX_DIMS */
    const int64_t *shape;         /* (n_dims), copied */
    strata_dtype dtype;           /* of every chunk: F32, BF16 or F16 when quantized */
    bool quantize;                /* false: handed over as received (norms, embeddings) */
    strata_quant_params quant;    /* quantize: the target format of this 2-D weight; amax 0 */
    const char *group;            /* fused group sharing a tensor-level scale, or NULL; copied */
} strata_loader_param;

/* A complete parameter, valid during the callback. */
typedef struct strata_loaded {
    const char *name;
    int n_dims;
    const int64_t *shape;
    strata_dtype dtype;
    const void *data;                  /* not quantized: the whole tensor as received */
    const strata_quant_params *quant;  /* quantized: the parameters used (amax set); else NULL */
    const strata_quant_shape *q_shape;
    const strata_qtensor *q;           /* quantized: codes and scales in strata's canonical layout */
} strata_loaded;

typedef strata_status (*strata_loader_ready_fn)(void *user, const strata_loaded *loaded);

typedef struct strata_loader_stats {
    int64_t n_params, n_complete;
    uint64_t bytes_in_flight;         /* high-precision buffers allocated now */
    uint64_t peak_bytes_in_flight;
} strata_loader_stats;

STRATA_API strata_status strata_loader_create(strata_loader_ready_fn ready, void *user, strata_loader **out);
/* Registering after the first chunk was fed is an error (groups must be known whole). */
STRATA_API strata_status strata_loader_register(strata_loader *loader, const strata_loader_param *param);
/* offsets and extents: (n_dims) each; data: extent[0] x ... x extent[n_dims-1] values of dtype. */
STRATA_API strata_status strata_loader_feed(strata_loader *loader, const char *name, strata_dtype dtype, int n_dims,
                                            const int64_t *offsets, const int64_t *extents, const void *data);
/* Every registered parameter must be complete (and handed over). */
STRATA_API strata_status strata_loader_finish(strata_loader *loader);
STRATA_API void strata_loader_get_stats(const strata_loader *loader, strata_loader_stats *out);
STRATA_API void strata_loader_free(strata_loader *loader);

/* Data-free conversion of a checkpoint through the loader (docs/CONVERT.md): each shard is
 * read once, in file order, in pieces of whole rows; every weight a quantize run would
 * quantize is quantized the moment it is complete and written to the output shards, the
 * rest is copied. Weight scales equal strata quantize --algo max's for the same scheme.
 * Schemes whose inputs need a calibrated scale (fp8, nvfp4) and int4-asym (no ModelOpt
 * format) are refused; experts stored stacked are written per expert. */
typedef struct strata_convert_params {
    const char *model_dir;
    const char *output_dir;        /* as strata_quantize_params.output_dir */
    strata_scheme scheme;          /* fp8-dynamic, fp8-block, nvfp4-weight-only, mxfp4, int8, int4 */
    const char *const *exclude;    /* (n_exclude) glob patterns on module names, beside the defaults */
    size_t n_exclude;
    uint64_t max_shard_bytes;      /* 0: 10 GB, as ModelOpt's export */
    uint64_t read_bytes;           /* the most read at once; 0: 1 GiB. A parameter (an expert's
                                    * slice of a stack) up to this size is read whole and
                                    * quantized without a copy, larger ones in row pieces.
                                    * Two read buffers (one being read ahead) of the largest
                                    * parameter, up to this size, are the bulk of the memory */
    bool overwrite;                /* as strata_quantize_params */
    bool allow_non_finite;         /* as strata_quantize_params */
    strata_attention_quant attention; /* as strata_quantize_params; FP8 needs calibration (quantize) */
    strata_export_format format;   /* STRATA_EXPORT_MODELOPT (default) or STRATA_EXPORT_COMPRESSED_TENSORS */
} strata_convert_params;

typedef struct strata_convert_result {
    int64_t n_quantized;           /* weights quantized */
    int64_t n_copied;              /* tensors written as they were */
    uint64_t bytes_read;
    uint64_t peak_bytes_in_flight; /* the loader's high-precision buffers at their largest */
    double seconds;
    int64_t n_non_finite_tensors;  /* written with NaN/Inf under allow_non_finite */
} strata_convert_result;

STRATA_API strata_status strata_convert_model(const strata_convert_params *params, strata_convert_result *result);
/* Whether strata_convert_model takes the scheme: it needs no calibrated input scale and
 * has a ModelOpt format. */
STRATA_API bool strata_scheme_convertible(strata_scheme scheme);

/* ---------------------------------------------------------------- synthetic models */

typedef struct strata_synth_params {
    strata_family family; /* LLAMA, QWEN3 or a MoE family */
    uint64_t seed;
    int n_layers;         /* 0: default (4) */
    int64_t hidden_size;  /* 0: default (128); at most 8192 */
    int n_experts;        /* MoE only; 0: default (8; 16 for deepseek_v3); at most 256 */
    bool stacked_experts; /* MoE only: write (n_experts, out, in) tensors */
    /* Shape overrides (0: the default), e.g. Llama-3-8B's layer: 4096, 14336, 128, 8. */
    int64_t intermediate_size; /* default hidden * 43 / 16 */
    int64_t head_dim;          /* default 32; n_heads = hidden / head_dim */
    int n_kv_heads;            /* default n_heads / 2 */
    int n_mtp_layers;          /* multi-token-prediction layers after the decoder layers (0..4):
                                * num_nextn_predict_layers, with GLM/DeepSeek's MTP tensor names */
    const char *config_patch;  /* NULL, or a JSON object whose members replace or add config.json
                                * keys before the tensors are laid out: {"q_lora_rank": null} */
    bool fp8_block;            /* linears (not routers) as DeepSeek ships them: FP8 E4M3 in 128x128
                                * blocks with an fp32 <weight>_scale_inv, quantization_config
                                * quant_method fp8 */
} strata_synth_params;

/* Writes a small, deterministic model (config.json + model.safetensors, bf16 weights drawn
 * from a seeded normal distribution, or their FP8 blocks) into dir, which must not exist yet. The same
 * parameters give byte-identical files on every machine. */
STRATA_API strata_status strata_synth_model(const char *dir, const strata_synth_params *params);

#ifdef __cplusplus
}
#endif
#endif /* STRATA_H */
