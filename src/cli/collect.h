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

/* Starts a session in pid_text streaming to here (keys: the start request's option lines,
 * "key=value"), writes its trace to output (%p = pid; NULL: heaptrail.COMM.PID.trace here) and
 * the profiles, until the trace ends. Returns the exit code (errors said as start says them). */
int ht_cli_collect(const char *pid_text, const char *socket_path, const char *const *keys,
                   size_t key_count, const char *output, const ht_cli_collect_settings *settings);

#endif
