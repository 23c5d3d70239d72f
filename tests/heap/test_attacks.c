/* test_attacks.c — the attack suite (attacks.h) against the heap API.
 *
 * Each case runs twice on a fresh private heap: in this process with termination on
 * corruption off, where the attack must be detected (some call refused) and never exploited;
 * and in a forked child with termination on, which must die of SIGABRT after printing one line
 * that names heaptrail and the damage. A case that crashes (SIGSEGV in the heap) fails. The
 * few cases whose writes reach no metadata here (marked harmless) must only stay unexploited
 * and must not end the process. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "attacks.h"
#include "heaptrail/heap.h"

static void *api_alloc(attack_heap *h, size_t size)
{
    void *p = ht_heap_alloc(h->context, 0, size);
    if (!p)
        h->refused++;
    return p;
}

static void api_release(attack_heap *h, void *block)
{
    if (!ht_heap_free(h->context, 0, block))
        h->refused++;
}

typedef struct attack_case {
    const char *name;
    int kind;
    size_t size;
    size_t over; /* overflow bytes, fill byte, or scrub/smash flag */
    unsigned warm;
    bool harmless; /* the write hits no metadata (a lookaside list keeps no link in the freed
                      block; the bytes before an LFH slot are its neighbour's data): never
                      exploited is all there is to check */
} attack_case;

enum { POISON, LFH_POISON, OVERFLOW, OVERFLOW_FREED, UNLINK, DOUBLE_FREE, REPLAY, FORGED_SIZE };

static int run_case(const attack_case *c, attack_heap *h)
{
    switch (c->kind) {
    case POISON: return attack_list_poison(h, c->size, c->warm);
    case LFH_POISON: return attack_lfh_poison(h, c->size);
    case OVERFLOW: return attack_overflow(h, c->size, c->over, c->warm);
    case OVERFLOW_FREED: return attack_overflow_freed(h, c->size, c->over, c->warm);
    case UNLINK: return attack_unlink(h, c->size, (int)c->over);
    case DOUBLE_FREE: return attack_double_free(h, c->size, c->warm, c->over != 0);
    case REPLAY: return attack_header_replay(h, c->size, c->warm, c->over != 0);
    case FORGED_SIZE: return attack_forged_size(h, c->size);
    }
    return ATTACK_EXPLOITED;
}

static const attack_case cases[] = {
    {"poison lookaside 24", POISON, 24, 0, 20, true},
    {"poison lookaside 100", POISON, 100, 0, 20, true},
    {"poison lookaside 1000", POISON, 1000, 0, 20, true},
    {"poison lfh 2000", POISON, 2000, 0, 20, false},
    {"poison back end 48", POISON, 48, 0, 0, false},
    {"poison back end 3000", POISON, 3000, 0, 0, false},
    {"poison lfh list 24", LFH_POISON, 24, 0, 0, false},
    {"poison lfh list 2000", LFH_POISON, 2000, 0, 0, false},
    {"overflow 16 past 24 (lfh)", OVERFLOW, 24, 16, 20, false},
    {"overflow 16 past 100 (lfh)", OVERFLOW, 100, 16, 20, false},
    {"overflow 16 past 1000 (lfh)", OVERFLOW, 1000, 16, 20, false},
    {"overflow 32 past 24 (lfh)", OVERFLOW, 24, 32, 20, false},
    {"overflow 16 past 24 (back end)", OVERFLOW, 24, 16, 0, false},
    {"overflow 32 past 24 (back end)", OVERFLOW, 24, 32, 0, false},
    {"overflow 32 past 1000 (back end)", OVERFLOW, 1000, 32, 0, false},
    {"overflow into a cached block 24", OVERFLOW_FREED, 24, 16, 20, false},
    {"overflow into a cached block 1000", OVERFLOW_FREED, 1000, 16, 20, false},
    {"overflow into an lfh free slot 4000", OVERFLOW_FREED, 4000, 16, 20, false},
    {"overflow into a free back-end block 64", OVERFLOW_FREED, 64, 16, 0, false},
    {"unlink to a global 48", UNLINK, 48, 0, 0, false},
    {"unlink with 0x41 fill 48", UNLINK, 48, 0x41, 0, false},
    {"unlink to a global 5000", UNLINK, 5000, 0, 0, false},
    {"double free lookaside 24", DOUBLE_FREE, 24, 0, 20, false},
    {"double free lookaside scrubbed 24", DOUBLE_FREE, 24, 1, 20, false},
    {"double free lfh 4000", DOUBLE_FREE, 4000, 1, 20, false},
    {"double free back end 64", DOUBLE_FREE, 64, 0, 0, false},
    {"double free back end scrubbed 64", DOUBLE_FREE, 64, 1, 0, false},
    {"double free large", DOUBLE_FREE, 1u << 20, 1, 0, false},
    {"header replay lfh 24", REPLAY, 24, 0, 20, false},
    {"header replay lfh 2000", REPLAY, 2000, 0, 20, false},
    {"header replay back end 64", REPLAY, 64, 0, 0, false},
    {"header replay back end 100000", REPLAY, 100000, 0, 0, false},
    {"header smash lfh 24", REPLAY, 24, 1, 20, true},
    {"header smash back end 64", REPLAY, 64, 1, 0, false},
    {"header smash large", REPLAY, 1u << 20, 1, 0, false},
    {"forged size back end 64", FORGED_SIZE, 64, 0, 0, false},
    {"forged size back end 4000", FORGED_SIZE, 4000, 0, 0, false},
};

/* In this process, termination off: detected (a call refused), never exploited. */
static void test_detected(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ht_heap *heap = ht_heap_create(0, 0, 0);
        assert_non_null(heap);
        attack_heap h = {api_alloc, api_release, heap, 0};
        memset(attack_target, 0, sizeof attack_target);
        int outcome = run_case(&cases[i], &h);
        if (outcome == ATTACK_EXPLOITED || (h.refused == 0 && !cases[i].harmless)) {
            print_error("%s: %s\n", cases[i].name,
                        outcome == ATTACK_EXPLOITED ? "exploited" : "not detected");
            failures++;
            continue;
        }
        /* the heap keeps serving: a fresh allocation of every tier works */
        size_t sizes[] = {24, 2000, 100000, 1u << 20};
        for (size_t s = 0; s < 4; s++) {
            void *p = ht_heap_alloc(heap, 0, sizes[s]);
            if (!p) {
                print_error("%s: heap unusable after the attack (size %zu)\n", cases[i].name,
                            sizes[s]);
                failures++;
                break;
            }
            memset(p, 0x5a, sizes[s]);
        }
        /* not destroyed: a damaged heap is left as it is, its memory is not reused */
    }
    assert_int_equal(failures, 0);
}

/* In a child, termination on: one line naming heaptrail and the damage, then SIGABRT. */
static void test_terminates(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            dup2(pipefd[1], 2);
            close(pipefd[0]);
            uint32_t on = 1;
            ht_heap_set_information(NULL, HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION, &on, sizeof on);
            ht_heap *heap = ht_heap_create(0, 0, 0);
            attack_heap h = {api_alloc, api_release, heap, 0};
            int outcome = run_case(&cases[i], &h);
            _exit(outcome == ATTACK_EXPLOITED ? 3 : 0);
        }
        close(pipefd[1]);
        char text[1024];
        size_t length = 0;
        ssize_t n;
        while (length < sizeof text - 1 &&
               (n = read(pipefd[0], text + length, sizeof text - 1 - length)) > 0)
            length += (size_t)n;
        text[length] = '\0';
        close(pipefd[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        char *nl = strchr(text, '\n');
        if (cases[i].harmless) {
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                print_error("%s: expected exit 0 (not exploited), got status %d\n", cases[i].name,
                            status);
                failures++;
            }
        } else if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) {
            print_error("%s: expected SIGABRT, got %s %d\n", cases[i].name,
                        WIFSIGNALED(status) ? "signal" : "exit",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            failures++;
        } else if (strncmp(text, "heaptrail: ", 11) != 0 || !nl || nl[1] != '\0') {
            print_error("%s: expected one heaptrail line on stderr, got \"%s\"\n", cases[i].name,
                        text);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* A block freed by another thread (the LFH's remote list) with its link poisoned. */
static void *free_in_thread(void *arg)
{
    void **pair = arg;
    ht_heap_free(pair[0], 0, pair[1]);
    return NULL;
}

static void test_remote_list_poison(void **state)
{
    (void)state;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    uint32_t all = 2;
    assert_true(ht_heap_set_information(heap, HT_HEAP_COMPATIBILITY_INFORMATION, &all, sizeof all));
    attack_heap h = {api_alloc, api_release, heap, 0};
    attack_live live = {0};
    void *blocks[64];
    for (int i = 0; i < 64; i++)
        assert_false(attack_take(&h, &live, 2000, &blocks[i]));
    for (int i = 0; i < 64; i++) {
        void *pair[2] = {heap, blocks[i]};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, free_in_thread, pair), 0);
        pthread_join(t, NULL);
        attack_forget(&live, blocks[i]);
    }
    uintptr_t forged = (uintptr_t)attack_target + 64;
    for (int i = 0; i < 64; i++)
        memcpy(blocks[i], &forged, sizeof forged);
    for (int i = 0; i < 200; i++) {
        void *p;
        if (attack_take(&h, &live, 2000, &p))
            fail_msg("remote list poisoning exploited");
    }
    assert_true(h.refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detected),
        cmocka_unit_test(test_terminates),
        cmocka_unit_test(test_remote_list_poison),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
