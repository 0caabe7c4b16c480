/*
 * test_direct_io.c — the converter's I/O underneath the loader: direct_read (cached runs
 * read through the cache, the rest with O_DIRECT, and a direct read leaving nothing in
 * the cache), direct_append (staged O_DIRECT appends by a thread give the bytes plain
 * writes give, a failed write is reported), and read_ahead (ranges handed out in order,
 * a failed read reported at its own range, stopping early).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "helpers.h"
#include "io/direct_append.h"
#include "io/direct_read.h"
#include "io/read_ahead.h"

static uint8_t pattern_byte(uint64_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

/* A file of n pattern bytes, written, fsynced and dropped from the page cache. */
static char *make_cold_file(const char *dir, const char *name, size_t n)
{
    char *path = test_path(dir, name);
    uint8_t *bytes = malloc(n);
    assert_non_null(bytes);
    for (size_t i = 0; i < n; i++) bytes[i] = pattern_byte(i);
    test_write_file(path, bytes, n);
    free(bytes);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(fsync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
    return path;
}

/* Pages of [offset, offset + n) the page cache holds. */
static size_t cached_pages(const char *path, uint64_t offset, size_t n)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uint64_t first = offset / page * page;
    size_t span = (size_t)(offset + n - first), pages = (span + page - 1) / page, count = 0;
    void *map = mmap(NULL, span, PROT_READ, MAP_SHARED, fd, (off_t)first);
    assert_true(map != MAP_FAILED);
    unsigned char *resident = malloc(pages);
    assert_int_equal(mincore(map, span, resident), 0);
    for (size_t i = 0; i < pages; i++) count += resident[i] & 1;
    free(resident);
    munmap(map, span);
    close(fd);
    return count;
}

static void assert_pattern(const uint8_t *data, uint64_t offset, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (data[i] != pattern_byte(offset + i)) fail_msg("byte %llu differs", (unsigned long long)(offset + i));
}

static void read_and_check(direct_reader *r, uint64_t offset, size_t n)
{
    uint8_t *buf = NULL;
    assert_int_equal(posix_memalign((void **)&buf, DIRECT_READ_ALIGN, direct_read_capacity(n)), 0);
    const uint8_t *data = NULL;
    assert_int_equal(direct_reader_read(r, buf, n, offset, &data), STRATA_OK);
    assert_ptr_equal(data, buf + offset % DIRECT_READ_ALIGN);
    assert_pattern(data, offset, n);
    free(buf);
}

static void test_read_cold_cached_and_mixed(void **state)
{
    (void)state;
    const size_t size = (9u << 20) + 12345; /* more than two direct pieces, a partial last block */
    char *path = make_cold_file(test_dir, "input.bin", size);
    direct_reader r;
    assert_int_equal(direct_reader_open(&r, path), STRATA_OK);

    /* Cold, at an unaligned offset to the unaligned end: read directly, and the cache
     * still holds none of it (a buffered or readahead-starting read would fill it). */
    uint64_t offset = 4097;
    size_t n = size - offset;
    if (r.direct_fd < 0) print_message("O_DIRECT refused here: the buffered fallback is tested\n");
    read_and_check(&r, offset, n);
    /* None natively; valgrind reads a few pages of a file mapped for mincore itself. */
    if (r.direct_fd >= 0) assert_true(cached_pages(path, offset, n) < n / 4096 / 100);

    /* A cached middle between cold parts: the mixed read gives the same bytes. */
    int fd = open(path, O_RDONLY);
    uint8_t middle[1 << 16];
    assert_int_equal(pread(fd, middle, sizeof middle, 3 << 20), (ssize_t)sizeof middle);
    close(fd);
    assert_true(cached_pages(path, 3 << 20, sizeof middle) > 0);
    read_and_check(&r, (2u << 20) + 100, 2u << 20);

    /* Small ranges within one block, and an empty one. */
    read_and_check(&r, 5, 7);
    read_and_check(&r, size - 1, 1);
    read_and_check(&r, 8191, 0);
    direct_reader_close(&r);
    direct_reader_close(&r); /* harmless twice */
    free(path);
}

static void test_read_past_the_end_names_the_file(void **state)
{
    (void)state;
    char *path = make_cold_file(test_dir, "short.bin", 10000);
    direct_reader r;
    assert_int_equal(direct_reader_open(&r, path), STRATA_OK);
    uint8_t *buf = NULL;
    assert_int_equal(posix_memalign((void **)&buf, DIRECT_READ_ALIGN, direct_read_capacity(20000)), 0);
    const uint8_t *data = NULL;
    assert_int_equal(direct_reader_read(&r, buf, 20000, 100, &data), STRATA_ERR_IO); /* cold */
    ASSERT_ERROR_MENTIONS("short.bin", "unexpected end of file");
    read_and_check(&r, 0, 10000); /* now cached */
    assert_int_equal(direct_reader_read(&r, buf, 20000, 100, &data), STRATA_ERR_IO);
    ASSERT_ERROR_MENTIONS("short.bin", "unexpected end of file");
    direct_reader_close(&r);
    free(buf);

    char *missing = test_path(test_dir, "missing.bin");
    assert_int_equal(direct_reader_open(&r, missing), STRATA_ERR_IO);
    ASSERT_ERROR_MENTIONS("missing.bin", "cannot open");
    free(missing);
    free(path);
}

/* Appends pieces of awkward sizes (over the stage ring more than once) from byte start
 * of a new file, and checks the file holds start bytes of hole, then the pieces. */
static void append_and_check(const char *path, uint64_t start)
{
    static const size_t sizes[] = {1, 4095, 4097, (8u << 20) + 3, 100000, (17u << 20) + 1, 7, (9u << 20) - 11, 65536};
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    direct_append *a = direct_append_open(fd, start);
    assert_non_null(a);
    uint64_t total = 0;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint8_t *piece = malloc(sizes[k]);
        assert_non_null(piece);
        for (size_t i = 0; i < sizes[k]; i++) piece[i] = pattern_byte(total + i);
        assert_true(direct_append_write(a, piece, sizes[k]));
        total += sizes[k];
        free(piece);
    }
    assert_true(direct_append_flush(a));
    assert_int_equal(fcntl(fd, F_GETFL) & O_DIRECT, 0); /* a plain descriptor again */
    uint8_t tail[3] = {1, 2, 3};                       /* and later writes go straight on */
    assert_true(direct_append_write(a, tail, sizeof tail));
    direct_append_close(a);
    close(fd);

    size_t length = 0;
    uint8_t *bytes = (uint8_t *)test_read_file(path, &length);
    assert_int_equal(length, start + total + sizeof tail);
    for (uint64_t i = 0; i < start; i++)
        if (bytes[i] != 0) fail_msg("byte %llu of the hole is %d", (unsigned long long)i, bytes[i]);
    assert_pattern(bytes + start, 0, (size_t)total);
    assert_memory_equal(bytes + start + total, tail, sizeof tail);
    free(bytes);
}

static void test_append_gives_the_bytes_of_plain_writes(void **state)
{
    (void)state;
    char *path = test_path(test_dir, "appended.bin");
    append_and_check(path, 1u << 16); /* aligned: direct */
    append_and_check(path, 1000);     /* unaligned: plain writes */
    if (access("/dev/shm", W_OK) == 0) { /* tmpfs: direct where the kernel has it, else plain */
        char shm[64];
        snprintf(shm, sizeof shm, "/dev/shm/strata-test-append-%d", (int)getpid());
        append_and_check(shm, 1u << 16);
        unlink(shm);
    }
    free(path);
}

static void test_append_reports_a_failed_write(void **state)
{
    (void)state;
    char *path = test_path(test_dir, "readonly.bin");
    test_write_file(path, "", 0);
    int fd = open(path, O_RDONLY); /* every write fails: EBADF */
    assert_true(fd >= 0);
    direct_append *a = direct_append_open(fd, 0);
    assert_non_null(a);
    static uint8_t piece[1 << 20];
    bool ok = true;
    for (int k = 0; ok && k < 64; k++) ok = direct_append_write(a, piece, sizeof piece);
    if (ok) ok = direct_append_flush(a);
    assert_false(ok);
    assert_int_equal(errno, EBADF);
    direct_append_close(a);
    direct_append_close(NULL);
    close(fd);
    free(path);
}

static void test_read_ahead_in_order_and_failures(void **state)
{
    (void)state;
    char *a = make_cold_file(test_dir, "a.bin", 3u << 20), *b = make_cold_file(test_dir, "b.bin", 5000);
    const char *paths[] = {a, b};
    const read_range ranges[] = {
        {.file = 0, .offset = 10, .bytes = 1u << 20}, {.file = 1, .offset = 0, .bytes = 5000},
        {.file = 0, .offset = 2u << 20, .bytes = (1u << 20) - 7}, {.file = 1, .offset = 4000, .bytes = 100},
        {.file = 1, .offset = 4000, .bytes = 2000}, /* past the end of b.bin */
        {.file = 0, .offset = 0, .bytes = 10},
    };
    read_ahead *ra = NULL;
    assert_int_equal(read_ahead_start(paths, 2, ranges, 6, &ra), STRATA_OK);
    for (int i = 0; i < 4; i++) {
        const uint8_t *data = NULL;
        assert_int_equal(read_ahead_next(ra, &data), STRATA_OK);
        assert_pattern(data, ranges[i].offset, ranges[i].bytes);
    }
    const uint8_t *data = NULL;
    assert_int_equal(read_ahead_next(ra, &data), STRATA_ERR_IO);
    ASSERT_ERROR_MENTIONS("b.bin", "unexpected end of file");
    assert_int_equal(read_ahead_next(ra, &data), STRATA_ERR_INVALID_ARGUMENT); /* not a hang */
    ASSERT_ERROR_MENTIONS("earlier failed read");
    read_ahead_stop(ra);

    /* Stopped before its ranges are consumed, or before the first: no hang, no leak. */
    assert_int_equal(read_ahead_start(paths, 2, ranges, 4, &ra), STRATA_OK);
    assert_int_equal(read_ahead_next(ra, &data), STRATA_OK);
    read_ahead_stop(ra);
    assert_int_equal(read_ahead_start(paths, 2, ranges, 4, &ra), STRATA_OK);
    read_ahead_stop(ra);
    read_ahead_stop(NULL);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_cold_cached_and_mixed, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_past_the_end_names_the_file, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_append_gives_the_bytes_of_plain_writes, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_append_reports_a_failed_write, test_setup_dir, test_teardown_dir),
        cmocka_unit_test_setup_teardown(test_read_ahead_in_order_and_failures, test_setup_dir, test_teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
