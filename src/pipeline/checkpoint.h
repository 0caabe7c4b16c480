/*
 * checkpoint.h — checkpoint and resume of a layerwise run (--checkpoint-dir).
 *
 * The directory holds:
 *   manifest.json            {"body": {...}, "checksum": CRC-32 of the body as written};
 *                            replaced atomically (temporary file, fsync, rename)
 *   calib-tokens.bin         the calibration windows, int32 little-endian
 *   layer-0000i.safetensors  layer i's calibration state (layer_calib), after every layer
 *   inputs-0000i.bin         the inputs of layer i (bf16 activation store), every
 *                            --save-every layers and after the last
 * The body records the identity of the run (model and data fingerprints, the settings,
 * strata's version, the output directory), how many layers are complete, and the CRC-32
 * of every file it names. Amax-only algorithms save no weights: the state of a layer is
 * its scales' inputs (amax, clip factors) and its measured errors.
 *
 * A run resumes from the manifest's completed layers only; layer files written after the
 * last manifest are redone. Anything that does not match (another model, other data, a
 * changed setting) or does not verify (checksums, sizes) is an error, never a silent
 * restart.
 */
#ifndef STRATA_PIPELINE_CHECKPOINT_H
#define STRATA_PIPELINE_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/collective.h"
#include "calib/layer_calib.h"
#include "io/json.h"
#include "pipeline/act_store.h"

/* What makes two runs the same run. settings is a canonical one-line description; the
 * structured copy (settings_json) lets `strata resume` rebuild the parameters. */
typedef struct run_identity {
    const char *model_dir, *output_dir;
    char model_fingerprint[48], data_fingerprint[48];
    const char *settings;
    const sjson *settings_json;
    int n_layers;
    int64_t n_samples, seq_len;
} run_identity;

typedef struct checkpoint {
    char *dir;
    sjson *body;         /* the manifest body being maintained */
    int completed;       /* layers whose state and next inputs the manifest covers */
    int n_layers;
} checkpoint;

/* Opens (creating it when missing) a checkpoint directory for this run. When it holds a
 * manifest of the same run, *completed is where to resume; a manifest of another run, or
 * one that does not verify, is an error naming what differs. */
strata_status checkpoint_open(const char *dir, const run_identity *id, const int32_t *tokens, checkpoint *ck);
void checkpoint_close(checkpoint *ck);

/* Saves layer lc's state; last_tensor is the last output tensor its export wrote. */
strata_status checkpoint_save_layer(checkpoint *ck, const layer_calib *lc, const char *last_tensor);
/* Records layers [0, completed) as done: saves the inputs of layer `completed` when
 * completed < n_layers (the store's current buffer, then, with several ranks, each other
 * rank's rows in rank order: rank_rows[k] of rank k, which sends them with
 * checkpoint_send_inputs at the same time), then replaces the manifest. Rank 0 alone
 * writes the checkpoint. */
strata_status checkpoint_commit(checkpoint *ck, int completed, const act_store *store, const calib_collective *coll,
                                const int64_t *rank_rows);
strata_status checkpoint_send_inputs(const act_store *store, const calib_collective *coll);

/* Restores layer i's state into lc (set up by layer_calib_init) after checking its
 * checksum; *last_tensor is malloc'd. */
strata_status checkpoint_load_layer(const checkpoint *ck, int i, layer_calib *lc, char **last_tensor);
/* Fills the store's current buffer with rows [row0, row0 + store rows) of the saved inputs
 * of layer ck->completed (total_rows in all), after checking the whole file's checksum. */
strata_status checkpoint_load_inputs(const checkpoint *ck, act_store *store, int64_t row0, int64_t total_rows);
/* The same for another rank, which has no manifest open: rank 0 checks the file, and its
 * failure stops every rank. */
strata_status checkpoint_load_share(const char *dir, int completed, act_store *store, int64_t row0, int64_t total_rows);

/* What `strata resume` needs from a checkpoint: the recorded run. Strings are owned by
 * *manifest (free with sjson_free). */
typedef struct resume_info {
    sjson *manifest;
    const char *model_dir, *output_dir;
    const sjson *settings;
    int32_t *tokens;     /* (n_samples * seq_len), malloc'd */
    int64_t n_samples, seq_len;
} resume_info;

strata_status checkpoint_read_resume(const char *dir, resume_info *out);
void resume_info_free(resume_info *info);

#endif
