/* fork_child.c — fork under libheaptrail-preload.so: children allocate, free and exit while
 * the parent's other threads keep allocating, so any heap lock held at fork() would hang a child.
 *
 * Each child checks the blocks it inherited, frees them, allocates and frees its own (small,
 * LFH, back-end and large sizes), forks a grandchild that does the same, and exits; the parent
 * waits for each. Output is deterministic (run_real.sh compares it with a plain run); when the
 * heaptrail API is present, every process also validates the heap. Arguments: [forks]. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heaptrail/heap.h"

enum { INHERITED = 64, WORKERS = 3 };

static unsigned char *inherited[INHERITED];
static atomic_bool stop_workers;

static size_t inherited_size(int i)
{
    return (size_t)(i * 97 % 3000) + (i % 16 == 15 ? 600000u : 0u);
}

/* Fails when the heaptrail API is present and the process heap does not validate. */
static bool heap_validates(void)
{
    ht_heap *(*process_heap)(void) = NULL;
    bool (*validate)(ht_heap *, uint32_t, const void *) = NULL;
    *(void **)&process_heap = dlsym(RTLD_DEFAULT, "ht_process_heap");
    *(void **)&validate = dlsym(RTLD_DEFAULT, "ht_heap_validate");
    if (process_heap == NULL || validate == NULL)
        return true;
    return validate(process_heap(), 0, NULL);
}

/* Allocates, fills, checks and frees blocks of every tier; returns a checksum. */
static uint32_t churn(unsigned seed, int count)
{
    uint32_t sum = seed;
    unsigned char *held[32] = {0};
    for (int i = 0; i < count; i++) {
        size_t size = (size_t)((unsigned)i * 2654435761u % 20000u) + 1;
        if (i % 500 == 499)
            size = 700000;
        int slot = i % 32;
        free(held[slot]);
        held[slot] = malloc(size);
        if (held[slot] == NULL)
            return 0;
        memset(held[slot], (int)(i & 0xff), size);
        sum = sum * 31u + held[slot][size - 1] + (uint32_t)size;
    }
    for (int slot = 0; slot < 32; slot++)
        free(held[slot]);
    return sum;
}

static void *worker(void *argument)
{
    unsigned seed = (unsigned)(uintptr_t)argument;
    while (!atomic_load(&stop_workers))
        (void)churn(seed, 2000);
    return NULL;
}

static bool inherited_intact(void)
{
    for (int i = 0; i < INHERITED; i++)
        for (size_t j = 0; j < inherited_size(i); j++)
            if (inherited[i][j] != (unsigned char)(i + j))
                return false;
    return true;
}

/* The child's life: returns its exit status. */
static int child(int index)
{
    bool ok = inherited_intact();
    for (int i = 0; i < INHERITED; i++)
        free(inherited[i]);
    uint32_t sum = churn((unsigned)index, 5000);
    if (index % 4 == 0) { /* a grandchild: fork from a process that was itself forked */
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            uint32_t grand = churn((unsigned)index + 1000u, 3000);
            printf("grandchild %d: %08x%s\n", index, grand, heap_validates() ? "" : " INVALID");
            exit(0);
        }
        int status = 0;
        ok = ok && pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0;
    }
    ok = ok && heap_validates();
    printf("child %d: %08x %s\n", index, sum, ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    int forks = argc > 1 ? atoi(argv[1]) : 24;
    for (int i = 0; i < INHERITED; i++) {
        inherited[i] = malloc(inherited_size(i) + 1);
        for (size_t j = 0; j < inherited_size(i); j++)
            inherited[i][j] = (unsigned char)(i + j);
    }
    pthread_t workers[WORKERS];
    for (int w = 0; w < WORKERS; w++)
        if (pthread_create(&workers[w], NULL, worker, (void *)(uintptr_t)(w + 1)) != 0)
            return 2;
    int failures = 0;
    for (int i = 0; i < forks; i++) {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0)
            exit(child(i));
        int status = 0;
        bool waited = pid > 0 && waitpid(pid, &status, 0) == pid;
        bool clean = waited && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        failures += !clean;
        printf("parent: child %d %s\n", i, clean ? "exited 0" : "FAILED");
    }
    atomic_store(&stop_workers, true);
    for (int w = 0; w < WORKERS; w++)
        pthread_join(workers[w], NULL);
    bool ok = inherited_intact() && heap_validates();
    for (int i = 0; i < INHERITED; i++)
        free(inherited[i]);
    printf("parent: %d failures, heap %s, checksum %08x\n", failures, ok ? "ok" : "INVALID",
           churn(7, 4000));
    return failures == 0 && ok ? 0 : 1;
}
