/* stats.c — `heaptrail stats FILE`: the command line of stats. The trace goes once through the
 * analysis model (src/analyze, symbols off) that `report` and `export` use, and its renderer
 * (src/analyze/stats.c) prints the tables; this file owns stats' options and its help. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli/analysis_options.h"
#include "cli/commands.h"

static const char stats_help[] =
    "Usage: heaptrail stats [OPTIONS] FILE\n"
    "Summarize a trace: events and bytes by kind, operations by Source, heaps, threads, lost\n"
    "events, duration and rates, the peak of live bytes, and what was live at the end (the\n"
    "heaps' own count from the trace's footer when it has one). FILE - reads a trace streamed\n"
    "to standard input to its end.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default) or json\n"
    "  -t, --top N          heaps and threads to list, busiest first (default 10; 0: all)\n" HT_CLI_PROGRESS_HELP
    "  -h, --help           this text\n"
    "\n"
    "Sizes are the bytes the program asked for. In a byte-sampled trace (record --sample) the\n"
    "ALLOC/REALLOC counts and bytes and the live figures of the events are estimates.\n"
    "\n"
    "Exit codes: 0 done, 1 bad usage, 2 a file could not be read or written, 3 the trace is\n"
    "not a heaptrail trace or is damaged.\n";

int ht_cli_stats(int argc, char **argv)
{
    static const struct option options[] = {
        {"format", required_argument, NULL, 'f'},
        {"top", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        HT_CLI_PROGRESS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"text", "json", NULL};
    ht_cli_analysis_command command;
    ht_cli_analysis_init(&command, "stats");
    command.settings.symbols = false;
    ht_stats_options stats = {.top = 10, .json = false};
    int format = 0, code;
    uint64_t top = 10;
    int c;
    while ((c = ht_cli_getopt(argc, argv, "f:t:h", options)) != -1) {
        int error = 0;
        switch (c) {
        case 'f': error = ht_cli_parse_choice("--format", optarg, formats, &format); break;
        case 't': error = ht_cli_parse_u64("--top", optarg, &top); break;
        case 'h': fputs(stats_help, stdout); return HT_CLI_EXIT_OK;
        case HT_CLI_OPT_PROGRESS:
        case HT_CLI_OPT_NO_PROGRESS: error = ht_cli_analysis_option(&command, c, NULL); break;
        default: return HT_CLI_EXIT_USAGE;
        }
        if (error)
            return error;
    }
    if ((code = ht_cli_analysis_operand(&command, argc, argv)) != 0)
        return code;
    stats.top = (size_t)top;
    stats.json = format == 1;

    ht_cli_input input;
    ht_analysis *analysis;
    if ((code = ht_cli_analysis_open(&command, &input, &analysis)) != 0)
        return code;
    char error[512] = "";
    int status = ht_analysis_run(analysis, error, sizeof error);
    if (status == 0 || status == -EBADMSG || status == -EIO) {
        /* A damaged trace: the figures of the events before the damage, then its error. */
        int written = ht_stats_write(analysis, stdout, &stats);
        if (written) {
            ht_cli_error("cannot write to standard output: %s", strerror(-written));
            ht_analysis_close(analysis);
            ht_cli_input_close(&input);
            return HT_CLI_EXIT_IO;
        }
    }
    if (status == -ENOMEM) {
        ht_cli_error("%s", error);
        ht_analysis_close(analysis);
        ht_cli_input_close(&input);
        return HT_CLI_EXIT_IO;
    }
    if (status)
        input.status = status; /* cli_common reports the reader's error and picks the code */
    ht_analysis_close(analysis);
    return ht_cli_input_close(&input);
}
