/* collect.c — `heaptrail start --pprof-every DURATION PID` (and --pprof-at-peak): the session is
 * started with its trace streamed to this process (ctl.h), which stays in the foreground, keeps
 * the trace file and writes the periodic profiles (live.c) until the process exits, someone
 * stops the session, or SIGINT/SIGTERM/SIGHUP/SIGQUIT asks this collector to stop it (the last
 * interval's profile is then still written). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "collect.h"
#include "ctl.h"
#include "durations.h"
#include "live.h"

int ht_cli_pprof_option(int id, const char *value, ht_cli_collect_settings *settings)
{
    switch (id) {
    case HT_CLI_OPT_PPROF_EVERY:
        if (hti_parse_duration(value, &settings->every_ns) != 0 || settings->every_ns < 1000000u)
            return ht_cli_usage_error("bad value '%s' for --pprof-every: expected a duration of at "
                                      "least 1ms (e.g. 10s, 500ms, 1min)",
                                      value);
        return 0;
    case HT_CLI_OPT_PPROF_DIR:
        if (!*value)
            return ht_cli_usage_error("bad value '' for --pprof-dir: expected a directory");
        settings->dir = value;
        return 0;
    case HT_CLI_OPT_PPROF_AT_PEAK: settings->at_peak = true; return 0;
    default: return HT_CLI_EXIT_USAGE;
    }
}

int ht_cli_pprof_check(const ht_cli_collect_settings *settings)
{
    if (settings->dir && !settings->every_ns && !settings->at_peak)
        return ht_cli_usage_error("--pprof-dir needs --pprof-every or --pprof-at-peak");
    return 0;
}

typedef struct collect_target {
    long pid;
    const char *socket_path;
} collect_target;

static int stop_target(void *context)
{
    const collect_target *t = context;
    return ht_cli_stream_stop(t->pid, t->socket_path);
}

int ht_cli_collect(const char *pid_text, const char *socket_path, const char *const *keys,
                   size_t key_count, const char *output, const ht_cli_collect_settings *settings)
{
    int fd;
    long pid;
    char command[64];
    int code = ht_cli_stream_start(pid_text, socket_path, keys, key_count, &fd, &pid, command,
                                   sizeof command);
    if (code)
        return code;
    char tee[PATH_MAX + 64], name[NAME_MAX + 1];
    if (output)
        ht_cli_expand_pid(output, pid, tee, sizeof tee);
    else
        snprintf(tee, sizeof tee, "heaptrail.%s.%ld.trace", command, pid);
    const char *file = strrchr(tee, '/') ? strrchr(tee, '/') + 1 : tee;
    snprintf(name, sizeof name, "%.*s", (int)ht_cli_trace_stem(file), file);
    ht_live_settings live_settings = {
        .tee = tee,
        .pprof_every_ns = settings->every_ns,
        .pprof_at_peak = settings->at_peak,
        .pprof_dir = settings->dir,
        .pprof_name = name,
        .symbols = settings->symbols,
        .pid = pid,
        .command = command,
    };
    collect_target target = {pid, socket_path};
    ht_live *live = ht_live_open(fd, &live_settings, &code);
    if (!live) {
        stop_target(&target);
        return code;
    }
    fprintf(stderr, "heaptrail: process %ld (%s): tracing to %s, profiles every %.3gs in %s\n", pid,
            command, tee, (double)settings->every_ns / 1e9, settings->dir ? settings->dir : ".");
    ht_live_catch_signals();
    ht_live_end end = ht_live_run(live, NULL, 10000);
    if (end == HT_LIVE_SIGNAL || end == HT_LIVE_QUIT)
        ht_live_stop(live, NULL, stop_target, &target);
    else if (end == HT_LIVE_FAILED)
        stop_target(&target);
    code = ht_live_close(live);
    if (end == HT_LIVE_FAILED && !code)
        code = HT_CLI_EXIT_IO;
    return code;
}
