/* live.h — watching a trace while it is written (live.c): `heaptrail top`, `record --live`,
 * `record -o -` and the continuous profiles of `record|start --pprof-every`.
 *
 * A live collector takes a descriptor carrying a trace as the process writes it (the read end
 * of a FIFO, a pipe or a socket handed over by the control socket), copies it to a file or to
 * standard output on a thread of its own, and reads it through a follower (reader.h) into the
 * analysis model, from which it draws the view and writes the profiles. */
#ifndef HEAPTRAIL_CLI_LIVE_H
#define HEAPTRAIL_CLI_LIVE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ht_live_settings {
    const char *tee;         /* the trace is also written here ("-": standard output), or NULL */
    bool model;              /* read the trace into the model (the view, profiles) */
    bool top;                /* the full-screen view (needs a terminal) */
    uint64_t pprof_every_ns; /* periodic profiles (0: none) */
    bool pprof_at_peak;
    const char *pprof_dir;  /* default "." */
    const char *pprof_name; /* NAME of NAME.SEQ.pb.gz */
    bool symbols;           /* symbolize sites (the view, the profiles) */
    long pid;               /* the traced process, for the view */
    const char *command;    /* its name, for the view */
} ht_live_settings;

typedef struct ht_live ht_live;

/* What ended ht_live_run. */
typedef enum ht_live_end {
    HT_LIVE_ENDED = 0, /* the trace ended (its footer, or the stream closed) */
    HT_LIVE_QUIT,      /* the user quit the view */
    HT_LIVE_SIGNAL,    /* SIGINT, SIGTERM, SIGHUP or SIGQUIT (ht_live_signal says which) */
    HT_LIVE_FAILED,    /* no trace came, or it could not be read (said on stderr) */
} ht_live_end;

typedef struct ht_live_hooks {
    void *context;
    /* Every ~100 ms while waiting: the caller's own checks (its child's exit, for record). */
    void (*tick)(void *context, ht_live *live);
} ht_live_hooks;

/* Starts copying fd (the collector owns it from now on). NULL after an error said on stderr
 * (exit code in *code). */
ht_live *ht_live_open(int fd, const ht_live_settings *settings, int *code);
/* Reads until the trace ends, the user quits the view or a signal comes; the view is closed
 * (the terminal restored) before it returns. header_wait_ms bounds the wait for the trace's
 * first bytes (-1: until the stream closes). */
ht_live_end ht_live_run(ht_live *live, const ht_live_hooks *hooks, int header_wait_ms);
/* Ends the session through stop (the caller's: the control socket's stop) and returns its
 * result. With profiles, the model reads on (no view) beside it until the trace ends, so they
 * get the last interval; otherwise the model is closed first. Either way the process's writer
 * is never held up by the collector. */
int ht_live_stop(ht_live *live, const ht_live_hooks *hooks, int (*stop)(void *context),
                 void *context);
/* The signal that ended ht_live_run (HT_LIVE_SIGNAL). */
int ht_live_signal(const ht_live *live);
/* A one-line note the view shows (the target exited, ...). */
void ht_live_note(ht_live *live, const char *note);
/* Finishes: the model's end (last profile, peak profile), joins the copy; 0 or an exit code
 * after a message (profiles that could not be written, the tee file). */
int ht_live_close(ht_live *live);

/* Installs SIGINT/SIGTERM/SIGHUP/SIGQUIT handlers that make ht_live_run return HT_LIVE_SIGNAL
 * (the view installs its own while open). */
void ht_live_catch_signals(void);

#endif
