/* report_html.c — `report --format html`: one self-contained page (the viewer of src/analyze/html,
 * embedded at build time by cmake/embed_viewer.cmake) with the trace's data inline as JSON. The
 * data is the JSON report itself (so the page's numbers are report's), a frame table and every
 * site's totals for the flame graphs, and what html_data.c collected during the pass: the live
 * bytes per time bin (per heap, per Source) and the lifetime cells from which the page computes
 * WPA's classes for any range of bins.
 *
 * hti_html_page is the page writer `diff --format html` shares. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/report_html.h"

extern const unsigned char hti_viewer_head[], hti_viewer_tail[];
extern const size_t hti_viewer_head_size, hti_viewer_tail_size;

/* The data goes inside <script type="application/json">: "</" would end it early, so every
 * "</" is written "<\/" (the same JSON). */
static int write_escaped(FILE *out, const char *data, size_t size)
{
    const char *p = data, *end = data + size;
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        const char *stop = lt ? lt + 1 : end;
        if (fwrite(p, 1, (size_t)(stop - p), out) != (size_t)(stop - p))
            return -EIO;
        if (lt && stop < end && *stop == '/' && fputc('\\', out) == EOF)
            return -EIO;
        p = stop;
    }
    return 0;
}

int hti_html_page(FILE *out, hti_html_data_fn data, void *context)
{
    char *buffer = NULL;
    size_t size = 0;
    FILE *memory = open_memstream(&buffer, &size);
    if (!memory)
        return -ENOMEM;
    int status = data(context, memory);
    if (fclose(memory) != 0 && !status)
        status = -ENOMEM;
    if (!status && fwrite(hti_viewer_head, 1, hti_viewer_head_size, out) != hti_viewer_head_size)
        status = -EIO;
    if (!status)
        status = write_escaped(out, buffer, size);
    if (!status && fwrite(hti_viewer_tail, 1, hti_viewer_tail_size, out) != hti_viewer_tail_size)
        status = -EIO;
    free(buffer);
    if (!status && ferror(out))
        status = -EIO;
    return status;
}

/* ---- the report's document ---- */

typedef struct document {
    ht_analysis *a;
    hti_html_data *d;
    unsigned top;
    size_t bins;
} document;

static void json_array(hti_json *j, const char *key, const double *values, size_t n)
{
    hti_json_begin_array(j, key);
    for (size_t i = 0; i < n; i++)
        hti_json_round(j, NULL, values[i]);
    hti_json_end_array(j);
}

/* The frames of every site in one table, each frame once (the symbolizer hands out one
 * object per frame of an address); sites list their frames' indices, innermost first. */
static int write_sites(hti_json *j, ht_analysis *a)
{
    hti_map index = {0};
    const hti_frame **frames = NULL, **table = NULL;
    size_t capacity = 0, table_count = 0, table_capacity = 0;
    uint32_t **site_frames = calloc(a->site_count, sizeof *site_frames);
    uint32_t *depths = calloc(a->site_count, sizeof *depths);
    int status = site_frames && depths ? 0 : -ENOMEM;
    for (size_t i = HTI_SITE_SPECIAL; i < a->site_count && !status; i++) {
        if (a->sites[i].merged_into != i)
            continue;
        long n = hti_site_frames(a, (uint32_t)i, &frames, &capacity);
        if (n < 0 || !(site_frames[i] = malloc(((size_t)n + 1) * sizeof **site_frames))) {
            status = -ENOMEM;
            break;
        }
        depths[i] = (uint32_t)n;
        for (long k = 0; k < n && !status; k++) {
            uint64_t key = (uint64_t)(uintptr_t)frames[k];
            uint32_t at = hti_map_get(&index, key);
            if (at == UINT32_MAX) {
                at = (uint32_t)table_count;
                if (HTI_GROW(table, table_count, table_capacity) != 0 ||
                    hti_map_put(&index, key, at) != 0) {
                    status = -ENOMEM;
                    break;
                }
                table[table_count++] = frames[k];
            }
            site_frames[i][k] = at;
        }
    }
    if (!status) {
        char label[512];
        hti_json_begin_array(j, "frames");
        for (size_t i = 0; i < table_count; i++) {
            const hti_frame *f = table[i];
            hti_json_begin_array(j, NULL);
            hti_json_string(j, NULL, f->function);
            hti_json_string(j, NULL, f->file);
            hti_json_uint(j, NULL, f->line);
            hti_json_string(j, NULL, f->module);
            hti_json_string(j, NULL, hti_format_frame(label, sizeof label, f, true));
            hti_json_end_array(j);
        }
        hti_json_end_array(j);
        hti_json_begin_array(j, "sites");
        for (size_t i = 0; i < a->site_count; i++) {
            const hti_site *s = &a->sites[i];
            double peak = hti_site_peak_bytes(a, s);
            if (s->merged_into != i ||
                (s->alloc_count <= 0 && s->live_count <= 0 && peak <= 0 && s->temp_count <= 0))
                continue;
            hti_json_begin_object(j, NULL);
            hti_json_uint(j, "site", i);
            if (hti_site_label((uint32_t)i))
                hti_json_string(j, "label", hti_site_label((uint32_t)i));
            hti_json_begin_array(j, "frames");
            for (uint32_t k = 0; site_frames[i] && k < depths[i]; k++)
                hti_json_uint(j, NULL, site_frames[i][k]);
            hti_json_end_array(j);
            hti_json_round(j, "alloc_bytes", s->alloc_bytes);
            hti_json_round(j, "alloc_count", s->alloc_count);
            hti_json_round(j, "leaked_bytes", s->live_bytes);
            hti_json_round(j, "leaked_count", s->live_count);
            hti_json_round(j, "peak_bytes", peak);
            hti_json_round(j, "peak_count", hti_site_peak_count(a, s));
            hti_json_end_object(j);
        }
        hti_json_end_array(j);
    }
    for (size_t i = 0; site_frames && i < a->site_count; i++)
        free(site_frames[i]);
    free(site_frames);
    free(depths);
    free(frames);
    free(table);
    hti_map_free(&index);
    return status;
}

static void marker(hti_json *j, const char *kind, uint64_t time_ns, const char *label)
{
    hti_json_begin_object(j, NULL);
    hti_json_string(j, "kind", kind);
    hti_json_uint(j, "time_ns", time_ns);
    hti_json_string(j, "label", label);
    hti_json_end_object(j);
}

static void write_timeline(hti_json *j, const document *doc)
{
    ht_analysis *a = doc->a;
    const hti_html_data *d = doc->d;
    char text[256], b1[HTI_NUMBER_MAX];
    hti_json_begin_object(j, "timeline");
    hti_json_uint(j, "start_ns", d->from_ns);
    hti_json_uint(j, "bin_ns", d->bin_ns);
    hti_json_uint(j, "bins", doc->bins);
    json_array(j, "live", d->live, doc->bins);
    json_array(j, "max", d->max, doc->bins);
    hti_json_begin_array(j, "heaps");
    for (size_t h = 0; h <= HTI_HTML_HEAPS; h++) {
        bool any = false;
        for (size_t i = 0; i < doc->bins && !any; i++)
            any = d->heap_live[h][i] >= 0.5;
        if (!any)
            continue;
        hti_json_begin_object(j, NULL);
        if (h < HTI_HTML_HEAPS) {
            snprintf(text, sizeof text, "0x%llx", (unsigned long long)a->heaps[h].handle);
            hti_json_string(j, "heap", text);
        } else {
            hti_json_string(j, "heap", "other");
        }
        json_array(j, "live", d->heap_live[h], doc->bins);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    hti_json_begin_object(j, "sources");
    for (unsigned s = 0; s < HT_SOURCE_COUNT; s++) {
        bool any = false;
        for (size_t i = 0; i < doc->bins && !any; i++)
            any = d->source_live[s][i] >= 0.5;
        if (any)
            json_array(j, s ? ht_source_name(s) : "before tracing", d->source_live[s], doc->bins);
    }
    hti_json_end_object(j);
    hti_json_begin_array(j, "markers");
    snprintf(text, sizeof text, "peak: %s live", hti_format_bytes(b1, sizeof b1, a->peak_bytes));
    if (a->peak_bytes > 0)
        marker(j, "peak", a->peak_time_ns, text);
    for (size_t i = 0; i < a->invalid_event_count; i++) {
        const hti_invalid_event *e = &a->invalid_events[i];
        snprintf(text, sizeof text, "INVALID: %s at 0x%llx", hti_invalid_name(e->kind),
                 (unsigned long long)e->address);
        marker(j, "invalid", e->time_ns, text);
    }
    for (size_t i = 0; i < a->lost_record_count; i++) {
        const ht_event_lost *l = &a->lost_records[i];
        snprintf(text, sizeof text, "%llu events lost (%s)", (unsigned long long)l->Count,
                 ht_lost_reason_name(l->Reason));
        marker(j, "lost", hti_relative_ns(a, l->FirstTimestamp), text);
    }
    for (size_t h = 1; h < a->heap_count; h++) {
        const hti_heap *heap = &a->heaps[h];
        uint64_t to = hti_duration_ns(a);
        if (heap->created && heap->created_ns >= d->from_ns && heap->created_ns <= to) {
            snprintf(text, sizeof text, "heap 0x%llx created", (unsigned long long)heap->handle);
            marker(j, "heap_create", heap->created_ns, text);
        }
        if (heap->destroyed && heap->destroyed_ns >= d->from_ns && heap->destroyed_ns <= to) {
            snprintf(text, sizeof text, "heap 0x%llx destroyed", (unsigned long long)heap->handle);
            marker(j, "heap_destroy", heap->destroyed_ns, text);
        }
    }
    hti_json_end_array(j);
    hti_json_end_object(j);
}

/* The cells (by merged site); a block's free bin HTI_HTML_LIVE becomes the bin count. */
static void write_lifetimes(hti_json *j, const document *doc)
{
    const hti_html_data *d = doc->d;
    hti_json_begin_object(j, "lifetimes");
    hti_json_uint(j, "start_ns", d->from_ns);
    hti_json_uint(j, "bin_ns", d->bin_ns);
    hti_json_uint(j, "bins", doc->bins);
    hti_json_begin_array(j, "cells");
    for (size_t i = 0; i < d->cell_count; i++) {
        const hti_html_cell *c = &d->cells[i];
        hti_json_begin_array(j, NULL);
        hti_json_uint(j, NULL, c->site);
        hti_json_int(j, NULL, c->alloc_bin);
        hti_json_uint(j, NULL, c->free_bin == HTI_HTML_LIVE ? doc->bins : c->free_bin);
        hti_json_round(j, NULL, c->count);
        hti_json_round(j, NULL, c->bytes);
        hti_json_end_array(j);
    }
    hti_json_end_array(j);
    hti_json_end_object(j);
}

static int write_document(void *context, FILE *out)
{
    document *doc = context;
    fputs("{\"schema\":\"heaptrail-html/1\",\"kind\":\"report\",\"report\":", out);
    int status = hti_report_json(doc->a, out, doc->top, false);
    if (status)
        return status;
    hti_json j;
    hti_json_init(&j, out, false);
    j.need_comma[0] = true; /* inside the document's object, after "report" */
    if ((status = write_sites(&j, doc->a)) != 0)
        return status;
    write_timeline(&j, doc);
    write_lifetimes(&j, doc);
    fputs("}\n", out);
    return ferror(out) ? -EIO : 0;
}

int hti_report_html(ht_analysis *a, FILE *out, unsigned top, char *error, size_t error_size)
{
    hti_html_data d;
    if (hti_html_data_init(&d, a) != 0) {
        snprintf(error, error_size, "out of memory");
        return -ENOMEM;
    }
    int status = hti_analysis_run(a, &d.hooks, error, error_size);
    size_t bins = status ? 0 : hti_html_data_finish(&d, a);
    if (!status && d.status) {
        snprintf(error, error_size, "out of memory");
        status = d.status;
    }
    if (!status) {
        document doc = {.a = a, .d = &d, .top = top < 25 ? 25 : top, .bins = bins};
        status = hti_html_page(out, write_document, &doc);
        if (status)
            snprintf(error, error_size, "%s", strerror(-status));
    }
    hti_html_data_free(&d);
    return status;
}
