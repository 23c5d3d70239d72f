/* check.c — `heaptrail check`'s judgement of a trace recorded with the leak scan (check.h).
 *
 * One pass of the analysis with hooks: INVALID operations come through `notable` (grouped by
 * stack and operation), so do the LEAK_SCAN record (the scan's time and outcome) and the
 * UNREACHABLE_BLOCK records (address -> class, in a table of their own); every block live at
 * the end comes through `block_end`, and gets its class: the one its UNREACHABLE_BLOCK gave,
 * else still reachable when it was live at the scan, else unknown (allocated after the scan, or
 * no scan: the program ended through _exit or a signal). Blocks live before tracing started
 * are never findings. Leaks are grouped by (site, class) as memcheck prints them. Then the
 * suppressions, the peak against its limit, and the outputs. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "analyze_internal.h"
#include "check.h"
#include "units.h"

enum { OP_ALLOC = 0, OP_FREE, OP_REALLOC };
static const char *const op_name[] = {"alloc", "free", "realloc"};

typedef struct leak_group {
    uint32_t site;
    int leak_class;
    double bytes, blocks;
    const hti_suppression *suppressed_by;
} leak_group;

typedef struct invalid_group {
    uint32_t site;
    int op;
    uint64_t address; /* the first one */
    uint64_t count;
    uint32_t kind; /* hti_invalid_kind, as the model tells it */
    const hti_suppression *suppressed_by;
} invalid_group;

typedef struct judge {
    const ht_check_options *o;
    const ht_analysis *a;
    /* Blocks live at the end, by site and class (during the pass), then as groups (site,
     * class) once the sites are merged. */
    double (*cells)[HTI_REACH_CLASSES][2]; /* [site][class] = {bytes, blocks} */
    leak_group *leaks;
    size_t leak_count, leak_capacity;
    invalid_group *invalid;
    size_t invalid_count, invalid_capacity;
    double totals_bytes[HTI_REACH_CLASSES], totals_blocks[HTI_REACH_CLASSES];
    double suppressed_bytes, suppressed_blocks;
    size_t invalid_found, leaks_found; /* findings after suppression */
    bool failed;
} judge;

/* ---- the hooks ---- */

static void add_invalid(judge *j, uint32_t site, int op, uint64_t address, uint32_t kind)
{
    for (size_t i = 0; i < j->invalid_count; i++)
        if (j->invalid[i].site == site && j->invalid[i].op == op && j->invalid[i].kind == kind) {
            j->invalid[i].count++;
            return;
        }
    if (HTI_GROW(j->invalid, j->invalid_count, j->invalid_capacity) != 0) {
        j->failed = true;
        return;
    }
    j->invalid[j->invalid_count++] = (invalid_group){site, op, address, 1, kind, NULL};
}

/* INVALID operations, as the model classified them (a->last_invalid_kind). A failed allocation
 * or reallocation is a finding only with --fail-on-oom. */
static void on_notable(void *context, ht_analysis *a, const ht_event *e, uint32_t site)
{
    judge *j = context;
    int op;
    uint64_t address;
    switch (e->kind) {
    case HT_EVENT_ALLOC:
        op = OP_ALLOC;
        address = 0;
        break;
    case HT_EVENT_FREE:
        op = OP_FREE;
        address = e->u.free.Address;
        break;
    case HT_EVENT_REALLOC:
        op = OP_REALLOC;
        address = e->u.realloc.OldAddress;
        break;
    default: return;
    }
    uint32_t kind = a->last_invalid_kind;
    bool out_of_memory = kind == HTI_INVALID_FAILED_ALLOC || kind == HTI_INVALID_FAILED_REALLOC;
    if (!out_of_memory || j->o->fail_on_oom)
        add_invalid(j, site, op, address, kind);
}

static void on_block_end(void *context, ht_analysis *a, const hti_block *b, uint64_t end_ns,
                         bool live)
{
    (void)end_ns;
    judge *j = context;
    if (!live || hti_block_before_or_own(b))
        return; /* freed, or live before tracing started, or heaptrail's own */
    double *cell = j->cells[b->site][hti_block_reachability(a, b)];
    cell[0] += (double)hti_block_size(b) * b->weight;
    cell[1] += b->weight;
}

/* ---- judging ---- */

static bool leak_is_finding(const ht_check_options *o, int leak_class)
{
    switch (o->leaks) {
    case HT_CHECK_LEAKS_LOST:
        return leak_class == HTI_REACH_DEFINITE || leak_class == HTI_REACH_INDIRECT;
    case HT_CHECK_LEAKS_DEFINITE: return leak_class == HTI_REACH_DEFINITE;
    case HT_CHECK_LEAKS_ALL: return true;
    default: return false;
    }
}

static int compare_leaks(const void *x, const void *y)
{
    const leak_group *a = x, *b = y;
    if (a->leak_class != b->leak_class)
        return a->leak_class < b->leak_class ? -1 : 1;
    return a->bytes > b->bytes ? -1 : a->bytes < b->bytes;
}

/* The site a group's numbers ended in after the sites were merged by their symbols. */
static uint32_t final_site(const ht_analysis *a, uint32_t site)
{
    for (int guard = 0; guard < 64 && a->sites[site].merged_into != site; guard++)
        site = a->sites[site].merged_into;
    return site;
}

/* The cells become groups, one per (site, class), each site's numbers in the site that took it
 * over when the sites were merged by their symbols; the totals are the model's (the same
 * blocks, by class). */
static int make_leak_groups(judge *j, const ht_analysis *a)
{
    for (uint32_t i = 0; i < a->site_count; i++) {
        uint32_t into = final_site(a, i);
        for (int c = 0; into != i && c < HTI_REACH_CLASSES; c++) {
            j->cells[into][c][0] += j->cells[i][c][0];
            j->cells[into][c][1] += j->cells[i][c][1];
        }
    }
    for (uint32_t i = 0; i < a->site_count; i++) {
        for (int c = 0; final_site(a, i) == i && c < HTI_REACH_CLASSES; c++) {
            if (j->cells[i][c][1] <= 0)
                continue;
            if (HTI_GROW(j->leaks, j->leak_count, j->leak_capacity) != 0)
                return -ENOMEM;
            j->leaks[j->leak_count++] = (leak_group){i, c, j->cells[i][c][0], j->cells[i][c][1],
                                                     NULL};
        }
    }
    for (int c = 0; c < HTI_REACH_CLASSES; c++) {
        j->totals_bytes[c] = a->reach_bytes[c];
        j->totals_blocks[c] = a->reach_count[c];
    }
    return 0;
}

/* How many invalid operations and leak groups are findings once suppressions are applied. */
static void count_findings(judge *j)
{
    j->invalid_found = j->leaks_found = 0;
    for (size_t i = 0; i < j->invalid_count; i++)
        j->invalid_found += !j->invalid[i].suppressed_by;
    for (size_t i = 0; i < j->leak_count; i++)
        j->leaks_found += leak_is_finding(j->o, j->leaks[i].leak_class) &&
                          !j->leaks[i].suppressed_by;
}

typedef struct frames {
    const hti_frame **list;
    size_t capacity;
} frames;

static long site_frames(ht_analysis *a, uint32_t site, frames *f)
{
    if (site < HTI_SITE_SPECIAL)
        return 0;
    return hti_site_frames(a, site, &f->list, &f->capacity);
}

/* The entry of kind that suppresses a finding made at site (its hit counted), or NULL. */
static hti_suppression *suppression_for(hti_suppressions *list, hti_suppression_kind kind,
                                        ht_analysis *a, uint32_t site, frames *f)
{
    long n = site_frames(a, site, f);
    hti_suppression *s = n > 0 ? hti_suppressions_match(list, kind, f->list, n) : NULL;
    if (s)
        s->hits++;
    return s;
}

static void apply_suppressions(judge *j, ht_analysis *a, frames *f)
{
    hti_suppressions *list = j->o->suppressions;
    if (!list || !list->count)
        return;
    for (size_t i = 0; i < j->leak_count; i++) {
        leak_group *g = &j->leaks[i];
        if (!leak_is_finding(j->o, g->leak_class))
            continue;
        hti_suppression *s = suppression_for(list, HTI_SUPPRESS_LEAK, a, g->site, f);
        if (s) {
            g->suppressed_by = s;
            s->bytes += g->bytes;
            s->blocks += g->blocks;
            j->suppressed_bytes += g->bytes;
            j->suppressed_blocks += g->blocks;
            j->totals_bytes[g->leak_class] -= g->bytes; /* counted as suppressed instead */
            j->totals_blocks[g->leak_class] -= g->blocks;
        }
    }
    for (size_t i = 0; i < j->invalid_count; i++) {
        invalid_group *g = &j->invalid[i];
        g->suppressed_by = suppression_for(list, HTI_SUPPRESS_INVALID, a, g->site, f);
    }
}

/* The site that held the most bytes at the peak: what a peak finding names. */
static uint32_t peak_site(const ht_analysis *a)
{
    uint32_t best = HTI_SITE_NONE;
    double most = 0;
    for (uint32_t i = HTI_SITE_SPECIAL; i < a->site_count; i++) {
        if (a->sites[i].merged_into != i)
            continue;
        double bytes = hti_key_peak_bytes(a, i);
        if (bytes > most) {
            most = bytes;
            best = i;
        }
    }
    return best;
}

/* ---- text ---- */

#define PREFIX "==heaptrail== "

/* valgrind's numbers: 1,234,567. */
static const char *grouped(char *buffer, size_t size, double value)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%.0f", value < 0 ? 0 : value);
    size_t n = strlen(digits), k = 0;
    for (size_t i = 0; i < n && k + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buffer[k++] = ',';
        buffer[k++] = digits[i];
    }
    buffer[k] = '\0';
    return buffer;
}

/* A frame as valgrind prints one: "FUNCTION (FILE:LINE)", "FUNCTION (in MODULE)". */
static const char *frame_text(char *buffer, size_t size, const hti_frame *f)
{
    char name[512];
    hti_frame_name(name, sizeof name, f);
    if (f->file && f->line)
        snprintf(buffer, size, "%s (%s:%u)", name, hti_basename(f->file), f->line);
    else if (f->file)
        snprintf(buffer, size, "%s (%s)", name, hti_basename(f->file));
    else if (f->module_path && f->function)
        snprintf(buffer, size, "%s (in %s)", name, f->module_path);
    else
        snprintf(buffer, size, "%s", name);
    return buffer;
}

static void print_stack(FILE *out, ht_analysis *a, uint32_t site, frames *f)
{
    long n = site_frames(a, site, f);
    if (n <= 0) {
        fprintf(out, PREFIX "   (%s)\n",
                site == HTI_SITE_NONE ? "no stack recorded" : hti_site_label(site));
        return;
    }
    for (long k = 0; k < n; k++) {
        char line[1200];
        fprintf(out, PREFIX "   %s %s\n", k == 0 ? "at" : "by",
                frame_text(line, sizeof line, f->list[k]));
    }
}

/* The innermost frame with a function name: what a suppression entry names. */
static const char *suppression_name(ht_analysis *a, uint32_t site, frames *f)
{
    long n = site_frames(a, site, f);
    for (long k = 0; k < n; k++)
        if (f->list[k]->function && !f->list[k]->inlined)
            return f->list[k]->function;
    for (long k = 0; k < n; k++)
        if (f->list[k]->function)
            return f->list[k]->function;
    return NULL;
}

static void write_text(judge *j, ht_analysis *a, frames *f, int findings, double peak,
                       bool peak_over)
{
    const ht_check_options *o = j->o;
    FILE *out = o->out;
    char b1[64], b2[64];
    for (size_t i = 0; i < j->invalid_count; i++) {
        const invalid_group *g = &j->invalid[i];
        if (g->suppressed_by)
            continue;
        const char *what = hti_invalid_name((hti_invalid_kind)g->kind);
        fprintf(out, PREFIX "Invalid %s: %s", op_name[g->op], what);
        if (g->address)
            fprintf(out, " of 0x%" PRIx64, g->address);
        if (g->count > 1)
            fprintf(out, " (%" PRIu64 " times from this stack)", g->count);
        fputc('\n', out);
        print_stack(out, a, g->site, f);
        fputs(PREFIX "\n", out);
    }
    for (size_t i = 0; i < j->leak_count; i++) {
        const leak_group *g = &j->leaks[i];
        if (!leak_is_finding(o, g->leak_class) || g->suppressed_by)
            continue;
        fprintf(out, PREFIX "%s bytes in %s blocks are %s\n", grouped(b1, sizeof b1, g->bytes),
                grouped(b2, sizeof b2, g->blocks), hti_reach_text(g->leak_class));
        print_stack(out, a, g->site, f);
        fputs(PREFIX "\n", out);
    }
    if (peak_over) {
        fprintf(out, PREFIX "Peak of live heap memory %s is over the limit ",
                hti_format_bytes(b1, sizeof b1, peak));
        fprintf(out, "%s; the most of it from\n",
                hti_format_bytes(b2, sizeof b2, (double)o->max_peak));
        print_stack(out, a, peak_site(a), f);
        fputs(PREFIX "\n", out);
    }
    fputs(PREFIX "LEAK SUMMARY:\n", out);
    if (!j->a->leak_scan_seen)
        fputs(PREFIX "   no reachability scan: the program ended through _exit or a signal\n", out);
    for (int c = 0; c < HTI_REACH_CLASSES; c++) {
        if (c == HTI_REACH_UNKNOWN && j->totals_blocks[c] == 0)
            continue;
        fprintf(out, PREFIX "   %22s: %s bytes in %s blocks\n", hti_reach_text(c),
                grouped(b1, sizeof b1, j->totals_bytes[c]),
                grouped(b2, sizeof b2, j->totals_blocks[c]));
    }
    fprintf(out, PREFIX "   %22s: %s bytes in %s blocks\n", "suppressed",
            grouped(b1, sizeof b1, j->suppressed_bytes),
            grouped(b2, sizeof b2, j->suppressed_blocks));
    if (j->a->leak_scan_seen && !(j->a->leak_scan.Flags & HT_LEAK_SCAN_ALL_STOPPED))
        fprintf(out,
                PREFIX "   (the scan stopped %u of %u threads: the others' registers were not "
                       "seen)\n",
                j->a->leak_scan.ThreadsStopped, j->a->leak_scan.Threads);
    size_t invalid = j->invalid_found, leaks = j->leaks_found;
    fprintf(out, PREFIX "ERROR SUMMARY: %d finding%s (%zu invalid operation%s, %zu leak%s%s)\n",
            findings, findings == 1 ? "" : "s", invalid, invalid == 1 ? "" : "s", leaks,
            leaks == 1 ? "" : "s", peak_over ? ", peak over the limit" : "");
    if (o->print_suppressions) {
        fputs("# heaptrail check suppressions\n", out);
        for (size_t i = 0; i < j->invalid_count; i++) {
            const char *name = j->invalid[i].suppressed_by
                                   ? NULL
                                   : suppression_name(a, j->invalid[i].site, f);
            if (name)
                fprintf(out, "invalid:%s\n", name);
        }
        for (size_t i = 0; i < j->leak_count; i++) {
            const leak_group *g = &j->leaks[i];
            const char *name = leak_is_finding(o, g->leak_class) && !g->suppressed_by
                                   ? suppression_name(a, g->site, f)
                                   : NULL;
            if (name)
                fprintf(out, "leak:%s\n", name);
        }
    }
}

/* ---- JSON ---- */

static void json_stack(hti_json *js, ht_analysis *a, uint32_t site, frames *f)
{
    hti_json_begin_array(js, "stack");
    long n = site_frames(a, site, f);
    for (long k = 0; k < n; k++)
        hti_json_frame(js, f->list[k]);
    hti_json_end_array(js);
}

static void json_amount(hti_json *js, const char *key, double bytes, double blocks)
{
    hti_json_begin_object(js, key);
    hti_json_round(js, "bytes", bytes);
    hti_json_round(js, "blocks", blocks);
    hti_json_end_object(js);
}

static void write_json(FILE *file, judge *j, ht_analysis *a, frames *f, int exit_code,
                       const ht_trace_summary *summary, bool peak_over)
{
    const ht_check_options *o = j->o;
    hti_json js;
    hti_json_init(&js, file, true);
    hti_json_begin_object(&js, NULL);
    if (!o->child)
        hti_json_string(&js, "schema", "heaptrail-check/1");
    hti_json_string(&js, "program", o->child ? a->info->program : o->program);
    hti_json_int(&js, "pid", o->child ? (int64_t)a->info->pid : o->pid);
    if (o->child) {
        hti_json_string(&js, "status", NULL); /* a child's end is its parent's business */
    } else {
        hti_json_begin_object(&js, "status");
        bool exited = o->status_known && WIFEXITED(o->wait_status);
        bool signalled = o->status_known && WIFSIGNALED(o->wait_status);
        hti_json_bool(&js, "exited", exited);
        hti_json_int(&js, "code", exited ? WEXITSTATUS(o->wait_status) : 0);
        hti_json_int(&js, "signal", signalled ? WTERMSIG(o->wait_status) : 0);
        hti_json_end_object(&js);
        hti_json_int(&js, "exit_code", exit_code);
    }
    hti_json_begin_object(&js, "scan");
    hti_json_bool(&js, "done", j->a->leak_scan_seen);
    hti_json_bool(&js, "complete",
                  j->a->leak_scan_seen && (j->a->leak_scan.Flags & HT_LEAK_SCAN_ALL_STOPPED));
    hti_json_uint(&js, "threads", j->a->leak_scan_seen ? j->a->leak_scan.Threads : 0);
    hti_json_uint(&js, "threads_stopped",
                  j->a->leak_scan_seen ? j->a->leak_scan.ThreadsStopped : 0);
    hti_json_end_object(&js);
    hti_json_begin_object(&js, "leaks");
    for (int c = 0; c < HTI_REACH_CLASSES; c++)
        json_amount(&js, hti_reach_key(c), j->totals_bytes[c], j->totals_blocks[c]);
    json_amount(&js, "suppressed", j->suppressed_bytes, j->suppressed_blocks);
    hti_json_end_object(&js);
    hti_json_begin_object(&js, "peak");
    hti_json_round(&js, "bytes", summary->peak_bytes);
    hti_json_uint(&js, "at_ns", summary->peak_ns);
    if (o->max_peak_set)
        hti_json_uint(&js, "limit", o->max_peak);
    else
        hti_json_string(&js, "limit", NULL);
    hti_json_bool(&js, "exceeded", peak_over);
    hti_json_end_object(&js);
    hti_json_begin_array(&js, "findings");
    for (size_t i = 0; i < j->invalid_count; i++) {
        const invalid_group *g = &j->invalid[i];
        if (g->suppressed_by)
            continue;
        hti_json_begin_object(&js, NULL);
        hti_json_string(&js, "kind", "invalid");
        hti_json_string(&js, "operation", op_name[g->op]);
        hti_json_string(&js, "what", hti_invalid_name((hti_invalid_kind)g->kind));
        hti_json_hex(&js, "address", g->address);
        hti_json_uint(&js, "count", g->count);
        json_stack(&js, a, g->site, f);
        hti_json_end_object(&js);
    }
    for (size_t i = 0; i < j->leak_count; i++) {
        const leak_group *g = &j->leaks[i];
        if (!leak_is_finding(o, g->leak_class) || g->suppressed_by)
            continue;
        hti_json_begin_object(&js, NULL);
        hti_json_string(&js, "kind", "leak");
        hti_json_string(&js, "class", hti_reach_key(g->leak_class));
        hti_json_round(&js, "bytes", g->bytes);
        hti_json_round(&js, "blocks", g->blocks);
        json_stack(&js, a, g->site, f);
        hti_json_end_object(&js);
    }
    if (peak_over) {
        hti_json_begin_object(&js, NULL);
        hti_json_string(&js, "kind", "peak");
        hti_json_round(&js, "bytes", summary->peak_bytes);
        hti_json_uint(&js, "limit", o->max_peak);
        hti_json_uint(&js, "at_ns", summary->peak_ns);
        json_stack(&js, a, peak_site(a), f);
        hti_json_end_object(&js);
    }
    hti_json_end_array(&js);
    if (o->child) { /* what was suppressed, and the children, are the whole run's */
        hti_json_end_object(&js);
        hti_json_finish(&js);
        return;
    }
    hti_json_begin_array(&js, "children");
    for (size_t i = 0; i < o->child_count; i++)
        if (o->children[i].json)
            hti_json_raw(&js, NULL, o->children[i].json);
    hti_json_end_array(&js);
    hti_json_begin_array(&js, "suppressed");
    for (size_t i = 0; o->suppressions && i < o->suppressions->count; i++) {
        const hti_suppression *s = &o->suppressions->entries[i];
        if (!s->hits)
            continue;
        hti_json_begin_object(&js, NULL);
        hti_json_string(&js, "kind", s->kind == HTI_SUPPRESS_LEAK ? "leak" : "invalid");
        char pattern[1100];
        snprintf(pattern, sizeof pattern, "%s:%s",
                 s->kind == HTI_SUPPRESS_LEAK ? "leak" : "invalid", s->pattern);
        hti_json_string(&js, "pattern", pattern);
        hti_json_string(&js, "origin", s->origin);
        hti_json_uint(&js, "findings", s->hits);
        hti_json_round(&js, "bytes", s->bytes);
        hti_json_round(&js, "blocks", s->blocks);
        hti_json_end_object(&js);
    }
    hti_json_end_array(&js);
    hti_json_end_object(&js);
    hti_json_finish(&js);
}

/* ---- JUnit ---- */

static void xml_text(FILE *out, const char *text)
{
    for (const char *c = text ? text : ""; *c; c++) {
        switch (*c) {
        case '&': fputs("&amp;", out); break;
        case '<': fputs("&lt;", out); break;
        case '>': fputs("&gt;", out); break;
        case '"': fputs("&quot;", out); break;
        default:
            if ((unsigned char)*c < 0x20 && *c != '\n' && *c != '\t')
                fputc('?', out);
            else
                fputc(*c, out);
        }
    }
}

static void junit_case(FILE *out, const char *classname, const char *name, const char *type,
                       const char *message, ht_analysis *a, uint32_t site, frames *f)
{
    fputs("    <testcase classname=\"", out);
    xml_text(out, classname);
    fputs("\" name=\"", out);
    xml_text(out, name);
    fputs("\"", out);
    if (!type) {
        fputs("/>\n", out);
        return;
    }
    fprintf(out, ">\n      <failure type=\"%s\" message=\"", type);
    xml_text(out, message);
    fputs("\">", out);
    long n = site < UINT32_MAX ? site_frames(a, site, f) : 0;
    for (long k = 0; k < n; k++) {
        char line[1200];
        fputs(k == 0 ? "at " : "\nby ", out);
        xml_text(out, frame_text(line, sizeof line, f->list[k]));
    }
    fputs("</failure>\n    </testcase>\n", out);
}

/* This process's <testsuite>; returns its test cases. */
static int junit_suite(FILE *out, judge *j, ht_analysis *a, frames *f, int findings,
                       const ht_trace_summary *summary, bool peak_over)
{
    const ht_check_options *o = j->o;
    const char *program = o->child ? a->info->program : o->program;
    char classname[512], suite[600];
    snprintf(classname, sizeof classname, "heaptrail.check.%s", hti_basename(program));
    if (o->child)
        snprintf(suite, sizeof suite, "heaptrail check: %s (pid %u)", hti_basename(program),
                 a->info->pid);
    else
        snprintf(suite, sizeof suite, "heaptrail check");
    size_t invalid = j->invalid_found, leaks = j->leaks_found;
    /* One test case per finding, and one passing case for each kind with none. */
    int tests = findings + (invalid == 0) + (leaks == 0) + !peak_over;
    fputs("  <testsuite name=\"", out);
    xml_text(out, suite);
    fprintf(out, "\" tests=\"%d\" failures=\"%d\" errors=\"0\">\n", tests, findings);
    char name[1400], message[1400], b1[64], b2[64];
    for (size_t i = 0; i < j->invalid_count; i++) {
        const invalid_group *g = &j->invalid[i];
        if (g->suppressed_by)
            continue;
        const char *where = suppression_name(a, g->site, f);
        snprintf(name, sizeof name, "invalid %s in %s", op_name[g->op], where ? where : "?");
        snprintf(message, sizeof message, "%s of 0x%" PRIx64,
                 hti_invalid_name((hti_invalid_kind)g->kind), g->address);
        junit_case(out, classname, name, "invalid", message, a, g->site, f);
    }
    if (!invalid)
        junit_case(out, classname, "invalid", NULL, NULL, a, UINT32_MAX, f);
    for (size_t i = 0; i < j->leak_count; i++) {
        const leak_group *g = &j->leaks[i];
        if (!leak_is_finding(o, g->leak_class) || g->suppressed_by)
            continue;
        const char *where = suppression_name(a, g->site, f);
        snprintf(name, sizeof name, "leak in %s (%s)", where ? where : "?",
                 hti_reach_text(g->leak_class));
        snprintf(message, sizeof message, "%s in %s blocks %s",
                 hti_format_bytes(b1, sizeof b1, g->bytes),
                 hti_format_count(b2, sizeof b2, g->blocks), hti_reach_text(g->leak_class));
        junit_case(out, classname, name, "leak", message, a, g->site, f);
    }
    if (!leaks)
        junit_case(out, classname, "leaks", NULL, NULL, a, UINT32_MAX, f);
    if (peak_over) {
        snprintf(message, sizeof message, "peak of live heap memory %s over the limit %s",
                 hti_format_bytes(b1, sizeof b1, summary->peak_bytes),
                 hti_format_bytes(b2, sizeof b2, (double)o->max_peak));
        junit_case(out, classname, "peak", "peak", message, a, peak_site(a), f);
    } else {
        junit_case(out, classname, "peak", NULL, NULL, a, UINT32_MAX, f);
    }
    fputs("  </testsuite>\n", out);
    return tests;
}

/* The file: the traced process's suite and the children's, their counts summed. */
static void write_junit(FILE *out, judge *j, ht_analysis *a, frames *f, int findings,
                        const ht_trace_summary *summary, bool peak_over)
{
    const ht_check_options *o = j->o;
    int tests = 0, failures = findings;
    char *main_suite = NULL;
    size_t length = 0;
    FILE *memory = open_memstream(&main_suite, &length);
    if (memory) {
        tests = junit_suite(memory, j, a, f, findings, summary, peak_over);
        fclose(memory);
    }
    for (size_t i = 0; i < o->child_count; i++) {
        tests += o->children[i].tests;
        failures += o->children[i].findings;
    }
    fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", out);
    fprintf(out, "<testsuites name=\"heaptrail check\" tests=\"%d\" failures=\"%d\">\n", tests,
            failures);
    if (main_suite)
        fputs(main_suite, out);
    for (size_t i = 0; i < o->child_count; i++)
        if (o->children[i].junit)
            fputs(o->children[i].junit, out);
    fputs("</testsuites>\n", out);
    free(main_suite);
}

/* ---- the judgement ---- */

static int write_file(const char *path, void (*writer)(FILE *, void *), void *context, char *error,
                      size_t error_size)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        int e = errno;
        snprintf(error, error_size, "cannot create '%s': %s", path, strerror(e));
        return -e;
    }
    writer(f, context);
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        snprintf(error, error_size, "cannot write '%s'", path);
        return -EIO;
    }
    return 0;
}

typedef struct output_context {
    judge *j;
    ht_analysis *a;
    frames *f;
    int findings, exit_code;
    const ht_trace_summary *summary;
    bool peak_over;
} output_context;

static void json_writer(FILE *out, void *context)
{
    output_context *c = context;
    write_json(out, c->j, c->a, c->f, c->exit_code, c->summary, c->peak_over);
}

static void junit_writer(FILE *out, void *context)
{
    output_context *c = context;
    write_junit(out, c->j, c->a, c->f, c->findings, c->summary, c->peak_over);
}

/* Writes into malloc'd memory (*text); 0 or -ENOMEM. */
static int write_memory(char **text, void (*writer)(FILE *, void *), void *context)
{
    size_t length = 0;
    FILE *f = open_memstream(text, &length);
    if (!f)
        return -ENOMEM;
    writer(f, context);
    return fclose(f) == 0 ? 0 : -ENOMEM;
}

typedef struct suite_context {
    output_context *c;
    int tests;
} suite_context;

static void suite_writer(FILE *out, void *context)
{
    suite_context *s = context;
    output_context *c = s->c;
    s->tests = junit_suite(out, c->j, c->a, c->f, c->findings, c->summary, c->peak_over);
}

int ht_check_judge(ht_analysis *a, const ht_check_options *o, int exit_if_found, int program_status,
                   int *findings, ht_check_child *child_out, char *error, size_t error_size)
{
    judge j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.a = a;
    j.cells = calloc(a->site_count ? a->site_count : 1, sizeof *j.cells);
    if (!j.cells) {
        snprintf(error, error_size, "out of memory");
        return -ENOMEM;
    }
    hti_hooks hooks;
    memset(&hooks, 0, sizeof hooks);
    hooks.context = &j;
    hooks.notable = on_notable;
    hooks.every_block = true;
    hooks.block_end = on_block_end;
    int status = hti_analysis_run(a, &hooks, error, error_size);
    frames f = {NULL, 0};
    if (!status && j.failed) {
        snprintf(error, error_size, "out of memory");
        status = -ENOMEM;
    }
    if (!status) {
        /* Sites merged by their symbols after the pass: groups follow them. */
        for (size_t i = 0; i < j.invalid_count; i++)
            j.invalid[i].site = final_site(a, j.invalid[i].site);
        status = make_leak_groups(&j, a);
        if (status)
            snprintf(error, error_size, "out of memory");
    }
    if (!status) {
        if (j.leak_count)
            qsort(j.leaks, j.leak_count, sizeof *j.leaks, compare_leaks);
        apply_suppressions(&j, a, &f);
        ht_trace_summary summary;
        ht_analysis_summary(a, &summary);
        bool peak_over = o->max_peak_set && summary.peak_bytes > (double)o->max_peak;
        count_findings(&j);
        int count = (int)(j.invalid_found + j.leaks_found) + peak_over;
        *findings = count;
        int everywhere = count;
        for (size_t i = 0; i < o->child_count; i++)
            everywhere += o->children[i].findings;
        if (count || !o->quiet) {
            if (o->child || o->child_count)
                fprintf(o->out, PREFIX "process %u: %s\n", a->info->pid, a->info->program);
            write_text(&j, a, &f, count, summary.peak_bytes, peak_over);
        }
        output_context c =
            {&j, a, &f, count, everywhere ? exit_if_found : program_status, &summary, peak_over};
        if (o->child) {
            child_out->findings = count;
            if (o->json_path)
                status = write_memory(&child_out->json, json_writer, &c);
            suite_context suite = {&c, 0};
            if (!status && o->junit_path)
                status = write_memory(&child_out->junit, suite_writer, &suite);
            child_out->tests = suite.tests;
            if (status)
                snprintf(error, error_size, "out of memory");
        } else {
            if (o->json_path)
                status = write_file(o->json_path, json_writer, &c, error, error_size);
            if (!status && o->junit_path)
                status = write_file(o->junit_path, junit_writer, &c, error, error_size);
        }
    }
    free(f.list);
    free(j.cells);
    free(j.leaks);
    free(j.invalid);
    return status;
}
