/* test_threads.c — multi-threaded stress of the heap manager.
 *
 * N threads (default 4) allocate, reallocate and free mixed sizes on one shared heap, passing
 * blocks through an array of atomic slots so most frees happen on another thread (patterns
 * checked first), while an observer validates and walks; then validate, walk == blocks left,
 * summary sums, counters == operations performed. Also: private NO_SERIALIZE heaps, heaps
 * created and destroyed concurrently, short-lived threads, the process heap, fork. */
#include "heap_test.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static test_options options = {.seed = 1, .seeds = 1, .ops = 100000, .threads = 4};

static const char usage[] =
    "usage: test_heap_threads [--seed N] [--threads N] [--ops N] [--filter PATTERN] [--verbose]\n"
    "  --ops is the total number of heap operations of each stress test, shared among the\n"
    "  threads (default 100000, 4 threads).\n";

#define SLOT_COUNT 2048
#define MAX_THREADS 64

/* A block travelling between threads: one owner at a time (whoever took it from the array). */
typedef struct record {
    void *p;
    size_t size;
    uint32_t pattern;
} record;

typedef struct op_counts {
    uint64_t ops[HT_OP_COUNT];
} op_counts;

typedef struct shared_run {
    ht_heap *heap;
    _Atomic(record *) slots[SLOT_COUNT];
    uint64_t ops_per_thread;
    uint64_t seed;
    unsigned max_size_class; /* 0: up to 4 KiB, 1: up to 256 KiB, 2: large blocks too */
    atomic_bool stop_observer;
    atomic_uint_fast64_t observer_rounds;
} shared_run;

typedef struct worker {
    shared_run *run;
    unsigned index;
    op_counts counts;
    pthread_t thread;
} worker;

/* Sizes from 1 byte (0-byte requests are covered by test_tiers and test_model). */
static size_t thread_random_size(rng *r, unsigned max_class)
{
    uint64_t x = rng_below(r, 1000);
    if (x < 600 || max_class == 0)
        return rng_range(r, 1, x < 600 ? 256 : 4096);
    if (x < 850)
        return rng_range(r, 257, 4096);
    if (x < 970)
        return rng_range(r, 4097, 65536);
    if (x < 995 || max_class == 1)
        return rng_range(r, 65537, 262144);
    return rng_range(r, HT_LARGE_THRESHOLD, HT_LARGE_THRESHOLD + (128u << 10));
}

static void verify_record(const record *rec, const char *what)
{
    size_t at = pattern_mismatch(rec->p, rec->pattern, rec->size);
    CHECK(at == rec->size, "%s: block %p of %zu bytes changed at byte %zu", what, rec->p, rec->size,
          at);
}

static void release_record(worker *w, record *rec)
{
    verify_record(rec, "before free");
    CHECK(ht_heap_free(w->run->heap, 0, rec->p), "free(%p) of a live block failed", rec->p);
    w->counts.ops[HT_OP_FREE]++;
    free(rec);
}

static void *shared_worker(void *argument)
{
    worker *w = argument;
    shared_run *run = w->run;
    current_context.thread = (int)w->index;
    current_context.seed = run->seed;
    current_context.label = "shared heap worker";
    rng r;
    rng_seed(&r, run->seed * 1000003u + w->index);
    ht_heap *heap = run->heap;
    for (uint64_t op = 0; op < run->ops_per_thread; op++) {
        current_context.op = op;
        size_t slot = (size_t)rng_below(&r, SLOT_COUNT);
        record *rec = atomic_exchange(&run->slots[slot], NULL);
        if (rec) {
            if (rng_below(&r, 100) < 65) {
                release_record(w, rec);
                continue;
            }
            verify_record(rec, "before realloc");
            size_t size = thread_random_size(&r, run->max_size_class);
            uint32_t flags = rng_below(&r, 4) == 0 ? HT_HEAP_ZERO_MEMORY : 0;
            uint8_t *p = ht_heap_realloc(heap, flags, rec->p, size);
            w->counts.ops[HT_OP_REALLOC]++;
            CHECK(p != NULL, "realloc(%p, %zu -> %zu) failed", rec->p, rec->size, size);
            size_t kept = rec->size < size ? rec->size : size;
            CHECK(pattern_mismatch(p, rec->pattern, kept) == kept, "realloc lost contents");
            if (flags) {
                size_t at = first_nonzero(p, kept, size);
                CHECK(at == size, "ZERO_MEMORY realloc %zu -> %zu: byte %zu is 0x%02x", rec->size,
                      size, at, p[at]);
            }
            rec->p = p;
            rec->size = size;
        } else {
            size_t size = thread_random_size(&r, run->max_size_class);
            uint32_t flags = rng_below(&r, 8) == 0 ? HT_HEAP_ZERO_MEMORY : 0;
            uint8_t *p = ht_heap_alloc(heap, flags, size);
            w->counts.ops[HT_OP_ALLOC]++;
            CHECK(p != NULL && aligned16(p), "alloc(%zu) = %p", size, (void *)p);
            if (flags) {
                size_t at = first_nonzero(p, 0, size);
                CHECK(at == size, "ZERO_MEMORY alloc(%zu): byte %zu is 0x%02x", size, at, p[at]);
            }
            rec = malloc(sizeof *rec);
            CHECK(rec != NULL, "out of memory");
            rec->p = p;
            rec->size = size;
            rec->pattern = (uint32_t)rng_below(&r, PATTERN_WINDOW);
        }
        size_t usable = ht_heap_size(heap, 0, rec->p);
        CHECK(usable != SIZE_MAX && usable >= rec->size, "size(%p) = %zu for %zu bytes", rec->p,
              usable, rec->size);
        CHECK(ht_heap_requested_size(heap, rec->p) == rec->size, "requested size of %p", rec->p);
        pattern_fill(rec->p, rec->pattern, rec->size);
        record *displaced = atomic_exchange(&run->slots[slot], rec);
        if (displaced)
            release_record(w, displaced);
    }
    return NULL;
}

/* While workers run: whole-heap validate must hold, walk and summary must end. */
static void *observer(void *argument)
{
    shared_run *run = argument;
    current_context.thread = 99;
    current_context.label = "observer";
    current_context.seed = run->seed;
    while (!atomic_load(&run->stop_observer)) {
        CHECK(ht_heap_validate(run->heap, 0, NULL), "validate of a healthy heap in use failed");
        ht_heap_entry entry;
        memset(&entry, 0, sizeof entry);
        uint64_t steps = 0;
        while (ht_heap_walk(run->heap, &entry))
            CHECK(++steps < WALK_LIMIT, "walk does not end");
        ht_heap_summary summary;
        CHECK(ht_heap_summary_get(run->heap, 0, &summary), "summary failed");
        ht_heap_counters counters;
        CHECK(ht_heap_counters_get(run->heap, &counters), "counters failed");
        atomic_fetch_add(&run->observer_rounds, 1);
        usleep(200);
    }
    return NULL;
}

static int compare_records(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)(*(record *const *)a)->p, y = (uintptr_t)(*(record *const *)b)->p;
    return x < y ? -1 : x > y;
}

/* After the workers: the walk shows exactly the blocks left in the array, the summary adds up,
 * the counters equal the operations performed. Then frees everything. */
static void check_and_drain(shared_run *run, op_counts *total, const ht_heap_counters *baseline,
                            bool exact_walk)
{
    ht_heap *heap = run->heap;
    CHECK(ht_heap_validate(heap, 0, NULL), "validate after the workers");
    record **left = malloc(SLOT_COUNT * sizeof *left);
    CHECK(left != NULL, "out of memory");
    size_t count = 0, usable = 0, requested = 0;
    for (size_t i = 0; i < SLOT_COUNT; i++) {
        record *rec = atomic_load(&run->slots[i]);
        if (!rec)
            continue;
        left[count++] = rec;
        verify_record(rec, "after the workers");
        usable += ht_heap_size(heap, 0, rec->p);
        requested += rec->size;
    }
    qsort(left, count, sizeof *left, compare_records);
    if (exact_walk) {
        ht_heap_entry *entries;
        size_t n = walk_collect(heap, &entries);
        size_t busy = 0;
        for (size_t i = 0; i < n; i++) {
            if (!entry_is_busy_block(&entries[i]))
                continue;
            busy++;
            record key = {.p = entries[i].data}, *keyp = &key;
            record **found = bsearch(&keyp, left, count, sizeof *left, compare_records);
            CHECK(found != NULL, "walk shows busy block %p no thread holds", entries[i].data);
            CHECK(entries[i].requested == (*found)->size, "walk: %p requested %zu, block has %zu",
                  entries[i].data, entries[i].requested, (*found)->size);
        }
        CHECK(busy == count, "walk shows %zu busy blocks, %zu are held", busy, count);
        free(entries);
        ht_heap_summary summary;
        summary_read(heap, &summary);
        CHECK(summary.live_blocks == count && summary.allocated == usable,
              "summary: %zu live, %zu allocated; held %zu blocks, %zu usable bytes",
              summary.live_blocks, summary.allocated, count, usable);
        CHECK(summary.requested == requested, "summary requested %zu, held %zu", summary.requested,
              requested);
    }
    ht_heap_counters counters;
    counters_read(heap, &counters);
    for (int op = 0; op < HT_OP_COUNT; op++) {
        uint64_t counted = counters_total(&counters, op) - counters_total(baseline, op);
        CHECK(counted == total->ops[op], "%s: counters say %" PRIu64 ", threads did %" PRIu64,
              op_name(op), counted, total->ops[op]);
        CHECK(counters.counts[op][MEMORY_FROM_INVALID] == baseline->counts[op][MEMORY_FROM_INVALID],
              "%s: INVALID counted on a healthy run", op_name(op));
        CHECK(counters.counts[op][MEMORY_FROM_SEGMENT_HEAP] == 0, "SEGMENT_HEAP counted");
    }
    for (size_t i = 0; i < count; i++) {
        CHECK(ht_heap_free(heap, 0, left[i]->p), "free at the end");
        total->ops[HT_OP_FREE]++;
        free(left[i]);
    }
    for (size_t i = 0; i < SLOT_COUNT; i++)
        atomic_store(&run->slots[i], NULL);
    free(left);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate after draining");
}

/* Runs the shared-heap stress on heap; returns the operations performed. */
static op_counts run_shared(ht_heap *heap, unsigned threads, uint64_t ops, unsigned max_class,
                            bool with_observer, bool exact_walk)
{
    shared_run *run = calloc(1, sizeof *run);
    CHECK(run != NULL, "out of memory");
    run->heap = heap;
    run->seed = options.seed;
    run->ops_per_thread = ops / threads + 1;
    run->max_size_class = max_class;
    ht_heap_counters baseline;
    counters_read(heap, &baseline);
    worker workers[MAX_THREADS];
    for (unsigned t = 0; t < threads; t++) {
        workers[t] = (worker){.run = run, .index = t};
        CHECK(pthread_create(&workers[t].thread, NULL, shared_worker, &workers[t]) == 0, "thread");
    }
    pthread_t watcher;
    if (with_observer)
        CHECK(pthread_create(&watcher, NULL, observer, run) == 0, "observer thread");
    op_counts total = {{0}};
    for (unsigned t = 0; t < threads; t++) {
        CHECK(pthread_join(workers[t].thread, NULL) == 0, "join");
        for (int op = 0; op < HT_OP_COUNT; op++)
            total.ops[op] += workers[t].counts.ops[op];
    }
    if (with_observer) {
        atomic_store(&run->stop_observer, true);
        CHECK(pthread_join(watcher, NULL) == 0, "join observer");
    }
    CHECK(atomic_load(&worker_failures) == 0, "a worker failed");
    check_and_drain(run, &total, &baseline, exact_walk);
    if (options.verbose)
        printf("  %u threads: %" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64 " reallocs, %" PRIu64
               " observer rounds\n",
               threads, total.ops[HT_OP_ALLOC], total.ops[HT_OP_FREE], total.ops[HT_OP_REALLOC],
               (uint64_t)atomic_load(&run->observer_rounds));
    free(run);
    return total;
}

static void test_shared_heap(void **state)
{
    (void)state;
    install_crash_report();
    context_set("shared heap", options.seed);
    ht_heap *heap = heap_create_checked(0, 0, 0);
    run_shared(heap, options.threads, options.ops, 2, true, true);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0 && summary.allocated == 0, "heap not empty after draining");
    CHECK(ht_heap_destroy(heap), "destroy");
}

static void test_shared_heap_lfh_everywhere(void **state)
{
    (void)state;
    install_crash_report();
    context_set("shared heap, LFH 2, small blocks", options.seed + 1);
    ht_heap *heap = heap_create_checked(0, 0, 0);
    set_compatibility(heap, 2);
    run_shared(heap, options.threads, options.ops, 0, true, true);
    CHECK(ht_heap_destroy(heap), "destroy");
}

/* Waves of short-lived threads: blocks outlive the threads that cached or freed them. */
static void test_short_lived_threads(void **state)
{
    (void)state;
    install_crash_report();
    context_set("short-lived threads", options.seed + 2);
    ht_heap *heap = heap_create_checked(0, 0, 0);
    shared_run *run = calloc(1, sizeof *run);
    CHECK(run != NULL, "out of memory");
    run->heap = heap;
    run->seed = options.seed + 2;
    run->max_size_class = 1;
    unsigned waves = 20, per_wave = options.threads < 2 ? 2 : options.threads;
    run->ops_per_thread = options.ops / (waves * per_wave) + 1;
    ht_heap_counters baseline;
    counters_read(heap, &baseline);
    op_counts total = {{0}};
    for (unsigned wave = 0; wave < waves; wave++) {
        worker workers[MAX_THREADS];
        for (unsigned t = 0; t < per_wave && t < MAX_THREADS; t++) {
            workers[t] = (worker){.run = run, .index = wave * 100 + t};
            CHECK(pthread_create(&workers[t].thread, NULL, shared_worker, &workers[t]) == 0,
                  "thread");
        }
        for (unsigned t = 0; t < per_wave && t < MAX_THREADS; t++) {
            CHECK(pthread_join(workers[t].thread, NULL) == 0, "join");
            for (int op = 0; op < HT_OP_COUNT; op++)
                total.ops[op] += workers[t].counts.ops[op];
        }
        CHECK(ht_heap_validate(heap, 0, NULL), "validate after wave %u", wave);
        run->seed += 7;
    }
    check_and_drain(run, &total, &baseline, true);
    ht_heap_summary summary;
    summary_read(heap, &summary);
    CHECK(summary.live_blocks == 0, "live blocks %zu", summary.live_blocks);
    CHECK(ht_heap_destroy(heap), "destroy");
    free(run);
}

/* ---- private heaps ------------------------------------------------------------------------ */

typedef struct private_arg {
    unsigned index;
    uint64_t ops;
    uint32_t flags;  /* NO_SERIALIZE, or 0 for a serialized heap with a front end */
    unsigned cycles; /* heaps created and destroyed in turn */
    pthread_t thread;
} private_arg;

typedef struct private_block {
    uint8_t *p;
    size_t size;
    uint32_t pattern;
} private_block;

/* A single-threaded model on a heap of this thread: contents and exact counters. */
static void *private_worker(void *argument)
{
    private_arg *a = argument;
    current_context.thread = (int)a->index;
    current_context.label = "private heap";
    current_context.seed = options.seed;
    rng r;
    rng_seed(&r, options.seed * 7919u + a->index);
    enum { LIVE = 256 };
    private_block *blocks = malloc(LIVE * sizeof *blocks);
    CHECK(blocks != NULL, "out of memory");
    uint64_t ops_per_cycle = a->ops / a->cycles + 1;
    bool front_end = !(a->flags & HT_HEAP_NO_SERIALIZE);
    unsigned any = SRC_BACKEND | (front_end ? SRC_FRONTEND : 0);
    for (unsigned cycle = 0; cycle < a->cycles; cycle++) {
        ht_heap *heap = heap_create_checked(a->flags, 0, 0);
        ht_heap_counters counters;
        counters_read(heap, &counters);
        size_t count = 0;
        for (uint64_t op = 0; op < ops_per_cycle; op++) {
            current_context.op = op;
            uint64_t x = rng_below(&r, 100);
            if (count == 0 || (x < 45 && count < LIVE)) {
                size_t size = thread_random_size(&r, 1);
                uint8_t *p = ht_heap_alloc(heap, 0, size);
                CHECK(p != NULL, "alloc(%zu)", size);
                EXPECT_COUNTED(heap, &counters, HT_OP_ALLOC, any, "private alloc(%zu)", size);
                blocks[count] = (private_block){p, size, (uint32_t)rng_below(&r, PATTERN_WINDOW)};
                pattern_fill(p, blocks[count].pattern, size);
                count++;
            } else if (x < 80) {
                size_t i = (size_t)rng_below(&r, count);
                CHECK(pattern_mismatch(blocks[i].p, blocks[i].pattern, blocks[i].size) ==
                          blocks[i].size,
                      "private block %p changed", (void *)blocks[i].p);
                CHECK(ht_heap_free(heap, 0, blocks[i].p), "free");
                EXPECT_COUNTED(heap, &counters, HT_OP_FREE, any, "private free");
                blocks[i] = blocks[--count];
            } else {
                size_t i = (size_t)rng_below(&r, count);
                size_t size = thread_random_size(&r, 1);
                uint8_t *p = ht_heap_realloc(heap, 0, blocks[i].p, size);
                CHECK(p != NULL, "realloc");
                EXPECT_COUNTED(heap, &counters, HT_OP_REALLOC, any, "private realloc");
                size_t kept = blocks[i].size < size ? blocks[i].size : size;
                CHECK(pattern_mismatch(p, blocks[i].pattern, kept) == kept, "realloc lost data");
                blocks[i].p = p;
                blocks[i].size = size;
                pattern_fill(p, blocks[i].pattern, size);
            }
        }
        CHECK(ht_heap_validate(heap, 0, NULL), "validate private heap");
        ht_heap_summary summary;
        summary_read(heap, &summary);
        CHECK(summary.live_blocks == count, "private heap: %zu live, model %zu",
              summary.live_blocks, count);
        ht_heap_entry *entries;
        size_t n = walk_collect(heap, &entries), busy = 0;
        for (size_t k = 0; k < n; k++)
            busy += entry_is_busy_block(&entries[k]);
        free(entries);
        CHECK(busy == count, "private heap walk: %zu busy, model %zu", busy, count);
        /* Half the time the heap is destroyed with its blocks still in it. */
        if (cycle % 2 == 0) {
            for (size_t i = 0; i < count; i++)
                CHECK(ht_heap_free(heap, 0, blocks[i].p), "free");
        }
        CHECK(ht_heap_destroy(heap), "destroy private heap");
    }
    free(blocks);
    return NULL;
}

static void run_private(uint32_t flags, unsigned cycles)
{
    private_arg args[MAX_THREADS];
    unsigned threads = options.threads > MAX_THREADS ? MAX_THREADS : options.threads;
    for (unsigned t = 0; t < threads; t++) {
        args[t] = (private_arg){.index = t,
                                .ops = options.ops / threads + 1,
                                .flags = flags,
                                .cycles = cycles};
        CHECK(pthread_create(&args[t].thread, NULL, private_worker, &args[t]) == 0, "thread");
    }
    for (unsigned t = 0; t < threads; t++)
        CHECK(pthread_join(args[t].thread, NULL) == 0, "join");
    CHECK(atomic_load(&worker_failures) == 0, "a worker failed");
}

static void test_private_no_serialize_heaps(void **state)
{
    (void)state;
    install_crash_report();
    context_set("private NO_SERIALIZE heaps", options.seed);
    run_private(HT_HEAP_NO_SERIALIZE, 2);
}

static void test_private_heaps_created_and_destroyed(void **state)
{
    (void)state;
    install_crash_report();
    context_set("private heaps, create/destroy churn", options.seed);
    run_private(0, 20);
}

/* ---- the process heap -------------------------------------------------------------------- */

static void test_process_heap(void **state)
{
    (void)state;
    install_crash_report();
    context_set("process heap", options.seed + 3);
    ht_heap *heap = ht_process_heap();
    CHECK(heap != NULL && heap == ht_process_heap(), "process heap");
    ht_heap_summary before;
    summary_read(heap, &before);
    run_shared(heap, options.threads, options.ops / 2, 1, true, false);
    ht_heap_summary after;
    summary_read(heap, &after);
    CHECK(after.live_blocks == before.live_blocks && after.allocated == before.allocated,
          "process heap: %zu live blocks (%zu bytes) before, %zu (%zu) after", before.live_blocks,
          before.allocated, after.live_blocks, after.allocated);
    CHECK(ht_heap_validate(heap, 0, NULL), "validate process heap");
}

/* ---- fork --------------------------------------------------------------------------------- */

typedef struct hammer_arg {
    ht_heap *heap;
    atomic_bool *stop;
    unsigned index;
    pthread_t thread;
} hammer_arg;

static void *hammer(void *argument)
{
    hammer_arg *a = argument;
    current_context.thread = (int)a->index;
    rng r;
    rng_seed(&r, options.seed + a->index);
    void *held[16] = {0};
    while (!atomic_load(a->stop)) {
        unsigned i = (unsigned)rng_below(&r, 16);
        ht_heap *heap = i % 2 ? a->heap : ht_process_heap();
        if (held[i]) {
            CHECK(ht_heap_free(heap, 0, held[i]), "free");
            held[i] = NULL;
        } else {
            held[i] = ht_heap_alloc(heap, 0, thread_random_size(&r, 2));
            CHECK(held[i] != NULL, "alloc");
        }
    }
    for (unsigned i = 0; i < 16; i++)
        if (held[i])
            CHECK(ht_heap_free(i % 2 ? a->heap : ht_process_heap(), 0, held[i]), "free");
    return NULL;
}

/* In the child of a fork taken while other threads allocate, both heaps still work (no lock
 * left held by a thread that does not exist in the child). */
static int child_uses_heaps(ht_heap *shared)
{
    alarm(20); /* a deadlock ends as SIGALRM */
    ht_heap *heaps[2] = {ht_process_heap(), shared};
    rng r;
    rng_seed(&r, 99);
    for (unsigned round = 0; round < 200; round++) {
        for (unsigned h = 0; h < 2; h++) {
            size_t size = thread_random_size(&r, 2);
            uint8_t *p = ht_heap_alloc(heaps[h], 0, size);
            if (!p)
                return 10;
            memset(p, 0x6B, size);
            uint8_t *q = ht_heap_realloc(heaps[h], 0, p, size + 1000);
            if (!q || q[0] != 0x6B)
                return 11;
            if (!ht_heap_free(heaps[h], 0, q))
                return 12;
        }
    }
    if (!ht_heap_validate(heaps[0], 0, NULL))
        return 13;
    if (!ht_heap_validate(heaps[1], 0, NULL))
        return 15;
    ht_heap *fresh = ht_heap_create(0, 0, 0);
    if (!fresh || !ht_heap_alloc(fresh, 0, 100) || !ht_heap_destroy(fresh))
        return 14;
    return 0;
}

static void test_fork_while_threads_allocate(void **state)
{
    (void)state;
    install_crash_report();
    context_set("fork", options.seed);
    ht_heap *shared = heap_create_checked(0, 0, 0);
    atomic_bool stop = false;
    hammer_arg args[MAX_THREADS];
    unsigned threads = options.threads;
    for (unsigned t = 0; t < threads; t++) {
        args[t] = (hammer_arg){.heap = shared, .stop = &stop, .index = t};
        CHECK(pthread_create(&args[t].thread, NULL, hammer, &args[t]) == 0, "thread");
    }
    usleep(10000);
    for (unsigned i = 0; i < 20; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0)
            _exit(child_uses_heaps(shared));
        int status = 0;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "fork %u: child %s %d (SIGALRM = %d: a heap lock held at fork time; 13/15: "
              "validate of the process/shared heap failed in the child)",
              i, WIFSIGNALED(status) ? "killed by signal" : "exited with",
              WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), SIGALRM);
        usleep(1000);
    }
    atomic_store(&stop, true);
    for (unsigned t = 0; t < threads; t++)
        CHECK(pthread_join(args[t].thread, NULL) == 0, "join");
    CHECK(atomic_load(&worker_failures) == 0, "a worker failed");
    CHECK(ht_heap_validate(shared, 0, NULL) && ht_heap_validate(ht_process_heap(), 0, NULL),
          "validate after the forks");
    CHECK(ht_heap_destroy(shared), "destroy");
}

int main(int argc, char **argv)
{
    parse_options(argc, argv, &options, usage);
    if (options.threads > MAX_THREADS)
        options.threads = MAX_THREADS;
    printf("test_heap_threads: seed %" PRIu64 ", %u threads, %" PRIu64 " ops per stress test\n",
           options.seed, options.threads, options.ops);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_heap),
        cmocka_unit_test(test_shared_heap_lfh_everywhere),
        cmocka_unit_test(test_short_lived_threads),
        cmocka_unit_test(test_private_no_serialize_heaps),
        cmocka_unit_test(test_private_heaps_created_and_destroyed),
        cmocka_unit_test(test_process_heap),
        cmocka_unit_test(test_fork_while_threads_allocate),
    };
    return cmocka_run_group_tests_name("heap_threads", tests, NULL, NULL);
}
