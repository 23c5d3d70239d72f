/* scenarios.c — traces with known contents made through heaptrail's API for run_tests.py:
 * `scenarios PREFIX` writes PREFIX.window.trace (three phases 150 ms apart for the WPA lifetime
 * classes, every INVALID kind, a destroyed heap, LFH and back-end traffic), .sampled.trace (byte
 * sampling), .ring.trace (ring mode: FREE events overwritten in another thread's ring), .lost.trace
 * (discard mode into a pipe nobody reads during a burst), .temporary.trace (blocks handed between
 * two threads whose addresses come straight back, and a few true temporaries) and .json (heap
 * handles, the heap's own per-Source counters, expected numbers, the tracer's lost count). heaptrail is linked
 * statically here: the report must strip its frames from the stacks. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "heaptrail/heaptrail.h"

#define BEFORE_COUNT 10
#define BEFORE_SIZE 1000
#define INSIDE_COUNT 8
#define INSIDE_SIZE 2000
#define PHASE_NS 150000000L
#define SAMPLED_COUNT 20000
#define SAMPLED_SIZE 256
#define SAMPLED_KEEP 5000

static uint64_t monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void pause_phase(void)
{
    struct timespec t = {0, PHASE_NS};
    while (nanosleep(&t, &t) != 0) {
    }
}

static int start(const char *path, int fd, ht_trace_mode mode, size_t sample, size_t buffer)
{
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.output_fd = fd;
    o.mode = mode;
    o.stack_depth = 32;
    o.sample_interval = sample;
    if (buffer) {
        o.buffer_size = buffer;
        o.flush_interval_ms = 1000;
    }
    int error = ht_trace_start(&o);
    if (error) {
        fprintf(stderr, "scenarios: cannot start tracing: %s\n", strerror(-error));
        return 1;
    }
    return 0;
}

__attribute__((noinline)) static void before_phase(ht_heap *heap, void **blocks)
{
    for (int i = 0; i < BEFORE_COUNT; i++)
        blocks[i] = ht_heap_alloc(heap, 0, BEFORE_SIZE);
    /* Allocated and freed before the window: in no class. */
    void *gone = ht_heap_alloc(heap, 0, 3000);
    ht_heap_free(heap, 0, gone);
}

__attribute__((noinline)) static void inside_phase(ht_heap *heap, void **before, void **inside)
{
    for (int i = 0; i < INSIDE_COUNT; i++)
        inside[i] = ht_heap_alloc(heap, 0, INSIDE_SIZE);
    for (int i = 0; i < 5; i++) { /* AIFI: 5 x INSIDE_SIZE */
        ht_heap_free(heap, 0, inside[i]);
        inside[i] = NULL;
    }
    for (int i = 0; i < 4; i++) { /* AOFI: 4 x BEFORE_SIZE */
        ht_heap_free(heap, 0, before[i]);
        before[i] = NULL;
    }
}

__attribute__((noinline)) static void after_phase(ht_heap *heap, void **before, void **inside)
{
    ht_heap_free(heap, 0, inside[5]); /* AIFO (freed after); inside[6..7] stay: AIFO */
    ht_heap_free(heap, 0, inside[6]);
    inside[5] = inside[6] = NULL;
    for (int i = 4; i < 7; i++) { /* AOFO (freed after); before[7..9] stay: AOFO */
        ht_heap_free(heap, 0, before[i]);
        before[i] = NULL;
    }
    /* Allocated after the window: in no class (and leaked). */
    (void)ht_heap_alloc(heap, 0, 5000);
}

/* LFH activation and back-end traffic, compared with the heap's own counters. */
__attribute__((noinline)) static void source_traffic(ht_heap *heap)
{
    void *small[40];
    for (int i = 0; i < 40; i++)
        small[i] = ht_heap_alloc(heap, 0, 64);
    for (int i = 0; i < 40; i += 2)
        ht_heap_free(heap, 0, small[i]);
    for (int i = 0; i < 40; i += 2)
        small[i] = ht_heap_alloc(heap, 0, 64);
    void *grown = ht_heap_alloc(heap, 0, 100);
    grown = ht_heap_realloc(heap, 0, grown, 20000);
    ht_heap_free(heap, 0, grown);
    for (int i = 0; i < 40; i++)
        ht_heap_free(heap, 0, small[i]);
}

__attribute__((noinline)) static void misuse(ht_heap *heap, ht_heap *other, ht_heap *fixed)
{
    char local[32];
    void *p = ht_heap_alloc(heap, 0, 128);
    ht_heap_free(heap, 0, p);
    ht_heap_free(heap, 0, p);         /* double free */
    ht_heap_free(heap, 0, local + 8); /* a pointer no heap owns */
    void *q = ht_heap_alloc(heap, 0, 256);
    ht_heap_free(other, 0, q); /* through the wrong heap */
    ht_heap_free(heap, 0, q);
    (void)ht_heap_realloc(heap, 0, q, 512); /* reallocation of a freed block */
    (void)ht_heap_alloc(fixed, 0, 1 << 20); /* a fixed-size heap cannot grow */
}

__attribute__((noinline)) static void doomed_heap(void)
{
    ht_heap *heap = ht_heap_create(0, 0, 0);
    for (int i = 0; i < 5; i++)
        (void)ht_heap_alloc(heap, 0, 700);
    ht_heap_destroy(heap); /* its 5 blocks go with it: not leaks */
}

__attribute__((noinline)) static void sampled_work(ht_heap *heap, void **keep)
{
    for (int i = 0; i < SAMPLED_COUNT; i++) {
        void *p = ht_heap_alloc(heap, 0, SAMPLED_SIZE);
        if (i < SAMPLED_KEEP)
            keep[i] = p;
        else
            ht_heap_free(heap, 0, p);
    }
}

#define RING_COUNT 20

__attribute__((noinline)) static void ring_alloc(ht_heap *heap, void **blocks)
{
    for (int i = 0; i < RING_COUNT; i++)
        blocks[i] = ht_heap_alloc(heap, 0, 4000);
}

typedef struct ring_work {
    ht_heap *heap;
    void **blocks;
} ring_work;

/* Frees the blocks another thread allocated, then churns until its ring has overwritten those
 * FREE events. */
static void *ring_worker(void *argument)
{
    ring_work *w = argument;
    for (int i = 0; i < RING_COUNT; i++)
        ht_heap_free(w->heap, 0, w->blocks[i]);
    for (int i = 0; i < 300000; i++) {
        void *p = ht_heap_alloc(w->heap, 0, 48);
        ht_heap_free(w->heap, 0, p);
    }
    return NULL;
}

__attribute__((noinline)) static void burst(ht_heap *heap)
{
    for (int i = 0; i < 400000; i++) {
        void *p = ht_heap_alloc(heap, 0, 32);
        ht_heap_free(heap, 0, p);
    }
}

/* Temporaries across threads. Each round: the main thread allocates p and hands it over; the
 * other thread frees p and allocates q of the same size, which its lookaside list serves at p's
 * address; the main thread frees q. No block is freed by the next operation of the thread that
 * allocated it, although each thread's last allocation had the address of the block it frees. */
#define CROSS_ROUNDS 999
#define CROSS_SIZE 64
#define TRUE_TEMPORARIES 7

typedef struct handoff {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    int turn; /* 1: the other thread's, 0: main's, -1: finished */
    void *block;
    ht_heap *heap;
    int reused; /* rounds where q had p's address */
} handoff;

static void handoff_wait(handoff *h, int turn)
{
    pthread_mutex_lock(&h->lock);
    while (h->turn != turn && h->turn != -1)
        pthread_cond_wait(&h->changed, &h->lock);
    pthread_mutex_unlock(&h->lock);
}

static void handoff_pass(handoff *h, int turn)
{
    pthread_mutex_lock(&h->lock);
    h->turn = turn;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

__attribute__((noinline)) static void *swap_block(ht_heap *heap, void *p)
{
    ht_heap_free(heap, 0, p);
    return ht_heap_alloc(heap, 0, CROSS_SIZE);
}

static void *cross_worker(void *argument)
{
    handoff *h = argument;
    for (int i = 0; i < CROSS_ROUNDS; i++) {
        handoff_wait(h, 1);
        void *p = h->block;
        h->block = swap_block(h->heap, p);
        h->reused += h->block == p;
        handoff_pass(h, 0);
    }
    return NULL;
}

__attribute__((noinline)) static int cross_thread_rounds(ht_heap *heap)
{
    handoff h = {.lock = PTHREAD_MUTEX_INITIALIZER,
                 .changed = PTHREAD_COND_INITIALIZER,
                 .heap = heap};
    pthread_t worker;
    if (pthread_create(&worker, NULL, cross_worker, &h) != 0)
        return -1;
    for (int i = 0; i < CROSS_ROUNDS; i++) {
        h.block = ht_heap_alloc(heap, 0, CROSS_SIZE);
        handoff_pass(&h, 1);
        handoff_wait(&h, 0);
        ht_heap_free(heap, 0, h.block);
    }
    pthread_join(worker, NULL);
    return h.reused;
}

__attribute__((noinline)) static void true_temporaries(ht_heap *heap)
{
    for (int i = 0; i < TRUE_TEMPORARIES; i++)
        ht_heap_free(heap, 0, ht_heap_alloc(heap, 0, 48));
}

typedef struct drain {
    int in, out;
    pthread_mutex_t lock;
    pthread_cond_t go;
    bool released;
} drain;

/* Copies the pipe into the trace file once released, until the write end is closed. */
static void *drain_main(void *argument)
{
    drain *d = argument;
    pthread_mutex_lock(&d->lock);
    while (!d->released)
        pthread_cond_wait(&d->go, &d->lock);
    pthread_mutex_unlock(&d->lock);
    char buffer[1 << 16];
    ssize_t n;
    while ((n = read(d->in, buffer, sizeof buffer)) > 0)
        if (write(d->out, buffer, (size_t)n) != n)
            return (void *)1;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: scenarios PREFIX\n");
        return 2;
    }
    char path[4096];
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_heap *other = ht_heap_create(0, 0, 0);
    ht_heap *fixed = ht_heap_create(0, 64 << 10, 64 << 10);
    ht_heap *sampled = ht_heap_create(0, 0, 0);
    ht_heap *lossy = ht_heap_create(HT_HEAP_NO_SERIALIZE, 0, 0);
    if (!heap || !other || !fixed || !sampled || !lossy)
        return 1;

    /* 1. phases, INVALID, destroy, Sources */
    snprintf(path, sizeof path, "%s.window.trace", argv[1]);
    if (start(path, -1, HT_TRACE_MODE_BLOCK, 0, 0))
        return 1;
    void *before[BEFORE_COUNT], *inside[INSIDE_COUNT];
    ht_heap_counters counters_before;
    ht_heap_counters_get(heap, &counters_before);
    /* The window goes from the middle of the first pause to the middle of the second one. */
    uint64_t marks[4];
    before_phase(heap, before);
    marks[0] = monotonic_ns();
    pause_phase();
    marks[1] = monotonic_ns();
    inside_phase(heap, before, inside);
    marks[2] = monotonic_ns();
    pause_phase();
    marks[3] = monotonic_ns();
    after_phase(heap, before, inside);
    source_traffic(heap);
    misuse(heap, other, fixed);
    doomed_heap();
    ht_heap_counters counters;
    ht_heap_counters_get(heap, &counters);
    ht_trace_stop();

    /* 2. sampling */
    snprintf(path, sizeof path, "%s.sampled.trace", argv[1]);
    if (start(path, -1, HT_TRACE_MODE_BLOCK, 4096, 0))
        return 1;
    static void *keep[SAMPLED_KEEP];
    sampled_work(sampled, keep);
    ht_trace_stop();

    /* 3. ring mode */
    snprintf(path, sizeof path, "%s.ring.trace", argv[1]);
    if (start(path, -1, HT_TRACE_MODE_RING, 0, 64 << 10))
        return 1;
    void *handed[RING_COUNT];
    ring_alloc(sampled, handed);
    ring_work work = {sampled, handed};
    pthread_t worker;
    if (pthread_create(&worker, NULL, ring_worker, &work) != 0)
        return 1;
    pthread_join(worker, NULL);
    ht_trace_stop();

    /* 4. lost events */
    snprintf(path, sizeof path, "%s.lost.trace", argv[1]);
    int pipe_fds[2];
    drain d = {.lock = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER};
    pthread_t drainer;
    d.out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (d.out < 0 || pipe(pipe_fds) != 0)
        return 1;
    d.in = pipe_fds[0];
    if (pthread_create(&drainer, NULL, drain_main, &d) != 0)
        return 1;
    if (start(NULL, pipe_fds[1], HT_TRACE_MODE_DISCARD, 0, 64 << 10))
        return 1;
    burst(lossy);
    pthread_mutex_lock(&d.lock);
    d.released = true;
    pthread_cond_signal(&d.go);
    pthread_mutex_unlock(&d.lock);
    ht_trace_stop();
    close(pipe_fds[1]);
    void *drained;
    pthread_join(drainer, &drained);
    close(d.out);
    if (drained)
        return 1;
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);

    /* 5. temporaries across threads (the LFH off: a thread caches only its own LFH slots, while
     * the back end's free lists hand a block freed by one thread straight to the next request,
     * whichever thread makes it) */
    snprintf(path, sizeof path, "%s.temporary.trace", argv[1]);
    ht_heap *cross = ht_heap_create(0, 0, 0);
    uint32_t no_lfh = 0;
    if (!cross ||
        !ht_heap_set_information(cross, HT_HEAP_COMPATIBILITY_INFORMATION, &no_lfh, sizeof no_lfh))
        return 1;
    if (start(path, -1, HT_TRACE_MODE_BLOCK, 0, 0))
        return 1;
    int reused = cross_thread_rounds(cross);
    true_temporaries(cross);
    ht_trace_stop();
    if (reused < 0)
        return 1;

    snprintf(path, sizeof path, "%s.json", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    fprintf(f,
            "{\"heap\": \"0x%" PRIxPTR "\", \"other\": \"0x%" PRIxPTR "\", \"fixed\": \"0x%" PRIxPTR
            "\", \"sampled\": \"0x%" PRIxPTR "\",\n",
            (uintptr_t)heap, (uintptr_t)other, (uintptr_t)fixed, (uintptr_t)sampled);
    fprintf(f, " \"counters\": {");
    static const char *const ops[] = {"ALLOC", "FREE", "REALLOC"};
    for (int op = 0; op < HT_OP_COUNT; op++) {
        fprintf(f, "%s\"%s\": {", op ? ", " : "", ops[op]);
        for (int s = 1; s < HT_SOURCE_COUNT; s++)
            fprintf(f, "%s\"%s\": %" PRIu64, s > 1 ? ", " : "", ht_source_name((unsigned)s),
                    counters.counts[op][s] - counters_before.counts[op][s]);
        fprintf(f, "}");
    }
    fprintf(f,
            "},\n \"classes\": {\"AIFI\": [5, %d], \"AIFO\": [3, %d], \"AOFI\": [4, %d],"
            " \"AOFO\": [6, %d]},\n",
            5 * INSIDE_SIZE, 3 * INSIDE_SIZE, 4 * BEFORE_SIZE, 6 * BEFORE_SIZE);
    fprintf(f,
            " \"window_begin_monotonic_ns\": %" PRIu64 ", \"window_end_monotonic_ns\": %" PRIu64
            ",\n",
            marks[0] + (marks[1] - marks[0]) / 2, marks[2] + (marks[3] - marks[2]) / 2);
    fprintf(f,
            " \"phase_ns\": %ld, \"sampled_count\": %d, \"sampled_size\": %d,"
            " \"sampled_keep\": %d, \"ring_count\": %d, \"lost\": %" PRIu64 ",\n",
            PHASE_NS, SAMPLED_COUNT, SAMPLED_SIZE, SAMPLED_KEEP, RING_COUNT, stats.lost);
    fprintf(f,
            " \"cross_rounds\": %d, \"cross_reused\": %d, \"true_temporaries\": %d,"
            " \"true_temporary_size\": 48}\n",
            CROSS_ROUNDS, reused, TRUE_TEMPORARIES);
    return fclose(f) == 0 ? 0 : 1;
}
