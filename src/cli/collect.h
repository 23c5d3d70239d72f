/* collect.h — `heaptrail start --pprof-every`: the collector that stays in the foreground
 * (collect.c). */
#ifndef HEAPTRAIL_CLI_COLLECT_H
#define HEAPTRAIL_CLI_COLLECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ht_cli_collect_settings {
    uint64_t every_ns; /* --pprof-every (0: none) */
    bool at_peak;      /* --pprof-at-peak */
    const char *dir;   /* --pprof-dir, NULL: here */
    bool symbols;      /* not --no-symbols */
} ht_cli_collect_settings;

/* The continuous profiles' options, record's and start's: --pprof-every, --pprof-dir,
 * --pprof-at-peak (ids HT_CLI_OPT_PPROF_*), and --no-symbols is the command's own. */
#define HT_CLI_PPROF_OPTIONS                                                                       \
    {"pprof-every", required_argument, NULL, HT_CLI_OPT_PPROF_EVERY},                              \
        {"pprof-dir", required_argument, NULL, HT_CLI_OPT_PPROF_DIR},                              \
    {                                                                                              \
        "pprof-at-peak", no_argument, NULL, HT_CLI_OPT_PPROF_AT_PEAK                               \
    }

/* Takes one of them into settings: 0, or HT_CLI_EXIT_USAGE with the error said. */
int ht_cli_pprof_option(int id, const char *value, ht_cli_collect_settings *settings);
/* After the options: --pprof-dir alone is an error (said; HT_CLI_EXIT_USAGE), else 0. */
int ht_cli_pprof_check(const ht_cli_collect_settings *settings);

/* Starts a session in pid_text streaming to here (keys: the start request's option lines,
 * "key=value"), writes its trace to output (%p = pid; NULL: heaptrail.COMM.PID.trace here) and
 * the profiles, until the trace ends. Returns the exit code (errors said as start says them). */
int ht_cli_collect(const char *pid_text, const char *socket_path, const char *const *keys,
                   size_t key_count, const char *output, const ht_cli_collect_settings *settings);

#endif
