/* launch.c — bench_launch: runs one workload and reports its peak RSS, for bench/run.py.
 * A child's ru_maxrss starts at the RSS of the process that forked it (the kernel carries
 * the old address space's high-water mark across exec), so a Python runner cannot measure
 * peaks below its own ~20 MiB. This small program forks the workload instead, waits for it
 * with wait4 and writes "maxrss_kib wall_ns wait_status cpu_us" to RESULT_FILE. The preload
 * library, if any, is set in the child only, so this process keeps the C library's malloc.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LAUNCH_EXIT_USAGE 64
#define LAUNCH_EXIT_FAILED 70 /* sysexits' EX_SOFTWARE: the launcher itself failed */

static int64_t now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr,
                "usage: %s RESULT_FILE PRELOAD|- PROGRAM [ARGS...]\n"
                "  runs PROGRAM (with LD_PRELOAD=PRELOAD unless '-'), then writes\n"
                "  \"maxrss_kib wall_ns wait_status cpu_us\" to RESULT_FILE (cpu: user +\n"
                "  system); exits like PROGRAM\n",
                argv[0]);
        return LAUNCH_EXIT_USAGE;
    }
    const char *result_path = argv[1];
    const char *preload = argv[2];

    int64_t start = now_ns();
    pid_t child = fork();
    if (child < 0) {
        perror("bench_launch: fork");
        return LAUNCH_EXIT_FAILED;
    }
    if (child == 0) {
        if (strcmp(preload, "-") == 0)
            unsetenv("LD_PRELOAD");
        else if (setenv("LD_PRELOAD", preload, 1) != 0)
            _exit(LAUNCH_EXIT_FAILED);
        execvp(argv[3], argv + 3);
        fprintf(stderr, "bench_launch: cannot run %s: %s\n", argv[3], strerror(errno));
        _exit(127);
    }

    int status = 0;
    struct rusage usage;
    pid_t waited;
    do {
        waited = wait4(child, &status, 0, &usage);
    } while (waited < 0 && errno == EINTR);
    int64_t wall = now_ns() - start;
    if (waited < 0) {
        perror("bench_launch: wait4");
        return LAUNCH_EXIT_FAILED;
    }

    long long cpu_us = ((long long)usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                       usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    FILE *result = fopen(result_path, "w");
    int written = -1;
    if (result != NULL)
        written = fprintf(result, "%ld %lld %d %lld\n", usage.ru_maxrss, (long long)wall, status,
                          cpu_us);
    if (result == NULL || written < 0 || fclose(result) != 0) {
        perror("bench_launch: result file");
        return LAUNCH_EXIT_FAILED;
    }
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return WEXITSTATUS(status);
}
