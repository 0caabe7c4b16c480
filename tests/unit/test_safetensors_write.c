/*
 * test_safetensors_write.c — the streaming writer: round trips through the reader,
 * sharding by size with an index json, metadata, argument checks, and the guarantee
 * that nothing in the directory changes until finish() (and nothing is left behind
 * when a writer is abandoned), and the same bytes whether a shard is assembled in place
 * (ext4, xfs: the reserve in front of the data collapsed) or copied (tmpfs).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"


static size_t count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void fill(uint8_t *buffer, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) buffer[i] = (uint8_t)(seed * 31 + i * 7);
}

/* Writes two shards of fixed tensors into dir. */
static void write_fixed(const char *dir)
{
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = dir, .max_shard_bytes = 5000};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_set_metadata(w, "format", "pt"), STRATA_OK);
    static uint8_t data[3][4000];
    for (int i = 0; i < 3; i++) {
        fill(data[i], sizeof data[i], (unsigned)i + 5);
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        int64_t shape[1] = {2000};
        assert_int_equal(strata_safetensors_writer_add(w, name, STRATA_DTYPE_BF16, 1, shape, data[i], sizeof data[i]),
                         STRATA_OK);
    }
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
}

static void test_same_bytes_on_every_filesystem(void **state)
{
    (void)state;
    struct statfs shm;
    if (statfs("/dev/shm", &shm) != 0 || access("/dev/shm", W_OK) != 0) {
        print_message("SKIPPED: no writable /dev/shm to compare a copying filesystem with\n");
        skip();
    }
    char *other = strdup("/dev/shm/strata-test-XXXXXX");
    assert_non_null(mkdtemp(other));
    write_fixed(test_dir);
    write_fixed(other);
    for (int i = 1; i <= 3; i++) {
        char name[64];
        snprintf(name, sizeof name, "model-%05d-of-00003.safetensors", i);
        test_assert_same_file(test_dir, other, name);
        char *a_path = test_path(test_dir, name);
        size_t a_length;
        char *a = test_read_file(a_path, &a_length);
        uint64_t header = 0;
        memcpy(&header, a, 8);
        assert_int_equal((8 + header) % 4096, 0); /* the data starts on a 4 KiB boundary */
        assert_int_equal(a_length, 8 + header + 4000);
        free(a);
        free(a_path);
    }
    test_remove_tree(other);
    free(other);
}

static void test_round_trip_single_file(void **state)
{
    (void)state;
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = test_dir};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_set_metadata(w, "format", "pt"), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_set_metadata(w, "producer", "test"), STRATA_OK);
    uint8_t a[6], b[3 * 5 * 2], c[1];
    fill(a, sizeof a, 1);
    fill(b, sizeof b, 2);
    fill(c, sizeof c, 3);
    int64_t shape_a[1] = {6}, shape_b[2] = {3, 5};
    /* Odd-sized U8 first: later tensors start unaligned, which is legal. */
    assert_int_equal(strata_safetensors_writer_add(w, "a", STRATA_DTYPE_U8, 1, shape_a, a, 6), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_add(w, "b", STRATA_DTYPE_BF16, 2, shape_b, b, sizeof b), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_add(w, "scalar", STRATA_DTYPE_BOOL, 0, NULL, c, 1), STRATA_OK);
    assert_int_equal(count_entries(test_dir), 1); /* only the temporary data file so far */
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    assert_int_equal(count_entries(test_dir), 1); /* model.safetensors, temporaries gone */

    char *path = test_path(test_dir, "model.safetensors");
    size_t length;
    char *raw = test_read_file(path, &length);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | (uint8_t)raw[i];
    assert_int_equal((8 + header_length) % 8, 0); /* padded so data starts aligned */
    free(raw);

    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    assert_int_equal(strata_safetensors_count(st), 3);
    assert_string_equal(strata_safetensors_at(st, 0)->name, "a");
    assert_string_equal(strata_safetensors_at(st, 1)->name, "b");
    const strata_tensor *tb = strata_safetensors_find(st, "b");
    assert_int_equal(tb->dtype, STRATA_DTYPE_BF16);
    assert_int_equal(tb->shape[1], 5);
    assert_memory_equal(tb->data, b, sizeof b);
    assert_memory_equal(strata_safetensors_find(st, "a")->data, a, sizeof a);
    assert_int_equal(strata_safetensors_find(st, "scalar")->n_dims, 0);
    assert_string_equal(strata_safetensors_metadata(st, "producer"), "test");
    strata_safetensors_close(st);
    free(path);
}

static void test_sharding_and_index(void **state)
{
    (void)state;
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = test_dir, .stem = "model", .max_shard_bytes = 100};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    uint8_t buffer[300];
    /* 60 + 60 > 100 -> new shard; 300 alone exceeds the limit and gets its own shard. */
    const size_t sizes[4] = {60, 30, 60, 300};
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        int64_t shape[1] = {(int64_t)sizes[i]};
        fill(buffer, sizes[i], (unsigned)i);
        assert_int_equal(strata_safetensors_writer_add(w, name, STRATA_DTYPE_U8, 1, shape, buffer, sizes[i]),
                         STRATA_OK);
    }
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    assert_int_equal(count_entries(test_dir), 4); /* 3 shards + index */

    char *index = test_path(test_dir, "model.safetensors.index.json");
    char *json = test_read_file(index, NULL);
    assert_non_null(strstr(json, "\"total_size\": 450"));
    assert_non_null(strstr(json, "\"t3\": \"model-00003-of-00003.safetensors\""));
    assert_non_null(strstr(json, "\"t1\": \"model-00001-of-00003.safetensors\""));
    free(json);

    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(test_dir, &st), STRATA_OK);
    assert_int_equal(strata_safetensors_shard_count(st), 3);
    for (int i = 0; i < 4; i++) {
        const strata_tensor *t = strata_safetensors_at(st, (size_t)i);
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        assert_string_equal(t->name, name);
        fill(buffer, sizes[i], (unsigned)i);
        assert_memory_equal(t->data, buffer, sizes[i]);
        const size_t expected_shard[4] = {0, 0, 1, 2};
        assert_int_equal(t->shard, expected_shard[i]);
    }
    strata_safetensors_close(st);
    free(index);
}

/* An abandoned writer leaves the directory exactly as it was, existing files included. */
static void test_abandoned_writer_changes_nothing(void **state)
{
    (void)state;
    char *existing = test_path(test_dir, "model.safetensors");
    test_write_file(existing, "precious", 8);
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = test_dir};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    uint8_t byte = 1;
    int64_t shape[1] = {1};
    assert_int_equal(strata_safetensors_writer_add(w, "x", STRATA_DTYPE_U8, 1, shape, &byte, 1), STRATA_OK);
    strata_safetensors_writer_free(w);
    assert_int_equal(count_entries(test_dir), 1);
    char *content = test_read_file(existing, NULL);
    assert_string_equal(content, "precious");
    free(content);
    free(existing);
}

static void test_argument_checks(void **state)
{
    (void)state;
    strata_safetensors_writer *w = NULL;
    char *missing = test_path(test_dir, "no-such-dir");
    strata_writer_params bad = {.dir = missing};
    assert_int_equal(strata_safetensors_writer_create(&bad, &w), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS(missing, "does not exist");
    free(missing);

    strata_writer_params params = {.dir = test_dir};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    uint8_t data[8] = {0};
    int64_t shape[2] = {2, 2};
    assert_int_equal(strata_safetensors_writer_add(w, "w", STRATA_DTYPE_F32, 2, shape, data, 8),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("tensor 'w'", "need 16 bytes, got 8");
    assert_int_equal(strata_safetensors_writer_add(w, "w", STRATA_DTYPE_BF16, 2, shape, data, 8), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_add(w, "w", STRATA_DTYPE_BF16, 2, shape, data, 8),
                     STRATA_ERR_INVALID_ARGUMENT);
    ASSERT_ERROR_MENTIONS("tensor 'w' was already written");
    assert_int_equal(strata_safetensors_writer_add(w, "__metadata__", STRATA_DTYPE_BF16, 2, shape, data, 8),
                     STRATA_ERR_INVALID_ARGUMENT);
    int64_t negative[1] = {-1};
    assert_int_equal(strata_safetensors_writer_add(w, "n", STRATA_DTYPE_U8, 1, negative, data, 0),
                     STRATA_ERR_INVALID_ARGUMENT);
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_ERR_INVALID_ARGUMENT);
    assert_int_equal(strata_safetensors_writer_add(w, "late", STRATA_DTYPE_U8, 0, NULL, data, 1),
                     STRATA_ERR_INVALID_ARGUMENT);
    strata_safetensors_writer_free(w);
    strata_safetensors_writer_free(NULL);
}

/* Writing a single file where a sharded checkpoint was removes its stale index, so the
 * directory opens as the new checkpoint. */
static void test_replaces_stale_index(void **state)
{
    (void)state;
    char *index = test_path(test_dir, "model.safetensors.index.json");
    test_write_file(index, "{\"weight_map\":{}}", 17);
    strata_safetensors_writer *w = NULL;
    strata_writer_params params = {.dir = test_dir};
    assert_int_equal(strata_safetensors_writer_create(&params, &w), STRATA_OK);
    uint8_t byte = 42;
    int64_t shape[1] = {1};
    assert_int_equal(strata_safetensors_writer_add(w, "x", STRATA_DTYPE_U8, 1, shape, &byte, 1), STRATA_OK);
    assert_int_equal(strata_safetensors_writer_finish(w), STRATA_OK);
    strata_safetensors_writer_free(w);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(test_dir, &st), STRATA_OK);
    assert_int_equal(strata_safetensors_count(st), 1);
    strata_safetensors_close(st);
    free(index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip_single_file, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_sharding_and_index, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_abandoned_writer_changes_nothing, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_argument_checks, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_replaces_stale_index, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_same_bytes_on_every_filesystem, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
