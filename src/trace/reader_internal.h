/* reader_internal.h — the reader's state, shared by reader.c (tables, conversion, the merge) and
 * reader_follow.c (a follower's intake: the receive buffer and chunk framing from a descriptor).
 *
 * One reader reads a file (an index of its chunks, bodies read back by offset) or follows a
 * descriptor (chunks parsed as they arrive, an EVENTS chunk's bytes kept in chunk_ref.data until
 * its stream decodes it). Both go through the same chunk intake (hti_reader_frame, _take) and the
 * same merge (hti_reader_merge); a follower's merge stops at the watermark (final_ticks). */
#ifndef HEAPTRAIL_TRACE_READER_INTERNAL_H
#define HEAPTRAIL_TRACE_READER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"
#include "heaptrail/reader.h"

#define HTI_READER_WARNINGS_MAX 4096u
/* A follower holding more undecoded event chunk bytes than this fails (FORMAT.md §11). */
#define HTI_READER_PENDING_MAX ((uint64_t)HT_READER_CHUNK_MAX * 16u)

typedef struct hti_intake hti_intake; /* reader_follow.c */

typedef struct chunk_ref {
    uint64_t offset; /* of the chunk header in the file or stream */
    hti_chunk_header header;
    hti_events_meta meta;
    /* A follower's copy of the chunk (header, meta, stored body); NULL: read it at offset. */
    uint8_t *data;
} chunk_ref;

typedef struct stream {
    uint64_t stream_id;
    uint32_t thread_id;
    bool rundown;
    chunk_ref *chunks; /* its EVENTS chunks in file order; a follower drops decoded ones */
    size_t count, capacity;
    /* merge state */
    size_t next_chunk;  /* next chunk to load */
    bool loaded;        /* a chunk is being decoded */
    bool queued;        /* in the merge queue */
    bool have_previous; /* previous chunk decoded: continuation possible */
    uint64_t previous_seq, previous_end;
    uint8_t *buffer; /* the loaded chunk's raw body */
    size_t buffer_capacity;
    hti_cursor cursor;
    hti_stream_state state;
    uint64_t decoded;  /* events decoded from the loaded chunk */
    uint64_t expected; /* its header's event count */
    uint64_t chunk_offset;
    ht_event *batch; /* decoded events, allocated at the first load */
    size_t batch_count, batch_pos;
    uint64_t key; /* ticks of the next event, or a lower bound when not loaded */
} stream;

typedef struct clock_pair {
    uint64_t ticks, ns;
    uint64_t mult; /* 32.32 ns per tick for the segment starting here */
} clock_pair;

typedef struct stack_def {
    uint32_t id;
    uint32_t depth;
    size_t offset;
} stack_def;

typedef struct string_def {
    uint32_t id;
    char *text;
} string_def;

typedef struct module_def {
    ht_module module;
    uint32_t string_id;
} module_def;

struct ht_reader {
    int fd;
    const uint8_t *memory;
    uint64_t size;
    int status;
    char error[320];
    char warnings[HTI_READER_WARNINGS_MAX];
    size_t warnings_length;
    ht_trace_info info;
    char *program, *command_line;
    uint32_t tick_kind;
    uint64_t ticks_per_second, start_ticks;
    bool have_header;

    stream *streams;
    size_t stream_count, stream_capacity;
    clock_pair *clocks; /* the conversion table: sorted, ticks and ns increasing */
    size_t clock_count, clock_capacity;
    size_t clock_index;
    uint64_t segment_start, segment_length, segment_ns, segment_mult; /* last segment used */
    stack_def *stacks;                                                /* sorted by id */
    size_t stack_count, stack_capacity;
    size_t stacks_sorted; /* stacks[0..stacks_sorted) are known to be in order */
    uint64_t *frames;
    size_t frame_count, frame_capacity;
    string_def *strings;
    size_t string_count, string_capacity;
    module_def *modules;
    size_t module_count, module_capacity;
    ht_module *module_list;
    /* LOST chunk records as events: lost[lost_pos..lost_final) are final, in ns and sorted;
     * lost[lost_final..lost_count) (a follower's) wait for the watermark, in ticks. */
    ht_event *lost;
    size_t lost_count, lost_capacity, lost_pos, lost_final;

    size_t *merge_queue; /* the k-way merge: stream indices, a binary min-heap on their keys */
    size_t merge_count, merge_capacity;
    struct ZSTD_DCtx_s *zstd;
    uint8_t *scratch;
    size_t scratch_capacity;

    /* Following (NULL intake: a file or memory). Events whose ticks are below final_ticks are
     * final, or all of them once all_final (a file; a followed trace that ended). */
    hti_intake *intake;
    bool all_final;
    uint64_t final_ticks;
    uint64_t recent_ticks[2]; /* the two latest clock pairs received, in arrival order */
    uint64_t recent_ns[2];
    uint64_t pairs_received;
    clock_pair *raw_clocks; /* every pair received, in arrival order */
    size_t raw_count, raw_capacity;
    uint64_t raw_max_ticks;
    uint64_t pending_bytes; /* event chunk bytes received and not decoded yet */
};

/* Sets the sticky error (the first one wins) and returns it. */
int hti_reader_fail(ht_reader *r, int error, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
/* The preamble's 16 bytes (size of the input so far, for the message): 0 or the error. */
int hti_reader_check_preamble(ht_reader *r, const uint8_t *bytes, uint64_t size);
/* The input ends inside the chunk at offset (left of its total bytes; total 0: inside its
 * header): marks the trace truncated and warns. */
void hti_reader_cut(ht_reader *r, uint64_t offset, uint64_t left, uint64_t total);
/* The chunk header at offset: c filled (data NULL), *total its length. 0 or the error. */
int hti_reader_frame(ht_reader *r, uint64_t offset, const uint8_t head[HTI_CHUNK_HEADER_SIZE],
                     chunk_ref *c, uint64_t *total);
/* A whole chunk: EVENTS indexed (a follower's queued, its data then owned by the reader), the
 * others parsed into the tables (a follower's tables and watermark updated), unknown ones
 * skipped. 0 or the error. */
int hti_reader_take(ht_reader *r, chunk_ref *c);
/* A followed trace has ended: every event is final. */
void hti_reader_all_final(ht_reader *r);
/* Hands out up to max final events in merge order: the count, or the sticky error. */
long hti_reader_merge(ht_reader *r, ht_event *out, size_t max);
/* A reader that failed to open: the message into error, the reader closed, errno set. */
ht_reader *hti_reader_open_failed(ht_reader *r, char *error, size_t error_size);

/* reader_follow.c: ht_reader_read on a follower, and its part of ht_reader_close. */
long hti_follow_read(ht_reader *r, ht_event *out, size_t max);
void hti_follow_close(ht_reader *r);

#endif
