/*
 * helpers.h — what the unit tests share: temporary directories, hand-built safetensors
 * files (so malformed ones can be made byte by byte), and the location of ../shared.
 */
#ifndef STRATA_TEST_HELPERS_H
#define STRATA_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/json.h"
#include "strata.h"

/* A JSON file read whole (64 MiB at most); fails the test with the error otherwise. */
sjson *test_read_json(const char *path);
/* Whether name ends with suffix (and is longer). */
bool test_ends_with(const char *name, const char *suffix);
/* The e2e golden's calibration windows (tests/golden/e2e/calib-ids.json, n_ids of them, which
 * the test states), for strata_free. */
int32_t *test_e2e_calib_ids(int64_t n_ids);
/* The float a bf16 bit pattern holds. */
float test_bf16_value(uint16_t bits);
/* Value i of a golden file's bf16 tensor written as hex of its little-endian bytes. */
uint16_t test_bf16_hex_at(const char *hex, int64_t i);
/* Whether a and b are within n bf16 steps (ulps) of the larger's magnitude. */
bool test_within_bf16_steps(float a, float b, int n);

/* A fresh directory under $TMPDIR (or /tmp); removed with everything in it by
 * test_remove_tree. Returns a malloc'd path. */
char *test_temp_dir(void);
void test_remove_tree(const char *dir);
/* A group/test fixture: test_dir is a fresh temporary directory between setup and
 * teardown. */
extern char *test_dir;
int test_setup_dir(void **state);
int test_teardown_dir(void **state);

/* dir/name, malloc'd. */
char *test_path(const char *dir, const char *name);
void test_write_file(const char *path, const void *data, size_t length);
/* Reads a whole file (NUL-terminated); *length may be NULL. */
char *test_read_file(const char *path, size_t *length);

/* Asserts a_dir/name and b_dir/name hold the same bytes. */
void test_assert_same_file(const char *a_dir, const char *b_dir, const char *name);

/* Writes 8-byte length + header (as given, unpadded) + data. */
void test_write_safetensors(const char *path, const char *header, const void *data, size_t data_length);

/* ../shared (or $STRATA_SHARED), or NULL with a loud message when it does not exist. */
const char *test_shared_dir(void);

/* Asserts the last error message contains every given fragment (NULL-terminated). */
void test_assert_error_mentions(const char *first, ...);
#define ASSERT_ERROR_MENTIONS(...) test_assert_error_mentions(__VA_ARGS__, (const char *)NULL)

#endif
