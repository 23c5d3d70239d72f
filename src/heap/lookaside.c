/* lookaside.c — lookaside lists: per-thread, per-bucket LIFO caches of freed LFH slots.
 *
 * Only the owning thread touches its lists (push and pop are inline in heap_internal.h), so
 * they need no lock; each holds at most HT_LOOKASIDE_DEPTH slots of one bucket up to 1 KiB.
 * A cached slot stays allocated for its subsegment (flags LFH|LOOKASIDE, not BUSY): walk and
 * summary count it free, and freeing it again is a double free. Entries of a destroyed heap
 * are never handed out: the thread's cache for that heap is stale and is dropped whole.
 * A list is a stack of pointers in the thread's cache: no link lives in a freed slot, where a
 * use after free could forge one (the LFH's own lists, which do, encode and check theirs).
 * A per-cache hint table counts the cached slots by hash, so a free can tell in one load that
 * a slot is not cached here (a double free with a written-back header is). */
#include "heap_internal.h"

bool hti_lookaside_scan(const hti_tcache *tc, const hti_header *slot)
{
    if (slot->tag >= HTI_LOOKASIDE_BUCKETS)
        return false;
    const hti_lookaside *l = &tc->lookaside[slot->tag];
    for (uint32_t i = 0; i < l->depth; i++)
        if (l->slot[i] == slot)
            return true;
    return false;
}

void hti_lookaside_flush(ht_heap *heap, hti_tcache *tc)
{
    for (unsigned b = 0; b < HTI_LOOKASIDE_BUCKETS; b++) {
        hti_header *slot;
        while ((slot = hti_lookaside_pop(tc, b)) != NULL)
            hti_lfh_free(heap, tc, slot);
        assert(tc->lookaside[b].depth == 0);
    }
}

void hti_lookaside_flush_current(ht_heap *heap)
{
    hti_tcache *tc = hti_tcache_get(heap);
    if (tc)
        hti_lookaside_flush(heap, tc);
}
