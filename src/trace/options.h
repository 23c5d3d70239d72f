/* options.h — the one owner of the values of heaptrail's options: every HEAPTRAIL_* variable the
 * library reads, every key of the control protocol's start request and the command line's
 * tracing options go through these parsers, so the three accept exactly the same values and
 * explain a refusal with the same words. The grammar and each option's range are in README.md
 * ("Option values"). Self-contained (libc and the public headers only): the command line and
 * the fuzz targets link it without the rest of the tracer. Nothing here allocates. */
#ifndef HEAPTRAIL_TRACE_OPTIONS_H
#define HEAPTRAIL_TRACE_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptrail/trace.h"

/* ---- the grammar ----
 * Each returns 0 with *out set, -EINVAL (not of the form) or -ERANGE (does not fit 64 bits). */

/* Decimal digits only: no sign, no space, no 0x, no suffix. */
int hti_parse_count(const char *text, uint64_t *out);
/* A count with an optional binary suffix: k, K, KiB (2^10), m, M, MiB (2^20), g, G, GiB (2^30). */
int hti_parse_size(const char *text, uint64_t *out);
/* Why a text is not a size, in every message that says so. */
#define HTI_NOT_A_SIZE "not a size (expected e.g. 64K, 4M)"
/* A real-time signal: "RTMIN", "RTMIN+N", "RTMAX", "RTMAX-N" (an optional "SIG" before them)
 * or its number, within [SIGRTMIN, SIGRTMAX] of this C library: the signal's number. */
int hti_parse_signal(const char *text, uint64_t *out);
/* A comma list of alloc, free, realloc, heap, all (no empty item): HT_EVENT_BIT mask. */
int hti_parse_events(const char *text, uint64_t *mask);

/* ---- the options ---- */
typedef enum hti_option {
    HTI_OPTION_OUTPUT,       /* path; the control protocol also wants it absolute */
    HTI_OPTION_FD,           /* descriptor */
    HTI_OPTION_MODE,         /* block | discard | ring */
    HTI_OPTION_BUFFER,       /* size, 64K..4G */
    HTI_OPTION_STACKS,       /* count, 0..HT_TRACE_MAX_DEPTH */
    HTI_OPTION_FREE_STACKS,  /* 0 | 1 */
    HTI_OPTION_UNWIND,       /* libunwind | fp */
    HTI_OPTION_SAMPLE,       /* size, 0..1G */
    HTI_OPTION_EVENTS,       /* event list */
    HTI_OPTION_MIN_SIZE,     /* size */
    HTI_OPTION_MAX_SIZE,     /* size */
    HTI_OPTION_COMPRESS,     /* count, 0..19 */
    HTI_OPTION_FLUSH_MS,     /* count, 1..60000 */
    HTI_OPTION_FOLLOW_FORKS, /* 0 | 1 */
    HTI_OPTION_NO_RUNDOWN,   /* 0 | 1 */
    HTI_OPTION_LEAK_SCAN,    /* 0 | 1 */
    /* Environment only (no ht_trace_options field, no control key): */
    HTI_OPTION_OWNER_PID,               /* process id, 1..4194304 */
    HTI_OPTION_CONTROL,                 /* 0 | 1 */
    HTI_OPTION_CONTROL_DIR,             /* absolute path short enough for a socket address */
    HTI_OPTION_SIGNAL,                  /* real-time signal: RTMIN+N, RTMAX-N or its number */
    HTI_OPTION_NO_TSC,                  /* 0 | 1 */
    HTI_OPTION_TERMINATE_ON_CORRUPTION, /* 0 | 1: for the preload library's process heap */
    HTI_OPTION_COUNT
} hti_option;

/* Ranges of the fields of ht_trace_options (0 means "the default" for buffer and flush). */
#define HTI_OPTION_BUFFER_MIN (64ull << 10)
#define HTI_OPTION_BUFFER_MAX (4ull << 30)
#define HTI_OPTION_SAMPLE_MAX (1ull << 30)
#define HTI_OPTION_COMPRESS_MAX 19
#define HTI_OPTION_FLUSH_MS_MAX 60000
#define HTI_OPTION_PID_MAX 4194304 /* PID_MAX_LIMIT on 64-bit Linux: at most 7 digits */
#define HTI_OPTION_PATH_MAX 4095   /* an output path once "%p" is replaced */

/* A parsed value: number for everything but paths (flags 0/1, ht_trace_mode, ht_trace_unwinder,
 * event masks), text for paths (the parsed text itself). */
typedef struct hti_option_value {
    uint64_t number;
    const char *text;
} hti_option_value;

const char *hti_option_variable(hti_option option); /* "HEAPTRAIL_BUFFER" */
const char *hti_option_key(hti_option option);      /* "buffer"; NULL if not a protocol key */
/* The option whose control protocol key is key, or -1. */
int hti_option_by_key(const char *key);

/* The verdict on text as a value of option: 0 with *value set, or -EINVAL / -ERANGE with *why
 * a static explanation of the refusal, e.g. "not a size (expected e.g. 64K, 4M)" or "out of
 * range (expected 64K to 4G)". An empty text is refused like any other bad value. */
int hti_option_value_parse(hti_option option, const char *text, hti_option_value *value,
                           const char **why);
/* hti_option_value_parse, then the value stored in its field of *options (output_path keeps
 * the text pointer). -EINVAL for an environment-only option. */
int hti_option_parse(hti_option option, const char *text, ht_trace_options *options,
                     const char **why);
/* A whole ht_trace_options against the same ranges, plus max_size >= min_size when both are
 * set. 0, or -EINVAL with *why. ht_trace_start refuses what this refuses. */
int hti_options_check(const ht_trace_options *options, const char **why);

/* ---- the environment ----
 * lookup is getenv or a stand-in (tests, fuzzing). A refusal is described by one line, "heaptrail:
 * VARIABLE="value": why; consequence", written into message (NUL-terminated, no newline; the
 * value quoted with control characters escaped and cut after 64 bytes). */
typedef const char *(*hti_lookup)(const char *name, void *context);
const char *hti_getenv_lookup(const char *name, void *context);

/* The variable of option: 0 if unset (or empty, for HEAPTRAIL_OUTPUT and HEAPTRAIL_FD), 1 with
 * *value if set to a good value, -EINVAL if not (message filled when message is not NULL). */
int hti_option_lookup(hti_option option, hti_lookup lookup, void *context, hti_option_value *value,
                      const char *consequence, char *message, size_t size);
/* The same from getenv, a refusal written on stderr. */
int hti_option_getenv(hti_option option, hti_option_value *value, const char *consequence);

/* A flag variable from getenv: true only when set to "1". Silent: for a reader that must not
 * print (the clock), where hti_options_from_environment reports the bad value. */
bool hti_option_env_flag(hti_option option);

/* The tracing variables of ht_trace_start_from_env into *options (initialized by the caller):
 * 0 when neither HEAPTRAIL_OUTPUT nor HEAPTRAIL_FD is set, 1 when every value is good (the
 * descriptor of HEAPTRAIL_FD is then open for writing), -EINVAL with the line in message. */
int hti_options_from_environment(ht_trace_options *options, hti_lookup lookup, void *context,
                                 char *message, size_t size);

/* value in double quotes as the refusal line shows it (escaped, cut after 64 bytes, "..."). */
void hti_option_quote(char *out, size_t size, const char *value);

/* Writes line and a newline on stderr with one write(2). */
void hti_option_report(const char *line);

#endif
