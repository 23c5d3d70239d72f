/* oom.c — ask_too_much() asks malloc for 2^60 bytes, which fails (NULL); the program returns 0.
 * heaptrail check --fail-on-oom: one finding, an invalid operation "alloc" whose stack has
 * ask_too_much; no finding without the option. */
#include <stdlib.h>

static void ask_too_much(void)
{
    volatile size_t size = (size_t)1 << 60;
    void *volatile block = malloc(size);
    if (block)
        free(block);
}

int main(void)
{
    ask_too_much();
    return 0;
}
