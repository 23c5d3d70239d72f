/* heap_test.h — helpers shared by the heap test binaries (tests/heap/test_*.c).
 *
 * Command-line options (seed, seeds, ops, threads), a deterministic generator, a failure
 * macro that prints the seed and the operation before failing (cmocka in the main thread,
 * abort in other threads), the counter-delta checks that pin one operation to one Source,
 * walk collection, the bucket table of docs/DESIGN.md and a content-pattern buffer.
 * Everything here is static: each test binary gets its own copy. */
#ifndef HEAPTRAIL_TESTS_HEAP_TEST_H
#define HEAPTRAIL_TESTS_HEAP_TEST_H

#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "heaptrail/heap.h"

/* ---- context printed with every failure ----------------------------------------------- */

typedef struct test_context {
    const char *label; /* what runs: test name, phase */
    uint64_t seed;
    uint64_t op; /* operation number inside a randomized run */
    int thread;  /* worker index, -1 for the main thread */
} test_context;

static _Thread_local test_context current_context = {"", 0, 0, -1};
static pthread_t cmocka_thread;    /* the thread cmocka runs tests on */
static atomic_int worker_failures; /* failures seen in worker threads */

static inline void context_set(const char *label, uint64_t seed)
{
    current_context.label = label;
    current_context.seed = seed;
    current_context.op = 0;
}

static inline void check_failed(const char *file, int line, const char *condition,
                                const char *format, ...) __attribute__((format(printf, 4, 5)));

/* Prints the failed condition, a message and the context; then fails the cmocka test (main
 * thread) or aborts (a worker thread cannot longjmp into cmocka). */
static inline void check_failed(const char *file, int line, const char *condition,
                                const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    fprintf(stderr,
            "\n%s:%d: check failed: %s\n  %s\n  [%s] seed=%" PRIu64 " op=%" PRIu64
            " thread=%d last_error=%d (%s)\n",
            file, line, condition, message, current_context.label, current_context.seed,
            current_context.op, current_context.thread, (int)ht_last_error(),
            ht_error_message(ht_last_error()));
    fflush(stderr);
    if (pthread_equal(pthread_self(), cmocka_thread)) {
        _fail(file, line);
    }
    atomic_fetch_add(&worker_failures, 1);
    abort();
}

/* A crash in a worker thread: cmocka's own handler would try to longjmp into the main thread's
 * test and end the process with status 255 and no message. This one names the signal and the
 * thread's context, then dies of the signal. */
static inline void crash_report(int signal_number)
{
    char line[256];
    int length = snprintf(line, sizeof line,
                          "\nfatal signal %d in thread %d [%s] seed=%" PRIu64 " op=%" PRIu64 "\n",
                          signal_number, current_context.thread, current_context.label,
                          current_context.seed, current_context.op);
    if (length > 0) {
        ssize_t written = write(2, line, (size_t)length);
        (void)written;
    }
    signal(signal_number, SIG_DFL);
    raise(signal_number);
}

/* Call at the start of a test that runs worker threads (after cmocka set its handlers). */
static inline void install_crash_report(void)
{
    const int signals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE};
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = crash_report;
        sigemptyset(&action.sa_mask);
        sigaction(signals[i], &action, NULL);
    }
}

/* CHECK(condition, "format", args...): the format is required. */
#define CHECK(condition, ...)                                                                      \
    do {                                                                                           \
        if (!(condition))                                                                          \
            check_failed(__FILE__, __LINE__, #condition, __VA_ARGS__);                             \
    } while (0)

/* ---- options ---------------------------------------------------------------------------- */

typedef struct test_options {
    uint64_t seed;    /* first seed */
    bool seed_given;  /* --seed: run exactly this seed (unless --seeds too) */
    unsigned seeds;   /* how many seeds, seed, seed+1, ... (0: the binary's default) */
    uint64_t ops;     /* operations per seed (or per thread, as the binary says) */
    unsigned threads; /* worker threads */
    bool verbose;
} test_options;

static inline uint64_t parse_count(const char *text, const char *option)
{
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 0);
    if (end == text)
        goto bad;
    if (*end == 'k' || *end == 'K') {
        value *= 1000ull;
        end++;
    } else if (*end == 'm' || *end == 'M') {
        value *= 1000000ull;
        end++;
    }
    if (*end != '\0')
        goto bad;
    return value;
bad:
    fprintf(stderr, "bad value for %s: '%s'\n", option, text);
    exit(2);
}

/* Parses --seed N, --seeds N, --ops N, --threads N, --filter PATTERN, --verbose, --help.
 * Both "--ops N" and "--ops=N" are accepted; N may end in k or M. */
static inline void parse_options(int argc, char **argv, test_options *options, const char *usage)
{
    cmocka_thread = pthread_self();
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = NULL;
        const char *names[] = {"--seed", "--seeds", "--ops", "--threads", "--filter"};
        size_t which = sizeof names / sizeof names[0];
        for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
            size_t length = strlen(names[n]);
            if (strncmp(arg, names[n], length) == 0 &&
                (arg[length] == '\0' || arg[length] == '=')) {
                which = n;
                if (arg[length] == '=') {
                    value = arg + length + 1;
                } else if (i + 1 < argc) {
                    value = argv[++i];
                } else {
                    fprintf(stderr, "%s needs a value\n%s", arg, usage);
                    exit(2);
                }
                break;
            }
        }
        switch (which) {
        case 0:
            options->seed = parse_count(value, "--seed");
            options->seed_given = true;
            break;
        case 1: options->seeds = (unsigned)parse_count(value, "--seeds"); break;
        case 2: options->ops = parse_count(value, "--ops"); break;
        case 3: options->threads = (unsigned)parse_count(value, "--threads"); break;
        case 4: cmocka_set_test_filter(value); break;
        default:
            if (strcmp(arg, "--verbose") == 0 || strcmp(arg, "-v") == 0) {
                options->verbose = true;
            } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
                fputs(usage, stdout);
                exit(0);
            } else {
                fprintf(stderr, "unknown option '%s'\n%s", arg, usage);
                exit(2);
            }
        }
    }
    if (options->threads == 0)
        options->threads = 1;
}

/* ---- deterministic generator (xoshiro256**, seeded by splitmix64) ----------------------- */

typedef struct rng {
    uint64_t state[4];
} rng;

static inline uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline void rng_seed(rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->state[i] = splitmix64(&seed);
}

static inline uint64_t rng_next(rng *r)
{
    uint64_t *s = r->state;
    uint64_t result = ((s[1] * 5) << 7 | (s[1] * 5) >> 57) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return result;
}

/* Uniform in [0, n); 0 when n is 0. */
static inline uint64_t rng_below(rng *r, uint64_t n)
{
    return n ? rng_next(r) % n : 0;
}
/* Uniform in [low, high]. */
static inline uint64_t rng_range(rng *r, uint64_t low, uint64_t high)
{
    return low + rng_below(r, high - low + 1);
}
/* True with probability per_mille / 1000. */
static inline bool rng_chance(rng *r, unsigned per_mille)
{
    return rng_below(r, 1000) < per_mille;
}

/* ---- Sources and counters --------------------------------------------------------------- */

#define SRC(source) (1u << (source))
#define SRC_BACKEND (SRC(MEMORY_FROM_MAINPATH) | SRC(MEMORY_FROM_SLOWPATH))
#define SRC_FRONTEND (SRC(MEMORY_FROM_LOOKASIDE) | SRC(MEMORY_FROM_LOWFRAG))

static inline const char *source_name(int source)
{
    switch (source) {
    case MEMORY_FROM_LOOKASIDE: return "LOOKASIDE";
    case MEMORY_FROM_LOWFRAG: return "LOWFRAG";
    case MEMORY_FROM_MAINPATH: return "MAINPATH";
    case MEMORY_FROM_SLOWPATH: return "SLOWPATH";
    case MEMORY_FROM_INVALID: return "INVALID";
    case MEMORY_FROM_SEGMENT_HEAP: return "SEGMENT_HEAP";
    default: return "none";
    }
}

static inline const char *op_name(int op)
{
    switch (op) {
    case HT_OP_ALLOC: return "ALLOC";
    case HT_OP_FREE: return "FREE";
    case HT_OP_REALLOC: return "REALLOC";
    default: return "none";
    }
}

/* "LOOKASIDE|LOWFRAG" for a mask of sources; buffer of 80 bytes. */
static inline const char *mask_name(unsigned mask, char *buffer, size_t length)
{
    buffer[0] = '\0';
    for (int s = 1; s < HT_SOURCE_COUNT; s++) {
        if (mask & SRC(s)) {
            if (buffer[0])
                strncat(buffer, "|", length - strlen(buffer) - 1);
            strncat(buffer, source_name(s), length - strlen(buffer) - 1);
        }
    }
    if (!buffer[0])
        snprintf(buffer, length, "(nothing)");
    return buffer;
}

static inline void counters_read(ht_heap *heap, ht_heap_counters *counters)
{
    memset(counters, 0xEE, sizeof *counters);
    CHECK(ht_heap_counters_get(heap, counters), "counters_get(%p) failed", (void *)heap);
}

static inline uint64_t counters_total(const ht_heap_counters *c, int op)
{
    uint64_t total = 0;
    for (int s = 0; s < HT_SOURCE_COUNT; s++)
        total += c->counts[op][s];
    return total;
}

/* Compares two readings. Returns the number of cells that changed; *op and *source name the
 * last changed cell; *by_one is false if some cell moved by other than +1. */
static inline int counters_compare(const ht_heap_counters *before, const ht_heap_counters *after,
                                   int *op, int *source, bool *by_one)
{
    int changed = 0;
    *by_one = true;
    *op = -1;
    *source = -1;
    for (int o = 0; o < HT_OP_COUNT; o++) {
        for (int s = 0; s < HT_SOURCE_COUNT; s++) {
            if (before->counts[o][s] != after->counts[o][s]) {
                changed++;
                *op = o;
                *source = s;
                if (after->counts[o][s] != before->counts[o][s] + 1)
                    *by_one = false;
            }
        }
    }
    return changed;
}

/* Reads the heap's counters, checks that exactly one cell changed since *before, by +1, in
 * row op, with a source in allowed; stores the new reading in *before and returns the
 * source. what describes the operation for the failure message. */
#define EXPECT_COUNTED(heap, before, op, allowed, ...)                                             \
    expect_counted(__FILE__, __LINE__, heap, before, op, allowed, __VA_ARGS__)

static inline int expect_counted(const char *file, int line, ht_heap *heap,
                                 ht_heap_counters *before, int op, unsigned allowed,
                                 const char *format, ...) __attribute__((format(printf, 7, 8)));

static inline int expect_counted(const char *file, int line, ht_heap *heap,
                                 ht_heap_counters *before, int op, unsigned allowed,
                                 const char *format, ...)
{
    char what[256];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    ht_heap_counters after;
    counters_read(heap, &after);
    int changed_op, changed_source;
    bool by_one;
    int changed = counters_compare(before, &after, &changed_op, &changed_source, &by_one);
    char names[96];
    if (changed != 1 || !by_one) {
        check_failed(file, line, "exactly one counter +1",
                     "%s: %d counter cells changed (last %s/%s, by one: %d), expected one %s "
                     "in %s",
                     what, changed, op_name(changed_op), source_name(changed_source), by_one,
                     op_name(op), mask_name(allowed, names, sizeof names));
    }
    if (changed_op != op || !(allowed & SRC(changed_source))) {
        check_failed(file, line, "counted op and source", "%s: counted %s/%s, expected %s in %s",
                     what, op_name(changed_op), source_name(changed_source), op_name(op),
                     mask_name(allowed, names, sizeof names));
    }
    *before = after;
    return changed_source;
}

/* Checks that the counters did not move since *before. */
#define EXPECT_NOT_COUNTED(heap, before, ...)                                                      \
    do {                                                                                           \
        ht_heap_counters after_;                                                                   \
        counters_read(heap, &after_);                                                              \
        CHECK(memcmp(&after_, (before), sizeof after_) == 0, __VA_ARGS__);                         \
    } while (0)

/* ---- the LFH bucket table ----------------------------------------------------------------- */

/* SPEC.md section 2: NT's table (8 bytes up to 256, 16 to 512, 32 to 1 KiB, ... 512 to 16 KiB)
 * with the smallest step raised to the 16-byte alignment: 16-byte steps up to 512, then 16
 * buckets per doubling (32 to 1 KiB, 64 to 2 KiB, 128 to 4 KiB, 256 to 8 KiB, 512 to 16 KiB).
 * docs/DESIGN.md's own step list (16 up to 256, 32 up to 512, ...) contradicts both SPEC.md
 * and its "each range keeps 16 buckets"; SPEC.md is followed here. */
#define BUCKET_COUNT 112          /* 32 buckets up to 512 B, then 16 per doubling to 16 KiB */
#define LOOKASIDE_BUCKET_COUNT 48 /* the buckets up to 1 KiB */

/* The LFH bucket (slot size) serving a request; 0 bytes is served as 1. */
static inline size_t bucket_size(size_t size)
{
    size_t granules = size ? (size + 15) / 16 * 16 : 16;
    size_t step = 16;
    if (granules > 512) {
        size_t limit = 1024;
        step = 32;
        while (granules > limit) {
            limit *= 2;
            step *= 2;
        }
    }
    return (granules + step - 1) / step * step;
}

/* Index 0..111 of the bucket serving size (size <= HT_LFH_MAX_BLOCK). */
static inline unsigned bucket_index(size_t size)
{
    size_t b = bucket_size(size);
    if (b <= 512)
        return (unsigned)(b / 16 - 1);
    unsigned index = 32;
    size_t low = 512, step = 32;
    while (b > low * 2) {
        index += 16;
        low *= 2;
        step *= 2;
    }
    return index + (unsigned)((b - low) / step) - 1;
}

/* ---- content patterns ----------------------------------------------------------------- */

#define PATTERN_WINDOW (64u << 10)          /* pattern offsets: 0..64 KiB */
#define PATTERN_MAX_BLOCK ((size_t)2 << 20) /* longest block filled */

static inline uint8_t *pattern_storage(void)
{
    static uint8_t storage[PATTERN_WINDOW + PATTERN_MAX_BLOCK];
    return storage;
}

static inline void pattern_init(void)
{
    uint8_t *bytes = pattern_storage();
    uint64_t x = 0x5EED0F7E57ull;
    for (size_t i = 0; i < PATTERN_WINDOW + PATTERN_MAX_BLOCK; i += 8) {
        uint64_t v = splitmix64(&x);
        memcpy(bytes + i, &v, 8);
    }
}

/* A fixed buffer of pseudo-random bytes; block content = pattern_bytes()[offset + i] with
 * offset < PATTERN_WINDOW and i < PATTERN_MAX_BLOCK. */
static inline const uint8_t *pattern_bytes(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, pattern_init);
    return pattern_storage();
}

static inline void pattern_fill(void *block, uint32_t offset, size_t length)
{
    CHECK(length <= PATTERN_MAX_BLOCK && offset < PATTERN_WINDOW, "pattern too long: %zu", length);
    memcpy(block, pattern_bytes() + offset, length);
}

/* Index of the first byte that differs from the pattern, or length when all match. */
static inline size_t pattern_mismatch(const void *block, uint32_t offset, size_t length)
{
    const uint8_t *expected = pattern_bytes() + offset;
    if (memcmp(block, expected, length) == 0)
        return length;
    const uint8_t *bytes = block;
    size_t i = 0;
    while (bytes[i] == expected[i])
        i++;
    return i;
}

/* Index of the first non-zero byte in [from, to), or to. */
static inline size_t first_nonzero(const void *block, size_t from, size_t to)
{
    const uint8_t *bytes = block;
    for (size_t i = from; i < to; i++) {
        if (bytes[i])
            return i;
    }
    return to;
}

/* ---- walk ----------------------------------------------------------------------------- */

#define WALK_LIMIT 50000000u /* a walk longer than this does not terminate */

/* Walks the whole heap into a malloc'd array (*entries, freed by the caller); returns the
 * number of entries. Checks that the walk ends with HT_ERROR_NO_MORE_ITEMS. */
static inline size_t walk_collect(ht_heap *heap, ht_heap_entry **entries)
{
    size_t count = 0, capacity = 256;
    ht_heap_entry *array = malloc(capacity * sizeof *array);
    CHECK(array != NULL, "out of memory");
    ht_heap_entry entry;
    memset(&entry, 0, sizeof entry);
    entry.data = NULL;
    ht_set_last_error(HT_OK);
    while (ht_heap_walk(heap, &entry)) {
        if (count == capacity) {
            capacity *= 2;
            array = realloc(array, capacity * sizeof *array);
            CHECK(array != NULL, "out of memory");
        }
        array[count++] = entry;
        CHECK(count < WALK_LIMIT, "walk of %p does not end", (void *)heap);
    }
    CHECK(ht_last_error() == HT_ERROR_NO_MORE_ITEMS, "walk ended with error %d, not NO_MORE_ITEMS",
          (int)ht_last_error());
    *entries = array;
    return count;
}

static inline bool entry_is_block(const ht_heap_entry *entry)
{
    return (entry->flags & HT_ENTRY_REGION) == 0 && (entry->flags & HT_ENTRY_UNCOMMITTED) == 0;
}

static inline bool entry_is_busy_block(const ht_heap_entry *entry)
{
    return entry_is_block(entry) && (entry->flags & HT_ENTRY_BUSY) != 0;
}

/* Finds the block entry whose data is address; NULL if none. */
static inline const ht_heap_entry *walk_find(const ht_heap_entry *entries, size_t count,
                                             const void *address)
{
    for (size_t i = 0; i < count; i++) {
        if (entry_is_block(&entries[i]) && entries[i].data == address)
            return &entries[i];
    }
    return NULL;
}

/* ---- summary ----------------------------------------------------------------------------- */

static inline void summary_read(ht_heap *heap, ht_heap_summary *summary)
{
    memset(summary, 0xEE, sizeof *summary);
    CHECK(ht_heap_summary_get(heap, 0, summary), "summary_get(%p) failed", (void *)heap);
    CHECK(summary->allocated + summary->free + summary->overhead == summary->committed,
          "summary: allocated %zu + free %zu + overhead %zu != committed %zu", summary->allocated,
          summary->free, summary->overhead, summary->committed);
    CHECK(summary->allocated + summary->free <= summary->committed,
          "summary: allocated %zu + free %zu > committed %zu", summary->allocated, summary->free,
          summary->committed);
    CHECK(summary->committed <= summary->reserved, "summary: committed %zu > reserved %zu",
          summary->committed, summary->reserved);
    CHECK(summary->requested <= summary->allocated, "summary: requested %zu > allocated %zu",
          summary->requested, summary->allocated);
}

/* ---- small helpers ------------------------------------------------------------------------ */

static inline bool aligned16(const void *p)
{
    return ((uintptr_t)p & 15u) == 0;
}

static inline ht_heap *heap_create_checked(uint32_t flags, size_t initial, size_t maximum)
{
    ht_heap *heap = ht_heap_create(flags, initial, maximum);
    CHECK(heap != NULL, "ht_heap_create(0x%x, %zu, %zu) failed", flags, initial, maximum);
    return heap;
}

static inline void set_compatibility(ht_heap *heap, uint32_t value)
{
    CHECK(ht_heap_set_information(heap, HT_HEAP_COMPATIBILITY_INFORMATION, &value, sizeof value),
          "set COMPATIBILITY %u failed", value);
}

static inline void set_lookaside(ht_heap *heap, uint32_t value)
{
    CHECK(ht_heap_set_information(heap, HT_HEAP_LOOKASIDE_INFORMATION, &value, sizeof value),
          "set LOOKASIDE %u failed", value);
}

static inline uint32_t query_u32(ht_heap *heap, ht_heap_info_class info_class)
{
    uint32_t value = 0xDEADBEEFu;
    size_t length = 0;
    CHECK(ht_heap_query_information(heap, info_class, &value, sizeof value, &length),
          "query information 0x%x failed", (unsigned)info_class);
    CHECK(length == sizeof value, "query information 0x%x: return length %zu", (unsigned)info_class,
          length);
    return value;
}

static inline int compare_pointers(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

#endif
