/*
 * json_file.h — JSON files: read and parse with a message naming the file and position,
 * and write (pretty-printed, newline-terminated) atomically.
 */
#ifndef STRATA_IO_JSON_FILE_H
#define STRATA_IO_JSON_FILE_H

#include <stdbool.h>
#include <stdint.h>

#include "io/json.h"
#include "strata.h"

strata_status json_file_read(const char *path, uint64_t max_bytes, bool reject_duplicates, sjson **out);
strata_status json_file_write(const char *path, const sjson *value, int indent);

#endif
