/* segment.c — segments: reserved address space of a heap, committed as the back end fills it.
 *
 * A segment starts with its hti_segment record; blocks tile [first, base + committed) with no
 * gap, the last one being seg->last. Committing more pages appends them to the last block if it
 * is free, or as a new free block (HEAP_EXPAND). A free tail larger than the decommit threshold
 * is decommitted, and a segment that is entirely free, other than the heap's only one, is
 * released (HEAP_CONTRACT). All of this runs under the heap lock. */
#include <errno.h>
#include <string.h>

#include "heap_internal.h"
#include "trace/emit.h"

static size_t segment_header(void)
{
    return hti_align_up(sizeof(hti_segment), HTI_GRANULE);
}

hti_segment *hti_segment_of(const hti_header *b)
{
    return hti_segment_at(b);
}

/* Appends [base+committed, base+committed+bytes) to the block tiling. */
static void append_space(ht_heap *heap, hti_segment *seg, size_t bytes)
{
    hti_header *last = seg->last;
    char *end = seg->region.base + seg->committed;
    seg->committed += bytes;
    if (last && !(last->flags & HTI_BLOCK_BUSY)) {
        if (hti_freelist_remove(heap, last) != 0) {
            hti_block_isolate(heap, last);
            goto fresh;
        }
        last->size += (uint32_t)(bytes / HTI_GRANULE);
        hti_seal(heap, last);
        hti_freelist_insert(heap, last);
        return;
    }
fresh:;
    hti_header *b = (hti_header *)end;
    b->size = (uint32_t)(bytes / HTI_GRANULE);
    b->prev_size = seg->last ? seg->last->size : 0;
    b->unused = 0;
    b->flags = 0;
    b->tag = 0;
    hti_seal(heap, b);
    seg->last = b;
    hti_freelist_insert(heap, b);
}

int hti_segment_commit(ht_heap *heap, hti_segment *seg, size_t need)
{
    size_t have = (seg->last && !(seg->last->flags & HTI_BLOCK_BUSY)) ? hti_block_bytes(seg->last)
                                                                      : 0;
    size_t room = seg->region.reserved - seg->committed;
    if (need <= have)
        return 0;
    size_t want = need - have;
    size_t step = seg->committed / 8;
    if (step < HTI_COMMIT_MIN)
        step = HTI_COMMIT_MIN;
    if (want < step)
        want = step;
    want = hti_align_up(want, hti_page_size());
    if (want > room)
        want = room;
    if (want + have < need)
        return -ENOMEM;
    if (hti_os_commit(seg->region.base + seg->committed, want,
                      heap->flags & HT_HEAP_CREATE_ENABLE_EXECUTE) != 0)
        return -ENOMEM;
    heap->committed += want;
    append_space(heap, seg, want);
    if (HT_TRACE_ON())
        hti_trace_heap_expand(heap, want, heap->committed);
    return 0;
}

int hti_segment_add(ht_heap *heap, size_t need)
{
    size_t header = segment_header();
    size_t reserve = heap->maximum ? heap->maximum : heap->next_segment_size;
    size_t min = hti_align_up(need + header, HTI_REGION_ALIGN);
    if (reserve < min) {
        if (heap->maximum)
            return -ENOSPC;
        reserve = min;
    }
    reserve = hti_align_up(reserve, hti_page_size());
    char *base = hti_os_reserve(reserve, HTI_REGION_ALIGN);
    if (!base)
        return -ENOMEM;
    size_t first_commit = hti_align_up(header + (heap->segments ? need : heap->initial),
                                       hti_page_size());
    if (first_commit < HTI_COMMIT_MIN)
        first_commit = HTI_COMMIT_MIN;
    if (first_commit > reserve)
        first_commit = reserve;
    if (hti_os_commit(base, first_commit, heap->flags & HT_HEAP_CREATE_ENABLE_EXECUTE) != 0) {
        hti_os_release(base, reserve);
        return -ENOMEM;
    }
    hti_segment *seg = (hti_segment *)base;
    memset(seg, 0, sizeof *seg);
    seg->region = (hti_region){HTI_REGION_MAGIC, HTI_REGION_SEGMENT, heap, base, reserve};
    seg->first = base + header;
    seg->committed = header;
    if (hti_pagemap_set(base, reserve, &seg->region) != 0) {
        hti_os_release(base, reserve);
        return -ENOMEM;
    }
    heap->reserved += reserve;
    heap->committed += first_commit;
    append_space(heap, seg, first_commit - header);
    seg->next = heap->segments;
    if (heap->segments)
        heap->segments->prev = seg;
    heap->segments = seg;
    if (!heap->maximum && heap->next_segment_size < HTI_SEGMENT_MAX)
        heap->next_segment_size *= 2;
    if (HT_TRACE_ON())
        hti_trace_heap_expand(heap, first_commit, heap->committed);
    return 0;
}

void hti_segment_trim(ht_heap *heap, hti_segment *seg, bool all)
{
    hti_header *last = seg->last;
    if (!last || (last->flags & HTI_BLOCK_BUSY))
        return;
    size_t keep = all ? HTI_MIN_BLOCK : HTI_DECOMMIT_KEEP;
    size_t bytes = hti_block_bytes(last);
    if (!all && bytes <= HTI_DECOMMIT_THRESHOLD)
        return;
    char *end = seg->region.base + seg->committed;
    char *cut = (char *)hti_align_up((uintptr_t)last + keep, hti_page_size());
    if (cut >= end)
        return;
    size_t give = (size_t)(end - cut);
    if (hti_freelist_remove(heap, last) != 0) {
        hti_block_isolate(heap, last);
        return;
    }
    if (hti_os_decommit(cut, give) != 0) {
        hti_freelist_insert(heap, last);
        return;
    }
    last->size = (uint32_t)((size_t)(cut - (char *)last) / HTI_GRANULE);
    hti_seal(heap, last);
    hti_freelist_insert(heap, last);
    seg->committed -= give;
    heap->committed -= give;
    if (HT_TRACE_ON())
        hti_trace_heap_contract(heap, give, heap->committed);
}

void hti_segment_release(ht_heap *heap, hti_segment *seg)
{
    if (hti_freelist_remove(heap, seg->last) != 0) {
        hti_block_isolate(heap, seg->last);
        return;
    }
    if (seg->prev)
        seg->prev->next = seg->next;
    else
        heap->segments = seg->next;
    if (seg->next)
        seg->next->prev = seg->prev;
    size_t reserved = seg->region.reserved, committed = seg->committed;
    heap->reserved -= reserved;
    heap->committed -= committed;
    hti_pagemap_clear(seg->region.base, reserved);
    hti_os_release(seg->region.base, reserved);
    if (HT_TRACE_ON())
        hti_trace_heap_contract(heap, committed, heap->committed);
}
