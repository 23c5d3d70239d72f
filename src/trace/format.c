/* format.c — the out-of-line half of the trace format: varint and chunk decoding, CRC-32C, the
 * encoders and decoders of the HEADER, EVENTS meta, FOOTER, and STACKS, STRINGS, MODULES, CLOCK and
 * LOST records, and the event decoder shared by the reader and the real-time consumer.
 *
 * Invariant: no function here reads outside [cursor.p, cursor.end) or allocates; malformed
 * input yields -EBADMSG (and a pointer to the bad byte), never a crash or a loop that does not
 * advance. The CRC table is built once (hti_crc32c_init) before any session or reader uses it. */
#include "format.h"

#include "heaptrail/trace.h"

#include <errno.h>
#include <pthread.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

/* ---- varints ---- */

uint64_t hti_get_varint_slow(hti_cursor *c)
{
    uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->ok = false;
            return 0;
        }
        uint8_t byte = *c->p++;
        if (shift == 63 && byte > 1) { /* more than 64 bits */
            c->ok = false;
            return 0;
        }
        value |= (uint64_t)(byte & 0x7Fu) << shift;
        if (byte < 0x80u)
            return value;
    }
    c->ok = false;
    return 0;
}

const uint8_t *hti_get_bytes(hti_cursor *c, size_t *length, size_t max_length)
{
    uint64_t n = hti_get_varint(c);
    if (!c->ok || n > max_length || n > (uint64_t)(c->end - c->p)) {
        c->ok = false;
        *length = 0;
        return NULL;
    }
    const uint8_t *bytes = c->p;
    c->p += n;
    *length = (size_t)n;
    return bytes;
}

/* ---- CRC-32C ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hardware;

static void crc_build(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
        crc_table[0][i] = crc;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                              crc_table[0][crc_table[t - 1][i] & 0xFFu];
#if defined(__x86_64__)
    __builtin_cpu_init();
    crc_hardware = __builtin_cpu_supports("sse4.2");
#endif
}

void hti_crc32c_init(void)
{
    pthread_once(&crc_once, crc_build);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const uint8_t *p,
                                                            size_t n)
{
    uint64_t c = crc;
    while (n >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--)
        c32 = _mm_crc32_u8(c32, *p++);
    return c32;
}
#endif

static uint32_t crc_software(uint32_t crc, const uint8_t *p, size_t n)
{
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xFFu];
    return crc;
}

uint32_t hti_crc32c_update(uint32_t crc, const void *data, size_t size)
{
    if (size == 0)
        return crc;
#if defined(__x86_64__)
    if (crc_hardware)
        return crc_sse42(crc, (const uint8_t *)data, size);
#endif
    return crc_software(crc, (const uint8_t *)data, size);
}

/* ---- framing ---- */

void hti_preamble_encode(uint8_t out[HTI_PREAMBLE_SIZE])
{
    memcpy(out, HTI_MAGIC, HTI_MAGIC_SIZE);
    hti_put_u16(out + 8, HTI_VERSION_MAJOR);
    hti_put_u16(out + 10, HTI_VERSION_MINOR);
    hti_put_u32(out + 12, 0);
}

int hti_preamble_decode(const uint8_t in[HTI_PREAMBLE_SIZE], hti_preamble *preamble)
{
    if (memcmp(in, HTI_MAGIC, HTI_MAGIC_SIZE) != 0)
        return -EBADMSG;
    preamble->version_major = hti_get_u16(in + 8);
    preamble->version_minor = hti_get_u16(in + 10);
    preamble->flags = hti_get_u32(in + 12);
    return 0;
}

uint32_t hti_chunk_crc(const uint8_t in[HTI_CHUNK_HEADER_SIZE], const void *meta,
                       size_t meta_length, const void *body, size_t body_length)
{
    uint32_t crc = hti_crc32c_update(0xFFFFFFFFu, in, 12);
    crc = hti_crc32c_update(crc, meta, meta_length);
    crc = hti_crc32c_update(crc, body, body_length);
    return crc ^ 0xFFFFFFFFu;
}

void hti_chunk_header_encode(uint8_t out[HTI_CHUNK_HEADER_SIZE], const hti_chunk_header *header,
                             const void *meta, const void *body)
{
    out[0] = header->type;
    out[1] = header->flags;
    hti_put_u16(out + 2, header->meta_length);
    hti_put_u32(out + 4, header->body_length);
    hti_put_u32(out + 8, header->raw_length);
    hti_put_u32(out + 12, hti_chunk_crc(out, meta, header->meta_length, body, header->body_length));
}

int hti_chunk_header_decode(const uint8_t in[HTI_CHUNK_HEADER_SIZE], hti_chunk_header *header,
                            const char **why)
{
    header->type = in[0];
    header->flags = in[1];
    header->meta_length = hti_get_u16(in + 2);
    header->body_length = hti_get_u32(in + 4);
    header->raw_length = hti_get_u32(in + 8);
    header->crc = hti_get_u32(in + 12);
    if (header->type < HTI_CHUNK_HEADER || header->type > HTI_CHUNK_TYPE_MAX) {
        *why = "bad chunk type";
        return -EBADMSG;
    }
    if (header->flags & ~HTI_CHUNK_FLAG_ZSTD) {
        *why = "unknown chunk flags";
        return -EBADMSG;
    }
    if (header->meta_length > HTI_CHUNK_META_MAX) {
        *why = "chunk meta too long";
        return -EBADMSG;
    }
    if (header->body_length > HTI_CHUNK_BODY_MAX || header->raw_length > HTI_CHUNK_BODY_MAX) {
        *why = "chunk body too long";
        return -EBADMSG;
    }
    if (!(header->flags & HTI_CHUNK_FLAG_ZSTD) && header->raw_length != header->body_length) {
        *why = "raw length differs from stored length of an uncompressed chunk";
        return -EBADMSG;
    }
    return 0;
}

/* ---- HEADER ---- */

static uint8_t *put_string(uint8_t *p, const uint8_t *bytes, size_t length)
{
    p = hti_put_varint(p, length);
    if (length)
        memcpy(p, bytes, length);
    return p + length;
}

size_t hti_header_encode(uint8_t *out, const hti_header *header)
{
    uint8_t *p = out;
    p = hti_put_varint(p, header->pid);
    p = hti_put_varint(p, header->pointer_size);
    p = hti_put_varint(p, header->clock_id);
    p = hti_put_varint(p, header->tick_kind);
    p = hti_put_varint(p, header->ticks_per_second);
    p = hti_put_varint(p, header->start_realtime_ns);
    p = hti_put_varint(p, header->start_ns);
    p = hti_put_varint(p, header->start_ticks);
    p = put_string(p, header->program, header->program_length);
    p = put_string(p, header->command_line, header->command_line_length);
    p = hti_put_varint(p, header->mode);
    p = hti_put_varint(p, header->stack_depth);
    p = hti_put_varint(p, header->sample_interval);
    p = hti_put_varint(p, header->event_mask);
    p = hti_put_varint(p, header->heap_filter);
    p = hti_put_varint(p, header->min_size);
    p = hti_put_varint(p, header->max_size);
    p = hti_put_varint(p, header->buffer_size);
    p = hti_put_varint(p, header->compression_level);
    return (size_t)(p - out);
}

int hti_header_decode(const void *data, size_t size, hti_header *header)
{
    hti_cursor c = hti_cursor_make(data, size);
    uint64_t pid = hti_get_varint(&c);
    uint64_t pointer_size = hti_get_varint(&c);
    uint64_t clock_id = hti_get_varint(&c);
    uint64_t tick_kind = hti_get_varint(&c);
    header->ticks_per_second = hti_get_varint(&c);
    header->start_realtime_ns = hti_get_varint(&c);
    header->start_ns = hti_get_varint(&c);
    header->start_ticks = hti_get_varint(&c);
    header->program = hti_get_bytes(&c, &header->program_length, HTI_STRING_MAX);
    header->command_line = hti_get_bytes(&c, &header->command_line_length, HTI_COMMAND_LINE_MAX);
    uint64_t mode = hti_get_varint(&c);
    uint64_t depth = hti_get_varint(&c);
    header->sample_interval = hti_get_varint(&c);
    header->event_mask = hti_get_varint(&c);
    header->heap_filter = hti_get_varint(&c);
    header->min_size = hti_get_varint(&c);
    header->max_size = hti_get_varint(&c);
    header->buffer_size = hti_get_varint(&c);
    header->compression_level = hti_get_varint(&c);
    if (!c.ok || pid > UINT32_MAX || pointer_size > 64 || clock_id > 64 ||
        tick_kind > HTI_TICKS_TSC || mode > HT_TRACE_MODE_RING || depth > HTI_STACK_DEPTH_MAX ||
        (tick_kind == HTI_TICKS_TSC && header->ticks_per_second == 0))
        return -EBADMSG;
    header->pid = (uint32_t)pid;
    header->pointer_size = (uint32_t)pointer_size;
    header->clock_id = (uint32_t)clock_id;
    header->tick_kind = (uint32_t)tick_kind;
    header->mode = (uint32_t)mode;
    header->stack_depth = (uint32_t)depth;
    return 0;
}

/* ---- EVENTS meta ---- */

size_t hti_events_meta_encode(uint8_t *out, const hti_events_meta *meta)
{
    uint8_t *p = out;
    p = hti_put_varint(p, meta->thread_id);
    p = hti_put_varint(p, meta->flags);
    p = hti_put_varint(p, meta->fill_seq);
    p = hti_put_varint(p, meta->offset);
    p = hti_put_varint(p, meta->event_count);
    p = hti_put_varint(p, meta->base_ticks);
    p = hti_put_varint(p, meta->stream_id);
    return (size_t)(p - out);
}

int hti_events_meta_decode(const void *data, size_t size, hti_events_meta *meta)
{
    hti_cursor c = hti_cursor_make(data, size);
    uint64_t tid = hti_get_varint(&c);
    uint64_t flags = hti_get_varint(&c);
    meta->fill_seq = hti_get_varint(&c);
    meta->offset = hti_get_varint(&c);
    meta->event_count = hti_get_varint(&c);
    meta->base_ticks = hti_get_varint(&c);
    meta->stream_id = hti_get_varint(&c);
    if (!c.ok || tid > UINT32_MAX || flags > UINT32_MAX ||
        meta->offset > HTI_CHUNK_BODY_MAX * 64ull)
        return -EBADMSG;
    meta->thread_id = (uint32_t)tid;
    meta->flags = (uint32_t)flags;
    return 0;
}

/* ---- footer ---- */

/* The FOOTER's fields in their order, and where each group ends (FORMAT.md §10): the one
 * spelling of the groups, for the encoder and the decoder. */
static const unsigned footer_group_end[] = {
    [HTI_FOOTER_CLOCK] = 2,
    [HTI_FOOTER_COUNTS] = 5,
    [HTI_FOOTER_END_STATE] = HTI_FOOTER_FIELDS,
};

static void footer_fields(hti_footer *f, uint64_t *fields[HTI_FOOTER_FIELDS])
{
    uint64_t *in_order[HTI_FOOTER_FIELDS] = {
        &f->end_ticks, &f->end_ns,      &f->events,     &f->lost,           &f->chunks,
        &f->flags,     &f->live_blocks, &f->live_bytes, &f->peak_committed,
    };
    memcpy(fields, in_order, sizeof in_order);
}

size_t hti_footer_encode(uint8_t *out, const hti_footer *footer)
{
    hti_footer copy = *footer;
    uint64_t *fields[HTI_FOOTER_FIELDS];
    footer_fields(&copy, fields);
    /* Group 1 always; parts past the last known group write every group. */
    unsigned parts = footer->parts;
    if (parts < HTI_FOOTER_CLOCK)
        parts = HTI_FOOTER_CLOCK;
    if (parts > HTI_FOOTER_END_STATE)
        parts = HTI_FOOTER_END_STATE;
    uint8_t *p = out;
    for (unsigned i = 0; i < footer_group_end[parts]; i++)
        p = hti_put_varint(p, *fields[i]);
    return (size_t)(p - out);
}

int hti_footer_decode(const void *data, size_t size, hti_footer *footer)
{
    memset(footer, 0, sizeof *footer);
    uint64_t *fields[HTI_FOOTER_FIELDS];
    footer_fields(footer, fields);
    hti_cursor c = hti_cursor_make(data, size);
    unsigned i = 0;
    for (unsigned group = HTI_FOOTER_CLOCK; group <= HTI_FOOTER_END_STATE; group++) {
        /* The first group is required; a later one starts only where bytes are left, and once
         * started it must be whole. */
        if (group > HTI_FOOTER_CLOCK && c.p == c.end)
            return 0;
        for (; i < footer_group_end[group]; i++)
            *fields[i] = hti_get_varint(&c);
        if (!c.ok)
            return -EBADMSG;
        footer->parts = group;
    }
    return 0;
}

/* ---- LOST records ---- */

void hti_get_lost_event_fields(hti_cursor *c, uint64_t ticks, uint32_t thread_id,
                               hti_lost_record *lost)
{
    uint64_t count = hti_get_varint(c);
    uint64_t first_back = hti_get_varint(c);
    uint64_t last_back = hti_get_varint(c);
    uint64_t reason = hti_get_varint(c);
    if (first_back > ticks || last_back > first_back || reason > UINT32_MAX)
        c->ok = false;
    lost->thread_id = thread_id;
    lost->reason = (uint32_t)reason;
    lost->count = count;
    lost->first_ticks = ticks - first_back;
    lost->last_ticks = ticks - last_back;
}

int hti_get_lost_event(hti_cursor *c, uint64_t previous_ticks, uint32_t thread_id,
                       hti_lost_record *lost)
{
    if (c->end - c->p < 2 || c->p[0] != HTI_OP_EXT || c->p[1] != HT_EVENT_LOST)
        return -ENOMSG;
    c->p += 2;
    uint64_t ticks = previous_ticks + hti_get_varint(c);
    hti_get_lost_event_fields(c, ticks, thread_id, lost);
    return c->ok ? 0 : -EBADMSG;
}

int hti_get_lost_record(hti_cursor *c, hti_lost_record *lost)
{
    uint64_t thread_id = hti_get_varint(c);
    uint64_t reason = hti_get_varint(c);
    lost->count = hti_get_varint(c);
    lost->first_ticks = hti_get_varint(c);
    lost->last_ticks = hti_get_varint(c);
    lost->thread_id = (uint32_t)thread_id;
    lost->reason = (uint32_t)reason;
    if (!c->ok || thread_id > UINT32_MAX || reason > UINT32_MAX)
        return -EBADMSG;
    return 0;
}

void hti_lost_to_event(const hti_lost_record *lost, ht_event *e)
{
    e->u.lost.Count = lost->count;
    e->u.lost.FirstTimestamp = lost->first_ticks;
    e->u.lost.LastTimestamp = lost->last_ticks;
    e->u.lost.LostThread = lost->thread_id;
    e->u.lost.Reason = lost->reason;
}

/* ---- table records ---- */

uint8_t *hti_put_stack_record(uint8_t *p, uint32_t id, const uint64_t *frames, uint32_t depth)
{
    p = hti_put_varint(p, id);
    p = hti_put_varint(p, depth);
    uint64_t previous = 0;
    for (uint32_t i = 0; i < depth; i++) {
        uint64_t frame = frames[i];
        p = hti_put_varint(p, i == 0 ? frame : hti_zigzag((int64_t)(frame - previous)));
        previous = frame;
    }
    return p;
}

int hti_get_stack_record(hti_cursor *c, hti_stack_record *stack)
{
    uint64_t id = hti_get_varint(c);
    uint64_t depth = hti_get_varint(c);
    if (!c->ok || id == 0 || id > UINT32_MAX || depth > HTI_STACK_DEPTH_MAX ||
        depth > (uint64_t)(c->end - c->p)) {
        c->ok = false;
        return -EBADMSG;
    }
    stack->id = (uint32_t)id;
    stack->depth = (uint32_t)depth;
    return 0;
}

int hti_get_stack_frames(hti_cursor *c, uint32_t depth, uint64_t *frames)
{
    uint64_t previous = 0;
    for (uint32_t i = 0; i < depth; i++) {
        uint64_t v = hti_get_varint(c);
        uint64_t frame = i == 0 ? v : previous + (uint64_t)hti_unzigzag(v);
        frames[i] = frame;
        previous = frame;
    }
    return c->ok ? 0 : -EBADMSG;
}

uint8_t *hti_put_string_record(uint8_t *p, const hti_string_record *string)
{
    p = hti_put_varint(p, string->id);
    p = hti_put_varint(p, string->length);
    if (string->length)
        memcpy(p, string->bytes, string->length);
    return p + string->length;
}

int hti_get_string_record(hti_cursor *c, hti_string_record *string)
{
    uint64_t id = hti_get_varint(c);
    string->bytes = hti_get_bytes(c, &string->length, HTI_STRING_MAX);
    string->id = (uint32_t)id;
    if (!c->ok || id > UINT32_MAX) {
        c->ok = false;
        return -EBADMSG;
    }
    return 0;
}

uint8_t *hti_put_module_record(uint8_t *p, const hti_module_record *module)
{
    p = hti_put_varint(p, module->load_address);
    p = hti_put_varint(p, module->start);
    p = hti_put_varint(p, module->size);
    p = hti_put_varint(p, module->string_id);
    p = hti_put_varint(p, module->build_id_size);
    memcpy(p, module->build_id, module->build_id_size);
    return p + module->build_id_size;
}

int hti_get_module_record(hti_cursor *c, hti_module_record *module)
{
    module->load_address = hti_get_varint(c);
    module->start = hti_get_varint(c);
    module->size = hti_get_varint(c);
    uint64_t string_id = hti_get_varint(c);
    size_t n;
    const uint8_t *id = hti_get_bytes(c, &n, HTI_BUILD_ID_MAX);
    if (!c->ok || string_id > UINT32_MAX) {
        c->ok = false;
        return -EBADMSG;
    }
    module->string_id = (uint32_t)string_id;
    module->build_id_size = (uint32_t)n;
    memcpy(module->build_id, id, n);
    return 0;
}

uint8_t *hti_put_clock_record(uint8_t *p, const hti_clock_record *clock)
{
    p = hti_put_varint(p, clock->ticks);
    return hti_put_varint(p, clock->ns);
}

int hti_get_clock_record(hti_cursor *c, hti_clock_record *clock)
{
    clock->ticks = hti_get_varint(c);
    clock->ns = hti_get_varint(c);
    return c->ok ? 0 : -EBADMSG;
}

/* ---- event decoding ---- */

static inline uint64_t get_address(hti_cursor *c, uint64_t previous)
{
    uint64_t v = hti_get_varint(c);
    uint64_t delta = (uint64_t)hti_unzigzag(v >> 1) << 4;
    if (v & 1u) {
        if (c->p >= c->end || *c->p == 0 || *c->p > 15) {
            c->ok = false;
            return 0;
        }
        delta |= *c->p++;
    }
    return previous + delta;
}

/* The event kind of opcode `op` (class EXT: the byte that follows). False for an unknown class;
 * a kind byte cut short clears c->ok. */
static inline bool decode_kind(hti_cursor *c, uint8_t op, unsigned *kind)
{
    switch (op & ~(HTI_OP_SOURCE_MASK | HTI_OP_HEAP | HTI_OP_STACK)) {
    case HTI_OP_ALLOC: *kind = HT_EVENT_ALLOC; return true;
    case HTI_OP_FREE: *kind = HT_EVENT_FREE; return true;
    case HTI_OP_REALLOC: *kind = HT_EVENT_REALLOC; return true;
    case HTI_OP_EXT:
        if (c->p >= c->end) {
            c->ok = false;
            *kind = 0;
        } else {
            *kind = *c->p++;
        }
        return true;
    default: return false;
    }
}

/* The part every event has after its opcode: the ticks delta, the heap if the opcode says it
 * changed, the stack id if it has one; fills e's common fields. */
static inline void decode_head(hti_cursor *c, uint8_t op, unsigned kind, uint32_t thread_id,
                               hti_stream_state *state, ht_event *e)
{
    state->ticks += hti_get_varint(c);
    if (op & HTI_OP_HEAP)
        state->heap = hti_get_varint(c);
    uint64_t stack = 0;
    if (op & HTI_OP_STACK) {
        stack = hti_get_varint(c);
        if (stack == 0 || stack > UINT32_MAX)
            c->ok = false;
    }
    e->timestamp_ns = state->ticks;
    e->thread_id = thread_id;
    e->kind = (uint16_t)kind;
    e->flags = 0;
    e->stack_id = (uint32_t)stack;
    e->reserved = 0;
    e->weight = 1.0;
}

/* The fields of an event of `kind` (FORMAT.md §5), after its head; the address deltas advance
 * state->address. Clears c->ok for an unknown kind or a malformed field. */
static inline void decode_fields(hti_cursor *c, unsigned kind, uint32_t source, uint32_t thread_id,
                                 hti_stream_state *state, ht_event *e)
{
    uint64_t ticks = state->ticks, address = state->address, heap = state->heap;
    switch (kind) {
    case HT_EVENT_ALLOC:
        e->u.alloc.HeapHandle = heap;
        e->u.alloc.Size = hti_get_varint(c);
        address = get_address(c, address);
        e->u.alloc.Address = address;
        e->u.alloc.Source = source;
        break;
    case HT_EVENT_FREE:
        e->u.free.HeapHandle = heap;
        address = get_address(c, address);
        e->u.free.Address = address;
        e->u.free.Source = source;
        break;
    case HT_EVENT_REALLOC:
        e->u.realloc.HeapHandle = heap;
        address = get_address(c, address);
        e->u.realloc.NewAddress = address;
        e->u.realloc.OldAddress = get_address(c, address);
        e->u.realloc.NewSize = hti_get_varint(c);
        e->u.realloc.OldSize = hti_get_varint(c);
        e->u.realloc.Source = source;
        break;
    case HT_EVENT_HEAP_CREATE: {
        e->u.heap_create.HeapHandle = heap;
        uint64_t flags = hti_get_varint(c);
        e->u.heap_create.Flags = (uint32_t)flags;
        e->u.heap_create.InitialSize = hti_get_varint(c);
        e->u.heap_create.MaximumSize = hti_get_varint(c);
        if (flags > UINT32_MAX)
            c->ok = false;
        break;
    }
    case HT_EVENT_HEAP_DESTROY: e->u.heap_destroy.HeapHandle = heap; break;
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT:
        e->u.heap_resize.HeapHandle = heap;
        e->u.heap_resize.Bytes = hti_get_varint(c);
        e->u.heap_resize.CommittedAfter = hti_get_varint(c);
        break;
    case HT_EVENT_RUNDOWN_HEAP: {
        e->flags = HT_EVENT_FLAG_RUNDOWN;
        e->u.rundown_heap.HeapHandle = heap;
        e->u.rundown_heap.Reserved = hti_get_varint(c);
        e->u.rundown_heap.Committed = hti_get_varint(c);
        e->u.rundown_heap.LiveBlocks = hti_get_varint(c);
        uint64_t compat = hti_get_varint(c);
        e->u.rundown_heap.Compatibility = (uint32_t)compat;
        if (compat > UINT32_MAX)
            c->ok = false;
        break;
    }
    case HT_EVENT_RUNDOWN_BLOCK:
        e->flags = HT_EVENT_FLAG_RUNDOWN;
        e->u.rundown_block.HeapHandle = heap;
        e->u.rundown_block.Size = hti_get_varint(c);
        e->u.rundown_block.UsableSize = hti_get_varint(c);
        address = get_address(c, address);
        e->u.rundown_block.Address = address;
        e->u.rundown_block.Source = source;
        break;
    case HT_EVENT_LEAK_SCAN: {
        e->flags = HT_EVENT_FLAG_RUNDOWN;
        uint64_t flags = hti_get_varint(c), threads = hti_get_varint(c);
        uint64_t stopped = hti_get_varint(c);
        e->u.leak_scan.LiveBlocks = hti_get_varint(c);
        e->u.leak_scan.Unreachable = hti_get_varint(c);
        e->u.leak_scan.Flags = (uint32_t)flags;
        e->u.leak_scan.Threads = (uint32_t)threads;
        e->u.leak_scan.ThreadsStopped = (uint32_t)stopped;
        if (flags > UINT32_MAX || threads > UINT32_MAX || stopped > threads ||
            e->u.leak_scan.Unreachable > e->u.leak_scan.LiveBlocks)
            c->ok = false;
        break;
    }
    case HT_EVENT_UNREACHABLE_BLOCK: {
        e->flags = HT_EVENT_FLAG_RUNDOWN;
        e->u.unreachable_block.HeapHandle = heap;
        address = get_address(c, address);
        e->u.unreachable_block.Address = address;
        uint64_t leak_class = hti_get_varint(c);
        e->u.unreachable_block.Class = (uint32_t)leak_class;
        if (leak_class != HT_LEAK_DEFINITE && leak_class != HT_LEAK_INDIRECT)
            c->ok = false;
        break;
    }
    case HT_EVENT_LOST: {
        hti_lost_record lost;
        hti_get_lost_event_fields(c, ticks, thread_id, &lost);
        hti_lost_to_event(&lost, e);
        break;
    }
    default: c->ok = false; break;
    }
    state->address = address;
}

long hti_decode_events(hti_cursor *c, hti_stream_state *state, uint32_t thread_id, ht_event *out,
                       size_t max, const uint8_t **bad)
{
    size_t n = 0;
    /* A local copy, written back once: the events decoded so far stay the state's. */
    hti_stream_state now = *state;
    while (n < max && c->p < c->end) {
        const uint8_t *start = c->p;
        uint8_t op = *c->p++;
        unsigned kind;
        ht_event *e = &out[n];
        if (!decode_kind(c, op, &kind)) {
            *bad = start;
            return -EBADMSG;
        }
        decode_head(c, op, kind, thread_id, &now, e);
        decode_fields(c, kind, op & HTI_OP_SOURCE_MASK, thread_id, &now, e);
        if (!c->ok) {
            *bad = start;
            return -EBADMSG;
        }
        n++;
    }
    *state = now;
    return (long)n;
}

/* ---- names ---- */

const char *ht_event_kind_name(unsigned kind)
{
    switch (kind) {
    case HT_EVENT_HEAP_CREATE: return "HEAP_CREATE";
    case HT_EVENT_ALLOC: return "ALLOC";
    case HT_EVENT_REALLOC: return "REALLOC";
    case HT_EVENT_HEAP_DESTROY: return "HEAP_DESTROY";
    case HT_EVENT_FREE: return "FREE";
    case HT_EVENT_HEAP_EXPAND: return "HEAP_EXPAND";
    case HT_EVENT_HEAP_CONTRACT: return "HEAP_CONTRACT";
    case HT_EVENT_RUNDOWN_HEAP: return "RUNDOWN_HEAP";
    case HT_EVENT_RUNDOWN_BLOCK: return "RUNDOWN_BLOCK";
    case HT_EVENT_LEAK_SCAN: return "LEAK_SCAN";
    case HT_EVENT_UNREACHABLE_BLOCK: return "UNREACHABLE_BLOCK";
    case HT_EVENT_MODULE: return "MODULE";
    case HT_EVENT_STACK: return "STACK";
    case HT_EVENT_LOST: return "LOST";
    default: return "UNKNOWN";
    }
}

const char *ht_source_name(unsigned source)
{
    switch (source) {
    case MEMORY_FROM_LOOKASIDE: return "MEMORY_FROM_LOOKASIDE";
    case MEMORY_FROM_LOWFRAG: return "MEMORY_FROM_LOWFRAG";
    case MEMORY_FROM_MAINPATH: return "MEMORY_FROM_MAINPATH";
    case MEMORY_FROM_SLOWPATH: return "MEMORY_FROM_SLOWPATH";
    case MEMORY_FROM_INVALID: return "MEMORY_FROM_INVALID";
    case MEMORY_FROM_SEGMENT_HEAP: return "MEMORY_FROM_SEGMENT_HEAP";
    default: return "MEMORY_FROM_UNKNOWN";
    }
}

const char *ht_lost_reason_name(unsigned reason)
{
    switch (reason) {
    case HT_LOST_BUFFER_FULL: return "BUFFER_FULL";
    case HT_LOST_WRITE_FAILED: return "WRITE_FAILED";
    case HT_LOST_CONSUMER: return "CONSUMER";
    case HT_LOST_THREAD_EXIT: return "THREAD_EXIT";
    case HT_LOST_SESSION_END: return "SESSION_END";
    default: return "UNKNOWN";
    }
}

const char *ht_trace_mode_name(unsigned mode)
{
    switch (mode) {
    case HT_TRACE_MODE_BLOCK: return "block";
    case HT_TRACE_MODE_DISCARD: return "discard";
    case HT_TRACE_MODE_RING: return "ring";
    default: return "unknown";
    }
}

uint64_t ht_event_heap(const ht_event *e)
{
    switch (e->kind) {
    case HT_EVENT_ALLOC: return e->u.alloc.HeapHandle;
    case HT_EVENT_FREE: return e->u.free.HeapHandle;
    case HT_EVENT_REALLOC: return e->u.realloc.HeapHandle;
    case HT_EVENT_HEAP_CREATE: return e->u.heap_create.HeapHandle;
    case HT_EVENT_HEAP_DESTROY: return e->u.heap_destroy.HeapHandle;
    case HT_EVENT_HEAP_EXPAND:
    case HT_EVENT_HEAP_CONTRACT: return e->u.heap_resize.HeapHandle;
    case HT_EVENT_RUNDOWN_HEAP: return e->u.rundown_heap.HeapHandle;
    case HT_EVENT_RUNDOWN_BLOCK: return e->u.rundown_block.HeapHandle;
    case HT_EVENT_UNREACHABLE_BLOCK: return e->u.unreachable_block.HeapHandle;
    default: return 0;
    }
}
