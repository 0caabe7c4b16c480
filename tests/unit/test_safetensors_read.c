/*
 * test_safetensors_read.c — reading valid safetensors checkpoints: every dtype, file
 * order, lookups, metadata, scalars and empty tensors, sharded sets, directories.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

typedef struct fixture {
    char *dir;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = test_temp_dir();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    test_remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* One tensor of shape [2, 3] per dtype, listed in the header in reverse offset order so
 * the reader must sort. Element i of every tensor has all bytes equal to (dtype*16 + i). */
static void test_every_dtype(void **state)
{
    fixture *f = *state;
    char header[8192] = "{\"__metadata__\":{\"format\":\"pt\",\"note\":\"all dtypes\"}";
    unsigned char data[16 * 6 * 8];
    size_t offsets[STRATA_DTYPE_COUNT + 1] = {0};
    for (int d = 0; d < STRATA_DTYPE_COUNT; d++)
        offsets[d + 1] = offsets[d] + 6 * strata_dtype_size((strata_dtype)d);
    for (int d = STRATA_DTYPE_COUNT - 1; d >= 0; d--) {
        char entry[256];
        snprintf(entry, sizeof entry, ",\"t_%s\":{\"dtype\":\"%s\",\"shape\":[2,3],\"data_offsets\":[%zu,%zu]}",
                 strata_dtype_name((strata_dtype)d), strata_dtype_name((strata_dtype)d), offsets[d], offsets[d + 1]);
        strcat(header, entry);
        size_t size = strata_dtype_size((strata_dtype)d);
        for (int i = 0; i < 6; i++) memset(data + offsets[d] + (size_t)i * size, d * 16 + i, size);
    }
    strcat(header, "}");
    char *path = test_path(f->dir, "all.safetensors");
    test_write_safetensors(path, header, data, offsets[STRATA_DTYPE_COUNT]);

    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    assert_int_equal(strata_safetensors_count(st), STRATA_DTYPE_COUNT);
    for (int d = 0; d < STRATA_DTYPE_COUNT; d++) {
        const strata_tensor *t = strata_safetensors_at(st, (size_t)d); /* file order = dtype order */
        char name[32];
        snprintf(name, sizeof name, "t_%s", strata_dtype_name((strata_dtype)d));
        assert_string_equal(t->name, name);
        assert_ptr_equal(strata_safetensors_find(st, name), t);
        assert_int_equal(t->dtype, d);
        assert_int_equal(t->n_dims, 2);
        assert_int_equal(t->shape[0], 2);
        assert_int_equal(t->shape[1], 3);
        assert_int_equal(t->n_elements, 6);
        assert_int_equal(t->n_bytes, 6 * strata_dtype_size((strata_dtype)d));
        assert_int_equal(t->shard, 0);
        size_t size = strata_dtype_size((strata_dtype)d);
        for (int i = 0; i < 6; i++)
            assert_int_equal(((const unsigned char *)t->data)[(size_t)i * size + size - 1], d * 16 + i);
        assert_int_equal(t->file_offset, 8 + strlen(header) + offsets[d]);
    }
    assert_null(strata_safetensors_find(st, "missing"));
    assert_null(strata_safetensors_at(st, STRATA_DTYPE_COUNT));
    assert_int_equal(strata_safetensors_metadata_count(st), 2);
    assert_string_equal(strata_safetensors_metadata(st, "note"), "all dtypes");
    const char *key, *value;
    assert_true(strata_safetensors_metadata_at(st, 0, &key, &value));
    assert_string_equal(key, "format");
    assert_string_equal(value, "pt");
    assert_int_equal(strata_safetensors_shard_count(st), 1);
    assert_string_equal(strata_safetensors_shard_path(st, 0), path);
    strata_safetensors_close(st);
    strata_safetensors_close(NULL); /* harmless */
    free(path);
}

static void test_scalar_and_empty_tensors(void **state)
{
    fixture *f = *state;
    const char *header = "{\"empty\":{\"dtype\":\"F32\",\"shape\":[0,4],\"data_offsets\":[0,0]},"
                         "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}";
    float one = 1.0f;
    char *path = test_path(f->dir, "s.safetensors");
    test_write_safetensors(path, header, &one, 4);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    const strata_tensor *scalar = strata_safetensors_find(st, "scalar");
    assert_int_equal(scalar->n_dims, 0);
    assert_int_equal(scalar->n_elements, 1);
    float v;
    memcpy(&v, scalar->data, 4);
    assert_true(v == 1.0f);
    const strata_tensor *empty = strata_safetensors_find(st, "empty");
    assert_int_equal(empty->n_elements, 0);
    assert_int_equal(empty->n_bytes, 0);
    strata_safetensors_close(st);

    /* A file with no tensors at all is valid. */
    test_write_safetensors(path, "{}", NULL, 0);
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    assert_int_equal(strata_safetensors_count(st), 0);
    strata_safetensors_close(st);
    free(path);
}

static void write_two_shards(const char *dir)
{
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    char *p1 = test_path(dir, "model-00001-of-00002.safetensors");
    char *p2 = test_path(dir, "model-00002-of-00002.safetensors");
    test_write_safetensors(p1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", a, 16);
    test_write_safetensors(p2, "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                               "\"__metadata__\":{\"format\":\"pt\"}}", b, 8);
    char *index = test_path(dir, "model.safetensors.index.json");
    const char *json = "{\"metadata\":{\"total_size\":24},\"weight_map\":{"
                       "\"b\":\"model-00002-of-00002.safetensors\",\"a\":\"model-00001-of-00002.safetensors\"}}";
    test_write_file(index, json, strlen(json));
    free(p1);
    free(p2);
    free(index);
}

static void test_sharded(void **state)
{
    fixture *f = *state;
    write_two_shards(f->dir);
    char *index = test_path(f->dir, "model.safetensors.index.json");
    const char *paths[2] = {f->dir, index};
    for (int k = 0; k < 2; k++) {
        strata_safetensors *st = NULL;
        assert_int_equal(strata_safetensors_open(paths[k], &st), STRATA_OK);
        assert_int_equal(strata_safetensors_count(st), 2);
        assert_int_equal(strata_safetensors_shard_count(st), 2);
        assert_string_equal(strata_safetensors_at(st, 0)->name, "a"); /* shard order, then offset */
        assert_string_equal(strata_safetensors_at(st, 1)->name, "b");
        const strata_tensor *b = strata_safetensors_find(st, "b");
        assert_int_equal(b->shard, 1);
        float v[2];
        memcpy(v, b->data, 8);
        assert_true(v[0] == 5.0f && v[1] == 6.0f);
        assert_non_null(strstr(strata_safetensors_shard_path(st, 1), "model-00002-of-00002.safetensors"));
        assert_string_equal(strata_safetensors_metadata(st, "format"), "pt");
        strata_safetensors_close(st);
    }
    free(index);
}

static void test_directory_resolution(void **state)
{
    fixture *f = *state;
    float x = 3.0f;
    char *one = test_path(f->dir, "weights.safetensors");
    test_write_safetensors(one, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", &x, 4);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(f->dir, &st), STRATA_OK); /* the only file */
    assert_int_equal(strata_safetensors_count(st), 1);
    strata_safetensors_close(st);

    char *two = test_path(f->dir, "other.safetensors");
    test_write_safetensors(two, "{}", NULL, 0);
    assert_int_equal(strata_safetensors_open(f->dir, &st), STRATA_ERR_FORMAT);
    assert_null(st);
    ASSERT_ERROR_MENTIONS(f->dir, "2 *.safetensors files", "index.json");

    char *empty = test_path(f->dir, "empty");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", empty);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(strata_safetensors_open(empty, &st), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS(empty, "no *.safetensors");
    char *missing = test_path(f->dir, "missing.safetensors");
    assert_int_equal(strata_safetensors_open(missing, &st), STRATA_ERR_NOT_FOUND);
    ASSERT_ERROR_MENTIONS(missing);
    free(one);
    free(two);
    free(empty);
    free(missing);
}

/* The data pointer is a view into the file, not a copy. */
static void test_views_point_into_mapping(void **state)
{
    fixture *f = *state;
    unsigned char bytes[3] = {7, 8, 9};
    char *path = test_path(f->dir, "u8.safetensors");
    test_write_safetensors(path, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                                 "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[1,3]}}", bytes, 3);
    strata_safetensors *st = NULL;
    assert_int_equal(strata_safetensors_open(path, &st), STRATA_OK);
    const strata_tensor *a = strata_safetensors_find(st, "a"), *b = strata_safetensors_find(st, "b");
    assert_ptr_equal((const unsigned char *)a->data + 1, b->data);
    assert_int_equal(((const unsigned char *)b->data)[1], 9);
    strata_safetensors_close(st);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_dtype, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scalar_and_empty_tensors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_resolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_views_point_into_mapping, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
