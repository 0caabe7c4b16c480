/*
 * json.c — sjson over jansson. sjson is jansson's json_t under another name; this file
 * casts between the two and keeps the rest of strata free of <jansson.h>.
 */
#include "io/json.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static json_t *J(const sjson *v) { return (json_t *)v; }
static sjson *S(json_t *v) { return (sjson *)v; }

static sjson *parse(const char *text, size_t length, size_t flags, sjson_error *error)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, length, flags, &jerr);
    if (!root && error) {
        error->line = jerr.line;
        error->column = jerr.column;
        snprintf(error->text, sizeof error->text, "%s", jerr.text);
    }
    return S(root);
}

sjson *sjson_parse(const char *text, size_t length, bool reject_duplicates, sjson_error *error)
{
    return parse(text, length, reject_duplicates ? JSON_REJECT_DUPLICATES : 0, error);
}

sjson *sjson_parse_numbers_as_reals(const char *text, size_t length, sjson_error *error)
{
    return parse(text, length, JSON_DECODE_INT_AS_REAL, error);
}

void sjson_free(sjson *value) { json_decref(J(value)); }

sjson *sjson_ref(const sjson *value) { return S(json_incref(J(value))); }

bool sjson_is_object(const sjson *value) { return value && json_is_object(J(value)); }
bool sjson_is_array(const sjson *value) { return value && json_is_array(J(value)); }
bool sjson_is_null(const sjson *value) { return value && json_is_null(J(value)); }

const char *sjson_type_name(const sjson *value)
{
    if (!value) return "nothing";
    switch (json_typeof(J(value))) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "an unknown value";
}

sjson *sjson_get(const sjson *object, const char *key)
{
    if (!sjson_is_object(object)) return NULL;
    return S(json_object_get(J(object), key));
}

size_t sjson_object_size(const sjson *object)
{
    return sjson_is_object(object) ? json_object_size(J(object)) : 0;
}

void *sjson_iter(const sjson *object)
{
    return sjson_is_object(object) ? json_object_iter(J(object)) : NULL;
}

void *sjson_iter_next(const sjson *object, void *iter)
{
    return json_object_iter_next(J(object), iter);
}

const char *sjson_iter_key(void *iter) { return json_object_iter_key(iter); }
sjson *sjson_iter_value(void *iter) { return S(json_object_iter_value(iter)); }

size_t sjson_array_size(const sjson *array)
{
    return sjson_is_array(array) ? json_array_size(J(array)) : 0;
}

sjson *sjson_array_at(const sjson *array, size_t index)
{
    return sjson_is_array(array) ? S(json_array_get(J(array), index)) : NULL;
}

bool sjson_as_int64(const sjson *value, int64_t *out)
{
    if (!value) return false;
    if (json_is_integer(J(value))) {
        *out = (int64_t)json_integer_value(J(value));
        return true;
    }
    if (json_is_real(J(value))) {
        double d = json_real_value(J(value));
        if (d != floor(d) || d < -9.2e18 || d > 9.2e18) return false;
        *out = (int64_t)d;
        return true;
    }
    return false;
}

bool sjson_as_double(const sjson *value, double *out)
{
    if (!value || !json_is_number(J(value))) return false;
    *out = json_number_value(J(value));
    return true;
}

bool sjson_as_bool(const sjson *value, bool *out)
{
    if (!value || !json_is_boolean(J(value))) return false;
    *out = json_is_true(J(value));
    return true;
}

const char *sjson_as_string(const sjson *value)
{
    return value && json_is_string(J(value)) ? json_string_value(J(value)) : NULL;
}

sjson *sjson_new_object(void) { return S(json_object()); }
sjson *sjson_new_array(void) { return S(json_array()); }
sjson *sjson_new_string(const char *text) { return S(json_string(text)); }
sjson *sjson_new_int(int64_t number) { return S(json_integer((json_int_t)number)); }
sjson *sjson_new_bool(bool flag) { return S(json_boolean(flag)); }
sjson *sjson_new_null(void) { return S(json_null()); }

sjson *sjson_new_real(double number)
{
    /* JSON has no NaN or infinity: they become null, as Python's json does not allow them
     * either without allow_nan. */
    if (!isfinite(number)) return S(json_null());
    return S(json_real(number));
}

bool sjson_set(sjson *object, const char *key, sjson *value)
{
    if (!value) return false;
    if (!sjson_is_object(object)) { json_decref(J(value)); return false; }
    return json_object_set_new(J(object), key, J(value)) == 0;
}

bool sjson_append(sjson *array, sjson *value)
{
    if (!value) return false;
    if (!sjson_is_array(array)) { json_decref(J(value)); return false; }
    return json_array_append_new(J(array), J(value)) == 0;
}

void sjson_put(bool *ok, sjson *object, const char *key, sjson *value)
{
    if (*ok) *ok = sjson_set(object, key, value);
    else json_decref(J(value));
}

void sjson_push(bool *ok, sjson *array, sjson *value)
{
    if (*ok) *ok = sjson_append(array, value);
    else json_decref(J(value));
}

bool sjson_array_set(sjson *array, size_t index, sjson *value)
{
    if (!value) return false;
    if (!sjson_is_array(array)) { json_decref(J(value)); return false; }
    return json_array_set_new(J(array), index, J(value)) == 0;
}

bool sjson_remove(sjson *object, const char *key)
{
    return sjson_is_object(object) && json_object_del(J(object), key) == 0;
}

char *sjson_dump(const sjson *value, int indent)
{
    /* 15 significant digits print config values short (1e-6, 10000.0) and exact enough. */
    size_t flags = JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY;
    if (indent > 0) flags |= JSON_INDENT(indent > 31 ? 31 : indent);
    else flags |= JSON_COMPACT;
    return json_dumps(J(value), flags);
}
