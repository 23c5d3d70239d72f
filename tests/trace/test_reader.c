/* test_reader.c — the format's building blocks and the reader's robustness: varints, CRC-32C,
 * the event encoding round trip (including unaligned and extreme values), the table records, the
 * HEADER and the preamble through format.h's encoders and decoders, truncation at every chunk
 * boundary and at random cut points (reads up to the last whole chunk, never fails), corrupted
 * bytes (an error naming the offset, never a crash), newer versions rejected, compressed
 * chunks. */
#include <errno.h>

#include "trace/format.h"
#include "trace_test.h"

static void test_varint_and_crc(void **state)
{
    (void)state;
    uint64_t values[] = {0,         1, 127, 128, 300, 16383, 16384, UINT32_MAX, (uint64_t)1 << 63,
                         UINT64_MAX};
    uint8_t buffer[16];
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        uint8_t *end = hti_put_varint(buffer, values[i]);
        hti_cursor c = hti_cursor_make(buffer, (size_t)(end - buffer));
        assert_int_equal(hti_get_varint(&c), values[i]);
        assert_true(c.ok);
        assert_ptr_equal(c.p, end);
        /* one byte short fails cleanly */
        c = hti_cursor_make(buffer, (size_t)(end - buffer) - 1);
        hti_get_varint(&c);
        if (end - buffer > 1)
            assert_false(c.ok);
    }
    /* 11 continuation bytes: too long */
    uint8_t bad[11];
    memset(bad, 0xFF, sizeof bad);
    hti_cursor c = hti_cursor_make(bad, sizeof bad);
    hti_get_varint(&c);
    assert_false(c.ok);
    hti_crc32c_init();
    assert_int_equal(hti_crc32c("123456789", 9), 0xE3069283u); /* the standard check value */
    assert_int_equal(hti_crc32c("", 0), 0);
}

/* Every record of the table chunks and the HEADER through format.h's one encoder and decoder:
 * what goes in comes out, and every cut short of the whole record is -EBADMSG. */
static void test_table_records(void **state)
{
    (void)state;
    uint8_t buffer[HTI_STACK_RECORD_MAX(4) + HTI_STRING_RECORD_MAX(5) + HTI_MODULE_RECORD_MAX +
                   HTI_CLOCK_RECORD_MAX];
    const uint64_t frames[4] = {0x7f0000401234u, 0x7f0000401000u, 0x400000u, UINT64_MAX};
    hti_string_record string = {7, (const uint8_t *)"libc.", 5};
    hti_module_record module = {0x7f0000000000u, 0x7f0000001000u, 0x20000u, 7, 3, {1, 2, 3}};
    hti_clock_record clock = {UINT64_MAX, 123456789u};
    uint8_t *p = hti_put_stack_record(buffer, 3, frames, 4);
    p = hti_put_string_record(p, &string);
    p = hti_put_module_record(p, &module);
    p = hti_put_clock_record(p, &clock);
    size_t whole = (size_t)(p - buffer);
    for (size_t size = 0; size <= whole; size++) {
        hti_cursor c = hti_cursor_make(buffer, size);
        hti_stack_record stack;
        uint64_t got[4];
        hti_string_record s2;
        hti_module_record m2;
        hti_clock_record k2;
        int error = hti_get_stack_record(&c, &stack);
        if (error == 0)
            error = hti_get_stack_frames(&c, stack.depth, got);
        if (error == 0)
            error = hti_get_string_record(&c, &s2);
        if (error == 0)
            error = hti_get_module_record(&c, &m2);
        if (error == 0)
            error = hti_get_clock_record(&c, &k2);
        if (size < whole) {
            assert_int_equal(error, -EBADMSG);
            continue;
        }
        assert_int_equal(error, 0);
        assert_ptr_equal(c.p, buffer + whole);
        assert_int_equal(stack.id, 3);
        assert_int_equal(stack.depth, 4);
        assert_memory_equal(got, frames, sizeof frames);
        assert_int_equal(s2.id, 7);
        assert_int_equal(s2.length, 5);
        assert_memory_equal(s2.bytes, "libc.", 5);
        assert_int_equal(m2.load_address, module.load_address);
        assert_int_equal(m2.start, module.start);
        assert_int_equal(m2.size, module.size);
        assert_int_equal(m2.string_id, 7);
        assert_int_equal(m2.build_id_size, 3);
        assert_memory_equal(m2.build_id, module.build_id, 3);
        assert_int_equal(k2.ticks, clock.ticks);
        assert_int_equal(k2.ns, clock.ns);
    }
    /* Stack id 0, a depth above the limit or above the bytes left. */
    uint8_t bad[HTI_STACK_RECORD_MAX(1)];
    hti_stack_record stack;
    hti_cursor c = hti_cursor_make(bad, (size_t)(hti_put_stack_record(bad, 0, frames, 1) - bad));
    assert_int_equal(hti_get_stack_record(&c, &stack), -EBADMSG);
    p = hti_put_varint(hti_put_varint(bad, 1), HTI_STACK_DEPTH_MAX + 1);
    c = hti_cursor_make(bad, (size_t)(p - bad));
    assert_int_equal(hti_get_stack_record(&c, &stack), -EBADMSG);
    p = hti_put_varint(hti_put_varint(bad, 1), 2);
    *p++ = 0;
    c = hti_cursor_make(bad, (size_t)(p - bad));
    assert_int_equal(hti_get_stack_record(&c, &stack), -EBADMSG);

    /* The HEADER: every field back, and the range checks. */
    uint8_t body[HTI_HEADER_FIXED_MAX + 16];
    hti_header in = {
        .pid = 4242,
        .pointer_size = 8,
        .clock_id = 1,
        .tick_kind = HTI_TICKS_TSC,
        .ticks_per_second = 3000000000u,
        .start_realtime_ns = 1,
        .start_ns = 2,
        .start_ticks = 3,
        .program = (const uint8_t *)"/bin/x",
        .program_length = 6,
        .command_line = (const uint8_t *)"x\0-y",
        .command_line_length = 4,
        .mode = 2,
        .stack_depth = 64,
        .sample_interval = 4096,
        .event_mask = 5,
        .heap_filter = 6,
        .min_size = 7,
        .max_size = 8,
        .buffer_size = 1u << 20,
        .compression_level = 3,
    };
    size_t length = hti_header_encode(body, &in);
    hti_header out;
    assert_int_equal(hti_header_decode(body, length, &out), 0);
    assert_int_equal(out.pid, 4242);
    assert_int_equal(out.tick_kind, HTI_TICKS_TSC);
    assert_int_equal(out.ticks_per_second, 3000000000u);
    assert_int_equal(out.start_ticks, 3);
    assert_int_equal(out.program_length, 6);
    assert_memory_equal(out.program, "/bin/x", 6);
    assert_int_equal(out.command_line_length, 4);
    assert_memory_equal(out.command_line, "x\0-y", 4);
    assert_int_equal(out.mode, 2);
    assert_int_equal(out.stack_depth, 64);
    assert_int_equal(out.max_size, 8);
    assert_int_equal(out.compression_level, 3);
    for (size_t size = 0; size < length; size++)
        assert_int_equal(hti_header_decode(body, size, &out), -EBADMSG);
    hti_header wrong = in;
    wrong.mode = 3;
    assert_int_equal(hti_header_decode(body, hti_header_encode(body, &wrong), &out), -EBADMSG);
    wrong = in;
    wrong.ticks_per_second = 0;
    assert_int_equal(hti_header_decode(body, hti_header_encode(body, &wrong), &out), -EBADMSG);
    wrong = in;
    wrong.stack_depth = HTI_STACK_DEPTH_MAX + 1;
    assert_int_equal(hti_header_decode(body, hti_header_encode(body, &wrong), &out), -EBADMSG);

    /* The preamble: this writer's version back, another magic refused. */
    uint8_t preamble_bytes[HTI_PREAMBLE_SIZE];
    hti_preamble preamble;
    hti_preamble_encode(preamble_bytes);
    assert_int_equal(hti_preamble_decode(preamble_bytes, &preamble), 0);
    assert_int_equal(preamble.version_major, HTI_VERSION_MAJOR);
    assert_int_equal(preamble.version_minor, HTI_VERSION_MINOR);
    preamble_bytes[1] ^= 1;
    assert_int_equal(hti_preamble_decode(preamble_bytes, &preamble), -EBADMSG);
}

static void test_event_encoding(void **state)
{
    (void)state;
    /* Build a stream by hand, as the hooks do, and decode it. */
    uint8_t buffer[4096];
    uint8_t *p = buffer;
    uint64_t addresses[] =
        {0x7f0000001000u, 0x7f0000001010u, 0x7f0000000ff0u, 0x13, UINT64_MAX - 7, 0, 0x10};
    uint64_t previous = 0;
    for (size_t i = 0; i < sizeof addresses / sizeof *addresses; i++) {
        *p++ = (uint8_t)(HTI_OP_ALLOC | MEMORY_FROM_LOWFRAG | (i == 0 ? HTI_OP_HEAP : 0));
        p = hti_put_varint(p, i * 1000);
        if (i == 0)
            p = hti_put_varint(p, 0xABCDEF);
        p = hti_put_varint(p, i == 4 ? UINT64_MAX : i);
        p = hti_put_address(p, addresses[i], previous);
        previous = addresses[i];
    }
    hti_stream_state st = {5, 0, 0};
    hti_cursor c = hti_cursor_make(buffer, (size_t)(p - buffer));
    ht_event e[16];
    const uint8_t *bad = NULL;
    long n = hti_decode_events(&c, &st, 42, e, 16, &bad);
    assert_int_equal(n, sizeof addresses / sizeof *addresses);
    uint64_t ticks = 5;
    for (long i = 0; i < n; i++) {
        ticks += (uint64_t)i * 1000;
        assert_int_equal(e[i].kind, HT_EVENT_ALLOC);
        assert_int_equal(e[i].timestamp_ns, ticks);
        assert_int_equal(e[i].thread_id, 42);
        assert_int_equal(e[i].u.alloc.HeapHandle, 0xABCDEF);
        assert_int_equal(e[i].u.alloc.Address, addresses[i]);
        assert_int_equal(e[i].u.alloc.Size, i == 4 ? UINT64_MAX : (uint64_t)i);
        assert_int_equal(e[i].u.alloc.Source, MEMORY_FROM_LOWFRAG);
    }
    /* Every truncation of the stream fails cleanly or stops at an event boundary. */
    for (size_t cut = 0; cut < (size_t)(p - buffer); cut++) {
        hti_stream_state s2 = {5, 0, 0};
        c = hti_cursor_make(buffer, cut);
        hti_decode_events(&c, &s2, 42, e, 16, &bad);
    }
    /* A reserved class is an error pointing at its byte. */
    buffer[0] = 0xE0;
    c = hti_cursor_make(buffer, (size_t)(p - buffer));
    st = (hti_stream_state){0, 0, 0};
    assert_int_equal(hti_decode_events(&c, &st, 1, e, 16, &bad), -EBADMSG);
    assert_ptr_equal(bad, buffer);
}

/* ---- a real trace to cut and corrupt ---- */

static uint8_t *trace_bytes;
static size_t trace_size;
static long full_count;

static void make_trace(const char *path, int compression)
{
    ht_heap *heap = ht_heap_create(0, 0, 0);
    ht_trace_options o;
    ht_trace_options_init(&o);
    o.output_path = path;
    o.flush_interval_ms = 1;
    o.stack_depth = 4;
    o.unwinder = HT_TRACE_UNWIND_FRAME_POINTER;
    o.compression_level = compression;
    assert_int_equal(ht_trace_start(&o), 0);
    void *keep[64];
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 64; i++)
            keep[i] = ht_heap_alloc(heap, 0, (size_t)(round * 64 + i) % 3000 + 1);
        for (int i = 0; i < 64; i++)
            ht_heap_free(heap, 0, keep[i]);
        ht_trace_flush(); /* many small chunks, continuations inside a fill */
    }
    assert_int_equal(ht_trace_stop(), 0);
    ht_heap_destroy(heap);
}

static uint8_t *load_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc((size_t)n + 1);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return data;
}

/* Events read from a memory image; -1 if opening or reading failed. */
static long count_events(const uint8_t *data, size_t size, ht_trace_info *info, char *error,
                         size_t error_size)
{
    ht_reader *r = ht_reader_open_memory(data, size, error, error_size);
    if (!r)
        return -1;
    if (info)
        *info = *ht_reader_info(r);
    static ht_event e[512];
    long n, total = 0;
    int guard = 0;
    while ((n = ht_reader_read(r, e, 512)) > 0 && guard++ < 1000000)
        total += n;
    if (n < 0) {
        snprintf(error, error_size, "%s", ht_reader_error(r));
        total = -1;
    }
    ht_reader_close(r);
    return total;
}

static int setup_trace(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "reader");
    make_trace(path, 0);
    trace_bytes = load_file(path, &trace_size);
    unlink(path);
    return 0;
}

static int teardown_trace(void **state)
{
    (void)state;
    free(trace_bytes);
    return 0;
}

static void test_truncation(void **state)
{
    (void)state;
    char error[256];
    ht_trace_info info;
    long full = count_events(trace_bytes, trace_size, &info, error, sizeof error);
    assert_true(full >= 5120 && full <= 5120 + 64); /* and the rundown, heap expansions */
    full_count = full;
    assert_true(info.complete);
    assert_false(info.truncated);
    assert_true(info.event_chunks > 20);
    /* Every chunk boundary: reads without warning up to there. */
    size_t boundaries = 0, header_end = 0;
    long previous = 0;
    for (size_t offset = HTI_PREAMBLE_SIZE; offset + HTI_CHUNK_HEADER_SIZE <= trace_size;) {
        hti_chunk_header h;
        const char *why;
        assert_int_equal(hti_chunk_header_decode(trace_bytes + offset, &h, &why), 0);
        offset += HTI_CHUNK_HEADER_SIZE + h.meta_length + h.body_length;
        if (!header_end)
            header_end = offset;
        long n = count_events(trace_bytes, offset, &info, error, sizeof error);
        if (n < 0)
            fail_msg("cut at %zu: %s", offset, error);
        assert_false(info.truncated);
        assert_int_equal(info.valid_size, offset);
        assert_true(n >= previous);
        previous = n;
        boundaries++;
    }
    assert_int_equal(previous, full);
    assert_true(boundaries > 20);
    /* Random cuts after the header chunk: a warning, never an error, never more than the
     * whole. (A trace cut inside its header chunk has nothing to read: an error.) */
    uint64_t rng = 7;
    for (int i = 0; i < 300; i++) {
        size_t cut = header_end + (size_t)(rng_next(&rng) % (trace_size - header_end));
        long n = count_events(trace_bytes, cut, &info, error, sizeof error);
        if (n < 0)
            fail_msg("cut at %zu: %s", cut, error);
        assert_true(n <= full);
        assert_true(info.valid_size <= cut);
    }
    /* Too short to be a trace: an error. */
    assert_int_equal(count_events(trace_bytes, 10, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "preamble"));
}

static void test_corruption(void **state)
{
    (void)state;
    uint8_t *copy = malloc(trace_size);
    assert_non_null(copy);
    char error[256];
    uint64_t rng = 11;
    int errors = 0;
    for (int i = 0; i < 400; i++) {
        memcpy(copy, trace_bytes, trace_size);
        size_t at = HTI_PREAMBLE_SIZE + (size_t)(rng_next(&rng) % (trace_size - HTI_PREAMBLE_SIZE));
        copy[at] ^= (uint8_t)(1u << (rng_next(&rng) % 8));
        error[0] = '\0';
        long n = count_events(copy, trace_size, NULL, error, sizeof error);
        if (n < 0) {
            errors++;
            if (!strstr(error, "offset"))
                fail_msg("flip at %zu: error without an offset: %s", at, error);
        }
    }
    assert_true(errors > 300); /* checksums catch nearly every flip */
    /* A newer major version is refused. */
    memcpy(copy, trace_bytes, trace_size);
    copy[8] = 2;
    assert_int_equal(count_events(copy, trace_size, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "version"));
    memcpy(copy, trace_bytes, trace_size);
    copy[0] = 'X';
    assert_int_equal(count_events(copy, trace_size, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "magic"));
    free(copy);
}

static void test_compressed(void **state)
{
    (void)state;
    char path[256];
    temp_path(path, sizeof path, "zstd");
    make_trace(path, 3);
    size_t size;
    uint8_t *data = load_file(path, &size);
    char error[256];
    ht_trace_info info;
    long n = count_events(data, size, &info, error, sizeof error);
    if (n < 0)
        fail_msg("%s", error);
    assert_int_equal(n, full_count);
    assert_true(size < trace_size);
    free(data);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_and_crc), cmocka_unit_test(test_event_encoding),
        cmocka_unit_test(test_table_records),  cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_corruption),     cmocka_unit_test(test_compressed),
    };
    return cmocka_run_group_tests(tests, setup_trace, teardown_trace);
}
