/* test_roundtrip.c — random heap workloads traced and read back: the event stream replayed
 * against the model reproduces exactly the live blocks each heap reports through walk, and the
 * per-Source operation counts equal the heap's own counters. Covers tracing from the start,
 * a late start (rundown), sessions switched on and off, threads, filters, byte sampling and
 * stacks with module records. Arguments: --seed N --ops N --threads N. */
#include <errno.h>
#include <pthread.h>

#include "trace_test.h"

static uint64_t option_seed = 1;
static size_t option_ops = 40000;
static int option_threads = 4;

/* ---- workload ---- */

#define SLOTS 2048

typedef struct workload {
    ht_heap *heaps[4];
    int heap_count;
    void *blocks[SLOTS];
    ht_heap *owner[SLOTS];
    uint64_t rng;
} workload;

static void workload_init(workload *w, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->rng = seed;
    w->heaps[0] = ht_process_heap();
    w->heaps[1] = ht_heap_create(0, 0, 0);
    w->heaps[2] = ht_heap_create(HT_HEAP_NO_SERIALIZE, 0, 0);
    w->heaps[3] = ht_heap_create(0, 64 << 10, 512 << 10); /* fixed size: fills up, fails */
    w->heap_count = 4;
    for (int i = 1; i < 4; i++)
        assert_non_null(w->heaps[i]);
    uint32_t lfh = 2;
    ht_heap_set_information(w->heaps[1], HT_HEAP_COMPATIBILITY_INFORMATION, &lfh, sizeof lfh);
}

static void workload_run(workload *w, size_t ops)
{
    for (size_t n = 0; n < ops; n++) {
        size_t i = (size_t)(rng_next(&w->rng) % SLOTS);
        uint64_t r = rng_next(&w->rng);
        if (!w->blocks[i]) {
            ht_heap *heap = w->heaps[r % (uint64_t)w->heap_count];
            uint32_t flags = (r >> 8) % 8 == 0 ? HT_HEAP_ZERO_MEMORY : 0;
            w->blocks[i] = ht_heap_alloc(heap, flags, random_size(&w->rng));
            w->owner[i] = w->blocks[i] ? heap : NULL;
            continue;
        }
        switch (r % 16) {
        case 0:
        case 1:
        case 2:
        case 3:
        case 4:
        case 5:
        case 6:
        case 7:
        case 8:
            ht_heap_free(w->owner[i], 0, w->blocks[i]);
            w->blocks[i] = NULL;
            break;
        case 9:
            /* A double free: Source INVALID, nothing changes. */
            ht_heap_free(w->owner[i], 0, w->blocks[i]);
            ht_heap_free(w->owner[i], 0, w->blocks[i]);
            w->blocks[i] = NULL;
            break;
        case 10: {
            /* In place only: often impossible, then INVALID. */
            void *p = ht_heap_realloc(w->owner[i], HT_HEAP_REALLOC_IN_PLACE_ONLY, w->blocks[i],
                                      random_size(&w->rng) + 1);
            if (p)
                w->blocks[i] = p;
            break;
        }
        default: {
            void *p = ht_heap_realloc(w->owner[i], 0, w->blocks[i], random_size(&w->rng) + 1);
            if (p)
                w->blocks[i] = p;
            break;
        }
        }
    }
}

static void workload_free_all(workload *w)
{
    for (int i = 0; i < SLOTS; i++)
        if (w->blocks[i]) {
            ht_heap_free(w->owner[i], 0, w->blocks[i]);
            w->blocks[i] = NULL;
        }
}

static void workload_destroy(workload *w)
{
    workload_free_all(w);
    for (int i = 1; i < w->heap_count; i++)
        ht_heap_destroy(w->heaps[i]);
}

static void check_all(model *m, workload *w, ht_heap_counters *before)
{
    for (int i = 0; i < w->heap_count; i++) {
        model_check_heap(m, w->heaps[i]);
        if (before)
            model_check_counters(m, w->heaps[i], &before[i]);
    }
    assert_false(m->unordered);
    assert_int_equal(m->lost, 0);
}

/* ---- tests ---- */

static void test_roundtrip_from_start(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "start");
    workload w;
    workload_init(&w, option_seed);
    ht_heap_counters before[4];
    for (int i = 0; i < w.heap_count; i++)
        assert_true(ht_heap_counters_get(w.heaps[i], &before[i]));
    start_session(path, HT_TRACE_MODE_BLOCK);
    /* A heap created and destroyed inside the session. */
    ht_heap *temporary = ht_heap_create(0, 0, 0);
    for (int i = 0; i < 100; i++)
        ht_heap_alloc(temporary, 0, 64);
    ht_heap_destroy(temporary);
    workload_run(&w, option_ops);
    assert_int_equal(ht_trace_stop(), 0);

    model m;
    model_init(&m);
    model_read_file(&m, path);
    check_all(&m, &w, before);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_int_equal(stats.lost, 0);
    assert_int_equal(stats.events, m.events);
    /* Every kind of Source occurred, and at least ALLOC/FREE/REALLOC were seen. */
    uint64_t sources = 0;
    for (int h = 0; h < MODEL_HEAPS; h++)
        for (int op = 0; op < HT_OP_COUNT; op++)
            for (int s = 1; s < HT_SOURCE_COUNT; s++)
                if (m.counts[h][op][s])
                    sources |= 1u << s;
    assert_true(sources & (1u << MEMORY_FROM_LOWFRAG));
    assert_true(sources & (1u << MEMORY_FROM_MAINPATH));
    assert_true(sources & (1u << MEMORY_FROM_INVALID));
    model_free(&m);
    workload_destroy(&w);
    unlink(path);
}

static void test_late_start_rundown(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "late");
    workload w;
    workload_init(&w, option_seed + 100);
    workload_run(&w, option_ops / 2); /* untraced: the rundown must describe these blocks */
    ht_heap_counters before[4];
    for (int i = 0; i < w.heap_count; i++)
        assert_true(ht_heap_counters_get(w.heaps[i], &before[i]));
    start_session(path, HT_TRACE_MODE_BLOCK);
    workload_run(&w, option_ops / 2);
    assert_int_equal(ht_trace_stop(), 0);
    model m;
    model_init(&m);
    model_read_file(&m, path);
    assert_true(m.rundown_blocks > 0);
    assert_true(m.rundown_heaps >= 4);
    check_all(&m, &w, before);
    model_free(&m);
    workload_destroy(&w);
    unlink(path);
}

static void test_on_off_mid_run(void **state)
{
    (void)state;
    workload w;
    workload_init(&w, option_seed + 200);
    for (int round = 0; round < 3; round++) {
        char path[256];
        char name[32];
        snprintf(name, sizeof name, "onoff%d", round);
        temp_path(path, sizeof path, name);
        workload_run(&w, option_ops / 8); /* off */
        ht_heap_counters before[4];
        for (int i = 0; i < w.heap_count; i++)
            assert_true(ht_heap_counters_get(w.heaps[i], &before[i]));
        start_session(path, HT_TRACE_MODE_BLOCK);
        assert_true(ht_trace_is_active());
        assert_int_equal(ht_trace_start(&(ht_trace_options){.output_fd = -1}), -EBUSY);
        workload_run(&w, option_ops / 8);
        assert_int_equal(ht_trace_stop(), 0);
        assert_false(ht_trace_is_active());
        assert_int_equal(ht_trace_stop(), -ENOENT);
        model m;
        model_init(&m);
        model_read_file(&m, path);
        check_all(&m, &w, before);
        model_free(&m);
        unlink(path);
    }
    workload_destroy(&w);
}

/* ---- threads ---- */

typedef struct handoff {
    pthread_mutex_t lock;
    void *blocks[256];
    ht_heap *heaps[256];
    int count;
} handoff;

typedef struct worker {
    int index;
    workload *shared;
    handoff *queue;
    size_t ops;
} worker;

static void *worker_main(void *arg)
{
    worker *k = arg;
    uint64_t rng = option_seed * 977 + (uint64_t)k->index;
    void *mine[256] = {0};
    ht_heap *owner[256] = {0};
    for (size_t n = 0; n < k->ops; n++) {
        uint64_t r = rng_next(&rng);
        int i = (int)(r % 256);
        ht_heap *heap = k->shared->heaps[(r >> 8) % 2]; /* process heap and the LFH heap */
        if (!mine[i]) {
            mine[i] = ht_heap_alloc(heap, 0, random_size(&rng));
            owner[i] = heap;
        } else if ((r >> 16) % 4 == 0) {
            /* hand the block to another thread, which frees it */
            pthread_mutex_lock(&k->queue->lock);
            if (k->queue->count < 256) {
                k->queue->blocks[k->queue->count] = mine[i];
                k->queue->heaps[k->queue->count++] = owner[i];
                mine[i] = NULL;
            }
            pthread_mutex_unlock(&k->queue->lock);
        } else if ((r >> 16) % 4 == 1) {
            void *p = ht_heap_realloc(owner[i], 0, mine[i], random_size(&rng) + 1);
            if (p)
                mine[i] = p;
        } else {
            ht_heap_free(owner[i], 0, mine[i]);
            mine[i] = NULL;
        }
        if ((r >> 24) % 8 == 0) {
            pthread_mutex_lock(&k->queue->lock);
            if (k->queue->count) {
                k->queue->count--;
                ht_heap_free(k->queue->heaps[k->queue->count], 0,
                             k->queue->blocks[k->queue->count]);
            }
            pthread_mutex_unlock(&k->queue->lock);
        }
    }
    for (int i = 0; i < 256; i++)
        if (mine[i] && i % 2)
            ht_heap_free(owner[i], 0, mine[i]); /* half stay live */
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "threads");
    workload w;
    workload_init(&w, option_seed + 300);
    ht_heap_counters before[4];
    for (int i = 0; i < w.heap_count; i++)
        assert_true(ht_heap_counters_get(w.heaps[i], &before[i]));
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.buffer_size = 128 << 10; /* small: threads wait for the writer now and then */
    assert_int_equal(ht_trace_start(&o), 0);
    handoff queue = {.lock = PTHREAD_MUTEX_INITIALIZER};
    pthread_t threads[16];
    worker workers[16];
    int count = option_threads > 16 ? 16 : option_threads;
    for (int i = 0; i < count; i++) {
        workers[i] = (worker){i, &w, &queue, option_ops};
        assert_int_equal(pthread_create(&threads[i], NULL, worker_main, &workers[i]), 0);
    }
    for (int i = 0; i < count; i++)
        pthread_join(threads[i], NULL);
    assert_int_equal(ht_trace_stop(), 0);
    model m;
    model_init(&m);
    model_read_file(&m, path);
    check_all(&m, &w, before);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_int_equal(stats.lost, 0);
    assert_true(stats.threads >= (uint64_t)count);
    for (int i = 0; i < queue.count; i++)
        ht_heap_free(queue.heaps[i], 0, queue.blocks[i]);
    model_free(&m);
    workload_destroy(&w);
    unlink(path);
}

/* ---- filters and sampling ---- */

static void test_filters(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "filters");
    ht_heap *a = ht_heap_create(0, 0, 0), *b = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.heap = a;
    o.min_size = 100;
    o.max_size = 200;
    o.event_mask = HT_EVENT_BIT(HT_EVENT_ALLOC);
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    void *p[300];
    for (int i = 0; i < 300; i++)
        p[i] = ht_heap_alloc(i % 2 ? a : b, 0, (size_t)i);
    for (int i = 0; i < 300; i++)
        ht_heap_free(i % 2 ? a : b, 0, p[i]);
    assert_int_equal(ht_trace_stop(), 0);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    assert_int_equal(ht_reader_info(r)->heap_filter, (uint64_t)(uintptr_t)a);
    ht_event e[512];
    long n = ht_reader_read(r, e, 512);
    /* odd sizes 101..199 on heap a: 50 allocations */
    assert_int_equal(n, 50);
    for (long i = 0; i < n; i++) {
        assert_int_equal(e[i].kind, HT_EVENT_ALLOC);
        assert_int_equal(e[i].u.alloc.HeapHandle, (uint64_t)(uintptr_t)a);
        assert_true(e[i].u.alloc.Size >= 100 && e[i].u.alloc.Size <= 200);
    }
    ht_reader_close(r);
    ht_heap_destroy(a);
    ht_heap_destroy(b);
    unlink(path);
}

static void test_sampling(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "sample");
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.sample_interval = 4096;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    const int count = 200000;
    for (int i = 0; i < count; i++) {
        void *p = ht_heap_alloc(heap, 0, 64);
        ht_heap_free(heap, 0, p);
    }
    void *big = ht_heap_alloc(heap, 0, 1 << 20); /* far above the interval: always sampled */
    ht_heap_free(heap, 0, big);
    assert_int_equal(ht_trace_stop(), 0);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    assert_int_equal(ht_reader_info(r)->sample_interval, 4096);
    static ht_event e[1024];
    long n;
    double estimate = 0;
    uint64_t samples = 0, frees = 0;
    bool saw_big = false;
    while ((n = ht_reader_read(r, e, 1024)) > 0)
        for (long i = 0; i < n; i++) {
            if (e[i].kind == HT_EVENT_ALLOC) {
                assert_true(e[i].flags & HT_EVENT_FLAG_SAMPLED);
                if (e[i].u.alloc.Size == 64) {
                    estimate += e[i].weight;
                    samples++;
                } else {
                    saw_big = true;
                    assert_true(e[i].weight < 1.001);
                }
            } else if (e[i].kind == HT_EVENT_FREE) {
                frees++;
            }
        }
    assert_int_equal(n, 0);
    ht_reader_close(r);
    /* p = 1 - exp(-64/4096) ~ 1.55%: ~3100 samples; the weighted count estimates 200000. */
    assert_true(samples > 2000 && samples < 4500);
    assert_true(estimate > count * 0.85 && estimate < count * 1.15);
    assert_true(saw_big);
    assert_int_equal(frees, (uint64_t)count + 1); /* frees are never sampled */
    ht_heap_destroy(heap);
    unlink(path);
}

/* ---- stacks ---- */

static __attribute__((noinline)) void *allocate_here(ht_heap *heap, size_t size)
{
    void *p = ht_heap_alloc(heap, 0, size);
    __asm__ volatile("" ::: "memory");
    return p;
}

static void run_stacks(ht_trace_unwinder unwinder, const char *name)
{
    char path[256];
    temp_path(path, sizeof path, name);
    ht_heap *heap = ht_heap_create(0, 0, 0); /* before the session: no HEAP_CREATE event */
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.stack_depth = 16;
    o.unwinder = unwinder;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    for (int i = 0; i < 1000; i++)
        ht_heap_free(heap, 0, allocate_here(heap, 32));
    assert_int_equal(ht_trace_stop(), 0);
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    assert_true(stats.stacks >= 1 && stats.stacks < 50); /* deduplicated */

    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    assert_true(ht_reader_module_count(r) > 0);
    bool found_module = false;
    for (size_t i = 0; i < ht_reader_module_count(r); i++)
        if (ht_reader_module(r, i)->BuildIdSize > 0)
            found_module = true;
    assert_true(found_module);
    static ht_event e[4096];
    long n = ht_reader_read(r, e, 4096);
    assert_true(n >= 2000 && n < 4096);
    uint64_t here = (uint64_t)(uintptr_t)allocate_here;
    int resolved = 0, blocks = 0;
    for (long i = 0; i < n; i++) {
        /* Stacks at allocations only: a free is matched to its allocation by address. */
        if (e[i].kind == HT_EVENT_FREE) {
            assert_int_equal(e[i].stack_id, 0);
            blocks++;
            continue;
        }
        assert_true(e[i].stack_id != 0);
        const uint64_t *frames;
        uint32_t depth;
        assert_true(ht_reader_stack(r, e[i].stack_id, &frames, &depth));
        assert_true(depth > 1 && depth <= 16);
        if (e[i].kind != HT_EVENT_ALLOC && e[i].kind != HT_EVENT_FREE)
            continue;
        blocks++;
        if (e[i].kind != HT_EVENT_ALLOC)
            continue;
        /* one frame returns into allocate_here, and it lies in a known module */
        for (uint32_t f = 0; f < depth; f++)
            if (frames[f] > here && frames[f] < here + 256) {
                assert_non_null(ht_reader_module_find(r, frames[f]));
                resolved++;
                break;
            }
    }
    assert_int_equal(blocks, 2000);
    assert_int_equal(resolved, 1000);
    ht_reader_close(r);
    ht_heap_destroy(heap);
    unlink(path);
}

static void test_stacks_frame_pointers(void **state)
{
    (void)state;
    run_stacks(HT_TRACE_UNWIND_FRAME_POINTER, "stacks-fp");
}

static void test_stacks_libunwind(void **state)
{
    (void)state;
    run_stacks(HT_TRACE_UNWIND_LIBUNWIND, "stacks-unw");
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--seed"))
            option_seed = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--ops"))
            option_ops = strtoull(argv[i + 1], NULL, 0);
        else if (!strcmp(argv[i], "--threads"))
            option_threads = atoi(argv[i + 1]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_from_start),
        cmocka_unit_test(test_late_start_rundown),
        cmocka_unit_test(test_on_off_mid_run),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_sampling),
        cmocka_unit_test(test_stacks_frame_pointers),
        cmocka_unit_test(test_stacks_libunwind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
