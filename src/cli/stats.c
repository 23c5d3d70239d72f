/* stats.c — `heaptrail stats FILE`: one pass over a trace, then tables: events and bytes by
 * kind, operations by Source, per heap and per thread, lost events by reason, duration and
 * rates, and the live blocks' peak and end state (FORMAT.md §13's rule, through ht_cli_live).
 *
 * Bytes are requested sizes: ALLOC Size, REALLOC NewSize, FREE the freed block's size when the
 * trace knows it. In a byte-sampled trace, ALLOC and REALLOC counts and bytes are estimates
 * (sums of the events' weights), as the live-set figures are. Memory: the live set, plus one
 * entry per heap and per thread. Output: text for people, or one JSON object (--format json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli_common.h"
#include "commands.h"

static const char stats_help[] =
    "Usage: heaptrail stats [OPTIONS] FILE\n"
    "Summarize a trace: events and bytes by kind, operations by Source, heaps, threads, lost\n"
    "events, duration and rates, peak live bytes and what is still live at the end.\n\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default) or json\n"
    "  -t, --top N          heaps and threads to list, busiest first (default 10; 0: all)\n"
    HT_CLI_PROGRESS_HELP
    "  -h, --help           this help\n\n"
    "Sizes are the bytes the program asked for. In a byte-sampled trace (record --sample) the\n"
    "ALLOC/REALLOC counts and bytes and the live figures are estimates.\n\n"
    "Exit codes: 0 ok, 1 usage, 2 cannot open, 3 malformed trace.\n";

#define KIND_SLOTS 256
enum { OP_ALLOC, OP_FREE, OP_REALLOC, OP_COUNT };

typedef struct group {
    uint64_t key;
    double ops[OP_COUNT];      /* estimated counts */
    double bytes[OP_COUNT];    /* allocated (ALLOC, REALLOC new) and freed bytes */
    uint64_t events;
    uint64_t live_blocks;      /* heaps: at the end */
    uint64_t live_bytes;
    bool created, destroyed, rundown;
} group;

typedef struct group_table {
    group *items;
    size_t count, capacity;
    size_t *index; /* open addressing over items, SIZE_MAX empty */
    size_t index_capacity;
    bool failed;
} group_table;

static size_t hash_key(uint64_t key, size_t capacity)
{
    uint64_t h = (key ^ (key >> 31)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h >> 17) & (capacity - 1);
}

static group *group_get(group_table *t, uint64_t key)
{
    if (t->failed)
        return NULL;
    if (t->index_capacity) {
        for (size_t s = hash_key(key, t->index_capacity);; s = (s + 1) & (t->index_capacity - 1)) {
            if (t->index[s] == SIZE_MAX)
                break;
            if (t->items[t->index[s]].key == key)
                return &t->items[t->index[s]];
        }
    }
    if (t->count == t->capacity) {
        size_t capacity = t->capacity ? t->capacity * 2 : 64;
        group *items = realloc(t->items, capacity * sizeof *items);
        if (!items) {
            t->failed = true;
            return NULL;
        }
        t->items = items;
        t->capacity = capacity;
    }
    if ((t->count + 1) * 2 > t->index_capacity) {
        size_t capacity = t->index_capacity ? t->index_capacity * 2 : 128;
        size_t *index = malloc(capacity * sizeof *index);
        if (!index) {
            t->failed = true;
            return NULL;
        }
        memset(index, 0xff, capacity * sizeof *index);
        for (size_t i = 0; i < t->count; i++) {
            size_t s = hash_key(t->items[i].key, capacity);
            while (index[s] != SIZE_MAX)
                s = (s + 1) & (capacity - 1);
            index[s] = i;
        }
        free(t->index);
        t->index = index;
        t->index_capacity = capacity;
    }
    size_t s = hash_key(key, t->index_capacity);
    while (t->index[s] != SIZE_MAX)
        s = (s + 1) & (t->index_capacity - 1);
    t->index[s] = t->count;
    group *g = &t->items[t->count++];
    memset(g, 0, sizeof *g);
    g->key = key;
    return g;
}

static void group_table_free(group_table *t)
{
    free(t->items);
    free(t->index);
}

typedef struct totals {
    uint64_t kind_events[KIND_SLOTS];
    double kind_count[KIND_SLOTS]; /* estimated for ALLOC/REALLOC */
    double kind_bytes[KIND_SLOTS];
    double source_ops[HT_SOURCE_COUNT][OP_COUNT];
    double source_bytes[HT_SOURCE_COUNT][OP_COUNT];
    uint64_t lost_by_reason[8];
    uint64_t lost_total;
    uint64_t events;
    uint64_t first_ns, last_ns;
    uint64_t invalid;
    group_table heaps, threads;
    ht_cli_live live;
} totals;

static void count_op(totals *t, group *heap, group *thread, int op, unsigned source, double weight,
                     double bytes)
{
    if (source < HT_SOURCE_COUNT) {
        t->source_ops[source][op] += weight;
        t->source_bytes[source][op] += bytes;
    }
    if (heap) {
        heap->ops[op] += weight;
        heap->bytes[op] += bytes;
    }
    if (thread) {
        thread->ops[op] += weight;
        thread->bytes[op] += bytes;
    }
}

static void account(totals *t, const ht_event *e)
{
    double weight = e->weight > 0 ? e->weight : 1.0;
    if (!t->events)
        t->first_ns = e->timestamp_ns;
    t->last_ns = e->timestamp_ns;
    t->events++;
    unsigned kind = e->kind & (KIND_SLOTS - 1);
    t->kind_events[kind]++;
    uint64_t heap_handle = ht_event_heap(e);
    group *heap = heap_handle ? group_get(&t->heaps, heap_handle) : NULL;
    group *thread = e->kind == HT_EVENT_RUNDOWN_HEAP || e->kind == HT_EVENT_RUNDOWN_BLOCK
                        ? NULL
                        : group_get(&t->threads, e->thread_id);
    if (heap)
        heap->events++;
    if (thread)
        thread->events++;
    ht_cli_block removed;
    ht_cli_live_apply(&t->live, e, &removed);
    double freed = (double)removed.size * (removed.address ? removed.weight : 0);
    switch (e->kind) {
    case HT_EVENT_ALLOC:
        t->kind_count[kind] += weight;
        t->kind_bytes[kind] += weight * (double)e->u.alloc.Size;
        count_op(t, heap, thread, OP_ALLOC, e->u.alloc.Source, weight,
                 weight * (double)e->u.alloc.Size);
        t->invalid += e->u.alloc.Source == MEMORY_FROM_INVALID;
        break;
    case HT_EVENT_FREE:
        t->kind_count[kind] += 1;
        t->kind_bytes[kind] += freed;
        count_op(t, heap, thread, OP_FREE, e->u.free.Source, 1, freed);
        t->invalid += e->u.free.Source == MEMORY_FROM_INVALID;
        break;
    case HT_EVENT_REALLOC:
        t->kind_count[kind] += weight;
        t->kind_bytes[kind] += weight * (double)e->u.realloc.NewSize;
        count_op(t, heap, thread, OP_REALLOC, e->u.realloc.Source, weight,
                 weight * (double)e->u.realloc.NewSize);
        t->invalid += e->u.realloc.Source == MEMORY_FROM_INVALID;
        break;
    case HT_EVENT_RUNDOWN_BLOCK:
        t->kind_count[kind] += 1;
        t->kind_bytes[kind] += (double)e->u.rundown_block.Size;
        if (heap)
            heap->rundown = true;
        break;
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT:
        t->kind_count[kind] += 1;
        t->kind_bytes[kind] += (double)e->u.heap_resize.Bytes;
        break;
    case HT_EVENT_HEAP_CREATE:
        t->kind_count[kind] += 1;
        if (heap)
            heap->created = true;
        break;
    case HT_EVENT_HEAP_DESTROY:
        t->kind_count[kind] += 1;
        if (heap)
            heap->destroyed = true;
        break;
    case HT_EVENT_RUNDOWN_HEAP:
        t->kind_count[kind] += 1;
        if (heap)
            heap->rundown = true;
        break;
    case HT_EVENT_LOST:
        t->kind_count[kind] += 1;
        t->kind_bytes[kind] += 0;
        t->lost_total += e->u.lost.Count;
        t->lost_by_reason[e->u.lost.Reason < 8 ? e->u.lost.Reason : 0] += e->u.lost.Count;
        break;
    default:
        t->kind_count[kind] += 1;
        break;
    }
}

static int by_activity(const void *a, const void *b)
{
    const group *x = a, *y = b;
    double dx = (double)x->events, dy = (double)y->events;
    if (dx != dy)
        return dx < dy ? 1 : -1;
    return x->key < y->key ? -1 : x->key > y->key;
}

static void sort_groups(group_table *table)
{
    if (table->count > 1)
        qsort(table->items, table->count, sizeof(group), by_activity);
}

static const unsigned kind_order[] = {
    HT_EVENT_ALLOC,        HT_EVENT_FREE,          HT_EVENT_REALLOC,     HT_EVENT_HEAP_CREATE,
    HT_EVENT_HEAP_DESTROY, HT_EVENT_HEAP_EXPAND,   HT_EVENT_HEAP_CONTRACT, HT_EVENT_RUNDOWN_HEAP,
    HT_EVENT_RUNDOWN_BLOCK, HT_EVENT_LOST,
};
#define KIND_ORDER_COUNT (sizeof kind_order / sizeof kind_order[0])

static double seconds(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void print_text(ht_cli_out *out, const char *path, const ht_trace_info *info, totals *t,
                       size_t top)
{
    char a[32], b[32], c[32];
    bool sampled = info->sample_interval != 0;
    uint64_t duration = t->last_ns > t->first_ns ? t->last_ns - t->first_ns : 0;
    ht_cli_out_printf(out, "trace       %s (%s, format %u.%u%s%s)\n", path,
                      ht_cli_format_bytes((double)info->file_size, a), info->version_major,
                      info->version_minor, info->complete ? ", complete" : ", no footer",
                      info->truncated ? ", truncated" : "");
    ht_cli_out_printf(out, "program     %s (pid %u)\n", info->program, info->pid);
    ht_cli_out_printf(out, "command     %s\n", info->command_line);
    ht_cli_out_printf(out, "mode        %s, %s", ht_cli_mode_name(info->mode),
                      info->stack_depth ? "stacks" : "no stacks");
    if (info->stack_depth)
        ht_cli_out_printf(out, " (depth %u, %llu distinct)", info->stack_depth,
                          (unsigned long long)info->stacks);
    if (sampled)
        ht_cli_out_printf(out, ", sampled every %llu bytes on average (counts are estimates)",
                          (unsigned long long)info->sample_interval);
    ht_cli_out_printf(out, "\nduration    %s (first to last event)\n",
                      ht_cli_format_duration(duration, a));
    ht_cli_out_printf(out, "events      %llu, %llu lost, %llu threads\n",
                      (unsigned long long)t->events, (unsigned long long)t->lost_total,
                      (unsigned long long)t->threads.count);
    if (duration) {
        double s = seconds(duration);
        double allocations = t->kind_count[HT_EVENT_ALLOC] + t->kind_count[HT_EVENT_REALLOC];
        ht_cli_out_printf(out, "rates       %s events/s, %s allocations/s, %s/s allocated\n",
                          ht_cli_format_count((double)t->events / s, a),
                          ht_cli_format_count(allocations / s, b),
                          ht_cli_format_bytes((t->kind_bytes[HT_EVENT_ALLOC] +
                                               t->kind_bytes[HT_EVENT_REALLOC]) / s, c));
    }
    ht_cli_out_printf(out, "peak        %s live in %.0f blocks, %s after the start\n",
                      ht_cli_format_bytes(t->live.peak_bytes, a), t->live.peak_count,
                      ht_cli_format_duration(t->live.peak_ns > info->start_ns
                                                 ? t->live.peak_ns - info->start_ns
                                                 : 0, b));
    ht_cli_out_printf(out, "end         %s live in %.0f blocks%s\n",
                      ht_cli_format_bytes(t->live.weighted_bytes, a), t->live.weighted_count,
                      info->complete ? " when tracing stopped" : " at the last event");
    if (t->invalid)
        ht_cli_out_printf(out, "invalid     %llu operations failed (Source MEMORY_FROM_INVALID)\n",
                          (unsigned long long)t->invalid);

    ht_cli_out_printf(out, "\n%-18s %14s  %14s\n", "by event", "count", "bytes");
    for (size_t i = 0; i < KIND_ORDER_COUNT; i++) {
        unsigned k = kind_order[i];
        if (!t->kind_events[k])
            continue;
        ht_cli_out_printf(out, "  %-16s %14.0f  %14s\n", ht_event_kind_name(k), t->kind_count[k],
                          k == HT_EVENT_LOST || k == HT_EVENT_HEAP_CREATE ||
                                  k == HT_EVENT_HEAP_DESTROY || k == HT_EVENT_RUNDOWN_HEAP
                              ? "-"
                              : ht_cli_format_bytes(t->kind_bytes[k], a));
    }

    ht_cli_out_printf(out, "\n%-26s %12s %12s %12s  %18s\n", "by Source", "alloc", "free",
                      "realloc", "bytes allocated");
    for (unsigned s = MEMORY_FROM_LOOKASIDE; s < HT_SOURCE_COUNT; s++) {
        double *ops = t->source_ops[s];
        if (ops[OP_ALLOC] + ops[OP_FREE] + ops[OP_REALLOC] == 0)
            continue;
        ht_cli_out_printf(out, "  %-24s %12.0f %12.0f %12.0f  %18s\n", ht_source_name(s),
                          ops[OP_ALLOC], ops[OP_FREE], ops[OP_REALLOC],
                          ht_cli_format_bytes(t->source_bytes[s][OP_ALLOC] +
                                                  t->source_bytes[s][OP_REALLOC], a));
    }

    sort_groups(&t->heaps);
    size_t shown = top && top < t->heaps.count ? top : t->heaps.count;
    char title[48];
    snprintf(title, sizeof title, "heaps (%zu)", t->heaps.count);
    ht_cli_out_printf(out, "\n%-26s %12s %12s %12s  %18s  %12s\n", title, "alloc", "free",
                      "realloc", "bytes allocated", "live at end");
    for (size_t i = 0; i < shown; i++) {
        group *g = &t->heaps.items[i];
        ht_cli_out_printf(out, "  0x%-22llx %12.0f %12.0f %12.0f  %18s  %12s%s\n",
                          (unsigned long long)g->key, g->ops[OP_ALLOC], g->ops[OP_FREE],
                          g->ops[OP_REALLOC],
                          ht_cli_format_bytes(g->bytes[OP_ALLOC] + g->bytes[OP_REALLOC], a),
                          g->destroyed ? "destroyed" : ht_cli_format_bytes((double)g->live_bytes, b),
                          g->created ? " (created)" : "");
    }
    if (shown < t->heaps.count)
        ht_cli_out_printf(out, "  ... %zu more\n", t->heaps.count - shown);

    sort_groups(&t->threads);
    shown = top && top < t->threads.count ? top : t->threads.count;
    snprintf(title, sizeof title, "threads (%zu)", t->threads.count);
    ht_cli_out_printf(out, "\n%-26s %12s %12s %12s  %18s\n", title, "alloc", "free", "realloc",
                      "bytes allocated");
    for (size_t i = 0; i < shown; i++) {
        group *g = &t->threads.items[i];
        ht_cli_out_printf(out, "  %-24llu %12.0f %12.0f %12.0f  %18s\n",
                          (unsigned long long)g->key, g->ops[OP_ALLOC], g->ops[OP_FREE],
                          g->ops[OP_REALLOC],
                          ht_cli_format_bytes(g->bytes[OP_ALLOC] + g->bytes[OP_REALLOC], a));
    }
    if (shown < t->threads.count)
        ht_cli_out_printf(out, "  ... %zu more\n", t->threads.count - shown);

    if (t->lost_total) {
        ht_cli_out_str(out, "\nlost events by reason\n");
        for (unsigned r = 0; r < 8; r++)
            if (t->lost_by_reason[r])
                ht_cli_out_printf(out, "  %-24s %12llu\n", ht_cli_lost_reason_name(r),
                                  (unsigned long long)t->lost_by_reason[r]);
    }
}

static void json_group(ht_cli_out *out, const group *g, bool heap)
{
    ht_cli_out_printf(out, "{\"%s\":", heap ? "HeapHandle" : "thread");
    if (heap)
        ht_cli_out_printf(out, "\"0x%llx\"", (unsigned long long)g->key);
    else
        ht_cli_out_printf(out, "%llu", (unsigned long long)g->key);
    ht_cli_out_printf(out, ",\"events\":%llu,\"alloc\":%.0f,\"free\":%.0f,\"realloc\":%.0f,"
                           "\"bytes_allocated\":%.0f,\"bytes_freed\":%.0f",
                      (unsigned long long)g->events, g->ops[OP_ALLOC], g->ops[OP_FREE],
                      g->ops[OP_REALLOC], g->bytes[OP_ALLOC] + g->bytes[OP_REALLOC],
                      g->bytes[OP_FREE]);
    if (heap)
        ht_cli_out_printf(out, ",\"live_blocks\":%llu,\"live_bytes\":%llu,\"created\":%s,"
                               "\"destroyed\":%s",
                          (unsigned long long)g->live_blocks, (unsigned long long)g->live_bytes,
                          g->created ? "true" : "false", g->destroyed ? "true" : "false");
    ht_cli_out_char(out, '}');
}

static void print_json(ht_cli_out *out, const char *path, const ht_trace_info *info, totals *t)
{
    ht_cli_out_str(out, "{\"trace\":");
    ht_cli_out_json_string(out, path);
    ht_cli_out_str(out, ",\"program\":");
    ht_cli_out_json_string(out, info->program);
    ht_cli_out_str(out, ",\"command_line\":");
    ht_cli_out_json_string(out, info->command_line);
    ht_cli_out_printf(out,
                      ",\"pid\":%u,\"mode\":\"%s\",\"stack_depth\":%u,\"sample_interval\":%llu,"
                      "\"complete\":%s,\"truncated\":%s,\"file_size\":%llu,\"events\":%llu,"
                      "\"lost\":%llu,\"first_ns\":%llu,\"last_ns\":%llu,\"duration_ns\":%llu,"
                      "\"invalid\":%llu",
                      info->pid, ht_cli_mode_name(info->mode), info->stack_depth,
                      (unsigned long long)info->sample_interval, info->complete ? "true" : "false",
                      info->truncated ? "true" : "false", (unsigned long long)info->file_size,
                      (unsigned long long)t->events, (unsigned long long)t->lost_total,
                      (unsigned long long)t->first_ns, (unsigned long long)t->last_ns,
                      (unsigned long long)(t->last_ns - t->first_ns),
                      (unsigned long long)t->invalid);
    ht_cli_out_printf(out,
                      ",\"peak_bytes\":%.0f,\"peak_blocks\":%.0f,\"peak_ns\":%llu,"
                      "\"live_bytes\":%.0f,\"live_blocks\":%.0f,\"unknown_frees\":%llu",
                      t->live.peak_bytes, t->live.peak_count, (unsigned long long)t->live.peak_ns,
                      t->live.weighted_bytes, t->live.weighted_count,
                      (unsigned long long)t->live.unknown_frees);
    ht_cli_out_str(out, ",\"by_event\":{");
    bool first = true;
    for (size_t i = 0; i < KIND_ORDER_COUNT; i++) {
        unsigned k = kind_order[i];
        if (!t->kind_events[k])
            continue;
        ht_cli_out_printf(out, "%s\"%s\":{\"count\":%.0f,\"events\":%llu,\"bytes\":%.0f}",
                          first ? "" : ",", ht_event_kind_name(k), t->kind_count[k],
                          (unsigned long long)t->kind_events[k], t->kind_bytes[k]);
        first = false;
    }
    ht_cli_out_str(out, "},\"by_source\":{");
    first = true;
    for (unsigned s = MEMORY_FROM_LOOKASIDE; s < HT_SOURCE_COUNT; s++) {
        double *ops = t->source_ops[s];
        if (ops[OP_ALLOC] + ops[OP_FREE] + ops[OP_REALLOC] == 0)
            continue;
        ht_cli_out_printf(out, "%s\"%s\":{\"alloc\":%.0f,\"free\":%.0f,\"realloc\":%.0f,"
                               "\"bytes_allocated\":%.0f}",
                          first ? "" : ",", ht_source_name(s), ops[OP_ALLOC], ops[OP_FREE],
                          ops[OP_REALLOC],
                          t->source_bytes[s][OP_ALLOC] + t->source_bytes[s][OP_REALLOC]);
        first = false;
    }
    ht_cli_out_str(out, "},\"heaps\":[");
    sort_groups(&t->heaps);
    for (size_t i = 0; i < t->heaps.count; i++) {
        if (i)
            ht_cli_out_char(out, ',');
        json_group(out, &t->heaps.items[i], true);
    }
    ht_cli_out_str(out, "],\"threads\":[");
    sort_groups(&t->threads);
    for (size_t i = 0; i < t->threads.count; i++) {
        if (i)
            ht_cli_out_char(out, ',');
        json_group(out, &t->threads.items[i], false);
    }
    ht_cli_out_str(out, "],\"lost_by_reason\":{");
    first = true;
    for (unsigned r = 0; r < 8; r++) {
        if (!t->lost_by_reason[r])
            continue;
        ht_cli_out_printf(out, "%s\"%s\":%llu", first ? "" : ",", ht_cli_lost_reason_name(r),
                          (unsigned long long)t->lost_by_reason[r]);
        first = false;
    }
    ht_cli_out_str(out, "}}\n");
}

int ht_cli_stats(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'},
        {"top", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        HT_CLI_PROGRESS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"text", "json", NULL};
    int format = 0;
    uint64_t top = 10;
    int c;
    while ((c = ht_cli_getopt(argc, argv, "f:t:h", options)) != -1) {
        int error = 0;
        switch (c) {
        case 'f': error = ht_cli_parse_choice("--format", optarg, formats, &format); break;
        case 't': error = ht_cli_parse_u64("--top", optarg, &top); break;
        case 'h': fputs(stats_help, stdout); return HT_CLI_EXIT_OK;
        case HT_CLI_OPT_PROGRESS:
        case HT_CLI_OPT_NO_PROGRESS: ht_cli_progress_option(c); break;
        default: return HT_CLI_EXIT_USAGE;
        }
        if (error)
            return error;
    }
    if (optind >= argc)
        return ht_cli_usage_error("no trace file given");
    if (optind + 1 < argc)
        return ht_cli_usage_error("one trace file at a time ('%s' is extra)", argv[optind + 1]);
    const char *path = argv[optind];

    ht_cli_input input;
    int code = ht_cli_input_open(&input, path);
    if (code)
        return code;
    totals *t = calloc(1, sizeof *t);
    if (!t) {
        ht_cli_input_close(&input);
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    ht_cli_live_init(&t->live);
    const ht_event *events;
    size_t count;
    while ((count = ht_cli_input_next(&input, &events)) > 0)
        for (size_t i = 0; i < count; i++)
            account(t, &events[i]);
    /* Live blocks per heap at the end. */
    size_t cursor = 0;
    const ht_cli_block *block;
    while ((block = ht_cli_live_next(&t->live, &cursor)) != NULL) {
        group *heap = group_get(&t->heaps, block->heap);
        if (heap) {
            heap->live_blocks++;
            heap->live_bytes += block->size;
        }
    }
    if (t->live.failed || t->heaps.failed || t->threads.failed)
        ht_cli_warning("out of memory: some figures are incomplete");

    ht_cli_out out;
    if ((code = ht_cli_out_open(&out, NULL)) == 0) {
        if (format == 1)
            print_json(&out, path, input.info, t);
        else
            print_text(&out, path, input.info, t, (size_t)top);
        code = ht_cli_out_close(&out);
    }
    int input_code = ht_cli_input_close(&input);
    ht_cli_live_free(&t->live);
    group_table_free(&t->heaps);
    group_table_free(&t->threads);
    free(t);
    return input_code ? input_code : code;
}
