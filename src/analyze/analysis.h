/* analysis.h — the interface of the analysis library (ht_analyze) used by `heaptrail report` and
 * `heaptrail export`: open a trace, stream it once through the live-block model, then render a
 * report (text or JSON) or an export (chrome, massif, folded, pprof).
 *
 * One pass over the events; memory is bounded by the live blocks and the distinct stacks, not by
 * the number of events. Functions returning int give 0 or a negative errno value and, on error,
 * put a one-line message in the error buffer they are given. */
#ifndef HEAPTRAIL_ANALYZE_ANALYSIS_H
#define HEAPTRAIL_ANALYZE_ANALYSIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "heaptrail/reader.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ht_analysis ht_analysis;

#define HT_ANALYSIS_NO_END UINT64_MAX /* open end of a window */

typedef struct ht_analysis_options {
    bool symbols;                 /* symbolize frames with libdw (default true) */
    const char *const *search_dirs; /* NULL-terminated: more places to look for binaries by
                                     * base name and for debug files by build-id; may be NULL */
    bool window;                  /* compute the WPA lifetime classes for [begin, end) */
    uint64_t window_begin_ns;     /* relative to the trace start */
    uint64_t window_end_ns;       /* HT_ANALYSIS_NO_END: to the end of the trace */
    uint64_t temporary_threshold_ns; /* 0: heaptrack's definition only; else also count blocks
                                      * freed within this time of their allocation */
    int progress;                 /* -1: on a tty, 0: never, 1: always (stderr) */
    const char *progress_label;   /* "report", "export" */
} ht_analysis_options;

void ht_analysis_options_init(ht_analysis_options *options);

/* Opens the trace and maps its stacks to allocation sites. NULL on failure, with the message
 * in error and errno set as by ht_reader_open (EBADMSG: not a trace or damaged). */
ht_analysis *ht_analysis_open(const char *path, const ht_analysis_options *options, char *error,
                              size_t error_size);
/* The same over a reader the caller opened (and closes after ht_analysis_close); nothing may
 * have been read from it. path is only used in output. */
ht_analysis *ht_analysis_new(ht_reader *reader, const char *path,
                             const ht_analysis_options *options, char *error, size_t error_size);
void ht_analysis_close(ht_analysis *analysis);

/* Streams every event through the model. -EBADMSG / -EIO: the trace is malformed or unreadable
 * (events before the bad chunk were applied); -ENOMEM. */
int ht_analysis_run(ht_analysis *analysis, char *error, size_t error_size);

/* The reader's warnings (truncation, skipped chunks), "" if none. */
const char *ht_analysis_warnings(const ht_analysis *analysis);

typedef struct ht_report_options {
    unsigned top;      /* entries per list (default 10) */
    bool json;
} ht_report_options;

/* Renders the report of a trace that ht_analysis_run went through. */
int ht_report_write(ht_analysis *analysis, FILE *out, const ht_report_options *options);

typedef enum ht_export_format {
    HT_EXPORT_CHROME = 1,
    HT_EXPORT_MASSIF = 2,
    HT_EXPORT_FOLDED = 3,
    HT_EXPORT_PPROF = 4,
} ht_export_format;

typedef enum ht_folded_value {
    HT_FOLDED_ALLOCATED = 0, /* bytes allocated */
    HT_FOLDED_COUNT = 1,     /* allocations */
    HT_FOLDED_LEAKED = 2,    /* bytes live at the end of the trace */
    HT_FOLDED_PEAK = 3,      /* bytes live at the peak */
} ht_folded_value;

typedef struct ht_export_options {
    ht_export_format format;
    ht_folded_value folded_value;
    uint64_t large_block; /* chrome: blocks at least this big get a lifetime slice (0: 1 MiB) */
} ht_export_options;

/* Runs the analysis (ht_analysis_run must not have been called) and writes the export. */
int ht_export_write(ht_analysis *analysis, FILE *out, const ht_export_options *options, char *error,
                    size_t error_size);

/* ---- argument parsing shared by the two commands ---- */

/* "1.5s", "200ms", "10us", "500ns", "2min", "3" (seconds). -EINVAL on anything else. */
int ht_parse_duration(const char *text, uint64_t *ns);
/* "A..B", "A..", "..B": begin and end relative to the trace start; -EINVAL if malformed or
 * begin >= end. */
int ht_parse_window(const char *text, uint64_t *begin_ns, uint64_t *end_ns);
/* "4096", "64k", "1m", "2g" (powers of 1024). */
int ht_parse_size(const char *text, uint64_t *bytes);
/* Matches argv[*i] against "--name VALUE", "--name=VALUE" or "ALIAS VALUE" (alias may be NULL).
 * Returns 1 with *value set (and *i moved past a separate value), 0 if argv[*i] is another
 * argument, -1 if the value is missing. */
int ht_match_option(int argc, char **argv, int *i, const char *name, const char *alias,
                    const char **value);

#ifdef __cplusplus
}
#endif
#endif
