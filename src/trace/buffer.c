/* buffer.c — the heap's trace hooks and the per-thread buffers they write into.
 *
 * Each thread owns a buffer of `nfills` fills of HTI_FILL_BYTES, used in turn (fill seq s lives
 * in slot s % nfills); the owner appends encoded events to its current fill and publishes them
 * with one release store of the fill's committed word; the writer reads committed ranges and
 * releases whole fills by advancing `tail`. No lock on the event path. Fast paths (plain event,
 * room in the fill, no filter/sampling/stacks) are short and inline; everything else — first
 * event of a thread, a full fill, filters, sampling, stacks, a stale session — goes through the
 * *_slow functions. Thread exit (the tracer's pthread key destructor) marks the buffer EXITING:
 * the thread keeps writing it through later key destructors and the C library's own clean-up,
 * and the writer frees it only once the thread is gone, so no event of a thread is lost to its
 * exit. Each hook raises the thread's `in_hook` before it reads the session and lowers it after
 * its commit (two stores to a line the thread writes anyway, no fence: the stop pays for the
 * barrier with membarrier), so a stop can wait for every event already past the switch. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <linux/membarrier.h>
#include <math.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/own_memory.h"
#include "trace_internal.h"

_Atomic uint64_t hti_trace_gen;
_Atomic(hti_trace_thread *) hti_threads;

static HTI_TLS hti_trace_thread *tls_thread; /* this thread's buffer; NULL while guarded */
static HTI_TLS hti_trace_thread *tls_saved;  /* tls_thread while the guard is held */
HTI_TLS unsigned hti_guard_depth;            /* nesting depth of tracer work on this thread */
static HTI_TLS int tls_exited;               /* the exit destructor ran: new buffers are EXITING */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;
static int exit_key_error;

/* ---- memory and guard ---- */

void *hti_map_memory(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    hti_own_memory_note(p, size); /* never a root of a reachability scan */
    return p;
}

void hti_unmap_memory(void *memory, size_t size)
{
    if (memory) {
        hti_own_memory_forget(memory);
        munmap(memory, size);
    }
}

void hti_guard_enter(void)
{
    if (hti_guard_depth++ == 0) {
        tls_saved = tls_thread;
        tls_thread = NULL;
    }
}

void hti_guard_leave(void)
{
    if (--hti_guard_depth == 0) {
        tls_thread = tls_saved;
        tls_saved = NULL;
    }
}

bool hti_guard_active(void)
{
    return hti_guard_depth != 0;
}

uint32_t hti_gettid(void)
{
    return (uint32_t)syscall(SYS_gettid);
}

bool hti_thread_gone(const hti_trace_thread *thread)
{
    int saved_errno = errno;
    bool gone = syscall(SYS_tgkill, (long)getpid(), (long)thread->tid, 0L) != 0 && errno == ESRCH;
    errno = saved_errno;
    return gone;
}

/* membarrier(PRIVATE_EXPEDITED) makes every running thread of the process execute a full
 * barrier; a thread not running passes one when it is scheduled. Older kernels: the global
 * command (slower), else a pause long enough for any store buffer to drain. */
void hti_hooks_barrier(void)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
        return;
    if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
        return;
    struct timespec pause = {0, 1000000};
    nanosleep(&pause, NULL);
}

/* ---- thread registration and exit ---- */

static int64_t draw_gap(hti_trace_thread *t, size_t interval);

/* The key destructor. Destructors of keys created later (a program's `free` of its
 * pthread_setspecific value, for instance) run after this one, and the C library frees its own
 * per-thread memory after all of them: the thread keeps its buffer for those events. The writer
 * drains the buffer as it fills and frees it once the thread no longer exists. */
static void thread_exit(void *arg)
{
    hti_trace_thread *thread = arg;
    tls_exited = 1;
    atomic_store_explicit(&thread->state, HTI_THREAD_EXITING, memory_order_release);
    if (atomic_load_explicit(&hti_trace_gen, memory_order_relaxed))
        hti_writer_wake(&hti_session_state);
}

static void exit_key_create(void)
{
    exit_key_error = -pthread_key_create(&exit_key, thread_exit);
}

int hti_buffers_init(void)
{
    pthread_once(&exit_key_once, exit_key_create);
    return exit_key_error;
}

static size_t node_size(uint32_t nfills)
{
    size_t size = sizeof(hti_trace_thread) + (size_t)nfills * sizeof(hti_fill);
    return (size + 4095u) & ~(size_t)4095u;
}

static void thread_push(hti_trace_thread *thread)
{
    hti_trace_thread *head = atomic_load_explicit(&hti_threads, memory_order_relaxed);
    do {
        thread->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&hti_threads, &head, thread,
                                                    memory_order_release, memory_order_relaxed));
}

/* (Re)initializes a buffer for session `gen`; the owner calls this, or the rundown's opener. */
static int thread_reset(hti_trace_thread *t, hti_session *s, uint64_t gen)
{
    size_t want = (size_t)s->nfills * HTI_FILL_BYTES;
    if (s->nfills > t->fills_capacity)
        return -ENOMEM;
    if (t->data_size != want) {
        hti_unmap_memory(t->fill_data, t->data_size);
        t->fill_data = hti_map_memory(want);
        t->data_size = t->fill_data ? want : 0;
        if (!t->fill_data)
            return -ENOMEM;
    }
    t->nfills = s->nfills;
    t->pos = (uint8_t *)1; /* > limit: the first event starts a fill */
    t->limit = NULL;
    t->data = NULL;
    t->fill = NULL;
    t->events = 0;
    t->fast_gen = 0;
    t->gen = gen;
    t->lost_local = 0;
    t->total_events = 0;
    t->sample_left = s->options.sample_interval ? draw_gap(t, s->options.sample_interval) : 0;
    for (uint32_t i = 0; i < t->nfills; i++) {
        atomic_store_explicit(&t->fills[i].committed, 0, memory_order_relaxed);
        atomic_store_explicit(&t->fills[i].seq, UINT64_MAX, memory_order_relaxed);
        atomic_store_explicit(&t->fills[i].written_seq, UINT64_MAX, memory_order_relaxed);
        atomic_store_explicit(&t->fills[i].written, 0, memory_order_relaxed);
        atomic_store_explicit(&t->fills[i].write_failed, false, memory_order_relaxed);
    }
    atomic_store_explicit(&t->head, 0, memory_order_relaxed);
    atomic_store_explicit(&t->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&t->lost_total, 0, memory_order_relaxed);
    atomic_store_explicit(&t->events_total, 0, memory_order_relaxed);
    atomic_store_explicit(&t->stream_id, atomic_fetch_add(&s->stream_ids, 1) + 1,
                          memory_order_relaxed);
    atomic_fetch_add_explicit(&s->threads, 1, memory_order_relaxed);
    atomic_store_explicit(&t->published_gen, gen, memory_order_release);
    return 0;
}

/* ---- spare buffers ----
 * The buffer of a thread that ended is kept for the next thread rather than unmapped: a
 * program that starts and ends threads all the time would otherwise pay, per thread, for
 * fresh pages faulted in by its first events and for the TLB shootdown of each munmap, which
 * interrupts every CPU running the program. At most SPARE_MAX are kept; hti_buffers_trim (at
 * session stop) unmaps them. */
#define SPARE_MAX 64

static hti_trace_thread *spares; /* linked by next */
static unsigned spare_count;
static atomic_flag spare_lock = ATOMIC_FLAG_INIT;

static void spare_lock_take(void)
{
    while (atomic_flag_test_and_set_explicit(&spare_lock, memory_order_acquire))
        sched_yield();
}

static void spare_lock_drop(void)
{
    atomic_flag_clear_explicit(&spare_lock, memory_order_release);
}

static void thread_unmap(hti_trace_thread *thread)
{
    hti_unmap_memory(thread->fill_data, thread->data_size);
    hti_unmap_memory(thread, node_size((uint32_t)thread->fills_capacity));
}

/* A spare buffer with room for nfills fills, or NULL. */
static hti_trace_thread *spare_take(uint32_t nfills)
{
    spare_lock_take();
    hti_trace_thread **link = &spares;
    while (*link && (*link)->fills_capacity < nfills)
        link = &(*link)->next;
    hti_trace_thread *t = *link;
    if (t) {
        *link = t->next;
        spare_count--;
    }
    spare_lock_drop();
    return t;
}

void hti_thread_free(hti_trace_thread *thread)
{
    spare_lock_take();
    bool kept = spare_count < SPARE_MAX;
    if (kept) {
        thread->next = spares;
        spares = thread;
        spare_count++;
    }
    spare_lock_drop();
    if (!kept)
        thread_unmap(thread);
}

void hti_buffers_trim(void)
{
    spare_lock_take();
    hti_trace_thread *t = spares;
    spares = NULL;
    spare_count = 0;
    spare_lock_drop();
    while (t) {
        hti_trace_thread *next = t->next;
        thread_unmap(t);
        t = next;
    }
}

static hti_trace_thread *thread_new(hti_session *s, uint64_t gen, uint32_t tid, uint32_t rundown,
                                    int state)
{
    uint32_t capacity = s->nfills < 64 ? 64 : s->nfills;
    hti_trace_thread *t = spare_take(s->nfills);
    if (t) {
        /* Everything but the memory it owns is set again below or by thread_reset. */
        uint32_t kept_capacity = (uint32_t)t->fills_capacity;
        uint8_t *fill_data = t->fill_data;
        size_t data_size = t->data_size;
        memset(t, 0, sizeof *t);
        t->fill_data = fill_data;
        t->data_size = data_size;
        capacity = kept_capacity;
    } else {
        t = hti_map_memory(node_size(capacity));
        if (!t)
            return NULL;
    }
    size_t size = node_size(capacity);
    t->fills = (hti_fill *)(t + 1);
    t->fills_capacity = capacity;
    t->tid = tid;
    t->rundown = rundown;
    atomic_store_explicit(&t->state, state, memory_order_relaxed);
    t->rng = ((uint64_t)tid * 0x9E3779B97F4A7C15u ^ hti_ticks()) | 1u;
    if (thread_reset(t, s, gen) != 0) {
        hti_unmap_memory(t->fill_data, t->data_size);
        hti_unmap_memory(t, size);
        return NULL;
    }
    thread_push(t);
    return t;
}

/* The calling thread's buffer for the running session, set up on first use. NULL: the event
 * is dropped (no session, tracer work, or no memory). A buffer made after the thread's exit
 * destructor ran starts EXITING: no destructor may come to mark it. */
static hti_trace_thread *thread_prepare(hti_session *s, uint64_t gen)
{
    if (hti_guard_depth)
        return NULL;
    hti_trace_thread *t = tls_thread;
    if (HTI_LIKELY(t && t->gen == gen))
        return t;
    hti_guard_enter();
    int error = 0;
    if (t) {
        error = thread_reset(t, s, gen);
    } else if (hti_buffers_init() == 0) {
        t = thread_new(s, gen, hti_gettid(), 0, tls_exited ? HTI_THREAD_EXITING : HTI_THREAD_ALIVE);
        if (t && !tls_exited)
            pthread_setspecific(exit_key, t);
    }
    hti_guard_leave();
    if (!t || error) {
        atomic_fetch_add_explicit(&s->lost_write, 1, memory_order_relaxed);
        return NULL;
    }
    tls_thread = t;
    return t;
}

/* ---- fills ---- */

static void note_lost(hti_trace_thread *t, uint64_t now, uint32_t reason)
{
    if (t->lost_local == 0) {
        t->lost_first = now;
        t->lost_reason = reason;
    } else if (now < t->lost_last) {
        now = t->lost_last; /* first <= last, whatever the clock does across CPUs */
    }
    t->lost_local++;
    t->lost_last = now;
    atomic_fetch_add_explicit(&t->lost_total, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&hti_session_state.lost_buffer, 1, memory_order_relaxed);
}

static inline void commit(hti_trace_thread *t, uint8_t *p)
{
    t->pos = p;
    uint64_t events = ++t->events;
    t->total_events++;
    atomic_store_explicit(&t->fill->committed, events << 32 | (uint64_t)(p - t->data),
                          memory_order_release);
}

static inline uint64_t now_ticks(hti_trace_thread *t)
{
    uint64_t now = hti_ticks();
    return now < t->last_ticks ? t->last_ticks : now; /* never backwards within a stream */
}

_Static_assert(HTI_LOST_EVENT_MAX <= HTI_FILL_BYTES - HTI_EVENT_MAX,
               "a fill's opening LOST event leaves room for the event that started the fill");

/* Starts fill `head`: the caller checked it is free. */
static void fill_start(hti_trace_thread *t, hti_session *s, uint64_t head)
{
    hti_fill *f = &t->fills[head % t->nfills];
    atomic_store_explicit(&f->seq, head, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&f->committed, 0, memory_order_relaxed);
    uint64_t now = hti_ticks();
    if (now < t->last_ticks)
        now = t->last_ticks;
    f->base_ticks = now;
    t->fill = f;
    t->data = t->fill_data + (head % t->nfills) * (size_t)HTI_FILL_BYTES;
    t->pos = t->data;
    t->limit = t->data + HTI_FILL_BYTES - HTI_EVENT_MAX;
    t->events = 0;
    t->last_ticks = now;
    t->last_address = 0;
    t->last_heap = 0;
    atomic_store_explicit(&t->head, head + 1, memory_order_release);
    if (t->lost_local) {
        /* The earlier losses open the fill, as its first event (at its base ticks). */
        hti_lost_record lost = {t->tid, t->lost_reason, t->lost_local, t->lost_first, t->lost_last};
        uint8_t *p = hti_put_lost_event(t->pos, now, now, &lost);
        t->lost_local = 0;
        commit(t, p);
    }
    t->fast_gen = s->filtered || t->rundown ? 0 : t->gen;
    if (atomic_load_explicit(&s->writer_asleep, memory_order_relaxed) &&
        (head + 1 - atomic_load_explicit(&t->tail, memory_order_relaxed)) * 2 > t->nfills)
        hti_writer_wake(s);
}

/* A waiter for room gives up (its event is lost) only when nobody will make room: the writer
 * of its session finished, or a crash flush took over; and a discard/ring rundown does not
 * wait for a stalled output. A block-mode thread keeps waiting through a stop: the writer
 * drains until every thread is out of its hook (writer.c). */
static bool stop_waiting(const hti_trace_thread *t, hti_session *s)
{
    return atomic_load_explicit(&hti_finished_gen, memory_order_acquire) >= t->gen ||
           atomic_load_explicit(&s->emergency, memory_order_relaxed) ||
           (t->rundown && !s->block && hti_output_stalled(s));
}

/* Makes room for one event. false: the event is dropped (and counted). */
static HTI_NOINLINE bool reserve_slow(hti_trace_thread *t, hti_session *s)
{
    uint64_t head = atomic_load_explicit(&t->head, memory_order_relaxed);
    bool block = s->block || t->rundown;
    bool room = true;
    for (;;) {
        uint64_t tail = atomic_load_explicit(&t->tail, memory_order_acquire);
        if (head - tail < t->nfills)
            break;
        if (s->ring && !t->rundown) {
            /* Flight recorder: the oldest fill is overwritten. */
            atomic_store_explicit(&t->tail, head - t->nfills + 1, memory_order_release);
            break;
        }
        if (!block || stop_waiting(t, s)) {
            note_lost(t, hti_ticks(), block ? HT_LOST_SESSION_END : HT_LOST_BUFFER_FULL);
            room = false;
            break;
        }
        uint32_t seen = atomic_load_explicit(&s->released, memory_order_acquire);
        /* Raised for the whole wait: the writer tells a waiter (it makes room for it) from a
         * thread held in a hook for another reason. */
        atomic_store_explicit(&t->waiting, 1, memory_order_relaxed);
        if (atomic_load_explicit(&t->tail, memory_order_acquire) == tail) {
            hti_writer_wake(s);
            hti_futex_wait(&s->released, seen, 10 * 1000 * 1000);
        }
    }
    atomic_store_explicit(&t->waiting, 0, memory_order_relaxed);
    if (room)
        fill_start(t, s, head);
    return room;
}

static inline bool reserve(hti_trace_thread *t, hti_session *s)
{
    return HTI_LIKELY(t->pos <= t->limit) || reserve_slow(t, s);
}

/* ---- sampling ---- */

static uint64_t next_random(hti_trace_thread *t)
{
    uint64_t x = t->rng; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    t->rng = x;
    return x * 0x2545F4914F6CDD1Du;
}

/* Poisson process over allocated bytes: the gaps between sample points are exponentially
 * distributed with mean `interval`, so an allocation of size s is sampled with probability
 * 1 - exp(-s/interval) whatever happened before (the reader's weight is its inverse). */
static int64_t draw_gap(hti_trace_thread *t, size_t interval)
{
    double u = ((double)(next_random(t) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
    double gap = -log(u) * (double)interval;
    return gap < 1.0 ? 1 : (gap > 4e18 ? (int64_t)4e18 : (int64_t)gap);
}

static bool sampled(hti_trace_thread *t, size_t size, size_t interval)
{
    t->sample_left -= (int64_t)(size > INT64_MAX / 2 ? INT64_MAX / 2 : size);
    if (HTI_LIKELY(t->sample_left > 0))
        return false;
    do
        t->sample_left += draw_gap(t, interval);
    while (t->sample_left <= 0);
    return true;
}

/* ---- encoding ---- */

static inline uint8_t *put_head(hti_trace_thread *t, uint8_t *p, unsigned op, unsigned kind,
                                uint64_t now, uint64_t heap, uint32_t stack)
{
    if (heap != t->last_heap)
        op |= HTI_OP_HEAP;
    if (stack)
        op |= HTI_OP_STACK;
    *p++ = (uint8_t)op;
    if ((op & ~(HTI_OP_SOURCE_MASK | HTI_OP_HEAP | HTI_OP_STACK)) == HTI_OP_EXT)
        *p++ = (uint8_t)kind;
    p = hti_put_varint(p, now - t->last_ticks);
    t->last_ticks = now;
    if (op & HTI_OP_HEAP) {
        p = hti_put_varint(p, heap);
        t->last_heap = heap;
    }
    if (stack)
        p = hti_put_varint(p, stack);
    return p;
}

static inline void write_alloc(hti_trace_thread *t, const ht_heap *heap, size_t size,
                               const void *address, ht_source source, uint32_t stack)
{
    uint64_t a = (uint64_t)(uintptr_t)address;
    uint8_t *p = put_head(t, t->pos, HTI_OP_ALLOC | (source & HTI_OP_SOURCE_MASK), 0, now_ticks(t),
                          (uint64_t)(uintptr_t)heap, stack);
    p = hti_put_varint(p, size);
    p = hti_put_address(p, a, t->last_address);
    t->last_address = a;
    commit(t, p);
}

static inline void write_free(hti_trace_thread *t, const ht_heap *heap, const void *address,
                              ht_source source, uint32_t stack)
{
    uint64_t a = (uint64_t)(uintptr_t)address;
    uint8_t *p = put_head(t, t->pos, HTI_OP_FREE | (source & HTI_OP_SOURCE_MASK), 0, now_ticks(t),
                          (uint64_t)(uintptr_t)heap, stack);
    p = hti_put_address(p, a, t->last_address);
    t->last_address = a;
    commit(t, p);
}

static inline void write_realloc(hti_trace_thread *t, const ht_heap *heap, const void *new_address,
                                 const void *old_address, size_t new_size, size_t old_size,
                                 ht_source source, uint32_t stack)
{
    uint64_t a = (uint64_t)(uintptr_t)new_address;
    uint8_t *p = put_head(t, t->pos, HTI_OP_REALLOC | (source & HTI_OP_SOURCE_MASK), 0,
                          now_ticks(t), (uint64_t)(uintptr_t)heap, stack);
    p = hti_put_address(p, a, t->last_address);
    p = hti_put_address(p, (uint64_t)(uintptr_t)old_address, a);
    p = hti_put_varint(p, new_size);
    p = hti_put_varint(p, old_size);
    t->last_address = a;
    commit(t, p);
}

/* ---- slow paths of the hooks ---- */

static inline bool event_wanted(const hti_session *s, unsigned kind, const ht_heap *heap)
{
    uint64_t mask = s->options.event_mask;
    if (mask && !(mask & HT_EVENT_BIT(kind)))
        return false;
    return !s->options.heap || heap == s->options.heap;
}

/* Common checks for every event kind; returns the buffer or NULL to drop the event. */
static inline hti_trace_thread *slow_begin(hti_session **session, unsigned kind,
                                           const ht_heap *heap)
{
    uint64_t gen = atomic_load_explicit(&hti_trace_gen, memory_order_acquire);
    if (!gen)
        return NULL;
    hti_session *s = &hti_session_state;
    *session = s;
    if (!event_wanted(s, kind, heap))
        return NULL;
    return thread_prepare(s, gen);
}

static inline uint32_t slow_stack(hti_session *s)
{
    if (!s->options.stack_depth)
        return 0;
    hti_guard_enter();
    uint32_t id = hti_stack_capture(3);
    hti_guard_leave();
    return id;
}

static inline bool size_passes(hti_session *s, size_t size)
{
    return size >= s->options.min_size && (!s->options.max_size || size <= s->options.max_size);
}

static HTI_NOINLINE void alloc_slow(const ht_heap *heap, size_t size, const void *address,
                                    ht_source source)
{
    hti_session *s;
    hti_trace_thread *t = slow_begin(&s, HT_EVENT_ALLOC, heap);
    if (!t || !size_passes(s, size))
        return;
    if (s->options.sample_interval && !sampled(t, size, s->options.sample_interval))
        return;
    uint32_t stack = slow_stack(s);
    if (reserve(t, s))
        write_alloc(t, heap, size, address, source, stack);
}

static HTI_NOINLINE void free_slow(const ht_heap *heap, const void *address, ht_source source)
{
    hti_session *s;
    hti_trace_thread *t = slow_begin(&s, HT_EVENT_FREE, heap);
    if (!t)
        return;
    /* A free is matched to its allocation's stack by address, so by default only a free the
     * heap refused (no allocation to match) pays for an unwind. */
    uint32_t stack = s->options.free_stacks || source == MEMORY_FROM_INVALID ? slow_stack(s) : 0;
    if (reserve(t, s))
        write_free(t, heap, address, source, stack);
}

static HTI_NOINLINE void realloc_slow(const ht_heap *heap, const void *new_address,
                                      const void *old_address, size_t new_size, size_t old_size,
                                      ht_source source)
{
    hti_session *s;
    hti_trace_thread *t = slow_begin(&s, HT_EVENT_REALLOC, heap);
    if (!t || !size_passes(s, new_size))
        return;
    if (s->options.sample_interval && !sampled(t, new_size, s->options.sample_interval))
        return;
    uint32_t stack = slow_stack(s);
    if (reserve(t, s))
        write_realloc(t, heap, new_address, old_address, new_size, old_size, source, stack);
}

/* ---- the hooks' frame: in_hook around every event ---- */

static inline void hook_enter(hti_trace_thread *t)
{
    atomic_store_explicit(&t->in_hook, 1, memory_order_relaxed);
    /* Before the session is read. Only the compiler is held back here: the stop's membarrier
     * orders the store before the read on every thread that was running (hti_hooks_barrier). */
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void hook_leave(hti_trace_thread *t)
{
    atomic_store_explicit(&t->in_hook, 0, memory_order_release); /* after the commit */
}

/* A thread's first event (of all, or since the guard): sets up its buffer, then the hook runs
 * as usual under in_hook. A buffer made here is on the thread list before in_hook is raised and
 * the session is read again: a stop that did not see it in the list made the hook see the
 * switch off. NULL: no session, tracer work, an unwanted event, or no memory (counted). */
static HTI_NOINLINE hti_trace_thread *thread_adopt(unsigned kind, const ht_heap *heap)
{
    if (hti_guard_depth)
        return NULL;
    uint64_t gen = atomic_load_explicit(&hti_trace_gen, memory_order_acquire);
    if (!gen || !event_wanted(&hti_session_state, kind, heap))
        return NULL;
    return thread_prepare(&hti_session_state, gen);
}

/* Heap-level events are rare: always the slow path. Fields: see FORMAT.md. */
static void heap_event_in_hook(unsigned kind, const ht_heap *heap, uint64_t a, uint64_t b,
                               uint64_t c, int fields)
{
    hti_session *s;
    hti_trace_thread *t = slow_begin(&s, kind, heap);
    if (!t)
        return;
    uint32_t stack = slow_stack(s);
    if (!reserve(t, s))
        return;
    /* The heap handle is explicit on heap events even when unchanged. */
    uint8_t *p = put_head(t, t->pos, HTI_OP_EXT | HTI_OP_HEAP, kind, now_ticks(t),
                          (uint64_t)(uintptr_t)heap, stack);
    if (fields >= 1)
        p = hti_put_varint(p, a);
    if (fields >= 2)
        p = hti_put_varint(p, b);
    if (fields >= 3)
        p = hti_put_varint(p, c);
    commit(t, p);
}

static HTI_NOINLINE void heap_event(unsigned kind, const ht_heap *heap, uint64_t a, uint64_t b,
                                    uint64_t c, int fields)
{
    hti_trace_thread *t = tls_thread;
    if (!t && !(t = thread_adopt(kind, heap)))
        return;
    hook_enter(t);
    heap_event_in_hook(kind, heap, a, b, c, fields);
    hook_leave(t);
}

/* ---- the hooks (emit.h) ---- */

/* Cost with a buffer, session on, room: the in_hook stores, one relaxed load and compare, the
 * encoding and the release store of the commit. */
static inline bool fast_path(const hti_trace_thread *t)
{
    return HTI_LIKELY(t->fast_gen == atomic_load_explicit(&hti_trace_gen, memory_order_relaxed) &&
                      t->pos <= t->limit);
}

void hti_trace_alloc(const ht_heap *heap, size_t size, const void *address, ht_source source)
{
    hti_trace_thread *t = tls_thread;
    if (HTI_UNLIKELY(!t) && !(t = thread_adopt(HT_EVENT_ALLOC, heap)))
        return;
    hook_enter(t);
    if (fast_path(t))
        write_alloc(t, heap, size, address, source, 0);
    else
        alloc_slow(heap, size, address, source);
    hook_leave(t);
}

void hti_trace_free(const ht_heap *heap, const void *address, ht_source source)
{
    hti_trace_thread *t = tls_thread;
    if (HTI_UNLIKELY(!t) && !(t = thread_adopt(HT_EVENT_FREE, heap)))
        return;
    hook_enter(t);
    if (fast_path(t))
        write_free(t, heap, address, source, 0);
    else
        free_slow(heap, address, source);
    hook_leave(t);
}

void hti_trace_realloc(const ht_heap *heap, const void *new_address, const void *old_address,
                       size_t new_size, size_t old_size, ht_source source)
{
    hti_trace_thread *t = tls_thread;
    if (HTI_UNLIKELY(!t) && !(t = thread_adopt(HT_EVENT_REALLOC, heap)))
        return;
    hook_enter(t);
    if (fast_path(t))
        write_realloc(t, heap, new_address, old_address, new_size, old_size, source, 0);
    else
        realloc_slow(heap, new_address, old_address, new_size, old_size, source);
    hook_leave(t);
}

void hti_trace_heap_create(const ht_heap *heap, uint32_t flags, size_t initial_size,
                           size_t maximum_size)
{
    heap_event(HT_EVENT_HEAP_CREATE, heap, flags, initial_size, maximum_size, 3);
}

void hti_trace_heap_destroy(const ht_heap *heap)
{
    heap_event(HT_EVENT_HEAP_DESTROY, heap, 0, 0, 0, 0);
}

void hti_trace_heap_expand(const ht_heap *heap, size_t bytes, size_t committed_after)
{
    hti_committed_change(heap, (int64_t)bytes); /* the footer's peak committed */
    heap_event(HT_EVENT_HEAP_EXPAND, heap, bytes, committed_after, 0, 2);
}

void hti_trace_heap_contract(const ht_heap *heap, size_t bytes, size_t committed_after)
{
    hti_committed_change(heap, -(int64_t)bytes); /* the footer's peak committed */
    heap_event(HT_EVENT_HEAP_CONTRACT, heap, bytes, committed_after, 0, 2);
}

/* ---- the rundown stream ---- */

hti_trace_thread *hti_stream_open_rundown(uint32_t tid)
{
    hti_session *s = &hti_session_state;
    return thread_new(s, s->gen, tid, 1, HTI_THREAD_ALIVE);
}

void hti_stream_close(hti_trace_thread *stream)
{
    atomic_store_explicit(&stream->state, HTI_THREAD_EXITED, memory_order_release);
    hti_writer_wake(&hti_session_state);
}

void hti_emit_rundown_heap(hti_trace_thread *t, uint64_t ticks, const ht_heap *heap,
                           uint64_t reserved, uint64_t committed, uint64_t live_blocks,
                           uint32_t compatibility)
{
    hti_session *s = &hti_session_state;
    if (!reserve(t, s))
        return;
    if (ticks < t->last_ticks)
        ticks = t->last_ticks;
    uint8_t *p = t->pos;
    *p++ = HTI_OP_EXT | HTI_OP_HEAP;
    *p++ = HT_EVENT_RUNDOWN_HEAP;
    p = hti_put_varint(p, ticks - t->last_ticks);
    t->last_ticks = ticks;
    t->last_heap = (uint64_t)(uintptr_t)heap;
    p = hti_put_varint(p, t->last_heap);
    p = hti_put_varint(p, reserved);
    p = hti_put_varint(p, committed);
    p = hti_put_varint(p, live_blocks);
    p = hti_put_varint(p, compatibility);
    commit(t, p);
}

void hti_emit_rundown_block(hti_trace_thread *t, uint64_t ticks, const ht_heap *heap, uint64_t size,
                            uint64_t usable, uint64_t address, ht_source source)
{
    hti_session *s = &hti_session_state;
    if (!reserve(t, s))
        return;
    if (ticks < t->last_ticks)
        ticks = t->last_ticks;
    uint8_t *p = put_head(t, t->pos, HTI_OP_EXT | (source & HTI_OP_SOURCE_MASK),
                          HT_EVENT_RUNDOWN_BLOCK, ticks, (uint64_t)(uintptr_t)heap, 0);
    p = hti_put_varint(p, size);
    p = hti_put_varint(p, usable);
    p = hti_put_address(p, address, t->last_address);
    t->last_address = address;
    commit(t, p);
}

void hti_emit_leak_scan(hti_trace_thread *t, uint64_t ticks, const hti_leak_scan_summary *scan)
{
    hti_session *s = &hti_session_state;
    if (!reserve(t, s))
        return;
    if (ticks < t->last_ticks)
        ticks = t->last_ticks;
    uint8_t *p = put_head(t, t->pos, HTI_OP_EXT, HT_EVENT_LEAK_SCAN, ticks, t->last_heap, 0);
    p = hti_put_varint(p, scan->flags);
    p = hti_put_varint(p, scan->threads);
    p = hti_put_varint(p, scan->threads_stopped);
    p = hti_put_varint(p, scan->live_blocks);
    p = hti_put_varint(p, scan->unreachable);
    commit(t, p);
}

void hti_emit_unreachable_block(hti_trace_thread *t, uint64_t ticks, const ht_heap *heap,
                                uint64_t address, ht_leak_class leak_class)
{
    hti_session *s = &hti_session_state;
    if (!reserve(t, s))
        return;
    if (ticks < t->last_ticks)
        ticks = t->last_ticks;
    uint8_t *p = put_head(t, t->pos, HTI_OP_EXT, HT_EVENT_UNREACHABLE_BLOCK, ticks,
                          (uint64_t)(uintptr_t)heap, 0);
    p = hti_put_address(p, address, t->last_address);
    t->last_address = address;
    p = hti_put_varint(p, (uint64_t)leak_class);
    commit(t, p);
}

/* ---- fork ---- */

hti_trace_thread *hti_thread_self(void)
{
    return hti_guard_depth ? tls_saved : tls_thread;
}

void hti_thread_after_fork_self(void)
{
    hti_trace_thread *self = hti_thread_self();
    if (self)
        self->tid = hti_gettid();
}

void hti_threads_after_fork(void)
{
    hti_trace_thread *self = hti_thread_self();
    hti_trace_thread *t = atomic_load_explicit(&hti_threads, memory_order_relaxed);
    while (t) {
        hti_trace_thread *next = t->next;
        if (t != self)
            thread_unmap(t);
        t = next;
    }
    /* The spare lock may have been held by a thread that no longer exists here. */
    atomic_flag_clear(&spare_lock);
    hti_buffers_trim();
    if (self) {
        self->next = NULL;
        self->tid = hti_gettid(); /* the child's thread: its events, and the writer's probe */
        self->gen = 0;            /* reset on its next event */
        self->fast_gen = 0;
        atomic_store_explicit(&self->published_gen, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&hti_threads, self, memory_order_relaxed);
}
