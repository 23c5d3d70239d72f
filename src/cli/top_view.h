/* top_view.h — the terminal side of `heaptrail top`: what one screen shows (filled by the live
 * collector from the analysis model every refresh) and the view that draws it and reads keys.
 * Plain ANSI/VT100 escapes, no terminal library (see top_view.c); the layout is top_render.c's.
 *
 * One thread drives a view: draw, wait, close. The signal handlers the view installs run on any
 * thread that leaves the signals unblocked, so a program with other threads blocks SIGINT,
 * SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGCONT and SIGWINCH in them (they would otherwise restore
 * the terminal in the middle of a frame being written). */
#ifndef HEAPTRAIL_CLI_TOP_VIEW_H
#define HEAPTRAIL_CLI_TOP_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ht_top_site {
    uint32_t id;               /* stable across refreshes (the model's site index) */
    const char *label;         /* innermost frame in the program: "function (file.c:12)" or
                                * "module+0x1234"; never NULL */
    const char *const *frames; /* the whole stack, symbolized, innermost first */
    size_t depth;
    double live_bytes, live_blocks;
    double alloc_bytes, alloc_count; /* since the session began */
    double rate_bytes, rate_count;   /* allocated per second over the last refresh */
} ht_top_site;

typedef struct ht_top_row { /* a heap or a Source */
    const char *name;       /* "0x55d0c2a3b000 (process heap)", "LFH", ... */
    double live_bytes, live_blocks;
    double alloc_rate, free_rate; /* operations per second, last refresh */
    double alloc_bytes_rate;      /* bytes allocated per second, last refresh */
} ht_top_row;

/* One refresh. Everything it points to stays valid until the next ht_top_view_draw or
 * ht_top_view_close: the view redraws from it inside ht_top_view_wait (keys, resize) without
 * copying it. Strings are shown as ASCII: control characters and each UTF-8 sequence become
 * '?', so nothing the traced program named can reach the terminal as an escape. */
typedef struct ht_top_frame {
    const char *program; /* the traced program's name */
    long pid;
    const char *mode;    /* "discard", "block" */
    uint64_t elapsed_ns; /* since the session began (trace time) */
    bool target_gone;    /* the process ended (the screen stays until q) */
    const char *message; /* a one-line status ("process 123 exited", ...) or NULL */
    double live_bytes, live_blocks, peak_bytes;
    double alloc_rate, free_rate; /* operations per second, last refresh */
    double alloc_bytes_rate, free_bytes_rate;
    uint64_t events;            /* events received so far */
    uint64_t lost, lost_recent; /* lost events: all, and in the last refresh */
    const ht_top_row *heaps;
    size_t heap_count;
    const ht_top_row *sources;
    size_t source_count;
    const ht_top_site *sites; /* every site with live or allocated bytes, any order */
    size_t site_count;
} ht_top_frame;

typedef enum ht_top_sort { HT_TOP_SORT_LIVE, HT_TOP_SORT_ALLOCATED, HT_TOP_SORT_RATE } ht_top_sort;

typedef struct ht_top_view ht_top_view;

/* Takes over the terminal on fd (a tty): raw mode, alternate screen, cursor hidden; installs
 * handlers so that SIGINT, SIGTERM, SIGHUP, SIGQUIT restore the terminal (the caller is told:
 * ht_top_view_signalled) and SIGTSTP/SIGCONT, SIGWINCH work. NULL with errno: ENOTTY if in_fd
 * or out_fd is not a terminal, ENOTSUP if TERM is "dumb", EBUSY if a terminal view is already
 * open in the process (the handlers are process-wide), ENOMEM. */
ht_top_view *ht_top_view_open(int in_fd, int out_fd);
/* A view without a terminal, for tests and `top --batch`: it keeps the frame, the sort, the
 * selection and the rest of the state, takes keys from ht_top_view_input and is rendered with
 * ht_top_render_text; draw writes nothing and wait returns 0 at once. NULL if out of memory. */
ht_top_view *ht_top_view_create(void);
/* Restores the terminal exactly as it was (also safe after a signal), puts back the signal
 * handlers found at open and frees the view. NULL is ignored. */
void ht_top_view_close(ht_top_view *view);
/* Draws the frame (one write per screen, no flicker; only the lines that changed) at the
 * terminal's current size. While paused, the frame shown when the pause began stays (the view
 * keeps its own copy); only target_gone and message are taken from new frames, so a process
 * that exits is seen at once. Nothing is drawn once a terminating signal arrived. */
void ht_top_view_draw(ht_top_view *view, const ht_top_frame *frame);
/* Waits up to timeout_ms for keys and handles them (sort, select, expand, pause, help, resize),
 * redrawing the last frame after each; returns when the time is up, so one call per refresh.
 * Returns 1 when the user asked to quit (q, Q, Ctrl-C or Ctrl-\ as a key) or the terminal
 * closed, 0 otherwise, -1 on a signal that ends the view (SIGINT/SIGTERM/SIGHUP/SIGQUIT, see
 * ht_top_view_signalled; that signal's own handling is back in place for a second one). */
int ht_top_view_wait(ht_top_view *view, int timeout_ms);
/* Handles key bytes as if they came from the terminal (ht_top_view_wait reads through it): an
 * escape sequence may arrive split across calls. 1 if they ask to quit, else 0. Keys: q Q ^C ^\
 * quit; l a r sort by live, allocated, rate; s next sort; Up Down k j, PgUp PgDn, Home End g G
 * select; Enter e expand the selected site's stack; p Space pause; ? help; ^L redraw; ^Z
 * suspend; anything else is ignored. */
int ht_top_view_input(ht_top_view *view, const void *bytes, size_t length);
int ht_top_view_signalled(const ht_top_view *view); /* the signal number, 0 if none */
bool ht_top_view_paused(const ht_top_view *view);

/* For tests and `top --batch`: renders the frame as rows x cols text (no escapes), in the
 * layout and with the state (sort, selection, expanded site, help, pause) of view, or defaults
 * if NULL; frame NULL renders the view's last frame. Returns a malloc'd NUL-terminated string of
 * at most rows lines, each ended by '\n' and at most cols columns of printable ASCII (trailing
 * blanks and blank lines at the end left out); the selected site's row starts with '>'. NULL if
 * out of memory. */
char *ht_top_render_text(const ht_top_view *view, const ht_top_frame *frame, int rows, int cols);

#endif
