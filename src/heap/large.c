/* large.c — large blocks: requests of HT_LARGE_THRESHOLD and up, each mapped on its own.
 *
 * Layout of a mapping: the hti_large record, padding, then a regular sealed block header
 * (flags BUSY|LARGE) right before the data, so every pointer check treats large blocks like
 * the others. The mapping is registered in the page map; the heap keeps a list of its large
 * blocks (under the heap lock) for walk, summary and destroy. Freed mappings are cached
 * (header sealed free, still registered, within a byte budget) and reused, best fit, by later
 * requests and by reallocations that grow a lot, so a program that allocates and frees big
 * buffers does not fault their pages in again. Otherwise resizes stay in place, or move the
 * pages to a new mapping with mremap, never copying. What leaves the heap is unmapped after
 * the lock is dropped (hti_release). */
#include <errno.h>
#include <string.h>

#include "heap_internal.h"
#include "trace/emit.h"

static size_t data_offset(size_t align)
{
    size_t off = hti_align_up(sizeof(hti_large) + HTI_HEADER, HTI_GRANULE);
    return align > HTI_GRANULE ? hti_align_up(off, align) : off;
}

size_t hti_large_usable(const hti_large *large)
{
    return large->region.reserved - (size_t)((char *)large->data - large->region.base);
}

/* Writes the block header of the mapping: BUSY|LARGE for a block, LARGE for a cached mapping
 * (not busy: a second free is a double free). */
static void write_header(ht_heap *heap, hti_large *large, uint8_t flags)
{
    hti_header *b = hti_block_of(large->data);
    b->size = 0;
    b->prev_size = 0;
    b->unused = 0;
    b->flags = flags;
    b->tag = 0;
    hti_seal(heap, b);
}

static void link_busy(ht_heap *heap, hti_large *large, size_t size)
{
    write_header(heap, large, HTI_BLOCK_BUSY | HTI_BLOCK_LARGE);
    large->requested = size;
    large->prev = NULL;
    large->next = heap->large;
    if (heap->large)
        heap->large->prev = large;
    heap->large = large;
}

static void unlink_busy(ht_heap *heap, hti_large *large)
{
    if (large->prev)
        large->prev->next = large->next;
    else
        heap->large = large->next;
    if (large->next)
        large->next->prev = large->prev;
    large->next = large->prev = NULL;
}

/* Gives [base, base + size) back to the OS: later, through release, if it has room (the caller
 * runs it once the heap lock is dropped), else now. The range is out of the heap's records and
 * page map already, so nothing can reach it in between; if munmap fails, only address space
 * stays mapped. */
static void give_back(hti_release *release, void *base, size_t size)
{
    if (release && release->count < HTI_RELEASE_MAX) {
        release->span[release->count].base = base;
        release->span[release->count].size = size;
        release->count++;
        return;
    }
    hti_os_release(base, size);
}

void hti_release_run(hti_release *release)
{
    for (unsigned i = 0; i < release->count; i++)
        hti_os_release(release->span[i].base, release->span[i].size);
    release->count = 0;
}

static void unmap(ht_heap *heap, hti_large *large, hti_release *release)
{
    size_t map = large->region.reserved;
    heap->reserved -= map;
    heap->committed -= map;
    hti_pagemap_clear(large->region.base, map);
    give_back(release, large->region.base, map);
    if (HT_TRACE_ON())
        hti_trace_heap_contract(heap, map, heap->committed);
}

/* Clears the page-map granules wholly past keep bytes, up to end bytes, of the mapping. */
static void clear_beyond(hti_large *large, size_t keep, size_t end)
{
    size_t from = hti_align_up(keep, HTI_REGION_ALIGN);
    if (from < end)
        hti_pagemap_clear(large->region.base + from, end - from);
}

/* Records that the OS resized the mapping from old to map bytes where it is (the page map
 * already covers a grown mapping); a shrunk one's tail granules leave the page map. */
static void resized(ht_heap *heap, hti_large *large, size_t old, size_t map)
{
    if (map < old)
        clear_beyond(large, map, old);
    large->region.reserved = map;
    heap->reserved = heap->reserved - old + map;
    heap->committed = heap->committed - old + map;
    if (HT_TRACE_ON()) {
        if (map > old)
            hti_trace_heap_expand(heap, map - old, heap->committed);
        else
            hti_trace_heap_contract(heap, old - map, heap->committed);
    }
}

/* ---- the cache of freed mappings -------------------------------------------------------
 * A freed mapping keeps its pages (no munmap, no page faults when it is reused), its page-map
 * entries and its header, sealed free so that a second free is a double free. Reuse is best
 * fit; a mapping far bigger than the request gives its tail back first. The cache holds at
 * most HTI_LARGE_CACHE mappings and a byte budget that follows the rest of the heap, so it
 * grows with the program and shrinks with it; the oldest mapping leaves first. */

/* The bytes the cache may hold besides `extra` more: a floor, or a share of the heap's other
 * committed memory, whichever is more. */
static size_t cache_budget(const ht_heap *heap, size_t extra)
{
    size_t others = heap->committed - heap->large_cached - extra;
    size_t share = others / HTI_LARGE_CACHE_SHARE;
    return share > HTI_LARGE_CACHE_FLOOR ? share : HTI_LARGE_CACHE_FLOOR;
}

/* The bytes of a mapping for size bytes of data at the standard alignment. */
static size_t mapping_for(size_t size)
{
    return hti_align_up(data_offset(HTI_GRANULE) + size, hti_page_size());
}

/* Takes entry i out of the cache (the mapping stays registered and counted by the heap). */
static hti_large *cache_remove(ht_heap *heap, unsigned i)
{
    hti_large *large = heap->large_cache[i];
    unsigned count = --heap->large_cache_count;
    memmove(&heap->large_cache[i], &heap->large_cache[i + 1],
            (count - i) * sizeof heap->large_cache[0]);
    heap->large_cache[count] = NULL;
    heap->large_cached -= large->region.reserved;
    return large;
}

/* Index of the smallest cached mapping with room for size bytes, or -1. */
static int cache_find(const ht_heap *heap, size_t size)
{
    int best = -1;
    for (unsigned i = 0; i < heap->large_cache_count; i++) {
        size_t usable = hti_large_usable(heap->large_cache[i]);
        if (usable >= size && (best < 0 || usable < hti_large_usable(heap->large_cache[best])))
            best = (int)i;
    }
    return best;
}

/* Cuts the (uncached) mapping after head bytes, a multiple of HTI_REGION_ALIGN, and caches the
 * tail as a mapping of its own: its pages stay, no system call. 0, or -ENOMEM if the page map
 * cannot take the tail (nothing changed then). The cache has room for one more entry. */
static int split_tail(ht_heap *heap, hti_large *large, size_t head)
{
    char *base = large->region.base + head;
    size_t bytes = large->region.reserved - head;
    hti_large *tail = (hti_large *)base;
    tail->region = (hti_region){HTI_REGION_MAGIC, HTI_REGION_LARGE, heap, base, bytes};
    tail->requested = 0;
    tail->data = base + data_offset(HTI_GRANULE);
    tail->next = tail->prev = NULL;
    if (hti_pagemap_set(base, bytes, &tail->region) != 0)
        return -ENOMEM;
    large->region.reserved = head;
    write_header(heap, tail, HTI_BLOCK_LARGE);
    heap->large_cache[heap->large_cache_count++] = tail;
    heap->large_cached += bytes;
    return 0;
}

/* A cached mapping for size bytes (standard alignment), out of the cache, or NULL. The
 * smallest that fits is taken; the part beyond what the request needs, if it could serve a
 * large request itself, stays in the cache as a mapping of its own; else, if it is more than a
 * quarter of the mapping, it goes back to the OS (through release). */
static hti_large *cache_take(ht_heap *heap, size_t size, size_t align, hti_release *release)
{
    if (align > HTI_GRANULE || size > HTI_SIZE_LIMIT)
        return NULL;
    int i = cache_find(heap, size);
    if (i < 0)
        return NULL;
    hti_large *large = cache_remove(heap, (unsigned)i);
    size_t old = large->region.reserved, map = mapping_for(size);
    size_t head = hti_align_up(map, HTI_REGION_ALIGN);
    if (head < old && old - head >= mapping_for(HT_LARGE_THRESHOLD) &&
        split_tail(heap, large, head) == 0)
        return large;
    if (old - map > old / 4) {
        resized(heap, large, old, map);
        give_back(release, large->region.base + map, old - map);
    }
    return large;
}

/* Whether a block whose mapping grows from old to map bytes is better copied into a cached
 * mapping (its pages already faulted in) than grown or moved with mremap (the new pages then
 * fault in as they are written): when it grows by a quarter or more. */
static bool move_to_cache_pays(size_t old, size_t map)
{
    return map > old && map - old >= old / 4;
}

/* A freed (unlinked) mapping: into the cache, the oldest entries leaving while the cache is
 * over its count or budget; or straight back to the OS if it cannot be cached. */
static void cache_put(ht_heap *heap, hti_large *large, hti_release *release)
{
    size_t map = large->region.reserved;
    if (map > HTI_LARGE_CACHE_MAX || map > cache_budget(heap, map) ||
        (size_t)((char *)large->data - large->region.base) != data_offset(HTI_GRANULE)) {
        unmap(heap, large, release);
        return;
    }
    write_header(heap, large, HTI_BLOCK_LARGE);
    if (heap->large_cache_count == HTI_LARGE_CACHE)
        unmap(heap, cache_remove(heap, 0), release);
    heap->large_cache[heap->large_cache_count++] = large;
    heap->large_cached += map;
    while (heap->large_cached > cache_budget(heap, 0))
        unmap(heap, cache_remove(heap, 0), release); /* never the new one: it fits alone */
}

void hti_large_cache_drop(ht_heap *heap)
{
    while (heap->large_cache_count)
        unmap(heap, cache_remove(heap, heap->large_cache_count - 1), NULL);
}

/* ---- large blocks ---------------------------------------------------------------------- */

void *hti_large_alloc(ht_heap *heap, size_t size, size_t align, ht_error *error,
                      hti_release *release)
{
    hti_large *cached = cache_take(heap, size, align, release);
    if (cached) {
        link_busy(heap, cached, size);
        return cached->data;
    }
    size_t off = data_offset(align);
    if (size > HTI_SIZE_LIMIT || off + size > HTI_SIZE_LIMIT) {
        *error = HT_ERROR_NO_MEMORY;
        return NULL;
    }
    size_t map = hti_align_up(off + size, hti_page_size());
    char *base = hti_os_map(map, align > HTI_REGION_ALIGN ? align : HTI_REGION_ALIGN);
    if (!base) {
        *error = HT_ERROR_NO_MEMORY;
        return NULL;
    }
    if ((heap->flags & HT_HEAP_CREATE_ENABLE_EXECUTE) && hti_os_commit(base, map, true) != 0) {
        hti_os_release(base, map);
        *error = HT_ERROR_NO_MEMORY;
        return NULL;
    }
    hti_large *large = (hti_large *)base;
    large->region = (hti_region){HTI_REGION_MAGIC, HTI_REGION_LARGE, heap, base, map};
    large->requested = size;
    large->data = base + off;
    if (hti_pagemap_set(base, map, &large->region) != 0) {
        hti_os_release(base, map);
        *error = HT_ERROR_NO_MEMORY;
        return NULL;
    }
    link_busy(heap, large, size);
    heap->reserved += map;
    heap->committed += map;
    if (HT_TRACE_ON())
        hti_trace_heap_expand(heap, map, heap->committed);
    return large->data;
}

void hti_large_free(ht_heap *heap, hti_large *large, hti_release *release)
{
    unlink_busy(heap, large);
    cache_put(heap, large, release);
}

void *hti_large_move(ht_heap *heap, hti_large *large, size_t size, hti_release *release)
{
    if (size > HTI_SIZE_LIMIT)
        return NULL;
    size_t off = (size_t)((char *)large->data - large->region.base);
    size_t map = hti_align_up(off + size, hti_page_size()), old = large->region.reserved;
    hti_large *cached = move_to_cache_pays(old, map) ? cache_take(heap, size, HTI_GRANULE, release)
                                                     : NULL;
    if (cached) {
        size_t usable = hti_large_usable(large);
        memcpy(cached->data, large->data, usable < size ? usable : size);
        unlink_busy(heap, large);
        link_busy(heap, cached, size);
        cache_put(heap, large, release);
        return cached->data;
    }
    char *target = hti_os_reserve(map, HTI_REGION_ALIGN);
    if (!target)
        return NULL;
    char *base = hti_os_move(large->region.base, old, map, target);
    if (!base) {
        hti_os_release(target, map);
        return NULL;
    }
    hti_large *moved = (hti_large *)base;
    if (hti_pagemap_set(base, map, &moved->region) != 0) {
        /* put it back where it was: the old range is free again after the move */
        char *back = hti_os_move(base, map, old, moved->region.base);
        (void)back;
        return NULL;
    }
    hti_pagemap_clear(moved->region.base, old); /* the struct still holds the old base */
    if (moved->prev)
        moved->prev->next = moved;
    else
        heap->large = moved;
    if (moved->next)
        moved->next->prev = moved;
    moved->region.base = base;
    moved->region.reserved = map;
    moved->data = base + off;
    moved->requested = size;
    hti_seal(heap, hti_block_of(moved->data));
    heap->reserved = heap->reserved - old + map;
    heap->committed = heap->committed - old + map;
    if (HT_TRACE_ON() && map != old) {
        if (map > old)
            hti_trace_heap_expand(heap, map - old, heap->committed);
        else
            hti_trace_heap_contract(heap, old - map, heap->committed);
    }
    return moved->data;
}

int hti_large_resize(ht_heap *heap, hti_large *large, size_t size, bool may_move)
{
    size_t off = (size_t)((char *)large->data - large->region.base);
    if (size > HTI_SIZE_LIMIT)
        return -ERANGE;
    size_t map = hti_align_up(off + size, hti_page_size());
    size_t old = large->region.reserved;
    if (map < old && (size > large->requested || map >= old / 2)) {
        /* Grows within its mapping (a cached one reused with room to spare), or shrinks by
         * less than half: the pages stay, for the block to grow back into or, once it is
         * freed, for the cache to serve a request of the old size (a string builder's
         * shrink-to-fit, then free). */
        map = old;
    } else if (may_move && move_to_cache_pays(old, map) && cache_find(heap, size) >= 0) {
        return -ENOSPC;
    }
    if (map != old) {
        /* resize first: the page map may be written only for memory that is really ours */
        if (hti_os_resize_in_place(large->region.base, old, map) != 0)
            return -ENOMEM;
        if (map > old && hti_pagemap_set(large->region.base, map, &large->region) != 0) {
            hti_os_resize_in_place(large->region.base, map, old);
            return -ENOMEM;
        }
        resized(heap, large, old, map);
    }
    large->requested = size;
    return 0;
}
