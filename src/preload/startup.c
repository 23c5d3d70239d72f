/* startup.c — the process-level wiring of libheaptrail-preload.so (preload.c owns the malloc
 * family): tracing from the environment at start-up, fatal signals, fork, control (the control
 * signal's handler; signals.c keeps it when the program sets its own).
 * Who traces (README "Running a program"): without HEAPTRAIL_OWNER_PID, every process given
 * HEAPTRAIL_OUTPUT/HEAPTRAIL_FD; with it, that pid (whatever it execs), and descendants only with
 * HEAPTRAIL_FOLLOW_FORKS=1 and "%p" in the output. The environment is read, never changed: some
 * programs (bash) replace setenv/getenv and must not be reached before their main. Fatal signals
 * flush the trace, then go where they would have gone without us. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "heaptrail/heap.h"
#include "heaptrail/trace.h"
#include "trace/options.h"

static bool is_set(const char *value)
{
    return value != NULL && value[0] != '\0';
}

/* The "who traces" rule. Values are checked by options.c: a bad one is one line on stderr and
 * no tracing. */
static bool tracing_wanted(void)
{
    const char *output = getenv("HEAPTRAIL_OUTPUT");
    if (!is_set(output) && !is_set(getenv("HEAPTRAIL_FD")))
        return false;
    hti_option_value owner, follow;
    int has_owner = hti_option_getenv(HTI_OPTION_OWNER_PID, &owner, "tracing not started");
    if (has_owner < 0)
        return false;
    if (!has_owner || owner.number == (uint64_t)getpid())
        return true; /* the traced process, or a program it became through exec */
    /* A descendant: only when following forks, and never into the same file or descriptor. */
    int has_follow = hti_option_getenv(HTI_OPTION_FOLLOW_FORKS, &follow, "tracing not started");
    return has_follow > 0 && follow.number && is_set(output) && strstr(output, "%p") != NULL;
}

/* ---- Fatal signals ----------------------------------------------------------------------
 * The handler flushes the trace (async-signal-safe), puts the previous disposition back, and
 * lets the signal reach it: a fault raised by an instruction is simply re-executed (so the
 * previous handler sees the real siginfo), anything else is raised again and delivered once
 * this handler returns. Signals found ignored at start-up are left alone. */
static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#define FATAL_SIGNAL_COUNT (sizeof fatal_signals / sizeof fatal_signals[0])
static struct sigaction previous_actions[FATAL_SIGNAL_COUNT];

static void fatal_signal(int signal_number, siginfo_t *info, void *context)
{
    (void)context;
    int saved_errno = errno;
    ht_trace_emergency_flush();
    for (size_t i = 0; i < FATAL_SIGNAL_COUNT; i++)
        if (fatal_signals[i] == signal_number)
            sigaction(signal_number, &previous_actions[i], NULL);
    bool from_instruction = signal_number != SIGABRT && info != NULL && info->si_code > 0;
    if (!from_instruction)
        raise(signal_number);
    errno = saved_errno;
}

static void install_fatal_signal_handlers(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = fatal_signal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&action.sa_mask);
    for (size_t i = 0; i < FATAL_SIGNAL_COUNT; i++) {
        if (sigaction(fatal_signals[i], NULL, &previous_actions[i]) != 0)
            continue;
        bool ignored = !(previous_actions[i].sa_flags & SA_SIGINFO) &&
                       previous_actions[i].sa_handler == SIG_IGN;
        if (!ignored)
            sigaction(fatal_signals[i], &action, NULL);
    }
}

/* ---- Fork --------------------------------------------------------------------------------
 * Registered after the heap's own handlers (the constructor touches the process heap first),
 * so it runs after the heap is usable again in the child. Control comes first, as
 * at start-up. */
static void fork_child(void)
{
    (void)ht_control_fork_child();
    (void)ht_trace_fork_child();
}

/* Control is armed before the session: a signal handler, no thread and no descriptor. The
 * listener a request starts gets its TLS from preload.c's tracer heap: never an event, never
 * in the rundown. */
__attribute__((constructor)) static void startup_init(void)
{
    (void)ht_process_heap(); /* the heap's atfork handlers first (see preload.c) */
    /* A program on the preload library gets glibc's manners: heap corruption (a double free
     * included) ends it with one line, unless HEAPTRAIL_TERMINATE_ON_CORRUPTION=0. */
    hti_option_value terminate;
    int has_terminate = hti_option_getenv(HTI_OPTION_TERMINATE_ON_CORRUPTION, &terminate,
                                          "termination on corruption stays on");
    if (has_terminate <= 0 || terminate.number)
        (void)ht_heap_set_information(NULL, HT_HEAP_ENABLE_TERMINATION_ON_CORRUPTION, NULL, 0);
    hti_option_value control;
    int has_control = hti_option_getenv(HTI_OPTION_CONTROL, &control, "control disabled");
    if (has_control == 0 || (has_control > 0 && control.number))
        (void)ht_control_start(); /* reports a bad HEAPTRAIL_SIGNAL or _CONTROL_DIR itself */
    if (tracing_wanted())
        (void)ht_trace_start_from_env(); /* reports its own errors on stderr */
    install_fatal_signal_handlers();
    pthread_atfork(NULL, NULL, fork_child);
}
