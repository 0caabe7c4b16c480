/*
 * checksum.h — CRC-32 of bytes and files, for checkpoint integrity and fingerprints.
 *
 * checksum.c is the only file that talks to zlib. A checksum is 32 bits; fingerprints
 * combine it with the byte count ("crc32:8c736521:4096") so that equal CRCs of data of
 * different sizes never compare equal.
 */
#ifndef STRATA_IO_CHECKSUM_H
#define STRATA_IO_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/* Extends crc (start from 0) with n bytes. */
uint32_t checksum_update(uint32_t crc, const void *data, size_t n);

/* CRC-32 of a whole file and its size. */
strata_status checksum_file(const char *path, uint32_t *crc, uint64_t *size);

#endif
