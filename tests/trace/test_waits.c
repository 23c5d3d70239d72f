/* test_waits.c — the tracer never holds the program unless block mode was asked for: discard and
 * ring sessions on a pipe (or socket) nobody reads start, run and stop, and the program's own
 * descriptor stays blocking; a crash flush into such a pipe ends; block mode at exit stops
 * waiting and counts what it could not write; a FIFO without a reader is refused at once, and
 * one with a slow reader gets every chunk whole; an output that stalls in the middle of a chunk
 * leaves a stream readable up to its last whole chunk; block mode loses nothing when sessions
 * start and stop while threads allocate at full rate; a pipe or socket whose reader goes away
 * ends its session by itself (no thread left, no SIGPIPE at the program, a new start works),
 * and a crash flush into such a pipe raises no SIGPIPE either. Each case that could hang runs
 * in a child process under a watchdog, so a regression fails the test instead of hanging it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "trace/trace_internal.h"
#include "trace_test.h"

/* Generous: the tracer's own bounds are about a second; a held program never ends. */
#define WATCHDOG_SECONDS 30

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static void alloc_free_pairs(ht_heap *heap, int count)
{
    for (int i = 0; i < count; i++)
        ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, (size_t)(i % 1000) + 1));
}

/* Fills a pipe (or a socket) to the brim through its (blocking) write end, which stays
 * blocking. */
static size_t fill_pipe(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    assert_int_equal(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
    static char junk[4096];
    memset(junk, 'x', sizeof junk);
    size_t total = 0;
    for (size_t size = sizeof junk; size > 0; size /= 2) {
        ssize_t n;
        while ((n = write(fd, junk, size)) > 0)
            total += (size_t)n;
    }
    assert_int_equal(fcntl(fd, F_SETFL, flags), 0);
    return total;
}

/* Runs child() in a child process; returns its exit status, or fails the test if it is still
 * running after WATCHDOG_SECONDS (the tracer held it). */
static int run_child(int (*child)(void *), void *argument)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child(argument));
    for (int waited = 0; waited < WATCHDOG_SECONDS * 100; waited++) {
        int status;
        pid_t done = waitpid(pid, &status, WNOHANG);
        assert_true(done >= 0);
        if (done == pid) {
            if (WIFSIGNALED(status))
                fail_msg("the child died of signal %d", WTERMSIG(status));
            return WEXITSTATUS(status);
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("the child was still held by the tracer after %d s", WATCHDOG_SECONDS);
    return -1;
}

/* Reads everything left in a pipe (whose write ends are all closed) into a file; skips the
 * first `skip` bytes. Returns the bytes written to the file. */
static size_t pipe_to_file(int fd, size_t skip, const char *path)
{
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0);
    static char buffer[1 << 16];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buffer, sizeof buffer)) > 0) {
        size_t from = 0;
        if (skip) {
            from = (size_t)n < skip ? (size_t)n : skip;
            skip -= from;
        }
        assert_int_equal(write(out, buffer + from, (size_t)n - from), (ssize_t)((size_t)n - from));
        total += (size_t)n - from;
    }
    close(out);
    return total;
}

/* The file is a trace that reads without error up to its last whole chunk (warnings allowed
 * only for a cut end). Returns its ALLOC and FREE events; *lost gets its LOST counts. */
static uint64_t read_whole_chunks(const char *path, uint64_t *lost, bool *truncated)
{
    char error[512] = "";
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r)
        fail_msg("%s: %s", path, error);
    static ht_event e[1024];
    long n;
    uint64_t operations = 0;
    *lost = 0;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            if (e[i].kind == HT_EVENT_ALLOC || e[i].kind == HT_EVENT_FREE)
                operations++;
            if (e[i].kind == HT_EVENT_LOST)
                *lost += e[i].u.lost.Count;
        }
    if (n < 0)
        fail_msg("%s: %s", path, ht_reader_error(r));
    const char *warnings = ht_reader_warnings(r);
    if (warnings && *warnings && !ht_reader_info(r)->truncated)
        fail_msg("%s: %s", path, warnings);
    if (truncated)
        *truncated = ht_reader_info(r)->truncated;
    ht_reader_close(r);
    return operations;
}

/* ---- discard and ring on a pipe nobody reads ---- */

typedef struct stalled {
    int fd;
    ht_trace_mode mode;
    int pairs;
} stalled;

static int session_on_stalled_pipe(void *argument)
{
    stalled *a = argument;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = a->fd;
    o.mode = a->mode;
    o.buffer_size = 128 << 10;
    if (ht_trace_start(&o) != 0) /* the header cannot be written: start must not wait for it */
        return 10;
    alloc_free_pairs(heap, a->pairs);
    if (a->mode == HT_TRACE_MODE_RING && ht_trace_snapshot() == 0)
        return 11; /* the ring could not have been written */
    if (ht_trace_stop() != 0)
        return 12;
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    /* What could not be written is counted (ring mode: what the ring held at the stop). */
    if (stats.lost < (a->mode == HT_TRACE_MODE_RING ? 1000u : (uint64_t)a->pairs))
        return 13;
    return 0;
}

static void check_stalled_pipe(ht_trace_mode mode)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    size_t filled = fill_pipe(fds[1]);
    stalled a = {fds[1], mode, 50000};
    assert_int_equal(run_child(session_on_stalled_pipe, &a), 0);
    /* The child's tracer wrote through a description of its own: the shared one is as it was. */
    assert_int_equal(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
    close(fds[1]);
    char path[256];
    temp_path(path, sizeof path, "stalled");
    /* Nothing could be written: the pipe holds our bytes and no piece of a chunk. */
    assert_int_equal(pipe_to_file(fds[0], filled, path), 0);
    close(fds[0]);
    unlink(path);
}

static void test_discard_on_a_full_pipe(void **state)
{
    (void)state;
    check_stalled_pipe(HT_TRACE_MODE_DISCARD);
}

static void test_ring_on_a_full_pipe(void **state)
{
    (void)state;
    check_stalled_pipe(HT_TRACE_MODE_RING);
}

/* A socket is written with MSG_DONTWAIT: its descriptor stays blocking for the program. */
static void test_discard_on_a_full_socket(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    size_t filled = fill_pipe(fds[1]);
    assert_true(filled > 0);
    stalled a = {fds[1], HT_TRACE_MODE_DISCARD, 50000};
    assert_int_equal(run_child(session_on_stalled_pipe, &a), 0);
    assert_int_equal(fcntl(fds[1], F_GETFL) & O_NONBLOCK, 0);
    close(fds[0]);
    close(fds[1]);
}

/* ---- a reader that takes some, then stalls ---- */

typedef struct partial_reader {
    int in;
    size_t take; /* bytes read before stalling */
    int out;
    atomic_int release;
} partial_reader;

static void *partial_main(void *argument)
{
    partial_reader *p = argument;
    static char buffer[4096];
    size_t taken = 0;
    while (taken < p->take) {
        size_t want = p->take - taken < sizeof buffer ? p->take - taken : sizeof buffer;
        ssize_t n = read(p->in, buffer, want);
        if (n <= 0)
            return NULL;
        assert_int_equal(write(p->out, buffer, (size_t)n), n);
        taken += (size_t)n;
    }
    while (!atomic_load(&p->release))
        sleep_ms(5);
    ssize_t n;
    while ((n = read(p->in, buffer, sizeof buffer)) > 0)
        assert_int_equal(write(p->out, buffer, (size_t)n), n);
    return NULL;
}

static int discard_into_stalling_reader(void *argument)
{
    int fd = *(int *)argument;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = fd;
    o.mode = HT_TRACE_MODE_DISCARD;
    o.flush_interval_ms = 5;
    if (ht_trace_start(&o) != 0)
        return 10;
    for (int i = 0; i < 40; i++) {
        alloc_free_pairs(heap, 5000);
        sleep_ms(2);
    }
    return ht_trace_stop() == 0 ? 0 : 12;
}

static void test_output_stalls_inside_a_chunk(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "stalling");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    partial_reader p = {fds[0], 150000 + 777, -1, 0}; /* not on a chunk boundary */
    p.out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(p.out >= 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, partial_main, &p), 0);
    assert_int_equal(run_child(discard_into_stalling_reader, &fds[1]), 0);
    close(fds[1]);
    atomic_store(&p.release, 1);
    pthread_join(thread, NULL);
    close(p.out);
    close(fds[0]);
    uint64_t lost;
    uint64_t operations = read_whole_chunks(path, &lost, NULL);
    assert_true(operations > 0);
    unlink(path);
}

/* ---- a crash flush into a pipe nobody reads ---- */

static void on_abort(int signal_number)
{
    (void)signal_number;
    ht_trace_emergency_flush();
    _exit(3);
}

static int crash_on_stalled_pipe(void *argument)
{
    int fd = *(int *)argument;
    signal(SIGABRT, on_abort);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = fd;
    o.mode = HT_TRACE_MODE_DISCARD;
    o.no_rundown = true;
    if (ht_trace_start(&o) != 0)
        return 10;
    alloc_free_pairs(heap, 1000);
    abort();
}

static void test_crash_flush_on_a_full_pipe(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    fill_pipe(fds[1]);
    assert_int_equal(run_child(crash_on_stalled_pipe, &fds[1]), 3);
    close(fds[0]);
    close(fds[1]);
}

/* ---- the reader goes away ---- */

/* A SIGPIPE reaching the program: the tracer must never raise one at it. */
static void on_sigpipe(int signal_number)
{
    (void)signal_number;
    _exit(86);
}

static void guard_sigpipe(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigpipe;
    sigaction(SIGPIPE, &action, NULL);
}

static int thread_count(void)
{
    DIR *dir = opendir("/proc/self/task");
    int count = 0;
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) != NULL)
        count += entry->d_name[0] != '.';
    if (dir)
        closedir(dir);
    return count;
}

typedef struct gone_case {
    bool socket;
    ht_trace_mode mode;
    unsigned flush_ms;
} gone_case;

/* Starts a session on a pipe or socket, closes the reading end, and checks that the session
 * ends by itself within 2 s: no session, no thread but this one, the descriptor (the
 * caller's) still open, and a new start works. */
static int reader_goes_away(void *argument)
{
    const gone_case *c = argument;
    guard_sigpipe();
    int fds[2];
    if ((c->socket ? socketpair(AF_UNIX, SOCK_STREAM, 0, fds) : pipe(fds)) != 0)
        return 10;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = fds[1];
    o.mode = c->mode;
    o.flush_interval_ms = c->flush_ms;
    o.no_rundown = true;
    if (ht_trace_start(&o) != 0)
        return 11;
    alloc_free_pairs(heap, 1000);
    if (ht_trace_flush() != 0 && c->mode != HT_TRACE_MODE_RING)
        return 12;
    close(fds[0]);
    alloc_free_pairs(heap, 1000);
    for (int waited = 0; ht_trace_is_active() || thread_count() > 1; waited++) {
        if (waited == 200)
            return 13; /* still tracing, or a thread of the session stayed, after 2 s */
        sleep_ms(10);
    }
    if (ht_trace_stop() != -ENOENT)
        return 14;
    if (atomic_load(&hti_session_state.ended) != HTI_ENDED_CONSUMER_GONE)
        return 15;
    if (fcntl(fds[1], F_GETFD) < 0)
        return 16; /* the program's descriptor is the program's */
    close(fds[1]);
    char path[256];
    temp_path(path, sizeof path, "after-gone");
    ht_trace_options_init(&o);
    o.output_path = path;
    if (ht_trace_start(&o) != 0)
        return 17;
    alloc_free_pairs(heap, 10);
    if (ht_trace_stop() != 0)
        return 18;
    unlink(path);
    return 0;
}

static void test_reader_goes_away(void **state)
{
    (void)state;
    static const gone_case cases[] = {
        {false, HT_TRACE_MODE_BLOCK, 10}, /* a pipe: EPIPE, and SIGPIPE at the writer */
        {true, HT_TRACE_MODE_BLOCK, 10},  /* a socket: EPIPE with MSG_NOSIGNAL */
        {false, HT_TRACE_MODE_DISCARD, 10},
        {true, HT_TRACE_MODE_RING, 60000}, /* nothing written: the writer's poll sees it */
        {false, HT_TRACE_MODE_RING, 60000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int status = run_child(reader_goes_away, (void *)&cases[i]);
        if (status != 0)
            fail_msg("case %zu: the child's status %d", i, status);
    }
}

/* A crash flush into a pipe whose reader is gone: EPIPE, never a SIGPIPE at the program. */
static int crash_without_reader(void *argument)
{
    (void)argument;
    guard_sigpipe();
    signal(SIGABRT, on_abort);
    int fds[2];
    if (pipe(fds) != 0)
        return 10;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = fds[1];
    o.flush_interval_ms = 60000;
    o.no_rundown = true;
    if (ht_trace_start(&o) != 0 || ht_trace_flush() != 0)
        return 11;
    alloc_free_pairs(heap, 1000);
    close(fds[0]);
    abort();
}

static void test_crash_flush_without_reader(void **state)
{
    (void)state;
    assert_int_equal(run_child(crash_without_reader, NULL), 3);
}

/* ---- block mode at exit ---- */

static int report_fd = -1;

/* Registered before the tracer's own exit handler, so it runs after it. */
static void report_stats(void)
{
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    (void)!write(report_fd, &stats, sizeof stats);
}

static int block_session_then_exit(void *argument)
{
    int fd = *(int *)argument;
    atexit(report_stats);
    char number[16];
    snprintf(number, sizeof number, "%d", fd);
    setenv("HEAPTRAIL_FD", number, 1);
    setenv("HEAPTRAIL_MODE", "block", 1);
    if (ht_trace_start_from_env() != 1)
        return 10;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 3000); /* fits in the buffer: the program itself never waits */
    exit(0);                      /* the exit handler stops the session: it must end */
}

static void test_block_mode_exit_is_bounded(void **state)
{
    (void)state;
    int fds[2], report[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(pipe(report), 0);
    fill_pipe(fds[1]);
    report_fd = report[1];
    assert_int_equal(run_child(block_session_then_exit, &fds[1]), 0);
    close(report[1]);
    ht_trace_stats stats;
    memset(&stats, 0, sizeof stats);
    assert_int_equal(read(report[0], &stats, sizeof stats), (ssize_t)sizeof stats);
    close(report[0]);
    /* Nothing reached the pipe: every event is counted lost, none is silently dropped. */
    assert_int_equal(stats.bytes_written, 0);
    assert_true(stats.lost >= 6000);
    close(fds[0]);
    close(fds[1]);
}

/* ---- FIFOs ---- */

static int start_on_fifo(void *argument)
{
    const char *path = argument;
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    int error = ht_trace_start(&o);
    if (error == 0)
        ht_trace_stop();
    return error == -ENXIO ? 0 : 1;
}

typedef struct drain {
    int in, out;
    long pause_us;
} drain;

static void *drain_main(void *arg)
{
    drain *d = arg;
    char buffer[1000]; /* small reads, slowly: the writer meets a full pipe often */
    ssize_t n;
    while ((n = read(d->in, buffer, sizeof buffer)) > 0) {
        assert_int_equal(write(d->out, buffer, (size_t)n), n);
        if (d->pause_us) {
            struct timespec t = {0, d->pause_us * 1000};
            nanosleep(&t, NULL);
        }
    }
    return NULL;
}

static void test_fifo(void **state)
{
    (void)state;
    char fifo[256], path[256];
    temp_path(fifo, sizeof fifo, "fifo");
    temp_path(path, sizeof path, "fifo-copy");
    unlink(fifo);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* Nobody reads it: the start is refused at once, in one line, instead of waiting. */
    assert_int_equal(run_child(start_on_fifo, fifo), 0);

    /* A slow reader: the writer meets a full pipe in the middle of chunks and completes them. */
    int in = open(fifo, O_RDONLY | O_NONBLOCK);
    assert_true(in >= 0);
    assert_int_equal(fcntl(in, F_SETFL, 0), 0);
    int keep = open(fifo, O_WRONLY); /* the reader sees no end of file before the trace's end */
    assert_true(keep >= 0);
    drain d = {in, open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600), 100};
    assert_true(d.out >= 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, drain_main, &d), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = fifo;
    o.buffer_size = 128 << 10;
    o.flush_interval_ms = 1;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    const int pairs = 40000;
    for (int i = 0; i < 20; i++)
        alloc_free_pairs(heap, pairs / 20);
    assert_int_equal(ht_trace_stop(), 0); /* block mode: waits for the reader, as asked */
    close(keep);
    pthread_join(thread, NULL);
    close(d.out);
    close(in);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_int_equal(stats.lost, 0);
    uint64_t lost;
    bool truncated = true;
    assert_int_equal(read_whole_chunks(path, &lost, &truncated), (uint64_t)pairs * 2);
    assert_false(truncated);
    assert_int_equal(lost, 0);
    ht_heap_destroy(heap);
    unlink(fifo);
    unlink(path);
}

/* ---- block mode: start and stop while threads allocate at full rate ---- */

enum { RACE_THREADS = 3, RACE_SESSIONS = 24 };

typedef struct racer {
    pthread_t thread;
    ht_heap *heap;
    atomic_int *stop;
} racer;

static void *racer_main(void *argument)
{
    racer *r = argument;
    for (uint64_t i = 0; !atomic_load_explicit(r->stop, memory_order_relaxed); i++)
        ht_heap_free(r->heap, 0, ht_heap_alloc(r->heap, 0, (size_t)(i % 1000) + 1));
    return NULL;
}

/* Events the tracer took into the buffers of session `gen` (read once no hook runs for it). */
static uint64_t committed_for(uint64_t gen)
{
    uint64_t total = 0;
    for (hti_trace_thread *t = atomic_load(&hti_threads); t; t = t->next)
        if (atomic_load(&t->published_gen) == gen && !t->rundown)
            total += __atomic_load_n(&t->total_events, __ATOMIC_RELAXED);
    return total;
}

/* Reads a race trace: each racer's ALLOC sizes follow its loop without a gap, and its FREEs
 * match its ALLOCs (give or take the pair cut by the start and by the stop). Returns all the
 * events; *lost gets the LOST counts. */
static uint64_t check_race_trace(const char *path, const racer *racers, uint64_t *lost)
{
    char error[512] = "";
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r)
        fail_msg("%s: %s", path, error);
    static ht_event e[1024];
    uint64_t previous[RACE_THREADS] = {0}, allocs[RACE_THREADS] = {0}, frees[RACE_THREADS] = {0};
    uint64_t events = 0;
    long n;
    *lost = 0;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            events++;
            if (e[i].kind == HT_EVENT_LOST)
                *lost += e[i].u.lost.Count;
            for (int k = 0; k < RACE_THREADS; k++) {
                uint64_t heap = (uint64_t)(uintptr_t)racers[k].heap;
                if (e[i].kind == HT_EVENT_FREE && e[i].u.free.HeapHandle == heap)
                    frees[k]++;
                if (e[i].kind != HT_EVENT_ALLOC || e[i].u.alloc.HeapHandle != heap)
                    continue;
                uint64_t size = e[i].u.alloc.Size;
                if (allocs[k] && size != previous[k] % 1000 + 1)
                    fail_msg("thread %d: an allocation of %" PRIu64 " bytes follows one of %" PRIu64
                             ": events in between are missing",
                             k, size, previous[k]);
                previous[k] = size;
                allocs[k]++;
            }
        }
    if (n < 0)
        fail_msg("%s: %s", path, ht_reader_error(r));
    for (int k = 0; k < RACE_THREADS; k++)
        if (allocs[k] > frees[k] + 1 || frees[k] > allocs[k] + 1)
            fail_msg("thread %d: %" PRIu64 " ALLOC and %" PRIu64 " FREE", k, allocs[k], frees[k]);
    ht_reader_close(r);
    return events;
}

static void test_block_start_stop_race(void **state)
{
    (void)state;
    atomic_int stop = 0;
    racer racers[RACE_THREADS];
    for (int i = 0; i < RACE_THREADS; i++) {
        racers[i].heap = ht_heap_create(0, 0, 0);
        racers[i].stop = &stop;
        assert_int_equal(pthread_create(&racers[i].thread, NULL, racer_main, &racers[i]), 0);
    }
    char path[256];
    temp_path(path, sizeof path, "race");
    for (int session = 0; session < RACE_SESSIONS; session++) {
        ht_trace_options o;
        ht_trace_options_init(&o);
        o.output_path = path;
        o.buffer_size = 128 << 10; /* two fills: threads often wait for room at the stop */
        o.no_rundown = true;
        assert_int_equal(ht_trace_start(&o), 0);
        sleep_ms(2 + session % 5);
        assert_int_equal(ht_trace_stop(), 0);
        uint64_t gen = hti_session_state.gen;
        ht_trace_stats stats;
        ht_trace_stats_get(&stats);
        sleep_ms(20); /* a hook that outlived the stop would have committed by now */
        if (stats.lost)
            fail_msg("session %d: %" PRIu64 " events lost in block mode", session, stats.lost);
        uint64_t lost;
        uint64_t events = check_race_trace(path, racers, &lost);
        assert_int_equal(lost, 0);
        /* Every event that passed the switch is in the file: none was committed after the
         * writer's final drain. */
        uint64_t committed = committed_for(gen);
        if (events != committed)
            fail_msg("session %d: the buffers took %" PRIu64 " events, the file has %" PRIu64,
                     session, committed, events);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < RACE_THREADS; i++) {
        pthread_join(racers[i].thread, NULL);
        ht_heap_destroy(racers[i].heap);
    }
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_discard_on_a_full_pipe, stop_session),
        cmocka_unit_test_teardown(test_ring_on_a_full_pipe, stop_session),
        cmocka_unit_test_teardown(test_discard_on_a_full_socket, stop_session),
        cmocka_unit_test_teardown(test_output_stalls_inside_a_chunk, stop_session),
        cmocka_unit_test_teardown(test_crash_flush_on_a_full_pipe, stop_session),
        cmocka_unit_test_teardown(test_reader_goes_away, stop_session),
        cmocka_unit_test_teardown(test_crash_flush_without_reader, stop_session),
        cmocka_unit_test_teardown(test_block_mode_exit_is_bounded, stop_session),
        cmocka_unit_test_teardown(test_fifo, stop_session),
        cmocka_unit_test_teardown(test_block_start_stop_race, stop_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
