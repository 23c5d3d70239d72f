/* double_free.c — release_twice() frees a 40-byte block twice, then the program returns 0.
 * heaptrail check: one finding, an invalid free whose stack has release_twice (glibc alone
 * would abort). */
#include <stdlib.h>
#include <string.h>

static void release_twice(void)
{
    /* volatile: the second free stays out of the compiler's sight */
    char *volatile block = malloc(40);
    memset(block, 1, 40);
    free(block);
    free(block);
}

int main(void)
{
    release_twice();
    return 0;
}
