/* phases.c — three phases far apart in time, each in a function of its own, for the tests of
 * time ranges (`report --from/--to`, `export --at`, the HTML report's timeline):
 *   phase_one    allocates 10 blocks of 1000 bytes
 *   phase_two    allocates 20 blocks of 2000 bytes, then frees phase one's
 *   phase_three  allocates 30 blocks of 3000 bytes (never freed), then frees phase two's
 * with GAP_MS of sleep between phases. run_tests.py finds each phase's time in the trace. */
#include <stdlib.h>
#include <time.h>

#define GAP_MS 300

static void *one[10], *two[20], *three[30];

static void gap(void)
{
    struct timespec t = {0, GAP_MS * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

__attribute__((noinline)) static void phase_one(void)
{
    for (int i = 0; i < 10; i++)
        one[i] = malloc(1000);
}

__attribute__((noinline)) static void phase_two(void)
{
    for (int i = 0; i < 20; i++)
        two[i] = malloc(2000);
    for (int i = 0; i < 10; i++)
        free(one[i]);
}

__attribute__((noinline)) static void phase_three(void)
{
    for (int i = 0; i < 30; i++)
        three[i] = malloc(3000);
    for (int i = 0; i < 20; i++)
        free(two[i]);
}

int main(void)
{
    phase_one();
    gap();
    phase_two();
    gap();
    phase_three();
    gap();
    return three[29] ? 0 : 1;
}
