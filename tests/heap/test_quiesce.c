/* test_quiesce.c — the wait a session's start makes for heap operations that read the trace
 * switch as off and are still before their effect (src/heap/thread.c, hti_heap_quiesce; the
 * rule is FORMAT.md §13 step 3). A thread held inside the bracket of such an operation makes the
 * wait last until it leaves (or give up at the limit, naming it late); a thread outside, or the
 * waiting thread's own bracket, costs nothing; threads freeing LFH slots and large blocks as
 * fast as they can never hold the wait for long. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "heap/heap_internal.h"
#include "heaptrail/heap.h"

#define MS 1000000ull

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec pause = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&pause, NULL);
}

/* A thread that enters the bracket, says so, and leaves it when told. */
typedef struct held {
    atomic_int inside, leave;
} held;

static void *hold(void *argument)
{
    held *h = argument;
    hti_heap_thread *self = hti_thread_record();
    hti_untraced_begin(self);
    atomic_store(&h->inside, 1);
    while (!atomic_load(&h->leave))
        sleep_ns(MS / 10);
    hti_untraced_end(self);
    return NULL;
}

/* Tells the held thread to leave after a delay. */
typedef struct release_later {
    held *h;
    uint64_t delay_ns;
} release_later;

static void *release_after(void *argument)
{
    release_later *r = argument;
    sleep_ns(r->delay_ns);
    atomic_store(&r->h->leave, 1);
    return NULL;
}

static void test_waits_for_a_thread_inside(void **state)
{
    (void)state;
    held h = {0, 0};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, hold, &h), 0);
    while (!atomic_load(&h.inside))
        sleep_ns(MS / 10);

    /* Held: the wait gives up at its limit and names one late operation. */
    unsigned late = 0;
    uint64_t begin = now_ns();
    assert_int_equal(hti_heap_quiesce(50 * MS, &late), -ETIMEDOUT);
    assert_true(now_ns() - begin >= 50 * MS);
    assert_int_equal(late, 1);

    /* Let go after 30 ms: the wait ends then, well before its limit. */
    release_later r = {&h, 30 * MS};
    pthread_t releaser;
    begin = now_ns();
    assert_int_equal(pthread_create(&releaser, NULL, release_after, &r), 0);
    assert_int_equal(hti_heap_quiesce(5000 * MS, &late), 0);
    uint64_t waited = now_ns() - begin;
    assert_true(waited >= 25 * MS);
    assert_true(waited < 2000 * MS);
    assert_int_equal(late, 0);
    pthread_join(releaser, NULL);
    pthread_join(thread, NULL);

    /* Gone: nothing to wait for. */
    begin = now_ns();
    assert_int_equal(hti_heap_quiesce(5000 * MS, &late), 0);
    assert_true(now_ns() - begin < 1000 * MS);
}

static void test_own_bracket_is_not_waited_for(void **state)
{
    (void)state;
    hti_heap_thread *self = hti_thread_record();
    assert_non_null(self);
    hti_untraced_begin(self);
    unsigned late = 7;
    uint64_t begin = now_ns();
    assert_int_equal(hti_heap_quiesce(2000 * MS, &late), 0);
    assert_true(now_ns() - begin < 1000 * MS);
    assert_int_equal(late, 0);
    hti_untraced_end(self);
}

/* Workers free LFH slots and large blocks of a private heap in a loop. */
typedef struct churn {
    ht_heap *heap;
    atomic_int stop;
    atomic_ulong frees;
} churn;

static void *churn_main(void *argument)
{
    churn *c = argument;
    void *blocks[64] = {0};
    unsigned i = 0;
    while (!atomic_load(&c->stop)) {
        unsigned k = i++ % 64;
        if (blocks[k]) {
            assert_true(ht_heap_free(c->heap, 0, blocks[k]));
            atomic_fetch_add(&c->frees, 1);
        }
        size_t size = k == 0 ? 600 * 1024 : 16 + (i * 37) % 400; /* a large block now and then */
        blocks[k] = ht_heap_alloc(c->heap, 0, size);
        assert_non_null(blocks[k]);
    }
    for (unsigned k = 0; k < 64; k++)
        if (blocks[k])
            ht_heap_free(c->heap, 0, blocks[k]);
    return NULL;
}

static void test_busy_threads_do_not_hold_it(void **state)
{
    (void)state;
    churn c = {ht_heap_create(0, 0, 0), 0, 0};
    assert_non_null(c.heap);
    enum { WORKERS = 3, ROUNDS = 200 };
    pthread_t threads[WORKERS];
    for (int t = 0; t < WORKERS; t++)
        assert_int_equal(pthread_create(&threads[t], NULL, churn_main, &c), 0);
    while (atomic_load(&c.frees) < 10000)
        sleep_ns(MS);
    for (int round = 0; round < ROUNDS; round++) {
        unsigned late = 0;
        assert_int_equal(hti_heap_quiesce(5000 * MS, &late), 0);
        assert_int_equal(late, 0);
    }
    atomic_store(&c.stop, 1);
    for (int t = 0; t < WORKERS; t++)
        pthread_join(threads[t], NULL);
    assert_true(ht_heap_validate(c.heap, 0, NULL));
    assert_true(ht_heap_destroy(c.heap));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_waits_for_a_thread_inside),
        cmocka_unit_test(test_own_bracket_is_not_waited_for),
        cmocka_unit_test(test_busy_threads_do_not_hold_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
