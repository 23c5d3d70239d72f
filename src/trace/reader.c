/* reader.c — reads traces: a file's chunk headers scanned at open (index, tables, clock pairs,
 * LOST records), or a followed trace's chunks taken as they arrive (reader_follow.c), then one
 * k-way merge of the event streams in timestamp order for both.
 *
 * Invariants: every length read from the input is checked against HT_READER_CHUNK_MAX and the
 * file size before anything is allocated or read; every event chunk's CRC is verified before it
 * is decoded, and its decoded event count must match its header. The merge holds one decoded
 * chunk per stream whose time range is current; streams whose next chunk starts later wait
 * keyed by that chunk's base timestamp (a lower bound of its first event). A follower's merge
 * hands out only final events (below the watermark, FORMAT.md §11), and converts their ticks
 * with the pairs around them, which are the file's own by then. Errors are sticky and name the
 * byte offset; a file that ends inside a chunk reads up to the last whole one. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "reader_internal.h"

#define BATCH 256u
#define WARNINGS_MAX HTI_READER_WARNINGS_MAX

/* ---- small helpers ---- */

static int fail_list(ht_reader *r, int error, const char *format, va_list ap)
{
    if (r->status == 0) {
        vsnprintf(r->error, sizeof r->error, format, ap);
        r->status = error;
    }
    return r->status;
}

__attribute__((format(printf, 3, 4))) static int fail(ht_reader *r, int error, const char *format,
                                                      ...)
{
    va_list ap;
    va_start(ap, format);
    fail_list(r, error, format, ap);
    va_end(ap);
    return r->status;
}

int hti_reader_fail(ht_reader *r, int error, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    fail_list(r, error, format, ap);
    va_end(ap);
    return r->status;
}

__attribute__((format(printf, 2, 3))) static void warn(ht_reader *r, const char *format, ...)
{
    if (r->warnings_length + 2 >= WARNINGS_MAX)
        return;
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(r->warnings + r->warnings_length, WARNINGS_MAX - r->warnings_length - 1,
                      format, ap);
    va_end(ap);
    if (n < 0)
        return;
    r->warnings_length += (size_t)n < WARNINGS_MAX - r->warnings_length - 1
                              ? (size_t)n
                              : WARNINGS_MAX - r->warnings_length - 2;
    r->warnings[r->warnings_length++] = '\n';
    r->warnings[r->warnings_length] = '\0';
}

/* Grows *array to hold at least need elements. 0 or -ENOMEM. */
static int grow(void **array, size_t *capacity, size_t need, size_t element)
{
    if (need <= *capacity)
        return 0;
    size_t next = *capacity ? *capacity * 2 : 16;
    while (next < need)
        next *= 2;
    if (next > SIZE_MAX / element)
        return -ENOMEM;
    void *p = realloc(*array, next * element);
    if (!p)
        return -ENOMEM;
    *array = p;
    *capacity = next;
    return 0;
}

#define GROW(r, array, count, capacity)                                                            \
    (grow((void **)&(array), &(capacity), (count) + 1, sizeof *(array)) == 0                       \
         ? 0                                                                                       \
         : fail((r), -ENOMEM, "out of memory"))

static int read_at(ht_reader *r, uint64_t offset, void *buffer, size_t length)
{
    if (offset > r->size || length > r->size - offset)
        return fail(r, -EBADMSG, "read past the end at offset %llu", (unsigned long long)offset);
    if (r->memory) {
        memcpy(buffer, r->memory + offset, length);
        return 0;
    }
    size_t done = 0;
    while (done < length) {
        ssize_t n = pread(r->fd, (uint8_t *)buffer + done, length - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(r, -EIO, "read error at offset %llu: %s",
                        (unsigned long long)(offset + done),
                        n < 0 ? strerror(errno) : "end of file");
        done += (size_t)n;
    }
    return 0;
}

/* The chunk's 16 header bytes and its stored bytes (meta, then body): where a follower keeps
 * them, or read from the file into r->scratch (valid until the next call). */
static int chunk_bytes(ht_reader *r, const chunk_ref *c, const uint8_t **head,
                       const uint8_t **stored)
{
    if (c->data) {
        *head = c->data;
        *stored = c->data + HTI_CHUNK_HEADER_SIZE;
        return 0;
    }
    size_t length = HTI_CHUNK_HEADER_SIZE + (size_t)c->header.meta_length + c->header.body_length;
    if (grow((void **)&r->scratch, &r->scratch_capacity, length + 1, 1) != 0)
        return fail(r, -ENOMEM, "out of memory");
    if (read_at(r, c->offset, r->scratch, length) != 0)
        return r->status;
    *head = r->scratch;
    *stored = r->scratch + HTI_CHUNK_HEADER_SIZE;
    return 0;
}

/* Reads a chunk's meta and stored body, checks the CRC, decompresses. *body points into
 * r->scratch or the follower's copy (valid until the next call) or into out when given. */
static int load_body(ht_reader *r, const chunk_ref *c, uint8_t **out, size_t *out_capacity,
                     const uint8_t **body, size_t *length)
{
    const hti_chunk_header *h = &c->header;
    const uint8_t *head = NULL, *stored = NULL;
    if (chunk_bytes(r, c, &head, &stored) != 0)
        return r->status;
    uint32_t crc = hti_chunk_crc(head, stored, h->meta_length, stored + h->meta_length,
                                 h->body_length);
    if (crc != h->crc)
        return fail(r, -EBADMSG, "checksum mismatch in chunk at offset %llu",
                    (unsigned long long)c->offset);
    const uint8_t *stored_body = stored + h->meta_length;
    if (!(h->flags & HTI_CHUNK_FLAG_ZSTD)) {
        if (out) {
            if (grow((void **)out, out_capacity, h->body_length + 1, 1) != 0)
                return fail(r, -ENOMEM, "out of memory");
            memcpy(*out, stored_body, h->body_length);
            *body = *out;
        } else {
            *body = stored_body;
        }
        *length = h->body_length;
        return 0;
    }
    if (!r->zstd && !(r->zstd = ZSTD_createDCtx()))
        return fail(r, -ENOMEM, "out of memory");
    uint8_t *target;
    uint8_t *local = NULL;
    size_t local_capacity = 0;
    if (!out) {
        out = &local;
        out_capacity = &local_capacity;
    }
    if (grow((void **)out, out_capacity, h->raw_length + 1, 1) != 0)
        return fail(r, -ENOMEM, "out of memory");
    target = *out;
    size_t n = ZSTD_decompressDCtx(r->zstd, target, h->raw_length, stored_body, h->body_length);
    if (ZSTD_isError(n) || n != h->raw_length) {
        free(local);
        return fail(r, -EBADMSG, "bad compressed data in chunk at offset %llu",
                    (unsigned long long)c->offset);
    }
    if (local) {
        /* Control chunks: move into scratch so the caller need not free. */
        if (grow((void **)&r->scratch, &r->scratch_capacity, n + 1, 1) != 0) {
            free(local);
            return fail(r, -ENOMEM, "out of memory");
        }
        memcpy(r->scratch, local, n);
        free(local);
        *body = r->scratch;
    } else {
        *body = target;
    }
    *length = n;
    return 0;
}

/* ---- control chunks ---- */

static char *dup_bytes(const uint8_t *bytes, size_t length)
{
    char *s = malloc(length + 1);
    if (s) {
        memcpy(s, bytes, length);
        s[length] = '\0';
    }
    return s;
}

static int parse_header(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_header h;
    if (hti_header_decode(body, length, &h) != 0)
        return fail(r, -EBADMSG, "malformed header chunk at offset %llu",
                    (unsigned long long)c->offset);
    r->info.pid = h.pid;
    r->info.pointer_size = h.pointer_size;
    r->info.clock_id = h.clock_id;
    r->tick_kind = h.tick_kind;
    r->ticks_per_second = h.ticks_per_second ? h.ticks_per_second : 1000000000u;
    r->info.start_realtime_ns = h.start_realtime_ns;
    r->info.start_ns = h.start_ns;
    r->start_ticks = h.start_ticks;
    r->info.mode = h.mode;
    r->info.stack_depth = h.stack_depth;
    r->info.sample_interval = h.sample_interval;
    r->info.event_mask = h.event_mask;
    r->info.heap_filter = h.heap_filter;
    r->info.min_size = h.min_size;
    r->info.max_size = h.max_size;
    free(r->program);
    free(r->command_line);
    r->program = dup_bytes(h.program, h.program_length);
    r->command_line = dup_bytes(h.command_line, h.command_line_length);
    if (!r->program || !r->command_line)
        return fail(r, -ENOMEM, "out of memory");
    for (size_t i = 0; i < h.command_line_length; i++)
        if (r->command_line[i] == '\0')
            r->command_line[i] = ' ';
    return 0;
}

static int parse_stacks(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_cursor k = hti_cursor_make(body, length);
    while (k.p < k.end) {
        hti_stack_record stack;
        if (hti_get_stack_record(&k, &stack) != 0)
            return fail(r, -EBADMSG, "malformed stack record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        /* The depth is bounded by the bytes left, so this growth is bounded by the body. */
        if (grow((void **)&r->frames, &r->frame_capacity, r->frame_count + stack.depth + 1,
                 sizeof *r->frames) != 0 ||
            GROW(r, r->stacks, r->stack_count, r->stack_capacity) != 0)
            return fail(r, -ENOMEM, "out of memory");
        if (hti_get_stack_frames(&k, stack.depth, &r->frames[r->frame_count]) != 0)
            return fail(r, -EBADMSG, "malformed stack record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        stack_def *d = &r->stacks[r->stack_count++];
        d->id = stack.id;
        d->depth = stack.depth;
        d->offset = r->frame_count;
        r->frame_count += stack.depth;
    }
    return 0;
}

static int parse_strings(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_cursor k = hti_cursor_make(body, length);
    while (k.p < k.end) {
        hti_string_record string;
        if (hti_get_string_record(&k, &string) != 0)
            return fail(r, -EBADMSG, "malformed string record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        if (GROW(r, r->strings, r->string_count, r->string_capacity) != 0)
            return r->status;
        char *text = dup_bytes(string.bytes, string.length);
        if (!text)
            return fail(r, -ENOMEM, "out of memory");
        r->strings[r->string_count].id = string.id;
        r->strings[r->string_count].text = text;
        r->string_count++;
    }
    return 0;
}

static int parse_modules(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_cursor k = hti_cursor_make(body, length);
    while (k.p < k.end) {
        hti_module_record record;
        if (hti_get_module_record(&k, &record) != 0)
            return fail(r, -EBADMSG, "malformed module record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        module_def m;
        memset(&m, 0, sizeof m);
        m.module.LoadAddress = record.load_address;
        m.module.Start = record.start;
        m.module.Size = record.size;
        _Static_assert(sizeof m.module.BuildId == HTI_BUILD_ID_MAX, "a build-id fits ht_module");
        memcpy(m.module.BuildId, record.build_id, record.build_id_size);
        m.module.BuildIdSize = record.build_id_size;
        m.string_id = record.string_id;
        if (GROW(r, r->modules, r->module_count, r->module_capacity) != 0)
            return r->status;
        r->modules[r->module_count++] = m;
    }
    return 0;
}

static int parse_clock(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_cursor k = hti_cursor_make(body, length);
    while (k.p < k.end) {
        hti_clock_record clock;
        if (hti_get_clock_record(&k, &clock) != 0)
            return fail(r, -EBADMSG, "malformed clock record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        if (GROW(r, r->clocks, r->clock_count, r->clock_capacity) != 0)
            return r->status;
        r->clocks[r->clock_count++] = (clock_pair){clock.ticks, clock.ns, 0};
    }
    return 0;
}

static int parse_lost(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_cursor k = hti_cursor_make(body, length);
    while (k.p < k.end) {
        hti_lost_record lost;
        if (hti_get_lost_record(&k, &lost) != 0)
            return fail(r, -EBADMSG, "malformed lost record in chunk at offset %llu",
                        (unsigned long long)c->offset);
        if (GROW(r, r->lost, r->lost_count, r->lost_capacity) != 0)
            return r->status;
        ht_event *e = &r->lost[r->lost_count++];
        memset(e, 0, sizeof *e);
        e->timestamp_ns = lost.last_ticks;
        e->thread_id = lost.thread_id;
        e->kind = HT_EVENT_LOST;
        e->weight = 1.0;
        hti_lost_to_event(&lost, e);
        r->info.lost += lost.count;
    }
    return 0;
}

static int parse_footer(ht_reader *r, const chunk_ref *c, const uint8_t *body, size_t length)
{
    hti_footer f;
    if (hti_footer_decode(body, length, &f) != 0)
        return fail(r, -EBADMSG, "malformed footer at offset %llu", (unsigned long long)c->offset);
    /* A footer is also a clock pair. */
    if (GROW(r, r->clocks, r->clock_count, r->clock_capacity) != 0)
        return r->status;
    r->clocks[r->clock_count].ticks = f.end_ticks;
    r->clocks[r->clock_count].ns = f.end_ns;
    r->clock_count++;
    r->info.complete = true;
    /* A crash flush racing with the stop may add a shorter footer: each group is kept from the
     * last footer that has it. */
    if (f.parts >= HTI_FOOTER_COUNTS) {
        r->info.footer_counts = true;
        r->info.footer_events = f.events;
        r->info.footer_lost = f.lost;
    }
    if (f.parts >= HTI_FOOTER_END_STATE) {
        r->info.end_state = true;
        r->info.stopped_at_exit = (f.flags & HTI_FOOTER_AT_EXIT) != 0;
        r->info.end_live_blocks = f.live_blocks;
        r->info.end_live_bytes = f.live_bytes;
        r->info.peak_committed = f.peak_committed;
    }
    return 0;
}

/* ---- the scan ---- */

/* The stream of an EVENTS chunk, created at its first chunk (info.threads counts the distinct
 * thread ids of the event streams, the rundown's not counted). */
static stream *stream_for(ht_reader *r, const hti_events_meta *m)
{
    /* Streams are few; chunks of one stream come in runs: check the last one first. */
    for (size_t i = r->stream_count; i-- > 0;)
        if (r->streams[i].stream_id == m->stream_id && r->streams[i].thread_id == m->thread_id)
            return &r->streams[i];
    if (GROW(r, r->streams, r->stream_count, r->stream_capacity) != 0 ||
        GROW(r, r->merge_queue, r->stream_count, r->merge_capacity) != 0)
        return NULL;
    bool rundown = (m->flags & HTI_EVENTS_RUNDOWN) != 0;
    bool new_thread = !rundown;
    for (size_t i = 0; i < r->stream_count && new_thread; i++)
        if (!r->streams[i].rundown && r->streams[i].thread_id == m->thread_id)
            new_thread = false;
    r->info.threads += new_thread;
    stream *s = &r->streams[r->stream_count++];
    memset(s, 0, sizeof *s);
    s->stream_id = m->stream_id;
    s->thread_id = m->thread_id;
    s->rundown = rundown;
    return s;
}

static int compare_stacks(const void *a, const void *b)
{
    const stack_def *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int compare_clocks(const void *a, const void *b)
{
    const clock_pair *x = a, *y = b;
    return x->ticks < y->ticks ? -1 : x->ticks > y->ticks;
}

/* By time, then by every field, so that records of one time come in one order whoever reads
 * them (a file reader sorts them all at once, a follower as they become final). */
static int compare_lost(const void *a, const void *b)
{
    const ht_event *x = a, *y = b;
    const ht_event_lost *p = &x->u.lost, *q = &y->u.lost;
    if (x->timestamp_ns != y->timestamp_ns)
        return x->timestamp_ns < y->timestamp_ns ? -1 : 1;
    if (x->thread_id != y->thread_id)
        return x->thread_id < y->thread_id ? -1 : 1;
    if (p->Reason != q->Reason)
        return p->Reason < q->Reason ? -1 : 1;
    if (p->FirstTimestamp != q->FirstTimestamp)
        return p->FirstTimestamp < q->FirstTimestamp ? -1 : 1;
    return p->Count < q->Count ? -1 : p->Count > q->Count;
}

/* The segment slopes of clocks[from..clock_count), and the conversion's cache forgotten. */
static void clock_slopes(ht_reader *r, size_t from)
{
    r->segment_start = r->segment_length = 0;
    r->clock_index = 0;
    size_t n = r->clock_count;
    uint64_t fallback = (uint64_t)(((unsigned __int128)1000000000u << 32) / r->ticks_per_second);
    for (size_t i = from; i < n; i++) {
        if (i + 1 < n) {
            unsigned __int128 dn = (unsigned __int128)(r->clocks[i + 1].ns - r->clocks[i].ns) << 32;
            uint64_t dt = r->clocks[i + 1].ticks - r->clocks[i].ticks;
            unsigned __int128 m = dn / dt;
            r->clocks[i].mult = m > UINT64_MAX ? UINT64_MAX : (uint64_t)m;
        } else {
            r->clocks[i].mult = i > 0 ? r->clocks[i - 1].mult : fallback;
        }
    }
}

/* Appends a pair to the table if its ticks and ns both pass the last kept pair's. */
static void clock_keep(ht_reader *r, size_t *kept, clock_pair pair)
{
    size_t n = *kept;
    if (n == 0 || (pair.ticks > r->clocks[n - 1].ticks && pair.ns > r->clocks[n - 1].ns))
        r->clocks[(*kept)++] = pair;
}

static void finish_clock(ht_reader *r)
{
    if (r->tick_kind == HTI_TICKS_NS) {
        r->clock_count = 0;
        r->clock_index = 0;
        r->segment_start = 0;
        r->segment_length = UINT64_MAX; /* identity: ns = 0 + ticks * 1.0 */
        r->segment_mult = 1ull << 32;
        return;
    }
    if (r->clock_count)
        qsort(r->clocks, r->clock_count, sizeof *r->clocks, compare_clocks);
    /* Keep strictly increasing pairs only. */
    size_t n = 0;
    for (size_t i = 0; i < r->clock_count; i++)
        clock_keep(r, &n, r->clocks[i]);
    r->clock_count = n;
    clock_slopes(r, 0);
}
static uint64_t ticks_to_ns_slow(ht_reader *r, uint64_t ticks);

/* Fast path: the tick lies in the segment of the previous conversion. */
static inline uint64_t ticks_to_ns(ht_reader *r, uint64_t ticks)
{
    if (__builtin_expect(ticks - r->segment_start < r->segment_length, 1))
        return r->segment_ns +
               (uint64_t)(((unsigned __int128)(ticks - r->segment_start) * r->segment_mult) >> 32);
    return ticks_to_ns_slow(r, ticks);
}

static uint64_t ticks_to_ns_slow(ht_reader *r, uint64_t ticks)
{
    if (r->tick_kind == HTI_TICKS_NS)
        return ticks;
    if (r->clock_count == 0) {
        uint64_t mult = (uint64_t)(((unsigned __int128)1000000000u << 32) / r->ticks_per_second);
        if (ticks >= r->start_ticks)
            return r->info.start_ns +
                   (uint64_t)(((unsigned __int128)(ticks - r->start_ticks) * mult) >> 32);
        uint64_t back = (uint64_t)(((unsigned __int128)(r->start_ticks - ticks) * mult) >> 32);
        return back < r->info.start_ns ? r->info.start_ns - back : 0;
    }
    size_t i = r->clock_index;
    if (i >= r->clock_count)
        i = 0;
    if (ticks < r->clocks[i].ticks || (i + 1 < r->clock_count && ticks >= r->clocks[i + 1].ticks)) {
        size_t low = 0, high = r->clock_count; /* last pair with ticks <= t */
        while (high - low > 1) {
            size_t mid = (low + high) / 2;
            if (r->clocks[mid].ticks <= ticks)
                low = mid;
            else
                high = mid;
        }
        i = low;
        r->clock_index = i;
    }
    const clock_pair *p = &r->clocks[i];
    if (ticks >= p->ticks) {
        /* Remember the segment [p, next pair) for the fast path. */
        r->segment_start = p->ticks;
        r->segment_length = i + 1 < r->clock_count ? r->clocks[i + 1].ticks - p->ticks
                                                   : UINT64_MAX - p->ticks;
        r->segment_ns = p->ns;
        r->segment_mult = p->mult;
        return p->ns + (uint64_t)(((unsigned __int128)(ticks - p->ticks) * p->mult) >> 32);
    }
    uint64_t back = (uint64_t)(((unsigned __int128)(p->ticks - ticks) * p->mult) >> 32);
    return back < p->ns ? p->ns - back : 0;
}

/* The preamble: magic and a major version this reader knows. size: bytes of input so far. */
int hti_reader_check_preamble(ht_reader *r, const uint8_t *bytes, uint64_t size)
{
    if (size < HTI_PREAMBLE_SIZE)
        return fail(r, -EBADMSG, "not a heaptrail trace: %llu bytes, shorter than the preamble",
                    (unsigned long long)size);
    hti_preamble preamble;
    if (hti_preamble_decode(bytes, &preamble) != 0)
        return fail(r, -EBADMSG, "not a heaptrail trace: bad magic at offset 0");
    r->info.version_major = preamble.version_major;
    r->info.version_minor = preamble.version_minor;
    if (r->info.version_major != HTI_VERSION_MAJOR)
        return fail(r, -EBADMSG, "unsupported format version %u.%u at offset 8 (this reader: %u.x)",
                    r->info.version_major, r->info.version_minor, HTI_VERSION_MAJOR);
    return 0;
}

static void queue_push(ht_reader *r, size_t index);

/* An EVENTS chunk is only indexed here (its meta read, its body left for the merge). A
 * follower's stream that waited for it goes back into the merge. */
static int index_events_chunk(ht_reader *r, chunk_ref *c)
{
    uint64_t offset = c->offset;
    uint8_t copy[HTI_CHUNK_META_MAX];
    const uint8_t *meta = copy;
    if (c->data)
        meta = c->data + HTI_CHUNK_HEADER_SIZE;
    else if (read_at(r, offset + HTI_CHUNK_HEADER_SIZE, copy, c->header.meta_length) != 0)
        return r->status;
    if (hti_events_meta_decode(meta, c->header.meta_length, &c->meta) != 0)
        return fail(r, -EBADMSG, "malformed event chunk meta at offset %llu",
                    (unsigned long long)offset);
    if (c->header.raw_length > HTI_CHUNK_BODY_MAX || c->meta.event_count > c->header.raw_length)
        return fail(r, -EBADMSG, "event count %llu does not fit the chunk at offset %llu",
                    (unsigned long long)c->meta.event_count, (unsigned long long)offset);
    stream *s = stream_for(r, &c->meta);
    if (!s || GROW(r, s->chunks, s->count, s->capacity) != 0)
        return r->status;
    s->chunks[s->count++] = *c;
    c->data = NULL; /* the stream's now */
    r->info.events += c->meta.event_count;
    r->info.event_chunks++;
    if (r->intake && !s->queued && !s->loaded) {
        /* A lower bound of its next event: a fresh body's base, else where the stream was. */
        s->key = c->meta.offset == 0 || !s->have_previous ? c->meta.base_ticks : s->state.ticks;
        queue_push(r, (size_t)(s - r->streams));
    }
    return 0;
}

/* Any other known chunk is read whole into the tables now (one header, first). */
static int parse_record_chunk(ht_reader *r, const chunk_ref *c)
{
    const uint8_t *body;
    size_t length;
    if (load_body(r, c, NULL, NULL, &body, &length) != 0)
        return r->status;
    switch (c->header.type) {
    case HTI_CHUNK_HEADER: {
        int error = r->have_header ? fail(r, -EBADMSG, "second header chunk at offset %llu",
                                          (unsigned long long)c->offset)
                                   : parse_header(r, c, body, length);
        r->have_header = true;
        return error;
    }
    case HTI_CHUNK_STACKS: return parse_stacks(r, c, body, length);
    case HTI_CHUNK_MODULES: return parse_modules(r, c, body, length);
    case HTI_CHUNK_STRINGS: return parse_strings(r, c, body, length);
    case HTI_CHUNK_LOST: return parse_lost(r, c, body, length);
    case HTI_CHUNK_CLOCK: return parse_clock(r, c, body, length);
    case HTI_CHUNK_FOOTER: return parse_footer(r, c, body, length);
    default: return 0;
    }
}

void hti_reader_cut(ht_reader *r, uint64_t offset, uint64_t left, uint64_t total)
{
    r->info.truncated = true;
    if (total == 0)
        warn(r, "the file ends inside a chunk header at offset %llu; read up to there",
             (unsigned long long)offset);
    else
        warn(r,
             "the file ends inside the chunk at offset %llu (%llu of %llu bytes); read up to "
             "there",
             (unsigned long long)offset, (unsigned long long)left, (unsigned long long)total);
}

int hti_reader_frame(ht_reader *r, uint64_t offset, const uint8_t head[HTI_CHUNK_HEADER_SIZE],
                     chunk_ref *c, uint64_t *total)
{
    memset(c, 0, sizeof *c);
    c->offset = offset;
    const char *why = NULL;
    if (hti_chunk_header_decode(head, &c->header, &why) != 0)
        return fail(r, -EBADMSG, "%s at offset %llu", why, (unsigned long long)offset);
    *total = HTI_CHUNK_HEADER_SIZE + (uint64_t)c->header.meta_length + c->header.body_length;
    return 0;
}

static int live_update(ht_reader *r, unsigned type, size_t clocks_before);

int hti_reader_take(ht_reader *r, chunk_ref *c)
{
    if (!r->have_header && c->header.type != HTI_CHUNK_HEADER)
        return fail(r, -EBADMSG, "the first chunk (offset %llu) is not a header",
                    (unsigned long long)c->offset);
    size_t clocks_before = r->clock_count;
    int error = 0;
    if (c->header.type == HTI_CHUNK_EVENTS)
        error = index_events_chunk(r, c);
    else if (c->header.type <= HTI_CHUNK_FOOTER)
        error = parse_record_chunk(r, c);
    else
        warn(r, "unknown chunk type %u at offset %llu skipped", c->header.type,
             (unsigned long long)c->offset);
    if (error)
        return error;
    r->info.chunks++;
    return r->intake ? live_update(r, c->header.type, clocks_before) : 0;
}

/* Reads every chunk header from the preamble on: indexes the events, parses the rest. A file
 * cut short is read up to its last whole chunk (truncated, with a warning). */
static int scan_chunks(ht_reader *r)
{
    uint64_t offset = HTI_PREAMBLE_SIZE;
    while (offset < r->size) {
        uint64_t left = r->size - offset;
        if (left < HTI_CHUNK_HEADER_SIZE) {
            hti_reader_cut(r, offset, left, 0);
            break;
        }
        uint8_t head[HTI_CHUNK_HEADER_SIZE];
        chunk_ref c;
        uint64_t total;
        if (read_at(r, offset, head, sizeof head) != 0 ||
            hti_reader_frame(r, offset, head, &c, &total) != 0)
            return r->status;
        if (total > left) {
            hti_reader_cut(r, offset, left, total);
            break;
        }
        if (hti_reader_take(r, &c) != 0)
            return r->status;
        offset += total;
    }
    r->info.valid_size = offset;
    r->info.file_size = r->size;
    if (!r->have_header)
        return fail(r, -EBADMSG, "no header chunk");
    return 0;
}

/* The module list handed out: each module with its path from the string table. */
static int resolve_modules(ht_reader *r)
{
    free(r->module_list);
    r->module_list = calloc(r->module_count ? r->module_count : 1, sizeof *r->module_list);
    if (!r->module_list)
        return fail(r, -ENOMEM, "out of memory");
    for (size_t i = 0; i < r->module_count; i++) {
        ht_module *m = &r->module_list[i];
        *m = r->modules[i].module;
        m->Path = "";
        for (size_t j = 0; j < r->string_count; j++)
            if (r->strings[j].id == r->modules[i].string_id) {
                m->Path = r->strings[j].text;
                break;
            }
    }
    return 0;
}

/* The stack table in id order (ids come in order as a rule: only a disorder sorts it). */
static void sort_stacks(ht_reader *r)
{
    for (size_t i = r->stacks_sorted ? r->stacks_sorted : 1; i < r->stack_count; i++)
        if (r->stacks[i - 1].id > r->stacks[i].id) {
            qsort(r->stacks, r->stack_count, sizeof *r->stacks, compare_stacks);
            break;
        }
    r->stacks_sorted = r->stack_count;
    r->info.stacks = r->stack_count;
}

static uint64_t ticks_to_ns(ht_reader *r, uint64_t ticks);

/* LOST chunk records that became final (all of them for a file) move to the final range, in
 * ns, in order. */
static void finish_lost(ht_reader *r)
{
    size_t first = r->lost_final;
    for (size_t i = r->lost_final; i < r->lost_count; i++) {
        ht_event e = r->lost[i];
        if (!r->all_final && e.timestamp_ns >= r->final_ticks)
            continue;
        e.timestamp_ns = ticks_to_ns(r, e.timestamp_ns);
        e.u.lost.FirstTimestamp = ticks_to_ns(r, e.u.lost.FirstTimestamp);
        e.u.lost.LastTimestamp = ticks_to_ns(r, e.u.lost.LastTimestamp);
        r->lost[i] = r->lost[r->lost_final];
        r->lost[r->lost_final++] = e;
    }
    if (r->lost_final == first)
        return;
    qsort(r->lost + r->lost_pos, r->lost_final - r->lost_pos, sizeof *r->lost, compare_lost);
    if (r->intake && r->lost_pos >= 64 && r->lost_pos * 2 >= r->lost_count) {
        /* A follower keeps only what is still to come. */
        memmove(r->lost, r->lost + r->lost_pos, (r->lost_count - r->lost_pos) * sizeof *r->lost);
        r->lost_count -= r->lost_pos;
        r->lost_final -= r->lost_pos;
        r->lost_pos = 0;
    }
}

/* info.end_ns: the last clock pair's time once everything is final, else the watermark's. */
static void update_end(ht_reader *r)
{
    uint64_t last = 0;
    if (!r->all_final)
        last = r->recent_ns[0];
    else if (r->clock_count)
        last = r->clocks[r->clock_count - 1].ns;
    r->info.end_ns = last > r->info.start_ns ? last : r->info.start_ns;
}

static int scan(ht_reader *r)
{
    uint8_t preamble[HTI_PREAMBLE_SIZE];
    if (r->size >= HTI_PREAMBLE_SIZE && read_at(r, 0, preamble, sizeof preamble) != 0)
        return r->status;
    if (hti_reader_check_preamble(r, preamble, r->size) != 0 || scan_chunks(r) != 0)
        return r->status;
    sort_stacks(r);
    finish_clock(r);
    r->all_final = true;
    finish_lost(r);
    update_end(r);
    if (resolve_modules(r) != 0)
        return r->status;
    r->info.program = r->program ? r->program : "";
    r->info.command_line = r->command_line ? r->command_line : "";
    return 0;
}

/* ---- a followed trace: its tables and watermark as chunks arrive ---- */

/* New pairs clocks[from..clock_count) arrived: kept in the raw list, and the conversion table
 * made what the file reader's would be over every pair so far (extended as a rule; rebuilt when
 * a pair comes out of order). The watermark becomes the second-latest pair's ticks. */
static int clock_arrived(ht_reader *r, size_t from)
{
    size_t arrived = r->clock_count - from;
    if (grow((void **)&r->raw_clocks, &r->raw_capacity, r->raw_count + arrived, sizeof(clock_pair)))
        return fail(r, -ENOMEM, "out of memory");
    bool in_order = true;
    for (size_t i = from; i < r->clock_count; i++) {
        clock_pair pair = r->clocks[i];
        if (r->raw_count && pair.ticks <= r->raw_max_ticks)
            in_order = false;
        if (r->raw_count == 0 || pair.ticks > r->raw_max_ticks)
            r->raw_max_ticks = pair.ticks;
        r->raw_clocks[r->raw_count++] = pair;
        r->recent_ticks[0] = r->recent_ticks[1];
        r->recent_ns[0] = r->recent_ns[1];
        r->recent_ticks[1] = pair.ticks;
        r->recent_ns[1] = pair.ns;
        if (++r->pairs_received >= 2 && r->recent_ticks[0] > r->final_ticks)
            r->final_ticks = r->recent_ticks[0];
    }
    if (r->tick_kind == HTI_TICKS_NS) {
        r->clock_count = 0;
        return 0;
    }
    if (!in_order) {
        if (grow((void **)&r->clocks, &r->clock_capacity, r->raw_count, sizeof(clock_pair)))
            return fail(r, -ENOMEM, "out of memory");
        memcpy(r->clocks, r->raw_clocks, r->raw_count * sizeof(clock_pair));
        r->clock_count = r->raw_count;
        finish_clock(r);
        return 0;
    }
    size_t kept = from;
    for (size_t i = from; i < from + arrived; i++)
        clock_keep(r, &kept, r->clocks[i]);
    r->clock_count = kept;
    clock_slopes(r, from ? from - 1 : 0);
    return 0;
}

void hti_reader_all_final(ht_reader *r)
{
    r->all_final = true;
    finish_lost(r);
    update_end(r);
}

/* What a chunk of type changes in a follower's tables (a file's are settled once, after the
 * scan): the header's fields, stacks in order, the module list, the conversion and the
 * watermark, the LOST records that became final. */
static int live_update(ht_reader *r, unsigned type, size_t clocks_before)
{
    switch (type) {
    case HTI_CHUNK_HEADER:
        r->info.program = r->program ? r->program : "";
        r->info.command_line = r->command_line ? r->command_line : "";
        finish_clock(r);
        update_end(r);
        return 0;
    case HTI_CHUNK_STACKS: sort_stacks(r); return 0;
    case HTI_CHUNK_MODULES:
    case HTI_CHUNK_STRINGS: return resolve_modules(r);
    case HTI_CHUNK_LOST: finish_lost(r); return 0;
    case HTI_CHUNK_CLOCK:
    case HTI_CHUNK_FOOTER:
        if (clock_arrived(r, clocks_before) != 0)
            return r->status;
        /* The footer's pair is the last: the writer drained everything before it. */
        if (type == HTI_CHUNK_FOOTER)
            r->all_final = true;
        finish_lost(r);
        update_end(r);
        return 0;
    default: return 0;
    }
}
/* ---- merge ---- */

static bool before(const ht_reader *r, size_t a, size_t b)
{
    const stream *x = &r->streams[a], *y = &r->streams[b];
    if (x->key != y->key)
        return x->key < y->key;
    if (x->rundown != y->rundown)
        return x->rundown;
    return a < b;
}

static void merge_queue_sift_down(ht_reader *r, size_t i)
{
    size_t n = r->merge_count;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        if (l < n && before(r, r->merge_queue[l], r->merge_queue[best]))
            best = l;
        if (l + 1 < n && before(r, r->merge_queue[l + 1], r->merge_queue[best]))
            best = l + 1;
        if (best == i)
            return;
        size_t t = r->merge_queue[i];
        r->merge_queue[i] = r->merge_queue[best];
        r->merge_queue[best] = t;
        i = best;
    }
}

/* A follower's stream that got a chunk after it ran out (the queue has room: stream_for). */
static void queue_push(ht_reader *r, size_t index)
{
    r->streams[index].queued = true;
    size_t i = r->merge_count++;
    r->merge_queue[i] = index;
    while (i > 0 && before(r, index, r->merge_queue[(i - 1) / 2])) {
        r->merge_queue[i] = r->merge_queue[(i - 1) / 2];
        i = (i - 1) / 2;
        r->merge_queue[i] = index;
    }
}

/* The top stream has nothing left (a follower's: for now; it keeps no buffers meanwhile). */
static void merge_queue_pop(ht_reader *r)
{
    stream *s = &r->streams[r->merge_queue[0]];
    s->queued = false;
    if (r->intake) {
        free(s->batch);
        free(s->buffer);
        s->batch = NULL;
        s->buffer = NULL;
        s->buffer_capacity = 0;
    }
    r->merge_queue[0] = r->merge_queue[--r->merge_count];
    if (r->merge_count)
        merge_queue_sift_down(r, 0);
}

static int rewind_locked(ht_reader *r)
{
    r->merge_count = 0;
    r->lost_pos = 0;
    r->clock_index = 0;
    for (size_t i = 0; i < r->stream_count; i++) {
        stream *s = &r->streams[i];
        s->next_chunk = 0;
        s->loaded = false;
        s->queued = false;
        s->have_previous = false;
        s->batch_count = s->batch_pos = 0;
        if (s->count == 0)
            continue;
        s->key = s->chunks[0].meta.base_ticks;
        s->queued = true;
        r->merge_queue[r->merge_count++] = i;
    }
    for (size_t i = r->merge_count / 2 + 1; i-- > 0;)
        merge_queue_sift_down(r, i);
    return 0;
}

/* Decodes the next batch of the loaded chunk. 0, or an error. */
static int decode_batch(ht_reader *r, stream *s)
{
    const uint8_t *bad = NULL;
    long n = hti_decode_events(&s->cursor, &s->state, s->thread_id, s->batch, BATCH, &bad);
    if (n < 0)
        return fail(r, -EBADMSG, "malformed event at byte %llu of the chunk at offset %llu",
                    (unsigned long long)(bad - s->buffer), (unsigned long long)s->chunk_offset);
    s->decoded += (uint64_t)n;
    if (s->decoded > s->expected || (s->cursor.p == s->cursor.end && s->decoded != s->expected))
        return fail(r, -EBADMSG, "the chunk at offset %llu holds %llu events, its header says %llu",
                    (unsigned long long)s->chunk_offset, (unsigned long long)s->decoded,
                    (unsigned long long)s->expected);
    s->batch_count = (size_t)n;
    s->batch_pos = 0;
    return 0;
}

/* A follower's chunk is decoded (or skipped): its bytes go, and the stream's list forgets the
 * chunks before it once they are many. */
static void release_chunks(ht_reader *r, stream *s)
{
    if (!r->intake)
        return;
    for (size_t i = 0; i < s->next_chunk; i++)
        if (s->chunks[i].data) {
            r->pending_bytes -= HTI_CHUNK_HEADER_SIZE + (uint64_t)s->chunks[i].header.meta_length +
                                s->chunks[i].header.body_length;
            free(s->chunks[i].data);
            s->chunks[i].data = NULL;
        }
    if (s->next_chunk == s->count || s->next_chunk >= 64) {
        memmove(s->chunks, s->chunks + s->next_chunk,
                (s->count - s->next_chunk) * sizeof *s->chunks);
        s->count -= s->next_chunk;
        s->next_chunk = 0;
    }
}

/* Loads the stream's next decodable chunk and its first batch. 0 with s->loaded false: no more
 * chunks in this stream (a follower's: for now). */
static int load_next(ht_reader *r, stream *s)
{
    while (s->next_chunk < s->count) {
        const chunk_ref *c = &s->chunks[s->next_chunk++];
        const hti_events_meta *m = &c->meta;
        if (m->offset != 0 &&
            !(s->have_previous && s->previous_seq == m->fill_seq && s->previous_end == m->offset)) {
            warn(r, "the chunk at offset %llu continues events that are missing; skipped",
                 (unsigned long long)c->offset);
            s->have_previous = false;
            release_chunks(r, s);
            continue;
        }
        if (!s->batch && !(s->batch = malloc(BATCH * sizeof *s->batch)))
            return fail(r, -ENOMEM, "out of memory");
        const uint8_t *body;
        size_t length;
        if (load_body(r, c, &s->buffer, &s->buffer_capacity, &body, &length) != 0)
            return r->status;
        if (m->offset == 0) {
            s->state.ticks = m->base_ticks;
            s->state.address = 0;
            s->state.heap = 0;
        }
        s->cursor = hti_cursor_make(s->buffer, length);
        s->decoded = 0;
        s->expected = m->event_count;
        s->chunk_offset = c->offset;
        s->have_previous = true;
        s->previous_seq = m->fill_seq;
        s->previous_end = m->offset + length;
        s->loaded = true;
        release_chunks(r, s); /* c is gone from here on */
        if (decode_batch(r, s) != 0)
            return r->status;
        if (s->batch_count == 0) {
            s->loaded = false;
            continue;
        }
        return 0;
    }
    s->loaded = false;
    return 0;
}

/* After the stream's batch ran out: decode more, or move to its next chunk. Updates the key.
 * Returns false when the stream has nothing left. */
static bool advance(ht_reader *r, stream *s)
{
    if (s->cursor.p < s->cursor.end) {
        if (decode_batch(r, s) != 0)
            return false;
        if (s->batch_count) {
            s->key = s->batch[0].timestamp_ns;
            return true;
        }
    }
    s->loaded = false;
    if (s->next_chunk >= s->count)
        return false;
    const chunk_ref *c = &s->chunks[s->next_chunk];
    if (c->meta.offset == 0) {
        s->key = c->meta.base_ticks; /* wait until the merge reaches it */
        return true;
    }
    if (load_next(r, s) != 0 || !s->loaded)
        return false;
    s->key = s->batch[0].timestamp_ns;
    return true;
}
static void finish_event(ht_reader *r, ht_event *e, bool rundown)
{
    e->timestamp_ns = ticks_to_ns(r, e->timestamp_ns);
    if (rundown)
        e->flags |= HT_EVENT_FLAG_RUNDOWN;
    if (e->kind == HT_EVENT_LOST) {
        e->u.lost.FirstTimestamp = ticks_to_ns(r, e->u.lost.FirstTimestamp);
        e->u.lost.LastTimestamp = ticks_to_ns(r, e->u.lost.LastTimestamp);
    } else if (r->info.sample_interval && !rundown &&
               (e->kind == HT_EVENT_ALLOC || e->kind == HT_EVENT_REALLOC)) {
        double size = (double)(e->kind == HT_EVENT_ALLOC ? e->u.alloc.Size : e->u.realloc.NewSize);
        double p = -expm1(-size / (double)r->info.sample_interval);
        e->weight = p > 0 ? 1.0 / p : 1.0;
        e->flags |= HT_EVENT_FLAG_SAMPLED;
    }
}

static inline bool is_final(const ht_reader *r, uint64_t ticks)
{
    return r->all_final || ticks < r->final_ticks;
}

long hti_reader_merge(ht_reader *r, ht_event *out, size_t max)
{
    if (r->status)
        return r->status;
    size_t n = 0;
    bool blocked = false; /* nothing more is final now (or nothing is left) */
    while (n < max) {
        if (!r->merge_count || !is_final(r, r->streams[r->merge_queue[0]].key)) {
            blocked = true;
            break;
        }
        size_t top = r->merge_queue[0];
        stream *s = &r->streams[top];
        if (!s->loaded) {
            if (load_next(r, s) != 0)
                return r->status;
            if (!s->loaded) {
                merge_queue_pop(r);
                continue;
            }
            s->key = s->batch[0].timestamp_ns;
            merge_queue_sift_down(r, 0);
            continue;
        }
        /* Hand out this stream's events while they come before every other stream's next. */
        size_t second = SIZE_MAX;
        if (r->merge_count > 1)
            second = r->merge_count > 2 && before(r, r->merge_queue[2], r->merge_queue[1])
                         ? r->merge_queue[2]
                         : r->merge_queue[1];
        uint64_t limit = second == SIZE_MAX ? UINT64_MAX : r->streams[second].key;
        bool wins_ties = second == SIZE_MAX || (s->rundown && !r->streams[second].rundown) ||
                         (s->rundown == r->streams[second].rundown && top < second);
        uint64_t lost_limit = r->lost_pos < r->lost_final ? r->lost[r->lost_pos].timestamp_ns
                                                          : UINT64_MAX;
        while (n < max && s->batch_pos < s->batch_count) {
            const ht_event *e = &s->batch[s->batch_pos];
            uint64_t t = e->timestamp_ns;
            if (t > limit || (t == limit && !wins_ties) || !is_final(r, t))
                break;
            out[n] = *e;
            finish_event(r, &out[n], s->rundown);
            if (out[n].timestamp_ns > lost_limit) {
                /* A LOST chunk record (already in ns) comes first; the event goes next round. */
                out[n++] = r->lost[r->lost_pos++];
                lost_limit = r->lost_pos < r->lost_final ? r->lost[r->lost_pos].timestamp_ns
                                                         : UINT64_MAX;
                continue;
            }
            n++;
            s->batch_pos++;
        }
        if (r->status)
            return r->status;
        if (s->batch_pos == s->batch_count) {
            if (!advance(r, s)) {
                if (r->status)
                    return r->status;
                merge_queue_pop(r);
                continue;
            }
        } else {
            s->key = s->batch[s->batch_pos].timestamp_ns;
        }
        merge_queue_sift_down(r, 0);
    }
    /* LOST chunk records go out before the first event after them: those left at the end, and
     * on a live trace those before the watermark, which every event still to come follows. */
    if (blocked) {
        bool all = r->all_final && !r->merge_count;
        uint64_t bound = all || r->all_final ? 0 : ticks_to_ns(r, r->final_ticks);
        while (n < max && r->lost_pos < r->lost_final &&
               (all || r->lost[r->lost_pos].timestamp_ns < bound))
            out[n++] = r->lost[r->lost_pos++];
    }
    return (long)n;
}

long ht_reader_read(ht_reader *r, ht_event *out, size_t max)
{
    return r->intake ? hti_follow_read(r, out, max) : hti_reader_merge(r, out, max);
}

/* ---- public ---- */

ht_reader *hti_reader_open_failed(ht_reader *r, char *error, size_t error_size)
{
    if (error && error_size)
        snprintf(error, error_size, "%s", r->error);
    int status = r->status;
    ht_reader_close(r);
    errno = status < 0 ? -status : EINVAL;
    return NULL;
}

static ht_reader *open_common(ht_reader *r, char *error, size_t error_size)
{
    hti_crc32c_init();
    if (scan(r) == 0 && rewind_locked(r) == 0)
        return r;
    return hti_reader_open_failed(r, error, error_size);
}
ht_reader *ht_reader_open(const char *path, char *error, size_t error_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (error && error_size)
            snprintf(error, error_size, "%s: %s", path, strerror(e));
        errno = e;
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (error && error_size)
            snprintf(error, error_size, "%s: not a regular file", path);
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    ht_reader *r = calloc(1, sizeof *r);
    if (!r) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    r->fd = fd;
    r->size = (uint64_t)st.st_size;
    return open_common(r, error, error_size);
}

ht_reader *ht_reader_open_memory(const void *data, size_t size, char *error, size_t error_size)
{
    ht_reader *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->fd = -1;
    r->memory = data ? data : (const uint8_t *)"";
    r->size = data ? size : 0;
    return open_common(r, error, error_size);
}

void ht_reader_close(ht_reader *r)
{
    if (!r)
        return;
    if (r->intake)
        hti_follow_close(r);
    else if (r->fd >= 0 && !r->memory)
        close(r->fd);
    for (size_t i = 0; i < r->stream_count; i++) {
        stream *s = &r->streams[i];
        for (size_t j = 0; j < s->count; j++)
            free(s->chunks[j].data);
        free(s->chunks);
        free(s->buffer);
        free(s->batch);
    }
    for (size_t i = 0; i < r->string_count; i++)
        free(r->strings[i].text);
    free(r->streams);
    free(r->clocks);
    free(r->raw_clocks);
    free(r->stacks);
    free(r->frames);
    free(r->strings);
    free(r->modules);
    free(r->module_list);
    free(r->lost);
    free(r->merge_queue);
    free(r->scratch);
    free(r->program);
    free(r->command_line);
    if (r->zstd)
        ZSTD_freeDCtx(r->zstd);
    free(r);
}

const ht_trace_info *ht_reader_info(const ht_reader *r)
{
    return &r->info;
}

const char *ht_reader_error(const ht_reader *r)
{
    return r->error;
}

const char *ht_reader_warnings(const ht_reader *r)
{
    return r->warnings;
}

int ht_reader_rewind(ht_reader *r)
{
    if (r->intake)
        return -ESPIPE; /* what was handed out is gone */
    if (r->status)
        return r->status;
    return rewind_locked(r);
}

bool ht_reader_stack(const ht_reader *r, uint32_t stack_id, const uint64_t **frames,
                     uint32_t *depth)
{
    size_t low = 0, high = r->stack_count;
    while (low < high) {
        size_t mid = (low + high) / 2;
        if (r->stacks[mid].id < stack_id)
            low = mid + 1;
        else
            high = mid;
    }
    if (low >= r->stack_count || r->stacks[low].id != stack_id)
        return false;
    *frames = &r->frames[r->stacks[low].offset];
    *depth = r->stacks[low].depth;
    return true;
}

size_t ht_reader_module_count(const ht_reader *r)
{
    return r->module_count;
}

const ht_module *ht_reader_module(const ht_reader *r, size_t index)
{
    return index < r->module_count ? &r->module_list[index] : NULL;
}

const ht_module *ht_reader_module_find(const ht_reader *r, uint64_t address)
{
    for (size_t i = r->module_count; i-- > 0;) {
        const ht_module *m = &r->module_list[i];
        if (address >= m->Start && address - m->Start < m->Size)
            return m;
    }
    return NULL;
}
