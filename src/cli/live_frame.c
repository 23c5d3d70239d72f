/* live_frame.c — `top`'s frame from the live analysis model (live_frame.h): totals and rates,
 * heaps and Sources, and the sites, each labelled by its first named frame past the C and C++
 * runtime and symbolized once (a site's frames never change). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail/trace.h"
#include "live_frame.h"

#define FRAME_MAX 128 /* frames of a site's stack shown when expanded */

static const char *intern(ht_live_frame *l, const char *text)
{
    const char *s = hti_strings_intern(&l->strings, text, strlen(text));
    return s ? s : "?";
}

/* A frame in the C and C++ runtime (libc's strdup, libstdc++'s operator new, the loader): a
 * site's label names the first frame after them with a name, where the program asked. */
static bool runtime_frame(const hti_frame *f)
{
    static const char *const runtime[] = {"libc.so",  "libc-",   "libstdc++",  "libgcc_s",
                                          "ld-linux", "libm.so", "libpthread", "libdl"};
    if (!f->module)
        return false;
    for (size_t i = 0; i < sizeof runtime / sizeof *runtime; i++)
        if (strncmp(f->module, runtime[i], strlen(runtime[i])) == 0)
            return true;
    return false;
}

/* A site's label and stack, symbolized once (a site's frames never change). */
static const ht_live_site_text *site_text_of(ht_live_frame *l, ht_analysis *a, uint32_t site)
{
    if (site >= l->text_count) {
        if (hti_grow((void **)&l->texts, &l->text_capacity, (size_t)site + 1, sizeof *l->texts))
            return NULL;
        memset(l->texts + l->text_count, 0, (site + 1 - l->text_count) * sizeof *l->texts);
        l->text_count = (size_t)site + 1;
    }
    ht_live_site_text *t = &l->texts[site];
    if (t->done)
        return t;
    const char *special = hti_site_label(site);
    if (special) {
        t->label = special;
        t->done = true;
        return t;
    }
    const hti_frame **frames = NULL;
    size_t capacity = 0;
    long n = hti_site_frames(a, site, &frames, &capacity);
    if (n <= 0) {
        free(frames);
        t->label = "(no frames)";
        t->done = true;
        return t;
    }
    /* The first frame past the runtime's, and of those the first with a name: a stripped
     * library's own allocation wrapper (module+offset) says less than the call into it. */
    long chosen = 0;
    while (chosen + 1 < n && runtime_frame(frames[chosen]))
        chosen++;
    for (long i = chosen; i < n; i++)
        if (frames[i]->function && !runtime_frame(frames[i])) {
            chosen = i;
            break;
        }
    char text[512];
    t->label = intern(l, hti_format_frame(text, sizeof text, frames[chosen], false));
    size_t depth = (size_t)n < FRAME_MAX ? (size_t)n : FRAME_MAX;
    t->frames = calloc(depth, sizeof *t->frames);
    if (t->frames) {
        for (size_t i = 0; i < depth; i++)
            t->frames[i] = intern(l, hti_format_frame(text, sizeof text, frames[i], true));
        t->depth = depth;
    }
    free(frames);
    t->done = true;
    return t;
}

static int grow_arrays(ht_live_frame *l, const ht_analysis *a)
{
    size_t sites = a->site_count, heaps = a->heap_count;
    size_t old_sites = l->previous_capacity / 2, old_heaps = l->heap_previous_capacity / 3;
    if (hti_grow((void **)&l->sites, &l->site_capacity, sites + 1, sizeof *l->sites) != 0 ||
        hti_grow((void **)&l->heap_rows, &l->heap_row_capacity, heaps + 1, sizeof *l->heap_rows) !=
            0)
        return -ENOMEM;
    if (sites > old_sites) {
        double *p = realloc(l->site_previous, sites * 2 * sizeof *p);
        if (!p)
            return -ENOMEM;
        memset(p + 2 * old_sites, 0, (sites - old_sites) * 2 * sizeof *p);
        l->site_previous = p;
        l->previous_capacity = sites * 2;
    }
    if (heaps > old_heaps) {
        double *p = realloc(l->heap_previous, heaps * 3 * sizeof *p);
        char(*names)[64] = realloc(l->heap_names, heaps * sizeof *names);
        if (p)
            l->heap_previous = p;
        if (names)
            l->heap_names = names;
        if (!p || !names)
            return -ENOMEM;
        memset(p + 3 * old_heaps, 0, (heaps - old_heaps) * 3 * sizeof *p);
        l->heap_previous_capacity = heaps * 3;
    }
    return 0;
}

static double rate(double now, double before, double seconds)
{
    return seconds > 0 && now > before ? (now - before) / seconds : 0;
}

void ht_live_frame_build(ht_live_frame *l, ht_analysis *a, const ht_reader *r, const char *command,
                         long pid, const char *note, bool ended, uint64_t now)
{
    ht_top_frame *f = &l->frame;
    const ht_trace_info *info = ht_reader_info(r);
    double seconds = l->built_ns ? (double)(now - l->built_ns) / 1e9 : 0;
    l->built_ns = now;
    if (grow_arrays(l, a) != 0)
        return;
    hti_sum_heaps(a);
    f->program = command ? command : hti_basename(info->program);
    f->pid = pid ? pid : (long)info->pid;
    f->mode = info->mode == HT_TRACE_MODE_DISCARD ? "discard"
              : info->mode == HT_TRACE_MODE_RING  ? "ring"
                                                  : "block";
    f->elapsed_ns = info->end_ns > info->start_ns ? info->end_ns - info->start_ns : 0;
    f->message = note;
    f->target_gone = ended;
    f->live_bytes = a->live_bytes;
    f->live_blocks = a->live_count;
    f->peak_bytes = a->peak_bytes;
    double totals[4] = {a->alloc_count, a->free_count, a->alloc_bytes, a->free_bytes};
    f->alloc_rate = rate(totals[0], l->total_previous[0], seconds);
    f->free_rate = rate(totals[1], l->total_previous[1], seconds);
    f->alloc_bytes_rate = rate(totals[2], l->total_previous[2], seconds);
    f->free_bytes_rate = rate(totals[3], l->total_previous[3], seconds);
    memcpy(l->total_previous, totals, sizeof totals);
    f->events = a->events;
    uint64_t lost = a->lost_total > info->lost ? a->lost_total : info->lost;
    f->lost = lost;
    f->lost_recent = lost - l->lost_previous;
    l->lost_previous = lost;

    /* Heaps (the one of handle 0 only when it holds something) and Sources. */
    size_t rows = 0;
    double source_now[HT_SOURCE_COUNT][3];
    memset(source_now, 0, sizeof source_now);
    for (size_t i = 0; i < a->heap_count; i++) {
        const hti_heap *h = &a->heaps[i];
        double allocs = 0, frees = 0, bytes = 0;
        for (unsigned s = 0; s < HT_SOURCE_COUNT; s++) {
            allocs += h->alloc_count[s];
            frees += h->free_count[s];
            bytes += h->alloc_bytes[s];
            source_now[s][0] += h->alloc_count[s];
            source_now[s][1] += h->free_count[s];
            source_now[s][2] += h->alloc_bytes[s];
        }
        double *previous = &l->heap_previous[3 * i];
        if (h->handle || h->live_count > 0 || allocs > 0) {
            ht_top_row *r = &l->heap_rows[rows++];
            snprintf(l->heap_names[i], sizeof l->heap_names[i], "0x%llx%s",
                     (unsigned long long)h->handle, h->destroyed ? " (destroyed)" : "");
            r->name = l->heap_names[i];
            r->live_bytes = h->live_bytes;
            r->live_blocks = h->live_count;
            r->alloc_rate = rate(allocs, previous[0], seconds);
            r->free_rate = rate(frees, previous[1], seconds);
            r->alloc_bytes_rate = rate(bytes, previous[2], seconds);
        }
        previous[0] = allocs;
        previous[1] = frees;
        previous[2] = bytes;
    }
    f->heaps = l->heap_rows;
    f->heap_count = rows;
    rows = 0;
    for (unsigned s = 1; s < HT_SOURCE_COUNT; s++) {
        if (source_now[s][0] <= 0 && a->source_live_bytes[s] <= 0)
            continue;
        ht_top_row *r = &l->source_rows[rows++];
        r->name = ht_source_name(s);
        if (strncmp(r->name, "MEMORY_FROM_", 12) == 0)
            r->name += 12; /* LOWFRAG, LOOKASIDE, ...: what fits a narrow column */
        r->live_bytes = a->source_live_bytes[s];
        r->live_blocks = -1; /* the model keeps bytes by Source, not blocks */
        r->alloc_rate = rate(source_now[s][0], l->source_previous[s][0], seconds);
        r->free_rate = rate(source_now[s][1], l->source_previous[s][1], seconds);
        r->alloc_bytes_rate = rate(source_now[s][2], l->source_previous[s][2], seconds);
    }
    memcpy(l->source_previous, source_now, sizeof source_now);
    f->sources = l->source_rows;
    f->source_count = rows;

    /* Sites: those holding memory or allocating. */
    size_t n = 0;
    for (uint32_t i = 0; i < a->site_count; i++) {
        const hti_site *s = &a->sites[i];
        double *previous = &l->site_previous[2 * i];
        if (s->live_bytes < 0.5 && s->alloc_bytes <= previous[1] && s->alloc_count <= previous[0])
            continue;
        const ht_live_site_text *t = site_text_of(l, a, i);
        ht_top_site *out = &l->sites[n++];
        out->id = i;
        out->label = t ? t->label : "?";
        out->frames = t ? t->frames : NULL;
        out->depth = t ? t->depth : 0;
        out->live_bytes = s->live_bytes;
        out->live_blocks = s->live_count;
        out->alloc_bytes = s->alloc_bytes;
        out->alloc_count = s->alloc_count;
        out->rate_bytes = rate(s->alloc_bytes, previous[1], seconds);
        out->rate_count = rate(s->alloc_count, previous[0], seconds);
        previous[0] = s->alloc_count;
        previous[1] = s->alloc_bytes;
    }
    f->sites = l->sites;
    f->site_count = n;
}

/* The view's figures of a model that is gone (its site and heap indices mean nothing now). */
void ht_live_frame_forget(ht_live_frame *l)
{
    for (size_t i = 0; i < l->text_count; i++)
        free(l->texts[i].frames);
    l->text_count = 0;
    if (l->site_previous)
        memset(l->site_previous, 0, l->previous_capacity * sizeof *l->site_previous);
    if (l->heap_previous)
        memset(l->heap_previous, 0, l->heap_previous_capacity * sizeof *l->heap_previous);
    memset(l->source_previous, 0, sizeof l->source_previous);
    memset(l->total_previous, 0, sizeof l->total_previous);
    l->lost_previous = 0;
    l->built_ns = 0;
}

void ht_live_frame_free(ht_live_frame *l)
{
    for (size_t i = 0; i < l->text_count; i++)
        free(l->texts[i].frames);
    free(l->texts);
    hti_strings_free(&l->strings);
    free(l->site_previous);
    free(l->heap_previous);
    free(l->heap_names);
    free(l->sites);
    free(l->heap_rows);
    memset(l, 0, sizeof *l);
}
