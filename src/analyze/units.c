/* units.c — the one number formatter of every command (contract in units.h): bytes in binary
 * units with two decimals, counts with thousands separators, durations with three significant
 * decimals. `record`'s summary, `stats`, `report`, the control commands and the progress line all
 * print through it, so the same quantity reads the same everywhere. */
#include "analyze/units.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

const char *hti_format_bytes(char *buffer, size_t size, double bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = isfinite(bytes) ? nearbyint(bytes) : 0.0;
    if (v == 0)
        v = 0; /* no -0 */
    if (fabs(v) < 1024) {
        snprintf(buffer, size, "%.0f B", v);
        return buffer;
    }
    int u = 0;
    while (fabs(v) >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buffer, size, "%.2f %s", v, units[u]);
    return buffer;
}

const char *hti_format_time(char *buffer, size_t size, uint64_t ns)
{
    if (ns < 1000)
        snprintf(buffer, size, "%" PRIu64 " ns", ns);
    else if (ns < 1000000)
        snprintf(buffer, size, "%.3f us", (double)ns / 1e3);
    else if (ns < 1000000000)
        snprintf(buffer, size, "%.3f ms", (double)ns / 1e6);
    else
        snprintf(buffer, size, "%.3f s", (double)ns / 1e9);
    return buffer;
}

const char *hti_format_count(char *buffer, size_t size, double value)
{
    double r = isfinite(value) ? nearbyint(value) : 0.0;
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", r == 0 ? 0.0 : fabs(r));
    size_t n = strlen(digits), o = 0;
    if (r < 0 && o + 1 < size)
        buffer[o++] = '-';
    for (size_t i = 0; i < n && o + 2 < size; i++) {
        buffer[o++] = digits[i];
        size_t left = n - i - 1;
        if (left && left % 3 == 0)
            buffer[o++] = ',';
    }
    buffer[o] = '\0';
    return buffer;
}

const char *hti_noun(double count, const char *one, const char *many)
{
    return count >= 0.5 && count < 1.5 ? one : many;
}
