/* test_modes.c — the session modes and everything around the writer: discard counts its
 * losses (tiny buffer, writer stalled on a pipe nobody reads), block loses nothing behind a slow
 * reader, ring keeps the newest events (and snapshots do not repeat them), real-time consumers
 * receive events while the program runs, failing writes (/dev/full, a file size limit, a disk
 * that fills in the middle of a fill) become counted losses, an emergency flush from a signal
 * handler and a SIGKILL leave readable traces, fork children get their own trace (grandchildren
 * too, named from the first pattern), heap operations made while a thread exits are recorded,
 * and the environment starts a session. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "trace_test.h"

static void sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

/* Copies a pipe into a file until end of file, optionally slowly. */
typedef struct drain {
    int in, out;
    long pause_us;
} drain;

static void *drain_main(void *arg)
{
    drain *d = arg;
    char buffer[4096];
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

static void alloc_free_pairs(ht_heap *heap, int count)
{
    for (int i = 0; i < count; i++)
        ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, (size_t)(i % 1000) + 1));
}

static void test_discard_counts_losses(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "discard");
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = pipe_fds[1];
    o.mode = HT_TRACE_MODE_DISCARD;
    o.buffer_size = 128 << 10; /* two fills */
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    /* Nobody reads the pipe: the writer stalls once it is full, the buffer fills up. */
    const int first = 200000, second = 20000;
    alloc_free_pairs(heap, first);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_true(stats.lost > 0);
    /* Now drain: the thread gets its buffer back and reports what it lost in-stream. */
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0);
    drain d = {pipe_fds[0], out, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, drain_main, &d), 0);
    sleep_ms(50);
    alloc_free_pairs(heap, second);
    assert_int_equal(ht_trace_stop(), 0);
    close(pipe_fds[1]);
    pthread_join(thread, NULL);
    close(out);
    close(pipe_fds[0]);
    ht_trace_stats_get(&stats);

    model m;
    model_init(&m);
    model_read_file(&m, path);
    uint64_t operations = 0;
    int index = model_heap_index(&m, (uint64_t)(uintptr_t)heap);
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int s = 0; s < HT_SOURCE_COUNT; s++)
            operations += m.counts[index][op][s];
    /* Every operation is either in the trace or counted in a LOST record, and the LOST records
     * say exactly what the statistics say. */
    assert_int_equal(m.lost, stats.lost);
    assert_int_equal(operations + m.lost, (uint64_t)(first + second) * 2);
    model_free(&m);
    ht_heap_destroy(heap);
    unlink(path);
}

static void test_block_never_loses(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "block");
    int pipe_fds[2];
    assert_int_equal(pipe(pipe_fds), 0);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(out >= 0);
    drain d = {pipe_fds[0], out, 200}; /* a slow reader */
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, drain_main, &d), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = pipe_fds[1];
    o.buffer_size = 128 << 10;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    const int count = 60000;
    alloc_free_pairs(heap, count);
    assert_int_equal(ht_trace_stop(), 0);
    close(pipe_fds[1]);
    pthread_join(thread, NULL);
    close(out);
    close(pipe_fds[0]);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_int_equal(stats.lost, 0);
    model m;
    model_init(&m);
    model_read_file(&m, path);
    assert_int_equal(m.lost, 0);
    int index = model_heap_index(&m, (uint64_t)(uintptr_t)heap);
    uint64_t operations = 0;
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int s = 0; s < HT_SOURCE_COUNT; s++)
            operations += m.counts[index][op][s];
    assert_int_equal(operations, (uint64_t)count * 2);
    model_free(&m);
    ht_heap_destroy(heap);
    unlink(path);
}

/* Reads a ring trace: the ALLOC sizes must be consecutive (no gap, no repeat) and end with the
 * last one made. Returns the number of allocations seen. */
static uint64_t check_ring_suffix(const char *path, size_t last_size)
{
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    static ht_event e[1024];
    long n;
    uint64_t allocations = 0;
    uint64_t previous = 0;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            if (e[i].kind != HT_EVENT_ALLOC)
                continue;
            uint64_t size = e[i].u.alloc.Size;
            if (allocations && size != previous % 1000 + 1)
                fail_msg("ring: allocation of %" PRIu64 " bytes follows %" PRIu64, size, previous);
            previous = size;
            allocations++;
        }
    assert_int_equal(n, 0);
    assert_int_equal(previous, last_size);
    ht_reader_close(r);
    return allocations;
}

static void test_ring_keeps_newest(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "ring");
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.mode = HT_TRACE_MODE_RING;
    o.buffer_size = 256 << 10; /* four fills */
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    const int count = 300000;
    alloc_free_pairs(heap, count);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    assert_true(before.st_size < 4096); /* nothing written until asked */
    assert_int_equal(ht_trace_stop(), 0);
    uint64_t kept = check_ring_suffix(path, (size_t)((count - 1) % 1000) + 1);
    /* between three and four fills' worth (~5 bytes per event, two events per pair) */
    assert_true(kept > 15000 && kept < (uint64_t)count);
    unlink(path);

    /* A snapshot writes the ring; events written once are not written again. */
    assert_int_equal(ht_trace_start(&o), 0);
    alloc_free_pairs(heap, 1000);
    assert_int_equal(ht_trace_snapshot(), 0);
    for (int i = 1000; i < 3000; i++)
        ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, (size_t)(i % 1000) + 1));
    assert_int_equal(ht_trace_stop(), 0);
    assert_int_equal(check_ring_suffix(path, 1000), 3000);
    ht_heap_destroy(heap);
    unlink(path);
}

/* ---- consumers ---- */

typedef struct consumer_state {
    atomic_ulong events;
    atomic_ulong blocks; /* ALLOC and FREE */
    atomic_ulong batches;
    atomic_ulong rundown;
    atomic_int wrong_thread;
    atomic_int unordered;
    uint64_t last[64];
    uint32_t tids[64];
    pthread_t main_thread;
} consumer_state;

static void consume(const ht_event *events, size_t count, void *context)
{
    consumer_state *c = context;
    if (pthread_equal(pthread_self(), c->main_thread))
        c->wrong_thread = 1;
    void *p = malloc(64); /* callbacks may allocate */
    free(p);
    for (size_t i = 0; i < count; i++) {
        const ht_event *e = &events[i];
        if (e->flags & HT_EVENT_FLAG_RUNDOWN) {
            c->rundown++;
            continue;
        }
        if (e->kind == HT_EVENT_ALLOC || e->kind == HT_EVENT_FREE)
            c->blocks++;
        int slot = (int)(e->thread_id % 64);
        if (c->tids[slot] == e->thread_id && e->timestamp_ns < c->last[slot])
            c->unordered = 1;
        c->tids[slot] = e->thread_id;
        c->last[slot] = e->timestamp_ns;
    }
    c->events += count;
    c->batches++;
}

static void test_consumer_realtime(void **state)
{
    (void)state;
    static consumer_state c;
    memset(&c, 0, sizeof c);
    c.main_thread = pthread_self();
    char path[256];
    temp_path(path, sizeof path, "consumer");
    ht_heap *heap = ht_heap_create(0, 0, 0);
    void *live = ht_heap_alloc(heap, 0, 100);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path; /* a file and a consumer side by side */
    o.flush_interval_ms = 10;
    o.consumers[0].callback = consume;
    o.consumers[0].context = &c;
    assert_int_equal(ht_trace_start(&o), 0);
    alloc_free_pairs(heap, 5000);
    /* Events arrive while the program runs: without any flush, within a few intervals... */
    for (int i = 0; i < 200 && c.blocks < 10000; i++)
        sleep_ms(5);
    assert_int_equal(c.blocks, 10000);
    /* ...and a flush waits until the consumer has seen everything so far. */
    alloc_free_pairs(heap, 5000);
    assert_int_equal(ht_trace_flush(), 0);
    assert_int_equal(c.blocks, 20000);
    assert_true(ht_trace_is_active());
    alloc_free_pairs(heap, 1000);
    assert_int_equal(ht_trace_stop(), 0);
    assert_int_equal(c.blocks, 22000);
    assert_true(c.rundown >= 2); /* heaps and the live block */
    assert_false(c.wrong_thread);
    assert_false(c.unordered);
    model m;
    model_init(&m);
    model_read_file(&m, path);
    assert_int_equal(m.events, (uint64_t)c.events);
    model_free(&m);
    ht_heap_free(heap, 0, live);
    ht_heap_destroy(heap);
    unlink(path);

    /* Consumer only: no file at all. */
    memset(&c, 0, sizeof c);
    c.main_thread = pthread_self();
    o.output_path = NULL;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 3000);
    ht_heap_destroy(heap);
    assert_int_equal(ht_trace_stop(), 0);
    assert_int_equal(c.blocks, 6000);
    assert_true(c.events >= 6000 + 2); /* with HEAP_CREATE, HEAP_DESTROY, expansions */
}

/* ---- failing output ---- */

static void test_write_failure_dev_full(void **state)
{
    (void)state;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = "/dev/full";
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    alloc_free_pairs(heap, 50000); /* the program goes on unharmed */
    assert_int_equal(ht_trace_stop(), 0);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_true(stats.write_errors > 0);
    assert_true(stats.lost >= 100000); /* and the heap's expansions */
    assert_int_equal(stats.bytes_written, 0);
    ht_heap_destroy(heap);
}

static void test_full_disk(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "full");
    struct rlimit old, small = {300 << 10, 0};
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    small.rlim_max = old.rlim_max;
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.no_rundown = true;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    assert_int_equal(ht_trace_start(&o), 0);
    const int count = 150000; /* ~1.3 MB of events into a 300 KiB "disk" */
    alloc_free_pairs(heap, count);
    assert_int_equal(ht_trace_stop(), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, previous);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_true(stats.write_errors > 0);
    assert_true(stats.lost > 0);
    /* The file reads cleanly up to its last whole chunk; every event is there or lost. */
    model m;
    model_init(&m);
    model_read_file(&m, path);
    uint64_t operations = 0;
    int index = model_heap_index(&m, (uint64_t)(uintptr_t)heap);
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int s = 0; s < HT_SOURCE_COUNT; s++)
            operations += m.counts[index][op][s];
    assert_int_equal(operations + stats.lost, (uint64_t)count * 2);
    model_free(&m);
    ht_heap_destroy(heap);
    unlink(path);
}

/* The disk fills in the middle of a fill and then still takes a few bytes: the rest of that
 * fill continues a body the file lost, so it must be counted lost, not written as a chunk the
 * reader has to skip. Flushes decide when bodies are written, so this runs the same every time. */
static void test_full_disk_mid_fill(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "midfill");
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.flush_interval_ms = 60000; /* bodies are written only by the flushes below */
    o.event_mask = HT_EVENT_BIT(HT_EVENT_ALLOC) | HT_EVENT_BIT(HT_EVENT_FREE); /* exact counts */
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    const int before = 100, failing = 2000, after = 20;
    alloc_free_pairs(heap, before);
    assert_int_equal(ht_trace_flush(), 0); /* fill 0 from offset 0: written */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    struct rlimit small = {(rlim_t)st.st_size + 4096, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    alloc_free_pairs(heap, failing); /* ~20 KB into 4 KiB: this body fails */
    assert_int_equal(ht_trace_flush(), 0);
    alloc_free_pairs(heap, after); /* a small body that would fit, continuing the lost one */
    assert_int_equal(ht_trace_flush(), 0);
    assert_int_equal(ht_trace_stop(), 0);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, previous);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_true(stats.write_errors > 0);
    assert_int_equal(stats.lost, (uint64_t)(failing + after) * 2);

    char error[256];
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    static ht_event e[1024];
    long n;
    uint64_t operations = 0, lost = 0;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            if (e[i].kind == HT_EVENT_ALLOC || e[i].kind == HT_EVENT_FREE)
                operations++;
            if (e[i].kind == HT_EVENT_LOST) {
                lost += e[i].u.lost.Count;
                assert_true(e[i].u.lost.FirstTimestamp <= e[i].u.lost.LastTimestamp);
            }
        }
    assert_int_equal(n, 0);
    /* Nothing skipped, every operation there or lost, and the file's LOST records agree. */
    const char *warnings = ht_reader_warnings(r);
    if (warnings && *warnings)
        fail_msg("reader warnings: %s", warnings);
    assert_int_equal(operations, (uint64_t)before * 2);
    assert_int_equal(lost, stats.lost);
    ht_reader_close(r);
    ht_heap_destroy(heap);
    unlink(path);
}

/* ---- crashes, kills, forks ---- */

static void on_abort(int signal_number)
{
    (void)signal_number;
    ht_trace_emergency_flush();
    _exit(3);
}

static void test_emergency_flush(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "emergency");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        signal(SIGABRT, on_abort);
        ht_heap *heap = ht_heap_create(0, 0, 0);
        ht_trace_options o;
        ht_trace_options_init(&o);
        o.output_path = path;
        o.flush_interval_ms = 60000; /* nothing is written unless the flush does it */
        o.no_rundown = true;
        if (ht_trace_start(&o) != 0)
            _exit(1);
        alloc_free_pairs(heap, 1000);
        abort();
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    assert_true(ht_reader_info(r)->complete);
    assert_true(ht_reader_info(r)->events >= 2000); /* and heap expansions */
    ht_reader_close(r);
    unlink(path);
}

static void test_sigkill_leaves_readable_trace(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "killed");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        ht_heap *heap = ht_heap_create(0, 0, 0);
        ht_trace_options o;
        ht_trace_options_init(&o);
        o.output_path = path;
        o.flush_interval_ms = 2;
        if (ht_trace_start(&o) != 0)
            _exit(1);
        for (;;)
            alloc_free_pairs(heap, 1000);
    }
    /* Killed once the child has written a good part of a trace (a slow, loaded or sanitized
     * child takes longer to get there than a fixed pause would allow). */
    struct stat st;
    for (int waited = 0; waited < 20000; waited += 20) {
        if (stat(path, &st) == 0 && st.st_size > 256 * 1024)
            break;
        sleep_ms(20);
    }
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    char error[256];
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    assert_false(ht_reader_info(r)->complete);
    static ht_event e[1024];
    long n, total = 0;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        total += n;
    assert_int_equal(n, 0);
    assert_true(total > 1000);
    ht_reader_close(r);
    unlink(path);
}

static void test_fork_child_gets_own_trace(void **state)
{
    (void)state;
    char pattern[256], parent_path[256], child_path[256];
    temp_path(pattern, sizeof pattern, "fork-%p");
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = pattern;
    o.follow_forks = true;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 100);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (ht_trace_fork_child() != 1)
            _exit(1);
        alloc_free_pairs(heap, 300);
        ht_trace_stop();
        _exit(0);
    }
    int status;
    waitpid(child, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    alloc_free_pairs(heap, 50);
    assert_int_equal(ht_trace_stop(), 0);
    snprintf(parent_path, sizeof parent_path, "%.*s%d.trace",
             (int)(strstr(pattern, "%p") - pattern), pattern, (int)getpid());
    snprintf(child_path, sizeof child_path, "%.*s%d.trace", (int)(strstr(pattern, "%p") - pattern),
             pattern, (int)child);
    ht_reader *r = ht_reader_open(parent_path, NULL, 0);
    assert_non_null(r);
    assert_true(ht_reader_info(r)->events >= 301); /* HEAP_CREATE, 300, expansions */
    assert_int_equal(ht_reader_info(r)->pid, (uint32_t)getpid());
    ht_reader_close(r);
    r = ht_reader_open(child_path, NULL, 0);
    assert_non_null(r);
    assert_true(ht_reader_info(r)->events >= 600);
    assert_int_equal(ht_reader_info(r)->pid, (uint32_t)child);
    ht_reader_close(r);
    ht_heap_destroy(heap);
    unlink(parent_path);
    unlink(child_path);
}

/* Two generations of follow_forks under `name` (in a fresh directory): the parent, a child and
 * a grandchild each write one trace, named from the first session's pattern — %p replaced by
 * the process's pid, or without %p, the pattern itself for the first process and PATTERN.PID
 * for the others. */
static void check_fork_generations(const char *name)
{
    char dir[256], pattern[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/heaptrail-test-%d-gen-XXXXXX", tmp && *tmp ? tmp : "/tmp",
             (int)getpid());
    assert_non_null(mkdtemp(dir));
    snprintf(pattern, sizeof pattern, "%s/%s", dir, name);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = pattern;
    o.follow_forks = true;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 10);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (ht_trace_fork_child() != 1)
            _exit(1);
        alloc_free_pairs(heap, 20);
        pid_t grandchild = fork();
        if (grandchild == 0) {
            if (ht_trace_fork_child() != 1)
                _exit(1);
            alloc_free_pairs(heap, 30);
            _exit(ht_trace_stop() == 0 ? 0 : 1);
        }
        int status;
        int code = grandchild > 0 && waitpid(grandchild, &status, 0) == grandchild &&
                           WIFEXITED(status) && WEXITSTATUS(status) == 0
                       ? 0
                       : 2;
        _exit(ht_trace_stop() == 0 ? code : 1);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(ht_trace_stop(), 0);
    ht_heap_destroy(heap);

    const char *at_pid = strstr(name, "%p");
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *entry;
    uint32_t pids[3];
    int files = 0;
    while ((entry = readdir(d)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[1024], expected[512];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        ht_reader *r = ht_reader_open(path, NULL, 0);
        if (!r)
            fail_msg("unreadable trace %s", entry->d_name);
        uint32_t pid = ht_reader_info(r)->pid;
        assert_true(ht_reader_info(r)->events >= 20);
        ht_reader_close(r);
        if (at_pid)
            snprintf(expected, sizeof expected, "%.*s%u%s", (int)(at_pid - name), name, pid,
                     at_pid + 2);
        else if (pid == (uint32_t)getpid())
            snprintf(expected, sizeof expected, "%s", name);
        else
            snprintf(expected, sizeof expected, "%s.%u", name, pid);
        if (strcmp(entry->d_name, expected) != 0)
            fail_msg("the trace of pid %u is named %s, expected %s", pid, entry->d_name, expected);
        if (files < 3)
            pids[files] = pid;
        files++;
        unlink(path);
    }
    closedir(d);
    rmdir(dir);
    assert_int_equal(files, 3);
    assert_true(pids[0] != pids[1] && pids[1] != pids[2] && pids[0] != pids[2]);
}

static void test_fork_generations_keep_the_pattern(void **state)
{
    (void)state;
    check_fork_generations("gen.%p.trace");
    check_fork_generations("gen.trace");
}

/* ---- thread exit ---- */

/* Heap operations a thread makes while it exits, after the tracer's exit destructor: the keys
 * below are created after the session's (so their destructors run after the tracer's in each
 * round). Even threads free their value there; every thread's first or only heap use is in a
 * later destructor, which allocates a block it keeps and another it frees. */
enum { EXIT_THREADS = 10 };
static ht_heap *exit_heap;
static pthread_key_t exit_value_key, exit_late_key;
static void *exit_kept[EXIT_THREADS];

static void free_value(void *value)
{
    ht_heap_free(exit_heap, 0, value);
}

static void late_destructor(void *value)
{
    size_t index = (size_t)(uintptr_t)value - 1;
    exit_kept[index] = ht_heap_alloc(exit_heap, 0, 300 + index);
    ht_heap_free(exit_heap, 0, ht_heap_alloc(exit_heap, 0, 40));
}

static void *exit_worker(void *argument)
{
    uintptr_t index = (uintptr_t)argument;
    if (index % 2 == 0)
        pthread_setspecific(exit_value_key, ht_heap_alloc(exit_heap, 0, 100 + index));
    pthread_setspecific(exit_late_key, (void *)(index + 1));
    return NULL;
}

/* Two threads forking at once while a session runs: each fork parks the writer (the second
 * waits for the first's fork to end), and afterwards the writer is free: the events of later
 * operations reach the trace, and the stop completes. */
static void *fork_many(void *arg)
{
    ht_heap *heap = arg;
    for (int i = 0; i < 40; i++) {
        alloc_free_pairs(heap, 5);
        pid_t child = fork();
        if (child == 0)
            _exit(0);
        if (child < 0)
            return (void *)1;
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent_forks_leave_the_writer_free(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "forks");
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, fork_many, heap), 0);
    for (int i = 0; i < 2; i++) {
        void *result;
        assert_int_equal(pthread_join(threads[i], &result), 0);
        assert_null(result);
    }
    alloc_free_pairs(heap, 100);
    assert_int_equal(ht_trace_flush(), 0); /* the writer answers: it is not held */
    assert_int_equal(ht_trace_stop(), 0);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    assert_true(ht_reader_info(r)->complete);
    assert_true(ht_reader_info(r)->events >= 2 * (2 * 40 * 5 + 100)); /* every pair's two */
    ht_reader_close(r);
    ht_heap_destroy(heap);
    unlink(path);
}

static void test_thread_exit_events(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "thread-exit");
    exit_heap = ht_heap_create(0, 0, 0);
    assert_non_null(exit_heap);
    ht_heap_counters before;
    assert_true(ht_heap_counters_get(exit_heap, &before));
    start_session(path, HT_TRACE_MODE_BLOCK);
    assert_int_equal(pthread_key_create(&exit_value_key, free_value), 0);
    assert_int_equal(pthread_key_create(&exit_late_key, late_destructor), 0);
    pthread_t threads[EXIT_THREADS];
    for (uintptr_t i = 0; i < EXIT_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, exit_worker, (void *)i), 0);
    for (int i = 0; i < EXIT_THREADS; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(ht_trace_stop(), 0);
    model m;
    model_init(&m);
    model_read_file(&m, path); /* first: every LOST record's first <= last */
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_int_equal(stats.lost, 0);
    assert_int_equal(m.lost, 0);
    model_check_heap(&m, exit_heap); /* the kept blocks, and not the freed values */
    model_check_counters(&m, exit_heap, &before);
    model_free(&m);
    pthread_key_delete(exit_value_key);
    pthread_key_delete(exit_late_key);
    for (int i = 0; i < EXIT_THREADS; i++)
        ht_heap_free(exit_heap, 0, exit_kept[i]);
    ht_heap_destroy(exit_heap);
    unlink(path);
}

static void test_environment(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "env");
    unsetenv("HEAPTRAIL_OUTPUT");
    unsetenv("HEAPTRAIL_FD");
    assert_int_equal(ht_trace_start_from_env(), 0); /* nothing asked */
    setenv("HEAPTRAIL_OUTPUT", path, 1);
    setenv("HEAPTRAIL_MODE", "sideways", 1);
    assert_int_equal(ht_trace_start_from_env(), -EINVAL);
    setenv("HEAPTRAIL_MODE", "discard", 1);
    setenv("HEAPTRAIL_BUFFER", "256k", 1);
    setenv("HEAPTRAIL_STACKS", "4", 1);
    setenv("HEAPTRAIL_UNWIND", "fp", 1);
    setenv("HEAPTRAIL_SAMPLE", "0", 1);
    setenv("HEAPTRAIL_EVENTS", "alloc,free", 1);
    setenv("HEAPTRAIL_COMPRESS", "3", 1);
    assert_int_equal(ht_trace_start_from_env(), 1);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 2000);
    ht_heap_destroy(heap);
    assert_int_equal(ht_trace_stop(), 0);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    const ht_trace_info *info = ht_reader_info(r);
    assert_int_equal(info->mode, HT_TRACE_MODE_DISCARD);
    assert_int_equal(info->stack_depth, 4);
    assert_true(info->events >= 4000 && info->events < 4016); /* heap events filtered out;
                                                                 the rundown is not */
    ht_reader_close(r);
    unlink(path);
    const char *names[] = {"HEAPTRAIL_OUTPUT", "HEAPTRAIL_MODE",    "HEAPTRAIL_BUFFER",
                           "HEAPTRAIL_STACKS", "HEAPTRAIL_UNWIND",  "HEAPTRAIL_SAMPLE",
                           "HEAPTRAIL_EVENTS", "HEAPTRAIL_COMPRESS"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        unsetenv(names[i]);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]); /* one test by name (a pattern), for debugging */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_discard_counts_losses, stop_session),
        cmocka_unit_test_teardown(test_block_never_loses, stop_session),
        cmocka_unit_test_teardown(test_ring_keeps_newest, stop_session),
        cmocka_unit_test_teardown(test_consumer_realtime, stop_session),
        cmocka_unit_test_teardown(test_write_failure_dev_full, stop_session),
        cmocka_unit_test_teardown(test_full_disk, stop_session),
        cmocka_unit_test_teardown(test_full_disk_mid_fill, stop_session),
        cmocka_unit_test_teardown(test_emergency_flush, stop_session),
        cmocka_unit_test_teardown(test_sigkill_leaves_readable_trace, stop_session),
        cmocka_unit_test_teardown(test_fork_child_gets_own_trace, stop_session),
        cmocka_unit_test_teardown(test_fork_generations_keep_the_pattern, stop_session),
        cmocka_unit_test_teardown(test_concurrent_forks_leave_the_writer_free, stop_session),
        cmocka_unit_test_teardown(test_thread_exit_events, stop_session),
        cmocka_unit_test_teardown(test_environment, stop_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
