/* live.c — the live collector behind `heaptrail top`, `record --live`, `record -o -` and
 * `--pprof-every` (live.h).
 *
 * A copy thread (live_copy.c) reads the trace's descriptor as fast as it comes and writes it
 * whole to the tee (a file, or standard output) and, when the model is wanted, into a pipe the
 * follower reads: so the file has every byte the process wrote, and a slow model only ever slows
 * the process's writer through that pipe (discard mode: counted LOST events, never a stuck
 * program). This file's thread reads the follower's final events into the analysis model (the
 * same pass as `report`), writes the periodic profiles from its sample hook, starts a new model
 * when the program exec'd, and every second draws the frame live_frame.c builds from the model's
 * running figures. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analyze_internal.h"
#include "analyze/pprof_series.h"
#include "cli_common.h"
#include "heaptrail/trace.h"
#include "live.h"
#include "live_copy.h"
#include "live_frame.h"
#include "top_view.h"

#define BATCH_EVENTS 4096
#define REFRESH_MS 1000
#define TICK_MS 100
#define KEY_WAIT_MS 50
#define READ_SLICE_NS 200000000ull /* the longest the loop reads before it looks at keys */
#define COPY_END_WAIT_S 5          /* how long the end waits for the stream to close */

/* ---- signals ---- */

static volatile sig_atomic_t caught_signal;
static const int ending_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void on_signal(int signal_number)
{
    caught_signal = signal_number;
}

void ht_live_catch_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof ending_signals / sizeof *ending_signals; i++)
        sigaction(ending_signals[i], &action, NULL);
}

/* ---- the collector ---- */

struct ht_live {
    ht_live_settings settings;
    ht_live_copy copy;
    int follow_fd; /* the follower's end of the pipe until the follower owns it */
    ht_reader *reader;
    ht_analysis *analysis;
    hti_pprof_series *series;
    hti_hooks hooks;
    bool began, ended, failed;
    bool restarted; /* a new model since the last frame: the frame's data is gone */
    int signal;
    char note[256];
    ht_top_view *view;
    ht_live_frame frame; /* the view's figures */
    uint64_t draw_ns;    /* CLOCK_MONOTONIC of the last refresh */
};

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

ht_live *ht_live_open(int fd, const ht_live_settings *settings, int *code)
{
    ht_live *l = calloc(1, sizeof *l);
    if (!l) {
        close(fd);
        ht_cli_error("out of memory");
        *code = HT_CLI_EXIT_IO;
        return NULL;
    }
    l->settings = *settings;
    l->settings.model = settings->model || settings->top || settings->pprof_every_ns ||
                        settings->pprof_at_peak;
    l->follow_fd = -1;
    int tee = -1;
    if (settings->tee && strcmp(settings->tee, "-") == 0) {
        tee = STDOUT_FILENO;
    } else if (settings->tee) {
        tee = open(settings->tee, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (tee < 0) {
            ht_cli_error("cannot create '%s': %s", settings->tee, strerror(errno));
            close(fd);
            free(l);
            *code = HT_CLI_EXIT_IO;
            return NULL;
        }
    }
    int error = ht_live_copy_start(&l->copy, fd, tee, l->settings.model ? &l->follow_fd : NULL);
    if (error) {
        ht_cli_error("cannot start copying the trace: %s", strerror(error));
        close(fd);
        if (tee > STDERR_FILENO)
            close(tee);
        free(l);
        *code = HT_CLI_EXIT_IO;
        return NULL;
    }
    return l;
}

int ht_live_signal(const ht_live *l)
{
    return l->signal;
}

void ht_live_note(ht_live *l, const char *note)
{
    snprintf(l->note, sizeof l->note, "%s", note);
}

/* ---- the model ---- */

/* The follower over fd (it owns it from here), the model and the profiles over it. */
static bool model_attach(ht_live *l, int fd)
{
    char error[512];
    l->reader = ht_reader_follow(fd, 0, 5000, error, sizeof error);
    if (!l->reader) {
        if (errno != ETIMEDOUT && errno != ENODATA && *error)
            ht_cli_error("the trace cannot be read: %s", error);
        else
            ht_cli_error("no trace came%s%s", *error ? ": " : "", error);
        return false;
    }
    ht_analysis_options options;
    ht_analysis_options_init(&options);
    options.symbols = l->settings.symbols;
    options.progress = 0;
    l->analysis = ht_analysis_new(l->reader, "live", &options, error, sizeof error);
    if (!l->analysis) {
        ht_cli_error("%s", error);
        return false;
    }
    memset(&l->hooks, 0, sizeof l->hooks);
    if (l->settings.pprof_every_ns || l->settings.pprof_at_peak) {
        const char *dir = l->settings.pprof_dir ? l->settings.pprof_dir : ".";
        l->series = hti_pprof_series_open(l->analysis, dir, l->settings.pprof_name,
                                          l->settings.pprof_every_ns, l->settings.pprof_at_peak,
                                          error, sizeof error);
        if (!l->series) {
            ht_cli_error("%s", error);
            return false;
        }
        hti_pprof_series_hooks(l->series, &l->hooks);
    }
    if (hti_analysis_begin(l->analysis, &l->hooks) != 0) {
        ht_cli_error("out of memory");
        return false;
    }
    l->began = true;
    return true;
}

/* Waits for the trace's first bytes (calling the caller's tick), then opens the follower and
 * the model over it. false: no trace came (said) or it cannot be read. */
static bool model_open(ht_live *l, const ht_live_hooks *hooks, int header_wait_ms)
{
    uint64_t start = monotonic_ns();
    for (;;) {
        struct pollfd p = {.fd = l->follow_fd, .events = POLLIN};
        int ready = poll(&p, 1, TICK_MS);
        if (ready > 0)
            break;
        if (hooks && hooks->tick)
            hooks->tick(hooks->context, l);
        if (caught_signal) {
            l->signal = caught_signal;
            return false;
        }
        if (header_wait_ms >= 0 && monotonic_ns() - start >= (uint64_t)header_wait_ms * 1000000u) {
            ht_cli_error("no trace came within %d ms", header_wait_ms);
            return false;
        }
    }
    int fd = l->follow_fd;
    l->follow_fd = -1;
    if (!l->copy.bytes && !l->copy.traces) {
        /* The stream closed before a byte: the program never traced (the caller says why). */
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0 && !(p.revents & POLLIN)) {
            close(fd);
            return false;
        }
    }
    return model_attach(l, fd);
}

/* The model's end: the last profile (its sample hook) and the peak one, then the follower and
 * the model closed. Once; the series stays for its counts. */
static void model_end(ht_live *l)
{
    if (l->began) {
        char error[512] = "";
        hti_analysis_end(l->analysis, 0, error, sizeof error);
        if (l->series)
            hti_pprof_series_finish(l->series);
        l->began = false;
    }
    if (l->analysis)
        ht_analysis_close(l->analysis);
    if (l->reader)
        ht_reader_close(l->reader); /* closes the pipe's reading end: a blocked copy goes on */
    l->analysis = NULL;
    l->reader = NULL;
}

/* Ends the model of the trace that ended (its last profiles written) and starts one over the
 * next: the program exec'd. The profiles' numbering goes on; the view starts afresh. */
static bool model_next(ht_live *l, int fd)
{
    unsigned written = 0, peaks = 0;
    model_end(l);
    if (l->series) {
        written = hti_pprof_series_written(l->series, false);
        peaks = hti_pprof_series_written(l->series, true);
        if (hti_pprof_series_error(l->series))
            ht_cli_error("%s", hti_pprof_series_error(l->series));
        hti_pprof_series_close(l->series);
        l->series = NULL;
    }
    ht_live_frame_forget(&l->frame);
    if (!model_attach(l, fd))
        return false;
    if (l->series)
        hti_pprof_series_number_from(l->series, written, peaks);
    l->restarted = true;
    snprintf(l->note, sizeof l->note, "the program exec'd: now %.200s",
             hti_basename(ht_reader_info(l->reader)->program));
    return true;
}

/* Reads what is final now into the model, for at most READ_SLICE_NS. Returns 1 once the trace
 * ended, 0 otherwise, -1 on an error (said). */
static int model_read(ht_live *l)
{
    static ht_event batch[BATCH_EVENTS];
    uint64_t until = monotonic_ns() + READ_SLICE_NS;
    int result = 0;
    for (;;) {
        long n = ht_reader_read(l->reader, batch, BATCH_EVENTS);
        if (n == -EAGAIN)
            break;
        if (n == 0) {
            int next = ht_live_copy_next(&l->copy);
            if (next >= 0) {
                if (!model_next(l, next))
                    return -1;
                continue;
            }
            result = 1;
            break;
        }
        if (n < 0) {
            ht_cli_error("the trace cannot be read: %s", ht_reader_error(l->reader));
            result = -1;
            break;
        }
        int fed = hti_analysis_feed(l->analysis, batch, n);
        if (fed < 0) {
            ht_cli_error("out of memory (%zu live blocks)", l->analysis->blocks.count);
            result = -1;
            break;
        }
        if (l->series)
            hti_pprof_series_poll(l->series);
        if (monotonic_ns() >= until)
            break;
    }
    /* The watermark: profiles for the boundaries it passed, also without events. */
    const ht_trace_info *info = ht_reader_info(l->reader);
    if (result == 0 && info->end_ns)
        hti_analysis_advance(l->analysis, info->end_ns);
    return result;
}

/* ---- the loop ---- */

static bool stream_done(ht_live *l, int result)
{
    if (result < 0)
        l->failed = true;
    if (result == 0)
        return false;
    l->ended = true;
    return true;
}

/* The frame of the model's figures now, with the note and the target's end. */
static void build_frame(ht_live *l)
{
    ht_live_frame_build(&l->frame, l->analysis, l->reader, l->settings.command, l->settings.pid,
                        l->note[0] ? l->note : NULL, l->ended, monotonic_ns());
}

/* Reads with the view: a frame every REFRESH_MS, keys in between. */
static ht_live_end run_view(ht_live *l, const ht_live_hooks *hooks)
{
    build_frame(l);
    ht_top_view_draw(l->view, &l->frame.frame);
    uint64_t last_tick = monotonic_ns();
    for (;;) {
        bool ended = !l->ended && stream_done(l, model_read(l));
        if (l->restarted) {
            l->restarted = false;
            build_frame(l);
            ht_top_view_draw(l->view, &l->frame.frame);
        }
        if (ended) {
            if (!l->note[0])
                snprintf(l->note, sizeof l->note, "the trace ended: process %ld %s",
                         l->settings.pid, l->failed ? "cannot be read" : "exited or stopped");
            build_frame(l);
            ht_top_view_draw(l->view, &l->frame.frame);
        }
        int key = ht_top_view_wait(l->view, KEY_WAIT_MS);
        if (key == 1)
            return HT_LIVE_QUIT;
        if (key < 0) {
            l->signal = ht_top_view_signalled(l->view);
            return HT_LIVE_SIGNAL;
        }
        uint64_t now = monotonic_ns();
        if (now - last_tick >= TICK_MS * 1000000ull) {
            last_tick = now;
            if (hooks && hooks->tick)
                hooks->tick(hooks->context, l);
        }
        if (now - l->draw_ns >= REFRESH_MS * 1000000ull) {
            /* Paused: the rates after it cover the pause (no build meanwhile). */
            l->draw_ns = now;
            if (!ht_top_view_paused(l->view))
                build_frame(l);
            ht_top_view_draw(l->view, &l->frame.frame);
        }
    }
}

/* Reads without a view until the trace ends or a signal comes. */
static ht_live_end run_plain(ht_live *l, const ht_live_hooks *hooks)
{
    for (;;) {
        if (l->reader) {
            if (stream_done(l, model_read(l)))
                return l->failed ? HT_LIVE_FAILED : HT_LIVE_ENDED;
            struct pollfd p = {.fd = ht_reader_fd(l->reader), .events = POLLIN};
            poll(&p, 1, TICK_MS);
        } else {
            /* No model: the copy thread does all; wait for it to meet the end. */
            if (ht_live_copy_done(&l->copy)) {
                l->ended = true;
                return HT_LIVE_ENDED;
            }
            struct timespec pause = {0, TICK_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        if (hooks && hooks->tick)
            hooks->tick(hooks->context, l);
        if (caught_signal && !l->signal) {
            l->signal = caught_signal;
            return HT_LIVE_SIGNAL;
        }
    }
}

ht_live_end ht_live_run(ht_live *l, const ht_live_hooks *hooks, int header_wait_ms)
{
    if (l->settings.model && !l->began && !model_open(l, hooks, header_wait_ms))
        return l->signal ? HT_LIVE_SIGNAL : HT_LIVE_FAILED;
    if (!l->settings.top)
        return run_plain(l, hooks);
    l->view = ht_top_view_open(STDIN_FILENO, STDOUT_FILENO);
    if (!l->view) {
        ht_cli_error("top needs a terminal (standard input and output a tty, TERM not dumb)");
        return HT_LIVE_FAILED;
    }
    ht_live_end end = run_view(l, hooks);
    ht_top_view_close(l->view);
    l->view = NULL;
    return end;
}

/* The follower reads no more (the copy goes on to the tee alone), and the model ends. */
static void model_close(ht_live *l)
{
    ht_live_copy_quiet(&l->copy);
    model_end(l);
}

typedef struct stop_call {
    int (*stop)(void *);
    void *context;
    int result;
} stop_call;

static void *stop_main(void *argument)
{
    stop_call *call = argument;
    call->result = call->stop(call->context);
    return NULL;
}

int ht_live_stop(ht_live *l, const ht_live_hooks *hooks, int (*stop)(void *), void *context)
{
    if (!l->series || !l->reader || l->ended) {
        model_close(l); /* nothing more to learn: never hold the process's writer up */
        return stop(context);
    }
    /* The profiles want the rest: read on while the stop runs beside. */
    stop_call call = {stop, context, 0};
    pthread_t thread;
    if (pthread_create(&thread, NULL, stop_main, &call) != 0) {
        model_close(l);
        return stop(context);
    }
    caught_signal = 0;
    l->signal = 0;
    run_plain(l, hooks);
    pthread_join(thread, NULL);
    return call.result;
}

int ht_live_close(ht_live *l)
{
    int code = HT_CLI_EXIT_OK;
    model_close(l);
    if (l->series && hti_pprof_series_error(l->series)) {
        ht_cli_error("%s", hti_pprof_series_error(l->series));
        code = HT_CLI_EXIT_IO;
    }
    if (l->follow_fd >= 0)
        close(l->follow_fd);
    ht_live_copy_finish(&l->copy, COPY_END_WAIT_S);
    if (l->copy.tee_error) {
        ht_cli_error("cannot write the trace to '%s': %s", l->settings.tee,
                     strerror(l->copy.tee_error));
        code = HT_CLI_EXIT_IO;
    }
    if (l->copy.tee > STDERR_FILENO && close(l->copy.tee) != 0 && !code) {
        ht_cli_error("cannot write the trace to '%s': %s", l->settings.tee, strerror(errno));
        code = HT_CLI_EXIT_IO;
    }
    if (l->series) {
        unsigned written = hti_pprof_series_written(l->series, false);
        unsigned peaks = hti_pprof_series_written(l->series, true);
        fprintf(stderr, "heaptrail: %u profile%s", written, written == 1 ? "" : "s");
        if (l->settings.pprof_at_peak)
            fprintf(stderr, " and %u peak profile%s", peaks, peaks == 1 ? "" : "s");
        fprintf(stderr, " in %s (%s.*.pb.gz)\n",
                l->settings.pprof_dir ? l->settings.pprof_dir : ".", l->settings.pprof_name);
        hti_pprof_series_close(l->series);
    }
    ht_live_frame_free(&l->frame);
    free(l);
    return code;
}
