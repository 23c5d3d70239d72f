/* control.c — the control socket: `heaptrail start|stop|status|snapshot PID` switch tracing in a
 * running process through a Unix stream socket, <dir>/<pid>.sock (trace.h gives the rule). The
 * socket exists only while a listener thread serves it: control_signal.c starts one when the
 * control signal asks, and it ends, closing and removing its socket, once neither a request
 * nor a signal has come for CONTROL_LINGER_NS (a signal that arrives while it ends makes it open
 * the socket again). The listener, created under the tracer's guard, blocks every signal and
 * never uses the heap itself; it reads up to CONTROL_CLIENTS connections at once without
 * blocking, each request must arrive whole within CONTROL_REQUEST_NS of its connection (else
 * "error ETIMEDOUT"), and a reply is sent within CONTROL_REPLY_NS or dropped, so a slow or
 * silent client holds no other; a peer whose effective uid is not ours gets "error EPERM".
 * Commands run one at a time on this thread. The directory must be private to our euid (0700).
 * A fork child closes its copy of an open socket. The listener checks that its descriptor is
 * still its socket before each accept (a program may close and reuse it). Starting a listener
 * takes no lock (an atomic state decides who starts it): the signal handler may do it.
 * A request may carry descriptors (SCM_RIGHTS): the first is kept with the connection, for a
 * `start` with stream=1 (the session's output then); every other one, and that one unless such
 * a start took it, is closed before the connection is: the process keeps no descriptor it was
 * sent and did not use. */
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
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "control_internal.h"
#include "options.h"
#include "stop_world.h"
#include "trace_internal.h"

#define CONTROL_REQUEST_MAX 8192u
#define CONTROL_REPLY_MAX 8192u
#define CONTROL_CLIENTS 8
#define CONTROL_REQUEST_NS 2000000000ull /* from the connection to the request's end, in all */
#define CONTROL_REPLY_NS 2000000000ull
#define CONTROL_LINGER_NS 1000000000ull /* the listener ends after this long without a request */
#define CONTROL_STACK_SIZE (512u << 10) /* the clients' requests live on it */
#define CONTROL_PROTOCOL 1
#define CONTROL_DESCRIPTORS 8 /* received at once; more in one message are closed by the kernel */
#define SOCKET_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

enum { LISTENER_IDLE, LISTENER_RUNNING };

/* The socket of the running listener: written by whoever won listener_state, read by the fork
 * child and the exit handler. */
typedef struct control_state {
    _Atomic int fd; /* listening socket, -1 if none */
    pid_t pid;      /* process that created it */
    dev_t dev;      /* the socket (fstat of fd) */
    ino_t ino;
    dev_t file_dev; /* its name in the directory (lstat of path) */
    ino_t file_ino;
    char path[SOCKET_PATH_MAX];
} control_state;

static control_state control = {.fd = -1};
static _Atomic int listener_state;  /* LISTENER_*: only a compare-and-swap from IDLE starts one */
static _Atomic int control_closing; /* the process is exiting, or control was stopped */
static bool control_started;        /* ht_control_start was called (and not stopped) */
static bool swept;                  /* stale sockets were swept by this process tree */
_Atomic uint64_t hti_control_touched;

/* Copied by ht_control_start: the handler reads no environment. */
static char config_control_dir[SOCKET_PATH_MAX];
static char config_runtime_dir[PATH_MAX];

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

/* Makes sure dir exists (create: else only checks it if it exists), is a directory (not a
 * link), belongs to our euid and gives no access to group or others. 0 or a negative errno;
 * -EPERM is reported on stderr, as it means someone else prepared the place where our socket
 * would go. */
static int private_directory(const char *dir, bool create)
{
    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    struct stat st;
    if (lstat(dir, &st) != 0)
        return create ? -errno : 0;
    if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        hti_message("control disabled: not a directory private to this user (mode 0700):", dir, -1);
        return -EPERM;
    }
    return 0;
}

/* The directory of this process's socket, into dir. 0 or -ENAMETOOLONG. */
static int socket_directory(char *dir, size_t size)
{
    int n = ht_control_socket_path(dir, size, (uint32_t)geteuid(), (uint32_t)getpid(),
                                   config_control_dir[0] ? config_control_dir : NULL,
                                   config_runtime_dir[0] ? config_runtime_dir : NULL);
    if (n < 0)
        return n;
    *strrchr(dir, '/') = '\0';
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

/* The session's output as the replies name it: its path, or "stream" for one handed over. Read
 * without the session lock (see add_session). */
static void session_output(char *out, size_t size)
{
    const hti_session *s = &hti_session_state;
    if (s->handed_over) {
        snprintf(out, size, "stream");
        return;
    }
    size_t n = size < sizeof s->path ? size : sizeof s->path;
    memcpy(out, s->path, n);
    out[n - 1] = '\0';
    out[strcspn(out, "\n")] = '\0';
}

static void add_stats(reply *r)
{
    ht_trace_stats stats;
    ht_trace_stats_get(&stats);
    reply_add(r,
              "events=%llu\nlost=%llu\nbytes=%llu\nthreads=%llu\nstacks_recorded=%llu\n"
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
    session_output(path, sizeof path);
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
    reply_add(r, "ok\nprotocol=%d\npid=%d\nprogram=%s\nactive=%d\n", CONTROL_PROTOCOL,
              (int)getpid(), program, active ? 1 : 0);
    uint32_t ended = atomic_load(&hti_session_state.ended);
    if (active)
        add_session(r);
    else if (ended != HTI_ENDED_NONE)
        reply_add(r, "ended=%s\n", ended == HTI_ENDED_CONSUMER_GONE ? "consumer_gone" : "stop");
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

/* The descriptor of a stream=1 start: EINVAL with the reply's message unless it is a pipe or
 * FIFO open for writing, or a connected stream socket (a datagram would cut chunks apart). */
static const char *stream_refusal(int descriptor)
{
    struct stat st;
    if (descriptor < 0)
        return "stream=1 needs a descriptor";
    if (fstat(descriptor, &st) != 0 || !(S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
        return "the stream must be a pipe or a socket";
    int flags = fcntl(descriptor, F_GETFL);
    if (flags < 0 || (flags & O_ACCMODE) == O_RDONLY)
        return "the stream is not open for writing";
    int type = 0;
    socklen_t size = sizeof type;
    struct sockaddr_storage peer;
    socklen_t peer_size = sizeof peer;
    if (S_ISSOCK(st.st_mode) &&
        (getsockopt(descriptor, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM ||
         getpeername(descriptor, (struct sockaddr *)&peer, &peer_size) != 0))
        return "the stream must be a connected stream socket";
    return NULL;
}

/* stream=0|1: the one key of a start request that is not a tracing option (options.c). */
static int stream_key(const char *key, const char *value, bool *stream)
{
    if (strcmp(key, "stream") != 0)
        return 0;
    if (strcmp(value, "0") != 0 && strcmp(value, "1") != 0)
        return -EINVAL;
    *stream = value[0] == '1';
    return 1;
}

/* A start request; *descriptor (-1: none) is the one that came with it, set to -1 when the
 * session took it as its stream. */
static void command_start(reply *r, char *lines, int *descriptor,
                          int (*start)(const ht_trace_options *))
{
    char output[4096]; /* the tracer keeps its own copy */
    ht_trace_options o;
    ht_trace_options_init(&o);
    bool stream = false;
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
        int is_stream = stream_key(line, equals + 1, &stream);
        if (is_stream < 0)
            why = "not a flag (expected 0 or 1)";
        if (is_stream < 0 ||
            (!is_stream && start_option(&o, line, equals + 1, output, sizeof output, &why))) {
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
    if (stream) {
        if (o.output_path) {
            reply_error(r, EINVAL, "output= and stream=1 exclude each other", NULL);
            return;
        }
        if (o.follow_forks) {
            reply_error(r, EINVAL, "follow_forks=1 needs output=: a stream carries one trace",
                        NULL);
            return;
        }
        if ((why = stream_refusal(descriptor ? *descriptor : -1)) != NULL) {
            reply_error(r, EINVAL, why, NULL);
            return;
        }
        o.output_fd = *descriptor;
    } else if (!o.output_path) {
        reply_error(r, EINVAL, "start needs output=ABSOLUTE-PATH (or stream=1)", NULL);
        return;
    }
    int error = start(&o);
    if (!error && stream)
        *descriptor = -1; /* the session's now */
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
    char path[sizeof hti_session_state.path];
    session_output(path, sizeof path);
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
 * closing empty line. start starts a session: control_start, or a stand-in (fuzzing).
 * descriptor: as hti_control_handle's. */
static void dispatch(reply *r, char *request, int *descriptor,
                     int (*start)(const ht_trace_options *))
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
        command_start(r, body, descriptor, start);
    else if (!strcmp(request, "stop"))
        command_stop(r);
    else if (!strcmp(request, "snapshot"))
        command_snapshot(r);
    else
        reply_bad(r, "unknown command:", NULL, request, NULL);
}

size_t hti_control_handle(char *request, int *descriptor, int (*start)(const ht_trace_options *),
                          char *out, size_t size)
{
    reply r;
    r.length = 0;
    dispatch(&r, request, descriptor, start);
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
    int fd;            /* -1: a free slot */
    int descriptor;    /* the first descriptor the request carried, -1: none */
    uint64_t deadline; /* monotonic ns: the request must be whole by then */
    size_t length;
    bool ended; /* the peer closed its writing side (or the connection failed) */
    char request[CONTROL_REQUEST_MAX];
} client;

static bool request_whole(const client *c)
{
    return strstr(c->request, "\n\n") != NULL;
}

/* Keeps the first descriptor a message carried with the client and closes the others. */
static void client_descriptors(client *c, struct msghdr *message)
{
    for (struct cmsghdr *m = CMSG_FIRSTHDR(message); m; m = CMSG_NXTHDR(message, m)) {
        if (m->cmsg_level != SOL_SOCKET || m->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (m->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(m) + i * sizeof fd, sizeof fd);
            if (c->descriptor < 0)
                c->descriptor = fd;
            else
                close(fd);
        }
    }
}

/* recv of the request's next bytes and of the descriptors that come with them (close-on-exec
 * from the start: a fork and exec elsewhere in the program must not inherit them). */
static ssize_t client_receive(client *c)
{
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(CONTROL_DESCRIPTORS * sizeof(int))];
    } control;
    struct iovec part = {c->request + c->length, sizeof c->request - 1 - c->length};
    struct msghdr message = {.msg_iov = &part,
                             .msg_iovlen = 1,
                             .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    ssize_t n = recvmsg(c->fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n >= 0)
        client_descriptors(c, &message);
    return n;
}

/* Closes the connection and the descriptor it brought, unless a start took it. */
static void client_close(client *c)
{
    if (c->descriptor >= 0)
        close(c->descriptor);
    c->descriptor = -1;
    close(c->fd);
    c->fd = -1;
}

/* Reads what the peer has sent, without waiting. True once the request can be answered: whole
 * (an empty line, or the writing side closed), too long, or late. */
static bool client_read(client *c, uint64_t now)
{
    for (;;) {
        if (c->length >= sizeof c->request - 1)
            return true;
        ssize_t n = client_receive(c);
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

/* The listener's start: a session on a stream handed over owns its descriptor. */
static int control_start(const ht_trace_options *options)
{
    return options->output_fd >= 0 ? hti_trace_start_stream(options) : ht_trace_start(options);
}

/* Answers a client whose request can be answered (client_read), and closes it. */
static void client_serve(client *c)
{
    reply r;
    r.length = 0;
    struct ucred peer;
    socklen_t peer_size = sizeof peer;
    bool whole = c->ended || request_whole(c);
    if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &peer, &peer_size) != 0 || peer.uid != geteuid())
        reply_error(&r, EPERM, "permission denied: the process belongs to another user", NULL);
    else if (c->length >= sizeof c->request - 1 && !request_whole(c))
        reply_error(&r, EINVAL, "request too long", NULL);
    else if (!whole)
        reply_error(&r, ETIMEDOUT, "request not complete within 2 s of connecting", NULL);
    else
        dispatch(&r, c->request, &c->descriptor, control_start);
    reply_add(&r, "\n");
    send_bounded(c->fd, r.text, r.length);
    client_close(c);
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
            clients[i].descriptor = -1;
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

/* A visitor of the socket directory: removes the socket of a process that no longer exists
 * (left by _exit, exec or SIGKILL). */
static bool remove_if_stale(int dir, const char *name, void *context)
{
    (void)context;
    char *end;
    unsigned long pid = strtoul(name, &end, 10);
    if (end == name || strcmp(end, ".sock") != 0 || pid == 0 || pid > INT_MAX)
        return true;
    if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
        return true;
    struct stat st;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISSOCK(st.st_mode))
        unlinkat(dir, name, 0);
    return true;
}

/* Removes stale sockets beside ours. The listener never uses the heap: hti_directory_each
 * reads into a stack buffer. */
static void sweep_stale(const char *own_path)
{
    char dir[SOCKET_PATH_MAX];
    snprintf(dir, sizeof dir, "%s", own_path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return;
    *slash = '\0';
    hti_directory_each(dir, remove_if_stale, NULL);
}

/* True while fd is still the socket that was opened as dev/ino. */
static bool still_ours(int fd, dev_t dev, ino_t ino)
{
    struct stat st;
    return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Creates, binds and publishes this process's socket (the caller won listener_state). */
static int open_socket(void)
{
    char path[SOCKET_PATH_MAX];
    int n = ht_control_socket_path(path, sizeof path, (uint32_t)geteuid(), (uint32_t)getpid(),
                                   config_control_dir[0] ? config_control_dir : NULL,
                                   config_runtime_dir[0] ? config_runtime_dir : NULL);
    if (n < 0)
        return n;
    char dir[sizeof path];
    memcpy(dir, path, sizeof dir);
    *strrchr(dir, '/') = '\0';
    int error = private_directory(dir, true);
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
    struct stat file;
    if (bind(fd, (struct sockaddr *)&address, sizeof address) != 0 || listen(fd, 8) != 0 ||
        fstat(fd, &st) != 0 || lstat(path, &file) != 0) {
        error = -errno;
        close(fd);
        return error;
    }
    control.file_dev = file.st_dev;
    control.file_ino = file.st_ino;
    control.pid = getpid();
    control.dev = st.st_dev;
    control.ino = st.st_ino;
    memcpy(control.path, path, sizeof path);
    atomic_store(&control.fd, fd);
    return 0;
}

/* Removes and closes the socket, if it is still ours (the caller is its owner). */
static void close_socket(void)
{
    int fd = atomic_exchange(&control.fd, -1);
    if (fd < 0)
        return;
    struct stat st;
    if (lstat(control.path, &st) == 0 && st.st_dev == control.file_dev &&
        st.st_ino == control.file_ino)
        unlink(control.path);
    if (still_ours(fd, control.dev, control.ino))
        close(fd);
}

/* Serves clients until the socket has been idle for CONTROL_LINGER_NS (no connection, no
 * signal), control closes, or the descriptor stops being ours. Returns the hti_control_touched
 * value it last saw, so the caller can tell whether a signal came while it ended. */
static uint64_t serve(int fd, dev_t dev, ino_t ino)
{
    client clients[CONTROL_CLIENTS];
    for (int i = 0; i < CONTROL_CLIENTS; i++)
        clients[i].fd = clients[i].descriptor = -1;
    uint64_t last_activity = hti_monotonic_ns(), touched = 0;
    for (;;) {
        if (atomic_load(&control_closing) || !still_ours(fd, dev, ino))
            break; /* stopped, or the descriptor is no longer ours: leave it alone */
        struct pollfd ready[1 + CONTROL_CLIENTS];
        int slot_of[1 + CONTROL_CLIENTS];
        int count = 1;
        bool room = false;
        uint64_t now = hti_monotonic_ns();
        touched = atomic_load(&hti_control_touched);
        uint64_t since = touched > last_activity ? touched : last_activity;
        if (now >= since + CONTROL_LINGER_NS) {
            bool busy = false;
            for (int i = 0; i < CONTROL_CLIENTS; i++)
                busy |= clients[i].fd >= 0;
            if (!busy)
                break;
        }
        uint64_t wait_ns = since + CONTROL_LINGER_NS > now ? since + CONTROL_LINGER_NS - now : 0;
        for (int i = 0; i < CONTROL_CLIENTS; i++) {
            if (clients[i].fd < 0) {
                room = true;
                continue;
            }
            uint64_t left = clients[i].deadline > now ? clients[i].deadline - now : 0;
            if (wait_ns > left)
                wait_ns = left;
            ready[count] = (struct pollfd){clients[i].fd, POLLIN, 0};
            slot_of[count++] = i;
        }
        /* With every slot taken, new connections wait in the backlog (at most 2 s). */
        ready[0] = (struct pollfd){fd, room ? POLLIN : 0, 0};
        int polled = poll(ready, (nfds_t)count, (int)(wait_ns / 1000000u) + 1);
        if (polled < 0 && errno != EINTR)
            break;
        now = hti_monotonic_ns();
        for (int k = 1; k < count; k++) {
            client *c = &clients[slot_of[k]];
            if ((ready[k].revents || now >= c->deadline) && client_read(c, now) &&
                !atomic_load(&control_closing)) {
                client_serve(c);
                last_activity = hti_monotonic_ns();
            }
        }
        if (polled > 0 && ready[0].revents) {
            if (!client_accept(fd, clients))
                break;
            last_activity = now;
        }
    }
    for (int i = 0; i < CONTROL_CLIENTS; i++)
        if (clients[i].fd >= 0)
            client_close(&clients[i]);
    return touched;
}

static void *listener_main(void *arg)
{
    (void)arg;
    hti_guard_enter(); /* for good: this thread's heap calls are never traced */
    hti_world_own_thread(true);
    pthread_setname_np(pthread_self(), "heaptrail-ctl");
    if (!swept) {
        swept = true;
        sweep_stale(control.path);
    }
    for (;;) {
        uint64_t seen = serve(atomic_load(&control.fd), control.dev, control.ino);
        close_socket();
        atomic_store(&listener_state, LISTENER_IDLE);
        /* A request that came while we were ending found the listener running and left it to
         * us: open the socket again, unless someone else already has. */
        if (atomic_load(&control_closing) || atomic_load(&hti_control_touched) == seen)
            break;
        int expected = LISTENER_IDLE;
        if (!atomic_compare_exchange_strong(&listener_state, &expected, LISTENER_RUNNING))
            break;
        if (open_socket() != 0) {
            atomic_store(&listener_state, LISTENER_IDLE);
            break;
        }
    }
    hti_world_own_thread(false);
    return NULL;
}

bool hti_control_listener_running(void)
{
    return atomic_load(&listener_state) != LISTENER_IDLE;
}

/* Also called from the control signal's handler (control_signal.c says when): system calls,
 * pthread_create and the guard only; no lock is taken. */
int hti_control_listener_start(void)
{
    if (!control_started || atomic_load(&control_closing))
        return -ECANCELED;
    int expected = LISTENER_IDLE;
    if (!atomic_compare_exchange_strong(&listener_state, &expected, LISTENER_RUNNING))
        return 0; /* running, or being started */
    atomic_store(&hti_control_pending, 0);
    int error = open_socket();
    if (error) {
        atomic_store(&listener_state, LISTENER_IDLE);
        return error;
    }
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setdetachstate(&attributes, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attributes, CONTROL_STACK_SIZE);
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old); /* the thread starts with every signal blocked */
    pthread_t thread;
    /* Under the guard: the C library allocates the new thread's TLS (DTV) on our behalf, and
     * that is not the program's allocation (FORMAT.md "Rundown"). */
    hti_guard_enter();
    hti_world_own_thread_coming(1);
    error = -pthread_create(&thread, &attributes, listener_main, NULL);
    if (error)
        hti_world_own_thread_coming(-1);
    hti_guard_leave();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attributes);
    if (error) {
        close_socket();
        atomic_store(&listener_state, LISTENER_IDLE);
    }
    return error;
}

/* ---- starting and stopping ---- */

int ht_control_start(void)
{
    if (control_started)
        return 0;
    hti_option_value dir = {0, NULL}, sig = {0, NULL};
    if (hti_option_getenv(HTI_OPTION_CONTROL_DIR, &dir, "control disabled") < 0 ||
        hti_option_getenv(HTI_OPTION_SIGNAL, &sig, "control disabled") < 0)
        return -EINVAL;
    snprintf(config_control_dir, sizeof config_control_dir, "%s", dir.text ? dir.text : "");
    const char *runtime = getenv("XDG_RUNTIME_DIR");
    snprintf(config_runtime_dir, sizeof config_runtime_dir, "%s",
             runtime && strlen(runtime) < sizeof config_runtime_dir ? runtime : "");
    /* A directory someone else prepared is refused now, not when a request comes. */
    char directory[SOCKET_PATH_MAX];
    int error = socket_directory(directory, sizeof directory);
    if (!error)
        error = private_directory(directory, false);
    if (error)
        return error;
    atomic_store(&control_closing, 0);
    control_started = true;
    error = hti_control_signal_arm(sig.number ? (int)sig.number
                                              : SIGRTMIN + HT_CONTROL_SIGNAL_OFFSET);
    if (error)
        control_started = false;
    return error;
}

void ht_control_stop(void)
{
    if (!control_started)
        return;
    hti_control_signal_disarm();
    control_started = false;
    atomic_store(&control_closing, 1);
    int fd = atomic_load(&control.fd);
    if (fd >= 0 && control.pid == getpid())
        shutdown(fd, SHUT_RDWR); /* wakes the listener, which removes the socket */
}

void hti_control_at_exit(void)
{
    atomic_store(&control_closing, 1);
    int fd = atomic_load(&control.fd);
    if (fd >= 0 && control.pid == getpid()) {
        struct stat st;
        if (lstat(control.path, &st) == 0 && st.st_dev == control.file_dev &&
            st.st_ino == control.file_ino)
            unlink(control.path); /* the socket never outlives the process */
        shutdown(fd, SHUT_RDWR);
    }
    /* A session started through the socket ends with the program, its waits bounded. */
    (void)hti_trace_stop_at_exit();
}

int ht_control_fork_child(void)
{
    /* No listener thread exists here; an open socket and its name are the parent's. */
    int fd = atomic_exchange(&control.fd, -1);
    if (fd >= 0 && control.pid != getpid() && still_ours(fd, control.dev, control.ino))
        close(fd);
    atomic_store(&listener_state, LISTENER_IDLE);
    atomic_store(&hti_control_pending, 0);
    return control_started ? 1 : 0;
}
