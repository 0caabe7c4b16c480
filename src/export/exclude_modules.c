/*
 * exclude_modules.c — the exclude_modules / ignore list of a ModelOpt checkpoint (see
 * exclude_modules.h).
 *
 * ModelOpt 0.47 (process_layer_quant_config and _prefix_wildcard_summarize_exclude_modules
 * in modelopt/torch/export/quant_utils.py) lists every unquantized module, in model order,
 * each as the shortest "prefix*" wildcard cut at a dot that matches no quantized module, or
 * the pair {prefix, prefix.*} written as "prefix.*", or the name itself; a module a wildcard
 * already listed is skipped; the result is sorted. A wildcard "p*" matches a quantized
 * module when one starts with p, so the quantized names are kept sorted and searched by
 * prefix instead of materializing every prefix of every name as ModelOpt does.
 */
#include "export/exclude_modules.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strmap.h"

typedef struct name_list {
    char **names;
    size_t count, capacity;
} name_list;

static bool list_add(name_list *l, const char *name, size_t length)
{
    if (l->count == l->capacity) {
        size_t capacity = l->capacity ? 2 * l->capacity : 64;
        char **grown = realloc(l->names, capacity * sizeof *grown);
        if (!grown) return false;
        l->names = grown;
        l->capacity = capacity;
    }
    char *copy = malloc(length + 1);
    if (!copy) return false;
    memcpy(copy, name, length);
    copy[length] = '\0';
    l->names[l->count++] = copy;
    return true;
}

static void list_free(name_list *l)
{
    for (size_t i = 0; i < l->count; i++) free(l->names[i]);
    free(l->names);
    *l = (name_list){0};
}

static int by_bytes(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Whether some quantized name (sorted) starts with prefix[0..n). */
static bool any_starts_with(const name_list *quantized, const char *prefix, size_t n)
{
    size_t lo = 0, hi = quantized->count;
    while (lo < hi) { /* the first name >= prefix */
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(quantized->names[mid], prefix, n) < 0 ||
            (strncmp(quantized->names[mid], prefix, n) == 0 && strlen(quantized->names[mid]) < n))
            lo = mid + 1;
        else hi = mid;
    }
    return lo < quantized->count && strncmp(quantized->names[lo], prefix, n) == 0;
}

static bool is_quantized(const name_list *quantized, const char *name)
{
    return bsearch(&name, quantized->names, quantized->count, sizeof *quantized->names, by_bytes) != NULL;
}

/* A candidate of ModelOpt's search: a wildcard "p*", the pair {p, p.*}, or the name. */
typedef struct candidate {
    char text[2][520];
    int n;
} candidate;

/* "Negative" in ModelOpt's terms: the wildcard (or exact name) covers a quantized module. */
static bool negative(const name_list *quantized, const char *w)
{
    size_t n = strlen(w);
    if (n > 0 && w[n - 1] == '*') return any_starts_with(quantized, w, n - 1);
    return is_quantized(quantized, w);
}

static bool summarize(const name_list *unquantized, const name_list *quantized, strmap *chosen, name_list *result)
{
    for (size_t u = 0; u < unquantized->count; u++) {
        const char *name = unquantized->names[u];
        size_t len = strlen(name);
        candidate pick = {.n = 0};
        bool covered = false;
        for (size_t i = 0; i <= len && !pick.n && !covered; i++) {
            if (i < len && name[i] != '.') continue;
            /* At a dot: "prefix*", then {prefix, prefix.*}; at the end: the name itself. */
            candidate tries[2];
            int n_tries = 0;
            if (i < len) {
                tries[n_tries] = (candidate){.n = 1};
                snprintf(tries[n_tries++].text[0], 520, "%.*s*", (int)i, name);
                tries[n_tries] = (candidate){.n = 2};
                snprintf(tries[n_tries].text[0], 520, "%.*s", (int)i, name);
                snprintf(tries[n_tries++].text[1], 520, "%.*s.*", (int)i, name);
            } else {
                tries[n_tries] = (candidate){.n = 1};
                snprintf(tries[n_tries++].text[0], 520, "%s", name);
            }
            for (int t = 0; t < n_tries && !pick.n && !covered; t++) {
                bool neg = false, all_chosen = true;
                for (int k = 0; k < tries[t].n; k++) {
                    neg |= negative(quantized, tries[t].text[k]);
                    all_chosen &= strmap_find(chosen, tries[t].text[k], NULL);
                }
                if (neg) continue;
                if (all_chosen) covered = true;
                else pick = tries[t];
            }
        }
        if (covered || !pick.n) continue;
        /* The pair is written (and remembered) as "prefix.*" alone, as ModelOpt does, so a
         * later name never finds the pair's bare "prefix" chosen. */
        const char *text = pick.text[pick.n == 2 ? 1 : 0];
        if (strmap_find(chosen, text, NULL)) continue;
        if (!list_add(result, text, strlen(text))) return false;
        if (!strmap_insert(chosen, result->names[result->count - 1], 0, NULL, NULL)) return false;
    }
    return true;
}

sjson *exclude_modules_list(const quant_recipe *recipe)
{
    const strata_arch *arch = recipe->arch;
    name_list quantized = {0}, unquantized = {0}, result = {0};
    strmap chosen = {0};
    sjson *list = NULL;
    bool ok = list_add(&unquantized, "model.embed_tokens", strlen("model.embed_tokens"));
    for (int i = 0; ok && i < arch->n_layers; i++) {
        const strata_layer *layer = &arch->layers[i];
        for (size_t k = 0; ok && k < layer->n_linears; k++) {
            const strata_linear *l = &layer->linears[k];
            ok = list_add(recipe_linear_scheme(recipe, l) ? &quantized : &unquantized, l->name, strlen(l->name));
        }
    }
    ok = ok && list_add(&unquantized, "lm_head", strlen("lm_head"));
    if (ok && quantized.count) qsort(quantized.names, quantized.count, sizeof *quantized.names, by_bytes);
    ok = ok && summarize(&unquantized, &quantized, &chosen, &result);
    /* Multi-token-prediction layers are copied unquantized, whole: one pattern each. */
    for (int i = 0; ok && i < arch->n_mtp_layers; i++) {
        char pattern[64];
        int n = snprintf(pattern, sizeof pattern, "model.layers.%d*", arch->n_layers + i);
        ok = list_add(&result, pattern, (size_t)n);
    }
    if (ok && result.count) qsort(result.names, result.count, sizeof *result.names, by_bytes);
    if (ok) list = sjson_new_array();
    for (size_t i = 0; list && i < result.count; i++)
        if (!sjson_append(list, sjson_new_string(result.names[i]))) {
            sjson_free(list);
            list = NULL;
        }
    strmap_free(&chosen);
    list_free(&quantized);
    list_free(&unquantized);
    list_free(&result);
    return list;
}
