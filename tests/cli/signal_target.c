/* signal_target.c — programs in the states a process can be in when `heaptrail status|start`
 * signals it (control_signal.c), for cli_test.py's control_signal test. Prints "ready" once
 * set up, then, by mode:
 *
 *   busy-malloc   main allocates and frees in a loop (never parked: the next malloc answers)
 *   busy-spin     main spins without allocating; a second thread sleeps (the signal moves on)
 *   spin-only     one thread spinning, never allocating: it cannot answer
 *   handler       installs its own SA_SIGINFO handler for the control signal (SIG), which
 *                 prints "program handler VALUE"; checks that sigaction reports it back; waits
 *                 on stdin
 *   blocked       blocks SIG and waits on stdin
 *   default       sets SIG back to SIG_DFL with signal() and waits on stdin
 * SIG is argv[2], the control signal's number. Exits when stdin closes (waiting modes) or
 * after 60 s. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void program_handler(int sig, siginfo_t *info, void *context)
{
    (void)sig;
    (void)context;
    char line[64];
    int n = snprintf(line, sizeof line, "program handler %d\n", info->si_value.sival_int);
    (void)!write(1, line, (size_t)n);
}

static void *sleeper(void *arg)
{
    (void)arg;
    sleep(60);
    return NULL;
}

static void wait_stdin(void)
{
    char buffer[64];
    while (read(0, buffer, sizeof buffer) > 0)
        ;
}

static volatile unsigned long sink;

static void spin(int allocate)
{
    time_t end = time(NULL) + 60;

    while (time(NULL) < end) {
        for (int i = 0; i < 100000; i++) {
            if (allocate) {
                char *p = malloc(32 + (size_t)(i & 255));
                p[0] = (char)i;
                sink += (unsigned char)p[0];
                free(p);
            } else {
                sink += (unsigned long)i;
            }
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 3)
        return 2;
    const char *mode = argv[1];
    int sig = atoi(argv[2]);
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(mode, "handler")) {
        struct sigaction action, back;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = program_handler;
        action.sa_flags = SA_SIGINFO | SA_RESTART;
        sigemptyset(&action.sa_mask);
        if (sigaction(sig, &action, NULL) != 0 || sigaction(sig, NULL, &back) != 0 ||
            back.sa_sigaction != program_handler) {
            printf("sigaction does not report the program's handler\n");
            return 1;
        }
        printf("ready\n");
        wait_stdin();
    } else if (!strcmp(mode, "blocked")) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_BLOCK, &set, NULL);
        printf("ready\n");
        wait_stdin();
    } else if (!strcmp(mode, "default")) {
        if (signal(sig, SIG_DFL) == SIG_ERR)
            return 1;
        printf("ready\n");
        wait_stdin();
    } else if (!strcmp(mode, "busy-spin")) {
        pthread_t thread;
        pthread_create(&thread, NULL, sleeper, NULL);
        printf("ready\n");
        spin(0);
    } else {
        printf("ready\n");
        spin(!strcmp(mode, "busy-malloc"));
    }
    return 0;
}
