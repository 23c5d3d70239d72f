/* diff.c — `heaptrail diff BASE NEW`: what changed between two traces, site by site (sites
 * matched on their symbolized frames, so two builds of one program compare), as text, JSON, or
 * folded pairs for a differential flame graph, or the HTML viewer page. The comparison is the
 * ht_analyze library's (src/analyze/diff.c); this file owns diff's options, the two operands,
 * the check that both traces can be matched (stacks in both or in neither) and the output file,
 * removed again if writing fails. The shared options and the opening of each input are analysis_options.c's;
 * messages about one trace name it (BASE or NEW). Exit codes as report's: 0, 1 usage (also
 * traces that cannot be compared), 2 I/O, 3 damaged trace. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/analysis_options.h"
#include "cli/commands.h"

static const char usage_text[] =
    "Usage: heaptrail diff [OPTIONS] BASE NEW\n"
    "What changed between two traces (BASE, then NEW), by allocation site: bytes and\n"
    "allocations, leaked bytes and blocks (live at the end), bytes and blocks at the peak,\n"
    "each as before -> after and delta, sites sorted by the largest change. Sites are\n"
    "matched on their symbolized frames (function, file, line), not on addresses, so two\n"
    "builds of one program compare; sites found in one trace only are marked new or gone.\n"
    "Sampled traces compare by their estimates, and the output says so.\n"
    "\n"
    "Options:\n"
    "  -f, --format FORMAT  text (default), json (the schema is in README.md), or folded:\n"
    "                       \"frame;...;frame BEFORE AFTER\" lines for a differential flame\n"
    "                       graph (flamegraph.pl, as difffolded.pl writes them), or html:\n"
    "                       one self-contained page to open in a browser (use -o)\n"
    "  --top N              text: sites listed (default 20); the other formats list all\n"
    "  --metric M           folded: allocated (bytes, the default), count (allocations),\n"
    "                       leaked (bytes live at the end) or peak (bytes live at the peak)\n" HT_CLI_RANGE_HELP
    "                       (the same range of each trace)\n"
    "  --no-symbols         do not read binaries or debug files: frames stay module+offset\n"
    "                       (then only traces of the same build match)\n"
    "  --symbols-path DIR   also look for binaries (by file name) and debug files (by\n"
    "                       build-id) in DIR; may be repeated\n"
    "  -o, --output FILE    write to FILE instead of standard output\n" HT_CLI_PROGRESS_HELP
    "  -h, --help           this text\n"
    "\n"
    "Both traces need stacks (record --stacks), or neither: sites cannot be matched\n"
    "otherwise.\n"
    "\n"
    "Exit codes: 0 done, 1 bad usage or traces that cannot be compared, 2 a file could not\n"
    "be read or written, 3 a trace is not a heaptrail trace or is damaged.\n";

enum {
    OPT_TOP = 1,
    OPT_METRIC,
};

/* One trace: its input, its analysis, and the command name its messages carry. */
typedef struct side {
    const char *label; /* "diff: BASE" */
    ht_cli_input input;
    ht_analysis *analysis;
    bool open;
} side;

/* Closes one trace: its input's exit code (warnings or a late error printed), 0 if not open. */
static int side_close(side *s)
{
    if (!s->open)
        return HT_CLI_EXIT_OK;
    ht_cli_set_command(s->label);
    ht_analysis_close(s->analysis);
    int code = ht_cli_input_close(&s->input);
    ht_cli_set_command("diff");
    s->open = false;
    return code;
}

/* Opens one trace and its analysis; 0 or the exit code (printed). */
static int side_open(side *s, ht_cli_analysis_command *command, const char *path)
{
    ht_cli_set_command(s->label);
    command->path = path;
    command->settings.progress_label = s->label;
    int code = ht_cli_analysis_open(command, &s->input, &s->analysis);
    ht_cli_set_command("diff");
    s->open = code == 0;
    return code;
}

/* Streams one trace through the model; 0 or the exit code (printed, the side closed). */
static int side_run(side *s)
{
    char error[512] = "";
    ht_cli_set_command(s->label);
    int status = ht_analysis_run(s->analysis, error, sizeof error);
    int code = HT_CLI_EXIT_OK;
    if (status == -ENOMEM) {
        ht_cli_error("%s", error);
        code = HT_CLI_EXIT_IO;
    } else if (status) {
        /* The reader stopped on damaged data: cli_common says so and picks the exit code. */
        s->input.status = status;
        ht_analysis_close(s->analysis);
        code = ht_cli_input_close(&s->input);
        s->open = false;
    }
    ht_cli_set_command("diff");
    if (code)
        side_close(s);
    return code;
}

int ht_cli_diff(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"top", required_argument, NULL, OPT_TOP},
        {"metric", required_argument, NULL, OPT_METRIC},
        HT_CLI_ANALYSIS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"text", "json", "folded", "html", NULL};
    static const ht_diff_format format_ids[] = {HT_DIFF_TEXT, HT_DIFF_JSON, HT_DIFF_FOLDED,
                                                HT_DIFF_HTML};
    ht_cli_analysis_command command;
    ht_cli_analysis_init(&command, "diff");
    ht_diff_options diff = {.format = HT_DIFF_TEXT, .top = 20, .metric = HT_FOLDED_ALLOCATED};
    int c, index, code;
    while ((c = ht_cli_getopt(argc, argv, "hf:o:", options)) != -1) {
        switch (c) {
        case 'h': fputs(usage_text, stdout); return HT_CLI_EXIT_OK;
        case 'f':
            if (ht_cli_parse_choice("--format", optarg, formats, &index))
                return HT_CLI_EXIT_USAGE;
            diff.format = format_ids[index];
            break;
        case OPT_TOP:
            if ((code = ht_cli_parse_top(optarg, &diff.top)) != 0)
                return code;
            break;
        case OPT_METRIC:
            if ((code = ht_cli_parse_folded_value("--metric", optarg, &diff.metric)) != 0)
                return code;
            break;
        default: /* --no-symbols, --symbols-path, -o, --from, --to, --progress; or '?' */
            if ((code = ht_cli_analysis_option(&command, c, optarg)) != 0)
                return code;
        }
    }
    if (argc - optind < 2)
        return ht_cli_usage_error("expected two trace files, BASE and NEW");
    if (argc - optind > 2)
        return ht_cli_usage_error("expected two trace files ('%s' is extra)", argv[optind + 2]);
    if ((code = ht_cli_analysis_ready(&command)) != 0)
        return code;
    const char *output = command.output;

    side sides[2] = {{.label = "diff: BASE"}, {.label = "diff: NEW"}};
    for (int i = 0; i < 2; i++)
        if ((code = side_open(&sides[i], &command, argv[optind + i])) != 0) {
            side_close(&sides[0]);
            return code;
        }
    bool stacks[2] = {sides[0].input.info->stack_depth > 0, sides[1].input.info->stack_depth > 0};
    if (stacks[0] != stacks[1]) {
        ht_cli_error("cannot match sites: %s has stacks, %s has none; record both with --stacks",
                     stacks[0] ? "BASE" : "NEW", stacks[0] ? "NEW" : "BASE");
        side_close(&sides[0]);
        side_close(&sides[1]);
        return HT_CLI_EXIT_USAGE;
    }
    for (int i = 0; i < 2; i++)
        if ((code = side_run(&sides[i])) != 0) {
            side_close(&sides[0]);
            side_close(&sides[1]);
            return code;
        }

    FILE *out = stdout;
    if (output && !(out = fopen(output, "w"))) {
        ht_cli_error("cannot write to '%s': %s", output, strerror(errno));
        side_close(&sides[0]);
        side_close(&sides[1]);
        return HT_CLI_EXIT_IO;
    }
    char error[512] = "";
    int status = ht_diff_write(sides[0].analysis, sides[1].analysis, out, &diff, error,
                               sizeof error);
    if (out != stdout && fclose(out) != 0 && status == 0) {
        snprintf(error, sizeof error, "%s", strerror(errno));
        status = -EIO;
    }
    code = side_close(&sides[0]);
    int code_new = side_close(&sides[1]);
    if (!code)
        code = code_new;
    if (status) {
        if (status == -EIO)
            ht_cli_error("cannot write to '%s': %s", output ? output : "standard output", error);
        else
            ht_cli_error("%s", error);
        if (output)
            unlink(output); /* no half-written comparison left behind */
        return HT_CLI_EXIT_IO;
    }
    return code;
}
