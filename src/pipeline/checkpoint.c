/*
 * checkpoint.c — checkpoint directory, manifest and per-layer state files (see
 * checkpoint.h).
 *
 * A layer state file is a safetensors file: per linear that has state, "<module>.stats"
 * F64 [6] = (input_amax, tokens, output_amax, weight_amax, weight_error, output_error),
 * and "<module>.clip" F32 for mse, "<module>.amax_floor" F32 for an expert's gate and up
 * under ModelOpt's INT4 AWQ (their shared block amax); for smoothing (AWQ, SmoothQuant) "<module>.smooth" F64
 * [4 + 11] = (AWQ's chosen grid index or -1, folded into the norm, into the previous linear,
 * the norm divided, AWQ's 11 losses) and its vectors "<module>.smooth_own", "smooth_input",
 * "smooth_columns", "smooth_experts" (n_in), "smooth_rows" (n_out) F32 (layer_calib.h's input_smoothing);
 * for GPTQ, which changes weights, "<module>.gptq" F64 [6]
 * = (outcome, damping, dead columns, Hessian-weighted error of round-to-nearest and of
 * GPTQ, global scale) and the updated weight as strata_quantize lays it out:
 * "<module>.codes", "<module>.scales", "<module>.zero_points" (U8, raw bytes);
 * "layer.stats" F64 [3] = (output_error, sum of squares of the output, sum of squares of
 * the quantization difference); metadata "last_tensor". F64 holds every fp32 value and
 * token count exactly.
 */
#include "pipeline/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/checksum.h"
#include "io/fsutil.h"
#include "io/json_file.h"
#include "quant/format.h"

enum { MANIFEST_VERSION = 3 }; /* 2: smoothing state is "<module>.smooth" (AWQ's was ".awq");
                                * 3: ... with rows_divided and 20 losses */
enum { SMOOTH_RECORD = 5 + AWQ_LOSSES }; /* "<m>.smooth": choice, four flags, the losses */
#define MANIFEST "manifest.json"
#define CALIB_FILE "calib-tokens.bin"

static char *crc_hex(uint32_t crc)
{
    char *s = malloc(9);
    if (s) snprintf(s, 9, "%08x", (unsigned)crc);
    return s;
}

static bool set_string(sjson *object, const char *key, const char *value)
{
    return sjson_set(object, key, value ? sjson_new_string(value) : sjson_new_null());
}

static bool set_crc(sjson *object, const char *key, uint32_t crc)
{
    char *hex = crc_hex(crc);
    bool ok = hex && set_string(object, key, hex);
    free(hex);
    return ok;
}

static bool read_crc(const sjson *object, const char *key, uint32_t *crc)
{
    const char *hex = sjson_as_string(sjson_get(object, key));
    char *end = NULL;
    if (!hex || strlen(hex) != 8) return false;
    unsigned long v = strtoul(hex, &end, 16);
    *crc = (uint32_t)v;
    return end && *end == '\0';
}

static char *file_in(const checkpoint *ck, const char *name) { return path_join(ck->dir, name); }

static strata_status write_manifest(checkpoint *ck)
{
    char *body_text = sjson_dump(ck->body, 2);
    sjson *root = sjson_new_object();
    bool ok = body_text && root && sjson_set(root, "body", sjson_ref(ck->body)) &&
              set_crc(root, "checksum", checksum_update(0, body_text, strlen(body_text)));
    char *path = file_in(ck, MANIFEST);
    strata_status status;
    if (!ok || !path) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "%s: out of memory", ck->dir);
    else status = json_file_write(path, root, 2);
    free(body_text);
    free(path);
    sjson_free(root);
    return status;
}

/* Parses and verifies manifest.json; *body is a new reference. */
static strata_status read_manifest(const char *dir, sjson **body)
{
    char *path = path_join(dir, MANIFEST);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    sjson *root = NULL;
    strata_status status = json_file_read(path, 64u << 20, true, &root);
    if (status == STRATA_ERR_FORMAT)
        status = strata_fail_context(status, "damaged checkpoint manifest; the run cannot be resumed from it — delete "
                                     "the directory or use a new --checkpoint-dir");
    const sjson *b = root ? sjson_get(root, "body") : NULL;
    uint32_t recorded = 0;
    if (status == STRATA_OK && (!sjson_is_object(b) || !read_crc(root, "checksum", &recorded)))
        status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint manifest (no body or checksum)", path);
    if (status == STRATA_OK) {
        char *dump = sjson_dump(b, 2);
        uint32_t crc = dump ? checksum_update(0, dump, strlen(dump)) : 0;
        free(dump);
        if (crc != recorded)
            status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint manifest (checksum %08x, recorded %08x); "
                                 "delete the directory or use a new --checkpoint-dir",
                                 path, (unsigned)crc, (unsigned)recorded);
    }
    if (status == STRATA_OK) {
        const char *format = sjson_as_string(sjson_get(b, "format"));
        int64_t version = 0;
        if (!format || strcmp(format, "strata-checkpoint") != 0 || !sjson_as_int64(sjson_get(b, "version"), &version))
            status = strata_fail(STRATA_ERR_FORMAT, "%s: not a strata checkpoint manifest", path);
        else if (version != MANIFEST_VERSION)
            status = strata_fail(STRATA_ERR_UNSUPPORTED, "%s: checkpoint format version %lld; this strata reads %d",
                                 path, (long long)version, MANIFEST_VERSION);
    }
    if (status == STRATA_OK) *body = sjson_ref(b);
    sjson_free(root);
    free(path);
    return status;
}

/* A directory without a manifest may be used when it holds nothing but what a run that
 * was killed before its first manifest leaves behind. */
static strata_status check_fresh_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read: %s", dir, strerror(errno));
    static const char *const OURS[] = {"calib-tokens", "layer-", "inputs-", "manifest.json", ".strata-"};
    strata_status status = STRATA_OK;
    for (struct dirent *e; status == STRATA_OK && (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        bool ours = false;
        for (size_t i = 0; i < sizeof OURS / sizeof OURS[0]; i++)
            ours |= strncmp(e->d_name, OURS[i], strlen(OURS[i])) == 0;
        if (!ours)
            status = strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                                 "%s is not a strata checkpoint directory (it holds '%s' and no manifest.json); "
                                 "give an empty or new --checkpoint-dir",
                                 dir, e->d_name);
    }
    closedir(d);
    return status;
}

static strata_status save_calib(checkpoint *ck, const int32_t *tokens, int64_t n, uint32_t *crc)
{
    char *path = file_in(ck, CALIB_FILE);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = file_write_atomic(path, tokens, (size_t)n * sizeof *tokens);
    *crc = checksum_update(0, tokens, (size_t)n * sizeof *tokens);
    free(path);
    return status;
}

static strata_status mismatch(const char *dir, const char *what, const char *then, const char *now)
{
    return strata_fail(STRATA_ERR_MISMATCH,
                       "checkpoint %s was made with %s %s; this run has %s; use a new --checkpoint-dir (or the "
                       "same settings to resume)",
                       dir, what, then ? then : "(none)", now);
}

static strata_status check_identity(const checkpoint *ck, const sjson *b, const run_identity *id)
{
    const char *version = sjson_as_string(sjson_get(b, "strata_version"));
    if (!version || strcmp(version, strata_version()) != 0)
        return mismatch(ck->dir, "strata", version, strata_version());
    const char *model = sjson_as_string(sjson_get(b, "model_fingerprint"));
    if (!model || strcmp(model, id->model_fingerprint) != 0) {
        char now[600];
        snprintf(now, sizeof now, "%s (%s)", id->model_fingerprint, id->model_dir);
        return mismatch(ck->dir, "another model: fingerprint", model, now);
    }
    const char *data = sjson_as_string(sjson_get(b, "data_fingerprint"));
    if (!data || strcmp(data, id->data_fingerprint) != 0)
        return mismatch(ck->dir, "other calibration data: fingerprint", data, id->data_fingerprint);
    const char *settings = sjson_as_string(sjson_get(b, "settings"));
    if (!settings || strcmp(settings, id->settings) != 0) return mismatch(ck->dir, "settings", settings, id->settings);
    int64_t n_layers = 0, completed = -1;
    if (!sjson_as_int64(sjson_get(b, "n_layers"), &n_layers) || n_layers != id->n_layers ||
        !sjson_as_int64(sjson_get(b, "completed_layers"), &completed) || completed < 0 || completed > n_layers)
        return strata_fail(STRATA_ERR_FORMAT, "%s/%s: damaged checkpoint manifest (layer counts)", ck->dir, MANIFEST);
    return STRATA_OK;
}

/* Verifies a file the manifest names against its recorded CRC-32. */
static strata_status verify_file(const checkpoint *ck, const sjson *entry, const char *what)
{
    const char *name = sjson_as_string(sjson_get(entry, "file"));
    uint32_t recorded = 0, crc = 0;
    uint64_t size = 0;
    if (!name || strchr(name, '/') || !read_crc(entry, "crc32", &recorded))
        return strata_fail(STRATA_ERR_FORMAT, "%s/%s: damaged checkpoint manifest (%s entry)", ck->dir, MANIFEST, what);
    char *path = file_in(ck, name);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = checksum_file(path, &crc, &size);
    if (status != STRATA_OK)
        status = strata_fail_context(status, "damaged checkpoint: %s is missing or unreadable", what);
    else if (crc != recorded)
        status = strata_fail(STRATA_ERR_FORMAT,
                             "%s: damaged checkpoint: checksum %08x, the manifest records %08x; delete the directory or "
                             "use a new --checkpoint-dir",
                             path, (unsigned)crc, (unsigned)recorded);
    free(path);
    return status;
}

strata_status checkpoint_open(const char *dir, const run_identity *id, const int32_t *tokens, checkpoint *ck)
{
    *ck = (checkpoint){.n_layers = id->n_layers};
    if (!make_dirs(dir))
        return strata_fail(STRATA_ERR_IO, "%s: cannot create the checkpoint directory: %s", dir, strerror(errno));
    ck->dir = strdup(dir);
    if (!ck->dir) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    char *manifest = file_in(ck, MANIFEST);
    bool exists = manifest && path_exists(manifest);
    free(manifest);
    strata_status status = STRATA_OK;
    if (exists) {
        status = read_manifest(dir, &ck->body);
        if (status == STRATA_OK) status = check_identity(ck, ck->body, id);
        int64_t completed = 0;
        if (status == STRATA_OK) {
            sjson_as_int64(sjson_get(ck->body, "completed_layers"), &completed);
            ck->completed = (int)completed;
            status = verify_file(ck, sjson_get(ck->body, "calib"), "the calibration tokens");
        }
        const sjson *layers = sjson_get(ck->body, "layers");
        for (int i = 0; status == STRATA_OK && i < ck->completed; i++) {
            char what[64];
            snprintf(what, sizeof what, "the state of layer %d", i);
            status = verify_file(ck, sjson_array_at(layers, (size_t)i), what);
        }
        if (status == STRATA_OK && ck->completed > 0 && ck->completed < ck->n_layers)
            status = verify_file(ck, sjson_get(ck->body, "inputs"), "the saved layer inputs");
        if (status != STRATA_OK) checkpoint_close(ck);
        return status;
    }
    status = check_fresh_dir(dir);
    uint32_t calib_crc = 0;
    if (status == STRATA_OK) status = save_calib(ck, tokens, id->n_samples * id->seq_len, &calib_crc);
    if (status != STRATA_OK) {
        checkpoint_close(ck);
        return status;
    }
    sjson *b = sjson_new_object(), *calib = sjson_new_object();
    bool ok = b && calib && set_string(b, "format", "strata-checkpoint") &&
              sjson_set(b, "version", sjson_new_int(MANIFEST_VERSION)) &&
              set_string(b, "strata_version", strata_version()) && set_string(b, "model_dir", id->model_dir) &&
              set_string(b, "output_dir", id->output_dir) &&
              set_string(b, "model_fingerprint", id->model_fingerprint) &&
              set_string(b, "data_fingerprint", id->data_fingerprint) && set_string(b, "settings", id->settings) &&
              sjson_set(b, "settings_detail", sjson_ref(id->settings_json)) &&
              sjson_set(b, "n_layers", sjson_new_int(id->n_layers)) &&
              sjson_set(b, "completed_layers", sjson_new_int(0)) && set_string(calib, "file", CALIB_FILE) &&
              set_crc(calib, "crc32", calib_crc) && sjson_set(calib, "n_samples", sjson_new_int(id->n_samples)) &&
              sjson_set(calib, "seq_len", sjson_new_int(id->seq_len)) && sjson_set(b, "calib", sjson_ref(calib)) &&
              sjson_set(b, "inputs", sjson_new_null()) && sjson_set(b, "layers", sjson_new_array());
    sjson_free(calib);
    ck->body = b;
    status = ok ? write_manifest(ck) : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status != STRATA_OK) checkpoint_close(ck);
    return status;
}

void checkpoint_close(checkpoint *ck)
{
    sjson_free(ck->body);
    free(ck->dir);
    *ck = (checkpoint){0};
}

static void layer_file_stem(int i, char *stem, size_t size) { snprintf(stem, size, "layer-%05d", i); }

static strata_status add_f64(strata_safetensors_writer *w, const char *module, const char *what, const double *v,
                             int64_t n)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", module, what);
    return strata_safetensors_writer_add(w, name, STRATA_DTYPE_F64, 1, &n, v, (uint64_t)n * sizeof *v);
}

static strata_status add_bytes(strata_safetensors_writer *w, const char *module, const char *what, const void *data,
                               size_t n)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", module, what);
    int64_t shape = (int64_t)n;
    return strata_safetensors_writer_add(w, name, STRATA_DTYPE_U8, 1, &shape, data, n);
}

/* GPTQ's outcome and updated weight. */
static strata_status add_gptq(strata_safetensors_writer *w, const linear_calib *c)
{
    const gptq_report *g = &c->gptq;
    double values[6] = {(double)g->outcome, g->damp, (double)g->dead_columns, g->error_rtn, g->error_gptq,
                        c->weight_q.global_scale};
    const char *m = c->desc->name;
    strata_status status = add_f64(w, m, "gptq", values, 6);
    strata_qtensor fetched = {0};
    const strata_qtensor *q = NULL;
    if (status == STRATA_OK) status = linear_calib_quantized(c, &fetched, &q);
    if (status != STRATA_OK || !q->codes) return status;
    strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
    status = add_bytes(w, m, "codes", q->codes, shape.code_bytes);
    if (status == STRATA_OK) status = add_bytes(w, m, "scales", q->scales, shape.scale_bytes);
    if (status == STRATA_OK && shape.zero_point_bytes)
        status = add_bytes(w, m, "zero_points", q->zero_points, shape.zero_point_bytes);
    quant_qtensor_free(&fetched);
    return status;
}

static strata_status add_f32(strata_safetensors_writer *w, const char *module, const char *what, const float *v,
                             int64_t n)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", module, what);
    return strata_safetensors_writer_add(w, name, STRATA_DTYPE_F32, 1, &n, v, (uint64_t)n * sizeof *v);
}

/* Smoothing's decisions (AWQ's, SmoothQuant's): what the export and a re-quantization of the
 * weight need. */
static strata_status add_smoothing(strata_safetensors_writer *w, const linear_calib *c)
{
    const char *m = c->desc->name;
    const input_smoothing *s = &c->smooth;
    double values[SMOOTH_RECORD] = {c->awq_alpha, s->in_norm, s->in_rows, s->norm_divided, s->rows_divided};
    memcpy(values + 5, c->awq_loss, sizeof c->awq_loss);
    strata_status status = add_f64(w, m, "smooth", values, SMOOTH_RECORD);
    if (status == STRATA_OK) status = add_f32(w, m, "smooth_own", s->own, c->desc->n_in);
    if (status == STRATA_OK) status = add_f32(w, m, "smooth_input", s->input, c->desc->n_in);
    if (status == STRATA_OK && s->columns) status = add_f32(w, m, "smooth_columns", s->columns, c->desc->n_in);
    if (status == STRATA_OK && s->rows) status = add_f32(w, m, "smooth_rows", s->rows, c->desc->n_out);
    if (status == STRATA_OK && s->experts) status = add_f32(w, m, "smooth_experts", s->experts, c->desc->n_in);
    return status;
}

strata_status checkpoint_save_layer(checkpoint *ck, const layer_calib *lc, const char *last_tensor)
{
    char stem[32];
    layer_file_stem(lc->index, stem, sizeof stem);
    strata_writer_params wp = {.dir = ck->dir, .stem = stem};
    strata_safetensors_writer *w = NULL;
    strata_status status = strata_safetensors_writer_create(&wp, &w);
    if (status == STRATA_OK) status = strata_safetensors_writer_set_metadata(w, "last_tensor", last_tensor);
    for (size_t i = 0; status == STRATA_OK && i < lc->layer->n_linears; i++) {
        const linear_calib *c = &lc->linears[i];
        double stats[6] = {c->input_amax, (double)c->tokens, c->output_amax, c->weight_amax, c->weight_error,
                           c->output_error};
        status = add_f64(w, c->desc->name, "stats", stats, 6);
        if (status == STRATA_OK && c->clip) status = add_f32(w, c->desc->name, "clip", c->clip, c->n_clip);
        if (status == STRATA_OK && c->amax_floor)
            status = add_f32(w, c->desc->name, "amax_floor", c->amax_floor, c->n_amax_floor);
        if (status == STRATA_OK && c->gptq_done) status = add_gptq(w, c);
        if (status == STRATA_OK && c->smooth.input) status = add_smoothing(w, c);
    }
    double layer_stats[3] = {lc->output_error, lc->output_sq_sum, lc->output_diff_sq_sum};
    if (status == STRATA_OK) status = add_f64(w, "layer", "stats", layer_stats, 3);
    if (status == STRATA_OK) status = strata_safetensors_writer_finish(w);
    strata_safetensors_writer_free(w);
    if (status != STRATA_OK) return strata_fail_context(status, "saving the checkpoint of layer %d", lc->index);

    char file[48];
    snprintf(file, sizeof file, "%s.safetensors", stem);
    char *path = file_in(ck, file);
    uint32_t crc = 0;
    uint64_t size = 0;
    status = path ? checksum_file(path, &crc, &size) : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    free(path);
    if (status != STRATA_OK) return status;
    sjson *layers = sjson_get(ck->body, "layers"), *entry = sjson_new_object();
    bool ok = entry && set_string(entry, "file", file) && set_crc(entry, "crc32", crc);
    size_t count = sjson_array_size(layers);
    while (ok && count < (size_t)lc->index) {
        ok = sjson_append(layers, sjson_new_null());
        count++;
    }
    if (ok && count == (size_t)lc->index) ok = sjson_append(layers, sjson_ref(entry));
    else if (ok) ok = sjson_array_set(layers, (size_t)lc->index, sjson_ref(entry));
    sjson_free(entry);
    return ok ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
}

static void inputs_file(int completed, char *file, size_t size) { snprintf(file, size, "inputs-%05d.bin", completed); }

/* The other ranks' rows, received in rank order, in the pieces act_store_visit sends them. */
typedef struct rank_rows {
    const calib_collective *coll;
    const int64_t *rows;   /* (n_ranks) */
    int64_t hidden;
    int rank;              /* the rank being received */
    int64_t left;          /* its rows still to come */
    uint16_t *piece;       /* (ACT_STORE_PIECE_ROWS, hidden) */
} rank_rows;

static strata_status receive_rows(void *ctx, const uint16_t **data, size_t *bytes)
{
    rank_rows *g = ctx;
    while (g->left == 0 && g->rank + 1 < g->coll->n_ranks) g->left = g->rows[++g->rank];
    *data = g->piece;
    *bytes = 0;
    if (g->left == 0) return STRATA_OK;
    int64_t n = g->left < ACT_STORE_PIECE_ROWS ? g->left : ACT_STORE_PIECE_ROWS;
    *bytes = (size_t)n * (size_t)g->hidden * 2;
    g->left -= n;
    return g->coll->recv_bytes(g->coll->ctx, g->rank, g->piece, *bytes);
}

static strata_status send_piece(void *ctx, const uint16_t *data, size_t bytes)
{
    const calib_collective *coll = ctx;
    return coll->send_bytes(coll->ctx, 0, data, bytes);
}

strata_status checkpoint_send_inputs(const act_store *store, const calib_collective *coll)
{
    return act_store_visit(store, send_piece, (void *)coll);
}

strata_status checkpoint_commit(checkpoint *ck, int completed, const act_store *store, const calib_collective *coll,
                                const int64_t *rank_rows_count)
{
    const char *old = sjson_as_string(sjson_get(sjson_get(ck->body, "inputs"), "file"));
    char *old_name = old ? strdup(old) : NULL;
    strata_status status = STRATA_OK;
    sjson *inputs = NULL;
    char file[48] = "";
    if (completed < ck->n_layers) {
        inputs_file(completed, file, sizeof file);
        char *path = file_in(ck, file);
        uint32_t crc = 0;
        uint64_t size = 0;
        rank_rows others = {.coll = coll, .rows = rank_rows_count, .hidden = store->hidden,
                            .piece = malloc((size_t)ACT_STORE_PIECE_ROWS * (size_t)store->hidden * 2)};
        bool gather = coll->n_ranks > 1;
        if (!path || !others.piece) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        else status = act_store_save(store, path, gather ? receive_rows : NULL, &others, &crc, &size);
        free(others.piece);
        free(path);
        inputs = sjson_new_object();
        if (status == STRATA_OK && !(inputs && set_string(inputs, "file", file) && set_crc(inputs, "crc32", crc) &&
                                     sjson_set(inputs, "bytes", sjson_new_int((int64_t)size))))
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (status == STRATA_OK &&
        !(sjson_set(ck->body, "inputs", inputs ? sjson_ref(inputs) : sjson_new_null()) &&
          sjson_set(ck->body, "completed_layers", sjson_new_int(completed))))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK) status = write_manifest(ck);
    if (status == STRATA_OK) {
        ck->completed = completed;
        /* The previous inputs are no longer referenced by the manifest on disk. */
        if (old_name && strcmp(old_name, file) != 0) {
            char *path = file_in(ck, old_name);
            if (path) remove(path);
            free(path);
        }
    }
    sjson_free(inputs);
    free(old_name);
    return status;
}

/* Copies tensor "<module>.<what>" of the layer file, which must be of dtype and n_bytes. */
static strata_status read_state(const strata_safetensors *st, const char *path, const char *module, const char *what,
                                strata_dtype dtype, void *out, size_t n_bytes)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", module, what);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t || t->dtype != dtype || t->n_bytes != n_bytes)
        return strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: tensor %s missing or malformed", path, name);
    memcpy(out, t->data, n_bytes);
    return STRATA_OK;
}

static strata_status read_f64(const strata_safetensors *st, const char *path, const char *module, const char *what,
                              double *out, int64_t n)
{
    return read_state(st, path, module, what, STRATA_DTYPE_F64, out, (size_t)n * sizeof *out);
}

static strata_status read_bytes(const strata_safetensors *st, const char *path, const char *module, const char *what,
                                void *out, size_t n)
{
    return read_state(st, path, module, what, STRATA_DTYPE_U8, out, n);
}

/* One of AWQ's vectors (n values), when the checkpoint has it: *out malloc'd. */
static strata_status load_f32_vector(const strata_safetensors *st, const char *path, const char *module,
                                     const char *what, int64_t n, bool required, float **out)
{
    char name[600];
    snprintf(name, sizeof name, "%s.%s", module, what);
    if (!required && !strata_safetensors_find(st, name)) return STRATA_OK;
    *out = malloc((size_t)n * sizeof **out);
    if (!*out) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    return read_state(st, path, module, what, STRATA_DTYPE_F32, *out, (size_t)n * sizeof **out);
}

/* Smoothing's state of a linear, when the checkpoint has it. */
static strata_status load_smoothing(const strata_safetensors *st, const char *path, linear_calib *c)
{
    char name[600];
    snprintf(name, sizeof name, "%s.smooth", c->desc->name);
    if (!strata_safetensors_find(st, name)) return STRATA_OK;
    double v[SMOOTH_RECORD];
    strata_status status = read_f64(st, path, c->desc->name, "smooth", v, SMOOTH_RECORD);
    if (status == STRATA_OK && !(v[0] >= -1 && v[0] < AWQ_LOSSES))
        return strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: %s holds an unknown AWQ choice", path, name);
    if (status != STRATA_OK) return status;
    input_smoothing *s = &c->smooth;
    c->awq_alpha = (int)v[0];
    s->in_norm = v[1] != 0;
    s->in_rows = v[2] != 0;
    s->norm_divided = v[3] != 0;
    s->rows_divided = v[4] != 0;
    memcpy(c->awq_loss, v + 5, sizeof c->awq_loss);
    int64_t K = c->desc->n_in;
    const char *m = c->desc->name;
    status = load_f32_vector(st, path, m, "smooth_own", K, true, &s->own);
    if (status == STRATA_OK) status = load_f32_vector(st, path, m, "smooth_input", K, true, &s->input);
    if (status == STRATA_OK) status = load_f32_vector(st, path, m, "smooth_columns", K, false, &s->columns);
    if (status == STRATA_OK) status = load_f32_vector(st, path, m, "smooth_rows", c->desc->n_out, false, &s->rows);
    if (status == STRATA_OK) status = load_f32_vector(st, path, m, "smooth_experts", K, false, &s->experts);
    return status;
}

/* mse's clip factors of a linear, when the checkpoint has them (one per scale block). */
static strata_status load_clip(const strata_safetensors *st, const char *path, linear_calib *c)
{
    char name[600];
    snprintf(name, sizeof name, "%s.clip", c->desc->name);
    const strata_tensor *t = strata_safetensors_find(st, name);
    if (!t) return STRATA_OK;
    if (t->dtype != STRATA_DTYPE_F32)
        return strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: %s is not F32", path, name);
    c->clip = malloc((size_t)t->n_elements * sizeof *c->clip + 1);
    if (!c->clip) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    memcpy(c->clip, t->data, (size_t)t->n_elements * 4);
    c->n_clip = t->n_elements;
    return STRATA_OK;
}

/* GPTQ's state of a linear, when the checkpoint has it. */
static strata_status load_gptq(const strata_safetensors *st, const char *path, linear_calib *c)
{
    char name[600];
    snprintf(name, sizeof name, "%s.gptq", c->desc->name);
    if (!strata_safetensors_find(st, name)) return STRATA_OK;
    double v[6];
    strata_status status = read_f64(st, path, c->desc->name, "gptq", v, 6);
    if (status != STRATA_OK) return status;
    if (!(v[0] >= GPTQ_APPLIED && v[0] <= GPTQ_RTN_NOT_POSITIVE_DEFINITE))
        return strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: %s holds an unknown GPTQ outcome", path, name);
    c->gptq = (gptq_report){.outcome = (gptq_outcome)v[0], .damp = v[1], .dead_columns = (int64_t)v[2],
                            .error_rtn = v[3], .error_gptq = v[4]};
    c->gptq_done = true;
    strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
    status = linear_calib_alloc_quantized(c, c->scheme);
    if (status == STRATA_OK) status = read_bytes(st, path, c->desc->name, "codes", c->weight_q.codes, shape.code_bytes);
    if (status == STRATA_OK) status = read_bytes(st, path, c->desc->name, "scales", c->weight_q.scales, shape.scale_bytes);
    if (status == STRATA_OK && shape.zero_point_bytes)
        status = read_bytes(st, path, c->desc->name, "zero_points", c->weight_q.zero_points, shape.zero_point_bytes);
    c->weight_q.global_scale = (float)v[5];
    return status;
}

strata_status checkpoint_load_layer(const checkpoint *ck, int i, layer_calib *lc, char **last_tensor)
{
    char file[48];
    layer_file_stem(i, file, sizeof file);
    strcat(file, ".safetensors");
    char *path = file_in(ck, file);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_safetensors *st = NULL;
    strata_status status = strata_safetensors_open(path, &st);
    for (size_t l = 0; status == STRATA_OK && l < lc->layer->n_linears; l++) {
        linear_calib *c = &lc->linears[l];
        double s[6];
        status = read_f64(st, path, c->desc->name, "stats", s, 6);
        if (status != STRATA_OK) break;
        c->input_amax = (float)s[0];
        c->tokens = (int64_t)s[1];
        c->output_amax = (float)s[2];
        c->weight_amax = (float)s[3];
        c->weight_error = s[4];
        c->output_error = s[5];
        status = load_gptq(st, path, c);
        if (status == STRATA_OK) status = load_smoothing(st, path, c);
        if (status == STRATA_OK) status = load_clip(st, path, c);
        if (status == STRATA_OK && c->quantized) {
            strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
            int64_t blocks = shape.scale_rows * shape.scale_cols;
            status = load_f32_vector(st, path, c->desc->name, "amax_floor", blocks, false, &c->amax_floor);
            if (c->amax_floor) c->n_amax_floor = blocks;
        }
    }
    double layer_stats[3];
    if (status == STRATA_OK) status = read_f64(st, path, "layer", "stats", layer_stats, 3);
    if (status == STRATA_OK) {
        lc->output_error = layer_stats[0];
        lc->output_sq_sum = layer_stats[1];
        lc->output_diff_sq_sum = layer_stats[2];
        const char *last = strata_safetensors_metadata(st, "last_tensor");
        *last_tensor = last ? strdup(last) : NULL;
        if (!*last_tensor) status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: no last_tensor", path);
    }
    strata_safetensors_close(st);
    free(path);
    return status;
}

strata_status checkpoint_load_inputs(const checkpoint *ck, act_store *store, int64_t row0, int64_t total_rows)
{
    const sjson *inputs = sjson_get(ck->body, "inputs");
    const char *name = sjson_as_string(sjson_get(inputs, "file"));
    uint32_t crc = 0;
    char expected[48];
    inputs_file(ck->completed, expected, sizeof expected);
    if (!name || strcmp(name, expected) != 0 || !read_crc(inputs, "crc32", &crc))
        return strata_fail(STRATA_ERR_FORMAT, "%s/%s: damaged checkpoint manifest (inputs)", ck->dir, MANIFEST);
    char *path = file_in(ck, name);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = act_store_load(store, path, &crc, row0, total_rows);
    free(path);
    return status;
}

strata_status checkpoint_load_share(const char *dir, int completed, act_store *store, int64_t row0, int64_t total_rows)
{
    char file[48];
    inputs_file(completed, file, sizeof file);
    char *path = path_join(dir, file);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = act_store_load(store, path, NULL, row0, total_rows);
    free(path);
    return status;
}

strata_status checkpoint_read_resume(const char *dir, resume_info *out)
{
    *out = (resume_info){0};
    sjson *body = NULL;
    strata_status status = read_manifest(dir, &body);
    if (status != STRATA_OK) return status;
    out->manifest = body;
    out->model_dir = sjson_as_string(sjson_get(body, "model_dir"));
    out->output_dir = sjson_as_string(sjson_get(body, "output_dir"));
    out->settings = sjson_get(body, "settings_detail");
    const sjson *calib = sjson_get(body, "calib");
    if (!out->model_dir || !out->output_dir || !sjson_is_object(out->settings) ||
        !sjson_as_int64(sjson_get(calib, "n_samples"), &out->n_samples) ||
        !sjson_as_int64(sjson_get(calib, "seq_len"), &out->seq_len) || out->n_samples <= 0 || out->seq_len <= 0) {
        resume_info_free(out);
        return strata_fail(STRATA_ERR_FORMAT, "%s/%s: damaged checkpoint manifest (run description)", dir, MANIFEST);
    }
    checkpoint ck = {.dir = (char *)dir};
    status = verify_file(&ck, calib, "the calibration tokens");
    char *path = path_join(dir, CALIB_FILE), *data = NULL;
    size_t length = 0;
    if (status == STRATA_OK) status = path ? file_read_all(path, 1ull << 34, &data, &length) : STRATA_ERR_OUT_OF_MEMORY;
    if (status == STRATA_OK && length != (size_t)(out->n_samples * out->seq_len) * sizeof(int32_t))
        status = strata_fail(STRATA_ERR_FORMAT, "%s: damaged checkpoint: %zu bytes of tokens", path, length);
    free(path);
    if (status != STRATA_OK) {
        free(data);
        resume_info_free(out);
        return status;
    }
    out->tokens = (int32_t *)(void *)data;
    return STRATA_OK;
}

void resume_info_free(resume_info *info)
{
    sjson_free(info->manifest);
    free(info->tokens);
    *info = (resume_info){0};
}
