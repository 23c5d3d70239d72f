/* test_tiers.c — the tier rules of docs/DESIGN.md, one deterministic scenario per test.
 *
 * LFH activation bucket by bucket (17 back-end allocations, then LOWFRAG; sizes of one bucket
 * share a counter, other buckets do not), the COMPATIBILITY and LOOKASIDE information
 * switches, lookaside LIFO order and depth, lookaside lists of destroyed heaps and exited
 * threads, cross-thread frees of LFH blocks, realloc Sources, walk flags per tier, fixed and
 * NO_SERIALIZE heaps (no front end), large blocks, aligned allocation. */
#include "heap_test.h"

#include <unistd.h>

static test_options options = {.seed = 1, .seeds = 1, .ops = 0, .threads = 1};

static const char usage[] = "usage: test_heap_tiers [--filter PATTERN] [--verbose]\n"
                            "  Deterministic scenarios for each tier rule of docs/DESIGN.md.\n";

/* ---- helpers ---------------------------------------------------------------------------- */

/* ht_heap_alloc that must succeed with a Source in allowed; returns the block, *source. */
static void *alloc_from(ht_heap *heap, ht_heap_counters *counters, size_t size, unsigned allowed,
                        int *source)
{
    ht_set_last_error(HT_OK);
    void *p = ht_heap_alloc(heap, 0, size);
    CHECK(p != NULL, "alloc(%zu) failed", size);
    CHECK(aligned16(p), "alloc(%zu) = %p not aligned", size, p);
    int s = EXPECT_COUNTED(heap, counters, HT_OP_ALLOC, allowed, "alloc(%zu) = %p", size, p);
    size_t usable = ht_heap_size(heap, 0, p);
    CHECK(usable != SIZE_MAX && usable >= size, "size(%p) = %zu for %zu bytes", p, usable, size);
    if (source)
        *source = s;
    return p;
}

static int free_from(ht_heap *heap, ht_heap_counters *counters, void *p, unsigned allowed)
{
    CHECK(ht_heap_free(heap, 0, p), "free(%p) failed", p);
    return EXPECT_COUNTED(heap, counters, HT_OP_FREE, allowed, "free(%p)", p);
}

static ht_heap *heap_with_lfh(uint32_t mode)
{
    ht_heap *heap = heap_create_checked(0, 0, 0);
    set_compatibility(heap, mode);
    return heap;
}

static void destroy(ht_heap *heap)
{
    CHECK(ht_heap_validate(heap, 0, NULL), "validate before destroy failed");
    CHECK(ht_heap_destroy(heap), "destroy failed");
}

/* The walk entry of block p (a block, not a region); fails if there is none. */
static ht_heap_entry entry_of(ht_heap *heap, const void *p)
{
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    const ht_heap_entry *found = walk_find(entries, count, p);
    CHECK(found != NULL, "walk does not show block %p", p);
    ht_heap_entry copy = *found;
    free(entries);
    return copy;
}

static size_t busy_blocks(ht_heap *heap)
{
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries), busy = 0;
    for (size_t i = 0; i < count; i++)
        busy += entry_is_busy_block(&entries[i]);
    free(entries);
    return busy;
}

static void run_thread(void *(*function)(void *), void *argument)
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, function, argument) == 0, "pthread_create failed");
    CHECK(pthread_join(thread, NULL) == 0, "pthread_join failed");
    CHECK(atomic_load(&worker_failures) == 0, "a worker thread failed");
}

/* ---- LFH activation ----------------------------------------------------------------------- */

/* Buckets of the SPEC.md table as [low, high] request sizes. */
static const size_t bucket_ranges[][2] = {
    {1, 16},      {33, 48},     {241, 256},     {497, 512},   {513, 544},
    {993, 1024},  {1025, 1088}, {1985, 2048},   {2049, 2176}, {3969, 4096},
    {7937, 8192}, {8193, 8704}, {15873, 16384},
};
#define RANGE_COUNT (sizeof bucket_ranges / sizeof bucket_ranges[0])

static void test_activation_after_17_per_bucket(void **state)
{
    (void)state;
    for (size_t r = 0; r < RANGE_COUNT; r++) {
        size_t low = bucket_ranges[r][0], high = bucket_ranges[r][1];
        CHECK(bucket_size(low) == high && bucket_size(high) == high,
              "test table: %zu and %zu are not one bucket", low, high);
        ht_heap *heap = heap_create_checked(0, 0, 0);
        CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 1, "default is not 1");
        ht_heap_counters counters;
        counters_read(heap, &counters);
        void *blocks[HT_LFH_ACTIVATION_THRESHOLD + 2];
        for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++) {
            size_t size = i % 3 == 0 ? low : i % 3 == 1 ? high : (low + high) / 2;
            blocks[i] = alloc_from(heap, &counters, size, SRC_BACKEND, NULL);
            ht_heap_entry entry = entry_of(heap, blocks[i]);
            CHECK(!(entry.flags & HT_ENTRY_LFH) && entry.source == MEMORY_FROM_MAINPATH,
                  "bucket %zu: allocation %u of %zu is in the LFH (flags 0x%x)", high, i + 1, size,
                  entry.flags);
        }
        blocks[17] = alloc_from(heap, &counters, high, SRC(MEMORY_FROM_LOWFRAG), NULL);
        ht_heap_entry entry = entry_of(heap, blocks[17]);
        CHECK((entry.flags & HT_ENTRY_LFH) && entry.source == MEMORY_FROM_LOWFRAG,
              "bucket %zu: 18th allocation not an LFH block (flags 0x%x)", high, entry.flags);
        CHECK(ht_heap_size(heap, 0, blocks[17]) >= high, "LFH slot smaller than its bucket");
        blocks[18] = alloc_from(heap, &counters, low, SRC(MEMORY_FROM_LOWFRAG), NULL);
        /* The next bucket up has its own counter. */
        if (high < HT_LFH_MAX_BLOCK) {
            void *next = alloc_from(heap, &counters, high + 1, SRC_BACKEND, NULL);
            free_from(heap, &counters, next, SRC_BACKEND);
        }
        for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++)
            free_from(heap, &counters, blocks[i], SRC_BACKEND);
        free_from(heap, &counters, blocks[17], SRC_FRONTEND);
        free_from(heap, &counters, blocks[18], SRC_FRONTEND);
        destroy(heap);
    }
}

static void test_buckets_have_separate_counters(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    /* 48 and 64 are neighbouring buckets; 40 shares 48's counter, 49 shares 64's. */
    void *a[HT_LFH_ACTIVATION_THRESHOLD], *b[HT_LFH_ACTIVATION_THRESHOLD];
    for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++) {
        a[i] = alloc_from(heap, &counters, i % 2 ? 40 : 48, SRC_BACKEND, NULL);
        b[i] = alloc_from(heap, &counters, i % 2 ? 49 : 64, SRC_BACKEND, NULL);
    }
    void *a18 = alloc_from(heap, &counters, 33, SRC(MEMORY_FROM_LOWFRAG), NULL);
    void *b18 = alloc_from(heap, &counters, 50, SRC(MEMORY_FROM_LOWFRAG), NULL);
    /* Untouched buckets are still on their first allocations. */
    void *c = alloc_from(heap, &counters, 80, SRC_BACKEND, NULL);
    void *d = alloc_from(heap, &counters, 16, SRC_BACKEND, NULL);
    /* Above the LFH limit nothing ever activates. */
    void *big[40];
    for (unsigned i = 0; i < 40; i++)
        big[i] = alloc_from(heap, &counters, HT_LFH_MAX_BLOCK + 1, SRC_BACKEND, NULL);
    for (unsigned i = 0; i < 40; i++)
        free_from(heap, &counters, big[i], SRC_BACKEND);
    for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++) {
        free_from(heap, &counters, a[i], SRC_BACKEND);
        free_from(heap, &counters, b[i], SRC_BACKEND);
    }
    free_from(heap, &counters, a18, SRC_FRONTEND);
    free_from(heap, &counters, b18, SRC_FRONTEND);
    free_from(heap, &counters, c, SRC_BACKEND);
    free_from(heap, &counters, d, SRC_BACKEND);
    destroy(heap);
}

/* The counter counts allocations, not live blocks: freeing does not hold activation back. */
static void test_activation_counts_allocations(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++) {
        void *p = alloc_from(heap, &counters, 200, SRC_BACKEND, NULL);
        free_from(heap, &counters, p, SRC_BACKEND);
    }
    void *p = alloc_from(heap, &counters, 200, SRC(MEMORY_FROM_LOWFRAG), NULL);
    free_from(heap, &counters, p, SRC(MEMORY_FROM_LOOKASIDE));
    destroy(heap);
}

/* 0 bytes is served as 1: bucket of 1..16, requested size 0. */
static void test_zero_size_requests(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *blocks[HT_LFH_ACTIVATION_THRESHOLD + 1];
    for (unsigned i = 0; i < HT_LFH_ACTIVATION_THRESHOLD; i++) {
        size_t size = i % 2 ? 16 : 0;
        blocks[i] = alloc_from(heap, &counters, size, SRC_BACKEND, NULL);
        CHECK(ht_heap_size(heap, 0, blocks[i]) >= 1, "0-byte block has no usable byte");
    }
    blocks[17] = alloc_from(heap, &counters, 0, SRC(MEMORY_FROM_LOWFRAG), NULL);
    for (unsigned i = 0; i <= HT_LFH_ACTIVATION_THRESHOLD; i++)
        free_from(heap, &counters, blocks[i],
                  i < HT_LFH_ACTIVATION_THRESHOLD ? SRC_BACKEND : SRC(MEMORY_FROM_LOOKASIDE));
    destroy(heap);
}

/* The requested size of a 0-byte block is 0 (heap.h: "the size the caller asked for"), in
 * ht_heap_requested_size, the walk and the summary. */
static void test_zero_size_requested(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *blocks[HT_LFH_ACTIVATION_THRESHOLD + 1];
    for (unsigned i = 0; i <= HT_LFH_ACTIVATION_THRESHOLD; i++)
        blocks[i] = alloc_from(heap, &counters, i % 2 ? 0 : 16, SRC_BACKEND | SRC_FRONTEND, NULL);
    CHECK(ht_heap_requested_size(heap, blocks[1]) == 0,
          "requested size of a 0-byte back-end block is %zu",
          ht_heap_requested_size(heap, blocks[1]));
    CHECK(ht_heap_requested_size(heap, blocks[17]) == 0,
          "requested size of a 0-byte LFH block is %zu", ht_heap_requested_size(heap, blocks[17]));
    ht_heap_entry entry = entry_of(heap, blocks[1]);
    CHECK(entry.requested == 0, "walk: requested of a 0-byte block is %zu", entry.requested);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.requested == 9 * 16, "summary requested %zu, callers asked 9 x 16 + 9 x 0",
          summary.requested);
    for (unsigned i = 0; i <= HT_LFH_ACTIVATION_THRESHOLD; i++)
        CHECK(ht_heap_free(heap, 0, blocks[i]), "free failed");
    destroy(heap);
}

static void test_zero_size_zero_memory_realloc(void **state)
{
    (void)state;
    /* A 0-byte block in a dirty 16-byte slot (taken from this thread's lookaside list, where
     * the slot below it in the list leaves a non-zero link in its first bytes), grown with
     * ZERO_MEMORY: the caller never wrote any of it, so all 100 bytes are zero. */
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    uint8_t *dirty[3];
    for (unsigned i = 0; i < 3; i++) {
        dirty[i] = alloc_from(heap, &counters, 16, SRC(MEMORY_FROM_LOWFRAG), NULL);
        memset(dirty[i], 0xA5, 16);
    }
    /* Push a block whose address has a non-zero low byte, then the one that comes back. */
    unsigned below = ((uintptr_t)dirty[0] & 0xFF) ? 0 : 1, top = 2;
    free_from(heap, &counters, dirty[below], SRC(MEMORY_FROM_LOOKASIDE));
    free_from(heap, &counters, dirty[top], SRC(MEMORY_FROM_LOOKASIDE));
    uint8_t *empty = alloc_from(heap, &counters, 0, SRC(MEMORY_FROM_LOOKASIDE), NULL);
    CHECK(empty == dirty[top], "lookaside did not return the last cached 16-byte slot");
    uint8_t *grown = ht_heap_realloc(heap, HT_HEAP_ZERO_MEMORY, empty, 100);
    CHECK(grown != NULL, "realloc 0 -> 100 failed");
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC_FRONTEND, "realloc 0 -> 100");
    size_t at = first_nonzero(grown, 0, 100);
    CHECK(at == 100, "ZERO_MEMORY realloc of a 0-byte block: byte %zu is 0x%02x", at, grown[at]);
    CHECK(ht_heap_free(heap, 0, grown), "free failed");
    destroy(heap);
}

/* ---- COMPATIBILITY information -------------------------------------------------------------- */

static void test_compatibility_information(void **state)
{
    (void)state;
    /* 2: the first allocation of every size up to 16 KiB is LOWFRAG. */
    ht_heap *heap = heap_create_checked(0, 0, 0);
    set_compatibility(heap, 2);
    CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 2, "query after set 2");
    ht_heap_counters counters;
    counters_read(heap, &counters);
    const size_t sizes[] = {0, 1, 100, 1000, 1024, 1025, 5000, 16383, 16384};
    void *blocks[16];
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        blocks[i] = alloc_from(heap, &counters, sizes[i], SRC(MEMORY_FROM_LOWFRAG), NULL);
    void *over = alloc_from(heap, &counters, HT_LFH_MAX_BLOCK + 1, SRC_BACKEND, NULL);
    free_from(heap, &counters, over, SRC_BACKEND);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        free_from(heap, &counters, blocks[i],
                  sizes[i] <= HT_LOOKASIDE_MAX_BLOCK ? SRC(MEMORY_FROM_LOOKASIDE)
                                                     : SRC(MEMORY_FROM_LOWFRAG));
    destroy(heap);

    /* 0: never LOWFRAG or LOOKASIDE, however many allocations. */
    heap = heap_create_checked(0, 0, 0);
    set_compatibility(heap, 0);
    CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 0, "query after set 0");
    counters_read(heap, &counters);
    for (unsigned round = 0; round < 3; round++) {
        void *many[100];
        for (unsigned i = 0; i < 100; i++)
            many[i] = alloc_from(heap, &counters, 64, SRC_BACKEND, NULL);
        for (unsigned i = 0; i < 100; i++)
            free_from(heap, &counters, many[i], SRC_BACKEND);
    }
    destroy(heap);

    /* Heaps without a front end report 0 and refuse 1 and 2. */
    struct {
        uint32_t flags;
        size_t maximum;
    } kinds[] = {{HT_HEAP_NO_SERIALIZE, 0}, {0, 1 << 20}, {HT_HEAP_NO_SERIALIZE, 1 << 20}};
    for (size_t k = 0; k < 3; k++) {
        heap = heap_create_checked(kinds[k].flags, 0, kinds[k].maximum);
        CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 0,
              "heap without front end (flags 0x%x, max %zu) does not report 0", kinds[k].flags,
              kinds[k].maximum);
        for (uint32_t value = 1; value <= 2; value++) {
            ht_set_last_error(HT_OK);
            CHECK(!ht_heap_set_information(heap, HT_HEAP_COMPATIBILITY_INFORMATION, &value,
                                           sizeof value),
                  "heap without front end accepted COMPATIBILITY %u", value);
            CHECK(ht_last_error() == HT_ERROR_INVALID_PARAMETER || ht_last_error() == HT_ERROR_BUSY,
                  "refusal set error %d", (int)ht_last_error());
        }
        CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 0, "query after refusal");
        counters_read(heap, &counters);
        void *many[40];
        for (unsigned i = 0; i < 40; i++)
            many[i] = alloc_from(heap, &counters, 64, SRC_BACKEND, NULL);
        for (unsigned i = 0; i < 40; i++)
            free_from(heap, &counters, many[i], SRC_BACKEND);
        destroy(heap);
    }
}

/* 2 -> 0 with LFH blocks alive: new allocations go to the back end, the old blocks are freed
 * to their subsegments, and blocks cached in lookaside lists are not handed out again. */
static void test_compatibility_switched_off_later(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *live[10], *cached[10];
    for (unsigned i = 0; i < 10; i++) {
        live[i] = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
        cached[i] = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
    }
    for (unsigned i = 0; i < 10; i++)
        free_from(heap, &counters, cached[i], SRC(MEMORY_FROM_LOOKASIDE));
    set_compatibility(heap, 0);
    CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 0, "query after 2 -> 0");
    void *fresh[20];
    for (unsigned i = 0; i < 20; i++) {
        fresh[i] = alloc_from(heap, &counters, 64, SRC_BACKEND, NULL);
        CHECK(!(entry_of(heap, fresh[i]).flags & HT_ENTRY_LFH), "LFH block after switch off");
    }
    for (unsigned i = 0; i < 10; i++)
        free_from(heap, &counters, live[i], SRC(MEMORY_FROM_LOWFRAG));
    for (unsigned i = 0; i < 20; i++)
        free_from(heap, &counters, fresh[i], SRC_BACKEND);
    CHECK(busy_blocks(heap) == 0, "busy blocks left");
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0 && summary.allocated == 0, "summary after all freed");
    destroy(heap);
}

/* ---- lookaside lists ------------------------------------------------------------------------ */

static void test_lookaside_lifo_and_depth(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    enum { N = HT_LOOKASIDE_DEPTH + 8 };
    void *blocks[N];
    for (unsigned i = 0; i < N; i++)
        blocks[i] = alloc_from(heap, &counters, 100, SRC(MEMORY_FROM_LOWFRAG), NULL);
    for (unsigned i = 0; i < N; i++) {
        int source = free_from(heap, &counters, blocks[i], SRC_FRONTEND);
        CHECK(source == (i < HT_LOOKASIDE_DEPTH ? MEMORY_FROM_LOOKASIDE : MEMORY_FROM_LOWFRAG),
              "free %u of %u: %s (depth %u)", i + 1, N, source_name(source), HT_LOOKASIDE_DEPTH);
    }
    /* LIFO: the last cached block comes back first; sizes of one bucket share the list. */
    for (unsigned i = 0; i < HT_LOOKASIDE_DEPTH; i++) {
        size_t size = 97 + i % 16; /* 97..112: bucket 112 */
        void *p = alloc_from(heap, &counters, size, SRC(MEMORY_FROM_LOOKASIDE), NULL);
        CHECK(p == blocks[HT_LOOKASIDE_DEPTH - 1 - i],
              "lookaside alloc %u returned %p, expected %p", i, p,
              blocks[HT_LOOKASIDE_DEPTH - 1 - i]);
        CHECK(ht_heap_requested_size(heap, p) == size, "requested size of a reused slot");
        blocks[HT_LOOKASIDE_DEPTH - 1 - i] = p;
    }
    void *extra = alloc_from(heap, &counters, 100, SRC(MEMORY_FROM_LOWFRAG), NULL);
    /* Another bucket has its own list, empty and with room, while this one is full again. */
    for (unsigned i = 0; i < HT_LOOKASIDE_DEPTH; i++)
        free_from(heap, &counters, blocks[i], SRC(MEMORY_FROM_LOOKASIDE));
    free_from(heap, &counters, extra, SRC(MEMORY_FROM_LOWFRAG));
    void *other = alloc_from(heap, &counters, 200, SRC(MEMORY_FROM_LOWFRAG), NULL);
    free_from(heap, &counters, other, SRC(MEMORY_FROM_LOOKASIDE));
    CHECK(alloc_from(heap, &counters, 200, SRC(MEMORY_FROM_LOOKASIDE), NULL) == other,
          "bucket 208 did not return its cached block");
    /* LFH blocks above 1 KiB never go to a lookaside list. */
    void *big = alloc_from(heap, &counters, HT_LOOKASIDE_MAX_BLOCK + 1, SRC(MEMORY_FROM_LOWFRAG),
                           NULL);
    free_from(heap, &counters, big, SRC(MEMORY_FROM_LOWFRAG));
    /* Blocks in lookaside lists are free for walk and summary. */
    CHECK(busy_blocks(heap) == 1, "walk: %zu busy blocks, expected 1", busy_blocks(heap));
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 1, "summary: %zu live blocks, expected 1", summary.live_blocks);
    CHECK(!(entry_of(heap, blocks[0]).flags & HT_ENTRY_BUSY),
          "a block in a lookaside list is reported busy");
    destroy(heap);
}

static void test_lookaside_zero_memory(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    uint8_t *p = alloc_from(heap, &counters, 300, SRC(MEMORY_FROM_LOWFRAG), NULL);
    memset(p, 0xC3, ht_heap_size(heap, 0, p));
    free_from(heap, &counters, p, SRC(MEMORY_FROM_LOOKASIDE));
    uint8_t *q = ht_heap_alloc(heap, HT_HEAP_ZERO_MEMORY, 300);
    EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_LOOKASIDE), "zeroed alloc");
    CHECK(q == p, "lookaside did not return the cached block");
    size_t at = first_nonzero(q, 0, 300);
    CHECK(at == 300, "ZERO_MEMORY block from the lookaside: byte %zu is 0x%02x", at, q[at]);
    free_from(heap, &counters, q, SRC(MEMORY_FROM_LOOKASIDE));
    destroy(heap);
}

static void test_lookaside_information(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    CHECK(query_u32(heap, HT_HEAP_LOOKASIDE_INFORMATION) == 1, "lookaside not on by default");
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *cached[5], *blocks[10];
    for (unsigned i = 0; i < 5; i++)
        cached[i] = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
    for (unsigned i = 0; i < 5; i++)
        free_from(heap, &counters, cached[i], SRC(MEMORY_FROM_LOOKASIDE));
    set_lookaside(heap, 0);
    CHECK(query_u32(heap, HT_HEAP_LOOKASIDE_INFORMATION) == 0, "query after set 0");
    /* Off: nothing is served from or cached in a lookaside list, the cached blocks included. */
    for (unsigned i = 0; i < 10; i++)
        blocks[i] = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
    for (unsigned i = 0; i < 10; i++)
        free_from(heap, &counters, blocks[i], SRC(MEMORY_FROM_LOWFRAG));
    CHECK(ht_heap_validate(heap, 0, NULL), "validate after switch off");
    set_lookaside(heap, 1);
    CHECK(query_u32(heap, HT_HEAP_LOOKASIDE_INFORMATION) == 1, "query after set 1");
    void *p = alloc_from(heap, &counters, 64, SRC_FRONTEND, NULL);
    free_from(heap, &counters, p, SRC(MEMORY_FROM_LOOKASIDE));
    CHECK(alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOOKASIDE), NULL) == p,
          "lookaside back on: cached block not returned");
    CHECK(ht_heap_free(heap, 0, p), "free");
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0, "live blocks %zu", summary.live_blocks);
    destroy(heap);

    /* Heaps without a front end have no lookaside lists. */
    ht_heap *plain = heap_create_checked(HT_HEAP_NO_SERIALIZE, 0, 0);
    CHECK(query_u32(plain, HT_HEAP_LOOKASIDE_INFORMATION) == 0, "NO_SERIALIZE: lookaside on");
    destroy(plain);
    ht_heap *fixed = heap_create_checked(0, 0, 1 << 20);
    CHECK(query_u32(fixed, HT_HEAP_LOOKASIDE_INFORMATION) == 0, "fixed: lookaside on");
    destroy(fixed);
}

/* Lookaside entries of a destroyed heap never come back, even when the next heap gets the same
 * address. */
static void check_heap_serves_own_blocks(ht_heap *heap, bool lfh_on, const char *what)
{
    ht_heap_counters counters;
    counters_read(heap, &counters);
    const size_t sizes[] = {64, 500, 1000};
    void *blocks[60];
    for (unsigned i = 0; i < 60; i++) {
        size_t size = sizes[i % 3];
        blocks[i] = alloc_from(heap, &counters, size,
                               lfh_on ? SRC(MEMORY_FROM_LOWFRAG) : SRC_BACKEND, NULL);
        CHECK(ht_heap_validate(heap, 0, blocks[i]), "%s: block %p is not the new heap's", what,
              blocks[i]);
        memset(blocks[i], 0x5A, size);
    }
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    for (unsigned i = 0; i < 60; i++) {
        const ht_heap_entry *entry = walk_find(entries, count, blocks[i]);
        CHECK(entry && (entry->flags & HT_ENTRY_BUSY), "%s: walk does not show %p busy", what,
              blocks[i]);
    }
    free(entries);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: validate", what);
    for (unsigned i = 0; i < 60; i++)
        CHECK(ht_heap_free(heap, 0, blocks[i]), "free");
}

/* Leaves 20 blocks in each of three lookaside lists of this thread (heap with LFH on). */
static void fill_lookaside(ht_heap *heap)
{
    ht_heap_counters counters;
    counters_read(heap, &counters);
    const size_t sizes[] = {64, 500, 1000};
    void *blocks[60];
    for (unsigned i = 0; i < 60; i++)
        blocks[i] = alloc_from(heap, &counters, sizes[i % 3], SRC_FRONTEND, NULL);
    for (unsigned i = 0; i < 60; i++)
        free_from(heap, &counters, blocks[i], SRC(MEMORY_FROM_LOOKASIDE));
}

static void test_destroyed_heap_lookaside_same_thread(void **state)
{
    (void)state;
    unsigned same_address = 0;
    for (unsigned round = 0; round < 16; round++) {
        ht_heap *a = heap_with_lfh(2);
        fill_lookaside(a);
        CHECK(ht_heap_destroy(a), "destroy A");
        bool lfh_on = round % 2 == 0;
        ht_heap *b = heap_create_checked(0, 0, 0);
        same_address += b == a;
        set_compatibility(b, lfh_on ? 2 : 0);
        check_heap_serves_own_blocks(b, lfh_on, "heap after a destroyed one");
        destroy(b);
    }
    if (options.verbose)
        printf("  new heap at the destroyed heap's address %u/16 times\n", same_address);
}

typedef struct handoff {
    pthread_barrier_t barrier;
    ht_heap *heap;
    bool lfh_on;
} handoff;

static void *lookaside_then_new_heap(void *argument)
{
    handoff *h = argument;
    current_context.thread = 1;
    fill_lookaside(h->heap);
    pthread_barrier_wait(&h->barrier); /* main destroys the heap and creates another */
    pthread_barrier_wait(&h->barrier);
    check_heap_serves_own_blocks(h->heap, h->lfh_on, "other thread, heap after a destroyed one");
    fill_lookaside(h->heap); /* leave entries behind for thread exit */
    return NULL;
}

static void *cache_and_exit(void *argument)
{
    handoff *h = argument;
    current_context.thread = 1;
    fill_lookaside(h->heap);
    pthread_barrier_wait(&h->barrier);
    return NULL; /* exits with cached blocks while main destroys the heap */
}

static void test_destroyed_heap_lookaside_other_thread(void **state)
{
    (void)state;
    install_crash_report();
    for (unsigned round = 0; round < 8; round++) {
        handoff h;
        pthread_barrier_init(&h.barrier, NULL, 2);
        h.heap = heap_with_lfh(2);
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, lookaside_then_new_heap, &h) == 0, "thread");
        pthread_barrier_wait(&h.barrier);
        CHECK(ht_heap_destroy(h.heap), "destroy A while a thread caches its blocks");
        h.heap = heap_create_checked(0, 0, 0);
        h.lfh_on = true;
        set_compatibility(h.heap, 2);
        pthread_barrier_wait(&h.barrier);
        CHECK(pthread_join(thread, NULL) == 0, "join");
        CHECK(atomic_load(&worker_failures) == 0, "worker failed");
        CHECK(ht_heap_validate(h.heap, 0, NULL), "validate after the thread exited");
        CHECK(busy_blocks(h.heap) == 0, "busy blocks after the thread exited");
        ht_heap_summary summary;
        summary_read(h.heap, &summary);
        CHECK(summary.live_blocks == 0, "live blocks %zu", summary.live_blocks);
        destroy(h.heap);
        pthread_barrier_destroy(&h.barrier);
    }
    /* A thread exits with entries of a heap destroyed meanwhile. */
    for (unsigned round = 0; round < 8; round++) {
        handoff h;
        pthread_barrier_init(&h.barrier, NULL, 2);
        h.heap = heap_with_lfh(2);
        h.lfh_on = true;
        pthread_t thread;
        CHECK(pthread_create(&thread, NULL, cache_and_exit, &h) == 0, "thread");
        pthread_barrier_wait(&h.barrier);
        /* The worker exits with cached blocks of h.heap; destroy races the exit. */
        CHECK(ht_heap_destroy(h.heap), "destroy while the thread exits");
        CHECK(pthread_join(thread, NULL) == 0, "join");
        CHECK(atomic_load(&worker_failures) == 0, "worker failed");
        ht_heap *next = heap_with_lfh(2);
        check_heap_serves_own_blocks(next, true, "heap after a destroy raced a thread exit");
        destroy(next);
        pthread_barrier_destroy(&h.barrier);
    }
}

/* ---- thread exit and cross-thread frees ----------------------------------------------------- */

typedef struct blocks_arg {
    ht_heap *heap;
    void *blocks[128];
    size_t sizes[128];
    unsigned count;
} blocks_arg;

static void *alloc_and_cache(void *argument)
{
    blocks_arg *a = argument;
    current_context.thread = 1;
    ht_heap_counters counters;
    counters_read(a->heap, &counters);
    for (unsigned i = 0; i < a->count; i++)
        a->blocks[i] = alloc_from(a->heap, &counters, a->sizes[i], SRC(MEMORY_FROM_LOWFRAG), NULL);
    for (unsigned i = 0; i < a->count; i++)
        free_from(a->heap, &counters, a->blocks[i], SRC(MEMORY_FROM_LOOKASIDE));
    return NULL;
}

static void test_thread_exit_returns_lookaside(void **state)
{
    (void)state;
    install_crash_report();
    ht_heap *heap = heap_with_lfh(2);
    blocks_arg a = {.heap = heap, .count = 20};
    for (unsigned i = 0; i < a.count; i++)
        a.sizes[i] = 64;
    run_thread(alloc_and_cache, &a);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate after the thread exited");
    /* Each block lies in a free entry of the walk (its own free slot, or a free back-end block
     * if its subsegment was released), and in no busy one. */
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    for (unsigned i = 0; i < a.count; i++) {
        uintptr_t p = (uintptr_t)a.blocks[i];
        bool in_free = false;
        for (size_t k = 0; k < count; k++) {
            const ht_heap_entry *e = &entries[k];
            if (!entry_is_block(e))
                continue;
            bool covers = (uintptr_t)e->data <= p && p < (uintptr_t)e->data + e->size;
            CHECK(!(covers && (e->flags & HT_ENTRY_BUSY)),
                  "exited thread's cached block %p is inside busy entry %p (flags 0x%x)",
                  a.blocks[i], e->data, e->flags);
            in_free |= covers;
        }
        CHECK(in_free, "walk shows no free entry holding the exited thread's block %p",
              a.blocks[i]);
    }
    free(entries);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0 && summary.allocated == 0, "summary: %zu live, %zu allocated",
          summary.live_blocks, summary.allocated);
    /* The blocks went back to the LFH: this thread gets every one of them again. */
    ht_heap_counters counters;
    counters_read(heap, &counters);
    enum { CAP = 20000 };
    void **mine = malloc(CAP * sizeof *mine);
    CHECK(mine != NULL, "out of memory");
    unsigned found = 0, n = 0;
    while (found < a.count && n < CAP) {
        void *p = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
        mine[n++] = p;
        for (unsigned i = 0; i < a.count; i++)
            found += a.blocks[i] == p;
    }
    CHECK(found == a.count,
          "only %u of the exited thread's %u cached blocks came back in %u "
          "allocations",
          found, a.count, n);
    for (unsigned i = 0; i < n; i++)
        CHECK(ht_heap_free(heap, 0, mine[i]), "free");
    free(mine);
    destroy(heap);
}

typedef struct cross_arg {
    ht_heap *heap;
    void *small[64];
    void *medium[64];
} cross_arg;

static void *cross_allocate(void *argument)
{
    cross_arg *c = argument;
    current_context.thread = 1;
    ht_heap_counters counters;
    counters_read(c->heap, &counters);
    for (unsigned i = 0; i < 64; i++) {
        c->small[i] = alloc_from(c->heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
        c->medium[i] = alloc_from(c->heap, &counters, 2000, SRC(MEMORY_FROM_LOWFRAG), NULL);
        memset(c->small[i], (int)i, 64);
        memset(c->medium[i], (int)i, 2000);
    }
    return NULL;
}

static void *cross_free(void *argument)
{
    cross_arg *c = argument;
    current_context.thread = 2;
    ht_heap_counters counters;
    counters_read(c->heap, &counters);
    for (unsigned i = 0; i < 64; i++) {
        const uint8_t *s = c->small[i], *m = c->medium[i];
        CHECK(s[0] == i && s[63] == i && m[0] == i && m[1999] == i, "contents of block %u", i);
        /* Another thread's slots go back to their subsegment, never to this thread's list. */
        free_from(c->heap, &counters, c->small[i], SRC(MEMORY_FROM_LOWFRAG));
        free_from(c->heap, &counters, c->medium[i], SRC(MEMORY_FROM_LOWFRAG));
    }
    CHECK(ht_heap_validate(c->heap, 0, NULL), "validate after cross-thread frees");
    /* The allocating thread is gone: this one adopts its subsegment, frees and all. */
    void *p = alloc_from(c->heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
    free_from(c->heap, &counters, p, SRC(MEMORY_FROM_LOOKASIDE)); /* its own now: cached */
    void *q = alloc_from(c->heap, &counters, 64, SRC(MEMORY_FROM_LOOKASIDE), NULL);
    CHECK(q == p, "lookaside of the freeing thread: %p, not %p", q, p);
    free_from(c->heap, &counters, q, SRC(MEMORY_FROM_LOOKASIDE));
    return NULL;
}

static void test_cross_thread_free(void **state)
{
    (void)state;
    install_crash_report();
    ht_heap *heap = heap_with_lfh(2);
    cross_arg c = {.heap = heap};
    run_thread(cross_allocate, &c);
    run_thread(cross_free, &c);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate");
    CHECK(busy_blocks(heap) == 0, "busy blocks left");
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0 && summary.allocated == 0, "summary after cross frees");
    ht_heap_counters counters;
    counters_read(heap, &counters);
    CHECK(counters_total(&counters, HT_OP_ALLOC) == 130 &&
              counters_total(&counters, HT_OP_FREE) == 130,
          "counters summed over threads: %" PRIu64 " allocs, %" PRIu64 " frees",
          counters_total(&counters, HT_OP_ALLOC), counters_total(&counters, HT_OP_FREE));
    destroy(heap);
}

/* ---- realloc -------------------------------------------------------------------------------- */

static void *realloc_expect(ht_heap *heap, ht_heap_counters *counters, uint32_t flags, void *p,
                            size_t size, unsigned allowed, const char *what)
{
    size_t old = ht_heap_requested_size(heap, p);
    void *q = ht_heap_realloc(heap, flags, p, size);
    CHECK(q != NULL, "%s: realloc(%p, %zu -> %zu) failed", what, p, old, size);
    EXPECT_COUNTED(heap, counters, HT_OP_REALLOC, allowed, "%s: realloc(%p, %zu -> %zu) = %p", what,
                   p, old, size, q);
    CHECK(ht_heap_requested_size(heap, q) == size && ht_heap_size(heap, 0, q) >= size,
          "%s: sizes after realloc", what);
    size_t kept = old < size ? old : size;
    CHECK(pattern_mismatch(q, 7, kept) == kept, "%s: contents lost", what);
    pattern_fill(q, 7, size);
    return q;
}

static void test_realloc_sources_lfh(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *p = alloc_from(heap, &counters, 100, SRC(MEMORY_FROM_LOWFRAG), NULL);
    pattern_fill(p, 7, 100);
    size_t slot = ht_heap_size(heap, 0, p);
    CHECK(slot >= 100 && slot <= 128, "slot of 100 bytes is %zu", slot);
    /* In place while the slot fits and is at most twice the new size. */
    CHECK(realloc_expect(heap, &counters, 0, p, slot, SRC(MEMORY_FROM_LOWFRAG), "grow in slot") ==
              p,
          "grow within the slot moved");
    CHECK(realloc_expect(heap, &counters, 0, p, (slot + 1) / 2 + 8, SRC(MEMORY_FROM_LOWFRAG),
                         "shrink in slot") == p,
          "shrink to just over half the slot moved");
    /* Too small for the slot: moves to its own bucket. */
    void *q = realloc_expect(heap, &counters, 0, p, 20, SRC(MEMORY_FROM_LOWFRAG), "shrink a lot");
    CHECK(q != p, "shrink to 20 bytes stayed in a %zu-byte slot", slot);
    /* In-place-only beyond the slot fails, the block intact. */
    size_t qslot = ht_heap_size(heap, 0, q);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, q, qslot + 1) == NULL,
          "in-place growth past the slot succeeded");
    CHECK(ht_last_error() == HT_ERROR_NOT_IN_PLACE, "error %d", (int)ht_last_error());
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "in-place-only");
    CHECK(pattern_mismatch(q, 7, 20) == 20 && ht_heap_requested_size(heap, q) == 20,
          "block changed by a failed realloc");
    /* Grows out of the slot: a new LFH block of the new bucket. */
    q = realloc_expect(heap, &counters, 0, q, 5000, SRC(MEMORY_FROM_LOWFRAG), "to 5000");
    /* Large: SLOWPATH, moved or resized in place. */
    q = realloc_expect(heap, &counters, 0, q, 600000, SRC(MEMORY_FROM_SLOWPATH), "to large");
    CHECK(entry_of(heap, q).flags & HT_ENTRY_LARGE, "600000-byte block is not a large block");
    q = realloc_expect(heap, &counters, 0, q, 700000, SRC(MEMORY_FROM_SLOWPATH), "large grows");
    q = realloc_expect(heap, &counters, 0, q, HT_LARGE_THRESHOLD, SRC(MEMORY_FROM_SLOWPATH),
                       "large shrinks");
    free_from(heap, &counters, q, SRC(MEMORY_FROM_SLOWPATH));
    destroy(heap);
}

static void test_realloc_sources_backend(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *a = alloc_from(heap, &counters, 4000, SRC_BACKEND, NULL);
    void *b = alloc_from(heap, &counters, 4000, SRC_BACKEND, NULL);
    pattern_fill(a, 7, 4000);
    /* Shrink: in place, MAINPATH; the tail becomes a free neighbour. */
    CHECK(realloc_expect(heap, &counters, 0, a, 2000, SRC(MEMORY_FROM_MAINPATH), "shrink") == a,
          "back-end shrink moved");
    /* Grow into that free neighbour: in place, MAINPATH. */
    CHECK(realloc_expect(heap, &counters, 0, a, 3000, SRC(MEMORY_FROM_MAINPATH), "grow") == a,
          "growth into a free neighbour moved");
    CHECK(realloc_expect(heap, &counters, HT_HEAP_REALLOC_IN_PLACE_ONLY, a, 3500,
                         SRC(MEMORY_FROM_MAINPATH), "grow in place only") == a,
          "in-place-only growth into a free neighbour moved");
    /* b is busy right after: growth past it moves, the old block is freed silently. */
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, a, 100000) == NULL,
          "in-place-only growth over a busy neighbour succeeded");
    CHECK(ht_last_error() == HT_ERROR_NOT_IN_PLACE, "error %d", (int)ht_last_error());
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "in-place-only");
    void *moved = realloc_expect(heap, &counters, 0, a, 100000, SRC_BACKEND, "grow past b");
    CHECK(moved != a, "grew over a busy neighbour in place");
    CHECK(ht_heap_size(heap, 0, a) == SIZE_MAX, "old block still a block after the move");
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 2, "live blocks %zu after a move", summary.live_blocks);
    free_from(heap, &counters, moved, SRC_BACKEND);
    free_from(heap, &counters, b, SRC_BACKEND);
    /* Large to small: in place (SLOWPATH) or moved to the back end. */
    void *large = alloc_from(heap, &counters, HT_LARGE_THRESHOLD + 4096, SRC(MEMORY_FROM_SLOWPATH),
                             NULL);
    pattern_fill(large, 7, HT_LARGE_THRESHOLD + 4096);
    void *small = realloc_expect(heap, &counters, 0, large, 1000, SRC_BACKEND, "large to small");
    free_from(heap, &counters, small, small == large ? SRC(MEMORY_FROM_SLOWPATH) : SRC_BACKEND);
    destroy(heap);
}

/* ---- walk, queries, other heap kinds ------------------------------------------------------- */

static void test_walk_flags_per_tier(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *lfh = alloc_from(heap, &counters, 64, SRC(MEMORY_FROM_LOWFRAG), NULL);
    void *back = alloc_from(heap, &counters, 20000, SRC_BACKEND, NULL);
    void *large = alloc_from(heap, &counters, 600000, SRC(MEMORY_FROM_SLOWPATH), NULL);
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    struct {
        void *p;
        size_t size;
        uint32_t flags;
        ht_source source;
    } expected[] = {{lfh, 64, HT_ENTRY_BUSY | HT_ENTRY_LFH, MEMORY_FROM_LOWFRAG},
                    {back, 20000, HT_ENTRY_BUSY, MEMORY_FROM_MAINPATH},
                    {large, 600000, HT_ENTRY_BUSY | HT_ENTRY_LARGE, MEMORY_FROM_SLOWPATH}};
    for (size_t k = 0; k < 3; k++) {
        const ht_heap_entry *e = walk_find(entries, count, expected[k].p);
        CHECK(e != NULL, "walk misses %p", expected[k].p);
        CHECK((e->flags & (HT_ENTRY_BUSY | HT_ENTRY_LFH | HT_ENTRY_LARGE)) == expected[k].flags &&
                  e->source == expected[k].source && e->requested == expected[k].size &&
                  e->size == ht_heap_size(heap, 0, expected[k].p),
              "entry %p: flags 0x%x source %s requested %zu size %zu", e->data, e->flags,
              source_name(e->source), e->requested, e->size);
    }
    /* heap.h: HT_ENTRY_REGION entries are "a segment or large mapping (data, size = its
     * range)": every block lies in one. */
    for (size_t k = 0; k < 3; k++) {
        const ht_heap_entry *e = walk_find(entries, count, expected[k].p);
        bool inside = false;
        for (size_t i = 0; i < count; i++) {
            const ht_heap_entry *r = &entries[i];
            if ((r->flags & HT_ENTRY_REGION) && (uintptr_t)r->data <= (uintptr_t)e->data &&
                (uintptr_t)e->data + e->size <= (uintptr_t)r->data + r->size)
                inside = true;
        }
        CHECK(inside, "%s block %p is in no REGION entry of the walk",
              k == 0   ? "LFH"
              : k == 1 ? "back-end"
                       : "large",
              e->data);
    }
    free(entries);
    free_from(heap, &counters, lfh, SRC(MEMORY_FROM_LOOKASIDE));
    free_from(heap, &counters, back, SRC_BACKEND);
    free_from(heap, &counters, large, SRC(MEMORY_FROM_SLOWPATH));
    destroy(heap);
}

/* heap.h allows walking a heap others are using ("an approximate picture"): blocks freed,
 * segments released and large blocks unmapped between two ht_heap_walk calls must not make
 * the walk crash or loop. Here the changes come from this thread, between steps. */
static void walk_while_freeing(size_t size, unsigned count, uint32_t trigger_flags, unsigned skip,
                               const char *what)
{
    ht_heap *heap = heap_with_lfh(2);
    set_lookaside(heap, 0);
    static void *blocks[1024]; /* static: nothing leaks if the walk crashes the test */
    CHECK(count <= 1024, "%s: too many blocks", what);
    for (unsigned i = 0; i < count; i++) {
        blocks[i] = ht_heap_alloc(heap, 0, size);
        CHECK(blocks[i] != NULL, "%s: alloc", what);
    }
    ht_heap_entry entry;
    memset(&entry, 0, sizeof entry);
    unsigned steps = 0, seen = 0;
    bool freed = false;
    while (ht_heap_walk(heap, &entry)) {
        CHECK(++steps < 1000000, "%s: walk does not end", what);
        if (!freed && (entry.flags & HT_ENTRY_BUSY) &&
            (entry.flags & (HT_ENTRY_LFH | HT_ENTRY_LARGE)) == trigger_flags && seen++ == skip) {
            for (unsigned i = 0; i < count; i++)
                CHECK(ht_heap_free(heap, 0, blocks[i]), "%s: free", what);
            (void)ht_heap_compact(heap, 0);
            freed = true;
        }
    }
    CHECK(freed, "%s: the walk never reached the blocks", what);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: validate after the walk", what);
    destroy(heap);
}

static void test_walk_while_large_blocks_unmapped(void **state)
{
    (void)state;
    walk_while_freeing(2u << 20, 8, HT_ENTRY_LARGE, 0, "large blocks unmapped");
}

static void test_walk_while_subsegments_released(void **state)
{
    (void)state;
    walk_while_freeing(16000, 600, HT_ENTRY_LFH, 590, "LFH subsegments released");
}

static void test_walk_while_segments_released(void **state)
{
    (void)state;
    walk_while_freeing(200000, 60, 0, 55, "back-end segments released");
}

static void test_queries_are_not_counted(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *p = alloc_from(heap, &counters, 100, SRC_BACKEND, NULL);
    (void)ht_heap_size(heap, 0, p);
    (void)ht_heap_requested_size(heap, p);
    (void)ht_heap_validate(heap, 0, p);
    (void)ht_heap_validate(heap, 0, NULL);
    (void)busy_blocks(heap);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    (void)ht_heap_compact(heap, 0);
    CHECK(ht_heap_lock(heap) && ht_heap_unlock(heap), "lock/unlock");
    (void)query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION);
    CHECK(ht_heap_free(heap, 0, NULL), "free(NULL) failed");
    EXPECT_NOT_COUNTED(heap, &counters, "queries or free(NULL) were counted");
    free_from(heap, &counters, p, SRC_BACKEND);
    destroy(heap);
}

static void test_large_threshold(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *below = alloc_from(heap, &counters, HT_LARGE_THRESHOLD - 1, SRC_BACKEND, NULL);
    void *at = alloc_from(heap, &counters, HT_LARGE_THRESHOLD, SRC(MEMORY_FROM_SLOWPATH), NULL);
    void *above = alloc_from(heap, &counters, 3u << 20, SRC(MEMORY_FROM_SLOWPATH), NULL);
    CHECK(!(entry_of(heap, below).flags & HT_ENTRY_LARGE), "0x7EFFF bytes mapped on its own");
    CHECK(entry_of(heap, at).flags & HT_ENTRY_LARGE, "0x7F000 bytes not mapped on its own");
    memset(above, 0x11, 3u << 20);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.allocated >= (3u << 20) + 2 * HT_LARGE_THRESHOLD - 1, "allocated %zu",
          summary.allocated);
    free_from(heap, &counters, below, SRC_BACKEND);
    free_from(heap, &counters, at, SRC(MEMORY_FROM_SLOWPATH));
    free_from(heap, &counters, above, SRC(MEMORY_FROM_SLOWPATH));
    destroy(heap);
}

static void test_fixed_heap_has_no_front_end(void **state)
{
    (void)state;
    const size_t maximum = 1 << 20;
    ht_heap *heap = heap_create_checked(0, 0, maximum);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *small[100];
    for (unsigned i = 0; i < 100; i++)
        small[i] = alloc_from(heap, &counters, 64, SRC_BACKEND, NULL);
    for (unsigned i = 0; i < 100; i++)
        free_from(heap, &counters, small[i], SRC_BACKEND);
    void *blocks[256];
    unsigned n = 0;
    for (;;) {
        CHECK(n < 256, "a 1 MiB fixed heap took 256 blocks of 8 KiB");
        ht_set_last_error(HT_OK);
        void *p = ht_heap_alloc(heap, 0, 8192);
        if (!p)
            break;
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC_BACKEND, "fill");
        blocks[n++] = p;
    }
    CHECK(ht_last_error() == HT_ERROR_HEAP_FULL, "full fixed heap: error %d", (int)ht_last_error());
    EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "alloc on full heap");
    CHECK(n >= 64, "a 1 MiB fixed heap held only %u blocks of 8 KiB", n);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.committed <= maximum, "committed %zu > maximum %zu", summary.committed, maximum);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate full heap");
    free_from(heap, &counters, blocks[n / 2], SRC_BACKEND);
    blocks[n / 2] = alloc_from(heap, &counters, 8192, SRC_BACKEND, NULL);
    for (unsigned i = 0; i < n; i++)
        free_from(heap, &counters, blocks[i], SRC_BACKEND);
    destroy(heap);
}

static void test_no_serialize_has_no_front_end(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(HT_HEAP_NO_SERIALIZE, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    const size_t sizes[] = {0, 16, 64, 500, 1024, 8000, 16384};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        void *many[40];
        for (unsigned i = 0; i < 40; i++)
            many[i] = alloc_from(heap, &counters, sizes[s], SRC_BACKEND, NULL);
        for (unsigned i = 0; i < 40; i++)
            free_from(heap, &counters, many[i], SRC_BACKEND);
    }
    destroy(heap);
}

static void test_aligned_allocation(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    const size_t alignments[] = {16, 32, 64, 256, 4096, 65536};
    const size_t sizes[] = {1, 100, 5000, 100000, HT_LARGE_THRESHOLD + 1};
    for (size_t a = 0; a < sizeof alignments / sizeof alignments[0]; a++) {
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            void *p = ht_heap_alloc_aligned(heap, 0, alignments[a], sizes[s]);
            CHECK(p != NULL && (uintptr_t)p % alignments[a] == 0, "aligned(%zu, %zu) = %p",
                  alignments[a], sizes[s], p);
            EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC_BACKEND | SRC_FRONTEND,
                           "aligned(%zu, %zu)", alignments[a], sizes[s]);
            CHECK(ht_heap_size(heap, 0, p) >= sizes[s] && ht_heap_validate(heap, 0, p),
                  "aligned block %p", p);
            memset(p, 0x77, sizes[s]);
            CHECK(ht_heap_validate(heap, 0, NULL), "validate after aligned(%zu, %zu)",
                  alignments[a], sizes[s]);
            free_from(heap, &counters, p, SRC_BACKEND | SRC_FRONTEND);
        }
    }
    destroy(heap);
}

/* heap.h: compact returns "the size of the largest free block that could be allocated without
 * growing the heap": an allocation of that size then comes from the free lists. */
static void test_compact_largest_block(void **state)
{
    (void)state;
    const uint32_t kinds[] = {HT_HEAP_NO_SERIALIZE, 0};
    for (size_t k = 0; k < 2; k++) {
        ht_heap *heap = heap_create_checked(kinds[k], 0, 256 << 10);
        ht_heap_counters counters;
        counters_read(heap, &counters);
        void *blocks[4];
        for (unsigned i = 0; i < 4; i++)
            blocks[i] = alloc_from(heap, &counters, 50000, SRC_BACKEND, NULL);
        free_from(heap, &counters, blocks[1], SRC_BACKEND);
        free_from(heap, &counters, blocks[2], SRC_BACKEND);
        size_t largest = ht_heap_compact(heap, 0);
        CHECK(largest >= 100000 && largest < (256u << 10), "compact: largest free block %zu",
              largest);
        void *p = alloc_from(heap, &counters, largest, SRC(MEMORY_FROM_MAINPATH), NULL);
        CHECK(ht_heap_validate(heap, 0, NULL), "validate");
        free_from(heap, &counters, p, SRC_BACKEND);
        free_from(heap, &counters, blocks[0], SRC_BACKEND);
        free_from(heap, &counters, blocks[3], SRC_BACKEND);
        destroy(heap);
    }
}

/* ---- creation, heap list, lock ------------------------------------------------------------ */

/* heap.h: "initial_size is committed at once (rounded to pages)". */
static void test_initial_size_committed(void **state)
{
    (void)state;
    const size_t sizes[][2] = {{1 << 20, 0},
                               {3 << 20, 0},
                               {512 << 10, 512 << 10},
                               {100000, 1 << 20}};
    for (size_t i = 0; i < 4; i++) {
        ht_heap *heap = heap_create_checked(0, sizes[i][0], sizes[i][1]);
        ht_heap_summary summary;
        summary_read(heap, &summary);
        CHECK(summary.committed >= sizes[i][0], "create(initial %zu, maximum %zu): committed %zu",
              sizes[i][0], sizes[i][1], summary.committed);
        destroy(heap);
    }
}

/* The permissions of the mapping holding address, from /proc/self/maps ("rwxp"). */
static bool mapping_permissions(const void *address, char permissions[5])
{
    FILE *maps = fopen("/proc/self/maps", "r");
    CHECK(maps != NULL, "cannot read /proc/self/maps");
    char line[512];
    bool found = false;
    while (fgets(line, sizeof line, maps)) {
        unsigned long low, high;
        char perms[5] = {0};
        if (sscanf(line, "%lx-%lx %4s", &low, &high, perms) != 3)
            continue;
        if ((uintptr_t)address >= low && (uintptr_t)address < high) {
            memcpy(permissions, perms, 5);
            found = true;
            break;
        }
    }
    fclose(maps);
    return found;
}

static void test_enable_execute(void **state)
{
    (void)state;
    const uint32_t flags[] = {HT_HEAP_CREATE_ENABLE_EXECUTE, 0};
    for (size_t k = 0; k < 2; k++) {
        ht_heap *heap = heap_create_checked(flags[k], 0, 0);
        const size_t sizes[3] = {100, 100000, 600000}; /* LFH or back end, back end, large */
        void *blocks[3];
        for (size_t i = 0; i < 3; i++)
            blocks[i] = ht_heap_alloc(heap, 0, sizes[i]);
        for (size_t i = 0; i < 3; i++) {
            char permissions[5];
            CHECK(blocks[i] && mapping_permissions(blocks[i], permissions),
                  "no mapping for block %zu", i);
            bool executable = permissions[2] == 'x';
            CHECK(executable == (flags[k] != 0) && permissions[0] == 'r' && permissions[1] == 'w',
                  "heap flags 0x%x: %zu-byte block %p in a mapping with permissions %s", flags[k],
                  sizes[i], blocks[i], permissions);
            CHECK(ht_heap_free(heap, 0, blocks[i]), "free");
        }
        destroy(heap);
    }
}

static void test_process_heaps_list(void **state)
{
    (void)state;
    ht_heap *process = ht_process_heap();
    CHECK(process != NULL && process == ht_process_heap(), "process heap");
    size_t before = ht_process_heaps(NULL, 0);
    enum { N = 40 };
    ht_heap *heaps[N];
    for (unsigned i = 0; i < N; i++)
        heaps[i] = heap_create_checked(i % 3 == 0 ? HT_HEAP_NO_SERIALIZE : 0, 0,
                                       i % 5 == 0 ? 1 << 20 : 0);
    ht_heap *list[N + 64];
    size_t count = ht_process_heaps(list, N + 64);
    CHECK(count == before + N, "ht_process_heaps = %zu, expected %zu", count, before + N);
    for (unsigned i = 0; i < N; i++) {
        bool found = false;
        for (size_t j = 0; j < count; j++)
            found |= list[j] == heaps[i];
        CHECK(found, "heap %u missing from the list", i);
    }
    ht_heap *few[3] = {NULL, NULL, NULL};
    CHECK(ht_process_heaps(few, 3) == count && few[0] && few[1] && few[2],
          "a short buffer gets the count and its first entries");
    for (unsigned i = 0; i < N; i += 2)
        CHECK(ht_heap_destroy(heaps[i]), "destroy");
    count = ht_process_heaps(list, N + 64);
    CHECK(count == before + N / 2, "after destroying half: %zu heaps", count);
    for (size_t j = 0; j < count; j++) {
        for (unsigned i = 0; i < N; i += 2)
            CHECK(list[j] != heaps[i], "destroyed heap listed");
    }
    bool process_found = false;
    for (size_t j = 0; j < count; j++)
        process_found |= list[j] == process;
    CHECK(process_found, "the process heap is not listed");
    for (unsigned i = 1; i < N; i += 2)
        CHECK(ht_heap_destroy(heaps[i]), "destroy");
    CHECK(ht_process_heaps(NULL, 0) == before, "heap count did not return to %zu", before);
}

typedef struct lock_arg {
    ht_heap *heap;
    atomic_int done;
    void *block;
} lock_arg;

static void *alloc_behind_lock(void *argument)
{
    lock_arg *a = argument;
    a->block = ht_heap_alloc(a->heap, 0, 20000); /* back end: serialized by the heap lock */
    atomic_store(&a->done, 1);
    return NULL;
}

/* HeapLock: while one thread holds the lock, another thread's back-end allocation waits. */
static void test_lock_blocks_other_threads(void **state)
{
    (void)state;
    install_crash_report();
    ht_heap *heap = heap_create_checked(0, 0, 0);
    lock_arg a = {.heap = heap};
    CHECK(ht_heap_lock(heap), "lock");
    CHECK(ht_heap_lock(heap), "recursive lock");
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, alloc_behind_lock, &a) == 0, "thread");
    usleep(100 * 1000);
    CHECK(atomic_load(&a.done) == 0, "another thread allocated while the heap was locked");
    /* The owner can still use the heap (the lock is recursive). */
    void *mine = ht_heap_alloc(heap, 0, 20000);
    CHECK(mine != NULL, "owner alloc under its own lock");
    CHECK(ht_heap_unlock(heap), "unlock");
    usleep(20 * 1000);
    CHECK(atomic_load(&a.done) == 0, "one unlock of two released the lock");
    CHECK(ht_heap_unlock(heap), "unlock");
    CHECK(pthread_join(thread, NULL) == 0, "join");
    CHECK(atomic_load(&a.done) == 1 && a.block != NULL, "blocked allocation did not complete");
    CHECK(ht_heap_free(heap, 0, mine) && ht_heap_free(heap, 0, a.block), "free");
    destroy(heap);
}

int main(int argc, char **argv)
{
    parse_options(argc, argv, &options, usage);
    context_set("tiers", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_after_17_per_bucket),
        cmocka_unit_test(test_buckets_have_separate_counters),
        cmocka_unit_test(test_activation_counts_allocations),
        cmocka_unit_test(test_zero_size_requests),
        cmocka_unit_test(test_zero_size_requested),
        cmocka_unit_test(test_zero_size_zero_memory_realloc),
        cmocka_unit_test(test_compatibility_information),
        cmocka_unit_test(test_compatibility_switched_off_later),
        cmocka_unit_test(test_lookaside_lifo_and_depth),
        cmocka_unit_test(test_lookaside_zero_memory),
        cmocka_unit_test(test_lookaside_information),
        cmocka_unit_test(test_destroyed_heap_lookaside_same_thread),
        cmocka_unit_test(test_destroyed_heap_lookaside_other_thread),
        cmocka_unit_test(test_thread_exit_returns_lookaside),
        cmocka_unit_test(test_cross_thread_free),
        cmocka_unit_test(test_realloc_sources_lfh),
        cmocka_unit_test(test_realloc_sources_backend),
        cmocka_unit_test(test_walk_flags_per_tier),
        cmocka_unit_test(test_walk_while_large_blocks_unmapped),
        cmocka_unit_test(test_walk_while_subsegments_released),
        cmocka_unit_test(test_walk_while_segments_released),
        cmocka_unit_test(test_queries_are_not_counted),
        cmocka_unit_test(test_large_threshold),
        cmocka_unit_test(test_fixed_heap_has_no_front_end),
        cmocka_unit_test(test_no_serialize_has_no_front_end),
        cmocka_unit_test(test_aligned_allocation),
        cmocka_unit_test(test_compact_largest_block),
        cmocka_unit_test(test_initial_size_committed),
        cmocka_unit_test(test_enable_execute),
        cmocka_unit_test(test_process_heaps_list),
        cmocka_unit_test(test_lock_blocks_other_threads),
    };
    return cmocka_run_group_tests_name("heap_tiers", tests, NULL, NULL);
}
