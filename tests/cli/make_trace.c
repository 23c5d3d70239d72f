/* make_trace.c — writes a trace with known contents through the tracing API (no preload, so the
 * CLI tests that only read traces also run under the sanitizers). Usage: make_trace FILE
 * [--stacks] [--sample BYTES] [--mode block|discard|ring]. On a private heap, with a second
 * thread: 300 ALLOCs of 1000..1299 bytes (kept), 200 of 40 bytes freed again, 50 REALLOCs of 24
 * to 5000 bytes, a 700000-byte block allocated and freed, a FREE of a pointer the heap does not
 * own (Source INVALID); a second heap created, given 10 blocks and destroyed. Live at the end:
 * the 300 blocks and a 77-byte one from before the start. Prints the private heap's handle. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail/heaptrail.h"
#include "heaptrail/trace.h"

static ht_heap *private_heap;
static void *kept[300];

static void *second_thread(void *argument)
{
    (void)argument;
    for (int i = 0; i < 50; i++) {
        void *block = ht_heap_alloc(private_heap, 0, 24);
        block = ht_heap_realloc(private_heap, 0, block, 5000);
        ht_heap_free(private_heap, 0, block);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: make_trace FILE [--stacks] [--sample BYTES] [--mode MODE]\n");
        return 2;
    }
    ht_trace_options options;
    ht_trace_options_init(&options);
    options.output_path = argv[1];
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--stacks"))
            options.stack_depth = 16;
        else if (!strcmp(argv[i], "--sample") && i + 1 < argc)
            options.sample_interval = (size_t)strtoull(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--mode") && i + 1 < argc) {
            const char *mode = argv[++i];
            options.mode = !strcmp(mode, "ring")      ? HT_TRACE_MODE_RING
                           : !strcmp(mode, "discard") ? HT_TRACE_MODE_DISCARD
                                                      : HT_TRACE_MODE_BLOCK;
        }
    }
    private_heap = ht_heap_create(0, 0, 0);
    void *before = ht_heap_alloc(private_heap, 0, 77); /* live at start: a RUNDOWN_BLOCK */
    int error = ht_trace_start(&options);
    if (error) {
        fprintf(stderr, "make_trace: cannot start: %s\n", strerror(-error));
        return 1;
    }
    for (int i = 0; i < 300; i++)
        kept[i] = ht_heap_alloc(private_heap, 0, 1000 + (size_t)i);
    for (int i = 0; i < 200; i++)
        ht_heap_free(private_heap, 0, ht_heap_alloc(private_heap, 0, 40));
    pthread_t thread;
    pthread_create(&thread, NULL, second_thread, NULL);
    pthread_join(thread, NULL);
    void *large = ht_heap_alloc(private_heap, 0, 700000);
    ht_heap_free(private_heap, 0, large);
    static char not_ours[64];
    ht_heap_free(private_heap, 0, not_ours + 16); /* fails: Source INVALID */
    ht_heap *second = ht_heap_create(0, 0, 0);
    for (int i = 0; i < 10; i++)
        (void)ht_heap_alloc(second, 0, 64);
    ht_heap_destroy(second);
    ht_trace_stop();
    printf("heap=%p\n", (void *)private_heap);
    (void)before;
    return 0;
}
