/*
 * weight_spill.c — quantized weights on disk until export (see weight_spill.h).
 *
 * Layout: each spilled linear's codes, then scales, then zero points, back to back from
 * its offset; their sizes come from the linear's quantized shape, so nothing else is
 * stored. The file is truncated when the next layer starts.
 */
#include "calib/weight_spill.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "calib/layer_calib.h"
#include "core/error.h"
#include "io/fsutil.h"
#include "quant/format.h"

strata_status weight_spill_open(weight_spill *s, const char *dir)
{
    *s = (weight_spill){.fd = fd_unlinked_temp(dir, ".strata-weights"), .dir = dir};
    if (s->fd < 0)
        return strata_fail(STRATA_ERR_IO, "%s: cannot create the file for quantized weights: %s", dir, strerror(errno));
    return STRATA_OK;
}

void weight_spill_close(weight_spill *s)
{
    if (s->fd >= 0) close(s->fd);
    *s = (weight_spill){.fd = -1};
}

strata_status weight_spill_reset(weight_spill *s)
{
    s->end = 0;
    if (ftruncate(s->fd, 0) != 0)
        return strata_fail(STRATA_ERR_IO, "%s: cannot truncate the file for quantized weights: %s", s->dir,
                           strerror(errno));
    return STRATA_OK;
}

strata_status linear_calib_spill_quantized(linear_calib *c, weight_spill *spill)
{
    strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
    const void *parts[3] = {c->weight_q.codes, c->weight_q.scales, c->weight_q.zero_points};
    size_t sizes[3] = {shape.code_bytes, shape.scale_bytes, shape.zero_point_bytes};
    uint64_t offset = spill->end;
    for (int i = 0; i < 3; i++) {
        if (!sizes[i]) continue;
        if (!fd_pwrite_all(spill->fd, parts[i], sizes[i], spill->end))
            return strata_fail(STRATA_ERR_IO, "%s: writing the quantized weight of %s failed: %s", spill->dir,
                               c->desc->name, strerror(errno));
        spill->end += sizes[i];
    }
    float global_scale = c->weight_q.global_scale;
    linear_calib_free_quantized(c);
    c->weight_q.global_scale = global_scale;
    c->spill = spill;
    c->spill_offset = offset;
    return STRATA_OK;
}

strata_status linear_calib_quantized(const linear_calib *c, strata_qtensor *fetched, const strata_qtensor **out)
{
    *fetched = (strata_qtensor){0};
    *out = &c->weight_q;
    if (!c->spill) return STRATA_OK;
    strata_quant_shape shape = linear_calib_quantized_shape(c, c->scheme);
    if (!quant_qtensor_alloc(&shape, fetched))
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the quantized weight of %s", c->desc->name);
    void *parts[3] = {fetched->codes, fetched->scales, fetched->zero_points};
    size_t sizes[3] = {shape.code_bytes, shape.scale_bytes, shape.zero_point_bytes};
    uint64_t offset = c->spill_offset;
    for (int i = 0; i < 3; i++) {
        if (!sizes[i]) continue;
        if (!fd_pread_all(c->spill->fd, parts[i], sizes[i], offset)) {
            quant_qtensor_free(fetched);
            return strata_fail(STRATA_ERR_IO, "%s: reading the quantized weight of %s back failed: %s", c->spill->dir,
                               c->desc->name, strerror(errno));
        }
        offset += sizes[i];
    }
    fetched->global_scale = c->weight_q.global_scale;
    *out = fetched;
    return STRATA_OK;
}
