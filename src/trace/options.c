/* options.c — the values of heaptrail's options (contract in options.h): one grammar for
 * numbers and sizes, one table of options with their ranges and the words that explain a
 * refusal, the environment as the tracer reads it. Values are checked strictly — no sign, no
 * space, no trailing characters, no silent clamping or wrapping — because a value that is
 * quietly bent into something else traces a different program run than the one asked for.
 * Messages are built by hand into the caller's buffer: this runs in library constructors, in
 * the control listener (which never uses the heap) and in the fuzzers. */
#include "options.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "heaptrail/events.h"

/* ---- the grammar ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Digits of text[0, length) as a number; the caller checked they are digits. */
static int digits_value(const char *text, size_t length, uint64_t *out)
{
    uint64_t value = 0;
    for (size_t i = 0; i < length; i++) {
        unsigned digit = (unsigned)(text[i] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -ERANGE;
        value = value * 10 + digit;
    }
    *out = value;
    return 0;
}

static size_t digits_length(const char *text)
{
    size_t n = 0;
    while (is_digit(text[n]))
        n++;
    return n;
}

int hti_parse_count(const char *text, uint64_t *out)
{
    if (!text)
        return -EINVAL;
    size_t n = digits_length(text);
    if (n == 0 || text[n] != '\0')
        return -EINVAL;
    return digits_value(text, n, out);
}

int hti_parse_size(const char *text, uint64_t *out)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } suffixes[] = {{"", 0},   {"k", 10},   {"K", 10}, {"KiB", 10}, {"m", 20},
                    {"M", 20}, {"MiB", 20}, {"g", 30}, {"G", 30},   {"GiB", 30}};
    if (!text)
        return -EINVAL;
    size_t n = digits_length(text);
    if (n == 0)
        return -EINVAL;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        if (strcmp(text + n, suffixes[i].suffix) != 0)
            continue;
        uint64_t value;
        int error = digits_value(text, n, &value);
        if (error)
            return error;
        unsigned shift = suffixes[i].shift;
        if (shift && value > (UINT64_MAX >> shift))
            return -ERANGE;
        *out = value << shift;
        return 0;
    }
    return -EINVAL;
}

int hti_parse_signal(const char *text, uint64_t *out)
{
    if (!text)
        return -EINVAL;
    uint64_t n = 0;
    if (!strncmp(text, "SIG", 3))
        text += 3;
    bool min = !strncmp(text, "RTMIN", 5), max = !strncmp(text, "RTMAX", 5);
    if (min || max) {
        const char *rest = text + 5;
        if (*rest && (*rest != (min ? '+' : '-') || hti_parse_count(rest + 1, &n) != 0))
            return -EINVAL;
        if (n > (uint64_t)(SIGRTMAX - SIGRTMIN))
            return -ERANGE;
        *out = min ? (uint64_t)SIGRTMIN + n : (uint64_t)SIGRTMAX - n;
        return 0;
    }
    int error = hti_parse_count(text, &n);
    if (error)
        return error;
    if (n < (uint64_t)SIGRTMIN || n > (uint64_t)SIGRTMAX)
        return -ERANGE;
    *out = n;
    return 0;
}

int hti_parse_events(const char *text, uint64_t *mask)
{
    static const struct {
        const char *name;
        uint64_t bits;
    } kinds[] = {{"alloc", HT_EVENT_BIT(HT_EVENT_ALLOC)},
                 {"free", HT_EVENT_BIT(HT_EVENT_FREE)},
                 {"realloc", HT_EVENT_BIT(HT_EVENT_REALLOC)},
                 {"heap", HT_EVENT_MASK_HEAPS},
                 {"all", HT_EVENT_MASK_ALL}};
    if (!text)
        return -EINVAL;
    uint64_t result = 0;
    for (;;) {
        size_t n = strcspn(text, ",");
        size_t i = 0;
        while (i < sizeof kinds / sizeof kinds[0] &&
               (strlen(kinds[i].name) != n || strncmp(text, kinds[i].name, n) != 0))
            i++;
        if (i == sizeof kinds / sizeof kinds[0])
            return -EINVAL; /* an unknown or empty item */
        result |= kinds[i].bits;
        if (text[n] == '\0')
            break;
        text += n + 1;
    }
    *mask = result;
    return 0;
}

/* ---- the table ---- */

typedef enum kind {
    KIND_PATH,      /* a non-empty path, HTI_OPTION_PATH_MAX bytes once %p is replaced */
    KIND_DIRECTORY, /* an absolute directory whose <dir>/<pid>.sock fits a socket address */
    KIND_COUNT,
    KIND_SIZE,
    KIND_FLAG,
    KIND_MODE,
    KIND_UNWIND,
    KIND_EVENTS,
    KIND_SIGNAL,
} kind;

/* The longest socket directory: sun_path holds "<dir>/<7-digit pid>.sock" and a NUL. */
#define SOCKET_DIRECTORY_MAX                                                                       \
    (sizeof(((struct sockaddr_un *)0)->sun_path) - 1 - (sizeof "/4194304.sock" - 1))

typedef struct spec {
    const char *variable;
    const char *key; /* control protocol key, NULL if none */
    kind kind;
    bool empty_is_unset; /* the environment: an empty value means "not set" */
    uint64_t min, max;   /* counts and sizes */
    const char *form;    /* why a value not of the option's form is refused */
    const char *range;   /* why a value of the form but outside [min, max] is refused */
} spec;

#define NOT_A_SIZE HTI_NOT_A_SIZE
#define NOT_A_FLAG "not a flag (expected 0 or 1)"

static const spec specs[HTI_OPTION_COUNT] = {
    [HTI_OPTION_OUTPUT] = {"HEAPTRAIL_OUTPUT", "output", KIND_PATH, true, 0, 0,
                           "not a path (empty)",
                           "too long (at most 4095 bytes once %p is replaced by the pid)"},
    [HTI_OPTION_FD] = {"HEAPTRAIL_FD", NULL, KIND_COUNT, true, 0, INT_MAX,
                       "not a descriptor number (expected e.g. 3)",
                       "out of range (expected 0 to 2147483647)"},
    [HTI_OPTION_MODE] = {"HEAPTRAIL_MODE", "mode", KIND_MODE, false, 0, 0,
                         "expected one of block, discard, ring", NULL},
    [HTI_OPTION_BUFFER] = {"HEAPTRAIL_BUFFER", "buffer", KIND_SIZE, false, HTI_OPTION_BUFFER_MIN,
                           HTI_OPTION_BUFFER_MAX, NOT_A_SIZE, "out of range (expected 64K to 4G)"},
    [HTI_OPTION_STACKS] = {"HEAPTRAIL_STACKS", "stacks", KIND_COUNT, false, 0, HT_TRACE_MAX_DEPTH,
                           "not a number of frames (expected 1 to 128 frames, or 0 for none)",
                           "out of range (expected 1 to 128 frames, or 0 for none)"},
    [HTI_OPTION_FREE_STACKS] = {"HEAPTRAIL_FREE_STACKS", "free_stacks", KIND_FLAG, false, 0, 0,
                                NOT_A_FLAG, NULL},
    [HTI_OPTION_UNWIND] = {"HEAPTRAIL_UNWIND", "unwind", KIND_UNWIND, false, 0, 0,
                           "expected one of libunwind, fp", NULL},
    [HTI_OPTION_SAMPLE] = {"HEAPTRAIL_SAMPLE", "sample", KIND_SIZE, false, 0, HTI_OPTION_SAMPLE_MAX,
                           NOT_A_SIZE,
                           "out of range (expected 1 to 1G bytes, or 0 for no sampling)"},
    [HTI_OPTION_EVENTS] = {"HEAPTRAIL_EVENTS", "events", KIND_EVENTS, false, 0, 0,
                           "not an event list (expected e.g. alloc,free; from alloc, free, "
                           "realloc, heap, all)",
                           NULL},
    [HTI_OPTION_MIN_SIZE] = {"HEAPTRAIL_MIN_SIZE", "min_size", KIND_SIZE, false, 0, UINT64_MAX,
                             NOT_A_SIZE, "out of range (more than 64 bits)"},
    [HTI_OPTION_MAX_SIZE] = {"HEAPTRAIL_MAX_SIZE", "max_size", KIND_SIZE, false, 0, UINT64_MAX,
                             NOT_A_SIZE, "out of range (more than 64 bits)"},
    [HTI_OPTION_COMPRESS] = {"HEAPTRAIL_COMPRESS", "compress", KIND_COUNT, false, 0,
                             HTI_OPTION_COMPRESS_MAX,
                             "not a zstd level (expected 1 to 19, or 0 for none)",
                             "out of range (expected 1 to 19, or 0 for none)"},
    [HTI_OPTION_FLUSH_MS] = {"HEAPTRAIL_FLUSH_MS", "flush_ms", KIND_COUNT, false, 1,
                             HTI_OPTION_FLUSH_MS_MAX,
                             "not a number of milliseconds (expected 1 to 60000)",
                             "out of range (expected 1 to 60000 milliseconds)"},
    [HTI_OPTION_FOLLOW_FORKS] = {"HEAPTRAIL_FOLLOW_FORKS", "follow_forks", KIND_FLAG, false, 0, 0,
                                 NOT_A_FLAG, NULL},
    [HTI_OPTION_NO_RUNDOWN] = {"HEAPTRAIL_NO_RUNDOWN", "no_rundown", KIND_FLAG, false, 0, 0,
                               NOT_A_FLAG, NULL},
    [HTI_OPTION_LEAK_SCAN] = {"HEAPTRAIL_LEAK_SCAN", "leak_scan", KIND_FLAG, false, 0, 0,
                              NOT_A_FLAG, NULL},
    [HTI_OPTION_OWNER_PID] = {"HEAPTRAIL_OWNER_PID", NULL, KIND_COUNT, false, 1, HTI_OPTION_PID_MAX,
                              "not a process id (expected e.g. 4242)",
                              "out of range (expected 1 to 4194304)"},
    [HTI_OPTION_CONTROL] = {"HEAPTRAIL_CONTROL", NULL, KIND_FLAG, false, 0, 0, NOT_A_FLAG, NULL},
    [HTI_OPTION_CONTROL_DIR] = {"HEAPTRAIL_CONTROL_DIR", NULL, KIND_DIRECTORY, false, 0, 0,
                                "not an absolute path",
                                "too long for a socket path (at most 94 bytes)"},
    [HTI_OPTION_SIGNAL] = {"HEAPTRAIL_SIGNAL", NULL, KIND_SIGNAL, false, 0, 0,
                           "not a real-time signal (expected e.g. RTMIN+7, RTMAX-2 or 41)",
                           "out of range (expected a signal from SIGRTMIN to SIGRTMAX)"},
    [HTI_OPTION_NO_TSC] = {"HEAPTRAIL_NO_TSC", NULL, KIND_FLAG, false, 0, 0, NOT_A_FLAG, NULL},
    [HTI_OPTION_TERMINATE_ON_CORRUPTION] = {"HEAPTRAIL_TERMINATE_ON_CORRUPTION", NULL, KIND_FLAG,
                                            false, 0, 0, NOT_A_FLAG, NULL},
};

_Static_assert(SOCKET_DIRECTORY_MAX == 94, "the CONTROL_DIR message names the limit");

static bool valid_option(hti_option option)
{
    return (unsigned)option < HTI_OPTION_COUNT;
}

const char *hti_option_variable(hti_option option)
{
    return valid_option(option) ? specs[option].variable : NULL;
}

const char *hti_option_key(hti_option option)
{
    return valid_option(option) ? specs[option].key : NULL;
}

int hti_option_by_key(const char *key)
{
    for (int i = 0; i < HTI_OPTION_COUNT; i++)
        if (specs[i].key && !strcmp(specs[i].key, key))
            return i;
    return -1;
}

static int choice(const char *text, const char *const *names, uint64_t *out)
{
    for (uint64_t i = 0; names[i]; i++) {
        if (!strcmp(text, names[i])) {
            *out = i;
            return 0;
        }
    }
    return -EINVAL;
}

/* The length of an output pattern once every "%p" is a 7-digit pid, and ".PID" is appended
 * (a fork child's name for a pattern without "%p"). */
static size_t expanded_length(const char *pattern)
{
    size_t length = strlen(pattern) + 8, pids = 0;
    for (const char *c = pattern; (c = strstr(c, "%p")) != NULL; c += 2)
        pids++;
    return length + pids * 5;
}

static int refuse(int error, const char *why, const char **out)
{
    if (out)
        *out = why;
    return error;
}

int hti_option_value_parse(hti_option option, const char *text, hti_option_value *value,
                           const char **why)
{
    static const char *const modes[] = {"block", "discard", "ring", NULL};
    static const char *const unwinders[] = {"libunwind", "fp", NULL};
    if (!valid_option(option))
        return refuse(-EINVAL, "not an option", why);
    const spec *s = &specs[option];
    if (!text)
        return refuse(-EINVAL, s->form, why);
    value->number = 0;
    value->text = NULL;
    int error = 0;
    switch (s->kind) {
    case KIND_PATH:
        if (!*text)
            return refuse(-EINVAL, s->form, why);
        if (expanded_length(text) > HTI_OPTION_PATH_MAX)
            return refuse(-ERANGE, s->range, why);
        value->text = text;
        return 0;
    case KIND_DIRECTORY:
        if (text[0] != '/')
            return refuse(-EINVAL, s->form, why);
        if (strlen(text) > SOCKET_DIRECTORY_MAX)
            return refuse(-ERANGE, s->range, why);
        value->text = text;
        return 0;
    case KIND_COUNT:
    case KIND_SIZE:
        error = s->kind == KIND_COUNT ? hti_parse_count(text, &value->number)
                                      : hti_parse_size(text, &value->number);
        if (error == -EINVAL)
            return refuse(-EINVAL, s->form, why);
        if (error || value->number < s->min || value->number > s->max)
            return refuse(-ERANGE, s->range, why);
        return 0;
    case KIND_FLAG:
        if (strcmp(text, "0") != 0 && strcmp(text, "1") != 0)
            return refuse(-EINVAL, s->form, why);
        value->number = text[0] == '1';
        return 0;
    case KIND_MODE: error = choice(text, modes, &value->number); break;
    case KIND_UNWIND:
        error = choice(text, unwinders, &value->number);
        value->number = value->number ? HT_TRACE_UNWIND_FRAME_POINTER : HT_TRACE_UNWIND_LIBUNWIND;
        break;
    case KIND_EVENTS: error = hti_parse_events(text, &value->number); break;
    case KIND_SIGNAL:
        error = hti_parse_signal(text, &value->number);
        if (error == -ERANGE)
            return refuse(-ERANGE, s->range, why);
        break;
    }
    return error ? refuse(-EINVAL, s->form, why) : 0;
}

int hti_option_parse(hti_option option, const char *text, ht_trace_options *o, const char **why)
{
    hti_option_value value;
    int error = hti_option_value_parse(option, text, &value, why);
    if (error)
        return error;
    uint64_t n = value.number;
    switch (option) {
    case HTI_OPTION_OUTPUT: o->output_path = value.text; break;
    case HTI_OPTION_FD: o->output_fd = (int)n; break;
    case HTI_OPTION_MODE: o->mode = (ht_trace_mode)n; break;
    case HTI_OPTION_BUFFER: o->buffer_size = (size_t)n; break;
    case HTI_OPTION_STACKS: o->stack_depth = (unsigned)n; break;
    case HTI_OPTION_FREE_STACKS: o->free_stacks = n != 0; break;
    case HTI_OPTION_UNWIND: o->unwinder = (ht_trace_unwinder)n; break;
    case HTI_OPTION_SAMPLE: o->sample_interval = (size_t)n; break;
    case HTI_OPTION_EVENTS: o->event_mask = n; break;
    case HTI_OPTION_MIN_SIZE: o->min_size = (size_t)n; break;
    case HTI_OPTION_MAX_SIZE: o->max_size = (size_t)n; break;
    case HTI_OPTION_COMPRESS: o->compression_level = (int)n; break;
    case HTI_OPTION_FLUSH_MS: o->flush_interval_ms = (unsigned)n; break;
    case HTI_OPTION_FOLLOW_FORKS: o->follow_forks = n != 0; break;
    case HTI_OPTION_NO_RUNDOWN: o->no_rundown = n != 0; break;
    case HTI_OPTION_LEAK_SCAN: o->leak_scan = n != 0; break;
    default: return refuse(-EINVAL, "not a tracing option", why);
    }
    return 0;
}

int hti_options_check(const ht_trace_options *o, const char **why)
{
    if ((unsigned)o->mode > HT_TRACE_MODE_RING)
        return refuse(-EINVAL, "mode: not a mode", why);
    if ((unsigned)o->unwinder > HT_TRACE_UNWIND_FRAME_POINTER)
        return refuse(-EINVAL, "unwind: not an unwinder", why);
    if (o->stack_depth > HT_TRACE_MAX_DEPTH)
        return refuse(-EINVAL, "stacks: out of range (expected 0 to 128 frames)", why);
    if (o->compression_level < 0 || o->compression_level > HTI_OPTION_COMPRESS_MAX)
        return refuse(-EINVAL, "compress: out of range (expected 0 to 19)", why);
    if (o->buffer_size &&
        (o->buffer_size < HTI_OPTION_BUFFER_MIN || o->buffer_size > HTI_OPTION_BUFFER_MAX))
        return refuse(-EINVAL, "buffer: out of range (expected 64K to 4G)", why);
    if (o->sample_interval > HTI_OPTION_SAMPLE_MAX)
        return refuse(-EINVAL, "sample: out of range (expected 0 to 1G)", why);
    if (o->flush_interval_ms > HTI_OPTION_FLUSH_MS_MAX)
        return refuse(-EINVAL, "flush_ms: out of range (expected 1 to 60000)", why);
    if (o->max_size && o->max_size < o->min_size)
        return refuse(-EINVAL, "max_size is below min_size", why);
    return 0;
}

/* ---- messages ---- */

typedef struct line {
    char *text;
    size_t size, length;
} line;

static void put_char(line *l, char c)
{
    if (l->length + 1 < l->size)
        l->text[l->length++] = c;
    l->text[l->length] = '\0';
}

static void put(line *l, const char *text)
{
    while (text && *text)
        put_char(l, *text++);
}

/* The value in double quotes: '"', '\\' and bytes outside printable ASCII escaped, cut after
 * 64 bytes so that the line stays one readable line whatever the value holds. */
static void put_quoted(line *l, const char *value)
{
    static const char hex[] = "0123456789abcdef";
    put_char(l, '"');
    size_t i = 0;
    for (; value[i] && i < 64; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c == '"' || c == '\\') {
            put_char(l, '\\');
            put_char(l, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            put(l, "\\x");
            put_char(l, hex[c >> 4]);
            put_char(l, hex[c & 15]);
        } else {
            put_char(l, (char)c);
        }
    }
    put_char(l, '"');
    if (value[i])
        put(l, "...");
}

void hti_option_quote(char *out, size_t size, const char *value)
{
    if (!out || size == 0)
        return;
    line l = {out, size, 0};
    out[0] = '\0';
    put_quoted(&l, value);
}

static void refusal(char *message, size_t size, const char *variable, const char *value,
                    const char *why, const char *consequence)
{
    if (!message || size == 0)
        return;
    line l = {message, size, 0};
    message[0] = '\0';
    put(&l, "heaptrail: ");
    put(&l, variable);
    put_char(&l, '=');
    put_quoted(&l, value);
    put(&l, ": ");
    put(&l, why);
    if (consequence) {
        put(&l, "; ");
        put(&l, consequence);
    }
}

void hti_option_report(const char *text)
{
    char buffer[512];
    line l = {buffer, sizeof buffer - 1, 0};
    put(&l, text);
    buffer[l.length++] = '\n';
    (void)!write(STDERR_FILENO, buffer, l.length);
}

/* ---- the environment ---- */

const char *hti_getenv_lookup(const char *name, void *context)
{
    (void)context;
    return getenv(name);
}

int hti_option_lookup(hti_option option, hti_lookup lookup, void *context, hti_option_value *value,
                      const char *consequence, char *message, size_t size)
{
    if (!valid_option(option))
        return -EINVAL;
    const spec *s = &specs[option];
    const char *text = lookup(s->variable, context);
    if (!text || (s->empty_is_unset && !*text))
        return 0;
    const char *why = NULL;
    if (hti_option_value_parse(option, text, value, &why) != 0) {
        refusal(message, size, s->variable, text, why, consequence);
        return -EINVAL;
    }
    return 1;
}

int hti_option_getenv(hti_option option, hti_option_value *value, const char *consequence)
{
    char message[512];
    int found = hti_option_lookup(option, hti_getenv_lookup, NULL, value, consequence, message,
                                  sizeof message);
    if (found < 0)
        hti_option_report(message);
    return found;
}

bool hti_option_env_flag(hti_option option)
{
    hti_option_value value;
    return valid_option(option) && specs[option].kind == KIND_FLAG &&
           hti_option_lookup(option, hti_getenv_lookup, NULL, &value, NULL, NULL, 0) == 1 &&
           value.number == 1;
}

#define NOT_STARTED "tracing not started"

int hti_options_from_environment(ht_trace_options *o, hti_lookup lookup, void *context,
                                 char *message, size_t size)
{
    /* The order in which variables are checked: the first bad one is the one reported. */
    static const hti_option order[] = {
        HTI_OPTION_MODE,        HTI_OPTION_BUFFER,       HTI_OPTION_STACKS,
        HTI_OPTION_UNWIND,      HTI_OPTION_SAMPLE,       HTI_OPTION_EVENTS,
        HTI_OPTION_MIN_SIZE,    HTI_OPTION_MAX_SIZE,     HTI_OPTION_COMPRESS,
        HTI_OPTION_FLUSH_MS,    HTI_OPTION_FOLLOW_FORKS, HTI_OPTION_NO_RUNDOWN,
        HTI_OPTION_FREE_STACKS, HTI_OPTION_LEAK_SCAN,
    };
    if (message && size)
        message[0] = '\0';
    hti_option_value output, fd, value;
    int has_output = hti_option_lookup(HTI_OPTION_OUTPUT, lookup, context, &output, NOT_STARTED,
                                       message, size);
    if (has_output < 0)
        return -EINVAL;
    /* HEAPTRAIL_FD is checked even when HEAPTRAIL_OUTPUT wins: a bad value is a mistake. */
    int has_fd = hti_option_lookup(HTI_OPTION_FD, lookup, context, &fd, NOT_STARTED, message, size);
    if (has_fd < 0)
        return -EINVAL;
    if (!has_output && !has_fd)
        return 0;
    if (has_output) {
        o->output_path = output.text;
    } else {
        int flags = fcntl((int)fd.number, F_GETFL);
        if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY) {
            refusal(message, size, specs[HTI_OPTION_FD].variable,
                    lookup(specs[HTI_OPTION_FD].variable, context),
                    flags < 0 ? "not an open descriptor" : "not open for writing", NOT_STARTED);
            return -EINVAL;
        }
        o->output_fd = (int)fd.number;
    }
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const char *text = lookup(specs[order[i]].variable, context);
        const char *why = NULL;
        if (text && hti_option_parse(order[i], text, o, &why) != 0) {
            refusal(message, size, specs[order[i]].variable, text, why, NOT_STARTED);
            return -EINVAL;
        }
    }
    if (hti_option_lookup(HTI_OPTION_NO_TSC, lookup, context, &value, NOT_STARTED, message, size) <
        0)
        return -EINVAL;
    if (o->max_size && o->max_size < o->min_size) {
        refusal(message, size, specs[HTI_OPTION_MAX_SIZE].variable,
                lookup(specs[HTI_OPTION_MAX_SIZE].variable, context), "below HEAPTRAIL_MIN_SIZE",
                NOT_STARTED);
        return -EINVAL;
    }
    return 1;
}
