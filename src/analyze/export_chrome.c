/* export_chrome.c — Chrome / Perfetto trace JSON (the Trace Event Format, object form):
 * a "live bytes" counter track with one series per heap (sampled about 4000 times over the
 * trace, plus the exact peak), a "live blocks" counter, instant events for INVALID operations
 * (with their stacks), lost events, heap creation and destruction and the peak, a complete
 * event per heap lifetime on a track of its own, and async slices for the lifetimes of large
 * blocks. Timestamps are microseconds from the trace start.
 *
 * Written while the events stream through, so memory stays that of the analysis. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

#define COUNTER_SAMPLES 4000
#define HEAP_SERIES 16          /* heaps with a series of their own; the rest are "other heaps" */
#define LARGE_BLOCKS_MAX 100000 /* lifetime slices written at most */
#define HEAP_TRACK_BASE 0x40000000u /* synthetic tids of the heap tracks (above pid_max) */
#define STACK_FRAMES_IN_ARGS 12

typedef struct chrome {
    ht_analysis *a;
    FILE *out;
    uint32_t pid;
    bool first;
    uint64_t large_written, large_omitted;
    const hti_frame **frames;
    size_t frame_capacity;
} chrome;

static void event_begin(chrome *c)
{
    fputs(c->first ? "\n" : ",\n", c->out);
    c->first = false;
}

static void ts(FILE *out, uint64_t ns)
{
    fprintf(out, "%" PRIu64 ".%03u", ns / 1000, (unsigned)(ns % 1000));
}

/* "f1 <- f2 <- ..." for an args field. */
static void stack_string(chrome *c, uint32_t site)
{
    const char *label = hti_site_label(site);
    if (label) {
        hti_json_escape(c->out, label);
        return;
    }
    long n = hti_site_frames(c->a, site, &c->frames, &c->frame_capacity);
    char text[4096] = "";
    size_t used = 0;
    char frame[512];
    for (long i = 0; i < n && i < STACK_FRAMES_IN_ARGS && used < sizeof text; i++) {
        int w = snprintf(text + used, sizeof text - used, "%s%s", i ? " <- " : "",
                         hti_format_frame(frame, sizeof frame, c->frames[i], false));
        if (w < 0)
            break;
        used += (size_t)w;
    }
    hti_json_escape(c->out, text);
}

static void write_heap_counter(chrome *c, uint64_t time_ns, bool at_peak);

static void write_counters(chrome *c, uint64_t time_ns, bool at_peak)
{
    ht_analysis *a = c->a;
    if (a->heap_count > 1 || a->heaps[0].live_bytes >= 0.5)
        write_heap_counter(c, time_ns, at_peak);
    event_begin(c);
    fprintf(c->out, "{\"name\":\"live blocks\",\"ph\":\"C\",\"pid\":%u,\"tid\":0,\"ts\":", c->pid);
    ts(c->out, time_ns);
    double blocks = at_peak ? a->peak_count : a->live_count;
    fprintf(c->out, ",\"args\":{\"blocks\":%.0f}}", blocks >= 0.5 ? nearbyint(blocks) : 0.0);
}

static void write_heap_counter(chrome *c, uint64_t time_ns, bool at_peak)
{
    ht_analysis *a = c->a;
    event_begin(c);
    fputs("{\"name\":\"live bytes\",\"ph\":\"C\",\"pid\":", c->out);
    fprintf(c->out, "%u,\"tid\":0,\"ts\":", c->pid);
    ts(c->out, time_ns);
    fputs(",\"args\":{", c->out);
    double other = 0;
    bool any = false;
    size_t series = 0;
    for (size_t i = 0; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        double v = at_peak ? hti_heap_peak_bytes(a, h) : h->live_bytes;
        if (i == 0 && !(v >= 0.5))
            continue; /* the placeholder for unknown heaps */
        if (series >= HEAP_SERIES) {
            other += v;
            continue;
        }
        series++;
        fprintf(c->out, "%s\"heap 0x%" PRIx64 "\":%.0f", any ? "," : "", h->handle,
                v >= 0.5 ? nearbyint(v) : 0.0);
        any = true;
    }
    if (series >= HEAP_SERIES)
        fprintf(c->out, "%s\"other heaps\":%.0f", any ? "," : "",
                other >= 0.5 ? nearbyint(other) : 0.0);
    fputs("}}", c->out);
}

static void on_sample(void *context, ht_analysis *a, uint64_t time_ns)
{
    (void)a;
    write_counters(context, time_ns, false);
}

static void instant(chrome *c, const char *name, const char *scope, uint32_t tid, uint64_t t)
{
    event_begin(c);
    fputs("{\"name\":", c->out);
    hti_json_escape(c->out, name);
    fprintf(c->out, ",\"ph\":\"i\",\"s\":\"%s\",\"pid\":%u,\"tid\":%u,\"ts\":", scope, c->pid, tid);
    ts(c->out, t);
}

static void on_notable(void *context, ht_analysis *a, const ht_event *e, uint32_t site)
{
    chrome *c = context;
    uint64_t t = hti_relative_ns(a, e->timestamp_ns);
    switch (e->kind) {
    case HT_EVENT_ALLOC:
    case HT_EVENT_FREE:
    case HT_EVENT_REALLOC: {
        /* INVALID: named by what the analysis made of it. */
        instant(c, hti_invalid_name(a->last_invalid_kind), "t", e->thread_id, t);
        uint64_t heap = ht_event_heap(e);
        uint64_t address = e->kind == HT_EVENT_ALLOC  ? e->u.alloc.Address
                           : e->kind == HT_EVENT_FREE ? e->u.free.Address
                                                      : e->u.realloc.OldAddress;
        fprintf(c->out,
                ",\"cat\":\"invalid\",\"args\":{\"event\":\"%s\",\"heap\":\"0x%" PRIx64
                "\",\"address\":\"0x%" PRIx64 "\",\"stack\":",
                ht_event_kind_name(e->kind), heap, address);
        stack_string(c, site);
        fputs("}}", c->out);
        break;
    }
    case HT_EVENT_LOST:
        instant(c, "lost events", "p", e->u.lost.LostThread, t);
        fprintf(c->out, ",\"cat\":\"lost\",\"args\":{\"count\":%" PRIu64 ",\"reason\":%u}}",
                e->u.lost.Count, e->u.lost.Reason);
        break;
    case HT_EVENT_HEAP_CREATE:
    case HT_EVENT_HEAP_DESTROY:
        instant(c, ht_event_kind_name(e->kind), "t", e->thread_id, t);
        fprintf(c->out, ",\"cat\":\"heap\",\"args\":{\"heap\":\"0x%" PRIx64 "\"}}",
                ht_event_heap(e));
        break;
    default: break;
    }
}

static void on_block_end(void *context, ht_analysis *a, const hti_block *b, uint64_t end_ns,
                         bool live)
{
    chrome *c = context;
    if (c->large_written >= LARGE_BLOCKS_MAX) {
        c->large_omitted++;
        return;
    }
    uint64_t id = ++c->large_written;
    char size[64];
    hti_format_bytes(size, sizeof size, (double)hti_block_size(b));
    for (int phase = 0; phase < 2; phase++) {
        event_begin(c);
        fprintf(c->out,
                "{\"name\":\"block %s\",\"cat\":\"large block\",\"ph\":\"%c\",\"id\":\"0x%" PRIx64
                "\",\"pid\":%u,\"tid\":0,\"ts\":",
                size, phase ? 'e' : 'b', id, c->pid);
        ts(c->out, hti_relative_ns(a, phase ? end_ns : b->time));
        if (phase) {
            fputs("}", c->out);
            continue;
        }
        fprintf(c->out,
                ",\"args\":{\"address\":\"0x%" PRIx64 "\",\"size\":%" PRIu64
                ",\"heap\":\"0x%" PRIx64 "\",\"leaked\":%s,\"stack\":",
                b->address, hti_block_size(b), a->heaps[hti_block_heap(b)].handle,
                live ? "true" : "false");
        stack_string(c, b->site);
        fputs("}}", c->out);
    }
}

static void metadata(chrome *c, const char *what, uint32_t tid, const char *name)
{
    event_begin(c);
    fprintf(c->out, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%u,\"tid\":%u,\"args\":{\"name\":", what,
            c->pid, tid);
    hti_json_escape(c->out, name);
    fputs("}}", c->out);
}

static void finish(chrome *c)
{
    ht_analysis *a = c->a;
    char name[512];
    snprintf(name, sizeof name, "%s (pid %u)", hti_basename(a->info->program), c->pid);
    metadata(c, "process_name", 0, name);
    for (size_t i = 0; i < a->thread_count; i++) {
        snprintf(name, sizeof name, "thread %u", a->threads[i].tid);
        metadata(c, "thread_name", a->threads[i].tid, name);
    }
    uint64_t end = hti_duration_ns(a);
    for (size_t i = 1; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        uint32_t tid = HEAP_TRACK_BASE + (uint32_t)i;
        snprintf(name, sizeof name, "heap 0x%" PRIx64, h->handle);
        metadata(c, "thread_name", tid, name);
        uint64_t begin = h->created_ns;
        uint64_t stop = h->destroyed ? h->destroyed_ns : end;
        event_begin(c);
        fprintf(c->out, "{\"name\":\"%s\",\"cat\":\"heap\",\"ph\":\"X\",", name);
        fprintf(c->out, "\"pid\":%u,\"tid\":%u,\"ts\":", c->pid, tid);
        ts(c->out, begin);
        fputs(",\"dur\":", c->out);
        ts(c->out, stop > begin ? stop - begin : 0);
        fprintf(c->out,
                ",\"args\":{\"peak_bytes\":%.0f,\"leaked_bytes\":%.0f,\"max_committed\":%" PRIu64
                ",\"destroyed\":%s}}",
                nearbyint(h->max_live_bytes), h->live_bytes >= 0.5 ? nearbyint(h->live_bytes) : 0.0,
                h->max_committed, h->destroyed ? "true" : "false");
    }
    if (a->peak_bytes > 0) {
        write_counters(c, a->peak_time_ns, true);
        instant(c, "peak", "g", 0, a->peak_time_ns);
        fprintf(c->out, ",\"cat\":\"peak\",\"args\":{\"bytes\":%.0f,\"blocks\":%.0f}}",
                nearbyint(a->peak_bytes), nearbyint(a->peak_count));
    }
}

int hti_export_chrome(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                      size_t error_size)
{
    chrome c = {.a = a, .out = out, .pid = a->info->pid, .first = true};
    uint64_t duration = hti_duration_ns(a);
    hti_hooks hooks = {
        .context = &c,
        .sample_interval_ns = duration / COUNTER_SAMPLES ? duration / COUNTER_SAMPLES : 1000,
        .sample = on_sample,
        .notable = on_notable,
        .large_block = o->large_block ? o->large_block : (1u << 20),
        .block_end = on_block_end,
    };
    fputs("{\"displayTimeUnit\":\"ns\",\"otherData\":{\"generator\":\"heaptrail export\","
          "\"trace\":",
          out);
    hti_json_escape(out, a->path);
    fputs(",\"program\":", out);
    hti_json_escape(out, a->info->program);
    fputs("},\"traceEvents\":[", out);
    write_counters(&c, 0, false);
    int status = hti_analysis_run(a, &hooks, error, error_size);
    if (status == 0) {
        finish(&c);
        if (c.large_omitted) {
            instant(&c, "large block slices omitted", "g", 0, 0);
            fprintf(out, ",\"args\":{\"count\":%" PRIu64 "}}", c.large_omitted);
        }
    }
    fputs("\n]}\n", out);
    free(c.frames);
    return status;
}
