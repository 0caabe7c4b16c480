/*
 * error.h — how strata reports failures.
 *
 * A failing function records a message in a thread-local buffer with strata_fail() and
 * returns the status it was given, so call sites read `return strata_fail(STATUS, ...)`.
 * Messages name the file and tensor involved; callers that add context wrap the message
 * with strata_fail_context(), which prefixes what is already there.
 */
#ifndef STRATA_CORE_ERROR_H
#define STRATA_CORE_ERROR_H

#include "strata.h"

/* Records a formatted message for this thread and returns status. */
strata_status strata_fail(strata_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the current message with "<context>: " and returns status unchanged. */
strata_status strata_fail_context(strata_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears this thread's message. */
void strata_error_clear(void);

/* Logs through the installed callback (no-op when none or level is too verbose). */
void strata_log(strata_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
