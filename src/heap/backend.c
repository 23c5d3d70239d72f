/* backend.c — the back end: segregated free lists, splitting and coalescing.
 *
 * Free blocks sit in bins: exact bins for sizes under 128 granules (2 KiB), then eight bins per
 * power of two; a bitmap finds the first non-empty bin in a few instructions. Invariants (all
 * under the heap lock): blocks tile each segment's committed range; no two free blocks are
 * adjacent (frees coalesce at once); each block's prev_size equals its predecessor's size;
 * every free block is in exactly the bin of its size; every header is sealed. A request that
 * no free block fits is served after committing pages or adding a segment (SLOWPATH). */
#include <errno.h>
#include <string.h>

#include "heap_internal.h"

#define EXACT_BINS 128u
/* The largest back-end request: half of what a header's 32-bit granule count can describe,
 * so the block, its alignment padding and a neighbour taken on resize still fit. */
#define BACKEND_NEED_MAX ((size_t)UINT32_MAX * HTI_GRANULE / 2)

static unsigned bin_of(uint32_t granules)
{
    if (granules < EXACT_BINS)
        return granules;
    unsigned fl = 31u - (unsigned)__builtin_clz(granules);
    unsigned sl = (granules >> (fl - 3)) & 7u;
    return EXACT_BINS + (fl - 7) * 8 + sl;
}

bool hti_free_block_ok(const ht_heap *heap, hti_header *b)
{
    return hti_in_segment(heap, b) && !(b->flags & HTI_BLOCK_BUSY) && hti_sealed(heap, b) &&
           b->size >= HTI_MIN_BLOCK / HTI_GRANULE;
}

void hti_freelist_insert(ht_heap *heap, hti_header *b)
{
    unsigned bin = bin_of(b->size);
    hti_header *head = heap->bins[bin];
    hti_free_set_prev(heap, b, NULL);
    hti_free_set_next(heap, b, head);
    if (head)
        hti_free_set_prev(heap, head, b);
    heap->bins[bin] = b;
    heap->bitmap[bin / 64] |= 1ull << (bin % 64);
}

/* A bin whose list is damaged is cut whole: its blocks stay free in the tiling but are never
 * listed again, so no damaged link is followed and nothing in it is handed out twice. */
static void bin_cut(ht_heap *heap, unsigned bin, const void *where, const char *what)
{
    heap->bins[bin] = NULL;
    heap->bitmap[bin / 64] &= ~(1ull << (bin % 64));
    hti_corruption(heap, where, what);
}

void hti_block_isolate(ht_heap *heap, hti_header *b)
{
    if (hti_sealed(heap, b)) {
        b->flags = HTI_BLOCK_BUSY;
        hti_seal(heap, b);
    }
    hti_corruption(heap, hti_block_data(b),
                   "free block damaged or its list links (use after free?)");
}

int hti_freelist_remove(ht_heap *heap, hti_header *b)
{
    if (!hti_free_block_ok(heap, b))
        return -EFAULT;
    unsigned bin = bin_of(b->size);
    hti_header *next = hti_free_next(heap, b), *prev = hti_free_prev(heap, b);
    if ((prev ? !hti_free_block_ok(heap, prev) || hti_free_next(heap, prev) != b
              : heap->bins[bin] != b) ||
        (next && (!hti_free_block_ok(heap, next) || hti_free_prev(heap, next) != b)))
        return -EFAULT;
    if (prev)
        hti_free_set_next(heap, prev, next);
    else
        heap->bins[bin] = next;
    if (next)
        hti_free_set_prev(heap, next, prev);
    if (!heap->bins[bin])
        heap->bitmap[bin / 64] &= ~(1ull << (bin % 64));
    return 0;
}

/* A free neighbour taken out of its list to be merged; false (reported) if it or its links are
 * damaged, or it is in no list (its bin was cut). It is then isolated: marked busy for good, so
 * it is never merged, listed or handed out, and a list still leading to it is cut when followed. */
static bool take_neighbor(ht_heap *heap, hti_header *n)
{
    if (hti_freelist_remove(heap, n) == 0)
        return true;
    hti_block_isolate(heap, n);
    return false;
}

/* True when a busy block still sits in a free list (it was freed, then its busy header was
 * written back): the bin's head, or its decoded back link is a free block pointing at it.
 * The links are only a hint here; the verdict comes from the list itself. */
static bool still_listed(ht_heap *heap, hti_header *b)
{
    if (heap->bins[bin_of(b->size)] == b)
        return true;
    hti_header *prev = hti_free_prev(heap, b);
    return hti_free_block_ok(heap, prev) && hti_free_next(heap, prev) == b;
}

static hti_header *freelist_find(ht_heap *heap, uint32_t granules)
{
    unsigned bin = bin_of(granules);
    int budget = 8;
    hti_header *b = heap->bins[bin];
    while (b && budget--) {
        if (!hti_free_block_ok(heap, b))
            goto damaged;
        if (b->size >= granules)
            return b;
        b = hti_free_next(heap, b);
    }
    for (unsigned i = bin + 1; i < HTI_BINS;) {
        uint64_t word = heap->bitmap[i / 64] & (~0ull << (i % 64));
        if (word) {
            bin = (i / 64) * 64 + (unsigned)__builtin_ctzll(word);
            b = heap->bins[bin];
            if (!hti_free_block_ok(heap, b))
                goto damaged;
            return b;
        }
        i = (i / 64 + 1) * 64;
    }
    return NULL;
damaged:
    bin_cut(heap, bin, b, "free list leads to a block that is not free (use after free?)");
    return NULL;
}

hti_header *hti_block_next(const hti_segment *seg, const hti_header *b)
{
    char *n = (char *)b + hti_block_bytes(b);
    return n < seg->region.base + seg->committed ? (hti_header *)n : NULL;
}

hti_header *hti_block_prev(const hti_segment *seg, const hti_header *b)
{
    (void)seg;
    return b->prev_size ? (hti_header *)((char *)b - (size_t)b->prev_size * HTI_GRANULE) : NULL;
}

/* Rewrites the successor's prev_size. A successor whose header no longer passes its check is
 * left as it is (resealing it would launder the damage) and reported. */
static void set_prev_size(ht_heap *heap, hti_segment *seg, hti_header *b)
{
    hti_header *n = hti_block_next(seg, b);
    if (n) {
        if (HTI_UNLIKELY(!hti_sealed(heap, n))) {
            hti_corruption(heap, hti_block_data(n), "block header check failed");
            return;
        }
        n->prev_size = b->size;
        hti_seal(heap, n);
    } else {
        seg->last = b;
    }
}

/* Cuts b to granules, returning the tail to the free lists when it is big enough. b is busy
 * or detached (not in a list). The tail is coalesced with a free successor. */
static void split(ht_heap *heap, hti_segment *seg, hti_header *b, uint32_t granules)
{
    uint32_t rest = b->size - granules;
    if (rest * HTI_GRANULE < HTI_MIN_BLOCK)
        return;
    b->size = granules;
    hti_header *t = (hti_header *)((char *)b + (size_t)granules * HTI_GRANULE);
    t->size = rest;
    t->prev_size = granules;
    t->unused = 0;
    t->flags = 0;
    t->tag = 0;
    hti_header *n = hti_block_next(seg, t);
    if (n && !(n->flags & HTI_BLOCK_BUSY) && take_neighbor(heap, n))
        t->size += n->size;
    hti_seal(heap, t);
    set_prev_size(heap, seg, t);
    hti_freelist_insert(heap, t);
}

static uint32_t granules_for(size_t need)
{
    size_t bytes = hti_align_up(need + HTI_HEADER, HTI_GRANULE);
    if (bytes < HTI_MIN_BLOCK)
        bytes = HTI_MIN_BLOCK;
    return (uint32_t)(bytes / HTI_GRANULE);
}

/* Gets a free block of at least granules, committing or adding a segment if needed. */
static hti_header *find_or_grow(ht_heap *heap, uint32_t granules, ht_source *source,
                                ht_error *error)
{
    hti_header *b = freelist_find(heap, granules);
    if (b) {
        *source = MEMORY_FROM_MAINPATH;
        return b;
    }
    size_t bytes = (size_t)granules * HTI_GRANULE;
    for (hti_segment *seg = heap->segments; seg; seg = seg->next) {
        size_t have = (seg->last && !(seg->last->flags & HTI_BLOCK_BUSY))
                          ? hti_block_bytes(seg->last)
                          : 0;
        if (seg->region.reserved - seg->committed + have < bytes)
            continue;
        if (hti_segment_commit(heap, seg, bytes) == 0) {
            *source = MEMORY_FROM_SLOWPATH;
            return seg->last;
        }
    }
    int rc = (heap->maximum && heap->segments) ? -ENOSPC : hti_segment_add(heap, bytes);
    if (rc != 0) {
        *error = rc == -ENOSPC ? HT_ERROR_HEAP_FULL : HT_ERROR_NO_MEMORY;
        return NULL;
    }
    *source = MEMORY_FROM_SLOWPATH;
    b = heap->segments->last;
    if (hti_block_bytes(b) < bytes) { /* initial commit smaller than the request */
        if (hti_segment_commit(heap, heap->segments, bytes) != 0) {
            *error = HT_ERROR_NO_MEMORY;
            return NULL;
        }
        b = heap->segments->last;
    }
    return b;
}

hti_header *hti_backend_alloc(ht_heap *heap, size_t need, size_t align, ht_source *source,
                              ht_error *error)
{
    if (need > BACKEND_NEED_MAX) {
        *error = heap->maximum ? HT_ERROR_HEAP_FULL : HT_ERROR_NO_MEMORY;
        return NULL;
    }
    uint32_t granules = granules_for(need);
    uint32_t extra = align > HTI_GRANULE ? (uint32_t)((align + HTI_MIN_BLOCK) / HTI_GRANULE) : 0;
    hti_header *b = find_or_grow(heap, granules + extra, source, error);
    if (!b)
        return NULL;
    hti_segment *seg = hti_segment_of(b);
    if (hti_freelist_remove(heap, b) != 0) {
        bin_cut(heap, bin_of(b->size), hti_block_data(b),
                "free block's list links damaged (use after free?)");
        *error = HT_ERROR_CORRUPTION;
        return NULL;
    }
    if (extra) {
        uintptr_t data = (uintptr_t)hti_block_data(b);
        uintptr_t aligned = hti_align_up(data, align);
        while (aligned != data && aligned - data < HTI_MIN_BLOCK)
            aligned += align;
        if (aligned != data) { /* the front piece becomes a free block of its own */
            uint32_t front = (uint32_t)((aligned - data) / HTI_GRANULE);
            hti_header *a = hti_block_of((void *)aligned);
            a->size = b->size - front;
            a->prev_size = front;
            b->size = front;
            b->flags = 0;
            hti_seal(heap, b);
            hti_freelist_insert(heap, b);
            b = a;
            b->flags = 0;
            set_prev_size(heap, seg, b);
        }
    }
    b->flags = HTI_BLOCK_BUSY;
    b->tag = 0;
    split(heap, seg, b, granules);
    b->unused = (uint16_t)(hti_block_bytes(b) - HTI_HEADER - need); /* split leaves < 48 */
    hti_seal(heap, b);
    set_prev_size(heap, seg, b);
    return b;
}

ht_source hti_backend_free(ht_heap *heap, hti_header *b)
{
    hti_segment *seg = hti_segment_of(b);
    hti_header *p = hti_block_prev(seg, b), *n = hti_block_next(seg, b);
    b->flags = 0;
    b->unused = 0;
    b->tag = 0;
    if (n && !(n->flags & HTI_BLOCK_BUSY) && take_neighbor(heap, n))
        b->size += n->size;
    if (p && !(p->flags & HTI_BLOCK_BUSY) && take_neighbor(heap, p)) {
        p->size += b->size;
        b = p;
    }
    hti_seal(heap, b);
    set_prev_size(heap, seg, b);
    hti_freelist_insert(heap, b);
    if (b != seg->last)
        return MEMORY_FROM_MAINPATH;
    if ((char *)b == seg->first && (heap->segments != seg || seg->next)) {
        hti_segment_release(heap, seg);
        return MEMORY_FROM_SLOWPATH;
    }
    size_t before = seg->committed;
    hti_segment_trim(heap, seg, false);
    return seg->committed != before ? MEMORY_FROM_SLOWPATH : MEMORY_FROM_MAINPATH;
}

int hti_backend_resize(ht_heap *heap, hti_header *b, size_t need, ht_source *source)
{
    if (need > BACKEND_NEED_MAX)
        return -ERANGE;
    uint32_t granules = granules_for(need);
    hti_segment *seg = hti_segment_of(b);
    *source = MEMORY_FROM_MAINPATH;
    if (granules > b->size) {
        hti_header *n = hti_block_next(seg, b);
        size_t avail = b->size + ((n && !(n->flags & HTI_BLOCK_BUSY)) ? n->size : 0);
        if (avail < granules) {
            /* grow into uncommitted space when b (or its free successor) ends the segment */
            bool at_end = (n == NULL) || (!(n->flags & HTI_BLOCK_BUSY) && n == seg->last);
            if (!at_end)
                return -ENOSPC;
            size_t room = seg->region.reserved - seg->committed;
            if ((avail - b->size) * HTI_GRANULE + room + hti_block_bytes(b) <
                (size_t)granules * HTI_GRANULE)
                return -ENOSPC;
            size_t want = ((size_t)granules - b->size) * HTI_GRANULE;
            int rc;
            if (!n) {
                /* b is last: commit creates a free block after it */
                if ((rc = hti_segment_commit(heap, seg, HTI_MIN_BLOCK)) != 0)
                    return rc;
            }
            if ((rc = hti_segment_commit(heap, seg, want)) != 0)
                return rc;
            n = hti_block_next(seg, b);
            *source = MEMORY_FROM_SLOWPATH;
        }
        if (!take_neighbor(heap, n))
            return -ENOSPC; /* damaged: isolated, no room after all */
        b->size += n->size;
    }
    split(heap, seg, b, granules);
    b->unused = (uint16_t)(hti_block_bytes(b) - HTI_HEADER - need);
    hti_seal(heap, b);
    set_prev_size(heap, seg, b);
    return 0;
}

size_t hti_backend_largest_free(ht_heap *heap)
{
    for (int w = HTI_BIN_WORDS - 1; w >= 0; w--) {
        if (!heap->bitmap[w])
            continue;
        unsigned bin = (unsigned)w * 64 + 63u - (unsigned)__builtin_clzll(heap->bitmap[w]);
        size_t best = 0;
        for (hti_header *b = heap->bins[bin]; b && hti_free_block_ok(heap, b);
             b = hti_free_next(heap, b))
            if (hti_block_bytes(b) > best)
                best = hti_block_bytes(b);
        return best - HTI_HEADER;
    }
    return 0;
}

bool hti_backend_listed(ht_heap *heap, hti_header *b)
{
    return still_listed(heap, b);
}

bool hti_backend_neighbors_ok(ht_heap *heap, const hti_header *b)
{
    hti_segment *seg = hti_segment_of(b);
    if (!seg)
        return false;
    hti_header *n = hti_block_next(seg, b);
    if (n && (!hti_sealed(heap, n) || n->prev_size != b->size))
        return false;
    if (!n && seg->last != b)
        return false;
    hti_header *p = hti_block_prev(seg, b);
    if (p && ((char *)p < seg->first || !hti_sealed(heap, p) || p->size != b->prev_size))
        return false;
    return true;
}
