/* fuzz_options.c — fuzz target for the option parsers (src/trace/options.c): the input is tried
 * as the value of every option, and also read as an environment ("NAME=value" lines; NAME may
 * leave out HEAPTRAIL_). Checks: sizes and counts agree with a reference written differently
 * (digits, one of nine suffixes, overflow by 128-bit arithmetic); an accepted value lies in its
 * option's range and gives options that hti_options_check accepts; a refusal has a reason; the
 * environment reader either accepts, finds nothing asked, or writes exactly one line naming
 * heaptrail and the variable.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; otherwise fuzz_driver.c gives it a
 * main() replaying tests/trace/corpus-options and mutating it for a fixed time. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_driver.h"
#include "heaptrail/trace.h"
#include "trace/options.h"

#define TEXT_MAX 4096

const char *const fuzz_tokens[] = {"0",
                                   "1",
                                   "9",
                                   "-",
                                   "+",
                                   " ",
                                   "k",
                                   "K",
                                   "KiB",
                                   "m",
                                   "M",
                                   "MiB",
                                   "g",
                                   "G",
                                   "GiB",
                                   "kb",
                                   "iB",
                                   "0x",
                                   "18446744073709551615",
                                   "18446744073709551616",
                                   "17179869183G",
                                   "17179869184G",
                                   "65536",
                                   "65535",
                                   "4294967296",
                                   "4294967297",
                                   "1073741824",
                                   "128",
                                   "129",
                                   "19",
                                   "20",
                                   "60000",
                                   "60001",
                                   "4194304",
                                   "4194305",
                                   "alloc",
                                   "free",
                                   "realloc",
                                   "heap",
                                   "all",
                                   ",",
                                   "block",
                                   "discard",
                                   "ring",
                                   "libunwind",
                                   "fp",
                                   "/",
                                   "%p",
                                   "\n",
                                   "=",
                                   "OUTPUT=/tmp/t\n",
                                   "FD=",
                                   "MODE=",
                                   "BUFFER=",
                                   "STACKS=",
                                   "SAMPLE=",
                                   "EVENTS=",
                                   "MIN_SIZE=",
                                   "MAX_SIZE=",
                                   "COMPRESS=",
                                   "FLUSH_MS=",
                                   "FOLLOW_FORKS=",
                                   "NO_RUNDOWN=",
                                   "OWNER_PID=",
                                   "CONTROL=",
                                   "CONTROL_DIR=/",
                                   "NO_TSC=",
                                   "UNWIND=",
                                   NULL};

static void fail(const char *what, const char *text)
{
    fprintf(stderr, "fuzz_options: %s: \"%.300s\"\n", what, text);
    abort();
}

/* ---- references ---- */

static int reference_size(const char *text, uint64_t *out, bool suffixes)
{
    static const char *const names[] = {"k", "K", "KiB", "m", "M", "MiB", "g", "G", "GiB"};
    size_t digits = 0;
    while (text[digits] >= '0' && text[digits] <= '9')
        digits++;
    if (digits == 0)
        return -EINVAL;
    unsigned shift = 0;
    if (text[digits]) {
        size_t i = 0;
        while (i < 9 && (!suffixes || strcmp(text + digits, names[i]) != 0))
            i++;
        if (i == 9)
            return -EINVAL;
        shift = 10 * (unsigned)(1 + i / 3);
    }
    unsigned __int128 value = 0;
    for (size_t i = 0; i < digits; i++) {
        value = value * 10 + (unsigned)(text[i] - '0');
        if (value > UINT64_MAX)
            return -ERANGE;
    }
    value <<= shift;
    if (value > UINT64_MAX)
        return -ERANGE;
    *out = (uint64_t)value;
    return 0;
}

static void check_grammar(const char *text)
{
    uint64_t got = 0, want = 0;
    int error = hti_parse_size(text, &got), expected = reference_size(text, &want, true);
    if (error != expected || (!error && got != want))
        fail("hti_parse_size disagrees with the reference", text);
    error = hti_parse_count(text, &got);
    expected = reference_size(text, &want, false);
    if (error != expected || (!error && got != want))
        fail("hti_parse_count disagrees with the reference", text);
    uint64_t mask = 0;
    if (hti_parse_events(text, &mask) == 0 && (mask == 0 || !*text || strstr(text, ",,") ||
                                               text[0] == ',' || text[strlen(text) - 1] == ','))
        fail("hti_parse_events accepted an empty list or item", text);
    char quoted[512];
    hti_option_quote(quoted, sizeof quoted, text);
    for (const char *c = quoted; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            fail("a quoted value with a control byte", text);
    if (strlen(quoted) > 2 + 64 * 4 + 3)
        fail("a quoted value that is not cut", text);
}

/* Every option, the whole text as its value. */
static void check_values(const char *text)
{
    for (int option = 0; option < HTI_OPTION_COUNT; option++) {
        hti_option_value value;
        const char *why = NULL;
        int error = hti_option_value_parse((hti_option)option, text, &value, &why);
        if (error) {
            if ((error != -EINVAL && error != -ERANGE) || !why || strchr(why, '\n'))
                fail("a refusal without a reason", text);
            continue;
        }
        if (!*text)
            fail("an empty value accepted", text);
        ht_trace_options o;
        memset(&o, 0, sizeof o);
        o.output_fd = -1;
        if (option > HTI_OPTION_NO_RUNDOWN)
            continue; /* environment only: no field */
        if (hti_option_parse((hti_option)option, text, &o, &why) != 0)
            fail("hti_option_parse refuses what hti_option_value_parse accepts", text);
        if (hti_options_check(&o, &why) != 0)
            fail("a parsed value outside the tracer's ranges", text);
    }
}

/* ---- the input as an environment ---- */

typedef struct environment {
    char names[32][64];
    const char *values[32];
    int count;
} environment;

static const char *lookup(const char *name, void *context)
{
    const environment *e = context;
    for (int i = e->count - 1; i >= 0; i--)
        if (!strcmp(e->names[i], name))
            return e->values[i];
    return NULL;
}

static void read_environment(char *text, environment *e)
{
    e->count = 0;
    for (char *line = text; line && e->count < 32;) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *equals = strchr(line, '=');
        if (equals && equals - line < 40) {
            *equals = '\0';
            snprintf(e->names[e->count], sizeof e->names[e->count], "%s%.40s",
                     strncmp(line, "HEAPTRAIL_", 10) ? "HEAPTRAIL_" : "", line);
            e->values[e->count++] = equals + 1;
        }
        line = next;
    }
}

static void check_message(int result, const char *message, const char *text)
{
    if (result >= 0) {
        if (message[0])
            fail("a message without a refusal", text);
        return;
    }
    if (strncmp(message, "heaptrail: HEAPTRAIL_", 21) != 0 || strchr(message, '\n') ||
        !strstr(message, "=\""))
        fail("a refusal that is not one line naming heaptrail and the variable", text);
}

static void check_environment(char *text)
{
    environment e;
    read_environment(text, &e);
    ht_trace_options o;
    memset(&o, 0, sizeof o);
    o.output_fd = -1;
    char message[512];
    int wanted = hti_options_from_environment(&o, lookup, &e, message, sizeof message);
    check_message(wanted, message, text);
    if (wanted == 1) {
        const char *why = NULL;
        if (hti_options_check(&o, &why) != 0)
            fail("the environment gave options the tracer refuses", text);
        if (!o.output_path && o.output_fd < 0)
            fail("tracing asked for without an output", text);
    }
    for (int option = HTI_OPTION_OWNER_PID; option < HTI_OPTION_COUNT; option++) {
        hti_option_value value;
        message[0] = '\0';
        int found = hti_option_lookup((hti_option)option, lookup, &e, &value, "disabled", message,
                                      sizeof message);
        check_message(found, message, text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char text[TEXT_MAX + 1];
    if (size > TEXT_MAX)
        size = TEXT_MAX;
    memcpy(text, data, size);
    text[size] = '\0'; /* an embedded NUL ends the text, as in a C string from getenv */
    check_grammar(text);
    check_values(text);
    check_environment(text);
    return 0;
}
