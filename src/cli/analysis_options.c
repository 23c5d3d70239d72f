/* analysis_options.c — report's and export's shared command line and the opening of the
 * trace and its analysis (contracts in analysis_options.h). The messages and exit codes are
 * the commands' documented ones: a change here shows in both. */
#include "cli/analysis_options.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/durations.h"

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
    case HT_CLI_OPT_FROM:
    case HT_CLI_OPT_TO: {
        uint64_t ns;
        const char *name = id == HT_CLI_OPT_FROM ? "--from" : "--to";
        if (hti_parse_duration(value, &ns) != 0)
            return ht_cli_usage_error("bad value '%s' for %s: expected a time since the trace "
                                      "started, such as 1.5s, 250ms or 10us",
                                      value, name);
        *(id == HT_CLI_OPT_FROM ? &command->settings.from_ns : &command->settings.to_ns) = ns;
        return 0;
    }
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
    return ht_cli_analysis_ready(command);
}

int ht_cli_analysis_ready(ht_cli_analysis_command *command)
{
    if (command->settings.from_ns >= command->settings.to_ns)
        return ht_cli_usage_error("bad range: --from must be before --to");
    command->settings.search_dirs = command->dirs;
    return 0;
}

int ht_cli_parse_top(const char *value, unsigned *top)
{
    uint64_t n;
    if (ht_cli_parse_u64("--top", value, &n))
        return HT_CLI_EXIT_USAGE;
    if (n < 1 || n > 1000000)
        return ht_cli_usage_error("bad value '%s' for --top: expected 1 to 1000000", value);
    *top = (unsigned)n;
    return 0;
}

int ht_cli_parse_folded_value(const char *option, const char *value, ht_folded_value *out)
{
    static const char *const names[] = {"allocated", "count", "leaked", "peak", "bytes", NULL};
    static const ht_folded_value ids[] = {HT_FOLDED_ALLOCATED, HT_FOLDED_COUNT, HT_FOLDED_LEAKED,
                                          HT_FOLDED_PEAK, HT_FOLDED_ALLOCATED};
    int index;
    if (ht_cli_parse_choice(option, value, names, &index))
        return HT_CLI_EXIT_USAGE;
    *out = ids[index];
    return 0;
}

int ht_cli_analysis_write(const ht_cli_analysis_command *command, ht_cli_input *input,
                          ht_analysis *analysis, ht_cli_analysis_writer writer, const void *options)
{
    const char *output = command->output;
    char error[512] = "";
    FILE *out = stdout;
    if (output && !(out = fopen(output, "wb"))) {
        ht_cli_error("cannot write to '%s': %s", output, strerror(errno));
        ht_analysis_close(analysis);
        ht_cli_input_close(input);
        return HT_CLI_EXIT_IO;
    }
    int status = writer(analysis, out, options, error, sizeof error);
    if (out != stdout && fclose(out) != 0 && status == 0) {
        snprintf(error, sizeof error, "%s", strerror(errno));
        status = -EIO;
    }
    bool damaged = status && ht_reader_error(input->reader)[0];
    ht_analysis_close(analysis);
    if (damaged)
        input->status = status; /* cli_common reports the reader's error and picks the code */
    int code = ht_cli_input_close(input);
    if (status && !damaged) {
        if (status == -EIO)
            ht_cli_error("cannot write to '%s': %s", output ? output : "standard output", error);
        else
            ht_cli_error("%s", error);
        code = status == -ERANGE ? HT_CLI_EXIT_USAGE : HT_CLI_EXIT_IO;
    }
    if (code != HT_CLI_EXIT_OK && output)
        unlink(output); /* no half-written output left behind */
    return code;
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
