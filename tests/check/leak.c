/* leak.c — leak_me() allocates 48 bytes and drops the only pointer to them; with the argument
 * "other", leak_other() drops 80 bytes as well. The program returns 0. heaptrail check: one
 * definitely lost block per leaking function, its stack through that function (the tests of
 * suppressions remove one and keep the other).
 *
 * Usage: leak [other] */
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

static void leak_me(void)
{
    char *volatile block = malloc(48); /* volatile: held in memory, then overwritten */
    memset(block, 0x5a, 48);
    block = NULL;
}

static void leak_other(void)
{
    char *volatile block = malloc(80);
    memset(block, 0x5b, 80);
    block = NULL;
}

int main(int argc, char **argv)
{
    leak_me();
    if (argc > 1 && strcmp(argv[1], "other") == 0)
        leak_other();
    scrub_stack();
    return 0;
}
