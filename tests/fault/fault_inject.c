/*
 * fault_inject.c — an LD_PRELOAD library that makes one call of the strata executable
 * fail, for tests/cli/test_faults.sh (SQLite's fault injection, from outside the process).
 *
 * Only calls made by strata's own code are touched: the return address must lie in the
 * main executable (strata links libstrata statically), so libc's, oneDNN's and jansson's
 * internal calls run normally. A call site is named by kind and its return address as an
 * offset into the executable, so it names the same place in every run of one binary.
 *
 *   STRATA_FAULT_COUNT=FILE   count mode: at exit, appends "kind site calls" for every
 *                             call site reached
 *   STRATA_FAULT=kind:site:n  the n-th call (from 1) of that kind from that site fails
 *
 * Kinds and the failure each gets: alloc (malloc, calloc, realloc, strdup, posix_memalign,
 * aligned_alloc: NULL, ENOMEM), mmap (MAP_FAILED, ENOMEM), open (-1, EACCES), create
 * (open for writing, mkstemp, mkostemp, mkdir: -1, ENOSPC), read (read, pread: -1, EIO),
 * write (write, pwrite, copy_file_range, fallocate, ftruncate: -1, ENOSPC), fsync (fsync,
 * fdatasync: -1, EIO), rename (-1, EIO).
 *
 *   STRATA_FAULT_FREE_BYTES=N statvfs reports N bytes available (a nearly full disk)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { MAX_SITES = 8192 };

typedef struct site_count {
    const char *kind;
    uintptr_t site;
    uint64_t calls;
} site_count;

static uintptr_t exe_lo, exe_hi, exe_base;   /* the executable's code, and its load address */
static int counting;                          /* STRATA_FAULT_COUNT set */
static const char *count_path;
static char target_kind[16];
static uintptr_t target_site;
static uint64_t target_n;
static atomic_uint_fast64_t target_seen;
static site_count sites[MAX_SITES];
static size_t n_sites;
static pthread_mutex_t sites_lock = PTHREAD_MUTEX_INITIALIZER;
static int ready;

static int find_exe(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    if (info->dlpi_name && info->dlpi_name[0]) return 0; /* the main program has no name */
    exe_base = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
        exe_lo = info->dlpi_addr + ph->p_vaddr;
        exe_hi = exe_lo + ph->p_memsz;
    }
    return 1;
}

static void write_counts(void)
{
    FILE *f = fopen(count_path, "a");
    if (!f) return;
    for (size_t i = 0; i < n_sites; i++)
        fprintf(f, "%s %lx %llu\n", sites[i].kind, (unsigned long)sites[i].site, (unsigned long long)sites[i].calls);
    fclose(f);
}

__attribute__((constructor)) static void init(void)
{
    dl_iterate_phdr(find_exe, NULL);
    count_path = getenv("STRATA_FAULT_COUNT");
    counting = count_path && count_path[0];
    const char *spec = getenv("STRATA_FAULT");
    unsigned long site = 0;
    unsigned long long n = 0;
    if (spec && sscanf(spec, "%15[a-z]:%lx:%llu", target_kind, &site, &n) == 3) {
        target_site = site;
        target_n = n;
    }
    if (counting) atexit(write_counts);
    ready = 1;
}

/* Whether this call (kind, from return address ret) fails. */
static int fault(const char *kind, void *ret)
{
    uintptr_t a = (uintptr_t)ret;
    if (!ready || a < exe_lo || a >= exe_hi) return 0;
    uintptr_t site = a - exe_base;
    if (counting) {
        pthread_mutex_lock(&sites_lock);
        size_t i = 0;
        while (i < n_sites && !(sites[i].site == site && strcmp(sites[i].kind, kind) == 0)) i++;
        if (i == n_sites && n_sites < MAX_SITES) sites[n_sites++] = (site_count){.kind = kind, .site = site};
        if (i < n_sites) sites[i].calls++;
        pthread_mutex_unlock(&sites_lock);
        return 0;
    }
    if (target_n == 0 || site != target_site || strcmp(kind, target_kind) != 0) return 0;
    return atomic_fetch_add(&target_seen, 1) + 1 == target_n;
}

#define NEXT(name)                                                                                   \
    static __typeof__(&name) next_##name;                                                              \
    if (!next_##name) next_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)
#define RET __builtin_return_address(0)

void *malloc(size_t n)
{
    if (fault("alloc", RET)) { errno = ENOMEM; return NULL; }
    return __libc_malloc(n);
}

void *calloc(size_t n, size_t size)
{
    if (fault("alloc", RET)) { errno = ENOMEM; return NULL; }
    return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n)
{
    if (fault("alloc", RET)) { errno = ENOMEM; return NULL; }
    return __libc_realloc(p, n);
}

char *strdup(const char *s)
{
    if (fault("alloc", RET)) { errno = ENOMEM; return NULL; }
    size_t n = strlen(s) + 1;
    char *out = __libc_malloc(n);
    if (out) memcpy(out, s, n);
    return out;
}

int posix_memalign(void **out, size_t align, size_t n)
{
    if (fault("alloc", RET)) return ENOMEM;
    void *p = __libc_memalign(align, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

void *aligned_alloc(size_t align, size_t n)
{
    if (fault("alloc", RET)) { errno = ENOMEM; return NULL; }
    return __libc_memalign(align, n);
}

void *mmap(void *addr, size_t n, int prot, int flags, int fd, off_t offset)
{
    NEXT(mmap);
    if (fault("mmap", RET)) { errno = ENOMEM; return MAP_FAILED; }
    return next_mmap(addr, n, prot, flags, fd, offset);
}

static int open_common(const char *path, int flags, mode_t mode, void *ret, int (*next)(const char *, int, ...))
{
    int writing = (flags & (O_WRONLY | O_RDWR | O_CREAT)) != 0;
    if (fault(writing ? "create" : "open", ret)) { errno = writing ? ENOSPC : EACCES; return -1; }
    return next(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    NEXT(open);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return open_common(path, flags, mode, RET, next_open);
}

int open64(const char *path, int flags, ...)
{
    NEXT(open64);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    return open_common(path, flags, mode, RET, next_open64);
}

int mkstemp(char *template)
{
    NEXT(mkstemp);
    if (fault("create", RET)) { errno = ENOSPC; return -1; }
    return next_mkstemp(template);
}

int mkostemp(char *template, int flags)
{
    NEXT(mkostemp);
    if (fault("create", RET)) { errno = ENOSPC; return -1; }
    return next_mkostemp(template, flags);
}

int mkdir(const char *path, mode_t mode)
{
    NEXT(mkdir);
    if (fault("create", RET)) { errno = ENOSPC; return -1; }
    return next_mkdir(path, mode);
}

ssize_t read(int fd, void *buf, size_t n)
{
    NEXT(read);
    if (fault("read", RET)) { errno = EIO; return -1; }
    return next_read(fd, buf, n);
}

ssize_t pread(int fd, void *buf, size_t n, off_t offset)
{
    NEXT(pread);
    if (fault("read", RET)) { errno = EIO; return -1; }
    return next_pread(fd, buf, n, offset);
}

ssize_t pread64(int fd, void *buf, size_t n, off_t offset)
{
    NEXT(pread64);
    if (fault("read", RET)) { errno = EIO; return -1; }
    return next_pread64(fd, buf, n, offset);
}

ssize_t write(int fd, const void *buf, size_t n)
{
    NEXT(write);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t offset)
{
    NEXT(pwrite);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_pwrite(fd, buf, n, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t offset)
{
    NEXT(pwrite64);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_pwrite64(fd, buf, n, offset);
}

ssize_t copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t n, unsigned flags)
{
    NEXT(copy_file_range);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_copy_file_range(in, in_off, out, out_off, n, flags);
}

int fallocate(int fd, int mode, off_t offset, off_t n)
{
    NEXT(fallocate);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_fallocate(fd, mode, offset, n);
}

int ftruncate(int fd, off_t n)
{
    NEXT(ftruncate);
    if (fault("write", RET)) { errno = ENOSPC; return -1; }
    return next_ftruncate(fd, n);
}

int fsync(int fd)
{
    NEXT(fsync);
    if (fault("fsync", RET)) { errno = EIO; return -1; }
    return next_fsync(fd);
}

int fdatasync(int fd)
{
    NEXT(fdatasync);
    if (fault("fsync", RET)) { errno = EIO; return -1; }
    return next_fdatasync(fd);
}

int rename(const char *from, const char *to)
{
    NEXT(rename);
    if (fault("rename", RET)) { errno = EIO; return -1; }
    return next_rename(from, to);
}

static int report_free(const char *path, struct statvfs *out, int result)
{
    (void)path;
    const char *free_bytes = getenv("STRATA_FAULT_FREE_BYTES");
    if (result == 0 && free_bytes && out->f_frsize > 0)
        out->f_bavail = out->f_bfree = (fsblkcnt_t)(strtoull(free_bytes, NULL, 10) / out->f_frsize);
    return result;
}

int statvfs(const char *path, struct statvfs *out)
{
    NEXT(statvfs);
    return report_free(path, out, next_statvfs(path, out));
}
