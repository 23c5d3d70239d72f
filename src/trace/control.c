/* control.c — the control socket: `heaptrail start|stop|status|snapshot PID` switch tracing in a
 * running process through a Unix stream socket, <dir>/<pid>.sock (trace.h gives the rule).
 * A detached listener thread, created under the tracer's guard, blocks every signal, runs under
 * the guard for good and never uses the heap itself; it reads up to CONTROL_CLIENTS connections
 * at once without blocking, each request must arrive whole within CONTROL_REQUEST_NS of its
 * connection (else "error ETIMEDOUT"), and a reply is sent within CONTROL_REPLY_NS or dropped,
 * so a slow or silent client holds no other; a peer whose effective uid is not ours gets "error
 * EPERM". Commands run one at a time on this thread. The directory must be private to our
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
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "options.h"
#include "trace_internal.h"

#define CONTROL_REQUEST_MAX 8192u
#define CONTROL_REPLY_MAX 8192u
#define CONTROL_CLIENTS 8
#define CONTROL_REQUEST_NS 2000000000ull /* from the connection to the request's end, in all */
#define CONTROL_REPLY_NS 2000000000ull
#define CONTROL_IDLE_MS 250
#define CONTROL_STACK_SIZE (512u << 10) /* the clients' requests live on it */
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

/* One "key=value" line of a start request into options: 0, or -EINVAL with *why. The values
 * follow options.c, as the environment and the command line do; the output must also be an
 * absolute path (the process's working directory is not the client's). */
static int start_option(ht_trace_options *o, const char *key, const char *value, char *output,
                        size_t output_size, const char **why)
{
    int option = hti_option_by_key(key);
    if (option < 0) {
        *why = "unknown key";
        return -EINVAL;
    }
    int error = hti_option_parse((hti_option)option, value, o, why);
    if (error)
        return -EINVAL;
    if (option == HTI_OPTION_OUTPUT) {
        if (value[0] != '/' || strlen(value) >= output_size) {
            *why = "not an absolute path";
            return -EINVAL;
        }
        strcpy(output, value);
        o->output_path = output;
    }
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

/* "error EINVAL message [key=]"value"[: why]": the value quoted and cut (options.c), the key
 * cut, so that the reply keeps its closing empty line whatever the request held. */
static void reply_bad(reply *r, const char *message, const char *key, const char *value,
                      const char *why)
{
    char quoted[300];
    hti_option_quote(quoted, sizeof quoted, value);
    r->length = 0;
    if (key)
        reply_add(r, "error EINVAL %s %.64s=%s", message, key, quoted);
    else
        reply_add(r, "error EINVAL %s %s", message, quoted);
    if (why)
        reply_add(r, ": %s", why);
    reply_add(r, "\n");
}

static void command_start(reply *r, char *lines, int (*start)(const ht_trace_options *))
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
            reply_bad(r, "malformed line:", NULL, line, NULL);
            return;
        }
        *equals = '\0';
        const char *why = NULL;
        if (start_option(&o, line, equals + 1, output, sizeof output, &why) != 0) {
            reply_bad(r, "bad option", line, equals + 1, why);
            return;
        }
        line = next;
    }
    const char *why = NULL;
    if (hti_options_check(&o, &why) != 0) {
        reply_error(r, EINVAL, "bad options:", why);
        return;
    }
    if (!o.output_path) {
        reply_error(r, EINVAL, "start needs output=ABSOLUTE-PATH", NULL);
        return;
    }
    int error = start(&o);
    if (error == -EBUSY) {
        reply_error(r, EBUSY, "a trace session is already running", NULL);
        add_session(r);
        return;
    }
    if (error) {
        reply_error(r, -error, "cannot start tracing:", hti_start_error_text(error));
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

/* One request (the bytes read, NUL-terminated; changed in place) into its reply, without the
 * closing empty line. start starts a session: ht_trace_start, or a stand-in (fuzzing). */
static void dispatch(reply *r, char *request, int (*start)(const ht_trace_options *))
{
    char *body = strchr(request, '\n');
    if (body)
        *body++ = '\0';
    char *end = body ? strstr(body, "\n\n") : NULL;
    if (end)
        end[1] = '\0';
    if (!strcmp(request, "status"))
        command_status(r);
    else if (!strcmp(request, "start"))
        command_start(r, body, start);
    else if (!strcmp(request, "stop"))
        command_stop(r);
    else if (!strcmp(request, "snapshot"))
        command_snapshot(r);
    else
        reply_bad(r, "unknown command:", NULL, request, NULL);
}

size_t hti_control_handle(char *request, int (*start)(const ht_trace_options *), char *out,
                          size_t size)
{
    reply r;
    r.length = 0;
    dispatch(&r, request, start);
    reply_add(&r, "\n");
    size_t n = r.length < size ? r.length : (size ? size - 1 : 0);
    if (size) {
        memcpy(out, r.text, n);
        out[n] = '\0';
    }
    return n;
}

/* ---- clients ---- */

/* A connection being read. */
typedef struct client {
    int fd;           /* -1: a free slot */
    uint64_t deadline; /* monotonic ns: the request must be whole by then */
    size_t length;
    bool ended;       /* the peer closed its writing side (or the connection failed) */
    char request[CONTROL_REQUEST_MAX];
} client;

static bool request_whole(const client *c)
{
    return strstr(c->request, "\n\n") != NULL;
}

/* Reads what the peer has sent, without waiting. True once the request can be answered: whole
 * (an empty line, or the writing side closed), too long, or late. */
static bool client_read(client *c, uint64_t now)
{
    for (;;) {
        if (c->length >= sizeof c->request - 1)
            return true;
        ssize_t n = recv(c->fd, c->request + c->length, sizeof c->request - 1 - c->length,
                         MSG_DONTWAIT);
        if (n > 0) {
            c->length += (size_t)n;
            c->request[c->length] = '\0';
            if (request_whole(c))
                return true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return now >= c->deadline;
        c->ended = true;
        return true;
    }
}

/* Sends the reply within CONTROL_REPLY_NS, else gives up on it. */
static void send_bounded(int connection, const char *data, size_t length)
{
    uint64_t until = hti_monotonic_ns() + CONTROL_REPLY_NS;
    while (length) {
        ssize_t n = send(connection, data, length, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            data += n;
            length -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        uint64_t now = hti_monotonic_ns();
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || now >= until)
            return;
        struct pollfd ready = {connection, POLLOUT, 0};
        poll(&ready, 1, (int)((until - now) / 1000000u) + 1);
    }
}

/* Answers a client whose request can be answered (client_read), and closes it. */
static void client_serve(client *c)
{
    reply r;
    r.length = 0;
    struct ucred peer;
    socklen_t peer_size = sizeof peer;
    bool whole = c->ended || request_whole(c);
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0 ||
        peer.uid != geteuid())
        reply_error(&r, EPERM, "permission denied: the process belongs to another user", NULL);
    else if (c->length >= sizeof c->request - 1 && !request_whole(c))
        reply_error(&r, EINVAL, "request too long", NULL);
    else if (!whole)
        reply_error(&r, ETIMEDOUT, "request not complete within 2 s of connecting", NULL);
    else
        dispatch(&r, c->request, ht_trace_start);
    reply_add(&r, "\n");
    send_bounded(c->fd, r.text, r.length);
    close(c->fd);
    c->fd = -1;
}

/* Takes a new connection into a free slot (the caller made sure there is one). False: the
 * listening socket failed for good (shut down by ht_control_stop, or no longer ours). */
static bool client_accept(int listener, client *clients)
{
    int connection = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (connection < 0) {
        if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN)
            return true;
        if (errno == EMFILE || errno == ENFILE || errno == ENOMEM || errno == ENOBUFS) {
            struct timespec pause = {0, 100000000};
            nanosleep(&pause, NULL);
            return true;
        }
        return false;
    }
    for (int i = 0; i < CONTROL_CLIENTS; i++)
        if (clients[i].fd < 0) {
            clients[i].fd = connection;
            clients[i].deadline = hti_monotonic_ns() + CONTROL_REQUEST_NS;
            clients[i].length = 0;
            clients[i].ended = false;
            clients[i].request[0] = '\0';
            return true;
        }
    close(connection); /* not reached: accepted only with a free slot */
    return true;
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
    client clients[CONTROL_CLIENTS];
    for (int i = 0; i < CONTROL_CLIENTS; i++)
        clients[i].fd = -1;
    for (;;) {
        struct stat st;
        if (atomic_load(&control_closing) || fstat(self.fd, &st) != 0 || st.st_dev != self.dev ||
            st.st_ino != self.ino)
            break; /* stopped, or the descriptor is no longer ours: leave it alone */
        struct pollfd ready[1 + CONTROL_CLIENTS];
        int slot_of[1 + CONTROL_CLIENTS];
        int count = 1, timeout = CONTROL_IDLE_MS;
        bool room = false;
        uint64_t now = hti_monotonic_ns();
        for (int i = 0; i < CONTROL_CLIENTS; i++) {
            if (clients[i].fd < 0) {
                room = true;
                continue;
            }
            uint64_t left = clients[i].deadline > now ? clients[i].deadline - now : 0;
            if ((uint64_t)timeout > left / 1000000u + 1)
                timeout = (int)(left / 1000000u) + 1;
            ready[count] = (struct pollfd){clients[i].fd, POLLIN, 0};
            slot_of[count++] = i;
        }
        /* With every slot taken, new connections wait in the backlog (at most 2 s). */
        ready[0] = (struct pollfd){self.fd, room ? POLLIN : 0, 0};
        int polled = poll(ready, (nfds_t)count, timeout);
        if (polled < 0 && errno != EINTR)
            break;
        if (polled == 0 && count == 1) {
            if (program_gone())
                finish_orphaned_process();
            continue;
        }
        now = hti_monotonic_ns();
        for (int k = 1; k < count; k++) {
            client *c = &clients[slot_of[k]];
            if ((ready[k].revents || now >= c->deadline) && client_read(c, now) &&
                !atomic_load(&control_closing))
                client_serve(c);
        }
        if (polled > 0 && ready[0].revents && !client_accept(self.fd, clients))
            break;
    }
    for (int i = 0; i < CONTROL_CLIENTS; i++)
        if (clients[i].fd >= 0)
            close(clients[i].fd);
    /* Close only a descriptor that is still our socket. */
    struct stat st;
    if (fstat(self.fd, &st) == 0 && st.st_dev == self.dev && st.st_ino == self.ino)
        close(self.fd);
    return NULL;
}

static void control_at_exit(void)
{
    ht_control_stop(); /* only if this process started it */
    /* A session started through the socket ends with the program, its waits bounded. */
    (void)hti_trace_stop_at_exit();
}

static int start_locked(bool sweep)
{
    if (control.fd >= 0 && control.pid == getpid())
        return 0;
    hti_option_value control_dir = {0, NULL}; /* checked as options.c says; one line if bad */
    if (hti_option_getenv(HTI_OPTION_CONTROL_DIR, &control_dir, "control socket disabled") < 0)
        return -EINVAL;
    char path[sizeof control.path];
    int n = ht_control_socket_path(path, sizeof path, (uint32_t)geteuid(), (uint32_t)getpid(),
                                   control_dir.text, getenv("XDG_RUNTIME_DIR"));
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
