/*
 * sha256.h — SHA-256 for the golden checks that compare tensors by hash (the golden files
 * record sha256 of each tensor's bytes, as Python's hashlib writes them).
 */
#ifndef STRATA_TEST_SHA256_H
#define STRATA_TEST_SHA256_H

#include <stddef.h>

/* 64 lowercase hex digits and a NUL into hex. */
void test_sha256_hex(const void *data, size_t n, char hex[65]);

#endif
