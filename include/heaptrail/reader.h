/* heaptrail/reader.h — reads trace files (docs/FORMAT.md).
 *
 * Opening a trace scans its chunk headers once (an index of a few dozen bytes per chunk, plus
 * the stack, module and string tables); events are then decoded chunk by chunk and handed out
 * merged across threads in timestamp order. Memory is bounded by the index, the tables and one
 * decoded chunk per thread whose events overlap in time — not by the number of events.
 *
 * A trace can also be followed while it is written (ht_reader_follow): chunks are parsed as they
 * arrive and events handed out once final, with memory bounded by the tables and the chunks not
 * decoded yet.
 *
 * A trace cut short (SIGKILL, crash, full disk) reads up to its last whole chunk, with a
 * warning. A malformed trace gives an error naming the byte offset. The reader checks every
 * length and checksum: no input makes it crash, loop or allocate more than HT_READER_CHUNK_MAX
 * per chunk. Not for use inside a traced process's hooks (it uses malloc). */
#ifndef HEAPTRAIL_READER_H
#define HEAPTRAIL_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptrail/events.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ht_reader ht_reader;

#define HT_READER_CHUNK_MAX (16u << 20) /* largest chunk body accepted, stored or raw */

typedef struct ht_trace_info {
    uint32_t version_major, version_minor;
    uint32_t pid;
    uint32_t pointer_size;
    uint32_t clock_id;          /* CLOCK_MONOTONIC */
    uint64_t start_realtime_ns; /* wall clock at session start (ns since the epoch) */
    uint64_t start_ns;          /* CLOCK_MONOTONIC at session start */
    uint64_t end_ns;            /* last timestamp seen (footer's, if present) */
    const char *program;        /* never NULL */
    const char *command_line;   /* arguments joined by spaces; never NULL */
    uint32_t mode;              /* ht_trace_mode */
    uint32_t stack_depth;
    uint64_t sample_interval; /* 0: not sampled */
    uint64_t event_mask;      /* 0: all */
    uint64_t heap_filter;     /* 0: all heaps */
    uint64_t min_size, max_size;
    bool complete;   /* a footer was found: the session ended cleanly */
    bool truncated;  /* the file ends inside a chunk */
    uint64_t chunks; /* whole chunks in the file */
    uint64_t event_chunks;
    uint64_t events; /* events in the event chunks (from their headers) */
    uint64_t lost;   /* lost events from LOST records */
    uint64_t threads;
    uint64_t stacks;
    uint64_t file_size;
    uint64_t valid_size; /* bytes up to the end of the last whole chunk */
    /* What the session knew when it stopped, from the footer (FORMAT.md §10); read at open,
     * without decoding any event. Each group only when its flag says the footer has it. */
    bool footer_counts;       /* the footer has the session's counts */
    uint64_t footer_events;   /* events the session recorded (those lost in writing too) */
    uint64_t footer_lost;     /* events lost, all reasons, whether or not a LOST record
                                  * made it to the file */
    bool end_state;           /* the footer has the heaps' state at the stop */
    bool stopped_at_exit;     /* the session stopped because the process exited */
    uint64_t end_live_blocks; /* live blocks in the traced heaps at the stop (exact, also */
    uint64_t end_live_bytes;  /* when sampled or filtered) and their requested bytes */
    uint64_t peak_committed;  /* the traced heaps' committed bytes, most at once */
} ht_trace_info;

/* Opens a trace. On failure returns NULL with a one-line message in error (if given),
 * e.g. "bad chunk length 4294967295 at offset 1234", and errno set. */
HT_API ht_reader *ht_reader_open(const char *path, char *error, size_t error_size);
/* The same over a memory buffer, which must stay valid until ht_reader_close. */
HT_API ht_reader *ht_reader_open_memory(const void *data, size_t size, char *error,
                                        size_t error_size);
HT_API void ht_reader_close(ht_reader *reader);

#define HT_READER_WAIT 1u /* ht_reader_read waits for events instead of returning -EAGAIN */
/* Follows a trace as it is written to fd: a pipe, FIFO or socket (the trace ends at the end of
 * the stream), or a regular file still being written (it ends at its footer). Waits at most
 * timeout_ms (-1: no limit) for the preamble and HEADER. The reader puts fd in non-blocking mode
 * and closes it at ht_reader_close (on failure too; its status flags are restored first). NULL
 * with a one-line message on failure (-ETIMEDOUT: "no trace header within N ms").
 *
 * ht_reader_read on a follower reads what fd holds now and hands out the events that are final
 * (docs/FORMAT.md §11, "Reading a live trace"), in the file reader's order: -EAGAIN when none is
 * yet (with HT_READER_WAIT it polls instead), 0 once the trace ended and all was handed out.
 * ht_reader_info, the stacks and the modules are those received so far (a module pointer is
 * valid until the next ht_reader_read); ht_reader_rewind gives -ESPIPE. */
HT_API ht_reader *ht_reader_follow(int fd, unsigned flags, int timeout_ms, char *error,
                                   size_t error_size);
/* The descriptor a follower reads (for poll), -1 for other readers. */
HT_API int ht_reader_fd(const ht_reader *reader);

HT_API const ht_trace_info *ht_reader_info(const ht_reader *reader);

/* Fills events[0..max) with the next events in timestamp order (ties: rundown first, then by
 * thread). Returns the count, 0 at the end, or a negative errno (-EBADMSG: malformed data,
 * -EIO: read error) with the message in ht_reader_error(); events before the bad chunk have
 * been handed out. After an error, further calls return the same error. */
HT_API long ht_reader_read(ht_reader *reader, ht_event *events, size_t max);

/* The last error ("" if none), and warnings so far, one per line ("" if none): truncation,
 * chunks skipped because their predecessor is missing, unknown chunk types. */
HT_API const char *ht_reader_error(const ht_reader *reader);
HT_API const char *ht_reader_warnings(const ht_reader *reader);

/* Restarts the event stream from the beginning (-ESPIPE on a follower). */
HT_API int ht_reader_rewind(ht_reader *reader);

/* A stack by id: frames (return addresses, innermost first) and depth; false if unknown. */
HT_API bool ht_reader_stack(const ht_reader *reader, uint32_t stack_id, const uint64_t **frames,
                            uint32_t *depth);
HT_API size_t ht_reader_module_count(const ht_reader *reader);
HT_API const ht_module *ht_reader_module(const ht_reader *reader, size_t index);
/* The module containing address, or NULL. */
HT_API const ht_module *ht_reader_module_find(const ht_reader *reader, uint64_t address);

#ifdef __cplusplus
}
#endif
#endif
