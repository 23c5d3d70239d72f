/* control.c — the control socket: `heaptrail start|stop|status|snapshot PID` switch tracing in a
 * running process through a Unix stream socket, <dir>/<pid>.sock (trace.h gives the rule).
 * A detached listener thread, created under the tracer's guard, blocks every signal, runs under
 * the guard for good and never uses the heap itself; it serves one connection at a time, and a
 * peer whose effective uid is not ours gets "error EPERM". The directory must be private to our
 * euid (0700). The socket is removed at exit; a fork child closes its copy and opens its own.
 * The listener checks that its descriptor is still its socket before each accept (a program may
 * close and reuse it). Every 250 ms without a connection it also looks whether only heaptrail's
 * threads are left (main ended with pthread_exit and the last program thread is gone): then it
 * calls exit(0), as the process would have, instead of keeping it alive. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "trace_internal.h"

#define CONTROL_REQUEST_MAX 8192u
#define CONTROL_REPLY_MAX 8192u
#define CONTROL_IO_TIMEOUT_S 5
#define CONTROL_STACK_SIZE (256u << 10)
#define CONTROL_PROTOCOL 1

typedef struct control_state {
    int fd;            /* listening socket of the current listener, -1 if none */
    pid_t pid;         /* process that created it */
    bool wanted;       /* started and not stopped: a fork child starts its own */
    bool atexit_registered;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} control_state;

static pthread_mutex_t control_lock = PTHREAD_MUTEX_INITIALIZER;
static control_state control = {.fd = -1};
static _Atomic int control_closing; /* the listener of this generation should end */

/* ---- the path rule ---- */

int ht_control_socket_path(char *path, size_t size, uint32_t uid, uint32_t pid,
                           const char *control_dir, const char *runtime_dir)
{
    int n;
    if (control_dir && control_dir[0] == '/')
        n = snprintf(path, size, "%s/%u.sock", control_dir, (unsigned)pid);
    else if (runtime_dir && runtime_dir[0] == '/')
        n = snprintf(path, size, "%s/heaptrail/%u.sock", runtime_dir, (unsigned)pid);
    else
        n = snprintf(path, size, "/tmp/heaptrail-%u/%u.sock", (unsigned)uid, (unsigned)pid);
    if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return -ENAMETOOLONG;
    return n;
}

/* Makes sure dir exists, is a directory (not a link), belongs to our euid and gives no access
 * to group or others. 0 or a negative errno; -EPERM is reported on stderr, as it means someone
 * else prepared the place where our socket would go. */
static int private_directory(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(dir, &st) != 0)
        return -errno;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        hti_message("control socket disabled: not a directory private to this user (mode 0700):",
                    dir, -1);
        return -EPERM;
    }
    return 0;
}

/* ---- requests ---- */

typedef struct reply {
    char text[CONTROL_REPLY_MAX];
    size_t length;
} reply;

static void reply_add(reply *r, const char *format, ...) __attribute__((format(printf, 2, 3)));

static void reply_add(reply *r, const char *format, ...)
{
    if (r->length >= sizeof r->text)
        return;
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(r->text + r->length, sizeof r->text - r->length, format, ap);
    va_end(ap);
    if (n > 0)
        r->length += (size_t)n;
    if (r->length >= sizeof r->text)
        r->length = sizeof r->text - 1;
}

static void reply_error(reply *r, int error, const char *message, const char *detail)
{
    const char *name = strerrorname_np(error);
    r->length = 0;
    reply_add(r, "error %s %s%s%s\n", name ? name : "EIO", message, detail ? " " : "",
              detail ? detail : "");
}

static const char *mode_name(ht_trace_mode mode)
{
    switch (mode) {
    case HT_TRACE_MODE_BLOCK: return "block";
    case HT_TRACE_MODE_DISCARD: return "discard";
    case HT_TRACE_MODE_RING: return "ring";
    }
    return "unknown";
}

/* Decimal or 0x number with an optional k, m or g suffix (powers of 1024). */
static int parse_size(const char *text, uint64_t *out)
{
    char *end;
    if (!*text || *text == '-')
        return -EINVAL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 0);
    if (errno || end == text)
        return -EINVAL;
    unsigned shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10;
    else if (*end == 'm' || *end == 'M')
        shift = 20;
    else if (*end == 'g' || *end == 'G')
        shift = 30;
    if (shift)
        end++;
    if (*end || (shift && value > (~0ull >> shift)))
        return -EINVAL;
    *out = (uint64_t)value << shift;
    return 0;
}

static int parse_events(const char *text, uint64_t *mask)
{
    *mask = 0;
    while (*text) {
        size_t n = strcspn(text, ",");
        if (n == 5 && !strncmp(text, "alloc", 5))
            *mask |= HT_EVENT_BIT(HT_EVENT_ALLOC);
        else if (n == 4 && !strncmp(text, "free", 4))
            *mask |= HT_EVENT_BIT(HT_EVENT_FREE);
        else if (n == 7 && !strncmp(text, "realloc", 7))
            *mask |= HT_EVENT_BIT(HT_EVENT_REALLOC);
        else if (n == 4 && !strncmp(text, "heap", 4))
            *mask |= HT_EVENT_MASK_HEAPS;
        else if (n == 3 && !strncmp(text, "all", 3))
            *mask |= HT_EVENT_MASK_ALL;
        else if (n)
            return -EINVAL;
        text += n;
        if (*text == ',')
            text++;
    }
    return 0;
}

/* One "key=value" line of a start request into options. 0 or -EINVAL. */
static int start_option(ht_trace_options *o, const char *key, const char *value, char *output,
                        size_t output_size)
{
    uint64_t number = 0;
    if (!strcmp(key, "output")) {
        if (value[0] != '/' || strlen(value) >= output_size)
            return -EINVAL;
        strcpy(output, value);
        o->output_path = output;
        return 0;
    }
    if (!strcmp(key, "mode")) {
        if (!strcmp(value, "block"))
            o->mode = HT_TRACE_MODE_BLOCK;
        else if (!strcmp(value, "discard"))
            o->mode = HT_TRACE_MODE_DISCARD;
        else if (!strcmp(value, "ring"))
            o->mode = HT_TRACE_MODE_RING;
        else
            return -EINVAL;
        return 0;
    }
    if (!strcmp(key, "unwind")) {
        if (!strcmp(value, "libunwind"))
            o->unwinder = HT_TRACE_UNWIND_LIBUNWIND;
        else if (!strcmp(value, "fp"))
            o->unwinder = HT_TRACE_UNWIND_FRAME_POINTER;
        else
            return -EINVAL;
        return 0;
    }
    if (!strcmp(key, "events"))
        return parse_events(value, &o->event_mask);
    if (!strcmp(key, "follow_forks") || !strcmp(key, "no_rundown")) {
        if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
            return -EINVAL;
        *(key[0] == 'f' ? &o->follow_forks : &o->no_rundown) = value[0] == '1';
        return 0;
    }
    if (parse_size(value, &number) != 0)
        return -EINVAL;
    if (!strcmp(key, "stacks"))
        o->stack_depth = number > HT_TRACE_MAX_DEPTH ? HT_TRACE_MAX_DEPTH : (unsigned)number;
    else if (!strcmp(key, "sample"))
        o->sample_interval = (size_t)number;
    else if (!strcmp(key, "buffer"))
        o->buffer_size = (size_t)number;
    else if (!strcmp(key, "compress"))
        o->compression_level = number > 19 ? 19 : (int)number;
    else if (!strcmp(key, "min_size"))
        o->min_size = (size_t)number;
    else if (!strcmp(key, "max_size"))
        o->max_size = (size_t)number;
    else if (!strcmp(key, "flush_ms"))
        o->flush_interval_ms = number > 60000 ? 60000 : (unsigned)number;
    else
        return -EINVAL;
    return 0;
}

static void add_stats(reply *r)
{
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    reply_add(r, "events=%llu\nlost=%llu\nbytes=%llu\nthreads=%llu\nstacks_recorded=%llu\n"
                 "write_errors=%llu\n",
              (unsigned long long)stats.events, (unsigned long long)stats.lost,
              (unsigned long long)stats.bytes_written, (unsigned long long)stats.threads,
              (unsigned long long)stats.stacks, (unsigned long long)stats.write_errors);
}

/* The running session's description. Read without the session lock: a start or stop racing
 * with it (from the program itself) can only make the answer stale. */
static void add_session(reply *r)
{
    const hti_session *s = &hti_session_state;
    char path[sizeof s->path];
    memcpy(path, s->path, sizeof path);
    path[sizeof path - 1] = '\0';
    path[strcspn(path, "\n")] = '\0';
    reply_add(r, "output=%s\nmode=%s\nstacks=%u\nsample=%llu\nbuffer=%llu\nfollow_forks=%d\n", path,
              mode_name(s->options.mode), s->options.stack_depth,
              (unsigned long long)s->options.sample_interval,
              (unsigned long long)s->options.buffer_size, s->options.follow_forks ? 1 : 0);
}

static void command_status(reply *r)
{
    char program[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", program, sizeof program - 1);
    program[n > 0 ? n : 0] = '\0';
    program[strcspn(program, "\n")] = '\0';
    bool active = ht_trace_is_active();
    reply_add(r, "ok\nprotocol=%d\npid=%d\nprogram=%s\nactive=%d\n", CONTROL_PROTOCOL, (int)getpid(),
              program, active ? 1 : 0);
    if (active)
        add_session(r);
    add_stats(r);
}

static void command_start(reply *r, char *lines)
{
    char output[4096]; /* the tracer keeps its own copy */
    ht_trace_options o;
    ht_trace_options_init(&o);
    for (char *line = lines; line && *line;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *equals = strchr(line, '=');
        if (!equals) {
            reply_error(r, EINVAL, "malformed line:", line);
            return;
        }
        *equals = '\0';
        if (start_option(&o, line, equals + 1, output, sizeof output) != 0) {
            *equals = '=';
            reply_error(r, EINVAL, "bad option:", line);
            return;
        }
        line = next;
    }
    if (!o.output_path) {
        reply_error(r, EINVAL, "start needs output=ABSOLUTE-PATH", NULL);
        return;
    }
    int error = ht_trace_start(&o);
    if (error == -EBUSY) {
        reply_error(r, EBUSY, "a trace session is already running", NULL);
        add_session(r);
        return;
    }
    if (error) {
        reply_error(r, -error, "cannot start tracing:", strerrordesc_np(-error));
        return;
    }
    reply_add(r, "ok\npid=%d\n", (int)getpid());
    add_session(r);
}

static void command_stop(reply *r)
{
    const hti_session *s = &hti_session_state;
    char path[sizeof s->path];
    memcpy(path, s->path, sizeof path);
    path[sizeof path - 1] = '\0';
    path[strcspn(path, "\n")] = '\0';
    int error = ht_trace_stop();
    if (error) {
        reply_error(r, -error, "no trace session is running", NULL);
        return;
    }
    reply_add(r, "ok\npid=%d\noutput=%s\n", (int)getpid(), path);
    add_stats(r);
}

static void command_snapshot(reply *r)
{
    int error = ht_trace_snapshot();
    if (error == -ENOENT) {
        reply_error(r, ENOENT, "no trace session is running", NULL);
        return;
    }
    if (error) {
        reply_error(r, -error, "snapshot failed:", strerrordesc_np(-error));
        return;
    }
    reply_add(r, "ok\npid=%d\n", (int)getpid());
    add_session(r);
    add_stats(r);
}

/* Reads a request: lines up to an empty line or the end of the stream. Returns its length, or
 * -1 (nothing usable: timeout, error, or longer than the buffer). */
static ssize_t read_request(int connection, char *request, size_t size)
{
    size_t length = 0;
    request[0] = '\0';
    while (!strstr(request, "\n\n")) {
        if (length >= size - 1)
            return -1;
        ssize_t n = recv(connection, request + length, size - 1 - length, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        length += (size_t)n;
        request[length] = '\0';
    }
    return (ssize_t)length;
}

static void send_all(int connection, const char *data, size_t length)
{
    while (length) {
        ssize_t n = send(connection, data, length, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        data += n;
        length -= (size_t)n;
    }
}

static void serve(int connection)
{
    reply r;
    char request[CONTROL_REQUEST_MAX];
    r.length = 0;
    struct timeval timeout = {CONTROL_IO_TIMEOUT_S, 0};
    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    struct ucred peer;
    socklen_t peer_size = sizeof peer;
    /* The request is read in every case, so that the reply is not lost to a reset. */
    ssize_t length = read_request(connection, request, sizeof request);
    if (getsockopt(connection, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0 ||
        peer.uid != geteuid()) {
        reply_error(&r, EPERM, "permission denied: the process belongs to another user", NULL);
    } else if (length < 0) {
        reply_error(&r, EINVAL, "request too long or incomplete", NULL);
    } else {
        char *body = strchr(request, '\n');
        if (body)
            *body++ = '\0';
        char *end = body ? strstr(body, "\n\n") : NULL;
        if (end)
            end[1] = '\0';
        if (!strcmp(request, "status"))
            command_status(&r);
        else if (!strcmp(request, "start"))
            command_start(&r, body);
        else if (!strcmp(request, "stop"))
            command_stop(&r);
        else if (!strcmp(request, "snapshot"))
            command_snapshot(&r);
        else
            reply_error(&r, EINVAL, "unknown command:", request);
    }
    reply_add(&r, "\n");
    send_all(connection, r.text, r.length);
}

/* ---- the listener ---- */

/* Removes sockets of processes that no longer exist (left by _exit, exec or SIGKILL). Reads the
 * directory with getdents64 into a stack buffer: the listener never uses the heap. */
static void sweep_stale(const char *own_path)
{
    char dir[sizeof control.path];
    snprintf(dir, sizeof dir, "%s", own_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    _Alignas(8) char buffer[4096];
    long n;
    while ((n = syscall(SYS_getdents64, fd, buffer, sizeof buffer)) > 0) {
        for (long at = 0; at < n;) {
            struct linux_dirent64 {
                uint64_t ino;
                int64_t off;
                unsigned short reclen;
                unsigned char type;
                char name[];
            } *entry = (struct linux_dirent64 *)(buffer + at);
            at += entry->reclen;
            char *end;
            unsigned long pid = strtoul(entry->name, &end, 10);
            if (end == entry->name || strcmp(end, ".sock") != 0 || pid == 0 || pid > INT_MAX)
                continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
                continue;
            struct stat st;
            if (fstatat(fd, entry->name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
                unlinkat(fd, entry->name, 0);
        }
    }
    close(fd);
}

typedef struct listener_args {
    _Atomic int busy; /* handed to a thread that has not copied it yet */
    int fd;
    dev_t dev;
    ino_t ino;
    bool sweep; /* the first listener of a process tree sweeps; fork children need not */
    char path[sizeof control.path];
} listener_args;

/* A new listener's arguments, in turn: a slot is reused only LISTENER_SLOTS starts later, long
 * after its thread copied it (a start waits, should that thread still not have run). */
#define LISTENER_SLOTS 8u
static listener_args listener_slots[LISTENER_SLOTS];
static unsigned listener_starts;

/* True once every thread of the process is either heaptrail's own (named heaptrail-*) or a
 * zombie: the program's main thread called pthread_exit and its last thread has ended, so the
 * process would have exited were it not for our threads. Reads /proc with raw system calls
 * and stack buffers only. */
static bool program_gone(void)
{
    int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return false;
    char buffer[4096];
    bool gone = true;
    for (;;) {
        long n = syscall(SYS_getdents64, dir, buffer, sizeof buffer);
        if (n <= 0)
            break;
        for (long offset = 0; offset < n && gone;) {
            struct {
                uint64_t inode;
                int64_t next;
                unsigned short length;
                unsigned char type;
                char name[];
            } *entry = (void *)(buffer + offset);
            offset += entry->length;
            if (entry->name[0] < '0' || entry->name[0] > '9')
                continue;
            char path[64], stat[256];
            snprintf(path, sizeof path, "/proc/self/task/%s/stat", entry->name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0)
                continue; /* ended meanwhile */
            ssize_t got = read(fd, stat, sizeof stat - 1);
            close(fd);
            if (got <= 0)
                continue;
            stat[got] = 0;
            const char *open_paren = strchr(stat, '('), *close_paren = strrchr(stat, ')');
            if (!open_paren || !close_paren || close_paren[1] != ' ')
                continue;
            bool ours = strncmp(open_paren + 1, "heaptrail-", 10) == 0;
            bool zombie = close_paren[2] == 'Z' || close_paren[2] == 'X';
            if (!ours && !zombie)
                gone = false;
        }
        if (!gone)
            break;
    }
    close(dir);
    return gone;
}

/* The program's threads are all gone: end as the process would have (POSIX: as if exit(0)
 * were called when the last thread ends), so atexit handlers run, stdio is flushed and the
 * trace is completed by the tracer's own exit handler. */
static void finish_orphaned_process(void)
{
    exit(0);
}

static void *listener_main(void *arg)
{
    listener_args *slot = arg;
    listener_args self;
    memcpy(&self, slot, sizeof self);
    atomic_store(&slot->busy, 0);
    hti_guard_enter(); /* for good: this thread's heap calls are never traced */
    pthread_setname_np(pthread_self(), "heaptrail-ctl");
    if (self.sweep)
        sweep_stale(self.path);
    for (;;) {
        struct stat st;
        if (atomic_load(&control_closing) || fstat(self.fd, &st) != 0 || st.st_dev != self.dev ||
            st.st_ino != self.ino)
            break; /* stopped, or the descriptor is no longer ours: leave it alone */
        struct pollfd ready = {self.fd, POLLIN, 0};
        int polled = poll(&ready, 1, 250);
        if (polled == 0) {
            if (program_gone())
                finish_orphaned_process();
            continue;
        }
        if (polled < 0 && errno != EINTR)
            break;
        if (polled < 0)
            continue;
        int connection = accept4(self.fd, NULL, NULL, SOCK_CLOEXEC);
        if (connection < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
                struct timespec pause = {0, 100000000};
                nanosleep(&pause, NULL);
                continue;
            }
            break;
        }
        if (!atomic_load(&control_closing))
            serve(connection);
        close(connection);
    }
    /* Close only a descriptor that is still our socket. */
    struct stat st;
    if (fstat(self.fd, &st) == 0 && st.st_dev == self.dev && st.st_ino == self.ino)
        close(self.fd);
    return NULL;
}

static void control_at_exit(void)
{
    ht_control_stop();     /* only if this process started it */
    (void)ht_trace_stop(); /* a session started through the socket ends with the program */
}

static int start_locked(bool sweep)
{
    if (control.fd >= 0 && control.pid == getpid())
        return 0;
    char path[sizeof control.path];
    int n = ht_control_socket_path(path, sizeof path, (uint32_t)geteuid(), (uint32_t)getpid(),
                                   getenv("HEAPTRAIL_CONTROL_DIR"), getenv("XDG_RUNTIME_DIR"));
    if (n < 0)
        return n;
    char dir[sizeof path];
    memcpy(dir, path, sizeof dir);
    *strrchr(dir, '/') = '\0';
    int error = private_directory(dir);
    if (error)
        return error;

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path, path, (size_t)n + 1);
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path); /* our pid's: left by an earlier image of this process, or a dead one */
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 8) != 0 ||
        fstat(fd, &st) != 0) {
        error = -errno;
        close(fd);
        return error;
    }

    listener_args *slot = &listener_slots[listener_starts++ % LISTENER_SLOTS];
    while (atomic_load(&slot->busy)) {
        struct timespec pause = {0, 100000};
        nanosleep(&pause, NULL);
    }
    slot->fd = fd;
    slot->dev = st.st_dev;
    slot->ino = st.st_ino;
    slot->sweep = sweep;
    memcpy(slot->path, path, sizeof path);
    atomic_store(&control_closing, 0);

    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, CONTROL_STACK_SIZE);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked */
    pthread_t thread;
    atomic_store(&slot->busy, 1);
    /* Under the guard: the C library allocates the new thread's TLS (DTV) on our behalf, and
     * that is not the program's allocation. */
    hti_guard_enter();
    error = -pthread_create(&thread, &attributes, listener_main, slot);
    hti_guard_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attributes);
    if (error) {
        atomic_store(&slot->busy, 0);
        unlink(path);
        close(fd);
        return error;
    }
    control.fd = fd;
    control.pid = getpid();
    control.wanted = true;
    memcpy(control.path, path, sizeof path);
    if (!control.atexit_registered) {
        control.atexit_registered = true;
        atexit(control_at_exit);
    }
    return 0;
}

/* The listener thread is created under the guard: the TLS block pthread_create allocates for it
 * is never an event. Started before any session (as the preload library does), that block is
 * in the rundown like every block live at the start, and a trace's live set still matches the
 * heap's; started while a session runs, it is one of the tracer's own blocks the trace does not
 * show (FORMAT.md "Rundown"). */
int ht_control_start(void)
{
    pthread_mutex_lock(&control_lock);
    int error = start_locked(true);
    pthread_mutex_unlock(&control_lock);
    return error;
}

void ht_control_stop(void)
{
    pthread_mutex_lock(&control_lock);
    if (control.pid == getpid())
        control.wanted = false;
    if (control.fd >= 0 && control.pid == getpid()) {
        atomic_store(&control_closing, 1);
        unlink(control.path);
        shutdown(control.fd, SHUT_RDWR); /* wakes accept(); the listener closes the socket */
        control.fd = -1;
        control.path[0] = '\0';
    }
    pthread_mutex_unlock(&control_lock);
}

int ht_control_fork_child(void)
{
    pthread_mutex_init(&control_lock, NULL);
    if (control.pid == 0 || control.pid == getpid())
        return 0;
    /* The listener threads do not exist here; the socket and its name are the parent's. */
    for (unsigned i = 0; i < LISTENER_SLOTS; i++)
        atomic_store(&listener_slots[i].busy, 0);
    if (control.fd >= 0)
        close(control.fd);
    control.fd = -1;
    control.path[0] = '\0';
    if (!control.wanted)
        return 0;
    int error = start_locked(false); /* the lock was just made anew: no other thread here */
    return error ? error : 1;
}
