/* units.h — the one number formatter: every figure a command prints for people goes through
 * these, so "1.50 MiB" and "12,300" read the same in `record`'s summary, `stats`, `report` and
 * the control commands. Each writes into buffer (HTI_NUMBER_MAX bytes suffice) and returns it.
 * Weighted quantities (sampled traces) are rounded to the nearest integer. */
#ifndef HEAPTRAIL_ANALYZE_UNITS_H
#define HEAPTRAIL_ANALYZE_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define HTI_NUMBER_MAX 48

/* "512 B", "1.50 MiB" (binary units, two decimals from KiB up). */
const char *hti_format_bytes(char *buffer, size_t size, double bytes);
/* "850 ns", "12.500 us", "1.234 s". */
const char *hti_format_time(char *buffer, size_t size, uint64_t ns);
/* "12,345" (rounded). */
const char *hti_format_count(char *buffer, size_t size, double value);
/* one or many, as a count hti_format_count prints reads: one when it rounds to 1. */
const char *hti_noun(double count, const char *one, const char *many);

#endif
