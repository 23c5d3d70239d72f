/* live.c — the live collector behind `heaptrail top`, `record --live`, `record -o -` and
 * `--pprof-every` (live.h).
 *
 * A copy thread reads the trace's descriptor as fast as it comes and writes it whole to the tee
 * (a file, or standard output) and, when the model is wanted, into a pipe the follower reads: so
 * the file has every byte the process wrote, and a slow model only ever slows the process's
 * writer through that pipe (discard mode: counted LOST events, never a stuck program). The main
 * thread reads the follower's final events into the analysis model (the same pass as `report`),
 * writes the periodic profiles from its sample hook, and every second builds a frame for the
 * view from the model's running figures: live bytes and blocks, rates over the last second, per
 * heap and per Source, the sites with their symbolized stacks. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analyze_internal.h"
#include "analyze/pprof_series.h"
#include "cli_common.h"
#include "heaptrail/trace.h"
#include "live.h"
#include "top_view.h"

#define COPY_BYTES (256u << 10)
#define PIPE_BYTES (1u << 20)
#define BATCH_EVENTS 4096
#define REFRESH_MS 1000
#define TICK_MS 100
#define KEY_WAIT_MS 50
#define READ_SLICE_NS 200000000ull /* the longest the loop reads before it looks at keys */
#define FRAME_MAX 128              /* frames of a site's stack shown when expanded */
#define COPY_END_WAIT_S 5          /* how long the end waits for the stream to close */

/* ---- the copy thread ---- */

/* FORMAT.md §1: the preamble (magic, 16 bytes) and a chunk's header (16 bytes: meta length in
 * bytes 2-3, stored body length in 4-7, little-endian). The copy thread follows the framing to
 * find where a new trace starts: a program that execs starts its trace again in the same stream
 * (its new image opens the output anew), as it would overwrite a file. */
#define MAGIC "\x89HTRACE\n"
#define FRAME_HEAD 16u

typedef struct copier {
    int in;            /* the trace's descriptor */
    int tee;           /* -1: none */
    bool tee_seekable; /* a new trace starts the file again */
    int pipe_out;      /* the follower's pipe, -1: none */
    _Atomic int quiet; /* stop feeding the follower (the model is done): copy to the tee only */
    int tee_error;     /* errno of the tee's first failed write */
    uint64_t bytes;
    unsigned traces; /* preambles seen */
    /* the framing */
    uint8_t head[FRAME_HEAD]; /* a preamble or chunk header being read, held back */
    size_t have;
    uint64_t skip; /* bytes of the current chunk still to pass */
    /* The next trace's pipe for the follower, when the program exec'd: the main thread takes it
     * once the current trace ended. */
    pthread_mutex_t lock;
    int next_fd;
    pthread_t thread;
    bool started;
} copier;

static bool write_whole(int fd, const uint8_t *data, size_t n, int *error)
{
    while (n) {
        ssize_t w = write(fd, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            *error = w < 0 ? errno : EIO;
            return false;
        }
        data += w;
        n -= (size_t)w;
    }
    return true;
}

static void copy_out(copier *c, const uint8_t *data, size_t n)
{
    int error = 0;
    if (!n)
        return;
    if (c->tee >= 0 && !c->tee_error && !write_whole(c->tee, data, n, &error))
        c->tee_error = error;
    if (c->pipe_out >= 0 && !atomic_load(&c->quiet) && !write_whole(c->pipe_out, data, n, &error)) {
        close(c->pipe_out); /* the follower is gone */
        c->pipe_out = -1;
    }
}

/* A second preamble: the file starts again, the follower gets a pipe of its own for it. */
static void copy_restart(copier *c)
{
    if (c->tee >= 0 && c->tee_seekable && !c->tee_error &&
        (lseek(c->tee, 0, SEEK_SET) != 0 || ftruncate(c->tee, 0) != 0))
        c->tee_error = errno;
    int old = c->pipe_out, p[2];
    c->pipe_out = -1;
    if (!atomic_load(&c->quiet) && pipe2(p, O_CLOEXEC) == 0) {
        fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES);
        pthread_mutex_lock(&c->lock);
        if (c->next_fd >= 0)
            close(c->next_fd); /* an image that exec'd again before it was read: the newest */
        c->next_fd = p[0];
        pthread_mutex_unlock(&c->lock);
        c->pipe_out = p[1];
    }
    /* After the next pipe is there: the follower that meets this end finds it. */
    if (old >= 0)
        close(old);
}

/* Copies one read, holding back the header at each chunk boundary until it is whole. */
static void copy_framed(copier *c, const uint8_t *data, size_t n)
{
    size_t i = 0, from = 0;
    while (i < n) {
        if (c->skip) {
            size_t take = c->skip < n - i ? (size_t)c->skip : n - i;
            i += take;
            c->skip -= take;
            continue;
        }
        copy_out(c, data + from, i - from); /* up to the boundary */
        size_t take = FRAME_HEAD - c->have < n - i ? FRAME_HEAD - c->have : n - i;
        memcpy(c->head + c->have, data + i, take);
        c->have += take;
        i += take;
        from = i;
        if (c->have < FRAME_HEAD)
            break;
        if (memcmp(c->head, MAGIC, 8) == 0) {
            if (c->traces++)
                copy_restart(c);
        } else {
            c->skip = (uint64_t)(c->head[2] | c->head[3] << 8) +
                      ((uint64_t)c->head[4] | (uint64_t)c->head[5] << 8 |
                       (uint64_t)c->head[6] << 16 | (uint64_t)c->head[7] << 24);
        }
        copy_out(c, c->head, FRAME_HEAD);
        c->have = 0;
    }
    copy_out(c, data + from, n - from);
}

static void *copier_main(void *argument)
{
    copier *c = argument;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* signals are the main thread's */
    uint8_t *buffer = malloc(COPY_BYTES);
    for (;;) {
        ssize_t n = buffer ? read(c->in, buffer, COPY_BYTES) : -1;
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        c->bytes += (uint64_t)n;
        copy_framed(c, buffer, (size_t)n);
    }
    copy_out(c, c->head, c->have); /* a trace cut inside a header: as it came */
    free(buffer);
    if (c->pipe_out >= 0)
        close(c->pipe_out);
    c->pipe_out = -1;
    return NULL;
}

/* The pipe of the trace that followed the current one, or -1. */
static int copier_next(copier *c)
{
    pthread_mutex_lock(&c->lock);
    int fd = c->next_fd;
    c->next_fd = -1;
    pthread_mutex_unlock(&c->lock);
    return fd;
}

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

typedef struct site_text {
    const char *label;
    const char **frames;
    size_t depth;
    bool done;
} site_text;

struct ht_live {
    ht_live_settings settings;
    copier copy;
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
    /* the view's figures */
    site_text *texts;
    size_t text_count, text_capacity;
    hti_strings strings;
    double *site_previous; /* per site: alloc count, bytes at the last frame */
    size_t previous_capacity;
    double *heap_previous; /* per heap: alloc ops, free ops, alloc bytes */
    size_t heap_previous_capacity;
    double source_previous[HT_SOURCE_COUNT][3];
    double total_previous[4]; /* alloc ops, free ops, alloc bytes, free bytes */
    uint64_t lost_previous;
    uint64_t frame_wall; /* CLOCK_MONOTONIC of the last frame built (the rates' start) */
    uint64_t draw_wall;  /* and of the last refresh */
    ht_top_frame frame;
    ht_top_site *sites;
    size_t site_capacity;
    ht_top_row *heap_rows, source_rows[HT_SOURCE_COUNT];
    size_t heap_row_capacity;
    char (*heap_names)[64];
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
    copier *c = &l->copy;
    c->in = fd;
    c->tee = -1;
    c->pipe_out = -1;
    c->next_fd = -1;
    pthread_mutex_init(&c->lock, NULL);
    if (settings->tee && strcmp(settings->tee, "-") == 0) {
        c->tee = STDOUT_FILENO;
    } else if (settings->tee) {
        c->tee = open(settings->tee, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (c->tee < 0) {
            ht_cli_error("cannot create '%s': %s", settings->tee, strerror(errno));
            close(fd);
            free(l);
            *code = HT_CLI_EXIT_IO;
            return NULL;
        }
        struct stat st;
        c->tee_seekable = fstat(c->tee, &st) == 0 && S_ISREG(st.st_mode);
    }
    if (l->settings.model) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            ht_cli_error("cannot create a pipe: %s", strerror(errno));
            *code = HT_CLI_EXIT_IO;
            ht_live_close(l);
            return NULL;
        }
        fcntl(p[1], F_SETPIPE_SZ, PIPE_BYTES); /* a bigger pipe if allowed; fine without */
        l->follow_fd = p[0];
        c->pipe_out = p[1];
    }
    if (pthread_create(&c->thread, NULL, copier_main, c) != 0) {
        ht_cli_error("cannot start a thread: %s", strerror(errno));
        *code = HT_CLI_EXIT_IO;
        ht_live_close(l);
        return NULL;
    }
    c->started = true;
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
    l->frame_wall = monotonic_ns();
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
        char byte;
        if (poll(&p, 1, 0) > 0 && read(fd, &byte, 0) == 0 && !(p.revents & POLLIN)) {
            close(fd);
            return false;
        }
    }
    return model_attach(l, fd);
}

/* The view's figures of a model that is gone (its site and heap indices mean nothing now). */
static void view_forget(ht_live *l)
{
    for (size_t i = 0; i < l->text_count; i++)
        free(l->texts[i].frames);
    l->text_count = 0;
    if (l->site_previous)
        memset(l->site_previous, 0, l->previous_capacity * sizeof *l->site_previous);
    if (l->heap_previous)
        memset(l->heap_previous, 0, l->heap_previous_capacity * sizeof *l->heap_previous);
    memset(l->source_previous, 0, sizeof l->source_previous);
    memset(l->total_previous, 0, sizeof l->total_previous);
    l->lost_previous = 0;
}

/* Ends the model of the trace that ended (its last profiles written) and starts one over the
 * next: the program exec'd. The profiles' numbering goes on; the view starts afresh. */
static bool model_next(ht_live *l, int fd)
{
    unsigned written = 0, peaks = 0;
    if (l->began) {
        char error[512] = "";
        hti_analysis_end(l->analysis, 0, error, sizeof error);
        l->began = false;
    }
    if (l->series) {
        hti_pprof_series_finish(l->series);
        written = hti_pprof_series_written(l->series, false);
        peaks = hti_pprof_series_written(l->series, true);
        if (hti_pprof_series_error(l->series))
            ht_cli_error("%s", hti_pprof_series_error(l->series));
        hti_pprof_series_close(l->series);
        l->series = NULL;
    }
    ht_analysis_close(l->analysis);
    ht_reader_close(l->reader);
    l->analysis = NULL;
    l->reader = NULL;
    view_forget(l);
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
            int next = copier_next(&l->copy);
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

/* ---- the view's frame ---- */

static const char *intern(ht_live *l, const char *text)
{
    const char *s = hti_strings_intern(&l->strings, text, strlen(text));
    return s ? s : "?";
}

/* A frame in the C and C++ runtime (libc's strdup, libstdc++'s operator new, the loader): a
 * site's label names the first frame after them with a name, where the program asked. */
static bool runtime_frame(const hti_frame *f)
{
    static const char *const runtime[] = {"libc.so",  "libc-",   "libstdc++",  "libgcc_s",
                                          "ld-linux", "libm.so", "libpthread", "libdl"};
    if (!f->module)
        return false;
    for (size_t i = 0; i < sizeof runtime / sizeof *runtime; i++)
        if (strncmp(f->module, runtime[i], strlen(runtime[i])) == 0)
            return true;
    return false;
}

/* A site's label and stack, symbolized once (a site's frames never change). */
static const site_text *site_text_of(ht_live *l, uint32_t site)
{
    if (site >= l->text_count) {
        if (hti_grow((void **)&l->texts, &l->text_capacity, (size_t)site + 1, sizeof *l->texts))
            return NULL;
        memset(l->texts + l->text_count, 0, (site + 1 - l->text_count) * sizeof *l->texts);
        l->text_count = (size_t)site + 1;
    }
    site_text *t = &l->texts[site];
    if (t->done)
        return t;
    const char *special = hti_site_label(site);
    if (special) {
        t->label = special;
        t->done = true;
        return t;
    }
    const hti_frame **frames = NULL;
    size_t capacity = 0;
    long n = hti_site_frames(l->analysis, site, &frames, &capacity);
    if (n <= 0) {
        free(frames);
        t->label = "(no frames)";
        t->done = true;
        return t;
    }
    /* The first frame past the runtime's, and of those the first with a name: a stripped
     * library's own allocation wrapper (module+offset) says less than the call into it. */
    long chosen = 0;
    while (chosen + 1 < n && runtime_frame(frames[chosen]))
        chosen++;
    for (long i = chosen; i < n; i++)
        if (frames[i]->function && !runtime_frame(frames[i])) {
            chosen = i;
            break;
        }
    char text[512];
    t->label = intern(l, hti_format_frame(text, sizeof text, frames[chosen], false));
    size_t depth = (size_t)n < FRAME_MAX ? (size_t)n : FRAME_MAX;
    t->frames = calloc(depth, sizeof *t->frames);
    if (t->frames) {
        for (size_t i = 0; i < depth; i++)
            t->frames[i] = intern(l, hti_format_frame(text, sizeof text, frames[i], true));
        t->depth = depth;
    }
    free(frames);
    t->done = true;
    return t;
}

static int grow_arrays(ht_live *l)
{
    const ht_analysis *a = l->analysis;
    size_t sites = a->site_count, heaps = a->heap_count;
    size_t old_sites = l->previous_capacity / 2, old_heaps = l->heap_previous_capacity / 3;
    if (hti_grow((void **)&l->sites, &l->site_capacity, sites + 1, sizeof *l->sites) != 0 ||
        hti_grow((void **)&l->heap_rows, &l->heap_row_capacity, heaps + 1, sizeof *l->heap_rows) !=
            0)
        return -ENOMEM;
    if (sites > old_sites) {
        double *p = realloc(l->site_previous, sites * 2 * sizeof *p);
        if (!p)
            return -ENOMEM;
        memset(p + 2 * old_sites, 0, (sites - old_sites) * 2 * sizeof *p);
        l->site_previous = p;
        l->previous_capacity = sites * 2;
    }
    if (heaps > old_heaps) {
        double *p = realloc(l->heap_previous, heaps * 3 * sizeof *p);
        char(*names)[64] = realloc(l->heap_names, heaps * sizeof *names);
        if (p)
            l->heap_previous = p;
        if (names)
            l->heap_names = names;
        if (!p || !names)
            return -ENOMEM;
        memset(p + 3 * old_heaps, 0, (heaps - old_heaps) * 3 * sizeof *p);
        l->heap_previous_capacity = heaps * 3;
    }
    return 0;
}

static double rate(double now, double before, double seconds)
{
    return seconds > 0 && now > before ? (now - before) / seconds : 0;
}

/* The frame of the model's figures now; rates over the time since the last one. */
static void build_frame(ht_live *l)
{
    ht_analysis *a = l->analysis;
    ht_top_frame *f = &l->frame;
    const ht_trace_info *info = ht_reader_info(l->reader);
    uint64_t now = monotonic_ns();
    double seconds = (double)(now - l->frame_wall) / 1e9;
    l->frame_wall = now;
    if (grow_arrays(l) != 0)
        return;
    hti_sum_heaps(a);
    f->program = l->settings.command ? l->settings.command : hti_basename(info->program);
    f->pid = l->settings.pid ? l->settings.pid : (long)info->pid;
    f->mode = info->mode == HT_TRACE_MODE_DISCARD ? "discard"
              : info->mode == HT_TRACE_MODE_RING  ? "ring"
                                                  : "block";
    f->elapsed_ns = info->end_ns > info->start_ns ? info->end_ns - info->start_ns : 0;
    f->message = l->note[0] ? l->note : NULL;
    f->target_gone = l->ended;
    f->live_bytes = a->live_bytes;
    f->live_blocks = a->live_count;
    f->peak_bytes = a->peak_bytes;
    double totals[4] = {a->alloc_count, a->free_count, a->alloc_bytes, a->free_bytes};
    f->alloc_rate = rate(totals[0], l->total_previous[0], seconds);
    f->free_rate = rate(totals[1], l->total_previous[1], seconds);
    f->alloc_bytes_rate = rate(totals[2], l->total_previous[2], seconds);
    f->free_bytes_rate = rate(totals[3], l->total_previous[3], seconds);
    memcpy(l->total_previous, totals, sizeof totals);
    f->events = a->events;
    uint64_t lost = a->lost_total > info->lost ? a->lost_total : info->lost;
    f->lost = lost;
    f->lost_recent = lost - l->lost_previous;
    l->lost_previous = lost;

    /* Heaps (the one of handle 0 only when it holds something) and Sources. */
    size_t rows = 0;
    double source_now[HT_SOURCE_COUNT][3];
    memset(source_now, 0, sizeof source_now);
    for (size_t i = 0; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        double allocs = 0, frees = 0, bytes = 0;
        for (unsigned s = 0; s < HT_SOURCE_COUNT; s++) {
            allocs += h->alloc_count[s];
            frees += h->free_count[s];
            bytes += h->alloc_bytes[s];
            source_now[s][0] += h->alloc_count[s];
            source_now[s][1] += h->free_count[s];
            source_now[s][2] += h->alloc_bytes[s];
        }
        double *previous = &l->heap_previous[3 * i];
        if (h->handle || h->live_count > 0 || allocs > 0) {
            ht_top_row *r = &l->heap_rows[rows++];
            snprintf(l->heap_names[i], sizeof l->heap_names[i], "0x%llx%s",
                     (unsigned long long)h->handle, h->destroyed ? " (destroyed)" : "");
            r->name = l->heap_names[i];
            r->live_bytes = h->live_bytes;
            r->live_blocks = h->live_count;
            r->alloc_rate = rate(allocs, previous[0], seconds);
            r->free_rate = rate(frees, previous[1], seconds);
            r->alloc_bytes_rate = rate(bytes, previous[2], seconds);
        }
        previous[0] = allocs;
        previous[1] = frees;
        previous[2] = bytes;
    }
    f->heaps = l->heap_rows;
    f->heap_count = rows;
    rows = 0;
    for (unsigned s = 1; s < HT_SOURCE_COUNT; s++) {
        if (source_now[s][0] <= 0 && a->source_live_bytes[s] <= 0)
            continue;
        ht_top_row *r = &l->source_rows[rows++];
        r->name = ht_source_name(s);
        if (strncmp(r->name, "MEMORY_FROM_", 12) == 0)
            r->name += 12; /* LOWFRAG, LOOKASIDE, ...: what fits a narrow column */
        r->live_bytes = a->source_live_bytes[s];
        r->live_blocks = -1; /* the model keeps bytes by Source, not blocks */
        r->alloc_rate = rate(source_now[s][0], l->source_previous[s][0], seconds);
        r->free_rate = rate(source_now[s][1], l->source_previous[s][1], seconds);
        r->alloc_bytes_rate = rate(source_now[s][2], l->source_previous[s][2], seconds);
    }
    memcpy(l->source_previous, source_now, sizeof source_now);
    f->sources = l->source_rows;
    f->source_count = rows;

    /* Sites: those holding memory or allocating. */
    size_t n = 0;
    for (uint32_t i = 0; i < a->site_count; i++) {
        const hti_site *s = &a->sites[i];
        double *previous = &l->site_previous[2 * i];
        if (s->live_bytes < 0.5 && s->alloc_bytes <= previous[1] && s->alloc_count <= previous[0])
            continue;
        const site_text *t = site_text_of(l, i);
        ht_top_site *out = &l->sites[n++];
        out->id = i;
        out->label = t ? t->label : "?";
        out->frames = t ? t->frames : NULL;
        out->depth = t ? t->depth : 0;
        out->live_bytes = s->live_bytes;
        out->live_blocks = s->live_count;
        out->alloc_bytes = s->alloc_bytes;
        out->alloc_count = s->alloc_count;
        out->rate_bytes = rate(s->alloc_bytes, previous[1], seconds);
        out->rate_count = rate(s->alloc_count, previous[0], seconds);
        previous[0] = s->alloc_count;
        previous[1] = s->alloc_bytes;
    }
    f->sites = l->sites;
    f->site_count = n;
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

/* Reads with the view: a frame every REFRESH_MS, keys in between. */
static ht_live_end run_view(ht_live *l, const ht_live_hooks *hooks)
{
    build_frame(l);
    ht_top_view_draw(l->view, &l->frame);
    uint64_t last_tick = monotonic_ns();
    for (;;) {
        bool ended = !l->ended && stream_done(l, model_read(l));
        if (l->restarted) {
            l->restarted = false;
            build_frame(l);
            ht_top_view_draw(l->view, &l->frame);
        }
        if (ended) {
            if (!l->note[0])
                snprintf(l->note, sizeof l->note, "the trace ended: process %ld %s",
                         l->settings.pid, l->failed ? "cannot be read" : "exited or stopped");
            build_frame(l);
            ht_top_view_draw(l->view, &l->frame);
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
        if (now - l->draw_wall >= REFRESH_MS * 1000000ull) {
            /* Paused: the rates after it cover the pause (frame_wall stays). */
            l->draw_wall = now;
            if (!ht_top_view_paused(l->view))
                build_frame(l);
            ht_top_view_draw(l->view, &l->frame);
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
            if (pthread_tryjoin_np(l->copy.thread, NULL) == 0) {
                l->copy.started = false;
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

/* The model's end: the last profile (its sample hook), the peak one; the follower closed, so
 * the copy thread copies the rest to the tee alone. Once. */
static void model_close(ht_live *l)
{
    atomic_store(&l->copy.quiet, 1);
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
    if (l->copy.started) {
        /* The stream ends when the process closes it; one that does not (stopped, wedged)
         * is not waited for long. */
        struct timespec limit;
        clock_gettime(CLOCK_REALTIME, &limit);
        limit.tv_sec += COPY_END_WAIT_S;
        if (pthread_timedjoin_np(l->copy.thread, NULL, &limit) != 0) {
            pthread_cancel(l->copy.thread);
            pthread_join(l->copy.thread, NULL);
        }
    }
    if (l->copy.pipe_out >= 0)
        close(l->copy.pipe_out);
    int next = copier_next(&l->copy);
    if (next >= 0)
        close(next);
    pthread_mutex_destroy(&l->copy.lock);
    close(l->copy.in);
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
    for (size_t i = 0; i < l->text_count; i++)
        free(l->texts[i].frames);
    free(l->texts);
    hti_strings_free(&l->strings);
    free(l->site_previous);
    free(l->heap_previous);
    free(l->heap_names);
    free(l->sites);
    free(l->heap_rows);
    free(l);
    return code;
}
