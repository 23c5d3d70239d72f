/* idle.c — a program that never uses the heap: with "fork" it forks a child that leaves at once
 * through exit(), and waits for it. Under heaptrail every ALLOC, FREE or REALLOC in its traces
 * (the child's included, with --follow-forks) would be heaptrail's own (the thread-local storage
 * of its control and writer threads, for instance), which a trace must not show. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "fork") == 0) {
        pid_t child = fork();
        if (child < 0)
            return 1;
        if (child == 0)
            exit(0);
        int status;
        if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status))
            return 1;
    }
    return 0;
}
