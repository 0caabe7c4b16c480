/*
 * html_report.c — strata_report: one self-contained HTML page about a quantized output,
 * drawn from its quant_summary.json (and, when given, the JSON of `strata eval --base`):
 * the settings, the layers' output errors, the linears' weight and output errors by linear
 * family, the calibration tokens each routed expert received (a heat map: experts that no
 * token reached stand out in red), the largest errors, and the comparison with the
 * original. Plots are inline SVG with <title> tooltips; nothing is fetched or run, so the
 * page opens offline in any browser. The page holds no time or path of the machine that
 * wrote it beyond what the summary says, so one summary always gives the same bytes.
 *
 * Steps: gather() reads the summary into a report_data (layers, linears by family, expert
 * tokens); the render_* functions append HTML to a strbuf; the page is written atomically.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/strbuf.h"
#include "io/fsutil.h"
#include "io/json.h"

enum { MAX_FAMILIES = 32, TOP_ERRORS = 20, MAX_SUMMARY_BYTES = 1 << 30 };

typedef struct family_series {
    char name[64];              /* "self_attn.q_proj", "mlp.experts.*.down_proj" */
    double *weight_error, *output_error; /* (n_layers) means over the family's linears, NAN when absent */
    int *count;                 /* (n_layers) */
} family_series;

typedef struct linear_row {
    const char *name;
    int layer;
    int expert;                 /* the routed expert it belongs to, or -1 */
    double weight_error, output_error;
    int64_t tokens;
} linear_row;

typedef struct report_data {
    sjson *summary;
    int n_layers;
    double *layer_error;        /* (n_layers) */
    family_series families[MAX_FAMILIES];
    int n_families;
    linear_row *linears;
    size_t n_linears, n_quantized;
    int n_experts;              /* the largest expert index seen + 1; 0 without experts */
    int64_t *expert_tokens;     /* (n_layers, n_experts), -1 where the layer has no such expert */
} report_data;

/* ---------------------------------------------------------------- gathering */

/* The family of a linear: its name after "model.layers.N.", with an expert's index as "*";
 * *expert receives the index (or -1). */
static void family_of(const char *name, char *family, size_t size, int *expert)
{
    *expert = -1;
    const char *rest = strstr(name, "layers.");
    if (rest) {
        rest += strlen("layers.");
        while (*rest >= '0' && *rest <= '9') rest++;
        if (*rest == '.') rest++;
    } else {
        rest = name;
    }
    const char *experts = strstr(rest, "experts.");
    if (experts && experts[8] >= '0' && experts[8] <= '9') {
        *expert = atoi(experts + 8);
        const char *after = experts + 8;
        while (*after >= '0' && *after <= '9') after++;
        snprintf(family, size, "%.*sexperts.*%s", (int)(experts - rest), rest, after);
    } else {
        snprintf(family, size, "%s", rest);
    }
}

static double number_or_nan(const sjson *object, const char *key)
{
    double value = NAN;
    const sjson *v = sjson_get(object, key);
    if (v && !sjson_as_double(v, &value)) value = NAN;
    return value;
}

/* The family's series, made on first use; *out NULL (and STRATA_OK) when there are more
 * families than a plot can show (that one is left out). */
static strata_status family_get(report_data *d, const char *name, family_series **out)
{
    *out = NULL;
    for (int i = 0; i < d->n_families; i++)
        if (strcmp(d->families[i].name, name) == 0) {
            *out = &d->families[i];
            return STRATA_OK;
        }
    if (d->n_families == MAX_FAMILIES) return STRATA_OK;
    family_series *f = &d->families[d->n_families++];
    snprintf(f->name, sizeof f->name, "%s", name);
    f->weight_error = calloc((size_t)d->n_layers, sizeof *f->weight_error);
    f->output_error = calloc((size_t)d->n_layers, sizeof *f->output_error);
    f->count = calloc((size_t)d->n_layers, sizeof *f->count);
    if (!f->weight_error || !f->output_error || !f->count)
        return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the report");
    *out = f;
    return STRATA_OK;
}

static strata_status bad_summary(const char *path, const char *what)
{
    return strata_fail(STRATA_ERR_FORMAT, "%s: %s", path, what);
}

static strata_status gather(const char *path, report_data *d)
{
    char *text = NULL;
    size_t length = 0;
    strata_status status = file_read_all(path, MAX_SUMMARY_BYTES, &text, &length);
    if (status != STRATA_OK) return status;
    sjson_error error = {0};
    d->summary = sjson_parse(text, length, false, &error);
    free(text);
    if (!d->summary) return strata_fail(STRATA_ERR_FORMAT, "%s: not JSON (line %d: %s)", path, error.line, error.text);
    const sjson *layers = sjson_get(d->summary, "layers");
    if (!sjson_is_object(d->summary) || !sjson_is_array(layers))
        return bad_summary(path, "no \"layers\" array: not a strata quant_summary.json");
    d->n_layers = (int)sjson_array_size(layers);
    size_t total = 0;
    for (int i = 0; i < d->n_layers; i++) total += sjson_array_size(sjson_get(sjson_array_at(layers, (size_t)i), "linears"));
    d->layer_error = calloc((size_t)d->n_layers + 1, sizeof *d->layer_error);
    d->linears = calloc(total + 1, sizeof *d->linears);
    if (!d->layer_error || !d->linears) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    for (int i = 0; i < d->n_layers; i++) {
        const sjson *layer = sjson_array_at(layers, (size_t)i);
        d->layer_error[i] = number_or_nan(layer, "output_error");
        const sjson *linears = sjson_get(layer, "linears");
        for (size_t j = 0; j < sjson_array_size(linears); j++) {
            const sjson *l = sjson_array_at(linears, j);
            const char *name = sjson_as_string(sjson_get(l, "name"));
            if (!name) return bad_summary(path, "a linear without a name");
            linear_row *row = &d->linears[d->n_linears++];
            *row = (linear_row){.name = name, .layer = i, .weight_error = number_or_nan(l, "weight_error"),
                                .output_error = number_or_nan(l, "output_error"), .tokens = -1};
            double tokens = number_or_nan(l, "tokens");
            if (tokens == tokens) row->tokens = (int64_t)tokens;
            char family[64];
            family_of(name, family, sizeof family, &row->expert);
            if (row->expert >= d->n_experts) d->n_experts = row->expert + 1;
            if (row->weight_error != row->weight_error) continue; /* not quantized (a router, an exclusion) */
            d->n_quantized++;
            family_series *f;
            status = family_get(d, family, &f);
            if (status != STRATA_OK) return status;
            if (!f) continue;
            f->weight_error[i] += row->weight_error;
            f->output_error[i] += row->output_error == row->output_error ? row->output_error : 0;
            f->count[i]++;
        }
    }
    for (int k = 0; k < d->n_families; k++)
        for (int i = 0; i < d->n_layers; i++) {
            family_series *f = &d->families[k];
            f->weight_error[i] = f->count[i] ? f->weight_error[i] / f->count[i] : NAN;
            f->output_error[i] = f->count[i] ? f->output_error[i] / f->count[i] : NAN;
        }
    if (d->n_experts > 0) {
        size_t cells = (size_t)d->n_layers * (size_t)d->n_experts;
        if (!(d->expert_tokens = malloc(cells * sizeof *d->expert_tokens)))
            return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
        for (size_t c = 0; c < cells; c++) d->expert_tokens[c] = -1;
        for (size_t j = 0; j < d->n_linears; j++) {
            const linear_row *l = &d->linears[j];
            int64_t *cell = l->expert >= 0 ? &d->expert_tokens[(size_t)l->layer * d->n_experts + l->expert] : NULL;
            if (cell && l->tokens > *cell) *cell = l->tokens;
        }
    }
    return STRATA_OK;
}

static void report_data_free(report_data *d)
{
    for (int k = 0; k < d->n_families; k++) {
        free(d->families[k].weight_error);
        free(d->families[k].output_error);
        free(d->families[k].count);
    }
    free(d->layer_error);
    free(d->linears);
    free(d->expert_tokens);
    sjson_free(d->summary);
}

/* ---------------------------------------------------------------- rendering */

static void escaped(strbuf *sb, const char *text)
{
    for (const char *c = text; c && *c; c++) {
        switch (*c) {
        case '<': strbuf_append(sb, "&lt;"); break;
        case '>': strbuf_append(sb, "&gt;"); break;
        case '&': strbuf_append(sb, "&amp;"); break;
        case '"': strbuf_append(sb, "&quot;"); break;
        default: strbuf_append_n(sb, c, 1);
        }
    }
}

/* Distinct colours for series (Okabe-Ito, then a few more). */
static const char *const PALETTE[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
                                      "#000000", "#F0E442", "#882255", "#44AA99", "#999933", "#AA4499"};
enum { PALETTE_SIZE = sizeof PALETTE / sizeof PALETTE[0] };

typedef struct series {
    const char *name;
    const double *values; /* (n) NAN where absent */
} series;

enum { PLOT_W = 760, PLOT_H = 300, LEFT = 64, RIGHT = 200, TOP = 16, BOTTOM = 40 };

/* A line plot of the series over layers 0 .. n - 1, y from 0 to the largest value, with
 * a legend and a tooltip on every point. */
static void line_plot(strbuf *sb, const char *id, const char *y_label, const series *s, int n_series, int n)
{
    double max = 0;
    for (int k = 0; k < n_series; k++)
        for (int i = 0; i < n; i++)
            if (s[k].values[i] == s[k].values[i] && s[k].values[i] > max) max = s[k].values[i];
    if (max <= 0) max = 1;
    double w = PLOT_W - LEFT - RIGHT, h = PLOT_H - TOP - BOTTOM;
#define X(i) (LEFT + (n > 1 ? w * (i) / (n - 1) : w / 2))
#define Y(v) (TOP + h - h * (v) / max)
    strbuf_printf(sb, "<svg id=\"%s\" class=\"plot\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n",
                  id, PLOT_W, PLOT_H, PLOT_W, PLOT_H);
    for (int t = 0; t <= 4; t++) {
        double v = max * t / 4;
        strbuf_printf(sb, "<line class=\"grid\" x1=\"%d\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>"
                          "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
                      LEFT, LEFT + w, Y(v), Y(v), LEFT - 6, Y(v) + 4, v);
    }
    int step = n > 16 ? (n + 15) / 16 : 1;
    for (int i = 0; i < n; i += step)
        strbuf_printf(sb, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", X(i),
                      TOP + (int)h + 16, i);
    strbuf_printf(sb, "<text class=\"axis\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">layer</text>\n", LEFT + w / 2,
                  PLOT_H - 4);
    strbuf_printf(sb, "<text class=\"axis\" transform=\"rotate(-90)\" x=\"%.1f\" y=\"14\" text-anchor=\"middle\">%s</text>\n",
                  -(TOP + h / 2), y_label);
    for (int k = 0; k < n_series; k++) {
        const char *colour = PALETTE[k % PALETTE_SIZE];
        strbuf_printf(sb, "<polyline class=\"series\" fill=\"none\" stroke=\"%s\" points=\"", colour);
        for (int i = 0; i < n; i++)
            if (s[k].values[i] == s[k].values[i]) strbuf_printf(sb, "%.1f,%.1f ", X(i), Y(s[k].values[i]));
        strbuf_append(sb, "\"/>\n");
        for (int i = 0; i < n; i++) {
            if (s[k].values[i] != s[k].values[i]) continue;
            strbuf_printf(sb, "<circle class=\"point\" cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>", X(i),
                          Y(s[k].values[i]), colour);
            escaped(sb, s[k].name);
            strbuf_printf(sb, ", layer %d: %.6g</title></circle>\n", i, s[k].values[i]);
        }
        double ly = TOP + 14.0 * k + 8;
        strbuf_printf(sb, "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
                          "<text class=\"legend\" x=\"%.1f\" y=\"%.1f\">",
                      LEFT + w + 12, ly - 9, colour, LEFT + w + 26, ly);
        escaped(sb, s[k].name);
        strbuf_append(sb, "</text>\n");
    }
    strbuf_append(sb, "</svg>\n");
#undef X
#undef Y
}

static void render_settings(strbuf *sb, const report_data *d)
{
    static const char *const keys[] = {"model", "scheme", "quant_algo", "algorithm", "attention", "kv_cache",
                                       "calib_samples", "calib_seq_len", "propagate", "producer", "version"};
    strbuf_append(sb, "<h2>Settings</h2>\n<table id=\"settings\">\n");
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const sjson *v = sjson_get(d->summary, keys[i]);
        if (!v) continue;
        strbuf_printf(sb, "<tr><th>%s</th><td>", keys[i]);
        double number;
        if (sjson_as_string(v)) escaped(sb, sjson_as_string(v));
        else if (sjson_is_null(v)) strbuf_append(sb, "none");
        else if (sjson_as_double(v, &number)) strbuf_printf(sb, "%.10g", number);
        strbuf_append(sb, "</td></tr>\n");
    }
    strbuf_append(sb, "</table>\n");
}

static void render_layers(strbuf *sb, const report_data *d)
{
    strbuf_append(sb, "<h2>Layer output error</h2>\n<p>||out - out<sub>q</sub>|| / ||out|| of each decoder layer "
                      "over the calibration tokens.</p>\n");
    series s = {.name = "layer output error", .values = d->layer_error};
    line_plot(sb, "layer-error", "relative error", &s, 1, d->n_layers);
}

static void render_families(strbuf *sb, const report_data *d)
{
    series *s = calloc((size_t)d->n_families + 1, sizeof *s);
    if (!s) {
        strbuf_fail(sb);
        return;
    }
    strbuf_append(sb, "<h2>Weight error by linear family</h2>\n<p>||W - W<sub>q</sub>|| / ||W||, averaged over a "
                      "family's linears in each layer (routed experts together).</p>\n");
    for (int k = 0; k < d->n_families; k++) s[k] = (series){d->families[k].name, d->families[k].weight_error};
    line_plot(sb, "weight-error", "relative error", s, d->n_families, d->n_layers);
    strbuf_append(sb, "<h2>Output error by linear family</h2>\n<p>||xW - xW<sub>q</sub>|| / ||xW|| on each "
                      "linear's sampled calibration inputs.</p>\n");
    for (int k = 0; k < d->n_families; k++) s[k] = (series){d->families[k].name, d->families[k].output_error};
    line_plot(sb, "output-error", "relative error", s, d->n_families, d->n_layers);
    free(s);
}

/* Cells coloured by log(tokens) from white to blue; 0 tokens red; no such expert grey. */
static void render_experts(strbuf *sb, const report_data *d)
{
    if (d->n_experts == 0) return;
    int64_t max = 1, starved = 0;
    for (size_t c = 0; c < (size_t)d->n_layers * d->n_experts; c++) {
        if (d->expert_tokens[c] > max) max = d->expert_tokens[c];
        starved += d->expert_tokens[c] == 0;
    }
    int cell = d->n_experts > 128 ? 6 : d->n_experts > 48 ? 10 : 18, left = 40, top = 20;
    int width = left + cell * d->n_experts + 10, height = top + cell * d->n_layers + 30;
    strbuf_printf(sb, "<h2>Calibration tokens per routed expert</h2>\n<p>%lld of the layers' experts received no "
                      "token (red): they are quantized from their weights, with the layer's peer-maximum input scale."
                      "</p>\n",
                  (long long)starved);
    strbuf_printf(sb, "<svg id=\"expert-tokens\" class=\"heatmap\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                      "xmlns=\"http://www.w3.org/2000/svg\" role=\"img\">\n",
                  width, height, width, height);
    strbuf_printf(sb, "<text class=\"axis\" x=\"%d\" y=\"12\">expert &#8594;</text>\n", left);
    for (int i = 0; i < d->n_layers; i++) {
        bool any = false;
        for (int e = 0; e < d->n_experts; e++) any |= d->expert_tokens[(size_t)i * d->n_experts + e] >= 0;
        if (!any) continue;
        strbuf_printf(sb, "<text class=\"tick\" x=\"%d\" y=\"%d\" text-anchor=\"end\">%d</text>\n", left - 4,
                      top + cell * i + cell - 2, i);
        for (int e = 0; e < d->n_experts; e++) {
            int64_t t = d->expert_tokens[(size_t)i * d->n_experts + e];
            char colour[16];
            if (t < 0) snprintf(colour, sizeof colour, "#dddddd");
            else if (t == 0) snprintf(colour, sizeof colour, "#d62728");
            else {
                double f = log1p((double)t) / log1p((double)max);
                snprintf(colour, sizeof colour, "#%02x%02x%02x", (int)(255 - 225 * f), (int)(255 - 160 * f), 255);
            }
            strbuf_printf(sb, "<rect class=\"cell%s\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\">"
                              "<title>layer %d, expert %d: %lld tokens</title></rect>\n",
                          t == 0 ? " starved" : "", left + cell * e, top + cell * i, cell, cell, colour, i, e,
                          (long long)(t < 0 ? 0 : t));
        }
    }
    strbuf_append(sb, "</svg>\n");
}

static int by_error_desc(const void *a, const void *b)
{
    const linear_row *x = a, *y = b;
    double ex = x->output_error == x->output_error ? x->output_error : x->weight_error;
    double ey = y->output_error == y->output_error ? y->output_error : y->weight_error;
    if (ex != ex) ex = -1;
    if (ey != ey) ey = -1;
    if (ex != ey) return ex < ey ? 1 : -1;
    return strcmp(x->name, y->name);
}

static void render_top_errors(strbuf *sb, report_data *d)
{
    qsort(d->linears, d->n_linears, sizeof *d->linears, by_error_desc);
    strbuf_printf(sb, "<h2>Largest errors</h2>\n<table id=\"largest-errors\">\n<tr><th>linear</th><th>output error"
                      "</th><th>weight error</th><th>tokens</th></tr>\n");
    for (size_t j = 0; j < d->n_linears && j < TOP_ERRORS; j++) {
        const linear_row *l = &d->linears[j];
        strbuf_append(sb, "<tr><td>");
        escaped(sb, l->name);
        strbuf_printf(sb, "</td><td>%.6g</td><td>%.6g</td><td>%lld</td></tr>\n", l->output_error, l->weight_error,
                      (long long)l->tokens);
    }
    strbuf_append(sb, "</table>\n");
}

/* The comparison with the original: `strata eval QUANT --base ORIGINAL --json`'s estimates. */
static strata_status render_eval(strbuf *sb, const char *path)
{
    char *text = NULL;
    size_t length = 0;
    strata_status status = file_read_all(path, MAX_SUMMARY_BYTES, &text, &length);
    if (status != STRATA_OK) return status;
    sjson_error error = {0};
    sjson *eval = sjson_parse(text, length, false, &error);
    free(text);
    if (!eval || !sjson_get(eval, "kld")) {
        sjson_free(eval);
        return strata_fail(STRATA_ERR_FORMAT, "%s: not the JSON of strata eval --base --json", path);
    }
    static const char *const rows[][2] = {{"ppl_q", "perplexity, quantized"}, {"ppl_base", "perplexity, original"},
                                          {"ppl_ratio", "perplexity ratio"},  {"kld", "mean KL divergence"},
                                          {"p_diff_rms", "RMS &#916;p"},      {"same_top", "same top token"}};
    strbuf_append(sb, "<h2>Against the original</h2>\n<table id=\"eval\">\n<tr><th></th><th>value</th>"
                      "<th>95% interval</th></tr>\n");
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const sjson *e = sjson_get(eval, rows[i][0]);
        double value = NAN, low = NAN, high = NAN;
        sjson_as_double(sjson_get(e, "value"), &value);
        const sjson *ci = sjson_get(e, "ci95");
        sjson_as_double(sjson_array_at(ci, 0), &low);
        sjson_as_double(sjson_array_at(ci, 1), &high);
        strbuf_printf(sb, "<tr><th>%s</th><td>%.6g</td><td>%.6g &#8211; %.6g</td></tr>\n", rows[i][1], value, low, high);
    }
    int64_t scored = 0;
    sjson_as_int64(sjson_get(eval, "scored_tokens"), &scored);
    strbuf_printf(sb, "</table>\n<p>Over %lld tokens (llama.cpp's statistics: docs/EVAL.md).</p>\n", (long long)scored);
    sjson_free(eval);
    return STRATA_OK;
}

static const char STYLE[] =
    "<style>body{font-family:sans-serif;margin:24px;max-width:980px;color:#222}"
    "table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
    "td{font-family:monospace}.grid{stroke:#e5e5e5}.tick,.legend,.axis{font-size:11px;fill:#333}"
    ".series{stroke-width:1.5}svg{display:block;margin:8px 0}</style>\n";

strata_status strata_report(const char *output_dir, const char *eval_json, const char *html_path)
{
    if (!output_dir || !html_path) return strata_fail(STRATA_ERR_INVALID_ARGUMENT, "strata_report: NULL argument");
    char *summary_path = path_join(output_dir, "quant_summary.json");
    if (!summary_path) return strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory");
    report_data d = {0};
    strbuf sb = {0};
    strata_status status = gather(summary_path, &d);
    if (status == STRATA_OK) {
        const char *model = sjson_as_string(sjson_get(d.summary, "model"));
        strbuf_append(&sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>strata: ");
        escaped(&sb, model ? model : output_dir);
        strbuf_append(&sb, "</title>\n");
        strbuf_append(&sb, STYLE);
        strbuf_append(&sb, "</head>\n<body>\n<h1>Quantization report</h1>\n<p>");
        escaped(&sb, model);
        strbuf_printf(&sb, ": %d layers, %zu quantized linears.</p>\n", d.n_layers, d.n_quantized);
        render_settings(&sb, &d);
        if (eval_json) status = render_eval(&sb, eval_json);
    }
    if (status == STRATA_OK) {
        render_layers(&sb, &d);
        render_families(&sb, &d);
        render_experts(&sb, &d);
        render_top_errors(&sb, &d);
        strbuf_append(&sb, "</body>\n</html>\n");
        if (!strbuf_ok(&sb)) status = strata_fail(STRATA_ERR_OUT_OF_MEMORY, "out of memory for the report");
    }
    char *html = status == STRATA_OK ? strbuf_take(&sb) : NULL;
    if (status == STRATA_OK) status = file_write_atomic(html_path, html, strlen(html));
    free(html);
    strbuf_free(&sb);
    report_data_free(&d);
    free(summary_path);
    return status;
}
