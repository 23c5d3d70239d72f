/* session.c — starting and stopping a trace session: options and environment, the output, the
 * clock, the rundown, exit/fork/signal handling, statistics.
 *
 * One session at a time: control_lock guards its phase (idle, starting, running, stopping) and is
 * held only to change it, never across a call that can wait (opening the output, the rundown, the
 * writer's drains), so an exit handler always gets it. Start order matters for the rundown rule
 * (FORMAT.md "Rundown"): writer running, hooks switched on, a barrier on every thread
 * (wait_untraced_operations), then the rundown timestamp taken, then every heap walked; a consumer
 * applies rundown records before events of equal or later time, inserting a block only if it does
 * not know it already. Stop switches the hooks off, issues a barrier on every thread
 * (hti_hooks_barrier), and lets the writer drain until no thread is inside a hook, then drain
 * everything and write the footer, with the heaps' end state this thread walks for it
 * (hti_session_end_state) and the peak committed kept since the start. Waits on the output are
 * bounded in discard and ring modes, and in every mode at exit (DESIGN.md). A session whose
 * output's reader went away ends by itself: the writer sees it and starts a thread that stops
 * the session as a stop request would (the stop joins the writer, which cannot join itself), so
 * the phase, the writer and the descriptor are reaped without a client. All tracer work on the
 * calling thread runs under the guard, so allocations it causes are not traced. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "options.h"
#include "rundown.h"
#include "stop_world.h"
#include "trace_internal.h"

hti_session hti_session_state;

static pthread_mutex_t control_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t generations;
static bool atexit_registered;
static bool atfork_registered;
static bool writer_fork_handlers;
static ht_trace_options saved_options; /* for follow_forks */
static char saved_path[4096];
static bool fork_pending;

/* ---- clock ---- */

int hti_clock_tsc;

/* Calibration: ns = base_ns + (ticks - base_ticks) * mult >> 32, refreshed by the writer. */
static struct {
    _Atomic uint32_t sequence;
    uint64_t first_ticks, first_ns;
    _Atomic uint64_t base_ticks, base_ns, mult; /* the sequence lock's words (relaxed) */
    uint64_t ticks_per_second;
} calibration;
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

static void clock_setup(void)
{
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000007u &&
        __get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8)) &&
        !hti_option_env_flag(HTI_OPTION_NO_TSC))
        hti_clock_tsc = 1;
#endif
    uint64_t t0 = hti_ticks(), n0 = hti_monotonic_ns();
    uint64_t t1 = t0, n1 = n0;
    if (hti_clock_tsc) {
        while (n1 - n0 < 2000000) { /* 2 ms: a first estimate, refined by later samples */
            t1 = hti_ticks();
            n1 = hti_monotonic_ns();
        }
    }
    calibration.first_ticks = t0;
    calibration.first_ns = n0;
    atomic_store_explicit(&calibration.base_ticks, t0, memory_order_relaxed);
    atomic_store_explicit(&calibration.base_ns, n0, memory_order_relaxed);
    if (hti_clock_tsc && t1 > t0) {
        calibration.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
        calibration.ticks_per_second = (uint64_t)((unsigned __int128)(t1 - t0) * 1000000000u /
                                                  (n1 - n0));
    } else {
        calibration.mult = 1ull << 32;
        calibration.ticks_per_second = 1000000000u;
    }
}

void hti_clock_init(void)
{
    pthread_once(&clock_once, clock_setup);
}

uint64_t hti_clock_ticks_per_second(void)
{
    return calibration.ticks_per_second;
}

void hti_clock_sample(uint64_t *ticks, uint64_t *ns)
{
    uint64_t n0 = hti_monotonic_ns();
    uint64_t t = hti_ticks();
    uint64_t n1 = hti_monotonic_ns();
    *ticks = t;
    *ns = n0 + (n1 - n0) / 2;
    if (!hti_clock_tsc || t <= calibration.first_ticks || *ns <= calibration.first_ns)
        return;
    /* Refine the slope over the longest baseline (first sample to this one). */
    uint64_t mult = (uint64_t)(((unsigned __int128)(*ns - calibration.first_ns) << 32) /
                               (t - calibration.first_ticks));
    atomic_fetch_add_explicit(&calibration.sequence, 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release); /* the odd count before the words */
    atomic_store_explicit(&calibration.base_ticks, t, memory_order_relaxed);
    atomic_store_explicit(&calibration.base_ns, *ns, memory_order_relaxed);
    atomic_store_explicit(&calibration.mult, mult, memory_order_relaxed);
    atomic_fetch_add_explicit(&calibration.sequence, 1, memory_order_release);
}

uint64_t hti_clock_to_ns(uint64_t ticks)
{
    uint64_t base_ticks, base_ns, mult;
    uint32_t seq;
    do {
        seq = atomic_load_explicit(&calibration.sequence, memory_order_acquire);
        base_ticks = atomic_load_explicit(&calibration.base_ticks, memory_order_relaxed);
        base_ns = atomic_load_explicit(&calibration.base_ns, memory_order_relaxed);
        mult = atomic_load_explicit(&calibration.mult, memory_order_relaxed);
        atomic_thread_fence(memory_order_acquire); /* the words before the second look */
    } while ((seq & 1u) ||
             atomic_load_explicit(&calibration.sequence, memory_order_relaxed) != seq);
    if (ticks >= base_ticks)
        return base_ns + (uint64_t)(((unsigned __int128)(ticks - base_ticks) * mult) >> 32);
    uint64_t back = (uint64_t)(((unsigned __int128)(base_ticks - ticks) * mult) >> 32);
    return back < base_ns ? base_ns - back : 0;
}

/* ---- messages ---- */

void hti_message(const char *message, const char *detail, long number)
{
    char line[512];
    size_t n = 0;
    const char *parts[3] = {"heaptrail: ", message, detail};
    for (int i = 0; i < 3; i++) {
        if (!parts[i])
            continue;
        if (i == 2 && n < sizeof line - 1)
            line[n++] = ' ';
        for (const char *c = parts[i]; *c && n < sizeof line - 24; c++)
            line[n++] = *c;
    }
    if (number >= 0) {
        char digits[24];
        int d = 0;
        do {
            digits[d++] = (char)('0' + number % 10);
            number /= 10;
        } while (number && d < 22);
        line[n++] = ' ';
        while (d)
            line[n++] = digits[--d];
    }
    line[n++] = '\n';
    (void)!write(STDERR_FILENO, line, n);
}

/* ---- options ---- */

void ht_trace_options_init(ht_trace_options *o)
{
    memset(o, 0, sizeof *o);
    o->output_fd = -1;
    o->mode = HT_TRACE_MODE_BLOCK;
    o->buffer_size = HT_TRACE_DEFAULT_BUFFER;
    o->flush_interval_ms = 100;
}

static int expand_path(const char *pattern, pid_t pid, char *out, size_t size)
{
    size_t n = 0;
    bool had_pid = false;
    for (const char *c = pattern; *c; c++) {
        if (c[0] == '%' && c[1] == 'p') {
            int w = snprintf(out + n, size - n, "%d", (int)pid);
            if (w < 0 || (size_t)w >= size - n)
                return -ENAMETOOLONG;
            n += (size_t)w;
            c++;
            had_pid = true;
            continue;
        }
        if (n + 1 >= size)
            return -ENAMETOOLONG;
        out[n++] = *c;
    }
    out[n] = '\0';
    return had_pid ? 1 : 0;
}

/* The output path of a session: the pattern with %p replaced by the pid. A session started in
 * a fork child (follow_forks) appends ".PID" to a pattern without %p. Every generation starts
 * from the first session's pattern, so a grandchild's name is made like a child's. */
static int session_path(const char *pattern, pid_t pid, bool in_child, char *out, size_t size)
{
    int had_pid = expand_path(pattern, pid, out, size);
    if (had_pid < 0)
        return had_pid;
    if (!had_pid && in_child) {
        size_t n = strlen(out);
        int w = snprintf(out + n, size - n, ".%d", (int)pid);
        if (w < 0 || (size_t)w >= size - n)
            return -ENAMETOOLONG;
    }
    return 0;
}

/* ---- rundown ---- */

ht_heap *_Atomic hti_tracer_heap;

/* The heaps a session shows: all but heaptrail's own, or the one its filter names. */
bool hti_heap_traced(const hti_session *s, const ht_heap *heap)
{
    return (!s->options.heap || s->options.heap == heap) &&
           heap != atomic_load_explicit(&hti_tracer_heap, memory_order_relaxed);
}

static const hti_rundown_provider *_Atomic rundown_provider;

void hti_trace_set_rundown_provider(const hti_rundown_provider *provider)
{
    atomic_store_explicit(&rundown_provider, provider, memory_order_release);
}

const hti_rundown_provider *hti_rundown_provider_get(void)
{
    return atomic_load_explicit(&rundown_provider, memory_order_acquire);
}

/* Every heap of the process, in memory from hti_map_memory (hti_unmap_memory(heaps, *mapped)),
 * as the registered provider lists them; NULL when out of memory or with no provider. */
ht_heap **hti_heap_list(const hti_rundown_provider *provider, size_t *count, size_t *mapped)
{
    if (!provider)
        return NULL;
    size_t capacity = 256;
    for (;;) {
        ht_heap **heaps = hti_map_memory(capacity * sizeof *heaps);
        if (!heaps)
            return NULL;
        *count = provider->list(heaps, capacity);
        if (*count <= capacity) {
            *mapped = capacity * sizeof *heaps;
            return heaps;
        }
        hti_unmap_memory(heaps, capacity * sizeof *heaps);
        capacity = *count + 64;
    }
}

/* The traced heaps' states added up, each looked at under its lock (the provider's summarize).
 * False when out of memory or with no provider. */
static bool traced_summary(const hti_session *s, hti_rundown_heap *total)
{
    const hti_rundown_provider *provider = atomic_load_explicit(&rundown_provider,
                                                                memory_order_acquire);
    size_t count, mapped;
    ht_heap **heaps = hti_heap_list(provider, &count, &mapped);
    if (!heaps)
        return false;
    memset(total, 0, sizeof *total);
    for (size_t i = 0; i < count; i++) {
        hti_rundown_heap one;
        if (!hti_heap_traced(s, heaps[i]) || !provider->summarize(heaps[i], &one))
            continue;
        total->committed += one.committed;
        total->requested += one.requested;
        total->live_blocks += one.live_blocks;
    }
    hti_unmap_memory(heaps, mapped);
    return true;
}

void hti_committed_change(const ht_heap *heap, int64_t bytes)
{
    hti_session *s = &hti_session_state;
    if (!atomic_load_explicit(&hti_trace_gen, memory_order_relaxed) || !hti_heap_traced(s, heap))
        return;
    int64_t now = atomic_fetch_add_explicit(&s->committed, bytes, memory_order_relaxed) + bytes;
    int64_t peak = atomic_load_explicit(&s->committed_peak, memory_order_relaxed);
    while (now > peak &&
           !atomic_compare_exchange_weak_explicit(&s->committed_peak, &peak, now,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void hti_session_end_state(hti_session *s)
{
    /* For a program that allocates no more (at exit, as a rule) this is the live set the
     * events leave, exact whatever was sampled or filtered out. */
    hti_rundown_heap end;
    if (!traced_summary(s, &end))
        return;
    s->end_live_blocks = end.live_blocks;
    s->end_live_bytes = end.requested;
    s->end_known = true;
    /* Only a commit racing with the start can leave the running sum behind the heaps. */
    if ((int64_t)end.committed > atomic_load(&s->committed_peak))
        atomic_store(&s->committed_peak, (int64_t)end.committed);
}

/* Where a heap's rundown records go. */
typedef struct rundown_target {
    hti_trace_thread *stream;
    uint64_t ticks;
    const ht_heap *heap;
} rundown_target;

static void rundown_heap(void *context, const hti_rundown_heap *state)
{
    const rundown_target *t = context;
    hti_emit_rundown_heap(t->stream, t->ticks, t->heap, state->reserved, state->committed,
                          state->live_blocks, state->compatibility);
}

static void rundown_block(void *context, const hti_rundown_block *block)
{
    const rundown_target *t = context;
    hti_emit_rundown_block(t->stream, t->ticks, t->heap, block->requested, block->usable,
                           (uint64_t)(uintptr_t)block->address, block->source);
}

void hti_rundown(hti_session *s)
{
    const hti_rundown_provider *provider = atomic_load_explicit(&rundown_provider,
                                                                memory_order_acquire);
    size_t count, mapped;
    ht_heap **heaps = hti_heap_list(provider, &count, &mapped);
    if (!heaps)
        return;
    hti_trace_thread *stream = hti_stream_open_rundown(hti_gettid());
    if (!stream) {
        hti_unmap_memory(heaps, mapped);
        hti_message("no memory for the rundown", NULL, -1);
        return;
    }
    static const hti_rundown_visitor visitor = {rundown_heap, rundown_block};
    /* The time is taken after the hooks are on: every operation after it is also an event. */
    rundown_target target = {stream, hti_ticks(), NULL};
    for (size_t i = 0; i < count; i++) {
        if (!hti_heap_traced(s, heaps[i]))
            continue;
        target.heap = heaps[i];
        provider->walk(heaps[i], &visitor, &target);
    }
    hti_stream_close(stream);
    hti_unmap_memory(heaps, mapped);
}

/* ---- start and stop ---- */

/* Step (3) of the rundown (FORMAT.md "Rundown"), after the switch and before the rundown time:
 * no heap operation that read the switch as off may change a heap after the walk.
 *
 * The barrier (membarrier: a full fence on every thread of the process, taken at once or at its
 * next schedule) splits each thread at one point: a test of the switch after it sees the session,
 * so a test that read "off" came before it, and so did everything the thread did before that
 * test. That covers every allocation (the block is taken, on every path, before alloc_done and
 * the realloc paths test the switch) and the back-end frees (the block is freed under the heap
 * lock before the test), however long their thread is pre-empted afterwards.
 *
 * The operations that test the switch before their effect, so that their event comes first (a
 * free of an LFH slot or a large block, a heap's destruction), mark themselves in their thread's
 * heap record around test and effect (userspace RCU's read side: plain stores, ordered by this
 * barrier). The heap's provider then waits for every record it finds inside such an operation to
 * leave it: an exact wait, bounded by the stop's own bound for a thread inside a hook. A thread
 * held longer than that (stopped, say) is the exception FORMAT.md states. */
static void wait_untraced_operations(void)
{
    hti_hooks_barrier();
    const hti_rundown_provider *provider = atomic_load_explicit(&rundown_provider,
                                                                memory_order_acquire);
    /* A give-up is silent, as the stop's on a thread held in a hook. */
    if (provider && provider->quiesce)
        provider->quiesce(HTI_QUIESCE_NS, NULL);
}

static void sweep_exited(void)
{
    /* No writer runs: unlink buffers of threads that ended while no session ran (and of threads
     * whose exit destructor never came: a buffer made during their last clean-up). */
    hti_trace_thread *prev = NULL;
    hti_trace_thread *t = atomic_load(&hti_threads);
    hti_trace_thread *self = hti_thread_self();
    while (t) {
        hti_trace_thread *next = t->next;
        if (t != self && (atomic_load(&t->state) == HTI_THREAD_EXITED || hti_thread_gone(t))) {
            hti_trace_thread *expected = t;
            if (prev)
                prev->next = next;
            else if (!atomic_compare_exchange_strong(&hti_threads, &expected, next)) {
                prev = NULL;
                t = atomic_load(&hti_threads);
                continue;
            }
            hti_thread_free(t);
        } else {
            prev = t;
        }
        t = next;
    }
}

static void fork_child(void);

/* Opens the session's output without waiting. A FIFO that nobody reads is refused (-ENXIO, see
 * hti_start_error_text) rather than waited for. Pipes, FIFOs and sockets are then written
 * without blocking (writer.c): a path is opened O_NONBLOCK; an inherited pipe or FIFO is opened
 * again through /proc with O_NONBLOCK, a description of our own, so the program's descriptor
 * is left as it was; a pipe handed over (s->handed_over) is the session's own and is made
 * O_NONBLOCK itself; a socket is written with MSG_DONTWAIT. 0 or -errno. */
static int open_output(hti_session *s, const ht_trace_options *o, bool in_child)
{
    if (o->output_path) {
        if (session_path(o->output_path, getpid(), in_child, s->path, sizeof s->path) < 0)
            return -ENAMETOOLONG;
        int fault = hti_fault_check(&hti_fault_open);
        if (fault)
            return -(fault > 0 ? fault : EIO);
        s->fd = open(s->path, O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0600);
        if (s->fd < 0)
            return -errno;
        s->own_fd = true;
        s->options.output_path = s->path;
    } else if (o->output_fd >= 0) {
        s->fd = o->output_fd;
        s->own_fd = s->handed_over;
    }
    if (s->fd < 0)
        return 0;
    struct stat st;
    if (fstat(s->fd, &st) != 0)
        memset(&st, 0, sizeof st);
    s->seekable = S_ISREG(st.st_mode);
    s->socket = S_ISSOCK(st.st_mode);
    if (s->handed_over && S_ISFIFO(st.st_mode)) {
        int flags = fcntl(s->fd, F_GETFL);
        if (flags < 0 || fcntl(s->fd, F_SETFL, flags | O_NONBLOCK) != 0)
            return -errno;
    } else if (!s->own_fd && S_ISFIFO(st.st_mode)) {
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", s->fd);
        int fd = open(proc, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            s->fd = fd;
            s->own_fd = true;
        } /* else (no /proc, no reader left): written as it is */
    }
    off_t at = s->seekable ? lseek(s->fd, 0, SEEK_CUR) : 0;
    atomic_store(&s->file_offset, at > 0 ? (uint64_t)at : 0);
    return 0;
}

const char *hti_start_error_text(int error)
{
    if (error == -ENXIO)
        return "nothing reads the FIFO (open it for reading first)";
    const char *text = strerrordesc_np(error < 0 ? -error : error);
    return text ? text : "error";
}

/* Sets up and starts a session; the caller holds the phase `starting`. */
/* The options a session runs with: checked (the ranges of options.c), defaults filled in.
 * 0 or -EINVAL. */
static int session_options(const ht_trace_options *options, ht_trace_options *o)
{
    *o = *options;
    if (hti_options_check(o, NULL) != 0)
        return -EINVAL;
    if (o->buffer_size == 0)
        o->buffer_size = HT_TRACE_DEFAULT_BUFFER;
    if (o->flush_interval_ms == 0)
        o->flush_interval_ms = 100;
    if (o->event_mask == HT_EVENT_MASK_ALL)
        o->event_mask = 0;
    return 0;
}

/* A fresh session state for options o (the previous session's statistics are dropped here). */
static void session_reset(hti_session *s, const ht_trace_options *o)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->options = *o;
    s->nfills = (uint32_t)((o->buffer_size + HTI_FILL_BYTES - 1) / HTI_FILL_BYTES);
    if (s->nfills < 2)
        s->nfills = 2;
    if (s->nfills > 65536)
        s->nfills = 65536;
    s->ring = o->mode == HT_TRACE_MODE_RING;
    s->block = o->mode == HT_TRACE_MODE_BLOCK;
    s->filtered = o->event_mask || o->heap || o->min_size || o->max_size || o->sample_interval ||
                  o->stack_depth;
    for (int i = 0; i < HT_TRACE_MAX_CONSUMERS; i++)
        s->has_consumers |= o->consumers[i].callback != NULL;
}

/* The session's generation and start clocks (the HEADER chunk's). */
static void session_stamp(hti_session *s)
{
    s->gen = ++generations;
    s->pid = getpid();
    s->start_ticks = hti_ticks();
    s->start_ns = hti_monotonic_ns();
    struct timespec real;
    clock_gettime(CLOCK_REALTIME, &real);
    s->start_realtime_ns = (uint64_t)real.tv_sec * 1000000000u + (uint64_t)real.tv_nsec;
}

/* Everything that runs beside the program: the stack table, the writer's memory, the module
 * map (kept for the writer), the consumer thread and the writer thread. 0 or -errno; on an
 * error the caller stops what started. */
static int start_machinery(hti_session *s)
{
    int error;
    if (s->options.stack_depth && (error = hti_stacks_init(s)) != 0)
        return error;
    if ((error = hti_writer_start_memory(s)) != 0)
        return error;
    /* The writer thread writes the header, then this module map, first thing: this thread
     * does not wait for the output. A header that cannot be written is reported once (as every
     * failed write) and the session runs on: its events are counted as lost. */
    hti_modules_reset();
    s->defer_chunks = true;
    hti_modules_emit(s, true);
    s->defer_chunks = false;
    if (s->has_consumers && (error = hti_consumer_start(s)) != 0)
        return error;
    return hti_writer_start_thread(s);
}

/* For follow_forks: the session's options with the output path as given, pattern included (o:
 * the session's own holds the path opened; a fork child's session passes the saved pattern back
 * in); and the fork handler, once. */
static void remember_for_forks(const hti_session *s, const ht_trace_options *o)
{
    if (!atfork_registered) {
        pthread_atfork(NULL, NULL, fork_child);
        atfork_registered = true;
    }
    saved_options = s->options;
    if (o->output_path) {
        if (o->output_path != saved_path)
            snprintf(saved_path, sizeof saved_path, "%s", o->output_path);
        saved_options.output_path = saved_path;
    }
}

/* A start failed: the output opened for it is closed (a stream handed over stays the caller's,
 * hti_trace_start_stream). */
static void drop_output(hti_session *s)
{
    if (s->own_fd && s->fd >= 0 && !s->handed_over)
        close(s->fd);
    s->fd = -1;
}

static int start_session(const ht_trace_options *options, bool in_child, bool handed_over)
{
    hti_session *s = &hti_session_state;
    ht_trace_options o;
    int error = session_options(options, &o);
    if (error)
        return error;
    hti_crc32c_init();
    hti_clock_init();
    if ((error = hti_buffers_init()) != 0)
        return error;
    sweep_exited();

    /* Statistics of the previous session are kept until now. */
    session_reset(s, &o);
    s->handed_over = handed_over;
    if ((error = open_output(s, &o, in_child)) != 0) {
        drop_output(s);
        return error;
    }
    session_stamp(s);
    if ((error = start_machinery(s)) != 0) {
        hti_writer_stop(s, 0);
        hti_consumer_stop(s);
        drop_output(s);
        s->gen = 0;
        return error;
    }
    remember_for_forks(s, &o);

    /* The footer's peak committed starts from what the heaps hold now; from the switch on, the
     * EXPAND/CONTRACT hooks keep it (a commit made by another thread between the two is the one
     * it can miss). */
    hti_rundown_heap now;
    if (traced_summary(s, &now)) {
        atomic_store_explicit(&s->committed, (int64_t)now.committed, memory_order_relaxed);
        atomic_store_explicit(&s->committed_peak, (int64_t)now.committed, memory_order_relaxed);
    }
    atomic_store_explicit(&hti_trace_gen, s->gen, memory_order_release);
    if (!o.no_rundown) {
        wait_untraced_operations();
        hti_rundown(s);
    }
    return 0;
}

/* ---- the session's phase ---- */

enum { PHASE_IDLE, PHASE_STARTING, PHASE_RUNNING, PHASE_STOPPING };
static int phase;                      /* under control_lock */
static unsigned users;                 /* flushes and snapshots in progress (under the lock) */
static _Atomic uint32_t phase_changes; /* futex word: bumped when phase or users change */
/* At exit: how long a stop waits for another thread's start or stop (which the exit's give-up
 * bounds) before the process goes on without it. */
#define EXIT_WAIT_NS (HTI_STOP_LIMIT_NS + 2 * HTI_QUIESCE_NS)
/* A stop that may give up waits this long for the writer thread, beyond its own limits. */
#define JOIN_SLACK_NS 2000000000ull

static void phase_changed(void)
{
    atomic_fetch_add(&phase_changes, 1);
    hti_futex_wake(&phase_changes);
}

/* Called with control_lock held; waits for a change of phase or users, the lock released.
 * -ETIMEDOUT once `until` (monotonic ns, 0: never) has passed. */
static int phase_wait(uint64_t until)
{
    uint32_t seen = atomic_load(&phase_changes);
    pthread_mutex_unlock(&control_lock);
    hti_futex_wait(&phase_changes, seen, 10 * 1000 * 1000);
    pthread_mutex_lock(&control_lock);
    return until && hti_monotonic_ns() >= until ? -ETIMEDOUT : 0;
}

static int start(const ht_trace_options *options, bool in_child, bool handed_over)
{
    hti_guard_enter();
    pthread_mutex_lock(&control_lock);
    if (!writer_fork_handlers) { /* a fork parks the writer first (hti_writer_fork_prepare) */
        pthread_atfork(hti_writer_fork_prepare, hti_writer_fork_parent, hti_writer_fork_child);
        writer_fork_handlers = true;
    }
    int error = phase != PHASE_IDLE ? -EBUSY : hti_writer_reap(&hti_session_state);
    if (!error) {
        phase = PHASE_STARTING;
        phase_changed();
    }
    pthread_mutex_unlock(&control_lock);
    if (!error) {
        error = start_session(options, in_child, handed_over);
        pthread_mutex_lock(&control_lock);
        phase = error ? PHASE_IDLE : PHASE_RUNNING;
        phase_changed();
        pthread_mutex_unlock(&control_lock);
    }
    hti_guard_leave();
    return error;
}

int ht_trace_start(const ht_trace_options *options)
{
    if (!options)
        return -EINVAL;
    return start(options, false, false);
}

int hti_trace_start_stream(const ht_trace_options *options)
{
    if (options->output_path || options->output_fd < 0 || options->follow_forks)
        return -EINVAL; /* one descriptor cannot carry a fork child's trace too */
    return start(options, false, true);
}

/* Stops the session; the caller holds the phase `stopping`. The writer waits for the hooks and
 * drains; it may give up on a stalled output in discard and ring modes, and in every mode at
 * exit (hti_exit_give_up_at), and then this waits for it a bounded time only. */
static void stop_session(hti_session *s, bool at_exit)
{
    /* Nothing more reaches an output whose reader went away: the stop does not wait on it, and
     * writes nothing more for it (what is left is counted lost as the writer drains). */
    bool gone = atomic_load(&s->reader_gone) != 0;
    /* The program is done: what it can no longer reach is recorded while the hooks are on, so
     * that the scan's records follow every event of the blocks they name. */
    if (at_exit && s->options.leak_scan && !gone)
        hti_leak_scan(s);
    if (s->ring && !gone)
        hti_rundown(s); /* the flight recorder's file ends on the state it stopped in */
    atomic_store(&s->ended, gone ? HTI_ENDED_CONSUMER_GONE : HTI_ENDED_STOP);
    atomic_store(&hti_trace_gen, 0);
    /* A hook that read the session before the switch now shows in_hook to the writer. */
    hti_hooks_barrier();
    /* The footer's end state: hti_writer_stop walks the heaps on this thread when the writer
     * asks for it (hti_session_end_state). */
    s->end_flags = at_exit ? HTI_FOOTER_AT_EXIT : 0;
    atomic_store(&s->end_handshake, HTI_END_EXPECTED);
    bool bounded = !s->block || at_exit || gone;
    if (!s->block || gone)
        atomic_store(&s->give_up_at, hti_monotonic_ns() + HTI_STOP_LIMIT_NS);
    (void)hti_writer_stop(s, bounded ? HTI_STOP_LIMIT_NS + HTI_QUIESCE_NS + JOIN_SLACK_NS : 0);
    hti_consumer_stop(s);
    if (!s->writer_lingering)
        hti_buffers_trim(); /* the buffers kept for new threads: nothing runs after the stop */
    if (!s->writer_lingering) {
        if (s->own_fd && s->fd >= 0) {
            if (s->seekable)
                (void)!ftruncate(s->fd, (off_t)atomic_load(&s->file_offset));
            close(s->fd);
        }
        s->fd = -1;
    }
    uint64_t lost = atomic_load(&s->lost_write) + atomic_load(&s->lost_consumer);
    if (lost && s->error_reported && !s->handed_over)
        hti_message("events lost because the trace could not be written:", NULL, (long)lost);
}

/* Stops the running session (gen: only if it is that one; 0: whichever runs). */
static int stop(bool at_exit, uint64_t gen)
{
    hti_session *s = &hti_session_state;
    uint64_t until = at_exit ? hti_monotonic_ns() + EXIT_WAIT_NS : 0;
    int error = 0;
    hti_guard_enter();
    pthread_mutex_lock(&control_lock);
    /* Another thread starts or stops a session: wait for it (at exit, its waits give up). */
    while (!error && (phase == PHASE_STARTING || phase == PHASE_STOPPING))
        error = phase_wait(until);
    if (!error && (phase != PHASE_RUNNING || atomic_load(&s->emergency) || (gen && s->gen != gen)))
        error = -ENOENT;
    if (!error) {
        phase = PHASE_STOPPING;
        phase_changed();
        /* Flushes and snapshots end (bounded) before the writer goes; at exit not waited past
         * the limit. */
        while (users && phase_wait(until) == 0) {
        }
    }
    pthread_mutex_unlock(&control_lock);
    if (!error) {
        stop_session(s, at_exit);
        pthread_mutex_lock(&control_lock);
        phase = PHASE_IDLE;
        phase_changed();
        pthread_mutex_unlock(&control_lock);
    }
    hti_guard_leave();
    return error;
}

int ht_trace_stop(void)
{
    return stop(false, 0);
}

int hti_trace_stop_at_exit(void)
{
    uint64_t none = 0;
    atomic_compare_exchange_strong(&hti_exit_give_up_at, &none,
                                   hti_monotonic_ns() + HTI_STOP_LIMIT_NS);
    return stop(true, 0);
}

/* ---- a session whose reader went away ---- */

static uint64_t ending_gen; /* the session an end thread was started for (the writer's) */

static void *end_main(void *argument)
{
    hti_guard_enter(); /* for good: this thread's heap calls are never traced */
    hti_world_own_thread(true);
    pthread_setname_np(pthread_self(), "heaptrail-end");
    (void)stop(false, (uint64_t)(uintptr_t)argument); /* -ENOENT: another stop came first */
    hti_world_own_thread(false);
    return NULL;
}

void hti_session_end_by_itself(hti_session *s)
{
    if (ending_gen == s->gen)
        return;
    /* The writer blocks every signal: so does the new thread. Under the writer's guard, as
     * every thread heaptrail starts (the C library allocates its TLS). */
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    hti_world_own_thread_coming(1);
    int error = pthread_create(&thread, &attributes, end_main, (void *)(uintptr_t)s->gen);
    if (error)
        hti_world_own_thread_coming(-1);
    else
        ending_gen = s->gen;
    pthread_attr_destroy(&attributes);
}

bool ht_trace_is_active(void)
{
    return atomic_load(&hti_trace_gen) != 0;
}

/* A flush or snapshot runs outside the lock, counted in `users`: stop waits for it. */
static int user_enter(void)
{
    pthread_mutex_lock(&control_lock);
    bool running = phase == PHASE_RUNNING && !atomic_load(&hti_session_state.emergency);
    if (running)
        users++;
    pthread_mutex_unlock(&control_lock);
    return running ? 0 : -ENOENT;
}

static void user_leave(void)
{
    pthread_mutex_lock(&control_lock);
    users--;
    phase_changed();
    pthread_mutex_unlock(&control_lock);
}

int ht_trace_flush(void)
{
    if (!atomic_load(&hti_trace_gen))
        return -ENOENT;
    hti_guard_enter();
    int error = user_enter();
    if (!error) {
        error = hti_writer_flush(&hti_session_state, false);
        if (!error)
            error = hti_consumer_wait(&hti_session_state);
        user_leave();
    }
    hti_guard_leave();
    return error;
}

int ht_trace_snapshot(void)
{
    hti_session *s = &hti_session_state;
    if (!atomic_load(&hti_trace_gen))
        return -ENOENT;
    hti_guard_enter();
    int error = user_enter();
    if (!error) {
        if (s->ring)
            hti_rundown(s);
        error = hti_writer_flush(s, true);
        user_leave();
    }
    hti_guard_leave();
    return error;
}

void ht_trace_emergency_flush(void)
{
    hti_session *s = &hti_session_state;
    if (!atomic_load(&hti_trace_gen))
        return;
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong(&s->emergency, &expected, 1))
        return;
    hti_guard_enter();
    atomic_store_explicit(&hti_trace_gen, 0, memory_order_release);
    hti_writer_emergency(s);
    hti_guard_leave();
}

/* ---- environment ----
 * The variables and their rules are options.c's: the same parser as the control protocol and
 * the command line, and one line on stderr for a refused value. */

static int options_from_env(ht_trace_options *o)
{
    char message[512];
    ht_trace_options_init(o);
    int wanted = hti_options_from_environment(o, hti_getenv_lookup, NULL, message, sizeof message);
    if (wanted < 0)
        hti_option_report(message);
    return wanted;
}

static void stop_at_exit(void)
{
    (void)hti_trace_stop_at_exit();
}

int ht_trace_start_from_env(void)
{
    ht_trace_options o;
    hti_guard_enter();
    int wanted = options_from_env(&o);
    hti_guard_leave();
    if (wanted <= 0)
        return wanted;
    int error = ht_trace_start(&o);
    if (error) {
        hti_message("cannot start tracing:", hti_start_error_text(error), -1);
        return error;
    }
    if (!atexit_registered) {
        atexit_registered = true;
        atexit(stop_at_exit);
    }
    return 1;
}

/* ---- fork ---- */

static void fork_child(void)
{
    hti_session *s = &hti_session_state;
    pthread_mutex_init(&control_lock, NULL);
    hti_world_after_fork();
    ending_gen = 0;
    /* The child's own session: ht_trace_fork_child, called from a fork handler registered
     * before this one (the preload library's, when the first session began later), already
     * dropped the parent's session and started the child's. */
    if (atomic_load(&hti_trace_gen) && s->pid == getpid())
        return;
    /* The parent's exit, flushes and snapshots were its own threads' business, and so was the
     * way its last session ended. */
    atomic_store(&hti_exit_give_up_at, 0);
    atomic_store(&s->ended, HTI_ENDED_NONE);
    users = 0;
    bool active = atomic_load(&hti_trace_gen) != 0;
    if (!active && phase == PHASE_IDLE && !s->writer_lingering) {
        /* No session: the caller's buffer gets this thread's id (a buffer is freed once its
         * thread is gone); the next start sweeps the parent's other threads' buffers. */
        hti_thread_after_fork_self();
        return;
    }
    /* The writer and consumer threads do not exist here: drop the parent's session (running,
     * or being started or stopped by another thread at the fork). */
    phase = PHASE_IDLE;
    atomic_store(&hti_trace_gen, 0);
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    s->writer_started = false;
    s->consumer_started = false;
    hti_threads_after_fork();
    hti_writer_forget(s);
    hti_consumer_forget(s);
    fork_pending = active && saved_options.follow_forks;
}

int ht_trace_fork_child(void)
{
    /* Called before our own atfork handler ran (handlers registered earlier run first)? */
    if (atomic_load(&hti_trace_gen) && hti_session_state.pid != getpid())
        fork_child();
    if (!fork_pending)
        return 0;
    fork_pending = false;
    ht_trace_options o = saved_options; /* output_path: the first session's pattern */
    if (!o.output_path && o.output_fd >= 0)
        return 0; /* one descriptor cannot carry two traces */
    int error = start(&o, true, false);
    return error ? error : 1;
}

/* ---- statistics ---- */

void ht_trace_stats_get(ht_trace_stats *stats)
{
    hti_session *s = &hti_session_state;
    memset(stats, 0, sizeof *stats);
    stats->events = atomic_load(&s->events_emitted);
    stats->lost = atomic_load(&s->lost_buffer) + atomic_load(&s->lost_write) +
                  atomic_load(&s->lost_consumer);
    stats->bytes_written = atomic_load(&s->bytes_written);
    stats->chunks_written = atomic_load(&s->chunks_written);
    stats->stacks = hti_stack_count();
    stats->threads = atomic_load(&s->threads);
    stats->write_errors = atomic_load(&s->write_errors);
}
