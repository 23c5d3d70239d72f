/* bench_malloc.c — the tracing workload over plain malloc/free, for tools that intercept
 * malloc (heaptrack). Prints the loop's own time, so a tool's start-up cost is left out.
 * Usage: bench_trace_malloc [iterations] */
#include <stdio.h>
#include <stdlib.h>

#include "workload.h"

static __attribute__((noinline)) void *allocate(size_t size)
{
    return malloc(size);
}
#define ALLOCATE(size) allocate(size)
#define RELEASE(p) free(p)

int main(int argc, char **argv)
{
    uint64_t iterations = argc > 1 ? strtoull(argv[1], NULL, 0) : 2000000;
    static void *slots[WORKLOAD_SLOTS];
    uint64_t checksum = 0;
    uint64_t start = workload_now_ns();
    WORKLOAD_LOOP(iterations, slots, checksum);
    uint64_t elapsed = workload_now_ns() - start;
    printf("loop_ns %llu events %llu checksum %llu\n", (unsigned long long)elapsed,
           (unsigned long long)(2 * iterations), (unsigned long long)(checksum & 0xFFFF));
    return 0;
}
