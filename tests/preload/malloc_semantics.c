/* malloc_semantics.c — the malloc family's POSIX behaviour under libheaptrail-preload.so, and
 * proof that the calls are served by heaptrail's process heap.
 *
 * Run only with LD_PRELOAD set to the library: the public heap API is looked up with
 * dlsym(RTLD_DEFAULT, ...) (the preload exports it), the process heap's counters must grow with
 * malloc/free and ht_heap_validate must pass. Checks: alignment of every call, usable sizes,
 * ENOMEM/EINVAL on failure, realloc contents, calloc zeroing, free preserving errno, and free of
 * pointers the heap does not own. Compiled with -fno-builtin so every call really happens. */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heaptrail/heap.h"

static int checks_run;
static int checks_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        checks_run++;                                                                              \
        if (!(cond)) {                                                                             \
            checks_failed++;                                                                       \
            fprintf(stderr, "malloc_semantics.c:%d: check failed: %s\n", __LINE__, #cond);         \
        }                                                                                          \
    } while (0)

/* The public API, reached through the preload library's exports. */
static struct {
    ht_heap *(*process_heap)(void);
    bool (*validate)(ht_heap *, uint32_t, const void *);
    size_t (*size)(ht_heap *, uint32_t, const void *);
    bool (*counters_get)(ht_heap *, ht_heap_counters *);
    bool (*summary_get)(ht_heap *, uint32_t, ht_heap_summary *);
} api;
static ht_heap *heap;

/* Opaque to the optimiser: sizes the compiler cannot judge at build time. */
static volatile size_t huge_size = SIZE_MAX;

static size_t opaque(size_t value)
{
    volatile size_t hidden = value;
    return hidden;
}

static int lookup_api(void)
{
    *(void **)&api.process_heap = dlsym(RTLD_DEFAULT, "ht_process_heap");
    *(void **)&api.validate = dlsym(RTLD_DEFAULT, "ht_heap_validate");
    *(void **)&api.size = dlsym(RTLD_DEFAULT, "ht_heap_size");
    *(void **)&api.counters_get = dlsym(RTLD_DEFAULT, "ht_heap_counters_get");
    *(void **)&api.summary_get = dlsym(RTLD_DEFAULT, "ht_heap_summary_get");
    if (!api.process_heap || !api.validate || !api.size || !api.counters_get || !api.summary_get) {
        fprintf(stderr, "malloc_semantics: the heaptrail API is not in the process: run with "
                        "LD_PRELOAD=libheaptrail-preload.so\n");
        return -1;
    }
    heap = api.process_heap();
    if (heap == NULL) {
        fprintf(stderr, "malloc_semantics: ht_process_heap() returned NULL\n");
        return -1;
    }
    return 0;
}

static uint64_t counter_total(ht_op op)
{
    ht_heap_counters counters;
    if (!api.counters_get(heap, &counters))
        return 0;
    uint64_t total = 0;
    for (int source = 0; source < HT_SOURCE_COUNT; source++)
        total += counters.counts[op][source];
    return total;
}

static size_t live_blocks(void)
{
    ht_heap_summary summary;
    return api.summary_get(heap, 0, &summary) ? summary.live_blocks : 0;
}

static int is_aligned(const void *block, size_t alignment)
{
    return ((uintptr_t)block & (alignment - 1)) == 0;
}

static void fill(unsigned char *block, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        block[i] = (unsigned char)(i * 31u + seed);
}

static int intact(const unsigned char *block, size_t size, unsigned seed)
{
    for (size_t i = 0; i < size; i++)
        if (block[i] != (unsigned char)(i * 31u + seed))
            return 0;
    return 1;
}

static int all_zero(const unsigned char *block, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (block[i] != 0)
            return 0;
    return 1;
}

/* Every size class, LFH sizes after activation, back-end and large blocks. */
static void check_malloc_served_by_heaptrail(void)
{
    enum { COUNT = 600 };
    static void *blocks[COUNT];
    static size_t sizes[COUNT];
    uint64_t allocs_before = counter_total(HT_OP_ALLOC);
    uint64_t frees_before = counter_total(HT_OP_FREE);
    size_t live_before = live_blocks();
    for (int i = 0; i < COUNT; i++) {
        sizes[i] = i % 100 == 99 ? (size_t)(1u << 20) + (size_t)i : (size_t)(i * 37 % 20000);
        blocks[i] = malloc(sizes[i]);
        CHECK(blocks[i] != NULL);
        CHECK(is_aligned(blocks[i], 16));
        CHECK(malloc_usable_size(blocks[i]) >= sizes[i]);
        CHECK(api.size(heap, 0, blocks[i]) == malloc_usable_size(blocks[i]));
        CHECK(api.validate(heap, 0, blocks[i]));
        fill(blocks[i], sizes[i], (unsigned)i);
    }
    CHECK(counter_total(HT_OP_ALLOC) >= allocs_before + COUNT);
    CHECK(live_blocks() >= live_before + COUNT);
    CHECK(api.validate(heap, 0, NULL));
    size_t live_full = live_blocks();
    for (int i = 0; i < COUNT; i++) {
        CHECK(intact(blocks[i], sizes[i], (unsigned)i));
        free(blocks[i]);
    }
    CHECK(counter_total(HT_OP_FREE) >= frees_before + COUNT);
    CHECK(live_blocks() + COUNT <= live_full);
    CHECK(api.validate(heap, 0, NULL));
}

static void check_failures(void)
{
    errno = 0;
    CHECK(malloc(huge_size) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(malloc(huge_size / 2 + 1) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(huge_size / 2, 3) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(calloc(3, huge_size / 2) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(memalign(64, huge_size) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(valloc(huge_size) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(pvalloc(huge_size) == NULL && errno == ENOMEM);
    errno = 0;
    CHECK(aligned_alloc(64, huge_size) == NULL && errno == ENOMEM);

    void *block = malloc(100);
    fill(block, 100, 7);
    /* A failed realloc leaves the old block untouched (checked only where the call returned
     * NULL, which is also what the compiler's use-after-free analysis accepts). */
    errno = 0;
    void *failed = realloc(block, huge_size);
    CHECK(failed == NULL && errno == ENOMEM);
    if (failed == NULL)
        CHECK(intact(block, 100, 7));
    else
        block = failed;
    errno = 0;
    failed = reallocarray(block, huge_size / 2, 3);
    CHECK(failed == NULL && errno == ENOMEM);
    if (failed == NULL)
        CHECK(intact(block, 100, 7));
    else
        block = failed;
    void *grown = reallocarray(block, 50, 4);
    CHECK(grown != NULL && intact(grown, 100, 7) && malloc_usable_size(grown) >= 200);
    free(grown);
}

static void check_zero_sizes(void)
{
    void *block = malloc(0);
    CHECK(block != NULL);
    free(block);
    block = calloc(0, 10);
    CHECK(block != NULL);
    free(block);
    /* glibc: realloc(p, 0) frees p and returns NULL. */
    block = malloc(64);
    uint64_t frees_before = counter_total(HT_OP_FREE);
    CHECK(realloc(block, 0) == NULL);
    CHECK(counter_total(HT_OP_FREE) == frees_before + 1);
    block = realloc(NULL, 40); /* = malloc(40) */
    CHECK(block != NULL && malloc_usable_size(block) >= 40);
    free(block);
    CHECK(malloc_usable_size(NULL) == 0);
}

static void check_calloc_zeroes(void)
{
    static const size_t sizes[] = {1, 24, 100, 1000, 4000, 16384, 100000, 600000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        /* Dirty blocks of the same size first, so calloc is likely to reuse one. */
        for (int round = 0; round < 40; round++) {
            unsigned char *dirty = malloc(sizes[s]);
            memset(dirty, 0xA5, sizes[s]);
            free(dirty);
            unsigned char *clean = calloc(1, sizes[s]);
            CHECK(clean != NULL && all_zero(clean, sizes[s]));
            memset(clean, 0x5A, sizes[s]);
            free(clean);
        }
    }
}

static void check_realloc_contents(void)
{
    static const size_t steps[] = {1, 100, 5000, 20000, 600000, 2000000, 700000, 300, 10};
    unsigned char *block = NULL;
    size_t kept = 0;
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        unsigned char *moved = realloc(block, steps[s]);
        CHECK(moved != NULL && is_aligned(moved, 16));
        if (moved == NULL)
            break;
        size_t common = kept < steps[s] ? kept : steps[s];
        CHECK(intact(moved, common, 3));
        CHECK(malloc_usable_size(moved) >= steps[s]);
        fill(moved, steps[s], 3);
        block = moved;
        kept = steps[s];
    }
    free(block);
}

static void check_alignment_calls(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (size_t alignment = sizeof(void *); alignment <= ((size_t)1 << 21); alignment <<= 1) {
        void *block = (void *)0x1;
        errno = 1234;
        CHECK(posix_memalign(&block, alignment, 100) == 0);
        CHECK(errno == 1234);
        CHECK(block != NULL && is_aligned(block, alignment) && malloc_usable_size(block) >= 100);
        free(block);
        block = aligned_alloc(alignment, 3 * alignment);
        CHECK(block != NULL && is_aligned(block, alignment));
        CHECK(malloc_usable_size(block) >= 3 * alignment);
        free(block);
        block = memalign(alignment, 1);
        CHECK(block != NULL && is_aligned(block, alignment));
        free(block);
    }
    static const size_t bad_alignments[] = {0, 1, 2, 4, 12, 24, 48, 100, 4097};
    for (size_t b = 0; b < sizeof bad_alignments / sizeof bad_alignments[0]; b++) {
        void *untouched = (void *)0x1;
        errno = 1234;
        CHECK(posix_memalign(&untouched, bad_alignments[b], 10) == EINVAL);
        CHECK(untouched == (void *)0x1 && errno == 1234);
    }
    void *unset = (void *)0x1;
    CHECK(posix_memalign(&unset, 64, huge_size) == ENOMEM && unset == (void *)0x1);
    errno = 0;
    CHECK(aligned_alloc(opaque(24), 48) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(aligned_alloc(opaque(0), 48) == NULL && errno == EINVAL);
    /* memalign rounds an alignment that is not a power of two up to one, as glibc does. */
    void *block = memalign(opaque(48), 10);
    CHECK(block != NULL && is_aligned(block, 64));
    free(block);
    block = memalign(opaque(0), 10);
    CHECK(block != NULL && is_aligned(block, 16));
    free(block);
    block = valloc(10);
    CHECK(block != NULL && is_aligned(block, page) && malloc_usable_size(block) >= 10);
    free(block);
    block = pvalloc(page + 1);
    CHECK(block != NULL && is_aligned(block, page) && malloc_usable_size(block) >= 2 * page);
    free(block);
    block = pvalloc(0);
    CHECK(block != NULL && is_aligned(block, page) && malloc_usable_size(block) >= page);
    free(block);
}

static void check_free_manners(void)
{
    static const size_t sizes[] = {16, 2000, 100000, 1u << 20};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        void *block = malloc(sizes[s]);
        errno = EDOM;
        free(block);
        CHECK(errno == EDOM);
    }
    errno = EDOM;
    free(NULL);
    CHECK(errno == EDOM);
    /* Pointers the heap never handed out: ignored, never a crash, errno kept. */
    static _Alignas(64) unsigned char not_ours[256];
    errno = EDOM;
    free(not_ours + 64);
    CHECK(errno == EDOM);
    CHECK(malloc_usable_size(not_ours + 64) == 0);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *mapping = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(mapping != MAP_FAILED);
    if (mapping != MAP_FAILED) {
        free((unsigned char *)mapping + 16);
        CHECK(malloc_usable_size((unsigned char *)mapping + 16) == 0);
        munmap(mapping, page);
    }
    CHECK(api.validate(heap, 0, NULL));
}

/* Blocks allocated by one thread, freed by another. */
enum { HANDOFF_COUNT = 2000 };
static void *handoff[HANDOFF_COUNT];

static void *allocate_handoff(void *unused)
{
    (void)unused;
    for (int i = 0; i < HANDOFF_COUNT; i++) {
        handoff[i] = malloc((size_t)(i % 300) * 8 + 1);
        fill(handoff[i], (size_t)(i % 300) * 8 + 1, (unsigned)i);
    }
    return NULL;
}

static void check_cross_thread_free(void)
{
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, allocate_handoff, NULL) == 0);
    pthread_join(thread, NULL);
    for (int i = 0; i < HANDOFF_COUNT; i++) {
        CHECK(intact(handoff[i], (size_t)(i % 300) * 8 + 1, (unsigned)i));
        free(handoff[i]);
    }
    CHECK(api.validate(heap, 0, NULL));
}

int main(void)
{
    if (lookup_api() != 0)
        return 2;
    check_malloc_served_by_heaptrail();
    check_failures();
    check_zero_sizes();
    check_calloc_zeroes();
    check_realloc_contents();
    check_alignment_calls();
    check_free_manners();
    check_cross_thread_free();
    CHECK(api.validate(heap, 0, NULL));
    printf("malloc_semantics: %d checks, %d failed\n", checks_run, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
