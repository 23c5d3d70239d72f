/* thread_exit.c — a program whose threads use the heap while they exit, after heaptrail's own
 * exit destructor: a key created in main (after the tracer's) frees each thread's value with
 * free(), a second key's destructor is some threads' first heap use (it allocates a block it
 * keeps and one it frees), and the C library frees the per-thread strerror buffer after every
 * destructor. At the end, as live_check, it reads the process heap's summary and stops the trace
 * (through dlsym, so the plain run works too) and prints the heap handle, live block count and
 * requested bytes: the trace's live set must match. Output: that line (or "no heaptrail").
 * Argument: [threads] (1..64, default 10). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail/heap.h"

enum { MAX_THREADS = 64 };

static pthread_key_t value_key, late_key;
static void *kept[MAX_THREADS];

static void late_destructor(void *value)
{
    size_t index = (size_t)(uintptr_t)value - 1;
    kept[index] = malloc(300 + index);
    free(malloc(40));
}

static void *worker(void *argument)
{
    uintptr_t index = (uintptr_t)argument;
    if (index % 2 == 0) {
        pthread_setspecific(value_key, malloc(150 + index));
        /* An unknown error number: the message is built in a buffer the C library allocates
         * for this thread and frees when the thread ends. */
        if (!strerror(100000 + (int)index))
            return NULL;
    }
    pthread_setspecific(late_key, (void *)(index + 1));
    return NULL;
}

int main(int argc, char **argv)
{
    unsigned threads = argc > 1 ? (unsigned)atoi(argv[1]) : 10;
    if (threads < 1 || threads > MAX_THREADS)
        threads = 10;
    if (pthread_key_create(&value_key, free) != 0 ||
        pthread_key_create(&late_key, late_destructor) != 0)
        return 1;
    pthread_t ids[MAX_THREADS];
    for (unsigned t = 0; t < threads; t++)
        if (pthread_create(&ids[t], NULL, worker, (void *)(uintptr_t)t) != 0)
            return 1;
    for (unsigned t = 0; t < threads; t++)
        pthread_join(ids[t], NULL);
    for (unsigned t = 0; t < threads; t += 3)
        free(kept[t]);

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
