/* preload.c — libheaptrail-preload.so: the C malloc family served by the process heap.
 *
 * Each interposed function is a few lines over the public heap API, with POSIX manners rather
 * than the heap's: failures return NULL with errno = ENOMEM (never the heap's last error or
 * failure handler), free preserves errno and ignores pointers the heap does not own. A
 * thread-local nesting counter sends any call made from inside the heap (should the heap reach
 * a libc function that allocates) to a small static bootstrap pool instead of recursing.
 * Memory allocated on heaptrail's own behalf (while the tracer's guard is held) comes from a
 * private heap that is never traced, so it is never counted as the program's.
 * Fork safety comes from the heap's own atfork handlers. Tracing, fatal signals, fork children's
 * traces and the control socket are wired up in startup.c. */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heaptrail/heap.h"
#include "trace/control_internal.h" /* hti_control_pending */
#include "trace/trace_internal.h"   /* the guard: hti_guard_depth, hti_guard_enter/leave */

#define HT_EXPORT __attribute__((visibility("default")))

/* The heap's natural alignment: every block is 16-byte aligned (DESIGN.md). */
#define MALLOC_ALIGNMENT 16u

/* glibc no longer declares cfree; it is still exported for old binaries. */
void cfree(void *block);

/* Non-zero while this thread is inside the heap. initial-exec: the library is preloaded, so
 * its TLS is in the static block and reading it never allocates. */
static __thread unsigned preload_nesting __attribute__((tls_model("initial-exec")));

static ht_heap *_Atomic cached_process_heap;

static ht_heap *process_heap(void)
{
    ht_heap *heap = atomic_load_explicit(&cached_process_heap, memory_order_acquire);
    if (HTI_UNLIKELY(heap == NULL)) {
        heap = ht_process_heap(); /* idempotent; a race only stores the same handle twice */
        atomic_store_explicit(&cached_process_heap, heap, memory_order_release);
    }
    return heap;
}

static void *fail_no_memory(void)
{
    errno = ENOMEM;
    return NULL;
}

static bool is_power_of_two(size_t value)
{
    return value != 0 && (value & (value - 1)) == 0;
}

static size_t page_size(void)
{
    static size_t cached;
    size_t size = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (HTI_UNLIKELY(size == 0)) {
        long value = sysconf(_SC_PAGESIZE); /* reads the loader's copy; never allocates */
        size = value > 0 ? (size_t)value : 4096u;
        __atomic_store_n(&cached, size, __ATOMIC_RELAXED);
    }
    return size;
}

/* ---- Bootstrap pool: only for calls nested inside the heap --------------------------------
 * Power-of-two classes from 16 bytes to 64 KiB, each block aligned to its class size, carved
 * from a static array (untouched pages cost nothing) and recycled through per-class free lists.
 * A spin lock is enough: the pool is reached only by re-entry, which is rare and short. */
#define BOOTSTRAP_POOL_SIZE (2u << 20)
#define BOOTSTRAP_MIN_SHIFT 4u
#define BOOTSTRAP_MAX_SHIFT 16u
#define BOOTSTRAP_GRANULE (1u << BOOTSTRAP_MIN_SHIFT)

static _Alignas(1u << BOOTSTRAP_MAX_SHIFT) unsigned char bootstrap_pool[BOOTSTRAP_POOL_SIZE];
static uint8_t bootstrap_block_shift[BOOTSTRAP_POOL_SIZE / BOOTSTRAP_GRANULE]; /* by granule */
static void *bootstrap_free_list[BOOTSTRAP_MAX_SHIFT + 1];
static size_t bootstrap_used;
static atomic_flag bootstrap_lock = ATOMIC_FLAG_INIT;

static bool bootstrap_owns(const void *block)
{
    return (uintptr_t)block - (uintptr_t)bootstrap_pool < BOOTSTRAP_POOL_SIZE;
}

static size_t bootstrap_granule_of(const void *block)
{
    return ((uintptr_t)block - (uintptr_t)bootstrap_pool) / BOOTSTRAP_GRANULE;
}

/* Returns a zeroed block of at least size bytes aligned to alignment, or NULL (errno ENOMEM). */
static void *bootstrap_alloc(size_t alignment, size_t size)
{
    size_t need = size > alignment ? size : alignment;
    unsigned shift = BOOTSTRAP_MIN_SHIFT;
    while (shift <= BOOTSTRAP_MAX_SHIFT && ((size_t)1 << shift) < need)
        shift++;
    if (shift > BOOTSTRAP_MAX_SHIFT)
        return fail_no_memory();
    size_t class_size = (size_t)1 << shift;
    void *block = NULL;
    while (atomic_flag_test_and_set_explicit(&bootstrap_lock, memory_order_acquire))
        ;
    if (bootstrap_free_list[shift] != NULL) {
        block = bootstrap_free_list[shift];
        bootstrap_free_list[shift] = *(void **)block;
    } else {
        size_t offset = (bootstrap_used + class_size - 1) & ~(class_size - 1);
        if (offset + class_size <= BOOTSTRAP_POOL_SIZE) {
            block = bootstrap_pool + offset;
            bootstrap_used = offset + class_size;
            bootstrap_block_shift[offset / BOOTSTRAP_GRANULE] = (uint8_t)shift;
        }
    }
    atomic_flag_clear_explicit(&bootstrap_lock, memory_order_release);
    if (block == NULL)
        return fail_no_memory();
    memset(block, 0, class_size);
    return block;
}

static size_t bootstrap_size(const void *block)
{
    return (size_t)1 << bootstrap_block_shift[bootstrap_granule_of(block)];
}

static void bootstrap_free(void *block)
{
    unsigned shift = bootstrap_block_shift[bootstrap_granule_of(block)];
    if (shift < BOOTSTRAP_MIN_SHIFT) /* not the start of a block: ignore, as for any stranger */
        return;
    while (atomic_flag_test_and_set_explicit(&bootstrap_lock, memory_order_acquire))
        ;
    *(void **)block = bootstrap_free_list[shift];
    bootstrap_free_list[shift] = block;
    atomic_flag_clear_explicit(&bootstrap_lock, memory_order_release);
}

/* ---- heaptrail's own memory: the tracer heap ----------------------------------------------
 * What the C library and libunwind allocate on heaptrail's behalf (the thread-local storage of
 * its writer, control and consumer threads, libunwind's set-up and per-thread caches) is not the
 * program's memory: memcheck or DHAT would not see it, and a trace must not count it in its
 * rundown, leaks or peak. The tracer marks that work with its guard (hti_guard_depth: held
 * around its pthread_create calls, for the whole life of its own threads, around stack
 * capture); allocations made under it come from this private heap. Every call on it runs under
 * the guard, so none is an event, whichever thread frees; the rundown leaves the heap out
 * (hti_tracer_heap). It is a fixed-size heap: its blocks lie in one reserved range, so free,
 * realloc and malloc_usable_size recognise them by one range check, as they do the bootstrap
 * pool's. When it cannot serve (full, a block too large for it), the process heap does. */
#define TRACER_HEAP_SIZE ((size_t)256 << 20) /* reserved; committed only as it fills */

static ht_heap *_Atomic tracer_heap;
static _Atomic uintptr_t tracer_heap_base;
static _Atomic size_t tracer_heap_span; /* 0 until the heap exists: no address is in range */
static atomic_int tracer_heap_state;    /* 0 not made, 1 being made or failed, 2 made */

static bool tracer_heap_owns(const void *block)
{
    size_t span = atomic_load_explicit(&tracer_heap_span, memory_order_acquire);
    uintptr_t base = atomic_load_explicit(&tracer_heap_base, memory_order_relaxed);
    return (uintptr_t)block - base < span;
}

/* The tracer heap, made on first use; NULL if it cannot be made (or is being made by another
 * thread): the process heap serves then. Called with the nesting counter held. */
static ht_heap *tracer_heap_get(void)
{
    ht_heap *heap = atomic_load_explicit(&tracer_heap, memory_order_acquire);
    if (HTI_LIKELY(heap != NULL))
        return heap;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&tracer_heap_state, &expected, 1))
        return NULL;
    heap = ht_heap_create(0, 0, TRACER_HEAP_SIZE);
    ht_heap_entry region;
    memset(&region, 0, sizeof region);
    if (heap == NULL || !ht_heap_walk(heap, &region) || !(region.flags & HT_ENTRY_REGION)) {
        if (heap != NULL)
            ht_heap_destroy(heap);
        return NULL;
    }
    /* The range before the handle: a block can be handed out only once frees recognise it. */
    atomic_store_explicit(&hti_tracer_heap, heap, memory_order_release); /* out of rundowns */
    atomic_store_explicit(&tracer_heap_base, (uintptr_t)region.data, memory_order_relaxed);
    atomic_store_explicit(&tracer_heap_span, region.size, memory_order_release);
    atomic_store_explicit(&tracer_heap, heap, memory_order_release);
    atomic_store(&tracer_heap_state, 2);
    return heap;
}

/* ---- The narrow paths every interposed function goes through ------------------------------ */

/* A block of heap, aligned to alignment (a power of two); NULL on failure or without a heap. */
static inline void *heap_alloc(ht_heap *heap, uint32_t flags, size_t alignment, size_t size)
{
    if (HTI_UNLIKELY(heap == NULL))
        return NULL;
    if (alignment <= MALLOC_ALIGNMENT)
        return ht_heap_alloc(heap, flags, size);
    return ht_heap_alloc_aligned(heap, flags, alignment, size);
}

/* A call nested inside the heap (the bootstrap pool), or made on heaptrail's behalf (the tracer
 * heap, else the process heap: the guard keeps that untraced, as the tracer's own work). */
HTI_NOINLINE static void *serve_alloc_slow(uint32_t flags, size_t alignment, size_t size)
{
    if (preload_nesting != 0)
        return bootstrap_alloc(alignment, size);
    preload_nesting++;
    void *block = heap_alloc(tracer_heap_get(), flags, alignment, size);
    if (block == NULL)
        block = heap_alloc(process_heap(), flags, alignment, size);
    preload_nesting--;
    return block != NULL ? block : fail_no_memory();
}

/* A new block of size bytes aligned to alignment (a power of two), flags 0 or ZERO_MEMORY.
 * Cost: two thread-local loads decide that the call is the program's own. */
HTI_ALWAYS_INLINE void *serve_alloc(uint32_t flags, size_t alignment, size_t size)
{
    if (HTI_UNLIKELY((preload_nesting | hti_guard_depth) != 0))
        return serve_alloc_slow(flags, alignment, size);
    preload_nesting++;
    void *block = heap_alloc(process_heap(), flags, alignment, size);
    preload_nesting--;
    return block != NULL ? block : fail_no_memory();
}

/* Frees a block of the tracer heap, from any thread, without an event. */
HTI_NOINLINE static void tracer_free(void *block)
{
    int saved_errno = errno;
    preload_nesting++;
    hti_guard_enter();
    (void)ht_heap_free(atomic_load_explicit(&tracer_heap, memory_order_acquire), 0, block);
    hti_guard_leave();
    preload_nesting--;
    errno = saved_errno;
}

HTI_ALWAYS_INLINE void serve_free(void *block)
{
    if (block == NULL)
        return;
    if (HTI_UNLIKELY(bootstrap_owns(block))) {
        bootstrap_free(block);
        return;
    }
    if (HTI_UNLIKELY(preload_nesting != 0)) /* the heap is busy in this thread: leak the block */
        return;
    if (HTI_UNLIKELY(tracer_heap_owns(block))) {
        tracer_free(block);
        return;
    }
    preload_nesting++;
    (void)ht_heap_free(process_heap(), 0, block); /* false for a stranger: ignored; errno kept */
    preload_nesting--;
}

/* Usable size of a block, 0 when it is not one of ours. */
static size_t serve_size(const void *block)
{
    if (block == NULL)
        return 0;
    if (HTI_UNLIKELY(bootstrap_owns(block)))
        return bootstrap_size(block);
    if (HTI_UNLIKELY(preload_nesting != 0))
        return 0;
    preload_nesting++;
    ht_heap *heap = tracer_heap_owns(block) ? atomic_load(&tracer_heap) : process_heap();
    size_t size = ht_heap_size(heap, 0, block);
    preload_nesting--;
    return size == SIZE_MAX ? 0 : size;
}

/* realloc of a bootstrap block (move it out), or any realloc nested inside the heap. */
static void *serve_realloc_slow(void *block, size_t size)
{
    if (!bootstrap_owns(block)) /* a heap block while the heap is busy in this thread */
        return fail_no_memory();
    void *moved = serve_alloc(0, MALLOC_ALIGNMENT, size);
    if (moved != NULL) {
        size_t old_size = bootstrap_size(block);
        memcpy(moved, block, old_size < size ? old_size : size);
        bootstrap_free(block);
    }
    return moved;
}

/* realloc of a tracer heap block: it stays there, or moves to the process heap (still out of
 * the trace) when the tracer heap is full. */
HTI_NOINLINE static void *tracer_realloc(void *block, size_t size)
{
    ht_heap *heap = atomic_load_explicit(&tracer_heap, memory_order_acquire);
    preload_nesting++;
    hti_guard_enter();
    void *moved = ht_heap_realloc(heap, 0, block, size);
    size_t old_size = moved == NULL ? ht_heap_size(heap, 0, block) : SIZE_MAX;
    if (old_size != SIZE_MAX) { /* a block of its own that it has no room to grow */
        moved = heap_alloc(process_heap(), 0, MALLOC_ALIGNMENT, size);
        if (moved != NULL) {
            memcpy(moved, block, old_size < size ? old_size : size);
            (void)ht_heap_free(heap, 0, block);
        }
    }
    hti_guard_leave();
    preload_nesting--;
    return moved != NULL ? moved : fail_no_memory();
}

static void *serve_realloc(void *block, size_t size)
{
    if (block == NULL)
        return serve_alloc(0, MALLOC_ALIGNMENT, size);
    if (size == 0) { /* glibc: realloc(p, 0) frees p and returns NULL */
        serve_free(block);
        return NULL;
    }
    if (HTI_UNLIKELY(preload_nesting != 0 || bootstrap_owns(block)))
        return serve_realloc_slow(block, size);
    if (HTI_UNLIKELY(tracer_heap_owns(block)))
        return tracer_realloc(block, size);
    preload_nesting++;
    void *moved = ht_heap_realloc(process_heap(), 0, block, size);
    preload_nesting--;
    return moved != NULL ? moved : fail_no_memory();
}

/* ---- The malloc family -------------------------------------------------------------------
 * malloc, free, calloc and realloc also serve a control request the signal handler could not
 * (control_signal.c): one relaxed load of a flag that is almost never set. */
#define SERVE_CONTROL_REQUEST()                                                                    \
    do {                                                                                           \
        if (HTI_UNLIKELY(atomic_load_explicit(&hti_control_pending, memory_order_relaxed)))        \
            hti_control_serve_pending(__builtin_return_address(0));                                \
    } while (0)

HT_EXPORT void *malloc(size_t size)
{
    void *block = serve_alloc(0, MALLOC_ALIGNMENT, size);
    SERVE_CONTROL_REQUEST();
    return block;
}

HT_EXPORT void free(void *block)
{
    serve_free(block);
    SERVE_CONTROL_REQUEST();
}

HT_EXPORT void cfree(void *block)
{
    serve_free(block);
}

HT_EXPORT void *calloc(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return fail_no_memory();
    void *block = serve_alloc(HT_HEAP_ZERO_MEMORY, MALLOC_ALIGNMENT, total);
    SERVE_CONTROL_REQUEST();
    return block;
}

HT_EXPORT void *realloc(void *block, size_t size)
{
    void *moved = serve_realloc(block, size);
    SERVE_CONTROL_REQUEST();
    return moved;
}

HT_EXPORT void *reallocarray(void *block, size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return fail_no_memory();
    return serve_realloc(block, total);
}

/* glibc: an alignment that is not a power of two is rounded up to one; one beyond the largest
 * power of two fails with EINVAL. */
HT_EXPORT void *memalign(size_t alignment, size_t size)
{
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t rounded = MALLOC_ALIGNMENT;
    while (rounded < alignment)
        rounded <<= 1;
    return serve_alloc(0, rounded, size);
}

/* C17 (DR 460) and glibc 2.38: an alignment that is not a power of two fails with EINVAL. */
HT_EXPORT void *aligned_alloc(size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return serve_alloc(0, alignment, size);
}

/* Returns 0 or EINVAL / ENOMEM; errno is left as it was; *result is set only on success. */
HT_EXPORT int posix_memalign(void **result, size_t alignment, size_t size)
{
    if (!is_power_of_two(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved_errno = errno;
    void *block = serve_alloc(0, alignment, size);
    errno = saved_errno;
    if (block == NULL)
        return ENOMEM;
    *result = block;
    return 0;
}

HT_EXPORT void *valloc(size_t size)
{
    return serve_alloc(0, page_size(), size);
}

/* Page-aligned and rounded up to whole pages (at least one). */
HT_EXPORT void *pvalloc(size_t size)
{
    size_t page = page_size();
    if (size > SIZE_MAX - (page - 1))
        return fail_no_memory();
    size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
    return serve_alloc(0, page, rounded);
}

HT_EXPORT size_t malloc_usable_size(void *block)
{
    return serve_size(block);
}

/* ---- Start-up ----------------------------------------------------------------------------
 * Fork needs nothing here: the heap's own pthread_atfork handlers (registered when it first
 * initialises) take the heap list lock, every heap lock and the thread pools before fork() and
 * re-initialise them in the child. A second set here would take the heap locks before the list
 * lock, against the heap's order, and could not unlock the recursive mutexes in the child (they
 * record the parent thread's tid). Touching the process heap in a constructor makes sure those
 * handlers exist before main, even in a program that forks before it allocates.
 * Prints nothing: the host program's output is not ours to change. */
__attribute__((constructor)) static void preload_init(void)
{
    (void)process_heap();
}
