/* churn.c — single-threaded random allocate/free over mixed sizes.
 * Sizes: mostly 16–512 B, some up to 64 KiB, rare up to 1 MiB. A window of slots holds the
 * live blocks; each step picks a slot, frees what it holds (after checking its stamp) and
 * refills it half the time, so about two thirds of the window is live. The window size
 * changes by phase between 10^4 and 10^5 slots, so the heap grows and shrinks. Every block
 * is written in full. With threads > 1, independent copies run side by side.
 */
#include "bench_common.h"

#define CHURN_MAX_SLOTS 100000u
#define CHURN_MIN_SLOTS 10000u
#define CHURN_PHASE_STEPS 200000ul

typedef struct churn_slot {
    void *block;
    size_t size;
    uint64_t stamp;
} churn_slot;

static size_t churn_size(bench_rng *rng)
{
    uint32_t pick = bench_below(rng, 10000);
    if (pick < 9650)
        return bench_between(rng, 16, 512);
    if (pick < 9995)
        return bench_log_size(rng, 9, 16); /* 512 B .. 64 KiB */
    return bench_log_size(rng, 16, 20);    /* 64 KiB .. 1 MiB */
}

static uint64_t churn_release(churn_slot *slot, uint64_t checksum)
{
    if (bench_check(slot->block, slot->size, slot->stamp) != 0)
        bench_corrupt("churn", "free", slot->size);
    checksum = bench_fold(checksum, slot->stamp ^ slot->size);
    free(slot->block);
    slot->block = NULL;
    return checksum;
}

static void *churn_run(void *arg)
{
    bench_copy *job = arg;
    churn_slot *slots = calloc(CHURN_MAX_SLOTS, sizeof *slots);
    bench_rng rng;
    uint64_t checksum = 0;
    uint32_t window = CHURN_MAX_SLOTS / 2;

    if (slots == NULL) {
        fprintf(stderr, "churn: cannot allocate the slot array\n");
        exit(EXIT_FAILURE);
    }
    bench_rng_init(&rng, job->seed, job->index);
    for (unsigned long step = 0; step < job->iterations; step++) {
        if (step % CHURN_PHASE_STEPS == 0 && step != 0) {
            uint32_t next = (uint32_t)bench_between(&rng, CHURN_MIN_SLOTS, CHURN_MAX_SLOTS);
            for (uint32_t i = next; i < window; i++)
                if (slots[i].block != NULL)
                    checksum = churn_release(&slots[i], checksum);
            window = next;
        }
        churn_slot *slot = &slots[bench_below(&rng, window)];
        if (slot->block != NULL) {
            checksum = churn_release(slot, checksum);
            if (bench_next(&rng) & 1)
                continue;
        }
        slot->size = churn_size(&rng);
        slot->stamp = bench_next(&rng);
        slot->block = bench_malloc(slot->size);
        bench_stamp(slot->block, slot->size, slot->stamp);
    }
    for (uint32_t i = 0; i < CHURN_MAX_SLOTS; i++)
        if (slots[i].block != NULL)
            checksum = churn_release(&slots[i], checksum);
    free(slots);
    job->checksum = checksum;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args args = {.threads = 1, .iterations = 3000000, .seed = 1};
    bench_parse_args(argc, argv, &args,
                     "random alloc/free churn of mixed sizes; iterations = steps per thread");

    bench_print_checksum(bench_run_copies("churn", &args, churn_run));
    return 0;
}
