/*
 * stream_loader.c — streaming quantize-on-load (include/strata.h, "streaming
 * quantize-on-load"; REFERENCE.md; docs/CONVERT.md).
 *
 * Each registered parameter keeps the boxes of the chunks it received and the sum of
 * their elements. A chunk is checked (known name, dtype and rank, inside the shape, no
 * overlap with any earlier box) before a byte is copied; the parameter's high-precision
 * buffer (its shape in its dtype) is allocated when its first chunk arrives. When the sum
 * reaches the element count the parameter is complete:
 *
 *   not quantized          -> handed over as received, buffer freed
 *   quantized, no group    -> quantized (scales from the whole tensor), handed over, freed
 *   quantized, in a group  -> its amax is taken and it waits; when the last member of the
 *      whose format has a     group completes, every member is quantized with the group's
 *      tensor-level scale     largest amax, handed over and freed
 *
 * A chunk that is a whole parameter outside any group (what a converter reading tensor by
 * tensor sends) skips the buffer: it is quantized straight from the caller's memory. The
 * codes of a quantized parameter go to one buffer the loader keeps and reuses, as large as
 * the largest quantized tensor so far: fresh pages for every tensor would cost a page
 * fault per 4 KiB, more than the quantization.
 *
 * Overlap is checked against every earlier box of the same parameter, O(chunks^2) per
 * parameter: a few thousand comparisons for tensor-parallel slices.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/big_buffer.h"
#include "core/error.h"
#include "core/strmap.h"
#include "kernels/cpu.h"
#include "quant/format.h"
#include "strata.h"

typedef struct chunk_box {
    int64_t offset[STRATA_LOADER_MAX_DIMS], extent[STRATA_LOADER_MAX_DIMS];
} chunk_box;

typedef enum param_state {
    PARAM_EXPECTED,   /* no chunk yet, no buffer */
    PARAM_RECEIVING,
    PARAM_WAITING,    /* complete, waiting for its group */
    PARAM_DONE,       /* handed over, buffer freed */
} param_state;

typedef struct loader_param {
    char *name, *group_name;
    int n_dims;
    int64_t shape[STRATA_LOADER_MAX_DIMS];
    strata_dtype dtype;
    bool quantize;
    strata_quant_params quant;
    int64_t n_elements, received;
    chunk_box *boxes;
    size_t n_boxes, box_capacity;
    uint8_t *buffer;
    float amax;
    int64_t group;    /* index into groups, or -1 */
    param_state state;
} loader_param;

typedef struct loader_group {
    size_t *members;  /* parameter indices */
    size_t n_members, n_waiting;
} loader_group;

struct strata_loader {
    strata_loader_ready_fn ready;
    void *user;
    loader_param *params;
    size_t n_params, param_capacity;
    strmap by_name, group_by_name;
    loader_group *groups;
    size_t n_groups;
    bool fed;             /* a chunk arrived: registration is closed */
    uint8_t *codes;       /* reused for every quantized parameter's codes */
    size_t codes_capacity;
    int64_t n_complete;
    uint64_t bytes_in_flight, peak_bytes_in_flight;
};

static uint64_t param_bytes(const loader_param *p)
{
    return (uint64_t)p->n_elements * strata_dtype_size(p->dtype);
}

strata_status strata_loader_create(strata_loader_ready_fn ready, void *user, strata_loader **out)
{
    if (!ready || !out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_loader_create: NULL argument");
    *out = calloc(1, sizeof **out);
    if (!*out) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    (*out)->ready = ready;
    (*out)->user = user;
    return STRATA_OK;
}

static void free_buffer(strata_loader *l, loader_param *p)
{
    if (!p->buffer) return;
    free(p->buffer);
    p->buffer = NULL;
    l->bytes_in_flight -= param_bytes(p);
}

void strata_loader_free(strata_loader *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n_params; i++) {
        free(l->params[i].name);
        free(l->params[i].group_name);
        free(l->params[i].boxes);
        free(l->params[i].buffer);
    }
    for (size_t g = 0; g < l->n_groups; g++) free(l->groups[g].members);
    free(l->params);
    free(l->groups);
    strmap_free(&l->by_name);
    strmap_free(&l->group_by_name);
    free(l->codes);
    free(l);
}

void strata_loader_get_stats(const strata_loader *l, strata_loader_stats *out)
{
    *out = (strata_loader_stats){.n_params = (int64_t)l->n_params, .n_complete = l->n_complete,
                                 .bytes_in_flight = l->bytes_in_flight,
                                 .peak_bytes_in_flight = l->peak_bytes_in_flight};
}

static strata_status check_param(const strata_loader_param *p)
{
    if (!p->name || !p->name[0]) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: a parameter needs a name");
    if (p->n_dims < 1 || p->n_dims > STRATA_LOADER_MAX_DIMS || !p->shape)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: %d dimensions; 1 to %d are supported", p->name,
                           p->n_dims, STRATA_LOADER_MAX_DIMS);
    for (int d = 0; d < p->n_dims; d++)
        if (p->shape[d] <= 0 || p->shape[d] > (1LL << 40))
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: dimension %d is %lld", p->name, d,
                               (long long)p->shape[d]);
    if (strata_dtype_size(p->dtype) == 0)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: invalid dtype", p->name);
    if (!p->quantize) return STRATA_OK;
    if (p->n_dims != 2)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: only 2-D weights are quantized, not %d-D", p->name,
                           p->n_dims);
    if (!strata_dtype_is_float(p->dtype) || p->dtype == STRATA_DTYPE_F8_E4M3)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: quantizes F32, BF16 or F16, not %s", p->name,
                           strata_dtype_name(p->dtype));
    strata_quant_shape shape;
    strata_status status = strata_quant_shape_get(&p->quant, p->shape[0], p->shape[1], &shape);
    if (status != STRATA_OK) return strata_fail_context(status, "loader: %s", p->name);
    return STRATA_OK;
}

static strata_status join_group(strata_loader *l, loader_param *p, size_t index)
{
    bool present;
    size_t g;
    if (!strmap_insert(&l->group_by_name, p->group_name, l->n_groups, &present, &g))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (!present) {
        loader_group *groups = realloc(l->groups, (l->n_groups + 1) * sizeof *groups);
        if (!groups) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        l->groups = groups;
        g = l->n_groups++;
        l->groups[g] = (loader_group){0};
    }
    loader_group *group = &l->groups[g];
    size_t *members = realloc(group->members, (group->n_members + 1) * sizeof *members);
    if (!members) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    group->members = members;
    group->members[group->n_members++] = index;
    p->group = (int64_t)g;
    return STRATA_OK;
}

strata_status strata_loader_register(strata_loader *l, const strata_loader_param *param)
{
    if (!l || !param) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_loader_register: NULL argument");
    if (l->fed)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s registered after the first chunk; register every "
                           "parameter first", param->name ? param->name : "(unnamed)");
    strata_status status = check_param(param);
    if (status != STRATA_OK) return status;
    size_t found;
    if (strmap_find(&l->by_name, param->name, &found))
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s is registered twice", param->name);
    if (l->n_params == l->param_capacity) {
        /* The map borrows the names, which live in their own allocations: growing is safe. */
        size_t capacity = l->param_capacity ? 2 * l->param_capacity : 64;
        loader_param *grown = realloc(l->params, capacity * sizeof *grown);
        if (!grown) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        l->params = grown;
        l->param_capacity = capacity;
    }
    size_t index = l->n_params;
    loader_param *p = &l->params[index];
    *p = (loader_param){.n_dims = param->n_dims, .dtype = param->dtype, .quantize = param->quantize,
                        .quant = param->quant, .n_elements = 1, .group = -1};
    p->quant.amax = 0;
    for (int d = 0; d < p->n_dims; d++) {
        p->shape[d] = param->shape[d];
        p->n_elements *= param->shape[d];
    }
    p->name = strdup(param->name);
    bool grouped = param->quantize && param->group && quant_format_has_tensor_amax(param->quant.format);
    p->group_name = grouped ? strdup(param->group) : NULL;
    if (!p->name || (grouped && !p->group_name) || !strmap_insert(&l->by_name, p->name, index, NULL, NULL)) {
        free(p->name);
        free(p->group_name);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    l->n_params++;
    if (grouped) return join_group(l, p, index);
    return STRATA_OK;
}

/* ---------------------------------------------------------------- handing over */

static strata_status tensor_amax(const loader_param *p, float *out)
{
    if (p->dtype == STRATA_DTYPE_BF16) { /* on the bits, without converting first */
        *out = 0;
        kernels()->bf16_block_absmax(p->buffer, (size_t)p->n_elements, (size_t)p->n_elements, out);
        return STRATA_OK;
    }
    enum { PIECE = 1 << 16 };
    float *f32 = malloc(PIECE * sizeof *f32), amax = 0;
    if (!f32) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    size_t size = strata_dtype_size(p->dtype);
    strata_status status = STRATA_OK;
    for (int64_t i = 0; status == STRATA_OK && i < p->n_elements; i += PIECE) {
        size_t n = (size_t)(p->n_elements - i < PIECE ? p->n_elements - i : PIECE);
        status = strata_convert_to_f32(p->dtype, p->buffer + (size_t)i * size, n, f32);
        float piece = 0;
        if (status == STRATA_OK) kernels()->block_absmax(f32, n, n, &piece);
        if (piece > amax) amax = piece;
    }
    free(f32);
    *out = amax;
    return status;
}

/* The loader's code buffer, grown to at least bytes. */
static uint8_t *codes_buffer(strata_loader *l, size_t bytes)
{
    if (bytes <= l->codes_capacity) return l->codes;
    free(l->codes);
    l->codes = big_buffer_alloc(bytes);
    l->codes_capacity = l->codes ? bytes : 0;
    return l->codes;
}

/* Quantizes p (its values: data) if it is to be quantized, hands it to the callback, and
 * frees its buffer. */
static strata_status hand_over(strata_loader *l, loader_param *p, const uint8_t *data, float amax)
{
    strata_loaded loaded = {.name = p->name, .n_dims = p->n_dims, .shape = p->shape, .dtype = p->dtype};
    strata_status status = STRATA_OK;
    strata_qtensor q = {0};
    strata_quant_params quant = p->quant;
    strata_quant_shape shape;
    if (!p->quantize) {
        loaded.data = data;
    } else {
        quant.amax = amax;
        status = strata_quant_shape_get(&quant, p->shape[0], p->shape[1], &shape);
        if (status == STRATA_OK) {
            q.codes = codes_buffer(l, shape.code_bytes);
            if (!quant_qtensor_alloc_scales(&shape, &q) || !q.codes)
                status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory quantizing %s", p->name);
        }
        if (status == STRATA_OK) status = strata_quantize(&quant, p->dtype, data, p->shape[0], p->shape[1], &q);
        if (status != STRATA_OK) status = strata_fail_context(status, "loader: quantizing %s", p->name);
        loaded.quant = &quant;
        loaded.q_shape = &shape;
        loaded.q = &q;
    }
    if (status == STRATA_OK) status = l->ready(l->user, &loaded);
    free(q.scales);
    free(q.zero_points);
    free_buffer(l, p);
    p->state = PARAM_DONE;
    l->n_complete++;
    return status;
}

static strata_status complete(strata_loader *l, loader_param *p)
{
    if (p->group < 0) return hand_over(l, p, p->buffer, 0);
    strata_status status = tensor_amax(p, &p->amax);
    if (status != STRATA_OK) return status;
    p->state = PARAM_WAITING;
    loader_group *g = &l->groups[p->group];
    if (++g->n_waiting < g->n_members) return STRATA_OK;
    float amax = 0;
    for (size_t i = 0; i < g->n_members; i++)
        if (l->params[g->members[i]].amax > amax) amax = l->params[g->members[i]].amax;
    for (size_t i = 0; status == STRATA_OK && i < g->n_members; i++) status = hand_over(l, &l->params[g->members[i]], l->params[g->members[i]].buffer, amax);
    return status;
}

/* ---------------------------------------------------------------- feeding */

static bool boxes_overlap(const chunk_box *a, const chunk_box *b, int n_dims)
{
    for (int d = 0; d < n_dims; d++)
        if (a->offset[d] >= b->offset[d] + b->extent[d] || b->offset[d] >= a->offset[d] + a->extent[d]) return false;
    return true;
}

static void format_box(char *out, size_t size, const chunk_box *b, int n_dims)
{
    size_t used = 0;
    for (int d = 0; d < n_dims && used < size; d++)
        used += (size_t)snprintf(out + used, size - used, "%s%lld:%lld", d ? ", " : "[", (long long)b->offset[d],
                                 (long long)(b->offset[d] + b->extent[d]));
    if (used < size) snprintf(out + used, size - used, "]");
}

static strata_status check_chunk(const loader_param *p, strata_dtype dtype, int n_dims, const chunk_box *box,
                                 int64_t *n)
{
    if (dtype != p->dtype)
        return strata_fail(STRATA_ERR_MISMATCH, "loader: %s: chunk of %s, the parameter is %s", p->name,
                           strata_dtype_name(dtype), strata_dtype_name(p->dtype));
    if (n_dims != p->n_dims)
        return strata_fail(STRATA_ERR_MISMATCH, "loader: %s: chunk of %d dimensions, the parameter has %d", p->name,
                           n_dims, p->n_dims);
    *n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (box->extent[d] <= 0 || box->offset[d] < 0 || box->offset[d] > p->shape[d] - box->extent[d]) {
            char region[160];
            format_box(region, sizeof region, box, n_dims);
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT,
                               "loader: %s: chunk %s lies outside the shape (dimension %d has %lld)", p->name, region,
                               d, (long long)p->shape[d]);
        }
        *n *= box->extent[d];
    }
    if (p->state == PARAM_WAITING || p->state == PARAM_DONE)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: chunk after the parameter was complete", p->name);
    for (size_t i = 0; i < p->n_boxes; i++)
        if (boxes_overlap(box, &p->boxes[i], n_dims)) {
            char region[160], earlier[160];
            format_box(region, sizeof region, box, n_dims);
            format_box(earlier, sizeof earlier, &p->boxes[i], n_dims);
            return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %s: chunk %s overlaps the chunk %s received before",
                               p->name, region, earlier);
        }
    return STRATA_OK;
}

/* Copies the box's rows (runs along the last dimension) into the parameter's buffer. */
static void copy_box(loader_param *p, const chunk_box *box, const uint8_t *data)
{
    size_t size = strata_dtype_size(p->dtype), run = (size_t)box->extent[p->n_dims - 1] * size;
    int64_t index[STRATA_LOADER_MAX_DIMS] = {0};
    for (;;) {
        size_t offset = 0;
        for (int d = 0; d < p->n_dims; d++) offset = offset * (size_t)p->shape[d] + (size_t)(box->offset[d] + index[d]);
        memcpy(p->buffer + offset * size, data, run);
        data += run;
        int d = p->n_dims - 2;
        while (d >= 0 && ++index[d] == box->extent[d]) index[d--] = 0;
        if (d < 0) return;
    }
}

strata_status strata_loader_feed(strata_loader *l, const char *name, strata_dtype dtype, int n_dims,
                                 const int64_t *offsets, const int64_t *extents, const void *data)
{
    if (!l || !name || !offsets || !extents || !data)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_loader_feed: NULL argument");
    size_t index;
    if (!strmap_find(&l->by_name, name, &index))
        return strata_fail(STRATA_ERR_NOT_FOUND, "loader: chunk for %s, which is not a registered parameter", name);
    loader_param *p = &l->params[index];
    if (n_dims < 1 || n_dims > STRATA_LOADER_MAX_DIMS)
        return strata_fail(STRATA_ERR_MISMATCH, "loader: %s: chunk of %d dimensions, the parameter has %d", name, n_dims,
                           p->n_dims);
    chunk_box box;
    for (int d = 0; d < n_dims; d++) {
        box.offset[d] = offsets[d];
        box.extent[d] = extents[d];
    }
    int64_t n = 0;
    strata_status status = check_chunk(p, dtype, n_dims, &box, &n);
    if (status != STRATA_OK) return status;
    l->fed = true;
    if (n == p->n_elements && p->group < 0) { /* the whole parameter at once: no copy */
        p->received = n;
        return hand_over(l, p, data, 0);
    }
    if (p->n_boxes == p->box_capacity) {
        size_t capacity = p->box_capacity ? 2 * p->box_capacity : 4;
        chunk_box *boxes = realloc(p->boxes, capacity * sizeof *boxes);
        if (!boxes) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        p->boxes = boxes;
        p->box_capacity = capacity;
    }
    if (!p->buffer) {
        p->buffer = big_buffer_alloc(param_bytes(p));
        if (!p->buffer)
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "loader: out of memory for %s (%llu bytes)", name,
                               (unsigned long long)param_bytes(p));
        l->bytes_in_flight += param_bytes(p);
        if (l->bytes_in_flight > l->peak_bytes_in_flight) l->peak_bytes_in_flight = l->bytes_in_flight;
        p->state = PARAM_RECEIVING;
    }
    copy_box(p, &box, data);
    p->boxes[p->n_boxes++] = box;
    p->received += n;
    if (p->received < p->n_elements) return STRATA_OK;
    free(p->boxes); /* complete: no chunk may follow, whatever its box */
    p->boxes = NULL;
    p->n_boxes = p->box_capacity = 0;
    return complete(l, p);
}

strata_status strata_loader_finish(strata_loader *l)
{
    if (!l) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_loader_finish: NULL argument");
    size_t incomplete = 0;
    char list[1024] = "";
    size_t used = 0;
    for (size_t i = 0; i < l->n_params; i++) {
        const loader_param *p = &l->params[i];
        if (p->state == PARAM_DONE) continue;
        if (incomplete++ < 8 && used < sizeof list) {
            if (p->state == PARAM_WAITING)
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s (complete, waiting for group %s)",
                                         used ? "; " : "", p->name, p->group_name);
            else
                used += (size_t)snprintf(list + used, sizeof list - used, "%s%s (%lld of %lld elements missing)",
                                         used ? "; " : "", p->name, (long long)(p->n_elements - p->received),
                                         (long long)p->n_elements);
        }
    }
    if (incomplete == 0) return STRATA_OK;
    return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "loader: %zu parameter%s incomplete at finish: %s%s", incomplete,
                       incomplete == 1 ? "" : "s", list, incomplete > 8 ? "; ..." : "");
}
