/* heap.c — the public heap API: heaps' life, and alloc/free/realloc through the tiers.
 *
 * Allocation tries, in order: the large-block path (>= HT_LARGE_THRESHOLD), the calling
 * thread's lookaside list, the LFH (for active buckets), then the back end under the heap
 * lock, which counts toward activating the bucket. Every call on a live heap counts exactly
 * one (op, Source) and, while tracing, emits one event whose Source is the tier that served
 * it. Frees are checked against the page map and the block's header or, for an LFH slot, its
 * state word and canary before anything is touched; their event is emitted before the block is
 * released. Heap descriptors come from a pool that is never unmapped, so a destroyed handle is
 * recognised (magic DEAD), not dereferenced into the void. */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "heap_internal.h"
#include "trace/emit.h"
#include "trace/rundown.h"

/* ---- global state: init, descriptor pool, heap list, fork ----------------------------- */
static pthread_mutex_t heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static ht_heap *heaps; /* live heaps */
static size_t heap_count;
static ht_heap *free_descriptors;
static atomic_uint_fast64_t next_heap_id = 1;
static ht_heap *_Atomic process_heap;
enum { INIT_NONE, INIT_RUNNING, INIT_DONE };
static atomic_int init_state; /* INIT_NONE until global_init has run once */

static void fork_prepare(void)
{
    pthread_mutex_lock(&heaps_lock);
    for (ht_heap *h = heaps; h; h = h->list_next)
        pthread_mutex_lock(&h->lock);
    hti_pools_lock();
}

static void fork_parent(void)
{
    hti_pools_unlock();
    for (ht_heap *h = heaps; h; h = h->list_next)
        pthread_mutex_unlock(&h->lock);
    pthread_mutex_unlock(&heaps_lock);
}

static void init_recursive(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
}

static void fork_child(void)
{
    hti_pools_after_fork();
    for (ht_heap *h = heaps; h; h = h->list_next)
        init_recursive(&h->lock);
    pthread_mutex_init(&heaps_lock, NULL);
    hti_thread_after_fork_child();
}

/* The heap tells the tracer how to list and walk heaps (trace/rundown.h). At load, before
 * other constructors (a session may be started from one, as the preload library's is, and
 * constructors of one priority run in link order), and again at the global init, whatever
 * the order: a session started before the first heap still lists the process heap, which
 * listing creates (ht_process_heaps). */
__attribute__((constructor(101))) static void rundown_register(void)
{
    hti_trace_set_rundown_provider(&hti_heap_rundown_provider);
}

static void global_init(void)
{
    if (HTI_LIKELY(atomic_load_explicit(&init_state, memory_order_acquire) == INIT_DONE))
        return;
    int expected = INIT_NONE;
    if (atomic_compare_exchange_strong(&init_state, &expected, INIT_RUNNING)) {
        hti_lfh_init_tables();
        hti_thread_init_key();
        rundown_register();
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        atomic_store_explicit(&init_state, INIT_DONE, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&init_state, memory_order_acquire) != INIT_DONE)
        sched_yield();
}

void hti_global_lock(void)
{
    fork_prepare();
}
void hti_global_unlock(void)
{
    fork_parent();
}

/* Descriptors are mapped this many bytes at a time, never unmapped. */
#define DESCRIPTOR_CHUNK (256u << 10)

static ht_heap *descriptor_get(void)
{
    pthread_mutex_lock(&heaps_lock);
    if (!free_descriptors) {
        size_t chunk = DESCRIPTOR_CHUNK, size = hti_align_up(sizeof(ht_heap), HTI_CACHE_LINE);
        char *mem = hti_os_map(chunk, hti_page_size());
        if (!mem) {
            pthread_mutex_unlock(&heaps_lock);
            return NULL;
        }
        hti_own_memory_note(mem, chunk);
        for (size_t off = 0; off + size <= chunk; off += size) {
            ht_heap *h = (ht_heap *)(mem + off);
            init_recursive(&h->lock); /* once per descriptor, never destroyed */
            h->free_next = free_descriptors;
            free_descriptors = h;
        }
    }
    ht_heap *h = free_descriptors;
    free_descriptors = h->free_next;
    pthread_mutex_unlock(&heaps_lock);
    return h;
}

static uint64_t make_cookie(const void *where, uint64_t id)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)where ^
                 (id * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)getpid() << 17);
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDull;
    x ^= x >> 33;
    return x | 1;
}

/* A secret word from the kernel (getrandom never allocates); the clock-based mix if the
 * kernel has none to give yet. */
static uint64_t secret_word(const void *where, uint64_t id)
{
    uint64_t value = 0;
    if (getrandom(&value, sizeof value, GRND_NONBLOCK) == (ssize_t)sizeof value && value != 0)
        return value;
    return make_cookie(where, id ^ 0x5bd1e995u);
}

void hti_lock(ht_heap *heap, uint32_t flags)
{
    if (!((flags | heap->flags) & HT_HEAP_NO_SERIALIZE))
        pthread_mutex_lock(&heap->lock);
}

void hti_unlock(ht_heap *heap, uint32_t flags)
{
    if (!((flags | heap->flags) & HT_HEAP_NO_SERIALIZE))
        pthread_mutex_unlock(&heap->lock);
}

/* ---- create / destroy ----------------------------------------------------------------- */
#define CREATE_FLAGS                                                                               \
    (HT_HEAP_NO_SERIALIZE | HT_HEAP_GENERATE_EXCEPTIONS | HT_HEAP_ZERO_MEMORY |                    \
     HT_HEAP_CREATE_ENABLE_EXECUTE)
#define CALL_FLAGS                                                                                 \
    (HT_HEAP_NO_SERIALIZE | HT_HEAP_GENERATE_EXCEPTIONS | HT_HEAP_ZERO_MEMORY |                    \
     HT_HEAP_REALLOC_IN_PLACE_ONLY)

static ht_heap *create(uint32_t flags, size_t initial, size_t maximum)
{
    global_init();
    if ((flags & ~CREATE_FLAGS) || (maximum && initial > maximum) || initial > HTI_SIZE_LIMIT ||
        maximum > HTI_SIZE_LIMIT) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_PARAMETER);
        return NULL;
    }
    ht_heap *heap = descriptor_get();
    if (!heap) {
        hti_fail(NULL, flags, HT_ERROR_NO_MEMORY);
        return NULL;
    }
    pthread_mutex_t lock = heap->lock;
    memset(heap, 0, sizeof *heap);
    heap->lock = lock;
    heap->flags = flags & ~HT_HEAP_ZERO_MEMORY;
    heap->id = atomic_fetch_add(&next_heap_id, 1);
    heap->cookie = make_cookie(heap, heap->id) ^ secret_word(heap, heap->id);
    heap->canary = hti_canary_of(secret_word(&heap->canary, heap->id));
    heap->link_key[0] = secret_word(&heap->link_key[0], heap->id);
    heap->link_key[1] = secret_word(&heap->link_key[1], heap->id);
    heap->link_rotate = 1u + (unsigned)(secret_word(heap, ~heap->id) % 63u);
    heap->maximum = maximum ? hti_align_up(maximum, hti_page_size()) : 0;
    heap->initial = initial;
    heap->has_lfh = !(flags & HT_HEAP_NO_SERIALIZE) && maximum == 0;
    atomic_store(&heap->lfh_mode, heap->has_lfh ? HTI_LFH_HEURISTIC : HTI_LFH_OFF);
    atomic_store(&heap->lookaside_on, heap->has_lfh);
    atomic_store(&heap->lookaside_active, heap->has_lfh);
    heap->next_segment_size = hti_align_up(initial + HTI_REGION_ALIGN, HTI_REGION_ALIGN);
    if (heap->next_segment_size < HTI_SEGMENT_MIN)
        heap->next_segment_size = HTI_SEGMENT_MIN;
    if (heap->maximum && heap->maximum < HTI_COMMIT_MIN)
        heap->maximum = HTI_COMMIT_MIN;
    heap->magic = HTI_HEAP_MAGIC;
    if (hti_segment_add(heap, HTI_MIN_BLOCK) != 0) {
        heap->magic = HTI_HEAP_DEAD;
        pthread_mutex_lock(&heaps_lock);
        heap->free_next = free_descriptors;
        free_descriptors = heap;
        pthread_mutex_unlock(&heaps_lock);
        hti_fail(NULL, flags, HT_ERROR_NO_MEMORY);
        return NULL;
    }
    pthread_mutex_lock(&heaps_lock);
    heap->list_next = heaps;
    if (heaps)
        heaps->list_prev = heap;
    heaps = heap;
    heap_count++;
    pthread_mutex_unlock(&heaps_lock);
    if (HT_TRACE_ON())
        hti_trace_heap_create(heap, flags, initial, maximum);
    return heap;
}

HT_API ht_heap *ht_heap_create(uint32_t flags, size_t initial_size, size_t maximum_size)
{
    return create(flags, initial_size, maximum_size);
}

HT_API ht_heap *ht_process_heap(void)
{
    ht_heap *heap = atomic_load_explicit(&process_heap, memory_order_acquire);
    if (HTI_LIKELY(heap != NULL))
        return heap;
    static atomic_int creating;
    int expected = 0;
    if (atomic_compare_exchange_strong(&creating, &expected, 1)) {
        heap = create(0, 0, 0);
        atomic_store_explicit(&process_heap, heap, memory_order_release);
        if (!heap)
            atomic_store(&creating, 0);
        return heap;
    }
    while (!(heap = atomic_load_explicit(&process_heap, memory_order_acquire)) &&
           atomic_load(&creating))
        sched_yield();
    return heap;
}

HT_API size_t ht_process_heaps(ht_heap **out, size_t count)
{
    global_init();
    ht_process_heap();
    pthread_mutex_lock(&heaps_lock);
    size_t i = 0;
    for (ht_heap *h = heaps; h; h = h->list_next, i++)
        if (out && i < count)
            out[i] = h;
    pthread_mutex_unlock(&heaps_lock);
    return i;
}

HT_API bool ht_heap_destroy(ht_heap *heap)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    if (heap == atomic_load(&process_heap)) {
        hti_fail(heap, 0, HT_ERROR_BUSY);
        return false;
    }
    hti_heap_thread *self = hti_thread_record();
    hti_untraced_begin(self); /* until the heap is dead to the rundown's walk */
    if (HT_TRACE_ON())
        hti_trace_heap_destroy(heap);
    pthread_mutex_lock(&heaps_lock);
    if (heap->list_prev)
        heap->list_prev->list_next = heap->list_next;
    else
        heaps = heap->list_next;
    if (heap->list_next)
        heap->list_next->list_prev = heap->list_prev;
    heap_count--;
    pthread_mutex_unlock(&heaps_lock);
    pthread_mutex_lock(&heap->lock);
    heap->magic = HTI_HEAP_DEAD;
    hti_tcache_detach_all(heap);
    while (heap->large)
        hti_large_free(heap, heap->large, NULL);
    hti_large_cache_drop(heap);
    while (heap->segments) {
        hti_segment *seg = heap->segments;
        heap->segments = seg->next;
        hti_pagemap_clear(seg->region.base, seg->region.reserved);
        hti_os_release(seg->region.base, seg->region.reserved);
    }
    heap->id = 0;
    pthread_mutex_unlock(&heap->lock);
    hti_untraced_end(self);
    pthread_mutex_lock(&heaps_lock);
    heap->free_next = free_descriptors;
    free_descriptors = heap;
    pthread_mutex_unlock(&heaps_lock);
    return true;
}

/* ---- pointer checks ------------------------------------------------------------------- */

/* Freed large blocks are unmapped; remembering the last few lets a second free of one be
 * reported as a double free rather than a foreign pointer. */
#define RECENT_LARGE 64
static _Atomic(uintptr_t) recent_large[RECENT_LARGE];
static atomic_uint recent_large_next;

static void remember_large(const void *data)
{
    unsigned i = atomic_fetch_add_explicit(&recent_large_next, 1, memory_order_relaxed);
    atomic_store_explicit(&recent_large[i % RECENT_LARGE], (uintptr_t)data, memory_order_relaxed);
}

static bool recently_freed_large(const void *data)
{
    for (unsigned i = 0; i < RECENT_LARGE; i++)
        if (atomic_load_explicit(&recent_large[i], memory_order_relaxed) == (uintptr_t)data)
            return true;
    return false;
}

/* A header failed its seal: corruption if data sits where a block starts, else a stray
 * pointer. Walks the segment's blocks up to data (error path only). */
static int classify_locked(ht_heap *heap, hti_segment *seg, const char *data)
{
    hti_header *b = (hti_header *)seg->first;
    char *end = seg->region.base + seg->committed;
    while ((char *)b < end && (char *)hti_block_data(b) <= data) {
        if (!hti_sealed(heap, b) || b->size < 2)
            return -EFAULT; /* corrupt on the way */
        if ((char *)hti_block_data(b) == data)
            return -EFAULT;
        b = (hti_header *)((char *)b + hti_block_bytes(b));
    }
    return -EINVAL;
}

static int classify_unsealed(ht_heap *heap, hti_segment *seg, const char *data)
{
    pthread_mutex_lock(&heap->lock);
    int rc = classify_locked(heap, seg, data);
    pthread_mutex_unlock(&heap->lock);
    return rc;
}

/* A busy back-end header's prev_size is rewritten (under the lock) when its predecessor is
 * split or coalesced, so an unlocked read can be torn: look again under the lock. */
HTI_NOINLINE static bool sealed_under_lock(ht_heap *heap, const hti_header *b)
{
    pthread_mutex_lock(&heap->lock);
    bool sealed = hti_sealed(heap, b);
    pthread_mutex_unlock(&heap->lock);
    return sealed;
}

/* An LFH slot: a carved slot's start, busy, its canary intact. */
static int lfh_owner_find(ht_heap *heap, hti_subseg *ss, const void *data, hti_owner *owner)
{
    if (ss->region.magic != HTI_SUBSEG_MAGIC)
        return -EINVAL;
    size_t index = hti_slot_at(ss, data);
    if (index == SIZE_MAX || index >= __atomic_load_n(&ss->carved, __ATOMIC_ACQUIRE))
        return -EINVAL; /* inside a slot, in the record, or never handed out */
    unsigned state = hti_slot_get(ss, index);
    if (state < HTI_SLOT_BUSY)
        return -EALREADY; /* back in its subsegment, or cached in a lookaside list */
    if (!hti_slot_canary_ok(heap, ss, index, state))
        return -EOVERFLOW;
    *owner = (hti_owner){&ss->region, NULL, (void *)data, index};
    return 0;
}

HTI_NOINLINE int hti_owner_find(ht_heap *heap, const void *data, hti_owner *owner)
{
    if ((uintptr_t)data & (HTI_GRANULE - 1))
        return -EINVAL;
    hti_region *r = hti_pagemap_lookup(data);
    if (!r)
        return recently_freed_large(data) ? -EALREADY : -EINVAL;
    if (r->heap != heap)
        return -EINVAL;
    if (r->kind == HTI_REGION_LFH)
        return lfh_owner_find(heap, (hti_subseg *)r, data, owner);
    hti_header *b = hti_block_of(data);
    if (r->kind == HTI_REGION_SEGMENT) {
        hti_segment *seg = (hti_segment *)r;
        if ((char *)b < seg->first || (const char *)data >= seg->region.base + seg->committed)
            return -EINVAL;
        if (HTI_UNLIKELY(!hti_sealed(heap, b)) && !sealed_under_lock(heap, b))
            return classify_unsealed(heap, seg, data);
        if (b->flags & (HTI_BLOCK_SUBSEG | HTI_BLOCK_LARGE))
            return -EINVAL;
    } else {
        hti_large *large = (hti_large *)r;
        if (data != large->data)
            return -EINVAL;
        if (!hti_sealed(heap, b))
            return -EFAULT;
    }
    if (!(b->flags & HTI_BLOCK_BUSY))
        return -EALREADY;
    *owner = (hti_owner){r, b, (void *)data, 0};
    return 0;
}

/* The free fast path's check: a busy slot of one of heap's subsegments, its canary intact; its
 * index in *index. Anything else goes through hti_owner_find. */
static inline hti_subseg *lfh_slot_of(ht_heap *heap, const void *data, size_t *index)
{
    hti_region *r = hti_pagemap_lookup(data);
    if (HTI_UNLIKELY(!r || r->heap != heap || r->kind != HTI_REGION_LFH))
        return NULL;
    hti_subseg *ss = (hti_subseg *)r;
    size_t i = hti_slot_at(ss, data);
    if (HTI_UNLIKELY(i == SIZE_MAX))
        return NULL;
    unsigned state = hti_slot_get(ss, i);
    if (HTI_UNLIKELY(state < HTI_SLOT_BUSY) || !hti_slot_canary_ok(heap, ss, i, state))
        return NULL;
    *index = i;
    return ss;
}

static ht_error error_of(int rc)
{
    return rc == -EALREADY                     ? HT_ERROR_DOUBLE_FREE
           : rc == -EFAULT || rc == -EOVERFLOW ? HT_ERROR_CORRUPTION
                                               : HT_ERROR_INVALID_POINTER;
}

/* Fails a call on a pointer: sets the error, reports corruption, counts INVALID. */
static void bad_pointer(ht_heap *heap, uint32_t flags, ht_op op, const void *data, int rc)
{
    ht_error error = error_of(rc);
    if (error == HT_ERROR_CORRUPTION)
        hti_corruption(heap, data,
                       rc == -EOVERFLOW ? "canary after the block damaged (overflow?)"
                                        : "block header check failed");
    if (error == HT_ERROR_DOUBLE_FREE && op != HT_OP_COUNT)
        hti_corruption(heap, data, "double free");
    if (op != HT_OP_COUNT)
        hti_count(heap, hti_tcache_get(heap), op, MEMORY_FROM_INVALID);
    hti_fail(heap, flags, error);
}

static size_t usable_of(const hti_owner *o)
{
    if (o->region->kind == HTI_REGION_LARGE)
        return hti_large_usable((hti_large *)o->region);
    if (o->region->kind == HTI_REGION_LFH)
        return ((hti_subseg *)o->region)->slot_size;
    return hti_block_bytes(o->block) - HTI_HEADER;
}

static size_t requested_of(const hti_owner *o)
{
    if (o->region->kind == HTI_REGION_LARGE)
        return ((hti_large *)o->region)->requested;
    if (o->region->kind == HTI_REGION_LFH) {
        hti_subseg *ss = (hti_subseg *)o->region;
        return ss->slot_size - HTI_SLOT_UNUSED(hti_slot_get(ss, o->index));
    }
    return hti_block_bytes(o->block) - HTI_HEADER - o->block->unused;
}

/* ---- allocation ----------------------------------------------------------------------- */
/* Hands a slot of slot_size bytes out for a request of size: its canary window, then its state
 * word (*state), busy with its unused bytes (in that order: validate, here or in a fork child,
 * never sees a busy slot without its canary). */
HTI_INLINE void *slot_hand_out(const ht_heap *heap, _Atomic uint16_t *state, void *slot,
                               size_t slot_size, size_t size)
{
    size_t unused = slot_size - size;
    hti_canary_put_fresh(slot, slot_size, unused, heap->canary);
    hti_slot_publish(state, HTI_SLOT_BUSY + (unsigned)unused);
    return slot;
}

/* The front end: a slot from the lookaside list or the LFH, handed out; or NULL. */
HTI_INLINE void *front_alloc(ht_heap *heap, hti_tcache *tc, size_t size, ht_source *source)
{
    unsigned bucket = hti_bucket_of(size);
    if (!atomic_load_explicit(&heap->bucket_active[bucket], memory_order_relaxed))
        return NULL;
    _Atomic uint16_t *state;
    void *slot;
    if (bucket < HTI_LOOKASIDE_BUCKETS && (slot = hti_lookaside_pop(tc, bucket, &state)) != NULL) {
        *source = MEMORY_FROM_LOOKASIDE;
        return slot_hand_out(heap, state, slot, hti_bucket_size_table[bucket], size);
    }
    hti_subseg *ss;
    size_t index;
    if (HTI_LIKELY(!tc->damaged) && (slot = hti_lfh_alloc(heap, tc, bucket, &ss, &index)) != NULL) {
        *source = MEMORY_FROM_LOWFRAG;
        return slot_hand_out(heap, &ss->state[index], slot, ss->slot_size, size);
    }
    return NULL;
}

/* Counts one back-end allocation of size's bucket; true when it activates the bucket. */
static bool bucket_counts_up(ht_heap *heap, size_t size)
{
    if (atomic_load_explicit(&heap->lfh_mode, memory_order_relaxed) != HTI_LFH_HEURISTIC)
        return false;
    unsigned bucket = hti_bucket_of(size);
    unsigned n = atomic_fetch_add_explicit(&heap->bucket_count[bucket], 1, memory_order_relaxed) +
                 1;
    if (n <= HT_LFH_ACTIVATION_THRESHOLD)
        return false;
    atomic_store_explicit(&heap->bucket_active[bucket], 1, memory_order_relaxed);
    return true;
}

/* Every path but the front end's fast one. Sets *source; NULL with *error on failure. */
static void *alloc_slow(ht_heap *heap, hti_tcache *tc, uint32_t flags, size_t size, size_t align,
                        ht_source *source, ht_error *error)
{
    if (size >= HT_LARGE_THRESHOLD || align > HTI_REGION_ALIGN) {
        if (heap->maximum) {
            *error = HT_ERROR_HEAP_FULL;
            return NULL;
        }
        hti_release release = {0};
        hti_lock(heap, flags);
        void *p = hti_large_alloc(heap, size, align, error, &release);
        hti_unlock(heap, flags);
        hti_release_run(&release);
        *source = MEMORY_FROM_SLOWPATH;
        return p;
    }
    if (tc && size <= HT_LFH_MAX_BLOCK && align <= HTI_GRANULE && bucket_counts_up(heap, size)) {
        void *slot = front_alloc(heap, tc, size, source);
        if (slot)
            return slot;
    }
    hti_lock(heap, flags);
    hti_header *b = hti_backend_alloc(heap, size, align, source, error);
    hti_unlock(heap, flags);
    if (HTI_UNLIKELY(hti_damage_seen)) { /* served, but damage was found on the way */
        *error = HT_ERROR_CORRUPTION;
        return NULL; /* b, if any, stays busy and unused: never handed out */
    }
    return b ? hti_block_data(b) : NULL;
}

/* Allocation without counting or tracing; the caller does both. */
static void *alloc_any(ht_heap *heap, hti_tcache *tc, uint32_t flags, size_t size, size_t align,
                       ht_source *source, ht_error *error)
{
    if (tc && size <= HT_LFH_MAX_BLOCK && align <= HTI_GRANULE) {
        void *slot = front_alloc(heap, tc, size, source);
        if (slot)
            return slot;
        if (HTI_UNLIKELY(tc->damaged)) { /* a list was cut at damage: this call fails */
            tc->damaged = 0;
            *error = HT_ERROR_CORRUPTION;
            return NULL;
        }
    }
    return alloc_slow(heap, tc, flags, size, align, source, error);
}

HTI_NOINLINE static void *alloc_failed(ht_heap *heap, hti_tcache *tc, uint32_t flags,
                                       ht_error error)
{
    if (HT_TRACE_ON())
        hti_trace_alloc(heap, 0, NULL, MEMORY_FROM_INVALID);
    hti_count(heap, tc, HT_OP_ALLOC, MEMORY_FROM_INVALID);
    hti_fail(heap, flags, error);
    return NULL;
}

static inline void *alloc_done(ht_heap *heap, hti_tcache *tc, uint32_t flags, size_t size, void *p,
                               ht_source source)
{
    hti_count(heap, tc, HT_OP_ALLOC, source);
    if (flags & HT_HEAP_ZERO_MEMORY)
        memset(p, 0, size);
    if (HT_TRACE_ON())
        hti_trace_alloc(heap, size, p, source);
    return p;
}

static void *alloc_generic(ht_heap *heap, uint32_t flags, size_t size, size_t align)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return NULL;
    }
    flags |= heap->flags;
    hti_tcache *tc = hti_tcache_get(heap);
    hti_damage_seen = 0;
    if (flags & ~(CALL_FLAGS | CREATE_FLAGS))
        return alloc_failed(heap, tc, flags, HT_ERROR_INVALID_PARAMETER);
    ht_source source = MEMORY_FROM_INVALID;
    ht_error error = HT_ERROR_NO_MEMORY;
    void *p = alloc_any(heap, tc, flags, size, align, &source, &error);
    if (!p)
        return alloc_failed(heap, tc, flags, error);
    return alloc_done(heap, tc, flags, size, p, source);
}

HT_API void *ht_heap_alloc(ht_heap *heap, uint32_t flags, size_t size)
{
    /* Fast path: the heap this thread used last (so a live one with a front end: a destroyed
     * heap's id no longer matches its caches'), a small size, a cached or LFH slot. */
    hti_heap_thread *t = hti_current_thread;
    if (HTI_LIKELY(t != NULL && t->last_heap == heap && size - 1 < HT_LFH_MAX_BLOCK &&
                   !(flags & ~HT_HEAP_ZERO_MEMORY))) {
        hti_tcache *tc = t->last_tcache;
        ht_source source = MEMORY_FROM_INVALID; /* set by front_alloc when it returns a slot */
        void *slot;
        if (HTI_LIKELY(atomic_load_explicit(&tc->heap_id, memory_order_relaxed) == heap->id) &&
            (slot = front_alloc(heap, tc, size, &source)) != NULL)
            return alloc_done(heap, tc, flags | heap->flags, size, slot, source);
    }
    return alloc_generic(heap, flags, size, HTI_GRANULE);
}

HT_API void *ht_heap_alloc_aligned(ht_heap *heap, uint32_t flags, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) || alignment > HTI_ALIGN_MAX) {
        if (hti_heap_ok(heap))
            return alloc_failed(heap, hti_tcache_get(heap), flags, HT_ERROR_INVALID_PARAMETER);
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return NULL;
    }
    return alloc_generic(heap, flags, size, alignment < HTI_GRANULE ? HTI_GRANULE : alignment);
}

/* ---- free ----------------------------------------------------------------------------- */
/* Where a freed slot of ss goes: the calling thread's lookaside list if ss is its own and the
 * list has room, else the LFH (another thread's slot goes back to its owner: caching it here
 * would have two threads writing ss's state words). Only the owner thread changes its lists,
 * so the answer holds until it pushes. */
static inline ht_source lfh_free_source(ht_heap *heap, hti_tcache *tc, const hti_subseg *ss)
{
    unsigned bucket = ss->bucket;
    return tc && bucket < HTI_LOOKASIDE_BUCKETS &&
                   atomic_load_explicit(&((hti_subseg *)ss)->owner, memory_order_relaxed) == tc &&
                   atomic_load_explicit(&heap->lookaside_active, memory_order_relaxed) &&
                   tc->lookaside_depth[bucket] < HT_LOOKASIDE_DEPTH
               ? MEMORY_FROM_LOOKASIDE
               : MEMORY_FROM_LOWFRAG;
}

/* Gives a checked LFH slot to the lookaside list or the LFH, as the Source s says. The push
 * fails only if a trace hook's own heap use (an unwinder's malloc) filled the list after s was
 * decided; the slot then goes to the LFH. Counts nothing. */
static inline void lfh_slot_release(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t index,
                                    ht_source s)
{
    if (s != MEMORY_FROM_LOOKASIDE || !hti_lookaside_push(tc, ss, index))
        hti_lfh_free(heap, tc, ss, index);
}

/* lfh_slot_release, counted: the fast path's free. */
static inline bool lfh_slot_free(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t index,
                                 ht_source s)
{
    lfh_slot_release(heap, tc, ss, index, s);
    hti_count(heap, tc, HT_OP_FREE, s);
    return true;
}

/* Where a checked block goes back to (docs/DESIGN.md, "free"). The slow paths decide it once
 * (release_plan) and then act on it (release), so the Source a FREE logs is the path taken,
 * as on the fast path, which decides with lfh_free_source and acts with lfh_slot_free. */
typedef enum release_tier {
    RELEASE_LOOKASIDE, /* an LFH slot, to the calling thread's lookaside list: LOOKASIDE */
    RELEASE_LFH,       /* an LFH slot, to its subsegment: LOWFRAG */
    RELEASE_BACKEND,   /* to the free lists: MAINPATH, or SLOWPATH if it decommits */
    RELEASE_LARGE,     /* unmapped: SLOWPATH */
} release_tier;

static inline release_tier release_plan(ht_heap *heap, hti_tcache *tc, const hti_owner *o)
{
    if (o->region->kind == HTI_REGION_LFH)
        return lfh_free_source(heap, tc, (hti_subseg *)o->region) == MEMORY_FROM_LOOKASIDE
                   ? RELEASE_LOOKASIDE
                   : RELEASE_LFH;
    return o->region->kind == HTI_REGION_LARGE ? RELEASE_LARGE : RELEASE_BACKEND;
}

/* Releases a checked block as planned and returns the Source of the path taken; counts
 * nothing. When traced is not NULL (a free), its FREE is emitted while tracing, before the
 * block can be reused: ahead of the release, or for a back-end block under the heap lock once
 * coalescing has decided between MAINPATH and SLOWPATH. A back-end release that met damaged
 * neighbours on the way returns INVALID (the block is freed, the damage left in place). */
static ht_source release(ht_heap *heap, hti_tcache *tc, uint32_t flags, const hti_owner *o,
                         release_tier tier, const void *traced)
{
    hti_header *b = o->block;
    ht_source s;
    switch (tier) {
    case RELEASE_LOOKASIDE:
    case RELEASE_LFH:
        s = tier == RELEASE_LOOKASIDE ? MEMORY_FROM_LOOKASIDE : MEMORY_FROM_LOWFRAG;
        if (traced && HT_TRACE_ON())
            hti_trace_free(heap, traced, s);
        lfh_slot_release(heap, tc, (hti_subseg *)o->region, o->index, s);
        return s;
    case RELEASE_LARGE: {
        s = MEMORY_FROM_SLOWPATH;
        if (traced && HT_TRACE_ON())
            hti_trace_free(heap, traced, s);
        remember_large(o->data);
        hti_release release = {0};
        hti_lock(heap, flags);
        hti_large_free(heap, (hti_large *)o->region, &release);
        hti_unlock(heap, flags);
        hti_release_run(&release); /* what the cache let go, unmapped outside the lock */
        return s;
    }
    case RELEASE_BACKEND:
    default:
        hti_lock(heap, flags);
        s = hti_backend_free(heap, b);
        if (HTI_UNLIKELY(hti_damage_seen))
            s = MEMORY_FROM_INVALID;
        if (traced && HT_TRACE_ON())
            hti_trace_free(heap, traced, s);
        hti_unlock(heap, flags);
        return s;
    }
}

/* A back-end block's checks that need the heap lock (held): still sealed and busy, in no free
 * list, its neighbours intact. 0, -EALREADY (free already) or -EFAULT (damage, reported). */
static int backend_free_check_locked(ht_heap *heap, const hti_owner *o, const void *data)
{
    hti_header *b = o->block;
    bool listed = false;
    if (hti_sealed(heap, b) && (b->flags & HTI_BLOCK_BUSY) &&
        !(listed = hti_backend_listed(heap, b)) && hti_backend_neighbors_ok(heap, b))
        return 0;
    if (!(b->flags & HTI_BLOCK_BUSY) || listed)
        return -EALREADY;
    hti_corruption(heap, data, "neighbouring block header damaged (overflow?)");
    return -EFAULT;
}

static bool free_checked(ht_heap *heap, uint32_t flags, void *block)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    flags |= heap->flags;
    hti_tcache *tc = hti_tcache_get(heap);
    if (flags & ~(CALL_FLAGS | CREATE_FLAGS)) {
        hti_count(heap, tc, HT_OP_FREE, MEMORY_FROM_INVALID);
        hti_fail(heap, flags, HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    if (!block)
        return true;
    hti_damage_seen = 0;
    hti_owner o;
    int rc = hti_owner_find(heap, block, &o);
    release_tier tier = rc == 0 ? release_plan(heap, tc, &o) : RELEASE_BACKEND;
    if (rc == 0 && tier == RELEASE_BACKEND) {
        /* Checked and released under one hold of the (recursive) lock, so no other thread can
         * free or reuse the block in between. */
        hti_lock(heap, flags);
        rc = backend_free_check_locked(heap, &o, block);
        if (rc == 0) {
            ht_source s = release(heap, tc, flags, &o, tier, block);
            hti_unlock(heap, flags);
            hti_count(heap, tc, HT_OP_FREE, s);
            if (HTI_UNLIKELY(s == MEMORY_FROM_INVALID)) {
                hti_fail(heap, flags, HT_ERROR_CORRUPTION);
                return false;
            }
            return true;
        }
        hti_unlock(heap, flags);
    }
    if (rc != 0) {
        if (HT_TRACE_ON())
            hti_trace_free(heap, block, MEMORY_FROM_INVALID);
        bad_pointer(heap, flags, HT_OP_FREE, block, rc);
        return false;
    }
    /* An LFH slot or a large block: the FREE is emitted before the release. */
    hti_heap_thread *self = hti_thread_record();
    hti_untraced_begin(self);
    ht_source s = release(heap, tc, flags, &o, tier, block);
    hti_untraced_end(self);
    hti_count(heap, tc, HT_OP_FREE, s);
    return true;
}

/* Every free but the fast path's untraced one. errno is kept, as glibc's free keeps it: the
 * preload library's free relies on it (the fast path's only system calls, a subsegment's
 * release to the back end, keep it themselves). */
HTI_NOINLINE static bool free_slow(ht_heap *heap, uint32_t flags, void *block)
{
    int saved_errno = errno;
    bool ok = free_checked(heap, flags, block);
    errno = saved_errno;
    return ok;
}

/* The fast path while tracing: the FREE is emitted before the slot is pushed or released, so
 * the slot cannot be reused before its event. Out of line, so the untraced path stays as lean
 * as it was (same instructions, same registers). */
HTI_NOINLINE static bool free_fast_traced(ht_heap *heap, hti_tcache *tc, hti_subseg *ss,
                                          size_t index, void *block, ht_source s)
{
    int saved_errno = errno;
    hti_trace_free(heap, block, s);
    errno = saved_errno;
    return lfh_slot_free(heap, tc, ss, index, s);
}

HT_API bool ht_heap_free(ht_heap *heap, uint32_t flags, void *block)
{
    /* Fast path: a busy LFH slot of the heap this thread used last (a subsegment's region names
     * its heap, and a destroyed heap's id no longer matches its caches'), going to the lookaside
     * list or its subsegment. A slot already free or cached, by its state word, takes the slow
     * path, which says why. */
    hti_heap_thread *t = hti_current_thread;
    size_t index;
    hti_subseg *ss;
    if (HTI_LIKELY(flags == 0 && t != NULL && t->last_heap == heap) &&
        (ss = lfh_slot_of(heap, block, &index)) != NULL) {
        hti_tcache *tc = t->last_tcache;
        if (HTI_LIKELY(atomic_load_explicit(&tc->heap_id, memory_order_relaxed) == heap->id)) {
            ht_source s = lfh_free_source(heap, tc, ss);
            hti_untraced_begin(t);
            if (HT_TRACE_ON()) {
                hti_untraced_end(t); /* it saw tracing on: its event comes first */
                return free_fast_traced(heap, tc, ss, index, block, s);
            }
            if (s == MEMORY_FROM_LOOKASIDE)
                hti_lookaside_put(tc, ss, index); /* room seen by lfh_free_source */
            else
                hti_lfh_free(heap, tc, ss, index);
            hti_untraced_end(t);
            hti_count_in(tc, HT_OP_FREE, s);
            return true;
        }
    }
    return free_slow(heap, flags, block);
}

/* ---- realloc -------------------------------------------------------------------------- */
/* Tries to resize in place. 0 and *source; -EFAULT if the block's neighbours are damaged
 * (neither resize nor move it); -EALREADY if the block is in a free list (freed already, its
 * busy header written back); any other negative errno if it cannot be resized in place and is
 * to be moved: -ERANGE (the size belongs to another tier or, for an LFH slot, to a much smaller
 * bucket), -ENOSPC (no room after it), -ENOMEM (no memory to grow it). */
static int resize_in_place(ht_heap *heap, uint32_t flags, hti_owner *o, size_t size,
                           ht_source *source)
{
    hti_header *b = o->block;
    if (o->region->kind == HTI_REGION_LARGE) {
        if (size < HT_LARGE_THRESHOLD)
            return -ERANGE;
        hti_lock(heap, flags);
        int rc = hti_large_resize(heap, (hti_large *)o->region, size,
                                  !(flags & HT_HEAP_REALLOC_IN_PLACE_ONLY));
        hti_unlock(heap, flags);
        *source = MEMORY_FROM_SLOWPATH;
        return rc;
    }
    if (size >= HT_LARGE_THRESHOLD)
        return -ERANGE;
    if (o->region->kind == HTI_REGION_LFH) {
        hti_subseg *ss = (hti_subseg *)o->region;
        size_t usable = ss->slot_size;
        if (size > usable)
            return -ENOSPC;
        if (size <= usable / 2 && !(flags & HT_HEAP_REALLOC_IN_PLACE_ONLY))
            return -ERANGE;
        unsigned waived = hti_slot_get(ss, o->index) & HTI_SLOT_WAIVED;
        unsigned state = waived | (HTI_SLOT_BUSY + (unsigned)(usable - size));
        if (!waived && usable > size) { /* no canary to check while the new one is written */
            hti_slot_set(ss, o->index, state | HTI_SLOT_WAIVED);
            hti_canary_put_kept(o->data, usable, usable - size, heap->canary);
        }
        hti_slot_publish(&ss->state[o->index], state);
        *source = MEMORY_FROM_LOWFRAG;
        return 0;
    }
    hti_lock(heap, flags);
    int rc = -EFAULT; /* corruption around the block: neither resize nor move it */
    if (hti_backend_listed(heap, b))
        rc = -EALREADY; /* freed already, its busy header written back */
    else if (hti_backend_neighbors_ok(heap, b))
        rc = hti_backend_resize(heap, b, size, source);
    hti_unlock(heap, flags);
    return rc;
}

HTI_NOINLINE static void *realloc_failed(ht_heap *heap, hti_tcache *tc, uint32_t flags, void *block,
                                         size_t size, size_t old_size, ht_error error)
{
    if (HT_TRACE_ON())
        hti_trace_realloc(heap, NULL, block, size, old_size, MEMORY_FROM_INVALID);
    hti_count(heap, tc, HT_OP_REALLOC, MEMORY_FROM_INVALID);
    hti_fail(heap, flags, error);
    return NULL;
}

HT_API void *ht_heap_realloc(ht_heap *heap, uint32_t flags, void *block, size_t size)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return NULL;
    }
    flags |= heap->flags;
    hti_tcache *tc = hti_tcache_get(heap);
    hti_damage_seen = 0;
    if (!block || (flags & ~(CALL_FLAGS | CREATE_FLAGS)))
        return realloc_failed(heap, tc, flags, block, size, 0, HT_ERROR_INVALID_PARAMETER);
    hti_owner o;
    int rc = hti_owner_find(heap, block, &o);
    if (rc != 0) {
        if (HT_TRACE_ON())
            hti_trace_realloc(heap, NULL, block, size, 0, MEMORY_FROM_INVALID);
        bad_pointer(heap, flags, HT_OP_REALLOC, block, rc);
        return NULL;
    }
    size_t old_size = requested_of(&o), old_usable = usable_of(&o);
    ht_source source;
    void *result = block;
    int in_place = resize_in_place(heap, flags, &o, size, &source);
    if (in_place == -EALREADY) {
        hti_corruption(heap, block, "realloc of a freed block");
        return realloc_failed(heap, tc, flags, block, size, old_size, HT_ERROR_DOUBLE_FREE);
    }
    if (in_place == -EFAULT) {
        hti_corruption(heap, block, "neighbouring block header damaged (overflow?)");
        return realloc_failed(heap, tc, flags, block, size, old_size, HT_ERROR_CORRUPTION);
    }
    if (in_place != 0) {
        if (flags & HT_HEAP_REALLOC_IN_PLACE_ONLY)
            return realloc_failed(heap, tc, flags, block, size, old_size, HT_ERROR_NOT_IN_PLACE);
        ht_error error = HT_ERROR_NO_MEMORY;
        result = NULL;
        if (o.region->kind == HTI_REGION_LARGE && size >= HT_LARGE_THRESHOLD) {
            hti_release release = {0};
            hti_lock(heap, flags);
            result = hti_large_move(heap, (hti_large *)o.region, size, &release);
            hti_unlock(heap, flags);
            hti_release_run(&release);
            source = MEMORY_FROM_SLOWPATH;
            if (result)
                old_usable = 0, o.region = NULL; /* moved whole: nothing to copy or free */
        }
        if (!result)
            result = alloc_any(heap, tc, flags, size, HTI_GRANULE, &source, &error);
        if (!result)
            return realloc_failed(heap, tc, flags, block, size, old_size, error);
        if (old_usable)
            memcpy(result, block, old_usable < size ? old_usable : size);
    }
    if ((flags & HT_HEAP_ZERO_MEMORY) && size > old_size)
        memset((char *)result + old_size, 0, size - old_size);
    hti_count(heap, tc, HT_OP_REALLOC, source);
    if (HT_TRACE_ON())
        hti_trace_realloc(heap, result, block, size, old_size, source);
    if (result != block && o.region)
        release(heap, tc, flags, &o, release_plan(heap, tc, &o), NULL);
    return result;
}

/* ---- queries -------------------------------------------------------------------------- */
HT_API size_t ht_heap_size(ht_heap *heap, uint32_t flags, const void *block)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return SIZE_MAX;
    }
    hti_owner o;
    int rc = hti_owner_find(heap, block, &o);
    if (rc != 0) {
        bad_pointer(heap, flags, HT_OP_COUNT, block, rc);
        return SIZE_MAX;
    }
    if (o.region->kind == HTI_REGION_LFH) {
        /* the caller may now write up to the usable size: the slot's slack is its own */
        hti_subseg *ss = (hti_subseg *)o.region;
        hti_slot_set(ss, o.index, hti_slot_get(ss, o.index) | HTI_SLOT_WAIVED);
    }
    return usable_of(&o);
}

HT_API size_t ht_heap_requested_size(ht_heap *heap, const void *block)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return SIZE_MAX;
    }
    hti_owner o;
    int rc = hti_owner_find(heap, block, &o);
    if (rc != 0) {
        bad_pointer(heap, 0, HT_OP_COUNT, block, rc);
        return SIZE_MAX;
    }
    return requested_of(&o);
}

HT_API bool ht_heap_validate(ht_heap *heap, uint32_t flags, const void *block)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, flags, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    if (!block) {
        hti_lock(heap, flags);
        bool ok = hti_heap_is_valid(heap);
        hti_unlock(heap, flags);
        if (!ok)
            hti_corruption(heap, NULL, "heap structure check failed");
        return ok;
    }
    hti_owner o;
    int rc = hti_owner_find(heap, block, &o);
    if (rc == 0 && o.region->kind != HTI_REGION_LARGE) {
        hti_lock(heap, flags);
        if (o.region->kind == HTI_REGION_LFH ? !hti_subseg_is_valid(heap, (hti_subseg *)o.region)
                                             : !hti_backend_neighbors_ok(heap, o.block))
            rc = -EFAULT;
        hti_unlock(heap, flags);
    }
    if (rc != 0) {
        bad_pointer(heap, flags, HT_OP_COUNT, block, rc);
        return false;
    }
    return true;
}

HT_API bool ht_heap_lock(ht_heap *heap)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    pthread_mutex_lock(&heap->lock);
    return true;
}

HT_API bool ht_heap_unlock(ht_heap *heap)
{
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    if (pthread_mutex_unlock(&heap->lock) != 0) {
        hti_fail(heap, 0, HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    return true;
}

HT_API bool ht_heap_counters_get(ht_heap *heap, ht_heap_counters *counters)
{
    if (!hti_heap_ok(heap) || !counters) {
        hti_fail(NULL, 0, counters ? HT_ERROR_INVALID_HANDLE : HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    pthread_mutex_lock(&heap->lock);
    hti_counts_sum(heap, counters);
    pthread_mutex_unlock(&heap->lock);
    return true;
}

/* ---- heap information ----------------------------------------------------------------- */
static bool read_u32(const void *info, size_t length, uint32_t *value)
{
    if (!info || length < sizeof(uint32_t))
        return false;
    memcpy(value, info, sizeof *value);
    return true;
}

HT_API bool ht_heap_set_information(ht_heap *heap, ht_heap_info_class info_class, const void *info,
                                    size_t length)
{
    if (info_class == HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION) {
        atomic_store(&hti_terminate_on_corruption, 1);
        return true;
    }
    if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return false;
    }
    uint32_t value;
    if (!read_u32(info, length, &value)) {
        hti_fail(heap, 0, HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    switch (info_class) {
    case HT_HEAP_COMPATIBILITY_INFORMATION:
        if (value > HTI_LFH_ALL || (value != HTI_LFH_OFF && !heap->has_lfh))
            break;
        atomic_store(&heap->lfh_mode, (int)value);
        for (unsigned b = 0; b < HTI_LFH_BUCKETS; b++) {
            bool active = value == HTI_LFH_ALL ||
                          (value == HTI_LFH_HEURISTIC &&
                           atomic_load(&heap->bucket_count[b]) > HT_LFH_ACTIVATION_THRESHOLD);
            atomic_store_explicit(&heap->bucket_active[b], active, memory_order_relaxed);
        }
        atomic_store(&heap->lookaside_active,
                     value != HTI_LFH_OFF && atomic_load(&heap->lookaside_on));
        if (value == HTI_LFH_OFF)
            hti_lookaside_flush_current(heap);
        return true;
    case HT_HEAP_LOOKASIDE_INFORMATION:
        if (value > 1 || (value && !heap->has_lfh))
            break;
        atomic_store(&heap->lookaside_on, (int)value);
        atomic_store(&heap->lookaside_active,
                     value != 0 && atomic_load(&heap->lfh_mode) != HTI_LFH_OFF);
        if (!value)
            hti_lookaside_flush_current(heap);
        return true;
    default: break;
    }
    hti_fail(heap, 0, HT_ERROR_INVALID_PARAMETER);
    return false;
}

HT_API bool ht_heap_query_information(ht_heap *heap, ht_heap_info_class info_class, void *info,
                                      size_t length, size_t *return_length)
{
    uint32_t value;
    if (return_length)
        *return_length = sizeof value;
    if (info_class == HT_HEAP_TERMINATION_ON_CORRUPTION_STATE) {
        value = (uint32_t)atomic_load(&hti_terminate_on_corruption);
    } else if (!hti_heap_ok(heap)) {
        hti_fail(NULL, 0, HT_ERROR_INVALID_HANDLE);
        return false;
    } else if (info_class == HT_HEAP_COMPATIBILITY_INFORMATION) {
        value = (uint32_t)atomic_load(&heap->lfh_mode);
    } else if (info_class == HT_HEAP_LOOKASIDE_INFORMATION) {
        value = (uint32_t)atomic_load(&heap->lookaside_on);
    } else {
        hti_fail(heap, 0, HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    if (!info || length < sizeof value) {
        hti_fail(heap, 0, HT_ERROR_INVALID_PARAMETER);
        return false;
    }
    memcpy(info, &value, sizeof value);
    return true;
}
