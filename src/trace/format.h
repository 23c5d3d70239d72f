/* format.h — the trace file format (docs/FORMAT.md is normative; this is its code).
 *
 * Owns the one encoder and the one decoder of every record of the format, shared by the writer
 * (in traced processes) and the reader and consumer (decoding): varints, the file preamble, chunk
 * framing with CRC-32C, the HEADER, the EVENTS meta and the events (LOST included), the STACKS,
 * STRINGS, MODULES, CLOCK and LOST records, the FOOTER, and the limits a reader enforces. Nothing
 * here allocates or takes a lock: encoders write into the caller's buffer, so they are safe inside
 * the heap's hooks, and the checksum is safe in a signal handler. Decoders validate every byte
 * they read against the end of their input and return -EBADMSG rather than read past it. */
#ifndef HEAPTRAIL_TRACE_FORMAT_H
#define HEAPTRAIL_TRACE_FORMAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "heaptrail/events.h"
#include "heaptrail/reader.h"

/* File preamble: 8 magic bytes, u16 major, u16 minor, u32 flags (0). */
#define HTI_MAGIC "\x89HTRACE\n"
#define HTI_MAGIC_SIZE 8u
#define HTI_PREAMBLE_SIZE 16u
#define HTI_VERSION_MAJOR 1u
#define HTI_VERSION_MINOR 0u

/* Chunk framing: 16-byte header, meta (never compressed), body (optionally zstd). */
#define HTI_CHUNK_HEADER_SIZE 16u
#define HTI_CHUNK_META_MAX 1024u
/* The largest chunk body, stored or raw: the reader's public limit is the format's one. */
#define HTI_CHUNK_BODY_MAX HT_READER_CHUNK_MAX
#define HTI_CHUNK_FLAG_ZSTD 0x01u

#define HTI_CHUNK_TYPE_MAX 63u /* types 1..63; unknown ones are skipped */

enum hti_chunk_type {
    HTI_CHUNK_HEADER = 1,
    HTI_CHUNK_EVENTS = 2,
    HTI_CHUNK_STACKS = 3,
    HTI_CHUNK_MODULES = 4,
    HTI_CHUNK_STRINGS = 5,
    HTI_CHUNK_LOST = 6,
    HTI_CHUNK_CLOCK = 7,
    HTI_CHUNK_FOOTER = 8,
};

/* EVENTS meta flags. */
#define HTI_EVENTS_RUNDOWN 0x1u

/* Header tick kinds: how event ticks become CLOCK_MONOTONIC nanoseconds. */
#define HTI_TICKS_NS 0u  /* ticks are nanoseconds */
#define HTI_TICKS_TSC 1u /* x86 TSC: convert through the CLOCK chunks' (ticks, ns) pairs */

/* Event opcode byte: bits 0-2 Source, bit 3 heap follows, bit 4 stack id follows, bits 5-7
 * class. Class EXT is followed by one byte with the event kind. */
#define HTI_OP_SOURCE_MASK 0x07u
#define HTI_OP_HEAP 0x08u
#define HTI_OP_STACK 0x10u
#define HTI_OP_CLASS_SHIFT 5u
#define HTI_OP_ALLOC (0u << HTI_OP_CLASS_SHIFT)
#define HTI_OP_FREE (1u << HTI_OP_CLASS_SHIFT)
#define HTI_OP_REALLOC (2u << HTI_OP_CLASS_SHIFT)
#define HTI_OP_EXT (3u << HTI_OP_CLASS_SHIFT)

/* The largest encoded event: opcode, kind, 9 varints of at most 10 bytes, an address tail. */
#define HTI_EVENT_MAX 104u

/* ---- encoding (hot path: inline, no checks; the caller reserved HTI_EVENT_MAX bytes) ---- */

static inline uint8_t *hti_put_varint(uint8_t *p, uint64_t value)
{
    while (value >= 0x80u) {
        *p++ = (uint8_t)(value | 0x80u);
        value >>= 7;
    }
    *p++ = (uint8_t)value;
    return p;
}

static inline uint64_t hti_zigzag(int64_t value)
{
    return ((uint64_t)value << 1) ^ (uint64_t)(value >> 63);
}

static inline int64_t hti_unzigzag(uint64_t value)
{
    return (int64_t)(value >> 1) ^ -(int64_t)(value & 1u);
}

/* An address as a difference from the stream's previous one: 16-byte aligned differences
 * (the common case) drop their low four bits; others add one byte with them. */
static inline uint8_t *hti_put_address(uint8_t *p, uint64_t address, uint64_t previous)
{
    uint64_t delta = address - previous;
    uint64_t low = delta & 15u;
    uint64_t high = hti_zigzag((int64_t)delta >> 4); /* < 2^61 */
    p = hti_put_varint(p, (high << 1) | (low != 0));
    if (low != 0)
        *p++ = (uint8_t)low;
    return p;
}

static inline void hti_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void hti_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t hti_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint16_t hti_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* ---- checked decoding ---- */

/* A bounded input cursor. Every get sets ok = false instead of reading past end. */
typedef struct hti_cursor {
    const uint8_t *p;
    const uint8_t *end;
    bool ok;
} hti_cursor;

static inline hti_cursor hti_cursor_make(const void *data, size_t size)
{
    hti_cursor c = {(const uint8_t *)data, (const uint8_t *)data + size, true};
    return c;
}

uint64_t hti_get_varint_slow(hti_cursor *c);

/* Fast path: 1 to 3 bytes with room to spare (the common case inside a chunk). */
static inline uint64_t hti_get_varint(hti_cursor *c)
{
    const uint8_t *p = c->p;
    if (__builtin_expect(c->end - p >= 3, 1)) {
        uint64_t b = p[0];
        if (b < 0x80u) {
            c->p = p + 1;
            return b;
        }
        uint64_t v = b & 0x7Fu;
        b = p[1];
        v |= (b & 0x7Fu) << 7;
        if (b < 0x80u) {
            c->p = p + 2;
            return v;
        }
        b = p[2];
        v |= (b & 0x7Fu) << 14;
        if (b < 0x80u) {
            c->p = p + 3;
            return v;
        }
    }
    return hti_get_varint_slow(c);
}

/* A string: varint length then bytes (no NUL). Points into the input. */
const uint8_t *hti_get_bytes(hti_cursor *c, size_t *length, size_t max_length);

/* ---- checksum and framing ---- */

/* CRC-32C (Castagnoli), as in iSCSI/ext4: reflected polynomial 0x82F63B78, initial value and
 * final xor 0xFFFFFFFF. hti_crc32c_update works on the un-inverted running value. */
void hti_crc32c_init(void);
uint32_t hti_crc32c_update(uint32_t crc, const void *data, size_t size);
static inline uint32_t hti_crc32c(const void *data, size_t size)
{
    return hti_crc32c_update(0xFFFFFFFFu, data, size) ^ 0xFFFFFFFFu;
}

typedef struct hti_chunk_header {
    uint8_t type;
    uint8_t flags;
    uint16_t meta_length;
    uint32_t body_length; /* stored */
    uint32_t raw_length;  /* after decompression */
    uint32_t crc;
} hti_chunk_header;

/* Fills out[16] and returns the CRC over header, meta and body (the stored bytes). */
void hti_chunk_header_encode(uint8_t out[HTI_CHUNK_HEADER_SIZE], const hti_chunk_header *header,
                             const void *meta, const void *body);
/* Parses and validates the fixed fields (not the CRC). 0 or -EBADMSG with *why set. */
int hti_chunk_header_decode(const uint8_t in[HTI_CHUNK_HEADER_SIZE], hti_chunk_header *header,
                            const char **why);
uint32_t hti_chunk_crc(const uint8_t in[HTI_CHUNK_HEADER_SIZE], const void *meta,
                       size_t meta_length, const void *body, size_t body_length);

/* ---- file preamble and HEADER (FORMAT.md §1, §3) ---- */

typedef struct hti_preamble {
    uint16_t version_major;
    uint16_t version_minor;
    uint32_t flags; /* 0 in version 1.0 */
} hti_preamble;

/* The preamble of a trace written by this code: magic, HTI_VERSION_MAJOR.MINOR, flags 0. */
void hti_preamble_encode(uint8_t out[HTI_PREAMBLE_SIZE]);
/* 0, or -EBADMSG when the magic is not heaptrail's. The version is left to the caller to judge
 * (a reader rejects a major version it does not know, with its own message). */
int hti_preamble_decode(const uint8_t in[HTI_PREAMBLE_SIZE], hti_preamble *preamble);

/* Limits of FORMAT.md §14 that the record decoders enforce. */
#define HTI_VARINT_MAX 10u              /* bytes of a 64-bit varint */
#define HTI_STRING_MAX 65536u           /* a string's bytes (program path, STRINGS record) */
#define HTI_COMMAND_LINE_MAX (1u << 20) /* the HEADER's command line */
#define HTI_STACK_DEPTH_MAX 4096u       /* frames of a STACKS record */
#define HTI_BUILD_ID_MAX 32u            /* bytes of a MODULES record's GNU build-id */

/* HEADER body: the session's description, fields in FORMAT.md §3's order. The two strings point
 * at the caller's bytes (encoding) or into the decoded input (decoding). */
typedef struct hti_header {
    uint32_t pid;
    uint32_t pointer_size;     /* bytes */
    uint32_t clock_id;         /* the POSIX clock of the ns timestamps */
    uint32_t tick_kind;        /* HTI_TICKS_* */
    uint64_t ticks_per_second; /* the writer's estimate; 0 only with HTI_TICKS_NS */
    uint64_t start_realtime_ns, start_ns, start_ticks;
    const uint8_t *program; /* path of the executable, no NUL */
    size_t program_length;
    const uint8_t *command_line; /* arguments separated by NUL bytes */
    size_t command_line_length;
    uint32_t mode;        /* ht_trace_mode: 0 block, 1 discard, 2 ring */
    uint32_t stack_depth; /* 0: no stacks */
    uint64_t sample_interval, event_mask, heap_filter, min_size, max_size;
    uint64_t buffer_size;       /* bytes per thread */
    uint64_t compression_level; /* zstd level, 0 = none */
} hti_header;

#define HTI_HEADER_FIELDS 19u
/* The largest HEADER body but for its two strings' bytes: 19 varints (two of them lengths). */
#define HTI_HEADER_FIXED_MAX (HTI_HEADER_FIELDS * HTI_VARINT_MAX)

/* Writes the body into out (HTI_HEADER_FIXED_MAX + both strings' lengths bytes); returns its
 * length. Does not allocate. */
size_t hti_header_encode(uint8_t *out, const hti_header *header);
/* 0 (bytes after the known fields are ignored) or -EBADMSG: cut short, a string past its limit,
 * or a field out of range (pid or a 32-bit field past 32 bits, pointer size or clock id above 64,
 * an unknown tick kind or mode, a stack depth above HTI_STACK_DEPTH_MAX, TSC ticks without a
 * rate). */
int hti_header_decode(const void *data, size_t size, hti_header *header);

/* EVENTS chunk meta. */
typedef struct hti_events_meta {
    uint32_t thread_id;
    uint32_t flags;       /* HTI_EVENTS_* */
    uint64_t fill_seq;    /* which fill of the thread's buffer the bytes come from */
    uint64_t offset;      /* byte offset of the body inside that fill; 0: fresh start */
    uint64_t event_count; /* events in the body */
    uint64_t base_ticks;  /* offset 0: the ticks the first delta is taken from */
    uint64_t stream_id;   /* unique per buffer within the session */
} hti_events_meta;

#define HTI_EVENTS_META_FIELDS 7u
#define HTI_EVENTS_META_MAX (HTI_EVENTS_META_FIELDS * HTI_VARINT_MAX) /* bytes */

_Static_assert(HTI_EVENTS_META_MAX <= HTI_CHUNK_META_MAX, "an EVENTS meta fits a chunk's meta");

/* Writes the meta into out (HTI_EVENTS_META_MAX bytes); returns its length. */
size_t hti_events_meta_encode(uint8_t *out, const hti_events_meta *meta);
/* 0 (bytes after the known fields are ignored) or -EBADMSG: cut short, a thread id or flags
 * past 32 bits, an offset no fill can have. */
int hti_events_meta_decode(const void *data, size_t size, hti_events_meta *meta);

/* FOOTER body (FORMAT.md §10): groups of varints, each one whole or absent, in this order. A
 * writer that cannot know a group (a crash flush cannot walk the heaps) leaves it and every
 * later one out; traces written before a group existed end before it. */
enum hti_footer_parts {
    HTI_FOOTER_CLOCK = 1,     /* end ticks, end ns: always */
    HTI_FOOTER_COUNTS = 2,    /* + events, lost, chunks before the footer */
    HTI_FOOTER_END_STATE = 3, /* + flags, live blocks, their requested bytes, peak committed */
};
#define HTI_FOOTER_AT_EXIT 0x1u /* flags: the session stopped because the process exited */
#define HTI_FOOTER_FIELDS 9u    /* of the three groups together; format.c says which is whose */
#define HTI_FOOTER_MAX (HTI_FOOTER_FIELDS * HTI_VARINT_MAX) /* bytes */

typedef struct hti_footer {
    unsigned parts; /* groups present: HTI_FOOTER_CLOCK .. HTI_FOOTER_END_STATE */
    uint64_t end_ticks, end_ns;
    uint64_t events, lost, chunks;
    uint64_t flags; /* HTI_FOOTER_AT_EXIT; unknown bits are ignored */
    uint64_t live_blocks, live_bytes;
    uint64_t peak_committed;
} hti_footer;

/* Writes the groups up to footer->parts into out (HTI_FOOTER_MAX bytes); returns the length. */
size_t hti_footer_encode(uint8_t *out, const hti_footer *footer);
/* 0 with footer->parts set (bytes after the last known group are ignored, as for any minor
 * addition), or -EBADMSG: no end clock pair, a group cut short, or a bad varint. */
int hti_footer_decode(const void *data, size_t size, hti_footer *footer);

/* A LOST record (FORMAT.md §5 and §8): `count` events of thread `thread_id` lost for `reason`
 * (HT_LOST_*) between first_ticks and last_ticks. It has two encodings, both owned here: the
 * in-stream LOST event (EXT opcode, no heap, no stack; the distances back from the event's ticks)
 * and the record of a LOST chunk (thread, reason, count, first, last). */
typedef struct hti_lost_record {
    uint32_t thread_id;
    uint32_t reason;
    uint64_t count;
    uint64_t first_ticks, last_ticks;
} hti_lost_record;

#define HTI_LOST_EVENT_MAX 47u  /* opcode, kind, 4 varints of <= 10 bytes, a 32-bit reason */
#define HTI_LOST_RECORD_MAX 40u /* 2 varints of <= 5 bytes (32-bit), 3 of <= 10 bytes */

/* Writes the in-stream LOST event at ticks (>= previous_ticks, the stream's previous event);
 * first and last lost ticks past it are written as ticks (distance 0), so the event always
 * decodes. Hot enough to stay inline: the owner thread writes it at a fill's start. */
static inline uint8_t *hti_put_lost_event(uint8_t *p, uint64_t ticks, uint64_t previous_ticks,
                                          const hti_lost_record *lost)
{
    *p++ = HTI_OP_EXT;
    *p++ = HT_EVENT_LOST;
    p = hti_put_varint(p, ticks - previous_ticks);
    p = hti_put_varint(p, lost->count);
    p = hti_put_varint(p, ticks - (lost->first_ticks < ticks ? lost->first_ticks : ticks));
    p = hti_put_varint(p, ticks - (lost->last_ticks < ticks ? lost->last_ticks : ticks));
    p = hti_put_varint(p, lost->reason);
    return p;
}

/* The fields of an in-stream LOST event after its common part (opcode, kind, ticks delta), for an
 * event at `ticks` of thread_id's stream. Sets c->ok = false when malformed (a first distance
 * above ticks, a last distance above the first, a reason past 32 bits). */
void hti_get_lost_event_fields(hti_cursor *c, uint64_t ticks, uint32_t thread_id,
                               hti_lost_record *lost);
/* A whole in-stream LOST event at the cursor, the stream's previous event at previous_ticks.
 * 0, -ENOMSG when the event there is not a LOST one (the cursor is left alone), or -EBADMSG. */
int hti_get_lost_event(hti_cursor *c, uint64_t previous_ticks, uint32_t thread_id,
                       hti_lost_record *lost);

/* One record of a LOST chunk's body (HTI_LOST_RECORD_MAX bytes at most). */
static inline uint8_t *hti_put_lost_record(uint8_t *p, const hti_lost_record *lost)
{
    p = hti_put_varint(p, lost->thread_id);
    p = hti_put_varint(p, lost->reason);
    p = hti_put_varint(p, lost->count);
    p = hti_put_varint(p, lost->first_ticks);
    p = hti_put_varint(p, lost->last_ticks);
    return p;
}
/* The next record of a LOST chunk's body. 0 or -EBADMSG (cut short, a thread or reason past
 * 32 bits). */
int hti_get_lost_record(hti_cursor *c, hti_lost_record *lost);
/* Fills the LOST part of an event (e->u.lost) from a record. */
void hti_lost_to_event(const hti_lost_record *lost, ht_event *e);

/* ---- table records: STACKS, STRINGS, MODULES, CLOCK (FORMAT.md §6, §7, §9) ----
 * A body of each is a run of records up to its end. The encoders write one record at p (the
 * caller has the room its _MAX says) and return the end; the decoders read one at the cursor and
 * return 0 or -EBADMSG, never reading past the cursor's end. */

/* STACKS: id (>= 1), depth, then the frames (innermost first): the first as it is, each next one
 * as the zigzag of its difference from the one before. */
typedef struct hti_stack_record {
    uint32_t id;
    uint32_t depth;
} hti_stack_record;

#define HTI_STACK_RECORD_MAX(depth) ((2u + (depth)) * HTI_VARINT_MAX)

uint8_t *hti_put_stack_record(uint8_t *p, uint32_t id, const uint64_t *frames, uint32_t depth);
/* The id and depth of the next record; its frames are left at the cursor for
 * hti_get_stack_frames, so that the caller can make room for them first. -EBADMSG: cut short, id
 * 0 or past 32 bits, depth above HTI_STACK_DEPTH_MAX or above the bytes left (a frame takes at
 * least one). */
int hti_get_stack_record(hti_cursor *c, hti_stack_record *stack);
/* The depth frames of the record whose head hti_get_stack_record read, into frames[depth]. */
int hti_get_stack_frames(hti_cursor *c, uint32_t depth, uint64_t *frames);

/* STRINGS: id, then the string. bytes point at the caller's bytes or into the decoded input. */
typedef struct hti_string_record {
    uint32_t id;
    const uint8_t *bytes;
    size_t length;
} hti_string_record;

/* A 32-bit id (5 bytes at most) and the length's varint, then the bytes. */
#define HTI_STRING_RECORD_MAX(length) (5u + HTI_VARINT_MAX + (length))

uint8_t *hti_put_string_record(uint8_t *p, const hti_string_record *string);
/* -EBADMSG: cut short, id past 32 bits, a string longer than HTI_STRING_MAX. */
int hti_get_string_record(hti_cursor *c, hti_string_record *string);

/* MODULES: load address, start and size of the PT_LOAD extent, the path's string id, the GNU
 * build-id (length, bytes). */
typedef struct hti_module_record {
    uint64_t load_address;
    uint64_t start;
    uint64_t size;
    uint32_t string_id;
    uint32_t build_id_size; /* 0: none */
    uint8_t build_id[HTI_BUILD_ID_MAX];
} hti_module_record;

/* 4 varints, the build-id's length in one byte, its bytes. */
#define HTI_MODULE_RECORD_MAX (4u * HTI_VARINT_MAX + 1u + HTI_BUILD_ID_MAX)

uint8_t *hti_put_module_record(uint8_t *p, const hti_module_record *module);
/* -EBADMSG: cut short, string id past 32 bits, a build-id longer than HTI_BUILD_ID_MAX. */
int hti_get_module_record(hti_cursor *c, hti_module_record *module);

/* CLOCK: ticks and ns of the header's clock, sampled together. */
typedef struct hti_clock_record {
    uint64_t ticks;
    uint64_t ns;
} hti_clock_record;

#define HTI_CLOCK_RECORD_MAX (2u * HTI_VARINT_MAX)

uint8_t *hti_put_clock_record(uint8_t *p, const hti_clock_record *clock);
/* -EBADMSG: cut short or a bad varint. */
int hti_get_clock_record(hti_cursor *c, hti_clock_record *clock);

/* Delta state of one thread's event stream. Reset at each fresh fill (offset 0). */
typedef struct hti_stream_state {
    uint64_t ticks;
    uint64_t address;
    uint64_t heap;
} hti_stream_state;

/* Decodes up to max events from the cursor into out, timestamps left in ticks (timestamp_ns
 * holds ticks) and weight 1. Returns the count (the cursor advances past them) or -EBADMSG;
 * *bad points at the offending byte then. */
long hti_decode_events(hti_cursor *cursor, hti_stream_state *state, uint32_t thread_id,
                       ht_event *out, size_t max, const uint8_t **bad);

#endif
