/* pprof_series.h — continuous pprof profiles of a live trace (pprof_series.c). */
#ifndef HEAPTRAIL_ANALYZE_PPROF_SERIES_H
#define HEAPTRAIL_ANALYZE_PPROF_SERIES_H

#include <stdbool.h>
#include <stdint.h>

#include "analyze/analysis.h"

typedef struct hti_pprof_series hti_pprof_series;
struct hti_hooks;

/* Profiles of analysis a into dir (made if missing) as NAME.SEQ.pb.gz every every_ns of trace
 * time (0: none) and NAME.peak.SEQ.pb.gz at new peaks when at_peak. NULL with a message. */
hti_pprof_series *hti_pprof_series_open(ht_analysis *a, const char *dir, const char *name,
                                        uint64_t every_ns, bool at_peak, char *error,
                                        size_t error_size);
/* Puts the series' sample hook into hooks (before hti_analysis_begin). */
void hti_pprof_series_hooks(hti_pprof_series *series, struct hti_hooks *hooks);
/* After each batch fed: a peak profile if the peak grew enough. */
void hti_pprof_series_poll(hti_pprof_series *series);
/* After hti_analysis_end (which wrote the last, partial interval): the highest peak. */
void hti_pprof_series_finish(hti_pprof_series *series);
/* The next files are numbered after these (a program that exec'd: the series goes on). */
void hti_pprof_series_number_from(hti_pprof_series *series, unsigned written, unsigned peaks);
unsigned hti_pprof_series_written(const hti_pprof_series *series, bool peaks);
/* The first write failure ("cannot write PATH"; errno-style detail is the caller's), or NULL. */
const char *hti_pprof_series_error(const hti_pprof_series *series);
void hti_pprof_series_close(hti_pprof_series *series);

#endif
