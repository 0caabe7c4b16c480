/*
 * output_dir.c — output directory safety: input checks, staging, commit, cleanup (see
 * output_dir.h).
 *
 * The journal (staging/.commit.json) is the manifest about to be written plus the files
 * of the earlier output it replaces. The commit puts those aside into staging/.replaced,
 * renames the new files into OUT, writes the manifest and removes the staging area (the
 * put-aside files with it). Every step is a rename that can be undone, so a failure
 * undoes them and leaves OUT as it was; and every step looks at where each file is, so
 * after a kill the same steps, run again from the journal, finish the commit.
 */
#include "io/output_dir.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "io/fsutil.h"
#include "io/json.h"
#include "io/json_file.h"

#define JOURNAL ".commit.json"
#define REPLACED ".replaced"   /* the earlier output's files, put aside during a commit */
#define MAX_MANIFEST_BYTES (16ull << 20)

/* ---------------------------------------------------------------- names and identities */

static bool id_of(const char *path, file_id *id)
{
    struct stat st;
    if (stat(path, &st) != 0) return false;
    *id = (file_id){.dev = st.st_dev, .ino = st.st_ino};
    return true;
}

static bool same_id(file_id a, file_id b) { return a.dev == b.dev && a.ino == b.ino; }

/* Names a strata output may hold (exporters and the summary write these and nothing else). */
static bool name_is_output_file(const char *name)
{
    static const char *const PATTERNS[] = {
        "config.json",          "hf_quant_config.json",   "generation_config.json", "tokenizer.json",
        "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",        "chat_template.jinja",
        "vocab.json",           "merges.txt",             "quant_summary.txt",      "quant_summary.json",
        "quant_report.html",    "*.safetensors",        "*.safetensors.index.json", OUTPUT_MANIFEST,
    };
    for (size_t i = 0; i < sizeof PATTERNS / sizeof PATTERNS[0]; i++)
        if (fnmatch(PATTERNS[i], name, 0) == 0) return true;
    return false;
}

/* A plain file name in a manifest: nothing that reaches outside OUT or into strata's own
 * hidden files. */
static bool safe_name(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/') && strlen(name) < 256;
}

/* A file being written under a temporary name (mkstemp's "NAME.tmp-XXXXXX"). */
static bool name_is_temporary(const char *name) { return fnmatch("*.tmp-??????", name, 0) == 0; }

/* Temporary files of strata versions that wrote them straight into OUT: a shard's data
 * (".model-shard3.data.tmp-Ab12Cd") or a file being replaced ("config.json.tmp-Ab12Cd"),
 * mkstemp's six characters last. */
static bool name_is_legacy_temporary(const char *name)
{
    const char *tmp = strstr(name, ".tmp-");
    if (!tmp || strlen(tmp) != 11 || strstr(tmp + 1, ".tmp-")) return false;
    char base[256];
    size_t n = (size_t)(tmp - name);
    if (n >= sizeof base) return false;
    memcpy(base, name, n);
    base[n] = '\0';
    if (fnmatch(".*-shard[0-9]*.data", base, 0) == 0) return true;
    return base[0] != '.' && name_is_output_file(base);
}

/* ---------------------------------------------------------------- the input check */

static strata_status refuse(const char *out, const char *why)
{
    return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "refusing to write into %s: %s; choose another output directory",
                       out, why);
}

static char *parent_of(const char *path)
{
    char *real = realpath(path, NULL);
    if (!real) return NULL;
    char *slash = strrchr(real, '/');
    if (slash == real) slash[1] = '\0';
    else if (slash) *slash = '\0';
    return real;
}

/* The absolute path path names, also when it (or some of its parents) does not exist
 * yet: the longest existing prefix resolved by realpath, the rest taken lexically. */
static char *absolute_path(const char *path)
{
    char *real = realpath(path, NULL);
    if (real || errno != ENOENT) return real;
    char *copy = strdup(path);
    if (!copy) return NULL;
    size_t n = strlen(copy);
    while (n > 1 && copy[n - 1] == '/') copy[--n] = '\0';
    char *slash = strrchr(copy, '/');
    const char *base = slash ? slash + 1 : copy;
    char *parent = NULL;
    if (slash == copy) parent = strdup("/");
    else if (slash) {
        *slash = '\0';
        parent = absolute_path(copy);
    } else parent = realpath(".", NULL);
    char *out = NULL;
    if (parent && strcmp(base, ".") == 0) out = strdup(parent);
    else if (parent && strcmp(base, "..") == 0) {
        out = strdup(parent);
        char *cut = out ? strrchr(out, '/') : NULL;
        if (cut) cut[cut == out ? 1 : 0] = '\0';
    } else if (parent) out = path_join(parent, base);
    free(parent);
    free(copy);
    return out;
}

strata_status output_check_inputs(const char *out, const output_inputs *in)
{
    file_id out_id, id;
    char why[4608];
    if (!id_of(out, &out_id)) {
        /* A new directory cannot be one the run reads, unless the checkpoint directory
         * (also created by the run) is the same path. */
        char *a = absolute_path(out), *b = in->checkpoint_dir ? absolute_path(in->checkpoint_dir) : NULL;
        bool same = a && b && strcmp(a, b) == 0;
        free(a);
        free(b);
        if (!same) return STRATA_OK;
        snprintf(why, sizeof why, "it is the checkpoint directory %s", in->checkpoint_dir);
        return refuse(out, why);
    }
    if (in->model_dir && id_of(in->model_dir, &id) && same_id(id, out_id)) {
        snprintf(why, sizeof why, "it is the model directory %s (the output would replace the model's files)",
                 in->model_dir);
        return refuse(out, why);
    }
    if (in->checkpoint_dir && id_of(in->checkpoint_dir, &id) && same_id(id, out_id)) {
        snprintf(why, sizeof why, "it is the checkpoint directory %s", in->checkpoint_dir);
        return refuse(out, why);
    }
    /* Where every file of the model really is: a shard may be a symlink into another
     * directory (the Hugging Face cache's blobs). */
    DIR *d = in->model_dir ? opendir(in->model_dir) : NULL;
    strata_status status = STRATA_OK;
    for (struct dirent *e; d && status == STRATA_OK && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.') continue;
        char *path = path_join(in->model_dir, e->d_name);
        char *parent = path && !path_is_dir(path) ? parent_of(path) : NULL;
        if (parent && id_of(parent, &id) && same_id(id, out_id)) {
            snprintf(why, sizeof why, "the model's file %s is in that directory (%s)", path, parent);
            status = refuse(out, why);
        }
        free(parent);
        free(path);
    }
    if (d) closedir(d);
    for (size_t i = 0; status == STRATA_OK && i < in->n_files; i++) {
        if (!in->files[i] || path_is_dir(in->files[i])) continue;
        char *parent = parent_of(in->files[i]);
        const char *base = strrchr(in->files[i], '/');
        base = base ? base + 1 : in->files[i];
        if (parent && id_of(parent, &id) && same_id(id, out_id) && name_is_output_file(base)) {
            snprintf(why, sizeof why, "it holds the input file %s, a name the output would replace", in->files[i]);
            status = refuse(out, why);
        }
        free(parent);
    }
    return status;
}

strata_status strata_output_check(const char *out, const char *model_dir, const char *checkpoint_dir,
                                  const char *const *input_files, size_t n_input_files)
{
    if (!out) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_output_check: NULL output directory");
    output_inputs in = {.model_dir = model_dir, .checkpoint_dir = checkpoint_dir, .files = input_files,
                        .n_files = input_files ? n_input_files : 0};
    return output_check_inputs(out, &in);
}

/* ---------------------------------------------------------------- manifests and journals */

static strata_status read_file_list(const char *path, const char *key, char ***names, size_t *n)
{
    sjson *root = NULL;
    strata_status status = json_file_read(path, MAX_MANIFEST_BYTES, true, &root);
    if (status != STRATA_OK) return status;
    const sjson *list = sjson_get(root, key);
    if (!sjson_is_array(list)) {
        sjson_free(root);
        return strata_fail(STRATA_ERR_FORMAT, "%s: no \"%s\" list; not a strata output manifest", path, key);
    }
    size_t count = sjson_array_size(list);
    char **out = calloc(count ? count : 1, sizeof *out);
    if (!out) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; status == STRATA_OK && i < count; i++) {
        const char *name = sjson_as_string(sjson_array_at(list, i));
        if (!safe_name(name))
            status = strata_fail(STRATA_ERR_FORMAT, "%s: \"%s\" holds an entry that is not a plain file name", path, key);
        else if (!(out[i] = strdup(name)))
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    sjson_free(root);
    if (status != STRATA_OK) {
        for (size_t i = 0; out && i < count; i++) free(out[i]);
        free(out);
        return status;
    }
    *names = out;
    *n = count;
    return STRATA_OK;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++) free(names[i]);
    free(names);
}

static bool listed(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The files staged for the output: everything in the staging area but hidden files. */
static strata_status staged_files(const char *staging, char ***names, size_t *n)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(staging);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read: %s", staging, strerror(errno));
    strata_status status = STRATA_OK;
    size_t capacity = 0;
    for (struct dirent *e; status == STRATA_OK && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || name_is_temporary(e->d_name)) continue;
        if (*n == capacity) {
            capacity = capacity ? 2 * capacity : 32;
            char **grown = realloc(*names, capacity * sizeof *grown);
            if (!grown) { status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory"); break; }
            *names = grown;
        }
        if (!((*names)[*n] = strdup(e->d_name))) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        else (*n)++;
    }
    closedir(d);
    if (status == STRATA_OK && *n) qsort(*names, *n, sizeof **names, by_name);
    return status;
}

static sjson *string_array(char *const *names, size_t n)
{
    sjson *list = sjson_new_array();
    for (size_t i = 0; list && i < n; i++)
        if (!sjson_append(list, sjson_new_string(names[i]))) {
            sjson_free(list);
            return NULL;
        }
    return list;
}

/* The manifest: who wrote the output and every file it holds (itself excluded). */
static sjson *manifest(const output_dir *od, char *const *files, size_t n)
{
    sjson *m = sjson_new_object();
    bool ok = m && sjson_set(m, "producer", sjson_new_string("strata")) &&
              sjson_set(m, "version", sjson_new_string(strata_version())) &&
              sjson_set(m, "command", sjson_new_string(od->command)) && sjson_set(m, "run", sjson_new_string(od->run_id)) &&
              sjson_set(m, "files", string_array(files, n));
    if (!ok) {
        sjson_free(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- the commit */

/* Removes a staging area: its journal first (the commit is over), its files, the
 * earlier output's files put aside in it, itself. */
static void remove_staging(const char *staging)
{
    char path[PATH_MAX + 256];
    int n = snprintf(path, sizeof path, "%s/%s", staging, JOURNAL);
    if (n > 0 && (size_t)n < sizeof path) unlink(path);
    n = snprintf(path, sizeof path, "%s/%s", staging, REPLACED);
    if (n > 0 && (size_t)n < sizeof path) dir_remove_files(path, true);
    dir_remove_files(staging, true);
}

/* dir/name into a fixed buffer: the commit allocates nothing once it starts moving. */
typedef char commit_path[PATH_MAX + 256];

static bool join(commit_path out, const char *dir, const char *name)
{
    int n = snprintf(out, sizeof(commit_path), "%s/%s", dir, name);
    return n > 0 && (size_t)n < sizeof(commit_path);
}

/* One rename of the commit, from_dir/name to to_dir/name. */
static bool move(const char *from_dir, const char *to_dir, const char *name)
{
    commit_path from, to;
    if (!join(from, from_dir, name) || !join(to, to_dir, name)) {
        errno = ENAMETOOLONG;
        return false;
    }
    return rename(from, to) == 0;
}

static bool exists_in(const char *dir, const char *name)
{
    commit_path path;
    return join(path, dir, name) && path_exists(path);
}

/* What a commit moves: the new files (staging -> OUT) and the earlier output's files,
 * its manifest included (OUT -> staging/.replaced, removed with the staging area). */
typedef struct commit_plan {
    char **files, **replaces;
    size_t n_files, n_replaces;
    sjson *manifest;              /* written to OUT/strata_output.json last */
} commit_plan;

static void commit_plan_free(commit_plan *c)
{
    free_names(c->files, c->n_files);
    free_names(c->replaces, c->n_replaces);
    sjson_free(c->manifest);
    *c = (commit_plan){0};
}

/* Steps 2-5 of a commit (output_dir.h). Each step looks at where each file is, so running
 * it again after a kill finishes the same commit. On a failure the renames already made
 * are undone in reverse order; only when that fails too does the journal stay, for the
 * next run to finish. *undone tells which. */
static strata_status run_commit(const char *out, const char *staging, const commit_plan *c, bool *undone)
{
    *undone = true; /* nothing moved yet */
    commit_path aside, manifest_path;
    bool *aside_done = calloc(c->n_replaces + 1, sizeof *aside_done), *in_done = calloc(c->n_files + 1, sizeof *in_done);
    strata_status status = STRATA_OK;
    if (!aside_done || !in_done) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    else if (!join(aside, staging, REPLACED) || !join(manifest_path, out, OUTPUT_MANIFEST))
        status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: path too long", out);
    else if (!path_is_dir(aside) && mkdir(aside, 0755) != 0)
        status = strata_fail(STRATA_ERR_IO, "%s: cannot create: %s", aside, strerror(errno));
    bool moved = false;
    /* The earlier output goes aside (a file the new output already replaced stays). */
    for (size_t i = 0; status == STRATA_OK && i < c->n_replaces; i++) {
        const char *name = c->replaces[i];
        bool replaced_already = listed(c->files, c->n_files, name) && !exists_in(staging, name);
        if (!exists_in(out, name) || exists_in(aside, name) || replaced_already) continue;
        if (!move(out, aside, name))
            status = strata_fail(STRATA_ERR_IO, "%s/%s: cannot move the earlier output's file aside: %s", out, name,
                                 strerror(errno));
        else aside_done[i] = moved = true;
    }
    for (size_t i = 0; status == STRATA_OK && i < c->n_files; i++) {
        if (!exists_in(staging, c->files[i])) continue; /* moved before a kill */
        if (!move(staging, out, c->files[i]))
            status = strata_fail(STRATA_ERR_IO, "%s/%s: cannot move into place: %s", out, c->files[i], strerror(errno));
        else in_done[i] = moved = true;
    }
    /* The manifest last: its presence says the output is whole. */
    if (status == STRATA_OK) status = json_file_write(manifest_path, c->manifest, 2);
    if (status != STRATA_OK && moved) {
        bool ok = true;
        for (size_t i = c->n_files; i-- > 0;)
            if (in_done[i]) ok &= move(out, staging, c->files[i]);
        for (size_t i = c->n_replaces; i-- > 0;)
            if (aside_done[i]) ok &= move(aside, out, c->replaces[i]);
        *undone = ok;
    }
    if (status == STRATA_OK) {
        fsync_parent_dir(manifest_path);
        remove_staging(staging);
    }
    free(aside_done);
    free(in_done);
    return status;
}

/* The journal: the manifest plus the earlier output's files it replaces. */
static strata_status read_journal(const char *staging, commit_plan *c)
{
    *c = (commit_plan){0};
    char *path = path_join(staging, JOURNAL);
    if (!path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    strata_status status = read_file_list(path, "files", &c->files, &c->n_files);
    if (status == STRATA_OK) status = read_file_list(path, "replaces", &c->replaces, &c->n_replaces);
    if (status == STRATA_OK) status = json_file_read(path, MAX_MANIFEST_BYTES, true, &c->manifest);
    if (status == STRATA_OK) sjson_remove(c->manifest, "replaces");
    free(path);
    if (status != STRATA_OK) commit_plan_free(c);
    return status;
}

strata_status output_commit(output_dir *od)
{
    commit_plan c = {0};
    strata_status status = staged_files(od->staging, &c.files, &c.n_files);
    /* Never replace a file the run read (a calibration file named like an output file is
     * refused earlier; this is the last line). */
    for (size_t i = 0; status == STRATA_OK && i < c.n_files; i++) {
        char *target = path_join(od->dir, c.files[i]);
        file_id id;
        if (!target) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t k = 0; status == STRATA_OK && k < od->n_inputs && id_of(target, &id); k++)
            if (same_id(id, od->inputs[k]))
                status = strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s: the run read this file; the output will not "
                                     "replace it", target);
        free(target);
    }
    /* The earlier output's files, its manifest among them. */
    if (status == STRATA_OK) {
        c.replaces = calloc(od->n_earlier + 1, sizeof *c.replaces);
        if (!c.replaces) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t i = 0; status == STRATA_OK && i <= od->n_earlier; i++)
            if (!(c.replaces[c.n_replaces++] = strdup(i < od->n_earlier ? od->earlier[i] : OUTPUT_MANIFEST)))
                status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    sjson *journal = NULL;
    if (status == STRATA_OK) {
        c.manifest = manifest(od, c.files, c.n_files);
        journal = manifest(od, c.files, c.n_files);
        if (!c.manifest || !journal || !sjson_set(journal, "replaces", string_array(c.replaces, c.n_replaces)))
            status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    }
    char *journal_path = status == STRATA_OK ? path_join(od->staging, JOURNAL) : NULL;
    if (status == STRATA_OK && !journal_path) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK) status = json_file_write(journal_path, journal, 2);
    if (status == STRATA_OK) {
        bool undone = false;
        status = run_commit(od->dir, od->staging, &c, &undone);
        if (status == STRATA_OK) od->committed = true;
        else if (undone) unlink(journal_path); /* as if the commit never started */
        else {
            od->commit_started = true; /* the journal stays for the next run */
            strata_log(STRATA_LOG_ERROR, "%s: the output is half moved into place; running strata quantize or convert "
                       "into %s again finishes the move", od->staging, od->dir);
        }
    }
    free(journal_path);
    sjson_free(journal);
    commit_plan_free(&c);
    return status;
}

/* ---------------------------------------------------------------- open and close */

/* Finishes every interrupted commit found in OUT. */
static strata_status finish_interrupted(const char *out)
{
    DIR *d = opendir(out);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read: %s", out, strerror(errno));
    strata_status status = STRATA_OK;
    for (struct dirent *e; status == STRATA_OK && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, OUTPUT_STAGING_PREFIX, strlen(OUTPUT_STAGING_PREFIX)) != 0) continue;
        char *staging = path_join(out, e->d_name), *journal = staging ? path_join(staging, JOURNAL) : NULL;
        if (!journal) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        else if (path_exists(journal)) {
            strata_log(STRATA_LOG_WARN, "%s: finishing the commit of an interrupted strata run (%s)", out, e->d_name);
            commit_plan c;
            bool undone;
            status = read_journal(staging, &c);
            if (status == STRATA_OK) status = run_commit(out, staging, &c, &undone);
            commit_plan_free(&c);
        }
        free(journal);
        free(staging);
    }
    closedir(d);
    return status;
}

/* Removes what a killed run was writing under temporary names in its staging area. */
static void remove_temporaries(const char *staging)
{
    DIR *d = opendir(staging);
    char path[PATH_MAX + 256];
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        int n = snprintf(path, sizeof path, "%s/%s", staging, e->d_name);
        if (name_is_temporary(e->d_name) && n > 0 && (size_t)n < sizeof path) unlink(path);
    }
    if (d) closedir(d);
}

typedef struct scan_result {
    bool own_staging;       /* this run's staging area exists: it was admitted before */
    char first_other[256];  /* a file that is none of strata's, for the message */
    size_t n_other;
    char collision[256];    /* a file no strata output listed, named like an output file */
} scan_result;

/* Classifies OUT's entries (after the earlier manifest, if any, was read into
 * od->earlier); removes what earlier killed runs left. */
static strata_status scan(output_dir *od, const char *own, const file_id *checkpoint, scan_result *r)
{
    *r = (scan_result){0};
    DIR *d = opendir(od->dir);
    if (!d) return strata_fail(STRATA_ERR_IO, "%s: cannot read: %s", od->dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strcmp(name, DIR_LOCK_NAME) == 0) continue;
        char *path = path_join(od->dir, name);
        file_id id;
        if (!path) continue;
        if (strcmp(name, own) == 0 && od->keep_staging) {
            r->own_staging = true; /* a resumable run's: its sealed shards are reused */
            remove_temporaries(path);
        } else if (strncmp(name, OUTPUT_STAGING_PREFIX, strlen(OUTPUT_STAGING_PREFIX)) == 0 && path_is_dir(path)) {
            strata_log(STRATA_LOG_INFO, "%s: removing what an interrupted strata run left (%s)", od->dir, name);
            remove_staging(path);
        } else if (name_is_legacy_temporary(name)) {
            strata_log(STRATA_LOG_INFO, "%s: removing an interrupted strata run's temporary file %s", od->dir, name);
            unlink(path);
        } else if (strcmp(name, OUTPUT_MANIFEST) == 0 || listed(od->earlier, od->n_earlier, name)) {
            /* the earlier output's */
        } else if (!(checkpoint && id_of(path, &id) && same_id(id, *checkpoint))) {
            if (r->n_other++ == 0) snprintf(r->first_other, sizeof r->first_other, "%s", name);
            if (!r->collision[0] && name_is_output_file(name)) snprintf(r->collision, sizeof r->collision, "%s", name);
        }
        free(path);
    }
    closedir(d);
    return STRATA_OK;
}

/* Identities of the input files the commit must not replace. */
static strata_status remember_inputs(output_dir *od, const output_inputs *in)
{
    if (!in || in->n_files == 0) return STRATA_OK;
    od->inputs = calloc(in->n_files, sizeof *od->inputs);
    if (!od->inputs) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (size_t i = 0; i < in->n_files; i++)
        if (in->files[i] && id_of(in->files[i], &od->inputs[od->n_inputs])) od->n_inputs++;
    return STRATA_OK;
}

strata_status output_open(const output_params *p, output_dir *od)
{
    *od = (output_dir){.lock = {.fd = -1}, .keep_staging = p->keep_staging};
    od->created = !path_exists(p->dir);
    if (!make_dirs(p->dir))
        return strata_fail(STRATA_ERR_IO, "%s: cannot create the output directory: %s", p->dir, strerror(errno));
    char own[128];
    snprintf(own, sizeof own, "%s%s", OUTPUT_STAGING_PREFIX, p->run_id);
    od->dir = realpath(p->dir, NULL);
    if (!od->dir) {
        int error = errno;
        if (od->created) rmdir(p->dir); /* output_close removes it by od->dir, which is missing */
        return strata_fail(error == ENOMEM ? STRATA_ERR_OUT_OF_MEMORY : STRATA_ERR_IO, "%s: %s", p->dir,
                           strerror(error));
    }
    od->run_id = strdup(p->run_id);
    od->command = strdup(p->command);
    strata_status status = od->dir && od->run_id && od->command ? STRATA_OK
                                                                : strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK && !(od->staging = path_join(od->dir, own)))
        status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    if (status == STRATA_OK) status = remember_inputs(od, p->inputs);
    if (status == STRATA_OK) status = dir_lock_acquire(od->dir, "output directory", &od->lock);
    if (status == STRATA_OK) status = finish_interrupted(od->dir);
    file_id checkpoint;
    bool has_checkpoint = p->inputs && p->inputs->checkpoint_dir && id_of(p->inputs->checkpoint_dir, &checkpoint);
    char *manifest_path = status == STRATA_OK ? path_join(od->dir, OUTPUT_MANIFEST) : NULL;
    bool earlier = manifest_path && path_exists(manifest_path), same_run = false;
    if (earlier) {
        status = read_file_list(manifest_path, "files", &od->earlier, &od->n_earlier);
        if (status != STRATA_OK) status = strata_fail_context(status, "the earlier output in %s", od->dir);
        sjson *m = NULL;
        if (status == STRATA_OK && json_file_read(manifest_path, MAX_MANIFEST_BYTES, true, &m) == STRATA_OK) {
            const char *run = sjson_as_string(sjson_get(m, "run"));
            same_run = run && strcmp(run, od->run_id) == 0;
        }
        sjson_free(m);
        strata_error_clear();
    }
    free(manifest_path);
    scan_result r;
    if (status == STRATA_OK) status = scan(od, own, has_checkpoint ? &checkpoint : NULL, &r);
    if (status != STRATA_OK) return status;
    /* This run's own earlier output (same model, data and settings) is replaced by the
     * same bytes: resuming a finished run, or running it again, needs no --overwrite. */
    bool admitted = r.own_staging || p->overwrite || same_run;
    if (earlier && !admitted)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s already holds a strata output (%s); pass --overwrite to "
                           "replace it", od->dir, OUTPUT_MANIFEST);
    if (r.n_other > 0 && !admitted)
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s is not empty (it holds '%s'%s); give a new or empty output "
                           "directory (--overwrite replaces only an earlier strata output there)",
                           od->dir, r.first_other, r.n_other > 1 ? " and more" : "");
    if (r.collision[0])
        return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "%s holds '%s', which the output would replace, and no strata "
                           "output there lists it (%s); strata replaces only files it wrote: move it away or choose "
                           "another output directory", od->dir, r.collision, OUTPUT_MANIFEST);
    if (r.n_other > 0)
        strata_log(STRATA_LOG_INFO, "%s: %zu entr%s that no strata output wrote (such as '%s') stay%s", od->dir,
                   r.n_other, r.n_other == 1 ? "y" : "ies", r.first_other, r.n_other == 1 ? "s" : "");
    if (!path_is_dir(od->staging) && mkdir(od->staging, 0755) != 0)
        return strata_fail(STRATA_ERR_IO, "%s: cannot create the staging area: %s", od->staging, strerror(errno));
    return STRATA_OK;
}

void output_close(output_dir *od)
{
    /* A commit that failed half way and could not be undone keeps its journal and files:
     * the next run finishes it. */
    if (od->dir && !od->committed && !od->commit_started && dir_lock_held(&od->lock)) {
        if (od->staging && !od->keep_staging) remove_staging(od->staging);
        else if (od->staging) rmdir(od->staging); /* kept only when it holds something */
    }
    dir_lock_release(&od->lock);
    if (od->dir && !od->committed && od->created) rmdir(od->dir); /* only when empty */
    free(od->dir);
    free(od->staging);
    free(od->run_id);
    free(od->command);
    free_names(od->earlier, od->n_earlier);
    free(od->inputs);
    *od = (output_dir){.lock = {.fd = -1}};
}

/* ---------------------------------------------------------------- readers */

strata_status output_check_complete(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return STRATA_OK; /* the reader reports it */
    char staging[256] = "";
    bool journal = false;
    for (struct dirent *e; !journal && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, OUTPUT_STAGING_PREFIX, strlen(OUTPUT_STAGING_PREFIX)) != 0) continue;
        snprintf(staging, sizeof staging, "%s", e->d_name);
        char *path = path_join(dir, e->d_name), *j = path ? path_join(path, JOURNAL) : NULL;
        journal = j && path_exists(j);
        free(j);
        free(path);
    }
    closedir(d);
    if (journal)
        return strata_fail(STRATA_ERR_FORMAT, "%s: a strata run was interrupted while moving its output into place "
                           "(%s/%s); run strata quantize or convert into it again to finish the move",
                           dir, dir, staging);
    char *config = path_join(dir, "config.json");
    bool unfinished = staging[0] && config && !path_exists(config);
    free(config);
    if (unfinished)
        return strata_fail(STRATA_ERR_NOT_FOUND, "%s holds no finished output, only the work of a strata run that did "
                           "not finish (%s/%s): run it again (or strata resume CHECKPOINT_DIR for a quantize run "
                           "with a checkpoint)", dir, dir, staging);
    return STRATA_OK;
}
