/* dump.c — `heaptrail dump FILE`: a trace's events, one per line, in the seed's field names.
 * Formats: text (for people: seconds since the start, every field of every kind), csv (the
 * twelve columns of dump_help, empty cells where a field does not apply) and jsonl (one object
 * per event, same keys, null where a field does not apply). Addresses 0x-hex (strings in JSON),
 * sizes decimal, Source its MEMORY_FROM_ name, stack the id; HEAP_EXPAND/HEAP_CONTRACT put their
 * Bytes in Size, LOST its Count. Lines are built by hand into a large buffer, so formatting
 * keeps up with the reader. */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

static const char dump_help[] =
    "Usage: heaptrail dump [OPTIONS] FILE\n"
    "Print the events of a trace in timestamp order, with the Windows heap events' field\n"
    "names. FILE - follows a trace streamed to standard input, printing events as they\n"
    "arrive.\n\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default), csv or jsonl\n"
    "  -o, --output FILE    write to FILE instead of standard output\n"
    "  -n, --limit N        stop after N events (after filtering)\n" HT_CLI_FILTER_HELP
        HT_CLI_PROGRESS_HELP "  -h, --help           this help\n\n"
    "csv columns: timestamp_ns,thread,event,HeapHandle,Address,Size,NewAddress,OldAddress,\n"
    "NewSize,OldSize,Source,stack; a cell is empty where the field does not apply. jsonl: one\n"
    "object per line with the same keys (null where a field does not apply). event is ALLOC,\n"
    "FREE, REALLOC, HEAP_CREATE, HEAP_DESTROY, HEAP_EXPAND, HEAP_CONTRACT, RUNDOWN_HEAP,\n"
    "RUNDOWN_BLOCK, LEAK_SCAN, UNREACHABLE_BLOCK or LOST; Source is MEMORY_FROM_LOOKASIDE, _LOWFRAG, _MAINPATH, _SLOWPATH or\n"
    "_INVALID; addresses are 0x-hex, sizes decimal, stack a stack id (empty: none).\n"
    "HEAP_EXPAND and HEAP_CONTRACT give their bytes in Size, LOST the number of events lost\n"
    "(and the thread that lost them), LEAK_SCAN the blocks it found unreachable. text also shows the fields of the other kinds.\n\n"
    "Exit codes: 0 ok, 1 usage, 2 cannot open or write, 3 malformed trace.\n";

enum { FORMAT_TEXT, FORMAT_CSV, FORMAT_JSONL };

/* The csv/jsonl columns between `event` and `Source`, in order. */
enum {
    COLUMN_HEAP,
    COLUMN_ADDRESS,
    COLUMN_SIZE,
    COLUMN_NEW_ADDRESS,
    COLUMN_OLD_ADDRESS,
    COLUMN_NEW_SIZE,
    COLUMN_OLD_SIZE,
    COLUMN_COUNT
};
static const bool column_is_address[COLUMN_COUNT] = {true, true, false, true, true, false, false};

typedef struct row {
    unsigned present; /* bit per column */
    uint64_t value[COLUMN_COUNT];
    unsigned source; /* 0: none */
} row;

static void set(row *r, int column, uint64_t value)
{
    r->present |= 1u << column;
    r->value[column] = value;
}

static void row_of(const ht_event *e, row *r)
{
    r->present = 0;
    r->source = 0;
    switch (e->kind) {
    case HT_EVENT_ALLOC:
        set(r, COLUMN_HEAP, e->u.alloc.HeapHandle);
        set(r, COLUMN_ADDRESS, e->u.alloc.Address);
        set(r, COLUMN_SIZE, e->u.alloc.Size);
        r->source = e->u.alloc.Source;
        break;
    case HT_EVENT_FREE:
        set(r, COLUMN_HEAP, e->u.free.HeapHandle);
        set(r, COLUMN_ADDRESS, e->u.free.Address);
        r->source = e->u.free.Source;
        break;
    case HT_EVENT_REALLOC:
        set(r, COLUMN_HEAP, e->u.realloc.HeapHandle);
        set(r, COLUMN_NEW_ADDRESS, e->u.realloc.NewAddress);
        set(r, COLUMN_OLD_ADDRESS, e->u.realloc.OldAddress);
        set(r, COLUMN_NEW_SIZE, e->u.realloc.NewSize);
        set(r, COLUMN_OLD_SIZE, e->u.realloc.OldSize);
        r->source = e->u.realloc.Source;
        break;
    case HT_EVENT_HEAP_CREATE: set(r, COLUMN_HEAP, e->u.heap_create.HeapHandle); break;
    case HT_EVENT_HEAP_DESTROY: set(r, COLUMN_HEAP, e->u.heap_destroy.HeapHandle); break;
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT:
        set(r, COLUMN_HEAP, e->u.heap_resize.HeapHandle);
        set(r, COLUMN_SIZE, e->u.heap_resize.Bytes);
        break;
    case HT_EVENT_RUNDOWN_HEAP: set(r, COLUMN_HEAP, e->u.rundown_heap.HeapHandle); break;
    case HT_EVENT_RUNDOWN_BLOCK:
        set(r, COLUMN_HEAP, e->u.rundown_block.HeapHandle);
        set(r, COLUMN_ADDRESS, e->u.rundown_block.Address);
        set(r, COLUMN_SIZE, e->u.rundown_block.Size);
        r->source = e->u.rundown_block.Source;
        break;
    case HT_EVENT_LOST: set(r, COLUMN_SIZE, e->u.lost.Count); break;
    case HT_EVENT_LEAK_SCAN: set(r, COLUMN_SIZE, e->u.leak_scan.Unreachable); break;
    case HT_EVENT_UNREACHABLE_BLOCK:
        set(r, COLUMN_HEAP, e->u.unreachable_block.HeapHandle);
        set(r, COLUMN_ADDRESS, e->u.unreachable_block.Address);
        break;
    default: break;
    }
}

static void put_value(ht_cli_out *out, const row *r, int column)
{
    if (column_is_address[column])
        ht_cli_out_hex(out, r->value[column]);
    else
        ht_cli_out_u64(out, r->value[column]);
}

static void write_csv(ht_cli_out *out, const ht_event *e)
{
    row r;
    row_of(e, &r);
    ht_cli_out_u64(out, e->timestamp_ns);
    ht_cli_out_char(out, ',');
    ht_cli_out_u64(out, e->thread_id);
    ht_cli_out_char(out, ',');
    ht_cli_out_str(out, ht_event_kind_name(e->kind));
    for (int c = 0; c < COLUMN_COUNT; c++) {
        ht_cli_out_char(out, ',');
        if (r.present & (1u << c))
            put_value(out, &r, c);
    }
    ht_cli_out_char(out, ',');
    if (r.source)
        ht_cli_out_str(out, ht_source_name(r.source));
    ht_cli_out_char(out, ',');
    if (e->stack_id)
        ht_cli_out_u64(out, e->stack_id);
    ht_cli_out_char(out, '\n');
}

/* A string literal, without strlen. */
#define PUT_LITERAL(out, literal) ht_cli_out_write((out), (literal), sizeof(literal) - 1)

static const char *const json_keys[COLUMN_COUNT] = {",\"HeapHandle\":", ",\"Address\":",
                                                    ",\"Size\":",       ",\"NewAddress\":",
                                                    ",\"OldAddress\":", ",\"NewSize\":",
                                                    ",\"OldSize\":"};

static void write_jsonl(ht_cli_out *out, const ht_event *e)
{
    row r;
    row_of(e, &r);
    PUT_LITERAL(out, "{\"timestamp_ns\":");
    ht_cli_out_u64(out, e->timestamp_ns);
    PUT_LITERAL(out, ",\"thread\":");
    ht_cli_out_u64(out, e->thread_id);
    PUT_LITERAL(out, ",\"event\":\"");
    ht_cli_out_str(out, ht_event_kind_name(e->kind));
    ht_cli_out_char(out, '"');
    for (int c = 0; c < COLUMN_COUNT; c++) {
        ht_cli_out_str(out, json_keys[c]);
        if (!(r.present & (1u << c))) {
            PUT_LITERAL(out, "null");
        } else if (column_is_address[c]) {
            ht_cli_out_char(out, '"');
            ht_cli_out_hex(out, r.value[c]);
            ht_cli_out_char(out, '"');
        } else {
            ht_cli_out_u64(out, r.value[c]);
        }
    }
    PUT_LITERAL(out, ",\"Source\":");
    if (r.source) {
        ht_cli_out_char(out, '"');
        ht_cli_out_str(out, ht_source_name(r.source));
        ht_cli_out_char(out, '"');
    } else {
        PUT_LITERAL(out, "null");
    }
    PUT_LITERAL(out, ",\"stack\":");
    if (e->stack_id)
        ht_cli_out_u64(out, e->stack_id);
    else
        PUT_LITERAL(out, "null");
    PUT_LITERAL(out, "}\n");
}

static void field_u64(ht_cli_out *out, const char *name, uint64_t value)
{
    ht_cli_out_char(out, ' ');
    ht_cli_out_str(out, name);
    ht_cli_out_char(out, '=');
    ht_cli_out_u64(out, value);
}

static void field_hex(ht_cli_out *out, const char *name, uint64_t value)
{
    ht_cli_out_char(out, ' ');
    ht_cli_out_str(out, name);
    ht_cli_out_char(out, '=');
    ht_cli_out_hex(out, value);
}

static void field_str(ht_cli_out *out, const char *name, const char *value)
{
    ht_cli_out_char(out, ' ');
    ht_cli_out_str(out, name);
    ht_cli_out_char(out, '=');
    ht_cli_out_str(out, value);
}

/* Seconds since start with nanosecond digits: "12.000345678" (negative before start). */
static void put_seconds(ht_cli_out *out, uint64_t timestamp, uint64_t start)
{
    uint64_t delta = timestamp >= start ? timestamp - start : start - timestamp;
    if (timestamp < start)
        ht_cli_out_char(out, '-');
    ht_cli_out_u64(out, delta / 1000000000u);
    char fraction[10];
    uint64_t ns = delta % 1000000000u;
    fraction[0] = '.';
    for (int i = 9; i >= 1; i--) {
        fraction[i] = (char)('0' + ns % 10);
        ns /= 10;
    }
    ht_cli_out_write(out, fraction, sizeof fraction);
}

static void write_text(ht_cli_out *out, const ht_event *e, uint64_t start)
{
    static const char padding[] = "              ";
    put_seconds(out, e->timestamp_ns, start);
    ht_cli_out_char(out, ' ');
    ht_cli_out_u64(out, e->thread_id);
    ht_cli_out_char(out, ' ');
    const char *name = ht_event_kind_name(e->kind);
    ht_cli_out_str(out, name);
    size_t length = strlen(name);
    if (length < 13)
        ht_cli_out_write(out, padding, 13 - length);
    switch (e->kind) {
    case HT_EVENT_ALLOC:
        field_hex(out, "HeapHandle", e->u.alloc.HeapHandle);
        field_hex(out, "Address", e->u.alloc.Address);
        field_u64(out, "Size", e->u.alloc.Size);
        field_str(out, "Source", ht_source_name(e->u.alloc.Source));
        break;
    case HT_EVENT_FREE:
        field_hex(out, "HeapHandle", e->u.free.HeapHandle);
        field_hex(out, "Address", e->u.free.Address);
        field_str(out, "Source", ht_source_name(e->u.free.Source));
        break;
    case HT_EVENT_REALLOC:
        field_hex(out, "HeapHandle", e->u.realloc.HeapHandle);
        field_hex(out, "NewAddress", e->u.realloc.NewAddress);
        field_hex(out, "OldAddress", e->u.realloc.OldAddress);
        field_u64(out, "NewSize", e->u.realloc.NewSize);
        field_u64(out, "OldSize", e->u.realloc.OldSize);
        field_str(out, "Source", ht_source_name(e->u.realloc.Source));
        break;
    case HT_EVENT_HEAP_CREATE:
        field_hex(out, "HeapHandle", e->u.heap_create.HeapHandle);
        field_hex(out, "Flags", e->u.heap_create.Flags);
        field_u64(out, "InitialSize", e->u.heap_create.InitialSize);
        field_u64(out, "MaximumSize", e->u.heap_create.MaximumSize);
        break;
    case HT_EVENT_HEAP_DESTROY: field_hex(out, "HeapHandle", e->u.heap_destroy.HeapHandle); break;
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT:
        field_hex(out, "HeapHandle", e->u.heap_resize.HeapHandle);
        field_u64(out, "Bytes", e->u.heap_resize.Bytes);
        field_u64(out, "CommittedAfter", e->u.heap_resize.CommittedAfter);
        break;
    case HT_EVENT_RUNDOWN_HEAP:
        field_hex(out, "HeapHandle", e->u.rundown_heap.HeapHandle);
        field_u64(out, "Reserved", e->u.rundown_heap.Reserved);
        field_u64(out, "Committed", e->u.rundown_heap.Committed);
        field_u64(out, "LiveBlocks", e->u.rundown_heap.LiveBlocks);
        field_u64(out, "Compatibility", e->u.rundown_heap.Compatibility);
        break;
    case HT_EVENT_RUNDOWN_BLOCK:
        field_hex(out, "HeapHandle", e->u.rundown_block.HeapHandle);
        field_hex(out, "Address", e->u.rundown_block.Address);
        field_u64(out, "Size", e->u.rundown_block.Size);
        field_u64(out, "UsableSize", e->u.rundown_block.UsableSize);
        field_str(out, "Source", ht_source_name(e->u.rundown_block.Source));
        break;
    case HT_EVENT_LOST:
        field_u64(out, "Count", e->u.lost.Count);
        field_u64(out, "LostThread", e->u.lost.LostThread);
        field_str(out, "Reason", ht_lost_reason_name(e->u.lost.Reason));
        field_u64(out, "FirstTimestamp", e->u.lost.FirstTimestamp);
        field_u64(out, "LastTimestamp", e->u.lost.LastTimestamp);
        break;
    case HT_EVENT_LEAK_SCAN:
        field_u64(out, "LiveBlocks", e->u.leak_scan.LiveBlocks);
        field_u64(out, "Unreachable", e->u.leak_scan.Unreachable);
        field_u64(out, "Threads", e->u.leak_scan.Threads);
        field_u64(out, "ThreadsStopped", e->u.leak_scan.ThreadsStopped);
        field_hex(out, "Flags", e->u.leak_scan.Flags);
        break;
    case HT_EVENT_UNREACHABLE_BLOCK:
        field_hex(out, "HeapHandle", e->u.unreachable_block.HeapHandle);
        field_hex(out, "Address", e->u.unreachable_block.Address);
        field_str(out, "Class",
                  e->u.unreachable_block.Class == HT_LEAK_DEFINITE ? "DEFINITE" : "INDIRECT");
        break;
    default: break;
    }
    if (e->stack_id)
        field_u64(out, "stack", e->stack_id);
    if (e->flags & HT_EVENT_FLAG_SAMPLED)
        ht_cli_out_printf(out, " weight=%.3f", e->weight);
    ht_cli_out_char(out, '\n');
}

/* following: a stream read as it comes, whose footer is still to come. */
static void write_text_header(ht_cli_out *out, const ht_trace_info *info, bool following)
{
    ht_cli_out_str(out, "# program ");
    ht_cli_out_str(out, info->program);
    ht_cli_out_str(out, " (pid ");
    ht_cli_out_u64(out, info->pid);
    ht_cli_out_str(out, "), command line: ");
    ht_cli_out_str(out, info->command_line);
    ht_cli_out_printf(out,
                      "\n# format %u.%u, mode %s, stack depth %u, %s%s; times are seconds "
                      "since the start (timestamp_ns %llu)\n",
                      info->version_major, info->version_minor, ht_trace_mode_name(info->mode),
                      info->stack_depth, info->sample_interval ? "sampled" : "not sampled",
                      info->complete || following ? "" : ", incomplete (no footer)",
                      (unsigned long long)info->start_ns);
}

int ht_cli_dump(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"limit", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        HT_CLI_FILTER_OPTIONS,
        HT_CLI_PROGRESS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"text", "csv", "jsonl", NULL};
    int format = FORMAT_TEXT;
    const char *output = NULL;
    uint64_t limit = UINT64_MAX;
    ht_cli_filter filter;
    ht_cli_filter_init(&filter);
    int c;
    while ((c = ht_cli_getopt(argc, argv, "f:o:n:h", options)) != -1) {
        int error = 0;
        switch (c) {
        case 'f': error = ht_cli_parse_choice("--format", optarg, formats, &format); break;
        case 'o': output = optarg; break;
        case 'n': error = ht_cli_parse_u64("--limit", optarg, &limit); break;
        case 'h': fputs(dump_help, stdout); return HT_CLI_EXIT_OK;
        case HT_CLI_OPT_PROGRESS:
        case HT_CLI_OPT_NO_PROGRESS: ht_cli_progress_option(c); break;
        case '?': return HT_CLI_EXIT_USAGE;
        default: error = ht_cli_filter_option(&filter, c, optarg); break;
        }
        if (error)
            return error;
    }
    if (optind >= argc)
        return ht_cli_usage_error("no trace file given");
    if (optind + 1 < argc)
        return ht_cli_usage_error("one trace file at a time ('%s' is extra)", argv[optind + 1]);

    ht_cli_input input;
    int code = ht_cli_input_open(&input, argv[optind]);
    if (code)
        return code;
    ht_cli_filter_resolve(&filter, input.info);
    ht_cli_out out;
    if ((code = ht_cli_out_open(&out, output)) != 0) {
        ht_cli_input_close(&input);
        return code;
    }
    if (format == FORMAT_CSV)
        ht_cli_out_str(&out, "timestamp_ns,thread,event,HeapHandle,Address,Size,NewAddress,"
                             "OldAddress,NewSize,OldSize,Source,stack\n");
    else if (format == FORMAT_TEXT)
        write_text_header(&out, input.info, ht_reader_fd(input.reader) >= 0);

    uint64_t written = 0, start = input.info->start_ns;
    const ht_event *events;
    size_t count;
    bool done = limit == 0;
    while (!done && !out.error && (count = ht_cli_input_next(&input, &events)) > 0) {
        for (size_t i = 0; i < count; i++) {
            const ht_event *e = &events[i];
            if (ht_cli_filter_done(&filter, e)) {
                done = true;
                break;
            }
            if (!ht_cli_filter_match(&filter, e))
                continue;
            if (format == FORMAT_CSV)
                write_csv(&out, e);
            else if (format == FORMAT_JSONL)
                write_jsonl(&out, e);
            else
                write_text(&out, e, start);
            if (++written >= limit) {
                done = true;
                break;
            }
        }
        if (ht_reader_fd(input.reader) >= 0)
            ht_cli_out_flush(&out); /* a followed trace: each batch as it arrives */
    }
    int out_code = ht_cli_out_close(&out);
    code = ht_cli_input_close(&input);
    return code ? code : out_code;
}
