/* orphan.c — a process kept alive only by heaptrail's threads. When main ends with pthread_exit
 * and the program's last thread ends, POSIX says the process exits as if exit(0) were called;
 * a heaptrail thread still running (the writer of a session) would keep it alive instead. The
 * writer asks hti_program_gone() a few times a second and then ends the process as it would
 * have ended, from a thread of its own, so exit handlers (the trace's stop among them) run and
 * stdio is flushed. Raw system calls and stack buffers only. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trace_internal.h"

/* The state letter of /proc/self/task/TID/stat ('?' if unreadable) and whether the thread is
 * one of heaptrail's (named heaptrail-*). */
static char thread_state(const char *tid, bool *ours)
{
    char path[64], stat[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/stat", tid);
    if (hti_read_text(path, stat, sizeof stat) <= 0)
        return '?';
    const char *open_paren = strchr(stat, '('), *close_paren = strrchr(stat, ')');
    if (!open_paren || !close_paren || close_paren[1] != ' ')
        return '?';
    *ours = strncmp(open_paren + 1, "heaptrail-", 10) == 0;
    return close_paren[2];
}

/* A visitor of /proc/self/task: clears *gone at a program thread still running. */
static bool program_thread_running(int dir, const char *tid, void *context)
{
    (void)dir;
    bool *gone = context, ours = false;
    char state = thread_state(tid, &ours);
    if (state != '?' && !ours && state != 'Z' && state != 'X')
        *gone = false;
    return *gone;
}

bool hti_program_gone(void)
{
    char self[16];
    snprintf(self, sizeof self, "%d", (int)getpid());
    bool ours = false;
    char main_state = thread_state(self, &ours);
    if (main_state != 'Z' && main_state != 'X')
        return false; /* the cheap answer, nearly always: main still runs */
    bool gone = true;
    if (hti_directory_each("/proc/self/task", program_thread_running, &gone) != 0)
        return false;
    return gone;
}

static void *exit_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "heaptrail-exit");
    exit(0);
}

void hti_finish_orphaned_process(void)
{
    static _Atomic int started;
    if (atomic_exchange(&started, 1))
        return;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_t thread;
    if (pthread_create(&thread, &attributes, exit_main, NULL) != 0)
        atomic_store(&started, 0);
    pthread_attr_destroy(&attributes);
}
