/* small.c — millions of small objects (8–64 B) built in bulk and torn down out of order.
 * Two phases of `iterations` objects each. Array: the objects are allocated and written,
 * half are freed in a scattered order and replaced by objects of other sizes, then all are
 * freed in a second scattered order. Linked: nodes are inserted into chained hash buckets and
 * freed bucket by bucket, an order unrelated to allocation order. With threads > 1,
 * independent copies run side by side.
 */
#include "bench_common.h"

#define SMALL_MIN_SIZE 8u
#define SMALL_MAX_SIZE 64u
#define SMALL_NODES_PER_BUCKET 8u
/* Starting points for the scatter multipliers (see small_coprime). */
#define SMALL_SCATTER_A 0x9e3779b1ul
#define SMALL_SCATTER_B 0x85ebca6bul

typedef struct small_node {
    struct small_node *next;
    uint64_t key;
    unsigned char payload[]; /* 0–48 bytes of the key's low byte */
} small_node;

static unsigned long small_gcd(unsigned long a, unsigned long b)
{
    while (b != 0) {
        unsigned long r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* A multiplier coprime with count: then n * m mod count visits every index once, scattered. */
static unsigned long small_coprime(unsigned long start, unsigned long count)
{
    unsigned long m = start % count;
    while (m == 0 || small_gcd(m, count) != 1)
        m++;
    return m;
}

static uint64_t small_array_phase(bench_rng *rng, unsigned long count, uint64_t checksum)
{
    void **objects = bench_malloc(count * sizeof *objects);
    uint8_t *sizes = bench_malloc(count);
    uint64_t base = bench_next(rng);
    unsigned long scatter_a = small_coprime(SMALL_SCATTER_A, count);
    unsigned long scatter_b = small_coprime(SMALL_SCATTER_B, count);

    for (unsigned long i = 0; i < count; i++) {
        sizes[i] = (uint8_t)bench_between(rng, SMALL_MIN_SIZE, SMALL_MAX_SIZE);
        objects[i] = bench_malloc(sizes[i]);
        bench_stamp(objects[i], sizes[i], base + i);
    }
    for (unsigned long n = 0; n < count / 2; n++) {
        unsigned long i = (unsigned long)(((uint64_t)n * scatter_a) % count);
        if (bench_check(objects[i], sizes[i], base + i) != 0)
            bench_corrupt("small", "array", sizes[i]);
        free(objects[i]);
        sizes[i] = (uint8_t)bench_between(rng, SMALL_MIN_SIZE, SMALL_MAX_SIZE);
        objects[i] = bench_malloc(sizes[i]);
        bench_stamp(objects[i], sizes[i], base + i);
    }
    for (unsigned long n = 0; n < count; n++) {
        unsigned long i = (unsigned long)(((uint64_t)n * scatter_b) % count);
        if (bench_check(objects[i], sizes[i], base + i) != 0)
            bench_corrupt("small", "array", sizes[i]);
        checksum = bench_fold(checksum, (base + i) ^ sizes[i]);
        free(objects[i]);
    }
    free(sizes);
    free(objects);
    return checksum;
}

static uint64_t small_linked_phase(bench_rng *rng, unsigned long count, uint64_t checksum)
{
    unsigned long bucket_count = count / SMALL_NODES_PER_BUCKET + 1;
    small_node **buckets = calloc(bucket_count, sizeof *buckets);
    if (buckets == NULL) {
        fprintf(stderr, "small: cannot allocate buckets\n");
        exit(EXIT_FAILURE);
    }
    for (unsigned long i = 0; i < count; i++) {
        size_t payload = bench_between(rng, 0, SMALL_MAX_SIZE - sizeof(small_node));
        small_node *node = bench_malloc(sizeof *node + payload);
        node->key = bench_next(rng);
        memset(node->payload, (int)(node->key & 0xff), payload);
        small_node **bucket = &buckets[bench_mix(node->key) % bucket_count];
        node->next = *bucket;
        *bucket = node;
    }
    for (unsigned long b = 0; b < bucket_count; b++) {
        small_node *node = buckets[b];
        while (node != NULL) {
            small_node *next = node->next;
            if (bench_mix(node->key) % bucket_count != b)
                bench_corrupt("small", "node", sizeof *node);
            checksum = bench_fold(checksum, node->key);
            free(node);
            node = next;
        }
    }
    free(buckets);
    return checksum;
}

static void *small_run(void *arg)
{
    bench_copy *job = arg;
    bench_rng rng;
    uint64_t checksum = 0;

    bench_rng_init(&rng, job->seed, job->index);
    checksum = small_array_phase(&rng, job->iterations, checksum);
    checksum = small_linked_phase(&rng, job->iterations, checksum);
    job->checksum = checksum;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args args = {.threads = 1, .iterations = 1ul << 20, .seed = 1};
    bench_parse_args(argc, argv, &args,
                     "bulk small objects, scattered teardown; iterations = objects per phase");

    bench_print_checksum(bench_run_copies("small", &args, small_run));
    return 0;
}
