/* larson.c — a Larson-like server workload: frees cross threads as work moves on.
 * Each of `threads` chains owns an array of slots holding blocks of 16–1024 B. A thread
 * replaces random slots with new blocks (checking and freeing the old one) for one
 * generation, then starts a new thread that inherits the array and exits, so most blocks
 * are freed by a thread other than the one that allocated them, after their allocating
 * thread is gone. The checksum folds each chain in order, then the chains in order.
 */
#include "bench_common.h"

#include <pthread.h>

#define LARSON_SLOTS 1000u
#define LARSON_GENERATION_STEPS 10000ul
#define LARSON_MIN_SIZE 16u
#define LARSON_MAX_SIZE 1024u

typedef struct larson_chain {
    void *blocks[LARSON_SLOTS];
    uint32_t sizes[LARSON_SLOTS];
    uint64_t stamps[LARSON_SLOTS];
    bench_rng rng;
    unsigned long steps_left;
    uint64_t checksum;
    pthread_t predecessor; /* joined by the next generation */
    int has_predecessor;
    pthread_t last; /* the final generation, joined by main */
    int done;
} larson_chain;

static pthread_mutex_t larson_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t larson_done_cond = PTHREAD_COND_INITIALIZER;

static void larson_fill(larson_chain *chain, uint32_t slot)
{
    uint32_t size = (uint32_t)bench_between(&chain->rng, LARSON_MIN_SIZE, LARSON_MAX_SIZE);
    uint64_t stamp = bench_next(&chain->rng);
    void *block = bench_malloc(size);
    bench_stamp(block, size, stamp);
    chain->blocks[slot] = block;
    chain->sizes[slot] = size;
    chain->stamps[slot] = stamp;
}

static void larson_release(larson_chain *chain, uint32_t slot)
{
    if (bench_check(chain->blocks[slot], chain->sizes[slot], chain->stamps[slot]) != 0)
        bench_corrupt("larson", "slot", chain->sizes[slot]);
    chain->checksum = bench_fold(chain->checksum, chain->stamps[slot] ^ chain->sizes[slot]);
    free(chain->blocks[slot]);
}

static void *larson_generation(void *arg)
{
    larson_chain *chain = arg;

    /* Reap the thread that handed the array over; it has finished its work. */
    if (chain->has_predecessor)
        pthread_join(chain->predecessor, NULL);
    unsigned long steps = chain->steps_left < LARSON_GENERATION_STEPS ? chain->steps_left
                                                                      : LARSON_GENERATION_STEPS;
    for (unsigned long i = 0; i < steps; i++) {
        uint32_t slot = bench_below(&chain->rng, LARSON_SLOTS);
        larson_release(chain, slot);
        larson_fill(chain, slot);
    }
    chain->steps_left -= steps;
    if (chain->steps_left > 0) {
        pthread_t next;
        chain->predecessor = pthread_self();
        chain->has_predecessor = 1;
        if (pthread_create(&next, NULL, larson_generation, chain) != 0) {
            fprintf(stderr, "larson: pthread_create failed\n");
            exit(EXIT_FAILURE);
        }
        return NULL;
    }
    for (uint32_t slot = 0; slot < LARSON_SLOTS; slot++)
        larson_release(chain, slot);
    pthread_mutex_lock(&larson_lock);
    chain->last = pthread_self();
    chain->done = 1;
    pthread_cond_broadcast(&larson_done_cond);
    pthread_mutex_unlock(&larson_lock);
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args args = {.threads = 2, .iterations = 8000000, .seed = 1};
    bench_parse_args(argc, argv, &args,
                     "larson-like slot replacement, arrays handed to new threads every "
                     "10000 steps; iterations = replacements per chain");

    larson_chain *chains = calloc(args.threads, sizeof *chains);
    if (chains == NULL) {
        fprintf(stderr, "larson: cannot allocate the chains\n");
        return EXIT_FAILURE;
    }
    for (unsigned long i = 0; i < args.threads; i++) {
        larson_chain *chain = &chains[i];
        pthread_t first;
        bench_rng_init(&chain->rng, args.seed, i);
        chain->steps_left = args.iterations;
        /* The first generation's array is filled here, by the main thread. */
        for (uint32_t slot = 0; slot < LARSON_SLOTS; slot++)
            larson_fill(chain, slot);
        if (pthread_create(&first, NULL, larson_generation, chain) != 0) {
            fprintf(stderr, "larson: pthread_create failed\n");
            return EXIT_FAILURE;
        }
    }
    for (unsigned long i = 0; i < args.threads; i++) {
        pthread_mutex_lock(&larson_lock);
        while (!chains[i].done)
            pthread_cond_wait(&larson_done_cond, &larson_lock);
        pthread_mutex_unlock(&larson_lock);
        /* Every other generation was joined by its successor. */
        pthread_join(chains[i].last, NULL);
    }
    uint64_t checksum = bench_fold_jobs(chains, sizeof *chains, args.threads,
                                        offsetof(larson_chain, checksum));
    free(chains);
    bench_print_checksum(checksum);
    return 0;
}
