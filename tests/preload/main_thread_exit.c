/* main_thread_exit.c — main ends with pthread_exit while a worker still runs: the process must
 * end when the worker does, with status 0 and its buffered output flushed, exactly as without
 * the preload (heaptrail's own threads must not keep it alive). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *worker(void *arg)
{
    (void)arg;
    usleep(200 * 1000);
    char *text = malloc(64);
    if (!text)
        return NULL;
    strcpy(text, "worker finished after main");
    printf("%s\n", text); /* buffered: lost unless the process exits through exit() */
    free(text);
    return NULL;
}

int main(void)
{
    pthread_t thread;
    if (pthread_create(&thread, NULL, worker, NULL) != 0)
        return 1;
    free(malloc(32));
    printf("main exits first\n");
    pthread_exit(NULL);
}
