/*
 * convert.c — data-free conversion through the streaming loader (strata_convert_model;
 * docs/CONVERT.md).
 *
 *   plan:  every checkpoint tensor becomes one or more loader parameters: a linear's weight
 *          that quantize would quantize (same exclusions) is quantized, fused q/k/v and
 *          gate/up sharing the tensor-level scale where the scheme has one; a stacked
 *          (n_experts, rows, in) tensor becomes one 2-D parameter per expert projection,
 *          named as the hub stores them; everything else is passed through
 *   read:  every tensor in file order, as pieces: each linear target (a weight, an expert's
 *          slice of a stack) whole, so the loader quantizes it from the read buffer
 *          without a copy (in pieces of whole rows when larger than the read size), a
 *          passed-through tensor in pieces of whole rows. A reading thread (read_ahead)
 *          reads the next piece while this one is quantized and written, from the page
 *          cache where it is cached and with O_DIRECT where not (direct_read.h: the
 *          input costs neither resident memory nor page-cache work)
 *   write: the loader hands over each parameter the moment it is complete; the callback
 *          appends its ModelOpt tensors (or the tensor as read) to the shard writer, and
 *          export_finish writes config.json, hf_quant_config.json and the tokenizer files
 *
 * Peak memory is the two read buffers (the largest linear target, up to the read size),
 * the parameters in flight (a fused group waiting for its last member, a parameter read
 * in pieces), one quantized tensor and the writer's staging buffer: it does not grow with
 * the model.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/error.h"
#include "core/strmap.h"
#include "export/export.h"
#include "io/checksum.h"
#include "io/fsutil.h"
#include "io/output_dir.h"
#include "io/read_ahead.h"
#include "pipeline/identity.h"
#include "pipeline/progress.h"
#include "quant/scheme.h"

#define DEFAULT_READ_BYTES (1ull << 30)

/* A loader parameter fed from rows [first_row, first_row + n_rows) of a tensor viewed as
 * (rows, last dimension); a tensor that is not 2-D (nor a stack) is one whole target. */
typedef struct feed_target {
    char *param;
    int64_t first_row, n_rows;
} feed_target;

typedef struct source_tensor {
    const strata_tensor *t;
    feed_target *targets;
    size_t n_targets;
    bool rows;        /* fed in row pieces (2-D tensors and stacks) */
} source_tensor;

/* One read: rows [r0, r1) of a source tensor (source_rows). */
typedef struct feed_piece {
    size_t source;
    int64_t r0, r1;
} feed_piece;

typedef struct convert_run {
    const strata_convert_params *p;
    strata_model *model;
    const strata_arch *arch;
    const scheme_info *scheme;
    exporter ex;
    strata_loader *loader;
    source_tensor *sources;
    size_t n_sources;
    feed_piece *pieces;               /* (n_pieces) in file order */
    read_range *ranges;               /* (n_pieces) the bytes of each piece */
    size_t n_pieces;
    int64_t n_quantized, n_copied;
    uint64_t bytes_read, bytes_total;
    double start, last_report;
    output_dir out;                   /* lock, staging area, commit */
    strmap f32_outputs;               /* passed-through parameters written in F32 (sigmoid routers) */
} convert_run;

/* ---------------------------------------------------------------- writing */

static strata_status write_loaded(void *user, const strata_loaded *loaded)
{
    convert_run *r = user;
    if (!loaded->quant) {
        const strata_safetensors *st = strata_model_tensors(r->model);
        const strata_tensor *t = strata_safetensors_find(st, loaded->name);
        const char *source = t ? strata_safetensors_shard_path(st, t->shard) : NULL;
        r->n_copied++;
        if (strmap_find(&r->f32_outputs, loaded->name, NULL))
            return export_tensor_f32(&r->ex, loaded->name, loaded->dtype, loaded->n_dims, loaded->shape, loaded->data,
                                     source);
        return export_tensor(&r->ex, loaded->name, loaded->dtype, loaded->n_dims, loaded->shape, loaded->data, source);
    }
    size_t n = strlen(loaded->name);
    char module[512];
    snprintf(module, sizeof module, "%.*s", (int)(n > 7 ? n - 7 : n), loaded->name); /* without ".weight" */
    r->n_quantized++;
    return export_weight_tensors(&r->ex, r->scheme, module, loaded->shape[0], loaded->shape[1], loaded->dtype, loaded->q,
                                 loaded->q_shape);
}

/* ---------------------------------------------------------------- the plan */

static quant_recipe convert_recipe(const convert_run *r)
{
    return (quant_recipe){.arch = r->arch, .scheme = r->scheme, .attention = r->p->attention,
                          .exclude = r->p->exclude, .n_exclude = r->p->n_exclude};
}

static bool linear_quantized(const convert_run *r, const strata_linear *l)
{
    quant_recipe recipe = convert_recipe(r);
    return recipe_linear_scheme(&recipe, l) != NULL;
}

/* The fused group of a quantized linear whose scheme shares the tensor-level scale, as
 * quantize groups them (q/k/v; gate/up of the MLP, of each expert, of the shared expert). */
static void group_of(const strata_layer *layer, const strata_linear *l, char *out, size_t size)
{
    switch (l->role) {
    case STRATA_LINEAR_Q:
    case STRATA_LINEAR_K:
    case STRATA_LINEAR_V:
    case STRATA_LINEAR_Q_A:
    case STRATA_LINEAR_KV_A: snprintf(out, size, "%d.qkv", layer->index); return;
    case STRATA_LINEAR_GATE:
    case STRATA_LINEAR_UP:
        if (l->expert >= 0) snprintf(out, size, "%d.expert%d.gate_up", layer->index, l->expert);
        else snprintf(out, size, "%d.%s.gate_up", layer->index, l->shared_expert ? "shared" : "mlp");
        return;
    default: out[0] = '\0';
    }
}

/* Whether the linear's fused group shares the tensor-level scale (scheme.h). */
static bool shares_amax(const convert_run *r, const strata_linear *l)
{
    amax_sharing sharing = scheme_sharing(r->scheme, strata_export_convention(r->p->format, STRATA_CONVENTION_MODELOPT), false);
    return sharing == SHARE_FUSED_GROUPS || (sharing == SHARE_EXPERT_GATE_UP && l->expert >= 0);
}

static strata_status add_target(convert_run *r, source_tensor *s, const strata_loader_param *param,
                                int64_t first_row, int64_t n_rows)
{
    feed_target *grown = realloc(s->targets, (s->n_targets + 1) * sizeof *grown);
    if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    s->targets = grown;
    feed_target *t = &s->targets[s->n_targets];
    *t = (feed_target){.param = strdup(param->name), .first_row = first_row, .n_rows = n_rows};
    if (!t->param) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    s->n_targets++;
    return strata_loader_register(r->loader, param);
}

/* The parameter of one linear: quantized or passed through, named <linear>.weight. */
static strata_status plan_linear(convert_run *r, source_tensor *s, const strata_layer *layer, const strata_linear *l)
{
    char name[512], group[96];
    snprintf(name, sizeof name, "%s.weight", l->name);
    int64_t shape[2] = {l->n_out, l->n_in};
    bool quantize = linear_quantized(r, l);
    group_of(layer, l, group, sizeof group);
    strata_loader_param param = {.name = name, .n_dims = 2, .shape = shape, .dtype = s->t->dtype,
                                 .quantize = quantize,
                                 .quant = scheme_weight_params(r->scheme, strata_export_convention(r->p->format, STRATA_CONVENTION_MODELOPT), 0),
                                 .group = quantize && group[0] && shares_amax(r, l) ? group : NULL};
    int64_t first_row = l->stack_index >= 0 ? l->stack_index * s->t->shape[1] + l->row_offset : 0;
    strata_status status = add_target(r, s, &param, first_row, l->n_out);
    /* keyed by the target's own copy of the name, which lives as long as the run */
    if (status == STRATA_OK && !quantize && export_router_in_f32(r->arch, l) &&
        !strmap_insert(&r->f32_outputs, s->targets[s->n_targets - 1].param, 0, NULL, NULL))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return status;
}

static int by_file_position(const void *a, const void *b)
{
    const strata_tensor *x = ((const source_tensor *)a)->t, *y = ((const source_tensor *)b)->t;
    if (x->shard != y->shard) return x->shard < y->shard ? -1 : 1;
    return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

static strata_status plan(convert_run *r)
{
    const strata_safetensors *st = strata_model_tensors(r->model);
    size_t n = strata_safetensors_count(st);
    r->sources = calloc(n ? n : 1, sizeof *r->sources);
    if (!r->sources) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    r->n_sources = n;
    strmap by_name = {0};
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        r->sources[i].t = strata_safetensors_at(st, i);
        r->bytes_total += r->sources[i].t->n_bytes;
        if (!strmap_insert(&by_name, r->sources[i].t->name, i, NULL, NULL))
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    /* Linears first: their weights (whole tensors, or slices of a stack). */
    for (int L = 0; status == STRATA_OK && L < r->arch->n_layers; L++) {
        const strata_layer *layer = &r->arch->layers[L];
        for (size_t k = 0; status == STRATA_OK && k < layer->n_linears; k++) {
            const strata_linear *l = &layer->linears[k];
            size_t i;
            if (!strmap_find(&by_name, l->weight, &i))
                status = strata_fail(STRATA_ERR_NOT_FOUND, "%s: tensor %s is missing", r->p->model_dir, l->weight);
            else {
                r->sources[i].rows = true;
                status = plan_linear(r, &r->sources[i], layer, l);
            }
        }
    }
    /* Everything else is passed through whole. */
    for (size_t i = 0; status == STRATA_OK && i < n; i++) {
        source_tensor *s = &r->sources[i];
        if (s->n_targets > 0) continue;
        const strata_tensor *t = s->t;
        int64_t scalar = 1;
        strata_loader_param param = {.name = t->name, .n_dims = t->n_dims ? t->n_dims : 1,
                                     .shape = t->n_dims ? t->shape : &scalar, .dtype = t->dtype};
        if (t->n_dims > STRATA_LOADER_MAX_DIMS)
            status = strata_fail(STRATA_ERR_UNSUPPORTED, "%s: tensor %s has %d dimensions", r->p->model_dir, t->name,
                                 t->n_dims);
        else status = add_target(r, s, &param, 0, 0);
    }
    strmap_free(&by_name);
    if (status == STRATA_OK) qsort(r->sources, n, sizeof *r->sources, by_file_position);
    return status;
}

/* ---------------------------------------------------------------- reading */

static void report_progress(convert_run *r, size_t shard, size_t n_shards, bool force)
{
    double now = seconds_now();
    if (!force && now - r->last_report < 2.0) return;
    r->last_report = now;
    double elapsed = now - r->start, rate = elapsed > 0 ? (double)r->bytes_read / elapsed : 0;
    double eta = rate > 0 ? (double)(r->bytes_total - r->bytes_read) / rate : 0;
    strata_log(STRATA_LOG_INFO, "shard %zu/%zu | %.2f of %.2f GiB read | %.0f MiB/s | RSS %.2f GiB | ETA %.0fs",
               shard + 1, n_shards, (double)r->bytes_read / (1u << 30), (double)r->bytes_total / (1u << 30),
               rate / (1u << 20), (double)process_rss_bytes() / (1u << 30), eta);
}

/* A tensor as rows: of its last dimension when it feeds linears (2-D, or a stack viewed
 * as (n_experts * rows, in)), of its first when it is passed through. */
static int64_t source_rows(const source_tensor *s)
{
    const strata_tensor *t = s->t;
    if (t->n_dims == 0) return 1;
    if (!s->rows) return t->shape[0];
    return t->n_dims == 3 ? t->shape[0] * t->shape[1] : t->shape[0];
}

static size_t source_row_bytes(const source_tensor *s)
{
    int64_t rows = source_rows(s);
    return rows > 0 ? (size_t)(s->t->n_bytes / (uint64_t)rows) : 0;
}

/* Feeds rows [r0, r1) of tensor s (in data) to every target they cover. */
static strata_status feed_rows(convert_run *r, const source_tensor *s, const uint8_t *data, int64_t r0, int64_t r1)
{
    const strata_tensor *t = s->t;
    size_t row_bytes = source_row_bytes(s);
    if (!s->rows) { /* passed through: a box of whole rows along the first dimension */
        int64_t offsets[STRATA_LOADER_MAX_DIMS] = {r0}, extents[STRATA_LOADER_MAX_DIMS] = {r1 - r0};
        for (int d = 1; d < t->n_dims; d++) extents[d] = t->shape[d];
        if (t->n_dims == 0) extents[0] = 1;
        return strata_loader_feed(r->loader, t->name, t->dtype, t->n_dims ? t->n_dims : 1, offsets, extents, data);
    }
    int64_t cols = t->shape[t->n_dims - 1];
    strata_status status = STRATA_OK;
    for (size_t k = 0; status == STRATA_OK && k < s->n_targets; k++) {
        const feed_target *target = &s->targets[k];
        int64_t lo = r0 > target->first_row ? r0 : target->first_row;
        int64_t hi = r1 < target->first_row + target->n_rows ? r1 : target->first_row + target->n_rows;
        if (lo >= hi) continue;
        int64_t offsets[2] = {lo - target->first_row, 0}, extents[2] = {hi - lo, cols};
        status = strata_loader_feed(r->loader, target->param, t->dtype, 2, offsets, extents,
                                    data + (size_t)(lo - r0) * row_bytes);
    }
    return status;
}

/* The size of one read: the largest linear target (read whole, it is quantized without a
 * copy), up to the read size, and at least the widest row. Passed-through tensors are
 * read in pieces of that size: they need not be whole to be copied. */
static size_t read_piece_bytes(const convert_run *r)
{
    size_t widest_row = 0, largest_target = 0, largest = 0;
    for (size_t i = 0; i < r->n_sources; i++) {
        const source_tensor *s = &r->sources[i];
        size_t row = source_row_bytes(s);
        if (row > widest_row) widest_row = row;
        if (s->t->n_bytes > largest) largest = s->t->n_bytes;
        for (size_t k = 0; s->rows && k < s->n_targets; k++)
            if ((size_t)s->targets[k].n_rows * row > largest_target) largest_target = (size_t)s->targets[k].n_rows * row;
    }
    size_t bytes = r->p->read_bytes ? (size_t)r->p->read_bytes : DEFAULT_READ_BYTES;
    size_t wanted = largest_target ? largest_target : largest;
    if (bytes > wanted) bytes = wanted;
    return bytes > widest_row ? bytes : widest_row;
}

static strata_status add_piece(convert_run *r, size_t source, int64_t r0, int64_t r1)
{
    if (r->n_pieces % 256 == 0) {
        feed_piece *pieces = realloc(r->pieces, (r->n_pieces + 256) * sizeof *pieces);
        read_range *ranges = pieces ? realloc(r->ranges, (r->n_pieces + 256) * sizeof *ranges) : NULL;
        if (pieces) r->pieces = pieces;
        if (ranges) r->ranges = ranges;
        if (!pieces || !ranges) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    const source_tensor *s = &r->sources[source];
    size_t row_bytes = source_row_bytes(s);
    r->pieces[r->n_pieces] = (feed_piece){.source = source, .r0 = r0, .r1 = r1};
    r->ranges[r->n_pieces] = (read_range){.file = s->t->shard, .offset = s->t->file_offset + (uint64_t)r0 * row_bytes,
                                          .bytes = (size_t)(r1 - r0) * row_bytes};
    r->n_pieces++;
    return STRATA_OK;
}

/* Every read, in file order: each linear target whole (or in pieces of whole rows when
 * larger than a read), each passed-through tensor in pieces of whole rows. */
static strata_status plan_reads(convert_run *r)
{
    size_t piece_bytes = read_piece_bytes(r);
    strata_status status = STRATA_OK;
    for (size_t i = 0; status == STRATA_OK && i < r->n_sources; i++) {
        const source_tensor *s = &r->sources[i];
        size_t row_bytes = source_row_bytes(s);
        int64_t per_piece = row_bytes ? (int64_t)(piece_bytes / row_bytes) : source_rows(s);
        if (!s->rows) {
            if (row_bytes == 0) status = add_piece(r, i, 0, source_rows(s)); /* no bytes: one empty piece */
            for (int64_t r0 = 0; status == STRATA_OK && row_bytes && r0 < source_rows(s); r0 += per_piece)
                status = add_piece(r, i, r0, r0 + per_piece < source_rows(s) ? r0 + per_piece : source_rows(s));
            continue;
        }
        for (size_t k = 0; status == STRATA_OK && k < s->n_targets; k++) {
            int64_t end = s->targets[k].first_row + s->targets[k].n_rows;
            for (int64_t r0 = s->targets[k].first_row; status == STRATA_OK && r0 < end; r0 += per_piece)
                status = add_piece(r, i, r0, r0 + per_piece < end ? r0 + per_piece : end);
        }
    }
    return status;
}

/* Reads every piece (the next one read while this one is quantized and written) and
 * feeds it to the loader. */
static strata_status read_all(convert_run *r)
{
    const strata_safetensors *st = strata_model_tensors(r->model);
    size_t n_shards = strata_safetensors_shard_count(st);
    const char **paths = calloc(n_shards ? n_shards : 1, sizeof *paths);
    if (!paths) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n_shards; i++) paths[i] = strata_safetensors_shard_path(st, i);
    read_ahead *ra = NULL;
    strata_status status = plan_reads(r);
    if (status == STRATA_OK) status = read_ahead_start(paths, n_shards, r->ranges, r->n_pieces, &ra);
    for (size_t i = 0; status == STRATA_OK && i < r->n_pieces; i++) {
        const feed_piece *piece = &r->pieces[i];
        const source_tensor *s = &r->sources[piece->source];
        const uint8_t *data = NULL;
        status = read_ahead_next(ra, &data);
        if (status == STRATA_OK) status = feed_rows(r, s, data, piece->r0, piece->r1);
        if (status != STRATA_OK) status = strata_fail_context(status, "converting %s", s->t->name);
        r->bytes_read += r->ranges[i].bytes;
        bool shard_done = i + 1 == r->n_pieces || r->sources[r->pieces[i + 1].source].t->shard != s->t->shard;
        if (status == STRATA_OK) report_progress(r, s->t->shard, n_shards, shard_done);
    }
    read_ahead_stop(ra);
    free(paths);
    return status;
}

/* ---------------------------------------------------------------- the run */

bool strata_scheme_convertible(strata_scheme scheme)
{
    const scheme_info *s = scheme_get(scheme);
    return s && !input_has_static_scale(s->input);
}

static strata_status check_scheme(const scheme_info *s, strata_export_format format)
{
    if (!s) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "convert: invalid scheme");
    if (input_has_static_scale(s->input)) {
        char names[256] = "";
        for (int i = 0, n = 0; i < STRATA_SCHEME_COUNT; i++)
            if (strata_scheme_convertible((strata_scheme)i))
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", n++ ? ", " : "",
                         strata_scheme_name((strata_scheme)i));
        return strata_fail(STRATA_ERR_UNSUPPORTED, "scheme %s quantizes inputs with a calibrated static scale; strata "
                           "convert is data-free: use strata quantize, or convert to one of %s", s->name, names);
    }
    if (format != STRATA_EXPORT_MODELOPT && format != STRATA_EXPORT_COMPRESSED_TENSORS)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "strata convert writes ModelOpt or compressed-tensors checkpoints, "
                           "not %s", strata_export_format_name(format));
    if (format == STRATA_EXPORT_MODELOPT && !s->modelopt_algo)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "scheme %s has no ModelOpt format; use --format compressed-tensors",
                           s->name);
    return STRATA_OK;
}

/* The run's id (its staging area's name, recorded in the manifest): the model's
 * fingerprint and every setting that changes the output, so the same command writes the
 * same bytes. */
static strata_status make_run_id(const convert_run *r, char out[16])
{
    const strata_convert_params *p = r->p;
    char fingerprint[48];
    strata_status status = identity_model_fingerprint(r->model, p->model_dir, fingerprint, sizeof fingerprint);
    if (status != STRATA_OK) return status;
    uint32_t crc = checksum_update(0, fingerprint, strlen(fingerprint));
    crc = checksum_update(crc, r->scheme->name, strlen(r->scheme->name));
    for (size_t i = 0; i < p->n_exclude; i++) crc = checksum_update(crc, p->exclude[i], strlen(p->exclude[i]) + 1);
    crc = checksum_update(crc, &p->max_shard_bytes, sizeof p->max_shard_bytes);
    if (p->attention != STRATA_ATTENTION_AUTO) /* only then: earlier run ids stay as they were */
        crc = checksum_update(crc, strata_attention_quant_name(p->attention), strlen(strata_attention_quant_name(p->attention)));
    if (p->format != STRATA_EXPORT_MODELOPT) /* likewise */
        crc = checksum_update(crc, strata_export_format_name(p->format), strlen(strata_export_format_name(p->format)));
    snprintf(out, 16, "%08x", (unsigned)crc);
    return STRATA_OK;
}

static strata_status convert(convert_run *r, strata_convert_result *result)
{
    const strata_convert_params *p = r->p;
    strata_status status = strata_model_open(p->model_dir, &r->model);
    if (status != STRATA_OK) return status;
    r->arch = strata_model_arch(r->model);
    const strata_quant_info *q = strata_model_quantization(r->model);
    if (q)
        return strata_fail(STRATA_ERR_UNSUPPORTED, "%s is already quantized (%s, from %s); strata convert reads "
                           "bf16/fp16/fp32 checkpoints", p->model_dir, q->method, q->source);
    char run_id[16];
    status = make_run_id(r, run_id);
    output_inputs inputs = {.model_dir = p->model_dir};
    output_params op = {.dir = p->output_dir, .run_id = run_id, .command = "convert", .overwrite = p->overwrite,
                        .inputs = &inputs};
    if (status == STRATA_OK) status = output_open(&op, &r->out);
    if (status == STRATA_OK) status = strata_loader_create(write_loaded, r, &r->loader);
    if (status == STRATA_OK) status = plan(r);
    r->ex = (exporter){.model = r->model, .model_dir = p->model_dir, .output_dir = r->out.staging, .scheme = r->scheme,
                       .format = p->format, .convention = strata_export_convention(p->format, STRATA_CONVENTION_MODELOPT),
                       .recipe = convert_recipe(r),
                       .allow_non_finite = p->allow_non_finite};
    strata_writer_params wp = {.dir = r->out.staging,
                               .max_shard_bytes = p->max_shard_bytes ? p->max_shard_bytes : EXPORT_DEFAULT_SHARD_BYTES};
    if (status == STRATA_OK) status = strata_safetensors_writer_create(&wp, &r->ex.writer);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(r->ex.writer, "format", "pt");
    r->start = r->last_report = seconds_now();
    if (status == STRATA_OK) status = read_all(r);
    if (status == STRATA_OK) status = strata_loader_finish(r->loader);
    if (status == STRATA_OK) status = strata_safetensors_writer_finish(r->ex.writer);
    if (status == STRATA_OK) status = export_finish(&r->ex, NULL, 0);
    if (status == STRATA_OK) status = output_commit(&r->out);
    if (status != STRATA_OK) return status;
    strata_loader_stats stats;
    strata_loader_get_stats(r->loader, &stats);
    *result = (strata_convert_result){.n_quantized = r->n_quantized, .n_copied = r->n_copied,
                                      .bytes_read = r->bytes_read, .peak_bytes_in_flight = stats.peak_bytes_in_flight,
                                      .seconds = seconds_now() - r->start,
                                      .n_non_finite_tensors = (int64_t)r->ex.n_non_finite};
    return STRATA_OK;
}

strata_status strata_convert_model(const strata_convert_params *params, strata_convert_result *result)
{
    if (!params || !result || !params->model_dir || !params->output_dir)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_convert_model: NULL argument");
    *result = (strata_convert_result){0};
    convert_run r = {.p = params, .scheme = scheme_get(params->scheme)};
    strata_status status = check_scheme(r.scheme, params->format);
    if (status == STRATA_OK && params->attention == STRATA_ATTENTION_FP8)
        status = strata_fail(STRATA_ERR_UNSUPPORTED, "--attention fp8 quantizes attention inputs with calibrated static "
                             "scales; strata convert is data-free: use strata quantize");
    for (size_t i = 0; status == STRATA_OK && i < params->n_exclude; i++)
        if (!params->exclude || !params->exclude[i] || !params->exclude[i][0])
            status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "empty --exclude pattern");
    /* Before anything is read or created. */
    output_inputs inputs = {.model_dir = params->model_dir};
    if (status == STRATA_OK) status = output_check_inputs(params->output_dir, &inputs);
    if (status != STRATA_OK) return status;
    status = convert(&r, result);
    strata_safetensors_writer_free(r.ex.writer); /* removes unfinished shards */
    exporter_free_notes(&r.ex);
    strata_loader_free(r.loader);
    strmap_free(&r.f32_outputs);
    for (size_t i = 0; i < r.n_sources; i++) {
        for (size_t k = 0; k < r.sources[i].n_targets; k++) free(r.sources[i].targets[k].param);
        free(r.sources[i].targets);
    }
    free(r.sources);
    free(r.pieces);
    free(r.ranges);
    output_close(&r.out);
    strata_model_close(r.model);
    return status;
}
