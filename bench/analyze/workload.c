/* workload.c — the program the analysis benchmark records: a plain malloc/free/realloc user
 * (no heaptrail headers), so the same binary runs under heaptrail's preload library and under
 * heaptrack. A window of live blocks is churned from 32 call paths (8 allocating functions
 * reached from 4 callers), with reallocations and temporary allocations; it stops after about
 * --events heap operations and leaves --leak blocks allocated.
 * Under the preload library it starts tracing itself (ht_trace_start_from_env, found through
 * dlsym) when the library has not started a session from the environment already. */
#include <dlfcn.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static size_t random_size(uint64_t r)
{
    switch (r % 64) {
    case 0: return (size_t)(r >> 8) % (64u << 10) + 1024; /* 1..65 KiB */
    case 1:
    case 2:
    case 3: return (size_t)(r >> 8) % 4096 + 512;
    default: return (size_t)(r >> 8) % 496 + 16; /* 16..511 */
    }
}

typedef void *(*alloc_fn)(size_t);

#define LEAF(name)                                                                                 \
    __attribute__((noinline)) static void *name(size_t n)                                          \
    {                                                                                              \
        void *p = malloc(n);                                                                       \
        if (p)                                                                                     \
            memset(p, 0x5A, n < 64 ? n : 64);                                                      \
        return p;                                                                                  \
    }
LEAF(make_node)
LEAF(make_string)
LEAF(make_buffer)
LEAF(make_record)
LEAF(make_vector)
LEAF(make_table)
LEAF(make_message)
LEAF(make_cache_entry)

static const alloc_fn leaves[8] = {make_node,   make_string, make_buffer,  make_record,
                                   make_vector, make_table,  make_message, make_cache_entry};

#define CALLER(name)                                                                               \
    __attribute__((noinline)) static void *name(unsigned leaf, size_t n)                           \
    {                                                                                              \
        void *p = leaves[leaf & 7](n);                                                             \
        __asm__ volatile("" ::: "memory");                                                         \
        return p;                                                                                  \
    }
CALLER(parse_input)
CALLER(build_index)
CALLER(handle_request)
CALLER(update_state)

typedef void *(*caller_fn)(unsigned, size_t);
static const caller_fn callers[4] = {parse_input, build_index, handle_request, update_state};

__attribute__((noinline)) static void temporary_work(size_t n)
{
    char *p = malloc(n);
    if (p) {
        p[0] = 1;
        __asm__ volatile("" : : "r"(p) : "memory");
    }
    free(p);
}

static void start_tracing(void)
{
    int (*active)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "ht_trace_is_active");
    int (*start)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "ht_trace_start_from_env");
    if (start && !(active && active()))
        start();
}

int main(int argc, char **argv)
{
    uint64_t events = 2000000, window = 100000, leak = 1000, seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        uint64_t v = strtoull(argv[i + 1], NULL, 10);
        if (!strcmp(argv[i], "--events"))
            events = v;
        else if (!strcmp(argv[i], "--window"))
            window = v ? v : 1;
        else if (!strcmp(argv[i], "--leak"))
            leak = v;
        else if (!strcmp(argv[i], "--seed"))
            seed = v;
        else {
            fprintf(stderr, "usage: %s [--events N] [--window N] [--leak N] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    start_tracing();
    rng_state = seed;
    void **slots = calloc(window, sizeof *slots);
    if (!slots)
        return 1;
    uint64_t done = 0, checksum = 0;
    while (done < events) {
        uint64_t r = rng_next();
        size_t slot = (size_t)(r % window);
        unsigned action = (unsigned)(r >> 32) % 100;
        size_t size = random_size(rng_next());
        if (action < 4) {
            temporary_work(size);
            done += 2;
            continue;
        }
        if (action < 9 && slots[slot]) {
            void *p = realloc(slots[slot], size);
            if (p)
                slots[slot] = p;
            done++;
            continue;
        }
        if (slots[slot]) {
            checksum += ((unsigned char *)slots[slot])[0];
            free(slots[slot]);
            done++;
        }
        slots[slot] = callers[(r >> 40) & 3]((unsigned)(r >> 48), size);
        done++;
    }
    /* Keep `leak` blocks, free the rest. */
    uint64_t kept = 0;
    for (size_t i = 0; i < window; i++) {
        if (!slots[i])
            continue;
        if (kept < leak) {
            kept++;
            continue;
        }
        free(slots[i]);
    }
    if (!leak)
        free(slots);
    printf("events %" PRIu64 " leaked_blocks %" PRIu64 " checksum %" PRIu64 "\n", done, kept,
           checksum);
    return 0;
}
