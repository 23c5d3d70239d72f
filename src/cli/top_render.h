/* top_render.h — between top_view.c (the terminal, keys and the view's state) and top_render.c
 * (the screen's layout): the state a layout depends on, the sorted order of a frame's sites, and
 * a screen of cells (one ASCII character and one attribute each) that the terminal writer turns
 * into escapes and ht_top_render_text into plain lines. */
#ifndef HEAPTRAIL_CLI_TOP_RENDER_H
#define HEAPTRAIL_CLI_TOP_RENDER_H

#include "cli/top_view.h"

typedef struct hti_top_state {
    ht_top_sort sort;
    bool pinned;          /* the user chose a site: the selection follows selected_id */
    uint32_t selected_id; /* valid when pinned */
    size_t selected_row;  /* the selection's row at the last layout: where it stays when its
                           * site is gone */
    size_t scroll;        /* the first site row shown at the last layout */
    size_t page;          /* site rows shown at the last layout (PgUp, PgDn) */
    bool expanded;        /* the selected site's stack is shown */
    bool help;
    bool paused;
} hti_top_state;

enum { HTI_TOP_BOLD = 1, HTI_TOP_REVERSE = 2 };

typedef struct hti_top_screen {
    int rows, cols;
    char *text;          /* rows * cols printable ASCII characters */
    unsigned char *attr; /* rows * cols HTI_TOP_* bits */
} hti_top_screen;

/* 0, or -ENOMEM; the screen is blank. rows and cols are at least 1. */
int hti_top_screen_init(hti_top_screen *screen, int rows, int cols);
void hti_top_screen_clear(hti_top_screen *screen);
void hti_top_screen_free(hti_top_screen *screen);
/* The screen as lines ended by '\n', trailing blanks and blank lines at the end left out;
 * malloc'd, NULL if out of memory. */
char *hti_top_screen_text(const hti_top_screen *screen);

/* order[i] is the index in frame->sites of the i-th site by the sort key, largest first, ties
 * by id (smallest first). order has room for frame->site_count entries. 0, or -ENOMEM. */
int hti_top_sort_sites(const ht_top_frame *frame, ht_top_sort sort, size_t *order);
/* The selection's row in order: the pinned site's, else selected_row (clamped). */
size_t hti_top_selection(const hti_top_state *state, const ht_top_frame *frame,
                         const size_t *order);

/* Where a layout put the site list: the view keeps it for the next key. */
typedef struct hti_top_placement {
    size_t selected; /* the selection's row in order */
    size_t scroll;   /* the first row shown */
    size_t page;     /* rows shown, at least 1 */
} hti_top_placement;

/* Lays frame out on screen (cleared first) with state; order as hti_top_sort_sites gives it. */
hti_top_placement hti_top_render(const hti_top_state *state, const ht_top_frame *frame,
                                 const size_t *order, hti_top_screen *screen);

#endif
