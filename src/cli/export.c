/* export.c — `heaptrail export FILE --format chrome|massif|folded|pprof`: converts a trace for
 * other tools: Chrome/Perfetto trace JSON, valgrind massif (ms_print, massif-visualizer),
 * folded stacks (flamegraph.pl), pprof profile.proto (gzip). The conversion is the ht_analyze
 * library's (src/analyze); this file owns export's own options and the output file, removed
 * again if the export fails. The options it shares with report, the trace operand and the
 * opening of the input (cli_common's, for its errors) are analysis_options.c's.
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
    "Usage: heaptrail export --format chrome|massif|folded|pprof [OPTIONS] FILE\n"
    "Write a trace in another tool's format.\n"
    "\n"
    "Options:\n"
    "  -f, --format chrome  Chrome/Perfetto trace JSON: live bytes per heap over time,\n"
    "                       INVALID, lost and heap events, heap and large-block lifetimes\n"
    "  --format massif      valgrind massif format, for ms_print and massif-visualizer\n"
    "  --format folded      \"frame;frame;frame value\" lines for flamegraph.pl\n"
    "  --format pprof       pprof profile.proto, gzip-compressed: alloc_objects, alloc_space,\n"
    "                       inuse_objects, inuse_space (in use = live at the end of the trace)\n"
    "  -o, --output FILE    write to FILE (default standard output; pprof will not write\n"
    "                       to a terminal)\n"
    "  --folded-value V     bytes (allocated, the default), count (allocations), leaked\n"
    "                       (bytes live at the end) or peak (bytes live at the peak)\n"
    "  --at T               folded: the bytes of the blocks live at instant T (a time since\n"
    "                       the trace start, as --from takes it), by stack\n"
    "  --large-block SIZE   chrome: a lifetime slice for each block of at least SIZE bytes\n"
    "                       (default 1m; k, m, g suffixes)\n" HT_CLI_RANGE_HELP
    "  --no-symbols         do not read binaries or debug files: frames stay module+offset\n"
    "  --symbols-path DIR   also look for binaries and debug files in DIR; may be repeated\n" HT_CLI_PROGRESS_HELP
    "  -h, --help           this text\n"
    "\n"
    "Exit codes: 0 done, 1 bad usage, 2 a file could not be read or written, 3 the trace is\n"
    "not a heaptrail trace or is damaged.\n";

enum {
    OPT_FOLDED_VALUE = 1,
    OPT_LARGE_BLOCK,
    OPT_AT,
};

static int write_export(ht_analysis *analysis, FILE *out, const void *options, char *error,
                        size_t error_size)
{
    return ht_export_write(analysis, out, options, error, error_size);
}

int ht_cli_export(int argc, char **argv)
{
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"format", required_argument, NULL, 'f'},
        {"folded-value", required_argument, NULL, OPT_FOLDED_VALUE},
        {"large-block", required_argument, NULL, OPT_LARGE_BLOCK},
        {"at", required_argument, NULL, OPT_AT},
        HT_CLI_ANALYSIS_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    static const char *const formats[] = {"chrome", "massif", "folded", "pprof", NULL};
    static const ht_export_format format_ids[] = {HT_EXPORT_CHROME, HT_EXPORT_MASSIF,
                                                  HT_EXPORT_FOLDED, HT_EXPORT_PPROF};
    ht_cli_analysis_command command;
    ht_cli_analysis_init(&command, "export");
    ht_export_options export = {.format = 0, .folded_value = HT_FOLDED_ALLOCATED};
    uint64_t at = 0; /* --at: 0 when not given */
    int c, index, code;
    while ((c = ht_cli_getopt(argc, argv, "hf:o:", options)) != -1) {
        switch (c) {
        case 'h': fputs(usage_text, stdout); return HT_CLI_EXIT_OK;
        case 'f':
            if (ht_cli_parse_choice("--format", optarg, formats, &index))
                return HT_CLI_EXIT_USAGE;
            export.format = format_ids[index];
            break;
        case OPT_FOLDED_VALUE:
            if ((code = ht_cli_parse_folded_value("--folded-value", optarg,
                                                  &export.folded_value)) != 0)
                return code;
            break;
        case OPT_AT:
            if (hti_parse_duration(optarg, &at) != 0 || at == 0)
                return ht_cli_usage_error("bad value '%s' for --at: expected a time after the "
                                          "trace start, such as 1.5s or 250ms",
                                          optarg);
            break;
        case OPT_LARGE_BLOCK:
            if (ht_cli_parse_size("--large-block", optarg, &export.large_block))
                return HT_CLI_EXIT_USAGE;
            if (!export.large_block)
                return ht_cli_usage_error("bad value '%s' for --large-block: must be above 0",
                                          optarg);
            break;
        default: /* --no-symbols, --symbols-path, -o, --progress; or '?' */
            if ((code = ht_cli_analysis_option(&command, c, optarg)) != 0)
                return code;
        }
    }
    if (at) {
        /* The blocks live at T: the leaks of the range [0, T). */
        if (export.format != HT_EXPORT_FOLDED)
            return ht_cli_usage_error("--at needs --format folded");
        if (command.settings.from_ns || command.settings.to_ns != HT_ANALYSIS_NO_END)
            return ht_cli_usage_error("--at cannot be combined with --from or --to");
        command.settings.to_ns = at;
        export.folded_value = HT_FOLDED_LEAKED;
    }
    if ((code = ht_cli_analysis_operand(&command, argc, argv)) != 0)
        return code;
    const char *output = command.output;
    if (!export.format)
        return ht_cli_usage_error("--format is required: chrome, massif, folded or pprof");
    if (export.format == HT_EXPORT_PPROF && !output && isatty(1))
        return ht_cli_usage_error("pprof output is binary: give -o FILE or redirect it");

    ht_cli_input input;
    ht_analysis *analysis;
    if ((code = ht_cli_analysis_open(&command, &input, &analysis)) != 0)
        return code;
    return ht_cli_analysis_write(&command, &input, analysis, write_export, &export);
}
