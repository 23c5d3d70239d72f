/* large.c — large blocks: requests of HT_LARGE_THRESHOLD and up, each mapped on its own.
 *
 * Layout of a mapping: the hti_large record, padding, then a regular sealed block header
 * (flags BUSY|LARGE) right before the data, so every pointer check treats large blocks like
 * the others. The mapping is registered in the page map; the heap keeps a list of its large
 * blocks (under the heap lock) for walk, summary and destroy. A few freed mappings are kept
 * (header sealed free, still registered) and reused by later large requests of a close size,
 * so a program that allocates and frees big buffers does not fault every page in again.
 * Resizes stay in place, or move the pages to a new mapping with mremap, never copying. */
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

static void link_busy(ht_heap *heap, hti_large *large, size_t size)
{
    hti_header *b = hti_block_of(large->data);
    b->size = 0;
    b->prev_size = 0;
    b->unused = 0;
    b->flags = HTI_BLOCK_BUSY | HTI_BLOCK_LARGE;
    b->tag = 0;
    hti_seal(heap, b);
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

static void unmap(ht_heap *heap, hti_large *large)
{
    size_t map = large->region.reserved;
    heap->reserved -= map;
    heap->committed -= map;
    hti_pagemap_clear(large->region.base, map);
    hti_os_release(large->region.base, map);
    if (HT_TRACE_ON())
        hti_trace_heap_contract(heap, map, heap->committed);
}

/* A cached mapping that fits size (standard alignment) and wastes at most a quarter. */
static hti_large *cache_take(ht_heap *heap, size_t size, size_t align)
{
    if (align > HTI_GRANULE)
        return NULL;
    for (int i = 0; i < HTI_LARGE_CACHE; i++) {
        hti_large *large = heap->large_cache[i];
        if (!large)
            continue;
        size_t usable = hti_large_usable(large);
        if (usable >= size && usable - size <= usable / 4) {
            heap->large_cache[i] = NULL;
            return large;
        }
    }
    return NULL;
}

void hti_large_cache_drop(ht_heap *heap)
{
    for (int i = 0; i < HTI_LARGE_CACHE; i++)
        if (heap->large_cache[i]) {
            unmap(heap, heap->large_cache[i]);
            heap->large_cache[i] = NULL;
        }
}

void *hti_large_alloc(ht_heap *heap, size_t size, size_t align, ht_error *error)
{
    hti_large *cached = cache_take(heap, size, align);
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

void hti_large_free(ht_heap *heap, hti_large *large)
{
    unlink_busy(heap, large);
    if (large->region.reserved <= HTI_LARGE_CACHE_MAX &&
        (size_t)((char *)large->data - large->region.base) == data_offset(HTI_GRANULE)) {
        hti_header *b = hti_block_of(large->data);
        b->flags = HTI_BLOCK_LARGE; /* not busy: a second free is a double free */
        hti_seal(heap, b);
        int slot = 0;
        for (int i = 0; i < HTI_LARGE_CACHE; i++) {
            if (!heap->large_cache[i]) {
                slot = i;
                break;
            }
            if (heap->large_cache[i]->region.reserved < heap->large_cache[slot]->region.reserved)
                slot = i;
        }
        hti_large *evicted = heap->large_cache[slot];
        heap->large_cache[slot] = large;
        if (evicted)
            unmap(heap, evicted);
        return;
    }
    unmap(heap, large);
}

void *hti_large_move(ht_heap *heap, hti_large *large, size_t size)
{
    size_t off = (size_t)((char *)large->data - large->region.base);
    if (size > HTI_SIZE_LIMIT)
        return NULL;
    size_t map = hti_align_up(off + size, hti_page_size()), old = large->region.reserved;
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

/* Clears the page-map granules wholly past keep bytes, up to end bytes, of the mapping. */
static void clear_beyond(hti_large *large, size_t keep, size_t end)
{
    size_t from = hti_align_up(keep, HTI_REGION_ALIGN);
    if (from < end)
        hti_pagemap_clear(large->region.base + from, end - from);
}

int hti_large_resize(ht_heap *heap, hti_large *large, size_t size)
{
    size_t off = (size_t)((char *)large->data - large->region.base);
    if (size > HTI_SIZE_LIMIT)
        return -ERANGE;
    size_t map = hti_align_up(off + size, hti_page_size());
    size_t old = large->region.reserved;
    if (map != old) {
        /* resize first: the page map may be written only for memory that is really ours */
        if (hti_os_resize_in_place(large->region.base, old, map) != 0)
            return -ENOMEM;
        if (map > old && hti_pagemap_set(large->region.base, map, &large->region) != 0) {
            hti_os_resize_in_place(large->region.base, map, old);
            return -ENOMEM;
        }
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
    large->requested = size;
    return 0;
}
