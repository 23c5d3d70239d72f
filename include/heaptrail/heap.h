/* heaptrail/heap.h — the heap manager API, modelled on the Win32 heap API.
 *
 * A heap (ht_heap, the HeapHandle) serves blocks through four tiers, tried in this order:
 * the calling thread's lookaside lists, the low-fragmentation front end (LFH), the back end's
 * free lists, and the OS. Every operation is counted per heap by the tier that served it
 * (ht_source), and, while a trace session runs, logged as an ETW-style heap event.
 *
 * Errors: calls that fail return NULL / false / SIZE_MAX and set a thread-local last error
 * (ht_last_error); with HT_HEAP_GENERATE_EXCEPTIONS the installed failure handler runs first. */
#ifndef HEAPTRAIL_HEAP_H
#define HEAPTRAIL_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define HT_API __attribute__((visibility("default")))
#else
#define HT_API
#endif

/* Flags, with the Windows values. Creation flags NO_SERIALIZE and GENERATE_EXCEPTIONS apply to
 * every call on the heap; the others are per call. */
#define HT_HEAP_NO_SERIALIZE 0x00000001u
#define HT_HEAP_GENERATE_EXCEPTIONS 0x00000004u
#define HT_HEAP_ZERO_MEMORY 0x00000008u
#define HT_HEAP_REALLOC_IN_PLACE_ONLY 0x00000010u
#define HT_HEAP_CREATE_ENABLE_EXECUTE 0x00040000u

/* Which path inside the heap manager served an operation (the ETW "Source" field). */
typedef enum ht_source {
    MEMORY_FROM_LOOKASIDE = 1,    /* the calling thread's lookaside list */
    MEMORY_FROM_LOWFRAG = 2,      /* the low-fragmentation front end */
    MEMORY_FROM_MAINPATH = 3,     /* the back end's committed free lists */
    MEMORY_FROM_SLOWPATH = 4,     /* work with the OS: commit, new segment, large block */
    MEMORY_FROM_INVALID = 5,      /* the request failed */
    MEMORY_FROM_SEGMENT_HEAP = 6, /* reserved: never emitted */
} ht_source;
#define HT_SOURCE_COUNT 7 /* valid values are 1..6; index 0 is unused */

/* Operation kinds for the per-heap counters. */
typedef enum ht_op { HT_OP_ALLOC = 0, HT_OP_FREE = 1, HT_OP_REALLOC = 2, HT_OP_COUNT = 3 } ht_op;

/* Thread-local last error. */
typedef enum ht_error {
    HT_OK = 0,
    HT_ERROR_NO_MEMORY,         /* the OS refused memory, or the size is impossibly large */
    HT_ERROR_HEAP_FULL,         /* a fixed-size heap has no room left */
    HT_ERROR_INVALID_HANDLE,    /* the heap handle is not a live heap */
    HT_ERROR_INVALID_PARAMETER, /* bad flags, sizes or information buffers */
    HT_ERROR_INVALID_POINTER,   /* the pointer is not a block of this heap */
    HT_ERROR_DOUBLE_FREE,       /* the block is already free */
    HT_ERROR_CORRUPTION,        /* a block header failed its check (overflow, stray write) */
    HT_ERROR_NOT_IN_PLACE,      /* REALLOC_IN_PLACE_ONLY could not be honoured */
    HT_ERROR_NO_MORE_ITEMS,     /* walk reached the end */
    HT_ERROR_BUSY,              /* the operation is not allowed on this heap (process heap) */
    HT_ERROR_COUNT
} ht_error;

HT_API ht_error ht_last_error(void);
HT_API void ht_set_last_error(ht_error error);
HT_API const char *ht_error_message(ht_error error); /* never NULL */

/* Called for failures on heaps or calls with HT_HEAP_GENERATE_EXCEPTIONS, before the call
 * returns its failure value. The default handler prints one line to stderr and aborts, as an
 * unhandled STATUS_NO_MEMORY exception ends a Windows process. Returns the previous handler. */
typedef void (*ht_failure_handler)(void *heap, ht_error error, void *context);
HT_API ht_failure_handler ht_set_failure_handler(ht_failure_handler handler, void *context);

typedef struct ht_heap ht_heap; /* the HeapHandle */

/* Creates a heap. initial_size is committed at once (rounded to pages); maximum_size 0 means
 * growable, otherwise the heap is fixed-size: it never grows past maximum_size, has no LFH or
 * lookaside, and allocations that do not fit fail with HT_ERROR_HEAP_FULL. */
HT_API ht_heap *ht_heap_create(uint32_t flags, size_t initial_size, size_t maximum_size);
/* Destroys a heap and everything in it. The process heap cannot be destroyed. */
HT_API bool ht_heap_destroy(ht_heap *heap);
HT_API void *ht_heap_alloc(ht_heap *heap, uint32_t flags, size_t size);
/* block NULL is invalid, as in HeapReAlloc. On failure the old block is left untouched. */
HT_API void *ht_heap_realloc(ht_heap *heap, uint32_t flags, void *block, size_t size);
/* block NULL: true, a no-op. errno is left as it was, as glibc's free leaves it. */
HT_API bool ht_heap_free(ht_heap *heap, uint32_t flags, void *block);
/* The usable size of a block (>= requested); SIZE_MAX on error. */
HT_API size_t ht_heap_size(ht_heap *heap, uint32_t flags, const void *block);
/* Validates one block, or the whole heap when block is NULL (every segment, header check
 * value, free list, LFH subsegment and large block). Never crashes on a corrupted heap. */
HT_API bool ht_heap_validate(ht_heap *heap, uint32_t flags, const void *block);
/* Alignment-aware allocation, for the POSIX calls: alignment a power of two. */
HT_API void *ht_heap_alloc_aligned(ht_heap *heap, uint32_t flags, size_t alignment, size_t size);
/* The size the caller asked for when the block was allocated; SIZE_MAX on error. */
HT_API size_t ht_heap_requested_size(ht_heap *heap, const void *block);

HT_API ht_heap *ht_process_heap(void);
/* Fills heaps[0..count) and returns the number of heaps that exist (which may exceed count). */
HT_API size_t ht_process_heaps(ht_heap **heaps, size_t count);

/* Serializes the heap against other threads' back-end work (HeapLock). LFH and lookaside
 * fast paths of other threads are not blocked: walk a heap others are using only for an
 * approximate picture. Recursive for the owning thread. */
HT_API bool ht_heap_lock(ht_heap *heap);
HT_API bool ht_heap_unlock(ht_heap *heap);

/* Entry flags reported by ht_heap_walk. */
#define HT_ENTRY_BUSY 0x0001u        /* a live block */
#define HT_ENTRY_REGION 0x0002u      /* a segment or large mapping (data, size = its range) */
#define HT_ENTRY_LFH 0x0004u         /* a block inside an LFH subsegment */
#define HT_ENTRY_LARGE 0x0008u       /* a large block mapped on its own */
#define HT_ENTRY_UNCOMMITTED 0x0010u /* reserved, uncommitted range of a segment */

typedef struct ht_heap_entry {
    void *data;          /* start of the block's data (NULL to begin a walk) */
    size_t size;         /* usable bytes (the range size for regions) */
    size_t requested;    /* bytes the caller asked for (busy blocks), else 0 */
    uint32_t overhead;   /* header bytes in front of data (0 for an LFH slot) */
    uint32_t flags;      /* HT_ENTRY_* */
    ht_source source;    /* tier that owns the block: LOWFRAG, MAINPATH or SLOWPATH */
    uintptr_t cursor[4]; /* walk state; do not touch */
} ht_heap_entry;

/* HeapWalk: set entry->data = NULL to start; each call fills the next entry; returns false
 * with HT_ERROR_NO_MORE_ITEMS at the end. Blocks cached in lookaside lists are reported free
 * (not BUSY); LFH subsegments appear as their blocks, not as one back-end block. */
HT_API bool ht_heap_walk(ht_heap *heap, ht_heap_entry *entry);

/* Coalesces free space, returns unused memory to the OS, and returns the size of the largest
 * free block that could be allocated without growing the heap (0 with last error on failure). */
HT_API size_t ht_heap_compact(ht_heap *heap, uint32_t flags);

typedef struct ht_heap_summary {
    size_t reserved;  /* address space reserved for segments and large blocks */
    size_t committed; /* of which committed (backed, readable, writable) */
    size_t allocated; /* usable bytes of live blocks */
    size_t requested; /* bytes the callers asked for, of live blocks */
    size_t free;      /* bytes in free blocks, LFH free slots and lookaside lists */
    size_t overhead;  /* committed - allocated - free: headers, metadata, tails */
    size_t live_blocks;
} ht_heap_summary;
HT_API bool ht_heap_summary_get(ht_heap *heap, uint32_t flags, ht_heap_summary *summary);

/* Operations per Source, summed over all threads (each thread keeps its own counters, so the
 * fast path touches no shared cache line). counts[op][source], source 1..6. */
typedef struct ht_heap_counters {
    uint64_t counts[HT_OP_COUNT][HT_SOURCE_COUNT];
} ht_heap_counters;
HT_API bool ht_heap_counters_get(ht_heap *heap, ht_heap_counters *counters);

/* HeapSetInformation / HeapQueryInformation. */
typedef enum ht_heap_info_class {
    /* uint32_t: 0 = standard (back end only), 2 = low-fragmentation heap (LFH) enabled for all
     * sizes at once. A new heap starts with the LFH heuristic (reported as 1): a bucket
     * becomes active after more than HT_LFH_ACTIVATION_THRESHOLD allocations of its size.
     * NO_SERIALIZE and fixed-size heaps report 0 and refuse 1/2. */
    HT_HEAP_COMPATIBILITY_INFORMATION = 0,
    /* No buffer: from now on corruption found in any heap aborts the process with a message. */
    HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION = 1,
    /* uint32_t (query only): 1 when termination on corruption is on. */
    HT_HEAP_TERMINATION_ON_CORRUPTION_STATE = 0x100,
    /* uint32_t: 1 = lookaside lists on (default for growable, serialized heaps), 0 = off. */
    HT_HEAP_LOOKASIDE_INFORMATION = 0x101,
} ht_heap_info_class;
#define HT_LFH_ACTIVATION_THRESHOLD 17u

HT_API bool ht_heap_set_information(ht_heap *heap, ht_heap_info_class info_class, const void *info,
                                    size_t length);
HT_API bool ht_heap_query_information(ht_heap *heap, ht_heap_info_class info_class, void *info,
                                      size_t length, size_t *return_length);

/* Tier limits, for users and tests. */
#define HT_LFH_MAX_BLOCK 16384u      /* largest request the LFH serves */
#define HT_LOOKASIDE_MAX_BLOCK 1024u /* largest request the lookaside lists hold */
#define HT_LARGE_THRESHOLD 0x7F000u  /* requests this size and up are mapped on their own */
#define HT_LOOKASIDE_DEPTH 32u       /* most blocks one thread's lookaside list holds */

#ifdef __cplusplus
}
#endif
#endif
