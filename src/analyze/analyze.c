/* analyze.c — the streaming pass: every event applied once to the live-block model (FORMAT.md's
 * rundown reconciliation: RUNDOWN_BLOCK inserts unknown addresses only, ALLOC inserts or
 * replaces, FREE removes, REALLOC is a free plus an allocation, HEAP_DESTROY drops the heap's
 * blocks, INVALID changes nothing), feeding per-site, per-heap and per-thread accumulators,
 * histogram, temporaries, INVALID and lost events and the WPA lifetime classes. The peak's
 * composition costs O(1) per event: each site and heap saves its numbers the first time it
 * changes after a new peak (epoch stamp). Decoding runs on a feeder thread, batch by batch. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analyze_internal.h"
#include "analyze/progress.h"
#include "heaptrail/trace.h"

#define BATCH_EVENTS 4096
/* Freed addresses remembered to tell a double free from a foreign pointer. An entry is never
 * cleared when its address is reused: a FREE classified here found no live block, so the
 * address was not live again at that moment. */
#define RECENT_FREES (1u << 14)
#define PREFETCH_GROUP 64 /* events whose table slots are prefetched together */

/* ---- heaps and threads ---- */

static uint32_t heap_index(ht_analysis *a, uint64_t handle)
{
    static const uint64_t null_key = UINT64_MAX; /* handle 0 (failed, unknown heap) */
    uint64_t key = handle ? handle : null_key;
    uint32_t index = hti_map_get(&a->heap_index, key);
    if (index != UINT32_MAX)
        return index;
    if (a->heap_count >= 0xFFFF || HTI_GROW(a->heaps, a->heap_count, a->heap_capacity) != 0)
        return 0; /* heap 0 (handle 0, made at open) stands in when out of memory or indices */
    index = (uint32_t)a->heap_count;
    if (hti_map_put(&a->heap_index, key, index) != 0)
        return 0;
    hti_heap *h = &a->heaps[a->heap_count++];
    memset(h, 0, sizeof *h);
    h->handle = handle;
    return index;
}

static hti_model_thread *thread_for(ht_analysis *a, uint32_t tid, hti_model_thread **cache)
{
    if (*cache && (*cache)->tid == tid)
        return *cache;
    uint32_t index = hti_map_get(&a->thread_index, (uint64_t)tid + 1);
    if (index == UINT32_MAX) {
        if (HTI_GROW(a->threads, a->thread_count, a->thread_capacity) != 0)
            return NULL;
        index = (uint32_t)a->thread_count;
        if (hti_map_put(&a->thread_index, (uint64_t)tid + 1, index) != 0)
            return NULL;
        hti_model_thread *t = &a->threads[a->thread_count++];
        memset(t, 0, sizeof *t);
        t->tid = tid;
    }
    *cache = &a->threads[index];
    return *cache;
}

static inline uint32_t stack_site(const ht_analysis *a, uint32_t stack_id)
{
    return stack_id && stack_id <= a->stack_limit ? a->stack_site[stack_id] : HTI_SITE_NONE;
}

static inline unsigned histogram_bucket(uint64_t size)
{
    return size ? 64u - (unsigned)__builtin_clzll(size) : 0u;
}

static inline size_t recent_slot(uint64_t address)
{
    return (size_t)(((address >> 4) * 0x9E3779B97F4A7C15u) >> 50) & (RECENT_FREES - 1);
}

/* ---- accounting ---- */

static inline void site_touch(const ht_analysis *a, hti_site *s)
{
    if (s->peak_epoch != a->peak_epoch) {
        s->peak_epoch = a->peak_epoch;
        s->peak_bytes = s->live_bytes;
        s->peak_count = s->live_count;
    }
}

static inline void heap_touch(const ht_analysis *a, hti_heap *h)
{
    if (h->peak_epoch != a->peak_epoch) {
        h->peak_epoch = a->peak_epoch;
        h->peak_bytes = h->live_bytes;
        h->peak_count = h->live_count;
    }
}

static inline void account_add(ht_analysis *a, const hti_block *b, uint64_t time)
{
    double w = b->weight;
    double bytes = (double)hti_block_size(b) * w;
    hti_site *s = &a->sites[b->site];
    site_touch(a, s);
    s->live_count += w;
    s->live_bytes += bytes;
    hti_heap *h = &a->heaps[hti_block_heap(b)];
    heap_touch(a, h);
    h->live_count += w;
    h->live_bytes += bytes;
    if (h->live_bytes > h->max_live_bytes)
        h->max_live_bytes = h->live_bytes;
    a->live_count += w;
    a->live_bytes += bytes;
    a->source_live_bytes[hti_block_source(b)] += bytes;
    if (a->live_bytes > a->interval_max_live)
        a->interval_max_live = a->live_bytes;
    if (a->live_bytes > a->peak_bytes) {
        a->peak_bytes = a->live_bytes;
        a->peak_count = a->live_count;
        a->peak_time_ns = hti_relative_ns(a, time);
        a->peak_epoch++; /* every site and heap now holds its peak value in live_* */
    }
}

static void classify(ht_analysis *a, const hti_block *b, uint64_t end, bool freed)
{
    if ((freed && end < a->window_begin_abs) || b->time >= a->window_end_abs)
        return; /* gone before the window, or born after it */
    bool allocated_inside = b->time >= a->window_begin_abs;
    bool freed_inside = freed && end < a->window_end_abs;
    int c = allocated_inside ? (freed_inside ? HTI_AIFI : HTI_AIFO)
                             : (freed_inside ? HTI_AOFI : HTI_AOFO);
    double w = b->weight, bytes = (double)hti_block_size(b) * w;
    a->window_count[c] += w;
    a->window_bytes[c] += bytes;
    a->window_sites[b->site].count[c] += w;
    a->window_sites[b->site].bytes[c] += bytes;
}

/* The hooks see the end of this block (its free, or the end of the pass). */
static inline bool block_end_wanted(const hti_hooks *hooks, const hti_block *b)
{
    return hooks && hooks->block_end &&
           (hooks->every_block || (hooks->large_block && hti_block_size(b) >= hooks->large_block));
}

static inline void account_release(ht_analysis *a, const hti_block *b, uint64_t time,
                                   const hti_hooks *hooks)
{
    double w = b->weight;
    double bytes = (double)hti_block_size(b) * w;
    hti_site *s = &a->sites[b->site];
    site_touch(a, s);
    s->live_count -= w;
    s->live_bytes -= bytes;
    hti_heap *h = &a->heaps[hti_block_heap(b)];
    heap_touch(a, h);
    h->live_count -= w;
    h->live_bytes -= bytes;
    a->live_count -= w;
    a->live_bytes -= bytes;
    a->source_live_bytes[hti_block_source(b)] -= bytes;
    if (a->window_sites)
        classify(a, b, time, true);
    if (block_end_wanted(hooks, b))
        hooks->block_end(hooks->context, a, b, time, false);
}

/* Inserts a live block (replacing one at the same address, whose free was never seen). */
static inline int add_block(ht_analysis *a, uint64_t address, uint64_t size, uint32_t heap,
                            uint32_t source, uint32_t site, double weight, uint64_t time,
                            const hti_hooks *hooks)
{
    bool fresh;
    hti_block *b = hti_blocks_insert(&a->blocks, address, &fresh);
    if (!b)
        return -ENOMEM;
    if (!fresh)
        account_release(a, b, time, hooks);
    b->size_heap = (size & HTI_SIZE_MASK) |
                   ((uint64_t)(source < HT_SOURCE_COUNT ? source : 0) << HTI_SOURCE_SHIFT) |
                   ((uint64_t)heap << HTI_HEAP_SHIFT);
    b->time = time;
    b->site = site;
    b->weight = (float)weight;
    account_add(a, b, time);
    return 0;
}

static inline void count_allocation(ht_analysis *a, hti_site *s, uint64_t size, uint32_t source,
                                    double w)
{
    double bytes = (double)size * w;
    s->alloc_count += w;
    s->alloc_bytes += bytes;
    unsigned src = source < HT_SOURCE_COUNT ? source : 0;
    s->source_count[src] += w;
    s->source_bytes[src] += bytes;
    unsigned bucket = histogram_bucket(size);
    a->hist_count[bucket] += w;
    a->hist_bytes[bucket] += bytes;
}

/* One operation (an ALLOC, FREE or REALLOC event) in its heap's table by Source and in its
 * thread's. */
static inline void count_op(hti_heap *h, hti_model_thread *t, ht_op op, uint32_t source,
                            double count, double bytes)
{
    hti_ops *o = &h->ops[source < HT_SOURCE_COUNT ? source : 0];
    o->count[op] += count;
    o->bytes[op] += bytes;
    if (t) {
        t->ops.count[op] += count;
        t->ops.bytes[op] += bytes;
    }
}

static void record_invalid(ht_analysis *a, const ht_event *e, hti_invalid_kind kind, uint32_t site,
                           uint32_t heap, uint64_t address, uint64_t size)
{
    a->invalid_total++;
    a->last_invalid_kind = (uint32_t)kind;
    a->sites[site].invalid++;
    int op = e->kind == HT_EVENT_ALLOC  ? HT_OP_ALLOC
             : e->kind == HT_EVENT_FREE ? HT_OP_FREE
                                        : HT_OP_REALLOC;
    a->heaps[heap].invalid[op]++;
    uint64_t key = (((uint64_t)site << 8) | (uint64_t)kind) + 1;
    uint32_t g = hti_map_get(&a->invalid_index, key);
    if (g == UINT32_MAX) {
        if (HTI_GROW(a->invalid_groups, a->invalid_group_count, a->invalid_group_capacity) != 0 ||
            hti_map_put(&a->invalid_index, key, (uint32_t)a->invalid_group_count) != 0)
            return;
        g = (uint32_t)a->invalid_group_count++;
        a->invalid_groups[g] = (hti_invalid_group){(uint32_t)kind, site, 0, 0};
    }
    a->invalid_groups[g].count++;
    a->invalid_groups[g].bytes += size;
    if (a->invalid_event_count >= HTI_INVALID_EVENTS_MAX ||
        HTI_GROW(a->invalid_events, a->invalid_event_count, a->invalid_event_capacity) != 0) {
        a->invalid_omitted++;
        return;
    }
    hti_invalid_event *r = &a->invalid_events[a->invalid_event_count++];
    r->time_ns = hti_relative_ns(a, e->timestamp_ns);
    r->heap = a->heaps[heap].handle;
    r->address = address;
    r->size = size;
    r->thread = e->thread_id;
    r->kind = (uint32_t)kind;
    r->site = site;
    r->event_kind = e->kind;
}

const char *hti_reach_key(uint32_t reach)
{
    static const char *const keys[HTI_REACH_CLASSES] = {"definitely_lost", "indirectly_lost",
                                                        "still_reachable", "not_scanned"};
    return reach < HTI_REACH_CLASSES ? keys[reach] : "not_scanned";
}

const char *hti_reach_text(uint32_t reach)
{
    static const char *const texts[HTI_REACH_CLASSES] = {"definitely lost", "indirectly lost",
                                                         "still reachable",
                                                         "live at exit (no scan)"};
    return reach < HTI_REACH_CLASSES ? texts[reach] : texts[HTI_REACH_UNKNOWN];
}

const char *hti_invalid_name(hti_invalid_kind kind)
{
    static const char *const names[HTI_INVALID_KINDS] = {
        "failed allocation",
        "double free",
        "free through the wrong heap",
        "free refused by the heap",
        "free of an unknown pointer",
        "failed reallocation",
        "reallocation of a freed block",
        "reallocation of an unknown pointer",
    };
    return (unsigned)kind < HTI_INVALID_KINDS ? names[kind] : "invalid";
}

/* ---- events ---- */

typedef struct hti_pass {
    const hti_hooks *hooks;
    hti_model_thread *thread_cache;
    uint64_t heap_cache_handle;
    uint32_t heap_cache_index; /* UINT32_MAX: empty */
    uint64_t next_sample;      /* absolute */
    bool in_rundown;           /* the last event was part of a rundown taken at rundown_time */
    bool rundown_sweep;        /* unlisted blocks are stale (see rundown_begin) */
    uint64_t rundown_time;
    unsigned rundowns; /* begun so far */
    bool stopped;      /* the range ended */
} pass;

/* ---- rundowns after the first (ring mode: each snapshot and the stop take one) ----
 * A block the model holds but a later rundown does not list was freed while its FREE event was
 * lost (overwritten in another thread's ring): it is dropped at the rundown's time. Blocks the
 * rundown lists are marked in the top bit of their time while it lasts. */
#define TIME_MARK HTI_TIME_MARK

/* The scan's class applies to the blocks live at its time; one allocated after it has none. */
uint32_t hti_block_reachability(const ht_analysis *a, const hti_block *b)
{
    if (!a->leak_scan_seen || (b->time & ~TIME_MARK) > a->leak_scan_time)
        return HTI_REACH_UNKNOWN;
    hti_block *u = hti_blocks_find((hti_blocks *)&a->unreachable, b->address);
    return u ? (uint32_t)u->size_heap : HTI_REACH_REACHABLE;
}

/* The session's first rundown only completes the model (an operation racing with the walk can
 * be missing from it, FORMAT.md §13); later ones, and any in a ring trace whose start may have
 * been overwritten, also tell which blocks are gone. */
static void rundown_begin(ht_analysis *a, pass *p, uint64_t time)
{
    p->in_rundown = true;
    p->rundown_time = time;
    p->rundown_sweep = a->blocks.count > 0 &&
                       (p->rundowns > 0 || a->info->mode == HT_TRACE_MODE_RING);
    p->rundowns++;
}

static void rundown_end(ht_analysis *a, pass *p)
{
    p->in_rundown = false;
    if (!p->rundown_sweep)
        return;
    hti_blocks *table = &a->blocks;
    for (size_t i = 0; i <= table->mask;) {
        hti_block *b = &table->slots[i];
        if (b->address && (b->time & TIME_MARK)) {
            b->time &= ~TIME_MARK;
        } else if (b->address && b->time < p->rundown_time) {
            a->stale_count += b->weight;
            a->stale_bytes += (double)hti_block_size(b) * b->weight;
            account_release(a, b, p->rundown_time, p->hooks);
            hti_blocks_remove(table, b); /* slot i may now hold a later block: look again */
            continue;
        }
        i++;
    }
}

/* ---- temporaries: a thread's last operation ----
 * heaptrack's rule, per thread: a block is temporary when the thread that allocated it frees (or
 * reallocates) it with its very next heap operation. An address outlives its block (another
 * thread may free the block and get the address again for a new one), so the thread keeps the
 * block's identity: its address and its allocation time. Two blocks at one address cannot have
 * been allocated at one time unless a free and an allocation of another thread fall in the same
 * nanosecond, which is the rule's one blind spot. */

/* The thread did something else than allocate: its last operation is no longer an allocation. */
static inline void last_alloc_clear(hti_model_thread *t)
{
    if (t)
        t->last_alloc = 0;
}

/* t's last operation allocated the block at address, at time. */
static inline void last_alloc_set(hti_model_thread *t, uint64_t address, uint64_t time)
{
    if (t) {
        t->last_alloc = address;
        t->last_alloc_time = time;
    }
}

static bool is_temporary(const ht_analysis *a, const hti_model_thread *t, const hti_block *b,
                         uint64_t address, uint64_t now)
{
    if (t && t->last_alloc == address && t->last_alloc_time == (b->time & ~TIME_MARK))
        return true;
    uint64_t threshold = a->options.temporary_threshold_ns;
    return threshold && now >= b->time && now - b->time <= threshold && b->site != HTI_SITE_RUNDOWN;
}

static void mark_temporary(ht_analysis *a, const hti_block *b)
{
    double w = b->weight, bytes = (double)hti_block_size(b) * w;
    a->temp_count += w;
    a->temp_bytes += bytes;
    a->sites[b->site].temp_count += w;
    a->sites[b->site].temp_bytes += bytes;
}

static void remove_heap_blocks(ht_analysis *a, uint32_t heap, uint64_t time, const hti_hooks *hooks)
{
    hti_blocks *table = &a->blocks;
    for (size_t i = 0; i <= table->mask && a->heaps[heap].live_count > 0;) {
        hti_block *b = &table->slots[i];
        if (b->address && hti_block_heap(b) == heap) {
            a->destroyed_count += b->weight;
            a->destroyed_bytes += (double)hti_block_size(b) * b->weight;
            account_release(a, b, time, hooks);
            hti_blocks_remove(table, b); /* slot i may now hold a later block: look again */
            continue;
        }
        i++;
    }
    a->heaps[heap].live_count = 0;
    a->heaps[heap].live_bytes = 0;
}

static inline uint32_t heap_cached(ht_analysis *a, pass *p, uint64_t handle)
{
    if (p->heap_cache_index != UINT32_MAX && p->heap_cache_handle == handle)
        return p->heap_cache_index;
    p->heap_cache_handle = handle;
    p->heap_cache_index = heap_index(a, handle);
    return p->heap_cache_index;
}

/* The totals the heaps already hold, summed once after the pass rather than kept per event. */
void hti_sum_heaps(ht_analysis *a)
{
    a->alloc_count = a->alloc_bytes = a->free_count = a->free_bytes = a->realloc_count = 0;
    for (size_t i = 0; i < a->heap_count; i++)
        for (unsigned s = 0; s < HT_SOURCE_COUNT; s++) {
            hti_heap *h = &a->heaps[i];
            /* Successful allocations: every operation with a Source but INVALID (count_op). */
            const hti_ops *o = &h->ops[s];
            bool served = s != MEMORY_FROM_INVALID;
            h->alloc_count[s] = served ? o->count[HT_OP_ALLOC] + o->count[HT_OP_REALLOC] : 0;
            h->alloc_bytes[s] = served ? hti_ops_allocated(o) : 0;
            a->alloc_count += h->alloc_count[s];
            a->realloc_count += served ? o->count[HT_OP_REALLOC] : 0;
            a->alloc_bytes += h->alloc_bytes[s];
            a->free_count += h->free_count[s];
            a->free_bytes += h->free_bytes[s];
        }
}

/* ---- applying one event ----
 * One function per kind; each is inlined into apply's switch. Those that can run out of memory
 * return 0 or -ENOMEM. */

/* A FREE, or a REALLOC's old block: the block b (of thread t's operation) leaves the model. */
static inline __attribute__((always_inline)) void release_block(ht_analysis *a, hti_model_thread *t,
                                                                hti_block *b, uint32_t source,
                                                                uint64_t now,
                                                                const hti_hooks *hooks)
{
    if (is_temporary(a, t, b, b->address, now))
        mark_temporary(a, b);
    double w = b->weight, bytes = (double)hti_block_size(b) * w;
    unsigned src = source < HT_SOURCE_COUNT ? source : 0;
    hti_heap *h = &a->heaps[hti_block_heap(b)];
    h->free_count[src] += w;
    h->free_bytes[src] += bytes;
    account_release(a, b, now, hooks);
    hti_blocks_remove(&a->blocks, b);
}

/* An ALLOC's or a REALLOC's new block enters the model. 0 or -ENOMEM. */
static inline int block_allocated(ht_analysis *a, hti_model_thread *t, uint32_t site, uint32_t heap,
                                  uint64_t address, uint64_t size, uint32_t source, double weight,
                                  uint64_t now, const hti_hooks *hooks)
{
    count_allocation(a, &a->sites[site], size, source, weight);
    if (add_block(a, address, size, heap, source, site, weight, now, hooks) != 0)
        return -ENOMEM;
    last_alloc_set(t, address, now);
    return 0;
}

/* After an INVALID operation (recorded by record_invalid): the thread's last operation was not an
 * allocation, and the exporters hear of it. */
static inline void invalid_done(ht_analysis *a, hti_model_thread *t, const ht_event *e,
                                uint32_t site, const hti_hooks *hooks)
{
    last_alloc_clear(t);
    if (hooks && hooks->notable)
        hooks->notable(hooks->context, a, e, site);
}

/* ALLOC: a block, or an INVALID (failed) allocation. */
static inline int apply_alloc(ht_analysis *a, pass *p, const ht_event *e, uint64_t now)
{
    const hti_hooks *hooks = p->hooks;
    const ETW_HEAP_EVENT_ALLOC *x = &e->u.alloc;
    hti_model_thread *t = thread_for(a, e->thread_id, &p->thread_cache);
    uint32_t site = stack_site(a, e->stack_id);
    uint32_t heap = heap_cached(a, p, x->HeapHandle);
    count_op(&a->heaps[heap], t, HT_OP_ALLOC, x->Address ? x->Source : MEMORY_FROM_INVALID,
             e->weight, (double)x->Size * e->weight);
    if (x->Source == MEMORY_FROM_INVALID || !x->Address) {
        record_invalid(a, e, HTI_INVALID_FAILED_ALLOC, site, heap, x->Address, x->Size);
        invalid_done(a, t, e, site, hooks);
        return 0;
    }
    return block_allocated(a, t, site, heap, x->Address, x->Size, x->Source, e->weight, now, hooks);
}

/* FREE: the block leaves the model; a free the model cannot place is counted, not applied. */
static inline void apply_free(ht_analysis *a, pass *p, const ht_event *e, uint64_t now)
{
    const hti_hooks *hooks = p->hooks;
    const ETW_HEAP_EVENT_FREE *x = &e->u.free;
    hti_model_thread *t = thread_for(a, e->thread_id, &p->thread_cache);
    uint32_t heap = heap_cached(a, p, x->HeapHandle);
    hti_block *b = x->Address ? hti_blocks_find(&a->blocks, x->Address) : NULL;
    bool released = b && x->Source != MEMORY_FROM_INVALID;
    count_op(&a->heaps[heap], t, HT_OP_FREE, x->Source, 1,
             released ? (double)hti_block_size(b) * b->weight : 0);
    if (!x->Address) /* free(NULL) */
        return;
    if (x->Source == MEMORY_FROM_INVALID) {
        uint32_t site = stack_site(a, e->stack_id);
        hti_invalid_kind kind = b ? (hti_block_heap(b) != heap ? HTI_INVALID_WRONG_HEAP
                                                               : HTI_INVALID_REJECTED_FREE)
                                : a->recent_frees[recent_slot(x->Address)] == x->Address
                                    ? HTI_INVALID_DOUBLE_FREE
                                    : HTI_INVALID_UNKNOWN_FREE;
        record_invalid(a, e, kind, site, heap, x->Address, 0);
        invalid_done(a, t, e, site, hooks);
        return;
    }
    if (!b) {
        a->unknown_frees += 1;
        last_alloc_clear(t);
        return;
    }
    release_block(a, t, b, x->Source, now, hooks);
    a->recent_frees[recent_slot(x->Address)] = x->Address;
    last_alloc_clear(t);
}

/* REALLOC: the old block leaves, the new one enters (or an INVALID reallocation). */
static inline int apply_realloc(ht_analysis *a, pass *p, const ht_event *e, uint64_t now)
{
    const hti_hooks *hooks = p->hooks;
    const ETW_HEAP_EVENT_REALLOC *x = &e->u.realloc;
    hti_model_thread *t = thread_for(a, e->thread_id, &p->thread_cache);
    uint32_t site = stack_site(a, e->stack_id);
    uint32_t heap = heap_cached(a, p, x->HeapHandle);
    hti_block *old = x->OldAddress ? hti_blocks_find(&a->blocks, x->OldAddress) : NULL;
    count_op(&a->heaps[heap], t, HT_OP_REALLOC, x->NewAddress ? x->Source : MEMORY_FROM_INVALID,
             e->weight, (double)x->NewSize * e->weight);
    if (x->Source == MEMORY_FROM_INVALID || !x->NewAddress) {
        hti_invalid_kind kind = !x->OldAddress ? HTI_INVALID_FAILED_ALLOC
                                : old          ? HTI_INVALID_FAILED_REALLOC
                                : a->recent_frees[recent_slot(x->OldAddress)] == x->OldAddress
                                    ? HTI_INVALID_REALLOC_FREED
                                    : HTI_INVALID_REALLOC_UNKNOWN;
        record_invalid(a, e, kind, site, heap, x->OldAddress, x->NewSize);
        invalid_done(a, t, e, site, hooks);
        return 0;
    }
    if (old) {
        release_block(a, t, old, x->Source, now, hooks);
        if (x->OldAddress != x->NewAddress)
            a->recent_frees[recent_slot(x->OldAddress)] = x->OldAddress;
    } else if (x->OldAddress) {
        a->unknown_frees += 1;
    }
    return block_allocated(a, t, site, heap, x->NewAddress, x->NewSize, x->Source, e->weight, now,
                           hooks);
}

/* RUNDOWN_BLOCK: FORMAT.md §13's rule, plus the sweep of later rundowns (rundown_begin). */
static inline int apply_rundown_block(ht_analysis *a, pass *p, const ht_event *e, uint64_t now)
{
    const hti_hooks *hooks = p->hooks;
    const ht_event_rundown_block *x = &e->u.rundown_block;
    if (!p->in_rundown || p->rundown_time != now)
        rundown_begin(a, p, now);
    a->kind_bytes[HT_EVENT_RUNDOWN_BLOCK] += (double)x->Size;
    hti_block *known = x->Address ? hti_blocks_find(&a->blocks, x->Address) : NULL;
    if (known && p->rundown_sweep)
        known->time |= TIME_MARK;
    if (!x->Address || known)
        return 0;
    uint32_t heap = heap_cached(a, p, x->HeapHandle);
    a->heaps[heap].rundown = true;
    a->rundown_count += 1;
    a->rundown_bytes += (double)x->Size;
    if (add_block(a, x->Address, x->Size, heap, 0, HTI_SITE_RUNDOWN, 1.0, now, hooks) != 0)
        return -ENOMEM;
    if (p->rundown_sweep)
        hti_blocks_find(&a->blocks, x->Address)->time |= TIME_MARK;
    return 0;
}

static int apply(ht_analysis *a, pass *p, const ht_event *e)
{
    const hti_hooks *hooks = p->hooks;
    uint64_t now = e->timestamp_ns;
    a->events++;
    a->kind_count[e->kind & 0xFF]++;
    if (__builtin_expect(p->in_rundown, 0) && e->kind != HT_EVENT_RUNDOWN_BLOCK &&
        e->kind != HT_EVENT_RUNDOWN_HEAP)
        rundown_end(a, p);
    switch (e->kind) {
    case HT_EVENT_ALLOC: return apply_alloc(a, p, e, now);
    case HT_EVENT_FREE: apply_free(a, p, e, now); break;
    case HT_EVENT_REALLOC: return apply_realloc(a, p, e, now);
    case HT_EVENT_RUNDOWN_BLOCK: return apply_rundown_block(a, p, e, now);
    case HT_EVENT_RUNDOWN_HEAP: {
        if (!p->in_rundown || p->rundown_time != now)
            rundown_begin(a, p, now);
        hti_heap *h = &a->heaps[heap_index(a, e->u.rundown_heap.HeapHandle)];
        h->rundown = true;
        h->committed = e->u.rundown_heap.Committed;
        if (h->committed > h->max_committed)
            h->max_committed = h->committed;
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, stack_site(a, e->stack_id));
        break;
    }
    case HT_EVENT_HEAP_CREATE: {
        hti_heap *h = &a->heaps[heap_index(a, e->u.heap_create.HeapHandle)];
        h->created_ns = hti_relative_ns(a, now);
        h->flags = e->u.heap_create.Flags;
        h->created = true;
        h->destroyed = false;
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, stack_site(a, e->stack_id));
        break;
    }
    case HT_EVENT_HEAP_DESTROY: {
        uint32_t heap = heap_index(a, e->u.heap_destroy.HeapHandle);
        a->heaps[heap].destroyed = true;
        a->heaps[heap].destroyed_ns = hti_relative_ns(a, now);
        remove_heap_blocks(a, heap, now, hooks);
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, stack_site(a, e->stack_id));
        break;
    }
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT: {
        hti_heap *h = &a->heaps[heap_index(a, e->u.heap_resize.HeapHandle)];
        a->kind_bytes[e->kind] += (double)e->u.heap_resize.Bytes;
        h->committed = e->u.heap_resize.CommittedAfter;
        if (h->committed > h->max_committed)
            h->max_committed = h->committed;
        break;
    }
    case HT_EVENT_LOST: {
        const ht_event_lost *x = &e->u.lost;
        a->lost_total += x->Count;
        a->lost_by_reason[x->Reason < 8 ? x->Reason : 0] += x->Count;
        if (a->lost_record_count < HTI_LOST_RECORDS_MAX &&
            HTI_GROW(a->lost_records, a->lost_record_count, a->lost_record_capacity) == 0)
            a->lost_records[a->lost_record_count++] = *x;
        else
            a->lost_omitted++;
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, HTI_SITE_NONE);
        break;
    }
    case HT_EVENT_LEAK_SCAN:
        a->leak_scan_seen = true;
        a->leak_scan_time = now;
        a->leak_scan = e->u.leak_scan;
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, HTI_SITE_NONE);
        break;
    case HT_EVENT_UNREACHABLE_BLOCK: {
        bool fresh;
        hti_block *u = hti_blocks_insert(&a->unreachable, e->u.unreachable_block.Address, &fresh);
        if (!u)
            return -ENOMEM;
        u->size_heap = e->u.unreachable_block.Class == HT_LEAK_DEFINITE ? HTI_REACH_DEFINITE
                                                                        : HTI_REACH_INDIRECT;
        u->time = now;
        if (hooks && hooks->notable)
            hooks->notable(hooks->context, a, e, HTI_SITE_NONE);
        break;
    }
    default: break;
    }
    return 0;
}

/* ---- the range (options.from_ns, to_ns) ----
 * Before from_abs the events only build the live set. On reaching it every count starts again
 * from zero, and the peak from the live total then; after the pass the leaks keep only blocks
 * allocated inside the range. */

static void range_begin(ht_analysis *a, uint64_t now, const hti_hooks *hooks)
{
    a->in_range = true;
    if (a->from_abs <= a->info->start_ns)
        return; /* nothing was counted before */
    a->interval_max_live = a->live_bytes;
    if (hooks && hooks->sample)
        hooks->sample(hooks->context, a, a->options.from_ns); /* the state the range starts in */
    for (size_t i = 0; i < a->site_count; i++) {
        hti_site *s = &a->sites[i];
        s->alloc_count = s->alloc_bytes = s->temp_count = s->temp_bytes = 0;
        memset(s->source_count, 0, sizeof s->source_count);
        memset(s->source_bytes, 0, sizeof s->source_bytes);
        s->invalid = 0;
    }
    for (size_t i = 0; i < a->heap_count; i++) {
        hti_heap *h = &a->heaps[i];
        memset(h->ops, 0, sizeof h->ops);
        memset(h->free_count, 0, sizeof h->free_count);
        memset(h->free_bytes, 0, sizeof h->free_bytes);
        memset(h->invalid, 0, sizeof h->invalid);
        h->max_live_bytes = h->live_bytes;
        h->max_committed = h->committed;
    }
    for (size_t i = 0; i < a->thread_count; i++)
        memset(&a->threads[i].ops, 0, sizeof a->threads[i].ops);
    a->events = 0;
    memset(a->kind_count, 0, sizeof a->kind_count);
    memset(a->kind_bytes, 0, sizeof a->kind_bytes);
    a->temp_count = a->temp_bytes = 0;
    a->unknown_frees = a->destroyed_count = a->destroyed_bytes = 0;
    a->stale_count = a->stale_bytes = 0;
    memset(a->hist_count, 0, sizeof a->hist_count);
    memset(a->hist_bytes, 0, sizeof a->hist_bytes);
    hti_map_free(&a->invalid_index);
    a->invalid_group_count = a->invalid_event_count = 0;
    a->invalid_total = a->invalid_omitted = 0;
    a->lost_record_count = 0;
    a->lost_total = a->lost_omitted = 0;
    memset(a->lost_by_reason, 0, sizeof a->lost_by_reason);
    a->peak_bytes = a->live_bytes;
    a->peak_count = a->live_count;
    a->peak_time_ns = hti_relative_ns(a, now > a->from_abs ? a->from_abs : now);
    a->peak_epoch++;
}

/* After the pass: blocks allocated before the range are not its leaks. Every site and heap
 * first keeps its numbers at the peak, which these blocks were part of. */
static void range_end(ht_analysis *a)
{
    if (a->from_abs <= a->info->start_ns)
        return;
    for (size_t i = 0; i < a->site_count; i++)
        site_touch(a, &a->sites[i]);
    for (size_t i = 0; i < a->heap_count; i++)
        heap_touch(a, &a->heaps[i]);
    for (size_t i = 0; i <= a->blocks.mask; i++) {
        const hti_block *b = &a->blocks.slots[i];
        if (!b->address || b->time >= a->from_abs)
            continue;
        double w = b->weight, bytes = (double)hti_block_size(b) * w;
        a->sites[b->site].live_count -= w;
        a->sites[b->site].live_bytes -= bytes;
        a->heaps[hti_block_heap(b)].live_count -= w;
        a->heaps[hti_block_heap(b)].live_bytes -= bytes;
        a->live_count -= w;
        a->live_bytes -= bytes;
    }
}

/* ---- the feeder: decoding on a thread of its own ---- */

#define FEED_BUFFERS 4

typedef struct feeder {
    ht_reader *reader;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready, space;
    ht_event *buffers[FEED_BUFFERS];
    long counts[FEED_BUFFERS];
    uint64_t produced, consumed;
    bool stop, threaded;
} feeder;

static void *feeder_main(void *argument)
{
    feeder *f = argument;
    for (;;) {
        pthread_mutex_lock(&f->lock);
        while (f->produced - f->consumed == FEED_BUFFERS && !f->stop)
            pthread_cond_wait(&f->space, &f->lock);
        bool stop = f->stop;
        size_t slot = (size_t)(f->produced % FEED_BUFFERS);
        pthread_mutex_unlock(&f->lock);
        if (stop)
            break;
        long n = ht_reader_read(f->reader, f->buffers[slot], BATCH_EVENTS);
        pthread_mutex_lock(&f->lock);
        f->counts[slot] = n;
        f->produced++;
        pthread_cond_signal(&f->ready);
        pthread_mutex_unlock(&f->lock);
        if (n <= 0)
            break;
    }
    return NULL;
}

static int feeder_start(feeder *f, ht_reader *reader)
{
    memset(f, 0, sizeof *f);
    f->reader = reader;
    for (int i = 0; i < FEED_BUFFERS; i++)
        if (!(f->buffers[i] = malloc(BATCH_EVENTS * sizeof(ht_event)))) {
            for (int k = 0; k < i; k++)
                free(f->buffers[k]);
            return -ENOMEM;
        }
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->ready, NULL);
    pthread_cond_init(&f->space, NULL);
    /* Without a thread, batches are read in the caller (same results, one core). */
    f->threaded = pthread_create(&f->thread, NULL, feeder_main, f) == 0;
    return 0;
}

/* The next batch: its events and count (0 at the end, negative errno on error). */
static long feeder_next(feeder *f, ht_event **events)
{
    size_t slot = (size_t)(f->consumed % FEED_BUFFERS);
    *events = f->buffers[slot];
    if (!f->threaded)
        return ht_reader_read(f->reader, f->buffers[slot], BATCH_EVENTS);
    pthread_mutex_lock(&f->lock);
    while (f->produced == f->consumed)
        pthread_cond_wait(&f->ready, &f->lock);
    long n = f->counts[slot];
    pthread_mutex_unlock(&f->lock);
    return n;
}

/* Gives the batch from feeder_next back. */
static void feeder_done(feeder *f)
{
    if (!f->threaded)
        return;
    pthread_mutex_lock(&f->lock);
    f->consumed++;
    pthread_cond_signal(&f->space);
    pthread_mutex_unlock(&f->lock);
}

static void feeder_stop(feeder *f)
{
    if (f->threaded) {
        pthread_mutex_lock(&f->lock);
        f->stop = true;
        pthread_cond_signal(&f->space);
        pthread_mutex_unlock(&f->lock);
        pthread_join(f->thread, NULL);
    }
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->ready);
    pthread_cond_destroy(&f->space);
    for (int i = 0; i < FEED_BUFFERS; i++)
        free(f->buffers[i]);
}

/* ---- the pass ---- */

/* Starts loading the table slots a group of events will touch, so their cache misses overlap
 * instead of coming one after the other (the table is far larger than the caches). */
static inline void prefetch_slots(const ht_analysis *a, const ht_event *events, long count)
{
    for (long k = 0; k < count; k++) {
        const ht_event *e = &events[k];
        uint64_t address = e->kind == HT_EVENT_FREE      ? e->u.free.Address
                           : e->kind == HT_EVENT_ALLOC   ? e->u.alloc.Address
                           : e->kind == HT_EVENT_REALLOC ? e->u.realloc.OldAddress
                                                         : 0;
        __builtin_prefetch(&a->blocks.slots[hti_blocks_slot(&a->blocks, address)]);
    }
}

int hti_analysis_begin(ht_analysis *a, const hti_hooks *hooks)
{
    if (a->ran)
        return -EINVAL;
    pass *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    a->ran = true;
    a->pass = p;
    p->hooks = hooks;
    p->heap_cache_index = UINT32_MAX;
    uint64_t interval = hooks ? hooks->sample_interval_ns : 0;
    p->next_sample = interval ? a->from_abs + interval : UINT64_MAX;
    return 0;
}

/* The sample hook for every boundary the clock reached (at an event, or the watermark of a live
 * trace): the state is then as of that boundary. */
static void sample_until(ht_analysis *a, pass *p, uint64_t now)
{
    const hti_hooks *hooks = p->hooks;
    while (now >= p->next_sample) {
        uint64_t boundary = p->next_sample;
        hooks->sample(hooks->context, a, boundary - a->info->start_ns);
        uint64_t interval = hooks->sample_interval_ns;
        uint64_t next = a->from_abs + ((now - a->from_abs) / interval + 1) * interval;
        /* One call for a jump of the events, unless the hooks want every boundary. */
        p->next_sample = hooks->every_boundary && boundary + interval < next ? boundary + interval
                                                                             : next;
    }
}

int hti_analysis_feed(ht_analysis *a, const ht_event *events, long n)
{
    pass *p = a->pass;
    if (!p || p->stopped)
        return 1;
    /* A live trace's modules and stacks arrive as it goes. A stack is mapped to its site once
     * an event that uses it is final: by then the modules its frames lie in have come too
     * (they are written in the pass that wrote the stack). */
    if (a->info->stacks > a->stacks_mapped) {
        uint32_t used = 0;
        for (long i = 0; i < n; i++)
            used = events[i].stack_id > used ? events[i].stack_id : used;
        if (used > a->stack_limit &&
            (hti_symbolizer_refresh(a->symbolizer) != 0 || hti_sites_update(a, used) != 0))
            return -ENOMEM;
    }
    for (long i = 0; i < n; i++) {
        if (i % PREFETCH_GROUP == 0)
            prefetch_slots(a, events + i, n - i < PREFETCH_GROUP ? n - i : PREFETCH_GROUP);
        const ht_event *e = &events[i];
        if (__builtin_expect(e->timestamp_ns >= a->to_abs, 0)) {
            p->stopped = true; /* the range ends here */
            a->last_ns = a->to_abs;
            return 1;
        }
        if (__builtin_expect(!a->in_range, 0) && e->timestamp_ns >= a->from_abs)
            range_begin(a, e->timestamp_ns, p->hooks);
        if (e->timestamp_ns >= p->next_sample)
            sample_until(a, p, e->timestamp_ns);
        if (apply(a, p, e) != 0)
            return -ENOMEM;
        if (e->timestamp_ns > a->last_ns)
            a->last_ns = e->timestamp_ns;
    }
    return 0;
}

void hti_analysis_advance(ht_analysis *a, uint64_t now)
{
    pass *p = a->pass;
    if (!p || p->stopped)
        return;
    if (now > a->to_abs)
        now = a->to_abs;
    if (!a->in_range && now >= a->from_abs)
        range_begin(a, a->from_abs, p->hooks);
    if (now >= p->next_sample)
        sample_until(a, p, now);
}

int hti_analysis_end(ht_analysis *a, int status, char *error, size_t error_size)
{
    pass *p = a->pass;
    if (!p)
        return -EINVAL;
    const hti_hooks *hooks = p->hooks;
    if (p->in_rundown)
        rundown_end(a, p);
    if (!a->in_range) {
        uint64_t trace_end = hti_end_ns(a); /* not cut by to: from is before to */
        if (!status && a->options.from_ns > 0 && a->from_abs >= trace_end) {
            char b1[HTI_NUMBER_MAX], b2[HTI_NUMBER_MAX];
            snprintf(error, error_size, "the range starts at %s, after the trace's end (%s)",
                     hti_format_time(b1, sizeof b1, a->options.from_ns),
                     hti_format_time(b2, sizeof b2, hti_relative_ns(a, trace_end)));
            return -ERANGE;
        }
        range_begin(a, a->from_abs, hooks); /* no event inside the range: before the sums */
    }
    hti_sum_heaps(a);
    /* Blocks still live: leaks; for the window, they were never freed. */
    uint64_t end = hti_end_ns(a);
    for (size_t i = 0; i <= a->blocks.mask; i++) {
        const hti_block *b = &a->blocks.slots[i];
        if (!b->address)
            continue;
        if (a->window_sites)
            classify(a, b, end, false);
        if (block_end_wanted(hooks, b))
            hooks->block_end(hooks->context, a, b, end, true);
        if (!hti_block_before_or_own(b)) {
            uint32_t reach = hti_block_reachability(a, b);
            a->reach_count[reach] += b->weight;
            a->reach_bytes[reach] += (double)hti_block_size(b) * b->weight;
        }
    }
    if (hooks && hooks->sample)
        hooks->sample(hooks->context, a, hti_relative_ns(a, end));
    range_end(a);
    int merged = hti_sites_merge(a);
    if (merged && !status) {
        snprintf(error, error_size, "out of memory");
        status = merged;
    }
    return status;
}

int hti_analysis_run(ht_analysis *a, const hti_hooks *hooks, char *error, size_t error_size)
{
    int status = hti_analysis_begin(a, hooks);
    if (status) {
        snprintf(error, error_size, "%s",
                 status == -EINVAL ? "the trace was already analysed" : "out of memory");
        return status;
    }
    feeder feed;
    if (feeder_start(&feed, a->reader) != 0) {
        snprintf(error, error_size, "out of memory");
        return -ENOMEM;
    }
    /* The results are written after the line is erased: it may share a terminal with them. */
    hti_progress pr;
    hti_progress_init(&pr, a->options.progress, a->options.progress_label, "events",
                      a->info->events);
    for (;;) {
        ht_event *events;
        long n = feeder_next(&feed, &events);
        if (n < 0) {
            /* Keep what was read: the results cover the events before the bad chunk. */
            snprintf(error, error_size, "%s", ht_reader_error(a->reader));
            status = (int)n;
            break;
        }
        if (n == 0)
            break;
        int fed = hti_analysis_feed(a, events, n);
        feeder_done(&feed);
        if (fed < 0) {
            snprintf(error, error_size, "out of memory (%zu live blocks)", a->blocks.count);
            status = fed;
        }
        if (fed)
            break;
        hti_progress_update(&pr, a->events);
    }
    feeder_stop(&feed);
    if (status == -ENOMEM)
        return status;
    hti_progress_done(&pr);
    return hti_analysis_end(a, status, error, error_size);
}

int ht_analysis_run(ht_analysis *a, char *error, size_t error_size)
{
    return hti_analysis_run(a, NULL, error, error_size);
}

uint64_t hti_end_ns(const ht_analysis *a)
{
    uint64_t end = a->info->end_ns > a->last_ns ? a->info->end_ns : a->last_ns;
    return end < a->to_abs ? end : a->to_abs;
}

uint64_t hti_duration_ns(const ht_analysis *a)
{
    return hti_relative_ns(a, hti_end_ns(a));
}

const char *ht_analysis_warnings(const ht_analysis *a)
{
    return ht_reader_warnings(a->reader);
}

/* ---- life cycle ---- */

void ht_analysis_options_init(ht_analysis_options *o)
{
    memset(o, 0, sizeof *o);
    o->symbols = true;
    o->window_end_ns = HT_ANALYSIS_NO_END;
    o->from_ns = 0;
    o->to_ns = HT_ANALYSIS_NO_END;
    o->progress = -1;
    o->progress_label = "analysis";
}

static char **copy_dirs(const char *const *dirs)
{
    size_t n = 0;
    while (dirs && dirs[n])
        n++;
    char **copy = calloc(n + 1, sizeof *copy);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(copy[i] = strdup(dirs[i]))) {
            for (size_t k = 0; k < i; k++)
                free(copy[k]);
            free(copy);
            return NULL;
        }
    return copy;
}

static ht_analysis *analysis_create(ht_reader *reader, bool owns_reader, const char *path,
                                    const ht_analysis_options *options, char *error,
                                    size_t error_size)
{
    ht_analysis *a = calloc(1, sizeof *a);
    if (!a) {
        if (owns_reader)
            ht_reader_close(reader);
        snprintf(error, error_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    a->reader = reader;
    a->owns_reader = owns_reader;
    a->info = ht_reader_info(reader);
    if (options)
        a->options = *options;
    else
        ht_analysis_options_init(&a->options);
    a->path = strdup(path);
    a->search_dirs = (const char **)copy_dirs(a->options.search_dirs);
    a->options.search_dirs = a->search_dirs;
    a->peak_epoch = 1;
    if (a->path && a->search_dirs)
        a->symbolizer = hti_symbolizer_open(reader, a->options.symbols, a->options.search_dirs);
    a->recent_frees = calloc(RECENT_FREES, sizeof *a->recent_frees);
    if (!a->symbolizer || !a->recent_frees || hti_blocks_init(&a->blocks) != 0 ||
        hti_blocks_init(&a->unreachable) != 0 || hti_sites_build(a) != 0 || heap_index(a, 0) != 0 ||
        a->heap_count != 1) {
        snprintf(error, error_size, "out of memory");
        ht_analysis_close(a);
        errno = ENOMEM;
        return NULL;
    }
    uint64_t start = a->info->start_ns;
    a->from_abs = start + a->options.from_ns; /* a nanosecond count fits 2^63 for 292 years */
    a->to_abs = a->options.to_ns == HT_ANALYSIS_NO_END || a->options.to_ns > UINT64_MAX - start
                    ? UINT64_MAX
                    : start + a->options.to_ns;
    if (a->options.window) {
        uint64_t begin = a->options.window_begin_ns, end = a->options.window_end_ns;
        a->window_begin_abs = a->info->start_ns + begin;
        a->window_end_abs = end == HT_ANALYSIS_NO_END || end > UINT64_MAX - a->info->start_ns
                                ? UINT64_MAX
                                : a->info->start_ns + end;
        a->window_sites = calloc(a->site_count, sizeof *a->window_sites);
        if (!a->window_sites) {
            snprintf(error, error_size, "out of memory");
            ht_analysis_close(a);
            errno = ENOMEM;
            return NULL;
        }
    }
    return a;
}

ht_analysis *ht_analysis_open(const char *path, const ht_analysis_options *options, char *error,
                              size_t error_size)
{
    char message[512] = "";
    ht_reader *reader = ht_reader_open(path, message, sizeof message);
    if (!reader) {
        int e = errno;
        if (strncmp(message, path, strlen(path)) == 0)
            snprintf(error, error_size, "%s", message);
        else
            snprintf(error, error_size, "%s: %s", path, message);
        errno = e;
        return NULL;
    }
    return analysis_create(reader, true, path, options, error, error_size);
}

ht_analysis *ht_analysis_new(ht_reader *reader, const char *path,
                             const ht_analysis_options *options, char *error, size_t error_size)
{
    return analysis_create(reader, false, path, options, error, error_size);
}

void ht_analysis_close(ht_analysis *a)
{
    if (!a)
        return;
    hti_symbolizer_close(a->symbolizer);
    if (a->reader && a->owns_reader)
        ht_reader_close(a->reader);
    for (size_t i = 0; a->search_dirs && a->search_dirs[i]; i++)
        free((char *)a->search_dirs[i]);
    free(a->search_dirs);
    free(a->path);
    free(a->sites);
    hti_map_free(&a->site_index);
    free(a->stack_site);
    free(a->pass);
    hti_arena_free(&a->frame_arena);
    free(a->window_sites);
    hti_blocks_free(&a->blocks);
    hti_blocks_free(&a->unreachable);
    hti_map_free(&a->heap_index);
    hti_map_free(&a->thread_index);
    free(a->heaps);
    free(a->threads);
    free(a->recent_frees);
    free(a->invalid_groups);
    hti_map_free(&a->invalid_index);
    free(a->invalid_events);
    free(a->lost_records);
    free(a);
}

/* ---- entry points of the renderers ---- */

int ht_report_write(ht_analysis *a, FILE *out, const ht_report_options *options)
{
    unsigned top = options && options->top ? options->top : 10;
    int status = options && options->json
                     ? hti_report_json(a, out, top, true)
                     : hti_report_text(a, out, top, options ? options->sections : 0);
    if (status == 0 && (fflush(out) != 0 || ferror(out)))
        status = -EIO;
    return status;
}

int ht_report_html_write(ht_analysis *a, FILE *out, const ht_report_options *options, char *error,
                         size_t error_size)
{
    return hti_report_html(a, out, options->top, error, error_size);
}

int ht_export_write(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                    size_t error_size)
{
    int status;
    switch (o->format) {
    case HT_EXPORT_CHROME: status = hti_export_chrome(a, out, o, error, error_size); break;
    case HT_EXPORT_MASSIF: status = hti_export_massif(a, out, o, error, error_size); break;
    case HT_EXPORT_FOLDED:
        status = hti_analysis_run(a, NULL, error, error_size);
        if (status == 0)
            status = hti_export_folded(a, out, o);
        break;
    case HT_EXPORT_PPROF:
        status = hti_analysis_run(a, NULL, error, error_size);
        if (status == 0)
            status = hti_export_pprof(a, out, o, error, error_size);
        break;
    default: snprintf(error, error_size, "unknown export format"); return -EINVAL;
    }
    if (status == 0 && (fflush(out) != 0 || ferror(out))) {
        snprintf(error, error_size, "%s", strerror(errno ? errno : EIO));
        status = -EIO;
    }
    return status;
}
