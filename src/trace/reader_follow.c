/* reader_follow.c — a reader that follows a trace as it is written to a descriptor: the receive
 * buffer, chunk framing from a stream, the end of a followed trace, and waiting for input.
 *
 * Invariants: the descriptor is read without blocking and never seeked; the buffer holds at
 * most one partial chunk (bounded by HT_READER_CHUNK_MAX) past the chunks not framed yet, and
 * every whole chunk goes to hti_reader_take at once (an EVENTS chunk as its own copy, which the
 * reader frees once decoded). A pipe, FIFO or socket ends at its end; a regular file, which
 * reads as ended whenever the writer is behind, at its footer. The merge is reader.c's. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "reader_internal.h"

#define RECEIVE_MIN (64u << 10) /* room offered to each read */
#define PULL_MAX (4u << 20)     /* bytes one pull takes before the merge runs again */
#define FILE_POLL_MS 10         /* a regular file is looked at this often for more */

struct hti_intake {
    unsigned flags;  /* HT_READER_* */
    bool regular;    /* a regular file: it ends at its footer */
    int saved_flags; /* the descriptor's status flags before, restored at close; -1: none */
    bool closed;     /* the stream's end was read */
    bool ended;      /* the trace has ended: nothing more will be taken */
    bool preamble;   /* the preamble was read */
    uint8_t *buffer; /* bytes received and not framed yet: buffer[start..end) */
    size_t start, end, capacity;
    uint64_t need;   /* bytes of the partial chunk at start, once its header is in */
    uint64_t offset; /* of buffer[start] in the stream */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Hands every whole chunk in the buffer to the reader. 0 or the error. */
static int frame_chunks(ht_reader *r, hti_intake *in)
{
    if (!in->preamble) {
        if (in->end - in->start < HTI_PREAMBLE_SIZE)
            return 0;
        if (hti_reader_check_preamble(r, in->buffer + in->start, in->end - in->start) != 0)
            return r->status;
        in->preamble = true;
        in->start += HTI_PREAMBLE_SIZE;
        in->offset += HTI_PREAMBLE_SIZE;
    }
    in->need = 0;
    while (in->end - in->start >= HTI_CHUNK_HEADER_SIZE) {
        chunk_ref c;
        uint64_t total;
        if (hti_reader_frame(r, in->offset, in->buffer + in->start, &c, &total) != 0)
            return r->status;
        if (total > in->end - in->start) {
            in->need = total;
            return 0;
        }
        bool events = c.header.type == HTI_CHUNK_EVENTS;
        if (events) {
            /* Kept until its stream decodes it: bounded, or a stream without clock pairs
             * (broken or hostile) would grow the reader without end. */
            if (r->pending_bytes + total > HTI_READER_PENDING_MAX)
                return hti_reader_fail(r, -EBADMSG,
                                       "more than %llu MiB of event chunks wait for a clock pair "
                                       "that makes them final, at offset %llu",
                                       (unsigned long long)(HTI_READER_PENDING_MAX >> 20),
                                       (unsigned long long)in->offset);
            if (!(c.data = malloc(total)))
                return hti_reader_fail(r, -ENOMEM, "out of memory");
            memcpy(c.data, in->buffer + in->start, total);
            r->pending_bytes += total;
        } else {
            c.data = in->buffer + in->start; /* parsed now, not kept */
        }
        int error = hti_reader_take(r, &c);
        if (events && c.data) { /* not taken */
            free(c.data);
            r->pending_bytes -= total;
        }
        if (error)
            return error;
        in->start += total;
        in->offset += total;
        r->info.valid_size = in->offset;
    }
    return 0;
}

/* The trace ended: what is left in the buffer is a chunk cut short. */
static void end_trace(ht_reader *r, hti_intake *in)
{
    uint64_t left = in->end - in->start;
    in->ended = true;
    if (!in->preamble) {
        hti_reader_check_preamble(r, in->buffer + in->start, left);
        return;
    }
    if (left)
        hti_reader_cut(r, in->offset, left, left < HTI_CHUNK_HEADER_SIZE ? 0 : in->need);
    if (!r->have_header)
        hti_reader_fail(r, -EBADMSG, "no header chunk");
    hti_reader_all_final(r);
}

/* Room for a read: the unframed bytes moved to the front, the partial chunk fitting whole. */
static int make_room(ht_reader *r, hti_intake *in)
{
    if (in->start) {
        memmove(in->buffer, in->buffer + in->start, in->end - in->start);
        in->end -= in->start;
        in->start = 0;
    }
    size_t want = (size_t)(in->need > in->end ? in->need : in->end) + RECEIVE_MIN;
    if (want <= in->capacity)
        return 0;
    uint8_t *p = realloc(in->buffer, want);
    if (!p)
        return hti_reader_fail(r, -ENOMEM, "out of memory");
    in->buffer = p;
    in->capacity = want;
    return 0;
}

/* Reads what the descriptor holds now (up to PULL_MAX) and takes its whole chunks. 1 when
 * something arrived or the trace ended, 0 when nothing did, or the error. */
static int pull(ht_reader *r)
{
    hti_intake *in = r->intake;
    size_t taken = 0;
    bool dry = false; /* a regular file: read up to its current end */
    while (!in->closed && !dry && taken < PULL_MAX) {
        if (make_room(r, in) != 0)
            return r->status;
        ssize_t got = read(r->fd, in->buffer + in->end, in->capacity - in->end);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (got < 0)
            return hti_reader_fail(r, -EIO, "read error at offset %llu: %s",
                                   (unsigned long long)(in->offset + (in->end - in->start)),
                                   strerror(errno));
        if (got == 0) {
            in->closed = !in->regular;
            dry = in->regular;
            break;
        }
        in->end += (size_t)got;
        taken += (size_t)got;
        r->info.file_size += (uint64_t)got;
        if (frame_chunks(r, in) != 0)
            return r->status;
    }
    if (in->closed || (dry && r->info.complete)) {
        end_trace(r, in);
        return r->status ? r->status : 1;
    }
    return taken > 0;
}

/* Waits up to timeout_ms (-1: no limit) for input. */
static void wait_input(ht_reader *r, int timeout_ms)
{
    if (r->intake->regular) {
        int ms = timeout_ms < 0 || timeout_ms > FILE_POLL_MS ? FILE_POLL_MS : timeout_ms;
        struct timespec ts = {0, (long)ms * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    struct pollfd p = {.fd = r->fd, .events = POLLIN};
    poll(&p, 1, timeout_ms);
}

long hti_follow_read(ht_reader *r, ht_event *out, size_t max)
{
    hti_intake *in = r->intake;
    for (;;) {
        long n = hti_reader_merge(r, out, max);
        if (n != 0 || max == 0 || in->ended)
            return n;
        int got = pull(r);
        if (got < 0)
            return got;
        if (got > 0)
            continue;
        if (!(in->flags & HT_READER_WAIT))
            return -EAGAIN;
        wait_input(r, -1);
    }
}

void hti_follow_close(ht_reader *r)
{
    hti_intake *in = r->intake;
    if (in->saved_flags >= 0)
        fcntl(r->fd, F_SETFL, in->saved_flags);
    if (r->fd >= 0)
        close(r->fd);
    free(in->buffer);
    free(in);
    r->intake = NULL;
}

ht_reader *ht_reader_follow(int fd, unsigned flags, int timeout_ms, char *error, size_t error_size)
{
    hti_crc32c_init();
    ht_reader *r = calloc(1, sizeof *r);
    hti_intake *in = calloc(1, sizeof *in);
    if (!r || !in) {
        free(r);
        free(in);
        if (fd >= 0)
            close(fd);
        if (error && error_size)
            snprintf(error, error_size, "out of memory");
        errno = ENOMEM;
        return NULL;
    }
    r->fd = fd;
    r->intake = in;
    in->flags = flags;
    in->saved_flags = -1;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (in->saved_flags = fcntl(fd, F_GETFL)) < 0 ||
        fcntl(fd, F_SETFL, in->saved_flags | O_NONBLOCK) != 0) {
        hti_reader_fail(r, -EBADF, "cannot follow descriptor %d: %s", fd, strerror(errno));
        return hti_reader_open_failed(r, error, error_size);
    }
    in->regular = S_ISREG(st.st_mode);
    uint64_t deadline = timeout_ms < 0 ? UINT64_MAX : now_ms() + (uint64_t)timeout_ms;
    while (!r->have_header && !in->ended && r->status == 0) {
        if (pull(r) != 0)
            continue;
        uint64_t now = now_ms();
        if (now >= deadline) {
            hti_reader_fail(r, -ETIMEDOUT, "no trace header within %d ms", timeout_ms);
            break;
        }
        wait_input(r, deadline == UINT64_MAX ? -1 : (int)(deadline - now));
    }
    if (r->status)
        return hti_reader_open_failed(r, error, error_size);
    return r;
}

int ht_reader_fd(const ht_reader *r)
{
    return r->intake ? r->fd : -1;
}
