/* progress.h — the one progress line of the commands that read a whole trace (dump through the
 * command line's input, stats, report and export through the analysis): "heaptrail: report:
 * 42% (1,234,567 of 2,939,000 events)" on stderr, redrawn in place and erased at the end.
 * Cheap to update often: it draws at most five times a second, and only after half a second. */
#ifndef HEAPTRAIL_ANALYZE_PROGRESS_H
#define HEAPTRAIL_ANALYZE_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct hti_progress {
    bool enabled;   /* decided at init */
    bool shown;     /* a line is on the screen */
    uint64_t total; /* 0: unknown */
    uint64_t started_ns, last_ns;
    const char *command; /* "report" */
    const char *what;    /* "events" */
} hti_progress;

/* mode 1: always; 0: never; -1: when stderr is a terminal (a caller that writes to stdout while
 * the line is up passes 0 when stdout is a terminal too). */
void hti_progress_init(hti_progress *progress, int mode, const char *command, const char *what,
                       uint64_t total);
void hti_progress_update(hti_progress *progress, uint64_t done);
void hti_progress_done(hti_progress *progress); /* erases the line */

#endif
