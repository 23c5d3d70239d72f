/* test_footer.c — the footer's summary (FORMAT.md §10): the live blocks and bytes it gives equal
 * the heaps' own at the stop, sampled or filtered or not, and equal the live set the events
 * leave when nothing is left out; its peak committed equals the highest sum of the heaps'
 * committed bytes that RUNDOWN_HEAP, EXPAND and CONTRACT events trace; its counts equal the
 * file's. Footers of older writers (clock pair, or clock pair and counts) still read, with the
 * missing groups flagged absent; a footer cut inside a group, or with a bad varint, is an error
 * naming its offset. */
#include <errno.h>

#include "trace/format.h"
#include "trace_test.h"

/* ---- a session with known heap work ---- */

typedef struct heaps_total {
    uint64_t live_blocks, requested, committed;
} heaps_total;

static heaps_total heaps_now(void)
{
    ht_heap *heaps[64];
    size_t count = ht_process_heaps(heaps, 64);
    assert_true(count <= 64);
    heaps_total total = {0, 0, 0};
    for (size_t i = 0; i < count; i++) {
        ht_heap_summary s;
        assert_true(ht_heap_summary_get(heaps[i], 0, &s));
        total.live_blocks += s.live_blocks;
        total.requested += s.requested;
        total.committed += s.committed;
    }
    return total;
}

/* Heap work whose committed memory rises and falls: back-end blocks that grow the segments,
 * large blocks mapped on their own and unmapped, a heap created and destroyed. Leaves some
 * blocks of every tier live in `heap`. */
static void heap_work(ht_heap *heap)
{
    static void *blocks[600];
    uint64_t rng = 5;
    for (int i = 0; i < 600; i++)
        blocks[i] = ht_heap_alloc(heap, 0, random_size(&rng));
    void *large[4];
    for (int i = 0; i < 4; i++)
        large[i] = ht_heap_alloc(heap, 0, (size_t)(1u << 20) + (size_t)i * 4096);
    for (int i = 0; i < 4; i++)
        ht_heap_free(heap, 0, large[i]);
    ht_heap *other = ht_heap_create(0, 1u << 20, 0);
    assert_non_null(other);
    for (int i = 0; i < 50; i++)
        assert_non_null(ht_heap_alloc(other, 0, 30000));
    assert_true(ht_heap_destroy(other));
    for (int i = 0; i < 600; i += 2) {
        ht_heap_free(heap, 0, blocks[i]);
        blocks[i] = NULL;
    }
    for (int i = 1; i < 600; i += 6)
        blocks[i] = ht_heap_realloc(heap, 0, blocks[i], 5000);
    assert_non_null(ht_heap_alloc(heap, 0, 700000)); /* large, live at the end */
}

typedef struct replay {
    uint64_t events, live_blocks, live_bytes, peak_committed;
} replay;

/* The live set by the rundown rule, and the highest sum of the heaps' committed bytes. */
static replay replay_trace(const char *path, ht_trace_info *info)
{
    char error[256];
    ht_reader *r = ht_reader_open(path, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    *info = *ht_reader_info(r);
    model m;
    model_init(&m);
    uint64_t heaps[64] = {0}, committed[64] = {0};
    uint64_t sum = 0, peak = 0;
    static ht_event e[512];
    long n;
    while ((n = ht_reader_read(r, e, 512)) > 0) {
        for (long i = 0; i < n; i++) {
            model_apply(&m, &e[i]);
            uint64_t heap = 0, now = 0;
            switch (e[i].kind) {
            case HT_EVENT_RUNDOWN_HEAP:
                heap = e[i].u.rundown_heap.HeapHandle;
                now = e[i].u.rundown_heap.Committed;
                break;
            case HT_EVENT_HEAP_EXPAND:
            case HT_EVENT_HEAP_CONTRACT:
                heap = e[i].u.heap_resize.HeapHandle;
                now = e[i].u.heap_resize.CommittedAfter;
                break;
            default: continue;
            }
            size_t slot = 0;
            while (slot < 64 && heaps[slot] && heaps[slot] != heap)
                slot++;
            assert_true(slot < 64);
            heaps[slot] = heap;
            sum = sum - committed[slot] + now;
            committed[slot] = now;
            if (sum > peak)
                peak = sum;
        }
    }
    if (n < 0)
        fail_msg("%s", ht_reader_error(r));
    ht_reader_close(r);
    replay out = {m.events, 0, 0, peak};
    for (size_t i = 0; i < m.capacity; i++) {
        if (m.slots[i].address > 1) {
            out.live_blocks++;
            out.live_bytes += m.slots[i].size;
        }
    }
    model_free(&m);
    return out;
}

/* Records heap_work under options (output set here), checks the footer against the heaps and
 * returns the trace's info and replay, and the heaps' committed bytes at the stop. */
static replay record(const char *name, ht_trace_options *o, ht_trace_info *info,
                     uint64_t *committed)
{
    char path[256];
    temp_path(path, sizeof path, name);
    o->output_path = path;
    ht_heap *heap = ht_heap_create(0, 0, 0);
    assert_non_null(heap);
    void *before = ht_heap_alloc(heap, 0, 77); /* live at the start: in the rundown */
    assert_non_null(before);
    assert_int_equal(ht_trace_start(o), 0);
    heap_work(heap);
    heaps_total end = heaps_now(); /* nothing allocates from here to the stop */
    assert_int_equal(ht_trace_stop(), 0);
    replay r = replay_trace(path, info);
    unlink(path);
    assert_true(info->complete);
    assert_true(info->footer_counts);
    assert_int_equal(info->footer_events, info->events);
    assert_int_equal(info->footer_lost, 0);
    assert_true(info->end_state);
    assert_false(info->stopped_at_exit);
    assert_int_equal(info->end_live_blocks, end.live_blocks);
    assert_int_equal(info->end_live_bytes, end.requested);
    assert_true(info->peak_committed >= end.committed);
    *committed = end.committed;
    assert_true(ht_heap_destroy(heap));
    return r;
}

static void test_end_state_plain(void **state)
{
    (void)state;
    ht_trace_options o;
    ht_trace_options_init(&o);
    ht_trace_info info;
    uint64_t committed;
    replay r = record("footer-plain", &o, &info, &committed);
    /* Everything was recorded: the events leave the footer's live set, and trace its peak. */
    assert_int_equal(r.live_blocks, info.end_live_blocks);
    assert_int_equal(r.live_bytes, info.end_live_bytes);
    assert_int_equal(r.peak_committed, info.peak_committed);
    assert_true(info.end_live_blocks > 300);
    /* The large blocks and the second heap came and went: the peak is above the end. */
    assert_true(info.peak_committed >= committed + (1u << 20));
}

static void test_end_state_sampled(void **state)
{
    (void)state;
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.sample_interval = 1u << 20; /* most small allocations are not recorded */
    ht_trace_info info;
    uint64_t committed;
    replay r = record("footer-sampled", &o, &info, &committed);
    assert_true(r.live_blocks < info.end_live_blocks); /* the events cannot tell; the footer can */
    assert_int_equal(r.peak_committed, info.peak_committed); /* heap events are not sampled */
}

static void test_end_state_filtered(void **state)
{
    (void)state;
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.event_mask = HT_EVENT_BIT(HT_EVENT_ALLOC) | HT_EVENT_BIT(HT_EVENT_FREE); /* no heap events */
    ht_trace_info info;
    uint64_t committed;
    replay r = record("footer-filtered", &o, &info, &committed);
    /* Only the rundown says what was committed, at the start; the footer has the peak. */
    assert_true(r.peak_committed < info.peak_committed);
    assert_true(info.peak_committed >= committed + (1u << 20));
}

/* ---- older and damaged footers ---- */

static uint8_t *trace_bytes;
static size_t trace_size, footer_offset;

static int setup(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "footer");
    ht_heap *heap = ht_heap_create(0, 0, 0);
    start_session(path, HT_TRACE_MODE_BLOCK);
    for (int i = 0; i < 100; i++)
        ht_heap_alloc(heap, 0, (size_t)i * 10 + 1);
    assert_int_equal(ht_trace_stop(), 0);
    ht_heap_destroy(heap);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    trace_size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    trace_bytes = malloc(trace_size);
    assert_non_null(trace_bytes);
    assert_int_equal(fread(trace_bytes, 1, trace_size, f), trace_size);
    fclose(f);
    unlink(path);
    /* The footer is the last chunk. */
    footer_offset = 0;
    for (size_t at = HTI_PREAMBLE_SIZE; at + HTI_CHUNK_HEADER_SIZE <= trace_size;) {
        hti_chunk_header h;
        const char *why;
        assert_int_equal(hti_chunk_header_decode(trace_bytes + at, &h, &why), 0);
        if (h.type == HTI_CHUNK_FOOTER)
            footer_offset = at;
        at += HTI_CHUNK_HEADER_SIZE + h.meta_length + h.body_length;
    }
    assert_true(footer_offset > 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(trace_bytes);
    return 0;
}

/* The trace with its footer's body replaced (and checksummed again); opened from memory.
 * Returns the reader or NULL with the error in error. */
static ht_reader *open_with_footer(const uint8_t *body, size_t length, uint8_t **image, char *error,
                                   size_t error_size)
{
    hti_chunk_header h;
    const char *why;
    assert_int_equal(hti_chunk_header_decode(trace_bytes + footer_offset, &h, &why), 0);
    size_t tail = footer_offset + HTI_CHUNK_HEADER_SIZE + h.meta_length + h.body_length;
    size_t size = footer_offset + HTI_CHUNK_HEADER_SIZE + length + (trace_size - tail);
    *image = malloc(size);
    assert_non_null(*image);
    memcpy(*image, trace_bytes, footer_offset);
    hti_chunk_header nh = {HTI_CHUNK_FOOTER, 0, 0, (uint32_t)length, (uint32_t)length, 0};
    hti_chunk_header_encode(*image + footer_offset, &nh, NULL, body);
    memcpy(*image + footer_offset + HTI_CHUNK_HEADER_SIZE, body, length);
    memcpy(*image + footer_offset + HTI_CHUNK_HEADER_SIZE + length, trace_bytes + tail,
           trace_size - tail);
    return ht_reader_open_memory(*image, size, error, error_size);
}

static long read_all(ht_reader *r)
{
    static ht_event e[512];
    long n, total = 0;
    while ((n = ht_reader_read(r, e, 512)) > 0)
        total += n;
    return n < 0 ? n : total;
}

static void test_new_footer_reads(void **state)
{
    (void)state;
    ht_reader *r = ht_reader_open_memory(trace_bytes, trace_size, NULL, 0);
    assert_non_null(r);
    const ht_trace_info *info = ht_reader_info(r);
    assert_true(info->complete && info->footer_counts && info->end_state);
    assert_true(info->end_live_blocks >= 100); /* the heap was destroyed after the stop */
    assert_true(info->peak_committed > 0);
    long events = read_all(r);
    assert_int_equal((uint64_t)events, info->events);
    assert_int_equal(info->footer_events, info->events);
    ht_reader_close(r);
}

static void test_older_footers(void **state)
{
    (void)state;
    hti_footer f = {HTI_FOOTER_END_STATE, 1000, 2000, 7, 3, 9, HTI_FOOTER_AT_EXIT, 11, 12, 13};
    uint8_t body[HTI_FOOTER_MAX + 8];
    char error[256];
    uint8_t *image;
    /* Clock pair and counts: the footer of the writers before the end state. */
    f.parts = HTI_FOOTER_COUNTS;
    ht_reader *r = open_with_footer(body, hti_footer_encode(body, &f), &image, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    assert_true(ht_reader_info(r)->complete);
    assert_true(ht_reader_info(r)->footer_counts);
    assert_int_equal(ht_reader_info(r)->footer_lost, 3);
    assert_int_equal(ht_reader_info(r)->footer_events, 7);
    assert_false(ht_reader_info(r)->end_state);
    assert_true(read_all(r) > 100);
    ht_reader_close(r);
    free(image);
    /* The clock pair only: a crash flush's footer. */
    f.parts = HTI_FOOTER_CLOCK;
    r = open_with_footer(body, hti_footer_encode(body, &f), &image, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    assert_true(ht_reader_info(r)->complete);
    assert_false(ht_reader_info(r)->footer_counts);
    assert_false(ht_reader_info(r)->end_state);
    assert_true(read_all(r) > 100);
    ht_reader_close(r);
    free(image);
    /* Every group, then fields of a later minor version: those are skipped. */
    f.parts = HTI_FOOTER_END_STATE;
    size_t length = hti_footer_encode(body, &f);
    body[length++] = 0x85;
    body[length++] = 0x01;
    r = open_with_footer(body, length, &image, error, sizeof error);
    if (!r)
        fail_msg("%s", error);
    const ht_trace_info *info = ht_reader_info(r);
    assert_true(info->end_state && info->stopped_at_exit);
    assert_int_equal(info->end_live_blocks, 11);
    assert_int_equal(info->end_live_bytes, 12);
    assert_int_equal(info->peak_committed, 13);
    ht_reader_close(r);
    free(image);
}

static void test_damaged_footers(void **state)
{
    (void)state;
    hti_footer f = {HTI_FOOTER_END_STATE, 1000, 2000, 7, 3, 9, 0, 11, 12, 13};
    uint8_t body[HTI_FOOTER_MAX];
    size_t whole = hti_footer_encode(body, &f);
    char error[256], expected[64];
    snprintf(expected, sizeof expected, "malformed footer at offset %zu", footer_offset);
    uint8_t *image;
    /* Cut inside each group but the first's end (where a shorter footer ends): every length
     * that is not 2, 5 or 9 varints long. Here each varint above is one or two bytes. */
    size_t boundaries[3];
    f.parts = HTI_FOOTER_CLOCK;
    boundaries[0] = hti_footer_encode(body, &f);
    f.parts = HTI_FOOTER_COUNTS;
    boundaries[1] = hti_footer_encode(body, &f);
    f.parts = HTI_FOOTER_END_STATE;
    boundaries[2] = hti_footer_encode(body, &f);
    assert_int_equal(boundaries[2], whole);
    int refused = 0;
    for (size_t cut = 0; cut < whole; cut++) {
        if (cut == boundaries[0] || cut == boundaries[1])
            continue;
        error[0] = '\0';
        ht_reader *r = open_with_footer(body, cut, &image, error, sizeof error);
        if (r)
            fail_msg("a footer cut at byte %zu of %zu was accepted", cut, whole);
        assert_int_equal(errno, EBADMSG);
        assert_string_equal(error, expected);
        free(image);
        refused++;
    }
    assert_true(refused >= 6);
    /* A varint longer than ten bytes in the end state. */
    uint8_t bad[HTI_FOOTER_MAX + 16];
    memcpy(bad, body, boundaries[1]);
    memset(bad + boundaries[1], 0xFF, 11);
    memset(bad + boundaries[1] + 11, 0x01, 4);
    ht_reader *r = open_with_footer(bad, boundaries[1] + 15, &image, error, sizeof error);
    assert_null(r);
    assert_string_equal(error, expected);
    free(image);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_end_state_plain),    cmocka_unit_test(test_end_state_sampled),
        cmocka_unit_test(test_end_state_filtered), cmocka_unit_test(test_new_footer_reads),
        cmocka_unit_test(test_older_footers),      cmocka_unit_test(test_damaged_footers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
