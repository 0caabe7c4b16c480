/*
 * helpers.c — shared test helpers (see helpers.h).
 */
#include "helpers.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/json_file.h"

char *test_temp_dir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(4096);
    assert_non_null(path);
    snprintf(path, 4096, "%s/strata-test-XXXXXX", base && base[0] ? base : "/tmp");
    assert_non_null(mkdtemp(path));
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void test_remove_tree(const char *dir)
{
    if (dir) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *test_dir;

int test_setup_dir(void **state)
{
    (void)state;
    test_dir = test_temp_dir();
    return 0;
}

int test_teardown_dir(void **state)
{
    (void)state;
    test_remove_tree(test_dir);
    free(test_dir);
    test_dir = NULL;
    return 0;
}

char *test_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *path = malloc(n);
    assert_non_null(path);
    snprintf(path, n, "%s/%s", dir, name);
    return path;
}

void test_write_file(const char *path, const void *data, size_t length)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (length) assert_int_equal(fwrite(data, 1, length, f), length);
    assert_int_equal(fclose(f), 0);
}

char *test_read_file(const char *path, size_t *length)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    data[n] = '\0';
    if (length) *length = (size_t)n;
    return data;
}

void test_assert_same_file(const char *a_dir, const char *b_dir, const char *name)
{
    char *a_path = test_path(a_dir, name), *b_path = test_path(b_dir, name);
    size_t a_length, b_length;
    char *a = test_read_file(a_path, &a_length), *b = test_read_file(b_path, &b_length);
    if (a_length != b_length || memcmp(a, b, a_length) != 0) fail_msg("%s and %s differ", a_path, b_path);
    free(a);
    free(b);
    free(a_path);
    free(b_path);
}

void test_write_safetensors(const char *path, const char *header, const void *data, size_t data_length)
{
    size_t header_length = strlen(header);
    size_t total = 8 + header_length + data_length;
    unsigned char *bytes = malloc(total);
    assert_non_null(bytes);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)((uint64_t)header_length >> (8 * i));
    memcpy(bytes + 8, header, header_length);
    if (data_length) memcpy(bytes + 8 + header_length, data, data_length);
    test_write_file(path, bytes, total);
    free(bytes);
}

const char *test_shared_dir(void)
{
    const char *dir = getenv("STRATA_SHARED");
    if (!dir || !dir[0]) dir = STRATA_SHARED_DEFAULT;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stdout, "SKIPPED: %s does not exist; tests on the shared models and data did not run\n", dir);
        fprintf(stderr, "SKIPPED: %s does not exist; tests on the shared models and data did not run\n", dir);
        return NULL;
    }
    return dir;
}

void test_assert_error_mentions(const char *first, ...)
{
    const char *message = strata_last_error();
    va_list ap;
    va_start(ap, first);
    for (const char *fragment = first; fragment; fragment = va_arg(ap, const char *)) {
        if (!strstr(message, fragment)) {
            va_end(ap);
            fail_msg("error message \"%s\" does not mention \"%s\"", message, fragment);
        }
    }
    va_end(ap);
}

sjson *test_read_json(const char *path)
{
    sjson *value = NULL;
    if (json_file_read(path, 1 << 26, false, &value) != STRATA_OK) fail_msg("%s", strata_last_error());
    return value;
}

bool test_ends_with(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}

int32_t *test_e2e_calib_ids(int64_t n_ids)
{
    char *path = test_path(STRATA_GOLDEN_DIR, "e2e/calib-ids.json");
    int32_t *ids = NULL;
    int64_t n = 0;
    if (strata_tokens_read(path, &ids, &n) != STRATA_OK) fail_msg("%s", strata_last_error());
    assert_int_equal(n, n_ids);
    free(path);
    return ids;
}

uint16_t test_bf16_hex_at(const char *hex, int64_t i)
{
    unsigned lo = 0, hi = 0;
    sscanf(hex + 4 * i, "%2x%2x", &lo, &hi);
    return (uint16_t)(lo | hi << 8);
}

bool test_within_bf16_steps(float a, float b, int n)
{
    float step = ldexpf(1.0f, ilogbf(fmaxf(fabsf(a), fabsf(b))) - 7);
    return fabsf(a - b) <= (float)n * step;
}

float test_bf16_value(uint16_t bits)
{
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
