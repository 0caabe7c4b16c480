/*
 * golden_json.c — comparing strata's JSON files with golden ones (see golden_json.h).
 */
#include "golden_json.h"

#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/* Golden lists whose order carries no meaning (module names). */
static bool is_set_key(const char *key)
{
    return key && (!strcmp(key, "exclude_modules") || !strcmp(key, "ignore") || !strcmp(key, "targets"));
}

/* Every member of a is in b (string members, as the set keys hold). */
static bool strings_within(const sjson *a, const sjson *b)
{
    for (size_t i = 0; i < sjson_array_size(a); i++) {
        bool found = false;
        for (size_t j = 0; j < sjson_array_size(b) && !found; j++)
            found = golden_json_same(sjson_array_at(a, i), sjson_array_at(b, j), NULL);
        if (!found) return false;
    }
    return true;
}

/* Deep equality where a golden "*" matches anything and set keys compare as sets. */
bool golden_json_same(const sjson *golden, const sjson *actual, const char *key)
{
    const char *g = sjson_as_string(golden);
    if (g && strcmp(g, "*") == 0) return true;
    if (!actual || strcmp(sjson_type_name(golden), sjson_type_name(actual)) != 0) return false;
    if (g) return strcmp(g, sjson_as_string(actual)) == 0;
    if (sjson_is_object(golden)) {
        if (sjson_object_size(golden) != sjson_object_size(actual)) return false;
        for (void *it = sjson_iter(golden); it; it = sjson_iter_next(golden, it))
            if (!golden_json_same(sjson_iter_value(it), sjson_get(actual, sjson_iter_key(it)), sjson_iter_key(it)))
                return false;
        return true;
    }
    if (sjson_is_array(golden)) {
        if (sjson_array_size(golden) != sjson_array_size(actual)) return false;
        if (is_set_key(key)) return strings_within(golden, actual) && strings_within(actual, golden);
        for (size_t i = 0; i < sjson_array_size(golden); i++)
            if (!golden_json_same(sjson_array_at(golden, i), sjson_array_at(actual, i), NULL)) return false;
        return true;
    }
    double x, y;
    bool b1, b2;
    if (sjson_as_double(golden, &x)) return sjson_as_double(actual, &y) && x == y;
    if (sjson_as_bool(golden, &b1)) return sjson_as_bool(actual, &b2) && b1 == b2;
    return sjson_is_null(golden) && sjson_is_null(actual);
}

void golden_assert_json_same(const char *what, const sjson *golden, const sjson *actual)
{
    if (golden_json_same(golden, actual, NULL)) return;
    char *g = sjson_dump(golden, 0), *a = actual ? sjson_dump(actual, 0) : NULL;
    fail_msg("%s: ModelOpt writes %s, strata wrote %s", what, g, a ? a : "nothing");
}
