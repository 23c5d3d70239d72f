/* test_stacks.c — stacks against known call chains. The cached-rule unwinder gives exactly
 * libunwind's frames (through the C library's frames without frame pointers, in a thread, in
 * deep recursion, from a signal handler, from a function that realigns its stack), and does so
 * by itself rather than by falling back; each unwinder finds the chain of functions that made
 * an allocation; FREE events carry a stack only with free_stacks, or when the heap refused the
 * free (INVALID); a REALLOC carries one. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>

#include "trace/trace_internal.h"
#include "trace_test.h"

#define MAX_FRAMES 128
#define NOINLINE __attribute__((noinline))
/* Keeps a call from being a tail call or being merged. */
#define KEEP() __asm__ volatile("" ::: "memory")

/* ---- the unwinders side by side, without a session ---- */

typedef int (*backtrace_fn)(void **, int);
static backtrace_fn libunwind;

typedef struct sample {
    int rules_n, libunwind_n;
    uint64_t rules[MAX_FRAMES];
    void *raw[MAX_FRAMES];
} sample;

/* Both unwinders from the same frame: their first frames return into this function at two
 * different calls, the rest must be the same. */
static NOINLINE void probe(sample *s)
{
    s->rules_n = hti_unwind_backtrace(s->rules, MAX_FRAMES);
    KEEP();
    s->libunwind_n = libunwind(s->raw, MAX_FRAMES);
    KEEP();
}

static void expect_same(const sample *s, const char *where)
{
    if (s->rules_n != s->libunwind_n)
        fail_msg("%s: %d frames by rules, %d by libunwind", where, s->rules_n, s->libunwind_n);
    for (int i = 1; i < s->rules_n; i++)
        if (s->rules[i] != (uint64_t)(uintptr_t)s->raw[i])
            fail_msg("%s: frame %d is %#" PRIx64 " by rules, %p by libunwind", where, i,
                     s->rules[i], s->raw[i]);
}

static NOINLINE void nested_3(sample *s)
{
    probe(s);
    KEEP();
}

static NOINLINE void nested_2(sample *s)
{
    nested_3(s);
    KEEP();
}

static NOINLINE void nested_1(sample *s)
{
    nested_2(s);
    KEEP();
}

static NOINLINE void recurse(sample *s, int depth)
{
    if (depth)
        recurse(s, depth - 1);
    else
        probe(s);
    KEEP();
}

static sample *compare_sample;

/* Called by qsort: the frames between here and the test are the C library's. */
static int compare_probing(const void *a, const void *b)
{
    if (compare_sample) {
        probe(compare_sample);
        compare_sample = NULL;
    }
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static void *thread_probing(void *arg)
{
    nested_1(arg);
    return NULL;
}

static sample *signal_sample;

static void signal_probing(int signal_number)
{
    (void)signal_number;
    probe(signal_sample);
}

/* A 64-byte aligned local makes the compiler realign the stack: a frame whose CFA is an
 * expression, which the rules leave to libunwind. */
static NOINLINE void realigned(sample *s)
{
    _Alignas(64) volatile char buffer[64];
    buffer[0] = 1;
    probe(s);
    KEEP();
    (void)buffer[0];
}

static void load_libunwind(void)
{
    if (libunwind)
        return;
    void *library = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
    assert_non_null(library);
    libunwind = (backtrace_fn)dlsym(library, "unw_backtrace");
    assert_non_null(libunwind);
    assert_int_equal(hti_unwind_init(), 0);
}

static void test_rules_are_libunwind(void **state)
{
    (void)state;
    load_libunwind();
    static sample s;
    for (int round = 0; round < 2; round++) { /* rules made, then rules found */
        memset(&s, 0, sizeof s);
        nested_1(&s);
        assert_true(s.rules_n > 4);
        expect_same(&s, "nested calls");

        memset(&s, 0, sizeof s);
        recurse(&s, 200); /* deeper than MAX_FRAMES */
        assert_int_equal(s.rules_n, MAX_FRAMES);
        expect_same(&s, "recursion");

        memset(&s, 0, sizeof s);
        int numbers[64];
        for (int i = 0; i < 64; i++)
            numbers[i] = (i * 37) % 64;
        compare_sample = &s;
        qsort(numbers, 64, sizeof numbers[0], compare_probing);
        assert_true(s.rules_n > 4);
        expect_same(&s, "qsort callback");

        memset(&s, 0, sizeof s);
        pthread_t thread;
        assert_int_equal(pthread_create(&thread, NULL, thread_probing, &s), 0);
        pthread_join(thread, NULL);
        assert_true(s.rules_n > 4);
        expect_same(&s, "thread");
    }
    hti_unwind_forget();
    memset(&s, 0, sizeof s);
    nested_1(&s);
    expect_same(&s, "after the rules were forgotten");
}

/* Where the rules do not go, they say so, and never give frames of their own. */
static void test_rules_refuse_what_they_do_not_know(void **state)
{
    (void)state;
    load_libunwind();
    static sample s;
    memset(&s, 0, sizeof s);
    signal_sample = &s;
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = signal_probing;
    sigemptyset(&action.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &action, &old), 0);
    raise(SIGUSR1);
    sigaction(SIGUSR1, &old, NULL);
    assert_true(s.libunwind_n > 4);
    if (s.rules_n != -ENOENT)
        expect_same(&s, "signal handler");

    memset(&s, 0, sizeof s);
    realigned(&s);
    assert_true(s.libunwind_n > 4);
    if (s.rules_n != -ENOENT)
        expect_same(&s, "realigned frame");
}

/* ---- stacks in traces ---- */

typedef struct chain {
    ht_heap *heap;
    void *block;
    bool allocate; /* in here rather than an argument: no copy of the chain specialised on it */
    /* Return addresses each link sees: the chain expected in every stack. */
    uint64_t into_test, into_first, into_second, into_third_alloc, into_third_free;
} chain;

static NOINLINE void chain_allocate(chain *c)
{
    c->into_third_alloc = (uint64_t)(uintptr_t)__builtin_return_address(0);
    c->block = ht_heap_alloc(c->heap, 0, 48);
    KEEP();
}

static NOINLINE void chain_free(chain *c)
{
    c->into_third_free = (uint64_t)(uintptr_t)__builtin_return_address(0);
    ht_heap_free(c->heap, 0, c->block);
    KEEP();
}

static NOINLINE void chain_third(chain *c)
{
    c->into_second = (uint64_t)(uintptr_t)__builtin_return_address(0);
    if (c->allocate)
        chain_allocate(c);
    else
        chain_free(c);
    KEEP();
}

static NOINLINE void chain_second(chain *c)
{
    c->into_first = (uint64_t)(uintptr_t)__builtin_return_address(0);
    chain_third(c);
    KEEP();
}

static NOINLINE void chain_first(chain *c)
{
    c->into_test = (uint64_t)(uintptr_t)__builtin_return_address(0);
    chain_second(c);
    KEEP();
}

/* The frames hold, one after the other, the return addresses into chain_third (from
 * chain_allocate or chain_free: `third`), chain_second, chain_first and the test. */
static bool has_chain(const uint64_t *frames, uint32_t depth, uint64_t third, const chain *c)
{
    for (uint32_t i = 0; i + 3 < depth; i++)
        if (frames[i] == third && frames[i + 1] == c->into_second &&
            frames[i + 2] == c->into_first && frames[i + 3] == c->into_test)
            return true;
    return false;
}

typedef struct stack_count {
    int allocs, allocs_with_chain;
    int frees, frees_with_stack, frees_with_chain;
    int invalid_frees, invalid_with_chain;
    int reallocs, reallocs_with_stack;
} stack_count;

static const int rounds = 200;

/* Records rounds allocations and frees through the chain, one double free through it, and one
 * reallocation, with the given unwinder and free_stacks, and counts what the trace says. */
static stack_count record_chain(ht_trace_unwinder unwinder, bool free_stacks, const char *name)
{
    char path[256];
    temp_path(path, sizeof path, name);
    chain c = {ht_heap_create(0, 0, 0), NULL, false, 0, 0, 0, 0, 0};
    assert_non_null(c.heap);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.stack_depth = 32;
    o.unwinder = unwinder;
    o.free_stacks = free_stacks;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    /* One call site (a volatile count: the loop is not unrolled into two): allocate, free, ...
     * and a last free of the same block again, a double free (Source INVALID). */
    for (volatile int i = 0; i <= 2 * rounds; i++) {
        c.allocate = i % 2 == 0 && i < 2 * rounds;
        chain_first(&c);
    }
    void *grown = ht_heap_realloc(c.heap, 0, ht_heap_alloc(c.heap, 0, 16), 4096);
    assert_non_null(grown);
    ht_heap_free(c.heap, 0, grown);
    assert_int_equal(ht_trace_stop(), 0);

    stack_count count;
    memset(&count, 0, sizeof count);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    static ht_event e[4096];
    long n = ht_reader_read(r, e, 4096);
    assert_true(n > 2 * rounds && n < 4096);
    for (long i = 0; i < n; i++) {
        const uint64_t *frames = NULL;
        uint32_t depth = 0;
        if (e[i].stack_id)
            assert_true(ht_reader_stack(r, e[i].stack_id, &frames, &depth));
        uint64_t third = e[i].kind == HT_EVENT_FREE ? c.into_third_free : c.into_third_alloc;
        bool chained = e[i].stack_id && has_chain(frames, depth, third, &c);
        if (e[i].kind == HT_EVENT_ALLOC) {
            count.allocs++;
            count.allocs_with_chain += chained;
        } else if (e[i].kind == HT_EVENT_FREE && e[i].u.free.Source == MEMORY_FROM_INVALID) {
            count.invalid_frees++;
            count.invalid_with_chain += chained;
        } else if (e[i].kind == HT_EVENT_FREE) {
            count.frees++;
            count.frees_with_stack += e[i].stack_id != 0;
            count.frees_with_chain += chained;
        } else if (e[i].kind == HT_EVENT_REALLOC) {
            count.reallocs++;
            count.reallocs_with_stack += e[i].stack_id != 0;
        }
    }
    ht_reader_close(r);
    ht_heap_destroy(c.heap);
    unlink(path);
    return count;
}

static void expect_chain_stacks(ht_trace_unwinder unwinder, const char *name)
{
    stack_count by_default = record_chain(unwinder, false, name);
    assert_int_equal(by_default.allocs, rounds + 1);
    assert_int_equal(by_default.allocs_with_chain, rounds);
    assert_int_equal(by_default.frees, rounds + 1);
    assert_int_equal(by_default.frees_with_stack, 0); /* matched to their allocation instead */
    assert_int_equal(by_default.invalid_frees, 1);
    assert_int_equal(by_default.invalid_with_chain, 1); /* nothing to match: its own stack */
    assert_int_equal(by_default.reallocs, 1);
    assert_int_equal(by_default.reallocs_with_stack, 1);

    stack_count with_frees = record_chain(unwinder, true, name);
    assert_int_equal(with_frees.allocs_with_chain, rounds);
    assert_int_equal(with_frees.frees, rounds + 1);
    assert_int_equal(with_frees.frees_with_stack, rounds + 1);
    assert_int_equal(with_frees.frees_with_chain, rounds);
    assert_int_equal(with_frees.invalid_with_chain, 1);
}

static void test_chain_rules(void **state)
{
    (void)state;
    expect_chain_stacks(HT_TRACE_UNWIND_DEFAULT, "stacks-rules");
}

static void test_chain_libunwind(void **state)
{
    (void)state;
    expect_chain_stacks(HT_TRACE_UNWIND_LIBUNWIND, "stacks-libunwind");
}

static void test_chain_frame_pointers(void **state)
{
    (void)state;
    expect_chain_stacks(HT_TRACE_UNWIND_FRAME_POINTER, "stacks-fp");
}

/* ---- the same stacks from every path through the rules ---- */

static ht_heap *workload_heap;
static int workload_sorts;

static NOINLINE void allocate_and_free(void)
{
    ht_heap_free(workload_heap, 0, ht_heap_alloc(workload_heap, 0, 24));
    KEEP();
}

static int compare_allocating(const void *a, const void *b)
{
    if (workload_sorts-- > 0)
        allocate_and_free();
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

static NOINLINE void deep(int depth)
{
    if (depth)
        deep(depth - 1);
    else
        allocate_and_free();
    KEEP();
}

static NOINLINE void realigned_allocating(void)
{
    _Alignas(64) volatile char buffer[64];
    buffer[0] = 1;
    allocate_and_free();
    KEEP();
    (void)buffer[0];
}

static void signal_allocating(int signal_number)
{
    (void)signal_number;
    allocate_and_free();
}

static void *thread_allocating(void *arg)
{
    (void)arg;
    allocate_and_free();
    deep(20);
    return NULL;
}

static void run_workload(void)
{
    allocate_and_free();
    deep(150);
    int numbers[32];
    for (int i = 0; i < 32; i++)
        numbers[i] = (i * 13) % 32;
    workload_sorts = 3;
    qsort(numbers, 32, sizeof numbers[0], compare_allocating);
    realigned_allocating();
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = signal_allocating;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR2, &action, &old);
    raise(SIGUSR2);
    sigaction(SIGUSR2, &old, NULL);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, thread_allocating, NULL), 0);
    pthread_join(thread, NULL);
}

#define WORKLOAD_ALLOCS 16

/* The frames of every ALLOC of the workload, in order, recorded with unwinder. */
static int record_workload(ht_trace_unwinder unwinder, uint64_t frames[][MAX_FRAMES],
                           uint32_t *depths)
{
    char path[256];
    temp_path(path, sizeof path, "stacks-workload");
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.stack_depth = MAX_FRAMES;
    o.unwinder = unwinder;
    o.no_rundown = true;
    assert_int_equal(ht_trace_start(&o), 0);
    run_workload();
    assert_int_equal(ht_trace_stop(), 0);
    ht_reader *r = ht_reader_open(path, NULL, 0);
    assert_non_null(r);
    static ht_event e[256];
    long n = ht_reader_read(r, e, 256);
    int allocs = 0;
    for (long i = 0; i < n; i++) {
        if (e[i].kind != HT_EVENT_ALLOC || e[i].u.alloc.HeapHandle != (uintptr_t)workload_heap)
            continue;
        assert_true(allocs < WORKLOAD_ALLOCS);
        const uint64_t *f;
        assert_true(ht_reader_stack(r, e[i].stack_id, &f, &depths[allocs]));
        memcpy(frames[allocs], f, depths[allocs] * sizeof *f);
        allocs++;
    }
    ht_reader_close(r);
    unlink(path);
    return allocs;
}

static void test_traced_stacks_are_libunwind(void **state)
{
    (void)state;
    workload_heap = ht_heap_create(0, 0, 0);
    static const ht_trace_unwinder unwinders[2] = {HT_TRACE_UNWIND_DEFAULT,
                                                   HT_TRACE_UNWIND_LIBUNWIND};
    static uint64_t frames[2][WORKLOAD_ALLOCS][MAX_FRAMES];
    uint32_t depths[2][WORKLOAD_ALLOCS];
    int counts[2];
    /* One call site for both (a volatile count: not unrolled), so the frames above agree. */
    for (volatile int pass = 0; pass < 2; pass++)
        counts[pass] = record_workload(unwinders[pass], frames[pass], depths[pass]);
    uint64_t(*by_rules)[MAX_FRAMES] = frames[0], (*by_libunwind)[MAX_FRAMES] = frames[1];
    uint32_t *rules_depth = depths[0], *libunwind_depth = depths[1];
    int n = counts[0], m = counts[1];
    assert_int_equal(n, 1 + 1 + 3 + 1 + 1 + 2);
    assert_int_equal(n, m);
    for (int i = 0; i < n; i++) {
        assert_true(rules_depth[i] > 3);
        if (rules_depth[i] != libunwind_depth[i])
            fail_msg("allocation %d: %u frames with rules, %u with libunwind", i, rules_depth[i],
                     libunwind_depth[i]);
        for (uint32_t f = 0; f < rules_depth[i]; f++)
            if (by_rules[i][f] != by_libunwind[i][f])
                fail_msg("allocation %d, frame %u: %#" PRIx64 " with rules, %#" PRIx64
                         " with libunwind",
                         i, f, by_rules[i][f], by_libunwind[i][f]);
    }
    ht_heap_destroy(workload_heap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_are_libunwind),
        cmocka_unit_test(test_rules_refuse_what_they_do_not_know),
        cmocka_unit_test(test_chain_rules),
        cmocka_unit_test(test_chain_libunwind),
        cmocka_unit_test(test_chain_frame_pointers),
        cmocka_unit_test(test_traced_stacks_are_libunwind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
