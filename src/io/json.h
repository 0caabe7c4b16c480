/*
 * json.h — strata's JSON values: the only door to the JSON library (jansson).
 *
 * No other file includes <jansson.h>; swapping the library means rewriting json.c.
 * Values are reference counted: functions that return `sjson *` documented as "new"
 * give the caller a reference to release with sjson_free(); lookups return borrowed
 * pointers that live as long as their container. Builders steal the value they are given.
 * Objects keep their keys in insertion order, both when parsed and when dumped.
 */
#ifndef STRATA_IO_JSON_H
#define STRATA_IO_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct sjson sjson;

typedef struct sjson_error {
    int line, column;     /* 1-based position of the problem */
    char text[160];       /* what is wrong */
} sjson_error;

/* Parses length bytes (need not be NUL-terminated). Returns a new value or NULL with
 * *error filled. Duplicate object keys are rejected when reject_duplicates is set. */
sjson *sjson_parse(const char *text, size_t length, bool reject_duplicates, sjson_error *error);
/* The same, reading every number as a real: for files written by Python that may hold
 * integers beyond int64 (tokenizer_config.json's model_max_length = 10^30). Whole reals
 * still read back through sjson_as_int64 (exactly up to 2^53). */
sjson *sjson_parse_numbers_as_reals(const char *text, size_t length, sjson_error *error);
void sjson_free(sjson *value);
/* A new reference to value. */
sjson *sjson_ref(const sjson *value);

bool sjson_is_object(const sjson *value);
bool sjson_is_array(const sjson *value);
bool sjson_is_null(const sjson *value);
/* The JSON type's name ("object", "string", "integer", ...) for error messages. */
const char *sjson_type_name(const sjson *value);

/* Borrowed member of an object, or NULL when absent or value is not an object. */
sjson *sjson_get(const sjson *object, const char *key);
size_t sjson_object_size(const sjson *object);
/* Iteration in key order: for (it = sjson_iter(o); it; it = sjson_iter_next(o, it)) */
void *sjson_iter(const sjson *object);
void *sjson_iter_next(const sjson *object, void *iter);
const char *sjson_iter_key(void *iter);
sjson *sjson_iter_value(void *iter);

size_t sjson_array_size(const sjson *array);
sjson *sjson_array_at(const sjson *array, size_t index);

/* Scalar readers: false when the value is absent or of another type. */
bool sjson_as_int64(const sjson *value, int64_t *out);   /* integers, and reals that are whole */
bool sjson_as_double(const sjson *value, double *out);   /* integers and reals */
bool sjson_as_bool(const sjson *value, bool *out);
const char *sjson_as_string(const sjson *value);         /* NULL unless a string */

/* Builders (each returns a new value, NULL on allocation failure). */
sjson *sjson_new_object(void);
sjson *sjson_new_array(void);
sjson *sjson_new_string(const char *text);
sjson *sjson_new_int(int64_t number);
sjson *sjson_new_real(double number);
sjson *sjson_new_bool(bool flag);
sjson *sjson_new_null(void);
/* Sets object[key] = value, stealing value (also on failure). */
bool sjson_set(sjson *object, const char *key, sjson *value);
/* Appends value to array, stealing it (also on failure). */
bool sjson_append(sjson *array, sjson *value);
/* Replaces array[index] (index < size), stealing value (also on failure). */
bool sjson_array_set(sjson *array, size_t index, sjson *value);
/* Building with a remembered failure: when *ok, object[key] = value (sjson_put) or
 * appends value to array (sjson_push), and *ok becomes whether that worked; when !*ok,
 * value is only freed. Either way value is consumed, so a sequence of these leaks
 * nothing, whatever fails, and leaves *ok false after the first failure (a NULL value,
 * an allocation that failed, is one). */
void sjson_put(bool *ok, sjson *object, const char *key, sjson *value);
void sjson_push(bool *ok, sjson *array, sjson *value);
/* Removes object[key]; false when absent. */
bool sjson_remove(sjson *object, const char *key);

/* Serializes value: indent 0 gives compact output, otherwise pretty-printed with that
 * many spaces. Returns a malloc'd string or NULL. */
char *sjson_dump(const sjson *value, int indent);

#endif
