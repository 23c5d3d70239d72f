/* bench_common.h — what every allocator workload shares: argument parsing, the
 * deterministic PRNG, checksum mixing, the stamps written into each block, and running the
 * jobs on their threads and folding their checksums.
 * Workloads use only the C library's malloc family (the C++ one through operator new), so
 * any allocator can be put under them with LD_PRELOAD. Invariant: output (the checksum)
 * depends on the seed and the arguments only — never on addresses, timing or thread
 * scheduling — so two allocators that behave correctly print the same line. The header
 * compiles as C11 and as C++17 (cxx.cpp includes it), hence the explicit casts from void *.
 */
#ifndef HT_BENCH_COMMON_H
#define HT_BENCH_COMMON_H

#include <inttypes.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit status for a block whose contents changed between write and read-back. */
#define BENCH_EXIT_CORRUPT 2
/* Exit status for a bad command line (sysexits' EX_USAGE). */
#define BENCH_EXIT_USAGE 64

typedef struct bench_args {
    unsigned long threads;
    unsigned long iterations;
    uint64_t seed;
} bench_args;

/* Parses "[threads] [iterations] [seed]"; an omitted or "-" argument keeps its default. */
static inline void bench_parse_args(int argc, char **argv, bench_args *args, const char *what)
{
    unsigned long long values[3] = {args->threads, args->iterations, args->seed};
    if (argc > 4 || (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))) {
        fprintf(stderr,
                "usage: %s [threads] [iterations] [seed]\n  %s\n"
                "  defaults: threads=%lu iterations=%lu seed=%" PRIu64 " (\"-\" keeps a default)\n"
                "  prints \"checksum 0x...\"; exits %d if a block's contents changed\n",
                argv[0], what, args->threads, args->iterations, args->seed, BENCH_EXIT_CORRUPT);
        exit(argc > 4 ? BENCH_EXIT_USAGE : 0);
    }
    for (int i = 1; i < argc; i++) {
        char *end = NULL;
        if (strcmp(argv[i], "-") == 0)
            continue;
        unsigned long long value = strtoull(argv[i], &end, 0);
        if (end == argv[i] || *end != '\0' || argv[i][0] == '-') {
            fprintf(stderr, "%s: bad number '%s'\n", argv[0], argv[i]);
            exit(BENCH_EXIT_USAGE);
        }
        values[i - 1] = value;
    }
    if (values[0] == 0 || values[1] == 0) {
        fprintf(stderr, "%s: threads and iterations must be positive\n", argv[0]);
        exit(BENCH_EXIT_USAGE);
    }
    args->threads = (unsigned long)values[0];
    args->iterations = (unsigned long)values[1];
    args->seed = (uint64_t)values[2];
}

/* splitmix64's finalizer: a bijective 64-bit mix, used for seeding and for checksums. */
static inline uint64_t bench_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Order-dependent fold, for checksums computed by one thread in a fixed order. */
static inline uint64_t bench_fold(uint64_t hash, uint64_t value)
{
    return bench_mix(hash ^ value) + 0x9e3779b97f4a7c15ULL;
}

/* xorshift64*: one word of state, good enough to drive sizes and choices. */
typedef struct bench_rng {
    uint64_t state;
} bench_rng;

static inline void bench_rng_init(bench_rng *rng, uint64_t seed, uint64_t stream)
{
    rng->state = bench_mix(seed * 0x9e3779b97f4a7c15ULL + bench_mix(stream + 1));
    if (rng->state == 0)
        rng->state = 1;
}

static inline uint64_t bench_next(bench_rng *rng)
{
    uint64_t x = rng->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng->state = x;
    return x * 0x2545f4914f6cdd1dULL;
}

/* A value in [0, bound), bound < 2^32 (multiply-shift; the bias is negligible here). */
static inline uint32_t bench_below(bench_rng *rng, uint32_t bound)
{
    return (uint32_t)(((bench_next(rng) >> 32) * (uint64_t)bound) >> 32);
}

/* A value in [lo, hi]. */
static inline size_t bench_between(bench_rng *rng, size_t lo, size_t hi)
{
    return lo + bench_below(rng, (uint32_t)(hi - lo + 1));
}

/* A size in [2^lo_shift, 2^hi_shift), uniform in the exponent (log-uniform). */
static inline size_t bench_log_size(bench_rng *rng, unsigned lo_shift, unsigned hi_shift)
{
    unsigned shift = lo_shift + bench_below(rng, hi_shift - lo_shift);
    size_t base = (size_t)1 << shift;
    return base + bench_below(rng, (uint32_t)base);
}

/* Writes the whole block: a fill byte everywhere, the stamp in the first 8 bytes and, when
 * the block has room for both without overlap, in the last 8. size must be at least 8. */
static inline void bench_stamp(void *block, size_t size, uint64_t stamp)
{
    unsigned char *bytes = (unsigned char *)block;
    memset(bytes, (int)(stamp >> 56), size);
    memcpy(bytes, &stamp, sizeof stamp);
    if (size >= 2 * sizeof stamp)
        memcpy(bytes + size - sizeof stamp, &stamp, sizeof stamp);
}

/* Reads back what bench_stamp wrote (both ends and the middle byte); 0 when intact. */
static inline int bench_check(const void *block, size_t size, uint64_t stamp)
{
    const unsigned char *bytes = (const unsigned char *)block;
    uint64_t head, tail = stamp;
    memcpy(&head, bytes, sizeof head);
    if (size >= 2 * sizeof stamp)
        memcpy(&tail, bytes + size - sizeof tail, sizeof tail);
    if (head != stamp || tail != stamp)
        return -1;
    if (size > 2 * sizeof stamp && bytes[size / 2] != (unsigned char)(stamp >> 56))
        return -1;
    if (size > sizeof stamp && size < 2 * sizeof stamp &&
        bytes[size - 1] != (unsigned char)(stamp >> 56))
        return -1;
    return 0;
}

static inline void *bench_malloc(size_t size)
{
    void *block = malloc(size);
    if (block == NULL) {
        fprintf(stderr, "malloc(%zu) failed\n", size);
        exit(EXIT_FAILURE);
    }
    return block;
}

static inline void bench_corrupt(const char *workload, const char *what, size_t size)
{
    fprintf(stderr, "%s: corrupted block (%s, %zu bytes)\n", workload, what, size);
    exit(BENCH_EXIT_CORRUPT);
}

static inline void bench_print_checksum(uint64_t checksum)
{
    printf("checksum 0x%016" PRIx64 "\n", checksum);
}

/* Runs body on each of count jobs, job i at (char *)jobs + i * stride: a single job on the
 * calling thread, more on a thread each; returns once all have finished. A thread that cannot
 * be created ends the process: "<workload>: pthread_create failed", EXIT_FAILURE. */
static inline void bench_run_jobs(const char *workload, void *jobs, size_t stride,
                                  unsigned long count, void *(*body)(void *))
{
    unsigned char *job = (unsigned char *)jobs;
    if (count == 1) {
        body(job);
        return;
    }
    pthread_t *threads = (pthread_t *)bench_malloc(count * sizeof *threads);
    for (unsigned long i = 0; i < count; i++) {
        if (pthread_create(&threads[i], NULL, body, job + i * stride) != 0) {
            fprintf(stderr, "%s: pthread_create failed\n", workload);
            exit(EXIT_FAILURE);
        }
    }
    for (unsigned long i = 0; i < count; i++)
        pthread_join(threads[i], NULL);
    free(threads);
}

/* The jobs' checksums (the uint64_t at offset in each, e.g. offsetof(job, checksum)) folded in
 * job order, so the result does not depend on which thread finished first. */
static inline uint64_t bench_fold_jobs(const void *jobs, size_t stride, unsigned long count,
                                       size_t offset)
{
    const unsigned char *job = (const unsigned char *)jobs;
    uint64_t checksum = 0;
    for (unsigned long i = 0; i < count; i++) {
        uint64_t value;
        memcpy(&value, job + i * stride + offset, sizeof value);
        checksum = bench_fold(checksum, value);
    }
    return checksum;
}

/* One of the independent copies a workload runs side by side (see bench_run_copies). */
typedef struct bench_copy {
    unsigned long iterations; /* the workload's own unit: steps, appends, objects */
    uint64_t seed;
    unsigned index;    /* the copy's number, its PRNG stream */
    uint64_t checksum; /* set by the copy */
} bench_copy;

/* Runs args->threads copies of body (a bench_copy * each, iterations and seed from args) as
 * bench_run_jobs does, and returns their checksums folded in copy order. */
static inline uint64_t bench_run_copies(const char *workload, const bench_args *args,
                                        void *(*body)(void *))
{
    bench_copy *copies = (bench_copy *)bench_malloc(args->threads * sizeof *copies);
    for (unsigned long i = 0; i < args->threads; i++) {
        copies[i].iterations = args->iterations;
        copies[i].seed = args->seed;
        copies[i].index = (unsigned)i;
        copies[i].checksum = 0;
    }
    bench_run_jobs(workload, copies, sizeof *copies, args->threads, body);
    uint64_t checksum = bench_fold_jobs(copies, sizeof *copies, args->threads,
                                        offsetof(bench_copy, checksum));
    free(copies);
    return checksum;
}

#endif /* HT_BENCH_COMMON_H */
