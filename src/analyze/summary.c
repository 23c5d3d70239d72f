/* summary.c — the bottom line of a trace (contract in analysis.h): which source each figure
 * that `record`, `stats` and `report` all print comes from. The footer's end state is the
 * heaps' own account at the stop (FORMAT.md §10), exact whatever sampling or filtering left out,
 * so it wins over the model's; the model's end state stands in when the footer lacks it (a
 * crash flush, an older tracer, no footer). */
#include <stdio.h>
#include <string.h>

#include "analyze/analyze_internal.h"

void ht_trace_summary_of_info(const ht_trace_info *info, ht_trace_summary *s)
{
    memset(s, 0, sizeof *s);
    s->events = info->events;
    if (info->footer_counts) {
        s->lost_known = true;
        s->lost = info->footer_lost;
    }
    if (info->end_state) {
        s->end_known = s->end_exact = true;
        s->end_when = info->stopped_at_exit ? "at exit" : "when tracing stopped";
        s->end_blocks = (double)info->end_live_blocks;
        s->end_bytes = (double)info->end_live_bytes;
        s->peak_committed_known = true;
        s->peak_committed = info->peak_committed;
    }
}

void ht_analysis_summary(const ht_analysis *a, ht_trace_summary *s)
{
    ht_trace_summary_of_info(a->info, s);
    if (!a->ran)
        return;
    if (hti_analysis_ranged(a)) {
        /* The footer speaks of the whole trace: a range's figures are the model's. */
        memset(s, 0, sizeof *s);
        s->events = a->events;
        s->end_known = true;
        s->end_when = "at the end of the range (allocated in it)";
        s->end_blocks = a->live_count;
        s->end_bytes = a->live_bytes;
    }
    s->modeled = true;
    /* The footer counts losses whose LOST record could not be written; it is at least the sum
     * of the records (FORMAT.md §10, field 4). */
    if (!s->lost_known || a->lost_total > s->lost) {
        s->lost_known = true;
        s->lost = a->lost_total;
    }
    if (!s->end_known) {
        s->end_known = true;
        s->end_when = "at the last event";
        s->end_blocks = a->live_count;
        s->end_bytes = a->live_bytes;
    }
    s->peak_bytes = a->peak_bytes;
    s->peak_blocks = a->peak_count;
    s->peak_ns = a->peak_time_ns;
    s->duration_ns = hti_duration_ns(a);
    s->invalid = a->invalid_total;
}

void ht_trace_summary_print(FILE *out, const ht_trace_summary *s, const char *indent, int width)
{
    char a[HTI_NUMBER_MAX], b[HTI_NUMBER_MAX], c[HTI_NUMBER_MAX];
    fprintf(out, "%s%-*s %s", indent, width, "events",
            hti_format_count(a, sizeof a, (double)s->events));
    if (s->lost_known)
        fprintf(out, ", %s lost", hti_format_count(a, sizeof a, (double)s->lost));
    fputc('\n', out);
    if (s->modeled)
        fprintf(out, "%s%-*s %s in %s %s, %s after the start\n", indent, width, "peak live",
                hti_format_bytes(a, sizeof a, s->peak_bytes),
                hti_format_count(b, sizeof b, s->peak_blocks),
                hti_noun(s->peak_blocks, "block", "blocks"),
                hti_format_time(c, sizeof c, s->peak_ns));
    if (s->end_known)
        fprintf(out, "%s%-*s %s in %s %s %s%s\n", indent, width, "live at end",
                hti_format_bytes(a, sizeof a, s->end_bytes),
                hti_format_count(b, sizeof b, s->end_blocks),
                hti_noun(s->end_blocks, "block", "blocks"), s->end_when,
                s->end_exact ? " (the heaps' own count)" : "");
    if (s->peak_committed_known)
        fprintf(out, "%s%-*s %s\n", indent, width, "peak committed",
                hti_format_bytes(a, sizeof a, (double)s->peak_committed));
}

void hti_trace_summary_json(hti_json *j, const ht_trace_summary *s)
{
    hti_json_uint(j, "events", s->events);
    hti_json_uint(j, "lost", s->lost);
    hti_json_bool(j, "lost_known", s->lost_known);
    if (s->end_known) {
        hti_json_round(j, "live_blocks", s->end_blocks);
        hti_json_round(j, "live_bytes", s->end_bytes);
        hti_json_string(j, "live_when", s->end_when);
        hti_json_bool(j, "live_exact", s->end_exact);
    }
    if (s->peak_committed_known)
        hti_json_uint(j, "peak_committed", s->peak_committed);
    if (s->modeled) {
        hti_json_round(j, "peak_bytes", s->peak_bytes);
        hti_json_round(j, "peak_blocks", s->peak_blocks);
        hti_json_uint(j, "peak_ns", s->peak_ns);
        hti_json_uint(j, "invalid", s->invalid);
    }
}
