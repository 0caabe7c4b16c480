/*
 * weight_spill.h — quantized weights kept on disk from their decision until the export.
 *
 * GPTQ's result cannot be recomputed from the model, so the engine keeps it until the layer
 * is exported and checkpointed. A layer whose routed experts are materialized in groups
 * would keep every expert's that way (6.6 GiB of NVFP4 codes for a DeepSeek-V3 layer); it
 * writes each expert's codes, scales and zero points to an unlinked file in the spill
 * directory as soon as they are decided instead, and the quantized pass, the checkpoint and
 * the export read them back one linear at a time. The bytes are the same either way.
 */
#ifndef STRATA_CALIB_WEIGHT_SPILL_H
#define STRATA_CALIB_WEIGHT_SPILL_H

#include <stdint.h>

#include "strata.h"

typedef struct weight_spill {
    int fd;          /* -1: not open */
    uint64_t end;    /* bytes written since the last reset */
    const char *dir; /* for messages */
} weight_spill;

strata_status weight_spill_open(weight_spill *s, const char *dir);
void weight_spill_close(weight_spill *s);
/* Starts over for the next layer: nothing written before is read again. */
strata_status weight_spill_reset(weight_spill *s);

#endif
