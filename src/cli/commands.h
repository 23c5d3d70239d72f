/* commands.h — the heaptrail subcommands' entry points, and how to write one.
 * Each subcommand lives in its own file and exposes `int ht_cli_<name>(int argc, char **argv)`:
 * argv[0] is the subcommand's name, the return value is the process's exit code. main.c holds
 * the dispatch table; report.c and export.c join it when they exist (src/cli/CMakeLists.txt
 * compiles them with analysis_options.c and defines HT_CLI_HAVE_REPORT / HT_CLI_HAVE_EXPORT,
 * and links src/analyze/: its library target ht_analyze if its CMakeLists.txt defines one, else
 * its .c files). */

/* The shared helpers are in cli_common.h:
 *   - exit codes HT_CLI_EXIT_OK / _USAGE / _IO / _MALFORMED / _REFUSED (README "Exit codes");
 *   - ht_cli_error / ht_cli_warning / ht_cli_usage_error: "heaptrail: <command>: ..." lines
 *     (main.c has set the command name);
 *   - ht_cli_getopt: getopt_long with those messages; HT_CLI_PROGRESS_OPTIONS and
 *     HT_CLI_FILTER_OPTIONS add --progress/--no-progress and the event filters to a long-option
 *     table, with help text in HT_CLI_PROGRESS_HELP / HT_CLI_FILTER_HELP;
 *   - ht_cli_parse_u64 / _size / _choice for option values;
 *   - ht_cli_input_open / _next / _close: a trace read in batches with the progress line and
 *     clear errors (exit code 2 for a missing file, 3 for a damaged one);
 *   - ht_cli_filter_*: the filters as dump applies them;
 *   - ht_cli_out_*: fast buffered output (numbers, hex, JSON strings) to stdout or a file;
 *   - numbers for people through analyze/units.h (hti_format_bytes / _count / _time);
 *
 * Helpers shared by two commands each:
 *   - tracing_options.h (record, start): HT_CLI_TRACING_OPTIONS adds --stacks, --unwind, --mode,
 *     --sample, --buffer, --compress and --follow-forks to the option table;
 *     ht_cli_tracing_option checks one's value and gives it both as a HEAPTRAIL_* variable
 *     (record) and as a control protocol key (start);
 *   - analysis_options.h (report, export, diff): HT_CLI_ANALYSIS_OPTIONS adds --no-symbols,
 *     --symbols-path, -o/--output and --progress/--no-progress; ht_cli_analysis_option handles
 *     them (and getopt's '?'), ht_cli_analysis_operand takes the one trace file, and
 *     ht_cli_analysis_open opens it and the analysis over it.
 * A command hands the options it does not handle itself to these from its switch's default.
 *
 * A command, in short:
 *
 *     int ht_cli_example(int argc, char **argv)
 *     {
 *         static const struct option options[] = {
 *             {"help", no_argument, NULL, 'h'}, HT_CLI_PROGRESS_OPTIONS, {NULL, 0, NULL, 0}};
 *         int c;
 *         while ((c = ht_cli_getopt(argc, argv, "h", options)) != -1) {
 *             if (c == 'h') { fputs(EXAMPLE_HELP, stdout); return HT_CLI_EXIT_OK; }
 *             if (c == HT_CLI_OPT_PROGRESS || c == HT_CLI_OPT_NO_PROGRESS)
 *                 ht_cli_progress_option(c);
 *             else
 *                 return HT_CLI_EXIT_USAGE; // '?': already reported
 *         }
 *         if (optind != argc - 1)
 *             return ht_cli_usage_error("expected one trace file");
 *         ht_cli_input input;
 *         int code = ht_cli_input_open(&input, argv[optind]);
 *         if (code) return code;
 *         const ht_event *events;
 *         size_t n;
 *         while ((n = ht_cli_input_next(&input, &events)) > 0) { ... }
 *         return ht_cli_input_close(&input);
 *     }
 */
#ifndef HEAPTRAIL_CLI_COMMANDS_H
#define HEAPTRAIL_CLI_COMMANDS_H

int ht_cli_record(int argc, char **argv);   /* record.c */
int ht_cli_dump(int argc, char **argv);     /* dump.c */
int ht_cli_stats(int argc, char **argv);    /* stats.c */
int ht_cli_start(int argc, char **argv);    /* ctl.c: the control socket's client */
int ht_cli_stop(int argc, char **argv);     /* ctl.c */
int ht_cli_status(int argc, char **argv);   /* ctl.c */
int ht_cli_snapshot(int argc, char **argv); /* ctl.c */
int ht_cli_report(int argc, char **argv);   /* report.c, when present */
int ht_cli_export(int argc, char **argv);   /* export.c, when present */
int ht_cli_diff(int argc, char **argv);     /* diff.c, when present */
int ht_cli_check(int argc, char **argv);    /* check.c: runs record, then judges */
int ht_cli_top(int argc, char **argv);      /* top.c: the live view (live.c, top_view.c) */

#include <stdbool.h>
/* How the last ht_cli_record's program ended (check reads it): ran is false when it never
 * started (no library, cannot be run); wait_status as waitpid gave it. */
typedef struct ht_cli_record_outcome {
    bool ran;
    long pid;
    int wait_status;
} ht_cli_record_outcome;
const ht_cli_record_outcome *ht_cli_record_last(void);

#endif
