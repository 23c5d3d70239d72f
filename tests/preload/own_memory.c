/* own_memory.c — a program whose heap at exit is known, for own_memory.py: heaptrail's own
 * memory (its threads' thread-local storage, libunwind's set-up) must not be counted as the
 * program's, so a trace's live blocks at exit equal what memcheck finds in use at exit and what
 * the process heap itself holds.
 *
 *   own_memory quiet   allocates nothing
 *   own_memory leaks   leaves LEAK_COUNT blocks live (freed, reallocated and calloc'ed ones on
 *                      the way); under the preload library, writes the process heap's own live
 *                      count ("heap BLOCKS BYTES", requested bytes) to stderr last
 * No stdio: its buffers are heap blocks of their own. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heaptrail/heap.h"

#define LEAK_COUNT 9

static void *kept[LEAK_COUNT];

__attribute__((noinline)) static void leaks(void)
{
    for (int i = 0; i < LEAK_COUNT; i++) {
        void *gone = malloc(100 + (size_t)i);
        kept[i] = malloc(24 + 40 * (size_t)i);
        free(gone);
    }
    kept[0] = realloc(kept[0], 3000);
    kept[1] = calloc(7, 11);
    free(malloc(1 << 20));
}

/* The library's exported API, bound at load time when it is preloaded (NULL otherwise): no
 * dlsym, which could allocate. */
extern ht_heap *ht_process_heap(void) __attribute__((weak));
extern bool ht_heap_summary_get(ht_heap *heap, uint32_t flags, ht_heap_summary *summary)
    __attribute__((weak));

/* The process heap's live blocks, as the heap counts them. */
static void report_heap(void)
{
    ht_heap_summary summary;
    if (!ht_process_heap || !ht_heap_summary_get ||
        !ht_heap_summary_get(ht_process_heap(), 0, &summary))
        return;
    char line[96];
    int n = snprintf(line, sizeof line, "heap %zu %zu\n", summary.live_blocks, summary.requested);
    if (n > 0)
        (void)!write(2, line, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "quiet") == 0)
        return 0;
    if (argc == 2 && strcmp(argv[1], "leaks") == 0) {
        leaks();
        report_heap();
        return 0;
    }
    static const char usage[] = "usage: own_memory quiet|leaks\n";
    (void)!write(2, usage, sizeof usage - 1);
    return 2;
}
