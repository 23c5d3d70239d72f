/* pprof_series.c — continuous profiles of a live trace (`record --pprof-every`, `start
 * --pprof-every`): at every boundary of the interval, in trace time (the analysis's sample hook,
 * once per boundary also while the program is idle), and at each new peak when asked, a gzipped
 * pprof profile of the model's state then (export_pprof.c), written atomically: first
 * DIR/.NAME.SEQ.pb.gz.tmp, flushed to disk, then renamed to DIR/NAME.SEQ.pb.gz (peaks:
 * DIR/NAME.peak.SEQ.pb.gz), so a collector never sees half a file.
 *
 * An interval profile holds, per stack, what `report --to T` gives at its end T (alloc_*: since
 * the session began, inuse_*: live at T) and what `report --from T-I --to T` gives (interval_
 * alloc_*: allocated in the interval, interval_inuse_*: of those, live at T). A new peak is one at
 * least PEAK_GROWTH above the last peak profile, written at most once per PEAK_GAP_NS of wall
 * time; the session's highest peak is written at its end if it was not. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analyze_internal.h"
#include "analyze/pprof_series.h"

#define PEAK_GROWTH 1.10
#define PEAK_GAP_NS 1000000000ull
#define COMMENTS 8

struct hti_pprof_series {
    ht_analysis *a;
    char *dir, *name;
    uint64_t every_ns;
    bool at_peak;
    unsigned written, peaks_written; /* the numbers of the last files (numbering goes on
                                      * across the program images of one recording) */
    bool sampled;                    /* an interval profile was taken */
    uint64_t last_ns;                /* relative: the end of the last interval profile */
    double *previous;                /* per site: allocations (count, bytes) at last_ns */
    double *interval;                /* per site: the 4 interval values (export_pprof.c) */
    size_t site_capacity;
    double peak_written; /* live bytes of the last peak profile */
    uint64_t peak_epoch; /* the model's peak epoch it showed */
    uint64_t peak_wall;  /* CLOCK_MONOTONIC when it was written */
    int error;
    char message[PATH_MAX + 64];
};

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void series_fail(hti_pprof_series *s, int error, const char *format, const char *detail)
{
    if (s->error)
        return; /* the first failure is the one said */
    s->error = error;
    snprintf(s->message, sizeof s->message, format, detail);
}

/* Wall-clock time of a relative trace time, as ISO 8601 UTC. */
static const char *wall_time(char *buffer, size_t size, const ht_analysis *a, uint64_t ns)
{
    uint64_t t = a->info->start_realtime_ns + ns;
    time_t seconds = (time_t)(t / 1000000000ull);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    size_t n = strftime(buffer, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buffer + n, size - n, ".%03uZ", (unsigned)(t / 1000000u % 1000u));
    return buffer;
}

/* Writes one profile under its final name, through a temporary one. */
static int write_atomically(hti_pprof_series *s, const char *file, const hti_pprof_moment *m)
{
    char path[PATH_MAX], temporary[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", s->dir, file) >= (int)sizeof path ||
        snprintf(temporary, sizeof temporary, "%s/.%s.tmp", s->dir, file) >=
            (int)sizeof temporary) {
        series_fail(s, -ENAMETOOLONG, "profile path too long: %s", s->dir);
        return -ENAMETOOLONG;
    }
    int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!out) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        series_fail(s, -e, "cannot write %s", temporary);
        return -e;
    }
    char error[256];
    int status = hti_pprof_write(s->a, out, m, error, sizeof error);
    if (status == 0 && (fflush(out) != 0 || fsync(fileno(out)) != 0))
        status = -errno;
    if (fclose(out) != 0 && status == 0)
        status = -errno;
    if (status == 0 && rename(temporary, path) != 0)
        status = -errno;
    if (status) {
        unlink(temporary);
        series_fail(s, status, "cannot write %s", path);
    }
    return status;
}

static void add_comments(const hti_pprof_series *s, const hti_pprof_moment *m, char text[][256],
                         const char **comments, size_t *count, const char *what)
{
    const ht_analysis *a = s->a;
    char from[48], to[48];
    size_t n = 0;
    snprintf(text[n++], 256, "heaptrail %s of %s (pid %" PRIu32 ")", what, a->info->program,
             a->info->pid);
    snprintf(text[n++], 256, "program: %s", a->info->program);
    snprintf(text[n++], 256, "pid: %" PRIu32, a->info->pid);
    snprintf(text[n++], 256, "command line: %.200s", a->info->command_line);
    snprintf(text[n++], 256, "time: %s to %s (+%.3fs to +%.3fs of the session)",
             wall_time(from, sizeof from, a, m->from_ns), wall_time(to, sizeof to, a, m->time_ns),
             (double)m->from_ns / 1e9, (double)m->time_ns / 1e9);
    snprintf(text[n++], 256, "%s",
             m->at_peak ? "inuse_*: live at the peak; alloc_*: allocated since the session began"
                        : "inuse_*: live at the end of the interval; alloc_*: since the session "
                          "began; interval_*: allocated in the interval, and of those still live");
    if (a->info->sample_interval)
        snprintf(text[n++], 256,
                 "sampled: one allocation every %" PRIu64 " bytes on average; values are "
                 "estimates, each sample scaled by 1/p",
                 a->info->sample_interval);
    for (size_t i = 0; i < n; i++)
        comments[i] = text[i];
    *count = n;
}

/* Profile number of m with its comments, as NAME<kind>.NUMBER.pb.gz; true if written. */
static bool write_profile(hti_pprof_series *s, hti_pprof_moment *m, const char *what,
                          const char *kind, unsigned number)
{
    char text[COMMENTS][256];
    const char *comments[COMMENTS];
    add_comments(s, m, text, comments, &m->comment_count, what);
    m->comments = comments;
    char file[NAME_MAX + 1];
    snprintf(file, sizeof file, "%s%s.%04u.pb.gz", s->name, kind, number);
    return write_atomically(s, file, m) == 0;
}

static int grow_sites(hti_pprof_series *s)
{
    size_t need = s->a->site_count;
    if (need <= s->site_capacity)
        return 0;
    size_t capacity = s->site_capacity ? s->site_capacity : 64;
    while (capacity < need)
        capacity *= 2;
    double *previous = realloc(s->previous, capacity * 2 * sizeof *previous);
    if (previous)
        s->previous = previous;
    double *interval = realloc(s->interval, capacity * 4 * sizeof *interval);
    if (interval)
        s->interval = interval;
    if (!previous || !interval)
        return -ENOMEM;
    /* Sites made since the last profile had nothing at its time. */
    memset(s->previous + 2 * s->site_capacity, 0,
           (capacity - s->site_capacity) * 2 * sizeof *previous);
    s->site_capacity = capacity;
    return 0;
}

/* The analysis's sample hook: the state is as of time_ns (relative). */
static void series_sample(void *context, ht_analysis *a, uint64_t time_ns)
{
    hti_pprof_series *s = context;
    if (time_ns <= s->last_ns && s->sampled)
        return; /* the end fell on a boundary: that profile is written */
    s->sampled = true;
    if (grow_sites(s) != 0) {
        series_fail(s, -ENOMEM, "out of memory%s", "");
        return;
    }
    for (size_t i = 0; i < a->site_count; i++) {
        const hti_site *site = &a->sites[i];
        double *v = &s->interval[4 * i];
        v[0] = site->alloc_count - s->previous[2 * i];
        v[1] = site->alloc_bytes - s->previous[2 * i + 1];
        v[2] = v[3] = 0;
    }
    /* Live blocks allocated in the interval: report --from's rule for leaks (analyze.c). */
    uint64_t from_abs = a->info->start_ns + s->last_ns;
    for (size_t i = 0; i <= a->blocks.mask; i++) {
        const hti_block *b = &a->blocks.slots[i];
        if (!b->address || hti_block_time(b) < from_abs)
            continue;
        s->interval[4 * (size_t)b->site + 2] += b->weight;
        s->interval[4 * (size_t)b->site + 3] += (double)hti_block_size(b) * b->weight;
    }
    hti_pprof_moment m = {.from_ns = s->last_ns, .time_ns = time_ns, .interval = s->interval};
    if (write_profile(s, &m, "profile", "", s->written + 1))
        s->written++;
    for (size_t i = 0; i < a->site_count; i++) {
        s->previous[2 * i] = a->sites[i].alloc_count;
        s->previous[2 * i + 1] = a->sites[i].alloc_bytes;
    }
    s->last_ns = time_ns;
}

static void write_peak(hti_pprof_series *s)
{
    ht_analysis *a = s->a;
    hti_pprof_moment m = {.from_ns = 0, .time_ns = a->peak_time_ns, .at_peak = true};
    if (write_profile(s, &m, "peak profile", ".peak", s->peaks_written + 1))
        s->peaks_written++;
    s->peak_written = a->peak_bytes;
    s->peak_epoch = a->peak_epoch;
    s->peak_wall = monotonic_ns();
}

hti_pprof_series *hti_pprof_series_open(ht_analysis *a, const char *dir, const char *name,
                                        uint64_t every_ns, bool at_peak, char *error,
                                        size_t error_size)
{
    struct stat st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        snprintf(error, error_size, "cannot create %s: %s", dir, strerror(errno));
        return NULL;
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK) != 0) {
        snprintf(error, error_size, "%s: not a writable directory", dir);
        return NULL;
    }
    hti_pprof_series *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir)) || !(s->name = strdup(name))) {
        hti_pprof_series_close(s);
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    s->a = a;
    s->every_ns = every_ns;
    s->at_peak = at_peak;
    return s;
}

void hti_pprof_series_hooks(hti_pprof_series *s, hti_hooks *hooks)
{
    if (!s->every_ns)
        return;
    hooks->context = s;
    hooks->sample = series_sample;
    hooks->sample_interval_ns = s->every_ns;
    hooks->every_boundary = true;
}

void hti_pprof_series_poll(hti_pprof_series *s)
{
    const ht_analysis *a = s->a;
    if (!s->at_peak || a->peak_epoch == s->peak_epoch || a->peak_bytes <= 0 ||
        a->peak_bytes < s->peak_written * PEAK_GROWTH)
        return;
    if (s->peaks_written && monotonic_ns() - s->peak_wall < PEAK_GAP_NS)
        return;
    write_peak(s);
}

void hti_pprof_series_finish(hti_pprof_series *s)
{
    const ht_analysis *a = s->a;
    if (s->at_peak && a->peak_bytes > s->peak_written && a->peak_epoch != s->peak_epoch)
        write_peak(s);
}

void hti_pprof_series_number_from(hti_pprof_series *s, unsigned written, unsigned peaks)
{
    s->written = written;
    s->peaks_written = peaks;
}

unsigned hti_pprof_series_written(const hti_pprof_series *s, bool peaks)
{
    return peaks ? s->peaks_written : s->written;
}

const char *hti_pprof_series_error(const hti_pprof_series *s)
{
    return s->error ? s->message : NULL;
}

void hti_pprof_series_close(hti_pprof_series *s)
{
    if (!s)
        return;
    free(s->dir);
    free(s->name);
    free(s->previous);
    free(s->interval);
    free(s);
}
