/*
 * error.c — status strings, the thread-local last-error message and the log callback.
 */
#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum { ERROR_MESSAGE_CAPACITY = 2048 };

static _Thread_local char last_error[ERROR_MESSAGE_CAPACITY];

const char *strata_status_str(strata_status status)
{
    switch (status) {
    case STRATA_OK: return "ok";
    case STRATA_ERR_INVALID_ARGUMENT: return "invalid argument";
    case STRATA_ERR_OUT_OF_MEMORY: return "out of memory";
    case STRATA_ERR_IO: return "input/output error";
    case STRATA_ERR_FORMAT: return "malformed file";
    case STRATA_ERR_UNSUPPORTED: return "unsupported";
    case STRATA_ERR_MISMATCH: return "checkpoint does not match its description";
    case STRATA_ERR_NOT_FOUND: return "not found";
    case STRATA_ERR_INTERNAL: return "internal library failure";
    }
    return "unknown status";
}

const char *strata_last_error(void) { return last_error; }

void strata_error_clear(void) { last_error[0] = '\0'; }

strata_status strata_fail(strata_status status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

strata_status strata_fail_context(strata_status status, const char *fmt, ...)
{
    char context[ERROR_MESSAGE_CAPACITY];
    char previous[ERROR_MESSAGE_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(context, sizeof context, fmt, ap);
    va_end(ap);
    memcpy(previous, last_error, sizeof previous);
    snprintf(last_error, sizeof last_error, "%s: %s", context, previous);
    return status;
}

/* The log sink is process-wide configuration, set once before work starts. */
static strata_log_fn log_fn;
static void *log_user;
static strata_log_level log_max_level = STRATA_LOG_INFO;

void strata_log_set(strata_log_fn fn, void *user, strata_log_level max_level)
{
    log_fn = fn;
    log_user = user;
    log_max_level = max_level;
}

void strata_log(strata_log_level level, const char *fmt, ...)
{
    if (!log_fn || level > log_max_level) return;
    char message[ERROR_MESSAGE_CAPACITY];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    log_fn(level, message, log_user);
}
