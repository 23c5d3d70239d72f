/* leaky.c — a plain malloc program with known numbers, recorded by heaptrail (preload library)
 * and by heaptrack for run_tests.py: leak_parser() and leak_cache() (through the inlined
 * cache_entry()) leak LEAK_*_COUNT blocks, build_peak() holds the peak, make_temporaries()
 * makes TEMP_COUNT temporary allocations, churn() none; under heaptrail only, misuse() frees
 * twice and frees a pointer no heap owns (glibc would abort). No stdio: its buffers would blur
 * the numbers. Under the preload library it starts tracing itself unless the library did. */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LEAK_A_COUNT 7
#define LEAK_A_SIZE 4096
#define LEAK_B_COUNT 5
#define LEAK_B_SIZE 10000
#define PEAK_COUNT 8
#define PEAK_SIZE (1u << 20)
#define TEMP_COUNT 25
#define TEMP_SIZE 48
#define CHURN_BLOCKS 40

static void *leaked[LEAK_A_COUNT + LEAK_B_COUNT];
static volatile int iterations_a = LEAK_A_COUNT, iterations_b = LEAK_B_COUNT;
static char foreign[64];

__attribute__((noinline)) static void *leak_parser(size_t size)
{
    char *p = malloc(size);
    if (p)
        memset(p, 'a', size);
    return p;
}

/* Inlined into leak_cache: its frame comes from the DWARF inline records. */
static inline __attribute__((always_inline)) void *cache_entry(size_t size)
{
    char *p = malloc(size);
    if (p)
        memset(p, 'b', size);
    return p;
}

__attribute__((noinline)) static void *leak_cache(size_t size)
{
    void *p = cache_entry(size);
    __asm__ volatile("" : : "r"(p) : "memory");
    return p;
}

__attribute__((noinline)) static void build_peak(void **blocks)
{
    for (unsigned i = 0; i < PEAK_COUNT; i++) {
        blocks[i] = malloc(PEAK_SIZE);
        if (blocks[i])
            memset(blocks[i], (int)i, 64);
    }
}

__attribute__((noinline)) static void release_peak(void **blocks)
{
    for (unsigned i = 0; i < PEAK_COUNT; i++)
        free(blocks[i]);
}

__attribute__((noinline)) static void make_temporaries(void)
{
    for (int i = 0; i < TEMP_COUNT; i++) {
        volatile char *p = malloc(TEMP_SIZE);
        if (p)
            p[0] = 1;
        free((void *)p);
    }
}

/* Allocations freed in allocation order: none is freed by the very next heap operation. */
__attribute__((noinline)) static void churn(void)
{
    void *blocks[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++)
        blocks[i] = malloc((size_t)(32 + 16 * i));
    for (int i = 0; i < CHURN_BLOCKS; i++)
        free(blocks[i]);
}

__attribute__((noinline)) static void misuse(void)
{
    char *p = malloc(64);
    free(p);
    free(p);            /* double free */
    free(foreign + 16); /* not a heap block */
}

int main(void)
{
    int (*active)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "ht_trace_is_active");
    int (*start)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "ht_trace_start_from_env");
    if (start && !(active && active()))
        start();

    churn();
    int n = 0;
    for (int i = 0; i < iterations_a; i++)
        leaked[n++] = leak_parser(LEAK_A_SIZE);
    for (int i = 0; i < iterations_b; i++)
        leaked[n++] = leak_cache(LEAK_B_SIZE);
    void *peak[PEAK_COUNT];
    build_peak(peak);
    release_peak(peak);
    make_temporaries();
    if (start)
        misuse();
    return leaked[0] ? 0 : 1;
}
