/* signals.c — the program's own calls for heaptrail's control signal (trace.h, "Control"):
 * sigaction, signal, bsd_signal and sysv_signal are interposed so that a program that installs
 * a handler for that signal (or resets it) does not take it from heaptrail: its action is
 * recorded and chained — every signal that is not a control request reaches it as it would
 * have (control_signal.c) — and it gets back the action it set before, as from the C library.
 * Every other signal goes straight to the C library. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <signal.h>
#include <string.h>

#include "trace/control_internal.h"

#define HT_EXPORT __attribute__((visibility("default")))

HT_EXPORT int sigaction(int sig, const struct sigaction *action, struct sigaction *old)
{
    return hti_control_program_sigaction(sig, action, old);
}

/* signal() with the C library's semantics: BSD (SA_RESTART, the signal blocked in its handler)
 * or System V (reset to the default once delivered, not blocked). */
static sighandler_t install(int sig, sighandler_t handler, int flags)
{
    struct sigaction action, old;
    memset(&action, 0, sizeof action);
    action.sa_handler = handler;
    action.sa_flags = flags;
    sigemptyset(&action.sa_mask);
    if (!(flags & SA_NODEFER))
        sigaddset(&action.sa_mask, sig);
    if (hti_control_program_sigaction(sig, &action, &old) != 0)
        return SIG_ERR;
    return old.sa_handler;
}

HT_EXPORT sighandler_t signal(int sig, sighandler_t handler)
{
    return install(sig, handler, SA_RESTART);
}

HT_EXPORT sighandler_t bsd_signal(int sig, sighandler_t handler)
{
    return install(sig, handler, SA_RESTART);
}

HT_EXPORT sighandler_t sysv_signal(int sig, sighandler_t handler)
{
    return install(sig, handler, SA_RESETHAND | SA_NODEFER);
}
