/* diff.c — `heaptrail diff`: two analysed traces compared site by site. A site is known by its
 * symbolized frames (function, file and line; the module's base name too for a frame without a
 * file, and "module+0xoffset" for one that did not symbolize), never by addresses, so two builds
 * of one program compare, also when the executable was renamed. The sites
 * of one trace that share a key are summed; keys are interned in one pool for both traces, so a
 * map over their pointers matches them. Output: text, JSON ("heaptrail-diff/1", which the HTML
 * viewer reads), "stack BEFORE AFTER" lines for differential flame graphs, and the HTML page
 * (report_html.c's writer, with the JSON as its document).
 *
 * Quantities are the model's weighted figures: estimates when either trace is sampled. Deltas
 * are taken between the rounded figures, so base + delta = new as printed. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

#define DIFF_TOP_DEFAULT 20
#define DIFF_CALLERS_SHOWN 4
#define NO_SITE UINT32_MAX

/* The quantities compared; each count follows its bytes (text_quantity relies on it). */
enum {
    Q_ALLOC_BYTES = 0,
    Q_ALLOC_COUNT,
    Q_LEAK_BYTES,
    Q_LEAK_BLOCKS,
    Q_PEAK_BYTES,
    Q_PEAK_BLOCKS,
    Q_COUNT
};

/* The JSON names, in the order above (README "heaptrail diff"). */
static const char *const quantity_keys[Q_COUNT] = {
    "allocated_bytes", "allocations", "leaked_bytes", "leaked_blocks", "peak_bytes", "peak_blocks",
};

typedef struct diff_entry {
    const char *key;          /* interned: one pointer per key across both traces */
    uint32_t site[2];         /* a site with this key in BASE [0] and NEW [1], or NO_SITE */
    double value[2][Q_COUNT]; /* rounded when the entry is complete */
    double change;            /* the largest |delta| of allocated, leaked and peak bytes */
} diff_entry;

typedef struct diff {
    ht_analysis *side[2];
    const ht_diff_options *options;
    hti_strings pool;
    hti_map index; /* interned key -> entry */
    diff_entry *entries;
    size_t count, capacity;
    double totals[2][Q_COUNT];
    const hti_frame **frames;
    size_t frame_capacity;
    hti_text text; /* the key or folded line being built */
} diff;

static const char *const side_names[2] = {"BASE", "NEW"};

/* ---- keys ---- */

static int text_appends(diff *d, const char *s)
{
    return hti_text_append(&d->text, s, strlen(s));
}

/* The key of a site: its label for the special ones, else per frame "name US file US line US
 * module RS", the module left empty when the file is known (the ASCII unit and record
 * separators appear in no name). Frames come in d->frames;
 * returns their count (0 for special sites) or -ENOMEM; the key is in d->text. */
static long site_key(diff *d, ht_analysis *a, uint32_t site)
{
    d->text.length = 0;
    const char *label = hti_site_label(site);
    if (label)
        return text_appends(d, label) ? -ENOMEM : 0;
    long n = hti_site_frames(a, site, &d->frames, &d->frame_capacity);
    if (n < 0)
        return n;
    char name[512], line[16];
    for (long i = 0; i < n; i++) {
        const hti_frame *f = d->frames[i];
        snprintf(line, sizeof line, "%u", f->line);
        if (text_appends(d, hti_frame_name(name, sizeof name, f)) ||
            hti_text_append(&d->text, "\x1f", 1) || text_appends(d, f->file ? f->file : "") ||
            hti_text_append(&d->text, "\x1f", 1) || text_appends(d, line) ||
            hti_text_append(&d->text, "\x1f", 1) ||
            text_appends(d, f->module && !f->file ? f->module : "") ||
            hti_text_append(&d->text, "\x1e", 1))
            return -ENOMEM;
    }
    if (n == 0 && text_appends(d, "[stack unavailable]"))
        return -ENOMEM;
    return n;
}

static void site_values(const ht_analysis *a, const hti_site *s, double *v)
{
    v[Q_ALLOC_BYTES] = s->alloc_bytes;
    v[Q_ALLOC_COUNT] = s->alloc_count;
    v[Q_LEAK_BYTES] = s->live_bytes;
    v[Q_LEAK_BLOCKS] = s->live_count;
    v[Q_PEAK_BYTES] = hti_site_peak_bytes(a, s);
    v[Q_PEAK_BLOCKS] = hti_site_peak_count(a, s);
}

/* Adds every site of one side to the entries. 0 or -ENOMEM. */
static int collect(diff *d, int side)
{
    ht_analysis *a = d->side[side];
    for (uint32_t i = 0; i < a->site_count; i++) {
        const hti_site *s = &a->sites[i];
        if (s->merged_into != i)
            continue; /* its numbers are in the site it was folded into */
        double v[Q_COUNT];
        site_values(a, s, v);
        bool any = false;
        for (int q = 0; q < Q_COUNT; q++)
            any |= v[q] > 0;
        if (!any)
            continue;
        long n = site_key(d, a, i);
        if (n < 0)
            return (int)n;
        const char *key = hti_strings_intern(&d->pool, d->text.data, d->text.length);
        if (!key)
            return -ENOMEM;
        uint32_t k = hti_map_get(&d->index, (uint64_t)(uintptr_t)key);
        if (k == UINT32_MAX) {
            if (HTI_GROW(d->entries, d->count, d->capacity) != 0 ||
                hti_map_put(&d->index, (uint64_t)(uintptr_t)key, (uint32_t)d->count) != 0)
                return -ENOMEM;
            k = (uint32_t)d->count++;
            diff_entry *e = &d->entries[k];
            memset(e, 0, sizeof *e);
            e->key = key;
            e->site[0] = e->site[1] = NO_SITE;
        }
        diff_entry *e = &d->entries[k];
        if (e->site[side] == NO_SITE)
            e->site[side] = i;
        for (int q = 0; q < Q_COUNT; q++)
            e->value[side][q] += v[q];
    }
    return 0;
}

static double rounded(double v)
{
    double r = isfinite(v) ? nearbyint(v) : 0.0;
    return r == 0 ? 0.0 : r;
}

static int compare_entries(const void *x, const void *y)
{
    const diff_entry *a = x, *b = y;
    if (a->change != b->change)
        return a->change > b->change ? -1 : 1;
    double sa = fmax(a->value[0][Q_ALLOC_BYTES], a->value[1][Q_ALLOC_BYTES]);
    double sb = fmax(b->value[0][Q_ALLOC_BYTES], b->value[1][Q_ALLOC_BYTES]);
    if (sa != sb)
        return sa > sb ? -1 : 1;
    return strcmp(a->key, b->key);
}

static void side_totals(const ht_analysis *a, double *v)
{
    v[Q_ALLOC_BYTES] = a->alloc_bytes;
    v[Q_ALLOC_COUNT] = a->alloc_count;
    v[Q_LEAK_BYTES] = a->live_bytes;
    v[Q_LEAK_BLOCKS] = a->live_count;
    v[Q_PEAK_BYTES] = a->peak_bytes;
    v[Q_PEAK_BLOCKS] = a->peak_count;
}

/* Collects, matches, rounds and sorts. 0 or -ENOMEM. */
static int diff_build(diff *d)
{
    for (int side = 0; side < 2; side++) {
        int status = collect(d, side);
        if (status)
            return status;
        side_totals(d->side[side], d->totals[side]);
        for (int q = 0; q < Q_COUNT; q++)
            d->totals[side][q] = rounded(d->totals[side][q]);
    }
    for (size_t i = 0; i < d->count; i++) {
        diff_entry *e = &d->entries[i];
        for (int side = 0; side < 2; side++)
            for (int q = 0; q < Q_COUNT; q++)
                e->value[side][q] = rounded(e->value[side][q]);
        static const int bytes[] = {Q_ALLOC_BYTES, Q_LEAK_BYTES, Q_PEAK_BYTES};
        for (size_t b = 0; b < sizeof bytes / sizeof bytes[0]; b++)
            e->change = fmax(e->change, fabs(e->value[1][bytes[b]] - e->value[0][bytes[b]]));
    }
    if (d->count)
        qsort(d->entries, d->count, sizeof *d->entries, compare_entries);
    return 0;
}

static const char *entry_status(const diff_entry *e)
{
    if (e->site[0] == NO_SITE)
        return "new_only";
    if (e->site[1] == NO_SITE)
        return "base_only";
    return "both";
}

/* The frames of an entry as NEW has them (BASE's for a site that is gone) into d->frames: the
 * count, 0 for special sites (*label set), or -ENOMEM. */
static long entry_frames(diff *d, const diff_entry *e, const char **label)
{
    int side = e->site[1] != NO_SITE ? 1 : 0;
    uint32_t site = e->site[side];
    *label = hti_site_label(site);
    if (*label)
        return 0;
    return hti_site_frames(d->side[side], site, &d->frames, &d->frame_capacity);
}

static bool sampled(const diff *d)
{
    return d->side[0]->info->sample_interval || d->side[1]->info->sample_interval;
}

/* ---- text ---- */

/* "+1.50 MiB", "-512 B", "0 B" (bytes) or "+1,200", "0" (counts). */
static const char *signed_figure(char *buffer, size_t size, double delta, bool bytes)
{
    size_t sign = delta > 0 && size > 1;
    if (sign)
        buffer[0] = '+';
    if (bytes)
        hti_format_bytes(buffer + sign, size - sign, delta);
    else
        hti_format_count(buffer + sign, size - sign, delta);
    return buffer;
}

/* "+300.0%", "new" when the base is 0, "" when nothing changed. */
static const char *percent(char *buffer, size_t size, double base, double after)
{
    if (base != 0 && after == base)
        buffer[0] = '\0';
    else if (base != 0)
        snprintf(buffer, size, "%+.1f%%", 100.0 * (after - base) / fabs(base));
    else if (after != 0)
        snprintf(buffer, size, "new");
    else
        buffer[0] = '\0';
    return buffer;
}

static void text_header(diff *d, FILE *out)
{
    char b1[HTI_NUMBER_MAX], b2[HTI_NUMBER_MAX];
    fprintf(out, "heaptrail diff\n");
    for (int side = 0; side < 2; side++) {
        const ht_analysis *a = d->side[side];
        fprintf(out, "  %-4s  %s: %s (pid %u), %s %s in %s\n", side_names[side], a->path,
                a->info->program, a->info->pid, hti_format_count(b1, sizeof b1, (double)a->events),
                hti_noun((double)a->events, "event", "events"),
                hti_format_time(b2, sizeof b2, hti_duration_ns(a)));
    }
    const ht_analysis_options *o = &d->side[0]->options;
    if (hti_analysis_ranged(d->side[0])) {
        if (o->to_ns == HT_ANALYSIS_NO_END)
            snprintf(b2, sizeof b2, "the end");
        else
            hti_format_time(b2, sizeof b2, o->to_ns);
        fprintf(out,
                "  range %s .. %s, in both traces: every figure covers it; leaks are the "
                "blocks allocated in it and live at its end\n",
                hti_format_time(b1, sizeof b1, o->from_ns), b2);
    }
    if (!sampled(d))
        return;
    fprintf(out, "  estimates:");
    for (int side = 0; side < 2; side++) {
        uint64_t interval = d->side[side]->info->sample_interval;
        if (interval)
            fprintf(out, " %s sampled every %s on average;", side_names[side],
                    hti_format_bytes(b1, sizeof b1, (double)interval));
        else
            fprintf(out, " %s not sampled;", side_names[side]);
    }
    fprintf(out, " the figures are estimates\n");
}

static void text_totals(diff *d, FILE *out)
{
    static const char *const labels[Q_COUNT] = {"allocated bytes", "allocations", "leaked bytes",
                                                "leaked blocks",   "peak bytes",  "peak blocks"};
    char b1[HTI_NUMBER_MAX], b2[HTI_NUMBER_MAX], b3[HTI_NUMBER_MAX], b4[32];
    fprintf(out, "\nTOTALS%s\n", sampled(d) ? " (estimates)" : "");
    fprintf(out, "  %-16s %14s    %-14s %s\n", "", "BASE", "NEW", "DELTA");
    for (int q = 0; q < Q_COUNT; q++) {
        bool bytes = q == Q_ALLOC_BYTES || q == Q_LEAK_BYTES || q == Q_PEAK_BYTES;
        double base = d->totals[0][q], after = d->totals[1][q];
        if (bytes) {
            hti_format_bytes(b1, sizeof b1, base);
            hti_format_bytes(b2, sizeof b2, after);
        } else {
            hti_format_count(b1, sizeof b1, base);
            hti_format_count(b2, sizeof b2, after);
        }
        percent(b4, sizeof b4, base, after);
        fprintf(out, "  %-16s %14s -> %-14s %s%s%s%s\n", labels[q], b1, b2,
                signed_figure(b3, sizeof b3, after - base, bytes), b4[0] ? " (" : "", b4,
                b4[0] ? ")" : "");
    }
}

/* One line of a site: "allocated 1.00 KiB -> 4.00 KiB (+3.00 KiB), 10 -> 40 allocations
 * (+30)"; nothing when the quantity is 0 on both sides. */
static void text_quantity(FILE *out, const diff_entry *e, const char *label, int bytes_q,
                          const char *noun)
{
    double b0 = e->value[0][bytes_q], b1 = e->value[1][bytes_q];
    double c0 = e->value[0][bytes_q + 1], c1 = e->value[1][bytes_q + 1];
    if (b0 == 0 && b1 == 0 && c0 == 0 && c1 == 0)
        return;
    char x[HTI_NUMBER_MAX], y[HTI_NUMBER_MAX], z[HTI_NUMBER_MAX], p[32];
    percent(p, sizeof p, b0, b1);
    fprintf(out, "       %-10s %s -> %s (%s%s%s), ", label, hti_format_bytes(x, sizeof x, b0),
            hti_format_bytes(y, sizeof y, b1), signed_figure(z, sizeof z, b1 - b0, true),
            b0 != 0 && p[0] ? ", " : "", b0 != 0 ? p : "");
    fprintf(out, "%s -> %s %s (%s)\n", hti_format_count(x, sizeof x, c0),
            hti_format_count(y, sizeof y, c1), noun, signed_figure(z, sizeof z, c1 - c0, false));
}

static int text_sites(diff *d, FILE *out, unsigned top)
{
    size_t counts[3] = {0, 0, 0}; /* both, new only, base only */
    for (size_t i = 0; i < d->count; i++)
        counts[d->entries[i].site[0] == NO_SITE ? 1 : d->entries[i].site[1] == NO_SITE ? 2 : 0]++;
    fprintf(out, "\nSITES: %zu in both, %zu new, %zu gone; by largest change", counts[0], counts[1],
            counts[2]);
    if (d->count > top)
        fprintf(out, ", the first %u", top);
    fprintf(out, "\n");
    if (!d->count)
        fprintf(out, "  none\n");
    char line[1024], name[512];
    for (size_t i = 0; i < d->count && i < top; i++) {
        const diff_entry *e = &d->entries[i];
        const char *label;
        long n = entry_frames(d, e, &label);
        if (n < 0)
            return (int)n;
        const char *where = label   ? label
                            : n > 0 ? hti_format_frame(line, sizeof line, d->frames[0], false)
                                    : "[stack unavailable]";
        const char *status = e->site[0] == NO_SITE   ? "  [new]"
                             : e->site[1] == NO_SITE ? "  [gone]"
                                                     : "";
        fprintf(out, "  #%zu  %s%s\n", i + 1, where, status);
        if (n > 1) {
            fprintf(out, "       via ");
            for (long k = 1; k < n && k <= DIFF_CALLERS_SHOWN; k++)
                fprintf(out, "%s%s", k > 1 ? " < " : "",
                        hti_frame_name(name, sizeof name, d->frames[k]));
            if (n > DIFF_CALLERS_SHOWN + 1)
                fprintf(out, " < ...");
            fprintf(out, "\n");
        }
        text_quantity(out, e, "allocated", Q_ALLOC_BYTES, "allocations");
        text_quantity(out, e, "leaked", Q_LEAK_BYTES, "blocks");
        text_quantity(out, e, "peak", Q_PEAK_BYTES, "blocks");
    }
    return 0;
}

static int diff_text(diff *d, FILE *out)
{
    unsigned top = d->options->top ? d->options->top : DIFF_TOP_DEFAULT;
    text_header(d, out);
    text_totals(d, out);
    return text_sites(d, out, top);
}

/* ---- JSON ---- */

static void json_trace(hti_json *j, const char *key, const ht_analysis *a)
{
    hti_json_begin_object(j, key);
    hti_json_string(j, "path", a->path);
    hti_json_string(j, "program", a->info->program);
    hti_json_uint(j, "events", a->events);
    hti_json_uint(j, "sample_interval", a->info->sample_interval);
    hti_json_uint(j, "duration_ns", hti_duration_ns(a));
    hti_json_end_object(j);
}

static void json_quantities(hti_json *j, const double (*values)[Q_COUNT])
{
    for (int q = 0; q < Q_COUNT; q++) {
        hti_json_begin_object(j, quantity_keys[q]);
        hti_json_round(j, "base", values[0][q]);
        hti_json_round(j, "new", values[1][q]);
        hti_json_round(j, "delta", values[1][q] - values[0][q]);
        hti_json_end_object(j);
    }
}

/* The "heaptrail-diff/1" object (README) under key (NULL at the top level), without a newline
 * after it. 0 or -ENOMEM. */
static int diff_json_object(diff *d, hti_json *j, const char *key)
{
    hti_json_begin_object(j, key);
    hti_json_string(j, "schema", "heaptrail-diff/1");
    json_trace(j, "base", d->side[0]);
    json_trace(j, "new", d->side[1]);
    hti_json_bool(j, "estimates", sampled(d));
    hti_json_begin_object(j, "totals");
    json_quantities(j, d->totals);
    hti_json_end_object(j);
    hti_json_begin_array(j, "sites");
    char name[512];
    for (size_t i = 0; i < d->count; i++) {
        const diff_entry *e = &d->entries[i];
        const char *label;
        long n = entry_frames(d, e, &label);
        if (n < 0)
            return (int)n;
        hti_json_begin_object(j, NULL);
        hti_json_string(j, "function",
                        label   ? label
                        : n > 0 ? hti_frame_name(name, sizeof name, d->frames[0])
                                : "[stack unavailable]");
        hti_json_string(j, "status", entry_status(e));
        hti_json_begin_array(j, "frames");
        for (long k = 0; k < n; k++) {
            const hti_frame *f = d->frames[k];
            hti_json_begin_object(j, NULL);
            hti_json_string(j, "function", hti_frame_name(name, sizeof name, f));
            hti_json_string(j, "file", f->file);
            hti_json_uint(j, "line", f->line);
            hti_json_string(j, "module", f->module);
            hti_json_end_object(j);
        }
        hti_json_end_array(j);
        json_quantities(j, e->value);
        hti_json_end_object(j);
    }
    hti_json_end_array(j);
    hti_json_end_object(j);
    return 0;
}

static int diff_json(diff *d, FILE *out)
{
    hti_json j;
    hti_json_init(&j, out, true);
    int status = diff_json_object(d, &j, NULL);
    hti_json_finish(&j);
    return status;
}

/* The viewer's document: {"schema": "heaptrail-html/1", "kind": "diff", "diff": the JSON}. */
static int diff_html_data(void *context, FILE *out)
{
    hti_json j;
    hti_json_init(&j, out, false);
    hti_json_begin_object(&j, NULL);
    hti_json_string(&j, "schema", "heaptrail-html/1");
    hti_json_string(&j, "kind", "diff");
    int status = diff_json_object(context, &j, "diff");
    hti_json_end_object(&j);
    return status;
}

/* ---- folded ---- */

typedef struct folded_pair {
    const char *text; /* interned */
    double before, after;
} folded_pair;

static int compare_pairs(const void *x, const void *y)
{
    return strcmp(((const folded_pair *)x)->text, ((const folded_pair *)y)->text);
}

static int metric_quantity(ht_folded_value metric)
{
    switch (metric) {
    case HT_FOLDED_COUNT: return Q_ALLOC_COUNT;
    case HT_FOLDED_LEAKED: return Q_LEAK_BYTES;
    case HT_FOLDED_PEAK: return Q_PEAK_BYTES;
    case HT_FOLDED_ALLOCATED:
    default: return Q_ALLOC_BYTES;
    }
}

static int diff_folded(diff *d, FILE *out)
{
    int q = metric_quantity(d->options->metric);
    hti_map lines_index = {0};
    folded_pair *pairs = NULL;
    size_t pair_count = 0, pair_capacity = 0;
    int status = 0;
    for (size_t i = 0; i < d->count && status == 0; i++) {
        const diff_entry *e = &d->entries[i];
        if (e->value[0][q] == 0 && e->value[1][q] == 0)
            continue;
        const char *label;
        long n = entry_frames(d, e, &label);
        if (n < 0) {
            status = (int)n;
            break;
        }
        d->text.length = 0;
        if (label || n == 0)
            status = hti_text_append_folded(&d->text, label ? label : "[stack unavailable]");
        if (status == 0)
            status = hti_text_folded_stack(&d->text, d->frames, n);
        const char *text = status ? NULL
                                  : hti_strings_intern(&d->pool, d->text.data, d->text.length);
        if (!text) {
            status = -ENOMEM;
            break;
        }
        /* Keys that differ only in files or lines can print alike: one line each. */
        uint32_t k = hti_map_get(&lines_index, (uint64_t)(uintptr_t)text);
        if (k == UINT32_MAX) {
            if (HTI_GROW(pairs, pair_count, pair_capacity) != 0 ||
                hti_map_put(&lines_index, (uint64_t)(uintptr_t)text, (uint32_t)pair_count) != 0) {
                status = -ENOMEM;
                break;
            }
            k = (uint32_t)pair_count;
            pairs[pair_count++] = (folded_pair){text, 0, 0};
        }
        pairs[k].before += e->value[0][q];
        pairs[k].after += e->value[1][q];
    }
    if (status == 0) {
        if (pair_count)
            qsort(pairs, pair_count, sizeof *pairs, compare_pairs);
        for (size_t i = 0; i < pair_count; i++)
            fprintf(out, "%s %.0f %.0f\n", pairs[i].text, pairs[i].before, pairs[i].after);
    }
    free(pairs);
    hti_map_free(&lines_index);
    return status;
}

/* ---- entry point ---- */

int ht_diff_write(ht_analysis *base, ht_analysis *newer, FILE *out, const ht_diff_options *options,
                  char *error, size_t error_size)
{
    if (!base->ran || !newer->ran) {
        snprintf(error, error_size, "the traces must be analysed first");
        return -EINVAL;
    }
    ht_diff_options defaults = {.format = HT_DIFF_TEXT};
    diff d = {.side = {base, newer}, .options = options ? options : &defaults};
    int status = diff_build(&d);
    if (status == 0) {
        switch (d.options->format) {
        case HT_DIFF_JSON: status = diff_json(&d, out); break;
        case HT_DIFF_FOLDED: status = diff_folded(&d, out); break;
        case HT_DIFF_HTML: status = hti_html_page(out, diff_html_data, &d); break;
        case HT_DIFF_TEXT:
        default: status = diff_text(&d, out); break;
        }
    }
    if (status == 0 && (fflush(out) != 0 || ferror(out)))
        status = -EIO;
    if (status == -ENOMEM)
        snprintf(error, error_size, "out of memory");
    else if (status == -EIO)
        snprintf(error, error_size, "%s", strerror(errno ? errno : EIO));
    free(d.entries);
    free(d.frames);
    free(d.text.data);
    hti_map_free(&d.index);
    hti_strings_free(&d.pool);
    return status;
}
