/* stop_world.c — stopping every other thread of the process for a reachability scan, and
 * letting them go again.
 *
 * A signal (HTI_STOP_SIGNAL, a real-time signal distinct from the control signal) goes to each
 * thread /proc/self/task lists, by tgkill. Its handler, on the thread's own stack, notes how far
 * down that stack is in use (the kernel saved the thread's registers in the signal frame just
 * above the handler's, so the scan from there up sees them), says it stopped, and waits on a
 * futex until the scan is over. The task list is read again until no new thread shows up
 * (a thread not yet stopped may start one). A thread that does not answer within the limit —
 * the signal blocked, stopped by a debugger, in uninterruptible sleep — is left running and
 * counted: the scan then takes its whole stack mapping as roots, without its registers.
 *
 * Nothing here allocates or takes a lock another thread may hold: raw system calls, a table in
 * memory from hti_map_memory, atomics. The handler stays installed after a scan in which some
 * thread never took its signal (that signal is still pending there, and the default action
 * of a real-time signal ends the process); otherwise the previous disposition is restored. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "stop_world.h"
#include "trace_internal.h"

#define STOP_SIGNAL (SIGRTMAX - 1)
#define SLOT_CAPACITY 8192u
#define ROUNDS 16

enum { SLOT_SIGNALLED = 1, SLOT_STOPPED, SLOT_RESUMED, SLOT_GONE };

typedef struct slot {
    _Atomic int32_t tid;
    _Atomic uint32_t state;
    _Atomic uintptr_t sp;
} slot;

static slot *slots; /* SLOT_CAPACITY entries, mapped once, never unmapped */
static _Atomic uint32_t used;
static _Atomic uint32_t active;        /* a stop is in progress: the handler waits */
static _Atomic uint32_t release_gen;   /* futex word: bumped to let stopped threads go */
static _Atomic uint32_t stopped_count; /* futex word: bumped by each stopping thread */
static struct sigaction previous;
static bool installed;

static void stop_handler(int signal_number, siginfo_t *info, void *context)
{
    (void)signal_number;
    (void)info;
    (void)context;
    int saved_errno = errno;
    volatile char here = 0;
    uint32_t gen = atomic_load(&release_gen);
    if (atomic_load(&active)) {
        int32_t tid = (int32_t)syscall(SYS_gettid);
        uint32_t n = atomic_load(&used);
        for (uint32_t i = 0; i < n; i++) {
            if (atomic_load(&slots[i].tid) != tid || atomic_load(&slots[i].state) != SLOT_SIGNALLED)
                continue;
            atomic_store(&slots[i].sp, (uintptr_t)&here);
            atomic_store(&slots[i].state, SLOT_STOPPED);
            atomic_fetch_add(&stopped_count, 1);
            hti_futex_wake(&stopped_count);
            while (atomic_load(&release_gen) == gen)
                hti_futex_wait(&release_gen, gen, 100000000L);
            atomic_store(&slots[i].state, SLOT_RESUMED);
            break;
        }
    }
    (void)here;
    errno = saved_errno;
}

static bool install(void)
{
    if (installed)
        return true;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = stop_handler;
    action.sa_flags = SA_SIGINFO | SA_RESTART; /* on the thread's own stack: no SA_ONSTACK */
    sigfillset(&action.sa_mask);
    if (sigaction(STOP_SIGNAL, &action, &previous) != 0)
        return false;
    installed = true;
    return true;
}

/* ---- heaptrail's own threads ---- */
#define OWN_THREADS 16u
static struct {
    _Atomic int32_t tid;
    _Atomic uintptr_t stack;
} own_threads[OWN_THREADS];

/* Own threads created and not yet registered: a stop waits for them, or it would take one for
 * a thread of the program. */
static _Atomic int32_t own_coming;

void hti_world_own_thread_coming(int delta)
{
    atomic_fetch_add(&own_coming, delta);
}

void hti_world_own_thread(bool starting)
{
    if (starting)
        atomic_fetch_sub(&own_coming, 1);
    int32_t tid = (int32_t)syscall(SYS_gettid);
    volatile char here = 0;
    for (uint32_t i = 0; i < OWN_THREADS; i++) {
        int32_t expected = starting ? 0 : tid;
        if (atomic_compare_exchange_strong(&own_threads[i].tid, &expected, starting ? tid : 0)) {
            atomic_store(&own_threads[i].stack, starting ? (uintptr_t)&here : 0);
            return;
        }
    }
}

void hti_world_after_fork(void)
{
    atomic_store(&own_coming, 0); /* the parent's threads, coming or running, are not here */
    for (uint32_t i = 0; i < OWN_THREADS; i++) {
        atomic_store(&own_threads[i].tid, 0);
        atomic_store(&own_threads[i].stack, 0);
    }
}

size_t hti_world_own_stacks(uintptr_t *out, size_t capacity)
{
    size_t count = 0;
    for (uint32_t i = 0; i < OWN_THREADS && count < capacity; i++) {
        uintptr_t stack = atomic_load(&own_threads[i].stack);
        if (atomic_load(&own_threads[i].tid) && stack)
            out[count++] = stack;
    }
    return count;
}

static bool own_thread(int32_t tid)
{
    for (uint32_t i = 0; i < OWN_THREADS; i++)
        if (atomic_load(&own_threads[i].tid) == tid)
            return true;
    return false;
}

static bool known(int32_t tid)
{
    uint32_t n = atomic_load(&used);
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&slots[i].tid) == tid)
            return true;
    return false;
}

/* Signals every thread of /proc/self/task not signalled yet; returns how many it found. */
static uint32_t signal_new_threads(int32_t self, bool *full)
{
    int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    uint32_t found = 0;
    pid_t pid = getpid();
    char buffer[4096];
    for (;;) {
        long n = syscall(SYS_getdents64, fd, buffer, sizeof buffer);
        if (n <= 0)
            break;
        for (long off = 0; off < n;) {
            struct dirent64 *d = (struct dirent64 *)(buffer + off);
            off += d->d_reclen;
            int32_t tid = 0;
            const char *c = d->d_name;
            if (*c < '0' || *c > '9')
                continue;
            for (; *c >= '0' && *c <= '9'; c++)
                tid = tid * 10 + (*c - '0');
            if (tid == self || own_thread(tid) || known(tid))
                continue;
            uint32_t index = atomic_load(&used);
            if (index >= SLOT_CAPACITY) {
                *full = true;
                continue;
            }
            atomic_store(&slots[index].tid, tid);
            atomic_store(&slots[index].sp, 0);
            atomic_store(&slots[index].state, SLOT_SIGNALLED);
            atomic_store(&used, index + 1);
            found++;
            if (syscall(SYS_tgkill, pid, tid, STOP_SIGNAL) != 0)
                atomic_store(&slots[index].state, SLOT_GONE);
        }
    }
    close(fd);
    return found;
}

static uint32_t count_state(uint32_t state)
{
    uint32_t n = atomic_load(&used), count = 0;
    for (uint32_t i = 0; i < n; i++)
        count += atomic_load(&slots[i].state) == state;
    return count;
}

static bool thread_exists(int32_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d", (int)tid);
    return access(path, F_OK) == 0;
}

int hti_world_stop(hti_world *world, uint64_t limit_ns)
{
    memset(world, 0, sizeof *world);
    if (!slots) {
        slots = hti_map_memory(SLOT_CAPACITY * sizeof *slots);
        if (!slots)
            return -ENOMEM;
    }
    if (!install())
        return -errno;
    atomic_store(&used, 0);
    atomic_store(&stopped_count, 0);
    atomic_store(&active, 1);
    int32_t self = (int32_t)syscall(SYS_gettid);
    uint64_t deadline = hti_monotonic_ns() + limit_ns;
    while (atomic_load(&own_coming) > 0 && hti_monotonic_ns() < deadline)
        sched_yield();
    bool full = false;
    for (int round = 0; round < ROUNDS; round++) {
        uint32_t found = signal_new_threads(self, &full);
        /* Wait until every signalled thread stopped, or the time is up. */
        for (;;) {
            uint32_t seen = atomic_load(&stopped_count);
            if (count_state(SLOT_SIGNALLED) == 0)
                break;
            uint64_t now = hti_monotonic_ns();
            if (now >= deadline)
                break;
            uint64_t wait = deadline - now;
            hti_futex_wait(&stopped_count, seen, (long)(wait < 10000000u ? wait : 10000000u));
        }
        if (found == 0 || hti_monotonic_ns() >= deadline)
            break;
    }
    /* Threads that never answered: gone meanwhile, or really left running. */
    uint32_t n = atomic_load(&used);
    for (uint32_t i = 0; i < n; i++)
        if (atomic_load(&slots[i].state) == SLOT_SIGNALLED &&
            !thread_exists(atomic_load(&slots[i].tid)))
            atomic_store(&slots[i].state, SLOT_GONE);
    world->stopped = count_state(SLOT_STOPPED);
    world->threads = world->stopped + count_state(SLOT_SIGNALLED) + (full ? 1 : 0);
    return 0;
}

size_t hti_world_stack_pointers(uintptr_t *out, size_t capacity)
{
    size_t count = 0;
    uint32_t n = atomic_load(&used);
    for (uint32_t i = 0; i < n && count < capacity; i++)
        if (atomic_load(&slots[i].state) == SLOT_STOPPED)
            out[count++] = atomic_load(&slots[i].sp);
    return count;
}

void hti_world_resume(void)
{
    uint32_t never_answered = count_state(SLOT_SIGNALLED);
    atomic_store(&active, 0);
    atomic_fetch_add(&release_gen, 1);
    hti_futex_wake(&release_gen);
    /* Every stopped thread out of the handler before its disposition goes back (bounded). */
    uint64_t deadline = hti_monotonic_ns() + 200000000u;
    while (count_state(SLOT_STOPPED) && hti_monotonic_ns() < deadline)
        sched_yield();
    if (never_answered == 0 && count_state(SLOT_STOPPED) == 0 && installed) {
        sigaction(STOP_SIGNAL, &previous, NULL);
        installed = false;
    }
}
