/* pagemap.c — the process-wide map from any address to the heap region that holds it.
 *
 * Two levels over the 48-bit address space at 64 KiB granularity: a static top array of 2^16
 * leaf pointers, leaves of 2^16 entries mapped lazily (only touched pages cost memory).
 * Regions start 64 KiB-aligned, so one granule holds the start of at most one region and no
 * two regions share an entry. Entries are set before a region's memory is handed out and
 * cleared before it is unmapped; lookups are two acquire loads and never fault. */
#include <errno.h>

#include "heap_internal.h"

#define MAP_SHIFT HTI_PAGEMAP_SHIFT
#define LEAF_BITS HTI_PAGEMAP_LEAF_BITS
#define TOP_BITS HTI_PAGEMAP_TOP_BITS
#define LEAF_ENTRIES (1u << LEAF_BITS)

typedef _Atomic(hti_region *) leaf_entry;
_Atomic(hti_pagemap_leaf *) hti_pagemap_top[1u << HTI_PAGEMAP_TOP_BITS];
#define top hti_pagemap_top

static leaf_entry *leaf_for(uintptr_t granule, bool create)
{
    size_t index = granule >> LEAF_BITS;
    if (index >= (1u << TOP_BITS))
        return NULL;
    leaf_entry *leaf = atomic_load_explicit(&top[index], memory_order_acquire);
    if (leaf || !create)
        return leaf;
    leaf_entry *fresh = hti_os_map(LEAF_ENTRIES * sizeof(leaf_entry), hti_page_size());
    if (!fresh)
        return NULL;
    leaf_entry *expected = NULL;
    if (!atomic_compare_exchange_strong(&top[index], &expected, fresh)) {
        hti_os_release(fresh, LEAF_ENTRIES * sizeof(leaf_entry));
        return expected;
    }
    hti_own_memory_note(fresh, LEAF_ENTRIES * sizeof(leaf_entry));
    return fresh;
}

static void set_range(const void *base, size_t size, hti_region *region)
{
    uintptr_t first = (uintptr_t)base >> MAP_SHIFT;
    uintptr_t last = ((uintptr_t)base + size - 1) >> MAP_SHIFT;
    for (uintptr_t g = first; g <= last; g++) {
        leaf_entry *leaf = leaf_for(g, false);
        if (leaf)
            atomic_store_explicit(&leaf[g & (LEAF_ENTRIES - 1)], region, memory_order_release);
    }
}

int hti_pagemap_set(const void *base, size_t size, hti_region *region)
{
    assert(((uintptr_t)base & (HTI_REGION_ALIGN - 1)) == 0);
    uintptr_t first = (uintptr_t)base >> MAP_SHIFT;
    uintptr_t last = ((uintptr_t)base + size - 1) >> MAP_SHIFT;
    for (uintptr_t g = first; g <= last; g = (g | (LEAF_ENTRIES - 1)) + 1)
        if (!leaf_for(g, true))
            return -ENOMEM;
    set_range(base, size, region);
    return 0;
}

void hti_pagemap_clear(const void *base, size_t size)
{
    set_range(base, size, NULL);
}
