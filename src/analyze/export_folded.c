/* export_folded.c — folded stacks for flamegraph.pl and compatible viewers: one line per distinct
 * stack, "outermost;...;innermost value", the value being the bytes allocated, the number of
 * allocations, the bytes leaked or the bytes live at the peak (--folded-value).
 *
 * Inlined frames are frames of their own. Stacks that symbolize to the same line are merged;
 * lines are sorted, and zero values are left out. ';' inside a name becomes ':'. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

typedef struct folded_line {
    const char *text; /* interned */
    double value;
} folded_line;

static int compare_lines(const void *x, const void *y)
{
    return strcmp(((const folded_line *)x)->text, ((const folded_line *)y)->text);
}

static double site_value(const ht_analysis *a, uint32_t site, ht_folded_value which)
{
    const hti_site *s = &a->sites[site];
    switch (which) {
    case HT_FOLDED_COUNT: return s->alloc_count;
    case HT_FOLDED_LEAKED: return s->live_bytes;
    case HT_FOLDED_PEAK: return hti_site_peak_bytes(a, s);
    case HT_FOLDED_ALLOCATED:
    default: return s->alloc_bytes;
    }
}

int hti_export_folded(ht_analysis *a, FILE *out, const ht_export_options *o)
{
    hti_strings pool = {0};
    hti_map index = {0};
    folded_line *lines = NULL;
    size_t line_count = 0, line_capacity = 0;
    const hti_frame **frames = NULL;
    size_t frame_capacity = 0;
    hti_text line = {0};
    int status = 0;
    for (uint32_t site = 0; site < a->site_count && status == 0; site++) {
        double value = site_value(a, site, o->folded_value);
        if (!(value >= 0.5))
            continue;
        line.length = 0;
        const char *label = hti_site_label(site);
        if (label) {
            status = hti_text_append_folded(&line, label);
        } else {
            long n = hti_site_frames(a, site, &frames, &frame_capacity);
            status = n < 0 ? (int)n : hti_text_folded_stack(&line, frames, n);
        }
        if (status)
            break;
        const char *text = hti_strings_intern(&pool, line.data ? line.data : "", line.length);
        if (!text) {
            status = -ENOMEM;
            break;
        }
        uint32_t k = hti_map_get(&index, (uint64_t)(uintptr_t)text);
        if (k == UINT32_MAX) {
            if (HTI_GROW(lines, line_count, line_capacity) != 0 ||
                hti_map_put(&index, (uint64_t)(uintptr_t)text, (uint32_t)line_count) != 0) {
                status = -ENOMEM;
                break;
            }
            k = (uint32_t)line_count;
            lines[line_count++] = (folded_line){text, 0};
        }
        lines[k].value += value;
    }
    if (status == 0) {
        qsort(lines, line_count, sizeof *lines, compare_lines);
        for (size_t i = 0; i < line_count; i++) {
            double v = nearbyint(lines[i].value);
            if (v >= 1)
                fprintf(out, "%s %.0f\n", lines[i].text, v);
        }
    }
    free(line.data);
    free(frames);
    free(lines);
    hti_map_free(&index);
    hti_strings_free(&pool);
    return status;
}
