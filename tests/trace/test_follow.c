/* test_follow.c — following a trace as it is written (ht_reader_follow): real traces (threads,
 * stacks, rundown, LOST records, compression on and off) fed through a pipe in random pieces give
 * the file reader's events, field for field, with and without HT_READER_WAIT; after each CLOCK
 * chunk exactly the events below the second-latest pair are out; a live session read while it
 * runs; streams cut at every chunk boundary and inside chunks, and corrupted, end as the file
 * reader says; a regular file still being written ends at its footer. Fixed seeds throughout;
 * --seed N changes them. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

#include "trace/format.h"
#include "trace_test.h"

#define FOLLOW_TIMEOUT_MS 20000
#define READ_BATCH 300 /* not a divisor of the reader's own batch */

static uint64_t option_seed = 1;

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* ---- byte and event lists ---- */

/* Makes room for need elements of size element in *array. */
static void reserve(void **array, size_t *capacity, size_t need, size_t element)
{
    if (need <= *capacity)
        return;
    *capacity = need * 2 + 1024;
    *array = realloc(*array, *capacity * element);
    assert_non_null(*array);
}

typedef struct bytes {
    uint8_t *data;
    size_t size, capacity;
} bytes;

static void bytes_append(bytes *b, const void *data, size_t size)
{
    reserve((void **)&b->data, &b->capacity, b->size + size, 1);
    memcpy(b->data + b->size, data, size);
    b->size += size;
}

typedef struct event_list {
    ht_event *events;
    size_t count, capacity;
} event_list;

static void events_add(event_list *l, const ht_event *events, size_t count)
{
    reserve((void **)&l->events, &l->capacity, l->count + count, sizeof *events);
    memcpy(l->events + l->count, events, count * sizeof *events);
    l->count += count;
}

/* The bytes of the union member an event's kind uses, up to its last field (the rest, padding
 * included, is not the event's). */
#define FIELDS_END(type, last) (offsetof(type, last) + sizeof(((type *)NULL)->last))
static size_t payload_size(unsigned kind)
{
    switch (kind) {
    case HT_EVENT_ALLOC: return FIELDS_END(ETW_HEAP_EVENT_ALLOC, Source);
    case HT_EVENT_FREE: return FIELDS_END(ETW_HEAP_EVENT_FREE, Source);
    case HT_EVENT_REALLOC: return FIELDS_END(ETW_HEAP_EVENT_REALLOC, Source);
    case HT_EVENT_HEAP_CREATE: return FIELDS_END(ht_event_heap_create, Flags);
    case HT_EVENT_HEAP_DESTROY: return FIELDS_END(ht_event_heap_destroy, HeapHandle);
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT: return FIELDS_END(ht_event_heap_resize, CommittedAfter);
    case HT_EVENT_RUNDOWN_HEAP: return FIELDS_END(ht_event_rundown_heap, Compatibility);
    case HT_EVENT_RUNDOWN_BLOCK: return FIELDS_END(ht_event_rundown_block, Source);
    case HT_EVENT_LOST: return FIELDS_END(ht_event_lost, Reason);
    case HT_EVENT_LEAK_SCAN: return FIELDS_END(ht_event_leak_scan, Flags);
    case HT_EVENT_UNREACHABLE_BLOCK: return FIELDS_END(ht_event_unreachable_block, Class);
    default: return 0;
    }
}

static bool event_equal(const ht_event *a, const ht_event *b)
{
    return a->timestamp_ns == b->timestamp_ns && a->thread_id == b->thread_id &&
           a->kind == b->kind && a->flags == b->flags && a->stack_id == b->stack_id &&
           a->weight == b->weight && memcmp(&a->u, &b->u, payload_size(a->kind)) == 0;
}

static void print_event(const char *label, const ht_event *e)
{
    print_error("  %s: t=%" PRIu64 " thread=%u kind=%s flags=%u stack=%u\n", label, e->timestamp_ns,
                e->thread_id, ht_event_kind_name(e->kind), e->flags, e->stack_id);
}

/* got[0..count) equals want[0..count) (and count is all of want when whole). */
static void check_events(const event_list *want, const event_list *got, size_t count, bool whole,
                         const char *what)
{
    for (size_t i = 0; i < count && i < got->count && i < want->count; i++)
        if (!event_equal(&want->events[i], &got->events[i])) {
            print_error("%s: event %zu differs (of %zu wanted, %zu got)\n", what, i, want->count,
                        got->count);
            print_event("file reader", &want->events[i]);
            print_event("follower   ", &got->events[i]);
            fail();
        }
    if (got->count != count || count > want->count || (whole && count != want->count))
        fail_msg("%s: %zu events, the file reader gives %zu (%zu expected here)", what, got->count,
                 want->count, count);
}

/* ---- what each reader makes of some bytes ---- */

typedef struct outcome {
    event_list events;
    bool opened;
    int status; /* of the open (opened false) or the last read */
    char error[512];
    char warnings[HTI_CHUNK_HEADER_SIZE * 256];
    ht_trace_info info;
} outcome;

static void outcome_free(outcome *o)
{
    free(o->events.events);
    memset(o, 0, sizeof *o);
}

static void outcome_finish(outcome *o, ht_reader *r, long status)
{
    o->status = (int)status;
    if (status < 0)
        snprintf(o->error, sizeof o->error, "%s", ht_reader_error(r));
    snprintf(o->warnings, sizeof o->warnings, "%s", ht_reader_warnings(r));
    o->info = *ht_reader_info(r);
}

/* The file reader over data[0..size); the reader is left open in *keep when asked. */
static void read_file_reader(const uint8_t *data, size_t size, outcome *o, ht_reader **keep)
{
    memset(o, 0, sizeof *o);
    ht_reader *r = ht_reader_open_memory(data, size, o->error, sizeof o->error);
    if (!r) {
        o->status = -errno;
        return;
    }
    o->opened = true;
    ht_event batch[READ_BATCH];
    long n;
    while ((n = ht_reader_read(r, batch, READ_BATCH)) > 0)
        events_add(&o->events, batch, (size_t)n);
    outcome_finish(o, r, n);
    if (keep)
        *keep = r;
    else
        ht_reader_close(r);
}

/* Reads a follower to its end: polling on -EAGAIN without HT_READER_WAIT. */
static long drain_follower(ht_reader *r, unsigned flags, event_list *out)
{
    ht_event batch[READ_BATCH];
    for (;;) {
        long n = ht_reader_read(r, batch, READ_BATCH);
        if (n == -EAGAIN) {
            assert_false(flags & HT_READER_WAIT);
            struct pollfd p = {.fd = ht_reader_fd(r), .events = POLLIN};
            assert_true(p.fd >= 0);
            poll(&p, 1, 100);
            sleep_us(200); /* a regular file polls readable at once */
            continue;
        }
        if (n <= 0)
            return n;
        events_add(out, batch, (size_t)n);
    }
}

static void read_follower(int fd, unsigned flags, outcome *o, ht_reader **keep)
{
    memset(o, 0, sizeof *o);
    ht_reader *r = ht_reader_follow(fd, flags, FOLLOW_TIMEOUT_MS, o->error, sizeof o->error);
    if (!r) {
        o->status = -errno;
        return;
    }
    o->opened = true;
    assert_int_equal(ht_reader_fd(r), fd);
    assert_int_equal(ht_reader_rewind(r), -ESPIPE);
    outcome_finish(o, r, drain_follower(r, flags, &o->events));
    if (keep)
        *keep = r;
    else
        ht_reader_close(r);
}

/* ---- feeding a descriptor from a thread ---- */

typedef struct feeder {
    int fd;
    const uint8_t *data;
    size_t size;
    uint64_t seed;
    size_t max_piece; /* 1 .. max_piece bytes at a time */
    pthread_t thread;
} feeder;

static void *feeder_main(void *arg)
{
    feeder *f = arg;
    uint64_t rng = f->seed;
    size_t done = 0;
    while (done < f->size) {
        uint64_t r = rng_next(&rng);
        size_t piece = 1 + (size_t)(rng_next(&rng) % f->max_piece);
        if (r % 4 == 0)
            piece = 1 + piece % 64; /* often tiny: chunk headers split */
        if (piece > f->size - done)
            piece = f->size - done;
        ssize_t n = write(f->fd, f->data + done, piece);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* the reader gave up: its test fails on its own */
        done += (size_t)n;
        if (r % 16 == 1)
            sleep_us((long)(r >> 40) % 3000);
    }
    close(f->fd);
    return NULL;
}

/* Starts a thread writing data to a new pipe; returns the read end. */
static int feed_pipe(feeder *f, const uint8_t *data, size_t size, uint64_t seed, size_t max_piece)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    *f = (feeder){.fd = fds[1], .data = data, .size = size, .seed = seed, .max_piece = max_piece};
    assert_int_equal(pthread_create(&f->thread, NULL, feeder_main, f), 0);
    return fds[0];
}

/* ---- recording real traces ---- */

typedef struct recording {
    ht_trace_mode mode;
    size_t buffer_size;
    int compression;
    unsigned stack_depth;
    int threads;
    int rounds;    /* bursts per thread, a pause after each */
    int ops;       /* operations per burst */
    long stall_us; /* the output is not read until events are lost, for this long at most;
                    * -1: until the workers have ended */
} recording;

typedef struct worker {
    ht_heap *heap;
    uint64_t seed;
    const recording *config;
    uint64_t allocs, frees; /* successful ones, in heap */
} worker;

#define WORKER_SLOTS 256

static void *worker_main(void *arg)
{
    worker *w = arg;
    void *blocks[WORKER_SLOTS] = {0};
    ht_heap *owner[WORKER_SLOTS] = {0};
    uint64_t rng = w->seed;
    for (int round = 0; round < w->config->rounds; round++) {
        for (int op = 0; op < w->config->ops; op++) {
            size_t i = (size_t)(rng_next(&rng) % WORKER_SLOTS);
            uint64_t r = rng_next(&rng);
            if (!blocks[i]) {
                owner[i] = r % 3 == 0 ? ht_process_heap() : w->heap;
                blocks[i] = ht_heap_alloc(owner[i], 0, random_size(&rng));
                w->allocs += blocks[i] && owner[i] == w->heap;
            } else if (r % 4 == 0) {
                void *p = ht_heap_realloc(owner[i], 0, blocks[i], random_size(&rng) + 1);
                if (p)
                    blocks[i] = p;
            } else {
                w->frees += owner[i] == w->heap;
                ht_heap_free(owner[i], 0, blocks[i]);
                blocks[i] = NULL;
            }
        }
        sleep_us(15000 + (long)(rng_next(&rng) % 20000));
    }
    for (size_t i = 0; i < WORKER_SLOTS; i++)
        if (blocks[i]) {
            w->frees += owner[i] == w->heap;
            ht_heap_free(owner[i], 0, blocks[i]);
        }
    return NULL;
}

static atomic_bool session_started; /* record()'s session runs (its statistics may be read) */
static atomic_bool workers_done;    /* record()'s workers have ended */

/* Copies a descriptor into memory until its end (after an optional stall). */
typedef struct sink {
    int fd;
    long stall_us;
    bytes out;
    int tee_fd; /* >= 0: the bytes are written there too, then it is closed */
    pthread_t thread;
} sink;

static void *sink_main(void *arg)
{
    sink *s = arg;
    /* Stalled until the session counts lost events (or for stall_us at most). */
    while (s->stall_us && !atomic_load(&session_started))
        sleep_us(1000);
    while (s->stall_us < 0 && !atomic_load(&workers_done))
        sleep_us(5000);
    for (long waited = 0; waited < s->stall_us; waited += 5000) {
        ht_trace_stats stats;
        ht_trace_stats_get(&stats);
        if (stats.lost > 0)
            break;
        sleep_us(5000);
    }
    uint8_t buffer[1 << 16];
    for (;;) {
        ssize_t n = read(s->fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        bytes_append(&s->out, buffer, (size_t)n);
        for (ssize_t done = 0; s->tee_fd >= 0 && done < n;) {
            ssize_t w = write(s->tee_fd, buffer + done, (size_t)(n - done));
            if (w <= 0)
                break;
            done += w;
        }
    }
    if (s->tee_fd >= 0)
        close(s->tee_fd);
    close(s->fd);
    return NULL;
}

/* Runs the workload with config's threads under a session writing to a pipe whose other end
 * is copied into memory (and teed to tee_fd when >= 0); out gets the trace's bytes, the workers
 * their counts. */
static void record(const recording *config, uint64_t seed, int tee_fd, bytes *out, worker *workers)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    sink s = {.fd = fds[0], .stall_us = config->stall_us, .tee_fd = tee_fd};
    atomic_store(&workers_done, false);
    atomic_store(&session_started, false);
    assert_int_equal(pthread_create(&s.thread, NULL, sink_main, &s), 0);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    assert_non_null(heap);
    /* Blocks live before the start: the rundown lists them. */
    void *before[32];
    for (int i = 0; i < 32; i++)
        before[i] = ht_heap_alloc(heap, 0, 48 + (size_t)i * 16);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_fd = fds[1];
    o.mode = config->mode;
    o.buffer_size = config->buffer_size;
    o.compression_level = config->compression;
    o.stack_depth = config->stack_depth;
    assert_int_equal(ht_trace_start(&o), 0);
    atomic_store(&session_started, true);
    worker local[8];
    if (!workers)
        workers = local;
    assert_true(config->threads <= 8);
    pthread_t threads[8];
    for (int t = 0; t < config->threads; t++) {
        workers[t] = (worker){.heap = heap, .seed = seed * 1000 + (uint64_t)t, .config = config};
        assert_int_equal(pthread_create(&threads[t], NULL, worker_main, &workers[t]), 0);
    }
    for (int t = 0; t < config->threads; t++)
        pthread_join(threads[t], NULL);
    atomic_store(&workers_done, true);
    if (config->stall_us < 0) {
        /* A while more, so that the ended threads' LOST chunks come amid clock passes. */
        for (int i = 0; i < 8; i++) {
            for (int k = 0; k < 64; k++)
                ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, 32 + (size_t)k));
            sleep_us(50000);
        }
    }
    assert_int_equal(ht_trace_stop(), 0);
    close(fds[1]);
    pthread_join(s.thread, NULL);
    for (int i = 0; i < 32; i++)
        ht_heap_free(heap, 0, before[i]);
    ht_heap_destroy(heap);
    *out = s.out;
}

/* ---- chunks of a trace, as the test sees them ---- */

typedef struct chunk_pos {
    size_t offset, end;
    unsigned type;
    uint64_t clock_ns; /* CLOCK: its last pair's ns */
} chunk_pos;

static size_t list_chunks(const bytes *b, chunk_pos *out, size_t max)
{
    size_t n = 0, offset = HTI_PREAMBLE_SIZE;
    while (offset + HTI_CHUNK_HEADER_SIZE <= b->size && n < max) {
        hti_chunk_header h;
        const char *why;
        assert_int_equal(hti_chunk_header_decode(b->data + offset, &h, &why), 0);
        size_t end = offset + HTI_CHUNK_HEADER_SIZE + h.meta_length + h.body_length;
        assert_true(end <= b->size);
        chunk_pos *c = &out[n++];
        *c = (chunk_pos){offset, end, h.type, 0};
        if (h.type == HTI_CHUNK_CLOCK) {
            assert_false(h.flags & HTI_CHUNK_FLAG_ZSTD); /* never smaller compressed */
            hti_cursor k = hti_cursor_make(b->data + offset + HTI_CHUNK_HEADER_SIZE + h.meta_length,
                                           h.body_length);
            while (k.p < k.end) {
                hti_clock_record pair;
                assert_int_equal(hti_get_clock_record(&k, &pair), 0);
                c->clock_ns = pair.ns;
            }
        }
        offset = end;
    }
    return n;
}

#define CHUNKS_MAX 65536

/* Follows b chunk by chunk (each written whole, then everything read that is ready): the events
 * in *events. At each CLOCK chunk past the second, exactly the file reader's events below the
 * second-latest pair's time are out. Returns false (no failure) when the trace has an event
 * that arrives after that time has passed it (a hook held for a whole flush pass), which the
 * rule hands out late. */
static bool follow_chunkwise(const bytes *b, const outcome *file, bool check_prefix)
{
    chunk_pos *chunks = malloc(CHUNKS_MAX * sizeof *chunks);
    assert_non_null(chunks);
    size_t count = list_chunks(b, chunks, CHUNKS_MAX);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_true(fcntl(fds[1], F_SETPIPE_SZ, 1 << 20) >= (1 << 20)); /* any chunk fits */
    size_t first = chunks[0].end;
    assert_int_equal(write(fds[1], b->data, first), (ssize_t)first);
    char error[512];
    ht_reader *r = ht_reader_follow(fds[0], 0, 0, error, sizeof error);
    if (!r)
        fail_msg("follow: %s", error);
    event_list got = {0};
    uint64_t pairs[2] = {0, 0};
    size_t clocks = 0, partial = 0; /* watermarks that split the events */
    bool in_order = true;
    for (size_t i = 1; i < count && in_order; i++) {
        size_t length = chunks[i].end - chunks[i].offset;
        assert_int_equal(write(fds[1], b->data + chunks[i].offset, length), (ssize_t)length);
        ht_event batch[READ_BATCH];
        long n;
        while ((n = ht_reader_read(r, batch, READ_BATCH)) > 0)
            events_add(&got, batch, (size_t)n);
        assert_int_equal(n, -EAGAIN);
        if (chunks[i].type != HTI_CHUNK_CLOCK)
            continue;
        pairs[0] = pairs[1];
        pairs[1] = chunks[i].clock_ns;
        if (++clocks < 2 + (chunks[0].type == HTI_CHUNK_HEADER ? 0 : 1))
            continue;
        /* The file's events below pairs[0] (the header's CLOCK chunk counts as the first). */
        size_t below = 0;
        while (below < file->events.count && file->events.events[below].timestamp_ns < pairs[0])
            below++;
        for (size_t j = 0; j < got.count; j++)
            if (got.events[j].timestamp_ns >= pairs[0])
                fail_msg("after CLOCK chunk %zu: an event at %" PRIu64
                         " ns is out, at or past the watermark %" PRIu64,
                         clocks, got.events[j].timestamp_ns, pairs[0]);
        if (got.count != below)
            in_order = false; /* an event arrived late */
        else if (check_prefix)
            check_events(&file->events, &got, below, false, "chunk by chunk");
        partial += below > 0 && below < file->events.count;
    }
    close(fds[1]);
    if (in_order) {
        assert_int_equal(drain_follower(r, 0, &got), 0);
        check_events(&file->events, &got, file->events.count, true, "chunk by chunk, at the end");
        if (check_prefix)
            print_message("  chunk by chunk: %zu watermarks split the events as the file's\n",
                          partial);
    }
    ht_reader_close(r);
    free(got.events);
    free(chunks);
    return in_order;
}

/* Records config until the trace has no late event (a thread held in a hook for a whole flush
 * pass: rare, and then the follower's order rightly differs from the file's); 3 tries. */
static void record_in_order(const recording *config, uint64_t seed, bytes *out, outcome *file)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        record(config, seed + (uint64_t)attempt * 7919, -1, out, NULL);
        read_file_reader(out->data, out->size, file, NULL);
        assert_true(file->opened);
        assert_int_equal(file->status, 0);
        if (follow_chunkwise(out, file, true))
            return;
        print_message("a late event in this recording; recording again\n");
        outcome_free(file);
        free(out->data);
    }
    fail_msg("every recording had late events");
}

static void check_info(const ht_trace_info *want, const ht_trace_info *got)
{
    assert_int_equal(got->events, want->events);
    assert_int_equal(got->lost, want->lost);
    assert_int_equal(got->chunks, want->chunks);
    assert_int_equal(got->event_chunks, want->event_chunks);
    assert_int_equal(got->threads, want->threads);
    assert_int_equal(got->stacks, want->stacks);
    assert_int_equal(got->file_size, want->file_size);
    assert_int_equal(got->valid_size, want->valid_size);
    assert_int_equal(got->end_ns, want->end_ns);
    assert_int_equal(got->start_ns, want->start_ns);
    assert_int_equal(got->complete, want->complete);
    assert_int_equal(got->truncated, want->truncated);
    assert_int_equal(got->footer_events, want->footer_events);
    assert_int_equal(got->end_live_blocks, want->end_live_blocks);
    assert_int_equal(got->mode, want->mode);
}

/* Every stack id of the events and every module resolve alike in both readers. */
static void check_tables(ht_reader *file, ht_reader *follower, const event_list *events)
{
    assert_int_equal(ht_reader_module_count(follower), ht_reader_module_count(file));
    for (size_t i = 0; i < ht_reader_module_count(file); i++) {
        const ht_module *a = ht_reader_module(file, i), *b = ht_reader_module(follower, i);
        assert_int_equal(a->Start, b->Start);
        assert_int_equal(a->Size, b->Size);
        assert_string_equal(a->Path, b->Path);
    }
    size_t resolved = 0;
    for (size_t i = 0; i < events->count; i++) {
        uint32_t id = events->events[i].stack_id;
        const uint64_t *fa, *fb;
        uint32_t da, db;
        if (!id)
            continue;
        bool known = ht_reader_stack(file, id, &fa, &da);
        assert_int_equal(ht_reader_stack(follower, id, &fb, &db), known);
        if (!known)
            continue;
        assert_int_equal(da, db);
        assert_memory_equal(fa, fb, da * sizeof *fa);
        if (da) {
            const ht_module *ma = ht_reader_module_find(file, fa[da - 1]);
            const ht_module *mb = ht_reader_module_find(follower, fb[db - 1]);
            assert_true((ma == NULL) == (mb == NULL));
            if (ma)
                assert_string_equal(ma->Path, mb->Path);
        }
        resolved++;
    }
    print_message("  %zu events with a stack resolved alike\n", resolved);
}

static size_t count_kind(const event_list *l, unsigned kind)
{
    size_t n = 0;
    for (size_t i = 0; i < l->count; i++)
        n += l->events[i].kind == kind;
    return n;
}

/* ---- 1, 2: recorded traces in random pieces, and chunk by chunk ---- */

static const recording recordings[] = {
    /* block mode, stacks, no compression */
    {HT_TRACE_MODE_BLOCK, 1u << 20, 0, 16, 4, 20, 1000, 0},
    /* discard with small buffers and a stalled output first: LOST records; compressed */
    {HT_TRACE_MODE_DISCARD, 128u << 10, 3, 8, 4, 10, 6000, 5000000},
    /* discard, the output stalled until the threads have ended: LOST chunks for their losses */
    {HT_TRACE_MODE_DISCARD, 128u << 10, 0, 0, 3, 8, 6000, -1},
};

static void follow_recorded(int which)
{
    const recording *config = &recordings[which];
    bytes trace;
    outcome file;
    record_in_order(config, option_seed + (uint64_t)which, &trace, &file);
    size_t clocks = 0, chunks = 0, lost_chunks = 0;
    chunk_pos *list = malloc(CHUNKS_MAX * sizeof *list);
    chunks = list_chunks(&trace, list, CHUNKS_MAX);
    for (size_t i = 0; i < chunks; i++) {
        clocks += list[i].type == HTI_CHUNK_CLOCK;
        lost_chunks += list[i].type == HTI_CHUNK_LOST;
    }
    free(list);
    print_message("  %zu bytes, %zu chunks (%zu CLOCK, %zu LOST), %zu events, %zu LOST, %" PRIu64
                  " threads, %" PRIu64 " stacks\n",
                  trace.size, chunks, clocks, lost_chunks, file.events.count,
                  count_kind(&file.events, HT_EVENT_LOST), file.info.threads, file.info.stacks);
    assert_true(clocks >= 4);
    assert_true(file.info.complete);
    assert_true(file.info.threads >= (uint64_t)config->threads);
    assert_true(count_kind(&file.events, HT_EVENT_RUNDOWN_BLOCK) >= 32);
    if (config->stack_depth)
        assert_true(file.info.stacks > 0);
    if (config->mode == HT_TRACE_MODE_DISCARD)
        assert_true(count_kind(&file.events, HT_EVENT_LOST) > 0);
    if (config->stall_us < 0)
        assert_true(lost_chunks > 0);

    ht_reader *file_reader;
    outcome again;
    read_file_reader(trace.data, trace.size, &again, &file_reader);
    outcome_free(&again);
    static const size_t pieces[] = {1 << 16, 4096, 64};
    for (int run = 0; run < 6; run++) {
        unsigned flags = run % 2 ? HT_READER_WAIT : 0;
        feeder f;
        int fd = feed_pipe(&f, trace.data, trace.size, option_seed * 31 + (uint64_t)run,
                           pieces[run / 2]);
        outcome got;
        ht_reader *follower;
        read_follower(fd, flags, &got, &follower);
        pthread_join(f.thread, NULL);
        if (!got.opened)
            fail_msg("follow: %s", got.error);
        if (got.status != 0)
            fail_msg("follow: %s", got.error);
        char what[64];
        snprintf(what, sizeof what, "pieces up to %zu bytes%s", pieces[run / 2],
                 flags ? ", waiting" : "");
        check_events(&file.events, &got.events, file.events.count, true, what);
        check_info(&file.info, &got.info);
        assert_string_equal(got.warnings, file.warnings);
        check_tables(file_reader, follower, &file.events);
        ht_reader_close(follower);
        outcome_free(&got);
    }
    ht_reader_close(file_reader);
    outcome_free(&file);
    free(trace.data);
}

static void test_follow_block_stacks(void **state)
{
    (void)state;
    follow_recorded(0);
}

static void test_follow_discard_compressed(void **state)
{
    (void)state;
    follow_recorded(1);
}

static void test_follow_discard_lost_chunks(void **state)
{
    (void)state;
    follow_recorded(2);
}

/* ---- 3: a live session read while it runs ---- */

typedef struct live {
    const recording *config;
    int tee_fd;
    bytes trace;
    worker workers[8];
} live;

static void *live_session_main(void *arg)
{
    live *l = arg;
    record(l->config, option_seed + 300, l->tee_fd, &l->trace, l->workers);
    return NULL;
}

static int compare_whole_events(const void *a, const void *b)
{
    const ht_event *x = a, *y = b;
    if (x->timestamp_ns != y->timestamp_ns)
        return x->timestamp_ns < y->timestamp_ns ? -1 : 1;
    if (x->thread_id != y->thread_id)
        return x->thread_id < y->thread_id ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return memcmp(&x->u, &y->u, payload_size(x->kind));
}

static void test_follow_live_session(void **state)
{
    (void)state;
    const recording config = {HT_TRACE_MODE_DISCARD, 4u << 20, 0, 0, 3, 8, 800, 0};
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    live l = {.config = &config, .tee_fd = fds[1]};
    pthread_t session;
    assert_int_equal(pthread_create(&session, NULL, live_session_main, &l), 0);
    outcome got;
    read_follower(fds[0], HT_READER_WAIT, &got, NULL);
    pthread_join(session, NULL);
    if (!got.opened || got.status != 0)
        fail_msg("follow: %s", got.error);

    outcome file;
    read_file_reader(l.trace.data, l.trace.size, &file, NULL);
    assert_int_equal(file.status, 0);
    check_info(&file.info, &got.info);
    assert_true(got.info.complete);
    size_t late = 0;
    for (size_t i = 0; i < got.events.count && i < file.events.count; i++)
        late += !event_equal(&got.events.events[i], &file.events.events[i]);
    if (late) {
        /* Only a trace with late events (a hook held past a whole pass) may differ, and then
         * only in order. */
        print_message("  %zu events in another order: late events\n", late);
        assert_false(follow_chunkwise(&l.trace, &file, false));
        assert_int_equal(got.events.count, file.events.count);
        qsort(got.events.events, got.events.count, sizeof(ht_event), compare_whole_events);
        qsort(file.events.events, file.events.count, sizeof(ht_event), compare_whole_events);
    }
    check_events(&file.events, &got.events, file.events.count, true, "a live session");

    /* Every operation the threads did on their heap is there: nothing was lost. */
    assert_int_equal(count_kind(&got.events, HT_EVENT_LOST), 0);
    uint64_t heap = (uint64_t)(uintptr_t)l.workers[0].heap, allocs = 0, frees = 0;
    for (int t = 0; t < config.threads; t++) {
        allocs += l.workers[t].allocs;
        frees += l.workers[t].frees;
    }
    uint64_t seen_allocs = 0, seen_frees = 0;
    for (size_t i = 0; i < got.events.count; i++) {
        const ht_event *e = &got.events.events[i];
        if (e->kind == HT_EVENT_ALLOC && e->u.alloc.HeapHandle == heap &&
            e->u.alloc.Source != MEMORY_FROM_INVALID)
            seen_allocs++;
        if (e->kind == HT_EVENT_FREE && e->u.free.HeapHandle == heap &&
            e->u.free.Source != MEMORY_FROM_INVALID)
            seen_frees++;
    }
    print_message("  %zu events live, %" PRIu64 " allocations and %" PRIu64 " frees in the heap\n",
                  got.events.count, allocs, frees);
    assert_int_equal(seen_allocs, allocs);
    assert_int_equal(seen_frees, frees);
    outcome_free(&got);
    outcome_free(&file);
    free(l.trace.data);
}

/* ---- 4: cut and corrupted streams ---- */

/* Follows data[0..size) fed in pieces and compares with the file reader on the same bytes. */
static void compare_on(const uint8_t *data, size_t size, uint64_t seed, unsigned flags,
                       bool corrupted, const char *what)
{
    outcome file, got;
    read_file_reader(data, size, &file, NULL);
    feeder f;
    int fd = feed_pipe(&f, data, size, seed, 8192);
    read_follower(fd, flags, &got, NULL);
    pthread_join(f.thread, NULL);
    bool file_failed = !file.opened || file.status < 0;
    bool follow_failed = !got.opened || got.status < 0;
    if (file_failed != follow_failed || (file_failed && strcmp(file.error, got.error) != 0))
        fail_msg("%s: the file reader says '%s' (%d), the follower '%s' (%d)", what,
                 file_failed ? file.error : "ok", file.status, follow_failed ? got.error : "ok",
                 got.status);
    if (corrupted && follow_failed && !strstr(got.error, "offset"))
        fail_msg("%s: the error '%s' names no offset", what, got.error);
    if (!file_failed) {
        check_events(&file.events, &got.events, file.events.count, true, what);
        assert_string_equal(got.warnings, file.warnings);
        assert_int_equal(got.info.truncated, file.info.truncated);
        assert_int_equal(got.info.valid_size, file.info.valid_size);
    }
    outcome_free(&file);
    outcome_free(&got);
}

static void test_follow_cut_and_corrupted(void **state)
{
    (void)state;
    const recording config = {HT_TRACE_MODE_BLOCK, 1u << 20, 0, 8, 2, 3, 300, 0};
    bytes trace;
    outcome file;
    record_in_order(&config, option_seed + 100, &trace, &file);
    outcome_free(&file);
    chunk_pos *chunks = malloc(CHUNKS_MAX * sizeof *chunks);
    size_t count = list_chunks(&trace, chunks, CHUNKS_MAX);
    uint64_t rng = option_seed * 77;
    char what[96];
    /* Every chunk boundary, and a few cuts inside each chunk (its header too). */
    size_t cuts = 0;
    for (size_t i = 0; i < count; i++) {
        snprintf(what, sizeof what, "cut at the end of chunk %zu", i);
        compare_on(trace.data, chunks[i].end, rng_next(&rng), i % 2 ? HT_READER_WAIT : 0, false,
                   what);
        size_t length = chunks[i].end - chunks[i].offset;
        size_t inside[3] = {1 + rng_next(&rng) % (HTI_CHUNK_HEADER_SIZE - 1),
                            1 + rng_next(&rng) % (length - 1), length - 1};
        for (int k = 0; k < 3; k++) {
            snprintf(what, sizeof what, "cut %zu bytes into chunk %zu", inside[k], i);
            compare_on(trace.data, chunks[i].offset + inside[k], rng_next(&rng),
                       k % 2 ? HT_READER_WAIT : 0, false, what);
        }
        cuts += 4;
    }
    /* Cuts inside the preamble: no trace. */
    for (size_t cut = 0; cut < HTI_PREAMBLE_SIZE; cut += 5)
        compare_on(trace.data, cut, rng_next(&rng), HT_READER_WAIT, false, "cut in the preamble");
    /* Single corrupted bytes: an error naming the offset, alike in both readers. */
    uint8_t *copy = malloc(trace.size);
    for (int n = 0; n < 200; n++) {
        memcpy(copy, trace.data, trace.size);
        size_t at = (size_t)(rng_next(&rng) % trace.size);
        copy[at] ^= (uint8_t)(1u << (rng_next(&rng) % 8));
        snprintf(what, sizeof what, "byte %zu flipped", at);
        compare_on(copy, trace.size, rng_next(&rng), n % 2 ? HT_READER_WAIT : 0, true, what);
    }
    print_message("  %zu cuts, 200 corruptions over %zu chunks\n", cuts, count);
    free(copy);
    free(chunks);
    free(trace.data);
}

/* ---- 5: a regular file still being written ---- */

static void test_follow_growing_file(void **state)
{
    (void)state;
    const recording config = {HT_TRACE_MODE_BLOCK, 1u << 20, 1, 8, 2, 4, 500, 0};
    bytes trace;
    outcome file;
    record_in_order(&config, option_seed + 200, &trace, &file);
    char path[256];
    temp_path(path, sizeof path, "growing");
    for (int run = 0; run < 2; run++) {
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(out >= 0);
        int in = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(in >= 0);
        feeder f = {.fd = out,
                    .data = trace.data,
                    .size = trace.size,
                    .seed = option_seed + (uint64_t)run,
                    .max_piece = 16384};
        assert_int_equal(pthread_create(&f.thread, NULL, feeder_main, &f), 0);
        outcome got;
        unsigned flags = run ? HT_READER_WAIT : 0;
        read_follower(in, flags, &got, NULL);
        pthread_join(f.thread, NULL);
        if (!got.opened || got.status != 0)
            fail_msg("follow %s: %s", path, got.error);
        check_events(&file.events, &got.events, file.events.count, true, "a growing file");
        check_info(&file.info, &got.info);
        assert_true(got.info.complete);
        outcome_free(&got);
    }
    unlink(path);
    outcome_free(&file);
    free(trace.data);
}

/* A stream of event chunks and no clock pair: the follower holds them, up to its bound. */
static void test_follow_pending_bound(void **state)
{
    (void)state;
    bytes stream = {0};
    uint8_t preamble[HTI_PREAMBLE_SIZE], head[HTI_CHUNK_HEADER_SIZE];
    hti_preamble_encode(preamble);
    bytes_append(&stream, preamble, sizeof preamble);
    hti_header header = {.pid = 1, .pointer_size = 8, .clock_id = 1, .tick_kind = HTI_TICKS_NS};
    uint8_t body[HTI_HEADER_FIXED_MAX];
    hti_chunk_header h = {.type = HTI_CHUNK_HEADER};
    h.body_length = h.raw_length = (uint32_t)hti_header_encode(body, &header);
    hti_crc32c_init();
    hti_chunk_header_encode(head, &h, NULL, body);
    bytes_append(&stream, head, sizeof head);
    bytes_append(&stream, body, h.body_length);
    size_t prefix = stream.size;
    /* One EVENTS chunk of 4 MiB (its events are never decoded: nothing becomes final). */
    hti_events_meta meta = {.thread_id = 7, .stream_id = 1, .base_ticks = 1000};
    uint8_t meta_bytes[HTI_EVENTS_META_MAX];
    size_t events_body = 4u << 20;
    uint8_t *zeros = calloc(1, events_body);
    h = (hti_chunk_header){.type = HTI_CHUNK_EVENTS,
                           .meta_length = (uint16_t)hti_events_meta_encode(meta_bytes, &meta),
                           .body_length = (uint32_t)events_body,
                           .raw_length = (uint32_t)events_body};
    hti_chunk_header_encode(head, &h, meta_bytes, zeros);
    bytes_append(&stream, head, sizeof head);
    bytes_append(&stream, meta_bytes, h.meta_length);
    bytes_append(&stream, zeros, events_body);
    free(zeros);
    size_t chunk = stream.size - prefix;
    /* 80 of them: more than the bound of 256 MiB. */
    bytes whole = {0};
    bytes_append(&whole, stream.data, prefix);
    for (int i = 0; i < 80; i++)
        bytes_append(&whole, stream.data + prefix, chunk);
    feeder f;
    int fd = feed_pipe(&f, whole.data, whole.size, option_seed, 1 << 16);
    outcome got;
    read_follower(fd, HT_READER_WAIT, &got, NULL);
    pthread_join(f.thread, NULL);
    assert_true(got.opened);
    assert_int_equal(got.status, -EBADMSG);
    assert_int_equal(got.events.count, 0);
    assert_non_null(strstr(got.error, "wait for a clock pair"));
    print_message("  %s\n", got.error);
    outcome_free(&got);
    free(stream.data);
    free(whole.data);
}

/* A follower that gets no header in time, and one on a descriptor that is not open. */
static void test_follow_no_header(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    char error[256];
    assert_null(ht_reader_follow(fds[0], 0, 50, error, sizeof error));
    assert_int_equal(errno, ETIMEDOUT);
    assert_string_equal(error, "no trace header within 50 ms");
    close(fds[1]);
    assert_null(ht_reader_follow(-1, 0, 0, error, sizeof error));
    ht_reader *file = ht_reader_open_memory(NULL, 0, NULL, 0);
    assert_null(file);
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN); /* a feeder whose follower stopped early gets EPIPE */
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], "--seed") == 0)
            option_seed = strtoull(argv[i + 1], NULL, 10);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_follow_block_stacks, stop_session),
        cmocka_unit_test_teardown(test_follow_discard_compressed, stop_session),
        cmocka_unit_test_teardown(test_follow_discard_lost_chunks, stop_session),
        cmocka_unit_test_teardown(test_follow_live_session, stop_session),
        cmocka_unit_test_teardown(test_follow_cut_and_corrupted, stop_session),
        cmocka_unit_test_teardown(test_follow_growing_file, stop_session),
        cmocka_unit_test(test_follow_no_header),
        cmocka_unit_test(test_follow_pending_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
