/* cli_common.c — the helpers every subcommand shares (contracts in cli_common.h): messages,
 * getopt with heaptrail's wording, value parsers, the progress line, trace input with clear
 * errors, event filters, buffered output with hand-written number formatting (dump writes
 * millions of lines a second through it), and the live-block set.
 *
 * The live set is an open-addressing table with linear probing and backward-shift deletion
 * (no tombstones), keyed by address, grown at 50% load. */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analyze/units.h"
#include "cli/durations.h"
#include "trace/options.h"

#define OUT_BUFFER_SIZE (256u << 10)
#define INPUT_BATCH 4096u

/* ---- messages ---- */

static const char *command_name = "";

void ht_cli_set_command(const char *name)
{
    command_name = name ? name : "";
}

const char *ht_cli_command(void)
{
    return command_name;
}

void ht_cli_message_prefix(void)
{
    if (command_name[0])
        fprintf(stderr, "heaptrail: %s: ", command_name);
    else
        fputs("heaptrail: ", stderr);
}

static void message(const char *kind, const char *format, va_list ap)
{
    fflush(stdout);
    ht_cli_message_prefix();
    if (kind)
        fputs(kind, stderr);
    vfprintf(stderr, format, ap);
    fputc('\n', stderr);
}

void ht_cli_error(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    message(NULL, format, ap);
    va_end(ap);
}

void ht_cli_warning(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    message("warning: ", format, ap);
    va_end(ap);
}

int ht_cli_usage_error(const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    message(NULL, format, ap);
    va_end(ap);
    if (command_name[0])
        fprintf(stderr, "Try 'heaptrail %s --help'.\n", command_name);
    else
        fputs("Try 'heaptrail --help'.\n", stderr);
    return HT_CLI_EXIT_USAGE;
}

/* ---- options ---- */

int ht_cli_getopt(int argc, char **argv, const char *short_options,
                  const struct option *long_options)
{
    char options[128];
    /* ':' first (after '+'): a missing value is reported as ':' rather than '?'. */
    bool stop_at_operand = short_options[0] == '+';
    snprintf(options, sizeof options, "%s:%s", stop_at_operand ? "+" : "",
             short_options + (stop_at_operand ? 1 : 0));
    opterr = 0;
    int previous = optind;
    int c = getopt_long(argc, argv, options, long_options, NULL);
    if (c != '?' && c != ':')
        return c;
    /* getopt_long leaves optind past the bad word; argv[previous] (or the word before optind)
     * names it. */
    const char *word = previous < argc ? argv[previous] : argv[argc - 1];
    if (optind > previous && optind - 1 < argc && optind - 1 > previous)
        word = argv[optind - 1];
    if (c == ':') {
        if (optopt && optopt < 0x100 && word[0] == '-' && word[1] != '-')
            ht_cli_usage_error("option '-%c' needs a value", optopt);
        else
            ht_cli_usage_error("option '%.*s' needs a value", (int)strcspn(word, "="), word);
    } else if (optopt && optopt < 0x100 && !(word[0] == '-' && word[1] == '-')) {
        ht_cli_usage_error("unknown option '-%c'", optopt);
    } else if (optopt) {
        ht_cli_usage_error("option '%.*s' takes no value", (int)strcspn(word, "="), word);
    } else {
        ht_cli_usage_error("unknown option '%.*s'", (int)strcspn(word, "="), word);
    }
    return '?';
}

/* Hexadecimal digits only: 0, -EINVAL or -ERANGE. */
static int parse_hex(const char *text, uint64_t *out)
{
    uint64_t value = 0;
    const char *p = text;
    for (; isxdigit((unsigned char)*p); p++) {
        if (value >> 60)
            return -ERANGE;
        value = value << 4 |
                (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : (tolower(*p) - 'a' + 10));
    }
    if (p == text || *p)
        return -EINVAL;
    *out = value;
    return 0;
}

static int bad_value(const char *option, const char *text, const char *why)
{
    return ht_cli_usage_error("bad value '%s' for %s: %s", text, option, why);
}

/* The tracer's count grammar (src/trace/options.c), or 0x and hexadecimal digits (heap
 * handles); never octal. */
int ht_cli_parse_u64(const char *option, const char *text, uint64_t *out)
{
    int error;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X'))
        error = parse_hex(text + 2, out);
    else
        error = hti_parse_count(text, out);
    if (error == -ERANGE)
        return bad_value(option, text, "out of range (more than 64 bits)");
    if (error)
        return bad_value(option, text, "expected a non-negative number");
    return 0;
}

/* The tracer's size grammar (src/trace/options.c): a size means the same in every option. */
int ht_cli_parse_size(const char *option, const char *text, uint64_t *out)
{
    int error = hti_parse_size(text, out);
    if (error == -ERANGE)
        return bad_value(option, text, "out of range (more than 64 bits)");
    if (error)
        return bad_value(option, text, HTI_NOT_A_SIZE);
    return 0;
}

int ht_cli_parse_choice(const char *option, const char *text, const char *const *choices,
                        int *index)
{
    for (int i = 0; choices[i]; i++) {
        if (!strcmp(text, choices[i])) {
            *index = i;
            return 0;
        }
    }
    char list[256];
    size_t n = 0;
    list[0] = '\0';
    for (int i = 0; choices[i] && n < sizeof list; i++)
        n += (size_t)snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", choices[i]);
    return ht_cli_usage_error("bad value '%s' for %s: expected one of %s", text, option, list);
}

/* ---- progress ---- */

static int progress_mode = -1; /* -1: automatic, 0: never, 1: always */

void ht_cli_progress_option(int id)
{
    progress_mode = id == HT_CLI_OPT_PROGRESS ? 1 : 0;
}

/* ---- input ---- */

/* Prints the reader's warnings that were not printed yet. */
static void print_new_warnings(ht_cli_input *in)
{
    const char *warnings = ht_reader_warnings(in->reader);
    size_t length = strlen(warnings);
    if (length <= in->warnings_seen)
        return;
    const char *line = warnings + in->warnings_seen;
    while (*line) {
        size_t n = strcspn(line, "\n");
        if (n)
            ht_cli_warning("%s: %.*s", in->path, (int)n, line);
        line += n;
        if (*line == '\n')
            line++;
    }
    in->warnings_seen = length;
}

int ht_cli_input_open(ht_cli_input *in, const char *path)
{
    memset(in, 0, sizeof *in);
    in->path = path;
    bool follow = strcmp(path, "-") == 0; /* a trace streamed to standard input */
    struct stat st;
    if (!follow && stat(path, &st) != 0) {
        ht_cli_error("cannot open '%s': %s", path, strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    if (!follow && S_ISDIR(st.st_mode)) {
        ht_cli_error("cannot open '%s': %s", path, strerror(EISDIR));
        return HT_CLI_EXIT_IO;
    }
    if (!follow && !S_ISREG(st.st_mode)) {
        ht_cli_error("cannot open '%s': not a regular file", path);
        return HT_CLI_EXIT_IO;
    }
    char error[512];
    error[0] = '\0';
    in->reader = follow ? ht_reader_follow(STDIN_FILENO, HT_READER_WAIT, -1, error, sizeof error)
                        : ht_reader_open(path, error, sizeof error);
    if (!in->reader) {
        int e = errno;
        if (follow && e != EBADMSG) {
            ht_cli_error("cannot read standard input: %s", error);
            return HT_CLI_EXIT_IO;
        }
        if (e == EBADMSG) {
            ht_cli_error("'%s' is not a readable heaptrail trace: %s", path, error);
            return HT_CLI_EXIT_MALFORMED;
        }
        if (e == ENOMEM) {
            ht_cli_error("cannot read '%s': out of memory", path);
            return HT_CLI_EXIT_IO;
        }
        if (e == EIO) {
            ht_cli_error("cannot read '%s': %s", path, error);
            return HT_CLI_EXIT_IO;
        }
        /* open(2) failures come as "path: reason": say it our way. */
        if (access(path, R_OK) != 0) {
            ht_cli_error("cannot open '%s': %s", path, strerror(errno));
            return HT_CLI_EXIT_IO;
        }
        ht_cli_error("'%s' is not a readable heaptrail trace: %s", path,
                     error[0] ? error : strerror(e));
        return HT_CLI_EXIT_MALFORMED;
    }
    in->info = ht_reader_info(in->reader);
    in->capacity = INPUT_BATCH;
    in->events = malloc(in->capacity * sizeof *in->events);
    if (!in->events) {
        ht_reader_close(in->reader);
        in->reader = NULL;
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    print_new_warnings(in);
    /* The events go out while the line is up: not on the terminal it is drawn on. */
    int mode = progress_mode < 0 && isatty(STDOUT_FILENO) ? 0 : progress_mode;
    hti_progress_init(&in->progress, mode, command_name, "events", in->info->events);
    return HT_CLI_EXIT_OK;
}

size_t ht_cli_input_next(ht_cli_input *in, const ht_event **events)
{
    if (in->status)
        return 0;
    long n = ht_reader_read(in->reader, in->events, in->capacity);
    if (n <= 0) {
        in->status = n < 0 ? (int)n : 0;
        hti_progress_done(&in->progress); /* before the command prints its results */
        return 0;
    }
    in->delivered += (uint64_t)n;
    hti_progress_update(&in->progress, in->delivered);
    *events = in->events;
    return (size_t)n;
}

int ht_cli_input_close(ht_cli_input *in)
{
    int code = HT_CLI_EXIT_OK;
    if (!in->reader)
        return code;
    hti_progress_done(&in->progress);
    print_new_warnings(in);
    if (in->status) {
        ht_cli_error("'%s': %s (after %llu events)", in->path, ht_reader_error(in->reader),
                     (unsigned long long)in->delivered);
        code = in->status == -EIO || in->status == -ENOMEM ? HT_CLI_EXIT_IO : HT_CLI_EXIT_MALFORMED;
    }
    ht_reader_close(in->reader);
    free(in->events);
    in->reader = NULL;
    in->events = NULL;
    return code;
}

/* ---- filters ---- */

static const struct {
    const char *name;
    unsigned kind;
} kind_names[] = {
    {"ALLOC", HT_EVENT_ALLOC},
    {"FREE", HT_EVENT_FREE},
    {"REALLOC", HT_EVENT_REALLOC},
    {"HEAP_CREATE", HT_EVENT_HEAP_CREATE},
    {"HEAP_DESTROY", HT_EVENT_HEAP_DESTROY},
    {"HEAP_EXPAND", HT_EVENT_HEAP_EXPAND},
    {"HEAP_CONTRACT", HT_EVENT_HEAP_CONTRACT},
    {"RUNDOWN_HEAP", HT_EVENT_RUNDOWN_HEAP},
    {"RUNDOWN_BLOCK", HT_EVENT_RUNDOWN_BLOCK},
    {"LOST", HT_EVENT_LOST},
};

void ht_cli_filter_init(ht_cli_filter *f)
{
    memset(f, 0, sizeof *f);
}

static bool word_equals(const char *word, size_t length, const char *name)
{
    return strlen(name) == length && strncasecmp(word, name, length) == 0;
}

static int parse_kinds(const char *option, const char *text, uint64_t *mask)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, ",");
        bool found = n == 0;
        for (size_t i = 0; !found && i < sizeof kind_names / sizeof kind_names[0]; i++) {
            if (word_equals(p, n, kind_names[i].name)) {
                *mask |= HT_EVENT_BIT(kind_names[i].kind);
                found = true;
            }
        }
        if (!found && word_equals(p, n, "blocks")) {
            *mask |= HT_EVENT_MASK_BLOCKS;
            found = true;
        }
        if (!found)
            return ht_cli_usage_error("bad value '%.*s' for %s: expected event names such as "
                                      "ALLOC,FREE,REALLOC",
                                      (int)n, p, option);
        p += n;
        if (*p == ',')
            p++;
    }
    if (*mask == 0)
        return ht_cli_usage_error("bad value '%s' for %s: no event names", text, option);
    return 0;
}

static int parse_sources(const char *option, const char *text, uint32_t *mask)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, ",");
        bool found = n == 0;
        for (unsigned source = MEMORY_FROM_LOOKASIDE; !found && source <= MEMORY_FROM_SEGMENT_HEAP;
             source++) {
            const char *full = ht_source_name(source);
            const char *short_name = full + strlen("MEMORY_FROM_");
            char digit[2] = {(char)('0' + source), '\0'};
            if (word_equals(p, n, full) || word_equals(p, n, short_name) ||
                word_equals(p, n, digit)) {
                *mask |= 1u << source;
                found = true;
            }
        }
        if (!found)
            return ht_cli_usage_error("bad value '%.*s' for %s: expected LOOKASIDE, LOWFRAG, "
                                      "MAINPATH, SLOWPATH, INVALID or SEGMENT_HEAP",
                                      (int)n, p, option);
        p += n;
        if (*p == ',')
            p++;
    }
    if (*mask == 0)
        return ht_cli_usage_error("bad value '%s' for %s: no Source names", text, option);
    return 0;
}

/* A duration of the command line's grammar (durations.c) relative to the trace start, or
 * "@123456" (absolute ns, decimal). */
static int parse_time(const char *option, const char *text, uint64_t *ns, bool *absolute)
{
    *absolute = text[0] == '@';
    if (*absolute ? hti_parse_count(text + 1, ns) != 0 : hti_parse_duration(text, ns) != 0)
        return bad_value(option, text, "expected a time such as 1.5, 250ms or @NS");
    return 0;
}

int ht_cli_filter_option(ht_cli_filter *f, int id, const char *value)
{
    int error = 0;
    uint64_t number = 0;
    switch (id) {
    case HT_CLI_OPT_EVENT: error = parse_kinds("--event", value, &f->kinds); break;
    case HT_CLI_OPT_SOURCE: error = parse_sources("--source", value, &f->sources); break;
    case HT_CLI_OPT_HEAP:
        error = ht_cli_parse_u64("--heap", value, &f->heap);
        f->has_heap = true;
        break;
    case HT_CLI_OPT_THREAD:
        error = ht_cli_parse_u64("--thread", value, &number);
        if (!error && number > UINT32_MAX)
            error = bad_value("--thread", value, "not a thread id");
        f->thread = (uint32_t)number;
        f->has_thread = true;
        break;
    case HT_CLI_OPT_MIN_SIZE:
        error = ht_cli_parse_size("--min-size", value, &f->min_size);
        f->has_min = true;
        break;
    case HT_CLI_OPT_MAX_SIZE:
        error = ht_cli_parse_size("--max-size", value, &f->max_size);
        f->has_max = true;
        break;
    case HT_CLI_OPT_FROM:
        error = parse_time("--from", value, &f->from_ns, &f->from_absolute);
        f->has_from = true;
        break;
    case HT_CLI_OPT_TO:
        error = parse_time("--to", value, &f->to_ns, &f->to_absolute);
        f->has_to = true;
        break;
    default: error = ht_cli_usage_error("internal error: unknown filter option %d", id); break;
    }
    f->any = true;
    return error;
}

void ht_cli_filter_resolve(ht_cli_filter *f, const ht_trace_info *info)
{
    if (f->has_from && !f->from_absolute) {
        f->from_ns += info->start_ns;
        f->from_absolute = true;
    }
    if (f->has_to && !f->to_absolute) {
        f->to_ns += info->start_ns;
        f->to_absolute = true;
    }
}

bool ht_cli_event_size(const ht_event *e, uint64_t *size)
{
    switch (e->kind) {
    case HT_EVENT_ALLOC: *size = e->u.alloc.Size; return true;
    case HT_EVENT_REALLOC: *size = e->u.realloc.NewSize; return true;
    case HT_EVENT_RUNDOWN_BLOCK: *size = e->u.rundown_block.Size; return true;
    default: return false;
    }
}

unsigned ht_cli_event_source(const ht_event *e)
{
    switch (e->kind) {
    case HT_EVENT_ALLOC: return e->u.alloc.Source;
    case HT_EVENT_FREE: return e->u.free.Source;
    case HT_EVENT_REALLOC: return e->u.realloc.Source;
    case HT_EVENT_RUNDOWN_BLOCK: return e->u.rundown_block.Source;
    default: return 0;
    }
}

bool ht_cli_filter_match(const ht_cli_filter *f, const ht_event *e)
{
    if (!f->any)
        return true;
    if (f->kinds && !(f->kinds & HT_EVENT_BIT(e->kind)))
        return false;
    if (f->sources) {
        unsigned source = ht_cli_event_source(e);
        if (source == 0 || source > 31 || !(f->sources & (1u << source)))
            return false;
    }
    if (f->has_heap && ht_event_heap(e) != f->heap)
        return false;
    if (f->has_thread && e->thread_id != f->thread)
        return false;
    if (f->has_min || f->has_max) {
        uint64_t size;
        if (!ht_cli_event_size(e, &size))
            return false;
        if (f->has_min && size < f->min_size)
            return false;
        if (f->has_max && size > f->max_size)
            return false;
    }
    if (f->has_from && e->timestamp_ns < f->from_ns)
        return false;
    if (f->has_to && e->timestamp_ns >= f->to_ns)
        return false;
    return true;
}

bool ht_cli_filter_done(const ht_cli_filter *f, const ht_event *e)
{
    return f->has_to && e->timestamp_ns >= f->to_ns;
}

/* ---- output ---- */

int ht_cli_out_open(ht_cli_out *out, const char *path)
{
    memset(out, 0, sizeof *out);
    out->buffer = malloc(OUT_BUFFER_SIZE);
    if (!out->buffer) {
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    if (!path || !strcmp(path, "-")) {
        out->fd = STDOUT_FILENO;
        out->name = "standard output";
        return 0;
    }
    out->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out->fd < 0) {
        ht_cli_error("cannot create '%s': %s", path, strerror(errno));
        free(out->buffer);
        out->buffer = NULL;
        return HT_CLI_EXIT_IO;
    }
    out->own_fd = true;
    out->name = path;
    return 0;
}

void ht_cli_out_flush(ht_cli_out *out)
{
    size_t done = 0;
    while (done < out->length && !out->error) {
        ssize_t n = write(out->fd, out->buffer + done, out->length - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            out->error = n < 0 ? errno : EIO;
        else
            done += (size_t)n;
    }
    out->length = 0;
}

int ht_cli_out_close(ht_cli_out *out)
{
    if (!out->buffer)
        return 0;
    ht_cli_out_flush(out);
    if (out->own_fd && close(out->fd) != 0 && !out->error)
        out->error = errno;
    free(out->buffer);
    out->buffer = NULL;
    if (out->error) {
        ht_cli_error("cannot write to %s%s%s: %s", out->own_fd ? "'" : "", out->name,
                     out->own_fd ? "'" : "", strerror(out->error));
        return HT_CLI_EXIT_IO;
    }
    return 0;
}

void ht_cli_out_write(ht_cli_out *out, const void *data, size_t length)
{
    if (out->length + length > OUT_BUFFER_SIZE) {
        ht_cli_out_flush(out);
        if (length > OUT_BUFFER_SIZE) {
            while (length && !out->error) {
                ssize_t n = write(out->fd, data, length);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0) {
                    out->error = n < 0 ? errno : EIO;
                    break;
                }
                data = (const char *)data + n;
                length -= (size_t)n;
            }
            return;
        }
    }
    memcpy(out->buffer + out->length, data, length);
    out->length += length;
}

void ht_cli_out_str(ht_cli_out *out, const char *text)
{
    ht_cli_out_write(out, text, strlen(text));
}

void ht_cli_out_char(ht_cli_out *out, char c)
{
    if (out->length + 1 > OUT_BUFFER_SIZE)
        ht_cli_out_flush(out);
    out->buffer[out->length++] = c;
}

static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930"
    "31323334353637383940414243444546474849505152535455565758596061"
    "62636465666768697071727374757677787980818283848586878889909192"
    "93949596979899";

void ht_cli_out_u64(ht_cli_out *out, uint64_t value)
{
    char text[24];
    char *p = text + sizeof text;
    while (value >= 100) {
        unsigned pair = (unsigned)(value % 100) * 2;
        value /= 100;
        *--p = digit_pairs[pair + 1];
        *--p = digit_pairs[pair];
    }
    if (value >= 10) {
        unsigned pair = (unsigned)value * 2;
        *--p = digit_pairs[pair + 1];
        *--p = digit_pairs[pair];
    } else {
        *--p = (char)('0' + value);
    }
    ht_cli_out_write(out, p, (size_t)(text + sizeof text - p));
}

void ht_cli_out_hex(ht_cli_out *out, uint64_t value)
{
    static const char digits[] = "0123456789abcdef";
    char text[18];
    char *p = text + sizeof text;
    do {
        *--p = digits[value & 15];
        value >>= 4;
    } while (value);
    *--p = 'x';
    *--p = '0';
    ht_cli_out_write(out, p, (size_t)(text + sizeof text - p));
}

void ht_cli_out_json_string(ht_cli_out *out, const char *text)
{
    ht_cli_out_char(out, '"');
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
        if (*c == '"' || *c == '\\') {
            ht_cli_out_char(out, '\\');
            ht_cli_out_char(out, (char)*c);
        } else if (*c < 0x20 || *c == 0x7f) {
            char escape[8];
            snprintf(escape, sizeof escape, "\\u%04x", *c);
            ht_cli_out_str(out, escape);
        } else {
            ht_cli_out_char(out, (char)*c);
        }
    }
    ht_cli_out_char(out, '"');
}

void ht_cli_out_printf(ht_cli_out *out, const char *format, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(text, sizeof text, format, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof text) {
        ht_cli_out_write(out, text, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big)
        return;
    va_start(ap, format);
    vsnprintf(big, (size_t)n + 1, format, ap);
    va_end(ap);
    ht_cli_out_write(out, big, (size_t)n);
    free(big);
}

void ht_cli_expand_pid(const char *pattern, long pid, char *out, size_t size)
{
    size_t n = 0;
    for (const char *c = pattern; *c && n + 1 < size; c++) {
        if (c[0] == '%' && c[1] == 'p') {
            int w = snprintf(out + n, size - n, "%ld", pid);
            n += w > 0 ? (size_t)w : 0;
            if (n >= size)
                n = size - 1;
            c++;
        } else {
            out[n++] = *c;
        }
    }
    out[n] = '\0';
}

size_t ht_cli_trace_stem(const char *path)
{
    size_t length = strlen(path);
    return length > 6 && strcmp(path + length - 6, ".trace") == 0 ? length - 6 : length;
}
