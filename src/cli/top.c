/* top.c — `heaptrail top [OPTIONS] PID`: a full-screen view of a running program's heap,
 * refreshed every second. The session is started through the control socket with the trace
 * streamed over a socket pair to this process (ctl.h), read live (live.c) and drawn by the view
 * (top_view.c). Quitting stops the session: the process runs on exactly as before it (no
 * session, no descriptor or thread of ours left in it). Defaults differ from `start`: stacks
 * on (sites need them) and discard mode (a slow view never slows the program; what it cannot
 * keep up with is counted as lost events and shown). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_common.h"
#include "commands.h"
#include "ctl.h"
#include "live.h"
#include "tracing_options.h"

static const char top_help[] =
    "Usage: heaptrail top [OPTIONS] PID\n"
    "Watch running process PID's heap in a full-screen view refreshed every second: live bytes\n"
    "and blocks, allocation and free rates, per heap and per Source, the sites holding the most\n"
    "(symbolized), lost events. PID must have libheaptrail-preload.so loaded and belong to you;\n"
    "tracing starts now (with a rundown of the live blocks) and stops when you quit.\n\n"
    "Keys: q quit, l/a/r sort by live, allocated or rate (s cycles), Up/Down select, Enter\n"
    "expand the selected site's stack, p or space pause, ? help.\n\n"
    "Options:\n"
    "  -o, --output FILE    keep the trace in FILE as well (%p = PID)\n"
    "  --stacks[=DEPTH]     stack depth (default 32; sites need stacks)\n"
    "  --mode MODE          discard (default: never slow the program), block or ring\n"
    "  --sample BYTES       byte sampling, one allocation every BYTES on average (figures are\n"
    "                       estimates)\n"
    "  --unwind M, --buffer SIZE, --free-stacks\n"
    "                       as for heaptrail start\n"
    "  --no-symbols         show addresses, not function names\n"
    "  --socket PATH        the control socket (default: found from PID)\n"
    "  -h, --help           this help\n\n"
    "Exit codes: 0 quit, 1 usage, 2 no such process / library not loaded / socket unreachable /\n"
    "not a terminal, 4 refused (another user's process, or a session is already running),\n"
    "128+N ended by signal N (the terminal is restored and tracing stopped first).\n";

enum { OPT_SOCKET = 1, OPT_NO_SYMBOLS };

typedef struct top_target {
    long pid;
    const char *socket_path;
} top_target;

static int stop_target(void *context)
{
    const top_target *t = context;
    return ht_cli_stream_stop(t->pid, t->socket_path);
}

int ht_cli_top(int argc, char **argv)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        HT_CLI_TRACING_OPTIONS,
        {"no-symbols", no_argument, NULL, OPT_NO_SYMBOLS},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *output = NULL, *socket_path = NULL;
    bool symbols = true;
    static ht_cli_tracing_keys keys;
    ht_cli_tracing_setting setting;
    int c, error;
    while ((c = ht_cli_getopt(argc, argv, "o:h", options)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg || strchr(optarg, '\n'))
                return ht_cli_usage_error("bad value for --output: expected a file name");
            output = optarg;
            break;
        case OPT_SOCKET: socket_path = optarg; break;
        case OPT_NO_SYMBOLS: symbols = false; break;
        case 'h': fputs(top_help, stdout); return HT_CLI_EXIT_OK;
        case HT_CLI_OPT_FOLLOW_FORKS:
        case HT_CLI_OPT_LEAK_SCAN:
        case HT_CLI_OPT_COMPRESS:
            return ht_cli_usage_error("%s does not apply to top", argv[optind - 1]);
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
    int code = ht_cli_target_check(argv[optind], socket_path);
    if (code)
        return code;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
        ht_cli_error("top needs a terminal (standard input and output a tty)");
        return HT_CLI_EXIT_IO;
    }
    if ((code = ht_cli_tracing_keys_default(&keys, "stacks", "32")) != 0 ||
        (code = ht_cli_tracing_keys_default(&keys, "mode", "discard")) != 0)
        return code;

    int fd;
    long pid;
    char command[64];
    code = ht_cli_stream_start(argv[optind], socket_path, keys.lines, keys.count, &fd, &pid,
                               command, sizeof command);
    if (code)
        return code;
    char tee[PATH_MAX + 32];
    if (output)
        ht_cli_expand_pid(output, pid, tee, sizeof tee);
    ht_live_settings settings = {
        .tee = output ? tee : NULL,
        .top = true,
        .symbols = symbols,
        .pid = pid,
        .command = command,
    };
    top_target target = {pid, socket_path};
    ht_live *live = ht_live_open(fd, &settings, &code);
    if (!live) {
        stop_target(&target);
        return code;
    }
    ht_live_catch_signals();
    ht_live_end end = ht_live_run(live, NULL, 10000);
    /* The view is closed, the terminal restored: now the session ends. */
    if (end != HT_LIVE_ENDED)
        ht_live_stop(live, NULL, stop_target, &target);
    int signal_number = ht_live_signal(live);
    code = ht_live_close(live);
    if (end == HT_LIVE_SIGNAL)
        return 128 + signal_number;
    if (end == HT_LIVE_FAILED && !code)
        code = HT_CLI_EXIT_IO;
    return code;
}
