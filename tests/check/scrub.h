/* scrub.h — for the programs of known answers that heaptrail check runs: scrub_stack() writes
 * zeros over the 64 KiB of stack below its caller, where the frames of the functions that just
 * returned (and those of malloc and the tracer under them) may still hold the pointer a test
 * wants lost; its loop and return value overwrite the caller-saved registers that held it. The
 * reachability scan reads a stack from its pointer up only, so a stale copy above would not
 * count, but one left where the exit handlers' frames do not reach would. */
#ifndef HT_CHECK_SCRUB_H
#define HT_CHECK_SCRUB_H

#include <stddef.h>

static int scrub_stack(void)
{
    volatile unsigned char area[64 * 1024];
    for (size_t i = 0; i < sizeof area; i++)
        area[i] = 0;
    return area[0];
}

#endif
