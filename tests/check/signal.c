/* signal.c — leak_before_end() drops a 64-byte block, then the program ends without exit
 * handlers: raise(SIGTERM) (default action), or _exit(5) with the argument "_exit". It waits
 * 300 ms first, three flush intervals, so that the trace has the allocation whatever the end
 * leaves of the buffers. heaptrail check: no scan; the leak is not judged (exit 143, or 5) unless
 * --leaks=all (exit 23).
 *
 * Usage: signal [raise|_exit] */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "scrub.h"

static void leak_before_end(void)
{
    char *volatile block = malloc(64);
    memset(block, 0x33, 64);
    block = NULL;
}

int main(int argc, char **argv)
{
    leak_before_end();
    scrub_stack();
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
    if (argc > 1 && strcmp(argv[1], "_exit") == 0)
        _exit(5);
    raise(SIGTERM);
    return 0;
}
