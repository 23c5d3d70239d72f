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
    bool symbols;                   /* symbolize frames with libdw (default true) */
    const char *const *search_dirs; /* NULL-terminated: more places to look for binaries by
                                     * base name and for debug files by build-id; may be NULL */
    bool window;                    /* compute the WPA lifetime classes for [begin, end) */
    uint64_t window_begin_ns;       /* relative to the trace start */
    uint64_t window_end_ns;         /* HT_ANALYSIS_NO_END: to the end of the trace */
    /* The range every figure covers, relative to the trace start ([0, HT_ANALYSIS_NO_END): the
     * whole trace). Events before from_ns only build the live set; events from to_ns on are not
     * read. Leaks are the blocks allocated in the range and live at its end; the peak is the
     * highest live total inside it. */
    uint64_t from_ns, to_ns;
    uint64_t temporary_threshold_ns; /* 0: heaptrack's definition only; else also count blocks
                                      * freed within this time of their allocation */
    int progress;                    /* -1: on a tty, 0: never, 1: always (stderr) */
    const char *progress_label;      /* "report", "export" */
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

/* The sections of the text report (ht_report_options.sections; 0: all). */
enum {
    HT_REPORT_SUMMARY = 1u << 0,
    HT_REPORT_LEAKS = 1u << 1,
    HT_REPORT_PEAK = 1u << 2,
    HT_REPORT_TOP = 1u << 3, /* by bytes and by count */
    HT_REPORT_TEMPORARY = 1u << 4,
    HT_REPORT_HISTOGRAM = 1u << 5,
    HT_REPORT_SOURCES = 1u << 6,
    HT_REPORT_INVALID = 1u << 7,
    HT_REPORT_LOST = 1u << 8,
    HT_REPORT_WINDOW = 1u << 9,
    HT_REPORT_ALL = (1u << 10) - 1,
};

typedef struct ht_report_options {
    unsigned top; /* entries per list (default 10) */
    bool json;
    unsigned sections; /* text: HT_REPORT_* (0: all); the header is always printed */
} ht_report_options;

/* Renders the report of a trace that ht_analysis_run went through. */
int ht_report_write(ht_analysis *analysis, FILE *out, const ht_report_options *options);

/* Runs the analysis (ht_analysis_run must not have been called) and writes the HTML report: one
 * self-contained page, the JSON report (with at least 25 entries per list) inside. */
int ht_report_html_write(ht_analysis *analysis, FILE *out, const ht_report_options *options,
                         char *error, size_t error_size);

typedef struct ht_stats_options {
    size_t top; /* heaps and threads listed (0: all) */
    bool json;
} ht_stats_options;

/* Renders `stats` (operation tables and the bottom line) of a trace ht_analysis_run went
 * through. 0, -ENOMEM or -EIO. */
int ht_stats_write(ht_analysis *analysis, FILE *out, const ht_stats_options *options);

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

/* ---- diff of two traces (diff.c) ---- */
typedef enum ht_diff_format {
    HT_DIFF_TEXT = 0,
    HT_DIFF_JSON = 1,   /* "heaptrail-diff/1" (README) */
    HT_DIFF_FOLDED = 2, /* "frame;...;frame BEFORE AFTER" lines (difffolded.pl's) */
    HT_DIFF_HTML = 3,   /* the viewer page with the JSON inline */
} ht_diff_format;

typedef struct ht_diff_options {
    ht_diff_format format;
    unsigned top;           /* text: sites listed (0: 20); the other formats list all */
    ht_folded_value metric; /* folded: the quantity compared (default bytes allocated) */
} ht_diff_options;

/* Compares two traces that ht_analysis_run went through, site by site: sites are matched on
 * their symbolized frames (function, file, line, module base name), not on addresses. Writes
 * the comparison in the chosen format. 0, -ENOMEM, -EIO (writing) or -EINVAL (not analysed),
 * with the message in error. */
int ht_diff_write(ht_analysis *base, ht_analysis *newer, FILE *out, const ht_diff_options *options,
                  char *error, size_t error_size);

/* ---- the bottom line of a trace ----
 * The figures `record`'s summary, `stats` and `report` all print, each decided here once: from
 * the trace's footer when it has them (the tracer's exact account at the stop), from the model
 * otherwise. ht_trace_summary_of_info reads no event (record); ht_analysis_summary adds what the
 * model knows after ht_analysis_run. */
typedef struct ht_trace_summary {
    uint64_t events;      /* events in the file's event chunks */
    bool lost_known;      /* the footer's count, or the model's sum of LOST records */
    uint64_t lost;        /* events lost, all reasons */
    bool end_known;       /* the live set at the end is known */
    bool end_exact;       /* from the footer: the heaps' own count, exact even when sampled */
    const char *end_when; /* "at exit", "when tracing stopped", "at the last event" */
    double end_blocks, end_bytes;
    bool peak_committed_known;
    uint64_t peak_committed;        /* the traced heaps' committed bytes, most at once */
    bool modeled;                   /* the model ran: the figures below are set */
    double peak_bytes, peak_blocks; /* live at the peak (estimates when sampled) */
    uint64_t peak_ns;               /* relative to the trace start */
    uint64_t duration_ns;
    uint64_t invalid; /* operations with Source INVALID */
} ht_trace_summary;

void ht_trace_summary_of_info(const ht_trace_info *info, ht_trace_summary *summary);
void ht_analysis_summary(const ht_analysis *analysis, ht_trace_summary *summary);
/* Its lines as `stats` and `report` print them: indent, the label padded to width, the value. */
void ht_trace_summary_print(FILE *out, const ht_trace_summary *summary, const char *indent,
                            int width);

#ifdef __cplusplus
}
#endif
#endif
