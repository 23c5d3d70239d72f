/* bench_trace.c — what tracing costs, in one process: the workload of workload.h over a
 * heaptrail heap with tracing off, on (block mode, no stacks), and on with 16-frame stacks
 * (frame pointers, libunwind); then the reader's decoding rate on the trace just written.
 * Each figure is the best of --rounds runs. Prints "key value" lines for bench/trace/run.py.
 * Usage: bench_trace [--iterations N] [--rounds N] [--dir DIR] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heaptrail/heaptrail.h"
#include "heaptrail/reader.h"
#include "trace/emit.h"
#include "workload.h"

static ht_heap *heap;

static __attribute__((noinline)) void *allocate(size_t size)
{
    return ht_heap_alloc(heap, 0, size);
}
#define ALLOCATE(size) allocate(size)
#define RELEASE(p) ht_heap_free(heap, 0, p)

typedef struct result {
    uint64_t loop_ns;
    uint64_t stop_ns;
    uint64_t events;
    uint64_t lost;
    uint64_t bytes;
    uint64_t stacks;
} result;

static result run(uint64_t iterations, const char *path, unsigned depth, ht_trace_unwinder unwinder)
{
    static void *slots[WORKLOAD_SLOTS];
    result r;
    memset(&r, 0, sizeof r);
    if (path) {
        ht_trace_options o;
        ht_trace_options_init(&o);
        o.output_path = path;
        o.stack_depth = depth;
        o.unwinder = unwinder;
        o.no_rundown = true;
        if (ht_trace_start(&o) != 0) {
            fprintf(stderr, "bench_trace: cannot start tracing to %s\n", path);
            exit(1);
        }
    }
    uint64_t checksum = 0;
    uint64_t start = workload_now_ns();
    WORKLOAD_LOOP(iterations, slots, checksum);
    uint64_t end = workload_now_ns();
    r.loop_ns = end - start;
    if (path) {
        ht_trace_stop();
        r.stop_ns = workload_now_ns() - end;
        ht_trace_stats stats;
        ht_trace_stats_get(&stats);
        r.events = stats.events;
        r.lost = stats.lost;
        r.stacks = stats.stacks;
        struct stat st;
        r.bytes = stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
    if (checksum == 42)
        puts("");
    return r;
}

static result best(uint64_t iterations, int rounds, const char *path, unsigned depth,
                   ht_trace_unwinder unwinder)
{
    result b = run(iterations, path, depth, unwinder);
    for (int i = 1; i < rounds; i++) {
        result r = run(iterations, path, depth, unwinder);
        if (r.loop_ns < b.loop_ns)
            b = r;
    }
    return b;
}

/* The tracer's hooks alone, as the heap calls them (emit.h), without the heap's own work:
 * ns per event, tracing on minus tracing off. */
static double hooks_alone(uint64_t events, const char *path)
{
    double best_ns = 1e9;
    for (int on = 0; on < 2; on++) {
        if (on) {
            ht_trace_options o;
            ht_trace_options_init(&o);
            o.output_path = path;
            o.no_rundown = true;
            ht_trace_start(&o);
        }
        uint64_t address = 0x7f0000000000u, rng = 88172645463325252u;
        uint64_t start = workload_now_ns();
        for (uint64_t i = 0; i < events; i += 2) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            address += 16 * (rng & 63);
            if (HT_TRACE_ON())
                hti_trace_alloc(heap, 16 + (rng >> 20) % 496, (void *)address, MEMORY_FROM_LOWFRAG);
            if (HT_TRACE_ON())
                hti_trace_free(heap, (void *)(address - 512), MEMORY_FROM_LOOKASIDE);
            __asm__ volatile("" ::: "memory");
        }
        double ns = (double)(workload_now_ns() - start) / (double)events;
        if (on)
            ht_trace_stop();
        best_ns = on ? ns - best_ns : ns;
    }
    return best_ns;
}

static double decode_rate(const char *path, int rounds, uint64_t *count)
{
    static ht_event events[4096];
    double best_rate = 0;
    for (int i = 0; i < rounds; i++) {
        ht_reader *reader = ht_reader_open(path, NULL, 0);
        if (!reader)
            return 0;
        uint64_t start = workload_now_ns(), n = 0;
        long got;
        while ((got = ht_reader_read(reader, events, 4096)) > 0)
            n += (uint64_t)got;
        double rate = (double)n * 1e9 / (double)(workload_now_ns() - start);
        ht_reader_close(reader);
        *count = n;
        if (rate > best_rate)
            best_rate = rate;
    }
    return best_rate;
}

int main(int argc, char **argv)
{
    uint64_t iterations = 4000000;
    int rounds = 5;
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iterations"))
            iterations = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--rounds"))
            rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir"))
            dir = argv[i + 1];
    }
    heap = ht_heap_create(0, 0, 0);
    char path[512];
    snprintf(path, sizeof path, "%s/bench-trace-%d.trace", dir, (int)getpid());
    const double events = 2.0 * (double)iterations;

    run(iterations / 4, NULL, 0, 0); /* warm the heap */
    result off = best(iterations, rounds, NULL, 0, 0);
    result on = best(iterations, rounds, path, 0, 0);
    uint64_t decoded = 0;
    double decode = decode_rate(path, rounds, &decoded);
    result fp = best(iterations / 4, rounds, path, 16, HT_TRACE_UNWIND_FRAME_POINTER);
    result unw = best(iterations / 4, rounds, path, 16, HT_TRACE_UNWIND_LIBUNWIND);
    double hooks = hooks_alone(2 * iterations, path);
    for (int i = 1; i < rounds; i++) {
        double again = hooks_alone(2 * iterations, path);
        if (again < hooks)
            hooks = again;
    }
    unlink(path);

    printf("hooks_added_ns_per_event %.2f\n", hooks);
    printf("iterations %llu\n", (unsigned long long)iterations);
    printf("off_ns_per_event %.2f\n", (double)off.loop_ns / events);
    printf("on_ns_per_event %.2f\n", (double)on.loop_ns / events);
    printf("on_added_ns_per_event %.2f\n", ((double)on.loop_ns - (double)off.loop_ns) / events);
    printf("on_events_per_second %.0f\n", events * 1e9 / (double)on.loop_ns);
    printf("on_events_recorded %llu\n", (unsigned long long)on.events);
    printf("on_lost %llu\n", (unsigned long long)on.lost);
    printf("on_bytes_per_event %.2f\n", (double)on.bytes / (double)(on.events ? on.events : 1));
    printf("on_stop_ms %.1f\n", (double)on.stop_ns / 1e6);
    printf("decode_events_per_second %.0f\n", decode);
    printf("decoded_events %llu\n", (unsigned long long)decoded);
    double quarter = events / 4;
    double off_quarter = (double)off.loop_ns / 4;
    printf("fp_added_ns_per_event %.2f\n", ((double)fp.loop_ns - off_quarter) / quarter);
    printf("fp_bytes_per_event %.2f\n", (double)fp.bytes / (double)(fp.events ? fp.events : 1));
    printf("fp_stacks %llu\n", (unsigned long long)fp.stacks);
    printf("libunwind_added_ns_per_event %.2f\n", ((double)unw.loop_ns - off_quarter) / quarter);
    printf("libunwind_stacks %llu\n", (unsigned long long)unw.stacks);
    printf("libunwind_lost %llu\n", (unsigned long long)unw.lost);
    ht_heap_destroy(heap);
    return 0;
}
