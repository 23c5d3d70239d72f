/* reentry.c — the preload library's re-entry path, which real programs never reach: calls made
 * while the heap is already running in the same thread must be served by the bootstrap pool.
 *
 * Linked with src/preload/preload.c and a fake heap defined here (each block its own mapping)
 * whose ht_heap_alloc can run a nested action, as a heap whose set-up reached an allocating libc
 * function would. Checks: nested blocks are aligned, zeroed, sized, recycled, and moved out to
 * the heap by realloc; nested free/realloc of heap blocks never re-enter the heap. */
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "heaptrail/heap.h"

static int checks_failed;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            checks_failed++;                                                                       \
            fprintf(stderr, "reentry.c:%d: check failed: %s\n", __LINE__, #cond);                  \
        }                                                                                          \
    } while (0)

/* ---- The fake heap: one mapping per block, a 16-byte header holding the size ------------ */
#define FAKE_MAGIC 0x6865617074726169ull
typedef struct fake_header {
    uint64_t magic;
    uint64_t size;
} fake_header;

struct ht_heap {
    int unused;
};
static struct ht_heap fake_heap;
static int heap_depth;     /* > 0 while a fake heap call runs */
static int heap_reentered; /* a fake heap call began while another was running */
static unsigned long heap_allocs, heap_frees;
static void (*nested_action)(void); /* run once inside the next ht_heap_alloc */

static void enter(void)
{
    heap_reentered |= heap_depth > 0;
    heap_depth++;
}

static void leave(void)
{
    heap_depth--;
}

static void run_nested_action(void)
{
    void (*action)(void) = nested_action;
    nested_action = NULL;
    if (action != NULL)
        action();
}

static fake_header *fake_owner(const void *block)
{
    if (block == NULL || ((uintptr_t)block & 4095u) != sizeof(fake_header))
        return NULL;
    /* Through an integer: the compiler would otherwise judge the header out of the block. */
    fake_header *header = (fake_header *)((uintptr_t)block - sizeof(fake_header));
    return header->magic == FAKE_MAGIC ? header : NULL;
}

static void *fake_map(size_t size, uint32_t flags)
{
    (void)flags; /* fresh mappings are zeroed */
    if (size > ((size_t)1 << 40))
        return NULL;
    void *map = mmap(NULL, size + sizeof(fake_header), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return NULL;
    fake_header *header = map;
    header->magic = FAKE_MAGIC;
    header->size = size;
    heap_allocs++;
    return header + 1;
}

ht_heap *ht_process_heap(void)
{
    return &fake_heap;
}

/* The tracer's side, which preload.c reaches for heaptrail's own allocations: no guard is ever
 * held here, and no private heap can be made. */
__thread unsigned hti_guard_depth;
ht_heap *_Atomic hti_tracer_heap;
void hti_guard_enter(void)
{
    hti_guard_depth++;
}
void hti_guard_leave(void)
{
    hti_guard_depth--;
}
/* No control request is ever pending here. */
_Atomic int hti_control_pending;
void hti_control_serve_pending(const void *caller)
{
    (void)caller;
}
ht_heap *ht_heap_create(uint32_t flags, size_t initial_size, size_t maximum_size)
{
    (void)flags;
    (void)initial_size;
    (void)maximum_size;
    return NULL;
}
bool ht_heap_walk(ht_heap *heap, ht_heap_entry *entry)
{
    (void)heap;
    (void)entry;
    return false;
}
bool ht_heap_destroy(ht_heap *heap)
{
    (void)heap;
    return false;
}

void *ht_heap_alloc(ht_heap *heap, uint32_t flags, size_t size)
{
    (void)heap;
    enter();
    run_nested_action();
    void *block = fake_map(size, flags);
    leave();
    return block;
}

void *ht_heap_alloc_aligned(ht_heap *heap, uint32_t flags, size_t alignment, size_t size)
{
    (void)heap;
    (void)flags;
    (void)alignment;
    (void)size;
    return NULL; /* not used by these checks */
}

bool ht_heap_free(ht_heap *heap, uint32_t flags, void *block)
{
    (void)heap;
    (void)flags;
    enter();
    fake_header *header = fake_owner(block);
    if (header != NULL) {
        header->magic = 0;
        munmap(header, header->size + sizeof *header);
        heap_frees++;
    }
    leave();
    return header != NULL;
}

size_t ht_heap_size(ht_heap *heap, uint32_t flags, const void *block)
{
    (void)heap;
    (void)flags;
    fake_header *header = fake_owner(block);
    return header != NULL ? header->size : SIZE_MAX;
}

void *ht_heap_realloc(ht_heap *heap, uint32_t flags, void *block, size_t size)
{
    enter();
    fake_header *header = fake_owner(block);
    void *moved = header != NULL ? fake_map(size, flags) : NULL;
    if (moved != NULL) {
        memcpy(moved, block, header->size < size ? header->size : size);
        leave();
        ht_heap_free(heap, 0, block);
        return moved;
    }
    leave();
    return NULL;
}

/* ---- Nested actions and what they saw ----------------------------------------------------- */
static void *nested_block;
static void *heap_block;
static void *nested_result;
static int nested_errno;

static void nested_malloc(void)
{
    nested_block = malloc(40);
}

static void nested_calloc(void)
{
    nested_block = calloc(10, 10);
}

static void nested_memalign(void)
{
    nested_block = memalign(4096, 100);
}

static void nested_too_big(void)
{
    errno = 0;
    nested_block = malloc((size_t)1 << 20);
    nested_errno = errno;
}

static void nested_heap_calls(void)
{
    unsigned long frees = heap_frees;
    free(heap_block); /* ignored: the heap is busy in this thread */
    errno = 0;
    nested_result = realloc(heap_block, 500);
    nested_errno = errno;
    CHECK(heap_frees == frees);
    CHECK(malloc_usable_size(heap_block) == 0);
}

/* Outer calls that run a nested action go through this pointer: declared malloc, a call is
 * assumed to write no global memory, yet here the nested action does. */
static void *(*volatile outer_malloc)(size_t) = malloc;

static int all_bytes(const unsigned char *block, size_t size, unsigned char value)
{
    for (size_t i = 0; i < size; i++)
        if (block[i] != value)
            return 0;
    return 1;
}

int main(void)
{
    /* A nested malloc is served by the pool: aligned, zeroed, not a heap block. */
    nested_action = nested_malloc;
    unsigned long allocs = heap_allocs;
    void *outer = outer_malloc(100);
    CHECK(outer != NULL && fake_owner(outer) != NULL);
    CHECK(heap_allocs == allocs + 1);
    CHECK(nested_block != NULL && fake_owner(nested_block) == NULL);
    CHECK(((uintptr_t)nested_block & 15u) == 0);
    CHECK(malloc_usable_size(nested_block) >= 40);
    CHECK(all_bytes(nested_block, 40, 0));
    memset(nested_block, 0x77, 40);

    /* realloc moves a pool block out to the heap, contents kept; the pool slot is recycled. */
    void *first_slot = nested_block;
    void *moved = realloc(nested_block, 5000);
    CHECK(moved != NULL && fake_owner(moved) != NULL && all_bytes(moved, 40, 0x77));
    nested_action = nested_malloc;
    free(outer_malloc(10));
    CHECK(nested_block == first_slot); /* the same class's free list, LIFO */
    CHECK(all_bytes(nested_block, 40, 0));
    unsigned long frees = heap_frees;
    free(nested_block); /* back to the pool, not to the heap */
    CHECK(heap_frees == frees);

    nested_action = nested_calloc;
    free(outer_malloc(10));
    CHECK(nested_block != NULL && all_bytes(nested_block, 100, 0));
    free(nested_block);

    nested_action = nested_memalign;
    free(outer_malloc(10));
    CHECK(nested_block != NULL && ((uintptr_t)nested_block & 4095u) == 0);
    CHECK(malloc_usable_size(nested_block) >= 100);
    free(nested_block);

    /* Beyond the pool's largest class: ENOMEM, not a re-entry. */
    nested_action = nested_too_big;
    free(outer_malloc(10));
    CHECK(nested_block == NULL && nested_errno == ENOMEM);

    /* free/realloc of a heap block while the heap runs: never re-entered. */
    heap_block = malloc(200);
    nested_action = nested_heap_calls;
    free(outer_malloc(10));
    CHECK(nested_result == NULL && nested_errno == ENOMEM);
    CHECK(fake_owner(heap_block) != NULL);
    free(heap_block);

    free(moved);
    free(outer);
    CHECK(!heap_reentered);
    printf("reentry: %s\n", checks_failed == 0 ? "ok" : "FAILED");
    return checks_failed == 0 ? 0 : 1;
}
