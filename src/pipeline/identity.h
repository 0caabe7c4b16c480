/*
 * identity.h — what identifies a layerwise run: fingerprints of the model (config.json and
 * the tensor index) and of the calibration tokens, and the canonical settings string.
 * Settings that cannot change the output (threads, memory limit, checkpoint cadence) are
 * left out, so a run may resume with other values of them.
 */
#ifndef STRATA_PIPELINE_IDENTITY_H
#define STRATA_PIPELINE_IDENTITY_H

#include "calib/algorithm.h"
#include "io/json.h"
#include "strata.h"

/* "crc32:xxxxxxxx:bytes" of config.json followed by every tensor's name, dtype, shape,
 * shard size, and its first and last 4 KiB of data. */
strata_status identity_model_fingerprint(const strata_model *model, const char *model_dir, char *out, size_t size);
void identity_data_fingerprint(const int32_t *tokens, int64_t n_samples, int64_t seq_len, char *out, size_t size);

/* The canonical settings ("scheme=fp8 algo=max kv_cache=none format=modelopt
 * propagate=unquantized exclude=[...] shard_bytes=N") and the same as JSON. */
strata_status identity_settings(const strata_quantize_params *params, calib_algorithm algorithm, char **text,
                                sjson **json);
/* Rebuilds the output-affecting parameters from the JSON (for strata resume); strings
 * point into json. */
strata_status identity_params_from_json(const sjson *json, strata_quantize_params *params, const char ***exclude);

#endif
