/* ctl.c — `heaptrail start|stop|status|snapshot PID`: the client of the control socket that
 * libheaptrail-preload.so opens in a process when asked (src/trace/control.c, control_signal.c).
 *
 * The client sends the target its control signal (HEAPTRAIL_SIGNAL from /proc/PID/environ, or
 * the default), then connects to the socket as soon as it appears, sending the signal again
 * every SIGNAL_AGAIN_MS; after ANSWER_TIMEOUT_S without a socket it says why the process could
 * not answer (stopped, the signal blocked in every thread, ...). The socket path follows
 * ht_control_socket_path() with the target's own effective uid and its HEAPTRAIL_CONTROL_DIR /
 * XDG_RUNTIME_DIR (read from /proc/PID/environ), unless --socket names it. Before signalling,
 * the client says plainly what is missing: no such process, library not loaded, control
 * disabled, the signal not caught (a signal the process does not catch would end it). The request and reply are the text lines of README.md's "Control
 * protocol"; --raw prints the reply's key=value lines for scripts. start's tracing options are
 * record's, checked by tracing_options.c and sent as the request's keys. ctl.h's stream
 * sessions go through the same lookup, request and reply check as start (request_start), with
 * one end of a socketpair handed over in the request (SCM_RIGHTS). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "analyze/units.h"
#include "cli_common.h"
#include "collect.h"
#include "commands.h"
#include "ctl.h"
#include "durations.h"
#include "heaptrail/trace.h"
#include "trace/options.h"
#include "tracing_options.h"

#define REPLY_MAX 65536
#define START_TIMEOUT_S 120 /* a start walks every heap: large heaps take a while */
#define ANSWER_TIMEOUT_S 5  /* from the first signal to the socket */
#define SIGNAL_AGAIN_MS 500
#define CONNECT_POLL_MS 10
/* The process's end of a stream: room for a burst of events, so that its writer does not stall
 * at once when the reader is busy (the kernel caps it at net.core.wmem_max without privilege). */
#define STREAM_SEND_BUFFER (4 << 20)
/* exchange: the process ended (or is ending) while a client that expects it talked to it. */
#define EXCHANGE_GONE (-1)

static const char start_help[] =
    "Usage: heaptrail start [OPTIONS] PID\n"
    "Start tracing in running process PID, which must have libheaptrail-preload.so loaded\n"
    "(LD_PRELOAD or heaptrail record) and belong to you (the control socket is owner-only).\n"
    "The process writes the trace itself; it starts with a rundown of every live block.\n\n"
    "Options:\n"
    "  -o, --output FILE    trace file (default: heaptrail.COMM.PID.trace in the current\n"
    "                       directory); relative paths are taken from here; %p = PID\n"
    "  --stacks[=DEPTH]     record stacks at allocations, DEPTH frames (default 32, max 128)\n"
    "  --free-stacks        with --stacks: a stack at every free too\n"
    "  --unwind METHOD      libunwind or fp (default: cached .eh_frame rules, then libunwind)\n"
    "  --mode MODE          block (default), discard or ring\n"
    "  --sample BYTES       byte sampling, one allocation every BYTES on average\n"
    "  --buffer SIZE        per-thread buffer (default 1m)\n"
    "  --compress LEVEL     zstd level 1..19\n"
    "  --follow-forks       children forked from now on get their own trace (FILE.PID)\n"
    "  --leak-scan          when the process exits, record which blocks it can no longer\n"
    "                       reach (as heaptrail check; report shows the classes)\n"
    "  --pprof-every DURATION\n"
    "                       stay in the foreground, keep the trace and write a pprof profile\n"
    "                       NAME.SEQ.pb.gz every DURATION (10s, 500ms) until the process exits\n"
    "                       or SIGINT/SIGTERM (which stop the session); stacks on by default\n"
    "  --pprof-at-peak      also NAME.peak.SEQ.pb.gz at each new peak of live bytes\n"
    "  --pprof-dir DIR      where the profiles go (default: here)\n"
    "  --no-symbols         profiles with module+offset frames, not function names\n"
    "  --socket PATH        the control socket (default: found from PID)\n"
    "  --raw                print the process's reply as key=value lines\n"
    "  -h, --help           this help\n\n"
    "Exit codes: 0 ok, 1 usage, 2 no such process / library not loaded / socket unreachable,\n"
    "4 refused by the process (another user's process, or a session is already running).\n";

static const char stop_help[] =
    "Usage: heaptrail stop [OPTIONS] PID\n"
    "Stop tracing in running process PID: buffered events are written, the trace file is\n"
    "closed with its footer, and the program runs on untraced.\n\n"
    "Options:\n"
    "  --socket PATH        the control socket (default: found from PID)\n"
    "  --raw                print the process's reply as key=value lines\n"
    "  -h, --help           this help\n\n"
    "Exit codes: 0 ok, 1 usage, 2 no such process / library not loaded / socket unreachable,\n"
    "4 refused (another user's process, or no session running).\n";

static const char status_help[] =
    "Usage: heaptrail status [OPTIONS] PID\n"
    "Show whether running process PID is tracing, to which file, in which mode, and how many\n"
    "events it has written and lost.\n\n"
    "Options:\n"
    "  --socket PATH        the control socket (default: found from PID)\n"
    "  --raw                print the process's reply as key=value lines\n"
    "  -h, --help           this help\n\n"
    "Exit codes: 0 ok (tracing or not), 1 usage, 2 no such process / library not loaded /\n"
    "socket unreachable, 4 refused (another user's process).\n";

static const char snapshot_help[] =
    "Usage: heaptrail snapshot [OPTIONS] PID\n"
    "Ring mode: write what the process's ring buffers hold now, plus a rundown of the live\n"
    "blocks, to its trace file. Other modes: write everything buffered so far.\n\n"
    "Options:\n"
    "  --socket PATH        the control socket (default: found from PID)\n"
    "  --raw                print the process's reply as key=value lines\n"
    "  -h, --help           this help\n\n"
    "Exit codes: 0 ok, 1 usage, 2 no such process / library not loaded / socket unreachable,\n"
    "4 refused (another user's process, or no session running).\n";

enum {
    OPT_SOCKET = 1,
    OPT_RAW,
    OPT_NO_SYMBOLS,
};

typedef struct request {
    char text[8192];
    size_t length;
} request;

static void request_add(request *r, const char *key, const char *value)
{
    int n = snprintf(r->text + r->length, sizeof r->text - r->length, "%s=%s\n", key, value);
    if (n > 0 && (size_t)n < sizeof r->text - r->length)
        r->length += (size_t)n;
}

/* A start request's option lines from "key=value" strings: 0, or HT_CLI_EXIT_USAGE (said). */
static int body_from_keys(request *body, const char *const *keys, size_t key_count)
{
    body->length = 0;
    for (size_t i = 0; i < key_count; i++) {
        size_t length = strlen(keys[i]);
        if (!strchr(keys[i], '=') || strchr(keys[i], '\n') ||
            length + 1 > sizeof body->text - body->length)
            return ht_cli_usage_error("bad request key '%s'", keys[i]);
        memcpy(body->text + body->length, keys[i], length);
        body->length += length;
        body->text[body->length++] = '\n';
    }
    return 0;
}

/* ---- finding the process and its socket ---- */

/* The value of name in /proc/PID/environ, copied into value; false if absent. *readable tells
 * whether the environment could be read at all. */
static bool target_environment(long pid, const char *name, char *value, size_t size, bool *readable)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/environ", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *readable = fd >= 0;
    if (fd < 0)
        return false;
    static char data[1 << 20];
    size_t length = 0;
    ssize_t n;
    while (length < sizeof data - 1 && (n = read(fd, data + length, sizeof data - 1 - length)) > 0)
        length += (size_t)n;
    close(fd);
    data[length] = '\0';
    size_t name_length = strlen(name);
    for (size_t at = 0; at < length; at += strlen(data + at) + 1) {
        if (!strncmp(data + at, name, name_length) && data[at + name_length] == '=') {
            snprintf(value, size, "%s", data + at + name_length + 1);
            return true;
        }
    }
    return false;
}

/* The text after "name:" on its line of a /proc status file, copied into value; false if the
 * file or the line is missing. */
static bool status_field(const char *path, const char *name, char *value, size_t size)
{
    char line[512];
    FILE *file = fopen(path, "re");
    if (!file)
        return false;
    size_t length = strlen(name);
    bool found = false;
    while (!found && fgets(line, sizeof line, file)) {
        if (!strncmp(line, name, length) && line[length] == ':') {
            snprintf(value, size, "%s", line + length + 1 + strspn(line + length + 1, " \t"));
            value[strcspn(value, "\n")] = '\0';
            found = true;
        }
    }
    fclose(file);
    return found;
}

/* Effective uid from /proc/PID/status, or -1. */
static long target_uid(long pid)
{
    char path[64], value[128];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    unsigned long real, effective;
    if (!status_field(path, "Uid", value, sizeof value) ||
        sscanf(value, "%lu %lu", &real, &effective) != 2)
        return -1;
    return (long)effective;
}

/* Whether signal sig is set in the hexadecimal mask field name of a /proc status file: 1, 0,
 * or -1 if unreadable. */
static int status_mask_has(const char *path, const char *name, int sig)
{
    char value[64];
    if (!status_field(path, name, value, sizeof value))
        return -1;
    unsigned long long mask = strtoull(value, NULL, 16);
    return (mask >> (sig - 1)) & 1;
}

static void target_command(long pid, char *name, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    name[0] = '\0';
    FILE *file = fopen(path, "re");
    if (file) {
        if (fgets(name, (int)size, file))
            name[strcspn(name, "\n")] = '\0';
        fclose(file);
    }
    if (!name[0])
        snprintf(name, size, "process");
}

/* 1 if /proc/PID/maps shows the preload library, 0 if not, -1 if it cannot be read. */
static int target_has_library(long pid)
{
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%ld/maps", pid);
    FILE *file = fopen(path, "re");
    if (!file)
        return -1;
    int found = 0;
    bool any = false;
    while (!found && fgets(line, sizeof line, file)) {
        any = true;
        found = strstr(line, "libheaptrail-preload") != NULL;
    }
    fclose(file);
    return any ? found : -1;
}

typedef struct target {
    long pid;
    long uid;
    int signal_number;  /* the control signal; 0 with --socket on a process not checked */
    bool quiet_if_gone; /* exchange: a process that ended is EXCHANGE_GONE, without a message */
    char command[64];
    char socket[sizeof(((struct sockaddr_un *)0)->sun_path)];
} target;

static int find_target(const char *pid_text, const char *socket_path, target *t)
{
    char *end;
    errno = 0;
    long pid = strtol(pid_text, &end, 10);
    if (errno || end == pid_text || *end || pid <= 0 || pid > INT_MAX)
        return ht_cli_usage_error("'%s' is not a process id", pid_text);
    t->pid = pid;
    t->quiet_if_gone = false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
        ht_cli_error("no process %ld", pid);
        return HT_CLI_EXIT_IO;
    }
    target_command(pid, t->command, sizeof t->command);
    t->uid = target_uid(pid);
    t->signal_number = 0;
    if (socket_path) {
        if (strlen(socket_path) >= sizeof t->socket)
            return ht_cli_usage_error("socket path too long: '%s'", socket_path);
        snprintf(t->socket, sizeof t->socket, "%s", socket_path);
        return 0;
    }
    if (t->uid < 0) {
        ht_cli_error("cannot read /proc/%ld/status: %s", pid, strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    bool readable = false;
    char control[16], control_dir[PATH_MAX], runtime_dir[PATH_MAX];
    bool has_control = target_environment(pid, "HEAPTRAIL_CONTROL", control, sizeof control,
                                          &readable);
    if (!readable) {
        ht_cli_error("permission denied: process %ld (%s) belongs to uid %ld; its control "
                     "socket is open to its owner only",
                     pid, t->command, t->uid);
        return HT_CLI_EXIT_REFUSED;
    }
    if (has_control && !strcmp(control, "0")) {
        ht_cli_error("process %ld (%s) runs with HEAPTRAIL_CONTROL=0: no control socket", pid,
                     t->command);
        return HT_CLI_EXIT_IO;
    }
    if (target_has_library(pid) == 0) {
        ht_cli_error("process %ld (%s) has not loaded libheaptrail-preload.so (start it with "
                     "'heaptrail record' or LD_PRELOAD)",
                     pid, t->command);
        return HT_CLI_EXIT_IO;
    }
    char signal_text[64], status[64];
    uint64_t signal_number = (uint64_t)(SIGRTMIN + HT_CONTROL_SIGNAL_OFFSET);
    if (target_environment(pid, "HEAPTRAIL_SIGNAL", signal_text, sizeof signal_text, &readable) &&
        hti_parse_signal(signal_text, &signal_number) != 0) {
        ht_cli_error("process %ld (%s) runs with HEAPTRAIL_SIGNAL=\"%s\", which it refused: "
                     "control is disabled in it",
                     pid, t->command, signal_text);
        return HT_CLI_EXIT_IO;
    }
    t->signal_number = (int)signal_number;
    snprintf(status, sizeof status, "/proc/%ld/status", pid);
    if (status_mask_has(status, "SigCgt", t->signal_number) == 0) {
        ht_cli_error("process %ld (%s) does not catch signal %d (SIGRTMIN+%d), its control "
                     "signal: control is disabled in it (a bad HEAPTRAIL_CONTROL_DIR?), or it "
                     "reset the signal with a raw system call",
                     pid, t->command, t->signal_number, t->signal_number - SIGRTMIN);
        return HT_CLI_EXIT_IO;
    }
    bool has_dir = target_environment(pid, "HEAPTRAIL_CONTROL_DIR", control_dir, sizeof control_dir,
                                      &readable);
    bool has_runtime = target_environment(pid, "XDG_RUNTIME_DIR", runtime_dir, sizeof runtime_dir,
                                          &readable);
    if (ht_control_socket_path(t->socket, sizeof t->socket, (uint32_t)t->uid, (uint32_t)pid,
                               has_dir ? control_dir : NULL,
                               has_runtime ? runtime_dir : NULL) < 0) {
        ht_cli_error("the control socket path of process %ld is too long", pid);
        return HT_CLI_EXIT_IO;
    }
    return 0;
}

/* ---- talking ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Connects fd to the target's socket: tries at once (a listener may still be open), else
 * signals the process and tries until its socket answers, signalling again now and then (a
 * listener that was just ending, a request that waited for a malloc call). 0 or an errno:
 * ETIMEDOUT when the process never answered, ESRCH when it ended, EPERM when it is not ours. */
static int connect_signalling(int fd, const target *t)
{
    struct sockaddr_un address;
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    snprintf(address.sun_path, sizeof address.sun_path, "%s", t->socket);
    uint64_t start = now_ms(), signalled = 0;
    bool sent = false;
    for (;;) {
        if (connect(fd, (struct sockaddr *)&address, sizeof address) == 0)
            return 0;
        int e = errno;
        if (e != ENOENT && e != ECONNREFUSED && e != EAGAIN)
            return e;
        uint64_t now = now_ms();
        if (now - start >= ANSWER_TIMEOUT_S * 1000u)
            return sent ? ETIMEDOUT : e;
        if (t->signal_number && (!sent || now - signalled >= SIGNAL_AGAIN_MS)) {
            int error = ht_control_request((int)t->pid, t->signal_number);
            if (error)
                return -error;
            sent = true;
            signalled = now;
        } else if (!t->signal_number && !sent) {
            return e; /* --socket on a process we did not check: nothing to wake */
        }
        struct timespec pause = {0, CONNECT_POLL_MS * 1000000L};
        nanosleep(&pause, NULL);
    }
}

/* Why the process did not open its socket after being signalled: one line. */
static void explain_silence(const target *t)
{
    char path[64], state[64];
    snprintf(path, sizeof path, "/proc/%ld/status", t->pid);
    if (status_field(path, "State", state, sizeof state) && (state[0] == 'T' || state[0] == 't')) {
        ht_cli_error("process %ld (%s) is stopped (%s): it cannot answer until it is continued",
                     t->pid, t->command, state);
        return;
    }
    bool any = false, all_block = true;
    char task[64];
    snprintf(task, sizeof task, "/proc/%ld/task", t->pid);
    DIR *dir = opendir(task);
    struct dirent *entry;
    while (dir && (entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        char comm[300], name[64] = "";
        snprintf(comm, sizeof comm, "/proc/%ld/task/%s/comm", t->pid, entry->d_name);
        FILE *file = fopen(comm, "re");
        if (file) {
            if (!fgets(name, sizeof name, file))
                name[0] = '\0';
            fclose(file);
        }
        if (!strncmp(name, "heaptrail-", 10))
            continue;
        snprintf(comm, sizeof comm, "/proc/%ld/task/%s/status", t->pid, entry->d_name);
        any = true;
        if (status_mask_has(comm, "SigBlk", t->signal_number) != 1)
            all_block = false;
    }
    if (dir)
        closedir(dir);
    if (any && all_block)
        ht_cli_error("process %ld (%s) blocks signal %d (its control signal) in every thread: "
                     "it cannot answer",
                     t->pid, t->command, t->signal_number);
    else
        ht_cli_error("process %ld (%s) did not answer within %d s: none of its threads was "
                     "waiting in a system call or called malloc (a busy loop?); try again",
                     t->pid, t->command, ANSWER_TIMEOUT_S);
}

/* True once process pid no longer runs (gone, or a zombie). */
static bool process_gone(long pid)
{
    char path[64], state[64];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return true;
    return status_field(path, "State", state, sizeof state) && state[0] == 'Z';
}

/* exchange failed because the process ended, and the caller wants that quietly. */
static bool gone_quietly(const target *t)
{
    return t->quiet_if_gone && process_gone(t->pid);
}

/* send of the request's next bytes; the first carries descriptor (-1: none) as SCM_RIGHTS. */
static ssize_t send_part(int fd, const char *data, size_t length, int descriptor)
{
    if (descriptor < 0)
        return send(fd, data, length, MSG_NOSIGNAL);
    union {
        struct cmsghdr header;
        char bytes[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct iovec part = {(void *)data, length};
    struct msghdr message = {.msg_iov = &part,
                             .msg_iovlen = 1,
                             .msg_control = control.bytes,
                             .msg_controllen = sizeof control.bytes};
    struct cmsghdr *rights = CMSG_FIRSTHDR(&message);
    rights->cmsg_level = SOL_SOCKET;
    rights->cmsg_type = SCM_RIGHTS;
    rights->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(rights), &descriptor, sizeof descriptor);
    return sendmsg(fd, &message, MSG_NOSIGNAL);
}

/* Sends the request (with descriptor, -1: none), reads the whole reply into reply. 0 or an exit
 * code (printed), or EXCHANGE_GONE (t->quiet_if_gone). */
static int exchange(const target *t, const request *r, int descriptor, char *reply, size_t size,
                    int timeout)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ht_cli_error("cannot create a socket: %s", strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    int e = connect_signalling(fd, t);
    if (e != 0 && (e == ESRCH ? t->quiet_if_gone : gone_quietly(t))) {
        close(fd);
        return EXCHANGE_GONE;
    }
    if (e != 0) {
        close(fd);
        if (e == EACCES || e == EPERM) {
            ht_cli_error("permission denied: %s (process %ld belongs to uid %ld; its control "
                         "socket is open to its owner only)",
                         t->socket, t->pid, t->uid);
            return HT_CLI_EXIT_REFUSED;
        }
        if (e == ESRCH)
            ht_cli_error("process %ld ended before it answered", t->pid);
        else if (e == ETIMEDOUT)
            explain_silence(t);
        else if (e == ENOENT || e == ECONNREFUSED)
            ht_cli_error("nobody listens at %s: process %ld (%s) was not started under "
                         "heaptrail, or the socket's directory was not private",
                         t->socket, t->pid, t->command);
        else
            ht_cli_error("cannot connect to %s: %s", t->socket, strerror(e));
        return HT_CLI_EXIT_IO;
    }
    struct timeval tv = {timeout, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    size_t sent = 0;
    while (sent < r->length) {
        ssize_t n = send_part(fd, r->text + sent, r->length - sent, descriptor);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int error = errno;
            bool gone = gone_quietly(t);
            if (!gone)
                ht_cli_error("cannot send to %s: %s", t->socket, strerror(error));
            close(fd);
            return gone ? EXCHANGE_GONE : HT_CLI_EXIT_IO;
        }
        sent += (size_t)n;
        descriptor = -1; /* it went with these bytes */
    }
    shutdown(fd, SHUT_WR);
    size_t length = 0;
    for (;;) {
        ssize_t n = recv(fd, reply + length, size - 1 - length, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int error = errno;
            bool gone = gone_quietly(t);
            if (!gone)
                ht_cli_error("no reply from process %ld: %s", t->pid,
                             error == EAGAIN ? "timed out" : strerror(error));
            close(fd);
            return gone ? EXCHANGE_GONE : HT_CLI_EXIT_IO;
        }
        if (n == 0 || (length += (size_t)n) >= size - 1)
            break;
    }
    close(fd);
    reply[length] = '\0';
    if (length == 0 && gone_quietly(t))
        return EXCHANGE_GONE;
    if (length == 0) {
        ht_cli_error("process %ld closed the connection without a reply", t->pid);
        return HT_CLI_EXIT_IO;
    }
    return 0;
}

/* The value of key in a reply ("" if absent), copied into value. */
static const char *reply_value(const char *reply, const char *key, char *value, size_t size)
{
    size_t key_length = strlen(key);
    value[0] = '\0';
    for (const char *line = strchr(reply, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        const char *start = line + 1;
        if (!strncmp(start, key, key_length) && start[key_length] == '=') {
            const char *v = start + key_length + 1;
            snprintf(value, size, "%.*s", (int)strcspn(v, "\n"), v);
            break;
        }
    }
    return value;
}

static unsigned long long reply_number(const char *reply, const char *key)
{
    char value[64];
    return strtoull(reply_value(reply, key, value, sizeof value), NULL, 10);
}

/* Prints an error reply ("error NAME message") and returns its exit code; 0 for "ok". */
static int check_reply(const target *t, const char *reply)
{
    if (!strncmp(reply, "ok\n", 3))
        return 0;
    if (!strncmp(reply, "error ", 6)) {
        const char *message = reply + 6;
        message += strcspn(message, " \n");
        if (*message == ' ')
            message++;
        ht_cli_error("process %ld (%s): %.*s", t->pid, t->command, (int)strcspn(message, "\n"),
                     message);
        return HT_CLI_EXIT_REFUSED;
    }
    ht_cli_error("process %ld sent a reply this version does not understand: %.*s", t->pid,
                 (int)strcspn(reply, "\n"), reply);
    return HT_CLI_EXIT_IO;
}

static void print_raw(const char *reply)
{
    const char *body = strchr(reply, '\n');
    if (!body)
        return;
    body++;
    size_t length = strlen(body);
    while (length && body[length - 1] == '\n')
        length--;
    printf("%.*s\n", (int)length, body);
}

/* ---- the commands ---- */

static int simple_options(int argc, char **argv, const char *help, const char **socket_path,
                          bool *raw)
{
    static const struct option options[] = {
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"raw", no_argument, NULL, OPT_RAW},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = ht_cli_getopt(argc, argv, "h", options)) != -1) {
        switch (c) {
        case OPT_SOCKET: *socket_path = optarg; break;
        case OPT_RAW: *raw = true; break;
        case 'h': fputs(help, stdout); return -1;
        default: return HT_CLI_EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return ht_cli_usage_error("no process id given");
    if (optind + 1 < argc)
        return ht_cli_usage_error("one process at a time ('%s' is extra)", argv[optind + 1]);
    return 0;
}

static int run_simple(int argc, char **argv, const char *help, const char *command,
                      void (*show)(const target *, const char *))
{
    const char *socket_path = NULL;
    bool raw = false;
    int code = simple_options(argc, argv, help, &socket_path, &raw);
    if (code)
        return code < 0 ? HT_CLI_EXIT_OK : code;
    target t;
    if ((code = find_target(argv[optind], socket_path, &t)) != 0)
        return code;
    request r = {.length = 0};
    r.length = (size_t)snprintf(r.text, sizeof r.text, "%s\n\n", command);
    static char reply[REPLY_MAX];
    if ((code = exchange(&t, &r, -1, reply, sizeof reply, START_TIMEOUT_S)) != 0)
        return code;
    if ((code = check_reply(&t, reply)) != 0)
        return code;
    if (raw)
        print_raw(reply);
    else
        show(&t, reply);
    return HT_CLI_EXIT_OK;
}

/* Sends `start` with output_key=output_value (output=PATH, or stream=1 with descriptor handed
 * over) and the tracing keys of body, and checks the reply as `heaptrail start` does. 0 with
 * the reply in reply, or the exit code after the error was printed. */
static int request_start(const target *t, const char *output_key, const char *output_value,
                         const request *body, int descriptor, char *reply, size_t size)
{
    request r = {.length = 0};
    r.length = (size_t)snprintf(r.text, sizeof r.text, "start\n");
    request_add(&r, output_key, output_value);
    if (r.length + body->length + 2 > sizeof r.text)
        return ht_cli_usage_error("options too long");
    memcpy(r.text + r.length, body->text, body->length);
    r.length += body->length;
    r.text[r.length++] = '\n';
    int code = exchange(t, &r, descriptor, reply, size, START_TIMEOUT_S);
    if (code)
        return code;
    if ((code = check_reply(t, reply)) != 0) {
        char value[PATH_MAX];
        if (!strcmp(reply_value(reply, "output", value, sizeof value), "stream"))
            ht_cli_error("the running session streams its trace to another client");
        else if (*value)
            ht_cli_error("the running session writes to %s", value);
    }
    return code;
}

static void show_status(const target *t, const char *reply)
{
    char a[HTI_NUMBER_MAX], value[PATH_MAX];
    if (reply_number(reply, "active") == 0) {
        bool gone = !strcmp(reply_value(reply, "ended", value, sizeof value), "consumer_gone");
        printf("process %ld (%s): not tracing%s\n", t->pid, t->command,
               gone ? " (the last session ended when the reader of its stream went away)" : "");
        return;
    }
    reply_value(reply, "output", value, sizeof value);
    if (!strcmp(value, "stream"))
        printf("process %ld (%s): streaming its trace to a client\n", t->pid, t->command);
    else
        printf("process %ld (%s): tracing to %s\n", t->pid, t->command,
               *value ? value : "(a descriptor)");
    printf("  mode %s, ", reply_value(reply, "mode", value, sizeof value));
    unsigned long long stacks = reply_number(reply, "stacks");
    unsigned long long sample = reply_number(reply, "sample");
    if (stacks)
        printf("stacks of %llu frames, ", stacks);
    else
        printf("no stacks, ");
    if (sample)
        printf("sampled every %llu bytes\n", sample);
    else
        printf("every allocation\n");
    char events[HTI_NUMBER_MAX], lost[HTI_NUMBER_MAX];
    printf("  %s events written, %s lost, %s, %llu threads\n",
           hti_format_count(events, sizeof events, (double)reply_number(reply, "events")),
           hti_format_count(lost, sizeof lost, (double)reply_number(reply, "lost")),
           hti_format_bytes(a, sizeof a, (double)reply_number(reply, "bytes")),
           reply_number(reply, "threads"));
}

static void show_stop(const target *t, const char *reply)
{
    char a[HTI_NUMBER_MAX], events[HTI_NUMBER_MAX], lost[HTI_NUMBER_MAX], value[PATH_MAX];
    const char *where = reply_value(reply, "output", value, sizeof value);
    if (!strcmp(where, "stream"))
        where = "its client's stream";
    printf("process %ld (%s): stopped tracing; %s events, %s lost, %s written to %s\n", t->pid,
           t->command,
           hti_format_count(events, sizeof events, (double)reply_number(reply, "events")),
           hti_format_count(lost, sizeof lost, (double)reply_number(reply, "lost")),
           hti_format_bytes(a, sizeof a, (double)reply_number(reply, "bytes")),
           *where ? where : "its descriptor");
}

static void show_snapshot(const target *t, const char *reply)
{
    char value[PATH_MAX];
    printf("process %ld (%s): snapshot written to %s\n", t->pid, t->command,
           reply_value(reply, "output", value, sizeof value));
}

int ht_cli_status(int argc, char **argv)
{
    return run_simple(argc, argv, status_help, "status", show_status);
}

int ht_cli_stop(int argc, char **argv)
{
    return run_simple(argc, argv, stop_help, "stop", show_stop);
}

int ht_cli_snapshot(int argc, char **argv)
{
    return run_simple(argc, argv, snapshot_help, "snapshot", show_snapshot);
}

int ht_cli_start(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        HT_CLI_TRACING_OPTIONS,
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"raw", no_argument, NULL, OPT_RAW},
        HT_CLI_PPROF_OPTIONS,
        {"no-symbols", no_argument, NULL, OPT_NO_SYMBOLS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *socket_path = NULL;
    bool raw = false;
    static ht_cli_tracing_keys keys;
    ht_cli_tracing_setting setting;
    ht_cli_collect_settings collect = {.symbols = true};
    int c, error;
    while ((c = ht_cli_getopt(argc, argv, "o:h", options)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg || strchr(optarg, '\n'))
                return ht_cli_usage_error("bad value for --output: expected a file name");
            output = optarg;
            break;
        case OPT_SOCKET: socket_path = optarg; break;
        case OPT_RAW: raw = true; break;
        case HT_CLI_OPT_PPROF_EVERY:
        case HT_CLI_OPT_PPROF_DIR:
        case HT_CLI_OPT_PPROF_AT_PEAK:
            if ((error = ht_cli_pprof_option(c, optarg, &collect)) != 0)
                return error;
            break;
        case OPT_NO_SYMBOLS: collect.symbols = false; break;
        case 'h': fputs(start_help, stdout); return HT_CLI_EXIT_OK;
        default: /* the tracing options, or '?' */
            if ((error = ht_cli_tracing_option(c, optarg, &setting)) != 0 ||
                (error = ht_cli_tracing_keys_add(&keys, setting.key, setting.value)) != 0)
                return error;
        }
    }
    if (optind >= argc)
        return ht_cli_usage_error("no process id given");
    if (optind + 1 < argc)
        return ht_cli_usage_error("one process at a time ('%s' is extra)", argv[optind + 1]);
    bool collecting = collect.every_ns || collect.at_peak;
    if ((error = ht_cli_pprof_check(&collect)) != 0)
        return error;
    /* The output, absolute: the process has its own current directory. */
    char cwd[PATH_MAX], path[PATH_MAX + NAME_MAX + 64];
    if (!getcwd(cwd, sizeof cwd)) {
        ht_cli_error("cannot get the current directory: %s", strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    if (output && output[0] != '/') {
        snprintf(path, sizeof path, "%s/%s", cwd, output);
        output = path;
    }
    if (collecting) {
        if (raw)
            return ht_cli_usage_error("--raw does not mix with --pprof-every");
        for (size_t i = 0; i < keys.count; i++)
            if (!strncmp(keys.lines[i], "follow_forks=", 13))
                return ht_cli_usage_error("--follow-forks does not mix with --pprof-every: one "
                                          "trace per process");
        if ((error = ht_cli_tracing_keys_default(&keys, "stacks", "32")) != 0)
            return error; /* profiles are by stack */
        return ht_cli_collect(argv[optind], socket_path, keys.lines, keys.count, output, &collect);
    }
    request body;
    if ((error = body_from_keys(&body, keys.lines, keys.count)) != 0)
        return error;
    target t;
    int code = find_target(argv[optind], socket_path, &t);
    if (code)
        return code;
    if (!output) {
        snprintf(path, sizeof path, "%s/heaptrail.%s.%ld.trace", cwd, t.command, t.pid);
        output = path;
    }
    static char reply[REPLY_MAX];
    if ((code = request_start(&t, "output", output, &body, -1, reply, sizeof reply)) != 0)
        return code;
    if (raw) {
        print_raw(reply);
    } else {
        char value[PATH_MAX];
        printf("process %ld (%s): tracing to %s\n", t.pid, t.command,
               reply_value(reply, "output", value, sizeof value));
    }
    return HT_CLI_EXIT_OK;
}

/* ---- stream sessions (ctl.h) ---- */

int ht_cli_target_check(const char *pid_text, const char *socket_path)
{
    target t;
    return find_target(pid_text, socket_path, &t);
}

int ht_cli_stream_start(const char *pid_text, const char *socket_path, const char *const *keys,
                        size_t key_count, int *fd, long *pid, char *command, size_t command_size)
{
    request body;
    int code = body_from_keys(&body, keys, key_count);
    if (code)
        return code;
    target t;
    if ((code = find_target(pid_text, socket_path, &t)) != 0)
        return code;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        ht_cli_error("cannot create a socket pair: %s", strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    int room = STREAM_SEND_BUFFER;
    if (setsockopt(pair[1], SOL_SOCKET, SO_SNDBUFFORCE, &room, sizeof room) != 0)
        (void)setsockopt(pair[1], SOL_SOCKET, SO_SNDBUF, &room, sizeof room);
    static char reply[REPLY_MAX];
    code = request_start(&t, "stream", "1", &body, pair[1], reply, sizeof reply);
    close(pair[1]); /* the process has its own copy now, or none */
    if (code) {
        close(pair[0]);
        return code;
    }
    *fd = pair[0];
    *pid = t.pid;
    snprintf(command, command_size, "%s", t.command);
    return HT_CLI_EXIT_OK;
}

int ht_cli_stream_stop(long pid, const char *socket_path)
{
    if (process_gone(pid))
        return HT_CLI_EXIT_OK;
    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%ld", pid);
    target t;
    int code = find_target(pid_text, socket_path, &t);
    if (code)
        return code;
    t.quiet_if_gone = true;
    request r = {.length = 0};
    r.length = (size_t)snprintf(r.text, sizeof r.text, "stop\n\n");
    static char reply[REPLY_MAX];
    code = exchange(&t, &r, -1, reply, sizeof reply, START_TIMEOUT_S);
    if (code == EXCHANGE_GONE || (!code && !strncmp(reply, "error ENOENT ", 13)))
        return HT_CLI_EXIT_OK; /* no process, or no session any more */
    return code ? code : check_reply(&t, reply);
}
