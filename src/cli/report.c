/* report.c — `heaptrail report FILE`: reads a trace once and prints leaks, the peak and the
 * stacks that held it, top sites, temporary allocations, the size histogram, the Source
 * breakdown, INVALID and lost events, and with --window the WPA lifetime classes; as text, or
 * as JSON with --format json. The analysis is the ht_analyze library's (src/analyze); this file
 * owns report's own options and the output file. The options it shares with export, the trace
 * operand and the opening of the input (cli_common's, for its errors) are analysis_options.c's.
 * Exit codes as README "Exit codes" says: 0, 1 usage, 2 I/O, 3 damaged trace. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/analysis_options.h"
#include "cli/commands.h"
#include "cli/durations.h"

static const char usage_text[] =
    "Usage: heaptrail report [OPTIONS] FILE\n"
    "Leaks, the peak and the stacks that held it, top allocation sites by bytes and by count,\n"
    "temporary allocations, a size histogram, the Source breakdown per heap and per site,\n"
    "INVALID events (double frees, foreign frees, failed allocations) and lost events. FILE -\n"
    "reads a trace streamed to standard input to its end.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  text, json (the schema is in README.md) or html (one page with\n"
    "                       a timeline, ranges, flame graphs and every table; give -o)\n"
    "  --top N              entries per list (default 10)\n"
    "  --sections LIST      text: only these sections, comma-separated: summary, leaks,\n"
    "                       peak, top, temporary, histogram, sources, invalid, lost, window\n"
    "  --window A..B        WPA lifetime classes (AIFI, AIFO, AOFI, AOFO) and impacting size\n"
    "                       of the blocks alive in [A, B), times from the trace start:\n"
    "                       1.5s..3s, 200ms.., ..2s (units ns, us, ms, s, min; default s)\n" HT_CLI_RANGE_HELP
    "  --temporary-threshold TIME\n"
    "                       also count blocks freed within TIME of their allocation as\n"
    "                       temporary (default: heaptrack's definition only)\n"
    "  --no-symbols         do not read binaries or debug files: frames stay module+offset\n"
    "  --symbols-path DIR   also look for binaries (by file name) and debug files (by\n"
    "                       build-id, DIR/.build-id/xx/...) in DIR; may be repeated\n"
    "  -o, --output FILE    write the report to FILE instead of standard output\n" HT_CLI_PROGRESS_HELP
    "  -h, --help           this text\n"
    "\n"
    "Exit codes: 0 done, 1 bad usage, 2 a file could not be read or written, 3 the trace is\n"
    "not a heaptrail trace or is damaged.\n";

/* --sections NAME,...: the text report's sections (analysis.h, HT_REPORT_*). */
static int parse_sections(const char *value, unsigned *sections)
{
    static const char *const names[] = {"summary",   "leaks",   "peak",    "top",  "temporary",
                                        "histogram", "sources", "invalid", "lost", "window"};
    *sections = 0;
    const char *p = value;
    while (*p) {
        size_t length = strcspn(p, ",");
        size_t i = 0;
        while (i < sizeof names / sizeof *names &&
               !(strlen(names[i]) == length && strncmp(names[i], p, length) == 0))
            i++;
        if (i == sizeof names / sizeof *names)
            return ht_cli_usage_error("bad section '%.*s' for --sections: expected summary, "
                                      "leaks, peak, top, temporary, histogram, sources, "
                                      "invalid, lost or window",
                                      (int)length, p);
        *sections |= 1u << i;
        p += length + (p[length] == ',');
    }
    if (!*sections)
        return ht_cli_usage_error("--sections needs at least one section");
    return 0;
}

enum {
    OPT_TOP = 1,
    OPT_SECTIONS,
    OPT_WINDOW,
    OPT_TEMPORARY,
};

/* The HTML report runs the analysis itself: it collects its timeline during the pass. */
static int write_html(ht_analysis *analysis, FILE *out, const void *options, char *error,
                      size_t error_size)
{
    return ht_report_html_write(analysis, out, options, error, error_size);
}

int ht_cli_report(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"top", required_argument, NULL, OPT_TOP},
        {"sections", required_argument, NULL, OPT_SECTIONS},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"temporary-threshold", required_argument, NULL, OPT_TEMPORARY},
        HT_CLI_ANALYSIS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"text", "json", "html", NULL};
    ht_cli_analysis_command command;
    ht_cli_analysis_init(&command, "report");
    ht_analysis_options *settings = &command.settings;
    ht_report_options report = {.top = 10, .json = false};
    bool html = false;
    int c, index, code;
    while ((c = ht_cli_getopt(argc, argv, "hf:o:", options)) != -1) {
        switch (c) {
        case 'h': fputs(usage_text, stdout); return HT_CLI_EXIT_OK;
        case 'f':
            if (ht_cli_parse_choice("--format", optarg, formats, &index))
                return HT_CLI_EXIT_USAGE;
            report.json = index == 1;
            html = index == 2;
            break;
        case OPT_TOP:
            if ((code = ht_cli_parse_top(optarg, &report.top)) != 0)
                return code;
            break;
        case OPT_SECTIONS:
            if ((code = parse_sections(optarg, &report.sections)) != 0)
                return code;
            break;
        case OPT_WINDOW:
            if (hti_parse_window(optarg, &settings->window_begin_ns, &settings->window_end_ns))
                return ht_cli_usage_error("bad value '%s' for --window: expected A..B, A.. or "
                                          "..B with A < B, e.g. 1.5s..3s",
                                          optarg);
            settings->window = true;
            break;
        case OPT_TEMPORARY:
            if (hti_parse_duration(optarg, &settings->temporary_threshold_ns))
                return ht_cli_usage_error("bad value '%s' for --temporary-threshold: expected "
                                          "a duration such as 500ns, 10us or 1ms",
                                          optarg);
            break;
        default: /* --no-symbols, --symbols-path, -o, --progress; or '?' */
            if ((code = ht_cli_analysis_option(&command, c, optarg)) != 0)
                return code;
        }
    }
    if ((code = ht_cli_analysis_operand(&command, argc, argv)) != 0)
        return code;
    const char *output = command.output;

    if (html && !output && isatty(1))
        return ht_cli_usage_error("the HTML report is a page: give -o FILE.html or redirect it");

    ht_cli_input input;
    ht_analysis *analysis;
    if ((code = ht_cli_analysis_open(&command, &input, &analysis)) != 0)
        return code;
    char error[512] = "";
    if (html)
        return ht_cli_analysis_write(&command, &input, analysis, write_html, &report);
    int status = ht_analysis_run(analysis, error, sizeof error);
    if (status == -ENOMEM || status == -ERANGE) {
        ht_cli_error("%s", error);
        ht_analysis_close(analysis);
        ht_cli_input_close(&input);
        return status == -ERANGE ? HT_CLI_EXIT_USAGE : HT_CLI_EXIT_IO;
    }
    if (status) {
        /* The reader stopped on damaged data: cli_common says so and picks the exit code. */
        input.status = status;
        ht_analysis_close(analysis);
        return ht_cli_input_close(&input);
    }
    FILE *out = stdout;
    if (output && !(out = fopen(output, "w"))) {
        ht_cli_error("cannot write to '%s': %s", output, strerror(errno));
        ht_analysis_close(analysis);
        ht_cli_input_close(&input);
        return HT_CLI_EXIT_IO;
    }
    status = ht_report_write(analysis, out, &report);
    int saved = errno;
    if (out != stdout && fclose(out) != 0 && status == 0) {
        status = -EIO;
        saved = errno;
    }
    ht_analysis_close(analysis);
    code = ht_cli_input_close(&input);
    if (status) {
        ht_cli_error("cannot write to '%s': %s", output ? output : "standard output",
                     strerror(saved ? saved : EIO));
        if (output)
            unlink(output);
        return HT_CLI_EXIT_IO;
    }
    return code;
}
