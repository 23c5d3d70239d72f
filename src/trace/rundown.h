/* rundown.h — how the tracer learns about heaps: a provider the heap registers with it.
 *
 * The tracer never calls the heap API. For a session's rundown and its footer's end state it
 * asks the registered provider to list the process's heaps, sum one up, or walk one's busy
 * blocks under its lock. The heap registers the provider when the library is loaded; with none
 * registered, rundowns are empty and the end state is unknown. Heaps are opaque here (the
 * public ht_heap type). The provider is called on the tracer's thread, under its guard, so
 * what it allocates is not traced. */
#ifndef HEAPTRAIL_TRACE_RUNDOWN_H
#define HEAPTRAIL_TRACE_RUNDOWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptrail/heap.h"

/* One heap's state, as its rundown record and the footer report it. */
typedef struct hti_rundown_heap {
    uint64_t reserved;  /* address space reserved */
    uint64_t committed; /* of which committed */
    uint64_t requested; /* bytes the callers asked for, of live blocks */
    uint64_t live_blocks;
    uint32_t compatibility; /* HT_HEAP_COMPATIBILITY_INFORMATION's value */
} hti_rundown_heap;

/* One busy block. */
typedef struct hti_rundown_block {
    const void *address;
    uint64_t requested; /* bytes asked for */
    uint64_t usable;    /* bytes the caller may use */
    ht_source source;   /* the tier that holds it */
} hti_rundown_block;

/* Called by walk: once with the heap's state, then once per busy block, all under the heap's
 * lock (no heap may be called from them). */
typedef struct hti_rundown_visitor {
    void (*heap)(void *context, const hti_rundown_heap *state);
    void (*block)(void *context, const hti_rundown_block *block);
} hti_rundown_visitor;

typedef struct hti_rundown_provider {
    /* Stores up to capacity heaps of the process in out and returns how many there are (more
     * than capacity when out is too small). */
    size_t (*list)(ht_heap **out, size_t capacity);
    /* Fills *state from a consistent look at heap (under its lock); false if heap is not a
     * live heap. */
    bool (*summarize)(ht_heap *heap, hti_rundown_heap *state);
    /* Visits heap's state and its busy blocks, in address order, under its lock. */
    void (*walk)(ht_heap *heap, const hti_rundown_visitor *visitor, void *context);
    /* Called after tracing was switched on and a barrier ran on every thread: waits until no
     * heap operation that read the switch as off is still before the effect it tested for (a
     * free releasing its block, a heap's destruction), at most limit_ns. 0, or -ETIMEDOUT with
     * *late (when late is not NULL) set to the operations it gave up on. */
    int (*quiesce)(uint64_t limit_ns, unsigned *late);
    /* Takes every lock a heap operation can wait on (as fork does), and drops them: a thread
     * stopped while they are held is in no heap's critical section (leak_scan.c). */
    void (*lock_all)(void);
    void (*unlock_all)(void);
    /* The heap memory (a segment, subsegment or large block's mapping) holding address, as
     * [*start, *end); false when address is in none. Any address; no lock. */
    bool (*region)(uintptr_t address, uintptr_t *start, uintptr_t *end);
} hti_rundown_provider;

/* Registers the provider (static storage, never freed); NULL unregisters. Safe to call before
 * any session and from a library constructor. */
void hti_trace_set_rundown_provider(const hti_rundown_provider *provider);

#endif
