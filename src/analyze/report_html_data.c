/* report_html_data.c — what `report --format html` collects during the pass, beside the model:
 * the live bytes at the end of each time bin (in all, per heap, per Source of the allocation that
 * made each block) and the most live bytes inside it; and the lifetime cells, the blocks of each
 * site counted by the bin they were allocated in and the bin they were freed in, from which the
 * page computes WPA's lifetime classes for any range of bins exactly as `report --window` would.
 *
 * Bins start at the range's start (options.from_ns) and are HTI_HTML_BINS at most: when the
 * trace runs past them, or the cells outgrow their budget, pairs of bins merge and the width
 * doubles. A cell's allocation bin is -1 for a block allocated before the range; its free bin
 * is HTI_HTML_LIVE while the block lives. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/report_html.h"

#define FIRST_BIN_NS 1000u    /* the narrowest bin: 1 us */
#define CELLS_BUDGET 1000000u /* cells kept before bins merge */
#define KEY_BIN_BITS 11       /* a bin and the live marker fit */

static inline uint64_t cell_key(uint32_t site, int32_t alloc_bin, uint32_t free_bin)
{
    return (((uint64_t)site << (2 * KEY_BIN_BITS)) | ((uint64_t)(alloc_bin + 1) << KEY_BIN_BITS) |
            free_bin) +
           1; /* never 0: the map's empty key */
}

static int cells_add(hti_html_data *d, uint32_t site, int32_t alloc_bin, uint32_t free_bin,
                     double count, double bytes)
{
    uint64_t key = cell_key(site, alloc_bin, free_bin);
    uint32_t index = hti_map_get(&d->cell_index, key);
    if (index == UINT32_MAX) {
        if (HTI_GROW(d->cells, d->cell_count, d->cell_capacity) != 0)
            return -ENOMEM;
        index = (uint32_t)d->cell_count;
        if (hti_map_put(&d->cell_index, key, index) != 0)
            return -ENOMEM;
        d->cells[d->cell_count++] = (hti_html_cell){.site = site,
                                                    .alloc_bin = alloc_bin,
                                                    .free_bin = free_bin};
    }
    d->cells[index].count += count;
    d->cells[index].bytes += bytes;
    return 0;
}

/* The cells again, each moved to its merged site (sites, after hti_sites_merge; NULL: kept) and
 * with halve, to the bin that holds its bin once pairs of bins have merged. */
static int cells_rebuild(hti_html_data *d, const ht_analysis *sites, bool halve)
{
    hti_html_cell *old = d->cells;
    size_t old_count = d->cell_count;
    d->cells = NULL;
    d->cell_count = d->cell_capacity = 0;
    hti_map_free(&d->cell_index);
    int status = 0;
    for (size_t i = 0; i < old_count && !status; i++) {
        const hti_html_cell *c = &old[i];
        uint32_t site = sites ? sites->sites[c->site].merged_into : c->site;
        int32_t alloc_bin = !halve || c->alloc_bin < 0 ? c->alloc_bin : c->alloc_bin / 2;
        uint32_t free_bin = !halve || c->free_bin == HTI_HTML_LIVE ? c->free_bin : c->free_bin / 2;
        status = cells_add(d, site, alloc_bin, free_bin, c->count, c->bytes);
    }
    free(old);
    return status;
}

/* Halves the number of bins: pairs merge (the later one's end state, the larger maximum), the
 * width doubles, and the cells move to the merged bins. */
static int coarsen(hti_html_data *d)
{
    size_t half = (d->filled + 1) / 2;
    for (size_t i = 0; i < half; i++) {
        size_t x = 2 * i, y = 2 * i + 1 < d->filled ? 2 * i + 1 : 2 * i;
        d->max[i] = d->max[x] > d->max[y] ? d->max[x] : d->max[y];
        d->live[i] = d->live[y];
        for (size_t h = 0; h < HTI_HTML_HEAPS + 1; h++)
            d->heap_live[h][i] = d->heap_live[h][y];
        for (size_t s = 0; s < HT_SOURCE_COUNT; s++)
            d->source_live[s][i] = d->source_live[s][y];
    }
    d->filled = half;
    d->bin_ns *= 2;
    d->hooks.sample_interval_ns = d->bin_ns;
    return cells_rebuild(d, NULL, true);
}

/* The bin of a time relative to the trace start: -1 before the range. */
static inline int64_t bin_of(const hti_html_data *d, uint64_t relative)
{
    if (relative < d->from_ns)
        return -1;
    return (int64_t)((relative - d->from_ns) / d->bin_ns);
}

/* Bin i saw no event: it holds the state of the previous sample call. */
static void fill_from_last(hti_html_data *d, size_t i)
{
    d->live[i] = d->max[i] = d->last_live;
    for (size_t h = 0; h <= HTI_HTML_HEAPS; h++)
        d->heap_live[h][i] = d->last_heap[h];
    for (size_t s = 0; s < HT_SOURCE_COUNT; s++)
        d->source_live[s][i] = d->last_source[s];
}

static void save_last(hti_html_data *d, const ht_analysis *a)
{
    d->last_live = a->live_bytes;
    memset(d->last_heap, 0, sizeof d->last_heap);
    for (size_t h = 0; h < a->heap_count; h++)
        d->last_heap[h < HTI_HTML_HEAPS ? h : HTI_HTML_HEAPS] += a->heaps[h].live_bytes;
    for (size_t s = 0; s < HT_SOURCE_COUNT; s++)
        d->last_source[s] = a->source_live_bytes[s];
}

/* The state is as of time (relative to the trace start): the bins that ended by then are
 * known. The bins between the previous call and the one the last events fell in saw no event:
 * they hold the state of the previous call. */
static void on_sample(void *context, ht_analysis *a, uint64_t time)
{
    hti_html_data *d = context;
    if (d->status || time < d->from_ns)
        return;
    uint64_t span = time - d->from_ns;
    size_t k = (size_t)((span + d->bin_ns - 1) / d->bin_ns);
    while (k > HTI_HTML_BINS) {
        if ((d->status = coarsen(d)) != 0)
            return;
        k = (size_t)((span + d->bin_ns - 1) / d->bin_ns);
    }
    for (size_t i = d->filled; i + 1 < k; i++)
        fill_from_last(d, i);
    save_last(d, a);
    if (k > 0) {
        /* Bin k-1 ends in the state now; it may have begun before a merge. */
        double max = a->interval_max_live;
        if (k - 1 < d->filled && d->max[k - 1] > max)
            max = d->max[k - 1];
        fill_from_last(d, k - 1);
        d->max[k - 1] = max;
        if (k > d->filled)
            d->filled = k;
    }
    a->interval_max_live = a->live_bytes;
}

static void on_block_end(void *context, ht_analysis *a, const hti_block *b, uint64_t end_ns,
                         bool live)
{
    hti_html_data *d = context;
    if (d->status)
        return;
    uint64_t end = hti_relative_ns(a, end_ns);
    if (!live && end < d->from_ns)
        return; /* gone before the range */
    for (;;) {
        int64_t alloc_bin = bin_of(d, hti_relative_ns(a, b->time));
        int64_t free_bin = live ? HTI_HTML_LIVE : bin_of(d, end);
        if ((live ? alloc_bin : free_bin) >= HTI_HTML_BINS) {
            /* Past the bins sampled so far (the last sample comes later): widen first. */
            if ((d->status = coarsen(d)) != 0)
                return;
            continue;
        }
        if (d->cell_count >= CELLS_BUDGET && d->bin_ns < (UINT64_MAX >> 2)) {
            if ((d->status = coarsen(d)) != 0)
                return;
            continue;
        }
        double w = b->weight;
        d->status = cells_add(d, b->site, (int32_t)alloc_bin, (uint32_t)free_bin, w,
                              (double)hti_block_size(b) * w);
        return;
    }
}

int hti_html_data_init(hti_html_data *d, ht_analysis *a)
{
    memset(d, 0, sizeof *d);
    d->from_ns = a->options.from_ns;
    /* The first width: the trace's length over the bins when the file says it, else 1 us;
     * merges widen it as the trace goes on. */
    uint64_t span = 0;
    if (a->info->end_ns > a->info->start_ns)
        span = a->info->end_ns - a->info->start_ns;
    if (a->options.to_ns != HT_ANALYSIS_NO_END && a->options.to_ns < span)
        span = a->options.to_ns;
    span = span > d->from_ns ? span - d->from_ns : 0;
    d->bin_ns = FIRST_BIN_NS;
    while (d->bin_ns * HTI_HTML_BINS < span)
        d->bin_ns *= 2;
    size_t doubles = HTI_HTML_BINS * (2 + HTI_HTML_HEAPS + 1 + HT_SOURCE_COUNT);
    d->storage = calloc(doubles, sizeof(double));
    if (!d->storage)
        return -ENOMEM;
    double *p = d->storage;
    d->live = p, p += HTI_HTML_BINS;
    d->max = p, p += HTI_HTML_BINS;
    for (size_t h = 0; h <= HTI_HTML_HEAPS; h++)
        d->heap_live[h] = p, p += HTI_HTML_BINS;
    for (size_t s = 0; s < HT_SOURCE_COUNT; s++)
        d->source_live[s] = p, p += HTI_HTML_BINS;
    d->hooks = (hti_hooks){
        .context = d,
        .sample_interval_ns = d->bin_ns,
        .sample = on_sample,
        .block_end = on_block_end,
        .every_block = true,
    };
    return 0;
}

size_t hti_html_data_finish(hti_html_data *d, const ht_analysis *a)
{
    if (!d->status)
        d->status = cells_rebuild(d, a, false);
    /* A block freed at the very end falls in the bin after the last sample's: one more, in
     * the end state. */
    size_t bins = d->filled ? d->filled : 1;
    for (size_t i = 0; i < d->cell_count; i++) {
        const hti_html_cell *c = &d->cells[i];
        size_t top = c->free_bin != HTI_HTML_LIVE ? c->free_bin
                     : c->alloc_bin >= 0          ? (size_t)c->alloc_bin
                                                  : 0;
        if (top + 1 > bins && top < HTI_HTML_BINS)
            bins = top + 1;
    }
    for (size_t i = d->filled; i < bins; i++)
        fill_from_last(d, i);
    return bins;
}

void hti_html_data_free(hti_html_data *d)
{
    free(d->storage);
    free(d->cells);
    hti_map_free(&d->cell_index);
    memset(d, 0, sizeof *d);
}
