/* heap_internal.h — the heap manager's structures and the contracts between its files.
 *
 * Memory comes from the OS as 64 KiB-aligned regions: segments (reserved, committed as they
 * fill, tiled by back-end blocks) and large blocks (one mapping each). A process-wide page
 * map finds the region of any address in two loads, so every pointer handed to free/realloc
 * is checked against its region before its header is read. Every block, whatever its tier,
 * has a 16-byte header whose check value mixes the header's fields, its address and the heap
 * cookie: an overflow into the next header, a stray pointer or a stale copy fails the check.
 *
 * Tiers: lookaside lists and LFH state live in per-thread, per-heap caches (hti_tcache);
 * the back end and large blocks are under the heap lock. */
#ifndef HEAPTRAIL_HEAP_INTERNAL_H
#define HEAPTRAIL_HEAP_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/compiler.h"
#include "heaptrail/heap.h"

#define HTI_INLINE static inline __attribute__((always_inline))
#define HTI_INTERNAL __attribute__((visibility("hidden")))

/* ---- sizes ---------------------------------------------------------------------------- */
#define HTI_GRANULE 16u                   /* block alignment and size unit */
#define HTI_HEADER 16u                    /* every block's header */
#define HTI_MIN_BLOCK 32u                 /* header + two free-list links */
#define HTI_REGION_ALIGN (64u << 10)      /* regions start on 64 KiB boundaries (page map unit) */
#define HTI_COMMIT_MIN (64u << 10)        /* commit at least this much at a time */
#define HTI_SEGMENT_MIN (4u << 20)        /* first segment of a growable heap */
#define HTI_SEGMENT_MAX (256u << 20)      /* segments double up to this */
#define HTI_DECOMMIT_THRESHOLD (1u << 20) /* free tail beyond this is decommitted ... */
#define HTI_DECOMMIT_KEEP (256u << 10)    /* ... down to this much */
/* The largest heap or block size accepted (64 TiB): half of x86-64's 47-bit user address
 * space, so a size that passes, plus its alignment padding, header and page rounding, can
 * neither overflow a size_t nor ask the kernel for more than a process could ever map. */
#define HTI_SIZE_LIMIT ((size_t)1 << 46)
/* The largest alignment ht_heap_alloc_aligned accepts (1 GiB, a huge page). */
#define HTI_ALIGN_MAX ((size_t)1 << 30)
/* Structures that threads write concurrently are laid out in lines of this size (x86-64). */
#define HTI_CACHE_LINE 64u

static inline size_t hti_align_up(size_t n, size_t a)
{
    return (n + a - 1) & ~(a - 1);
}
static inline size_t hti_align_down(size_t n, size_t a)
{
    return n & ~(a - 1);
}

/* ---- errors (error.c) ----------------------------------------------------------------- */
HTI_INTERNAL void hti_fail(ht_heap *heap, uint32_t flags, ht_error error);
/* Records corruption at address: sets the last error and the calling thread's damage flag,
 * and aborts with one line if termination is on. Never allocates. */
HTI_INTERNAL void hti_corruption(ht_heap *heap, const void *address, const char *what);
/* Set by hti_corruption; the public call that saw damage on the way fails with
 * HT_ERROR_CORRUPTION (checked on slow paths only, cleared when a call starts). */
HTI_INTERNAL extern __thread int hti_damage_seen __attribute__((tls_model("initial-exec")));
extern HTI_INTERNAL atomic_int hti_terminate_on_corruption;

/* ---- OS layer (os.c) ------------------------------------------------------------------ */
HTI_INTERNAL size_t hti_page_size(void);
/* Reserves size bytes aligned to align, inaccessible. NULL on failure. */
HTI_INTERNAL void *hti_os_reserve(size_t size, size_t align);
/* Reserves and commits (read/write) in one step, aligned. NULL on failure. */
HTI_INTERNAL void *hti_os_map(size_t size, size_t align);
/* 0 or -errno. */
HTI_INTERNAL int hti_os_commit(void *address, size_t size, bool executable);
HTI_INTERNAL int hti_os_decommit(void *address, size_t size);
HTI_INTERNAL void hti_os_release(void *address, size_t size);
/* Moves a mapping's pages to target (a reservation of new_size, replaced), resizing it. */
HTI_INTERNAL void *hti_os_move(void *address, size_t old_size, size_t new_size, void *target);
/* Grows or shrinks a mapping without moving it. 0 or -errno. */
HTI_INTERNAL int hti_os_resize_in_place(void *address, size_t old_size, size_t new_size);

/* ---- regions and the page map (pagemap.c) --------------------------------------------- */
enum { HTI_REGION_SEGMENT = 1, HTI_REGION_LARGE = 2 };
#define HTI_REGION_MAGIC 0x48545247u /* "HTRG" */

typedef struct hti_region {
    uint32_t magic;
    uint32_t kind;
    ht_heap *heap;
    char *base;      /* start of the mapping (this struct) */
    size_t reserved; /* bytes of address space */
} hti_region;

/* Registers [base, base+size) as belonging to region. 0 or -ENOMEM. */
HTI_INTERNAL int hti_pagemap_set(const void *base, size_t size, hti_region *region);
HTI_INTERNAL void hti_pagemap_clear(const void *base, size_t size);
#define HTI_PAGEMAP_SHIFT 16
#define HTI_PAGEMAP_LEAF_BITS 16
#define HTI_PAGEMAP_TOP_BITS 16
typedef _Atomic(hti_region *) hti_pagemap_leaf;
HTI_INTERNAL extern _Atomic(hti_pagemap_leaf *) hti_pagemap_top[1u << HTI_PAGEMAP_TOP_BITS];
/* The region containing address, or NULL. Two loads; safe on any address. */
static inline hti_region *hti_pagemap_lookup(const void *address)
{
    uintptr_t g = (uintptr_t)address >> HTI_PAGEMAP_SHIFT;
    size_t index = g >> HTI_PAGEMAP_LEAF_BITS;
    if (HTI_UNLIKELY(index >= (1u << HTI_PAGEMAP_TOP_BITS)))
        return NULL;
    hti_pagemap_leaf *leaf = atomic_load_explicit(&hti_pagemap_top[index], memory_order_acquire);
    if (HTI_UNLIKELY(!leaf))
        return NULL;
    return atomic_load_explicit(&leaf[g & ((1u << HTI_PAGEMAP_LEAF_BITS) - 1)],
                                memory_order_acquire);
}

/* ---- blocks --------------------------------------------------------------------------- */
enum {
    HTI_BLOCK_BUSY = 0x01,      /* handed to a caller */
    HTI_BLOCK_LFH = 0x02,       /* a slot of an LFH subsegment */
    HTI_BLOCK_SUBSEG = 0x04,    /* a back-end block that holds an LFH subsegment */
    HTI_BLOCK_LARGE = 0x08,     /* a large block, mapped on its own */
    HTI_BLOCK_LOOKASIDE = 0x10, /* an LFH slot cached in a thread's lookaside list */
};

/* The HTI_HEADER bytes before every block's data, whatever its tier (hti_block_of finds it from
 * a data pointer; the block itself is header and data).
 * Back end: size = block granules, prev_size = previous block's granules (0 for the first).
 * LFH slot: size = slot granules, prev_size = granules from the subsegment start, tag = bucket.
 * unused = bytes of the data the caller did not ask for. */
typedef struct hti_header {
    uint32_t size;
    uint32_t prev_size;
    uint16_t unused;
    uint8_t flags;
    uint8_t tag;
    uint32_t check;
} hti_header;
_Static_assert(sizeof(hti_header) == HTI_HEADER, "block header is 16 bytes");
_Static_assert(offsetof(hti_header, tag) == offsetof(hti_header, flags) + 1 &&
                   offsetof(hti_header, flags) % 2 == 0,
               "flags and tag read as one little-endian 16-bit word");
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian headers");

/* A free back-end block's list links, encoded (hti_link_encode): read them through
 * hti_free_next/hti_free_prev. */
typedef struct hti_free_links {
    uintptr_t next, prev;
} hti_free_links;

HTI_INLINE void *hti_block_data(const hti_header *b)
{
    return (char *)b + HTI_HEADER;
}
HTI_INLINE hti_header *hti_block_of(const void *data)
{
    return (hti_header *)((char *)data - HTI_HEADER);
}
HTI_INLINE size_t hti_block_bytes(const hti_header *b)
{
    return (size_t)b->size * HTI_GRANULE;
}
HTI_INLINE hti_free_links *hti_links(hti_header *b)
{
    return (hti_free_links *)hti_block_data(b);
}

/* ---- LFH (lfh.c) ---------------------------------------------------------------------- */
#define HTI_LFH_BUCKETS 112          /* 7 ranges of 16 buckets */
#define HTI_LOOKASIDE_BUCKETS 48     /* the buckets up to 1 KiB */
#define HTI_SUBSEG_MAGIC 0x4854534Cu /* "HTSL" */

typedef struct hti_tcache hti_tcache;

typedef struct hti_subseg {
    /* Read on every operation, written almost never: a cache line of its own, so that the
     * owner's and other threads' writes below do not evict it. */
    uint32_t magic;
    uint16_t bucket;
    uint16_t abandoned;   /* on the heap's abandoned list, no owner */
    uint32_t slot_size;   /* bytes per slot, header included */
    uint32_t capacity;    /* slots that fit */
    uint64_t index_magic; /* ceil(2^34 / slot_size): slot index by multiply (hti_slot_index) */
    char *slots;          /* first slot */
    ht_heap *heap;
    _Atomic(hti_tcache *) owner;
    struct hti_subseg *next, *prev; /* owner's per-bucket list, or the heap's abandoned list */
    /* The owner's. */
    _Alignas(HTI_CACHE_LINE) hti_header *local_free; /* owner's free slots (links encoded) */
    uint32_t used;   /* slots out (owner's count; remote frees wait in thread_free) */
    uint32_t carved; /* slots carved from the bump area so far */
    /* Other threads'. */
    /* slots freed by other threads (links encoded) */
    _Alignas(HTI_CACHE_LINE) _Atomic(hti_header *) thread_free;
    /* One byte per slot, outside the slots: HTI_SLOT_FREE while the slot is in one of this
     * subsegment's lists (or never carved), HTI_SLOT_BUSY while it is out (held by a caller or
     * cached in a lookaside list). Frees back to the subsegment check it, not the slot's
     * header, which the program can overwrite (a header saved and written back passes its
     * seal). Written only where the subsegment's record is touched anyway (LFH pops and frees),
     * never by lookaside pushes and pops. */
    _Alignas(HTI_CACHE_LINE) _Atomic uint8_t state[];
} hti_subseg;

enum { HTI_SLOT_FREE = 0, HTI_SLOT_BUSY = 1 };
#define HTI_SLOT_INDEX_SHIFT                                                                       \
    34 /* exact for offsets < 2^18 and slots < 2^16 (Granlund-Montgomery) */

HTI_INLINE size_t hti_slot_index(const hti_subseg *ss, const hti_header *slot)
{
    return (size_t)(((uint64_t)((const char *)slot - ss->slots) * ss->index_magic) >>
                    HTI_SLOT_INDEX_SHIFT);
}
/* The subsegment of a slot whose header is sealed. */
HTI_INLINE hti_subseg *hti_subseg_of(const hti_header *slot)
{
    return (hti_subseg *)((char *)slot - (size_t)slot->prev_size * HTI_GRANULE);
}
HTI_INLINE _Atomic uint8_t *hti_slot_state(hti_subseg *ss, const hti_header *slot)
{
    return &ss->state[hti_slot_index(ss, slot)];
}
/* The slot (its header sealed) is out of its subsegment's lists. */
HTI_INLINE bool hti_slot_busy(const hti_header *slot)
{
    return atomic_load_explicit(hti_slot_state(hti_subseg_of(slot), slot), memory_order_relaxed) ==
           HTI_SLOT_BUSY;
}

/* Filled once by hti_lfh_init_tables (from the global init, before any heap exists). */
HTI_INTERNAL extern uint8_t hti_bucket_of_granules_table[HT_LFH_MAX_BLOCK / HTI_GRANULE + 1];
HTI_INTERNAL extern uint32_t hti_bucket_size_table[HTI_LFH_BUCKETS];
HTI_INTERNAL void hti_lfh_init_tables(void);
/* Bucket of a request of size bytes (0..HT_LFH_MAX_BLOCK). */
HTI_INLINE unsigned hti_bucket_of(size_t size)
{
    return hti_bucket_of_granules_table[(size + HTI_GRANULE - 1) / HTI_GRANULE];
}

/* ---- per-thread caches (thread.c) ----------------------------------------------------- */
#define HTI_CACHED_HINTS 2048
/* A lookaside list is a stack in the thread's cache, not a chain through the freed slots: no
 * link lives where a use after free can reach it, and a pop reads nothing from the slot. */
typedef struct hti_lookaside {
    uint32_t depth;
    hti_header *slot[HT_LOOKASIDE_DEPTH];
} hti_lookaside;

struct hti_tcache {
    ht_heap *heap;
    _Atomic uint64_t heap_id; /* heap->id when attached; 0 once the heap is destroyed */
    struct hti_heap_thread *thread;
    hti_lookaside lookaside[HTI_LOOKASIDE_BUCKETS];
    hti_subseg *current[HTI_LFH_BUCKETS]; /* the subsegment allocations come from */
    hti_subseg *owned[HTI_LFH_BUCKETS];   /* every subsegment owned, per bucket */
    _Atomic uint64_t counts[HT_OP_COUNT][HT_SOURCE_COUNT];
    hti_tcache *heap_next, *heap_prev; /* heap's list, under the heap lock */
    hti_tcache *thread_next;           /* thread's list */
    int damaged; /* a list of this cache was found damaged: the current call fails */
    /* How many cached slots hash to each entry (hti_cached_index): a slot whose entry is 0 is
     * surely not cached here, so a free checks its lookaside list for a double free in one
     * load, and scans the list only on a hit. */
    uint16_t cached_hint[HTI_CACHED_HINTS];
};

#define HTI_THREAD_SLOTS 4
HTI_INLINE unsigned hti_cached_index(const hti_header *slot)
{
    uintptr_t a = (uintptr_t)slot >> 4;
    return (unsigned)(a ^ (a >> 11) ^ (a >> 22)) & (HTI_CACHED_HINTS - 1);
}
/* A thread as the heap sees it: its caches, one per heap it used, and the last one used (the
 * fast paths' one-compare lookup). Not the tracer's per-thread buffer record. */
typedef struct hti_heap_thread {
    ht_heap *last_heap;
    hti_tcache *last_tcache;
    hti_tcache *tcaches; /* all of this thread's caches */
    pid_t tid;
    int exiting;
    /* Odd while the thread is inside an operation that tests the trace switch before its effect
     * (hti_untraced_begin); written by the thread only, read by a session's start. Last, and
     * not cleared when the record is reused (a reader may look at any record at any time). */
    _Atomic uint32_t testing;
} hti_heap_thread;

/* Brackets an operation that tests the trace switch (HT_TRACE_ON) before its effect, so that
 * its event comes first: a free of an LFH slot or a large block, a heap's destruction. A session
 * starting switches tracing on, issues a barrier on every thread (membarrier), then waits for
 * each record it sees odd to move on (hti_heap_quiesce), so no operation that read the switch as
 * off changes a heap after the rundown's walk (FORMAT.md §13). The thread's own plain stores;
 * the barrier gives the order across threads, so the fast path pays two stores, no fence. */
HTI_INLINE void hti_untraced_begin(hti_heap_thread *t)
{
    if (HTI_LIKELY(t != NULL)) {
        atomic_store_explicit(&t->testing,
                              atomic_load_explicit(&t->testing, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst); /* before the test of the switch */
    }
}
HTI_INLINE void hti_untraced_end(hti_heap_thread *t)
{
    if (HTI_LIKELY(t != NULL))
        atomic_store_explicit(&t->testing,
                              atomic_load_explicit(&t->testing, memory_order_relaxed) + 1,
                              memory_order_release); /* after the effect */
}
/* The calling thread's record, created if it has none; NULL only when memory is short. */
HTI_INTERNAL hti_heap_thread *hti_thread_record(void);
/* Waits until every operation bracketed by hti_untraced_begin/_end that was inside its bracket
 * when the caller's barrier ran has left it, at most limit_ns; the calling thread's own record
 * is not waited for. 0, or -ETIMEDOUT with *late (when late is not NULL) set to the records
 * still inside. */
HTI_INTERNAL int hti_heap_quiesce(uint64_t limit_ns, unsigned *late);

/* The calling thread's cache for heap, creating it if needed; NULL if the heap has no front
 * end or memory is short. */
HTI_INTERNAL hti_tcache *hti_tcache_get_slow(ht_heap *heap);
HTI_INTERNAL extern __thread hti_heap_thread *hti_current_thread
    __attribute__((tls_model("initial-exec")));
/* Detaches every cache of heap (heap lock held): their owners drop them later. */
HTI_INTERNAL void hti_tcache_detach_all(ht_heap *heap);
/* Counts into the heap-wide counters (heaps without front end, threads without a cache). */
HTI_INTERNAL void hti_count_slow(ht_heap *heap, ht_op op, ht_source source);
/* Heap-wide plus every attached cache (lock held). */
HTI_INTERNAL void hti_counts_sum(ht_heap *heap, ht_heap_counters *out);
HTI_INTERNAL void hti_lookaside_flush_current(ht_heap *heap);
HTI_INTERNAL void hti_thread_init_key(void);
HTI_INTERNAL void hti_thread_after_fork_child(void);
HTI_INTERNAL void hti_pools_lock(void);
HTI_INTERNAL void hti_pools_unlock(void);
HTI_INTERNAL void hti_pools_after_fork(void);

/* ---- the heap ------------------------------------------------------------------------- */
#define HTI_HEAP_MAGIC 0x48544850u /* "HTHP" */
/* The LFH's mode: the values of HT_HEAP_COMPATIBILITY_INFORMATION (SPEC.md). */
typedef enum hti_lfh_mode {
    HTI_LFH_OFF = 0,       /* no bucket is served by the LFH */
    HTI_LFH_HEURISTIC = 1, /* a bucket activates after HT_LFH_ACTIVATION_THRESHOLD allocations */
    HTI_LFH_ALL = 2,       /* every bucket is active */
} hti_lfh_mode;
#define HTI_HEAP_DEAD 0x44454144u /* "DEAD" */
#define HTI_BINS 384
#define HTI_LARGE_CACHE 4
#define HTI_LARGE_CACHE_MAX (64u << 20) /* bigger mappings go straight back */
#define HTI_BIN_WORDS (HTI_BINS / 64)

typedef struct hti_segment {
    hti_region region;
    size_t committed; /* bytes from base that are committed */
    char *first;      /* first block */
    hti_header *last; /* last block (ends at base + committed) */
    struct hti_segment *next, *prev;
} hti_segment;

typedef struct hti_large {
    hti_region region;
    size_t requested;
    void *data;
    struct hti_large *next, *prev;
} hti_large;

struct ht_heap {
    uint32_t magic;
    uint32_t flags;              /* creation flags */
    uint64_t id;                 /* unique per created heap; tcaches compare it */
    uint64_t cookie;             /* mixed into every header check */
    uint64_t link_key[2];        /* free-list link encoding (hti_link_encode) */
    unsigned link_rotate;        /* 1..63 */
    int has_lfh;                 /* growable and serialized */
    atomic_int lfh_mode;         /* hti_lfh_mode */
    atomic_int lookaside_on;     /* the information switch */
    atomic_int lookaside_active; /* lookaside_on and the LFH not switched off */
    size_t maximum;              /* 0 = growable */
    size_t initial;
    pthread_mutex_t lock; /* back end, large blocks, lists; recursive */
    /* back end */
    hti_segment *segments;
    size_t next_segment_size;
    size_t reserved, committed;
    uint64_t bitmap[HTI_BIN_WORDS];
    hti_header *bins[HTI_BINS];
    hti_large *large;
    hti_large *large_cache[HTI_LARGE_CACHE]; /* freed mappings kept for reuse */
    /* LFH */
    atomic_uint bucket_count[HTI_LFH_BUCKETS];
    atomic_uchar bucket_active[HTI_LFH_BUCKETS];
    hti_subseg *abandoned[HTI_LFH_BUCKETS];
    /* threads */
    hti_tcache *tcaches;
    _Atomic uint64_t counts[HT_OP_COUNT][HT_SOURCE_COUNT]; /* no-front-end heaps, retired threads */
    struct ht_heap *list_next, *list_prev;                 /* process heap list */
    struct ht_heap *free_next;                             /* descriptor pool */
};

HTI_INLINE bool hti_heap_ok(const ht_heap *heap)
{
    return heap != NULL && heap->magic == HTI_HEAP_MAGIC;
}
HTI_INTERNAL void hti_lock(ht_heap *heap, uint32_t flags);
HTI_INTERNAL void hti_unlock(ht_heap *heap, uint32_t flags);

/* Header check value of the fields in h for a header at address at. */
HTI_INLINE uint32_t hti_check_value(const ht_heap *heap, uintptr_t at, const hti_header *h)
{
    uint64_t x = (uint64_t)at ^ heap->cookie;
    x ^= ((uint64_t)h->size << 32) | h->prev_size;
    x = (x ^ (((uint64_t)h->unused << 16) | ((uint64_t)h->flags << 8) | h->tag)) *
        0x9E3779B97F4A7C15ull;
    return (uint32_t)(x >> 32) ^ (uint32_t)x;
}
HTI_INLINE uint32_t hti_check_of(const ht_heap *heap, const hti_header *b)
{
    return hti_check_value(heap, (uintptr_t)b, b);
}
HTI_INLINE void hti_seal(const ht_heap *heap, hti_header *b)
{
    b->check = hti_check_of(heap, b);
}
/* Rewrites an LFH slot's flags and unused bytes, sealed, in one 16-byte store: slots change
 * without a lock, so validate, walk and a fork child must never see half a header. */
HTI_INLINE void hti_slot_update(const ht_heap *heap, hti_header *b, uint8_t flags, uint16_t unused)
{
    hti_header h = *b;
    h.flags = flags;
    h.unused = unused;
    h.check = hti_check_value(heap, (uintptr_t)b, &h);
#if defined(__SSE2__)
    _mm_store_si128((__m128i *)(void *)b, _mm_loadu_si128((const __m128i *)(const void *)&h));
#else
    *b = h;
#endif
}
HTI_INLINE bool hti_sealed(const ht_heap *heap, const hti_header *b)
{
    return b->check == hti_check_of(heap, b);
}

/* ---- free-list links ------------------------------------------------------------------ */
/* Free-list links live in freed blocks, where a use-after-free write reaches them. They are
 * stored encoded with the heap's secret keys and the link's own address (glibc's safe-linking,
 * mimalloc's encoded free lists): a forged, copied or scrubbed value decodes to an address
 * that fails the checks made before anything is read through it. */
_Static_assert(sizeof(uintptr_t) == 8, "links are encoded as 64-bit words");
HTI_INLINE uintptr_t hti_link_encode(const ht_heap *heap, const void *at, const void *p)
{
    uintptr_t x = (uintptr_t)p ^ (uintptr_t)at ^ heap->link_key[0];
    unsigned r = heap->link_rotate;
    return ((x << r) | (x >> (64 - r))) + heap->link_key[1];
}
HTI_INLINE void *hti_link_decode(const ht_heap *heap, const void *at, uintptr_t v)
{
    uintptr_t x = v - heap->link_key[1];
    unsigned r = heap->link_rotate;
    x = (x >> r) | (x << (64 - r));
    return (void *)(x ^ (uintptr_t)at ^ heap->link_key[0]);
}
/* A free LFH slot's link (its subsegment's local and remote lists): the first word of its data. */
HTI_INLINE hti_header *hti_slot_next(const ht_heap *heap, hti_header *slot)
{
    uintptr_t *at = (uintptr_t *)hti_block_data(slot);
    return (hti_header *)hti_link_decode(heap, at, *at);
}
HTI_INLINE void hti_slot_set_next(const ht_heap *heap, hti_header *slot, const hti_header *next)
{
    uintptr_t *at = (uintptr_t *)hti_block_data(slot);
    *at = hti_link_encode(heap, at, next);
}
HTI_INLINE hti_header *hti_free_next(const ht_heap *heap, hti_header *b)
{
    return (hti_header *)hti_link_decode(heap, &hti_links(b)->next, hti_links(b)->next);
}
HTI_INLINE hti_header *hti_free_prev(const ht_heap *heap, hti_header *b)
{
    return (hti_header *)hti_link_decode(heap, &hti_links(b)->prev, hti_links(b)->prev);
}
HTI_INLINE void hti_free_set_next(const ht_heap *heap, hti_header *b, const hti_header *next)
{
    hti_links(b)->next = hti_link_encode(heap, &hti_links(b)->next, next);
}
HTI_INLINE void hti_free_set_prev(const ht_heap *heap, hti_header *b, const hti_header *prev)
{
    hti_links(b)->prev = hti_link_encode(heap, &hti_links(b)->prev, prev);
}

/* True when p may be read as a block header of heap's segments: 16-byte aligned, in a segment
 * of this heap, inside its committed blocks. Safe on any address (the page map first). */
HTI_INLINE bool hti_in_segment(const ht_heap *heap, const void *p)
{
    if ((uintptr_t)p & (HTI_GRANULE - 1))
        return false;
    hti_region *r = hti_pagemap_lookup(p);
    if (!r || r->heap != heap || r->kind != HTI_REGION_SEGMENT)
        return false;
    const hti_segment *seg = (const hti_segment *)r;
    return (const char *)p >= seg->first &&
           (const char *)p + HTI_MIN_BLOCK <= seg->region.base + seg->committed;
}

/* The result of classifying a pointer handed to free/realloc/size. */
typedef struct hti_owner {
    hti_region *region;
    hti_header *block;
} hti_owner;
/* Finds the block of data in heap. 0, or -EINVAL (not this heap's), -EFAULT (corrupt header),
 * -EALREADY (the block is free). Reads nothing outside the heap's committed memory. */
HTI_INTERNAL int hti_owner_find(ht_heap *heap, const void *data, hti_owner *owner);

/* ---- back end (backend.c, segment.c) -------------------------------------------------- */
/* Allocates a block of at least need bytes of data (lock held). Sets *source to MAINPATH or
 * SLOWPATH. NULL with *error set on failure. */
HTI_INTERNAL hti_header *hti_backend_alloc(ht_heap *heap, size_t need, size_t align,
                                           ht_source *source, ht_error *error);
/* Frees a busy back-end block (lock held); returns MAINPATH or SLOWPATH. */
HTI_INTERNAL ht_source hti_backend_free(ht_heap *heap, hti_header *b);
/* The neighbours' headers are intact and agree with b (lock held). */
HTI_INTERNAL bool hti_backend_neighbors_ok(ht_heap *heap, const hti_header *b);
/* A busy block that still sits in a free list (lock held). */
HTI_INTERNAL bool hti_backend_listed(ht_heap *heap, hti_header *b);
/* Resizes busy b in place to need data bytes (lock held). 0 and *source (MAINPATH, or SLOWPATH
 * when pages were committed); -ERANGE if need exceeds what a header can describe; -ENOSPC if
 * there is no room after b (a busy successor, too little reserve, or a damaged free successor,
 * then isolated and reported); -ENOMEM if the pages cannot be committed. b is unchanged on
 * failure. */
HTI_INTERNAL int hti_backend_resize(ht_heap *heap, hti_header *b, size_t need, ht_source *source);
HTI_INTERNAL hti_segment *hti_segment_of(const hti_header *b);
/* Adds a segment with room for need bytes (lock held). 0; -ENOSPC for a fixed-size heap;
 * -ENOMEM if the OS or the page map has no memory. */
HTI_INTERNAL int hti_segment_add(ht_heap *heap, size_t need);
/* Commits pages at seg's end until its last free block holds need bytes (lock held). 0, or
 * -ENOMEM if the reserve is too small or the pages cannot be committed. */
HTI_INTERNAL int hti_segment_commit(ht_heap *heap, hti_segment *seg, size_t need);
HTI_INTERNAL void hti_segment_trim(ht_heap *heap, hti_segment *seg, bool all);
HTI_INTERNAL void hti_segment_release(ht_heap *heap, hti_segment *seg);
HTI_INTERNAL void hti_freelist_insert(ht_heap *heap, hti_header *b);
/* Unlinks a free block after checking its links (safe unlink: both neighbours are sealed free
 * blocks of this heap that point back at b). 0, or -EFAULT with nothing changed. */
HTI_INTERNAL int hti_freelist_remove(ht_heap *heap, hti_header *b);
/* Takes a damaged free block out of use for good (marked busy, never merged or listed) and
 * reports the corruption (lock held). */
HTI_INTERNAL void hti_block_isolate(ht_heap *heap, hti_header *b);
/* A free block of this heap whose header is sealed. */
HTI_INTERNAL bool hti_free_block_ok(const ht_heap *heap, hti_header *b);
HTI_INTERNAL hti_header *hti_block_next(const hti_segment *seg, const hti_header *b);
HTI_INTERNAL hti_header *hti_block_prev(const hti_segment *seg, const hti_header *b);
/* Largest free block, in data bytes. */
HTI_INTERNAL size_t hti_backend_largest_free(ht_heap *heap);

/* ---- large blocks (large.c) ----------------------------------------------------------- */
HTI_INTERNAL void *hti_large_alloc(ht_heap *heap, size_t size, size_t align, ht_error *error);
HTI_INTERNAL void hti_large_free(ht_heap *heap, hti_large *large);
/* Moves the block's pages to a fresh mapping of the new size without copying (mremap);
 * returns the new data address, or NULL. */
HTI_INTERNAL void *hti_large_move(ht_heap *heap, hti_large *large, size_t size);
/* Unmaps every cached mapping (lock held). */
HTI_INTERNAL void hti_large_cache_drop(ht_heap *heap);
/* Resizes the mapping in place (lock held). 0; -ERANGE beyond the heap's size limit; -ENOMEM if
 * the mapping cannot change where it is or the page map has no memory (unchanged then). */
HTI_INTERNAL int hti_large_resize(ht_heap *heap, hti_large *large, size_t size);
HTI_INTERNAL size_t hti_large_usable(const hti_large *large);

/* ---- LFH and lookaside (lfh.c, lookaside.c) ------------------------------------------- */
/* Allocates a slot of bucket from the calling thread's subsegments. NULL if memory is short. */
HTI_INTERNAL hti_header *hti_lfh_alloc(ht_heap *heap, hti_tcache *tc, unsigned bucket);
/* Frees an LFH slot (busy in its state byte, checked by the caller) from any thread (tc may
 * be NULL), or a slot coming back from a lookaside list. */
HTI_INTERNAL void hti_lfh_free(ht_heap *heap, hti_tcache *tc, hti_header *slot);
/* Thread exit or heap detach: give back lookaside blocks and subsegments (lock held). */
HTI_INTERNAL void hti_lfh_thread_done(ht_heap *heap, hti_tcache *tc);
/* Collects remote frees of abandoned subsegments and releases the empty ones (lock held). */
HTI_INTERNAL void hti_lfh_reclaim_abandoned(ht_heap *heap);
HTI_INTERNAL bool hti_subseg_is_valid(const ht_heap *heap, const hti_subseg *ss);
/* A write past the end of a slot lands in the next slot's header: checked by the frees that
 * take the slow path (validate checks every header's seal). Only its flags and bucket bytes are compared here (they
 * keep their LFH bit and bucket through every rewrite, so a concurrent update cannot make a
 * false alarm); any damage fails the header's seal when that slot is used next. */
HTI_INLINE bool hti_next_slot_ok(const hti_subseg *ss, const hti_header *slot)
{
    const hti_header *next = (const hti_header *)((const char *)slot + ss->slot_size);
    if ((const char *)next >=
        ss->slots + (size_t)__atomic_load_n(&ss->carved, __ATOMIC_ACQUIRE) * ss->slot_size)
        return true;
    uint16_t flags_tag = __atomic_load_n((const uint16_t *)(const void *)&next->flags,
                                         __ATOMIC_RELAXED);
    return (flags_tag & (0xff00u | HTI_BLOCK_LFH | HTI_BLOCK_SUBSEG | HTI_BLOCK_LARGE)) ==
           (((unsigned)ss->bucket << 8) | HTI_BLOCK_LFH);
}

/* Whole-heap validation (walk.c). */
HTI_INTERNAL bool hti_heap_is_valid(ht_heap *heap);
/* What the tracer reads heaps through (walk.c; trace/rundown.h), registered by heap.c. */
struct hti_rundown_provider;
HTI_INTERNAL extern const struct hti_rundown_provider hti_heap_rundown_provider;

/* ---- fork (heap.c) -------------------------------------------------------------------- */
HTI_INTERNAL void hti_global_lock(void);
HTI_INTERNAL void hti_global_unlock(void);

/* ---- fast-path helpers ---------------------------------------------------------------- */
HTI_INLINE hti_tcache *hti_tcache_get(ht_heap *heap)
{
    hti_heap_thread *t = hti_current_thread;
    if (HTI_LIKELY(t && t->last_heap == heap &&
                   atomic_load_explicit(&t->last_tcache->heap_id, memory_order_relaxed) ==
                       heap->id))
        return t->last_tcache;
    return hti_tcache_get_slow(heap);
}
HTI_INLINE void hti_count(ht_heap *heap, hti_tcache *tc, ht_op op, ht_source source)
{
    if (HTI_LIKELY(tc != NULL)) {
        uint64_t n = atomic_load_explicit(&tc->counts[op][source], memory_order_relaxed);
        atomic_store_explicit(&tc->counts[op][source], n + 1, memory_order_relaxed);
    } else {
        hti_count_slow(heap, op, source);
    }
}

/* ---- lookaside lists (lookaside.c) ---------------------------------------------------- */
/* Pops the thread's most recently cached slot of bucket, or NULL. The stack lives in
 * heaptrail's own memory; the slot's header, which an overflow may have reached while it was
 * cached, is checked by the caller (front_alloc). */
HTI_INLINE hti_header *hti_lookaside_pop(hti_tcache *tc, unsigned bucket)
{
    hti_lookaside *l = &tc->lookaside[bucket];
    if (!l->depth)
        return NULL;
    hti_header *slot = l->slot[--l->depth];
    tc->cached_hint[hti_cached_index(slot)]--;
    return slot;
}
/* Scans the list of slot's bucket (a hint said it may be there). */
HTI_INTERNAL bool hti_lookaside_scan(const hti_tcache *tc, const hti_header *slot);
/* slot (sealed, busy header) is cached in this thread's lookaside list: a double free whose
 * header was written back after the first free. */
HTI_INLINE bool hti_lookaside_holds(const hti_tcache *tc, const hti_header *slot)
{
    return HTI_UNLIKELY(tc->cached_hint[hti_cached_index(slot)] != 0) &&
           hti_lookaside_scan(tc, slot);
}
/* Caches slot (checked by the caller) if the list has room; false otherwise. The slot stays
 * busy for its subsegment. */
HTI_INLINE bool hti_lookaside_push(ht_heap *heap, hti_tcache *tc, hti_header *slot)
{
    hti_lookaside *l = &tc->lookaside[slot->tag];
    if (l->depth >= HT_LOOKASIDE_DEPTH)
        return false;
    hti_slot_update(heap, slot, HTI_BLOCK_LFH | HTI_BLOCK_LOOKASIDE, 0);
    l->slot[l->depth++] = slot;
    tc->cached_hint[hti_cached_index(slot)]++;
    return true;
}
/* Gives every cached slot of tc back to the LFH. */
HTI_INTERNAL void hti_lookaside_flush(ht_heap *heap, hti_tcache *tc);

#endif
