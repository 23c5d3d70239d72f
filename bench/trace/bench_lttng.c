/* bench_lttng.c — the tracing workload over heaptrail's heap (tracing off) with an LTTng-UST
 * tracepoint per allocation and free: the same events, recorded by LTTng-UST's ring buffer
 * when an LTTng session enables heaptrail_bench:* (bench/trace/run.py sets one up).
 * Usage: bench_trace_lttng [iterations] */
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#include <stdio.h>
#include <stdlib.h>

#include "heaptrail/heap.h"
#include "lttng_tp.h"
#include "workload.h"

static ht_heap *heap;

static inline void *allocate(size_t size)
{
    void *p = ht_heap_alloc(heap, 0, size);
    lttng_ust_tracepoint(heaptrail_bench, alloc, heap, size, p, 2);
    return p;
}

static inline void release(void *p)
{
    lttng_ust_tracepoint(heaptrail_bench, free, heap, p, 2);
    ht_heap_free(heap, 0, p);
}
#define ALLOCATE(size) allocate(size)
#define RELEASE(p) release(p)

int main(int argc, char **argv)
{
    uint64_t iterations = argc > 1 ? strtoull(argv[1], NULL, 0) : 2000000;
    heap = ht_heap_create(0, 0, 0);
    static void *slots[WORKLOAD_SLOTS];
    uint64_t checksum = 0;
    uint64_t start = workload_now_ns();
    WORKLOAD_LOOP(iterations, slots, checksum);
    uint64_t elapsed = workload_now_ns() - start;
    printf("loop_ns %llu events %llu checksum %llu\n", (unsigned long long)elapsed,
           (unsigned long long)(2 * iterations), (unsigned long long)(checksum & 0xFFFF));
    return 0;
}
