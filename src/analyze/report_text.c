/* report_text.c — the human-readable `heaptrail report`: the trace's identity, a summary, then
 * leaks, the peak and the stacks that held it, top sites by bytes and by count, temporary
 * allocations, the size histogram, the Source breakdown per heap and per site, INVALID events,
 * lost events and, with --window, the WPA lifetime classes.
 *
 * Every number printed here is also in the JSON report (report_json.c), under the same names. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "analyze/analyze_internal.h"

#define FRAMES_SHOWN 16

typedef struct text {
    ht_analysis *a;
    FILE *out;
    unsigned top;
    const hti_frame **frames;
    size_t frame_capacity;
} text;

static double share(double part, double whole)
{
    return whole > 0 ? 100.0 * part / whole : 0.0;
}

static void print_stack(text *t, uint32_t site, const char *indent)
{
    const char *label = hti_site_label(site);
    if (label) {
        fprintf(t->out, "%s%s\n", indent, label);
        return;
    }
    long n = hti_site_frames(t->a, site, &t->frames, &t->frame_capacity);
    if (n <= 0) {
        fprintf(t->out, "%s[stack unavailable]\n", indent);
        return;
    }
    char line[1024];
    for (long i = 0; i < n && i < FRAMES_SHOWN; i++)
        fprintf(t->out, "%s%s\n", indent, hti_format_frame(line, sizeof line, t->frames[i], true));
    if (n > FRAMES_SHOWN)
        fprintf(t->out, "%s... %ld more frames\n", indent, n - FRAMES_SHOWN);
}

static void heading(text *t, const char *title)
{
    fprintf(t->out, "\n%s\n", title);
}

/* One ranked list of sites: "#k <bytes> in <count> blocks (<share>)" then the stack. */
static void print_sites(text *t, uint32_t *sites, size_t n,
                        double (*bytes)(const ht_analysis *, uint32_t),
                        double (*count)(const ht_analysis *, uint32_t), double total,
                        const char *one, const char *many, bool count_first)
{
    char b1[64], b2[64];
    for (size_t i = 0; i < n && i < t->top; i++) {
        double v = bytes(t->a, sites[i]), c = count(t->a, sites[i]);
        if (count_first)
            fprintf(t->out, "  #%zu  %s %s (%s), %.1f%%\n", i + 1,
                    hti_format_count(b1, sizeof b1, c), hti_noun(c, one, many),
                    hti_format_bytes(b2, sizeof b2, v), share(c, total));
        else
            fprintf(t->out, "  #%zu  %s in %s %s, %.1f%%\n", i + 1,
                    hti_format_bytes(b1, sizeof b1, v), hti_format_count(b2, sizeof b2, c),
                    hti_noun(c, one, many), share(v, total));
        print_stack(t, sites[i], "        ");
    }
    if (n > t->top)
        fprintf(t->out, "  ... and %zu more stacks\n", n - t->top);
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

static void section_header(text *t)
{
    ht_analysis *a = t->a;
    const ht_trace_info *info = a->info;
    char b1[64], b2[64];
    fprintf(t->out, "heaptrail report: %s\n", a->path);
    fprintf(t->out, "  program     %s (pid %u)\n", info->program, info->pid);
    if (info->command_line[0])
        fprintf(t->out, "  command     %s\n", info->command_line);
    time_t seconds = (time_t)(info->start_realtime_ns / 1000000000u);
    struct tm tm;
    char when[64] = "?";
    if (gmtime_r(&seconds, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    fprintf(t->out, "  recorded    %s, %s, %s mode, ", when,
            hti_format_time(b1, sizeof b1, hti_duration_ns(a)), ht_trace_mode_name(info->mode));
    if (info->stack_depth)
        fprintf(t->out, "stacks of up to %u frames, ", info->stack_depth);
    else
        fprintf(t->out, "no stacks, ");
    if (info->sample_interval)
        fprintf(t->out, "sampled every %s on average (counts are estimates)\n",
                hti_format_bytes(b2, sizeof b2, (double)info->sample_interval));
    else
        fprintf(t->out, "not sampled\n");
    if (hti_analysis_ranged(a))
        fprintf(t->out,
                "  range       %s .. %s: every figure covers it; leaks are the blocks allocated "
                "in it and live at its end\n",
                hti_format_time(b1, sizeof b1, a->options.from_ns),
                hti_format_time(b2, sizeof b2, hti_duration_ns(a)));
    fprintf(t->out, "  events      %s (", hti_format_count(b1, sizeof b1, (double)a->events));
    bool first = true;
    for (unsigned k = 0; k < 256; k++)
        if (a->kind_count[k]) {
            fprintf(t->out, "%s%s %s", first ? "" : ", ", ht_event_kind_name(k),
                    hti_format_count(b2, sizeof b2, (double)a->kind_count[k]));
            first = false;
        }
    size_t heaps = 0;
    for (size_t i = 1; i < a->heap_count; i++)
        heaps++;
    fprintf(t->out, "), %zu %s, %zu %s, %s %s\n", a->thread_count,
            hti_noun((double)a->thread_count, "thread", "threads"), heaps,
            hti_noun((double)heaps, "heap", "heaps"),
            hti_format_count(b2, sizeof b2, (double)info->stacks),
            hti_noun((double)info->stacks, "stack", "stacks"));
    if (!info->complete)
        fprintf(t->out, "  note        the trace has no footer: the session did not end cleanly\n");
    const char *warnings = ht_analysis_warnings(a);
    while (warnings && *warnings) {
        size_t len = strcspn(warnings, "\n");
        fprintf(t->out, "  warning     %.*s\n", (int)len, warnings);
        warnings += len + (warnings[len] == '\n');
    }
}

static void section_summary(text *t, size_t leak_stacks)
{
    ht_analysis *a = t->a;
    char b1[64], b2[64], b3[64];
    heading(t, "SUMMARY");
    ht_trace_summary summary;
    ht_analysis_summary(a, &summary);
    ht_trace_summary_print(t->out, &summary, "  ", 16);
    fprintf(t->out, "  allocations      %s (%s), of which %s reallocations\n",
            hti_format_count(b1, sizeof b1, a->alloc_count),
            hti_format_bytes(b2, sizeof b2, a->alloc_bytes),
            hti_format_count(b3, sizeof b3, a->realloc_count));
    fprintf(t->out, "  frees            %s (%s)\n", hti_format_count(b1, sizeof b1, a->free_count),
            hti_format_bytes(b2, sizeof b2, a->free_bytes));
    fprintf(t->out, "  leaked           %s (%s B) in %s %s from %zu %s\n",
            hti_format_bytes(b1, sizeof b1, a->live_bytes),
            hti_format_count(b2, sizeof b2, a->live_bytes),
            hti_format_count(b3, sizeof b3, a->live_count),
            hti_noun(a->live_count, "block", "blocks"), leak_stacks,
            hti_noun((double)leak_stacks, "stack", "stacks"));
    if (a->leak_scan_seen) /* the reachability scan at exit (heaptrail check) */
        for (uint32_t c = 0; c < HTI_REACH_CLASSES; c++)
            if (c != HTI_REACH_UNKNOWN || a->reach_count[c] > 0)
                fprintf(t->out, "    %-22s %s in %s %s\n", hti_reach_text(c),
                        hti_format_bytes(b1, sizeof b1, a->reach_bytes[c]),
                        hti_format_count(b2, sizeof b2, a->reach_count[c]),
                        hti_noun(a->reach_count[c], "block", "blocks"));
    fprintf(t->out, "  temporary        %s %s (%.1f%% of all), %s\n",
            hti_format_count(b1, sizeof b1, a->temp_count),
            hti_noun(a->temp_count, "allocation", "allocations"),
            share(a->temp_count, a->alloc_count), hti_format_bytes(b2, sizeof b2, a->temp_bytes));
    fprintf(t->out, "  invalid events   %s\n",
            hti_format_count(b1, sizeof b1, (double)a->invalid_total));
    if (a->rundown_count > 0)
        fprintf(t->out, "  before tracing   %s %s (%s) %s live when tracing started\n",
                hti_format_count(b1, sizeof b1, a->rundown_count),
                hti_noun(a->rundown_count, "block", "blocks"),
                hti_format_bytes(b2, sizeof b2, a->rundown_bytes),
                hti_noun(a->rundown_count, "was", "were"));
    const hti_site *own = &a->sites[HTI_SITE_TRACER];
    if (own->live_count > 0)
        fprintf(t->out, "  heaptrail's own  %s %s (%s) of heaptrail's threads in the leaks\n",
                hti_format_count(b1, sizeof b1, own->live_count),
                hti_noun(own->live_count, "block", "blocks"),
                hti_format_bytes(b2, sizeof b2, own->live_bytes));
    if (a->unknown_frees > 0)
        fprintf(t->out, "  unknown frees    %s (blocks the trace never saw allocated%s)\n",
                hti_format_count(b1, sizeof b1, a->unknown_frees),
                a->info->sample_interval ? ": expected when sampling" : "");
    if (a->stale_count > 0)
        fprintf(t->out,
                "  stale blocks     %s (%s) dropped: a later rundown did not list them "
                "(their frees were lost)\n",
                hti_format_count(b1, sizeof b1, a->stale_count),
                hti_format_bytes(b2, sizeof b2, a->stale_bytes));
    if (a->destroyed_count > 0)
        fprintf(t->out, "  heap destroys    released %s blocks (%s)\n",
                hti_format_count(b1, sizeof b1, a->destroyed_count),
                hti_format_bytes(b2, sizeof b2, a->destroyed_bytes));
}

static void section_histogram(text *t)
{
    ht_analysis *a = t->a;
    char b1[64], b2[64], range[64];
    heading(t, "SIZE HISTOGRAM (requested bytes of allocations, power-of-two buckets)");
    int low = -1, high = -1;
    double max = 0;
    for (int b = 0; b < HTI_HIST_BUCKETS; b++)
        if (a->hist_count[b] > 0) {
            if (low < 0)
                low = b;
            high = b;
            if (a->hist_count[b] > max)
                max = a->hist_count[b];
        }
    if (low < 0) {
        fprintf(t->out, "  (no allocations)\n");
        return;
    }
    fprintf(t->out, "  %-24s %14s %12s\n", "size", "count", "bytes");
    for (int b = low; b <= high; b++) {
        if (b == 0)
            snprintf(range, sizeof range, "0");
        else if (b == 1)
            snprintf(range, sizeof range, "1");
        else
            snprintf(range, sizeof range, "%" PRIu64 " .. %" PRIu64, (uint64_t)1 << (b - 1),
                     b == 64 ? UINT64_MAX : ((uint64_t)1 << b) - 1);
        int bar = max > 0 ? (int)(30.0 * a->hist_count[b] / max + 0.5) : 0;
        fprintf(t->out, "  %-24s %14s %12s %.*s\n", range,
                hti_format_count(b1, sizeof b1, a->hist_count[b]),
                hti_format_bytes(b2, sizeof b2, a->hist_bytes[b]), bar,
                "##############################");
    }
}

static const char *source_short(unsigned source)
{
    const char *name = ht_source_name(source);
    return strncmp(name, "MEMORY_FROM_", 12) == 0 ? name + 12 : name;
}

static void section_sources(text *t)
{
    ht_analysis *a = t->a;
    char b1[64], b2[64], b3[64], b4[64];
    heading(t, "SOURCE BREAKDOWN (which heap path served the allocations)");
    for (size_t i = 0; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        double count = 0, bytes = 0, frees = 0;
        for (int s = 0; s < HT_SOURCE_COUNT; s++) {
            count += h->alloc_count[s];
            bytes += h->alloc_bytes[s];
            frees += h->free_count[s];
        }
        uint64_t invalid = h->invalid[0] + h->invalid[1] + h->invalid[2];
        if (count <= 0 && frees <= 0 && !invalid && h->live_count <= 0)
            continue;
        fprintf(t->out, "  heap 0x%" PRIx64 ": %s allocations (%s), %s frees, peak %s", h->handle,
                hti_format_count(b1, sizeof b1, count), hti_format_bytes(b2, sizeof b2, bytes),
                hti_format_count(b3, sizeof b3, frees),
                hti_format_bytes(b4, sizeof b4, h->max_live_bytes));
        if (h->max_committed)
            fprintf(t->out, ", committed up to %s",
                    hti_format_bytes(b2, sizeof b2, (double)h->max_committed));
        if (h->destroyed)
            fprintf(t->out, ", destroyed at %s", hti_format_time(b3, sizeof b3, h->destroyed_ns));
        fprintf(t->out, "\n");
        fprintf(t->out, "    %-12s %14s %7s %12s %7s %14s\n", "Source", "allocations", "share",
                "bytes", "share", "frees");
        for (unsigned s = 1; s < HT_SOURCE_COUNT; s++) {
            if (s == MEMORY_FROM_INVALID || (h->alloc_count[s] <= 0 && h->free_count[s] <= 0))
                continue;
            fprintf(t->out, "    %-12s %14s %6.1f%% %12s %6.1f%% %14s\n", source_short(s),
                    hti_format_count(b1, sizeof b1, h->alloc_count[s]),
                    share(h->alloc_count[s], count),
                    hti_format_bytes(b2, sizeof b2, h->alloc_bytes[s]),
                    share(h->alloc_bytes[s], bytes),
                    hti_format_count(b3, sizeof b3, h->free_count[s]));
        }
        if (invalid)
            fprintf(t->out,
                    "    %-12s %14" PRIu64 " (alloc %" PRIu64 ", free %" PRIu64 ", realloc %" PRIu64
                    ")\n",
                    "INVALID", invalid, h->invalid[0], h->invalid[1], h->invalid[2]);
    }
    uint32_t *sites;
    size_t n = hti_sites_sorted(a, hti_key_alloc_bytes, &sites);
    if (!n) {
        free(sites);
        return;
    }
    fprintf(t->out, "  by site (top %u by bytes allocated)\n", t->top);
    for (size_t i = 0; i < n && i < t->top; i++) {
        const hti_site *s = &a->sites[sites[i]];
        fprintf(t->out, "  #%zu ", i + 1);
        bool first = true;
        for (unsigned k = 1; k < HT_SOURCE_COUNT; k++) {
            if (s->source_count[k] <= 0)
                continue;
            fprintf(t->out, "%s%s %s (%s)", first ? "" : ", ", source_short(k),
                    hti_format_count(b1, sizeof b1, s->source_count[k]),
                    hti_format_bytes(b2, sizeof b2, s->source_bytes[k]));
            first = false;
        }
        fprintf(t->out, "\n");
        print_stack(t, sites[i], "        ");
    }
    free(sites);
}

static void section_invalid(text *t)
{
    ht_analysis *a = t->a;
    char b1[64];
    heading(t, "INVALID EVENTS (Source MEMORY_FROM_INVALID)");
    if (!a->invalid_total) {
        fprintf(t->out, "  none\n");
        return;
    }
    fprintf(t->out, "  %" PRIu64 " in total, by kind and stack:\n", a->invalid_total);
    for (size_t i = 0; i < a->invalid_group_count; i++) {
        const hti_invalid_group *g = &a->invalid_groups[i];
        fprintf(t->out, "  %" PRIu64 " x %s\n", g->count, hti_invalid_name(g->kind));
        print_stack(t, g->site, "        ");
    }
    fprintf(t->out, "  events%s:\n", a->invalid_omitted ? " (the first ones)" : "");
    for (size_t i = 0; i < a->invalid_event_count; i++) {
        const hti_invalid_event *e = &a->invalid_events[i];
        fprintf(t->out, "    %12s  thread %-7u %-7s heap 0x%" PRIx64 "  address 0x%" PRIx64,
                hti_format_time(b1, sizeof b1, e->time_ns), e->thread,
                ht_event_kind_name(e->event_kind), e->heap, e->address);
        if (e->size)
            fprintf(t->out, "  size %" PRIu64, e->size);
        fprintf(t->out, "  %s\n", hti_invalid_name(e->kind));
    }
    if (a->invalid_omitted)
        fprintf(t->out, "    ... %" PRIu64 " more\n", a->invalid_omitted);
}

static void section_lost(text *t)
{
    ht_analysis *a = t->a;
    char b1[64], b2[64];
    heading(t, "LOST EVENTS");
    ht_trace_summary summary;
    ht_analysis_summary(a, &summary);
    if (!summary.lost) {
        fprintf(t->out, "  none: the trace is complete%s\n",
                a->info->sample_interval ? " (up to sampling)" : "");
        return;
    }
    fprintf(t->out, "  %s events lost; the numbers above undercount.",
            hti_format_count(b1, sizeof b1, (double)summary.lost));
    if (summary.lost > a->lost_total)
        fprintf(t->out, " Not in a LOST record (the session's count): %s.",
                hti_format_count(b2, sizeof b2, (double)(summary.lost - a->lost_total)));
    for (unsigned r = 0; r < 8; r++)
        if (a->lost_by_reason[r])
            fprintf(t->out, " %s: %" PRIu64 ".", ht_lost_reason_name(r), a->lost_by_reason[r]);
    fprintf(t->out, "\n");
    for (size_t i = 0; i < a->lost_record_count && i < t->top; i++) {
        const ht_event_lost *l = &a->lost_records[i];
        fprintf(t->out, "    thread %-7u %10" PRIu64 " lost between %s and %s (%s)\n",
                l->LostThread, l->Count,
                hti_format_time(b1, sizeof b1, hti_relative_ns(a, l->FirstTimestamp)),
                hti_format_time(b2, sizeof b2, hti_relative_ns(a, l->LastTimestamp)),
                ht_lost_reason_name(l->Reason));
    }
    if (a->lost_record_count > t->top)
        fprintf(t->out, "    ... %zu more records\n", a->lost_record_count - t->top);
}

static void section_window(text *t)
{
    ht_analysis *a = t->a;
    char b1[64], b2[64], b3[64];
    static const char *const names[HTI_CLASSES] = {"AIFI", "AIFO", "AOFI", "AOFO"};
    static const char *const meanings[HTI_CLASSES] = {"allocated inside, freed inside",
                                                      "allocated inside, freed outside (or never)",
                                                      "allocated before, freed inside",
                                                      "allocated before, freed outside (or never)"};
    uint64_t end = a->options.window_end_ns;
    char window[128];
    if (end == HT_ANALYSIS_NO_END)
        snprintf(window, sizeof window, "%s .. end",
                 hti_format_time(b1, sizeof b1, a->options.window_begin_ns));
    else
        snprintf(window, sizeof window, "%s .. %s",
                 hti_format_time(b1, sizeof b1, a->options.window_begin_ns),
                 hti_format_time(b2, sizeof b2, end));
    fprintf(t->out, "\nWINDOW %s (lifetime classes as in WPA)\n", window);
    for (int c = 0; c < HTI_CLASSES; c++)
        fprintf(t->out, "  %s  %14s blocks %12s   %s\n", names[c],
                hti_format_count(b1, sizeof b1, a->window_count[c]),
                hti_format_bytes(b2, sizeof b2, a->window_bytes[c]), meanings[c]);
    double impact = a->window_bytes[HTI_AIFO] - a->window_bytes[HTI_AOFI];
    fprintf(t->out, "  impacting size %s (%s B): outstanding bytes at the end minus at the start\n",
            hti_format_bytes(b2, sizeof b2, impact), hti_format_count(b3, sizeof b3, impact));
    uint32_t *sites;
    size_t n = hti_window_sites_sorted(a, &sites);
    if (n)
        fprintf(t->out, "  by site (top %u by |impacting size|)\n", t->top);
    for (size_t i = 0; i < n && i < t->top; i++) {
        const hti_window_site *w = &a->window_sites[sites[i]];
        fprintf(t->out, "  #%zu  impacting %s B;", i + 1,
                hti_format_count(b1, sizeof b1, hti_window_impact(w)));
        for (int c = 0; c < HTI_CLASSES; c++)
            if (w->count[c] > 0)
                fprintf(t->out, " %s %s (%s)", names[c],
                        hti_format_count(b2, sizeof b2, w->count[c]),
                        hti_format_bytes(b3, sizeof b3, w->bytes[c]));
        fprintf(t->out, "\n");
        print_stack(t, sites[i], "        ");
    }
    free(sites);
}

int hti_report_text(ht_analysis *a, FILE *out, unsigned top, unsigned sections)
{
    text t = {.a = a, .out = out, .top = top};
    char b1[64], b2[64], b3[64];
    uint32_t *sites = NULL;
    if (!sections)
        sections = HT_REPORT_ALL;
    section_header(&t);

    size_t n = hti_sites_sorted(a, hti_key_leaked_bytes, &sites);
    if (sections & HT_REPORT_SUMMARY)
        section_summary(&t, n);
    if (sections & HT_REPORT_LEAKS) {
        heading(&t, hti_analysis_ranged(a)
                        ? "LEAKS (blocks allocated in the range and live at its end, by stack)"
                        : "LEAKS (blocks live at the end of the trace, by stack)");
        if (!n)
            fprintf(out, "  none\n");
        else
            fprintf(out, "  %s in %s %s from %zu %s\n",
                    hti_format_bytes(b1, sizeof b1, a->live_bytes),
                    hti_format_count(b2, sizeof b2, a->live_count),
                    hti_noun(a->live_count, "block", "blocks"), n,
                    hti_noun((double)n, "stack", "stacks"));
        print_sites(&t, sites, n, hti_key_leaked_bytes, leaked_count, a->live_bytes, "block",
                    "blocks", false);
    }
    free(sites);

    if (sections & HT_REPORT_PEAK) {
        n = hti_sites_sorted(a, hti_key_peak_bytes, &sites);
        char b4[64];
        fprintf(out, "\nPEAK %s (%s B) in %s %s at %s; the stacks holding it\n",
                hti_format_bytes(b1, sizeof b1, a->peak_bytes),
                hti_format_count(b2, sizeof b2, a->peak_bytes),
                hti_format_count(b3, sizeof b3, a->peak_count),
                hti_noun(a->peak_count, "block", "blocks"),
                hti_format_time(b4, sizeof b4, a->peak_time_ns));
        print_sites(&t, sites, n, hti_key_peak_bytes, peak_count, a->peak_bytes, "block", "blocks",
                    false);
        free(sites);
    }

    if (sections & HT_REPORT_TOP) {
        n = hti_sites_sorted(a, hti_key_alloc_bytes, &sites);
        heading(&t, "TOP SITES BY BYTES ALLOCATED");
        print_sites(&t, sites, n, hti_key_alloc_bytes, hti_key_alloc_count, a->alloc_bytes,
                    "allocation", "allocations", false);
        free(sites);

        n = hti_sites_sorted(a, hti_key_alloc_count, &sites);
        heading(&t, "TOP SITES BY NUMBER OF ALLOCATIONS");
        print_sites(&t, sites, n, hti_key_alloc_bytes, hti_key_alloc_count, a->alloc_count,
                    "allocation", "allocations", true);
        free(sites);
    }

    if (sections & HT_REPORT_TEMPORARY) {
        n = hti_sites_sorted(a, hti_key_temp_count, &sites);
        fprintf(out, "\nTEMPORARY ALLOCATIONS: %s of %s (%.1f%%)\n",
                hti_format_count(b1, sizeof b1, a->temp_count),
                hti_format_count(b2, sizeof b2, a->alloc_count),
                share(a->temp_count, a->alloc_count));
        fprintf(out,
                "  freed by the next heap operation of the same thread, no allocation between");
        if (a->options.temporary_threshold_ns)
            fprintf(out, ", or freed within %s of their allocation",
                    hti_format_time(b3, sizeof b3, a->options.temporary_threshold_ns));
        fprintf(out, "\n");
        print_sites(&t, sites, n, temp_bytes, hti_key_temp_count, a->temp_count, "temporary",
                    "temporary", true);
        free(sites);
    }

    if (sections & HT_REPORT_HISTOGRAM)
        section_histogram(&t);
    if (sections & HT_REPORT_SOURCES)
        section_sources(&t);
    if (sections & HT_REPORT_INVALID)
        section_invalid(&t);
    if (sections & HT_REPORT_LOST)
        section_lost(&t);
    if (a->window_sites && (sections & HT_REPORT_WINDOW))
        section_window(&t);
    free(t.frames);
    return ferror(out) ? -EIO : 0;
}
