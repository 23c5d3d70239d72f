/* masked.c — a thread that blocks every signal (as servers' workers often do) holds a 100-byte
 * block only in a local variable of hold_masked() and waits in a read while main leaks 77 bytes
 * in leak_here() and calls exit(0). heaptrail check: that thread cannot be stopped; the scan
 * says so (scan.complete false), takes its whole stack as roots and reads memory through a
 * system call while it runs, so its block is still reachable and the 77 bytes are the one
 * finding. The check waits for the thread half a second, no more. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrub.h"

static int never[2];
static pthread_barrier_t ready;

static void *hold_masked(void *arg)
{
    (void)arg;
    char *volatile block = malloc(100);
    memset(block, 0x22, 100);
    pthread_barrier_wait(&ready);
    char byte;
    while (read(never[0], &byte, 1) < 0) /* nobody writes: blocks until exit */
        ;
    return (void *)block;
}

static void leak_here(void)
{
    char *volatile block = malloc(77);
    memset(block, 0x33, 77);
    block = NULL;
}

int main(void)
{
    if (pipe(never) != 0)
        return 2;
    pthread_barrier_init(&ready, NULL, 2);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked */
    pthread_t thread;
    if (pthread_create(&thread, NULL, hold_masked, NULL) != 0)
        return 2;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_barrier_wait(&ready);
    leak_here();
    scrub_stack();
    return 0;
}
