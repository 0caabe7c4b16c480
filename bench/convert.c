/*
 * bench/convert.c — memory and speed of strata convert (streaming quantize-on-load).
 * Two synthetic models of Llama-3-8B layer shape (hidden 4096, intermediate 14336, head_dim
 * 128, 8 kv heads; a 512-token vocabulary) with 8 and 16 layers (about 3.5 and 7 GB of
 * bf16) are converted to FP8 (fp8-dynamic: per-channel weights) each in a child process.
 * Reported beside the machine's memory and its own read speed:
 *   - peak RSS (getrusage of the child), which must not grow with the model (equal within
 *     10%) and stay under 3x the largest tensor + 200 MB; and its ratio to the quantized
 *     model's size (vLLM's CI bounds its resident case at 1.4x);
 *   - wall time against `cat` of the shards to /dev/null in the same run: with the input in
 *     the page cache (read once before), and, where this process may write
 *     /proc/sys/vm/drop_caches (root), with the page cache dropped before each (sync
 *     first, so neither pays for the other's writeback): target within 1.5x. Beside them
 *     "cat||write": cat of the input while another process writes the output's size as
 *     convert's writer does (8 MiB O_DIRECT writes, fsync), the time this machine needs to
 *     move the bytes at all, which no converter beats where reads and writes share a disk.
 *
 *   bench_convert [--dir DIR] [--layers A,B]      (default DIR: /tmp/strata-bench-convert,
 *                                                  kept between runs; layers 8,16)
 */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_child.h"
#include "bench_clock.h"
#include "bench_memory.h"
#include "strata.h"

static uint64_t file_bytes(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

typedef struct convert_job {
    const char *model, *out;
} convert_job;

static bool run_convert(void *ctx, void *reply)
{
    const convert_job *job = ctx;
    strata_convert_params p = {.model_dir = job->model, .output_dir = job->out, .scheme = STRATA_SCHEME_FP8_DYNAMIC};
    strata_convert_result r = {0};
    strata_status status = strata_convert_model(&p, &r);
    if (status != STRATA_OK) fprintf(stderr, "bench: %s\n", strata_last_error());
    memcpy(reply, &r.peak_bytes_in_flight, sizeof r.peak_bytes_in_flight);
    return status == STRATA_OK;
}

/* Converts in a child; returns its peak RSS in bytes (0 on failure). */
static uint64_t convert_child(const char *model, const char *out, double *seconds, uint64_t *in_flight)
{
    convert_job job = {model, out};
    return run_child(run_convert, &job, in_flight, sizeof *in_flight, seconds);
}

/* Writes bytes of zeros into a new file as convert's writer does (8 MiB O_DIRECT writes
 * where the file system allows, fsync at the end). */
static bool write_output_size(const char *path, uint64_t bytes)
{
    enum { PIECE = 8 << 20 };
    void *buf = NULL;
    if (posix_memalign(&buf, 4096, PIECE) != 0) return false;
    memset(buf, 0, PIECE);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0644);
    if (fd < 0) fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0;
    for (uint64_t done = 0; ok && done < bytes; done += PIECE) ok = write(fd, buf, PIECE) == PIECE;
    ok = ok && fsync(fd) == 0;
    if (fd >= 0) close(fd);
    free(buf);
    return ok;
}
/* Empties the page cache; false where this process may not. */
static bool drop_caches(void)
{
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (!f) return false;
    bool ok = fputs("3\n", f) >= 0;
    return fclose(f) == 0 && ok;
}

static double cat_seconds(const char *model)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cat '%s'/*.safetensors > /dev/null", model);
    double start = now();
    if (system(cmd) != 0) return 0;
    return now() - start;
}

/* What moving the bytes costs at all: cat of the input while a child writes the output's
 * size, side by side as a converter overlapping both would; seconds until both are done. */
static double read_write_seconds(const char *model, const char *dir, uint64_t output_bytes)
{
    char path[700];
    snprintf(path, sizeof path, "%s/write-probe.tmp", dir);
    double start = now();
    pid_t pid = fork();
    if (pid == 0) _exit(write_output_size(path, output_bytes) ? 0 : 1);
    bool ok = pid > 0 && cat_seconds(model) > 0;
    int wstatus = 0;
    ok = pid > 0 && waitpid(pid, &wstatus, 0) == pid && ok && WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0;
    double seconds = now() - start;
    unlink(path); /* after the clock: freeing blocks on a discard mount takes long */
    sync();
    return ok ? seconds : 0;
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/strata-bench-convert";
    int layers[2] = {8, 16};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--layers") == 0 && i + 1 < argc && sscanf(argv[++i], "%d,%d", &layers[0], &layers[1]) == 2) {
        } else {
            fprintf(stderr, "usage: bench_convert [--dir DIR] [--layers A,B]\n");
            return 2;
        }
    }
    if (mkdir(dir, 0755) != 0 && access(dir, W_OK) != 0) {
        perror(dir);
        return 1;
    }
    strata_set_num_threads(0);
    /* The largest tensor: gate, up or down, 14336 x 4096 bf16. */
    const uint64_t largest = 14336ull * 4096ull * 2ull, bound = 3 * largest + (200ull << 20);
    printf("strata %s: convert --scheme fp8-dynamic of Llama-3-8B-shaped layers; machine memory %.1f GiB, %ld cores\n",
           strata_version(), (double)mem_total_bytes() / (1u << 30), sysconf(_SC_NPROCESSORS_ONLN));
    bool cold = drop_caches();
    printf("largest tensor %.0f MiB; RSS bound 3x largest + 200 MiB = %.0f MiB; page cache: warm (input read before)%s\n\n",
           (double)largest / (1u << 20), (double)bound / (1u << 20),
           cold ? " and dropped (sync; drop_caches before each)" : "; cannot drop it (not root), cold rows skipped");
    printf("%-7s %10s %11s %10s %10s %8s %-6s %9s %7s %8s %7s %12s %12s\n", "layers", "input MiB", "output MiB",
           "peak RSS", "in flight", "RSS/out", "cache", "convert s", "cat s", "GB/s cat", "x cat", "cat||write s",
           "x cat||write");
    uint64_t peak[2] = {0};
    for (int m = 0; m < 2; m++) {
        char model[600], out[600];
        snprintf(model, sizeof model, "%s/llama3-shape-%d", dir, layers[m]);
        snprintf(out, sizeof out, "%s/out-%d", dir, layers[m]);
        char *config = malloc(strlen(model) + 16);
        sprintf(config, "%s/config.json", model);
        if (access(config, F_OK) != 0) {
            fprintf(stderr, "bench: generating %s (once; kept for later runs)\n", model);
            strata_synth_params sp = {.family = STRATA_FAMILY_LLAMA, .seed = 3, .n_layers = layers[m],
                                      .hidden_size = 4096, .intermediate_size = 14336, .head_dim = 128,
                                      .n_kv_heads = 8};
            if (strata_synth_model(model, &sp) != STRATA_OK) {
                fprintf(stderr, "bench: %s\n", strata_last_error());
                return 1;
            }
        }
        free(config);
        char weights[700], cmd[1400];
        snprintf(weights, sizeof weights, "%s/model.safetensors", model);
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", out);
        for (int dropped = 0; dropped <= (int)cold; dropped++) {
            if (system(cmd) != 0) return 1;
            if (dropped) drop_caches();
            else cat_seconds(model); /* into the page cache */
            double cat = cat_seconds(model), seconds = 0;
            if (dropped) drop_caches();
            else sync(); /* the removed output's writeback */
            uint64_t in_flight = 0, rss = convert_child(model, out, &seconds, &in_flight);
            if (!rss) return 1;
            if (rss > peak[m]) peak[m] = rss;
            char out_weights[700];
            snprintf(out_weights, sizeof out_weights, "%s/model.safetensors", out);
            uint64_t input = file_bytes(weights), output = file_bytes(out_weights);
            if (dropped) drop_caches();
            else cat_seconds(model);
            double floor = read_write_seconds(model, dir, output);
            printf("%-7d %10.0f %11.0f %10.0f %10.0f %8.3f %-6s %9.2f %7.2f %8.2f %7.2f %12.2f %12.2f\n", layers[m],
                   (double)input / (1u << 20), (double)output / (1u << 20), (double)rss / (1u << 20),
                   (double)in_flight / (1u << 20), (double)rss / (double)output, dropped ? "cold" : "warm", seconds, cat,
                   (double)input / cat * 1e-9, seconds / cat, floor, seconds / floor);
        }
    }
    printf("\npeak RSS %d layers / %d layers: %.3f (must be within 1.10); both under the bound: %s\n", layers[1],
           layers[0], (double)peak[1] / (double)peak[0], peak[0] < bound && peak[1] < bound ? "yes" : "NO");
    return 0;
}
