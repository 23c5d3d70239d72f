/* progress.c — the progress line (contract in progress.h). */
#include "analyze/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/units.h"

#define FIRST_DRAW_NS 500000000u /* nothing for reads shorter than this */
#define REDRAW_NS 200000000u

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hti_progress_init(hti_progress *p, int mode, const char *command, const char *what,
                       uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->enabled = mode == 1 || (mode < 0 && isatty(STDERR_FILENO));
    p->total = total;
    p->command = command;
    p->what = what;
    p->started_ns = p->last_ns = now_ns();
}

void hti_progress_update(hti_progress *p, uint64_t done)
{
    if (!p->enabled)
        return;
    uint64_t now = now_ns();
    if (now - p->started_ns < FIRST_DRAW_NS || now - p->last_ns < REDRAW_NS)
        return;
    p->last_ns = now;
    char count[HTI_NUMBER_MAX], total[HTI_NUMBER_MAX];
    hti_format_count(count, sizeof count, (double)done);
    if (p->total) {
        double percent = 100.0 * (double)done / (double)p->total;
        fprintf(stderr, "\rheaptrail: %s: %3.0f%% (%s of %s %s)\033[K", p->command,
                percent > 100 ? 100 : percent, count,
                hti_format_count(total, sizeof total, (double)p->total), p->what);
    } else {
        fprintf(stderr, "\rheaptrail: %s: %s %s\033[K", p->command, count, p->what);
    }
    fflush(stderr);
    p->shown = true;
}

void hti_progress_done(hti_progress *p)
{
    if (p->shown) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->shown = false;
}
