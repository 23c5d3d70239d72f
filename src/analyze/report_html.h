/* report_html.h — what report_html.c and report_html_data.c share: the collector that runs as
 * hooks of the pass for `report --format html` (contract in report_html_data.c). */
#ifndef HEAPTRAIL_ANALYZE_REPORT_HTML_H
#define HEAPTRAIL_ANALYZE_REPORT_HTML_H

#include "analyze/analyze_internal.h"

#define HTI_HTML_BINS 1000   /* bins at most (the page draws one per pixel column or more) */
#define HTI_HTML_HEAPS 8     /* heaps with a line of their own; the others are summed */
#define HTI_HTML_LIVE 0x7FFu /* a cell's free bin while its blocks live */

typedef struct hti_html_cell {
    uint32_t site;     /* the pass's; hti_html_data_finish moves it to its merged site */
    int32_t alloc_bin; /* -1: allocated before the range */
    uint32_t free_bin; /* HTI_HTML_LIVE: live at the end */
    double count, bytes;
} hti_html_cell;

typedef struct hti_html_data {
    hti_hooks hooks; /* pass these to hti_analysis_run */
    int status;      /* 0, or -ENOMEM once a hook ran out of memory */
    uint64_t from_ns, bin_ns;
    size_t filled; /* bins whose end state is known */
    double *storage;
    double *live, *max;                    /* [HTI_HTML_BINS] */
    double *heap_live[HTI_HTML_HEAPS + 1]; /* by heap index; the last: the others */
    double *source_live[HT_SOURCE_COUNT];  /* by Source; 0: before tracing */
    double last_live, last_heap[HTI_HTML_HEAPS + 1], last_source[HT_SOURCE_COUNT];
    hti_html_cell *cells;
    size_t cell_count, cell_capacity;
    hti_map cell_index;
} hti_html_data;

/* 0 or -ENOMEM. */
int hti_html_data_init(hti_html_data *data, ht_analysis *analysis);
/* After the pass (and hti_sites_merge): the cells moved to their merged sites, and the bins
 * the page shows (the last sample's, or one more for blocks freed at the very end, in the end
 * state). data->status says whether it all fitted in memory. */
size_t hti_html_data_finish(hti_html_data *data, const ht_analysis *analysis);
void hti_html_data_free(hti_html_data *data);

#endif
