/* stats.c — the renderer of `heaptrail stats`: the trace's identity and bottom line (summary.c),
 * then tables of the model's operation counts: events and bytes by kind, operations by Source,
 * per heap and per thread, and lost events by reason; as text, or as one JSON object.
 *
 * Everything comes from the one model (analyze.c) that `report` and `export` read too, so a
 * figure both print is the same figure. In a byte-sampled trace, ALLOC and REALLOC counts and
 * bytes and the live figures of the model are estimates (sums of the events' weights). */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

static const unsigned kind_order[] = {
    HT_EVENT_ALLOC,         HT_EVENT_FREE,        HT_EVENT_REALLOC,       HT_EVENT_HEAP_CREATE,
    HT_EVENT_HEAP_DESTROY,  HT_EVENT_HEAP_EXPAND, HT_EVENT_HEAP_CONTRACT, HT_EVENT_RUNDOWN_HEAP,
    HT_EVENT_RUNDOWN_BLOCK, HT_EVENT_LOST,
};
#define KIND_ORDER_COUNT (sizeof kind_order / sizeof kind_order[0])
#define LOST_REASONS 8
#define LABEL 14 /* width of the labels of the first lines */

/* The operations of every heap with Source s. */
static hti_ops by_source(const ht_analysis *a, unsigned s)
{
    hti_ops sum = {{0}, {0}};
    for (size_t i = 0; i < a->heap_count; i++)
        hti_ops_add(&sum, &a->heaps[i].ops[s]);
    return sum;
}

/* The operations of heap h, every Source. */
static hti_ops heap_ops(const hti_heap *h)
{
    hti_ops sum = {{0}, {0}};
    for (unsigned s = 0; s < HT_SOURCE_COUNT; s++)
        hti_ops_add(&sum, &h->ops[s]);
    return sum;
}

/* Events of kind k as the model counts them (ALLOC, FREE, REALLOC: the operations, weighted,
 * so estimates when sampled) and their bytes. */
static void kind_total(const ht_analysis *a, unsigned k, double *count, double *bytes)
{
    int op = k == HT_EVENT_ALLOC     ? HT_OP_ALLOC
             : k == HT_EVENT_FREE    ? HT_OP_FREE
             : k == HT_EVENT_REALLOC ? HT_OP_REALLOC
                                     : -1;
    if (op < 0) {
        *count = (double)a->kind_count[k];
        *bytes = a->kind_bytes[k];
        return;
    }
    *count = *bytes = 0;
    for (unsigned s = 0; s < HT_SOURCE_COUNT; s++) {
        hti_ops o = by_source(a, s);
        *count += o.count[op];
        *bytes += o.bytes[op];
    }
}

static double kind_count(const ht_analysis *a, unsigned k)
{
    double count, bytes;
    kind_total(a, k, &count, &bytes);
    return count;
}

static double kind_bytes(const ht_analysis *a, unsigned k)
{
    double count, bytes;
    kind_total(a, k, &count, &bytes);
    return bytes;
}

static bool kind_has_bytes(unsigned k)
{
    return k != HT_EVENT_LOST && k != HT_EVENT_HEAP_CREATE && k != HT_EVENT_HEAP_DESTROY &&
           k != HT_EVENT_RUNDOWN_HEAP;
}

/* ---- heaps and threads, busiest first ---- */

static hti_ops group_ops(const ht_analysis *a, bool heaps, size_t i)
{
    return heaps ? heap_ops(&a->heaps[i]) : a->threads[i].ops;
}

/* A heap or thread in the order it is listed: busiest first, then by handle or id. */
typedef struct group {
    size_t index; /* in a->heaps or a->threads */
    double operations;
    uint64_t key;
} group;

static int by_activity(const void *x, const void *y)
{
    const group *g = x, *h = y;
    if (g->operations != h->operations)
        return g->operations < h->operations ? 1 : -1;
    return g->key < h->key ? -1 : g->key > h->key;
}

/* The heaps (handle 0, the model's stand-in, left out) or threads, sorted; NULL when out of
 * memory. */
static group *sorted_groups(const ht_analysis *a, bool heaps, size_t *count)
{
    size_t first = heaps ? 1 : 0, total = heaps ? a->heap_count : a->thread_count;
    size_t n = total > first ? total - first : 0;
    group *groups = malloc((n ? n : 1) * sizeof *groups);
    if (!groups)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t index = first + i;
        hti_ops o = group_ops(a, heaps, index);
        groups[i] = (group){index, hti_ops_total(&o),
                            heaps ? a->heaps[index].handle : a->threads[index].tid};
    }
    qsort(groups, n, sizeof *groups, by_activity);
    *count = n;
    return groups;
}

/* ---- text ---- */

static int write_text(ht_analysis *a, FILE *out, size_t top)
{
    const ht_trace_info *info = a->info;
    ht_trace_summary summary;
    ht_analysis_summary(a, &summary);
    char b1[HTI_NUMBER_MAX], b2[HTI_NUMBER_MAX], b3[HTI_NUMBER_MAX], b4[HTI_NUMBER_MAX];
    fprintf(out, "%-*s %s (%s, format %u.%u%s%s)\n", LABEL, "trace", a->path,
            hti_format_bytes(b1, sizeof b1, (double)info->file_size), info->version_major,
            info->version_minor, info->complete ? ", complete" : ", no footer",
            info->truncated ? ", truncated" : "");
    fprintf(out, "%-*s %s (pid %u)\n", LABEL, "program", info->program, info->pid);
    fprintf(out, "%-*s %s\n", LABEL, "command", info->command_line);
    fprintf(out, "%-*s %s, %s", LABEL, "mode", ht_trace_mode_name(info->mode),
            info->stack_depth ? "stacks" : "no stacks");
    if (info->stack_depth)
        fprintf(out, " (depth %u, %s distinct)", info->stack_depth,
                hti_format_count(b1, sizeof b1, (double)info->stacks));
    if (info->sample_interval)
        fprintf(out, ", sampled every %s on average (counts are estimates)",
                hti_format_bytes(b1, sizeof b1, (double)info->sample_interval));
    fprintf(out, "\n%-*s %s\n", LABEL, "duration",
            hti_format_time(b1, sizeof b1, summary.duration_ns));
    ht_trace_summary_print(out, &summary, "", LABEL);
    fprintf(out, "%-*s %s\n", LABEL, "threads",
            hti_format_count(b1, sizeof b1, (double)a->thread_count));
    double seconds = (double)summary.duration_ns / 1e9;
    if (seconds > 0) {
        double allocations = kind_count(a, HT_EVENT_ALLOC) + kind_count(a, HT_EVENT_REALLOC);
        double allocated = kind_bytes(a, HT_EVENT_ALLOC) + kind_bytes(a, HT_EVENT_REALLOC);
        fprintf(out, "%-*s %s events/s, %s allocations/s, %s/s allocated\n", LABEL, "rates",
                hti_format_count(b1, sizeof b1, (double)a->events / seconds),
                hti_format_count(b2, sizeof b2, allocations / seconds),
                hti_format_bytes(b3, sizeof b3, allocated / seconds));
    }
    if (summary.invalid)
        fprintf(out, "%-*s %s operations failed (Source MEMORY_FROM_INVALID)\n", LABEL, "invalid",
                hti_format_count(b1, sizeof b1, (double)summary.invalid));

    fprintf(out, "\n%-18s %14s  %14s\n", "by event", "count", "bytes");
    for (size_t i = 0; i < KIND_ORDER_COUNT; i++) {
        unsigned k = kind_order[i];
        if (!a->kind_count[k])
            continue;
        fprintf(out, "  %-16s %14s  %14s\n", ht_event_kind_name(k),
                hti_format_count(b1, sizeof b1, kind_count(a, k)),
                kind_has_bytes(k) ? hti_format_bytes(b2, sizeof b2, kind_bytes(a, k)) : "-");
    }

    fprintf(out, "\n%-26s %12s %12s %12s  %16s\n", "by Source", "alloc", "free", "realloc",
            "bytes allocated");
    for (unsigned s = MEMORY_FROM_LOOKASIDE; s < HT_SOURCE_COUNT; s++) {
        hti_ops sum = by_source(a, s);
        const hti_ops *o = &sum;
        if (hti_ops_total(o) == 0)
            continue;
        fprintf(out, "  %-24s %12s %12s %12s  %16s\n", ht_source_name(s),
                hti_format_count(b1, sizeof b1, o->count[HT_OP_ALLOC]),
                hti_format_count(b2, sizeof b2, o->count[HT_OP_FREE]),
                hti_format_count(b3, sizeof b3, o->count[HT_OP_REALLOC]),
                hti_format_bytes(b4, sizeof b4, hti_ops_allocated(o)));
    }

    for (int heaps = 1; heaps >= 0; heaps--) {
        size_t n;
        group *groups = sorted_groups(a, heaps, &n);
        if (!groups)
            return -ENOMEM;
        size_t shown = top && top < n ? top : n;
        char title[48];
        snprintf(title, sizeof title, "%s (%zu)", heaps ? "heaps" : "threads", n);
        fprintf(out, "\n%-26s %12s %12s %12s  %16s%s\n", title, "alloc", "free", "realloc",
                "bytes allocated", heaps ? "     live at end" : "");
        for (size_t i = 0; i < shown; i++) {
            hti_ops sum = group_ops(a, heaps, groups[i].index);
            const hti_ops *o = &sum;
            char key[32];
            if (heaps)
                snprintf(key, sizeof key, "0x%" PRIx64, a->heaps[groups[i].index].handle);
            else
                snprintf(key, sizeof key, "%" PRIu32, a->threads[groups[i].index].tid);
            fprintf(out, "  %-24s %12s %12s %12s  %16s", key,
                    hti_format_count(b1, sizeof b1, o->count[HT_OP_ALLOC]),
                    hti_format_count(b2, sizeof b2, o->count[HT_OP_FREE]),
                    hti_format_count(b3, sizeof b3, o->count[HT_OP_REALLOC]),
                    hti_format_bytes(b4, sizeof b4, hti_ops_allocated(o)));
            if (heaps) {
                const hti_heap *h = &a->heaps[groups[i].index];
                fprintf(out, "  %14s%s",
                        h->destroyed ? "destroyed" : hti_format_bytes(b2, sizeof b2, h->live_bytes),
                        h->created ? " (created)" : "");
            }
            fputc('\n', out);
        }
        if (shown < n)
            fprintf(out, "  ... %zu more\n", n - shown);
        free(groups);
    }

    if (a->lost_total) {
        fprintf(out, "\nlost events by reason (LOST records)\n");
        for (unsigned r = 0; r < LOST_REASONS; r++)
            if (a->lost_by_reason[r])
                fprintf(out, "  %-24s %12s\n", ht_lost_reason_name(r),
                        hti_format_count(b1, sizeof b1, (double)a->lost_by_reason[r]));
    }
    return 0;
}

/* ---- JSON ---- */

static void json_ops(hti_json *j, const hti_ops *o)
{
    hti_json_round(j, "alloc", o->count[HT_OP_ALLOC]);
    hti_json_round(j, "free", o->count[HT_OP_FREE]);
    hti_json_round(j, "realloc", o->count[HT_OP_REALLOC]);
    hti_json_round(j, "bytes_allocated", hti_ops_allocated(o));
    hti_json_round(j, "bytes_freed", o->bytes[HT_OP_FREE]);
}

static int write_json(ht_analysis *a, FILE *out)
{
    const ht_trace_info *info = a->info;
    ht_trace_summary summary;
    ht_analysis_summary(a, &summary);
    hti_json j;
    hti_json_init(&j, out, false);
    hti_json_begin_object(&j, NULL);
    hti_json_string(&j, "trace", a->path);
    hti_json_string(&j, "program", info->program);
    hti_json_string(&j, "command_line", info->command_line);
    hti_json_uint(&j, "pid", info->pid);
    hti_json_string(&j, "mode", ht_trace_mode_name(info->mode));
    hti_json_uint(&j, "stack_depth", info->stack_depth);
    hti_json_uint(&j, "sample_interval", info->sample_interval);
    hti_json_bool(&j, "complete", info->complete);
    hti_json_bool(&j, "truncated", info->truncated);
    hti_json_uint(&j, "file_size", info->file_size);
    hti_json_uint(&j, "duration_ns", summary.duration_ns);
    hti_json_uint(&j, "threads", a->thread_count);
    hti_trace_summary_json(&j, &summary);
    hti_json_round(&j, "unknown_frees", a->unknown_frees);
    hti_json_begin_object(&j, "by_event");
    for (size_t i = 0; i < KIND_ORDER_COUNT; i++) {
        unsigned k = kind_order[i];
        if (!a->kind_count[k])
            continue;
        hti_json_begin_object(&j, ht_event_kind_name(k));
        hti_json_round(&j, "count", kind_count(a, k));
        hti_json_uint(&j, "events", a->kind_count[k]);
        hti_json_round(&j, "bytes", kind_has_bytes(k) ? kind_bytes(a, k) : 0);
        hti_json_end_object(&j);
    }
    hti_json_end_object(&j);
    hti_json_begin_object(&j, "by_source");
    for (unsigned s = MEMORY_FROM_LOOKASIDE; s < HT_SOURCE_COUNT; s++) {
        hti_ops sum = by_source(a, s);
        if (hti_ops_total(&sum) == 0)
            continue;
        hti_json_begin_object(&j, ht_source_name(s));
        json_ops(&j, &sum);
        hti_json_end_object(&j);
    }
    hti_json_end_object(&j);
    for (int heaps = 1; heaps >= 0; heaps--) {
        size_t n;
        group *groups = sorted_groups(a, heaps, &n);
        if (!groups)
            return -ENOMEM;
        hti_json_begin_array(&j, heaps ? "heaps" : "threads");
        for (size_t i = 0; i < n; i++) {
            hti_json_begin_object(&j, NULL);
            if (heaps) {
                const hti_heap *h = &a->heaps[groups[i].index];
                hti_json_hex(&j, "HeapHandle", h->handle);
                hti_ops sum = heap_ops(h);
                json_ops(&j, &sum);
                hti_json_round(&j, "live_blocks", h->live_count);
                hti_json_round(&j, "live_bytes", h->live_bytes);
                hti_json_bool(&j, "created", h->created);
                hti_json_bool(&j, "destroyed", h->destroyed);
            } else {
                hti_json_uint(&j, "thread", a->threads[groups[i].index].tid);
                json_ops(&j, &a->threads[groups[i].index].ops);
            }
            hti_json_end_object(&j);
        }
        hti_json_end_array(&j);
        free(groups);
    }
    hti_json_begin_object(&j, "lost_by_reason");
    for (unsigned r = 0; r < LOST_REASONS; r++)
        if (a->lost_by_reason[r])
            hti_json_uint(&j, ht_lost_reason_name(r), a->lost_by_reason[r]);
    hti_json_end_object(&j);
    hti_json_end_object(&j);
    hti_json_finish(&j);
    return 0;
}

int ht_stats_write(ht_analysis *a, FILE *out, const ht_stats_options *options)
{
    int status = options->json ? write_json(a, out) : write_text(a, out, options->top);
    if (status == 0 && (fflush(out) != 0 || ferror(out)))
        status = -EIO;
    return status;
}
