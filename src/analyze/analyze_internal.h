/* analyze_internal.h — what the files of src/analyze share: the live-block table, the small hash
 * maps and string pool (table.c), the symbolizer (symbolize.c), the analysis state with its
 * per-site and per-heap accumulators (analyze.c), the JSON writer and number formatting
 * (output.c), and the exporters' entry points.
 *
 * Invariants: sites 0-2 are "no stack", "before tracing" (rundown blocks) and heaptrail's own;
 * every other site is a distinct stack after the allocator's own frames are stripped.
 * Quantities are weighted (sampled traces) and kept as doubles: exact below 2^53 unsampled. */
#ifndef HEAPTRAIL_ANALYZE_INTERNAL_H
#define HEAPTRAIL_ANALYZE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "analyze/analysis.h"
#include "analyze/units.h"
#include "heaptrail/events.h"
#include "heaptrail/reader.h"

/* ---- table.c: maps, string pool, growable arrays ---- */

/* Grows *array to hold at least need elements; 0 or -ENOMEM. */
int hti_grow(void **array, size_t *capacity, size_t need, size_t element);
#define HTI_GROW(array, count, capacity)                                                           \
    hti_grow((void **)&(array), &(capacity), (size_t)(count) + 1, sizeof *(array))

static inline uint64_t hti_mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xFF51AFD7ED558CCDu;
    x ^= x >> 33;
    x *= 0xC4CEB9FE1A85EC53u;
    x ^= x >> 33;
    return x;
}

/* A map from non-zero 64-bit keys to 32-bit values (open addressing). */
typedef struct hti_map {
    uint64_t *keys;
    uint32_t *values;
    size_t mask, count;
} hti_map;

void hti_map_free(hti_map *map);
/* The value for key, or UINT32_MAX. */
uint32_t hti_map_get(const hti_map *map, uint64_t key);
/* Sets key's value; 0 or -ENOMEM. */
int hti_map_put(hti_map *map, uint64_t key, uint32_t value);
/* Removes key if present (backward-shift deletion: no tombstones). */
void hti_map_remove(hti_map *map, uint64_t key);

/* Interned NUL-terminated strings: equal strings get the same pointer, valid until freed. */
typedef struct hti_strings {
    const char **slots;
    size_t mask, count;
    char *block; /* current storage block */
    size_t block_used, block_size;
    char **blocks;
    size_t block_count, block_capacity;
} hti_strings;

void hti_strings_free(hti_strings *pool);
/* NULL on allocation failure. */
const char *hti_strings_intern(hti_strings *pool, const char *text, size_t length);

/* Bump allocation in blocks that never move, all freed at once. */
typedef struct hti_arena {
    char **blocks;
    size_t block_count, block_capacity;
    size_t used, size; /* in the current block */
} hti_arena;

void *hti_arena_alloc(hti_arena *arena, size_t size); /* 8-byte aligned; NULL: no memory */
void hti_arena_free(hti_arena *arena);

/* ---- the live-block table (table.c) ---- */

/* A block's size_heap: the requested size in the low 45 bits (32 TiB: more than a 47-bit user
 * address space can hold at once next to anything else), the Source of the operation that made
 * it in the next 3 (0: before tracing), the heap index in the high 16. */
#define HTI_SIZE_BITS 45
#define HTI_SIZE_MASK ((1ull << HTI_SIZE_BITS) - 1)
#define HTI_SOURCE_SHIFT 45
#define HTI_HEAP_SHIFT 48

typedef struct hti_block {
    uint64_t address;   /* 0: empty slot */
    uint64_t size_heap; /* size, Source and heap index (above) */
    uint64_t time;      /* allocation timestamp (ns, trace clock); the top bit marks blocks
                         * listed by the rundown in progress (analyze.c) */
    uint32_t site;
    float weight; /* operations this block stands for (1 unless sampled) */
} hti_block;

#define HTI_TIME_MARK (1ull << 63) /* on time: listed by the rundown in progress */
static inline uint64_t hti_block_time(const hti_block *b)
{
    return b->time & ~HTI_TIME_MARK;
}
static inline uint64_t hti_block_size(const hti_block *b)
{
    return b->size_heap & HTI_SIZE_MASK;
}
static inline uint32_t hti_block_heap(const hti_block *b)
{
    return (uint32_t)(b->size_heap >> HTI_HEAP_SHIFT);
}
static inline unsigned hti_block_source(const hti_block *b)
{
    return (unsigned)(b->size_heap >> HTI_SOURCE_SHIFT) & 7u;
}

typedef struct hti_blocks {
    hti_block *slots;
    size_t mask; /* capacity - 1 */
    size_t count;
    unsigned shift; /* 64 - log2(capacity) */
    void *mapping;  /* large tables: the mmap region holding slots (huge pages) */
    size_t mapping_size;
} hti_blocks;

int hti_blocks_init(hti_blocks *table);
void hti_blocks_free(hti_blocks *table);

static inline size_t hti_blocks_slot(const hti_blocks *table, uint64_t address)
{
    return (size_t)(((address >> 4) * 0x9E3779B97F4A7C15u) >> table->shift);
}

static inline hti_block *hti_blocks_find(hti_blocks *table, uint64_t address)
{
    size_t i = hti_blocks_slot(table, address);
    for (;;) {
        hti_block *b = &table->slots[i];
        if (b->address == address)
            return b;
        if (!b->address)
            return NULL;
        i = (i + 1) & table->mask;
    }
}

/* Doubles the table; 0 or -ENOMEM (the table is unchanged). */
int hti_blocks_grow(hti_blocks *table);

/* The slot for address: the existing block, or a new empty one with address set (*fresh true).
 * NULL on allocation failure. */
static inline hti_block *hti_blocks_insert(hti_blocks *table, uint64_t address, bool *fresh)
{
    if ((table->count + 1) * 10 > (table->mask + 1) * 7 && hti_blocks_grow(table) != 0)
        return NULL;
    size_t i = hti_blocks_slot(table, address);
    for (;;) {
        hti_block *b = &table->slots[i];
        if (b->address == address) {
            *fresh = false;
            return b;
        }
        if (!b->address) {
            b->address = address;
            table->count++;
            *fresh = true;
            return b;
        }
        i = (i + 1) & table->mask;
    }
}

/* Removes the block in slot b (backward-shift deletion: no tombstones). */
static inline void hti_blocks_remove(hti_blocks *table, hti_block *b)
{
    size_t hole = (size_t)(b - table->slots);
    size_t i = hole;
    for (;;) {
        i = (i + 1) & table->mask;
        hti_block *next = &table->slots[i];
        if (!next->address)
            break;
        /* next may fill the hole unless its home slot lies cyclically in (hole, i]. */
        size_t home = hti_blocks_slot(table, next->address);
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        table->slots[hole] = *next;
        hole = i;
    }
    table->slots[hole].address = 0;
    table->count--;
}

/* ---- symbolize.c ---- */

typedef struct hti_frame {
    uint64_t address;     /* the return address as recorded */
    uint64_t offset;      /* address - the module's load address (0 without a module) */
    const char *function; /* demangled; NULL if unknown */
    const char *file;     /* NULL if unknown */
    const char *module;   /* base name of the module's path; NULL if no module */
    const char *module_path;
    uint32_t line;    /* 0 if unknown */
    int module_index; /* -1 without a module */
    bool inlined;     /* an inlined call inside the next frame */
} hti_frame;

typedef struct hti_symbolizer hti_symbolizer;

hti_symbolizer *hti_symbolizer_open(const ht_reader *reader, bool symbols,
                                    const char *const *search_dirs);
void hti_symbolizer_close(hti_symbolizer *symbolizer);
/* Takes in the modules a live trace's reader got since (0 or -ENOMEM). */
int hti_symbolizer_refresh(hti_symbolizer *symbolizer);
/* The frames of one return address, innermost (deepest inlined) first; at least one. The
 * array stays valid until the symbolizer is closed. NULL only when out of memory. */
const hti_frame *hti_symbolize(hti_symbolizer *symbolizer, uint64_t address, size_t *count);
typedef enum hti_frame_kind {
    HTI_FRAME_USER = 0,
    HTI_FRAME_ALLOCATOR = 1, /* the malloc family, operator new: entry points, not sites */
    HTI_FRAME_HEAPTRAIL = 2, /* heaptrail's libraries, or heaptrail linked into a program */
} hti_frame_kind;

/* What a return address belongs to (cached; needs no line tables). With symbols off, only the
 * module's name tells. */
hti_frame_kind hti_symbolizer_frame_kind(hti_symbolizer *symbolizer, uint64_t address);

/* ---- analyze.c: the analysis state ---- */

#define HTI_SITE_NONE 0     /* events without a (known) stack */
#define HTI_SITE_RUNDOWN 1  /* blocks live before tracing started */
#define HTI_SITE_TRACER 2   /* made on heaptrail's own behalf (its threads, its start-up) */
#define HTI_SITE_SPECIAL 3  /* sites below this have a label and no frames */
#define HTI_HIST_BUCKETS 65 /* 0, then [2^(b-1), 2^b) for b = 1..64 */
#define HTI_CLASSES 4       /* AIFI, AIFO, AOFI, AOFO */
#define HTI_INVALID_EVENTS_MAX 1000
#define HTI_LOST_RECORDS_MAX 1000

enum { HTI_AIFI = 0, HTI_AIFO = 1, HTI_AOFI = 2, HTI_AOFO = 3 };

/* Reachability classes of a block live at the end (the leak scan's, FORMAT.md §13a). */
enum {
    HTI_REACH_DEFINITE = 0, /* definitely lost */
    HTI_REACH_INDIRECT,     /* indirectly lost */
    HTI_REACH_REACHABLE,    /* still reachable */
    HTI_REACH_UNKNOWN,      /* not scanned: no scan, or allocated after it */
    HTI_REACH_CLASSES
};
const char *hti_reach_key(uint32_t reach);  /* "definitely_lost", ... (JSON) */
const char *hti_reach_text(uint32_t reach); /* "definitely lost", ... */

typedef struct hti_site {
    const uint64_t *frames; /* the user frames of the stack (reader memory), innermost first */
    uint32_t depth;
    uint64_t peak_epoch; /* peak_* hold this site's values at the peak of that epoch */
    uint64_t hash;
    double alloc_count, alloc_bytes; /* allocations (ALLOC and REALLOC) made here */
    double live_count, live_bytes;   /* now; at the end of the trace: leaked */
    double peak_count, peak_bytes;
    double temp_count, temp_bytes;
    double source_count[HT_SOURCE_COUNT], source_bytes[HT_SOURCE_COUNT];
    uint64_t invalid;     /* INVALID events with this stack */
    uint32_t merged_into; /* after the pass: the site that took over this one's
                                      * numbers (itself if none) */
} hti_site;

typedef struct hti_window_site {
    double count[HTI_CLASSES], bytes[HTI_CLASSES];
} hti_window_site;

/* Operations as events, by ht_op (ALLOC, FREE, REALLOC), INVALID ones included: what the
 * tables of `stats` count. count: ALLOC and REALLOC events weighted (estimates when sampled),
 * FREE events one each (a free of NULL, of an unknown or of a pre-trace block too); bytes: ALLOC
 * Size and REALLOC NewSize weighted, FREE the freed block's size times its weight when the model
 * knows the block. */
typedef struct hti_ops {
    double count[HT_OP_COUNT], bytes[HT_OP_COUNT];
} hti_ops;

static inline double hti_ops_total(const hti_ops *o)
{
    return o->count[HT_OP_ALLOC] + o->count[HT_OP_FREE] + o->count[HT_OP_REALLOC];
}
static inline double hti_ops_allocated(const hti_ops *o)
{
    return o->bytes[HT_OP_ALLOC] + o->bytes[HT_OP_REALLOC];
}
static inline void hti_ops_add(hti_ops *sum, const hti_ops *o)
{
    for (int op = 0; op < HT_OP_COUNT; op++) {
        sum->count[op] += o->count[op];
        sum->bytes[op] += o->bytes[op];
    }
}

typedef struct hti_heap {
    uint64_t handle;
    uint64_t created_ns, destroyed_ns; /* 0: before the trace / not destroyed */
    uint32_t flags;
    bool rundown, created, destroyed;
    hti_ops ops[HT_SOURCE_COUNT]; /* by Source; index 0: values out of range */
    uint64_t peak_epoch;
    double live_count, live_bytes, max_live_bytes;
    double peak_count, peak_bytes; /* at the global peak (epoch trick, as sites) */
    uint64_t committed, max_committed;
    double alloc_count[HT_SOURCE_COUNT],
        alloc_bytes[HT_SOURCE_COUNT]; /* from ops, after the pass */
    double free_count[HT_SOURCE_COUNT], free_bytes[HT_SOURCE_COUNT];
    uint64_t invalid[3]; /* by ht_op */
} hti_heap;

/* A thread as the model sees it: its operations, and its last operation if it was an
 * allocation (analyze.c, "temporaries"). */
typedef struct hti_model_thread {
    uint32_t tid;
    uint64_t last_alloc;      /* address of the thread's last operation if it was an allocation */
    uint64_t last_alloc_time; /* and that block's allocation time: the block's identity */
    hti_ops ops;
} hti_model_thread;

typedef enum hti_invalid_kind {
    HTI_INVALID_FAILED_ALLOC = 0, /* allocation failed (address 0) */
    HTI_INVALID_DOUBLE_FREE,      /* free of a block freed before */
    HTI_INVALID_WRONG_HEAP,       /* free of a live block through another heap */
    HTI_INVALID_REJECTED_FREE,    /* the heap refused to free a live block of its own */
    HTI_INVALID_UNKNOWN_FREE,     /* free of a pointer the trace never saw allocated */
    HTI_INVALID_FAILED_REALLOC,   /* reallocation of a live block failed; the block stays */
    HTI_INVALID_REALLOC_FREED,    /* reallocation of a freed block */
    HTI_INVALID_REALLOC_UNKNOWN,  /* reallocation of an unknown pointer */
    HTI_INVALID_KINDS
} hti_invalid_kind;

const char *hti_invalid_name(hti_invalid_kind kind);

typedef struct hti_invalid_group {
    uint32_t kind; /* hti_invalid_kind */
    uint32_t site;
    uint64_t count;
    uint64_t bytes; /* requested bytes of failed allocations */
} hti_invalid_group;

typedef struct hti_invalid_event {
    uint64_t time_ns; /* relative to the trace start */
    uint64_t heap, address, size;
    uint32_t thread, kind, site, event_kind;
} hti_invalid_event;

/* Called while the events stream through (exporters). */
typedef struct hti_hooks {
    void *context;
    uint64_t sample_interval_ns; /* 0: no samples; see sample */
    /* At the end of each sample interval: the state is as of time_ns (relative to start).
     * Intervals count from the range's start (options.from_ns), where a range that starts
     * after the trace's gets one call too. The callback may set sample_interval_ns to a
     * multiple of itself: the next boundary is then on the wider grid. */
    void (*sample)(void *context, ht_analysis *analysis, uint64_t time_ns);
    /* Events other than successful ALLOC / FREE / REALLOC (heaps, rundown heaps, lost, and
     * INVALID ones). */
    void (*notable)(void *context, ht_analysis *analysis, const ht_event *event, uint32_t site);
    uint64_t large_block; /* block_end is called for blocks at least this big (0: never) */
    bool every_block;     /* block_end is called for every block */
    bool every_boundary;  /* sample is called at every boundary, also across a gap without
                           * events (live traces), not once per jump */
    /* A large block ended: freed (end_ns) or live at the end of the trace (live true). */
    void (*block_end)(void *context, ht_analysis *analysis, const hti_block *block, uint64_t end_ns,
                      bool live);
} hti_hooks;

struct ht_analysis {
    ht_analysis_options options;
    char *path;
    ht_reader *reader;
    bool owns_reader;
    const ht_trace_info *info;
    hti_symbolizer *symbolizer;
    const char **search_dirs; /* copied */

    hti_site *sites;
    size_t site_count, site_capacity;
    hti_map site_index;   /* stack hash -> first site with that hash (chained by equality) */
    uint32_t *stack_site; /* by stack id; ids above stack_limit map to HTI_SITE_NONE */
    uint32_t stack_limit;
    hti_window_site *window_sites; /* when options.window */

    hti_blocks blocks;
    hti_map heap_index, thread_index;
    hti_heap *heaps;
    size_t heap_count, heap_capacity;
    hti_model_thread *threads;
    size_t thread_count, thread_capacity;
    uint64_t *recent_frees; /* direct-mapped cache of freed addresses (double-free detection) */

    /* totals */
    uint64_t events, kind_count[256];
    double kind_bytes[256]; /* RUNDOWN_BLOCK Size, HEAP_EXPAND/CONTRACT Bytes (ops: per heap) */
    /* the heaps' sums, set at the end of the pass (hti_analysis_run) */
    double alloc_count, alloc_bytes, free_count, free_bytes, realloc_count;
    double live_count, live_bytes;
    double peak_count, peak_bytes;
    uint64_t peak_time_ns; /* relative */
    uint64_t peak_epoch;   /* bumped at every new peak */
    double temp_count, temp_bytes;
    double rundown_count, rundown_bytes;
    double unknown_frees; /* frees of addresses not in the model (sampling, pre-trace blocks) */
    double destroyed_count, destroyed_bytes; /* blocks released by HEAP_DESTROY */
    double stale_count, stale_bytes;         /* dropped: a later rundown did not list them */
    double hist_count[HTI_HIST_BUCKETS], hist_bytes[HTI_HIST_BUCKETS];
    double window_count[HTI_CLASSES], window_bytes[HTI_CLASSES];
    uint64_t window_begin_abs, window_end_abs; /* absolute trace clock */
    uint64_t from_abs, to_abs;                 /* the range (options.from_ns, to_ns), absolute */
    bool in_range;                             /* the pass reached from_abs (range_begin ran) */
    /* For the HTML timeline: live bytes by the Source that made each block (index 0: before
     * tracing or out of range), and the most live bytes since the last sample hook. */
    double source_live_bytes[HT_SOURCE_COUNT];
    double interval_max_live;

    hti_invalid_group *invalid_groups;
    size_t invalid_group_count, invalid_group_capacity;
    hti_map invalid_index;
    hti_invalid_event *invalid_events;
    size_t invalid_event_count, invalid_event_capacity;
    uint64_t invalid_total, invalid_omitted;
    uint32_t last_invalid_kind; /* of the latest INVALID event (for the hooks) */

    ht_event_lost *lost_records;
    size_t lost_record_count, lost_record_capacity;
    uint64_t lost_total, lost_by_reason[8], lost_omitted;

    /* The leak scan at exit (FORMAT.md §13a): its record, its time, the classes it gave by
     * address (class in size_heap), and after the pass the blocks live at the end by class
     * (HTI_REACH_*, all HTI_REACH_UNKNOWN without a scan; blocks live before tracing or made
     * for heaptrail not counted). */
    bool leak_scan_seen;
    uint64_t leak_scan_time; /* absolute */
    ht_event_leak_scan leak_scan;
    hti_blocks unreachable;
    double reach_count[HTI_REACH_CLASSES], reach_bytes[HTI_REACH_CLASSES];

    uint64_t last_ns; /* timestamp of the last event (absolute) */
    bool ran;
    struct hti_pass *pass;  /* the pass's own state (analyze.c), from hti_analysis_begin */
    uint64_t stacks_mapped; /* the reader's stacks mapped to sites so far (sites.c) */
    uint32_t stack_next_id; /* the next stack id sites.c looks at */
    size_t stack_site_capacity;
    hti_arena frame_arena; /* a live trace's site frames (sites.c) */
    uint32_t stack_misses; /* ids missing in a row before it */
};

/* What a block live at the end of the trace is, by the leak scan. */
uint32_t hti_block_reachability(const ht_analysis *analysis, const hti_block *block);
/* A block live before tracing started, or made on heaptrail's own behalf: never a leak's. */
static inline bool hti_block_before_or_own(const hti_block *b)
{
    return b->site == HTI_SITE_RUNDOWN || b->site == HTI_SITE_TRACER || hti_block_source(b) == 0;
}

/* sites.c: maps every stack of the reader to a site (0 or -ENOMEM), and after the pass folds
 * sites that symbolize alike (0 or -ENOMEM). */
int hti_sites_build(ht_analysis *analysis);
int hti_sites_merge(ht_analysis *analysis);

/* Maps the stacks the reader got since the last call (a live trace's), up to id limit, to
 * sites; 0 or -ENOMEM. */
int hti_sites_update(ht_analysis *analysis, uint32_t limit);

/* Runs the pass with hooks (exporters); ht_analysis_run calls it with none. */
int hti_analysis_run(ht_analysis *analysis, const hti_hooks *hooks, char *error, size_t error_size);
/* The same pass in steps, for a live trace (a follower, reader.h): begin (0, -EINVAL if it ran,
 * -ENOMEM), feed batches as they come (0; 1 once the range ended; -ENOMEM), advance the clock
 * to a watermark when no event came (sample hooks for the boundaries it passed), and end once
 * (the results, as hti_analysis_run gives them). Between feeds the model's running figures
 * (live, sites' and heaps' counts; hti_sum_heaps for the totals) are the state so far. */
int hti_analysis_begin(ht_analysis *analysis, const hti_hooks *hooks);
int hti_analysis_feed(ht_analysis *analysis, const ht_event *events, long count);
void hti_analysis_advance(ht_analysis *analysis, uint64_t now_abs);
int hti_analysis_end(ht_analysis *analysis, int status, char *error, size_t error_size);
/* The heaps' per-Source sums into the totals (alloc_count, alloc_bytes, free_*, ...). */
void hti_sum_heaps(ht_analysis *analysis);

static inline double hti_site_peak_bytes(const ht_analysis *a, const hti_site *s)
{
    return s->peak_epoch == a->peak_epoch ? s->peak_bytes : s->live_bytes;
}
static inline double hti_site_peak_count(const ht_analysis *a, const hti_site *s)
{
    return s->peak_epoch == a->peak_epoch ? s->peak_count : s->live_count;
}
static inline double hti_heap_peak_bytes(const ht_analysis *a, const hti_heap *h)
{
    return h->peak_epoch == a->peak_epoch ? h->peak_bytes : h->live_bytes;
}

/* Times relative to the trace start. */
static inline uint64_t hti_relative_ns(const ht_analysis *a, uint64_t t)
{
    return t > a->info->start_ns ? t - a->info->start_ns : 0;
}
/* A range (--from, --to) narrows the analysis. */
static inline bool hti_analysis_ranged(const ht_analysis *a)
{
    return a->options.from_ns > 0 || a->options.to_ns != HT_ANALYSIS_NO_END;
}
/* The end of what the pass covers (absolute): the trace's end, or the range's if earlier. */
uint64_t hti_end_ns(const ht_analysis *a);
uint64_t hti_duration_ns(const ht_analysis *a);

/* The frames of a site after inline expansion, innermost first, into *frames (grown with
 * hti_grow; the caller frees it). Special sites give no frames. Returns the count or -ENOMEM. */
long hti_site_frames(ht_analysis *a, uint32_t site, const hti_frame ***frames, size_t *capacity);
/* True if two frames print the same (function, file, line, inlining; else the address). */
static inline bool hti_frame_same(const hti_frame *x, const hti_frame *y)
{
    if (x == y)
        return true;
    if (!x->function || !y->function)
        return false;
    return x->function == y->function && x->file == y->file && x->line == y->line &&
           x->inlined == y->inlined && x->module == y->module;
}
/* "[no stack]", "[allocated before tracing started]", "[heaptrail's own tracing]", or NULL
 * for ordinary sites. */
const char *hti_site_label(uint32_t site);

/* Sorts site indices by a key, largest first, and returns how many have key > 0 (*out is
 * malloc'd; NULL and 0 when out of memory). */
typedef double (*hti_site_key)(const ht_analysis *a, uint32_t site);
size_t hti_sites_sorted(const ht_analysis *a, hti_site_key key, uint32_t **out);
double hti_key_leaked_bytes(const ht_analysis *a, uint32_t site);
double hti_key_peak_bytes(const ht_analysis *a, uint32_t site);
double hti_key_alloc_bytes(const ht_analysis *a, uint32_t site);
double hti_key_alloc_count(const ht_analysis *a, uint32_t site);
double hti_key_temp_count(const ht_analysis *a, uint32_t site);
/* Window: sites with blocks in any lifetime class, by |impacting bytes| then bytes. */
size_t hti_window_sites_sorted(const ht_analysis *a, uint32_t **out);
static inline double hti_window_impact(const hti_window_site *w)
{
    return w->bytes[HTI_AIFO] - w->bytes[HTI_AOFI];
}

/* ---- output.c ---- */

typedef struct hti_json {
    FILE *out;
    int depth;
    bool pretty;
    bool need_comma[64];
    bool after_key;
} hti_json;

void hti_json_init(hti_json *j, FILE *out, bool pretty);
void hti_json_begin_object(hti_json *j, const char *key);
void hti_json_end_object(hti_json *j);
void hti_json_begin_array(hti_json *j, const char *key);
void hti_json_end_array(hti_json *j);
void hti_json_string(hti_json *j, const char *key, const char *value); /* NULL: null */
void hti_json_raw(hti_json *j, const char *key, const char *text);     /* a whole JSON value */
/* One frame, as every JSON output gives it: address, function, file, line, module, offset,
 * inlined. */
void hti_json_frame(hti_json *j, const hti_frame *frame);
void hti_json_uint(hti_json *j, const char *key, uint64_t value);
void hti_json_int(hti_json *j, const char *key, int64_t value);
/* Rounded to the nearest integer (weighted quantities). */
void hti_json_round(hti_json *j, const char *key, double value);
void hti_json_double(hti_json *j, const char *key, double value);
void hti_json_bool(hti_json *j, const char *key, bool value);
void hti_json_hex(hti_json *j, const char *key, uint64_t value);
void hti_json_finish(hti_json *j);
void hti_json_escape(FILE *out, const char *text);

/* summary.c: the bottom line's keys (events, lost, live_*, peak_*, invalid), as `stats` gives
 * them at its top level and `report` in its "totals" object. */
void hti_trace_summary_json(hti_json *j, const ht_trace_summary *summary);

/* "name at file:line (module)" or "module+0x1234" or "0x1234". */
const char *hti_format_frame(char *buffer, size_t size, const hti_frame *frame, bool with_module);
/* The name used in folded stacks, massif trees and pprof functions. */
const char *hti_frame_name(char *buffer, size_t size, const hti_frame *frame);
/* A growable NUL-terminated text (folded lines, diff's site keys); data freed by the owner. */
typedef struct hti_text {
    char *data;
    size_t length, capacity;
} hti_text;
/* Appends n bytes of s: 0 or -ENOMEM. */
int hti_text_append(hti_text *t, const char *s, size_t n);
/* Appends a folded stack's frame name or label: ';' would split the frame and a line break the
 * line, so they become ':' and ' ' (export --format folded, diff --format folded). */
int hti_text_append_folded(hti_text *t, const char *name);
/* Appends frames (innermost first, n of them) as a folded stack: "outermost;...;innermost". */
int hti_text_folded_stack(hti_text *t, const hti_frame *const *frames, long n);
/* The file name part of a path. */
const char *hti_basename(const char *path);

/* ---- report and exporters ---- */

int hti_report_text(ht_analysis *a, FILE *out, unsigned top, unsigned sections);
int hti_report_json(ht_analysis *a, FILE *out, unsigned top, bool pretty);
int hti_report_html(ht_analysis *a, FILE *out, unsigned top, char *error, size_t error_size);
int hti_export_chrome(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                      size_t error_size);
int hti_export_massif(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                      size_t error_size);
int hti_export_folded(ht_analysis *a, FILE *out, const ht_export_options *o);
/* report_html.c: writes the viewer page with the JSON document `data` writes (0 or a negative
 * errno); `report --format html` and `diff --format html` give their own documents. */
typedef int (*hti_html_data_fn)(void *context, FILE *out);
int hti_html_page(FILE *out, hti_html_data_fn data, void *context);
/* A moment of a live trace for hti_pprof_write: the state at time_ns (relative to the start),
 * and for [from_ns, time_ns) by site (4 per site: objects and bytes allocated in the interval,
 * objects and bytes of those still live) or NULL; at_peak: in use = the composition at the
 * peak. Comments go into the profile's comment list. */
typedef struct hti_pprof_moment {
    uint64_t from_ns, time_ns;
    const double *interval;
    bool at_peak;
    const char *const *comments;
    size_t comment_count;
} hti_pprof_moment;
int hti_pprof_write(ht_analysis *a, FILE *out, const hti_pprof_moment *moment, char *error,
                    size_t error_size);
int hti_export_pprof(ht_analysis *a, FILE *out, const ht_export_options *o, char *error,
                     size_t error_size);

#endif
