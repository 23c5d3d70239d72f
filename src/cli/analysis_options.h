/* analysis_options.h — the command line that report and export share: --no-symbols,
 * --symbols-path (at most HT_CLI_SEARCH_DIRS_MAX), -o/--output, --progress/--no-progress and
 * the one trace file operand, gathered into the ht_analysis_options the analysis library
 * takes; then opening the trace and the analysis over it with cli_common's messages and exit
 * codes. Each command keeps its own options (--format, --top, ...) and its help text.
 * Compiled with report.c / export.c only: it needs src/analyze's analysis.h. */
#ifndef HEAPTRAIL_CLI_ANALYSIS_OPTIONS_H
#define HEAPTRAIL_CLI_ANALYSIS_OPTIONS_H

#include "analyze/analysis.h"
#include "cli/cli_common.h"

#define HT_CLI_SEARCH_DIRS_MAX 32

/* The shared entries of the long-option table ("-o" goes in the short options). */
#define HT_CLI_ANALYSIS_OPTIONS                                                                    \
    {"no-symbols", no_argument, NULL, HT_CLI_OPT_NO_SYMBOLS},                                      \
        {"symbols-path", required_argument, NULL, HT_CLI_OPT_SYMBOLS_PATH},                        \
        {"output", required_argument, NULL, 'o'}, HT_CLI_PROGRESS_OPTIONS

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
 * HT_CLI_EXIT_USAGE; 0 with command->path and settings.search_dirs set. */
int ht_cli_analysis_operand(ht_cli_analysis_command *command, int argc, char **argv);
/* Opens command->path and an analysis over it: 0, or the exit code with the message printed
 * (cli_common's for the trace, HT_CLI_EXIT_IO when the analysis cannot be set up). On success
 * the caller closes *analysis, then the input with ht_cli_input_close. */
int ht_cli_analysis_open(const ht_cli_analysis_command *command, ht_cli_input *input,
                         ht_analysis **analysis);

#endif
