/* lookaside.c — lookaside lists: per-thread, per-bucket LIFO caches of freed LFH slots.
 *
 * Only the owning thread touches its lists (push and pop are inline in heap_internal.h), so
 * they need no lock; each holds at most HT_LOOKASIDE_DEPTH slots of one bucket up to 1 KiB.
 * A cached slot stays out for its subsegment, marked HTI_SLOT_CACHED in its state word: walk
 * and summary count it free, and freeing it again, from any thread, is a double free. Entries
 * of a destroyed heap are never handed out: the thread's cache for that heap is stale and is
 * dropped whole. A list is a stack of (slot, state word) pairs in the thread's cache: no link
 * lives in a freed slot, where a use after free could forge one (the LFH's own lists, which
 * do, encode and check theirs). */
#include "heap_internal.h"

void hti_lookaside_flush(ht_heap *heap, hti_tcache *tc)
{
    for (unsigned b = 0; b < HTI_LOOKASIDE_BUCKETS; b++) {
        while (tc->lookaside_depth[b]) {
            hti_lookaside_entry e = tc->lookaside[b][--tc->lookaside_depth[b]];
            hti_subseg *ss = (hti_subseg *)hti_pagemap_lookup(e.slot); /* cached: still there */
            size_t index = hti_slot_at(ss, e.slot);
            assert(ss->region.kind == HTI_REGION_LFH && e.state == &ss->state[index] &&
                   hti_slot_get(ss, index) == HTI_SLOT_CACHED);
            hti_lfh_free(heap, tc, ss, index);
        }
    }
}

void hti_lookaside_flush_current(ht_heap *heap)
{
    hti_tcache *tc = hti_tcache_get(heap);
    if (tc)
        hti_lookaside_flush(heap, tc);
}
