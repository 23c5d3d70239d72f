/* analysis_options.h — the command line that report, export and diff share: --no-symbols,
 * --symbols-path (at most HT_CLI_SEARCH_DIRS_MAX), -o/--output, --from/--to (the range every
 * figure covers, as durations since the trace start), --progress/--no-progress and
 * the one trace file operand, gathered into the ht_analysis_options the analysis library
 * takes; then opening the trace and the analysis over it with cli_common's messages and exit
 * codes. Each command keeps its own options (--format, --top, ...) and its help text; diff
 * takes two trace operands and opens each with ht_cli_analysis_open.
 * Compiled with report.c / export.c / diff.c only: it needs src/analyze's analysis.h. */
#ifndef HEAPTRAIL_CLI_ANALYSIS_OPTIONS_H
#define HEAPTRAIL_CLI_ANALYSIS_OPTIONS_H

#include "analyze/analysis.h"
#include "cli/cli_common.h"

#define HT_CLI_SEARCH_DIRS_MAX 32

/* The shared entries of the long-option table ("-o" goes in the short options). */
#define HT_CLI_ANALYSIS_OPTIONS                                                                    \
    {"no-symbols", no_argument, NULL, HT_CLI_OPT_NO_SYMBOLS},                                      \
        {"symbols-path", required_argument, NULL, HT_CLI_OPT_SYMBOLS_PATH},                        \
        {"output", required_argument, NULL, 'o'},                                                  \
        {"from", required_argument, NULL, HT_CLI_OPT_FROM},                                        \
        {"to", required_argument, NULL, HT_CLI_OPT_TO}, HT_CLI_PROGRESS_OPTIONS

/* What the shared options set. settings.search_dirs points into dirs once
 * ht_cli_analysis_operand has run, so the structure must not be copied after that. */
typedef struct ht_cli_analysis_command {
    ht_analysis_options settings;
    const char *output;                           /* -o FILE, NULL for standard output */
    const char *path;                             /* the trace file */
    const char *dirs[HT_CLI_SEARCH_DIRS_MAX + 1]; /* --symbols-path, NULL-terminated */
    size_t dir_count;
} ht_cli_analysis_command;

/* Defaults; label names the command on the progress line ("report"). */
void ht_cli_analysis_init(ht_cli_analysis_command *command, const char *label);
/* Handles one option ht_cli_getopt returned that the command does not handle itself: the
 * shared ones give 0, or HT_CLI_EXIT_USAGE with the message printed ("at most 32
 * --symbols-path directories"); anything else is getopt's '?', already reported, and gives
 * HT_CLI_EXIT_USAGE. */
int ht_cli_analysis_option(ht_cli_analysis_command *command, int id, const char *value);
/* After the options: exactly one operand, the trace file, else "expected one trace file" and
 * HT_CLI_EXIT_USAGE (so too --from not before --to); 0 with command->path and
 * settings.search_dirs set. */
int ht_cli_analysis_operand(ht_cli_analysis_command *command, int argc, char **argv);
/* Opens command->path and an analysis over it: 0, or the exit code with the message printed
 * (cli_common's for the trace, HT_CLI_EXIT_IO when the analysis cannot be set up). On success
 * the caller closes *analysis, then the input with ht_cli_input_close. */
int ht_cli_analysis_open(const ht_cli_analysis_command *command, ht_cli_input *input,
                         ht_analysis **analysis);
/* --top N for report and diff: 1 to 1000000; 0, or HT_CLI_EXIT_USAGE with the message printed. */
int ht_cli_parse_top(const char *value, unsigned *top);
/* What a folded stack counts (export --folded-value, diff --metric): allocated (or bytes), count,
 * leaked, peak; 0, or HT_CLI_EXIT_USAGE with the message naming option. */
int ht_cli_parse_folded_value(const char *option, const char *value, ht_folded_value *out);
/* After the options, for a command that takes its operands itself (diff): --from must be before
 * --to (else the message and HT_CLI_EXIT_USAGE); 0 with settings.search_dirs set.
 * ht_cli_analysis_operand ends with it. */
int ht_cli_analysis_ready(ht_cli_analysis_command *command);
/* A writer whose output runs the analysis itself (export, report --format html): 0 or a
 * negative errno with a one-line message in error (for -EIO: the system's reason). */
typedef int (*ht_cli_analysis_writer)(ht_analysis *analysis, FILE *out, const void *options,
                                      char *error, size_t error_size);
/* Opens command->output (standard output if NULL), writes it with writer, then closes the
 * analysis and the input. The exit code, with the message printed and the output file removed
 * on failure: the input's own when the trace is damaged, HT_CLI_EXIT_USAGE for a range that
 * starts after the trace's end (-ERANGE), HT_CLI_EXIT_IO otherwise. */
int ht_cli_analysis_write(const ht_cli_analysis_command *command, ht_cli_input *input,
                          ht_analysis *analysis, ht_cli_analysis_writer writer,
                          const void *options);
/* The help lines of --from and --to. */
#define HT_CLI_RANGE_HELP                                                                          \
    "  --from T, --to T     every figure covers [T, T2) only: durations since the trace start\n"   \
    "                       as --window takes them (1.5s, 200ms); leaks are then the blocks\n"     \
    "                       allocated in the range and live at its end\n"

#endif
