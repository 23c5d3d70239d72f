/* sites.c — from stacks to allocation sites: the allocator's own leading frames stripped
 * (heaptrail's libraries or statically linked code, the malloc family), identical frame lists
 * deduplicated at open, and after the pass the sites that symbolize alike (same functions,
 * files and lines) folded into one. Also the orderings the renderers list sites by.
 * Site 0 is "no stack", site 1 "before tracing"; a folded site keeps merged_into. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze_internal.h"

/* ---- sites ---- */

static uint64_t hash_frames(const uint64_t *frames, uint32_t depth)
{
    uint64_t h = 0x9E3779B97F4A7C15u ^ depth;
    for (uint32_t i = 0; i < depth; i++)
        h = hti_mix64(h ^ frames[i]);
    return h ? h : 1;
}

static int site_add(ht_analysis *a, const uint64_t *frames, uint32_t depth, uint64_t hash)
{
    if (HTI_GROW(a->sites, a->site_count, a->site_capacity) != 0)
        return -ENOMEM;
    /* A live trace's reader may move its stack table as stacks arrive: the site keeps a copy. */
    if (depth && ht_reader_fd(a->reader) >= 0) {
        uint64_t *copy = hti_arena_alloc(&a->frame_arena, depth * sizeof *frames);
        if (!copy)
            return -ENOMEM;
        memcpy(copy, frames, depth * sizeof *frames);
        frames = copy;
    }
    hti_site *s = &a->sites[a->site_count];
    memset(s, 0, sizeof *s);
    s->merged_into = (uint32_t)a->site_count;
    s->frames = frames;
    s->depth = depth;
    s->hash = hash;
    return (int)a->site_count++;
}

/* The site of a stack: its frames without the allocator's own leading frames, deduplicated.
 * A stack that passes through heaptrail further out is heaptrail's own work (its threads'
 * start-up, for instance), not the program's. */
static long site_for_frames(ht_analysis *a, const uint64_t *frames, uint32_t depth)
{
    uint32_t skip = 0;
    while (skip + 1 < depth &&
           hti_symbolizer_frame_kind(a->symbolizer, frames[skip]) != HTI_FRAME_USER)
        skip++;
    frames += skip;
    depth -= skip;
    for (uint32_t i = 1; i < depth; i++)
        if (hti_symbolizer_frame_kind(a->symbolizer, frames[i]) == HTI_FRAME_HEAPTRAIL)
            return HTI_SITE_TRACER;
    uint64_t hash = hash_frames(frames, depth);
    for (uint64_t key = hash;; key = hti_mix64(key + 1) | 1) {
        uint32_t index = hti_map_get(&a->site_index, key);
        if (index == UINT32_MAX) {
            int site = site_add(a, frames, depth, hash);
            if (site < 0 || hti_map_put(&a->site_index, key, (uint32_t)site) != 0)
                return -ENOMEM;
            return site;
        }
        const hti_site *s = &a->sites[index];
        if (s->depth == depth && memcmp(s->frames, frames, depth * sizeof *frames) == 0)
            return index;
    }
}

int hti_sites_build(ht_analysis *a)
{
    for (int i = 0; i < HTI_SITE_SPECIAL; i++) /* NONE, RUNDOWN, TRACER */
        if (site_add(a, NULL, 0, 0) < 0)
            return -ENOMEM;
    a->stack_next_id = 1;
    return hti_sites_update(a, UINT32_MAX);
}

/* Ids are dense from 1, except where an emergency flush lost definitions: walk ids until every
 * stack the reader has was seen (a live trace's reader gets more later: the walk goes on from
 * where it stopped). */
int hti_sites_update(ht_analysis *a, uint32_t limit)
{
    uint64_t stacks = a->info->stacks;
    size_t capacity = a->stack_site_capacity;
    for (uint32_t id = a->stack_next_id; a->stacks_mapped < stacks && id <= limit &&
                                         id < UINT32_MAX && a->stack_misses < (1u << 20);
         id++) {
        if (hti_grow((void **)&a->stack_site, &capacity, (size_t)id + 1, sizeof *a->stack_site))
            return -ENOMEM;
        a->stack_site_capacity = capacity;
        a->stack_site[id] = HTI_SITE_NONE;
        a->stack_limit = id;
        a->stack_next_id = id + 1;
        const uint64_t *frames;
        uint32_t depth;
        if (!ht_reader_stack(a->reader, id, &frames, &depth)) {
            a->stack_misses++;
            continue;
        }
        a->stack_misses = 0;
        a->stacks_mapped++;
        if (depth == 0)
            continue;
        long site = site_for_frames(a, frames, depth);
        if (site < 0)
            return (int)site;
        a->stack_site[id] = (uint32_t)site;
    }
    return 0;
}

const char *hti_site_label(uint32_t site)
{
    if (site == HTI_SITE_NONE)
        return "[no stack]";
    if (site == HTI_SITE_RUNDOWN)
        return "[allocated before tracing started]";
    if (site == HTI_SITE_TRACER)
        return "[heaptrail's own tracing]";
    return NULL;
}

long hti_site_frames(ht_analysis *a, uint32_t site, const hti_frame ***frames, size_t *capacity)
{
    const hti_site *s = &a->sites[site];
    size_t n = 0;
    for (uint32_t i = 0; i < s->depth; i++) {
        size_t count;
        const hti_frame *f = hti_symbolize(a->symbolizer, s->frames[i], &count);
        if (!f)
            return -ENOMEM;
        for (size_t k = 0; k < count; k++) {
            if (hti_grow((void **)frames, capacity, n + 1, sizeof **frames) != 0)
                return -ENOMEM;
            (*frames)[n++] = &f[k];
        }
    }
    return (long)n;
}

typedef struct site_rank {
    double key;
    uint32_t site;
} site_rank;

static int compare_rank(const void *x, const void *y)
{
    const site_rank *a = x, *b = y;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    return a->site < b->site ? -1 : a->site > b->site;
}

size_t hti_sites_sorted(const ht_analysis *a, hti_site_key key, uint32_t **out)
{
    *out = NULL;
    site_rank *ranks = malloc((a->site_count ? a->site_count : 1) * sizeof *ranks);
    if (!ranks)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < a->site_count; i++) {
        double k = key(a, (uint32_t)i);
        if (k > 0.5 || (k > 0 && a->info->sample_interval))
            ranks[n++] = (site_rank){k, (uint32_t)i};
    }
    qsort(ranks, n, sizeof *ranks, compare_rank);
    uint32_t *sites = malloc((n ? n : 1) * sizeof *sites);
    if (sites)
        for (size_t i = 0; i < n; i++)
            sites[i] = ranks[i].site;
    free(ranks);
    *out = sites;
    return sites ? n : 0;
}

/* ---- merging stacks that print the same ---- */

/* Different return addresses can symbolize to the same lines (a call unrolled or duplicated by
 * the compiler, or a different path through the allocator's own frames): such sites are one
 * stack to the reader, so their numbers are folded into the first of them after the pass. */
static uint64_t symbolic_hash(const hti_frame *const *frames, long n)
{
    uint64_t h = 0x51AF0D1Eu ^ (uint64_t)n;
    for (long i = 0; i < n; i++) {
        const hti_frame *f = frames[i];
        uint64_t v = f->function ? (uint64_t)(uintptr_t)f->function * 3 +
                                       (uint64_t)(uintptr_t)f->file * 5 + f->line * 7u + f->inlined
                                 : f->address;
        h = hti_mix64(h ^ v);
    }
    return h | 1;
}

static bool frames_same(const hti_frame *const *x, long nx, const hti_frame *const *y, long ny)
{
    if (nx != ny)
        return false;
    for (long i = 0; i < nx; i++)
        if (!hti_frame_same(x[i], y[i]))
            return false;
    return true;
}

static void fold_site(ht_analysis *a, hti_site *into, hti_site *from)
{
    double peak_bytes = hti_site_peak_bytes(a, into) + hti_site_peak_bytes(a, from);
    double peak_count = hti_site_peak_count(a, into) + hti_site_peak_count(a, from);
    into->alloc_count += from->alloc_count;
    into->alloc_bytes += from->alloc_bytes;
    into->live_count += from->live_count;
    into->live_bytes += from->live_bytes;
    into->temp_count += from->temp_count;
    into->temp_bytes += from->temp_bytes;
    into->invalid += from->invalid;
    for (int k = 0; k < HT_SOURCE_COUNT; k++) {
        into->source_count[k] += from->source_count[k];
        into->source_bytes[k] += from->source_bytes[k];
    }
    into->peak_epoch = a->peak_epoch;
    into->peak_bytes = peak_bytes;
    into->peak_count = peak_count;
    uint32_t keep = from->merged_into;
    const uint64_t *frames = from->frames;
    uint32_t depth = from->depth;
    uint64_t hash = from->hash;
    memset(from, 0, sizeof *from);
    from->frames = frames;
    from->depth = depth;
    from->hash = hash;
    from->merged_into = keep;
    from->peak_epoch = a->peak_epoch;
}

int hti_sites_merge(ht_analysis *a)
{
    if (!a->options.symbols)
        return 0;
    hti_map groups = {0};
    const hti_frame **frames = NULL, **other = NULL;
    size_t frame_capacity = 0, other_capacity = 0;
    int status = 0;
    for (uint32_t i = HTI_SITE_SPECIAL; i < a->site_count && status == 0; i++) {
        hti_site *s = &a->sites[i];
        if (s->alloc_count <= 0 && s->live_count <= 0 && s->temp_count <= 0 && !s->invalid &&
            hti_site_peak_count(a, s) <= 0 &&
            !(a->window_sites &&
              memcmp(&a->window_sites[i], &(hti_window_site){0}, sizeof(hti_window_site)) != 0))
            continue;
        long n = hti_site_frames(a, i, &frames, &frame_capacity);
        if (n < 0) {
            status = (int)n;
            break;
        }
        uint64_t key = symbolic_hash(frames, n);
        for (;; key = hti_mix64(key + 1) | 1) {
            uint32_t g = hti_map_get(&groups, key);
            if (g == UINT32_MAX) {
                if (hti_map_put(&groups, key, i) != 0)
                    status = -ENOMEM;
                break;
            }
            long m = hti_site_frames(a, g, &other, &other_capacity);
            if (m < 0) {
                status = (int)m;
                break;
            }
            if (!frames_same(frames, n, other, m))
                continue;
            fold_site(a, &a->sites[g], s);
            s->merged_into = g;
            if (a->window_sites) {
                for (int c = 0; c < HTI_CLASSES; c++) {
                    a->window_sites[g].count[c] += a->window_sites[i].count[c];
                    a->window_sites[g].bytes[c] += a->window_sites[i].bytes[c];
                }
                memset(&a->window_sites[i], 0, sizeof a->window_sites[i]);
            }
            break;
        }
    }
    free(frames);
    free(other);
    hti_map_free(&groups);
    if (status)
        return status;
    /* INVALID groups and events name the surviving site; groups that now coincide merge. */
    for (size_t i = 0; i < a->invalid_event_count; i++)
        a->invalid_events[i].site = a->sites[a->invalid_events[i].site].merged_into;
    hti_map seen = {0};
    size_t kept = 0;
    for (size_t i = 0; i < a->invalid_group_count; i++) {
        hti_invalid_group g = a->invalid_groups[i];
        g.site = a->sites[g.site].merged_into;
        uint64_t key = (((uint64_t)g.site << 8) | g.kind) + 1;
        uint32_t k = hti_map_get(&seen, key);
        if (k != UINT32_MAX) {
            a->invalid_groups[k].count += g.count;
            a->invalid_groups[k].bytes += g.bytes;
            continue;
        }
        if (hti_map_put(&seen, key, (uint32_t)kept) != 0) {
            hti_map_free(&seen);
            return -ENOMEM;
        }
        a->invalid_groups[kept++] = g;
    }
    hti_map_free(&seen);
    a->invalid_group_count = kept;
    return 0;
}

/* ---- orderings ---- */

double hti_key_leaked_bytes(const ht_analysis *a, uint32_t site)
{
    return a->sites[site].live_bytes;
}

double hti_key_peak_bytes(const ht_analysis *a, uint32_t site)
{
    return hti_site_peak_bytes(a, &a->sites[site]);
}

double hti_key_alloc_bytes(const ht_analysis *a, uint32_t site)
{
    return a->sites[site].alloc_bytes;
}

double hti_key_alloc_count(const ht_analysis *a, uint32_t site)
{
    return a->sites[site].alloc_count;
}

double hti_key_temp_count(const ht_analysis *a, uint32_t site)
{
    return a->sites[site].temp_count;
}

typedef struct window_rank {
    double impact, bytes;
    uint32_t site;
} window_rank;

static int compare_window(const void *x, const void *y)
{
    const window_rank *a = x, *b = y;
    if (a->impact != b->impact)
        return a->impact > b->impact ? -1 : 1;
    if (a->bytes != b->bytes)
        return a->bytes > b->bytes ? -1 : 1;
    return a->site < b->site ? -1 : a->site > b->site;
}

size_t hti_window_sites_sorted(const ht_analysis *a, uint32_t **out)
{
    *out = NULL;
    if (!a->window_sites)
        return 0;
    window_rank *ranks = malloc((a->site_count ? a->site_count : 1) * sizeof *ranks);
    uint32_t *sites = malloc((a->site_count ? a->site_count : 1) * sizeof *sites);
    if (!ranks || !sites) {
        free(ranks);
        free(sites);
        return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < a->site_count; i++) {
        const hti_window_site *w = &a->window_sites[i];
        double count = 0, bytes = 0;
        for (int c = 0; c < HTI_CLASSES; c++) {
            count += w->count[c];
            bytes += w->bytes[c];
        }
        if (count > 0)
            ranks[n++] = (window_rank){fabs(hti_window_impact(w)), bytes, (uint32_t)i};
    }
    qsort(ranks, n, sizeof *ranks, compare_window);
    for (size_t i = 0; i < n; i++)
        sites[i] = ranks[i].site;
    free(ranks);
    *out = sites;
    return n;
}
