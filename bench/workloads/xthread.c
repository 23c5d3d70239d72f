/* xthread.c — producer/consumer: blocks allocated on one thread are freed on another.
 * Producers allocate and stamp blocks (mostly 16–256 B, some up to 4 KiB, rare up to
 * 32 KiB) and pass them in batches through a bounded queue; consumers check each block and
 * free it, together with the batch that carried it. The checksum is a sum over blocks, so
 * it does not depend on which consumer got which batch. threads = producers + consumers
 * (half each, at least one of each).
 */
#include "bench_common.h"

#include <pthread.h>

#define XT_BATCH 64u       /* blocks per queue entry */
#define XT_QUEUE_SLOTS 32u /* queue bound, in batches */
#define XT_HEADER 16u      /* stamp and size at the start of every block */

typedef struct xt_batch {
    unsigned count;
    void *blocks[XT_BATCH];
} xt_batch;

typedef struct xt_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    xt_batch *ring[XT_QUEUE_SLOTS];
    unsigned head;
    unsigned count;
    unsigned producers_left;
} xt_queue;

typedef struct xt_worker {
    xt_queue *queue;
    int producer; /* else a consumer */
    unsigned long blocks;
    uint64_t seed;
    unsigned index;
    uint64_t sum; /* consumer: sum of the mixed stamps it freed */
} xt_worker;

static void xt_push(xt_queue *queue, xt_batch *batch)
{
    pthread_mutex_lock(&queue->lock);
    while (queue->count == XT_QUEUE_SLOTS)
        pthread_cond_wait(&queue->not_full, &queue->lock);
    queue->ring[(queue->head + queue->count) % XT_QUEUE_SLOTS] = batch;
    queue->count++;
    pthread_cond_signal(&queue->not_empty);
    pthread_mutex_unlock(&queue->lock);
}

/* NULL once the queue is empty and every producer has finished. */
static xt_batch *xt_pop(xt_queue *queue)
{
    xt_batch *batch = NULL;
    pthread_mutex_lock(&queue->lock);
    while (queue->count == 0 && queue->producers_left > 0)
        pthread_cond_wait(&queue->not_empty, &queue->lock);
    if (queue->count > 0) {
        batch = queue->ring[queue->head];
        queue->head = (queue->head + 1) % XT_QUEUE_SLOTS;
        queue->count--;
        pthread_cond_signal(&queue->not_full);
    }
    pthread_mutex_unlock(&queue->lock);
    return batch;
}

static size_t xt_size(bench_rng *rng)
{
    uint32_t pick = bench_below(rng, 1000);
    if (pick < 900)
        return bench_between(rng, XT_HEADER, 256);
    if (pick < 995)
        return bench_between(rng, 257, 4096);
    return bench_between(rng, 4097, 32768);
}

static void *xt_produce(void *arg)
{
    xt_worker *worker = arg;
    bench_rng rng;
    xt_batch *batch = NULL;

    bench_rng_init(&rng, worker->seed, worker->index);
    for (unsigned long i = 0; i < worker->blocks; i++) {
        if (batch == NULL) {
            batch = bench_malloc(sizeof *batch);
            batch->count = 0;
        }
        size_t size = xt_size(&rng);
        uint64_t stamp = bench_next(&rng);
        unsigned char *block = bench_malloc(size);
        bench_stamp(block, size, stamp);
        memcpy(block + sizeof stamp, &size, sizeof size);
        batch->blocks[batch->count++] = block;
        if (batch->count == XT_BATCH) {
            xt_push(worker->queue, batch);
            batch = NULL;
        }
    }
    if (batch != NULL)
        xt_push(worker->queue, batch);

    xt_queue *queue = worker->queue;
    pthread_mutex_lock(&queue->lock);
    if (--queue->producers_left == 0)
        pthread_cond_broadcast(&queue->not_empty);
    pthread_mutex_unlock(&queue->lock);
    return NULL;
}

static void *xt_consume(void *arg)
{
    xt_worker *worker = arg;
    xt_batch *batch;
    uint64_t sum = 0;

    while ((batch = xt_pop(worker->queue)) != NULL) {
        for (unsigned i = 0; i < batch->count; i++) {
            unsigned char *block = batch->blocks[i];
            uint64_t stamp;
            size_t size;
            memcpy(&stamp, block, sizeof stamp);
            memcpy(&size, block + sizeof stamp, sizeof size);
            if (size < XT_HEADER || size > 32768)
                bench_corrupt("xthread", "size header", size);
            /* The size overwrote the fill, so restore it before the generic check. */
            memset(block + sizeof stamp, (int)(stamp >> 56), sizeof size);
            if (size < 2 * sizeof stamp + sizeof size)
                memcpy(block + size - sizeof stamp, &stamp, sizeof stamp);
            if (bench_check(block, size, stamp) != 0)
                bench_corrupt("xthread", "consumer", size);
            sum += bench_mix(stamp ^ size);
            free(block);
        }
        free(batch);
    }
    worker->sum = sum;
    return NULL;
}

static void *xt_work(void *arg)
{
    xt_worker *worker = arg;
    return worker->producer ? xt_produce(worker) : xt_consume(worker);
}

int main(int argc, char **argv)
{
    bench_args args = {.threads = 4, .iterations = 2000000, .seed = 1};
    bench_parse_args(argc, argv, &args,
                     "producers allocate, consumers free; iterations = blocks per producer");
    if (args.threads < 2) {
        fprintf(stderr, "xthread: needs at least 2 threads (a producer and a consumer)\n");
        return BENCH_EXIT_USAGE;
    }
    unsigned long producers = args.threads / 2;
    xt_queue queue = {.producers_left = (unsigned)producers};
    pthread_mutex_init(&queue.lock, NULL);
    pthread_cond_init(&queue.not_empty, NULL);
    pthread_cond_init(&queue.not_full, NULL);

    xt_worker *workers = bench_malloc(args.threads * sizeof *workers);
    for (unsigned long i = 0; i < args.threads; i++)
        workers[i] = (xt_worker){.queue = &queue,
                                 .producer = i < producers,
                                 .blocks = args.iterations,
                                 .seed = args.seed,
                                 .index = (unsigned)i};
    bench_run_jobs("xthread", workers, sizeof *workers, args.threads, xt_work);
    uint64_t sum = 0;
    for (unsigned long i = 0; i < args.threads; i++)
        sum += workers[i].sum;
    free(workers);
    bench_print_checksum(bench_fold(sum, args.iterations * producers));
    return 0;
}
