/* control_signal.c — the control signal: how a process with nothing standing in it (no socket,
 * no thread) is asked to open its control socket (trace.h, "Control"). Owns the handler, the
 * judgement of when the interrupted thread may start the listener from inside the handler, the
 * hand-over to another thread or to the next malloc call when it may not, and the chaining of
 * the program's own action for the signal (the preload library routes the program's sigaction
 * and signal calls for it here).
 *
 * Why the handler may start a thread at all: pthread_create needs the C library's stack cache
 * and TLS locks and a calloc (served by the tracer heap under the guard). It is safe when the
 * interrupted thread holds none of those, which is what a thread parked in a blocking system
 * call (read, poll, epoll_wait, nanosleep, accept, wait4, ...) looks like: the C library never
 * sleeps in such a call while holding them, and heaptrail's own code never does. A lock wait
 * (futex without timeout) or any other instruction is not judged safe: the request moves on. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <link.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include "control_internal.h"
#include "options.h"
#include "trace_internal.h"

#define HOPS_MAX 16u /* threads tried in turn before the request waits for a malloc call */
#define LIBRARIES_MAX 3

_Atomic int hti_control_pending;

static int armed_signal;                 /* 0: not armed */
static struct sigaction original_action; /* the disposition found when arming */
/* The program's action for the signal, as it last set it: two copies, the live one by index,
 * so the handler always reads a whole one. */
static struct sigaction program_actions[2];
static _Atomic unsigned program_action_index;
static _Atomic bool program_action_set; /* false: original_action is the program's */
static bool atexit_registered;

/* Text ranges of the C library, the dynamic loader and heaptrail itself: a malloc call from
 * inside them may hold a lock the listener's start needs. */
static struct {
    uintptr_t start, end;
} libraries[LIBRARIES_MAX];
static int library_count;

#if defined(__SANITIZE_THREAD__)
/* Under ThreadSanitizer the handler is installed through the runtime's own sigaction, so that
 * the runtime delivers it at a safe point (with a copy of the interrupted context) as it does
 * every handler: a handler the kernel runs directly may interrupt the runtime itself. */
int (*hti_real_sigaction)(int, const struct sigaction *, struct sigaction *) = sigaction;
#else
extern int __sigaction(int, const struct sigaction *, struct sigaction *);
int (*hti_real_sigaction)(int, const struct sigaction *, struct sigaction *) = __sigaction;
#endif

/* ---- is the interrupted thread parked? ---- */

#if defined(__x86_64__)
static bool blocking_call(long number)
{
    switch (number) {
    case SYS_read:
    case SYS_write:
    case SYS_readv:
    case SYS_writev:
    case SYS_poll:
    case SYS_select:
    case SYS_pselect6:
    case SYS_ppoll:
    case SYS_epoll_wait:
    case SYS_epoll_pwait:
    case SYS_nanosleep:
    case SYS_clock_nanosleep:
    case SYS_restart_syscall:
    case SYS_wait4:
    case SYS_waitid:
    case SYS_accept:
    case SYS_accept4:
    case SYS_recvfrom:
    case SYS_recvmsg:
    case SYS_sendto:
    case SYS_sendmsg:
    case SYS_connect:
    case SYS_pause:
    case SYS_rt_sigsuspend:
    case SYS_rt_sigtimedwait:
    case SYS_msgrcv:
    case SYS_semop:
    case SYS_semtimedop:
    case SYS_flock:
    case SYS_open:
    case SYS_openat: return true;
    default: return false;
    }
}
#endif

/* True when the thread whose context this is was asleep in a blocking system call: the kernel
 * either set it back on the call's instruction to restart it (SA_RESTART), or made it return
 * -EINTR. */
static bool parked_in_system_call(const void *context)
{
#if defined(__x86_64__)
    const ucontext_t *uc = context;
    const unsigned char *ip = (const unsigned char *)uc->uc_mcontext.gregs[REG_RIP];
    long ax = (long)uc->uc_mcontext.gregs[REG_RAX];
    if (ip[0] == 0x0f && ip[1] == 0x05) /* syscall, about to run again: ax is its number */
        return blocking_call(ax);
    return ip[-2] == 0x0f && ip[-1] == 0x05 && ax == -EINTR;
#else
    (void)context;
    return false; /* other machines: the next malloc call starts the listener */
#endif
}

static bool in_system_library(uintptr_t address)
{
    for (int i = 0; i < library_count; i++)
        if (address - libraries[i].start < libraries[i].end - libraries[i].start)
            return true;
    return false;
}

static int note_library(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    const char *name = info->dlpi_name ? info->dlpi_name : "";
    const char *base = strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
    if (strncmp(base, "libc.so", 7) && strncmp(base, "ld-linux", 8) &&
        strncmp(base, "ld64.so", 7) && strncmp(base, "libheaptrail", 12))
        return 0;
    if (library_count == LIBRARIES_MAX)
        return 1;
    uint64_t start, end;
    hti_module_extent(info, PF_X, &start, &end);
    if (start < end) {
        libraries[library_count].start = start;
        libraries[library_count].end = end;
        library_count++;
    }
    return 0;
}

/* ---- handing the request on ---- */

/* True if thread tid may take the signal: not one of heaptrail's (they block every signal)
 * and not blocking it. */
static bool thread_takes(long tid, int sig)
{
    char path[64], text[2048];
    snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
    if (hti_read_text(path, text, sizeof text) < 0 || !strncmp(text, "heaptrail-", 10))
        return false;
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    if (hti_read_text(path, text, sizeof text) < 0)
        return false;
    const char *blocked = strstr(text, "\nSigBlk:");
    if (!blocked)
        return false;
    unsigned long long mask = strtoull(blocked + 8, NULL, 16);
    return !(mask & (1ull << (sig - 1)));
}

typedef struct candidates {
    long self;
    int sig;
    long after, lowest; /* the best candidates above self, and overall */
} candidates;

static bool consider_thread(int dir, const char *name, void *context)
{
    (void)dir;
    candidates *c = context;
    long tid = strtol(name, NULL, 10);
    if (tid <= 0 || tid == c->self)
        return true;
    if (tid > c->self && (!c->after || tid < c->after) && thread_takes(tid, c->sig))
        c->after = tid;
    else if (tid < c->self && (!c->lowest || tid < c->lowest) && thread_takes(tid, c->sig))
        c->lowest = tid;
    return true;
}

/* The thread after self in tid order (wrapping) that may take the signal, or 0. */
static long next_thread(long self, int sig)
{
    candidates c = {self, sig, 0, 0};
    hti_directory_each("/proc/self/task", consider_thread, &c);
    return c.after ? c.after : c.lowest;
}

/* Sends the request on to the next thread that may take it, with one more hop counted. */
static void forward(int sig, const siginfo_t *info)
{
    unsigned hops = (unsigned)info->si_value.sival_int & 0xffu;
    if (hops + 1 >= HOPS_MAX)
        return;
    long tid = next_thread((long)hti_gettid(), sig);
    if (!tid)
        return;
    siginfo_t again;
    memset(&again, 0, sizeof again);
    again.si_signo = sig;
    again.si_code = SI_QUEUE;
    again.si_pid = getpid();
    again.si_uid = getuid();
    again.si_value.sival_int = (int)(HT_CONTROL_SIGNAL_COOKIE | (hops + 1));
    (void)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, sig, &again);
}

/* ---- the handler ---- */

static bool is_request(const siginfo_t *info)
{
    if (info == NULL || info->si_code != SI_QUEUE ||
        ((unsigned)info->si_value.sival_int & ~0xffu) != HT_CONTROL_SIGNAL_COOKIE)
        return false;
    uid_t from = info->si_uid;
    return from == 0 || from == getuid() || from == geteuid();
}

/* A signal that is not a request goes where it would have gone without heaptrail. */
static void chain(int sig, siginfo_t *info, void *context)
{
    struct sigaction action = original_action;
    if (atomic_load(&program_action_set))
        action = program_actions[atomic_load(&program_action_index) & 1];
    if (action.sa_flags & SA_SIGINFO) {
        if (action.sa_sigaction)
            action.sa_sigaction(sig, info, context);
        return;
    }
    if (action.sa_handler == SIG_IGN)
        return;
    if (action.sa_handler != SIG_DFL) {
        action.sa_handler(sig);
        return;
    }
    /* The default action of a real-time signal ends the process: let it, with the same
     * signal, once this handler returns and unblocks it. */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    hti_real_sigaction(sig, &fallback, NULL);
    (void)syscall(SYS_rt_tgsigqueueinfo, getpid(), hti_gettid(), sig, info);
}

static void control_handler(int sig, siginfo_t *info, void *context)
{
    int saved_errno = errno;
    if (!is_request(info)) {
        chain(sig, info, context);
        errno = saved_errno;
        return;
    }
    atomic_store(&hti_control_touched, hti_monotonic_ns());
    if (!hti_control_listener_running()) {
        atomic_store(&hti_control_pending, 1);
        hti_trace_thread *self = hti_thread_self();
        bool in_hook = self != NULL && atomic_load(&self->in_hook);
        if (hti_guard_depth == 0 && !in_hook && parked_in_system_call(context))
            (void)hti_control_listener_start();
        else
            forward(sig, info);
    }
    errno = saved_errno;
}

/* ---- the deferred start ---- */

void hti_control_serve_pending(const void *caller)
{
    if (hti_guard_depth != 0 || in_system_library((uintptr_t)caller))
        return; /* a call from inside the C library or the loader: wait for the program's own */
    if (atomic_exchange(&hti_control_pending, 0))
        (void)hti_control_listener_start();
}

/* ---- arming ---- */

int hti_control_signal_arm(int sig)
{
    if (armed_signal)
        return 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = control_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
    sigfillset(&action.sa_mask);
    if (hti_real_sigaction(sig, NULL, &original_action) != 0)
        return -errno;
    if (library_count == 0)
        dl_iterate_phdr(note_library, NULL);
    if (hti_real_sigaction(sig, &action, NULL) != 0)
        return -errno;
    atomic_store(&program_action_set, false);
    armed_signal = sig;
    if (!atexit_registered) {
        atexit_registered = true;
        atexit(hti_control_at_exit);
    }
    return 0;
}

void hti_control_signal_disarm(void)
{
    int sig = armed_signal;
    if (!sig)
        return;
    armed_signal = 0;
    struct sigaction action = original_action;
    if (atomic_load(&program_action_set))
        action = program_actions[atomic_load(&program_action_index) & 1];
    hti_real_sigaction(sig, &action, NULL);
    atomic_store(&hti_control_pending, 0);
}

int ht_control_signal(void)
{
    return armed_signal;
}

int hti_control_program_sigaction(int sig, const struct sigaction *action, struct sigaction *old)
{
    if (sig != armed_signal || sig == 0)
        return hti_real_sigaction(sig, action, old);
    struct sigaction current = original_action;
    if (atomic_load(&program_action_set))
        current = program_actions[atomic_load(&program_action_index) & 1];
    if (action) {
        unsigned next = (atomic_load(&program_action_index) + 1) & 1;
        program_actions[next] = *action;
        atomic_store(&program_action_index, next);
        atomic_store(&program_action_set, true);
    }
    if (old)
        *old = current;
    return 0;
}

int ht_control_request(int pid, int signal_number)
{
    union sigval value;
    value.sival_int = (int)HT_CONTROL_SIGNAL_COOKIE;
    return sigqueue((pid_t)pid, signal_number, value) == 0 ? 0 : -errno;
}
