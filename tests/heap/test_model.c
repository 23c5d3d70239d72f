/* test_model.c — model-based randomized tests of the heap manager.
 *
 * Random create/alloc/realloc/free/size/validate/walk/compact/destroy sequences over six heaps
 * at once (growable and fixed, NO_SERIALIZE, LFH information 0/1/2, lookaside off,
 * GENERATE_EXCEPTIONS), checked against a reference model after every operation: contents,
 * sizes, alignment, zeroing and each operation's Source as docs/DESIGN.md predicts it (exactly
 * where deterministic: LFH activation, lookaside LIFO and depth); periodically no overlap,
 * walk == live set, summary sums, validate. Long run: --seed 1 --ops 10000000. */
#include "heap_test.h"

#include <unistd.h>

enum {
    MODEL_HEAPS = 6,
    MAX_BLOCKS = 1500, /* live blocks per heap */
    SLOT_SLACK = 32,   /* margin on "slot not more than twice the new size" */
};
#define HEAP_BUDGET ((size_t)6 << 20) /* usable bytes per growable heap before frees win */
#define IMPOSSIBLE_SIZE_COUNT 5

static const size_t impossible_sizes[IMPOSSIBLE_SIZE_COUNT] = {SIZE_MAX, SIZE_MAX - 8,
                                                               SIZE_MAX - 15, SIZE_MAX / 2 + 1,
                                                               (size_t)1 << 52};

static const size_t edge_sizes[] = {1,     15,    16,    17,      255,     256,     257,
                                    511,   512,   513,   1023,    1024,    1025,    4096,
                                    16383, 16384, 16385, 0x7EFF0, 0x7EFFF, 0x7F000, 0x7F001};

static test_options options = {.seed = 1, .seeds = 0, .ops = 200000, .threads = 1};
static uint64_t check_every = 2048;

static const char usage[] =
    "usage: test_heap_model [--seed N] [--seeds N] [--ops N] [--check-every N] [--verbose]\n"
    "                       [--filter PATTERN]\n"
    "  Runs N random operations per seed against a reference model (default: seeds 1..3,\n"
    "  200000 ops each). --seed S runs seed S only; --seeds K runs S..S+K-1.\n";

/* ---- the model ---------------------------------------------------------------------------- */

enum block_kind { KIND_LFH, KIND_BACKEND, KIND_LARGE, KIND_BACKEND_OR_LARGE };
static const char *const kind_names[] = {"lfh", "backend", "large", "backend-or-large"};

typedef struct model_block {
    uint8_t *ptr;
    size_t requested;
    size_t usable;
    size_t filled;    /* bytes [0, filled) hold the pattern */
    uint32_t pattern; /* offset into pattern_bytes() */
    uint8_t kind;
    uint8_t bucket; /* for KIND_LFH: the bucket the slot belongs to, or BUCKET_UNKNOWN */
} model_block;
#define BUCKET_UNKNOWN 0xFF /* an aligned allocation's slot */

typedef struct heap_config {
    const char *name;
    uint32_t flags;
    size_t initial;
    size_t maximum;
    int lfh;       /* COMPATIBILITY information to set after create; -1: keep default */
    int lookaside; /* LOOKASIDE information to set after create; -1: keep default */
} heap_config;

static const heap_config configs[] = {
    {"growable", 0, 0, 0, -1, -1},
    {"growable lfh=2", 0, 0, 0, 2, -1},
    {"growable lfh=0", 0, 0, 0, 0, -1},
    {"no-serialize", HT_HEAP_NO_SERIALIZE, 0, 0, -1, -1},
    {"fixed 1 MiB", 0, 64 << 10, 1 << 20, -1, -1},
    {"growable exceptions", HT_HEAP_GENERATE_EXCEPTIONS, 0, 0, -1, -1},
    {"growable lookaside=0", 0, 0, 0, -1, 0},
    {"fixed 4 MiB no-serialize", HT_HEAP_NO_SERIALIZE, 0, 4 << 20, -1, -1},
    {"fixed 256 KiB exceptions", HT_HEAP_GENERATE_EXCEPTIONS, 256 << 10, 256 << 10, -1, -1},
    {"growable 2 MiB initial execute lfh=2", HT_HEAP_CREATE_ENABLE_EXECUTE, 2 << 20, 0, 2, -1},
    {"no-serialize 1 MiB initial", HT_HEAP_NO_SERIALIZE, 1 << 20, 0, -1, -1},
    {"fixed 8 MiB lfh=2 refused", 0, 0, 8 << 20, 2, -1},
};
#define CONFIG_COUNT (sizeof configs / sizeof configs[0])

typedef struct model_heap {
    ht_heap *heap;
    const heap_config *config;
    unsigned serial;
    bool fixed, front_end, has_lfh, has_lookaside, exceptions;
    int lfh_mode;
    model_block *blocks;
    size_t count;
    size_t requested_total, usable_total;
    /* Back-end allocations per bucket: exact for allocations, a range once moved
     * reallocations may or may not count. */
    uint32_t backend_min[BUCKET_COUNT], backend_max[BUCKET_COUNT];
    bool active[BUCKET_COUNT];
    /* This thread's lookaside list per bucket, while it is known exactly. */
    void *lookaside[LOOKASIDE_BUCKET_COUNT][HT_LOOKASIDE_DEPTH];
    uint8_t lookaside_count[LOOKASIDE_BUCKET_COUNT];
    bool lookaside_exact[LOOKASIDE_BUCKET_COUNT];
    ht_heap_counters counters; /* last reading */
} model_heap;

typedef struct model_stats {
    uint64_t allocs, frees, reallocs, failures, moves, in_place;
    uint64_t lookaside_lifo;  /* allocations that had to be the lookaside top, and were */
    uint64_t lookaside_frees; /* frees predicted LOOKASIDE exactly */
    uint64_t lookaside_full;  /* frees predicted LOWFRAG because the list was full */
    uint64_t activations;     /* allocations predicted to be the first LOWFRAG of a bucket */
    uint64_t backend_exact;   /* allocations predicted back end by the activation counter */
    uint64_t heap_full, in_place_failed, zero_checks, large, recreated, full_checks;
    uint64_t handler_calls, impossible, aligned, aligned_lfh, largest;
} model_stats;

typedef struct model {
    rng random;
    uint64_t seed;
    model_heap heaps[MODEL_HEAPS];
    unsigned next_serial;
    model_stats stats;
} model;

/* Failure handler log (GENERATE_EXCEPTIONS heaps). */
static struct {
    uint64_t calls;
    void *heap;
    ht_error error;
    void *context;
} handler_log;

static void record_failure(void *heap, ht_error error, void *context)
{
    handler_log.calls++;
    handler_log.heap = heap;
    handler_log.error = error;
    handler_log.context = context;
}

/* ---- size distribution -------------------------------------------------------------------- */

static size_t random_size(rng *r)
{
    uint64_t x = rng_below(r, 10000);
    if (x < 150)
        return 0;
    if (x < 4150)
        return rng_range(r, 1, 64);
    if (x < 7150)
        return rng_range(r, 65, 1024);
    if (x < 8950)
        return rng_range(r, 1025, 16384);
    if (x < 9500) {
        unsigned shift = (unsigned)rng_range(r, 14, 17); /* 16 KiB .. 256 KiB, log-spread */
        return rng_range(r, ((size_t)1 << shift) + 1, (size_t)2 << shift);
    }
    if (x < 9965)
        return edge_sizes[rng_below(r, sizeof edge_sizes / sizeof edge_sizes[0])];
    return rng_range(r, HT_LARGE_THRESHOLD, HT_LARGE_THRESHOLD + (384u << 10));
}

/* ---- expectations --------------------------------------------------------------------------- */

typedef struct expectation {
    unsigned sources;   /* allowed Sources on success */
    bool may_fail;      /* failure allowed (fixed heap full) */
    bool must_fail;     /* the request is impossible */
    void *top;          /* non-NULL: success must be LOOKASIDE at exactly this address */
    bool activation;    /* the bucket's first LOWFRAG, predicted by its counter passing 17 */
    bool backend_exact; /* back end predicted by the activation counter */
} expectation;

static bool is_impossible(size_t size)
{
    return size >= ((size_t)1 << 48);
}

/* What DESIGN.md allows for a new block of size bytes on this heap, from this thread. */
static expectation expect_allocation(const model_heap *h, size_t size)
{
    expectation e = {0};
    if (is_impossible(size)) {
        e.must_fail = true;
        return e;
    }
    if (h->fixed) {
        if (size > h->config->maximum) {
            e.must_fail = true;
            return e;
        }
        /* An empty fixed heap holds any ordinary block up to half its maximum. */
        e.may_fail = !(h->count == 0 && size <= h->config->maximum / 2 &&
                       size < HT_LARGE_THRESHOLD);
    }
    if (size >= HT_LARGE_THRESHOLD) {
        e.sources = SRC(MEMORY_FROM_SLOWPATH);
        return e;
    }
    unsigned b = size <= HT_LFH_MAX_BLOCK ? bucket_index(size) : 0;
    if (h->has_lookaside && size <= HT_LOOKASIDE_MAX_BLOCK) {
        if (h->lookaside_exact[b] && h->lookaside_count[b] > 0) {
            e.sources = SRC(MEMORY_FROM_LOOKASIDE);
            e.top = h->lookaside[b][h->lookaside_count[b] - 1];
            return e;
        }
        if (!h->lookaside_exact[b])
            e.sources |= SRC(MEMORY_FROM_LOOKASIDE);
    }
    if (h->has_lfh && size <= HT_LFH_MAX_BLOCK) {
        if (h->lfh_mode == 2 || h->active[b] || h->backend_min[b] >= HT_LFH_ACTIVATION_THRESHOLD) {
            e.sources |= SRC(MEMORY_FROM_LOWFRAG);
            e.activation = !h->active[b] && h->lfh_mode != 2;
        } else if (h->backend_max[b] < HT_LFH_ACTIVATION_THRESHOLD) {
            e.sources |= SRC_BACKEND;
            e.backend_exact = true;
        } else {
            e.sources |= SRC(MEMORY_FROM_LOWFRAG) | SRC_BACKEND;
        }
        return e;
    }
    e.sources |= SRC_BACKEND;
    return e;
}

static unsigned expect_free(const model_heap *h, const model_block *block)
{
    switch (block->kind) {
    case KIND_LFH:
        if (block->bucket == BUCKET_UNKNOWN)
            return SRC(MEMORY_FROM_LOWFRAG) | (h->has_lookaside ? SRC(MEMORY_FROM_LOOKASIDE) : 0);
        if (h->has_lookaside && block->bucket < LOOKASIDE_BUCKET_COUNT) {
            if (!h->lookaside_exact[block->bucket])
                return SRC(MEMORY_FROM_LOOKASIDE) | SRC(MEMORY_FROM_LOWFRAG);
            return h->lookaside_count[block->bucket] < HT_LOOKASIDE_DEPTH
                       ? SRC(MEMORY_FROM_LOOKASIDE)
                       : SRC(MEMORY_FROM_LOWFRAG);
        }
        return SRC(MEMORY_FROM_LOWFRAG);
    case KIND_LARGE: return SRC(MEMORY_FROM_SLOWPATH);
    default: return SRC_BACKEND;
    }
}

/* ---- bookkeeping --------------------------------------------------------------------------- */

static void describe_heap(const model_heap *h, char *buffer, size_t length)
{
    snprintf(buffer, length, "heap #%u %p '%s' (%zu live)", h->serial, (void *)h->heap,
             h->config->name, h->count);
}

/* Updates the tier state after a block of size was served from source (allocation or a
 * moved reallocation) and returns the block's kind. */
static uint8_t note_served(model_heap *h, size_t size, int source, void *ptr, bool by_realloc,
                           uint8_t old_kind)
{
    unsigned b = size <= HT_LFH_MAX_BLOCK ? bucket_index(size) : 0;
    switch (source) {
    case MEMORY_FROM_LOOKASIDE:
        h->active[b] = true;
        if (h->lookaside_exact[b]) {
            CHECK(h->lookaside_count[b] > 0 && h->lookaside[b][h->lookaside_count[b] - 1] == ptr,
                  "LOOKASIDE %p is not the top of the modelled list", ptr);
            h->lookaside_count[b]--;
        }
        return KIND_LFH;
    case MEMORY_FROM_LOWFRAG:
        h->active[b] = true;
        /* LOWFRAG is taken only when this thread's list is empty: the list is known again. */
        if (h->has_lookaside && size <= HT_LOOKASIDE_MAX_BLOCK && !h->lookaside_exact[b]) {
            h->lookaside_exact[b] = true;
            h->lookaside_count[b] = 0;
        }
        return KIND_LFH;
    default:
        if (h->has_lfh && size <= HT_LFH_MAX_BLOCK) {
            if (!by_realloc)
                h->backend_min[b]++;
            h->backend_max[b]++;
        }
        if (size >= HT_LARGE_THRESHOLD)
            return KIND_LARGE;
        if (source == MEMORY_FROM_SLOWPATH &&
            (old_kind == KIND_LARGE || old_kind == KIND_BACKEND_OR_LARGE))
            return KIND_BACKEND_OR_LARGE;
        return KIND_BACKEND;
    }
}

static void check_block_basics(model_heap *h, const model_block *block, const char *what)
{
    CHECK(aligned16(block->ptr), "%s: %p not 16-byte aligned", what, (void *)block->ptr);
    size_t usable = ht_heap_size(h->heap, 0, block->ptr);
    CHECK(usable != SIZE_MAX && usable >= block->requested,
          "%s: ht_heap_size(%p) = %zu, requested %zu", what, (void *)block->ptr, usable,
          block->requested);
    CHECK(usable == block->usable, "%s: usable size of %p changed %zu -> %zu", what,
          (void *)block->ptr, block->usable, usable);
    size_t requested = ht_heap_requested_size(h->heap, block->ptr);
    CHECK(requested == block->requested, "%s: requested_size(%p) = %zu, expected %zu", what,
          (void *)block->ptr, requested, block->requested);
    CHECK(ht_heap_validate(h->heap, 0, block->ptr), "%s: validate(%p) of a live %s block failed",
          what, (void *)block->ptr, kind_names[block->kind]);
}

static void check_contents(const model_block *block, const char *what)
{
    size_t at = pattern_mismatch(block->ptr, block->pattern, block->filled);
    CHECK(at == block->filled, "%s: block %p (%s, %zu bytes) changed at byte %zu", what,
          (void *)block->ptr, kind_names[block->kind], block->requested, at);
}

static void fill_block(rng *r, model_block *block)
{
    block->filled = block->requested;
    if (rng_below(r, 8) == 0 && block->usable <= PATTERN_MAX_BLOCK)
        block->filled = block->usable;
    pattern_fill(block->ptr, block->pattern, block->filled);
}

/* After a failed operation: the handler ran once on heaps with GENERATE_EXCEPTIONS, never on
 * others. */
static void check_handler(model_heap *h, uint64_t calls_before, ht_error error, bool failed)
{
    if (failed && h->exceptions) {
        CHECK(handler_log.calls == calls_before + 1, "failure handler ran %" PRIu64 " times",
              handler_log.calls - calls_before);
        CHECK(handler_log.heap == (void *)h->heap && handler_log.error == error,
              "failure handler got heap %p error %d, expected %p error %d", handler_log.heap,
              (int)handler_log.error, (void *)h->heap, (int)error);
        CHECK(handler_log.context == (void *)&handler_log, "failure handler context");
    } else {
        CHECK(handler_log.calls == calls_before, "failure handler ran on a heap without "
                                                 "GENERATE_EXCEPTIONS or on success");
    }
}

/* ---- operations ------------------------------------------------------------------------------ */

/* Marks every lookaside list of the heap as no longer known exactly. */
static void forget_lookaside(model_heap *h)
{
    for (unsigned b = 0; b < LOOKASIDE_BUCKET_COUNT; b++)
        h->lookaside_exact[b] = false;
}

enum alloc_kind {
    ALLOC_PLAIN,      /* ht_heap_alloc */
    ALLOC_IMPOSSIBLE, /* ht_heap_alloc of a size that cannot be served */
    ALLOC_LARGEST,    /* ht_heap_alloc of what compact called the largest free block */
    ALLOC_ALIGNED,    /* ht_heap_alloc_aligned */
};

static void op_alloc_kind(model *m, model_heap *h, size_t size, enum alloc_kind kind)
{
    char name[128];
    describe_heap(h, name, sizeof name);
    bool impossible = kind == ALLOC_IMPOSSIBLE;
    uint32_t flags = rng_chance(&m->random, 250) ? HT_HEAP_ZERO_MEMORY : 0;
    size_t alignment = (size_t)1 << rng_range(&m->random, 4, 16);
    expectation e = expect_allocation(h, size);
    if (kind == ALLOC_LARGEST) {
        /* heap.h: compact returns the largest block "that could be allocated without growing
         * the heap": it comes from the free lists. */
        e = (expectation){.sources = SRC(MEMORY_FROM_MAINPATH)};
    } else if (kind == ALLOC_ALIGNED && !e.must_fail) {
        /* Which slot an aligned request takes is not specified: any tier of this heap, and
         * this thread's lookaside lists are no longer known exactly. */
        e.sources = (h->front_end ? SRC_FRONTEND : 0) |
                    (size >= HT_LARGE_THRESHOLD ? SRC(MEMORY_FROM_SLOWPATH) : SRC_BACKEND);
        e.top = NULL;
        e.activation = e.backend_exact = false;
        forget_lookaside(h);
    }
    uint64_t calls = handler_log.calls;
    ht_set_last_error(HT_OK);
    uint8_t *p = kind == ALLOC_ALIGNED ? ht_heap_alloc_aligned(h->heap, flags, alignment, size)
                                       : ht_heap_alloc(h->heap, flags, size);
    ht_error error = ht_last_error();
    if (!p) {
        EXPECT_COUNTED(h->heap, &h->counters, HT_OP_ALLOC, SRC(MEMORY_FROM_INVALID),
                       "failed alloc(%zu) on %s", size, name);
        CHECK(e.may_fail || e.must_fail, "alloc(%zu, flags 0x%x) failed on %s", size, flags, name);
        if (h->fixed && !is_impossible(size)) {
            CHECK(error == HT_ERROR_HEAP_FULL, "alloc(%zu) on full %s: error %d, not HEAP_FULL",
                  size, name, (int)error);
            m->stats.heap_full++;
        } else {
            CHECK(error == HT_ERROR_NO_MEMORY || (h->fixed && error == HT_ERROR_HEAP_FULL),
                  "impossible alloc(%zu) on %s: error %d", size, name, (int)error);
        }
        check_handler(h, calls, error, true);
        m->stats.failures++;
        return;
    }
    CHECK(!e.must_fail && !impossible, "alloc(%zu) succeeded on %s: %p", size, name, (void *)p);
    if (kind == ALLOC_ALIGNED)
        CHECK((uintptr_t)p % alignment == 0, "alloc_aligned(%zu, %zu) = %p", alignment, size,
              (void *)p);
    char allowed[96];
    int source = EXPECT_COUNTED(h->heap, &h->counters, HT_OP_ALLOC, e.sources,
                                "alloc(%zu) on %s (allowed %s)", size, name,
                                mask_name(e.sources, allowed, sizeof allowed));
    if (e.top) {
        CHECK(p == e.top, "alloc(%zu) on %s: LOOKASIDE returned %p, the list's top is %p (LIFO)",
              size, name, (void *)p, e.top);
        m->stats.lookaside_lifo++;
    }
    if (e.activation)
        m->stats.activations++;
    if (e.backend_exact)
        m->stats.backend_exact++;
    check_handler(h, calls, HT_OK, false);
    model_block *block = &h->blocks[h->count];
    block->ptr = p;
    block->requested = size;
    block->usable = ht_heap_size(h->heap, 0, p);
    block->pattern = (uint32_t)rng_below(&m->random, PATTERN_WINDOW);
    if (kind == ALLOC_ALIGNED) {
        block->kind = source == MEMORY_FROM_LOWFRAG || source == MEMORY_FROM_LOOKASIDE ? KIND_LFH
                      : source == MEMORY_FROM_MAINPATH ? KIND_BACKEND
                                                       : KIND_BACKEND_OR_LARGE;
        block->bucket = BUCKET_UNKNOWN;
        if (block->kind == KIND_LFH)
            m->stats.aligned_lfh++;
        m->stats.aligned++;
    } else {
        block->kind = note_served(h, size, source, p, false, KIND_BACKEND);
        block->bucket = (uint8_t)(size <= HT_LFH_MAX_BLOCK ? bucket_index(size) : 0);
    }
    if (kind == ALLOC_LARGEST)
        m->stats.largest++;
    block->filled = 0;
    check_block_basics(h, block, "alloc");
    if (flags & HT_HEAP_ZERO_MEMORY) {
        size_t at = first_nonzero(p, 0, size);
        CHECK(at == size, "ZERO_MEMORY alloc(%zu) from %s on %s: byte %zu is 0x%02x", size,
              source_name(source), name, at, p[at]);
        m->stats.zero_checks++;
    }
    if (size >= HT_LARGE_THRESHOLD)
        m->stats.large++;
    fill_block(&m->random, block);
    h->count++;
    h->requested_total += size;
    h->usable_total += block->usable;
    m->stats.allocs++;
}

static void op_alloc(model *m, model_heap *h, size_t size, bool impossible)
{
    op_alloc_kind(m, h, size, impossible ? ALLOC_IMPOSSIBLE : ALLOC_PLAIN);
}

static void remove_block(model_heap *h, size_t index)
{
    h->requested_total -= h->blocks[index].requested;
    h->usable_total -= h->blocks[index].usable;
    h->blocks[index] = h->blocks[--h->count];
}

static void op_free(model *m, model_heap *h, size_t index)
{
    char name[128];
    describe_heap(h, name, sizeof name);
    model_block block = h->blocks[index];
    check_contents(&block, "before free");
    if (rng_chance(&m->random, 100))
        check_block_basics(h, &block, "before free");
    unsigned allowed = expect_free(h, &block);
    ht_set_last_error(HT_OK);
    CHECK(ht_heap_free(h->heap, 0, block.ptr), "free(%p) of a live %s block failed on %s",
          (void *)block.ptr, kind_names[block.kind], name);
    char names[96];
    int source = EXPECT_COUNTED(h->heap, &h->counters, HT_OP_FREE, allowed,
                                "free(%p) of a %s block of %zu bytes on %s (allowed %s)",
                                (void *)block.ptr, kind_names[block.kind], block.requested, name,
                                mask_name(allowed, names, sizeof names));
    if (block.kind == KIND_LFH && h->has_lookaside && block.bucket < LOOKASIDE_BUCKET_COUNT &&
        h->lookaside_exact[block.bucket]) {
        if (source == MEMORY_FROM_LOOKASIDE) {
            h->lookaside[block.bucket][h->lookaside_count[block.bucket]++] = block.ptr;
            m->stats.lookaside_frees++;
        } else {
            m->stats.lookaside_full++;
        }
    }
    if (block.kind == KIND_LFH && block.bucket == BUCKET_UNKNOWN)
        forget_lookaside(h);
    remove_block(h, index);
    m->stats.frees++;
    /* A freed block is no longer the heap's to size (it may sit in a lookaside list, in a
     * free list, or be unmapped). */
    if (rng_chance(&m->random, 250)) {
        CHECK(ht_heap_size(h->heap, 0, block.ptr) == SIZE_MAX,
              "ht_heap_size of freed %s block %p did not fail", kind_names[block.kind],
              (void *)block.ptr);
        CHECK(!ht_heap_validate(h->heap, 0, block.ptr), "validate of freed %s block %p succeeded",
              kind_names[block.kind], (void *)block.ptr);
    }
}

static void op_realloc(model *m, model_heap *h, size_t index, size_t size)
{
    char name[128];
    describe_heap(h, name, sizeof name);
    model_block old = h->blocks[index];
    uint32_t flags = 0;
    if (rng_chance(&m->random, 300))
        flags |= HT_HEAP_ZERO_MEMORY;
    if (rng_chance(&m->random, 120))
        flags |= HT_HEAP_REALLOC_IN_PLACE_ONLY;
    bool in_place_only = (flags & HT_HEAP_REALLOC_IN_PLACE_ONLY) != 0;
    bool impossible = is_impossible(size);
    /* Cases DESIGN.md makes certain: an LFH block whose slot fits and is at most twice the
     * new size stays (LOWFRAG); a back-end block that shrinks stays (MAINPATH). */
    bool must_stay = !impossible && ((old.kind == KIND_LFH && size <= old.usable &&
                                      old.usable + SLOT_SLACK <= 2 * size) ||
                                     (old.kind == KIND_BACKEND && size <= old.requested));
    uint64_t calls = handler_log.calls;
    expectation moved = expect_allocation(h, size);
    ht_set_last_error(HT_OK);
    uint8_t *p = ht_heap_realloc(h->heap, flags, old.ptr, size);
    ht_error error = ht_last_error();
    if (!p) {
        EXPECT_COUNTED(h->heap, &h->counters, HT_OP_REALLOC, SRC(MEMORY_FROM_INVALID),
                       "failed realloc(%p, %zu -> %zu, flags 0x%x) on %s", (void *)old.ptr,
                       old.requested, size, flags, name);
        CHECK(!must_stay,
              "realloc(%s block %p, usable %zu, %zu -> %zu, flags 0x%x) failed on "
              "%s; DESIGN.md keeps it in place",
              kind_names[old.kind], (void *)old.ptr, old.usable, old.requested, size, flags, name);
        if (impossible) {
            CHECK(error == HT_ERROR_NO_MEMORY || error == HT_ERROR_NOT_IN_PLACE ||
                      (h->fixed && error == HT_ERROR_HEAP_FULL),
                  "impossible realloc(%zu) on %s: error %d", size, name, (int)error);
            m->stats.impossible++;
        } else if (in_place_only) {
            CHECK(error == HT_ERROR_NOT_IN_PLACE,
                  "in-place-only realloc(%p, %zu -> %zu) failed with error %d, not NOT_IN_PLACE",
                  (void *)old.ptr, old.requested, size, (int)error);
            m->stats.in_place_failed++;
        } else {
            CHECK(h->fixed && (moved.may_fail || moved.must_fail),
                  "realloc(%p, %zu -> %zu, flags 0x%x) failed on %s", (void *)old.ptr,
                  old.requested, size, flags, name);
            CHECK(error == HT_ERROR_HEAP_FULL, "realloc on full %s: error %d, not HEAP_FULL", name,
                  (int)error);
            m->stats.heap_full++;
        }
        check_handler(h, calls, error, true);
        /* The old block is untouched. */
        check_contents(&old, "after failed realloc");
        check_block_basics(h, &old, "after failed realloc");
        m->stats.failures++;
        return;
    }
    CHECK(!impossible, "realloc to %zu bytes succeeded", size);
    bool in_place = p == old.ptr;
    unsigned allowed;
    if (in_place) {
        switch (old.kind) {
        case KIND_LFH:
            allowed = SRC(MEMORY_FROM_LOWFRAG);
            CHECK(size <= old.usable, "LFH block %p grew in place past its slot (%zu -> %zu)",
                  (void *)p, old.usable, size);
            break;
        case KIND_LARGE: allowed = SRC(MEMORY_FROM_SLOWPATH); break;
        case KIND_BACKEND:
            allowed = size <= old.requested ? SRC(MEMORY_FROM_MAINPATH) : SRC_BACKEND;
            break;
        default: allowed = SRC_BACKEND;
        }
        m->stats.in_place++;
    } else {
        CHECK(!in_place_only, "REALLOC_IN_PLACE_ONLY moved %p to %p", (void *)old.ptr, (void *)p);
        CHECK(!must_stay,
              "realloc of %s block %p (usable %zu) from %zu to %zu moved to %p; "
              "DESIGN.md keeps it in place",
              kind_names[old.kind], (void *)old.ptr, old.usable, old.requested, size, (void *)p);
        allowed = moved.sources;
        if (old.kind == KIND_LARGE || old.kind == KIND_BACKEND_OR_LARGE)
            allowed |= SRC(MEMORY_FROM_SLOWPATH); /* a mapping moved by mremap */
        m->stats.moves++;
    }
    char names[96];
    int source = EXPECT_COUNTED(h->heap, &h->counters, HT_OP_REALLOC, allowed,
                                "realloc(%s block %p, %zu -> %zu, flags 0x%x) -> %p on %s "
                                "(allowed %s)",
                                kind_names[old.kind], (void *)old.ptr, old.requested, size, flags,
                                (void *)p, name, mask_name(allowed, names, sizeof names));
    check_handler(h, calls, HT_OK, false);
    if (!in_place && moved.top && source == MEMORY_FROM_LOOKASIDE) {
        CHECK(p == moved.top, "realloc moved to LOOKASIDE %p, the list's top is %p", (void *)p,
              moved.top);
        m->stats.lookaside_lifo++;
    }
    model_block *block = &h->blocks[index];
    block->ptr = p;
    block->requested = size;
    if (!in_place) {
        block->kind = note_served(h, size, source, p, true, old.kind);
        block->bucket = (uint8_t)(size <= HT_LFH_MAX_BLOCK ? bucket_index(size) : 0);
        /* Then the old block was freed silently, by the rules of a free: an LFH slot of up to
         * 1 KiB goes to this thread's list while it has room. */
        if (old.kind == KIND_LFH && old.bucket == BUCKET_UNKNOWN)
            forget_lookaside(h);
        if (old.kind == KIND_LFH && h->has_lookaside && old.bucket < LOOKASIDE_BUCKET_COUNT &&
            h->lookaside_exact[old.bucket] && h->lookaside_count[old.bucket] < HT_LOOKASIDE_DEPTH)
            h->lookaside[old.bucket][h->lookaside_count[old.bucket]++] = old.ptr;
    } else if (h->has_lfh && size <= HT_LFH_MAX_BLOCK && source != MEMORY_FROM_LOWFRAG) {
        h->backend_max[bucket_index(size)]++; /* in case the heap counts it */
    }
    block->usable = ht_heap_size(h->heap, 0, p);
    size_t kept = old.requested < size ? old.requested : size;
    size_t at = pattern_mismatch(p, old.pattern, kept);
    CHECK(at == kept, "realloc(%p -> %p, %zu -> %zu): byte %zu of the old contents lost",
          (void *)old.ptr, (void *)p, old.requested, size, at);
    if ((flags & HT_HEAP_ZERO_MEMORY) && size > old.filled) {
        at = first_nonzero(p, old.filled, size);
        CHECK(at == size, "ZERO_MEMORY realloc(%p -> %p, %zu -> %zu, %s): grown byte %zu is 0x%02x",
              (void *)old.ptr, (void *)p, old.requested, size, in_place ? "in place" : "moved", at,
              p[at]);
        m->stats.zero_checks++;
    }
    h->requested_total += size - old.requested;
    h->usable_total += block->usable - old.usable;
    check_block_basics(h, block, "realloc");
    fill_block(&m->random, block);
    m->stats.reallocs++;
}

static void op_inspect(model_heap *h, size_t index)
{
    check_block_basics(h, &h->blocks[index], "inspect");
    check_contents(&h->blocks[index], "inspect");
}

/* ---- whole-heap checks ------------------------------------------------------------------------ */

static int compare_blocks(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const model_block *)a)->ptr;
    uintptr_t y = (uintptr_t)((const model_block *)b)->ptr;
    return x < y ? -1 : x > y;
}

static int compare_entries(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const ht_heap_entry *)a)->data;
    uintptr_t y = (uintptr_t)((const ht_heap_entry *)b)->data;
    return x < y ? -1 : x > y;
}

/* Summary, validate, walk == model, contents and per-block checks of one heap. */
static void check_heap(model *m, model_heap *h)
{
    char name[128];
    describe_heap(h, name, sizeof name);
    CHECK(ht_heap_validate(h->heap, 0, NULL), "validate(%s) failed", name);

    ht_heap_summary summary;
    summary_read(h->heap, &summary);
    CHECK(summary.live_blocks == h->count, "%s: summary live_blocks %zu, model %zu", name,
          summary.live_blocks, h->count);
    CHECK(summary.allocated == h->usable_total, "%s: summary allocated %zu, sum of usable %zu",
          name, summary.allocated, h->usable_total);
    CHECK(summary.requested == h->requested_total, "%s: summary requested %zu, model %zu", name,
          summary.requested, h->requested_total);
    if (h->fixed) {
        size_t page = (size_t)sysconf(_SC_PAGESIZE);
        size_t limit = (h->config->maximum + page - 1) / page * page;
        CHECK(summary.committed <= limit, "%s: committed %zu beyond the maximum %zu", name,
              summary.committed, h->config->maximum);
    }

    model_block *sorted = malloc((h->count + 1) * sizeof *sorted);
    CHECK(sorted != NULL, "out of memory");
    memcpy(sorted, h->blocks, h->count * sizeof *sorted);
    qsort(sorted, h->count, sizeof *sorted, compare_blocks);

    ht_heap_entry *entries;
    size_t count = walk_collect(h->heap, &entries);
    qsort(entries, count, sizeof *entries, compare_entries);
    size_t busy = 0;
    const ht_heap_entry *previous = NULL;
    for (size_t i = 0; i < count; i++) {
        const ht_heap_entry *entry = &entries[i];
        if (!entry_is_block(entry))
            continue;
        CHECK(aligned16(entry->data), "%s: walk entry %p not aligned", name, entry->data);
        if (previous) {
            CHECK((uintptr_t)previous->data + previous->size <= (uintptr_t)entry->data,
                  "%s: walk entries %p+%zu and %p overlap", name, previous->data, previous->size,
                  entry->data);
        }
        previous = entry;
        if (!(entry->flags & HT_ENTRY_BUSY))
            continue;
        model_block key = {.ptr = entry->data};
        model_block *block = bsearch(&key, sorted, h->count, sizeof *sorted, compare_blocks);
        CHECK(block != NULL,
              "%s: walk reports busy block %p (%zu bytes, flags 0x%x) the model "
              "does not have",
              name, entry->data, entry->size, entry->flags);
        busy++;
        CHECK(entry->size == block->usable && entry->requested == block->requested,
              "%s: walk entry %p size %zu requested %zu, model usable %zu requested %zu", name,
              entry->data, entry->size, entry->requested, block->usable, block->requested);
        bool lfh = (entry->flags & HT_ENTRY_LFH) != 0, large = (entry->flags & HT_ENTRY_LARGE) != 0;
        CHECK(!(lfh && large), "%s: entry %p both LFH and LARGE", name, entry->data);
        if (block->kind == KIND_BACKEND_OR_LARGE) {
            block->kind = large ? KIND_LARGE : KIND_BACKEND;
            for (size_t j = 0; j < h->count; j++)
                if (h->blocks[j].ptr == block->ptr)
                    h->blocks[j].kind = block->kind;
        }
        CHECK(lfh == (block->kind == KIND_LFH) && large == (block->kind == KIND_LARGE),
              "%s: walk flags 0x%x for a %s block %p", name, entry->flags, kind_names[block->kind],
              entry->data);
        ht_source expected = lfh     ? MEMORY_FROM_LOWFRAG
                             : large ? MEMORY_FROM_SLOWPATH
                                     : MEMORY_FROM_MAINPATH;
        CHECK(entry->source == expected, "%s: walk source %s for a %s block %p", name,
              source_name(entry->source), kind_names[block->kind], entry->data);
    }
    CHECK(busy == h->count, "%s: walk shows %zu busy blocks, model has %zu", name, busy, h->count);
    free(entries);

    for (size_t i = 0; i < h->count; i++) {
        check_block_basics(h, &h->blocks[i], "full check");
        check_contents(&h->blocks[i], "full check");
    }
    free(sorted);
    EXPECT_NOT_COUNTED(h->heap, &h->counters, "%s: size/validate/walk/summary changed counters",
                       name);
    m->stats.full_checks++;
}

/* Every heap, plus no overlap across all live blocks of all heaps and the heap list. */
static void check_all(model *m)
{
    size_t total = 0;
    for (int i = 0; i < MODEL_HEAPS; i++) {
        check_heap(m, &m->heaps[i]);
        total += m->heaps[i].count;
    }
    model_block *all = malloc((total + 1) * sizeof *all);
    CHECK(all != NULL, "out of memory");
    size_t n = 0;
    for (int i = 0; i < MODEL_HEAPS; i++) {
        memcpy(all + n, m->heaps[i].blocks, m->heaps[i].count * sizeof *all);
        n += m->heaps[i].count;
    }
    qsort(all, n, sizeof *all, compare_blocks);
    for (size_t i = 1; i < n; i++) {
        CHECK((uintptr_t)all[i - 1].ptr + all[i - 1].usable <= (uintptr_t)all[i].ptr,
              "live blocks overlap: %p (+%zu) and %p", (void *)all[i - 1].ptr, all[i - 1].usable,
              (void *)all[i].ptr);
    }
    free(all);

    ht_heap *list[64];
    size_t heaps = ht_process_heaps(list, 64);
    CHECK(heaps >= MODEL_HEAPS + 1 && heaps <= 64, "ht_process_heaps = %zu", heaps);
    for (int i = 0; i < MODEL_HEAPS; i++) {
        bool found = false;
        for (size_t j = 0; j < heaps; j++)
            found |= list[j] == m->heaps[i].heap;
        CHECK(found, "heap %p missing from ht_process_heaps", (void *)m->heaps[i].heap);
    }
}

/* ---- heap life ------------------------------------------------------------------------------- */

static void heap_open(model *m, model_heap *h, const heap_config *config)
{
    model_block *blocks = h->blocks;
    memset(h, 0, sizeof *h);
    h->blocks = blocks;
    h->config = config;
    h->serial = m->next_serial++;
    h->heap = heap_create_checked(config->flags, config->initial, config->maximum);
    h->fixed = config->maximum != 0;
    h->front_end = !h->fixed && !(config->flags & HT_HEAP_NO_SERIALIZE);
    h->exceptions = (config->flags & HT_HEAP_GENERATE_EXCEPTIONS) != 0;
    CHECK(query_u32(h->heap, HT_HEAP_COMPATIBILITY_INFORMATION) == (h->front_end ? 1u : 0u),
          "new heap '%s': COMPATIBILITY is not %d", config->name, h->front_end ? 1 : 0);
    h->lfh_mode = h->front_end ? 1 : 0;
    if (config->lfh >= 0) {
        uint32_t value = (uint32_t)config->lfh;
        bool ok = ht_heap_set_information(h->heap, HT_HEAP_COMPATIBILITY_INFORMATION, &value,
                                          sizeof value);
        if (h->front_end) {
            CHECK(ok, "set COMPATIBILITY %u on '%s' failed", value, config->name);
            h->lfh_mode = config->lfh;
        } else if (value != 0) {
            CHECK(!ok, "'%s' accepted COMPATIBILITY %u", config->name, value);
        }
    }
    CHECK(query_u32(h->heap, HT_HEAP_COMPATIBILITY_INFORMATION) == (uint32_t)h->lfh_mode,
          "heap '%s': COMPATIBILITY query is not %d", config->name, h->lfh_mode);
    if (config->lookaside == 0 && h->front_end)
        set_lookaside(h->heap, 0);
    h->has_lookaside = h->front_end && config->lookaside != 0;
    CHECK(query_u32(h->heap, HT_HEAP_LOOKASIDE_INFORMATION) == (h->has_lookaside ? 1u : 0u),
          "heap '%s': LOOKASIDE query is not %d", config->name, h->has_lookaside);
    h->has_lfh = h->lfh_mode != 0;
    for (unsigned b = 0; b < LOOKASIDE_BUCKET_COUNT; b++)
        h->lookaside_exact[b] = true;
    ht_heap_summary summary;
    summary_read(h->heap, &summary);
    CHECK(summary.committed >= config->initial && summary.live_blocks == 0,
          "new heap '%s': committed %zu of initial %zu, %zu live blocks", config->name,
          summary.committed, config->initial, summary.live_blocks);
    counters_read(h->heap, &h->counters);
    for (int o = 0; o < HT_OP_COUNT; o++)
        CHECK(counters_total(&h->counters, o) == 0, "new heap '%s' has %s counts", config->name,
              op_name(o));
}

static void heap_close(model *m, model_heap *h)
{
    check_heap(m, h);
    ht_heap *heap = h->heap;
    CHECK(ht_heap_destroy(heap), "destroy of heap '%s' failed", h->config->name);
    ht_heap *list[64];
    size_t heaps = ht_process_heaps(list, 64);
    for (size_t j = 0; j < heaps && j < 64; j++) {
        /* A new heap may take the same address once it is created; none was (the process
         * heap, created lazily, exists since the run began). */
        CHECK(list[j] != heap, "destroyed heap %p still in ht_process_heaps", (void *)heap);
    }
    h->heap = NULL;
    h->count = 0;
}

static void heap_drain(model *m, model_heap *h)
{
    while (h->count > 0)
        op_free(m, h, (size_t)rng_below(&m->random, h->count));
}

/* ---- the run ---------------------------------------------------------------------------------- */

static void run_model(uint64_t seed, uint64_t ops)
{
    model *m = calloc(1, sizeof *m);
    CHECK(m != NULL, "out of memory");
    context_set("model", seed);
    CHECK(ht_process_heap() != NULL, "no process heap");
    m->seed = seed;
    rng_seed(&m->random, seed);
    for (int i = 0; i < MODEL_HEAPS; i++) {
        m->heaps[i].blocks = malloc(MAX_BLOCKS * sizeof(model_block));
        CHECK(m->heaps[i].blocks != NULL, "out of memory");
        heap_open(m, &m->heaps[i], &configs[i]);
    }
    ht_failure_handler previous = ht_set_failure_handler(record_failure, &handler_log);

    for (uint64_t op = 0; op < ops; op++) {
        current_context.op = op;
        model_heap *h = &m->heaps[rng_below(&m->random, MODEL_HEAPS)];
        bool crowded = h->count >= MAX_BLOCKS - 1 || (!h->fixed && h->usable_total > HEAP_BUDGET);
        uint64_t x = rng_below(&m->random, 10000);
        if (h->count == 0)
            x = 0;
        if (crowded && x < 4400)
            x = 5000; /* free instead of allocating */
        if (x < 4400) {
            op_alloc(m, h, random_size(&m->random), false);
        } else if (x < 7600) {
            op_free(m, h, (size_t)rng_below(&m->random, h->count));
        } else if (x < 9500) {
            size_t index = (size_t)rng_below(&m->random, h->count);
            size_t size = random_size(&m->random);
            if (rng_chance(&m->random, 150)) { /* near the old size: in-place cases */
                size_t old = h->blocks[index].requested;
                size = old + (size_t)rng_range(&m->random, 0, 64) - (old >= 32 ? 32 : 0);
            }
            op_realloc(m, h, index, size);
        } else if (x < 9750) {
            op_inspect(h, (size_t)rng_below(&m->random, h->count));
        } else if (x < 9800) {
            CHECK(ht_heap_free(h->heap, 0, NULL), "free(NULL) failed");
            EXPECT_NOT_COUNTED(h->heap, &h->counters, "free(NULL) was counted");
        } else if (x < 9840) {
            op_alloc(m, h, impossible_sizes[rng_below(&m->random, IMPOSSIBLE_SIZE_COUNT)], true);
            m->stats.impossible++;
        } else if (x < 9870) {
            op_realloc(m, h, (size_t)rng_below(&m->random, h->count),
                       impossible_sizes[rng_below(&m->random, IMPOSSIBLE_SIZE_COUNT)]);
        } else if (x < 9930) {
            if (!(h->config->flags & HT_HEAP_NO_SERIALIZE) && !crowded) {
                CHECK(ht_heap_lock(h->heap), "lock failed");
                CHECK(ht_heap_lock(h->heap), "recursive lock failed");
                op_alloc(m, h, random_size(&m->random), false);
                CHECK(ht_heap_unlock(h->heap), "unlock failed");
                CHECK(ht_heap_unlock(h->heap), "unlock failed");
            }
        } else if (x < 9945) {
            size_t largest = ht_heap_compact(h->heap, 0);
            /* Compaction may flush this thread's lookaside lists. */
            forget_lookaside(h);
            check_heap(m, h);
            if (largest > 0 && largest < HT_LARGE_THRESHOLD && h->count < MAX_BLOCKS - 1 &&
                (largest > HT_LFH_MAX_BLOCK || !h->has_lfh))
                op_alloc_kind(m, h, largest, ALLOC_LARGEST);
        } else if (x < 9950) {
            heap_drain(m, h);
            check_heap(m, h);
        } else if (x < 9990) {
            if (!crowded && (!h->has_lfh || h->lfh_mode == 2))
                op_alloc_kind(m, h, random_size(&m->random), ALLOC_ALIGNED);
        } else if (x < 9995) {
            heap_close(m, h);
            heap_open(m, h, &configs[rng_below(&m->random, CONFIG_COUNT)]);
            m->stats.recreated++;
        } else {
            op_alloc(m, h, random_size(&m->random), false);
        }
        if ((op + 1) % check_every == 0)
            check_all(m);
    }

    check_all(m);
    for (int i = 0; i < MODEL_HEAPS; i++) {
        heap_drain(m, &m->heaps[i]);
        ht_heap_summary summary;
        summary_read(m->heaps[i].heap, &summary);
        CHECK(summary.allocated == 0 && summary.requested == 0 && summary.live_blocks == 0,
              "drained heap: allocated %zu requested %zu live %zu", summary.allocated,
              summary.requested, summary.live_blocks);
    }
    check_all(m);
    for (int i = 0; i < MODEL_HEAPS; i++)
        heap_close(m, &m->heaps[i]);
    CHECK(ht_set_failure_handler(previous, NULL) == record_failure, "failure handler was replaced");
    m->stats.handler_calls = handler_log.calls;

    model_stats *s = &m->stats;
    if (options.verbose) {
        printf("seed %" PRIu64 ": %" PRIu64 " allocs, %" PRIu64 " frees, %" PRIu64
               " reallocs (%" PRIu64 " in place, %" PRIu64 " moved), %" PRIu64 " failures\n"
               "  lookaside LIFO %" PRIu64 ", lookaside frees %" PRIu64 ", full %" PRIu64
               ", activations %" PRIu64 ", back end by counter %" PRIu64 "\n"
               "  heap full %" PRIu64 ", in-place-only refused %" PRIu64 ", zero checks %" PRIu64
               ", large %" PRIu64 ", impossible %" PRIu64 ", handler %" PRIu64
               ", recreated %" PRIu64 ", full checks %" PRIu64 "\n"
               "  aligned %" PRIu64 " (%" PRIu64 " LFH), compact's largest block %" PRIu64 "\n",
               seed, s->allocs, s->frees, s->reallocs, s->in_place, s->moves, s->failures,
               s->lookaside_lifo, s->lookaside_frees, s->lookaside_full, s->activations,
               s->backend_exact, s->heap_full, s->in_place_failed, s->zero_checks, s->large,
               s->impossible, s->handler_calls, s->recreated, s->full_checks, s->aligned,
               s->aligned_lfh, s->largest);
    }
    /* The run exercised what it claims to check (long enough runs only). */
    if (ops >= 20000) {
        CHECK(s->lookaside_lifo > 0 && s->lookaside_frees > 0 && s->activations > 0 &&
                  s->backend_exact > 0 && s->heap_full > 0 && s->in_place_failed > 0 &&
                  s->zero_checks > 0 && s->large > 0 && s->moves > 0 && s->in_place > 0 &&
                  s->handler_calls > 0 && s->aligned > 0 && s->largest > 0,
              "coverage: lifo %" PRIu64 " la-frees %" PRIu64 " activations %" PRIu64
              " backend %" PRIu64 " full %" PRIu64 " in-place-refused %" PRIu64 " zero %" PRIu64
              " large %" PRIu64 " moves %" PRIu64 " in-place %" PRIu64 " handler %" PRIu64
              " aligned %" PRIu64 " largest %" PRIu64,
              s->lookaside_lifo, s->lookaside_frees, s->activations, s->backend_exact, s->heap_full,
              s->in_place_failed, s->zero_checks, s->large, s->moves, s->in_place, s->handler_calls,
              s->aligned, s->largest);
    }
    for (int i = 0; i < MODEL_HEAPS; i++)
        free(m->heaps[i].blocks);
    free(m);
}

static void test_model_seed(void **state)
{
    uint64_t seed = *(const uint64_t *)*state;
    run_model(seed, options.ops);
}

int main(int argc, char **argv)
{
    /* --check-every is this binary's own option; take it out before the shared parser. */
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--check-every") == 0 && i + 1 < argc) {
            check_every = parse_count(argv[++i], "--check-every");
            if (check_every == 0)
                check_every = 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argc = kept;
    parse_options(argc, argv, &options, usage);
    if (options.seeds == 0)
        options.seeds = options.seed_given ? 1 : 3;

    enum { MAX_SEEDS = 256 };
    if (options.seeds > MAX_SEEDS)
        options.seeds = MAX_SEEDS;
    static uint64_t seeds[MAX_SEEDS];
    static char names[MAX_SEEDS][48];
    static struct CMUnitTest tests[MAX_SEEDS];
    for (unsigned i = 0; i < options.seeds; i++) {
        seeds[i] = options.seed + i;
        snprintf(names[i], sizeof names[i], "model_seed_%" PRIu64, seeds[i]);
        tests[i] = (struct CMUnitTest){names[i], test_model_seed, NULL, NULL, &seeds[i]};
    }
    printf("test_heap_model: %u seed(s) from %" PRIu64 ", %" PRIu64 " ops each, full check "
           "every %" PRIu64 " ops\n",
           options.seeds, options.seed, options.ops, check_every);
    return _cmocka_run_group_tests("heap_model", tests, options.seeds, NULL, NULL);
}
