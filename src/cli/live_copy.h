/* live_copy.h — the live collector's copy thread (live_copy.c): it reads the streamed trace as
 * fast as it comes and writes every byte to the tee (a file or standard output) and into the
 * pipe the follower reads; a program that execs starts a new trace in the stream, and the copy
 * restarts the file and gives the follower a new pipe for it. */
#ifndef HEAPTRAIL_CLI_LIVE_COPY_H
#define HEAPTRAIL_CLI_LIVE_COPY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HT_LIVE_FRAME_HEAD 16u /* a preamble's or a chunk header's size (FORMAT.md §1) */

typedef struct ht_live_copy {
    int in;            /* the trace's descriptor */
    int tee;           /* -1: none */
    bool tee_seekable; /* a new trace starts the file again */
    int pipe_out;      /* the follower's pipe, -1: none */
    _Atomic int quiet; /* stop feeding the follower (the model is done): copy to the tee only */
    int tee_error;     /* errno of the tee's first failed write */
    uint64_t bytes;    /* read so far */
    unsigned traces;   /* preambles seen */
    /* the framing */
    uint8_t head[HT_LIVE_FRAME_HEAD]; /* a preamble or chunk header being read, held back */
    size_t have;
    uint64_t skip; /* bytes of the current chunk still to pass */
    /* The next trace's pipe for the follower, when the program exec'd: the main thread takes it
     * once the current trace ended. */
    pthread_mutex_t lock;
    int next_fd;
    pthread_t thread;
    bool started;
} ht_live_copy;

/* Starts copying in (owned from here) to tee (-1: none) and, when follow_fd is given, into a
 * pipe whose reading end goes there. 0, or an errno (nothing left open but in and tee). */
int ht_live_copy_start(ht_live_copy *copy, int in, int tee, int *follow_fd);
/* The pipe of the trace that followed the current one (the program exec'd), or -1. */
int ht_live_copy_next(ht_live_copy *copy);
/* The follower reads no more: the rest goes to the tee alone. */
void ht_live_copy_quiet(ht_live_copy *copy);
/* True once the stream ended and the thread is joined (non-blocking). */
bool ht_live_copy_done(ht_live_copy *copy);
/* Waits for the stream's end, at most wait_s seconds (then gives up on it), and closes the
 * descriptors but the tee. */
void ht_live_copy_finish(ht_live_copy *copy, int wait_s);

#endif
