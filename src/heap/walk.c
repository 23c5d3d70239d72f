/* walk.c — looking at a whole heap: walk, summary, validation, compaction, and the rundown
 * provider the tracer reads heaps through (trace/rundown.h).
 *
 * All of them run under the heap lock and read segments block by block, descending into LFH
 * subsegments slot by slot, then the large blocks. Validation trusts nothing it reads: each
 * header's seal is checked before its size is used to step, so a corrupted heap yields false,
 * never a fault. Lookaside-cached slots are free for walk and summary (the caller freed them). */
#include <string.h>

#include "heap_internal.h"
#include "trace/rundown.h"

/* ---- walk ----------------------------------------------------------------------------- */
enum { PHASE_SEGMENTS = 0, PHASE_LARGE = 1, PHASE_DONE = 2 };
/* More blocks than this in one free list is taken for a cycle by validation. */
#define FREE_LIST_MAX (1u << 30)

/* cursor[0] phase, [1] segment or large block, [2] back-end block (0: region entry next),
 * [3] slot index + 1 inside a subsegment (0: not inside one). Each step below either fills
 * *e and returns true, or moves the cursor on and returns false (look again). */

/* The next slot of the subsegment in back-end block b, or false once past its carved slots. */
static bool slot_step(ht_heap_entry *e, hti_header *b)
{
    uintptr_t *c = e->cursor;
    hti_subseg *ss = hti_block_data(b);
    if (c[3] >= ss->carved) {
        c[2] = (uintptr_t)((char *)b + hti_block_bytes(b));
        c[3] = 0;
        return false;
    }
    size_t index = c[3]++;
    unsigned state = hti_slot_get(ss, index);
    bool busy = state >= HTI_SLOT_BUSY;
    *e = (ht_heap_entry){.data = hti_slot_ptr(ss, index),
                         .size = ss->slot_size,
                         .requested = busy ? ss->slot_size - HTI_SLOT_UNUSED(state) : 0,
                         .overhead = 0,
                         .flags = HT_ENTRY_LFH | (busy ? HT_ENTRY_BUSY : 0),
                         .source = MEMORY_FROM_LOWFRAG,
                         .cursor = {c[0], c[1], c[2], c[3]}};
    return true;
}

/* A segment: the region, then its blocks (a subsegment's slots in place of its block), then
 * its uncommitted tail; then the next segment, or the large blocks' phase. */
static bool segment_step(ht_heap *heap, ht_heap_entry *e)
{
    uintptr_t *c = e->cursor;
    hti_segment *seg = (hti_segment *)c[1];
    if (!seg) {
        c[0] = PHASE_LARGE;
        c[1] = (uintptr_t)heap->large;
        c[2] = c[3] = 0;
        return false;
    }
    char *end = seg->region.base + seg->committed;
    if (c[2] == 0) { /* the region itself */
        c[2] = (uintptr_t)seg->first;
        *e = (ht_heap_entry){.data = seg->region.base,
                             .size = seg->region.reserved,
                             .flags = HT_ENTRY_REGION,
                             .source = MEMORY_FROM_MAINPATH,
                             .cursor = {c[0], c[1], c[2], c[3]}};
        return true;
    }
    hti_header *b = (hti_header *)c[2];
    if ((char *)b >= end) {
        hti_segment *next = seg->next;
        size_t uncommitted = seg->region.reserved - seg->committed;
        c[1] = (uintptr_t)next;
        c[2] = c[3] = 0;
        if (!uncommitted)
            return false;
        *e = (ht_heap_entry){.data = end,
                             .size = uncommitted,
                             .flags = HT_ENTRY_UNCOMMITTED,
                             .source = MEMORY_FROM_SLOWPATH,
                             .cursor = {c[0], c[1], 0, 0}};
        return true;
    }
    if (b->flags & HTI_BLOCK_SUBSEG)
        return slot_step(e, b);
    c[2] = (uintptr_t)((char *)b + hti_block_bytes(b));
    bool busy = b->flags & HTI_BLOCK_BUSY;
    size_t usable = hti_block_bytes(b) - HTI_HEADER;
    *e = (ht_heap_entry){.data = hti_block_data(b),
                         .size = usable,
                         .requested = busy ? usable - b->unused : 0,
                         .overhead = HTI_HEADER,
                         .flags = busy ? HT_ENTRY_BUSY : 0,
                         .source = MEMORY_FROM_MAINPATH,
                         .cursor = {c[0], c[1], c[2], c[3]}};
    return true;
}

/* A large block: its mapping as a region, then the block; then the next, or the end. */
static bool large_step(ht_heap_entry *e)
{
    uintptr_t *c = e->cursor;
    hti_large *large = (hti_large *)c[1];
    if (!large) {
        c[0] = PHASE_DONE;
        return false;
    }
    if (c[2] == 0) { /* the mapping as a region, then its block */
        c[2] = 1;
        *e = (ht_heap_entry){.data = large->region.base,
                             .size = large->region.reserved,
                             .flags = HT_ENTRY_REGION | HT_ENTRY_LARGE,
                             .source = MEMORY_FROM_SLOWPATH,
                             .cursor = {c[0], c[1], c[2], c[3]}};
        return true;
    }
    c[1] = (uintptr_t)large->next;
    c[2] = 0;
    *e = (ht_heap_entry){.data = large->data,
                         .size = hti_large_usable(large),
                         .requested = large->requested,
                         .overhead = (uint32_t)((char *)large->data - large->region.base),
                         .flags = HT_ENTRY_BUSY | HT_ENTRY_LARGE,
                         .source = MEMORY_FROM_SLOWPATH,
                         .cursor = {c[0], c[1], c[2], c[3]}};
    return true;
}

static bool next_entry(ht_heap *heap, ht_heap_entry *e)
{
    for (;;) {
        if (e->cursor[0] == PHASE_SEGMENTS) {
            if (segment_step(heap, e))
                return true;
        } else if (e->cursor[0] == PHASE_LARGE) {
            if (large_step(e))
                return true;
        } else {
            return false;
        }
    }
}

/* Between two calls the caller may have freed what the cursor points at (a segment, a large
 * block, a subsegment, or a block coalesced away). Re-anchor it on live structures: an
 * unknown segment or large block ends that phase, a block pointer is re-synchronised to the
 * first block at or after it. Entries may be skipped; nothing stale is dereferenced. */
static void cursor_fix(ht_heap *heap, uintptr_t *c)
{
    if (c[0] == PHASE_SEGMENTS && c[1]) {
        hti_segment *seg = heap->segments;
        while (seg && (uintptr_t)seg != c[1])
            seg = seg->next;
        if (!seg) {
            c[0] = PHASE_LARGE;
            c[1] = (uintptr_t)heap->large;
            c[2] = c[3] = 0;
            return;
        }
        if (c[2] == 0)
            return;
        char *end = seg->region.base + seg->committed;
        hti_header *b = (hti_header *)seg->first;
        while ((char *)b < end && (uintptr_t)b < c[2])
            b = (hti_header *)((char *)b + hti_block_bytes(b));
        if ((uintptr_t)b != c[2] || (char *)b >= end || !(b->flags & HTI_BLOCK_SUBSEG))
            c[3] = 0;
        c[2] = (uintptr_t)((char *)b < end ? (char *)b : end);
        if (c[3] && c[3] > ((hti_subseg *)hti_block_data(b))->carved)
            c[3] = 0;
    } else if (c[0] == PHASE_LARGE && c[1]) {
        hti_large *large = heap->large;
        while (large && (uintptr_t)large != c[1])
            large = large->next;
        if (!large)
            c[0] = PHASE_DONE;
    }
}

HT_API bool ht_heap_walk(ht_heap *heap, ht_heap_entry *entry)
{
    if (!hti_heap_ok(heap) || !entry) {
        ht_set_last_error(entry ? HT_ERROR_INVALID_HANDLE : HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    pthread_mutex_lock(&heap->lock);
    if (!entry->data) {
        memset(entry->cursor, 0, sizeof entry->cursor);
        entry->cursor[0] = PHASE_SEGMENTS;
        entry->cursor[1] = (uintptr_t)heap->segments;
    } else {
        cursor_fix(heap, entry->cursor);
    }
    bool more = next_entry(heap, entry);
    pthread_mutex_unlock(&heap->lock);
    if (!more)
        ht_set_last_error(HT_ERROR_NO_MORE_ITEMS);
    return more;
}

/* ---- summary -------------------------------------------------------------------------- */
HT_API bool ht_heap_summary_get(ht_heap *heap, uint32_t flags, ht_heap_summary *s)
{
    (void)flags;
    if (!hti_heap_ok(heap) || !s) {
        ht_set_last_error(s ? HT_ERROR_INVALID_HANDLE : HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&heap->lock);
    ht_heap_entry e = {.cursor = {PHASE_SEGMENTS, (uintptr_t)heap->segments, 0, 0}};
    while (next_entry(heap, &e)) {
        if (e.flags & (HT_ENTRY_REGION | HT_ENTRY_UNCOMMITTED))
            continue;
        if (e.flags & HT_ENTRY_BUSY) {
            s->allocated += e.size;
            s->requested += e.requested;
            s->live_blocks++;
        } else {
            s->free += e.size;
        }
    }
    s->reserved = heap->reserved;
    s->committed = heap->committed;
    pthread_mutex_unlock(&heap->lock);
    s->overhead = s->committed - s->allocated - s->free;
    return true;
}

/* ---- validation ----------------------------------------------------------------------- */
static unsigned count_free_in_bins(ht_heap *heap, bool *ok)
{
    unsigned count = 0;
    for (unsigned bin = 0; bin < HTI_BINS; bin++) {
        bool bit = heap->bitmap[bin / 64] >> (bin % 64) & 1;
        if (bit != (heap->bins[bin] != NULL))
            *ok = false;
        hti_header *prev = NULL;
        for (hti_header *b = heap->bins[bin]; b && *ok; b = *ok ? hti_free_next(heap, b) : NULL) {
            if (!hti_free_block_ok(heap, b) || hti_free_prev(heap, b) != prev) {
                *ok = false;
                break;
            }
            prev = b;
            if (++count > FREE_LIST_MAX)
                *ok = false; /* a cycle */
        }
    }
    return count;
}

static bool segment_is_valid(ht_heap *heap, hti_segment *seg, unsigned *free_blocks)
{
    const hti_region *r = &seg->region;
    if (r->magic != HTI_REGION_MAGIC || r->kind != HTI_REGION_SEGMENT || r->heap != heap ||
        seg->committed > r->reserved || hti_pagemap_lookup(r->base) != r)
        return false;
    char *end = r->base + seg->committed;
    hti_header *b = (hti_header *)seg->first, *prev = NULL;
    while ((char *)b < end) {
        if (!hti_sealed(heap, b) || b->size < HTI_MIN_BLOCK / HTI_GRANULE ||
            (char *)b + hti_block_bytes(b) > end || b->prev_size != (prev ? prev->size : 0u) ||
            (b->flags & ~(HTI_BLOCK_BUSY | HTI_BLOCK_SUBSEG)) ||
            (b->flags & (HTI_BLOCK_BUSY | HTI_BLOCK_SUBSEG)) == HTI_BLOCK_SUBSEG)
            return false;
        bool busy = b->flags & HTI_BLOCK_BUSY;
        if (!busy) {
            if (prev && !(prev->flags & HTI_BLOCK_BUSY))
                return false; /* uncoalesced */
            ++*free_blocks;
        } else if (b->unused > hti_block_bytes(b) - HTI_HEADER) {
            return false;
        }
        if ((b->flags & HTI_BLOCK_SUBSEG) && !hti_subseg_is_valid(heap, hti_block_data(b)))
            return false;
        prev = b;
        b = (hti_header *)((char *)b + hti_block_bytes(b));
    }
    return (char *)b == end && seg->last == prev;
}

bool hti_heap_is_valid(ht_heap *heap)
{
    bool ok = true;
    unsigned in_bins = count_free_in_bins(heap, &ok), in_segments = 0;
    size_t reserved = 0, committed = 0;
    for (hti_segment *seg = heap->segments; seg && ok; seg = seg->next) {
        ok = segment_is_valid(heap, seg, &in_segments);
        reserved += seg->region.reserved;
        committed += seg->committed;
    }
    for (hti_large *large = heap->large; large && ok; large = large->next) {
        hti_header *b = hti_block_of(large->data);
        ok = large->region.magic == HTI_REGION_MAGIC && large->region.kind == HTI_REGION_LARGE &&
             large->region.heap == heap && hti_pagemap_lookup(large->data) == &large->region &&
             hti_sealed(heap, b) && b->flags == (HTI_BLOCK_BUSY | HTI_BLOCK_LARGE) &&
             large->requested <= hti_large_usable(large);
        reserved += large->region.reserved;
        committed += large->region.reserved;
    }
    size_t cached = 0;
    ok = ok && heap->large_cache_count <= HTI_LARGE_CACHE;
    for (unsigned i = 0; i < HTI_LARGE_CACHE && ok; i++) {
        hti_large *large = heap->large_cache[i];
        if (i >= heap->large_cache_count) {
            ok = large == NULL;
            continue;
        }
        hti_header *b = large ? hti_block_of(large->data) : NULL;
        ok = large && large->region.magic == HTI_REGION_MAGIC &&
             large->region.kind == HTI_REGION_LARGE && large->region.heap == heap &&
             hti_pagemap_lookup(large->data) == &large->region && hti_sealed(heap, b) &&
             b->flags == HTI_BLOCK_LARGE;
        if (!ok)
            break;
        reserved += large->region.reserved;
        committed += large->region.reserved;
        cached += large->region.reserved;
    }
    ok = ok && cached == heap->large_cached;
    for (unsigned bucket = 0; bucket < HTI_LFH_BUCKETS && ok; bucket++)
        for (hti_subseg *ss = heap->abandoned[bucket]; ss && ok; ss = ss->next)
            ok = ss->abandoned && ss->bucket == bucket && hti_subseg_is_valid(heap, ss);
    return ok && in_bins == in_segments && reserved == heap->reserved &&
           committed == heap->committed;
}

/* ---- compaction ----------------------------------------------------------------------- */
HT_API size_t ht_heap_compact(ht_heap *heap, uint32_t flags)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return 0;
    }
    hti_lock(heap, flags);
    hti_lfh_reclaim_abandoned(heap);
    hti_large_cache_drop(heap);
    for (hti_segment *seg = heap->segments, *next; seg; seg = next) {
        next = seg->next;
        bool empty = seg->last && !(seg->last->flags & HTI_BLOCK_BUSY) &&
                     (char *)seg->last == seg->first;
        if (empty && (seg != heap->segments || seg->next))
            hti_segment_release(heap, seg);
        else
            hti_segment_trim(heap, seg, true);
    }
    size_t largest = hti_backend_largest_free(heap);
    hti_unlock(heap, flags);
    if (largest == 0)
        ht_set_last_error(HT_OK);
    return largest;
}

/* ---- the tracer's rundown provider ---------------------------------------------------- */
static size_t rundown_list(ht_heap **out, size_t capacity)
{
    return ht_process_heaps(out, capacity);
}

static bool rundown_summarize(ht_heap *heap, hti_rundown_heap *state)
{
    ht_heap_summary summary;
    if (!ht_heap_summary_get(heap, 0, &summary))
        return false;
    *state = (hti_rundown_heap){.reserved = summary.reserved,
                                .committed = summary.committed,
                                .requested = summary.requested,
                                .live_blocks = summary.live_blocks,
                                .compatibility = (uint32_t)atomic_load(&heap->lfh_mode)};
    return true;
}

/* The heap's record, then its busy blocks, under one hold of its lock: the rundown is one
 * consistent look at the heap. */
static void rundown_walk(ht_heap *heap, const hti_rundown_visitor *visitor, void *context)
{
    ht_heap_lock(heap);
    ht_heap_summary summary;
    memset(&summary, 0, sizeof summary);
    ht_heap_summary_get(heap, 0, &summary);
    uint32_t compatibility = 0;
    ht_heap_query_information(heap, HT_HEAP_COMPATIBILITY_INFORMATION, &compatibility,
                              sizeof compatibility, NULL);
    visitor->heap(context, &(hti_rundown_heap){.reserved = summary.reserved,
                                               .committed = summary.committed,
                                               .requested = summary.requested,
                                               .live_blocks = summary.live_blocks,
                                               .compatibility = compatibility});
    /* One hold of the lock: the cursor needs no re-validation between entries (ht_heap_walk's
     * cursor_fix walks the segment from its start each time, quadratic in a big heap). */
    ht_heap_entry entry = {.cursor = {PHASE_SEGMENTS, (uintptr_t)heap->segments, 0, 0}};
    while (next_entry(heap, &entry)) {
        if ((entry.flags & HT_ENTRY_BUSY) && !(entry.flags & HT_ENTRY_REGION))
            visitor->block(context, &(hti_rundown_block){.address = entry.data,
                                                         .requested = entry.requested,
                                                         .usable = entry.size,
                                                         .source = entry.source});
    }
    ht_heap_unlock(heap);
}

static int rundown_quiesce(uint64_t limit_ns, unsigned *late)
{
    return hti_heap_quiesce(limit_ns, late);
}

static bool rundown_region(uintptr_t address, uintptr_t *start, uintptr_t *end)
{
    hti_region *r = hti_pagemap_lookup((const void *)address);
    if (!r)
        return false;
    uintptr_t base = (uintptr_t)r->base;
    if (address < base || address - base >= r->reserved)
        return false;
    *start = base;
    *end = base + r->reserved;
    return true;
}

const hti_rundown_provider hti_heap_rundown_provider = {
    rundown_list,    rundown_summarize, rundown_walk,   rundown_quiesce,
    hti_global_lock, hti_global_unlock, rundown_region,
};
