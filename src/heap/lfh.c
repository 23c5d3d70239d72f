/* lfh.c — the low-fragmentation front end: size-class buckets served from subsegments.
 *
 * A subsegment is one back-end block (flag SUBSEG) whose data covers whole page-map granules,
 * mapped to its record: the record, one state word per slot, then equal slots of one bucket
 * with no header (heap_internal.h, hti_subseg). A pointer finds its subsegment through the page
 * map and its slot by one multiply, and the state word says whether it is busy. Each subsegment
 * has one owner thread cache: the owner allocates and frees through local_free without any
 * lock or atomic; other threads push freed slots on thread_free with a CAS, and the owner
 * takes that list whole when its local list runs dry. `used` counts slots out as the owner
 * sees them; a subsegment whose used falls to 0 (and is not the current one) goes back to the
 * back end. At thread exit the owner's subsegments are abandoned to the heap, and the next
 * thread that needs that bucket adopts them. */
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "heap_internal.h"

#define CARVE_BATCH 16u
#define CARVE_BYTES (16u << 10)

const uint64_t hti_canary_mask[9] = {
    0,
    0xff00000000000000ull,
    0xffff000000000000ull,
    0xffffff0000000000ull,
    0xffffffff00000000ull,
    0xffffffffff000000ull,
    0xffffffffffff0000ull,
    0xffffffffffffff00ull,
    0xffffffffffffffffull,
};
uint8_t hti_bucket_of_granules_table[HT_LFH_MAX_BLOCK / HTI_GRANULE + 1];
uint32_t hti_bucket_size_table[HTI_LFH_BUCKETS];

void hti_lfh_init_tables(void)
{
    unsigned bucket = 0;
    for (unsigned bytes = 16; bytes <= 512; bytes += 16)
        hti_bucket_size_table[bucket++] = bytes;
    for (unsigned range = 1; range <= 5; range++) {
        unsigned low = 256u << range, step = 16u << range;
        for (unsigned i = 1; i <= 16; i++)
            hti_bucket_size_table[bucket++] = low + i * step;
    }
    assert(bucket == HTI_LFH_BUCKETS && hti_bucket_size_table[bucket - 1] == HT_LFH_MAX_BLOCK);
    bucket = 0;
    for (unsigned g = 0; g <= HT_LFH_MAX_BLOCK / HTI_GRANULE; g++) {
        unsigned bytes = g ? g * HTI_GRANULE : HTI_GRANULE;
        while (hti_bucket_size_table[bucket] < bytes)
            bucket++;
        hti_bucket_of_granules_table[g] = (uint8_t)bucket;
    }
}

/* A subsegment's size: SUBSEG_SMALL for slots of up to SUBSEG_SMALL_SLOT bytes, else room for
 * SUBSEG_SLOTS slots, up to SUBSEG_MAX (what 16 KiB slots get); in whole granules. */
#define SUBSEG_SMALL_SLOT 1024u
#define SUBSEG_SMALL (64u << 10)
#define SUBSEG_SLOTS 16u
#define SUBSEG_MAX (256u << 10)
_Static_assert(SUBSEG_MAX <= (1u << 18), "slot offsets stay exact for hti_slot_index_of");
_Static_assert(SUBSEG_SMALL % HTI_REGION_ALIGN == 0 && SUBSEG_MAX % HTI_REGION_ALIGN == 0,
               "subsegments are whole granules");

static size_t subseg_granules_bytes(uint32_t slot)
{
    size_t bytes = slot <= SUBSEG_SMALL_SLOT ? SUBSEG_SMALL : (size_t)slot * SUBSEG_SLOTS;
    if (bytes > SUBSEG_MAX)
        bytes = SUBSEG_MAX;
    return hti_align_up(bytes, HTI_REGION_ALIGN);
}

/* Slots of slot bytes that fit in room bytes after the record and their state words. */
static uint32_t subseg_capacity(size_t room, uint32_t slot)
{
    size_t n = (room - sizeof(hti_subseg) - (HTI_GRANULE - 1)) / (slot + sizeof(uint16_t));
    return (uint32_t)(n > UINT16_MAX ? UINT16_MAX : n);
}

static void list_push(hti_subseg **list, hti_subseg *ss)
{
    ss->prev = NULL;
    ss->next = *list;
    if (*list)
        (*list)->prev = ss;
    *list = ss;
}

static void list_remove(hti_subseg **list, hti_subseg *ss)
{
    if (ss->prev)
        ss->prev->next = ss->next;
    else
        *list = ss->next;
    if (ss->next)
        ss->next->prev = ss->prev;
    ss->next = ss->prev = NULL;
}

/* A damaged list of ss: reported (termination if on), cut at the damage so that nothing past
 * it is handed out, and the calling thread's current call fails. */
HTI_NOINLINE static void list_damaged(ht_heap *heap, const void *where)
{
    hti_corruption(heap, where, "free-list link damaged (use after free?)");
}

/* Takes the slots other threads freed; false if that list was damaged (cut there). */
static bool collect(ht_heap *heap, hti_subseg *ss)
{
    void *list = atomic_exchange_explicit(&ss->thread_free, NULL, memory_order_acquire);
    while (list) {
        if (HTI_UNLIKELY(hti_free_slot_index(ss, list) == SIZE_MAX)) {
            list_damaged(heap, list);
            return false;
        }
        void *next = hti_slot_next(heap, list);
        hti_slot_set_next(heap, list, ss->local_free);
        ss->local_free = list;
        ss->used--;
        list = next;
    }
    return true;
}

/* Links the next few never-used slots into the local list, in address order. */
static void carve(ht_heap *heap, hti_subseg *ss)
{
    unsigned n = ss->capacity - ss->carved, batch = CARVE_BYTES / ss->slot_size;
    if (batch > CARVE_BATCH)
        batch = CARVE_BATCH;
    if (batch == 0)
        batch = 1;
    if (n > batch)
        n = batch; /* big slots are carved a few at a time: untouched pages stay free */
    for (unsigned i = 0; i < n; i++) {
        void *slot = hti_slot_ptr(ss, ss->carved + n - 1 - i);
        hti_slot_set_next(heap, slot, ss->local_free);
        ss->local_free = slot;
    }
    __atomic_store_n(&ss->carved, ss->carved + n, __ATOMIC_RELEASE);
}

static bool has_room(hti_subseg *ss)
{
    return ss->local_free || ss->carved < ss->capacity ||
           atomic_load_explicit(&ss->thread_free, memory_order_relaxed);
}

/* Gives an empty subsegment back to the back end (takes the heap lock). Its granules map to
 * its segment again before its memory can be reused. The back end may decommit pages: errno is
 * kept, as a free reached from free() must keep it. */
static void subseg_release(ht_heap *heap, hti_subseg *ss)
{
    int saved_errno = errno;
    hti_header *b = hti_block_of(ss);
    hti_lock(heap, 0); /* walk and validate see a subsegment whole or not at all */
    (void)hti_pagemap_set(ss, ss->region.reserved, &ss->segment->region); /* leaves exist */
    ss->region.magic = 0;
    b->flags = HTI_BLOCK_BUSY;
    hti_backend_free(heap, b);
    hti_unlock(heap, 0);
    errno = saved_errno;
}

static hti_subseg *subseg_new(ht_heap *heap, hti_tcache *tc, unsigned bucket)
{
    uint32_t slot = hti_bucket_size_table[bucket];
    size_t granules = subseg_granules_bytes(slot);
    ht_source source;
    ht_error error;
    hti_lock(heap, 0); /* walk and validate see a subsegment whole or not at all */
    /* The data starts on a granule and ends HTI_HEADER short of the last one's end, where the
     * next block's header goes: the granules hold nothing but this subsegment's data. */
    hti_header *b = hti_backend_alloc(heap, granules - HTI_HEADER, HTI_REGION_ALIGN, &source,
                                      &error);
    hti_subseg *ss = NULL;
    if (b) {
        ss = hti_block_data(b);
        assert(((uintptr_t)ss & (HTI_REGION_ALIGN - 1)) == 0);
        uint32_t capacity = subseg_capacity(granules - HTI_HEADER, slot);
        memset(ss, 0, sizeof *ss + capacity * sizeof(uint16_t)); /* every state word FREE */
        ss->region = (hti_region){HTI_SUBSEG_MAGIC, HTI_REGION_LFH, heap, (char *)ss, granules};
        ss->bucket = (uint16_t)bucket;
        ss->slot_size = (uint16_t)slot;
        ss->index_magic = ((1ull << HTI_SLOT_INDEX_SHIFT) + slot - 1) / slot;
        ss->capacity = (uint16_t)capacity;
        ss->slots = (char *)ss +
                    hti_align_up(sizeof *ss + capacity * sizeof(uint16_t), HTI_GRANULE);
        ss->segment = hti_segment_at(b);
        atomic_store_explicit(&ss->owner, tc, memory_order_relaxed);
        b->flags = HTI_BLOCK_BUSY | HTI_BLOCK_SUBSEG;
        hti_seal(heap, b);
        if (hti_pagemap_set(ss, granules, &ss->region) != 0) { /* leaves exist: never */
            b->flags = HTI_BLOCK_BUSY;
            hti_backend_free(heap, b);
            ss = NULL;
        }
    }
    hti_unlock(heap, 0);
    return ss;
}

static hti_subseg *adopt(ht_heap *heap, hti_tcache *tc, unsigned bucket)
{
    if (!heap->abandoned[bucket])
        return NULL;
    hti_lock(heap, 0);
    hti_subseg *ss = heap->abandoned[bucket];
    if (ss) {
        list_remove(&heap->abandoned[bucket], ss);
        ss->abandoned = 0;
        atomic_store_explicit(&ss->owner, tc, memory_order_release);
    }
    hti_unlock(heap, 0);
    return ss;
}

/* The current call fails: a list was cut at damage. */
HTI_NOINLINE static void *alloc_damaged(hti_tcache *tc)
{
    tc->damaged = 1;
    return NULL;
}

/* Takes the first slot of ss's local list, checked; its index in *index. A damaged one cuts
 * the list and fails the call (NULL). */
static inline void *local_pop(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t *index)
{
    *index = hti_free_slot_index(ss, ss->local_free);
    if (HTI_UNLIKELY(*index == SIZE_MAX)) {
        list_damaged(heap, ss->local_free);
        ss->local_free = NULL;
        return alloc_damaged(tc);
    }
    return hti_local_take(heap, ss);
}

void *hti_lfh_alloc_slow(ht_heap *heap, hti_tcache *tc, unsigned bucket, hti_subseg **out,
                         size_t *index)
{
    hti_subseg *ss = tc->current[bucket];
    if (ss) {
        if (!collect(heap, ss))
            return alloc_damaged(tc);
        if (!ss->local_free && ss->carved < ss->capacity)
            carve(heap, ss);
        if (ss->local_free)
            return local_pop(heap, tc, *out = ss, index);
    }
    for (ss = tc->owned[bucket]; ss; ss = ss->next)
        if (ss != tc->current[bucket] && has_room(ss))
            break;
    if (!ss) {
        ss = adopt(heap, tc, bucket);
        if (!ss)
            ss = subseg_new(heap, tc, bucket);
        if (!ss)
            return NULL;
        list_push(&tc->owned[bucket], ss);
    }
    tc->current[bucket] = ss;
    if (!collect(heap, ss))
        return alloc_damaged(tc);
    if (!ss->local_free)
        carve(heap, ss);
    if (!ss->local_free)
        return NULL;
    return local_pop(heap, tc, *out = ss, index);
}

void hti_lfh_free_slow(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t index)
{
    if (tc && atomic_load_explicit(&ss->owner, memory_order_relaxed) == tc) {
        hti_local_put(heap, ss, index);
        if (HTI_UNLIKELY(ss->used == 0) && tc->current[ss->bucket] != ss) {
            list_remove(&tc->owned[ss->bucket], ss);
            subseg_release(heap, ss);
        }
        return;
    }
    void *slot = hti_slot_ptr(ss, index);
    hti_slot_set(ss, index, HTI_SLOT_FREE);
    void *head = atomic_load_explicit(&ss->thread_free, memory_order_relaxed);
    do {
        hti_slot_set_next(heap, slot, head);
    } while (!atomic_compare_exchange_weak_explicit(&ss->thread_free, &head, slot,
                                                    memory_order_release, memory_order_relaxed));
}

void hti_lfh_thread_done(ht_heap *heap, hti_tcache *tc)
{
    hti_lookaside_flush(heap, tc);
    for (unsigned b = 0; b < HTI_LFH_BUCKETS; b++) {
        tc->current[b] = NULL;
        hti_subseg *ss = tc->owned[b];
        while (ss) {
            hti_subseg *next = ss->next;
            collect(heap, ss);
            if (ss->used == 0) {
                subseg_release(heap, ss);
            } else {
                atomic_store_explicit(&ss->owner, NULL, memory_order_release);
                ss->abandoned = 1;
                list_push(&heap->abandoned[b], ss);
            }
            ss = next;
        }
        tc->owned[b] = NULL;
    }
}

void hti_lfh_reclaim_abandoned(ht_heap *heap)
{
    for (unsigned b = 0; b < HTI_LFH_BUCKETS; b++) {
        hti_subseg *ss = heap->abandoned[b];
        while (ss) {
            hti_subseg *next = ss->next;
            collect(heap, ss);
            if (ss->used == 0) {
                list_remove(&heap->abandoned[b], ss);
                subseg_release(heap, ss);
            }
            ss = next;
        }
    }
}

bool hti_slot_canary_settled(const ht_heap *heap, const hti_subseg *ss, size_t index)
{
    for (int attempt = 0; attempt < 10000; attempt++) {
        unsigned state = hti_slot_get(ss, index);
        if (state < HTI_SLOT_BUSY || hti_slot_canary_ok(heap, ss, index, state))
            return true;
        atomic_thread_fence(memory_order_acquire);
        if (hti_slot_get(ss, index) == state && attempt > 100)
            sched_yield(); /* the same state twice: likely damage, give its owner a chance */
    }
    return false;
}

/* The free list of a subsegment nobody owns: every link a carved free slot, no cycle. */
static bool local_list_ok(const ht_heap *heap, const hti_subseg *ss)
{
    size_t count = 0;
    for (void *slot = ss->local_free; slot; slot = hti_slot_next(heap, slot))
        if (hti_free_slot_index((hti_subseg *)ss, slot) == SIZE_MAX || ++count > ss->carved)
            return false;
    return true;
}

bool hti_subseg_is_valid(const ht_heap *heap, const hti_subseg *ss)
{
    const hti_region *r = &ss->region;
    if (r->magic != HTI_SUBSEG_MAGIC || r->kind != HTI_REGION_LFH || r->heap != heap ||
        r->base != (const char *)ss || ss->bucket >= HTI_LFH_BUCKETS)
        return false;
    if (ss->slot_size != hti_bucket_size_table[ss->bucket] ||
        r->reserved != subseg_granules_bytes(ss->slot_size))
        return false;
    if (ss->carved > ss->capacity ||
        ss->index_magic != ((1ull << HTI_SLOT_INDEX_SHIFT) + ss->slot_size - 1) / ss->slot_size)
        return false;
    size_t meta = hti_align_up(sizeof *ss + ss->capacity * sizeof(uint16_t), HTI_GRANULE);
    if (ss->slots != (const char *)ss + meta ||
        meta + (size_t)ss->capacity * ss->slot_size > r->reserved - HTI_HEADER)
        return false;
    for (size_t at = 0; at < r->reserved; at += HTI_REGION_ALIGN)
        if (hti_pagemap_lookup((const char *)ss + at) != r)
            return false;
    if (hti_segment_at(hti_block_of(ss)) != ss->segment)
        return false;
    for (size_t i = 0; i < ss->capacity; i++) {
        unsigned state = hti_slot_get(ss, i);
        if (i >= ss->carved ? state != HTI_SLOT_FREE
                            : state >= HTI_SLOT_BUSY && HTI_SLOT_UNUSED(state) > ss->slot_size)
            return false;
        if (i < ss->carved && !hti_slot_canary_settled(heap, ss, i))
            return false;
    }
    if (!atomic_load_explicit(&((hti_subseg *)ss)->owner, memory_order_acquire) &&
        !local_list_ok(heap, ss))
        return false;
    return true;
}
