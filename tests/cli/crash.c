/* crash.c — dies by a fatal signal after allocating, for the tests of the preload's
 * fatal-signal flush: the trace must hold every allocation made before the crash.
 *
 * Usage: crash segv|abort|bus|term COUNT — allocates COUNT blocks of 4242 bytes (kept), prints
 * "allocated", then dereferences NULL, calls abort(), raises SIGBUS, or waits for SIGTERM. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    int count = atoi(argv[2]);
    for (int i = 0; i < count; i++) {
        char *block = malloc(4242);
        block[0] = (char)i;
        if (i % 2)
            free(malloc(4343));
    }
    printf("allocated\n");
    fflush(stdout);
    if (!strcmp(argv[1], "segv"))
        *(volatile int *)(uintptr_t)(argc - argc) = 1; /* NULL, out of the optimizer's sight */
    else if (!strcmp(argv[1], "abort"))
        abort();
    else if (!strcmp(argv[1], "bus"))
        raise(SIGBUS);
    else if (!strcmp(argv[1], "term"))
        for (;;)
            pause();
    return 0;
}
