/* tracing_options.h — the tracing options `record` and `start` share: --stacks[=DEPTH],
 * --free-stacks, --unwind, --mode, --sample, --buffer, --compress, --follow-forks and
 * --leak-scan. Both check
 * their values here, with the same messages, and hand them on as settings: record as the
 * program's HEAPTRAIL_* environment variables, start as keys of the control protocol's start
 * request (README.md, "Control protocol"). -o/--output and the help texts stay with each
 * command: their wording differs. */
#ifndef HEAPTRAIL_CLI_TRACING_OPTIONS_H
#define HEAPTRAIL_CLI_TRACING_OPTIONS_H

#include <stdint.h>

#include "cli_common.h"

/* The shared entries of the long-option table, ids HT_CLI_OPT_STACKS .. _LEAK_SCAN. */
#define HT_CLI_TRACING_OPTIONS                                                                     \
    {"stacks", optional_argument, NULL, HT_CLI_OPT_STACKS},                                        \
        {"free-stacks", no_argument, NULL, HT_CLI_OPT_FREE_STACKS},                                \
        {"unwind", required_argument, NULL, HT_CLI_OPT_UNWIND},                                    \
        {"mode", required_argument, NULL, HT_CLI_OPT_MODE},                                        \
        {"sample", required_argument, NULL, HT_CLI_OPT_SAMPLE},                                    \
        {"buffer", required_argument, NULL, HT_CLI_OPT_BUFFER},                                    \
        {"compress", required_argument, NULL, HT_CLI_OPT_COMPRESS},                                \
        {"follow-forks", no_argument, NULL, HT_CLI_OPT_FOLLOW_FORKS},                              \
    {                                                                                              \
        "leak-scan", no_argument, NULL, HT_CLI_OPT_LEAK_SCAN                                       \
    }

/* One option's setting, under both of its names. */
typedef struct ht_cli_tracing_setting {
    const char *key;      /* control protocol key: "stacks", "unwind", ..., "follow_forks" */
    const char *variable; /* environment variable: "HEAPTRAIL_STACKS", ... */
    uint64_t number;      /* --stacks, --sample, --buffer, --compress: the value */
    char value[32];       /* the value as sent: "32", "fp", "ring", "1" */
} ht_cli_tracing_setting;

/* Checks the value of one tracing option (value NULL for --stacks without =DEPTH, for
 * --free-stacks, --follow-forks and --leak-scan) and fills *setting: 0, or HT_CLI_EXIT_USAGE with "bad
 * value ..." printed. Any other id is getopt's '?', already reported: HT_CLI_EXIT_USAGE. */
int ht_cli_tracing_option(int id, const char *value, ht_cli_tracing_setting *setting);

/* The settings as a start request's "key=value" lines (start, top, start --pprof-every). */
#define HT_CLI_TRACING_KEYS_MAX 16
typedef struct ht_cli_tracing_keys {
    char text[HT_CLI_TRACING_KEYS_MAX][96];
    const char *lines[HT_CLI_TRACING_KEYS_MAX];
    size_t count;
} ht_cli_tracing_keys;

/* Appends key=value: 0, or HT_CLI_EXIT_USAGE with "too many options" printed. */
int ht_cli_tracing_keys_add(ht_cli_tracing_keys *keys, const char *key, const char *value);
/* Appends key=value unless key is there already (a command's own default): as above. */
int ht_cli_tracing_keys_default(ht_cli_tracing_keys *keys, const char *key, const char *value);

#endif
