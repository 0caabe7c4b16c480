/*
 * layer_timings.c — quant_timings.json (see layer_timings.h):
 *
 *   {"producer": "strata", "version": "0.2.0", "unit": "seconds", "total": 812.4,
 *    "layers": [{"layer": 0, "read": 1.2, "forward": 20.1, "decide": 3.3, "export": 0.8,
 *                "checkpoint": 0.1, "total": 25.5, "tokens_per_second": 1630.2,
 *                "parts": {"weight_amax": 0.3, "calibration_pass": 9.0, "hessian_pass": 0,
 *                          "quantized_pass": 11.1, "errors": 1.2}},
 *               {"layer": 1, "restored": true}, ...]}
 *
 * "restored": a layer an earlier run finished (strata resume); "total" sums the measured ones.
 * "parts" splits read (weight_amax), forward (the passes) and decide (errors).
 */
#include "pipeline/layer_timings.h"

#include <stdlib.h>

#include "core/error.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/json_file.h"

strata_status layer_timings_init(layer_timings *t, int n_layers)
{
    *t = (layer_timings){.n_layers = n_layers};
    t->layers = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *t->layers);
    t->measured = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof *t->measured);
    if (t->layers && t->measured) return STRATA_OK;
    layer_timings_free(t);
    return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
}

void layer_timings_free(layer_timings *t)
{
    free(t->layers);
    free(t->measured);
    *t = (layer_timings){0};
}

strata_status layer_timings_write(const layer_timings *t, const char *dir)
{
    bool ok = true;
    sjson *root = sjson_new_object(), *list = sjson_new_array();
    double total = 0;
    for (int i = 0; i < t->n_layers; i++) {
        const strata_layer_timing *l = &t->layers[i];
        sjson *layer = sjson_new_object();
        sjson_put(&ok, layer, "layer", sjson_new_int(i));
        if (!t->measured[i]) {
            sjson_put(&ok, layer, "restored", sjson_new_bool(true));
        } else {
            sjson_put(&ok, layer, "read", sjson_new_real(l->read_s));
            sjson_put(&ok, layer, "forward", sjson_new_real(l->forward_s));
            sjson_put(&ok, layer, "decide", sjson_new_real(l->decide_s));
            sjson_put(&ok, layer, "export", sjson_new_real(l->export_s));
            sjson_put(&ok, layer, "checkpoint", sjson_new_real(l->checkpoint_s));
            sjson_put(&ok, layer, "total", sjson_new_real(l->total_s));
            sjson_put(&ok, layer, "tokens_per_second", sjson_new_real(l->tokens_per_second));
            sjson *parts = sjson_new_object();
            sjson_put(&ok, parts, "weight_amax", sjson_new_real(l->amax_s));
            sjson_put(&ok, parts, "calibration_pass", sjson_new_real(l->calibrate_s));
            sjson_put(&ok, parts, "hessian_pass", sjson_new_real(l->hessian_s));
            sjson_put(&ok, parts, "quantized_pass", sjson_new_real(l->quantized_s));
            sjson_put(&ok, parts, "errors", sjson_new_real(l->errors_s));
            sjson_put(&ok, layer, "parts", parts);
            total += l->total_s;
        }
        sjson_push(&ok, list, layer);
    }
    sjson_put(&ok, root, "producer", sjson_new_string("strata"));
    sjson_put(&ok, root, "version", sjson_new_string(strata_version()));
    sjson_put(&ok, root, "unit", sjson_new_string("seconds"));
    sjson_put(&ok, root, "total", sjson_new_real(total));
    sjson_put(&ok, root, "layers", list);
    strata_status status = ok ? STRATA_OK : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    char *path = path_join(dir, LAYER_TIMINGS_FILE);
    if (status == STRATA_OK && !path) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK) status = json_file_write(path, root, 2);
    free(path);
    sjson_free(root);
    return status;
}
