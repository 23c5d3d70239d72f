/* live_frame.h — what `top` shows, from the live analysis model (live_frame.c): every refresh
 * builds an ht_top_frame of the model's running figures, with rates over the time since the
 * last one and each site's label and stack symbolized once. */
#ifndef HEAPTRAIL_CLI_LIVE_FRAME_H
#define HEAPTRAIL_CLI_LIVE_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "analyze/analyze_internal.h"
#include "top_view.h"

typedef struct ht_live_site_text {
    const char *label;
    const char **frames;
    size_t depth;
    bool done;
} ht_live_site_text;

/* The frame and what it points to (valid until the next build, as the view wants), and the
 * figures of the last build the rates are taken against. Zeroed: empty. */
typedef struct ht_live_frame {
    ht_top_frame frame;
    ht_live_site_text *texts;
    size_t text_count, text_capacity;
    hti_strings strings;
    double *site_previous; /* per site: alloc count, bytes at the last frame */
    size_t previous_capacity;
    double *heap_previous; /* per heap: alloc ops, free ops, alloc bytes */
    size_t heap_previous_capacity;
    double source_previous[HT_SOURCE_COUNT][3];
    double total_previous[4]; /* alloc ops, free ops, alloc bytes, free bytes */
    uint64_t lost_previous;
    uint64_t built_ns; /* CLOCK_MONOTONIC of the last build (the rates' start) */
    ht_top_site *sites;
    size_t site_capacity;
    ht_top_row *heap_rows, source_rows[HT_SOURCE_COUNT];
    size_t heap_row_capacity;
    char (*heap_names)[64];
} ht_live_frame;

/* Builds v->frame from analysis a (reading through reader r); command and pid name the process
 * (NULL/0: the trace's), note is the status line (NULL: none), ended says the target is gone. */
void ht_live_frame_build(ht_live_frame *v, ht_analysis *a, const ht_reader *r, const char *command,
                         long pid, const char *note, bool ended, uint64_t now_ns);
/* The analysis is gone (a program that exec'd): its sites and heaps mean nothing now. */
void ht_live_frame_forget(ht_live_frame *v);
void ht_live_frame_free(ht_live_frame *v);

#endif
