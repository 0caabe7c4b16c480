/*
 * safetensors_resume.h — the resumable mode of the streaming safetensors writer, for
 * outputs that a killed run must be able to finish (see safetensors_write.c).
 */
#ifndef STRATA_IO_SAFETENSORS_RESUME_H
#define STRATA_IO_SAFETENSORS_RESUME_H

#include <stdbool.h>

#include "strata.h"

/* Like strata_safetensors_writer_create, with temporary and sealed shards kept in
 * partial_dir (created if needed; inside params->dir so renames stay on one file system).
 * Whole shards an earlier writer sealed there are adopted. */
strata_status safetensors_writer_create_resumable(const strata_writer_params *params, const char *partial_dir,
                                                  strata_safetensors_writer **out);
/* Shards adopted from an earlier writer. */
size_t safetensors_writer_adopted_count(const strata_safetensors_writer *w);
/* Whether an adopted shard holds the tensor (adding it again is then a no-op). */
bool safetensors_writer_holds(const strata_safetensors_writer *w, const char *name);
/* Removes every file in dir, and dir itself when asked. */
void clear_partial_dir(const char *dir, bool remove_dir);

#endif
