/* export_massif.c — valgrind massif's output format (massif.out.*), read by ms_print and
 * massif-visualizer: snapshots of the heap size over time (time_unit ms), every tenth one
 * detailed with a heap tree, plus the peak as a detailed "peak" snapshot.
 *
 * A heap tree is inverted like massif's: the root stands for the allocation functions, its
 * children are the innermost user frames, their children the callers, and so on. Children
 * under 1% of the snapshot are merged into one "below massif's threshold" entry. Sizes are
 * integers and a node never exceeds its parent or the snapshot total (ms_print checks both). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

#define SNAPSHOTS 60 /* regular snapshots over the trace (massif keeps up to 100) */
#define DETAILED_EVERY 10
#define THRESHOLD_PERCENT 1.0

typedef struct site_bytes {
    uint32_t site;
    uint64_t bytes;
} site_bytes;

typedef struct snapshot {
    uint64_t time_ns;
    uint64_t heap_bytes;
    bool detailed, peak;
    site_bytes *sites; /* detailed: the sites with bytes */
    size_t site_count;
} snapshot;

typedef struct massif {
    ht_analysis *a;
    snapshot *snapshots;
    size_t count, capacity;
    unsigned taken;
    bool failed;
} massif;

/* Per-site bytes now (or at the peak), rounded; returns the total. */
static uint64_t collect_sites(ht_analysis *a, bool at_peak, site_bytes **out, size_t *count)
{
    size_t n = 0;
    for (size_t i = 0; i < a->site_count; i++) {
        double v = at_peak ? hti_site_peak_bytes(a, &a->sites[i]) : a->sites[i].live_bytes;
        if (nearbyint(v) >= 1)
            n++;
    }
    *out = malloc((n ? n : 1) * sizeof **out);
    *count = 0;
    uint64_t total = 0;
    if (!*out)
        return 0;
    for (size_t i = 0; i < a->site_count; i++) {
        double v = at_peak ? hti_site_peak_bytes(a, &a->sites[i]) : a->sites[i].live_bytes;
        double r = nearbyint(v);
        if (r >= 1) {
            (*out)[(*count)++] = (site_bytes){(uint32_t)i, (uint64_t)r};
            total += (uint64_t)r;
        }
    }
    return total;
}

static void take(massif *m, uint64_t time_ns, bool detailed, bool peak)
{
    if (HTI_GROW(m->snapshots, m->count, m->capacity) != 0) {
        m->failed = true;
        return;
    }
    snapshot *s = &m->snapshots[m->count++];
    memset(s, 0, sizeof *s);
    s->time_ns = time_ns;
    s->detailed = detailed;
    s->peak = peak;
    double live = peak ? m->a->peak_bytes : m->a->live_bytes;
    s->heap_bytes = live >= 0.5 ? (uint64_t)nearbyint(live) : 0;
    if (detailed) {
        s->heap_bytes = collect_sites(m->a, peak, &s->sites, &s->site_count);
        if (!s->sites)
            m->failed = true;
    }
}

static void on_sample(void *context, ht_analysis *a, uint64_t time_ns)
{
    (void)a;
    massif *m = context;
    take(m, time_ns, m->taken % DETAILED_EVERY == 0, false);
    m->taken++;
}

/* ---- heap trees ---- */

typedef struct node {
    const hti_frame *frame; /* NULL: a label (special sites) */
    const char *label;
    uint64_t bytes;
    struct node *children, *next; /* first child; next sibling */
} node;

typedef struct tree {
    ht_analysis *a;
    const hti_frame **frames;
    size_t frame_capacity;
    node **pool;
    size_t pool_count, pool_capacity;
    bool failed;
} tree;

static node *node_new(tree *t)
{
    node *n = calloc(1, sizeof *n);
    if (!n || HTI_GROW(t->pool, t->pool_count, t->pool_capacity) != 0) {
        free(n);
        t->failed = true;
        return NULL;
    }
    t->pool[t->pool_count++] = n;
    return n;
}

static node *child(tree *t, node *parent, const hti_frame *frame, const char *label)
{
    for (node *c = parent->children; c; c = c->next)
        if (c->label == label &&
            (c->frame == frame || (c->frame && frame && hti_frame_same(c->frame, frame))))
            return c;
    node *c = node_new(t);
    if (!c)
        return NULL;
    c->frame = frame;
    c->label = label;
    c->next = parent->children;
    parent->children = c;
    return c;
}

static void tree_add(tree *t, node *root, uint32_t site, uint64_t bytes)
{
    root->bytes += bytes;
    const char *label = hti_site_label(site);
    if (label) {
        node *c = child(t, root, NULL, label);
        if (c)
            c->bytes += bytes;
        return;
    }
    long n = hti_site_frames(t->a, site, &t->frames, &t->frame_capacity);
    node *at = root;
    for (long i = 0; i < n && at; i++) {
        at = child(t, at, t->frames[i], NULL);
        if (at)
            at->bytes += bytes;
    }
}

static int compare_nodes(const void *x, const void *y)
{
    const node *a = *(node *const *)x, *b = *(node *const *)y;
    return a->bytes > b->bytes ? -1 : a->bytes < b->bytes;
}

static void print_label(FILE *out, const node *n)
{
    char text[1024];
    if (!n->frame) {
        snprintf(text, sizeof text, "0x0: %s", n->label);
    } else {
        const hti_frame *f = n->frame;
        char name[512];
        hti_frame_name(name, sizeof name, f);
        if (f->file && f->line)
            snprintf(text, sizeof text, "0x%" PRIx64 ": %s (%s:%u)", f->address, name,
                     hti_basename(f->file), f->line);
        else if (f->module_path && f->module_path[0])
            snprintf(text, sizeof text, "0x%" PRIx64 ": %s (in %s)", f->address, name,
                     f->module_path);
        else
            snprintf(text, sizeof text, "0x%" PRIx64 ": %s", f->address, name);
    }
    for (char *p = text; *p; p++)
        if (*p == '#' || *p == '\n')
            *p = ' '; /* ms_print strips '#' comments */
    fputs(text, out);
}

static void print_node(tree *t, FILE *out, const node *n, int depth, uint64_t total, bool root)
{
    size_t count = 0;
    for (node *c = n->children; c; c = c->next)
        count++;
    node **sorted = malloc((count ? count : 1) * sizeof *sorted);
    if (!sorted) {
        t->failed = true;
        return;
    }
    size_t k = 0;
    for (node *c = n->children; c; c = c->next)
        sorted[k++] = c;
    qsort(sorted, count, sizeof *sorted, compare_nodes);
    size_t significant = 0;
    uint64_t rest = 0;
    for (size_t i = 0; i < count; i++) {
        if ((double)sorted[i]->bytes * 100.0 >= THRESHOLD_PERCENT * (double)total && total)
            significant++;
        else
            rest += sorted[i]->bytes;
    }
    size_t insignificant = count - significant;
    fprintf(out, "%*sn%zu: %" PRIu64 " ", depth, "", significant + (insignificant ? 1 : 0),
            n->bytes);
    if (root)
        fputs("(heap allocation functions) malloc/new/new[], --alloc-fns, etc.", out);
    else
        print_label(out, n);
    fputc('\n', out);
    for (size_t i = 0; i < significant; i++)
        print_node(t, out, sorted[i], depth + 1, total, false);
    if (insignificant)
        fprintf(out, "%*sn0: %" PRIu64 " in %zu place%s, %sbelow massif's threshold (%.2f%%)\n",
                depth + 1, "", rest, insignificant, insignificant == 1 ? "" : "s",
                insignificant == 1 ? "" : "all ", THRESHOLD_PERCENT);
    free(sorted);
}

static void write_tree(ht_analysis *a, FILE *out, const snapshot *s, bool *failed)
{
    tree t = {.a = a};
    node root = {0};
    for (size_t i = 0; i < s->site_count; i++)
        tree_add(&t, &root, s->sites[i].site, s->sites[i].bytes);
    print_node(&t, out, &root, 0, s->heap_bytes, true);
    for (size_t i = 0; i < t.pool_count; i++)
        free(t.pool[i]);
    free(t.pool);
    free(t.frames);
    if (t.failed)
        *failed = true;
}

static int compare_snapshots(const void *x, const void *y)
{
    const snapshot *a = x, *b = y;
    if (a->time_ns != b->time_ns)
        return a->time_ns < b->time_ns ? -1 : 1;
    return (int)b->peak - (int)a->peak;
}

int hti_export_massif(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                      size_t error_size)
{
    (void)o;
    massif m = {.a = a};
    uint64_t duration = hti_duration_ns(a);
    hti_hooks hooks = {.context = &m,
                       .sample_interval_ns = duration / SNAPSHOTS ? duration / SNAPSHOTS : 1,
                       .sample = on_sample};
    take(&m, 0, false, false); /* massif starts from an empty heap */
    int status = hti_analysis_run(a, &hooks, error, error_size);
    if (status == 0 && a->peak_bytes > 0)
        take(&m, a->peak_time_ns, true, true);
    if (status == 0 && m.failed) {
        snprintf(error, error_size, "out of memory");
        status = -ENOMEM;
    }
    if (status == 0) {
        qsort(m.snapshots, m.count, sizeof *m.snapshots, compare_snapshots);
        fprintf(out, "desc: heaptrail export of %s\n", a->path);
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "%s",
                 a->info->command_line[0] ? a->info->command_line : a->info->program);
        for (char *p = cmd; *p; p++)
            if (*p == '\n')
                *p = ' ';
        fprintf(out, "cmd: %s\n", cmd);
        fprintf(out, "time_unit: ms\n");
        bool failed = false;
        for (size_t i = 0; i < m.count; i++) {
            const snapshot *s = &m.snapshots[i];
            fprintf(out, "#-----------\nsnapshot=%zu\n#-----------\n", i);
            fprintf(out, "time=%.3f\n", (double)s->time_ns / 1e6);
            fprintf(out, "mem_heap_B=%" PRIu64 "\nmem_heap_extra_B=0\nmem_stacks_B=0\n",
                    s->heap_bytes);
            if (!s->detailed) {
                fprintf(out, "heap_tree=empty\n");
                continue;
            }
            fprintf(out, "heap_tree=%s\n", s->peak ? "peak" : "detailed");
            write_tree(a, out, s, &failed);
        }
        if (failed) {
            snprintf(error, error_size, "out of memory");
            status = -ENOMEM;
        }
    }
    for (size_t i = 0; i < m.count; i++)
        free(m.snapshots[i].sites);
    free(m.snapshots);
    return status;
}
