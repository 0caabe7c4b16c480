/*
 * safetensors_resume.h — the resumable mode of the streaming safetensors writer, for
 * outputs that a killed run must be able to finish (see safetensors_write.c).
 */
#ifndef STRATA_IO_SAFETENSORS_RESUME_H
#define STRATA_IO_SAFETENSORS_RESUME_H

#include <stdbool.h>

#include "strata.h"

/* Like strata_safetensors_writer_create, with each shard sealed in params->dir (a run's
 * staging area) as soon as the next one starts. Whole shards an earlier writer sealed
 * there are adopted. */
strata_status safetensors_writer_create_resumable(const strata_writer_params *params, strata_safetensors_writer **out);
/* Shards adopted from an earlier writer. */
size_t safetensors_writer_adopted_count(const strata_safetensors_writer *w);
/* Whether an adopted shard holds the tensor (adding it again is then a no-op). */
bool safetensors_writer_holds(const strata_safetensors_writer *w, const char *name);

#endif
