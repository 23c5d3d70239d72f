/* test_bad_input.c — every failure path of the heap API.
 *
 * Bad heap handles, pointers the heap does not own (stack, malloc, middle of a block, another
 * heap's block, unaligned, unmapped), double frees (back end, LFH, lookaside, large), impossible
 * sizes, invalid flags / information classes / buffers, destroying the process heap: each fails,
 * sets the documented last error, counts INVALID where a heap exists and leaves the heap valid.
 * Corrupted headers are found by validate and refused by free; GENERATE_EXCEPTIONS runs the
 * failure handler; termination on corruption and the default handler abort a forked child. */
#include "heap_test.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static test_options options = {.seed = 1, .seeds = 1, .ops = 0, .threads = 1};

static const char usage[] =
    "usage: test_heap_bad_input [--filter PATTERN] [--verbose]\n"
    "  Failure paths of the heap API, corruption detection, failure handler, termination.\n";

/* ---- helpers ---------------------------------------------------------------------------- */

#if defined(__clang__) || defined(__GNUC__)
#define NO_ASAN __attribute__((no_sanitize_address))
#else
#define NO_ASAN
#endif

/* Byte writes and reads the sanitizer does not instrument: the test writes into heap headers
 * on purpose, as a buffer overflow in a program would. */
NO_ASAN static void poke(void *address, const uint8_t *bytes, size_t length)
{
    volatile uint8_t *target = address;
    for (size_t i = 0; i < length; i++)
        target[i] = bytes[i];
}

NO_ASAN static void peek(const void *address, uint8_t *bytes, size_t length)
{
    const volatile uint8_t *source = address;
    for (size_t i = 0; i < length; i++)
        bytes[i] = source[i];
}

static void expect_error(const char *file, int line, ht_error first, ht_error second,
                         const char *format, ...) __attribute__((format(printf, 5, 6)));

/* The last error is first (or second); format describes the call. */
static void expect_error(const char *file, int line, ht_error first, ht_error second,
                         const char *format, ...)
{
    ht_error actual = ht_last_error();
    if (actual == first || actual == second)
        return;
    char what[256];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    if (first == second)
        check_failed(file, line, "last error", "%s: last error %d (%s), expected %d (%s)", what,
                     (int)actual, ht_error_message(actual), (int)first, ht_error_message(first));
    check_failed(file, line, "last error", "%s: last error %d (%s), expected %d (%s) or %d (%s)",
                 what, (int)actual, ht_error_message(actual), (int)first, ht_error_message(first),
                 (int)second, ht_error_message(second));
}

#define EXPECT_ERROR(expected, ...)                                                                \
    expect_error(__FILE__, __LINE__, expected, expected, __VA_ARGS__)
#define EXPECT_ERROR2(first, second, ...)                                                          \
    expect_error(__FILE__, __LINE__, first, second, __VA_ARGS__)

static void destroy(ht_heap *heap)
{
    CHECK(ht_heap_validate(heap, 0, NULL), "validate before destroy failed");
    CHECK(ht_heap_destroy(heap), "destroy failed");
}

static ht_heap *heap_with_lfh(uint32_t mode)
{
    ht_heap *heap = heap_create_checked(0, 0, 0);
    set_compatibility(heap, mode);
    return heap;
}

/* ---- bad heap handles ------------------------------------------------------------------- */

static uint8_t garbage[1 << 20]; /* readable memory that is not a heap */

static void check_bad_handle(ht_heap *bad, const char *what, void *real_block)
{
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_alloc(bad, 0, 16) == NULL, "%s: alloc succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: alloc", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_alloc_aligned(bad, 0, 64, 16) == NULL, "%s: alloc_aligned succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: alloc_aligned", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(bad, 0, real_block, 32) == NULL, "%s: realloc succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: realloc", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(bad, 0, real_block), "%s: free succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: free", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_size(bad, 0, real_block) == SIZE_MAX, "%s: size succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: size", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_requested_size(bad, real_block) == SIZE_MAX, "%s: requested_size", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: requested_size", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(bad, 0, NULL), "%s: validate succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: validate", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(bad, 0, real_block), "%s: validate block succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: validate block", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_lock(bad), "%s: lock succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: lock", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_unlock(bad), "%s: unlock succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: unlock", what);
    ht_heap_entry entry;
    memset(&entry, 0, sizeof entry);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_walk(bad, &entry), "%s: walk succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: walk", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_compact(bad, 0) == 0, "%s: compact succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: compact", what);
    ht_heap_summary summary;
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_summary_get(bad, 0, &summary), "%s: summary succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: summary", what);
    ht_heap_counters counters;
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_counters_get(bad, &counters), "%s: counters succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: counters", what);
    uint32_t value = 2;
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_set_information(bad, HT_HEAP_COMPATIBILITY_INFORMATION, &value, sizeof value),
          "%s: set information succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: set information", what);
    size_t length = 0;
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_query_information(bad, HT_HEAP_COMPATIBILITY_INFORMATION, &value, sizeof value,
                                     &length),
          "%s: query information succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: query information", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_destroy(bad), "%s: destroy succeeded", what);
    EXPECT_ERROR(HT_ERROR_INVALID_HANDLE, "%s: destroy", what);
}

static void test_bad_heap_handles(void **state)
{
    (void)state;
    ht_heap *real = heap_create_checked(0, 0, 0);
    uint8_t *block = ht_heap_alloc(real, 0, 8192);
    CHECK(block != NULL, "alloc");
    pattern_fill(block, 3, 8192);
    ht_heap_counters before;
    counters_read(real, &before);

    check_bad_handle(NULL, "NULL heap", block);
    uint64_t x = 42;
    for (size_t i = 0; i < sizeof garbage; i += 8) {
        uint64_t v = splitmix64(&x);
        memcpy(garbage + i, &v, 8);
    }
    check_bad_handle((ht_heap *)(void *)garbage, "random bytes", block);
    memset(garbage, 0, sizeof garbage);
    check_bad_handle((ht_heap *)(void *)garbage, "zeroed memory", block);
    uint8_t stack_garbage[4096] __attribute__((aligned(64)));
    memset(stack_garbage, 0xA5, sizeof stack_garbage);
    check_bad_handle((ht_heap *)(void *)stack_garbage, "stack struct of 0xA5", block);
    /* A live block of a real heap used as a handle (readable, not a heap). */
    uint8_t *inner = ht_heap_alloc(real, 0, 65536);
    CHECK(inner != NULL, "alloc");
    memset(inner, 0x5C, 65536);
    ht_heap_counters inner_counted;
    counters_read(real, &inner_counted);
    check_bad_handle((ht_heap *)(void *)inner, "heap block as handle", block);
    EXPECT_NOT_COUNTED(real, &inner_counted, "bad-handle calls counted on the real heap");
    CHECK(ht_heap_free(real, 0, inner), "free");
    /* The real heap's handle, misaligned. */
    check_bad_handle((ht_heap *)(void *)((char *)real + 8), "real handle + 8", block);

    CHECK(pattern_mismatch(block, 3, 8192) == 8192, "real block changed");
    CHECK(ht_heap_size(real, 0, block) >= 8192, "real block lost");
    CHECK(ht_heap_free(real, 0, block), "free real block");
    destroy(real);
}

static void test_destroy_process_heap(void **state)
{
    (void)state;
    ht_heap *process = ht_process_heap();
    CHECK(process != NULL, "no process heap");
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_destroy(process), "the process heap was destroyed");
    EXPECT_ERROR(HT_ERROR_BUSY, "destroy process heap");
    CHECK(ht_process_heap() == process, "process heap changed");
    void *p = ht_heap_alloc(process, 0, 100);
    CHECK(p != NULL, "process heap unusable after a refused destroy");
    CHECK(ht_heap_free(process, 0, p), "free");
    CHECK(ht_heap_validate(process, 0, NULL), "validate process heap");
    ht_heap *list[16];
    size_t n = ht_process_heaps(list, 16);
    bool found = false;
    for (size_t i = 0; i < n && i < 16; i++)
        found |= list[i] == process;
    CHECK(found, "process heap not in ht_process_heaps");
    CHECK(ht_process_heaps(NULL, 0) == n, "ht_process_heaps(NULL, 0) != %zu", n);
}

/* ---- pointers the heap does not own ---------------------------------------------------- */

static int global_variable[64];

/* free, size, requested_size, realloc and validate of a pointer the heap does not own. */
static void check_foreign_pointer(ht_heap *heap, void *p, const char *what, ht_error expected,
                                  ht_error also)
{
    ht_heap_counters counters;
    counters_read(heap, &counters);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(heap, 0, p), "%s: free(%p) succeeded", what, p);
    EXPECT_ERROR2(expected, also, "%s: free", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "%s: free", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, 0, p, 100) == NULL, "%s: realloc(%p) succeeded", what, p);
    EXPECT_ERROR2(expected, also, "%s: realloc", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "%s: realloc", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, p, 8) == NULL,
          "%s: in-place realloc(%p) succeeded", what, p);
    EXPECT_ERROR2(expected, also, "%s: in-place realloc", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "%s: realloc", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_size(heap, 0, p) == SIZE_MAX, "%s: size(%p) succeeded", what, p);
    EXPECT_ERROR2(expected, also, "%s: size", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_requested_size(heap, p) == SIZE_MAX, "%s: requested_size succeeded", what);
    EXPECT_ERROR2(expected, also, "%s: requested_size", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(heap, 0, p), "%s: validate(%p) succeeded", what, p);
    EXPECT_NOT_COUNTED(heap, &counters, "%s: size/validate counted", what);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: heap invalid afterwards", what);
}

static void test_foreign_pointers(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    ht_heap *other = heap_with_lfh(2);
    uint8_t *back = ht_heap_alloc(heap, 0, 20000);   /* back end: above the LFH */
    uint8_t *lfh = ht_heap_alloc(heap, 0, 256);      /* LFH */
    uint8_t *large = ht_heap_alloc(heap, 0, 600000); /* large */
    CHECK(back && lfh && large, "allocations");
    pattern_fill(back, 11, 20000);
    pattern_fill(lfh, 12, 256);
    pattern_fill(large, 13, 600000);
    uint8_t *other_back = ht_heap_alloc(other, 0, 20000);
    uint8_t *other_lfh = ht_heap_alloc(other, 0, 256);
    uint8_t *other_large = ht_heap_alloc(other, 0, 600000);
    CHECK(other_back && other_lfh && other_large, "allocations");
    uint8_t stack[256] __attribute__((aligned(64)));
    memset(stack, 0x3C, sizeof stack);
    void *from_malloc = malloc(256);
    CHECK(from_malloc != NULL, "malloc");
    memset(from_malloc, 0x3D, 256);
    void *unmapped = mmap(NULL, 1 << 16, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                          0);
    CHECK(unmapped != MAP_FAILED, "mmap");
    munmap(unmapped, 1 << 16);

    const ht_error P = HT_ERROR_INVALID_POINTER;
    check_foreign_pointer(heap, stack + 64, "stack address", P, P);
    check_foreign_pointer(heap, from_malloc, "malloc pointer", P, P);
    check_foreign_pointer(heap, global_variable + 16, "global variable", P, P);
    check_foreign_pointer(heap, (char *)unmapped + 4096, "unmapped page", P, P);
    check_foreign_pointer(heap, (void *)(uintptr_t)4096, "address 4096", P, P);
    check_foreign_pointer(heap, back + 32, "middle of a back-end block", P, P);
    check_foreign_pointer(heap, back + 20000 - 16, "last granule of a back-end block", P, P);
    check_foreign_pointer(heap, lfh + 48, "middle of an LFH block", P, P);
    check_foreign_pointer(heap, large + 4096, "middle of a large block", P, P);
    check_foreign_pointer(heap, large + 65536, "64 KiB into a large block", P, P);
    check_foreign_pointer(heap, back + 1, "back-end block + 1", P, P);
    check_foreign_pointer(heap, back + 8, "back-end block + 8", P, P);
    check_foreign_pointer(heap, lfh + 1, "LFH block + 1", P, P);
    check_foreign_pointer(heap, lfh + 8, "LFH block + 8", P, P);
    check_foreign_pointer(heap, large + 8, "large block + 8", P, P);
    check_foreign_pointer(heap, back - 16, "back-end header address", P, P);
    check_foreign_pointer(heap, lfh - 16, "LFH header address", P, P);
    check_foreign_pointer(heap, other_back, "another heap's back-end block", P, P);
    check_foreign_pointer(heap, other_lfh, "another heap's LFH block", P, P);
    check_foreign_pointer(heap, other_large, "another heap's large block", P, P);
    check_foreign_pointer(heap, (void *)heap, "the heap handle itself", P, P);

    CHECK(pattern_mismatch(back, 11, 20000) == 20000 && pattern_mismatch(lfh, 12, 256) == 256 &&
              pattern_mismatch(large, 13, 600000) == 600000,
          "blocks changed by failed calls");
    CHECK(memcmp(stack + 64, (uint8_t[8]){0x3C, 0x3C, 0x3C, 0x3C, 0x3C, 0x3C, 0x3C, 0x3C}, 8) == 0,
          "stack bytes changed");
    CHECK(ht_heap_validate(other, 0, other_back) && ht_heap_validate(other, 0, other_lfh) &&
              ht_heap_validate(other, 0, other_large),
          "the other heap's blocks were damaged");
    free(from_malloc);
    CHECK(ht_heap_free(heap, 0, back) && ht_heap_free(heap, 0, lfh) && ht_heap_free(heap, 0, large),
          "free own blocks");
    CHECK(ht_heap_free(other, 0, other_back) && ht_heap_free(other, 0, other_lfh) &&
              ht_heap_free(other, 0, other_large),
          "free the other heap's blocks");
    destroy(heap);
    destroy(other);
}

/* Pointers into a destroyed heap, handed to the next heap (which may sit at the same place). */
static void test_stale_pointers_of_destroyed_heap(void **state)
{
    (void)state;
    for (unsigned round = 0; round < 4; round++) {
        ht_heap *a = heap_with_lfh(round % 2 ? 2 : 0);
        void *blocks[6];
        for (unsigned i = 0; i < 5; i++) {
            blocks[i] = ht_heap_alloc(a, 0, 1000);
            CHECK(blocks[i] != NULL, "alloc");
        }
        blocks[5] = ht_heap_alloc(a, 0, 600000);
        CHECK(blocks[5] != NULL, "alloc");
        CHECK(ht_heap_destroy(a), "destroy");
        ht_heap *b = heap_with_lfh(round % 2 ? 2 : 0);
        void *mine = ht_heap_alloc(b, 0, 1000);
        CHECK(mine != NULL, "alloc");
        for (unsigned i = 1; i < 6; i++) {
            if (blocks[i] == mine)
                continue; /* the same address, now b's block */
            check_foreign_pointer(b, blocks[i], "block of a destroyed heap",
                                  HT_ERROR_INVALID_POINTER, HT_ERROR_DOUBLE_FREE);
        }
        CHECK(ht_heap_free(b, 0, mine), "free");
        destroy(b);
    }
}

/* ---- double free -------------------------------------------------------------------------- */

static void check_double_free(ht_heap *heap, void *p, const char *what, bool strict)
{
    ht_heap_counters counters;
    counters_read(heap, &counters);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(heap, 0, p), "%s: second free of %p succeeded", what, p);
    if (strict)
        EXPECT_ERROR(HT_ERROR_DOUBLE_FREE, "%s: double free", what);
    else
        EXPECT_ERROR2(HT_ERROR_DOUBLE_FREE, HT_ERROR_INVALID_POINTER, "%s: double free", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "%s: double free", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, 0, p, 64) == NULL, "%s: realloc of a freed block succeeded", what);
    EXPECT_ERROR2(HT_ERROR_DOUBLE_FREE, HT_ERROR_INVALID_POINTER, "%s: realloc after free", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "%s: realloc", what);
    CHECK(ht_heap_size(heap, 0, p) == SIZE_MAX, "%s: size of a freed block", what);
    CHECK(!ht_heap_validate(heap, 0, p), "%s: validate of a freed block succeeded", what);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: heap invalid after a double free", what);
}

static void test_double_free_backend(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(0);
    void *a = ht_heap_alloc(heap, 0, 3000), *b = ht_heap_alloc(heap, 0, 3000);
    void *c = ht_heap_alloc(heap, 0, 3000);
    CHECK(a && b && c, "allocations");
    /* Busy neighbours: b stays a free block of its own. */
    CHECK(ht_heap_free(heap, 0, b), "free b");
    check_double_free(heap, b, "back-end block between busy neighbours", true);
    /* a merges with free b. */
    CHECK(ht_heap_free(heap, 0, a), "free a");
    check_double_free(heap, a, "back-end block merged with its neighbour", false);
    void *d = ht_heap_alloc(heap, 0, 100);
    CHECK(d != NULL && ht_heap_validate(heap, 0, d), "heap unusable after double frees");
    CHECK(ht_heap_free(heap, 0, c) && ht_heap_free(heap, 0, d), "free");
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0, "live blocks %zu", summary.live_blocks);
    destroy(heap);
}

static void test_double_free_lfh(void **state)
{
    (void)state;
    /* In this thread's lookaside list. */
    ht_heap *heap = heap_with_lfh(2);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    void *p = ht_heap_alloc(heap, 0, 64), *q = ht_heap_alloc(heap, 0, 64);
    CHECK(p && q, "allocations");
    CHECK(ht_heap_free(heap, 0, p), "free");
    check_double_free(heap, p, "LFH block in a lookaside list", true);
    /* The list holds p once: two allocations give two different blocks. */
    void *r = ht_heap_alloc(heap, 0, 64), *s = ht_heap_alloc(heap, 0, 64);
    CHECK(r == p && s != p && s != q && s != NULL, "lookaside after a double free: %p %p (p %p)", r,
          s, p);
    CHECK(ht_heap_free(heap, 0, q) && ht_heap_free(heap, 0, r) && ht_heap_free(heap, 0, s), "free");
    /* A slot back in its subsegment (lookaside off), and one above 1 KiB. */
    set_lookaside(heap, 0);
    void *t = ht_heap_alloc(heap, 0, 64), *u = ht_heap_alloc(heap, 0, 5000);
    CHECK(t && u, "allocations");
    CHECK(ht_heap_free(heap, 0, t) && ht_heap_free(heap, 0, u), "free");
    check_double_free(heap, t, "LFH slot in its subsegment", true);
    check_double_free(heap, u, "5000-byte LFH slot", true);
    /* Freed by another thread's lookaside is covered by test_tiers; the heap is intact. */
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0, "live blocks %zu", summary.live_blocks);
    destroy(heap);
}

typedef struct free_in_thread_args {
    ht_heap *heap;
    void *block;
    bool freed;
} free_in_thread_args;

static void *free_in_other_thread(void *arg)
{
    free_in_thread_args *a = arg;
    a->freed = ht_heap_free(a->heap, 0, a->block);
    return NULL;
}

/* A slot cached in one thread's lookaside list and freed again by another thread: the state
 * word, outside the slot, says cached whoever looks. */
static void test_double_free_cached_elsewhere(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    void *p = ht_heap_alloc(heap, 0, 48);
    CHECK(p != NULL, "allocation");
    CHECK(ht_heap_free(heap, 0, p), "first free (cached in this thread's lookaside list)");
    ht_heap_counters counters;
    counters_read(heap, &counters);
    free_in_thread_args args = {heap, p, true};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, free_in_other_thread, &args) == 0, "thread");
    pthread_join(thread, NULL);
    CHECK(!args.freed, "a slot cached in another thread's lookaside list was freed again");
    EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "second free");
    void *a = ht_heap_alloc(heap, 0, 48), *b = ht_heap_alloc(heap, 0, 48);
    CHECK(a == p && b != p && b != NULL, "the cached slot was handed out twice: %p %p", a, b);
    CHECK(ht_heap_free(heap, 0, a) && ht_heap_free(heap, 0, b), "free");
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid");
    destroy(heap);
}

/* A realloc that stays in its slot moves the canary to the new requested end. */
static void test_canary_follows_realloc_in_place(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    uint8_t *p = ht_heap_alloc(heap, 0, 100); /* the 112-byte bucket */
    CHECK(p != NULL, "allocation");
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, p, 90) == p, "shrink in place");
    CHECK(ht_heap_requested_size(heap, p) == 90, "requested size after shrinking");
    memset(p, 0x11, 100); /* ten bytes past the new end: the canary */
    CHECK(!ht_heap_validate(heap, 0, p), "overflow past a shrunk block not seen");
    memset(p + 90, 0, 22);
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, p, 104) == NULL,
          "a damaged block was resized");
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "resize of a damaged block");
    CHECK(ht_heap_destroy(heap), "destroy of a damaged heap"); /* not validated: it is not */
    heap = heap_with_lfh(2);
    p = ht_heap_alloc(heap, 0, 98); /* the 112-byte bucket */
    CHECK(p != NULL && ht_heap_realloc(heap, 0, p, 108) == p, "grow in place");
    memset(p, 0x22, 108);
    CHECK(ht_heap_validate(heap, 0, p) && ht_heap_free(heap, 0, p), "grown block is whole");
    p = ht_heap_alloc(heap, 0, 98);
    CHECK(p != NULL && ht_heap_realloc(heap, 0, p, 108) == p, "grow in place");
    memset(p, 0x22, 112); /* the four canary bytes after the new end */
    CHECK(!ht_heap_free(heap, 0, p), "overflow past a grown block not seen");
    CHECK(!ht_heap_validate(heap, 0, NULL) && ht_heap_destroy(heap), "destroy of a damaged heap");
}

static void test_double_free_large(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    void *keep = ht_heap_alloc(heap, 0, 700000);
    void *p = ht_heap_alloc(heap, 0, 600000);
    CHECK(keep && p, "allocations");
    CHECK(ht_heap_free(heap, 0, p), "free");
    check_double_free(heap, p, "large block", false);
    CHECK(ht_heap_free(heap, 0, keep), "free");
    destroy(heap);
}

/* ---- sizes ------------------------------------------------------------------------------- */

static void test_impossible_sizes(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    uint8_t *block = ht_heap_alloc(heap, 0, 1000);
    CHECK(block != NULL, "alloc");
    EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC_BACKEND, "alloc");
    pattern_fill(block, 5, 1000);
    const size_t sizes[] = {SIZE_MAX,         SIZE_MAX - 8,        SIZE_MAX - 15,  SIZE_MAX - 4096,
                            SIZE_MAX / 2 + 1, (size_t)PTRDIFF_MAX, (size_t)1 << 50};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc(heap, 0, sizes[i]) == NULL, "alloc(%zu) succeeded", sizes[i]);
        EXPECT_ERROR(HT_ERROR_NO_MEMORY, "alloc(%zu)", sizes[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "alloc(%zu)",
                       sizes[i]);
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc(heap, HT_HEAP_ZERO_MEMORY, sizes[i]) == NULL, "zeroed alloc");
        EXPECT_ERROR(HT_ERROR_NO_MEMORY, "zeroed alloc(%zu)", sizes[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "zeroed alloc");
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc_aligned(heap, 0, 4096, sizes[i]) == NULL, "aligned alloc(%zu)",
              sizes[i]);
        EXPECT_ERROR(HT_ERROR_NO_MEMORY, "aligned alloc(%zu)", sizes[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "aligned alloc");
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_realloc(heap, 0, block, sizes[i]) == NULL, "realloc to %zu succeeded",
              sizes[i]);
        EXPECT_ERROR(HT_ERROR_NO_MEMORY, "realloc(%zu)", sizes[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "realloc(%zu)",
                       sizes[i]);
        CHECK(pattern_mismatch(block, 5, 1000) == 1000 &&
                  ht_heap_requested_size(heap, block) == 1000,
              "block changed by a failed realloc to %zu", sizes[i]);
    }
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid after impossible sizes");
    CHECK(ht_heap_free(heap, 0, block), "free");
    destroy(heap);

    /* A fixed-size heap refuses what exceeds its maximum. */
    const size_t maximum = 1 << 20;
    ht_heap *fixed = heap_create_checked(0, 0, maximum);
    counters_read(fixed, &counters);
    block = ht_heap_alloc(fixed, 0, 1000);
    CHECK(block != NULL, "alloc");
    EXPECT_COUNTED(fixed, &counters, HT_OP_ALLOC, SRC_BACKEND, "alloc");
    pattern_fill(block, 5, 1000);
    const size_t too_big[] = {maximum + 1, 2 * maximum, HT_LARGE_THRESHOLD * 4};
    for (size_t i = 0; i < 3; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc(fixed, 0, too_big[i]) == NULL, "fixed alloc(%zu) succeeded",
              too_big[i]);
        EXPECT_ERROR(HT_ERROR_HEAP_FULL, "fixed alloc(%zu)", too_big[i]);
        EXPECT_COUNTED(fixed, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "fixed alloc");
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_realloc(fixed, 0, block, too_big[i]) == NULL, "fixed realloc succeeded");
        EXPECT_ERROR(HT_ERROR_HEAP_FULL, "fixed realloc(%zu)", too_big[i]);
        EXPECT_COUNTED(fixed, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "fixed realloc");
    }
    for (size_t i = 0; i < 3; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc(fixed, 0, sizes[i]) == NULL, "fixed alloc(%zu) succeeded", sizes[i]);
        EXPECT_ERROR2(HT_ERROR_NO_MEMORY, HT_ERROR_HEAP_FULL, "fixed alloc(%zu)", sizes[i]);
        EXPECT_COUNTED(fixed, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "fixed alloc");
    }
    CHECK(pattern_mismatch(block, 5, 1000) == 1000, "block changed");
    CHECK(ht_heap_free(fixed, 0, block), "free");
    destroy(fixed);
}

/* ---- flags, information, buffers -------------------------------------------------------- */

static void test_invalid_parameters(void **state)
{
    (void)state;
    const uint32_t bad_flags[] = {0x80000000u, 0x100u, 0x00010000u};
    for (size_t i = 0; i < 3; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_create(bad_flags[i], 0, 0) == NULL, "create with flags 0x%x", bad_flags[i]);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "create flags 0x%x", bad_flags[i]);
    }
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_create(0, 1 << 20, 64 << 10) == NULL, "create with initial > maximum");
    EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "create initial > maximum");

    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);
    uint8_t *block = ht_heap_alloc(heap, 0, 500);
    CHECK(block != NULL, "alloc");
    EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC_BACKEND, "alloc");
    pattern_fill(block, 9, 500);
    for (size_t i = 0; i < 3; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc(heap, bad_flags[i], 16) == NULL, "alloc flags 0x%x", bad_flags[i]);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "alloc flags 0x%x", bad_flags[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "alloc bad flags");
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_realloc(heap, bad_flags[i], block, 600) == NULL, "realloc flags 0x%x",
              bad_flags[i]);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "realloc flags 0x%x", bad_flags[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "realloc flags");
    }
    /* realloc of NULL is invalid, as in HeapReAlloc. */
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, 0, NULL, 100) == NULL, "realloc(NULL) succeeded");
    EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "realloc(NULL)");
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "realloc(NULL)");
    /* Alignments that are not powers of two. */
    const size_t bad_alignments[] = {0, 3, 24, 48, 1000};
    for (size_t i = 0; i < 5; i++) {
        ht_set_last_error(HT_OK);
        CHECK(ht_heap_alloc_aligned(heap, 0, bad_alignments[i], 64) == NULL,
              "alloc_aligned(%zu) succeeded", bad_alignments[i]);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "alloc_aligned(%zu)", bad_alignments[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID), "alloc_aligned");
    }
    /* free refuses unknown flags as alloc and realloc do, and leaves the block live. */
    for (size_t i = 0; i < 3; i++) {
        ht_set_last_error(HT_OK);
        CHECK(!ht_heap_free(heap, bad_flags[i], block), "free with flags 0x%x succeeded",
              bad_flags[i]);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "free flags 0x%x", bad_flags[i]);
        EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "free flags");
    }
    CHECK(pattern_mismatch(block, 9, 500) == 500 && ht_heap_requested_size(heap, block) == 500,
          "block changed by invalid calls");
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid");
    CHECK(ht_heap_free(heap, 0, block), "free");
    destroy(heap);
}

static void test_invalid_information(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    ht_heap_counters counters;
    counters_read(heap, &counters);

    /* Information classes and buffers. */
    uint32_t value = 2;
    size_t length = 0;
    struct {
        ht_heap_info_class info_class;
        const void *info;
        size_t length;
        const char *what;
    } bad_sets[] = {
        {(ht_heap_info_class)0x7777, &value, sizeof value, "unknown class"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, NULL, sizeof value, "COMPATIBILITY, NULL buffer"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, &value, 2, "COMPATIBILITY, 2-byte buffer"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, (uint32_t[]){3}, 4, "COMPATIBILITY = 3"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, (uint32_t[]){0xFFFFFFFFu}, 4, "COMPATIBILITY = ~0"},
        {HT_HEAP_LOOKASIDE_INFORMATION, (uint32_t[]){2}, 4, "LOOKASIDE = 2"},
        {HT_HEAP_LOOKASIDE_INFORMATION, NULL, 4, "LOOKASIDE, NULL buffer"},
        {HT_HEAP_LOOKASIDE_INFORMATION, &value, 1, "LOOKASIDE, 1-byte buffer"},
        {HT_HEAP_TERMINATION_ON_CORRUPTION_STATE, (uint32_t[]){1}, 4, "set a query-only class"},
    };
    for (size_t i = 0; i < sizeof bad_sets / sizeof bad_sets[0]; i++) {
        ht_set_last_error(HT_OK);
        CHECK(!ht_heap_set_information(heap, bad_sets[i].info_class, bad_sets[i].info,
                                       bad_sets[i].length),
              "set information (%s) succeeded", bad_sets[i].what);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "set information (%s)", bad_sets[i].what);
    }
    CHECK(query_u32(heap, HT_HEAP_COMPATIBILITY_INFORMATION) == 1, "COMPATIBILITY changed");
    CHECK(query_u32(heap, HT_HEAP_LOOKASIDE_INFORMATION) == 1, "LOOKASIDE changed");
    struct {
        ht_heap_info_class info_class;
        void *info;
        size_t length;
        const char *what;
    } bad_queries[] = {
        {(ht_heap_info_class)0x7777, &value, sizeof value, "unknown class"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, NULL, sizeof value, "NULL buffer"},
        {HT_HEAP_COMPATIBILITY_INFORMATION, &value, 2, "2-byte buffer"},
        {HT_HEAP_LOOKASIDE_INFORMATION, &value, 0, "0-byte buffer"},
        {HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION, &value, sizeof value, "query a set-only class"},
    };
    for (size_t i = 0; i < sizeof bad_queries / sizeof bad_queries[0]; i++) {
        ht_set_last_error(HT_OK);
        value = 0xABCDu;
        CHECK(!ht_heap_query_information(heap, bad_queries[i].info_class, bad_queries[i].info,
                                         bad_queries[i].length, &length),
              "query information (%s) succeeded", bad_queries[i].what);
        EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "query information (%s)", bad_queries[i].what);
    }
    /* Output buffers. */
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_summary_get(heap, 0, NULL), "summary into NULL succeeded");
    EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "summary NULL");
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_counters_get(heap, NULL), "counters into NULL succeeded");
    EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "counters NULL");
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_walk(heap, NULL), "walk with NULL entry succeeded");
    EXPECT_ERROR(HT_ERROR_INVALID_PARAMETER, "walk NULL");

    EXPECT_NOT_COUNTED(heap, &counters, "information or buffer errors were counted");
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid");
    destroy(heap);
}

static void test_error_messages(void **state)
{
    (void)state;
    for (int e = 0; e <= HT_ERROR_COUNT + 5; e++) {
        const char *message = ht_error_message((ht_error)e);
        CHECK(message != NULL && message[0] != '\0', "no message for error %d", e);
    }
    CHECK(ht_error_message((ht_error)-1) != NULL, "no message for error -1");
}

static void *fail_in_thread(void *argument)
{
    ht_error *seen = argument;
    seen[0] = ht_last_error(); /* a new thread starts clean */
    CHECK(ht_heap_alloc(NULL, 0, 16) == NULL, "alloc on NULL heap");
    seen[1] = ht_last_error();
    return NULL;
}

static void test_last_error_is_per_thread(void **state)
{
    (void)state;
    ht_set_last_error(HT_ERROR_HEAP_FULL);
    CHECK(ht_last_error() == HT_ERROR_HEAP_FULL, "set/get last error");
    ht_error seen[2] = {HT_ERROR_COUNT, HT_ERROR_COUNT};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, fail_in_thread, seen) == 0, "thread");
    CHECK(pthread_join(thread, NULL) == 0, "join");
    CHECK(seen[0] == HT_OK, "new thread's last error is %d", (int)seen[0]);
    CHECK(seen[1] == HT_ERROR_INVALID_HANDLE, "thread's error %d", (int)seen[1]);
    CHECK(ht_last_error() == HT_ERROR_HEAP_FULL,
          "another thread's failure changed this thread's "
          "last error to %d",
          (int)ht_last_error());
    ht_set_last_error(HT_OK);
}

/* ---- corruption ---------------------------------------------------------------------------- */

typedef struct adjacent {
    uint8_t *first;  /* data of the block that overflows */
    uint8_t *second; /* data of the busy block right after it */
    uint8_t *gap;    /* first byte past first's requested size */
    size_t gap_size; /* bytes up to second's data: first's slack, and second's header if any */
} adjacent;

static int compare_entries(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const ht_heap_entry *)a)->data;
    uintptr_t y = (uintptr_t)((const ht_heap_entry *)b)->data;
    return x < y ? -1 : x > y;
}

/* Two busy blocks that follow each other in memory, with want_flags (LFH or 0). */
static adjacent find_adjacent(ht_heap *heap, uint32_t want_flags)
{
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    qsort(entries, count, sizeof *entries, compare_entries);
    adjacent found = {0};
    const ht_heap_entry *previous = NULL;
    for (size_t i = 0; i < count && !found.first; i++) {
        const ht_heap_entry *e = &entries[i];
        if (!entry_is_block(e))
            continue;
        if (previous && (previous->flags & HT_ENTRY_BUSY) && (e->flags & HT_ENTRY_BUSY) &&
            (previous->flags & HT_ENTRY_LFH) == want_flags &&
            (e->flags & HT_ENTRY_LFH) == want_flags &&
            (uintptr_t)e->data - e->overhead >= (uintptr_t)previous->data + previous->size &&
            (uintptr_t)e->data - ((uintptr_t)previous->data + previous->size) <= 64) {
            found.first = previous->data;
            found.second = e->data;
            found.gap = (uint8_t *)previous->data + previous->requested;
            found.gap_size = (size_t)(found.second - found.gap);
        }
        previous = e;
    }
    free(entries);
    CHECK(found.first != NULL, "no two adjacent busy blocks (flags 0x%x) in the walk", want_flags);
    return found;
}

/* Overflows first up to second's data, checks that the damaged block (victim: second, whose
 * header was hit, or first, whose canary was) is refused, restores the bytes. */
static void check_overflow_detected(ht_heap *heap, adjacent pair, uint8_t *victim, const char *what)
{
    CHECK(pair.gap_size > 0 && pair.gap_size <= 64,
          "%s: %zu bytes between a block's end and the next block's data", what, pair.gap_size);
    uint8_t saved[64], smash[64];
    peek(pair.gap, saved, pair.gap_size);
    memset(smash, 0x41, sizeof smash);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: heap invalid before the overflow", what);
    poke(pair.gap, smash, pair.gap_size);

    ht_heap_counters counters;
    counters_read(heap, &counters);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(heap, 0, NULL), "%s: validate missed an overflow", what);
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "%s: validate", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(heap, 0, victim), "%s: validate of the damaged block succeeded", what);
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "%s: validate block", what);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(heap, 0, victim), "%s: free of the damaged block succeeded", what);
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "%s: free", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "%s: free", what);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_realloc(heap, 0, victim, 8) == NULL, "%s: realloc of the damaged block succeeded",
          what);
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "%s: realloc", what);
    EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID), "%s: realloc", what);
    ht_heap_summary summary;
    (void)ht_heap_summary_get(heap, 0, &summary); /* must not crash */
    ht_heap_entry entry;
    memset(&entry, 0, sizeof entry);
    for (unsigned steps = 0; ht_heap_walk(heap, &entry) && steps < 1000000; steps++) {
    }

    /* The failed calls left the heap as it was: with the bytes restored it is valid again. */
    poke(pair.gap, saved, pair.gap_size);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: heap invalid after restoring the header", what);
    CHECK(ht_heap_validate(heap, 0, victim), "%s: block invalid after restoring", what);
    CHECK(ht_heap_free(heap, 0, pair.second), "%s: free after restoring", what);
    CHECK(ht_heap_free(heap, 0, pair.first), "%s: free of the first block", what);
    CHECK(ht_heap_validate(heap, 0, NULL), "%s: heap invalid at the end", what);
}

static void test_overflow_into_backend_header(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(0);
    void *blocks[8];
    for (unsigned i = 0; i < 8; i++) {
        blocks[i] = ht_heap_alloc(heap, 0, 200);
        CHECK(blocks[i] != NULL, "alloc");
        memset(blocks[i], 0x20 + (int)i, 200);
    }
    adjacent pair = find_adjacent(heap, 0);
    check_overflow_detected(heap, pair, pair.second, "back end");
    destroy(heap);
}

/* An LFH slot has no header: the bytes after its requested ones hold a canary, which free,
 * realloc and validate check (as long as nobody asked for the slot's usable size). */
static void test_overflow_past_lfh_block(void **state)
{
    (void)state;
    ht_heap *heap = heap_with_lfh(2);
    void *blocks[8];
    for (unsigned i = 0; i < 8; i++) {
        blocks[i] = ht_heap_alloc(heap, 0, 56); /* 8 bytes short of the 64-byte bucket */
        CHECK(blocks[i] != NULL, "alloc");
        memset(blocks[i], 0x30 + (int)i, 56);
    }
    adjacent pair = find_adjacent(heap, HT_ENTRY_LFH);
    CHECK(pair.gap_size == 8, "LFH: %zu bytes between a block's end and the next", pair.gap_size);
    check_overflow_detected(heap, pair, pair.first, "LFH");
    /* once the usable size was asked for, the slack is the caller's to write */
    uint8_t *q = ht_heap_alloc(heap, 0, 56);
    CHECK(q != NULL && ht_heap_size(heap, 0, q) == 64, "usable size of a 56-byte LFH block");
    memset(q + 56, 0x41, 8);
    CHECK(ht_heap_validate(heap, 0, q) && ht_heap_validate(heap, 0, NULL),
          "LFH: writing the usable size it was told made the heap invalid");
    CHECK(ht_heap_free(heap, 0, q), "LFH: free after writing the usable size");
    destroy(heap);
}

/* A stray write over a large block's header (the 16 bytes just below its data). */
static void test_stray_write_into_large_header(void **state)
{
    (void)state;
    ht_heap *heap = heap_create_checked(0, 0, 0);
    uint8_t *large = ht_heap_alloc(heap, 0, 600000);
    CHECK(large != NULL, "alloc");
    ht_heap_entry *entries;
    size_t count = walk_collect(heap, &entries);
    const ht_heap_entry *entry = walk_find(entries, count, large);
    CHECK(entry != NULL && entry->overhead >= 16, "large block entry: overhead %u",
          entry ? entry->overhead : 0);
    size_t overhead = 16; /* the block header right below the data */
    free(entries);
    uint8_t saved[64], smash[64];
    memset(smash, 0x42, sizeof smash);
    peek(large - overhead, saved, overhead);
    poke(large - overhead, smash, overhead);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_validate(heap, 0, NULL), "validate missed a smashed large-block header");
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "validate");
    ht_heap_counters counters;
    counters_read(heap, &counters);
    ht_set_last_error(HT_OK);
    CHECK(!ht_heap_free(heap, 0, large), "free of a large block with a smashed header succeeded");
    EXPECT_ERROR(HT_ERROR_CORRUPTION, "free");
    EXPECT_COUNTED(heap, &counters, HT_OP_FREE, SRC(MEMORY_FROM_INVALID), "free");
    poke(large - overhead, saved, overhead);
    CHECK(ht_heap_validate(heap, 0, NULL), "heap invalid after restoring the header");
    CHECK(ht_heap_free(heap, 0, large), "free after restoring");
    destroy(heap);
}

/* ---- GENERATE_EXCEPTIONS --------------------------------------------------------------------- */

static struct {
    unsigned calls;
    void *heap;
    ht_error error;
    void *context;
    ht_error last_error_inside;
} handler_log;

static void recording_handler(void *heap, ht_error error, void *context)
{
    handler_log.calls++;
    handler_log.heap = heap;
    handler_log.error = error;
    handler_log.context = context;
    handler_log.last_error_inside = ht_last_error();
}

#define EXPECT_HANDLER(calls_before, heap_expected, error_expected, ...)                           \
    do {                                                                                           \
        CHECK(handler_log.calls == (calls_before) + 1, "%s: handler ran %u times", __VA_ARGS__,    \
              handler_log.calls - (calls_before));                                                 \
        CHECK(handler_log.heap == (void *)(heap_expected) &&                                       \
                  handler_log.error == (error_expected) &&                                         \
                  handler_log.context == (void *)&handler_log,                                     \
              "%s: handler got heap %p error %d context %p", __VA_ARGS__, handler_log.heap,        \
              (int)handler_log.error, handler_log.context);                                        \
        CHECK(ht_last_error() == (error_expected), "%s: last error %d after the handler",          \
              __VA_ARGS__, (int)ht_last_error());                                                  \
    } while (0)

static void test_generate_exceptions(void **state)
{
    (void)state;
    memset(&handler_log, 0, sizeof handler_log);
    ht_failure_handler previous = ht_set_failure_handler(recording_handler, &handler_log);
    CHECK(previous != NULL, "no default failure handler");

    ht_heap *heap = heap_create_checked(HT_HEAP_GENERATE_EXCEPTIONS, 0, 0);
    set_compatibility(heap, 2); /* blocks in LFH slots: growth in place is impossible */
    unsigned calls = handler_log.calls;
    void *p = ht_heap_alloc(heap, 0, 100);
    CHECK(p != NULL && handler_log.calls == calls, "handler ran on a successful alloc");
    CHECK(ht_heap_alloc(heap, 0, SIZE_MAX) == NULL, "alloc(SIZE_MAX) succeeded");
    EXPECT_HANDLER(calls, heap, HT_ERROR_NO_MEMORY, "GE heap, alloc(SIZE_MAX)");
    calls = handler_log.calls;
    CHECK(ht_heap_realloc(heap, 0, p, SIZE_MAX - 64) == NULL, "realloc succeeded");
    EXPECT_HANDLER(calls, heap, HT_ERROR_NO_MEMORY, "GE heap, realloc(SIZE_MAX - 64)");
    CHECK(ht_heap_size(heap, 0, p) >= 100, "block lost after a failed realloc");
    calls = handler_log.calls;
    CHECK(ht_heap_realloc(heap, HT_HEAP_REALLOC_IN_PLACE_ONLY, p, 100000) == NULL,
          "in-place realloc to 100000 succeeded");
    EXPECT_HANDLER(calls, heap, HT_ERROR_NOT_IN_PLACE, "GE heap, in-place realloc");
    uint8_t stack[64] __attribute__((aligned(16)));
    calls = handler_log.calls;
    CHECK(!ht_heap_free(heap, 0, stack + 16), "free of a stack address succeeded");
    EXPECT_HANDLER(calls, heap, HT_ERROR_INVALID_POINTER, "GE heap, free of a stack address");
    CHECK(ht_heap_free(heap, 0, p), "free");
    destroy(heap);

    /* The flag on one call of an ordinary heap. */
    heap = heap_create_checked(0, 0, 0);
    calls = handler_log.calls;
    CHECK(ht_heap_alloc(heap, 0, SIZE_MAX) == NULL, "alloc(SIZE_MAX)");
    CHECK(handler_log.calls == calls, "handler ran without GENERATE_EXCEPTIONS");
    CHECK(ht_heap_alloc(heap, HT_HEAP_GENERATE_EXCEPTIONS, SIZE_MAX) == NULL, "alloc(SIZE_MAX)");
    EXPECT_HANDLER(calls, heap, HT_ERROR_NO_MEMORY, "per-call flag");
    destroy(heap);

    /* A full fixed-size heap. */
    heap = heap_create_checked(HT_HEAP_GENERATE_EXCEPTIONS, 0, 256 << 10);
    void *blocks[64];
    unsigned n = 0;
    calls = handler_log.calls;
    while (n < 64 && (blocks[n] = ht_heap_alloc(heap, 0, 16384)) != NULL)
        n++;
    CHECK(n > 4 && n < 64, "fixed 256 KiB heap took %u blocks of 16 KiB", n);
    EXPECT_HANDLER(calls, heap, HT_ERROR_HEAP_FULL, "fixed heap full");
    for (unsigned i = 0; i < n; i++)
        CHECK(ht_heap_free(heap, 0, blocks[i]), "free");
    destroy(heap);

    CHECK(ht_set_failure_handler(previous, NULL) == recording_handler,
          "ht_set_failure_handler did not return the installed handler");
}

/* ---- dying children --------------------------------------------------------------------------- */

typedef void (*child_body)(void);

/* Runs body in a forked child with stderr captured; returns the wait status, and stderr's
 * text in message. */
static int run_child(child_body body, char *message, size_t length)
{
    int pipe_fds[2];
    CHECK(pipe(pipe_fds) == 0, "pipe");
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        close(pipe_fds[0]);
        dup2(pipe_fds[1], STDERR_FILENO);
        signal(SIGABRT, SIG_DFL);
        body();
        _exit(3); /* the body was supposed to die */
    }
    close(pipe_fds[1]);
    size_t used = 0;
    ssize_t got;
    while ((got = read(pipe_fds[0], message + used, length - 1 - used)) > 0) {
        used += (size_t)got;
        if (used == length - 1)
            break;
    }
    message[used] = '\0';
    close(pipe_fds[0]);
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    return status;
}

static void smash_and_validate(void)
{
    ht_heap *heap = heap_with_lfh(0);
    uint32_t enabled = 0;
    size_t length = 0;
    if (!ht_heap_query_information(heap, HT_HEAP_TERMINATION_ON_CORRUPTION_STATE, &enabled,
                                   sizeof enabled, &length) ||
        enabled != 0)
        _exit(4);
    if (!ht_heap_set_information(heap, HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION, NULL, 0))
        _exit(5);
    if (!ht_heap_query_information(heap, HT_HEAP_TERMINATION_ON_CORRUPTION_STATE, &enabled,
                                   sizeof enabled, &length) ||
        enabled != 1)
        _exit(6);
    for (unsigned i = 0; i < 8; i++) {
        if (!ht_heap_alloc(heap, 0, 200))
            _exit(7);
    }
    adjacent pair = find_adjacent(heap, 0);
    uint8_t smash[64];
    memset(smash, 0x41, sizeof smash);
    poke(pair.gap, smash, pair.gap_size);
    (void)ht_heap_validate(heap, 0, NULL); /* detection aborts */
}

static void smash_and_free(void)
{
    ht_heap *heap = heap_with_lfh(0);
    if (!ht_heap_set_information(heap, HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION, NULL, 0))
        _exit(5);
    for (unsigned i = 0; i < 8; i++) {
        if (!ht_heap_alloc(heap, 0, 200))
            _exit(7);
    }
    adjacent pair = find_adjacent(heap, 0);
    uint8_t smash[64];
    memset(smash, 0x41, sizeof smash);
    poke(pair.gap, smash, pair.gap_size);
    (void)ht_heap_free(heap, 0, pair.second); /* detection aborts */
}

static void fail_with_default_handler(void)
{
    ht_heap *heap = heap_create_checked(HT_HEAP_GENERATE_EXCEPTIONS, 0, 0);
    (void)ht_heap_alloc(heap, 0, SIZE_MAX); /* the default handler aborts */
}

static void check_child_aborted(child_body body, const char *what)
{
    char message[4096];
    int status = run_child(body, message, sizeof message);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
          "%s: child %s %d, expected SIGABRT; stderr: %s", what,
          WIFSIGNALED(status) ? "died of signal" : "exited with",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), message);
    CHECK(strlen(message) > 0 && strstr(message, "heaptrail") != NULL,
          "%s: no heaptrail message on stderr before the abort (got '%s')", what, message);
    if (options.verbose)
        printf("  %s: %s", what, message);
}

static void test_termination_on_corruption(void **state)
{
    (void)state;
    check_child_aborted(smash_and_validate, "termination on corruption, validate");
    check_child_aborted(smash_and_free, "termination on corruption, free");
    /* Switched on only in the children: this process still just gets false. */
    ht_heap *heap = heap_create_checked(0, 0, 0);
    CHECK(query_u32(heap, HT_HEAP_TERMINATION_ON_CORRUPTION_STATE) == 0,
          "termination on corruption is on in the parent");
    destroy(heap);
}

static void test_default_failure_handler_aborts(void **state)
{
    (void)state;
    check_child_aborted(fail_with_default_handler, "default failure handler");
}

int main(int argc, char **argv)
{
    parse_options(argc, argv, &options, usage);
    context_set("bad input", 0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_heap_handles),
        cmocka_unit_test(test_destroy_process_heap),
        cmocka_unit_test(test_foreign_pointers),
        cmocka_unit_test(test_stale_pointers_of_destroyed_heap),
        cmocka_unit_test(test_double_free_backend),
        cmocka_unit_test(test_double_free_lfh),
        cmocka_unit_test(test_double_free_cached_elsewhere),
        cmocka_unit_test(test_canary_follows_realloc_in_place),
        cmocka_unit_test(test_double_free_large),
        cmocka_unit_test(test_impossible_sizes),
        cmocka_unit_test(test_invalid_parameters),
        cmocka_unit_test(test_invalid_information),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_last_error_is_per_thread),
        cmocka_unit_test(test_overflow_into_backend_header),
        cmocka_unit_test(test_overflow_past_lfh_block),
        cmocka_unit_test(test_stray_write_into_large_header),
        cmocka_unit_test(test_generate_exceptions),
        cmocka_unit_test(test_termination_on_corruption),
        cmocka_unit_test(test_default_failure_handler_aborts),
    };
    return cmocka_run_group_tests_name("heap_bad_input", tests, NULL, NULL);
}
