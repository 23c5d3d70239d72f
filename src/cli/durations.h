/* durations.h — the command line's grammar for times: durations and time windows, as `report`
 * and `export` take them. Strict: a decimal number (optionally with a fraction) and one known
 * unit; anything else, overflow included, is -EINVAL. */
#ifndef HEAPTRAIL_CLI_DURATIONS_H
#define HEAPTRAIL_CLI_DURATIONS_H

#include <stdint.h>

#include "analyze/analysis.h" /* HT_ANALYSIS_NO_END */

/* "1.5s", "200ms", "10us", "500ns", "2min", "1h", "3" (seconds): 0 with *ns, or -EINVAL. */
int hti_parse_duration(const char *text, uint64_t *ns);
/* "A..B", "A..", "..B": begin and end relative to the trace start (end HT_ANALYSIS_NO_END when
 * open); -EINVAL if malformed or begin >= end. */
int hti_parse_window(const char *text, uint64_t *begin_ns, uint64_t *end_ns);

#endif
