/* tracing_options.c — the values of the tracing options record and start share (contract in
 * tracing_options.h). Values are checked by the tracer's own option parser (src/trace/options.c),
 * the one the environment and the control protocol use, so a value the command line accepts is
 * one the traced process accepts, and a refusal is explained in the same words. The only rule
 * of the command line's own: --stacks=0 asks for stacks and none at once, and is refused. */
#include "tracing_options.h"

#include <stdio.h>
#include <string.h>

#include "heaptrail/trace.h"
#include "trace/options.h"

#define DEFAULT_STACK_DEPTH 32u

static void set(ht_cli_tracing_setting *setting, hti_option option, const char *value)
{
    setting->key = hti_option_key(option);
    setting->variable = hti_option_variable(option);
    snprintf(setting->value, sizeof setting->value, "%s", value);
}

static void set_number(ht_cli_tracing_setting *setting, hti_option option)
{
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)setting->number);
    set(setting, option, text);
}

/* The shared verdict on value for --name; the usage error is printed on a refusal. */
static int parse(hti_option option, const char *name, const char *value,
                 ht_cli_tracing_setting *setting)
{
    hti_option_value parsed;
    const char *why = NULL;
    if (hti_option_value_parse(option, value, &parsed, &why) != 0)
        return ht_cli_usage_error("bad value '%s' for --%s: %s", value ? value : "", name, why);
    setting->number = parsed.number;
    return 0;
}

int ht_cli_tracing_option(int id, const char *value, ht_cli_tracing_setting *setting)
{
    setting->number = 0;
    switch (id) {
    case HT_CLI_OPT_STACKS:
        setting->number = DEFAULT_STACK_DEPTH;
        if (value && parse(HTI_OPTION_STACKS, "stacks", value, setting))
            return HT_CLI_EXIT_USAGE;
        if (setting->number == 0)
            return ht_cli_usage_error("bad value '%s' for --stacks: expected 1 to %u frames "
                                      "(leave --stacks out for none)",
                                      value, HT_TRACE_MAX_DEPTH);
        set_number(setting, HTI_OPTION_STACKS);
        return 0;
    case HT_CLI_OPT_UNWIND:
        if (parse(HTI_OPTION_UNWIND, "unwind", value, setting))
            return HT_CLI_EXIT_USAGE;
        set(setting, HTI_OPTION_UNWIND, value);
        return 0;
    case HT_CLI_OPT_MODE:
        if (parse(HTI_OPTION_MODE, "mode", value, setting))
            return HT_CLI_EXIT_USAGE;
        set(setting, HTI_OPTION_MODE, value);
        return 0;
    case HT_CLI_OPT_SAMPLE:
        if (parse(HTI_OPTION_SAMPLE, "sample", value, setting))
            return HT_CLI_EXIT_USAGE;
        set_number(setting, HTI_OPTION_SAMPLE);
        return 0;
    case HT_CLI_OPT_BUFFER:
        if (parse(HTI_OPTION_BUFFER, "buffer", value, setting))
            return HT_CLI_EXIT_USAGE;
        set_number(setting, HTI_OPTION_BUFFER);
        return 0;
    case HT_CLI_OPT_COMPRESS:
        if (parse(HTI_OPTION_COMPRESS, "compress", value, setting))
            return HT_CLI_EXIT_USAGE;
        set_number(setting, HTI_OPTION_COMPRESS);
        return 0;
    case HT_CLI_OPT_FREE_STACKS: set(setting, HTI_OPTION_FREE_STACKS, "1"); return 0;
    case HT_CLI_OPT_FOLLOW_FORKS: set(setting, HTI_OPTION_FOLLOW_FORKS, "1"); return 0;
    case HT_CLI_OPT_LEAK_SCAN: set(setting, HTI_OPTION_LEAK_SCAN, "1"); return 0;
    default: return HT_CLI_EXIT_USAGE; /* reported by ht_cli_getopt */
    }
}

int ht_cli_tracing_keys_add(ht_cli_tracing_keys *keys, const char *key, const char *value)
{
    if (keys->count >= HT_CLI_TRACING_KEYS_MAX)
        return ht_cli_usage_error("too many options");
    char *line = keys->text[keys->count];
    snprintf(line, sizeof keys->text[0], "%s=%s", key, value);
    keys->lines[keys->count++] = line;
    return 0;
}

int ht_cli_tracing_keys_default(ht_cli_tracing_keys *keys, const char *key, const char *value)
{
    size_t length = strlen(key);
    for (size_t i = 0; i < keys->count; i++)
        if (!strncmp(keys->lines[i], key, length) && keys->lines[i][length] == '=')
            return 0;
    return ht_cli_tracing_keys_add(keys, key, value);
}
