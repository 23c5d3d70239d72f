/* realloc.c — string builders grown with realloc, interleaved so growth rarely happens
 * at the top of the heap. Half the builders grow to the exact new length on every append
 * (small steps, targets 64 B–64 KiB); the others double their capacity (targets up to
 * 4 MiB) and shrink to fit when done. A finished buffer is checked byte for byte against
 * the stream that filled it, freed, and its builder restarts. iterations = appends per
 * thread; with threads > 1, independent copies run side by side.
 */
#include "bench_common.h"

#define RB_BUILDERS 32u
#define RB_MAX_APPEND 64u

typedef struct rb_builder {
    unsigned char *buffer;
    size_t length;
    size_t capacity;
    size_t target;
    int doubling;
    uint64_t content;     /* state of the byte stream written into the buffer */
    uint64_t first_state; /* its initial state, to check the buffer at the end */
} rb_builder;

/* The content stream: an LCG whose top byte is the next character. */
static inline unsigned char rb_next_byte(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned char)(*state >> 56);
}

static void rb_start(rb_builder *builder, bench_rng *rng)
{
    builder->doubling = (int)(bench_next(rng) & 1);
    builder->target = builder->doubling ? bench_log_size(rng, 6, 22)  /* 64 B .. 4 MiB */
                                        : bench_log_size(rng, 6, 16); /* 64 B .. 64 KiB */
    builder->buffer = NULL;
    builder->length = 0;
    builder->capacity = 0;
    builder->first_state = bench_next(rng);
    builder->content = builder->first_state;
}

static uint64_t rb_finish(rb_builder *builder, uint64_t checksum)
{
    if (builder->doubling && builder->capacity != builder->length) {
        unsigned char *fitted = realloc(builder->buffer, builder->length);
        if (fitted == NULL) {
            fprintf(stderr, "realloc: shrinking to %zu bytes failed\n", builder->length);
            exit(EXIT_FAILURE);
        }
        builder->buffer = fitted;
    }
    uint64_t state = builder->first_state;
    uint64_t hash = 0;
    for (size_t i = 0; i < builder->length; i++) {
        if (builder->buffer[i] != rb_next_byte(&state))
            bench_corrupt("realloc", "buffer content", builder->length);
        if ((i & 4095) == 0)
            hash = bench_fold(hash, builder->buffer[i]);
    }
    free(builder->buffer);
    return bench_fold(checksum, hash ^ builder->length);
}

static void rb_append(rb_builder *builder, size_t count)
{
    size_t needed = builder->length + count;
    if (needed > builder->capacity) {
        size_t capacity = needed;
        if (builder->doubling) {
            capacity = builder->capacity ? builder->capacity : 32;
            while (capacity < needed)
                capacity *= 2;
        }
        unsigned char *grown = realloc(builder->buffer, capacity);
        if (grown == NULL) {
            fprintf(stderr, "realloc: growing to %zu bytes failed\n", capacity);
            exit(EXIT_FAILURE);
        }
        builder->buffer = grown;
        builder->capacity = capacity;
    }
    for (size_t i = 0; i < count; i++)
        builder->buffer[builder->length + i] = rb_next_byte(&builder->content);
    builder->length = needed;
}

static void *rb_run(void *arg)
{
    bench_copy *job = arg;
    rb_builder builders[RB_BUILDERS];
    bench_rng rng;
    uint64_t checksum = 0;

    bench_rng_init(&rng, job->seed, job->index);
    for (unsigned i = 0; i < RB_BUILDERS; i++)
        rb_start(&builders[i], &rng);
    for (unsigned long n = 0; n < job->iterations; n++) {
        rb_builder *builder = &builders[bench_below(&rng, RB_BUILDERS)];
        rb_append(builder, bench_between(&rng, 1, RB_MAX_APPEND));
        if (builder->length >= builder->target) {
            checksum = rb_finish(builder, checksum);
            rb_start(builder, &rng);
        }
    }
    for (unsigned i = 0; i < RB_BUILDERS; i++)
        checksum = rb_finish(&builders[i], checksum);
    job->checksum = checksum;
    return NULL;
}

int main(int argc, char **argv)
{
    bench_args args = {.threads = 1, .iterations = 7000000, .seed = 1};
    bench_parse_args(argc, argv, &args,
                     "interleaved string builders grown by realloc; iterations = appends");

    bench_print_checksum(bench_run_copies("realloc", &args, rb_run));
    return 0;
}
