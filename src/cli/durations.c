/* durations.c — the duration and window grammar of the command line (contract in durations.h):
 * "1.5s", "200ms", and windows "A..B", "A..", "..B" relative to the trace start. Sizes and counts
 * have one grammar for every front end, the tracer's (src/trace/options.c).
 *
 * Strict: a value is a decimal number (optionally with a fraction) followed by exactly one
 * known unit; anything else, overflow included, is -EINVAL. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/durations.h"

/* Parses "digits[.digits]" at *text; the value in *value, the end in *end. */
static int parse_decimal(const char *text, double *value, const char **end)
{
    const char *p = text;
    double v = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (*p == '.') {
        p++;
        double scale = 0.1;
        while (*p >= '0' && *p <= '9') {
            v += (*p++ - '0') * scale;
            scale /= 10;
            digits++;
        }
    }
    if (!digits)
        return -EINVAL;
    *value = v;
    *end = p;
    return 0;
}

static int parse_duration_n(const char *text, size_t length, uint64_t *ns)
{
    char buffer[64];
    if (length == 0 || length >= sizeof buffer)
        return -EINVAL;
    memcpy(buffer, text, length);
    buffer[length] = '\0';
    double value;
    const char *unit;
    if (parse_decimal(buffer, &value, &unit) != 0)
        return -EINVAL;
    static const struct {
        const char *name;
        double ns;
    } units[] = {
        {"", 1e9},   {"s", 1e9},    {"ns", 1.0}, {"us", 1e3},   {"\xC2\xB5s", 1e3},
        {"ms", 1e6}, {"min", 60e9}, {"m", 60e9}, {"h", 3600e9},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].name) != 0)
            continue;
        double v = nearbyint(value * units[i].ns);
        if (!(v >= 0) || v >= 1.8e19)
            return -EINVAL;
        *ns = (uint64_t)v;
        return 0;
    }
    return -EINVAL;
}

int hti_parse_duration(const char *text, uint64_t *ns)
{
    return text ? parse_duration_n(text, strlen(text), ns) : -EINVAL;
}

int hti_parse_window(const char *text, uint64_t *begin_ns, uint64_t *end_ns)
{
    if (!text)
        return -EINVAL;
    const char *dots = strstr(text, "..");
    if (!dots || strstr(dots + 2, ".."))
        return -EINVAL;
    uint64_t begin = 0, end = HT_ANALYSIS_NO_END;
    size_t left = (size_t)(dots - text);
    const char *right = dots + 2;
    if (left && parse_duration_n(text, left, &begin) != 0)
        return -EINVAL;
    if (*right && parse_duration_n(right, strlen(right), &end) != 0)
        return -EINVAL;
    if (begin >= end)
        return -EINVAL;
    *begin_ns = begin;
    *end_ns = end;
    return 0;
}
