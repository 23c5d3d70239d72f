/* peak.c — grow_big() allocates 4 MiB at once, writes it and frees it; the program returns 0.
 * heaptrail check --max-peak 1M: a peak finding of at least 4 MiB; no finding without
 * --max-peak or with --max-peak 64M. */
#include <stdlib.h>
#include <string.h>

#define BIG (4u << 20)

static void grow_big(void)
{
    char *volatile big = malloc(BIG);
    memset(big, 7, BIG);
    free(big);
}

int main(void)
{
    grow_big();
    return 0;
}
