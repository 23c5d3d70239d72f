/* consumer.c — real-time consumers: the writer copies each drained range into a byte queue; the
 * consumer thread decodes it and calls the callbacks with batches of ht_event (timestamps in ns,
 * never decreasing within a stream).
 *
 * The queue is single-producer (writer) single-consumer (consumer thread), in mmap memory,
 * with 8-byte aligned records and a pad record at the wrap. The writer never waits on the
 * consumer for long (the callback may take heap locks that a blocked thread holds): when the
 * queue stays full it drops the range, counts it in lost_consumer and tells the consumer with
 * a LOST event once there is room. The consumer thread runs under the guard, so heap calls
 * made by callbacks are not traced. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "stop_world.h"
#include "trace_internal.h"

#define QUEUE_BYTES (8u << 20)
#define BATCH_EVENTS 1024u
#define STREAM_SLOTS 8192u
#define RECORD_PAD 0u
#define RECORD_EVENTS 1u
#define RECORD_LOST 2u

typedef struct record_header {
    uint32_t size; /* whole record, multiple of 8 */
    uint32_t type;
} record_header;

typedef struct events_record {
    hti_events_meta meta;
    uint64_t body_size; /* the record is padded to 8 bytes */
} events_record;

typedef struct stream_slot {
    uint64_t stream_id;
    uint64_t fill_seq;
    uint64_t end_offset;
    hti_stream_state state;
    uint64_t last_ns; /* timestamp of the stream's last delivered event */
} stream_slot;

static struct {
    uint8_t *ring;
    _Atomic uint64_t head;     /* bytes pushed */
    _Atomic uint64_t tail;     /* bytes consumed */
    _Atomic uint32_t wake;     /* futex: bumped on push */
    _Atomic uint32_t progress; /* futex: bumped on consume */
    _Atomic uint32_t stop;
    ht_event *batch;
    stream_slot *streams;
    hti_lost_record pending; /* dropped ranges not yet reported */
} queue;

static uint64_t stream_key_of(const events_record *r)
{
    return r->meta.stream_id;
}

/* ---- producer side (writer thread) ---- */

static bool queue_room(size_t need)
{
    uint64_t head = atomic_load_explicit(&queue.head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&queue.tail, memory_order_acquire);
    size_t at = (size_t)(head % QUEUE_BYTES);
    size_t contiguous = QUEUE_BYTES - at;
    size_t total = need <= contiguous ? need : contiguous + need;
    return QUEUE_BYTES - (head - tail) >= total;
}

static uint8_t *queue_reserve(hti_session *s, size_t need)
{
    for (int tries = 0; !queue_room(need); tries++) {
        /* Block mode waits a little for the consumer; never indefinitely. */
        if (!s->block || tries >= 100 || atomic_load(&queue.stop))
            return NULL;
        uint32_t seen = atomic_load(&queue.progress);
        if (!queue_room(need))
            hti_futex_wait(&queue.progress, seen, 1000000);
    }
    uint64_t head = atomic_load_explicit(&queue.head, memory_order_relaxed);
    size_t at = (size_t)(head % QUEUE_BYTES);
    if (QUEUE_BYTES - at < need) {
        record_header pad = {(uint32_t)(QUEUE_BYTES - at), RECORD_PAD};
        memcpy(queue.ring + at, &pad, sizeof pad);
        atomic_store_explicit(&queue.head, head + pad.size, memory_order_relaxed);
        at = 0;
    }
    return queue.ring + at;
}

static void queue_commit(size_t size)
{
    atomic_fetch_add_explicit(&queue.head, size, memory_order_release);
    atomic_fetch_add_explicit(&queue.wake, 1, memory_order_release);
    hti_futex_wake(&queue.wake);
}

static bool push_lost(hti_session *s, const hti_lost_record *lost)
{
    size_t need = sizeof(record_header) + sizeof *lost;
    uint8_t *p = queue_reserve(s, need);
    if (!p)
        return false;
    record_header h = {(uint32_t)need, RECORD_LOST};
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, lost, sizeof *lost);
    queue_commit(need);
    return true;
}

void hti_consumer_push(hti_session *s, const hti_events_meta *meta, const void *body, size_t size)
{
    if (!queue.ring)
        return;
    if (queue.pending.count && push_lost(s, &queue.pending))
        queue.pending.count = 0;
    size_t need = (sizeof(record_header) + sizeof(events_record) + size + 7u) & ~(size_t)7u;
    uint8_t *p = need <= QUEUE_BYTES / 2 ? queue_reserve(s, need) : NULL;
    if (!p) {
        atomic_fetch_add(&s->lost_consumer, meta->event_count);
        uint64_t now = hti_ticks();
        if (!queue.pending.count) {
            queue.pending.thread_id = meta->thread_id;
            queue.pending.reason = HT_LOST_CONSUMER;
            queue.pending.first_ticks = meta->base_ticks ? meta->base_ticks : now;
            queue.pending.last_ticks = now;
        }
        queue.pending.count += meta->event_count;
        if (now > queue.pending.last_ticks) /* first <= last, whatever the clocks do */
            queue.pending.last_ticks = now;
        if (queue.pending.last_ticks < queue.pending.first_ticks)
            queue.pending.last_ticks = queue.pending.first_ticks;
        return;
    }
    record_header h = {(uint32_t)need, RECORD_EVENTS};
    events_record r;
    memset(&r, 0, sizeof r);
    r.meta = *meta;
    r.body_size = size;
    memcpy(p, &h, sizeof h);
    memcpy(p + sizeof h, &r, sizeof r);
    memcpy(p + sizeof h + sizeof r, body, size);
    queue_commit(need);
}

/* ---- consumer thread ---- */

/* last_ns: the stream's last timestamp, or NULL outside a stream. The writer refines the clock
 * calibration while the program runs, so an event converted just after a refinement can come
 * out a little earlier than one converted before it; within a stream, time never goes back. */
static void deliver(hti_session *s, ht_event *events, size_t count, uint64_t *last_ns)
{
    for (size_t i = 0; i < count; i++) {
        ht_event *e = &events[i];
        e->timestamp_ns = hti_clock_to_ns(e->timestamp_ns);
        if (last_ns) {
            if (e->timestamp_ns < *last_ns)
                e->timestamp_ns = *last_ns;
            *last_ns = e->timestamp_ns;
        }
        if (e->kind == HT_EVENT_LOST) {
            e->u.lost.FirstTimestamp = hti_clock_to_ns(e->u.lost.FirstTimestamp);
            e->u.lost.LastTimestamp = hti_clock_to_ns(e->u.lost.LastTimestamp);
        }
        uint64_t interval = s->options.sample_interval;
        if (interval && (e->kind == HT_EVENT_ALLOC || e->kind == HT_EVENT_REALLOC)) {
            double size = (double)(e->kind == HT_EVENT_ALLOC ? e->u.alloc.Size
                                                             : e->u.realloc.NewSize);
            double p = -expm1(-size / (double)interval);
            e->weight = p > 0 ? 1.0 / p : 1.0;
            e->flags |= HT_EVENT_FLAG_SAMPLED;
        }
    }
    for (int i = 0; i < HT_TRACE_MAX_CONSUMERS; i++)
        if (s->options.consumers[i].callback)
            s->options.consumers[i].callback(events, count, s->options.consumers[i].context);
}

static void consume_events(hti_session *s, const uint8_t *payload, size_t size)
{
    events_record r;
    if (size < sizeof r)
        return;
    memcpy(&r, payload, sizeof r);
    const uint8_t *body = payload + sizeof r;
    size_t body_size = (size_t)r.body_size;
    if (body_size > size - sizeof r || body_size > HTI_FILL_BYTES)
        return;
    uint64_t key = stream_key_of(&r);
    stream_slot *slot = &queue.streams[key % STREAM_SLOTS];
    if (r.meta.offset == 0) {
        if (slot->stream_id != key)
            slot->last_ns = 0;
        slot->stream_id = key;
        slot->state.ticks = r.meta.base_ticks;
        slot->state.address = 0;
        slot->state.heap = 0;
    } else if (slot->stream_id != key || slot->fill_seq != r.meta.fill_seq ||
               slot->end_offset != r.meta.offset) {
        return; /* its beginning was dropped: cannot decode */
    }
    slot->fill_seq = r.meta.fill_seq;
    slot->end_offset = r.meta.offset + body_size;
    hti_cursor cursor = hti_cursor_make(body, body_size);
    while (cursor.p < cursor.end) {
        const uint8_t *bad;
        long n = hti_decode_events(&cursor, &slot->state, r.meta.thread_id, queue.batch,
                                   BATCH_EVENTS, &bad);
        if (n <= 0)
            break;
        if (r.meta.flags & HTI_EVENTS_RUNDOWN)
            for (long i = 0; i < n; i++)
                queue.batch[i].flags |= HT_EVENT_FLAG_RUNDOWN;
        deliver(s, queue.batch, (size_t)n, &slot->last_ns);
    }
}

static void consume_lost(hti_session *s, const uint8_t *payload, size_t size)
{
    hti_lost_record lost;
    if (size < sizeof lost)
        return;
    memcpy(&lost, payload, sizeof lost);
    ht_event *e = &queue.batch[0];
    memset(e, 0, sizeof *e);
    e->timestamp_ns = lost.last_ticks;
    e->thread_id = lost.thread_id;
    e->kind = HT_EVENT_LOST;
    e->weight = 1.0;
    hti_lost_to_event(&lost, e);
    deliver(s, e, 1, NULL);
}

static void *consumer_main(void *arg)
{
    hti_session *s = arg;
    hti_guard_enter();
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_setname_np(pthread_self(), "heaptrail-rt");
    hti_world_own_thread(true);
    for (;;) {
        uint32_t seen = atomic_load_explicit(&queue.wake, memory_order_acquire);
        uint64_t head = atomic_load_explicit(&queue.head, memory_order_acquire);
        uint64_t tail = atomic_load_explicit(&queue.tail, memory_order_relaxed);
        while (tail != head) {
            const uint8_t *p = queue.ring + tail % QUEUE_BYTES;
            record_header h;
            memcpy(&h, p, sizeof h);
            if (h.type == RECORD_EVENTS)
                consume_events(s, p + sizeof h, h.size - sizeof h);
            else if (h.type == RECORD_LOST)
                consume_lost(s, p + sizeof h, h.size - sizeof h);
            tail += h.size;
            atomic_store_explicit(&queue.tail, tail, memory_order_release);
            atomic_fetch_add_explicit(&queue.progress, 1, memory_order_release);
            hti_futex_wake(&queue.progress);
        }
        if (atomic_load(&queue.stop) && atomic_load(&queue.head) == tail)
            break;
        if (atomic_load(&queue.head) == tail)
            hti_futex_wait(&queue.wake, seen, 50 * 1000 * 1000);
    }
    hti_world_own_thread(false);
    return NULL;
}

int hti_consumer_start(hti_session *s)
{
    queue.ring = hti_map_memory(QUEUE_BYTES);
    queue.batch = hti_map_memory(BATCH_EVENTS * sizeof *queue.batch);
    queue.streams = hti_map_memory(STREAM_SLOTS * sizeof *queue.streams);
    if (!queue.ring || !queue.batch || !queue.streams) {
        hti_consumer_forget(s);
        return -ENOMEM;
    }
    atomic_store(&queue.head, 0);
    atomic_store(&queue.tail, 0);
    atomic_store(&queue.stop, 0);
    memset(&queue.pending, 0, sizeof queue.pending);
    hti_world_own_thread_coming(1);
    int error = pthread_create(&s->consumer, NULL, consumer_main, s);
    if (error) {
        hti_world_own_thread_coming(-1);
        hti_consumer_forget(s);
        return -error;
    }
    s->consumer_started = true;
    return 0;
}

void hti_consumer_stop(hti_session *s)
{
    if (s->consumer_started) {
        if (queue.pending.count && push_lost(s, &queue.pending))
            queue.pending.count = 0;
        atomic_store(&queue.stop, 1);
        atomic_fetch_add(&queue.wake, 1);
        hti_futex_wake(&queue.wake);
        pthread_join(s->consumer, NULL);
        s->consumer_started = false;
    }
    hti_consumer_forget(s);
}

void hti_consumer_forget(hti_session *s)
{
    (void)s;
    hti_unmap_memory(queue.ring, QUEUE_BYTES);
    hti_unmap_memory(queue.batch, BATCH_EVENTS * sizeof *queue.batch);
    hti_unmap_memory(queue.streams, STREAM_SLOTS * sizeof *queue.streams);
    queue.ring = NULL;
    queue.batch = NULL;
    queue.streams = NULL;
}

int hti_consumer_wait(hti_session *s)
{
    if (!s->consumer_started)
        return 0;
    uint64_t target = atomic_load(&queue.head);
    for (int i = 0; i < 5000; i++) {
        uint32_t seen = atomic_load(&queue.progress);
        if (atomic_load(&queue.tail) >= target)
            return 0;
        hti_futex_wait(&queue.progress, seen, 1000000);
    }
    return -ETIMEDOUT;
}
