/* thread.c — per-thread state: the thread's caches (one per heap it uses) and their life.
 *
 * A thread's first front-end operation on a heap creates its hti_tcache, linked both into the
 * thread's list and, under the heap lock, into the heap's. The last heap used is remembered,
 * so the fast path finds its cache with two compares. Thread exit (a pthread key destructor)
 * gives lookaside blocks and subsegments back and folds the thread's counters into the heap.
 * Destroying a heap detaches its caches (heap_id = 0); their threads recycle them lazily.
 * Caches and thread records come from mmap'ed pools, never from a heap. A thread record's
 * `testing` word brackets the operations that test the trace switch before their effect, and
 * hti_heap_quiesce waits on them for a session's start (heap_internal.h, hti_untraced_begin). */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "heap_internal.h"

__thread hti_heap_thread *hti_current_thread __attribute__((tls_model("initial-exec")));

/* ---- fixed-size pools ----------------------------------------------------------------- */
#define POOL_CHUNK (64u << 10) /* a pool maps this many bytes at a time, never unmapped */
typedef struct pool {
    size_t object;
    size_t cleared; /* bytes of an object zeroed when it is handed out */
    void *free;
    pthread_mutex_t lock;
    /* The chunks, newest first, linked through their first word (the first object's place is
     * kept for it): the thread records' pool is read by hti_heap_quiesce without the lock. */
    void *_Atomic chunks;
} pool;

static pool tcache_pool = {sizeof(hti_tcache), sizeof(hti_tcache), NULL, PTHREAD_MUTEX_INITIALIZER,
                           NULL};
/* A record's `testing` word is never cleared: a session's start may read it at any time. */
static pool thread_pool = {sizeof(hti_heap_thread), offsetof(hti_heap_thread, testing), NULL,
                           PTHREAD_MUTEX_INITIALIZER, NULL};

static size_t pool_stride(const pool *p)
{
    return hti_align_up(p->object, HTI_CACHE_LINE);
}

static void *pool_get(pool *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->free) {
        size_t chunk = POOL_CHUNK, size = pool_stride(p);
        char *mem = hti_os_map(chunk, hti_page_size());
        if (!mem) {
            pthread_mutex_unlock(&p->lock);
            return NULL;
        }
        hti_own_memory_note(mem, chunk);
        for (size_t off = size; off + size <= chunk; off += size) {
            *(void **)(mem + off) = p->free;
            p->free = mem + off;
        }
        *(void **)mem = atomic_load_explicit(&p->chunks, memory_order_relaxed);
        atomic_store_explicit(&p->chunks, (void *)mem, memory_order_release);
    }
    void *obj = p->free;
    p->free = *(void **)obj;
    pthread_mutex_unlock(&p->lock);
    memset(obj, 0, p->cleared);
    return obj;
}

static void pool_put(pool *p, void *obj)
{
    pthread_mutex_lock(&p->lock);
    *(void **)obj = p->free;
    p->free = obj;
    pthread_mutex_unlock(&p->lock);
}

void hti_pools_after_fork(void)
{
    pthread_mutex_init(&tcache_pool.lock, NULL);
    pthread_mutex_init(&thread_pool.lock, NULL);
}
void hti_pools_lock(void)
{
    pthread_mutex_lock(&tcache_pool.lock);
    pthread_mutex_lock(&thread_pool.lock);
}
void hti_pools_unlock(void)
{
    pthread_mutex_unlock(&thread_pool.lock);
    pthread_mutex_unlock(&tcache_pool.lock);
}

/* ---- thread records ------------------------------------------------------------------- */
static pthread_key_t thread_key;

static void fold_counts(ht_heap *heap, hti_tcache *tc)
{
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int s = 0; s < HT_SOURCE_COUNT; s++) {
            uint64_t n = atomic_load_explicit(&tc->counts[op][s], memory_order_relaxed);
            if (n)
                atomic_fetch_add_explicit(&heap->counts[op][s], n, memory_order_relaxed);
        }
}

/* Returns the cache's blocks to its heap and unlinks it (if still attached), then frees it. */
static void tcache_release(hti_tcache *tc)
{
    ht_heap *heap = tc->heap;
    pthread_mutex_lock(&heap->lock);
    if (atomic_load_explicit(&tc->heap_id, memory_order_relaxed) == heap->id &&
        heap->magic == HTI_HEAP_MAGIC) {
        hti_lfh_thread_done(heap, tc);
        fold_counts(heap, tc);
        if (tc->heap_prev)
            tc->heap_prev->heap_next = tc->heap_next;
        else
            heap->tcaches = tc->heap_next;
        if (tc->heap_next)
            tc->heap_next->heap_prev = tc->heap_prev;
    }
    pthread_mutex_unlock(&heap->lock);
    pool_put(&tcache_pool, tc);
}

static void thread_exit(void *arg)
{
    hti_heap_thread *t = arg;
    hti_current_thread = NULL;
    hti_tcache *tc = t->tcaches;
    while (tc) {
        hti_tcache *next = tc->thread_next;
        tcache_release(tc);
        tc = next;
    }
    pool_put(&thread_pool, t);
}

static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void thread_key_create(void)
{
    pthread_key_create(&thread_key, thread_exit);
}

/* Once per process, whoever comes first: the global init, or a thread record wanted before any
 * heap exists (hti_thread_record). */
void hti_thread_init_key(void)
{
    pthread_once(&thread_key_once, thread_key_create);
}

static hti_heap_thread *thread_get(void)
{
    hti_heap_thread *t = hti_current_thread;
    if (t)
        return t;
    t = pool_get(&thread_pool);
    if (!t)
        return NULL;
    t->tid = (pid_t)syscall(SYS_gettid);
    hti_current_thread = t;
    hti_thread_init_key();
    pthread_setspecific(thread_key, t);
    return t;
}

hti_heap_thread *hti_thread_record(void)
{
    return thread_get();
}

/* Calls f on every thread record there is (in use or free), without the pool's lock: chunks
 * are only ever added, at the head, and never unmapped. */
static void records_each(void (*f)(hti_heap_thread *t, void *context), void *context)
{
    size_t size = pool_stride(&thread_pool);
    for (char *c = atomic_load_explicit(&thread_pool.chunks, memory_order_acquire); c;
         c = *(char **)c)
        for (size_t off = size; off + size <= POOL_CHUNK; off += size)
            f((hti_heap_thread *)(c + off), context);
}

static void reset_testing(hti_heap_thread *t, void *context)
{
    (void)context;
    if (t != hti_current_thread)
        atomic_store_explicit(&t->testing, 0, memory_order_relaxed);
}

void hti_thread_after_fork_child(void)
{
    /* The child has one thread: the caller. Its records stay valid; its tid changed. The other
     * threads' records stay allocated, but none of them is inside an operation any more. */
    if (hti_current_thread)
        hti_current_thread->tid = (pid_t)syscall(SYS_gettid);
    records_each(reset_testing, NULL);
}

/* ---- a session's start: waiting for the operations that read the switch as off ---------- */
#define QUIESCE_POLL_NS 20000L /* between two looks at a record still inside */

typedef struct quiesce {
    uint64_t deadline;
    unsigned late;
} quiesce;

static uint64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void wait_record(hti_heap_thread *t, void *context)
{
    quiesce *q = context;
    if (t == hti_current_thread)
        return; /* a start from inside this thread's own operation */
    uint32_t seen = atomic_load_explicit(&t->testing, memory_order_acquire);
    if (!(seen & 1))
        return;
    while (atomic_load_explicit(&t->testing, memory_order_acquire) == seen) {
        if (monotonic_ns() >= q->deadline) {
            q->late++;
            return;
        }
        struct timespec pause = {0, QUIESCE_POLL_NS};
        nanosleep(&pause, NULL);
    }
}

int hti_heap_quiesce(uint64_t limit_ns, unsigned *late)
{
    quiesce q = {monotonic_ns() + limit_ns, 0};
    records_each(wait_record, &q);
    if (late)
        *late = q.late;
    return q.late ? -ETIMEDOUT : 0;
}

/* ---- caches --------------------------------------------------------------------------- */
static bool tcache_stale(const hti_tcache *tc)
{
    return atomic_load_explicit(&tc->heap_id, memory_order_relaxed) != tc->heap->id;
}

hti_tcache *hti_tcache_get_slow(ht_heap *heap)
{
    if (!heap->has_lfh)
        return NULL;
    hti_heap_thread *t = thread_get();
    if (!t)
        return NULL;
    hti_tcache **link = &t->tcaches;
    while (*link) { /* find ours, recycling caches of destroyed heaps on the way */
        hti_tcache *tc = *link;
        if (tcache_stale(tc)) {
            *link = tc->thread_next;
            if (t->last_tcache == tc)
                t->last_heap = NULL, t->last_tcache = NULL;
            pool_put(&tcache_pool, tc);
            continue;
        }
        if (tc->heap == heap) {
            t->last_heap = heap;
            t->last_tcache = tc;
            return tc;
        }
        link = &tc->thread_next;
    }
    hti_tcache *tc = pool_get(&tcache_pool);
    if (!tc)
        return NULL;
    tc->heap = heap;
    tc->thread = t;
    pthread_mutex_lock(&heap->lock);
    tc->heap_id = heap->id;
    tc->heap_next = heap->tcaches;
    if (heap->tcaches)
        heap->tcaches->heap_prev = tc;
    heap->tcaches = tc;
    pthread_mutex_unlock(&heap->lock);
    tc->thread_next = t->tcaches;
    t->tcaches = tc;
    t->last_heap = heap;
    t->last_tcache = tc;
    return tc;
}

void hti_tcache_detach_all(ht_heap *heap)
{
    for (hti_tcache *tc = heap->tcaches; tc; tc = tc->heap_next)
        atomic_store_explicit(&tc->heap_id, 0, memory_order_relaxed);
    heap->tcaches = NULL;
}

void hti_count_slow(ht_heap *heap, ht_op op, ht_source source)
{
    atomic_fetch_add_explicit(&heap->counts[op][source], 1, memory_order_relaxed);
}

void hti_counts_sum(ht_heap *heap, ht_heap_counters *out)
{
    for (int op = 0; op < HT_OP_COUNT; op++)
        for (int s = 0; s < HT_SOURCE_COUNT; s++)
            out->counts[op][s] = atomic_load_explicit(&heap->counts[op][s], memory_order_relaxed);
    for (hti_tcache *tc = heap->tcaches; tc; tc = tc->heap_next)
        for (int op = 0; op < HT_OP_COUNT; op++)
            for (int s = 0; s < HT_SOURCE_COUNT; s++)
                out->counts[op][s] += atomic_load_explicit(&tc->counts[op][s],
                                                           memory_order_relaxed);
}
