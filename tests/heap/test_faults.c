/* test_faults.c — the heap when the OS refuses: every system call of the OS layer (mmap,
 * mprotect, munmap, madvise, mremap) made to fail in turn through src/heap/os_faults.h.
 *
 * For each N, a heap (LFH on for every size) runs a seeded random alloc/free/realloc workload of
 * small, medium and large blocks with the Nth call failing (once, or from then on): a failed
 * allocation or reallocation returns NULL with HT_ERROR_NO_MEMORY and counts one INVALID, a
 * failed reallocation leaves its block as it was, a free never fails, and afterwards the heap
 * validates, every live block still holds its bytes, and everything frees and validates again.
 * Then, through the same hook's call counts: what the large-block cache keeps (a freed mapping
 * reused without a system call, a doubling realloc moved into one) and what it gives back.
 * Options: --seed, --ops (operations per run). */
#include "heap_test.h"

#include "heap/heap_internal.h" /* the large-block cache's bounds */
#include "heap/os_faults.h"

#define SLOTS 48

static test_options options = {.seed = 1, .ops = 160};
static const char usage[] = "test_heap_faults [--seed N] [--ops N] [--filter PATTERN]";

typedef struct slot {
    void *block;
    size_t size;
    uint32_t offset; /* into the pattern */
} slot;

typedef struct run_result {
    uint64_t failed_allocs, failed_reallocs;
} run_result;

static size_t random_size(rng *r)
{
    unsigned kind = (unsigned)rng_below(r, 100);
    if (kind < 45)
        return (size_t)rng_range(r, 0, 1024); /* LFH, lookaside */
    if (kind < 80)
        return (size_t)rng_range(r, 1025, 96 << 10); /* LFH, back end */
    return (size_t)rng_range(r, HT_LARGE_THRESHOLD, HT_LARGE_THRESHOLD + (128 << 10)); /* large */
}

static void check_block(const slot *s, const char *when)
{
    size_t at = pattern_mismatch(s->block, s->offset, s->size);
    CHECK(at == s->size, "%s: block %p of %zu bytes differs at byte %zu", when, s->block, s->size,
          at);
}

static void fill(rng *r, slot *s)
{
    s->offset = (uint32_t)rng_below(r, PATTERN_WINDOW);
    pattern_fill(s->block, s->offset, s->size);
}

/* The workload; returns the failures it saw. Every failure must look like "out of memory". */
static run_result workload(ht_heap *heap, uint64_t seed, slot *slots)
{
    rng r;
    rng_seed(&r, seed);
    run_result result = {0, 0};
    for (uint64_t op = 0; op < options.ops; op++) {
        current_context.op = op;
        /* Freed large mappings are cached, not unmapped: compacting halfway and at the end
         * gives them back (and trims the segments), so releases happen with faults armed. */
        if (op == options.ops / 2)
            ht_heap_compact(heap, 0);
        slot *s = &slots[rng_below(&r, SLOTS)];
        if (!s->block) {
            size_t size = random_size(&r);
            ht_set_last_error(HT_OK);
            s->block = ht_heap_alloc(heap, 0, size);
            if (!s->block) {
                CHECK(ht_last_error() == HT_ERROR_NO_MEMORY, "alloc(%zu) failed with error %d",
                      size, (int)ht_last_error());
                result.failed_allocs++;
                continue;
            }
            s->size = size;
            fill(&r, s);
        } else if (rng_chance(&r, 500)) {
            check_block(s, "before realloc");
            size_t size = random_size(&r);
            ht_set_last_error(HT_OK);
            void *moved = ht_heap_realloc(heap, 0, s->block, size);
            if (!moved) {
                CHECK(ht_last_error() == HT_ERROR_NO_MEMORY,
                      "realloc(%zu -> %zu) failed with "
                      "error %d",
                      s->size, size, (int)ht_last_error());
                check_block(s, "after a failed realloc");
                result.failed_reallocs++;
                continue;
            }
            size_t kept = size < s->size ? size : s->size;
            size_t at = pattern_mismatch(moved, s->offset, kept);
            CHECK(at == kept, "realloc(%zu -> %zu) lost byte %zu", s->size, size, at);
            s->block = moved;
            s->size = size;
            fill(&r, s);
        } else {
            check_block(s, "before free");
            CHECK(ht_heap_free(heap, 0, s->block), "free(%p) failed with error %d", s->block,
                  (int)ht_last_error());
            s->block = NULL;
        }
    }
    ht_heap_compact(heap, 0);
    return result;
}

typedef struct faults_seen {
    uint64_t calls;    /* calls of the armed kinds */
    uint64_t injected; /* of which made to fail */
} faults_seen;

/* One run: the heap is made and used with injection armed as given, then checked with the OS
 * behaving again. */
static faults_seen run_once(unsigned mask, uint64_t skip, uint64_t count)
{
    static slot slots[SLOTS];
    memset(slots, 0, sizeof slots);
    hti_os_faults_arm(mask, skip, count);
    ht_set_last_error(HT_OK);
    ht_heap *heap = ht_heap_create(0, 0, 0);
    if (!heap) {
        faults_seen seen = {hti_os_faults_seen(), hti_os_faults_injected()};
        hti_os_faults_arm(0, 0, 0);
        CHECK(seen.injected > 0, "create failed without a fault");
        CHECK(ht_last_error() == HT_ERROR_NO_MEMORY, "create failed with error %d",
              (int)ht_last_error());
        return seen;
    }
    uint32_t all_buckets = 2;
    CHECK(ht_heap_set_information(heap, HT_HEAP_COMPATIBILITY_INFORMATION, &all_buckets,
                                  sizeof all_buckets),
          "LFH for every size");
    ht_heap_counters before, after;
    counters_read(heap, &before);
    run_result result = workload(heap, options.seed, slots);
    counters_read(heap, &after);
    faults_seen seen = {hti_os_faults_seen(), hti_os_faults_injected()};
    hti_os_faults_arm(0, 0, 0);

    CHECK(seen.injected > 0 || (result.failed_allocs == 0 && result.failed_reallocs == 0),
          "%" PRIu64 " allocations and %" PRIu64 " reallocations failed with no fault injected",
          result.failed_allocs, result.failed_reallocs);
    uint64_t invalid_allocs = after.counts[HT_OP_ALLOC][MEMORY_FROM_INVALID] -
                              before.counts[HT_OP_ALLOC][MEMORY_FROM_INVALID];
    uint64_t invalid_reallocs = after.counts[HT_OP_REALLOC][MEMORY_FROM_INVALID] -
                                before.counts[HT_OP_REALLOC][MEMORY_FROM_INVALID];
    CHECK(invalid_allocs == result.failed_allocs && invalid_reallocs == result.failed_reallocs,
          "INVALID counted: %" PRIu64 " allocs, %" PRIu64 " reallocs; failed: %" PRIu64
          ", %" PRIu64,
          invalid_allocs, invalid_reallocs, result.failed_allocs, result.failed_reallocs);
    CHECK(after.counts[HT_OP_FREE][MEMORY_FROM_INVALID] ==
              before.counts[HT_OP_FREE][MEMORY_FROM_INVALID],
          "a free failed");

    current_context.op = options.ops;
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid after the faults (error %d)",
          (int)ht_last_error());
    for (int i = 0; i < SLOTS; i++) {
        if (!slots[i].block)
            continue;
        check_block(&slots[i], "after the run");
        CHECK(ht_heap_validate(heap, 0, slots[i].block), "block %p invalid", slots[i].block);
    }
    /* The heap still serves, and gives everything back. */
    void *probe[3] = {ht_heap_alloc(heap, 0, 40), ht_heap_alloc(heap, 0, 5000),
                      ht_heap_alloc(heap, 0, HT_LARGE_THRESHOLD)};
    for (int i = 0; i < 3; i++) {
        CHECK(probe[i] != NULL, "allocation %d fails once the OS behaves", i);
        CHECK(ht_heap_free(heap, 0, probe[i]), "probe free");
    }
    for (int i = 0; i < SLOTS; i++)
        if (slots[i].block)
            CHECK(ht_heap_free(heap, 0, slots[i].block), "final free %d", i);
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid after freeing everything");
    ht_heap_summary summary;
    CHECK(ht_heap_summary_get(heap, 0, &summary) && summary.live_blocks == 0,
          "%zu blocks live after freeing everything", summary.live_blocks);
    CHECK(ht_heap_destroy(heap), "destroy");
    return seen;
}

/* How many calls of the kinds in mask a fault-free run makes (the range of N to try). */
static uint64_t calls_in_a_run(unsigned mask)
{
    run_once(mask, UINT64_MAX, 0); /* warms the process-wide pools up */
    return run_once(mask, UINT64_MAX, 0).calls;
}

static void sweep(unsigned mask, const char *label, uint64_t count)
{
    context_set(label, options.seed);
    uint64_t calls = calls_in_a_run(mask);
    CHECK(calls > 0, "%s: the workload makes no such call", label);
    /* A run's calls vary a little with the address space (an aligned mapping may need trimming
     * or not): go on while runs still make more than N calls. */
    uint64_t injected_runs = 0, limit = 4 * calls + 16;
    for (uint64_t n = 0; n <= calls && n < limit; n++) {
        faults_seen seen = run_once(mask, n, count);
        CHECK(seen.calls <= n || seen.injected > 0, "N=%" PRIu64 ": %" PRIu64 " calls, no fault", n,
              seen.calls);
        injected_runs += seen.injected > 0;
        if (seen.calls > calls)
            calls = seen.calls;
        if (options.verbose)
            fprintf(stderr, "  N=%" PRIu64 ": %" PRIu64 " calls, %" PRIu64 " failed\n", n,
                    seen.calls, seen.injected);
    }
    CHECK(injected_runs > 0, "%s: no run saw a fault", label);
}

/* Each system call fails once, in turn. */
static void test_each_call_fails_once(void **state)
{
    (void)state;
    sweep(HTI_OS_FAULT_ALL, "each call fails once", 1);
}

/* From the Nth call on, the OS refuses everything (memory exhausted for good). */
static void test_out_of_memory_from_then_on(void **state)
{
    (void)state;
    sweep(HTI_OS_FAULT_MMAP | HTI_OS_FAULT_MPROTECT | HTI_OS_FAULT_MREMAP, "no memory from N on",
          UINT64_MAX);
}

/* Releasing memory fails: munmap and madvise only. Nothing may be lost or damaged. */
static void test_release_fails(void **state)
{
    (void)state;
    sweep(HTI_OS_FAULT_MUNMAP | HTI_OS_FAULT_MADVISE, "release fails from N on", UINT64_MAX);
}

/* ---- retention: what the large-block cache keeps, and what it gives back ---------------- */

/* Counts the calls of the kinds in mask from now on (none fails). */
static void calls_count(unsigned mask)
{
    hti_os_faults_arm(mask, UINT64_MAX, 0);
}

static uint64_t calls_stop(void)
{
    uint64_t seen = hti_os_faults_seen();
    hti_os_faults_arm(0, 0, 0);
    return seen;
}

static size_t reserved_of(ht_heap *heap)
{
    ht_heap_summary summary;
    summary_read(heap, &summary);
    return summary.reserved;
}

/* A freed large mapping serves the next request of a close size, or a smaller one (its tail
 * cached on its own), without a new mapping; the heap's reserved bytes do not move. */
static void test_large_mapping_reused(void **state)
{
    (void)state;
    context_set("large mapping reused", 0);
    ht_heap *heap = heap_create_checked(0, 0, 0);
    void *p = ht_heap_alloc(heap, 0, 600000);
    CHECK(p != NULL, "alloc");
    pattern_fill(p, 1, 600000);
    size_t reserved = reserved_of(heap);
    CHECK(ht_heap_free(heap, 0, p), "free");
    CHECK(reserved_of(heap) == reserved, "a freed large mapping was unmapped");
    calls_count(HTI_OS_FAULT_ALL);
    void *q = ht_heap_alloc(heap, 0, 590000);
    uint64_t calls = calls_stop();
    CHECK(q == p && calls == 0,
          "590000 bytes after freeing 600000: %p (was %p), %" PRIu64 " system calls", q, p, calls);
    CHECK(reserved_of(heap) == reserved, "reserved bytes moved");
    CHECK(ht_heap_validate(heap, 0, NULL), "validate");
    CHECK(ht_heap_free(heap, 0, q), "free");

    /* A 4 MiB mapping serves two 600000-byte requests: the head, then the tail it left. */
    ht_heap_compact(heap, 0); /* the cache empty */
    void *big = ht_heap_alloc(heap, 0, 4u << 20);
    CHECK(big != NULL, "alloc 4 MiB");
    memset(big, 0xa5, 4u << 20); /* its pages faulted in, as a used buffer's are */
    CHECK(ht_heap_free(heap, 0, big), "free 4 MiB");
    reserved = reserved_of(heap);
    calls_count(HTI_OS_FAULT_ALL);
    void *a = ht_heap_alloc(heap, 0, 600000), *b = ht_heap_alloc(heap, 0, 600000);
    calls = calls_stop();
    CHECK(a && b && calls == 0,
          "two blocks from a cached 4 MiB mapping: %p %p, %" PRIu64 " system calls", a, b, calls);
    CHECK(a == big && (char *)b > (char *)big && (char *)b < (char *)big + (4u << 20),
          "blocks %p %p not carved from the cached mapping %p", a, b, big);
    CHECK(reserved_of(heap) == reserved, "reserved bytes moved");
    pattern_fill(a, 3, 600000);
    pattern_fill(b, 4, 600000);
    CHECK(ht_heap_validate(heap, 0, NULL) && ht_heap_validate(heap, 0, a) &&
              ht_heap_validate(heap, 0, b),
          "validate");
    CHECK(pattern_mismatch(a, 3, 600000) == 600000 && pattern_mismatch(b, 4, 600000) == 600000,
          "blocks carved from one mapping overlap");
    CHECK(ht_heap_free(heap, 0, a) && ht_heap_free(heap, 0, b), "free");
    CHECK(ht_heap_destroy(heap), "destroy");
}

/* A large block that grows by doubling moves into a cached mapping: its bytes are copied, no
 * system call is made, and the old mapping is cached in turn (its second free is a double
 * free). */
static void test_large_realloc_into_cache(void **state)
{
    (void)state;
    context_set("large realloc into the cache", 0);
    ht_heap *heap = heap_create_checked(0, 0, 0);
    void *spare = ht_heap_alloc(heap, 0, 3u << 20), *p = ht_heap_alloc(heap, 0, 1u << 20);
    CHECK(spare && p, "allocations");
    pattern_fill(p, 5, 1u << 20);
    CHECK(ht_heap_free(heap, 0, spare), "free");
    size_t reserved = reserved_of(heap);
    calls_count(HTI_OS_FAULT_ALL);
    void *q = ht_heap_realloc(heap, 0, p, 2u << 20);
    uint64_t calls = calls_stop();
    CHECK(q == spare && calls == 0, "realloc to 2 MiB: %p (cached %p), %" PRIu64 " system calls", q,
          spare, calls);
    CHECK(pattern_mismatch(q, 5, 1u << 20) == 1u << 20, "contents not kept");
    CHECK(reserved_of(heap) == reserved, "reserved bytes moved");
    CHECK(ht_heap_validate(heap, 0, NULL), "validate");
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(heap, 0, p) && ht_last_error() == HT_ERROR_DOUBLE_FREE,
          "free of the moved-from block: error %d", (int)ht_last_error());
    /* In place only: the cache is not used, the block grows where it is or not at all. */
    void *r = ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, q, (2u << 20) + 4096);
    CHECK(r == NULL || r == q, "in-place-only realloc moved the block");
    CHECK(ht_heap_free(heap, 0, q), "free");
    CHECK(ht_heap_destroy(heap), "destroy");
}

/* The cache is bounded: freeing far more than its budget gives the rest back, and compact gives
 * back all of it. */
static void test_large_cache_bounded(void **state)
{
    (void)state;
    context_set("large cache bounded", 0);
    enum { BLOCKS = 24 };
    ht_heap *heap = heap_create_checked(0, 0, 0);
    size_t base = reserved_of(heap);
    void *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = ht_heap_alloc(heap, 0, (2u << 20) + (size_t)i * 65536);
        CHECK(blocks[i] != NULL, "alloc %d", i);
    }
    for (int i = 0; i < BLOCKS; i++)
        CHECK(ht_heap_free(heap, 0, blocks[i]), "free %d", i);
    size_t kept = reserved_of(heap) - base;
    CHECK(kept > 0 && kept <= HTI_LARGE_CACHE_FLOOR, "%zu bytes kept after freeing %d blocks", kept,
          BLOCKS);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate");
    ht_heap_compact(heap, 0);
    CHECK(reserved_of(heap) == base, "compact kept %zu cached bytes", reserved_of(heap) - base);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate");
    CHECK(ht_heap_destroy(heap), "destroy");
}

int main(int argc, char **argv)
{
    parse_options(argc, argv, &options, usage);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_call_fails_once),
        cmocka_unit_test(test_out_of_memory_from_then_on),
        cmocka_unit_test(test_release_fails),
        cmocka_unit_test(test_large_mapping_reused),
        cmocka_unit_test(test_large_realloc_into_cache),
        cmocka_unit_test(test_large_cache_bounded),
    };
    return cmocka_run_group_tests_name("heap_faults", tests, NULL, NULL);
}
