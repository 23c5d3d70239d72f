/* report_json.c — `heaptrail report --format json`: the same content as the text report, as one
 * JSON object whose schema ("heaptrail-report/1") README.md documents. Keys are stable; new
 * keys may be added. Quantities are integers (weighted ones rounded); times are nanoseconds
 * relative to the trace start; addresses and heap handles are "0x..." strings. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

typedef struct jreport {
    ht_analysis *a;
    hti_json j;
    unsigned top;
    const hti_frame **frames;
    size_t frame_capacity;
} jreport;

static const char *const class_names[HTI_CLASSES] = {"AIFI", "AIFO", "AOFI", "AOFO"};

static void stack_fields(jreport *r, uint32_t site)
{
    hti_json *j = &r->j;
    hti_json_uint(j, "site", site);
    const char *label = hti_site_label(site);
    long n = label ? 0 : hti_site_frames(r->a, site, &r->frames, &r->frame_capacity);
    char name[512];
    if (label)
        hti_json_string(j, "function", label);
    else if (n > 0)
        hti_json_string(j, "function", hti_frame_name(name, sizeof name, r->frames[0]));
    else
        hti_json_string(j, "function", NULL);
    hti_json_begin_array(j, "frames");
    for (long i = 0; i < n; i++)
        hti_json_frame(j, r->frames[i]);
    hti_json_end_array(j);
}

/* A list of sites with "bytes" and "count" from the given keys. */
static void site_list(jreport *r, const char *key, uint32_t *sites, size_t n,
                      double (*bytes)(const ht_analysis *, uint32_t),
                      double (*count)(const ht_analysis *, uint32_t))
{
    hti_json *j = &r->j;
    hti_json_begin_array(j, key);
    for (size_t i = 0; i < n && i < r->top; i++) {
        hti_json_begin_object(j, NULL);
        hti_json_round(j, "bytes", bytes(r->a, sites[i]));
        hti_json_round(j, "count", count(r->a, sites[i]));
        stack_fields(r, sites[i]);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
}

static double leaked_count(const ht_analysis *a, uint32_t s)
{
    return a->sites[s].live_count;
}
static double peak_count(const ht_analysis *a, uint32_t s)
{
    return hti_site_peak_count(a, &a->sites[s]);
}
static double temp_bytes(const ht_analysis *a, uint32_t s)
{
    return a->sites[s].temp_bytes;
}

static void sources_object(hti_json *j, const char *key, const double *count, const double *bytes)
{
    hti_json_begin_object(j, key);
    for (unsigned s = 1; s < HT_SOURCE_COUNT; s++) {
        if (s == MEMORY_FROM_INVALID || s == MEMORY_FROM_SEGMENT_HEAP)
            continue;
        hti_json_begin_object(j, ht_source_name(s));
        hti_json_round(j, "count", count[s]);
        hti_json_round(j, "bytes", bytes[s]);
        hti_json_end_object(j);
    }
    hti_json_end_object(j);
}

static void trace_object(jreport *r)
{
    ht_analysis *a = r->a;
    const ht_trace_info *info = a->info;
    hti_json *j = &r->j;
    hti_json_begin_object(j, "trace");
    hti_json_string(j, "path", a->path);
    hti_json_string(j, "program", info->program);
    hti_json_string(j, "command_line", info->command_line);
    hti_json_uint(j, "pid", info->pid);
    hti_json_uint(j, "start_realtime_ns", info->start_realtime_ns);
    hti_json_uint(j, "start_monotonic_ns", info->start_ns);
    hti_json_uint(j, "duration_ns", hti_duration_ns(a));
    hti_json_string(j, "mode", ht_trace_mode_name(info->mode));
    hti_json_uint(j, "stack_depth", info->stack_depth);
    hti_json_uint(j, "sample_interval", info->sample_interval);
    hti_json_bool(j, "complete", info->complete);
    hti_json_bool(j, "truncated", info->truncated);
    if (hti_analysis_ranged(a)) {
        hti_json_begin_object(j, "range");
        hti_json_uint(j, "from_ns", a->options.from_ns);
        hti_json_uint(j, "to_ns", hti_duration_ns(a));
        hti_json_end_object(j);
    }
    hti_json_uint(j, "events", a->events);
    hti_json_begin_object(j, "events_by_kind");
    for (unsigned k = 0; k < 256; k++)
        if (a->kind_count[k])
            hti_json_uint(j, ht_event_kind_name(k), a->kind_count[k]);
    hti_json_end_object(j);
    hti_json_uint(j, "threads", a->thread_count);
    hti_json_uint(j, "heaps", a->heap_count - 1);
    hti_json_uint(j, "stacks", info->stacks);
    hti_json_uint(j, "sites", a->site_count);
    hti_json_begin_array(j, "warnings");
    const char *w = ht_analysis_warnings(a);
    while (w && *w) {
        size_t len = strcspn(w, "\n");
        char line[512];
        snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), w);
        hti_json_string(j, NULL, line);
        w += len + (w[len] == '\n');
    }
    hti_json_end_array(j);
    hti_json_end_object(j);
}

static void summary_object(jreport *r, size_t leak_stacks)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    ht_trace_summary totals;
    ht_analysis_summary(a, &totals);
    hti_json_begin_object(j, "totals");
    hti_trace_summary_json(j, &totals);
    hti_json_end_object(j);
    hti_json_begin_object(j, "summary");
    hti_json_round(j, "allocations", a->alloc_count);
    hti_json_round(j, "allocated_bytes", a->alloc_bytes);
    hti_json_round(j, "reallocations", a->realloc_count);
    hti_json_round(j, "frees", a->free_count);
    hti_json_round(j, "freed_bytes", a->free_bytes);
    hti_json_round(j, "peak_bytes", a->peak_bytes);
    hti_json_round(j, "peak_blocks", a->peak_count);
    hti_json_uint(j, "peak_time_ns", a->peak_time_ns);
    hti_json_round(j, "leaked_bytes", a->live_bytes);
    hti_json_round(j, "leaked_blocks", a->live_count);
    hti_json_uint(j, "leak_stacks", leak_stacks);
    if (a->leak_scan_seen) { /* the reachability scan at exit: the leaked blocks by class */
        hti_json_begin_object(j, "reachability");
        for (uint32_t c = 0; c < HTI_REACH_CLASSES; c++) {
            hti_json_begin_object(j, hti_reach_key(c));
            hti_json_round(j, "bytes", a->reach_bytes[c]);
            hti_json_round(j, "blocks", a->reach_count[c]);
            hti_json_end_object(j);
        }
        hti_json_end_object(j);
    }
    hti_json_round(j, "temporary_allocations", a->temp_count);
    hti_json_round(j, "temporary_bytes", a->temp_bytes);
    hti_json_uint(j, "invalid_events", a->invalid_total);
    hti_json_uint(j, "lost_events", totals.lost);
    hti_json_round(j, "rundown_blocks", a->rundown_count);
    hti_json_round(j, "rundown_bytes", a->rundown_bytes);
    hti_json_round(j, "tracer_leaked_blocks", a->sites[HTI_SITE_TRACER].live_count);
    hti_json_round(j, "tracer_leaked_bytes", a->sites[HTI_SITE_TRACER].live_bytes);
    hti_json_round(j, "unknown_frees", a->unknown_frees);
    hti_json_round(j, "heap_destroy_blocks", a->destroyed_count);
    hti_json_round(j, "heap_destroy_bytes", a->destroyed_bytes);
    hti_json_round(j, "stale_blocks", a->stale_count);
    hti_json_round(j, "stale_bytes", a->stale_bytes);
    hti_json_end_object(j);
}

static void histogram_array(jreport *r)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    hti_json_begin_array(j, "histogram");
    for (int b = 0; b < HTI_HIST_BUCKETS; b++) {
        if (a->hist_count[b] <= 0)
            continue;
        hti_json_begin_object(j, NULL);
        hti_json_uint(j, "min", b == 0 ? 0 : (uint64_t)1 << (b - 1));
        hti_json_uint(j, "max", b == 0 ? 0 : b == 64 ? UINT64_MAX : ((uint64_t)1 << b) - 1);
        hti_json_round(j, "count", a->hist_count[b]);
        hti_json_round(j, "bytes", a->hist_bytes[b]);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
}

static void sources_section(jreport *r)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    hti_json_begin_object(j, "sources");
    hti_json_begin_array(j, "heaps");
    for (size_t i = 0; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        double count = 0, frees = 0;
        for (int s = 0; s < HT_SOURCE_COUNT; s++) {
            count += h->alloc_count[s];
            frees += h->free_count[s];
        }
        uint64_t invalid = h->invalid[0] + h->invalid[1] + h->invalid[2];
        if (count <= 0 && frees <= 0 && !invalid && h->live_count <= 0 && !h->rundown &&
            !h->created_ns)
            continue;
        hti_json_begin_object(j, NULL);
        hti_json_hex(j, "heap", h->handle);
        hti_json_uint(j, "created_ns", h->created_ns);
        if (h->destroyed)
            hti_json_uint(j, "destroyed_ns", h->destroyed_ns);
        else
            hti_json_string(j, "destroyed_ns", NULL);
        hti_json_bool(j, "rundown", h->rundown);
        hti_json_round(j, "peak_bytes", h->max_live_bytes);
        hti_json_round(j, "bytes_at_peak", hti_heap_peak_bytes(a, h));
        hti_json_round(j, "live_bytes", h->live_bytes);
        hti_json_round(j, "live_blocks", h->live_count);
        hti_json_uint(j, "max_committed", h->max_committed);
        sources_object(j, "allocations", h->alloc_count, h->alloc_bytes);
        sources_object(j, "frees", h->free_count, h->free_bytes);
        hti_json_begin_object(j, "invalid");
        hti_json_uint(j, "ALLOC", h->invalid[HT_OP_ALLOC]);
        hti_json_uint(j, "FREE", h->invalid[HT_OP_FREE]);
        hti_json_uint(j, "REALLOC", h->invalid[HT_OP_REALLOC]);
        hti_json_end_object(j);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    uint32_t *sites;
    size_t n = hti_sites_sorted(a, hti_key_alloc_bytes, &sites);
    hti_json_begin_array(j, "stacks");
    for (size_t i = 0; i < n && i < r->top; i++) {
        const hti_site *s = &a->sites[sites[i]];
        hti_json_begin_object(j, NULL);
        hti_json_round(j, "bytes", s->alloc_bytes);
        hti_json_round(j, "count", s->alloc_count);
        sources_object(j, "allocations", s->source_count, s->source_bytes);
        stack_fields(r, sites[i]);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    free(sites);
    hti_json_end_object(j);
}

static void invalid_section(jreport *r)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    hti_json_begin_object(j, "invalid");
    hti_json_uint(j, "count", a->invalid_total);
    hti_json_begin_array(j, "groups");
    for (size_t i = 0; i < a->invalid_group_count; i++) {
        const hti_invalid_group *g = &a->invalid_groups[i];
        hti_json_begin_object(j, NULL);
        hti_json_string(j, "kind", hti_invalid_name(g->kind));
        hti_json_uint(j, "count", g->count);
        hti_json_uint(j, "requested_bytes", g->bytes);
        stack_fields(r, g->site);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    hti_json_begin_array(j, "events");
    for (size_t i = 0; i < a->invalid_event_count; i++) {
        const hti_invalid_event *e = &a->invalid_events[i];
        hti_json_begin_object(j, NULL);
        hti_json_uint(j, "time_ns", e->time_ns);
        hti_json_uint(j, "thread", e->thread);
        hti_json_string(j, "event", ht_event_kind_name(e->event_kind));
        hti_json_string(j, "kind", hti_invalid_name(e->kind));
        hti_json_hex(j, "heap", e->heap);
        hti_json_hex(j, "address", e->address);
        hti_json_uint(j, "size", e->size);
        hti_json_uint(j, "site", e->site);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    hti_json_uint(j, "events_omitted", a->invalid_omitted);
    hti_json_end_object(j);
}

static void lost_section(jreport *r)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    hti_json_begin_object(j, "lost");
    hti_json_uint(j, "count", a->lost_total);
    hti_json_begin_object(j, "by_reason");
    uint64_t unknown = 0; /* reasons this reader has no name for: one key */
    for (unsigned k = 0; k < 8; k++) {
        if (strcmp(ht_lost_reason_name(k), "UNKNOWN") == 0)
            unknown += a->lost_by_reason[k];
        else if (a->lost_by_reason[k])
            hti_json_uint(j, ht_lost_reason_name(k), a->lost_by_reason[k]);
    }
    if (unknown)
        hti_json_uint(j, "UNKNOWN", unknown);
    hti_json_end_object(j);
    hti_json_begin_array(j, "records");
    for (size_t i = 0; i < a->lost_record_count; i++) {
        const ht_event_lost *l = &a->lost_records[i];
        hti_json_begin_object(j, NULL);
        hti_json_uint(j, "thread", l->LostThread);
        hti_json_uint(j, "count", l->Count);
        hti_json_uint(j, "first_ns", hti_relative_ns(a, l->FirstTimestamp));
        hti_json_uint(j, "last_ns", hti_relative_ns(a, l->LastTimestamp));
        hti_json_string(j, "reason", ht_lost_reason_name(l->Reason));
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    hti_json_uint(j, "records_omitted", a->lost_omitted);
    hti_json_end_object(j);
}

static void window_section(jreport *r)
{
    ht_analysis *a = r->a;
    hti_json *j = &r->j;
    hti_json_begin_object(j, "window");
    hti_json_uint(j, "begin_ns", a->options.window_begin_ns);
    if (a->options.window_end_ns == HT_ANALYSIS_NO_END)
        hti_json_string(j, "end_ns", NULL);
    else
        hti_json_uint(j, "end_ns", a->options.window_end_ns);
    hti_json_begin_object(j, "classes");
    for (int c = 0; c < HTI_CLASSES; c++) {
        hti_json_begin_object(j, class_names[c]);
        hti_json_round(j, "count", a->window_count[c]);
        hti_json_round(j, "bytes", a->window_bytes[c]);
        hti_json_end_object(j);
    }
    hti_json_end_object(j);
    hti_json_round(j, "impacting_bytes", a->window_bytes[HTI_AIFO] - a->window_bytes[HTI_AOFI]);
    uint32_t *sites;
    size_t n = hti_window_sites_sorted(a, &sites);
    hti_json_begin_array(j, "stacks");
    for (size_t i = 0; i < n && i < r->top; i++) {
        const hti_window_site *w = &a->window_sites[sites[i]];
        hti_json_begin_object(j, NULL);
        hti_json_round(j, "impacting_bytes", hti_window_impact(w));
        for (int c = 0; c < HTI_CLASSES; c++) {
            hti_json_begin_object(j, class_names[c]);
            hti_json_round(j, "count", w->count[c]);
            hti_json_round(j, "bytes", w->bytes[c]);
            hti_json_end_object(j);
        }
        stack_fields(r, sites[i]);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    free(sites);
    hti_json_end_object(j);
}

int hti_report_json(ht_analysis *a, FILE *out, unsigned top, bool pretty)
{
    jreport r = {.a = a, .top = top};
    hti_json *j = &r.j;
    hti_json_init(j, out, pretty);
    hti_json_begin_object(j, NULL);
    hti_json_string(j, "schema", "heaptrail-report/1");
    trace_object(&r);

    uint32_t *sites;
    size_t n = hti_sites_sorted(a, hti_key_leaked_bytes, &sites);
    summary_object(&r, n);
    hti_json_begin_object(j, "leaks");
    hti_json_round(j, "bytes", a->live_bytes);
    hti_json_round(j, "blocks", a->live_count);
    hti_json_uint(j, "stack_count", n);
    site_list(&r, "stacks", sites, n, hti_key_leaked_bytes, leaked_count);
    hti_json_end_object(j);
    free(sites);

    n = hti_sites_sorted(a, hti_key_peak_bytes, &sites);
    hti_json_begin_object(j, "peak");
    hti_json_round(j, "bytes", a->peak_bytes);
    hti_json_round(j, "blocks", a->peak_count);
    hti_json_uint(j, "time_ns", a->peak_time_ns);
    site_list(&r, "stacks", sites, n, hti_key_peak_bytes, peak_count);
    hti_json_end_object(j);
    free(sites);

    n = hti_sites_sorted(a, hti_key_alloc_bytes, &sites);
    site_list(&r, "top_by_bytes", sites, n, hti_key_alloc_bytes, hti_key_alloc_count);
    free(sites);
    n = hti_sites_sorted(a, hti_key_alloc_count, &sites);
    site_list(&r, "top_by_count", sites, n, hti_key_alloc_bytes, hti_key_alloc_count);
    free(sites);

    n = hti_sites_sorted(a, hti_key_temp_count, &sites);
    hti_json_begin_object(j, "temporary");
    hti_json_string(j, "definition",
                    a->options.temporary_threshold_ns
                        ? "freed by the next heap operation of the same thread, or within "
                          "threshold_ns of its allocation"
                        : "freed by the next heap operation of the same thread");
    hti_json_uint(j, "threshold_ns", a->options.temporary_threshold_ns);
    hti_json_round(j, "count", a->temp_count);
    hti_json_round(j, "bytes", a->temp_bytes);
    site_list(&r, "stacks", sites, n, temp_bytes, hti_key_temp_count);
    hti_json_end_object(j);
    free(sites);

    histogram_array(&r);
    sources_section(&r);
    invalid_section(&r);
    lost_section(&r);
    if (a->window_sites)
        window_section(&r);
    else
        hti_json_string(j, "window", NULL);
    hti_json_end_object(j);
    hti_json_finish(j);
    free(r.frames);
    return ferror(out) ? -EIO : 0;
}
