/* lfh.c — the low-fragmentation front end: size-class buckets served from subsegments.
 *
 * A subsegment is one back-end block (flag SUBSEG) cut into equal slots of one bucket, each
 * slot with its own sealed header (offset to the subsegment, bucket in tag). Each subsegment
 * has one owner thread cache: the owner allocates and frees through local_free without any
 * lock or atomic; other threads push freed slots on thread_free with a CAS, and the owner
 * takes that list whole when its local list runs dry. `used` counts slots out as the owner
 * sees them; a subsegment whose used falls to 0 (and is not the current one) goes back to the
 * back end. At thread exit the owner's subsegments are abandoned to the heap, and the next
 * thread that needs that bucket adopts them. */
#include <sched.h>
#include <string.h>

#include "heap_internal.h"

#define CARVE_BATCH 16u
#define CARVE_BYTES (16u << 10)

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

/* A subsegment's size: SUBSEG_SMALL for slots of up to SUBSEG_SMALL_SLOT data bytes, else room
 * for SUBSEG_SLOTS slots, up to SUBSEG_MAX (what 16 KiB slots get). */
#define SUBSEG_SMALL_SLOT 1024u
#define SUBSEG_SMALL (64u << 10)
#define SUBSEG_SLOTS 16u
#define SUBSEG_MAX (256u << 10)

static size_t subseg_bytes(uint32_t slot)
{
    if (slot <= SUBSEG_SMALL_SLOT + HTI_HEADER)
        return SUBSEG_SMALL;
    size_t bytes = (size_t)slot * SUBSEG_SLOTS;
    return bytes > SUBSEG_MAX ? SUBSEG_MAX : bytes;
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

/* A slot taken from one of ss's lists: inside its carved slots, its header sealed with the
 * free flags of ss's bucket and pointing back at ss, and free in the state bytes. */
static inline bool free_slot_ok(const ht_heap *heap, hti_subseg *ss, hti_header *slot)
{
    uintptr_t offset = (uintptr_t)((char *)slot - ss->slots);
    return offset < (size_t)ss->carved * ss->slot_size && !(offset & (HTI_GRANULE - 1)) &&
           slot->flags == HTI_BLOCK_LFH && slot->tag == ss->bucket && hti_sealed(heap, slot) &&
           hti_subseg_of(slot) == ss &&
           atomic_load_explicit(hti_slot_state(ss, slot), memory_order_relaxed) == HTI_SLOT_FREE;
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
    hti_header *list = atomic_exchange_explicit(&ss->thread_free, NULL, memory_order_acquire);
    while (list) {
        if (HTI_UNLIKELY(!free_slot_ok(heap, ss, list))) {
            list_damaged(heap, list);
            return false;
        }
        hti_header *next = hti_slot_next(heap, list);
        hti_slot_set_next(heap, list, ss->local_free);
        ss->local_free = list;
        ss->used--;
        list = next;
    }
    return true;
}

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
        hti_header *slot = (hti_header *)(ss->slots +
                                          (size_t)(ss->carved + n - 1 - i) * ss->slot_size);
        slot->size = ss->slot_size / HTI_GRANULE;
        slot->prev_size = (uint32_t)(((char *)slot - (char *)ss) / HTI_GRANULE);
        slot->unused = 0;
        slot->flags = HTI_BLOCK_LFH;
        slot->tag = (uint8_t)ss->bucket;
        hti_seal(heap, slot);
        hti_slot_set_next(heap, slot, ss->local_free);
        ss->local_free = slot;
    }
    /* headers before the count: frees on other threads check the next slot's header when the
     * count says it is carved */
    __atomic_store_n(&ss->carved, ss->carved + n, __ATOMIC_RELEASE);
}

static bool has_room(hti_subseg *ss)
{
    return ss->local_free || ss->carved < ss->capacity ||
           atomic_load_explicit(&ss->thread_free, memory_order_relaxed);
}

/* Gives an empty subsegment back to the back end (takes the heap lock). */
static void subseg_release(ht_heap *heap, hti_subseg *ss)
{
    hti_header *b = hti_block_of(ss);
    hti_lock(heap, 0); /* walk and validate see a subsegment whole or not at all */
    ss->magic = 0;
    b->flags = HTI_BLOCK_BUSY;
    hti_backend_free(heap, b);
    hti_unlock(heap, 0);
}

static hti_subseg *subseg_new(ht_heap *heap, hti_tcache *tc, unsigned bucket)
{
    uint32_t slot = hti_bucket_size_table[bucket] + HTI_HEADER;
    size_t bytes = subseg_bytes(slot); /* block data: record, one state byte per slot, slots */
    ht_source source;
    ht_error error;
    hti_lock(heap, 0); /* walk and validate see a subsegment whole or not at all */
    /* 64-byte aligned: the record's groups of fields sit in cache lines of their own */
    hti_header *b = hti_backend_alloc(heap, bytes, HTI_CACHE_LINE, &source, &error);
    hti_subseg *ss = NULL;
    if (b) {
        ss = hti_block_data(b);
        size_t room = hti_block_bytes(b) - HTI_HEADER - sizeof *ss - (HTI_GRANULE - 1);
        assert(((uintptr_t)ss & (HTI_CACHE_LINE - 1)) == 0);
        uint32_t capacity = (uint32_t)(room / (slot + 1));
        memset(ss, 0, sizeof *ss + capacity); /* every state byte HTI_SLOT_FREE */
        ss->magic = HTI_SUBSEG_MAGIC;
        ss->bucket = (uint16_t)bucket;
        ss->slot_size = slot;
        ss->index_magic = ((1ull << HTI_SLOT_INDEX_SHIFT) + slot - 1) / slot;
        ss->heap = heap;
        ss->capacity = capacity;
        ss->slots = (char *)ss + hti_align_up(sizeof *ss + capacity, HTI_GRANULE);
        atomic_store_explicit(&ss->owner, tc, memory_order_relaxed);
        b->flags = HTI_BLOCK_BUSY | HTI_BLOCK_SUBSEG;
        hti_seal(heap, b);
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
HTI_NOINLINE static hti_header *alloc_damaged(hti_tcache *tc)
{
    tc->damaged = 1;
    return NULL;
}

/* Takes the first slot of ss's local list, checked; a damaged one cuts the list and fails the
 * call (NULL). */
static inline hti_header *local_pop(ht_heap *heap, hti_tcache *tc, hti_subseg *ss)
{
    hti_header *slot = ss->local_free;
    if (HTI_UNLIKELY(!free_slot_ok(heap, ss, slot))) {
        ss->local_free = NULL;
        list_damaged(heap, slot);
        return alloc_damaged(tc);
    }
    ss->local_free = hti_slot_next(heap, slot);
    ss->used++;
    atomic_store_explicit(hti_slot_state(ss, slot), HTI_SLOT_BUSY, memory_order_relaxed);
    return slot;
}

HTI_NOINLINE static hti_header *lfh_alloc_slow(ht_heap *heap, hti_tcache *tc, unsigned bucket)
{
    hti_subseg *ss = tc->current[bucket];
    if (ss) {
        if (!collect(heap, ss))
            return alloc_damaged(tc);
        if (!ss->local_free && ss->carved < ss->capacity)
            carve(heap, ss);
        if (ss->local_free)
            return local_pop(heap, tc, ss);
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
    return local_pop(heap, tc, ss);
}

hti_header *hti_lfh_alloc(ht_heap *heap, hti_tcache *tc, unsigned bucket)
{
    hti_subseg *ss = tc->current[bucket];
    if (HTI_LIKELY(ss && ss->local_free))
        return local_pop(heap, tc, ss);
    return lfh_alloc_slow(heap, tc, bucket);
}

void hti_lfh_free(ht_heap *heap, hti_tcache *tc, hti_header *slot)
{
    hti_subseg *ss = hti_subseg_of(slot);
    atomic_store_explicit(hti_slot_state(ss, slot), HTI_SLOT_FREE, memory_order_relaxed);
    hti_slot_update(heap, slot, HTI_BLOCK_LFH, 0);
    if (tc && atomic_load_explicit(&ss->owner, memory_order_relaxed) == tc) {
        hti_slot_set_next(heap, slot, ss->local_free);
        ss->local_free = slot;
        if (HTI_UNLIKELY(--ss->used == 0) && tc->current[ss->bucket] != ss) {
            list_remove(&tc->owned[ss->bucket], ss);
            subseg_release(heap, ss);
        }
        return;
    }
    hti_header *head = atomic_load_explicit(&ss->thread_free, memory_order_relaxed);
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

/* A slot header as it settles: the owner or a freeing thread may be rewriting it while the
 * heap is validated (LFH operations take no lock), so a torn read is retried before it is
 * called corrupt. *out receives the stable copy. */
static bool slot_sealed(const ht_heap *heap, const hti_header *slot, hti_header *out)
{
    for (int attempt = 0; attempt < 10000; attempt++) {
        hti_header a, b;
        memcpy(&a, (const void *)slot, sizeof a);
        atomic_thread_fence(memory_order_acquire);
        memcpy(&b, (const void *)slot, sizeof b);
        if (memcmp(&a, &b, sizeof a) == 0 &&
            a.check == hti_check_value(heap, (uintptr_t)slot, &a)) {
            *out = a;
            return true;
        }
        if (attempt > 100)
            sched_yield();
    }
    return false;
}

bool hti_subseg_is_valid(const ht_heap *heap, const hti_subseg *ss)
{
    if (ss->magic != HTI_SUBSEG_MAGIC || ss->heap != heap || ss->bucket >= HTI_LFH_BUCKETS)
        return false;
    if (ss->slot_size != hti_bucket_size_table[ss->bucket] + HTI_HEADER)
        return false;
    if (ss->carved > ss->capacity ||
        ss->index_magic != ((1ull << HTI_SLOT_INDEX_SHIFT) + ss->slot_size - 1) / ss->slot_size)
        return false;
    const hti_header *b = hti_block_of(ss);
    size_t room = hti_block_bytes(b) - HTI_HEADER - (size_t)(ss->slots - (const char *)ss);
    if ((size_t)ss->capacity * ss->slot_size > room)
        return false;
    for (uint32_t i = 0; i < ss->carved; i++) {
        const hti_header *slot = (const hti_header *)(ss->slots + (size_t)i * ss->slot_size);
        hti_header h;
        if (!slot_sealed(heap, slot, &h) || !(h.flags & HTI_BLOCK_LFH) || h.tag != ss->bucket ||
            h.size != ss->slot_size / HTI_GRANULE ||
            h.prev_size != (uint32_t)(((const char *)slot - (const char *)ss) / HTI_GRANULE))
            return false;
    }
    return true;
}
