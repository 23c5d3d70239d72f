/* analysis_options.c — report's and export's shared command line and the opening of the
 * trace and its analysis (contracts in analysis_options.h). The messages and exit codes are
 * the commands' documented ones: a change here shows in both. */
#include "cli/analysis_options.h"

#include <stdio.h>

void ht_cli_analysis_init(ht_cli_analysis_command *command, const char *label)
{
    ht_analysis_options_init(&command->settings);
    command->settings.progress_label = label;
    command->output = NULL;
    command->path = NULL;
    for (size_t i = 0; i <= HT_CLI_SEARCH_DIRS_MAX; i++)
        command->dirs[i] = NULL;
    command->dir_count = 0;
}

int ht_cli_analysis_option(ht_cli_analysis_command *command, int id, const char *value)
{
    switch (id) {
    case HT_CLI_OPT_NO_SYMBOLS: command->settings.symbols = false; return 0;
    case HT_CLI_OPT_SYMBOLS_PATH:
        if (command->dir_count == HT_CLI_SEARCH_DIRS_MAX)
            return ht_cli_usage_error("at most %d --symbols-path directories",
                                      HT_CLI_SEARCH_DIRS_MAX);
        command->dirs[command->dir_count++] = value;
        return 0;
    case 'o': command->output = value; return 0;
    case HT_CLI_OPT_PROGRESS:
    case HT_CLI_OPT_NO_PROGRESS: command->settings.progress = id == HT_CLI_OPT_PROGRESS; return 0;
    default: return HT_CLI_EXIT_USAGE; /* reported by ht_cli_getopt */
    }
}

int ht_cli_analysis_operand(ht_cli_analysis_command *command, int argc, char **argv)
{
    if (optind >= argc)
        return ht_cli_usage_error("expected one trace file");
    if (optind + 1 < argc)
        return ht_cli_usage_error("expected one trace file ('%s' is extra)", argv[optind + 1]);
    command->path = argv[optind];
    command->settings.search_dirs = command->dirs;
    return 0;
}

int ht_cli_analysis_open(const ht_cli_analysis_command *command, ht_cli_input *input,
                         ht_analysis **analysis)
{
    int code = ht_cli_input_open(input, command->path);
    if (code)
        return code;
    char error[512] = "";
    *analysis = ht_analysis_new(input->reader, command->path, &command->settings, error,
                                sizeof error);
    if (!*analysis) {
        ht_cli_error("%s", error);
        ht_cli_input_close(input);
        return HT_CLI_EXIT_IO;
    }
    return 0;
}
