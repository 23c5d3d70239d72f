/* threads.c — thread_leak() runs in a thread of its own, allocates 72 bytes, drops the pointer
 * and ends. Then four threads each allocate 56 bytes held only by a local variable of
 * hold_block(), meet main at a barrier and wait on a condition that is never signalled, while
 * main calls exit(0). heaptrail check: the scan stops the four threads and reads their stacks, so
 * their blocks are still reachable (no finding); the 72 bytes are the one definitely lost block. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "scrub.h"

#define HOLDERS 4

static pthread_barrier_t ready;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t never = PTHREAD_COND_INITIALIZER;

static void *thread_leak(void *arg)
{
    (void)arg;
    char *volatile block = malloc(72);
    memset(block, 0x11, 72);
    block = NULL;
    /* The thread's stack stays mapped in glibc's cache after the join (and a holder may get it):
     * no copy of the pointer may stay in it. */
    scrub_stack();
    return NULL;
}

static void *hold_block(void *arg)
{
    (void)arg;
    char *volatile kept = malloc(56); /* only here, in this frame */
    memset(kept, 0x22, 56);
    pthread_barrier_wait(&ready);
    pthread_mutex_lock(&lock);
    for (;;)
        pthread_cond_wait(&never, &lock);
    return NULL;
}

int main(void)
{
    pthread_t leaker;
    if (pthread_create(&leaker, NULL, thread_leak, NULL) != 0)
        return 2;
    pthread_join(leaker, NULL);
    pthread_barrier_init(&ready, NULL, HOLDERS + 1);
    pthread_t holders[HOLDERS];
    for (int i = 0; i < HOLDERS; i++)
        if (pthread_create(&holders[i], NULL, hold_block, NULL) != 0)
            return 2;
    pthread_barrier_wait(&ready);
    scrub_stack();
    exit(0);
}
