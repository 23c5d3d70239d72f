/* live_check.c — a program whose heap state at the end is compared with its trace's live set.
 *
 * Threads allocate, reallocate and free blocks of every tier (lookaside, LFH, back end, large),
 * keep some, hand some to other threads to free. At the end, with the other threads joined, it
 * reads the process heap's summary and stops the trace (both through dlsym, so the plain run
 * works too), then prints the heap handle, live block count and requested bytes: the trace's
 * live set for that heap must match exactly. Output: that line (or "no heaptrail"). Arguments:
 * [threads] [operations per thread]. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail/heap.h"

enum { KEPT_PER_THREAD = 300, SLOTS = 64 };

static unsigned operations = 20000;
static void *handed[64][SLOTS]; /* blocks allocated by one thread, freed by the next */
static void *kept[64][KEPT_PER_THREAD];

static size_t size_for(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    unsigned pick = (unsigned)(*state % 100);
    if (pick < 50)
        return 1 + *state % 256; /* lookaside / LFH */
    if (pick < 85)
        return 257 + *state % 16000; /* LFH / back end */
    if (pick < 99)
        return 16385 + *state % 200000; /* back end */
    return 600000 + *state % 100000;    /* large */
}

static void *worker(void *argument)
{
    unsigned index = (unsigned)(uintptr_t)argument;
    uint64_t state = 0x9E3779B97F4A7C15ull * (index + 1);
    void *slots[SLOTS] = {0};
    for (unsigned i = 0; i < operations; i++) {
        unsigned s = (unsigned)(state % SLOTS);
        size_t size = size_for(&state);
        switch (i % 5) {
        case 0:
        case 1:
        case 2:
            free(slots[s]);
            slots[s] = malloc(size);
            if (slots[s])
                memset(slots[s], (int)i, size < 64 ? size : 64);
            break;
        case 3:
            if (slots[s]) {
                void *moved = realloc(slots[s], size);
                if (moved)
                    slots[s] = moved;
            }
            break;
        default:
            free(slots[s]);
            slots[s] = calloc(1, size / 2 + 1);
            break;
        }
    }
    for (unsigned k = 0; k < KEPT_PER_THREAD; k++)
        kept[index][k] = malloc(size_for(&state));
    for (unsigned s = 0; s < SLOTS; s++)
        handed[index][s] = slots[s];
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 4;
    if (argc > 2)
        operations = (unsigned)atoi(argv[2]);
    if (threads < 1 || threads > 64)
        threads = 4;
    pthread_t ids[64];
    for (unsigned t = 0; t < threads; t++)
        pthread_create(&ids[t], NULL, worker, (void *)(uintptr_t)t);
    for (unsigned t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    /* Blocks allocated by one thread, freed here (another thread): every other one. */
    for (unsigned t = 0; t < threads; t++)
        for (unsigned s = 0; s < SLOTS; s += 2)
            free(handed[t][s]);
    for (unsigned t = 0; t < threads; t++)
        for (unsigned k = 0; k < KEPT_PER_THREAD; k += 3)
            free(kept[t][k]);

    ht_heap *(*process_heap)(void);
    bool (*summary_get)(ht_heap *, uint32_t, ht_heap_summary *);
    int (*trace_stop)(void);
    *(void **)&process_heap = dlsym(RTLD_DEFAULT, "ht_process_heap");
    *(void **)&summary_get = dlsym(RTLD_DEFAULT, "ht_heap_summary_get");
    *(void **)&trace_stop = dlsym(RTLD_DEFAULT, "ht_trace_stop");
    if (!process_heap || !summary_get || !trace_stop) {
        puts("no heaptrail");
        return 0;
    }
    ht_heap *heap = process_heap();
    ht_heap_summary summary;
    memset(&summary, 0, sizeof summary);
    /* Nothing may allocate between the summary and the end of the trace. */
    bool ok = summary_get(heap, 0, &summary);
    int stopped = trace_stop();
    printf("heap=%p live_blocks=%zu requested=%zu summary=%d stopped=%d\n", (void *)heap,
           summary.live_blocks, summary.requested, ok, stopped);
    return 0;
}
