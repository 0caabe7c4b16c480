/*
 * output_dir.h — where a run's output goes, and the rules that keep a user's files safe
 * (docs/DECISIONS.md, "Output directories").
 *
 *   check   before anything is read: the output directory must not be a directory the
 *           run reads (the model directory, every directory a model file really lives in,
 *           the checkpoint directory), compared by device and inode so that symlinks,
 *           `..` and bind mounts are seen through; an input file inside it whose name a
 *           strata output uses (a calibration file called config.json) is refused too.
 *   open    creates OUT when missing and locks it (dir_lock.h); finishes an earlier run's
 *           interrupted commit; removes the staging areas and temporary files earlier
 *           killed runs left; and refuses a directory holding anything else, unless
 *           overwrite is set: then the earlier strata output found there (the files its
 *           manifest lists, nothing else) is replaced at the commit. Every file of the run
 *           is written into the staging area OUT/.strata-partial-<run id>.
 *   commit  writes a journal of what moves, puts the earlier output's files aside, renames
 *           the staged files into OUT and writes the manifest strata_output.json last: its
 *           presence says the output is whole. A failure undoes the renames (OUT is as it
 *           was); a run killed during the commit is finished from the journal by the next
 *           run into OUT, and eval and inspect refuse the directory until then.
 *   close   after a failure, removes the staging area (a resumable run keeps it: its
 *           sealed shards are reused) and OUT itself when this run created it; releases
 *           the lock.
 *
 * A run that finds its own staging area (same run id: same model, data and settings) was
 * admitted into OUT before it was interrupted, so it continues without --overwrite; one
 * that finds its own finished output (the manifest's run id) writes the same bytes again.
 */
#ifndef STRATA_IO_OUTPUT_DIR_H
#define STRATA_IO_OUTPUT_DIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "io/dir_lock.h"
#include "strata.h"

#define OUTPUT_MANIFEST "strata_output.json"
#define OUTPUT_STAGING_PREFIX ".strata-partial-"

/* What a run reads, for the check. */
typedef struct output_inputs {
    const char *model_dir;          /* every file in it (and where its symlinks lead) */
    const char *checkpoint_dir;     /* may be NULL */
    const char *const *files;       /* (n_files) other inputs: calibration data, tokenizer; NULLs skipped */
    size_t n_files;
} output_inputs;

/* A file identity (device, inode). */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id;

typedef struct output_params {
    const char *dir;                /* OUT as the user gave it */
    const char *run_id;             /* names the staging area */
    const char *command;            /* "quantize", "convert": recorded in the manifest */
    bool overwrite;                 /* replace an earlier strata output in OUT */
    bool keep_staging;              /* a failed run keeps its staging area (checkpointed runs) */
    const output_inputs *inputs;    /* files never replaced, and a checkpoint directory inside OUT */
} output_params;

typedef struct output_dir {
    char *dir;                      /* the real path of OUT */
    char *staging;                  /* OUT/.strata-partial-<run id>: every file of the run goes here */
    char *run_id, *command;
    dir_lock lock;
    bool created;                   /* OUT did not exist before this run */
    bool keep_staging, committed;
    bool commit_started;            /* the journal is written: a failure keeps the staging area */
    char **earlier;                 /* (n_earlier) files of the earlier output, replaced at the commit */
    size_t n_earlier;
    file_id *inputs;                /* (n_inputs) input files the commit must never replace */
    size_t n_inputs;
} output_dir;

/* Refuses (with a message naming both paths) an output directory that is, or would
 * overwrite, something the run reads. Reads nothing but directory entries. */
strata_status output_check_inputs(const char *out, const output_inputs *inputs);

strata_status output_open(const output_params *params, output_dir *od);
/* Moves the staged files into OUT (the manifest last). */
strata_status output_commit(output_dir *od);
/* Cleans up after a failure (see above) and releases the lock; safe on a zeroed od. */
void output_close(output_dir *od);

/* For readers: an error when dir is a strata output whose commit was interrupted, or
 * holds nothing finished but a run's staging area. */
strata_status output_check_complete(const char *dir);

#endif
