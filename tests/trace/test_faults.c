/* test_faults.c — injected failures of the writer's system calls (trace_internal.h's hti_fault
 * hooks): the Nth write of the output fails once, for good, or after writing half of itself,
 * into a file and into a pipe, for several N; the open of the output fails. Each time the program
 * goes on, the trace reads without error up to its last whole chunk, and every operation is in
 * it or counted lost (the LOST records in the file say so whenever the output recovers). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "trace/trace_internal.h"
#include "trace_test.h"

enum { PAIRS = 30000 };

typedef struct outcome {
    uint64_t operations; /* ALLOC and FREE in the file */
    uint64_t lost;       /* LOST counts in the file */
    bool truncated;      /* the file ends inside a chunk */
    bool readable;       /* the file is a trace (it is empty when even the header failed) */
    off_t size;
} outcome;

/* Reads a trace up to its last whole chunk; fails the test on any error, or on a warning other
 * than a cut end. header_may_be_cut: a stream cut inside its header (nothing can be read from
 * it, and the reader must say so) is allowed. */
static outcome read_trace(const char *path, bool header_may_be_cut)
{
    outcome o = {0};
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    o.size = st.st_size;
    if (st.st_size == 0)
        return o;
    char error[512] = "";
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r && header_may_be_cut && st.st_size < 256)
        return o;
    if (!r)
        fail_msg("%s: %s", path, error);
    o.readable = true;
    static ht_event e[1024];
    long n;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            if (e[i].kind == HT_EVENT_ALLOC || e[i].kind == HT_EVENT_FREE)
                o.operations++;
            if (e[i].kind == HT_EVENT_LOST) {
                o.lost += e[i].u.lost.Count;
                assert_true(e[i].u.lost.FirstTimestamp <= e[i].u.lost.LastTimestamp);
            }
        }
    if (n < 0)
        fail_msg("%s: %s", path, ht_reader_error(r));
    o.truncated = ht_reader_info(r)->truncated;
    const char *warnings = ht_reader_warnings(r);
    if (warnings && *warnings && !o.truncated)
        fail_msg("%s: %s", path, warnings);
    ht_reader_close(r);
    return o;
}

static void alloc_free_pairs(ht_heap *heap, int count)
{
    for (int i = 0; i < count; i++)
        ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, (size_t)(i % 1000) + 1));
}

/* Copies a pipe into a file until its end. */
typedef struct drain {
    int in, out;
} drain;

static void *drain_main(void *arg)
{
    drain *d = arg;
    static char buffer[1 << 16];
    ssize_t n;
    while ((n = read(d->in, buffer, sizeof buffer)) > 0)
        assert_int_equal(write(d->out, buffer, (size_t)n), n);
    return NULL;
}

/* One session of PAIRS alloc/free pairs with the write fault armed; the file (or the pipe's
 * copy) at path. Returns the session's statistics. */
static ht_trace_stats traced_run(const char *path, bool pipe_output, uint32_t nth, bool sticky,
                                 bool short_first, uint32_t *fired)
{
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.no_rundown = true;
    o.buffer_size = 256 << 10;
    o.event_mask = HT_EVENT_BIT(HT_EVENT_ALLOC) | HT_EVENT_BIT(HT_EVENT_FREE); /* exact counts */
    int fds[2] = {-1, -1};
    drain d = {-1, -1};
    pthread_t thread;
    if (pipe_output) {
        assert_int_equal(pipe(fds), 0);
        d.in = fds[0];
        d.out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(d.out >= 0);
        assert_int_equal(pthread_create(&thread, NULL, drain_main, &d), 0);
        o.output_fd = fds[1];
    } else {
        o.output_path = path;
    }
    hti_fault_set(&hti_fault_write, nth, EIO, sticky, short_first);
    assert_int_equal(ht_trace_start(&o), 0);
    for (int i = 0; i < 10; i++) {
        alloc_free_pairs(heap, PAIRS / 10);
        assert_int_equal(ht_trace_flush(), 0); /* several chunks, whatever the timing */
    }
    assert_int_equal(ht_trace_stop(), 0);
    *fired = atomic_load(&hti_fault_write.fired);
    hti_fault_set(&hti_fault_write, 0, 0, false, false);
    if (pipe_output) {
        close(fds[1]);
        pthread_join(thread, NULL);
        close(d.out);
        close(fds[0]);
    }
    ht_heap_destroy(heap);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    return stats;
}

static void check_write_fault(bool pipe_output, uint32_t nth, bool sticky, bool short_first)
{
    char path[256];
    temp_path(path, sizeof path, "fault");
    uint32_t fired;
    ht_trace_stats stats = traced_run(path, pipe_output, nth, sticky, short_first, &fired);
    /* A stream cut inside its header (the preamble and the HEADER chunk: the first write). */
    bool header_cut = pipe_output && short_first && nth == 1;
    outcome o = read_trace(path, header_cut);
    if (!fired)
        fail_msg("write %u never came: the test no longer covers it", nth);
    assert_true(stats.write_errors > 0);
    /* Every operation is in the file or counted lost. */
    assert_int_equal(o.operations + stats.lost, (uint64_t)PAIRS * 2);
    if (!o.readable) {
        /* The header itself failed: nothing at all reached the output, or a piece of the header
         * (a stream cannot take back what it took), which the reader refuses. */
        if (!header_cut)
            assert_int_equal(o.size, 0);
        assert_int_equal(stats.lost, (uint64_t)PAIRS * 2);
    } else if (!sticky && !(pipe_output && short_first)) {
        /* The output recovered: its LOST records account for every loss, and it is whole. */
        assert_false(o.truncated);
        assert_int_equal(o.lost, stats.lost);
    } else {
        assert_true(o.lost <= stats.lost);
        if (!pipe_output)
            assert_false(o.truncated); /* a file is rolled back to its last whole chunk */
    }
    unlink(path);
}

static const uint32_t nths[] = {1, 2, 3, 4, 6, 9, 14, 20};

static void test_file_write_fails_once(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(false, nths[i], false, false);
}

static void test_file_write_fails_for_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(false, nths[i], true, false);
}

static void test_file_write_short_then_fails(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(false, nths[i], false, true);
}

static void test_pipe_write_fails_once(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(true, nths[i], false, false);
}

static void test_pipe_write_fails_for_good(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(true, nths[i], true, false);
}

static void test_pipe_write_short_then_fails(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nths / sizeof *nths; i++)
        check_write_fault(true, nths[i], false, true);
}

static void test_open_fails(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "open-fault");
    unlink(path);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    static const int errors[] = {ENOSPC, EACCES, EIO};
    for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
        hti_fault_set(&hti_fault_open, 1, errors[i], false, false);
        assert_int_equal(ht_trace_start(&o), -errors[i]);
        assert_false(ht_trace_is_active());
        assert_int_equal(access(path, F_OK), -1); /* nothing was created */
    }
    /* The program goes on, and the next start works. */
    ht_heap *heap = ht_heap_create(0, 0, 0);
    alloc_free_pairs(heap, 100);
    assert_int_equal(ht_trace_start(&o), 0);
    alloc_free_pairs(heap, 100);
    assert_int_equal(ht_trace_stop(), 0);
    ht_heap_destroy(heap);
    outcome out = read_trace(path, false);
    assert_true(out.readable);
    assert_int_equal(out.operations, 200);
    unlink(path);
}

static int teardown(void **state)
{
    hti_fault_set(&hti_fault_write, 0, 0, false, false);
    hti_fault_set(&hti_fault_open, 0, 0, false, false);
    return stop_session(state);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_file_write_fails_once, teardown),
        cmocka_unit_test_teardown(test_file_write_fails_for_good, teardown),
        cmocka_unit_test_teardown(test_file_write_short_then_fails, teardown),
        cmocka_unit_test_teardown(test_pipe_write_fails_once, teardown),
        cmocka_unit_test_teardown(test_pipe_write_fails_for_good, teardown),
        cmocka_unit_test_teardown(test_pipe_write_short_then_fails, teardown),
        cmocka_unit_test_teardown(test_open_fails, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
