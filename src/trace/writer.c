/* writer.c — the writer thread: drains thread buffers into framed chunks on the output and
 * into the consumers' queue.
 *
 * The writer never touches a heap (no malloc, no stdio): it reads committed ranges, frames them
 * (optional zstd through an mmap-backed allocator, CRC-32C), and writes them with pwritev at
 * offsets reserved atomically, so an emergency flush from a signal handler can write beside it.
 * A failed write never reaches the traced program: its events become LOST records (written
 * once writing works again, or counted in the footer/stats) and one message goes to stderr.
 * Regular files are rolled back to the last whole chunk on a short write, so the file stays
 * readable; a stream cut inside a chunk gets nothing more. Every event is in a readable chunk
 * or counted lost: once a body of a fill misses the output, the rest of that fill (which could
 * not be decoded without it) is counted lost, not written. Block/discard: fills are released as
 * soon as written; ring: only at snapshot/stop. A thread's buffer is freed once drained and its
 * thread gone: past its exit destructor (EXITING) the thread may still write, so it is probed.
 * The writer writes the header itself, so starting a session never waits for the output. Pipes,
 * FIFOs and sockets are written without blocking: on a full pipe the writer (only it) polls, and
 * a chunk it began is completed, never left half-way, unless a stop that may give up finds the
 * output stalled (HTI_STALL_NS) or past its limit: then the output is cut and the rest is counted
 * lost. A stream whose reader went away (EPIPE, ECONNRESET or ENOTCONN on a write, POLLHUP or
 * POLLERR at a flush pass) is cut too, and the session ends by itself (hti_session_end_by_itself); no write
 * raises SIGPIPE at the program (output_write). At stop the writer drains until no thread is
 * inside a hook (threads waiting for room get it), then drains for the last time and writes
 * the footer. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define ZSTD_STATIC_LINKING_ONLY
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "stop_world.h"
#include "trace_internal.h"

#define RECORDS_BYTES (256u << 10)
/* The HEADER's program path and command line are cut to these; with them it fits the records. */
#define HEADER_PROGRAM_BYTES 4096u
#define HEADER_COMMAND_LINE_BYTES 8192u
_Static_assert(HTI_HEADER_FIXED_MAX + HEADER_PROGRAM_BYTES + HEADER_COMMAND_LINE_BYTES <=
                   RECORDS_BYTES,
               "the HEADER fits the records buffer");
_Static_assert(HTI_WRITER_LOST_SLOTS *HTI_LOST_RECORD_MAX <= RECORDS_BYTES,
               "every pending LOST record fits one LOST chunk (lost_flush)");
/* An ending thread is looked for every EXIT_POLL_NS, EXIT_POLLS_FAST times, then at the
 * writer's usual passes (a main thread that called pthread_exit stays until the process ends). */
#define EXIT_POLL_NS 1000000L
#define ORPHAN_CHECK_NS 250000000L /* how often the writer looks whether the program is gone */
#define EXIT_POLLS_FAST 20u
/* While the writer waits for room in the output it looks at the stop and the clock this often. */
#define OUTPUT_POLL_MS 50
/* A crash flush waits this long for the writer thread to finish the chunk it is writing to a
 * stream (writing beside it would interleave two chunks). */
#define EMERGENCY_WAIT_NS 1000000000ull
/* A bounded stop gives the writer at least this long to write the footer after the heaps'
 * walk for it (HTI_END_*), however long the walk took. */
#define END_SLACK_NS 1000000000ull

_Atomic uint64_t hti_exit_give_up_at;
_Atomic uint64_t hti_finished_gen;
hti_fault hti_fault_write;
hti_fault hti_fault_open;
static HTI_TLS bool tls_writer_thread; /* the calling thread is the writer */

/* ---- futex ---- */

void hti_futex_wait(_Atomic uint32_t *word, uint32_t expected, long timeout_ns)
{
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, timeout_ns > 0 ? &ts : NULL,
            NULL, 0);
}

void hti_futex_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void hti_writer_wake(hti_session *s)
{
    atomic_fetch_add_explicit(&s->writer_wake, 1, memory_order_release);
    if (atomic_load_explicit(&s->writer_asleep, memory_order_acquire))
        hti_futex_wake(&s->writer_wake);
}

/* ---- zstd with mmap memory ---- */

static void *zstd_alloc(void *opaque, size_t size)
{
    (void)opaque;
    size_t *p = hti_map_memory(size + 16);
    if (!p)
        return NULL;
    p[0] = size + 16;
    return (uint8_t *)p + 16;
}

static void zstd_free(void *opaque, void *address)
{
    (void)opaque;
    if (address) {
        size_t *p = (size_t *)((uint8_t *)address - 16);
        hti_unmap_memory(p, p[0]);
    }
}

/* ---- output ---- */

/* Once per session, on stderr; never for a stream handed over (its client has the counts). */
static void report_write_error(hti_session *s, int error)
{
    atomic_fetch_add_explicit(&s->write_errors, 1, memory_order_relaxed);
    s->file_failed = true;
    if (!s->error_reported) {
        s->error_reported = true;
        const char *text = error == ETIMEDOUT ? "the output was stalled when the session stopped"
                                              : strerrordesc_np(error);
        if (!s->handed_over)
            hti_message("cannot write the trace; further events are counted as lost:",
                        text ? text : "error", -1);
    }
}

/* The reader of the stream went away (the writer thread saw it): nothing more is written, what
 * is left is counted lost, and the writer has the session ended (writer_work). */
static void reader_gone(hti_session *s, int error)
{
    if (!s->output_cut)
        s->output_cut = error;
    if (atomic_exchange(&s->reader_gone, 1))
        return;
    if (!s->error_reported) {
        s->error_reported = true;
        if (!s->handed_over)
            hti_message("the trace's reader went away: tracing stops", NULL, -1);
    }
}

/* At a flush pass, even with nothing to write: has the reader of a stream gone? A pipe without
 * reader polls POLLERR, a socket whose peer closed POLLHUP (a peer that only shut its writing
 * side does not). */
static void check_reader(hti_session *s)
{
    if (s->seekable || s->fd < 0 || s->output_cut || atomic_load(&s->reader_gone))
        return;
    struct pollfd ready = {s->fd, 0, 0};
    if (poll(&ready, 1, 0) == 1 && (ready.revents & (POLLERR | POLLHUP)))
        reader_gone(s, EPIPE);
}

/* Advances an iovec array past n bytes that were written. */
static void skip_written(struct iovec **iov, int *count, size_t n)
{
    while (*count > 0 && n >= (*iov)->iov_len) {
        n -= (*iov)->iov_len;
        (*iov)++;
        (*count)--;
    }
    if (*count > 0) {
        (*iov)->iov_base = (uint8_t *)(*iov)->iov_base + n;
        (*iov)->iov_len -= n;
    }
}

/* ---- fault injection ---- */

void hti_fault_set(hti_fault *f, uint32_t nth, int error, bool sticky, bool short_first)
{
    atomic_store(&f->countdown, 0);
    f->error = error;
    f->sticky = sticky;
    f->short_first = short_first;
    atomic_store(&f->fired, 0);
    atomic_store(&f->countdown, nth);
}

int hti_fault_hit(hti_fault *f)
{
    uint32_t n = atomic_load(&f->countdown);
    if (n == 0)
        return 0;
    if (n > 1) {
        atomic_store(&f->countdown, n - 1);
        return 0;
    }
    if (f->short_first) {
        f->short_first = false; /* the countdown stays at 1: the next call fails */
        return -1;
    }
    atomic_fetch_add(&f->fired, 1);
    if (!f->sticky)
        atomic_store(&f->countdown, 0);
    return f->error ? f->error : EIO;
}

/* ---- waiting for the output ---- */

/* When a stop or crash flush that may give up (or the process's exit) stops waiting, 0: never. */
static uint64_t give_up_at(hti_session *s)
{
    uint64_t session = atomic_load_explicit(&s->give_up_at, memory_order_relaxed);
    uint64_t exiting = atomic_load_explicit(&hti_exit_give_up_at, memory_order_relaxed);
    if (!session || (exiting && exiting < session))
        return exiting;
    return session;
}

bool hti_output_stalled(hti_session *s)
{
    uint64_t since = atomic_load_explicit(&s->blocked_since, memory_order_relaxed);
    return since && hti_monotonic_ns() - since >= HTI_STALL_NS;
}

static bool should_give_up(hti_session *s)
{
    uint64_t limit = give_up_at(s);
    return limit && (hti_monotonic_ns() >= limit || hti_output_stalled(s));
}

/* Waits until the output can take bytes. The writer thread may wait: only a stop that may give
 * up ends the wait (-ETIMEDOUT). */
static int wait_writable(hti_session *s)
{
    for (;;) {
        if (should_give_up(s))
            return -ETIMEDOUT;
        struct pollfd ready = {s->fd, POLLOUT, 0};
        int n = poll(&ready, 1, OUTPUT_POLL_MS);
        if (n > 0)
            return 0; /* writable, or an error the next write reports */
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

/* writev on a pipe without raising SIGPIPE at the program. The writer thread blocks every
 * signal: a SIGPIPE a write raises is directed at it, stays pending on it and goes with it. A
 * crash flush writes from a program thread: SIGPIPE is blocked around the write and one the
 * write raised is taken back before the mask is restored. Async-signal-safe. */
static ssize_t pipe_write(const hti_session *s, const struct iovec *iov, int count)
{
    if (tls_writer_thread)
        return writev(s->fd, iov, count);
    sigset_t pipe_signal, old, pending;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, &old);
    bool was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
    ssize_t n = writev(s->fd, iov, count);
    int error = errno;
    if (n < 0 && error == EPIPE && !was_pending) {
        struct timespec none = {0, 0};
        (void)sigtimedwait(&pipe_signal, NULL, &none);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = error;
    return n;
}

/* One write system call, through the fault-injection hook. Sockets: MSG_NOSIGNAL; pipes:
 * pipe_write. */
static ssize_t output_write(hti_session *s, struct iovec *iov, int count, uint64_t offset)
{
    int fault = hti_fault_check(&hti_fault_write);
    struct iovec part;
    if (HTI_UNLIKELY(fault > 0)) {
        errno = fault;
        return -1;
    }
    if (HTI_UNLIKELY(fault < 0)) {
        part.iov_base = iov[0].iov_base;
        part.iov_len = iov[0].iov_len > 1 ? iov[0].iov_len / 2 : iov[0].iov_len;
        iov = &part;
        count = 1;
    }
    if (s->seekable)
        return pwritev(s->fd, iov, count, (off_t)offset);
    if (s->socket) {
        struct msghdr message = {.msg_iov = iov, .msg_iovlen = (size_t)count};
        return sendmsg(s->fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    return pipe_write(s, iov, count);
}

/* Writes a whole chunk (or the preamble) to a stream. A chunk begun is completed: on a full
 * pipe the writer polls, however long, unless a stop that may give up finds the output stalled
 * or past its limit; then, and after an error in the middle of the chunk, the output is cut
 * (nothing more reaches it, so it ends at its last whole chunk). 0 or -errno. */
static int write_stream(hti_session *s, struct iovec *iov, int count, size_t total)
{
    size_t done = 0;
    int error = 0;
    while (done < total) {
        ssize_t n = output_write(s, iov, count, 0);
        if (n > 0) {
            done += (size_t)n;
            skip_written(&iov, &count, (size_t)n);
            if (atomic_load_explicit(&s->blocked_since, memory_order_relaxed))
                atomic_store(&s->blocked_since, hti_monotonic_ns()); /* progress */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!atomic_load_explicit(&s->blocked_since, memory_order_relaxed))
                atomic_store(&s->blocked_since, hti_monotonic_ns());
            if ((error = -wait_writable(s)) == 0)
                continue;
        } else {
            error = n < 0 ? errno : ENOSPC;
        }
        break;
    }
    atomic_store(&s->blocked_since, 0);
    if (error && (done > 0 || error == ETIMEDOUT))
        s->output_cut = error;
    if ((error == EPIPE || error == ECONNRESET || error == ENOTCONN) && tls_writer_thread)
        reader_gone(s, error);
    return -error;
}

/* Writes all of iov at the reserved place. 0 or -errno. */
static int write_all(hti_session *s, struct iovec *iov, int count, size_t total)
{
    if (s->output_cut)
        return -s->output_cut;
    if (s->seekable) {
        uint64_t offset = atomic_fetch_add_explicit(&s->file_offset, total, memory_order_relaxed);
        size_t done = 0;
        while (done < total) {
            ssize_t n = output_write(s, iov, count, offset + done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                int error = n < 0 ? errno : ENOSPC;
                /* Give the space back if nobody wrote after us, and cut any partial chunk. */
                uint64_t expected = offset + total;
                if (atomic_compare_exchange_strong(&s->file_offset, &expected, offset))
                    (void)!ftruncate(s->fd, (off_t)offset);
                return -error;
            }
            done += (size_t)n;
            skip_written(&iov, &count, (size_t)n);
        }
        return 0;
    }
    /* A stream cannot be rolled back: after a partial chunk, anything written would be read as
     * part of it. The writer thread keeps a crash flush from writing beside it (and stops
     * writing once one began). */
    bool writer_thread = tls_writer_thread;
    if (writer_thread) {
        atomic_store(&s->stream_busy, 1);
        if (atomic_load(&s->emergency)) {
            atomic_store(&s->stream_busy, 0);
            return -ECANCELED;
        }
    }
    int error = write_stream(s, iov, count, total);
    if (writer_thread)
        atomic_store(&s->stream_busy, 0);
    if (!error)
        atomic_fetch_add_explicit(&s->file_offset, total, memory_order_relaxed);
    return error;
}

/* Frames and writes one chunk, after `prefix` (the file's preamble, before the HEADER chunk: one
 * write, so that a stream that takes none of it holds no stray preamble). */
static int write_framed(hti_session *s, const void *prefix, size_t prefix_length, uint8_t type,
                        const void *meta, size_t meta_length, const void *body, size_t body_length,
                        bool compress)
{
    if (s->fd < 0)
        return 0;
    hti_chunk_header header =
        {type, 0, (uint16_t)meta_length, (uint32_t)body_length, (uint32_t)body_length, 0};
    if (compress && s->zstd && body_length > 128 && body_length <= RECORDS_BYTES) {
        size_t n = ZSTD_compressCCtx(s->zstd, s->scratch, s->scratch_size, body, body_length,
                                     s->options.compression_level);
        if (!ZSTD_isError(n) && n < body_length) {
            header.flags = HTI_CHUNK_FLAG_ZSTD;
            header.body_length = (uint32_t)n;
            body = s->scratch;
        }
    }
    uint8_t head[HTI_CHUNK_HEADER_SIZE];
    hti_chunk_header_encode(head, &header, meta, body);
    struct iovec iov[4] = {{(void *)prefix, prefix_length},
                           {head, sizeof head},
                           {(void *)meta, meta_length},
                           {(void *)body, header.body_length}};
    size_t total = sizeof head + meta_length + header.body_length;
    int error = write_all(s, iov, 4, prefix_length + total);
    if (error) {
        if (error != -ECANCELED) /* a crash flush took the output over: no failure */
            report_write_error(s, -error);
        return error;
    }
    atomic_fetch_add_explicit(&s->bytes_written, total, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->chunks_written, 1, memory_order_relaxed);
    return 0;
}

static int write_chunk_raw(hti_session *s, uint8_t type, const void *meta, size_t meta_length,
                           const void *body, size_t body_length, bool compress)
{
    return write_framed(s, NULL, 0, type, meta, meta_length, body, body_length, compress);
}

/* A chunk made before the writer runs (the module map, read by the starting thread so that no
 * dl_iterate_phdr of ours races with a fork right after the start): kept as type, lengths, meta
 * and body, and written by the writer after the header. */
static int defer_chunk(hti_session *s, uint8_t type, const void *meta, size_t meta_length,
                       const void *body, size_t body_length)
{
    size_t need = 9 + meta_length + body_length;
    if (!s->deferred || s->deferred_size - s->deferred_used < need) {
        s->deferred_overflow = true; /* the writer makes the module map again */
        return -ENOSPC;
    }
    uint8_t *p = s->deferred + s->deferred_used;
    uint32_t lengths[2] = {(uint32_t)meta_length, (uint32_t)body_length};
    p[0] = type;
    memcpy(p + 1, lengths, sizeof lengths);
    if (meta_length)
        memcpy(p + 9, meta, meta_length);
    if (body_length)
        memcpy(p + 9 + meta_length, body, body_length);
    s->deferred_used += need;
    return 0;
}

/* Right after the header (compressed unless a crash flush writes them). */
static void write_deferred(hti_session *s)
{
    bool compress = s->options.compression_level > 0 && !atomic_load(&s->emergency);
    for (size_t at = 0; at < s->deferred_used;) {
        const uint8_t *p = s->deferred + at;
        uint32_t lengths[2];
        memcpy(lengths, p + 1, sizeof lengths);
        write_chunk_raw(s, p[0], p + 9, lengths[0], p + 9 + lengths[0], lengths[1], compress);
        at += 9 + (size_t)lengths[0] + lengths[1];
    }
    s->deferred_used = 0;
}

int hti_write_chunk(hti_session *s, uint8_t type, const void *meta, size_t meta_length,
                    const void *body, size_t body_length)
{
    if (HTI_UNLIKELY(s->defer_chunks))
        return defer_chunk(s, type, meta, meta_length, body, body_length);
    return write_chunk_raw(s, type, meta, meta_length, body, body_length,
                           s->options.compression_level > 0);
}

/* Adds `count` losses between ticks `first` and `last` to the pending LOST records. A record
 * spans the earliest first and the latest last added to it, so first <= last always holds, even
 * when the two come from different threads' clocks or arrive out of order. */
static void lost_add(hti_session *s, uint32_t tid, uint32_t reason, uint64_t count, uint64_t first,
                     uint64_t last)
{
    hti_lost_record *table = s->writer_state.lost;
    if (last < first)
        last = first;
    uint32_t i = (tid * 2654435761u) % HTI_WRITER_LOST_SLOTS;
    hti_lost_record *slot = &table[0]; /* table full: charge the first slot */
    for (uint32_t probe = 0; probe < HTI_WRITER_LOST_SLOTS;
         probe++, i = (i + 1) % HTI_WRITER_LOST_SLOTS) {
        hti_lost_record *candidate = &table[i];
        if (candidate->count == 0 || (candidate->thread_id == tid && candidate->reason == reason)) {
            slot = candidate;
            break;
        }
    }
    if (slot->count == 0) {
        slot->thread_id = tid;
        slot->reason = reason;
        slot->first_ticks = first;
        slot->last_ticks = last;
    }
    if (first < slot->first_ticks)
        slot->first_ticks = first;
    if (last > slot->last_ticks)
        slot->last_ticks = last;
    slot->count += count;
}

/* Writes the pending LOST records; keeps them if the write fails. */
static void lost_flush(hti_session *s)
{
    hti_lost_record *table = s->writer_state.lost;
    uint8_t *p = s->records;
    for (uint32_t i = 0; i < HTI_WRITER_LOST_SLOTS; i++) {
        if (table[i].count)
            p = hti_put_lost_record(p, &table[i]);
    }
    if (p == s->records)
        return;
    if (s->fd >= 0 && write_chunk_raw(s, HTI_CHUNK_LOST, NULL, 0, s->records,
                                      (size_t)(p - s->records), false) != 0)
        return;
    memset(table, 0, sizeof s->writer_state.lost);
    s->file_failed = false;
}

/* A pair sampled now, or the one given (sampled before a flush pass: FORMAT.md §11's watermark,
 * every event committed before it is in an earlier chunk). */
static void write_clock(hti_session *s, const hti_clock_record *given)
{
    uint8_t body[HTI_CLOCK_RECORD_MAX];
    hti_clock_record clock;
    if (given)
        clock = *given;
    else
        hti_clock_sample(&clock.ticks, &clock.ns);
    uint8_t *p = hti_put_clock_record(body, &clock);
    hti_write_chunk(s, HTI_CHUNK_CLOCK, NULL, 0, body, (size_t)(p - body));
}

/* ---- draining ---- */

/* A fill may start with the in-stream LOST record of earlier losses (buffer.c fill_start). When
 * that body misses the output, the losses it carried go to a LOST chunk instead, so the LOST
 * counts in the file still add up to the events lost. Returns 1 if the body starts with one. */
static uint64_t carry_stream_lost(hti_session *s, hti_trace_thread *t, const hti_fill *f,
                                  const uint8_t *body, size_t size)
{
    hti_cursor c = hti_cursor_make(body, size);
    hti_lost_record lost;
    int error = hti_get_lost_event(&c, f->base_ticks, t->tid, &lost);
    if (error == -ENOMSG)
        return 0;
    if (error == 0 && lost.count)
        lost_add(s, t->tid, lost.reason, lost.count, lost.first_ticks, lost.last_ticks);
    return 1;
}

/* ---- what of a thread's buffer is ready to go out (the drains and the crash flush) ---- */

/* A fill's bytes not written yet: the committed words [from, to) ((events << 32) | bytes), and
 * whether an earlier body of the fill missed the output (the rest cannot be decoded there). */
typedef struct fill_range {
    uint64_t from, to;
    bool after_loss;
} fill_range;

/* The first fill of t that may hold bytes not written yet: the oldest not released, or in a
 * ring that overwrote it, the oldest still there. `head` is the owner's, loaded by the caller. */
static uint64_t first_pending_fill(const hti_trace_thread *t, uint64_t head)
{
    uint64_t tail = atomic_load_explicit(&t->tail, memory_order_acquire);
    return head - tail > t->nfills ? head - t->nfills : tail;
}

/* What of fill `seq` of a thread is ready: committed and not written, as the writer's progress
 * on the fill (written_seq, written, write_failed) says. Changes nothing: the writer records its
 * progress itself, and a crash flush records none (hti_writer_emergency). False: nothing new. */
static bool fill_ready(const hti_fill *f, uint64_t seq, fill_range *range)
{
    range->to = atomic_load_explicit(&f->committed, memory_order_acquire);
    bool resumed = atomic_load_explicit(&f->written_seq, memory_order_acquire) == seq;
    range->from = resumed ? atomic_load_explicit(&f->written, memory_order_relaxed) : 0;
    range->after_loss = resumed && atomic_load_explicit(&f->write_failed, memory_order_relaxed);
    return (uint32_t)range->to > (uint32_t)range->from && range->to >> 32 > range->from >> 32;
}

/* The writer emitted fill `seq` up to the committed word `to` (failed: that body missed the
 * output). Only the writer thread calls this; written_seq goes last, so a reader that sees it
 * sees the rest of the fill's progress. */
static void fill_progress(hti_fill *f, uint64_t seq, uint64_t to, bool failed)
{
    atomic_store_explicit(&f->write_failed, failed, memory_order_relaxed);
    atomic_store_explicit(&f->written, to, memory_order_relaxed);
    atomic_store_explicit(&f->written_seq, seq, memory_order_release);
}

/* The EVENTS meta of the body [from, to) of fill `seq` of t, which began at base_ticks. */
static hti_events_meta events_meta(const hti_trace_thread *t, uint64_t seq, uint64_t base_ticks,
                                   uint64_t from, uint64_t to)
{
    hti_events_meta meta = {t->tid,
                            t->rundown ? HTI_EVENTS_RUNDOWN : 0u,
                            seq,
                            (uint32_t)from,
                            (to >> 32) - (from >> 32),
                            base_ticks,
                            atomic_load_explicit(&t->stream_id, memory_order_relaxed)};
    return meta;
}

/* Emits [from, to) of fill `seq` of thread t, whose bytes are at `data` (fill start).
 * after_loss: an earlier body of this fill missed the output. A body continuing it could not be
 * decoded (FORMAT.md §4) — a reader would skip it — so it is counted lost instead of written.
 * Returns false when the body did not reach the output. */
static bool emit_range(hti_session *s, hti_trace_thread *t, const hti_fill *f, uint64_t seq,
                       uint64_t from, uint64_t to, const uint8_t *data, bool after_loss)
{
    uint32_t from_bytes = (uint32_t)from, to_bytes = (uint32_t)to;
    uint64_t events = (to >> 32) - (from >> 32);
    if (to_bytes <= from_bytes || events == 0)
        return !after_loss;
    if (s->options.stack_depth && hti_stack_count() != s->writer_state.stacks_emitted)
        hti_stacks_emit(s, &s->writer_state.stacks_emitted);
    hti_events_meta meta = events_meta(t, seq, f->base_ticks, from, to);
    uint8_t meta_bytes[HTI_EVENTS_META_MAX];
    size_t meta_length = hti_events_meta_encode(meta_bytes, &meta);
    atomic_fetch_add_explicit(&s->events_emitted, events, memory_order_relaxed);
    if (s->has_consumers)
        hti_consumer_push(s, &meta, data + from_bytes, to_bytes - from_bytes);
    if (s->fd < 0)
        return true;
    if (!after_loss && hti_write_chunk(s, HTI_CHUNK_EVENTS, meta_bytes, meta_length,
                                       data + from_bytes, to_bytes - from_bytes) == 0)
        return true;
    if (from_bytes == 0)
        events -= carry_stream_lost(s, t, f, data, to_bytes);
    if (events) {
        uint64_t now = hti_ticks();
        atomic_fetch_add_explicit(&s->lost_write, events, memory_order_relaxed);
        lost_add(s, t->tid, HT_LOST_WRITE_FAILED, events, f->base_ticks, now);
    }
    return false;
}

/* Block and discard modes: emits what is committed and releases finished fills (all of them
 * once the thread has exited). */
static bool drain_thread(hti_session *s, hti_trace_thread *t, bool partial, bool exited)
{
    uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
    uint64_t tail = atomic_load_explicit(&t->tail, memory_order_relaxed);
    bool released = false;
    while (tail < head) {
        hti_fill *f = &t->fills[tail % t->nfills];
        bool current = tail == head - 1 && !exited;
        if (current && !partial)
            break;
        fill_range range;
        if (fill_ready(f, tail, &range)) {
            const uint8_t *data = t->fill_data + (tail % t->nfills) * (size_t)HTI_FILL_BYTES;
            bool sent = emit_range(s, t, f, tail, range.from, range.to, data, range.after_loss);
            fill_progress(f, tail, range.to, !sent);
        }
        if (current)
            break;
        tail++;
        atomic_store_explicit(&t->tail, tail, memory_order_release);
        released = true;
    }
    return released;
}

/* Ring mode: emits every fill still in the ring that has not been written yet. */
static void ring_dump(hti_session *s, hti_trace_thread *t)
{
    uint8_t *copy = s->writer_state.ring_copy;
    uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
    for (uint64_t seq = first_pending_fill(t, head); seq < head; seq++) {
        hti_fill *f = &t->fills[seq % t->nfills];
        fill_range range;
        bool ready = fill_ready(f, seq, &range);
        if (atomic_load_explicit(&f->seq, memory_order_acquire) != seq || !ready)
            continue;
        uint32_t from_bytes = (uint32_t)range.from, to_bytes = (uint32_t)range.to;
        const uint8_t *data = t->fill_data + (seq % t->nfills) * (size_t)HTI_FILL_BYTES;
        memcpy(copy + from_bytes, data + from_bytes, to_bytes - from_bytes);
        uint64_t base = f->base_ticks;
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&f->seq, memory_order_relaxed) != seq)
            continue; /* overwritten while copying */
        hti_fill snapshot = {0};
        snapshot.base_ticks = base;
        bool sent = emit_range(s, t, &snapshot, seq, range.from, range.to, copy, range.after_loss);
        fill_progress(f, seq, range.to, !sent);
    }
}

static void unlink_thread(hti_trace_thread *prev, hti_trace_thread *t)
{
    if (prev) {
        prev->next = t->next;
        return;
    }
    hti_trace_thread *expected = t;
    if (atomic_compare_exchange_strong(&hti_threads, &expected, t->next))
        return;
    /* Someone pushed in front of t: find its predecessor now (only the writer unlinks). */
    for (hti_trace_thread *p = atomic_load(&hti_threads); p; p = p->next)
        if (p->next == t) {
            p->next = t->next;
            return;
        }
}

/* A buffer whose thread is past its exit destructor: EXITED once the thread is gone. Probed on
 * every pass at first (threads usually end within microseconds), then only when the writer
 * passes anyway. Returns true while the writer should come back soon. */
static bool exit_poll(hti_trace_thread *t, int *state)
{
    if (*state != HTI_THREAD_EXITING)
        return false;
    if (hti_thread_gone(t)) {
        /* Nothing writes it any more: its stores are visible once the probe saw it gone. */
        atomic_thread_fence(memory_order_acquire);
        atomic_store_explicit(&t->state, HTI_THREAD_EXITED, memory_order_relaxed);
        *state = HTI_THREAD_EXITED;
        return false;
    }
    return t->exit_polls++ < EXIT_POLLS_FAST;
}

/* One pass over every buffer. dump: ring contents are written (snapshot or stop). Returns true
 * if a thread that is ending should be looked at again soon. */
static bool drain_all(hti_session *s, bool partial, bool dump)
{
    bool released = false, exiting = false;
    hti_trace_thread *prev = NULL;
    hti_trace_thread *t = atomic_load_explicit(&hti_threads, memory_order_acquire);
    while (t) {
        hti_trace_thread *next = t->next;
        int state = atomic_load_explicit(&t->state, memory_order_acquire);
        exiting |= exit_poll(t, &state);
        uint64_t gen = atomic_load_explicit(&t->published_gen, memory_order_acquire);
        bool exited = state == HTI_THREAD_EXITED;
        bool done = gen != s->gen;
        if (gen == s->gen) {
            if (s->ring && !t->rundown) {
                if (dump)
                    ring_dump(s, t);
                done = dump;
            } else {
                released |= drain_thread(s, t, partial, exited);
                done = atomic_load_explicit(&t->tail, memory_order_relaxed) ==
                       atomic_load_explicit(&t->head, memory_order_relaxed);
            }
        }
        if (exited && done) {
            if (gen == s->gen) {
                if (t->lost_local)
                    lost_add(s, t->tid, t->lost_reason, t->lost_local, t->lost_first, t->lost_last);
            }
            unlink_thread(prev, t);
            hti_thread_free(t);
        } else {
            prev = t;
        }
        t = next;
    }
    if (released) {
        atomic_fetch_add_explicit(&s->released, 1, memory_order_release);
        hti_futex_wake(&s->released);
    }
    return exiting;
}

/* At stop: losses still pending in live threads' buffers go into LOST records. */
static void collect_pending_lost(hti_session *s)
{
    for (hti_trace_thread *t = atomic_load(&hti_threads); t; t = t->next) {
        if (atomic_load_explicit(&t->published_gen, memory_order_acquire) != s->gen)
            continue;
        if (t->lost_local)
            lost_add(s, t->tid, t->lost_reason, t->lost_local, t->lost_first, t->lost_last);
    }
}

/* At the footer, past the hooks and with every waiter for room given up: asks the stopping
 * thread for the heaps' state and waits for it (trace_internal.h, HTI_END_*). A stop that
 * gave up on this writer, or none that walks (a failed start), leaves the footer without it. */
static void wait_end_state(hti_session *s)
{
    uint32_t expected = HTI_END_EXPECTED;
    if (!atomic_compare_exchange_strong(&s->end_handshake, &expected, HTI_END_WANTED))
        return;
    hti_futex_wake(&s->end_handshake);
    while (atomic_load(&s->end_handshake) == HTI_END_WANTED)
        hti_futex_wait(&s->end_handshake, HTI_END_WANTED, EXIT_POLL_NS);
}

/* The counts, and the heaps' state the stop took (session.c), so that a reader has the
 * summary without decoding an event. Losses of the consumers are theirs, not the file's. */
static void write_footer(hti_session *s)
{
    hti_footer f;
    memset(&f, 0, sizeof f);
    hti_clock_sample(&f.end_ticks, &f.end_ns);
    f.parts = s->end_known ? HTI_FOOTER_END_STATE : HTI_FOOTER_COUNTS;
    f.events = atomic_load(&s->events_emitted);
    f.lost = atomic_load(&s->lost_buffer) + atomic_load(&s->lost_write);
    f.chunks = atomic_load(&s->chunks_written);
    f.flags = s->end_flags;
    f.live_blocks = s->end_live_blocks;
    f.live_bytes = s->end_live_bytes;
    int64_t peak = atomic_load(&s->committed_peak);
    f.peak_committed = peak > 0 ? (uint64_t)peak : 0;
    uint8_t body[HTI_FOOTER_MAX];
    write_chunk_raw(s, HTI_CHUNK_FOOTER, NULL, 0, body, hti_footer_encode(body, &f), false);
}

/* The header goes first and once, with the chunks made at start: the writer thread writes them
 * when it begins, or a crash flush that comes before it does. The other one waits for them (a
 * crash flush a bounded time; then it writes nothing). True once the header is written. */
enum { HEADER_NONE, HEADER_WRITING, HEADER_WRITTEN, HEADER_FAILED };

static bool header_written(hti_session *s, uint64_t wait_ns)
{
    uint32_t state = HEADER_NONE;
    if (atomic_compare_exchange_strong(&s->header_state, &state, HEADER_WRITING)) {
        uint64_t start = atomic_load(&s->file_offset);
        int error = hti_writer_header(s);
        if (error) {
            if (!s->error_reported) /* the preamble's failure is not reported on the way */
                report_write_error(s, -error);
            /* No chunk may reach an output whose header is missing; a file gets back its
             * length from before the preamble. */
            s->output_cut = -error;
            if (s->seekable) {
                atomic_store(&s->file_offset, start);
                (void)!ftruncate(s->fd, (off_t)start);
            }
        }
        write_deferred(s);
        atomic_store(&s->header_state, error ? HEADER_FAILED : HEADER_WRITTEN);
        return !error;
    }
    uint64_t until = hti_monotonic_ns() + wait_ns;
    while ((state = atomic_load(&s->header_state)) == HEADER_WRITING &&
           hti_monotonic_ns() < until) {
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    return state == HEADER_WRITTEN;
}

/* After the hooks were switched off (and hti_hooks_barrier): true once every thread was seen
 * outside a hook — its events are then all committed. A thread waiting for room is waited for
 * (each drain makes room); another one held in a hook (stopped by a debugger, say) for at most
 * HTI_QUIESCE_NS after `since`. */
static bool hooks_quiet(hti_session *s, uint64_t since)
{
    bool quiet = true;
    uint64_t now = 0;
    hti_trace_thread *first = atomic_load_explicit(&hti_threads, memory_order_acquire);
    for (hti_trace_thread *t = first; t; t = t->next) {
        if (t->quiet_gen == s->gen)
            continue;
        if (!atomic_load_explicit(&t->in_hook, memory_order_acquire)) {
            t->quiet_gen = s->gen; /* later hooks see the switch off */
            continue;
        }
        if (atomic_load_explicit(&t->waiting, memory_order_relaxed)) {
            quiet = false;
            continue;
        }
        if (!now)
            now = hti_monotonic_ns();
        if (now - since < HTI_QUIESCE_NS)
            quiet = false;
    }
    return quiet;
}

/* The writer's hold, for forks: BUSY from just before its thread is created, through its start
 * (where the C library or another allocator may take locks of their own), its work and its
 * end, until it is joined; FREE only while it sleeps. A fork waits (bounded) to turn FREE into
 * PARKED, so the child never inherits a lock the writer took inside the allocator or stdio;
 * the writer waits for PARKED to end before it works again. A word rather than a mutex: the
 * hold outlives the thread, and the child's state needs no owner. */
enum { WRITER_FREE, WRITER_BUSY, WRITER_PARKED, WRITER_ENDING };
static _Atomic uint32_t writer_hold;
/* ENDING: the writer's work is over and its thread ends, or has ended but is not joined yet (a
 * stop that gave up on it joins it at the next start). A thread's end takes microseconds: a
 * fork waits for it at most ENDING_WAIT_NS after it began. */
static _Atomic uint64_t writer_ended_at;
#define ENDING_WAIT_NS 10000000ull
static _Atomic pid_t writer_pid; /* the process whose writer thread exists (0: none) */
/* The forking thread's own: two threads forking at once each know whether they parked it (the
 * second waits for the first's fork to end); a fork child's one thread forgets it. */
static HTI_TLS bool fork_parked;

static void writer_hold_set(uint32_t state)
{
    atomic_store(&writer_hold, state);
    hti_futex_wake(&writer_hold);
}

void hti_writer_fork_prepare(void)
{
    fork_parked = false;
    if (atomic_load(&writer_pid) != getpid() || tls_writer_thread)
        return;
    uint64_t until = hti_monotonic_ns() + HTI_FORK_PARK_NS;
    for (;;) {
        uint32_t state = WRITER_FREE;
        if (atomic_compare_exchange_strong(&writer_hold, &state, WRITER_PARKED)) {
            fork_parked = true;
            return;
        }
        uint64_t now = hti_monotonic_ns(), limit = until;
        if (state == WRITER_ENDING && atomic_load(&writer_ended_at) + ENDING_WAIT_NS < limit)
            limit = atomic_load(&writer_ended_at) + ENDING_WAIT_NS;
        if (now >= limit)
            return; /* the writer is in a long write, or gone: the fork goes on */
        hti_futex_wait(&writer_hold, state, (long)(limit - now));
    }
}

void hti_writer_fork_parent(void)
{
    if (fork_parked)
        writer_hold_set(WRITER_FREE);
    fork_parked = false;
}

/* In a fork child there is no writer: writer_pid names the parent, and the next start sets
 * the hold whatever state it was inherited in. */
void hti_writer_fork_child(void)
{
    fork_parked = false;
}

static void writer_sleep(_Atomic uint32_t *word, uint32_t expected, long timeout_ns)
{
    writer_hold_set(WRITER_FREE);
    hti_futex_wait(word, expected, timeout_ns);
    for (;;) {
        uint32_t state = WRITER_FREE;
        if (atomic_compare_exchange_strong(&writer_hold, &state, WRITER_BUSY))
            return;
        hti_futex_wait(&writer_hold, state, 0); /* PARKED: until the fork is done */
    }
}

static void *writer_work(hti_session *s);

static void *writer_main(void *arg)
{
    hti_world_own_thread(true);
    void *result = writer_work(arg);
    hti_world_own_thread(false);
    atomic_store(&writer_ended_at, hti_monotonic_ns());
    writer_hold_set(WRITER_ENDING); /* until the thread is joined */
    return result;
}

/* The writer thread is gone (joined). */
static void writer_joined(void)
{
    atomic_store(&writer_pid, 0);
    writer_hold_set(WRITER_FREE);
}

static void *writer_work(hti_session *s)
{
    hti_guard_enter(); /* for good: this thread's heap calls are never traced */
    tls_writer_thread = true;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_setname_np(pthread_self(), "heaptrail-wr");
    /* Here rather than in the thread that starts the session: that one must not wait for the
     * output. Then the module map that thread read. */
    if (!header_written(s, HTI_STOP_LIMIT_NS) && atomic_load(&s->emergency))
        return NULL; /* a crash flush wrote it, or is writing it: the output is its own now */
    if (s->deferred_overflow) {
        hti_modules_reset(); /* the module map did not fit: made again, here */
        hti_modules_emit(s, true);
    }
    const long interval_ns = (long)s->options.flush_interval_ms * 1000000L;
    uint64_t last_flush = hti_monotonic_ns(), last_orphan_check = last_flush;
    uint64_t stop_seen = 0;
    uint32_t flush_served = 0, snapshot_served = 0; /* the session starts them at 0 */
    for (;;) {
        if (atomic_load(&s->emergency))
            return NULL;
        uint32_t wake = atomic_load_explicit(&s->writer_wake, memory_order_acquire);
        bool stop = atomic_load(&s->stop_request) != 0;
        uint32_t flush_request = atomic_load(&s->flush_request);
        uint32_t snapshot_request = atomic_load(&s->snapshot_request);
        uint64_t now = hti_monotonic_ns();
        if (stop && !stop_seen)
            stop_seen = now;
        bool periodic = now - last_flush >= (uint64_t)interval_ns;
        bool partial = stop || periodic || flush_request != flush_served;
        /* A reader gone while nothing is written shows here: at the flush passes, and at the
         * orphan checks' pace whatever the flush interval. */
        if (!stop && (periodic || now - last_orphan_check >= ORPHAN_CHECK_NS))
            check_reader(s);
        /* At stop the ring is written once the hooks are quiet (below). */
        bool dump = !stop && snapshot_request != snapshot_served;
        hti_clock_record pass_start; /* before the drain: the CLOCK pair written after it */
        if (partial || dump)
            hti_clock_sample(&pass_start.ticks, &pass_start.ns);
        bool exiting = drain_all(s, partial, dump);
        if (partial || dump) {
            if (!stop) {
                hti_modules_emit(s, false);
                write_clock(s, &pass_start);
            }
            lost_flush(s);
            last_flush = now;
        }
        if (snapshot_request != snapshot_served || flush_request != flush_served) {
            snapshot_served = snapshot_request;
            flush_served = flush_request;
            atomic_store(&s->flush_done, flush_request);
            hti_futex_wake(&s->flush_done);
        }
        if (stop && hooks_quiet(s, stop_seen))
            break;
        if (!stop && now - last_orphan_check >= ORPHAN_CHECK_NS) {
            last_orphan_check = now;
            if (hti_program_gone())
                hti_finish_orphaned_process(); /* its exit handlers stop this session */
        }
        if (!stop && atomic_load(&s->reader_gone))
            hti_session_end_by_itself(s); /* its stop ends this loop */
        if (stop) {
            /* Threads still in a hook: those waiting for room got some from the drain above. */
            writer_sleep(&s->writer_wake, wake, EXIT_POLL_NS);
            continue;
        }
        atomic_store(&s->writer_asleep, 1);
        if (atomic_load(&s->writer_wake) == wake && !atomic_load(&s->stop_request) &&
            atomic_load(&s->flush_request) == flush_served &&
            atomic_load(&s->snapshot_request) == snapshot_served) {
            long left = interval_ns - (long)(hti_monotonic_ns() - last_flush);
            if (exiting && left > EXIT_POLL_NS)
                left = EXIT_POLL_NS;
            if (left > ORPHAN_CHECK_NS)
                left = ORPHAN_CHECK_NS;
            if (left > 0)
                writer_sleep(&s->writer_wake, wake, left);
        }
        atomic_store(&s->writer_asleep, 0);
    }
    /* A thread of this session still (or later) waiting for room gives up: nothing drains it. */
    atomic_store_explicit(&hti_finished_gen, s->gen, memory_order_release);
    hti_futex_wake(&s->released);
    /* Final: whatever threads still hold, pending losses, the last clock pair, the footer. */
    drain_all(s, true, true);
    if (s->options.stack_depth)
        hti_stacks_emit(s, &s->writer_state.stacks_emitted);
    hti_modules_emit(s, false);
    collect_pending_lost(s);
    lost_flush(s);
    write_clock(s, NULL);
    wait_end_state(s);
    write_footer(s);
    return NULL;
}

int hti_writer_start_memory(hti_session *s)
{
    memset(&s->writer_state, 0, sizeof s->writer_state);
    s->records_size = RECORDS_BYTES;
    s->records = hti_map_memory(RECORDS_BYTES);
    s->scratch_size = ZSTD_compressBound(RECORDS_BYTES);
    s->scratch = hti_map_memory(s->scratch_size);
    s->deferred_size = 2 * RECORDS_BYTES + 64;
    s->deferred = hti_map_memory(s->deferred_size);
    if (!s->records || !s->scratch || !s->deferred)
        return -ENOMEM;
    if (s->options.compression_level > 0) {
        ZSTD_customMem mem = {zstd_alloc, zstd_free, NULL};
        s->zstd = ZSTD_createCCtx_advanced(mem);
        if (!s->zstd)
            return -ENOMEM;
    }
    return 0;
}

int hti_writer_start_thread(hti_session *s)
{
    /* BUSY before the thread exists: its start is covered too. A fork child's session may
     * start before our fork handler ran; the inherited state does not matter. */
    atomic_store(&writer_hold, WRITER_BUSY);
    atomic_store(&writer_pid, getpid());
    hti_world_own_thread_coming(1);
    int error = pthread_create(&s->writer, NULL, writer_main, s);
    if (error) {
        hti_world_own_thread_coming(-1);
        writer_joined();
        return -error;
    }
    s->writer_started = true;
    return 0;
}

static void writer_release_memory(hti_session *s)
{
    if (s->zstd)
        ZSTD_freeCCtx(s->zstd);
    s->zstd = NULL;
    hti_unmap_memory(s->records, s->records_size);
    hti_unmap_memory(s->scratch, s->scratch_size);
    hti_unmap_memory(s->deferred, s->deferred_size);
    s->records = s->scratch = s->deferred = NULL;
}

/* The stopping thread's side of the end state (trace_internal.h, HTI_END_*): walks the heaps
 * once the writer asks, or gives up at `give_up` (monotonic ns, 0: never) or when a crash
 * flush took the writer over. */
static void provide_end_state(hti_session *s, uint64_t give_up)
{
    for (;;) {
        uint32_t state = atomic_load(&s->end_handshake);
        if (state == HTI_END_WANTED) {
            hti_session_end_state(s);
            atomic_store(&s->end_handshake, HTI_END_READY);
            hti_futex_wake(&s->end_handshake);
            return;
        }
        if (state != HTI_END_EXPECTED)
            return;
        if ((give_up && hti_monotonic_ns() >= give_up) || atomic_load(&s->emergency)) {
            /* Unless the writer asked meanwhile (then the loop walks). */
            if (atomic_compare_exchange_strong(&s->end_handshake, &state, HTI_END_ABANDONED))
                return;
            continue;
        }
        hti_futex_wait(&s->end_handshake, HTI_END_EXPECTED, EXIT_POLL_NS);
    }
}

int hti_writer_stop(hti_session *s, uint64_t timeout_ns)
{
    if (s->writer_started) {
        atomic_store(&s->stop_request, 1);
        hti_writer_wake(s);
        hti_futex_wake(&s->writer_wake);
        uint64_t started = hti_monotonic_ns();
        provide_end_state(s, timeout_ns ? started + timeout_ns : 0);
        if (timeout_ns) {
            /* What the walk left of the bound, and time for the footer after it. */
            uint64_t spent = hti_monotonic_ns() - started;
            timeout_ns = spent + END_SLACK_NS < timeout_ns ? timeout_ns - spent : END_SLACK_NS;
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            uint64_t ns = (uint64_t)until.tv_nsec + timeout_ns;
            until.tv_sec += (time_t)(ns / 1000000000u);
            until.tv_nsec = (long)(ns % 1000000000u);
            if (pthread_timedjoin_np(s->writer, NULL, &until) != 0) {
                /* Still in a write to an output that cannot be written without blocking (a
                 * terminal, say): it keeps its memory and descriptor until it ends. */
                s->writer_lingering = true;
                return -ETIMEDOUT;
            }
        } else {
            pthread_join(s->writer, NULL);
        }
        writer_joined();
        s->writer_started = false;
    }
    writer_release_memory(s);
    return 0;
}

int hti_writer_reap(hti_session *s)
{
    if (!s->writer_lingering)
        return 0;
    if (pthread_tryjoin_np(s->writer, NULL) != 0)
        return -EBUSY;
    writer_joined();
    s->writer_lingering = false;
    s->writer_started = false;
    writer_release_memory(s);
    if (s->own_fd && s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    return 0;
}

void hti_writer_forget(hti_session *s)
{
    /* After fork: the writer thread does not exist in this process; only memory remains. */
    s->writer_started = false;
    s->writer_lingering = false;
    s->zstd = NULL; /* its memory came from mmap: left mapped rather than freed half-way */
    hti_unmap_memory(s->records, s->records_size);
    hti_unmap_memory(s->scratch, s->scratch_size);
    hti_unmap_memory(s->deferred, s->deferred_size);
    s->records = s->scratch = s->deferred = NULL;
}

int hti_writer_flush(hti_session *s, bool snapshot)
{
    if (!s->writer_started)
        return -ENOENT;
    uint32_t want = atomic_fetch_add(&s->flush_request, 1) + 1;
    if (snapshot)
        atomic_fetch_add(&s->snapshot_request, 1);
    hti_writer_wake(s);
    hti_futex_wake(&s->writer_wake);
    for (int i = 0; i < 10000; i++) {
        uint32_t done = atomic_load(&s->flush_done);
        if ((int32_t)(done - want) >= 0)
            return 0;
        /* Discard and ring modes never make the program wait for a stalled output. */
        if ((!s->block && hti_output_stalled(s)) || should_give_up(s))
            return -ETIMEDOUT;
        hti_futex_wait(&s->flush_done, done, 1000000);
    }
    return -ETIMEDOUT;
}

/* Waits (bounded) until the writer thread is outside a chunk on a stream; the caller set
 * `emergency`, so it begins no other. False: it is still inside one (the output is stalled),
 * and writing now would interleave two chunks. */
static bool emergency_stream_ready(hti_session *s)
{
    if (s->seekable || !s->writer_started)
        return true;
    uint64_t until = hti_monotonic_ns() + EMERGENCY_WAIT_NS;
    while (atomic_load(&s->stream_busy)) {
        if (hti_monotonic_ns() >= until)
            return false;
        struct timespec pause = {0, 1000000};
        nanosleep(&pause, NULL);
    }
    return true;
}

void hti_writer_emergency(hti_session *s)
{
    /* Bounded: a stalled output is given up after HTI_STALL_NS, and all of it after one limit. */
    atomic_store(&s->give_up_at, hti_monotonic_ns() + HTI_STOP_LIMIT_NS);
    if (!emergency_stream_ready(s) || !header_written(s, EMERGENCY_WAIT_NS))
        return;
    /* Every thread's committed bytes not yet written, uncompressed, from this thread: what the
     * drains would write next (fill_ready). The writer's progress on each fill is read, never
     * written: this thread is not the writer, which may still be inside a pass (it stops at its
     * next one, seeing `emergency`), and nothing drains after a crash flush. Read while the
     * writer may move it, the progress is its last value or an earlier one (fill_progress
     * stores written_seq last): at worst a body the writer is writing at this moment is written
     * twice, never one left out. */
    for (hti_trace_thread *t = atomic_load(&hti_threads); t; t = t->next) {
        if (atomic_load_explicit(&t->published_gen, memory_order_acquire) != s->gen)
            continue;
        uint64_t head = atomic_load_explicit(&t->head, memory_order_acquire);
        for (uint64_t seq = first_pending_fill(t, head); seq < head; seq++) {
            hti_fill *f = &t->fills[seq % t->nfills];
            fill_range range;
            if (!fill_ready(f, seq, &range) || range.after_loss)
                continue; /* nothing new, or a rest that could not be decoded */
            hti_events_meta meta = events_meta(t, seq, f->base_ticks, range.from, range.to);
            uint8_t meta_bytes[HTI_EVENTS_META_MAX];
            size_t n = hti_events_meta_encode(meta_bytes, &meta);
            const uint8_t *data = t->fill_data + (seq % t->nfills) * (size_t)HTI_FILL_BYTES;
            uint32_t from_bytes = (uint32_t)range.from, to_bytes = (uint32_t)range.to;
            write_chunk_raw(s, HTI_CHUNK_EVENTS, meta_bytes, n, data + from_bytes,
                            to_bytes - from_bytes, false);
        }
    }
    write_clock(s, NULL);
    /* The end clock pair only: a signal handler cannot walk the heaps (their locks), and the
     * session's counts leave out the chunks written here. */
    hti_footer f;
    memset(&f, 0, sizeof f);
    f.parts = HTI_FOOTER_CLOCK;
    hti_clock_sample(&f.end_ticks, &f.end_ns);
    uint8_t body[HTI_FOOTER_MAX];
    write_chunk_raw(s, HTI_CHUNK_FOOTER, NULL, 0, body, hti_footer_encode(body, &f), false);
}

/* ---- header ---- */

static size_t read_small_file(const char *path, char *buffer, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    size_t total = 0;
    while (total < size) {
        ssize_t n = read(fd, buffer + total, size - total);
        if (n <= 0)
            break;
        total += (size_t)n;
    }
    close(fd);
    return total;
}

int hti_writer_header(hti_session *s)
{
    static char program[HEADER_PROGRAM_BYTES];
    static char cmdline[HEADER_COMMAND_LINE_BYTES];
    ssize_t plen = readlink("/proc/self/exe", program, sizeof program - 1);
    if (plen < 0)
        plen = 0;
    size_t clen = read_small_file("/proc/self/cmdline", cmdline, sizeof cmdline);
    while (clen > 0 && cmdline[clen - 1] == '\0')
        clen--;
    const ht_trace_options *o = &s->options;
    hti_header header = {
        .pid = (uint32_t)getpid(),
        .pointer_size = sizeof(void *),
        .clock_id = CLOCK_MONOTONIC,
        .tick_kind = hti_clock_tsc ? HTI_TICKS_TSC : HTI_TICKS_NS,
        .ticks_per_second = hti_clock_ticks_per_second(),
        .start_realtime_ns = s->start_realtime_ns,
        .start_ns = s->start_ns,
        .start_ticks = s->start_ticks,
        .program = (const uint8_t *)program,
        .program_length = (size_t)plen,
        .command_line = (const uint8_t *)cmdline,
        .command_line_length = clen,
        .mode = (uint32_t)o->mode,
        .stack_depth = o->stack_depth,
        .sample_interval = o->sample_interval,
        .event_mask = o->event_mask,
        .heap_filter = (uint64_t)(uintptr_t)o->heap,
        .min_size = o->min_size,
        .max_size = o->max_size,
        .buffer_size = (uint64_t)s->nfills * HTI_FILL_BYTES,
        .compression_level = (uint64_t)(o->compression_level > 0 ? o->compression_level : 0),
    };
    size_t length = hti_header_encode(s->records, &header);
    if (s->fd < 0)
        return 0;
    uint8_t preamble[HTI_PREAMBLE_SIZE];
    hti_preamble_encode(preamble);
    int error = write_framed(s, preamble, sizeof preamble, HTI_CHUNK_HEADER, NULL, 0, s->records,
                             length, false);
    if (error)
        return error;
    write_clock(s, NULL);
    return 0;
}
