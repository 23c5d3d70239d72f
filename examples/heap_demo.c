/* heap_demo.c — a short tour of the heap API: a private heap, the tiers that serve it, and
 * the per-Source counters. Run by `make run` until the command line records real programs. */
#include <stdio.h>
#include <string.h>

#include <heaptrail/heaptrail.h>

static const char *const source_names[HT_SOURCE_COUNT] =
    {"", "LOOKASIDE", "LOWFRAG", "MAINPATH", "SLOWPATH", "INVALID", "SEGMENT_HEAP"};

int main(void)
{
    ht_heap *heap = ht_heap_create(0, 0, 0);
    if (!heap) {
        fprintf(stderr, "heap_demo: cannot create a heap: %s\n", ht_error_message(ht_last_error()));
        return 1;
    }
    void *blocks[64];
    for (int round = 0; round < 4; round++) {
        for (int i = 0; i < 64; i++)
            blocks[i] = ht_heap_alloc(heap, 0, 24 + (size_t)i % 3 * 8);
        for (int i = 0; i < 64; i++)
            ht_heap_free(heap, 0, blocks[i]);
    }
    void *big = ht_heap_alloc(heap, HT_HEAP_ZERO_MEMORY, 1 << 20);
    big = ht_heap_realloc(heap, 0, big, 2 << 20);
    ht_heap_free(heap, 0, big);
    ht_heap_free(heap, 0, (void *)&heap); /* not a block of this heap: INVALID */

    ht_heap_counters c;
    ht_heap_summary s;
    ht_heap_counters_get(heap, &c);
    ht_heap_summary_get(heap, 0, &s);
    printf("%-10s %8s %8s %8s\n", "Source", "alloc", "free", "realloc");
    for (int src = 1; src < HT_SOURCE_COUNT; src++)
        printf("%-10s %8llu %8llu %8llu\n", source_names[src],
               (unsigned long long)c.counts[HT_OP_ALLOC][src],
               (unsigned long long)c.counts[HT_OP_FREE][src],
               (unsigned long long)c.counts[HT_OP_REALLOC][src]);
    printf("reserved %zu, committed %zu, allocated %zu, free %zu, live blocks %zu; valid: %s\n",
           s.reserved, s.committed, s.allocated, s.free, s.live_blocks,
           ht_heap_validate(heap, 0, NULL) ? "yes" : "no");
    ht_heap_destroy(heap);
    return 0;
}
