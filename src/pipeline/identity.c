/*
 * identity.c — run fingerprints and canonical settings (see identity.h).
 */
#include "pipeline/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "io/checksum.h"
#include "io/fsutil.h"

enum { SAMPLE_BYTES = 4096 };

strata_status identity_model_fingerprint(const strata_model *model, const char *model_dir, char *out, size_t size)
{
    char *path = path_join(model_dir, "config.json"), *config = NULL;
    size_t length = 0;
    strata_status status = path ? file_read_all(path, 16u << 20, &config, &length) : STRATA_ERR_OUT_OF_MEMORY;
    free(path);
    if (status != STRATA_OK) return status;
    uint32_t crc = checksum_update(0, config, length);
    uint64_t bytes = length;
    free(config);
    const strata_safetensors *st = strata_model_tensors(model);
    for (size_t i = 0; i < strata_safetensors_count(st); i++) {
        const strata_tensor *t = strata_safetensors_at(st, i);
        char line[640];
        int n = snprintf(line, sizeof line, "%s %s", t->name, strata_dtype_name(t->dtype));
        for (int d = 0; d < t->n_dims && n > 0 && (size_t)n < sizeof line; d++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %lld", (long long)t->shape[d]);
        if (n > 0 && (size_t)n < sizeof line)
            n += snprintf(line + n, sizeof line - (size_t)n, " @%llu\n",
                          (unsigned long long)strata_safetensors_shard_size(st, t->shard));
        size_t used = n > 0 ? ((size_t)n < sizeof line ? (size_t)n : sizeof line - 1) : 0;
        crc = checksum_update(crc, line, used);
        bytes += used;
        /* The first and last bytes of every tensor tell models of one shape apart without
         * reading them whole. */
        size_t sample = t->n_bytes < 2 * SAMPLE_BYTES ? (size_t)t->n_bytes : SAMPLE_BYTES;
        crc = checksum_update(crc, t->data, sample);
        if (t->n_bytes >= 2 * SAMPLE_BYTES)
            crc = checksum_update(crc, (const char *)t->data + t->n_bytes - SAMPLE_BYTES, SAMPLE_BYTES);
    }
    snprintf(out, size, "crc32:%08x:%llu", (unsigned)crc, (unsigned long long)bytes);
    return STRATA_OK;
}

void identity_data_fingerprint(const int32_t *tokens, int64_t n_samples, int64_t seq_len, char *out, size_t size)
{
    size_t bytes = (size_t)(n_samples * seq_len) * sizeof *tokens;
    snprintf(out, size, "crc32:%08x:%lldx%lld", (unsigned)checksum_update(0, tokens, bytes), (long long)n_samples,
             (long long)seq_len);
}

strata_status identity_settings(const strata_quantize_params *p, calib_algorithm algorithm, char **text, sjson **json)
{
    const char *algo = calib_algorithm_name(algorithm);
    uint64_t shard = p->max_shard_bytes;
    strbuf sb = {0};
    strbuf_printf(&sb, "scheme=%s algo=%s kv_cache=%s format=%s propagate=%s exclude=[", strata_scheme_name(p->scheme),
                  algo, p->kv_cache_fp8 ? "fp8" : "none", strata_export_format_name(p->format),
                  p->propagate == STRATA_PROPAGATE_QUANTIZED ? "quantized" : "unquantized");
    sjson *j = sjson_new_object(), *exclude = sjson_new_array();
    bool ok = j && exclude;
    for (size_t i = 0; i < p->n_exclude; i++) {
        strbuf_printf(&sb, "%s%s", i ? "," : "", p->exclude[i]);
        ok = ok && sjson_append(exclude, sjson_new_string(p->exclude[i]));
    }
    strbuf_printf(&sb, "] shard_bytes=%llu", (unsigned long long)shard);
    /* Only when set, so the identity of earlier checkpoints is unchanged. */
    if (p->calib_all_experts) strbuf_printf(&sb, " calib_all_experts=yes");
    if (p->fuse_fp8_scales) strbuf_printf(&sb, " fuse_fp8_scales=yes");
    if (p->attention != STRATA_ATTENTION_AUTO) strbuf_printf(&sb, " attention=%s", strata_attention_quant_name(p->attention));
    if (p->error_stats == STRATA_ERROR_STATS_WEIGHTS) strbuf_printf(&sb, " error_stats=weights");
    if (p->convention == STRATA_CONVENTION_COMPRESSED_TENSORS) strbuf_printf(&sb, " convention=compressed-tensors");
    if (p->no_report) strbuf_printf(&sb, " report=no");
    if (p->smooth > 0) strbuf_printf(&sb, " smooth=%.17g", p->smooth);
    bool gptq = calib_algorithm_gptq(algorithm);
    if (gptq)
        strbuf_printf(&sb, " gptq_damp=%.17g gptq_block=%lld gptq_act_order=%s gptq_min_tokens=%lld", p->gptq_damp,
                      (long long)p->gptq_block, p->gptq_act_order ? "yes" : "no", (long long)p->gptq_min_tokens);
    ok = ok && sjson_set(j, "scheme", sjson_new_string(strata_scheme_name(p->scheme))) &&
         sjson_set(j, "algo", sjson_new_string(algo)) && sjson_set(j, "kv_cache_fp8", sjson_new_bool(p->kv_cache_fp8)) &&
         sjson_set(j, "format", sjson_new_string(strata_export_format_name(p->format))) &&
         sjson_set(j, "propagate_quantized", sjson_new_bool(p->propagate == STRATA_PROPAGATE_QUANTIZED)) &&
         sjson_set(j, "exclude", exclude) && sjson_set(j, "max_shard_bytes", sjson_new_int((int64_t)shard)) &&
         sjson_set(j, "save_every", sjson_new_int(p->save_every));
    if (p->calib_all_experts) ok = ok && sjson_set(j, "calib_all_experts", sjson_new_bool(true));
    if (p->fuse_fp8_scales) ok = ok && sjson_set(j, "fuse_fp8_scales", sjson_new_bool(true));
    if (p->attention != STRATA_ATTENTION_AUTO)
        ok = ok && sjson_set(j, "attention", sjson_new_string(strata_attention_quant_name(p->attention)));
    if (p->error_stats == STRATA_ERROR_STATS_WEIGHTS) ok = ok && sjson_set(j, "error_stats", sjson_new_string("weights"));
    if (p->convention == STRATA_CONVENTION_COMPRESSED_TENSORS)
        ok = ok && sjson_set(j, "convention", sjson_new_string("compressed-tensors"));
    if (p->no_report) ok = ok && sjson_set(j, "report", sjson_new_bool(false));
    if (p->smooth > 0) ok = ok && sjson_set(j, "smooth", sjson_new_real(p->smooth));
    if (gptq) {
        sjson *g = sjson_new_object();
        ok = ok && g && sjson_set(g, "damp", sjson_new_real(p->gptq_damp)) &&
             sjson_set(g, "block", sjson_new_int(p->gptq_block)) &&
             sjson_set(g, "act_order", sjson_new_bool(p->gptq_act_order)) &&
             sjson_set(g, "min_tokens", sjson_new_int(p->gptq_min_tokens)) && sjson_set(j, "gptq", g);
    }
    exclude = NULL;
    if (!ok || !strbuf_ok(&sb)) {
        sjson_free(j);
        strbuf_free(&sb);
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    *text = strbuf_take(&sb);
    *json = j;
    return STRATA_OK;
}

strata_status identity_params_from_json(const sjson *j, strata_quantize_params *p, const char ***exclude)
{
    const char *scheme = sjson_as_string(sjson_get(j, "scheme"));
    const char *format = sjson_as_string(sjson_get(j, "format"));
    const sjson *list = sjson_get(j, "exclude");
    int64_t shard = 0, save_every = 0;
    bool kv = false, propagate = false;
    if (!scheme || !strata_scheme_from_name(scheme, &p->scheme) || !strata_export_format_from_name(format, &p->format) ||
        !sjson_as_bool(sjson_get(j, "kv_cache_fp8"), &kv) || !sjson_as_bool(sjson_get(j, "propagate_quantized"), &propagate) ||
        !sjson_as_int64(sjson_get(j, "max_shard_bytes"), &shard) || !sjson_as_int64(sjson_get(j, "save_every"), &save_every) ||
        !sjson_is_array(list))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged settings_detail");
    p->algo = sjson_as_string(sjson_get(j, "algo"));
    p->kv_cache_fp8 = kv;
    p->propagate = propagate ? STRATA_PROPAGATE_QUANTIZED : STRATA_PROPAGATE_UNQUANTIZED;
    const sjson *all_experts = sjson_get(j, "calib_all_experts");
    if (all_experts && !sjson_as_bool(all_experts, &p->calib_all_experts))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged calib_all_experts");
    const sjson *fuse = sjson_get(j, "fuse_fp8_scales");
    if (fuse && !sjson_as_bool(fuse, &p->fuse_fp8_scales))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged fuse_fp8_scales");
    const sjson *attention = sjson_get(j, "attention");
    if (attention && !strata_attention_quant_from_name(sjson_as_string(attention), &p->attention))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged attention mode");
    const sjson *stats = sjson_get(j, "error_stats");
    if (stats && strcmp(sjson_as_string(stats) ? sjson_as_string(stats) : "", "weights") != 0)
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged error_stats");
    p->error_stats = stats ? STRATA_ERROR_STATS_WEIGHTS : STRATA_ERROR_STATS_FULL;
    const sjson *convention = sjson_get(j, "convention");
    if (convention && strcmp(sjson_as_string(convention) ? sjson_as_string(convention) : "", "compressed-tensors") != 0)
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged convention");
    p->convention = convention ? STRATA_CONVENTION_COMPRESSED_TENSORS : STRATA_CONVENTION_MODELOPT;
    const sjson *report = sjson_get(j, "report");
    bool write_report = true;
    if (report && !sjson_as_bool(report, &write_report))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged report setting");
    p->no_report = !write_report;
    const sjson *smooth = sjson_get(j, "smooth");
    if (smooth && !(sjson_as_double(smooth, &p->smooth) && p->smooth > 0 && p->smooth <= 1))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged SmoothQuant strength");
    const sjson *gptq = sjson_get(j, "gptq");
    if (gptq && !(sjson_as_double(sjson_get(gptq, "damp"), &p->gptq_damp) &&
                  sjson_as_int64(sjson_get(gptq, "block"), &p->gptq_block) &&
                  sjson_as_bool(sjson_get(gptq, "act_order"), &p->gptq_act_order) &&
                  sjson_as_int64(sjson_get(gptq, "min_tokens"), &p->gptq_min_tokens)))
        return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged GPTQ settings");
    p->max_shard_bytes = (uint64_t)shard;
    p->save_every = (int)save_every;
    size_t n = sjson_array_size(list);
    *exclude = calloc(n ? n : 1, sizeof **exclude);
    if (!*exclude) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) {
        (*exclude)[i] = sjson_as_string(sjson_array_at(list, i));
        if (!(*exclude)[i]) return strata_fail(STRATA_ERR_FORMAT, "checkpoint manifest: damaged exclude list");
    }
    p->exclude = *exclude;
    p->n_exclude = n;
    return STRATA_OK;
}
