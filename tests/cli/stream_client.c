/* stream_client.c — ctl.h's stream sessions driven from a test, as `heaptrail top` would use
 * them: ht_cli_stream_start on PID with the request keys given, then the stream copied into
 * FILE while stdin says what to do, one word a line:
 *   stop    ht_cli_stream_stop, then the rest of the stream up to its end
 *   close   close the reading end at once (the session in the process ends by itself)
 * (stdin at its end: as close). A stream that ended first is kept until that word comes. Prints "started PID COMMAND" on stdout once the stream runs and
 * "ended BYTES" when it is over. Messages are heaptrail's, under the command name "stream".
 * Exit status: ht_cli_stream_start's or ht_cli_stream_stop's code, 0 when all went well.
 * Usage: stream_client [--socket PATH] PID FILE [KEY=VALUE...] */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "ctl.h"

/* Copies what the stream has now into out; false at its end. */
static bool copy_stream(int fd, int out, unsigned long long *total)
{
    char buffer[1 << 16];
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    if (write(out, buffer, (size_t)n) != n)
        return false;
    *total += (unsigned long long)n;
    return true;
}

int main(int argc, char **argv)
{
    ht_cli_set_command("stream");
    const char *socket_path = NULL;
    int first = 1;
    if (argc > 2 && !strcmp(argv[1], "--socket")) {
        socket_path = argv[2];
        first = 3;
    }
    if (argc - first < 2) {
        fputs("usage: stream_client [--socket PATH] PID FILE [KEY=VALUE...]\n", stderr);
        return 1;
    }
    int out = open(argv[first + 1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (out < 0) {
        perror(argv[first + 1]);
        return 2;
    }
    int fd;
    long pid;
    char command[64];
    int code = ht_cli_stream_start(argv[first], socket_path, (const char *const *)argv + first + 2,
                                   (size_t)(argc - first - 2), &fd, &pid, command, sizeof command);
    if (code)
        return code;
    printf("started %ld %s\n", pid, command);
    fflush(stdout);
    unsigned long long total = 0;
    bool streaming = true, stopped = false;
    while (streaming || !stopped) {
        struct pollfd ready[2] = {{streaming ? fd : -1, POLLIN, 0},
                                  {stopped ? -1 : STDIN_FILENO, POLLIN, 0}};
        if (poll(ready, 2, -1) < 0 && errno != EINTR)
            break;
        if (ready[0].revents && !copy_stream(fd, out, &total))
            streaming = false; /* the stream's end: the session ended */
        if (!ready[1].revents)
            continue;
        char line[64];
        ssize_t n = read(STDIN_FILENO, line, sizeof line - 1);
        line[n > 0 ? n : 0] = '\0';
        if (n <= 0 || strncmp(line, "stop", 4) != 0)
            break; /* close, or stdin's end */
        code = ht_cli_stream_stop(pid, socket_path);
        stopped = true;
    }
    close(fd);
    close(out);
    printf("ended %llu\n", total);
    return code;
}
