/* heap_internal.h — the heap manager's structures and the contracts between its files.
 *
 * Memory comes from the OS as 64 KiB-aligned regions: segments (reserved, committed as they
 * fill, tiled by back-end blocks) and large blocks (one mapping each). A process-wide page
 * map finds the region of any address in two loads, so every pointer handed to free/realloc
 * is checked against its region before anything else is read. Back-end and large blocks have a
 * 16-byte header whose check value mixes the header's fields, its address and the heap cookie:
 * an overflow into the next header, a stray pointer or a stale copy fails the check. LFH slots
 * have no header: their subsegment's record, which the page map finds from any slot, keeps
 * one state word per slot (free, cached, or busy with its unused bytes), and a canary after
 * the requested bytes of a busy slot catches an overflow into its slack.
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
#include <string.h>

#include "common/compiler.h"
#include "common/own_memory.h"
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
/* An LFH subsegment's granules map to its record (hti_subseg), not to the segment it lies in. */
enum { HTI_REGION_SEGMENT = 1, HTI_REGION_LARGE = 2, HTI_REGION_LFH = 3 };
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
    HTI_BLOCK_BUSY = 0x01,   /* handed to a caller (or holding a subsegment) */
    HTI_BLOCK_SUBSEG = 0x04, /* a back-end block that holds an LFH subsegment */
    HTI_BLOCK_LARGE = 0x08,  /* a large block, mapped on its own */
};

/* The HTI_HEADER bytes before every back-end and large block's data (hti_block_of finds it from
 * a data pointer; the block itself is header and data).
 * Back end: size = block granules, prev_size = previous block's granules (0 for the first).
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
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "little-endian canaries and links");

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
struct hti_segment;

/* A subsegment: a back-end block whose data starts on a page-map granule and covers whole
 * granules (their entries point here), holding this record, one state word per slot, then
 * slots of one bucket's size with no header. Nothing a slot's owner can write is metadata
 * but the free-list link in the first word of a free slot, which is encoded and checked. */
typedef struct hti_subseg {
    /* Read by every operation on the subsegment, written almost never: a cache line of its
     * own, so that the owner's and other threads' writes below do not evict it. */
    hti_region region;    /* kind HTI_REGION_LFH; base is the record, reserved its granules */
    char *slots;          /* first slot */
    uint64_t index_magic; /* ceil(2^34 / slot_size): slot index by multiply (hti_slot_index) */
    _Atomic(hti_tcache *) owner;
    uint16_t slot_size; /* bytes per slot: the bucket's size */
    uint16_t capacity;  /* slots that fit */
    uint16_t bucket;
    uint16_t abandoned; /* on the heap's abandoned list, no owner */
    /* The owner's (and, while abandoned, the heap lock's). */
    _Alignas(HTI_CACHE_LINE) void *local_free; /* owner's free slots (links encoded) */
    uint32_t used;               /* slots out (owner's count; remote frees wait in thread_free) */
    uint32_t carved;             /* slots carved from the bump area so far */
    struct hti_segment *segment; /* the segment the subsegment's block lies in */
    struct hti_subseg *next, *prev; /* owner's per-bucket list, or the heap's abandoned list */
    /* Other threads'. */
    _Alignas(HTI_CACHE_LINE) _Atomic(void *) thread_free; /* slots freed by others (encoded) */
    /* One word per slot (HTI_SLOT_*): whether the slot is in one of this subsegment's lists
     * (or never carved), cached in a lookaside list, or held by a caller, and then how many of
     * its bytes the caller did not ask for. The verdict on a free comes from here, never from
     * the slot, which the program can write. */
    _Alignas(HTI_CACHE_LINE) _Atomic uint16_t state[];
} hti_subseg;
_Static_assert(offsetof(hti_subseg, local_free) == HTI_CACHE_LINE, "read-mostly line first");

enum {
    HTI_SLOT_FREE = 0,   /* in a list of its subsegment, or not carved yet */
    HTI_SLOT_CACHED = 1, /* in a lookaside list: freed for the caller, still out for the LFH */
    HTI_SLOT_BUSY = 2,   /* held by a caller: HTI_SLOT_BUSY + unused bytes (| HTI_SLOT_WAIVED) */
};
/* Busy, and the caller was told the usable size (ht_heap_size): the slack is the caller's to
 * write, so it holds no canary. */
#define HTI_SLOT_WAIVED 0x8000u
#define HTI_SLOT_UNUSED(state) ((size_t)(((state) & ~HTI_SLOT_WAIVED) - HTI_SLOT_BUSY))

#define HTI_SLOT_INDEX_SHIFT                                                                       \
    34 /* exact for offsets < 2^18 and slots < 2^16 (Granlund-Montgomery) */
/* The index of the slot at offset from the first slot, exact when offset is a multiple of the
 * slot size below 2^18; any other offset (or a pointer below the slots, whose offset wraps)
 * fails hti_slot_at. */
HTI_INLINE size_t hti_slot_index_of(const hti_subseg *ss, uintptr_t offset)
{
    return (size_t)((offset * ss->index_magic) >> HTI_SLOT_INDEX_SHIFT);
}
/* The index of the carved-or-not slot that starts at p, or SIZE_MAX if p starts no slot. */
HTI_INLINE size_t hti_slot_at(const hti_subseg *ss, const void *p)
{
    uintptr_t offset = (uintptr_t)((const char *)p - ss->slots);
    size_t index = hti_slot_index_of(ss, offset);
    return index < ss->capacity && index * ss->slot_size == offset ? index : SIZE_MAX;
}
HTI_INLINE void *hti_slot_ptr(const hti_subseg *ss, size_t index)
{
    return ss->slots + index * ss->slot_size;
}
HTI_INLINE uint16_t hti_slot_get(const hti_subseg *ss, size_t index)
{
    return atomic_load_explicit(&((hti_subseg *)ss)->state[index], memory_order_relaxed);
}
HTI_INLINE void hti_slot_set(hti_subseg *ss, size_t index, unsigned state)
{
    atomic_store_explicit(&ss->state[index], (uint16_t)state, memory_order_relaxed);
}
/* Marks a slot busy after its canary is written (a release store: a plain store on x86). */
HTI_INLINE void hti_slot_publish(_Atomic uint16_t *word, unsigned state)
{
    atomic_store_explicit(word, (uint16_t)state, memory_order_release);
}

/* ---- canaries -------------------------------------------------------------------------- */
/* A busy slot's canary is the heap's canary value (ht_heap.canary, drawn from its secrets when
 * it is created) in the 8 bytes right after its requested ones, or, when it has fewer than 8
 * bytes to spare, in its last 8 bytes, of which only the spare ones count: the window starts
 * max(unused, 8) bytes before the slot's end. So the check is one load and one masked compare,
 * with no branch on the size. At allocation the whole window is written (the bytes below the
 * requested end are the caller's, not yet written); a realloc that stays in place writes only
 * the spare bytes. One value per heap, like a stack protector's: a program can read its own
 * slack, so mixing in the address would add cost, not secrecy. Bytes 0 and 1, and 6 and 7,
 * differ, so no fill of one byte value matches. */
HTI_INLINE uint64_t hti_canary_of(uint64_t secret)
{
    uint64_t c = secret * 0x9E3779B97F4A7C15ull;
    c ^= c >> 29;
    c &= ~((uint64_t)1 | (uint64_t)1 << 48);
    return c | (uint64_t)1 << 8 | (uint64_t)1 << 56;
}
/* The masks of the window's bytes that count: the top min(unused, 8) bytes. */
HTI_INTERNAL extern const uint64_t hti_canary_mask[9];
HTI_INLINE char *hti_canary_window(const void *slot, size_t slot_size, size_t unused)
{
    return (char *)slot + slot_size - (unused > 8 ? unused : 8);
}
HTI_INLINE bool hti_canary_ok(const void *slot, size_t slot_size, size_t unused, uint64_t c)
{
    uint64_t v;
    memcpy(&v, hti_canary_window(slot, slot_size, unused), 8);
    return ((v ^ c) & hti_canary_mask[unused < 8 ? unused : 8]) == 0;
}
/* At allocation: the whole window (slot_size >= 16). */
HTI_INLINE void hti_canary_put_fresh(void *slot, size_t slot_size, size_t unused, uint64_t c)
{
    memcpy(hti_canary_window(slot, slot_size, unused), &c, 8);
}
/* In a slot whose bytes below the requested end are the caller's: only the spare bytes. */
HTI_INLINE void hti_canary_put_kept(void *slot, size_t slot_size, size_t unused, uint64_t c)
{
    unsigned char *w = (unsigned char *)hti_canary_window(slot, slot_size, unused);
    for (size_t i = 8 - (unused < 8 ? unused : 8); i < 8; i++)
        w[i] = (unsigned char)(c >> (8 * i));
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
/* A lookaside list is a stack in the thread's cache, not a chain through the freed slots: no
 * link lives where a use after free can reach it, and a pop reads nothing from the slot. */
/* An entry holds the slot and its state word: a pop touches the entry and the state word's
 * line, not the subsegment's record (the slot size is the bucket's). */
typedef struct hti_lookaside_entry {
    void *slot;
    _Atomic uint16_t *state;
} hti_lookaside_entry;

struct hti_tcache {
    ht_heap *heap;
    _Atomic uint64_t heap_id; /* heap->id when attached; 0 once the heap is destroyed */
    struct hti_heap_thread *thread;
    /* Lookaside lists: the depths together (every free reads one), then each list's stack. */
    uint32_t lookaside_depth[HTI_LOOKASIDE_BUCKETS];
    hti_lookaside_entry lookaside[HTI_LOOKASIDE_BUCKETS][HT_LOOKASIDE_DEPTH];
    hti_subseg *current[HTI_LFH_BUCKETS]; /* the subsegment allocations come from */
    hti_subseg *owned[HTI_LFH_BUCKETS];   /* every subsegment owned, per bucket */
    _Atomic uint64_t counts[HT_OP_COUNT][HT_SOURCE_COUNT];
    hti_tcache *heap_next, *heap_prev; /* heap's list, under the heap lock */
    hti_tcache *thread_next;           /* thread's list */
    int damaged; /* a list of this cache was found damaged: the current call fails */
};

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
/* Freed large mappings kept for reuse (large.c): at most this many, ... */
#define HTI_LARGE_CACHE 16
#define HTI_LARGE_CACHE_MAX (64u << 20)   /* ... none bigger than this, ... */
#define HTI_LARGE_CACHE_FLOOR (16u << 20) /* ... and at most this many bytes, or ... */
#define HTI_LARGE_CACHE_SHARE 8           /* ... 1/8 of the heap's other committed bytes */
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
    uint64_t canary;             /* after the requested bytes of a busy LFH slot */
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
    hti_large *large_cache[HTI_LARGE_CACHE]; /* freed mappings kept for reuse, oldest first */
    unsigned large_cache_count;              /* entries in use: large_cache[0, count) */
    size_t large_cached;                     /* their bytes (in reserved and committed too) */
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
/* A free LFH slot's link (its subsegment's local and remote lists): the first word of the slot. */
HTI_INLINE void *hti_slot_next(const ht_heap *heap, void *slot)
{
    uintptr_t *at = (uintptr_t *)slot;
    return hti_link_decode(heap, at, *at);
}
HTI_INLINE void hti_slot_set_next(const ht_heap *heap, void *slot, const void *next)
{
    uintptr_t *at = (uintptr_t *)slot;
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

/* The segment whose blocks contain address, or NULL: a subsegment's granules map to its record,
 * which names its segment (a back-end header may sit in the last bytes of such a granule). */
HTI_INLINE struct hti_segment *hti_segment_at(const void *address)
{
    hti_region *r = hti_pagemap_lookup(address);
    if (r && r->kind == HTI_REGION_LFH)
        return ((hti_subseg *)r)->segment;
    return r && r->kind == HTI_REGION_SEGMENT ? (struct hti_segment *)r : NULL;
}

/* True when p may be read as a block header of heap's segments: 16-byte aligned, in a segment
 * of this heap, inside its committed blocks. Safe on any address (the page map first). */
HTI_INLINE bool hti_in_segment(const ht_heap *heap, const void *p)
{
    if ((uintptr_t)p & (HTI_GRANULE - 1))
        return false;
    const hti_segment *seg = hti_segment_at(p);
    if (!seg || seg->region.heap != heap)
        return false;
    return (const char *)p >= seg->first &&
           (const char *)p + HTI_MIN_BLOCK <= seg->region.base + seg->committed;
}

/* The result of classifying a pointer handed to free/realloc/size. */
typedef struct hti_owner {
    hti_region *region; /* a segment, a large block's mapping or a subsegment (HTI_REGION_LFH) */
    hti_header *block;  /* back-end and large blocks: the header; NULL for an LFH slot */
    void *data;
    size_t index; /* an LFH slot's index in its subsegment */
} hti_owner;
/* Finds the block of data in heap. 0, or -EINVAL (not this heap's, or not where a block
 * starts), -EFAULT (a corrupt header), -EOVERFLOW (an LFH slot's canary damaged), -EALREADY
 * (the block is free). Reads nothing outside the heap's committed memory. */
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
/* Mappings already out of a heap's records and page map, to be unmapped once its lock is
 * dropped (system calls stay out of the lock). Functions that take one fill it while they have
 * room, then unmap at once; NULL: at once. */
#define HTI_RELEASE_MAX 4
typedef struct hti_release {
    unsigned count;
    struct {
        void *base;
        size_t size;
    } span[HTI_RELEASE_MAX];
} hti_release;
/* Unmaps what release holds and empties it (heap lock not held). */
HTI_INTERNAL void hti_release_run(hti_release *release);
/* The large-block functions below run under the heap lock. */
HTI_INTERNAL void *hti_large_alloc(ht_heap *heap, size_t size, size_t align, ht_error *error,
                                   hti_release *release);
HTI_INTERNAL void hti_large_free(ht_heap *heap, hti_large *large, hti_release *release);
/* Moves the block to a cached mapping that fits the new size (copying its bytes, the old mapping
 * going to the cache), else its pages to a fresh mapping without copying (mremap); returns the
 * new data address, or NULL (the block unchanged). Lock held. */
HTI_INTERNAL void *hti_large_move(ht_heap *heap, hti_large *large, size_t size,
                                  hti_release *release);
/* Unmaps every cached mapping (lock held). */
HTI_INTERNAL void hti_large_cache_drop(ht_heap *heap);
/* Resizes the mapping in place (lock held). 0; -ERANGE beyond the heap's size limit; -ENOMEM if
 * the mapping cannot change where it is or the page map has no memory (unchanged then);
 * -ENOSPC if may_move and a cached mapping can take the grown block for less than faulting in
 * the new pages would cost (hti_large_move then uses it). */
HTI_INTERNAL int hti_large_resize(ht_heap *heap, hti_large *large, size_t size, bool may_move);
HTI_INTERNAL size_t hti_large_usable(const hti_large *large);

/* ---- LFH and lookaside (lfh.c, lookaside.c) ------------------------------------------- */
/* The index of a slot taken from one of ss's lists: a carved slot's start, free in its state
 * word; SIZE_MAX for anything else (a forged or damaged link). */
HTI_INLINE size_t hti_free_slot_index(const hti_subseg *ss, const void *slot)
{
    size_t index = hti_slot_at(ss, slot);
    if (HTI_UNLIKELY(index >= ss->carved) || hti_slot_get(ss, index) != HTI_SLOT_FREE)
        return SIZE_MAX;
    return index;
}
/* Takes the head of the owner's local list of ss, which hti_free_slot_index accepted. */
HTI_INLINE void *hti_local_take(const ht_heap *heap, hti_subseg *ss)
{
    void *slot = ss->local_free;
    ss->local_free = hti_slot_next(heap, slot);
    ss->used++;
    return slot;
}
/* Puts slot index of ss (out, and checked) at the head of the owner's local list, free. */
HTI_INLINE void hti_local_put(const ht_heap *heap, hti_subseg *ss, size_t index)
{
    void *slot = hti_slot_ptr(ss, index);
    hti_slot_set(ss, index, HTI_SLOT_FREE);
    hti_slot_set_next(heap, slot, ss->local_free);
    ss->local_free = slot;
    ss->used--;
}
/* hti_lfh_alloc when the current subsegment's local list is empty or its head is damaged. */
HTI_INTERNAL void *hti_lfh_alloc_slow(ht_heap *heap, hti_tcache *tc, unsigned bucket,
                                      hti_subseg **ss, size_t *index);
/* Takes a slot of bucket from the calling thread's subsegments: its subsegment and index in
 * *ss and *index, its state still FREE for the caller to set once the slot is ready (so that
 * validate, here or in a fork child, never sees a busy slot without its canary). NULL if
 * memory is short or a list was damaged (tc->damaged). The common case inline: the head of
 * the current subsegment's local list, a carved slot that is free in its state word. */
HTI_INLINE void *hti_lfh_alloc(ht_heap *heap, hti_tcache *tc, unsigned bucket, hti_subseg **out,
                               size_t *index)
{
    hti_subseg *ss = tc->current[bucket];
    size_t i;
    if (HTI_LIKELY(ss != NULL) && ss->local_free != NULL &&
        HTI_LIKELY((i = hti_free_slot_index(ss, ss->local_free)) != SIZE_MAX)) {
        *out = ss;
        *index = i;
        return hti_local_take(heap, ss);
    }
    return hti_lfh_alloc_slow(heap, tc, bucket, out, index);
}
/* hti_lfh_free for a slot of another thread's subsegment, or the last one out of a subsegment
 * that is not the owner's current one. */
HTI_INTERNAL void hti_lfh_free_slow(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t index);
/* Frees slot index of ss (busy or cached, checked by the caller) from any thread (tc may be
 * NULL), or a slot coming back from a lookaside list. The owner's common case inline. */
HTI_INLINE void hti_lfh_free(ht_heap *heap, hti_tcache *tc, hti_subseg *ss, size_t index)
{
    if (HTI_LIKELY(tc != NULL && atomic_load_explicit(&ss->owner, memory_order_relaxed) == tc &&
                   ss->used > 1)) {
        hti_local_put(heap, ss, index);
        return;
    }
    hti_lfh_free_slow(heap, tc, ss, index);
}
/* Thread exit or heap detach: give back lookaside blocks and subsegments (lock held). */
HTI_INTERNAL void hti_lfh_thread_done(ht_heap *heap, hti_tcache *tc);
/* Collects remote frees of abandoned subsegments and releases the empty ones (lock held). */
HTI_INTERNAL void hti_lfh_reclaim_abandoned(ht_heap *heap);
/* The subsegment's record, page-map entries and slot states are consistent, every busy slot's
 * canary is intact, and (when it has no owner) its free list is sound (lock held). */
HTI_INTERNAL bool hti_subseg_is_valid(const ht_heap *heap, const hti_subseg *ss);
/* The busy slot's canary, if it has one, is intact; a slot being changed by its owner while it
 * is read is looked at again before it is called damaged. */
HTI_INTERNAL bool hti_slot_canary_settled(const ht_heap *heap, const hti_subseg *ss, size_t index);
/* The canary of busy slot index of ss, holding state, is intact (or it has none). */
HTI_INLINE bool hti_slot_canary_ok(const ht_heap *heap, const hti_subseg *ss, size_t index,
                                   unsigned state)
{
    if (state & HTI_SLOT_WAIVED)
        return true;
    return hti_canary_ok(hti_slot_ptr(ss, index), ss->slot_size, HTI_SLOT_UNUSED(state),
                         heap->canary);
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
/* Counts one (op, Source) in tc, which the caller knows is not NULL. */
HTI_INLINE void hti_count_in(hti_tcache *tc, ht_op op, ht_source source)
{
    uint64_t n = atomic_load_explicit(&tc->counts[op][source], memory_order_relaxed);
    atomic_store_explicit(&tc->counts[op][source], n + 1, memory_order_relaxed);
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
/* Pops the thread's most recently cached slot of bucket, or NULL; its state word (CACHED) in
 * *state for the caller to set. The stack lives in heaptrail's own memory and nothing is read
 * from the slot. */
HTI_INLINE void *hti_lookaside_pop(hti_tcache *tc, unsigned bucket, _Atomic uint16_t **state)
{
    uint32_t depth = tc->lookaside_depth[bucket];
    if (!depth)
        return NULL;
    tc->lookaside_depth[bucket] = --depth;
    hti_lookaside_entry e = tc->lookaside[bucket][depth];
    assert(atomic_load_explicit(e.state, memory_order_relaxed) == HTI_SLOT_CACHED);
    *state = e.state;
    return e.slot;
}
/* Caches slot index of ss (checked by the caller) in the list of its bucket, which the caller
 * saw has room. The slot stays out for its subsegment, cached in its state word. */
HTI_INLINE void hti_lookaside_put(hti_tcache *tc, hti_subseg *ss, size_t index)
{
    unsigned bucket = ss->bucket;
    uint32_t depth = tc->lookaside_depth[bucket];
    assert(depth < HT_LOOKASIDE_DEPTH);
    hti_slot_set(ss, index, HTI_SLOT_CACHED);
    tc->lookaside[bucket][depth] = (hti_lookaside_entry){hti_slot_ptr(ss, index),
                                                         &ss->state[index]};
    tc->lookaside_depth[bucket] = depth + 1;
}
/* hti_lookaside_put if the list has room; false otherwise. */
HTI_INLINE bool hti_lookaside_push(hti_tcache *tc, hti_subseg *ss, size_t index)
{
    if (tc->lookaside_depth[ss->bucket] >= HT_LOOKASIDE_DEPTH)
        return false;
    hti_lookaside_put(tc, ss, index);
    return true;
}
/* Gives every cached slot of tc back to the LFH. */
HTI_INTERNAL void hti_lookaside_flush(ht_heap *heap, hti_tcache *tc);

#endif
