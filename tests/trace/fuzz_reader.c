/* fuzz_reader.c — fuzz target for the trace reader: any input must open and read to an error
 * or the end without crashing, hanging or over-allocating; and the same input fed to a follower
 * (ht_reader_follow) through a pipe in pieces must too, ending once the pipe is closed.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; otherwise fuzz_driver.c gives it a
 * main() that replays the corpus (tests/trace/corpus) and mutates it for a fixed time. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_driver.h"
#include "heaptrail/reader.h"

const char *const fuzz_tokens[] = {NULL}; /* a binary format: byte mutations only */

static ht_event events[256];

static void use_events(ht_reader *reader, long n)
{
    for (long i = 0; i < n; i++) {
        const uint64_t *frames;
        uint32_t depth;
        if (events[i].stack_id && ht_reader_stack(reader, events[i].stack_id, &frames, &depth) &&
            depth)
            ht_reader_module_find(reader, frames[0]);
    }
}

/* Writes data[*done..end) to a non-blocking pipe; false when it is full. */
static int put(int fd, const uint8_t *data, size_t *done, size_t end)
{
    while (*done < end) {
        ssize_t n = write(fd, data + *done, end - *done);
        if (n <= 0)
            return 0;
        *done += (size_t)n;
    }
    return 1;
}

/* The input through a follower: the preamble and first chunk written before it starts (it
 * waits for no header), then a piece at a time (sizes taken from the input), each read until
 * the follower wants more; after the pipe is closed it must come to its end. */
static void follow_in_pieces(const uint8_t *data, size_t size)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
        return;
    fcntl(fds[1], F_SETPIPE_SZ, 1 << 20);
    size_t first = size;
    if (size >= 32) {
        size_t meta = (size_t)data[18] | (size_t)data[19] << 8;
        size_t body = (size_t)data[20] | (size_t)data[21] << 8 | (size_t)data[22] << 16 |
                      (size_t)data[23] << 24;
        if (32 + meta + body < size)
            first = 32 + meta + body;
    }
    size_t done = 0;
    if (!put(fds[1], data, &done, first)) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    ht_reader *reader = ht_reader_follow(fds[0], 0, 0, NULL, 0); /* fds[0] is its now */
    if (!reader) {
        close(fds[1]);
        return;
    }
    int writer = fds[1];
    unsigned long rounds = 0;
    for (;;) {
        long n = ht_reader_read(reader, events, 256);
        if (n > 0) {
            use_events(reader, n);
        } else if (n == -EAGAIN) {
            if (writer < 0)
                abort(); /* the stream ended: the follower must know */
            size_t piece = 1 + (size_t)data[done % size] * 61u;
            size_t end = done + piece < size ? done + piece : size;
            if (!put(writer, data, &done, end) || done == size) {
                close(writer);
                writer = -1;
            }
        } else {
            break;
        }
        if (++rounds > 10000000ul)
            abort(); /* cannot happen: every round hands out events or takes bytes */
    }
    if (writer >= 0)
        close(writer);
    ht_reader_info(reader);
    ht_reader_close(reader);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size)
        follow_in_pieces(data, size);
    ht_reader *reader = ht_reader_open_memory(data, size, NULL, 0);
    if (!reader)
        return 0;
    long n;
    unsigned long rounds = 0;
    while ((n = ht_reader_read(reader, events, 256)) > 0) {
        use_events(reader, n);
        if (++rounds > 10000000ul)
            abort(); /* cannot happen: every event consumes input bytes */
    }
    for (size_t i = 0; i < ht_reader_module_count(reader); i++)
        (void)ht_reader_module(reader, i)->Path;
    ht_reader_rewind(reader);
    ht_reader_read(reader, events, 16);
    ht_reader_close(reader);
    return 0;
}
