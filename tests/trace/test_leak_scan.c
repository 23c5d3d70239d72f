/* test_leak_scan.c — the reachability scan at exit against a reference model.
 *
 * A forked child builds a random pointer graph of heap blocks (fixed seeds): blocks in the
 * process heap and in a private heap, each holding pointers to others (to their first byte or
 * inside them), roots in a global array, in a block of the C library's malloc, and in the stack
 * frames of threads blocked in read() when the process exits. It writes the class each block
 * must get, then starts a session with leak_scan from the environment and calls exit(). The
 * parent reads the trace: the LEAK_SCAN record (every thread stopped) and one UNREACHABLE_BLOCK
 * per lost block, each with the model's class. The model: reachable from a root; else
 * definitely lost when no other lost block reaches it, or when it is the lowest address of a
 * group of lost blocks that reach each other and nothing else lost reaches; else indirectly
 * lost. Filler words are below 2^32, never an address. */
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include "trace_test.h"

#define MAX_NODES 1500
#define MAX_EDGES 4
#define ROOTS 48
#define MAX_THREADS 4

enum { REACHABLE = 0, DEFINITE = 1, INDIRECT = 2 };

typedef struct node {
    uintptr_t *memory;
    size_t size; /* bytes requested */
    int edges[MAX_EDGES];
    int edge_count;
} node;

static node nodes[MAX_NODES];
static int node_count;
static uintptr_t *volatile global_roots[ROOTS];
static int pipe_fds[2];
uintptr_t **volatile keep_libc_block; /* the C library's block stays reachable itself */

typedef struct thread_root {
    pthread_t thread;
    int node;
    uintptr_t *_Atomic handed; /* the root, until the thread holds it on its stack alone */
} thread_root;

static void *hold_root(void *arg)
{
    thread_root *self = arg;
    uintptr_t *volatile held = atomic_exchange(&self->handed, NULL) + 1; /* interior */
    char byte;
    while (read(pipe_fds[0], &byte, 1) < 0) /* never written: blocks until exit */
        ;
    (void)held;
    return NULL;
}

/* Words reachable from node i over edges, restricted to lost nodes (reach[j] set). */
static void reach_from(int i, const int *cls, bool *seen)
{
    int stack[MAX_NODES], top = 0;
    stack[top++] = i;
    while (top) {
        int n = stack[--top];
        for (int e = 0; e < nodes[n].edge_count; e++) {
            int to = nodes[n].edges[e];
            if (cls[to] != REACHABLE && !seen[to]) {
                seen[to] = true;
                stack[top++] = to;
            }
        }
    }
}

static void expected_classes(const bool *rooted, int *cls)
{
    /* Reachable: everything a root reaches. */
    bool *reached = calloc((size_t)node_count, sizeof *reached);
    int *stack = malloc((size_t)node_count * sizeof *stack), top = 0;
    for (int i = 0; i < node_count; i++)
        if (rooted[i]) {
            reached[i] = true;
            stack[top++] = i;
        }
    while (top) {
        int n = stack[--top];
        for (int e = 0; e < nodes[n].edge_count; e++) {
            int to = nodes[n].edges[e];
            if (!reached[to]) {
                reached[to] = true;
                stack[top++] = to;
            }
        }
    }
    for (int i = 0; i < node_count; i++)
        cls[i] = reached[i] ? REACHABLE : DEFINITE;
    /* Lost: which lost blocks each lost block reaches. */
    bool *reach = calloc((size_t)node_count * (size_t)node_count, sizeof *reach);
    for (int i = 0; i < node_count; i++)
        if (cls[i] != REACHABLE)
            reach_from(i, cls, reach + (size_t)i * (size_t)node_count);
    for (int b = 0; b < node_count; b++) {
        if (cls[b] == REACHABLE)
            continue;
        for (int c = 0; c < node_count; c++) {
            if (c == b || cls[c] == REACHABLE || !reach[(size_t)c * (size_t)node_count + (size_t)b])
                continue;
            bool same_group = reach[(size_t)b * (size_t)node_count + (size_t)c];
            if (!same_group || nodes[c].memory < nodes[b].memory) {
                cls[b] = INDIRECT;
                break;
            }
        }
    }
    free(reach);
    free(stack);
    free(reached);
}

/* The child: builds the graph, writes "address class" lines to fd, exits traced. */
__attribute__((noinline)) static void build_graph(uint64_t seed, int threads, int fd)
{
    uint64_t rng = seed;
    ht_heap *private_heap = ht_heap_create(0, 0, 0);
    node_count = 200 + (int)(rng_next(&rng) % (MAX_NODES - 200));
    for (int i = 0; i < node_count; i++) {
        node *n = &nodes[i];
        n->edge_count = (int)(rng_next(&rng) % (MAX_EDGES + 1));
        size_t words = (size_t)n->edge_count + 1 + rng_next(&rng) % 8;
        n->size = words * sizeof(uintptr_t) + rng_next(&rng) % 8;
        ht_heap *heap = rng_next(&rng) % 4 ? ht_process_heap() : private_heap;
        n->memory = ht_heap_alloc(heap, 0, n->size);
        assert_non_null(n->memory);
        for (size_t w = 0; w < words; w++)
            n->memory[w] = (uintptr_t)(rng_next(&rng) & 0xFFFFFFFFu); /* never an address */
    }
    /* Edges: mostly to nearby nodes (chains, cycles), some anywhere; some interior. */
    for (int i = 0; i < node_count; i++) {
        node *n = &nodes[i];
        for (int e = 0; e < n->edge_count; e++) {
            uint64_t r = rng_next(&rng);
            int to = r % 3 ? (i + 1 + (int)(r % 5)) % node_count : (int)(r % (uint64_t)node_count);
            n->edges[e] = to;
            size_t offset = rng_next(&rng) % 4 == 0 ? nodes[to].size - 1 : 0;
            n->memory[e] = (uintptr_t)nodes[to].memory + offset;
        }
    }
    bool rooted[MAX_NODES] = {false};
    for (int r = 0; r < ROOTS; r++) {
        if (rng_next(&rng) % 3 == 0)
            continue;
        int i = (int)(rng_next(&rng) % (uint64_t)node_count);
        global_roots[r] = nodes[i].memory;
        rooted[i] = true;
    }
    /* A root in memory of the C library's malloc (a root region like any other mapping). */
    uintptr_t **libc_block = malloc(64);
    int libc_rooted = (int)(rng_next(&rng) % (uint64_t)node_count);
    libc_block[3] = nodes[libc_rooted].memory;
    rooted[libc_rooted] = true;
    keep_libc_block = libc_block;
    static thread_root held[MAX_THREADS];
    for (int t = 0; t < threads; t++) {
        held[t].node = (int)(rng_next(&rng) % (uint64_t)node_count);
        rooted[held[t].node] = true;
        atomic_store(&held[t].handed, nodes[held[t].node].memory);
        assert_int_equal(pthread_create(&held[t].thread, NULL, hold_root, &held[t]), 0);
    }
    for (int t = 0; t < threads; t++)
        while (atomic_load(&held[t].handed))
            sched_yield();
    int *cls = malloc((size_t)node_count * sizeof *cls);
    expected_classes(rooted, cls);
    FILE *out = fdopen(fd, "w");
    for (int i = 0; i < node_count; i++)
        fprintf(out, "%" PRIxPTR " %d\n", (uintptr_t)nodes[i].memory, cls[i]);
    fclose(out);
    free(cls);
}

/* Overwrites the dead part of the stack, where the graph's builder left addresses. */
__attribute__((noinline)) static void clear_stack(void)
{
    volatile char junk[64 << 10];
    memset((char *)junk, 0, sizeof junk);
}

static void run_child(uint64_t seed, int threads, const char *trace, const char *expected)
{
    assert_int_equal(pipe(pipe_fds), 0);
    int fd = open(expected, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    build_graph(seed, threads, fd);
    for (int i = 0; i < node_count; i++) /* the builder's own list is no root */
        nodes[i].memory = NULL;
    clear_stack();
    setenv("HEAPTRAIL_OUTPUT", trace, 1);
    setenv("HEAPTRAIL_LEAK_SCAN", "1", 1);
    if (ht_trace_start_from_env() != 1)
        _exit(3);
    exit(0);
}

/* Reads the trace and compares it with the model's classes; returns false after one line on
 * stderr. Runs in a child of its own: the process that forks the next graph's builder must
 * hold no address of this graph (every seed's blocks land at the same addresses, and memory
 * the C library freed keeps its bytes). */
static bool verify(uint64_t seed, int threads, const char *trace, const char *expected)
{
    FILE *f = fopen(expected, "r");
    if (!f)
        return false;
    static uint64_t addresses[MAX_NODES];
    static int want[MAX_NODES], got[MAX_NODES];
    int count = 0;
    unsigned long long address;
    int cls;
    while (count < MAX_NODES && fscanf(f, "%llx %d", &address, &cls) == 2) {
        addresses[count] = address;
        want[count] = cls;
        got[count] = REACHABLE;
        count++;
    }
    fclose(f);
    if (count < 200) {
        fprintf(stderr, "seed %" PRIu64 ": %d blocks in the model\n", seed, count);
        return false;
    }
    char error[256];
    ht_reader *r = ht_reader_open(trace, error, sizeof error);
    if (!r) {
        fprintf(stderr, "seed %" PRIu64 ": %s\n", seed, error);
        return false;
    }
    ht_event e;
    int scans = 0;
    uint64_t unreachable = 0;
    bool ok = true;
    while (ok && ht_reader_read(r, &e, 1) == 1) {
        if (e.kind == HT_EVENT_LEAK_SCAN) {
            scans++;
            unreachable = e.u.leak_scan.Unreachable;
            if (e.u.leak_scan.Threads != (uint32_t)threads ||
                e.u.leak_scan.ThreadsStopped != (uint32_t)threads ||
                !(e.u.leak_scan.Flags & HT_LEAK_SCAN_ALL_STOPPED) ||
                e.u.leak_scan.LiveBlocks < (uint64_t)count) {
                fprintf(stderr,
                        "seed %" PRIu64 ": LEAK_SCAN threads %u stopped %u flags %u live "
                        "%" PRIu64 ", expected %d threads, %d blocks at least\n",
                        seed, e.u.leak_scan.Threads, e.u.leak_scan.ThreadsStopped,
                        e.u.leak_scan.Flags, e.u.leak_scan.LiveBlocks, threads, count);
                ok = false;
            }
        } else if (e.kind == HT_EVENT_UNREACHABLE_BLOCK) {
            int i = 0;
            while (i < count && addresses[i] != e.u.unreachable_block.Address)
                i++;
            if (i == count) {
                fprintf(stderr, "seed %" PRIu64 ": 0x%" PRIx64 " lost, not a block of the graph\n",
                        seed, e.u.unreachable_block.Address);
                ok = false;
            } else {
                got[i] = (int)e.u.unreachable_block.Class;
            }
        }
    }
    ht_reader_close(r);
    if (ok && scans != 1) {
        fprintf(stderr, "seed %" PRIu64 ": %d LEAK_SCAN records\n", seed, scans);
        ok = false;
    }
    uint64_t lost = 0;
    for (int i = 0; ok && i < count; i++) {
        if (want[i] != got[i]) {
            fprintf(stderr, "seed %" PRIu64 ": block %d at 0x%" PRIx64 ": class %d, expected %d\n",
                    seed, i, addresses[i], got[i], want[i]);
            ok = false;
        }
        lost += want[i] != REACHABLE;
    }
    if (ok && unreachable != lost) {
        fprintf(stderr,
                "seed %" PRIu64 ": LEAK_SCAN counts %" PRIu64 " lost, the model %" PRIu64 "\n",
                seed, unreachable, lost);
        ok = false;
    }
    return ok;
}

static int run_and_wait(pid_t child)
{
    assert_true(child >= 0);
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void check_seed(uint64_t seed, int threads)
{
    char trace[256], expected[256];
    temp_path(trace, sizeof trace, "leakscan");
    temp_path(expected, sizeof expected, "leakscan-expected");
    pid_t child = fork();
    if (child == 0)
        run_child(seed, threads, trace, expected);
    assert_int_equal(run_and_wait(child), 0);
    child = fork();
    if (child == 0)
        _exit(verify(seed, threads, trace, expected) ? 0 : 1);
    assert_int_equal(run_and_wait(child), 0);
    unlink(trace);
    unlink(expected);
}

static void test_graphs_single_thread(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 6; seed++)
        check_seed(seed, 0);
}

static void test_graphs_with_threads(void **state)
{
    (void)state;
    for (uint64_t seed = 101; seed <= 104; seed++)
        check_seed(seed, (int)(seed % MAX_THREADS) + 1);
}

/* Without the option, no scan record. */
static void test_no_scan_without_option(void **state)
{
    (void)state;
    char trace[256];
    temp_path(trace, sizeof trace, "noscan");
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        setenv("HEAPTRAIL_OUTPUT", trace, 1);
        unsetenv("HEAPTRAIL_LEAK_SCAN");
        if (ht_trace_start_from_env() != 1)
            _exit(3);
        (void)ht_heap_alloc(ht_process_heap(), 0, 100); /* lost, but nobody looks */
        exit(0);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char error[256];
    ht_reader *r = ht_reader_open(trace, error, sizeof error);
    assert_non_null(r);
    ht_event e;
    while (ht_reader_read(r, &e, 1) == 1)
        assert_true(e.kind != HT_EVENT_LEAK_SCAN && e.kind != HT_EVENT_UNREACHABLE_BLOCK);
    ht_reader_close(r);
    unlink(trace);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graphs_single_thread),
        cmocka_unit_test(test_graphs_with_threads),
        cmocka_unit_test(test_no_scan_without_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
