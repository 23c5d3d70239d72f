/* tracing_options.c — the values of the tracing options record and start share (contract in
 * tracing_options.h). The limits are the tracer's: a stack of at most HT_TRACE_MAX_DEPTH
 * frames, zstd levels 1..19. A setting's key and variable are two names of one thing: the
 * variable is "HEAPTRAIL_" and the key in capitals. */
#include "tracing_options.h"

#include <stdio.h>

#include "heaptrail/trace.h"

#define DEFAULT_STACK_DEPTH 32u

static void set(ht_cli_tracing_setting *setting, const char *key, const char *variable,
                const char *value)
{
    setting->key = key;
    setting->variable = variable;
    snprintf(setting->value, sizeof setting->value, "%s", value);
}

static void set_number(ht_cli_tracing_setting *setting, const char *key, const char *variable)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)setting->number);
    set(setting, key, variable, text);
}

int ht_cli_tracing_option(int id, const char *value, ht_cli_tracing_setting *setting)
{
    static const char *const modes[] = {"block", "discard", "ring", NULL};
    static const char *const unwinders[] = {"libunwind", "fp", NULL};
    int index = 0;
    setting->number = 0;
    switch (id) {
    case HT_CLI_OPT_STACKS:
        setting->number = DEFAULT_STACK_DEPTH;
        if (value && ht_cli_parse_u64("--stacks", value, &setting->number))
            return HT_CLI_EXIT_USAGE;
        if (value && (setting->number == 0 || setting->number > HT_TRACE_MAX_DEPTH))
            return ht_cli_usage_error("bad value '%s' for --stacks: expected 1 to %u frames",
                                      value, HT_TRACE_MAX_DEPTH);
        set_number(setting, "stacks", "HEAPTRAIL_STACKS");
        return 0;
    case HT_CLI_OPT_UNWIND:
        if (ht_cli_parse_choice("--unwind", value, unwinders, &index))
            return HT_CLI_EXIT_USAGE;
        set(setting, "unwind", "HEAPTRAIL_UNWIND", unwinders[index]);
        return 0;
    case HT_CLI_OPT_MODE:
        if (ht_cli_parse_choice("--mode", value, modes, &index))
            return HT_CLI_EXIT_USAGE;
        set(setting, "mode", "HEAPTRAIL_MODE", modes[index]);
        return 0;
    case HT_CLI_OPT_SAMPLE:
        if (ht_cli_parse_size("--sample", value, &setting->number))
            return HT_CLI_EXIT_USAGE;
        set_number(setting, "sample", "HEAPTRAIL_SAMPLE");
        return 0;
    case HT_CLI_OPT_BUFFER:
        if (ht_cli_parse_size("--buffer", value, &setting->number))
            return HT_CLI_EXIT_USAGE;
        set_number(setting, "buffer", "HEAPTRAIL_BUFFER");
        return 0;
    case HT_CLI_OPT_COMPRESS:
        if (ht_cli_parse_u64("--compress", value, &setting->number))
            return HT_CLI_EXIT_USAGE;
        if (setting->number < 1 || setting->number > 19)
            return ht_cli_usage_error("bad value '%s' for --compress: expected 1 to 19", value);
        set_number(setting, "compress", "HEAPTRAIL_COMPRESS");
        return 0;
    case HT_CLI_OPT_FOLLOW_FORKS:
        set(setting, "follow_forks", "HEAPTRAIL_FOLLOW_FORKS", "1");
        return 0;
    default:
        return HT_CLI_EXIT_USAGE; /* reported by ht_cli_getopt */
    }
}
