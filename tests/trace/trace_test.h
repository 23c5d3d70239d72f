/* trace_test.h — helpers shared by the trace tests: a deterministic generator, temporary trace
 * paths, reading a whole trace, and the replay model.
 *
 * The model applies events in the order the reader hands them out, with the reconciliation
 * rule of docs/FORMAT.md ("Rundown"): RUNDOWN_BLOCK inserts a block only if unknown, ALLOC
 * inserts or replaces, FREE removes if known, REALLOC removes the old address and inserts the
 * new one, HEAP_DESTROY drops the heap's blocks; failed operations (Source INVALID) change
 * nothing. It also counts operations per heap, kind and Source, to compare with the heap's own
 * counters, and fails a trace with a LOST record whose first timestamp is after its last.
 * Everything is static: each test binary gets its own copy. */
#ifndef HEAPTRAIL_TESTS_TRACE_TEST_H
#define HEAPTRAIL_TESTS_TRACE_TEST_H

#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "heaptrail/heaptrail.h"
#include "heaptrail/reader.h"
#include "heaptrail/trace.h"

/* ---- generator ---- */

static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static inline size_t random_size(uint64_t *state)
{
    uint64_t r = rng_next(state);
    switch (r % 16) {
    case 0: return (size_t)(rng_next(state) % 4096) + 1024;        /* back end */
    case 1: return (size_t)(rng_next(state) % (64 << 10)) + 16384; /* beyond the LFH */
    case 2: return r % 64 == 2 ? (size_t)(600 << 10) : 200;        /* rarely a large block */
    default: return (size_t)(rng_next(state) % 512);               /* small: lookaside, LFH */
    }
}

/* ---- temporary files ---- */

static inline void temp_path(char *out, size_t size, const char *name)
{
    const char *dir = getenv("TMPDIR");
    snprintf(out, size, "%s/heaptrail-test-%d-%s.trace", dir && *dir ? dir : "/tmp", (int)getpid(),
             name);
}

static inline void start_session(const char *path, ht_trace_mode mode)
{
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.mode = mode;
    int error = ht_trace_start(&o);
    assert_int_equal(error, 0);
}

/* ---- the model ---- */

typedef struct model_block {
    uint64_t address; /* 0: empty, 1: tombstone */
    uint64_t heap;
    uint64_t size;
} model_block;

#define MODEL_HEAPS 16

typedef struct model {
    model_block *slots;
    size_t capacity, count, used;
    uint64_t heaps[MODEL_HEAPS];
    uint64_t counts[MODEL_HEAPS][HT_OP_COUNT][HT_SOURCE_COUNT];
    uint64_t events, lost, rundown_blocks, rundown_heaps, stacks_seen;
    uint64_t lost_reversed; /* LOST events whose first timestamp is after their last */
    uint64_t last_timestamp;
    bool unordered;
} model;

static inline void model_init(model *m)
{
    memset(m, 0, sizeof *m);
    m->capacity = 1 << 16;
    m->slots = calloc(m->capacity, sizeof *m->slots);
    assert_non_null(m->slots);
}

static inline void model_free(model *m)
{
    free(m->slots);
    m->slots = NULL;
}

static inline size_t model_hash(uint64_t address, size_t capacity)
{
    return (size_t)((address >> 4) * 0x9E3779B97F4A7C15u >> 20) & (capacity - 1);
}

static inline model_block *model_find(model *m, uint64_t address)
{
    size_t i = model_hash(address, m->capacity);
    for (;;) {
        model_block *b = &m->slots[i];
        if (b->address == address)
            return b;
        if (b->address == 0)
            return NULL;
        i = (i + 1) & (m->capacity - 1);
    }
}

static inline void model_insert(model *m, uint64_t address, uint64_t heap, uint64_t size);

static inline void model_grow(model *m)
{
    model_block *old = m->slots;
    size_t old_capacity = m->capacity;
    m->capacity *= 2;
    m->slots = calloc(m->capacity, sizeof *m->slots);
    assert_non_null(m->slots);
    m->count = m->used = 0;
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].address > 1)
            model_insert(m, old[i].address, old[i].heap, old[i].size);
    free(old);
}

static inline void model_insert(model *m, uint64_t address, uint64_t heap, uint64_t size)
{
    model_block *b = model_find(m, address);
    if (b) {
        b->heap = heap;
        b->size = size;
        return;
    }
    if ((m->used + 1) * 2 > m->capacity)
        model_grow(m);
    size_t i = model_hash(address, m->capacity);
    while (m->slots[i].address > 1)
        i = (i + 1) & (m->capacity - 1);
    if (m->slots[i].address == 0)
        m->used++;
    m->slots[i].address = address;
    m->slots[i].heap = heap;
    m->slots[i].size = size;
    m->count++;
}

static inline bool model_remove(model *m, uint64_t address)
{
    model_block *b = model_find(m, address);
    if (!b)
        return false;
    b->address = 1;
    m->count--;
    return true;
}

static inline int model_heap_index(model *m, uint64_t heap)
{
    for (int i = 0; i < MODEL_HEAPS; i++)
        if (m->heaps[i] == heap)
            return i;
    for (int i = 0; i < MODEL_HEAPS; i++)
        if (m->heaps[i] == 0) {
            m->heaps[i] = heap;
            return i;
        }
    return MODEL_HEAPS - 1;
}

static inline void model_count(model *m, uint64_t heap, int op, uint32_t source)
{
    if (source < HT_SOURCE_COUNT)
        m->counts[model_heap_index(m, heap)][op][source]++;
}

static inline void model_apply(model *m, const ht_event *e)
{
    m->events++;
    if (e->timestamp_ns < m->last_timestamp)
        m->unordered = true;
    m->last_timestamp = e->timestamp_ns;
    if (e->stack_id)
        m->stacks_seen++;
    switch (e->kind) {
    case HT_EVENT_ALLOC:
        model_count(m, e->u.alloc.HeapHandle, HT_OP_ALLOC, e->u.alloc.Source);
        if (e->u.alloc.Source != MEMORY_FROM_INVALID)
            model_insert(m, e->u.alloc.Address, e->u.alloc.HeapHandle, e->u.alloc.Size);
        break;
    case HT_EVENT_FREE:
        model_count(m, e->u.free.HeapHandle, HT_OP_FREE, e->u.free.Source);
        if (e->u.free.Source != MEMORY_FROM_INVALID)
            model_remove(m, e->u.free.Address);
        break;
    case HT_EVENT_REALLOC:
        model_count(m, e->u.realloc.HeapHandle, HT_OP_REALLOC, e->u.realloc.Source);
        if (e->u.realloc.Source != MEMORY_FROM_INVALID) {
            model_remove(m, e->u.realloc.OldAddress);
            model_insert(m, e->u.realloc.NewAddress, e->u.realloc.HeapHandle, e->u.realloc.NewSize);
        }
        break;
    case HT_EVENT_RUNDOWN_BLOCK:
        m->rundown_blocks++;
        if (!model_find(m, e->u.rundown_block.Address))
            model_insert(m, e->u.rundown_block.Address, e->u.rundown_block.HeapHandle,
                         e->u.rundown_block.Size);
        break;
    case HT_EVENT_RUNDOWN_HEAP: m->rundown_heaps++; break;
    case HT_EVENT_HEAP_DESTROY:
        for (size_t i = 0; i < m->capacity; i++)
            if (m->slots[i].address > 1 && m->slots[i].heap == e->u.heap_destroy.HeapHandle) {
                m->slots[i].address = 1;
                m->count--;
            }
        break;
    case HT_EVENT_LOST:
        m->lost += e->u.lost.Count;
        if (e->u.lost.FirstTimestamp > e->u.lost.LastTimestamp)
            m->lost_reversed++;
        break;
    default: break;
    }
}

/* Reads a whole trace into the model. Fails the test on any reader error. */
static inline void model_read_file(model *m, const char *path)
{
    char error[512] = "";
    ht_reader *reader = ht_reader_open(path, error, sizeof error);
    if (!reader)
        fail_msg("cannot open %s: %s", path, error);
    static ht_event events[1024];
    long n;
    while ((n = ht_reader_read(reader, events, 1024)) > 0)
        for (long i = 0; i < n; i++)
            model_apply(m, &events[i]);
    if (n < 0)
        fail_msg("reading %s: %s", path, ht_reader_error(reader));
    ht_reader_close(reader);
    if (m->lost_reversed)
        fail_msg("%s: %" PRIu64 " LOST records end before they begin", path, m->lost_reversed);
}

/* The model's blocks of one heap equal the heap's busy blocks (address and requested size). */
static inline void model_check_heap(model *m, ht_heap *heap)
{
    uint64_t handle = (uint64_t)(uintptr_t)heap;
    size_t busy = 0;
    ht_heap_entry entry;
    memset(&entry, 0, sizeof entry);
    while (ht_heap_walk(heap, &entry)) {
        if (!(entry.flags & HT_ENTRY_BUSY) || (entry.flags & HT_ENTRY_REGION))
            continue;
        busy++;
        model_block *b = model_find(m, (uint64_t)(uintptr_t)entry.data);
        if (!b)
            fail_msg("heap %p: live block %p (%zu bytes) missing from the trace", (void *)heap,
                     entry.data, entry.requested);
        if (b->heap != handle || b->size != entry.requested)
            fail_msg("heap %p: block %p is %zu bytes in heap %p, the trace says %" PRIu64
                     " bytes in heap 0x%" PRIx64,
                     (void *)heap, entry.data, entry.requested, (void *)heap, b->size, b->heap);
    }
    size_t modelled = 0;
    for (size_t i = 0; i < m->capacity; i++)
        if (m->slots[i].address > 1 && m->slots[i].heap == handle)
            modelled++;
    if (modelled != busy)
        fail_msg("heap %p: the trace leaves %zu live blocks, the heap has %zu", (void *)heap,
                 modelled, busy);
}

/* The model's operation counts of one heap equal the heap's counters (after - before). */
static inline void model_check_counters(model *m, ht_heap *heap, const ht_heap_counters *before)
{
    ht_heap_counters after;
    assert_true(ht_heap_counters_get(heap, &after));
    int index = model_heap_index(m, (uint64_t)(uintptr_t)heap);
    static const char *ops[] = {"ALLOC", "FREE", "REALLOC"};
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int source = 1; source < HT_SOURCE_COUNT; source++) {
            uint64_t want = after.counts[op][source] - (before ? before->counts[op][source] : 0);
            uint64_t got = m->counts[index][op][source];
            if (want != got)
                fail_msg("heap %p: %s with %s: the heap counted %" PRIu64
                         ", the trace has %" PRIu64,
                         (void *)heap, ops[op], ht_source_name((unsigned)source), want, got);
        }
}

/* A cmocka teardown: a failed test must not leave its session running into the next one. */
static inline int stop_session(void **state)
{
    (void)state;
    ht_trace_stop();
    return 0;
}

#endif
