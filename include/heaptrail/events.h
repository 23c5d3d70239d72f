/* heaptrail/events.h — the heap trace events, as the tracer hands them to consumers and the
 * reader hands them out of a trace file.
 *
 * The three ETW heap events keep the Windows field names and order (SPEC §1). Event kinds use
 * the Windows heap provider's opcodes (0x20..0x2A); heaptrail's own records (rundown, module,
 * stack, lost) are numbered from 0x80 up, outside the provider's range. Every decoded event
 * (ht_event) carries a timestamp in nanoseconds of CLOCK_MONOTONIC, the thread id (gettid) and a
 * stack id (0 = no stack). Addresses and handles are 64-bit so a trace reads on any machine. */
#ifndef HEAPTRAIL_EVENTS_H
#define HEAPTRAIL_EVENTS_H

#include <stdint.h>

#include "heaptrail/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ht_event_kind {
    HT_EVENT_HEAP_CREATE = 0x20,       /* a heap was created */
    HT_EVENT_ALLOC = 0x21,             /* ETW_HEAP_EVENT_ALLOC */
    HT_EVENT_REALLOC = 0x22,           /* ETW_HEAP_EVENT_REALLOC */
    HT_EVENT_HEAP_DESTROY = 0x23,      /* a heap was destroyed (its blocks with it) */
    HT_EVENT_FREE = 0x24,              /* ETW_HEAP_EVENT_FREE */
    HT_EVENT_HEAP_EXPAND = 0x25,       /* committed memory grew */
    HT_EVENT_HEAP_CONTRACT = 0x2A,     /* memory returned to the OS */
    HT_EVENT_RUNDOWN_HEAP = 0x80,      /* a heap that existed when the session started */
    HT_EVENT_RUNDOWN_BLOCK = 0x81,     /* a block that was live when the session started */
    HT_EVENT_LEAK_SCAN = 0x82,         /* a reachability scan at exit: how it went */
    HT_EVENT_UNREACHABLE_BLOCK = 0x83, /* a live block the scan found no pointer to */
    HT_EVENT_MODULE = 0x90,            /* a loaded module (reader tables; see ht_reader_module) */
    HT_EVENT_STACK = 0x91,             /* a stack definition (reader tables; see ht_reader_stack) */
    HT_EVENT_LOST = 0xA0,              /* events that could not be recorded */
} ht_event_kind;

/* Bit for one kind in an event mask (ht_trace_options.event_mask). */
#define HT_EVENT_BIT(kind) (1ull << ((unsigned)(kind)&63u))
#define HT_EVENT_MASK_ALL (~0ull)
/* Allocation events: ALLOC, FREE, REALLOC. Heap events: the other provider opcodes. */
#define HT_EVENT_MASK_BLOCKS                                                                       \
    (HT_EVENT_BIT(HT_EVENT_ALLOC) | HT_EVENT_BIT(HT_EVENT_FREE) | HT_EVENT_BIT(HT_EVENT_REALLOC))
#define HT_EVENT_MASK_HEAPS                                                                        \
    (HT_EVENT_BIT(HT_EVENT_HEAP_CREATE) | HT_EVENT_BIT(HT_EVENT_HEAP_DESTROY) |                    \
     HT_EVENT_BIT(HT_EVENT_HEAP_EXPAND) | HT_EVENT_BIT(HT_EVENT_HEAP_CONTRACT))

/* The seed's events, field names and order as in the Windows heap provider. Source holds an
 * ht_source value (MEMORY_FROM_*). Size and NewSize are the bytes the caller asked for. */
typedef struct ETW_HEAP_EVENT_ALLOC {
    uint64_t HeapHandle;
    uint64_t Size;
    uint64_t Address;
    uint32_t Source;
} ETW_HEAP_EVENT_ALLOC;

typedef struct ETW_HEAP_EVENT_FREE {
    uint64_t HeapHandle;
    uint64_t Address;
    uint32_t Source;
} ETW_HEAP_EVENT_FREE;

typedef struct ETW_HEAP_EVENT_REALLOC {
    uint64_t HeapHandle;
    uint64_t NewAddress;
    uint64_t OldAddress;
    uint64_t NewSize;
    uint64_t OldSize;
    uint32_t Source;
} ETW_HEAP_EVENT_REALLOC;

typedef struct ht_event_heap_create {
    uint64_t HeapHandle;
    uint64_t InitialSize;
    uint64_t MaximumSize; /* 0: growable */
    uint32_t Flags;       /* HT_HEAP_* creation flags */
} ht_event_heap_create;

typedef struct ht_event_heap_destroy {
    uint64_t HeapHandle;
} ht_event_heap_destroy;

/* HEAP_EXPAND and HEAP_CONTRACT. */
typedef struct ht_event_heap_resize {
    uint64_t HeapHandle;
    uint64_t Bytes;          /* committed (EXPAND) or returned (CONTRACT) */
    uint64_t CommittedAfter; /* the heap's committed bytes afterwards */
} ht_event_heap_resize;

typedef struct ht_event_rundown_heap {
    uint64_t HeapHandle;
    uint64_t Reserved; /* ht_heap_summary at rundown time */
    uint64_t Committed;
    uint64_t LiveBlocks;
    uint32_t Compatibility; /* HT_HEAP_COMPATIBILITY_INFORMATION: 0, 1 or 2 */
} ht_event_rundown_heap;

typedef struct ht_event_rundown_block {
    uint64_t HeapHandle;
    uint64_t Address;
    uint64_t Size;       /* requested bytes */
    uint64_t UsableSize; /* usable bytes */
    uint32_t Source;     /* tier that owns the block: LOWFRAG, MAINPATH or SLOWPATH */
} ht_event_rundown_block;

/* LEAK_SCAN: the process was exiting; its other threads were stopped (those that answered),
 * the roots and every live block scanned for pointers. Every block live at this event that no
 * UNREACHABLE_BLOCK at the same time names was reachable. */
#define HT_LEAK_SCAN_ALL_STOPPED 0x1u /* every other thread was stopped for the scan */
#define HT_LEAK_SCAN_OWN_UNKNOWN 0x2u /* some of heaptrail's memory may have been taken for roots */
typedef struct ht_event_leak_scan {
    uint64_t LiveBlocks;     /* live blocks in the traced heaps, scanned */
    uint64_t Unreachable;    /* of which the UNREACHABLE_BLOCK records that follow name */
    uint32_t Threads;        /* threads of the process besides the one that scanned */
    uint32_t ThreadsStopped; /* of which were stopped */
    uint32_t Flags;          /* HT_LEAK_SCAN_* */
} ht_event_leak_scan;

/* The classes of an unreachable block, as memcheck and LeakSanitizer name them. */
typedef enum ht_leak_class {
    HT_LEAK_DEFINITE = 1, /* definitely lost: no pointer to it anywhere */
    HT_LEAK_INDIRECT = 2, /* indirectly lost: pointed to only from lost blocks */
} ht_leak_class;

typedef struct ht_event_unreachable_block {
    uint64_t HeapHandle;
    uint64_t Address;
    uint32_t Class; /* ht_leak_class */
} ht_event_unreachable_block;

/* Why events were lost. */
typedef enum ht_lost_reason {
    HT_LOST_BUFFER_FULL = 1,  /* discard mode: the thread's buffer was full */
    HT_LOST_WRITE_FAILED = 2, /* the output could not be written (disk full, closed pipe) */
    HT_LOST_CONSUMER = 3,     /* a real-time consumer could not keep up */
    HT_LOST_THREAD_EXIT = 4,  /* events after the thread's buffer was flushed at exit */
    HT_LOST_SESSION_END = 5,  /* events in flight when the session stopped */
} ht_lost_reason;

typedef struct ht_event_lost {
    uint64_t Count;          /* events lost */
    uint64_t FirstTimestamp; /* ns of the first and last lost event (approximate for */
    uint64_t LastTimestamp;  /*  write failures: the span of the chunk that failed) */
    uint32_t LostThread;     /* thread whose events were lost (also thread_id) */
    uint32_t Reason;         /* ht_lost_reason */
} ht_event_lost;

/* Reader tables (modules and stacks are not handed out as stream events). */
typedef struct ht_module {
    uint64_t LoadAddress; /* dlpi_addr: bias added to the ELF's virtual addresses */
    uint64_t Start;       /* lowest mapped address of its PT_LOAD segments */
    uint64_t Size;        /* extent of its PT_LOAD segments */
    const char *Path;     /* never NULL ("" if unknown) */
    uint8_t BuildId[32];
    uint32_t BuildIdSize; /* 0: no GNU build-id note */
} ht_module;

/* Event flags. */
#define HT_EVENT_FLAG_SAMPLED 0x1u /* recorded by byte sampling: see weight */
#define HT_EVENT_FLAG_RUNDOWN 0x2u /* part of a rundown (also set on RUNDOWN_* kinds) */

/* A decoded event. kind selects the member of the union. */
typedef struct ht_event {
    uint64_t timestamp_ns; /* CLOCK_MONOTONIC nanoseconds */
    uint32_t thread_id;    /* gettid() of the thread that did the operation */
    uint16_t kind;         /* ht_event_kind */
    uint16_t flags;        /* HT_EVENT_FLAG_* */
    uint32_t stack_id;     /* 0: no stack */
    uint32_t reserved;
    /* How many operations this event stands for: 1 unless byte sampling chose it, then
     * 1 / (1 - exp(-Size / sample_interval)) (ALLOC and REALLOC; FREE events are not sampled).
     * Multiply counts and bytes by it to estimate totals. */
    double weight;
    union {
        ETW_HEAP_EVENT_ALLOC alloc;
        ETW_HEAP_EVENT_FREE free;
        ETW_HEAP_EVENT_REALLOC realloc;
        ht_event_heap_create heap_create;
        ht_event_heap_destroy heap_destroy;
        ht_event_heap_resize heap_resize; /* HEAP_EXPAND, HEAP_CONTRACT */
        ht_event_rundown_heap rundown_heap;
        ht_event_rundown_block rundown_block;
        ht_event_lost lost;
        ht_event_leak_scan leak_scan;
        ht_event_unreachable_block unreachable_block;
    } u;
} ht_event;

/* "ALLOC", "FREE", ... as in `heaptrail dump`; "UNKNOWN" for other values. */
HT_API const char *ht_event_kind_name(unsigned kind);
/* "MEMORY_FROM_LOWFRAG", ...; "MEMORY_FROM_UNKNOWN" for other values. */
HT_API const char *ht_source_name(unsigned source);
/* "BUFFER_FULL", ... (HT_LOST_*); "UNKNOWN" for other values. */
HT_API const char *ht_lost_reason_name(unsigned reason);
/* "block", "discard", "ring" (ht_trace_mode, as a trace's header gives it); "unknown" else. */
HT_API const char *ht_trace_mode_name(unsigned mode);
/* The heap handle an event concerns, or 0 (LOST). */
HT_API uint64_t ht_event_heap(const ht_event *event);

#ifdef __cplusplus
}
#endif
#endif
