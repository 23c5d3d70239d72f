/* diff_target.c — one program built twice for `heaptrail diff`'s tests: -DGROWTH=1 (the base)
 * and -DGROWTH=4 (the new build), each under the name diff_target in a directory of its own, so
 * that their frames match by function, file, line and module name while their addresses differ
 * (the new build's only_in_new() comes first and is larger). Known numbers, per build:
 *   grow_buffers()  GROW_COUNT * GROWTH blocks of GROW_SIZE, each freed at once
 *   steady()        STEADY_COUNT blocks of STEADY_SIZE, each freed: the same in both
 *   leak_more()     LEAK_COUNT * GROWTH blocks of LEAK_SIZE, never freed
 *   hold_peak()     PEAK_COUNT * GROWTH blocks of PEAK_SIZE held at once (the trace's peak)
 *   only_in_base()  GROWTH 1 only: GONE_COUNT blocks of GONE_SIZE, freed
 *   only_in_new()   GROWTH 4 only: FRESH_COUNT blocks of FRESH_SIZE, freed
 * No stdio: its buffers would blur the numbers. */
#include <stdlib.h>
#include <string.h>

#ifndef GROWTH
#define GROWTH 1
#endif

#define GROW_COUNT 10
#define GROW_SIZE 1000
#define STEADY_COUNT 5
#define STEADY_SIZE 300
#define LEAK_COUNT 2
#define LEAK_SIZE 700
#define PEAK_COUNT 3
#define PEAK_SIZE 100000
#define GONE_COUNT 6
#define GONE_SIZE 200
#define FRESH_COUNT 3
#define FRESH_SIZE 5000

static void *leaked[LEAK_COUNT * GROWTH];
static volatile int growth = GROWTH;

static void touch_and_free(void *p, size_t size)
{
    if (p)
        memset(p, 1, size < 64 ? size : 64);
    __asm__ volatile("" : : "r"(p) : "memory");
    free(p);
}

#if GROWTH > 1
__attribute__((noinline)) static void only_in_new(void)
{
    for (int i = 0; i < FRESH_COUNT; i++) {
        void *p = malloc(FRESH_SIZE);
        touch_and_free(p, FRESH_SIZE);
        __asm__ volatile("" ::: "memory");
    }
    /* More code than only_in_base(): every later function moves. */
    for (volatile int i = 0; i < 3; i++)
        __asm__ volatile("nop; nop; nop; nop; nop; nop; nop; nop" ::: "memory");
}
#else
__attribute__((noinline)) static void only_in_base(void)
{
    for (int i = 0; i < GONE_COUNT; i++) {
        void *p = malloc(GONE_SIZE);
        touch_and_free(p, GONE_SIZE);
    }
}
#endif

__attribute__((noinline)) static void grow_buffers(void)
{
    for (int i = 0; i < GROW_COUNT * growth; i++) {
        void *p = malloc(GROW_SIZE);
        touch_and_free(p, GROW_SIZE);
    }
}

__attribute__((noinline)) static void steady(void)
{
    for (int i = 0; i < STEADY_COUNT; i++) {
        void *p = malloc(STEADY_SIZE);
        touch_and_free(p, STEADY_SIZE);
    }
}

__attribute__((noinline)) static void leak_more(void)
{
    for (int i = 0; i < LEAK_COUNT * growth; i++) {
        leaked[i] = malloc(LEAK_SIZE);
        if (leaked[i])
            memset(leaked[i], 2, LEAK_SIZE);
    }
    __asm__ volatile("" : : "r"(leaked) : "memory");
}

__attribute__((noinline)) static void hold_peak(void)
{
    void *held[PEAK_COUNT * GROWTH];
    for (int i = 0; i < PEAK_COUNT * growth; i++) {
        held[i] = malloc(PEAK_SIZE);
        if (held[i])
            memset(held[i], 3, 64);
    }
    __asm__ volatile("" : : "r"(held) : "memory");
    for (int i = 0; i < PEAK_COUNT * growth; i++)
        free(held[i]);
}

int main(void)
{
#if GROWTH > 1
    only_in_new();
#else
    only_in_base();
#endif
    grow_buffers();
    steady();
    leak_more();
    hold_peak();
    return 0;
}
