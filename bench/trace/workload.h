/* workload.h — the allocation loop every tracing benchmark runs, over any allocator.
 *
 * N iterations over a window of 1024 slots: each iteration frees the block in a random slot
 * (if any) and allocates a new one of 16-511 bytes there, so after the first 1024 iterations
 * every iteration is one free and one allocation: two heap events. Define ALLOCATE(size) and
 * RELEASE(pointer) before including; the loop returns a checksum so nothing is optimized away. */
#ifndef HEAPTRAIL_BENCH_TRACE_WORKLOAD_H
#define HEAPTRAIL_BENCH_TRACE_WORKLOAD_H

#include <stdint.h>
#include <string.h>
#include <time.h>

#define WORKLOAD_SLOTS 1024

static inline uint64_t workload_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define WORKLOAD_LOOP(iterations, slots, checksum)                                                 \
    do {                                                                                           \
        uint64_t workload_rng = 88172645463325252u;                                                \
        for (uint64_t workload_i = 0; workload_i < (iterations); workload_i++) {                   \
            workload_rng ^= workload_rng << 13;                                                    \
            workload_rng ^= workload_rng >> 7;                                                     \
            workload_rng ^= workload_rng << 17;                                                    \
            unsigned workload_slot = (unsigned)(workload_rng % WORKLOAD_SLOTS);                    \
            if ((slots)[workload_slot])                                                            \
                RELEASE((slots)[workload_slot]);                                                   \
            size_t workload_size = 16 + (size_t)((workload_rng >> 20) % 496);                      \
            char *workload_p = ALLOCATE(workload_size);                                            \
            workload_p[0] = (char)workload_i;                                                      \
            (checksum) += (uint64_t)(uintptr_t)workload_p >> 4;                                    \
            (slots)[workload_slot] = workload_p;                                                   \
        }                                                                                          \
        for (unsigned workload_j = 0; workload_j < WORKLOAD_SLOTS; workload_j++)                   \
            if ((slots)[workload_j]) {                                                             \
                RELEASE((slots)[workload_j]);                                                      \
                (slots)[workload_j] = NULL;                                                        \
            }                                                                                      \
    } while (0)

#endif
