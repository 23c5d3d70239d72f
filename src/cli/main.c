/* main.c — `heaptrail`: the dispatch table of subcommands, `--help` and `--version`.
 *
 * Each entry names a subcommand, its entry point (commands.h) and a one-line summary for the
 * overview. report, export and diff are listed only when their files were compiled in. `heaptrail
 * help CMD` is `heaptrail CMD --help`. Unknown commands are usage errors (exit 1). */
#include <stdio.h>
#include <string.h>

#include "cli_common.h"
#include "commands.h"

#ifndef HT_VERSION
#define HT_VERSION "0.0.0"
#endif

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"record", ht_cli_record, "run a program with tracing on and write its trace"},
    {"dump", ht_cli_dump, "print a trace's events (text, csv, jsonl)"},
    {"stats", ht_cli_stats, "counts and bytes by event, Source, heap and thread; peak; rates"},
#ifdef HT_CLI_HAVE_REPORT
    {"report", ht_cli_report, "leaks, peak, top sites, histogram, Source breakdown"},
#endif
#ifdef HT_CLI_HAVE_EXPORT
    {"export", ht_cli_export, "convert a trace for other tools (chrome, massif, folded, pprof)"},
#endif
#ifdef HT_CLI_HAVE_DIFF
    {"diff", ht_cli_diff, "what changed between two traces, by allocation site"},
#endif
    {"check", ht_cli_check, "run a program and fail on leaks, invalid frees, a peak over a limit"},
    {"start", ht_cli_start, "start tracing in a running process (owner only)"},
    {"stop", ht_cli_stop, "stop tracing in a running process"},
    {"status", ht_cli_status, "show whether a running process is tracing, and where to"},
    {"snapshot", ht_cli_snapshot, "write a ring-mode trace's buffers now"},
    {"top", ht_cli_top, "watch a running process's heap live, in a full-screen view"},
};
#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static void overview(FILE *out)
{
    fputs("Usage: heaptrail COMMAND [OPTIONS] [ARGS]\n"
          "Heap tracing for Linux programs: the Windows heap events (ALLOC, FREE, REALLOC with\n"
          "their Source), recorded through libheaptrail-preload.so.\n\n"
          "Commands:\n",
          out);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fputs("\n"
          "Run 'heaptrail COMMAND --help' for a command's options.\n"
          "  heaptrail record -- python3 script.py\n"
          "  heaptrail stats heaptrail.python3.1234.trace\n"
          "  heaptrail dump --format csv heaptrail.python3.1234.trace\n\n"
          "Options:\n"
          "  -h, --help     this help\n"
          "  --version      the version\n\n"
          "Exit codes: 0 ok, 1 usage error, 2 a file or process could not be opened, read or\n"
          "reached, 3 malformed trace, 4 refused by the process; record returns the program's\n"
          "own exit code (128+N if signal N ended it), and so does check unless it found\n"
          "something (23).\n",
          out);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        overview(stderr);
        return HT_CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
        overview(stdout);
        return HT_CLI_EXIT_OK;
    }
    if (!strcmp(name, "--version") || !strcmp(name, "-V")) {
        printf("heaptrail %s\n", HT_VERSION);
        return HT_CLI_EXIT_OK;
    }
    char *help_argv[4];
    if (!strcmp(name, "help")) {
        if (argc < 3) {
            overview(stdout);
            return HT_CLI_EXIT_OK;
        }
        help_argv[0] = argv[0];
        help_argv[1] = argv[2];
        help_argv[2] = "--help";
        help_argv[3] = NULL;
        argv = help_argv;
        argc = 3;
        name = argv[1];
    }
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (!strcmp(name, commands[i].name)) {
            ht_cli_set_command(name);
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    if (name[0] == '-')
        return ht_cli_usage_error("unknown option '%s'", name);
    return ht_cli_usage_error("unknown command '%s'", name);
}
