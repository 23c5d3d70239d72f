/* control_target.c — a long-running program for the control tests (heaptrail start, stop,
 * status, snapshot): it obeys one command per line on stdin and answers "ok" on stdout.
 *
 *   alloc SIZE COUNT   allocate COUNT blocks of SIZE bytes and keep them
 *   free SIZE          free the kept blocks of SIZE bytes
 *   churn SIZE COUNT   allocate and free COUNT blocks of SIZE bytes
 *   fork SIZE COUNT    fork a child that churns COUNT blocks of SIZE bytes and leaves through
 *                      exit(); wait for it
 *   guard_sigpipe      from now on a SIGPIPE (which heaptrail must never raise at the program,
 *                      whatever happens to the reader of its trace) ends it with exit 86
 *   quit               free nothing, exit 0
 * Blocks are allocated with malloc, so LD_PRELOAD decides which heap serves them. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { MAX_KEPT = 100000 };

static void *kept[MAX_KEPT];
static size_t kept_size[MAX_KEPT];
static size_t kept_count;

static void sigpipe_caught(int signal_number)
{
    (void)signal_number;
    static const char message[] = "control_target: SIGPIPE reached the program\n";
    (void)!write(STDERR_FILENO, message, sizeof message - 1);
    _exit(86);
}

static void churn(size_t size, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        char *p = malloc(size);
        p[0] = 1;
        free(p);
    }
}

int main(void)
{
    char line[256];
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        char command[16];
        size_t size = 0, count = 0;
        int fields = sscanf(line, "%15s %zu %zu", command, &size, &count);
        if (fields < 1)
            continue;
        if (!strcmp(command, "quit")) {
            puts("ok");
            return 0;
        } else if (!strcmp(command, "alloc") && fields == 3) {
            for (size_t i = 0; i < count && kept_count < MAX_KEPT; i++) {
                kept[kept_count] = malloc(size);
                memset(kept[kept_count], 1, size);
                kept_size[kept_count++] = size;
            }
        } else if (!strcmp(command, "free") && fields >= 2) {
            for (size_t i = 0; i < kept_count; i++) {
                if (kept[i] && kept_size[i] == size) {
                    free(kept[i]);
                    kept[i] = NULL;
                }
            }
        } else if (!strcmp(command, "guard_sigpipe")) {
            struct sigaction action;
            memset(&action, 0, sizeof action);
            action.sa_handler = sigpipe_caught;
            sigaction(SIGPIPE, &action, NULL);
        } else if (!strcmp(command, "churn") && fields == 3) {
            churn(size, count);
        } else if (!strcmp(command, "fork") && fields == 3) {
            pid_t child = fork();
            if (child == 0) {
                churn(size, count);
                exit(0);
            }
            int status;
            if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status) ||
                WEXITSTATUS(status) != 0) {
                puts("error");
                continue;
            }
        } else {
            puts("error");
            continue;
        }
        puts("ok");
    }
    return 0;
}
