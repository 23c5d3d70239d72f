/* reachable.c — blocks still reachable at exit: 100 bytes through a global pointer
 * (keep_global), 200 through a static local (keep_static), and a 16-byte holder pointed to by a
 * global with a 300-byte block in it (keep_in_struct). The program returns 0. heaptrail check:
 * no finding by default; with --leaks=all each is one, class still_reachable. */
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

struct holder {
    char *inner;
    size_t size;
};

char *kept_global;
struct holder *kept_holder;

static void keep_global(void)
{
    kept_global = malloc(100);
    memset(kept_global, 1, 100);
}

static void keep_static(void)
{
    static char *kept;
    if (!kept)
        kept = malloc(200);
    memset(kept, 2, 200);
}

static void keep_in_struct(void)
{
    kept_holder = malloc(sizeof *kept_holder);
    kept_holder->size = 300;
    kept_holder->inner = malloc(kept_holder->size);
    memset(kept_holder->inner, 3, kept_holder->size);
}

int main(void)
{
    keep_global();
    keep_static();
    keep_in_struct();
    scrub_stack();
    return 0;
}
