/* cli_common.h — what every heaptrail subcommand shares: exit codes, one-line messages, option
 * parsing, reading a trace with progress and clear errors, event filters, a fast buffered
 * output, number and size formatting, and the live-block set of FORMAT.md §13.
 *
 * Reaches only the public headers (heaptrail/reader.h, heaptrail/events.h). Messages go to
 * stderr as "heaptrail: <command>: <text>"; nothing here exits the process. See commands.h for
 * how a subcommand is put together with these. */
#ifndef HEAPTRAIL_CLI_COMMON_H
#define HEAPTRAIL_CLI_COMMON_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/progress.h"
#include "heaptrail/events.h"
#include "heaptrail/reader.h"

/* ---- exit codes (documented in README.md, "Command line") ---- */
enum {
    HT_CLI_EXIT_OK = 0,
    HT_CLI_EXIT_USAGE = 1,     /* bad command line */
    HT_CLI_EXIT_IO = 2,        /* a file or process could not be opened, read, written, reached */
    HT_CLI_EXIT_MALFORMED = 3, /* the trace is not a heaptrail trace or is damaged */
    HT_CLI_EXIT_REFUSED = 4,   /* start/stop/...: the process refused (permission, state) */
};

/* The length of path without a final ".trace" (the trace's stem: NAME of NAME.out, of the
 * profiles NAME.SEQ.pb.gz). */
size_t ht_cli_trace_stem(const char *path);
/* pattern with every "%p" replaced by pid, cut to size. */
void ht_cli_expand_pid(const char *pattern, long pid, char *out, size_t size);

/* ---- messages ---- */

/* Sets the subcommand named in messages ("dump"); main.c calls it before dispatching. */
void ht_cli_set_command(const char *name);
const char *ht_cli_command(void);
/* "heaptrail: <command>: <message>\n" on stderr. */
void ht_cli_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* "heaptrail: <command>: warning: <message>\n" on stderr. */
void ht_cli_warning(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* "heaptrail: <command>: <message>\nTry 'heaptrail <command> --help'.\n"; returns
 * HT_CLI_EXIT_USAGE, so a command can `return ht_cli_usage_error(...)`. */
int ht_cli_usage_error(const char *format, ...) __attribute__((format(printf, 1, 2)));
/* "heaptrail: <command>: " on stderr, for messages built piece by piece. */
void ht_cli_message_prefix(void);

/* ---- options ----
 * ht_cli_getopt is getopt_long with heaptrail's messages: it returns the option (its short
 * letter or the `val` of its struct option), -1 after the last option, or '?' after printing
 * "unknown option '--x'" / "option '--x' needs a value" (then return HT_CLI_EXIT_USAGE).
 * Operands may come before, between and after options unless short_options starts with '+'
 * (stop at the first operand, as `record` does). "--" ends the options. */
int ht_cli_getopt(int argc, char **argv, const char *short_options,
                  const struct option *long_options);

/* Long-only option ids shared by several commands; a command's own ids stay below 0x1000. */
enum {
    HT_CLI_OPT_PROGRESS = 0x1000, /* --progress: progress line even when stderr is not a tty */
    HT_CLI_OPT_NO_PROGRESS,       /* --no-progress */
    HT_CLI_OPT_EVENT,             /* filters, see ht_cli_filter */
    HT_CLI_OPT_SOURCE,
    HT_CLI_OPT_HEAP,
    HT_CLI_OPT_THREAD,
    HT_CLI_OPT_MIN_SIZE,
    HT_CLI_OPT_MAX_SIZE,
    HT_CLI_OPT_FROM,
    HT_CLI_OPT_TO,
    HT_CLI_OPT_NO_SYMBOLS, /* report and export, see analysis_options.h */
    HT_CLI_OPT_SYMBOLS_PATH,
    HT_CLI_OPT_STACKS, /* record and start, see tracing_options.h */
    HT_CLI_OPT_FREE_STACKS,
    HT_CLI_OPT_UNWIND,
    HT_CLI_OPT_MODE,
    HT_CLI_OPT_SAMPLE,
    HT_CLI_OPT_BUFFER,
    HT_CLI_OPT_COMPRESS,
    HT_CLI_OPT_FOLLOW_FORKS,
    HT_CLI_OPT_LEAK_SCAN,
    HT_CLI_OPT_PPROF_EVERY, /* record and start, see collect.h */
    HT_CLI_OPT_PPROF_DIR,
    HT_CLI_OPT_PPROF_AT_PEAK,
};
#define HT_CLI_PROGRESS_OPTIONS                                                                    \
    {"progress", no_argument, NULL, HT_CLI_OPT_PROGRESS},                                          \
    {                                                                                              \
        "no-progress", no_argument, NULL, HT_CLI_OPT_NO_PROGRESS                                   \
    }
#define HT_CLI_PROGRESS_HELP                                                                       \
    "  --progress, --no-progress\n"                                                                \
    "                       show (hide) a progress line on stderr; default: shown for long\n"      \
    "                       reads when stderr is a terminal (dump: and stdout is not)\n"
/* Handles HT_CLI_OPT_PROGRESS / HT_CLI_OPT_NO_PROGRESS. */
void ht_cli_progress_option(int id);

/* Value parsers: on a bad value they print "bad value 'x' for --option: ..." and return
 * HT_CLI_EXIT_USAGE; 0 on success. */
int ht_cli_parse_u64(const char *option, const char *text, uint64_t *out);  /* decimal or 0x hex */
int ht_cli_parse_size(const char *option, const char *text, uint64_t *out); /* 4K, 1M, 2GiB */
/* One of choices (a NULL-terminated list); *index is its position. */
int ht_cli_parse_choice(const char *option, const char *text, const char *const *choices,
                        int *index);

/* ---- reading a trace ----
 * ht_cli_input_open opens a trace and prints what went wrong:
 *   "cannot open 'x': No such file or directory" -> HT_CLI_EXIT_IO,
 *   "'x' is not a heaptrail trace: bad magic at offset 0" -> HT_CLI_EXIT_MALFORMED,
 * and the reader's warnings (e.g. a truncated file) as warnings. Then ht_cli_input_next hands
 * out batches of events in timestamp order with the progress line, and ht_cli_input_close
 * reports a decoding error or new warnings and returns the exit code for the input
 * (HT_CLI_EXIT_OK, or HT_CLI_EXIT_MALFORMED / HT_CLI_EXIT_IO after an error mid-way). */
typedef struct ht_cli_input {
    const char *path;
    ht_reader *reader;
    const ht_trace_info *info;
    ht_event *events; /* batch buffer */
    size_t capacity;
    uint64_t delivered;
    int status; /* 0, or the negative errno of a read error */
    size_t warnings_seen;
    hti_progress progress;
} ht_cli_input;
int ht_cli_input_open(ht_cli_input *input, const char *path);
/* Next batch: count (> 0), 0 at the end or after an error (see ht_cli_input_close). */
size_t ht_cli_input_next(ht_cli_input *input, const ht_event **events);
int ht_cli_input_close(ht_cli_input *input);

/* ---- event filters ----
 * --event LIST   kinds: ALLOC,FREE,REALLOC,HEAP_CREATE,HEAP_DESTROY,HEAP_EXPAND,HEAP_CONTRACT,
 *                RUNDOWN_HEAP,RUNDOWN_BLOCK,LOST (any case; "blocks" = ALLOC,FREE,REALLOC)
 * --source LIST  LOOKASIDE,LOWFRAG,MAINPATH,SLOWPATH,INVALID (or MEMORY_FROM_..., or 1..6):
 *                only events that carry a Source
 * --heap ADDR    only events of that heap (HeapHandle)
 * --thread TID   only events of that thread
 * --min-size N, --max-size N   only events with a size (ALLOC Size, REALLOC NewSize,
 *                RUNDOWN_BLOCK Size) in [N, M]
 * --from T, --to T   only events with from <= time < to; T is seconds since the trace started
 *                (cli/durations.h's grammar), or @NS for an absolute timestamp_ns */
typedef struct ht_cli_filter {
    uint64_t kinds;   /* HT_EVENT_BIT mask, 0: all */
    uint32_t sources; /* bit per Source value, 0: all */
    bool has_heap, has_thread, has_min, has_max, has_from, has_to;
    bool from_absolute, to_absolute;
    uint64_t heap;
    uint32_t thread;
    uint64_t min_size, max_size;
    uint64_t from_ns, to_ns; /* relative until ht_cli_filter_resolve */
    bool any;                /* some filter is set */
} ht_cli_filter;
#define HT_CLI_FILTER_OPTIONS                                                                      \
    {"event", required_argument, NULL, HT_CLI_OPT_EVENT},                                          \
        {"source", required_argument, NULL, HT_CLI_OPT_SOURCE},                                    \
        {"heap", required_argument, NULL, HT_CLI_OPT_HEAP},                                        \
        {"thread", required_argument, NULL, HT_CLI_OPT_THREAD},                                    \
        {"min-size", required_argument, NULL, HT_CLI_OPT_MIN_SIZE},                                \
        {"max-size", required_argument, NULL, HT_CLI_OPT_MAX_SIZE},                                \
        {"from", required_argument, NULL, HT_CLI_OPT_FROM},                                        \
    {                                                                                              \
        "to", required_argument, NULL, HT_CLI_OPT_TO                                               \
    }
#define HT_CLI_FILTER_HELP                                                                         \
    "  --event LIST         only these events: ALLOC,FREE,REALLOC,HEAP_CREATE,HEAP_DESTROY,\n"     \
    "                       HEAP_EXPAND,HEAP_CONTRACT,RUNDOWN_HEAP,RUNDOWN_BLOCK,LOST\n"           \
    "  --source LIST        only events with these Sources: LOOKASIDE,LOWFRAG,MAINPATH,\n"         \
    "                       SLOWPATH,INVALID (or MEMORY_FROM_...)\n"                               \
    "  --heap ADDR          only events of this heap (HeapHandle, 0x...)\n"                        \
    "  --thread TID         only events of this thread\n"                                          \
    "  --min-size N, --max-size N\n"                                                               \
    "                       only events whose size (ALLOC Size, REALLOC NewSize, RUNDOWN_BLOCK\n"  \
    "                       Size) is at least N / at most N bytes\n"                               \
    "  --from T, --to T     only events in [T, T2): a time since the trace started (1.5,\n"        \
    "                       250ms; units ns, us, ms, s, min, h) or @NS, an absolute timestamp_ns\n"
void ht_cli_filter_init(ht_cli_filter *filter);
/* Handles one HT_CLI_OPT_EVENT..HT_CLI_OPT_TO option: 0 or HT_CLI_EXIT_USAGE (printed). */
int ht_cli_filter_option(ht_cli_filter *filter, int id, const char *value);
/* Turns relative times into timestamps once the trace is open. */
void ht_cli_filter_resolve(ht_cli_filter *filter, const ht_trace_info *info);
bool ht_cli_filter_match(const ht_cli_filter *filter, const ht_event *event);
/* True once events are past --to: a reader in time order can stop. */
bool ht_cli_filter_done(const ht_cli_filter *filter, const ht_event *event);

/* Size of an event for filters and tables: ALLOC Size, REALLOC NewSize, RUNDOWN_BLOCK Size;
 * false for events without one. */
bool ht_cli_event_size(const ht_event *event, uint64_t *size);
/* Source of an event (ALLOC, FREE, REALLOC, RUNDOWN_BLOCK), else 0. */
unsigned ht_cli_event_source(const ht_event *event);

/* ---- buffered output ----
 * For output of any size: appends go to a 256 KiB buffer written with write(2). A failed write
 * is remembered (no further output) and reported by ht_cli_out_close. */
typedef struct ht_cli_out {
    int fd;
    bool own_fd;
    int error; /* errno of the first failed write, 0 if none */
    size_t length;
    char *buffer;
    const char *name; /* for messages: the path, or "standard output" */
} ht_cli_out;
/* path NULL or "-": standard output. 0, or HT_CLI_EXIT_IO (printed). */
int ht_cli_out_open(ht_cli_out *out, const char *path);
void ht_cli_out_flush(ht_cli_out *out);
/* Flushes and closes; 0, or HT_CLI_EXIT_IO with "cannot write to ...: ..." printed. */
int ht_cli_out_close(ht_cli_out *out);
void ht_cli_out_write(ht_cli_out *out, const void *data, size_t length);
void ht_cli_out_str(ht_cli_out *out, const char *text);
void ht_cli_out_char(ht_cli_out *out, char c);
void ht_cli_out_u64(ht_cli_out *out, uint64_t value);           /* decimal */
void ht_cli_out_hex(ht_cli_out *out, uint64_t value);           /* 0x and lower-case hex digits */
void ht_cli_out_json_string(ht_cli_out *out, const char *text); /* quoted and escaped */
void ht_cli_out_printf(ht_cli_out *out, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

#endif
