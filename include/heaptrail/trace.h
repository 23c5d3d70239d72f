/* heaptrail/trace.h — trace sessions inside a running process.
 *
 * One session at a time. While it runs, every heap operation is recorded as an event in the
 * calling thread's own buffer (no lock), and a writer thread drains the buffers into a file
 * (docs/FORMAT.md), into real-time consumers, or both. While no session runs, a heap operation
 * pays one predictable branch. Tracing never fails the traced program: errors turn into counted
 * lost events and one message on stderr.
 *
 * Functions returning int give 0 on success or a negative errno value. */
#ifndef HEAPTRAIL_TRACE_H
#define HEAPTRAIL_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptrail/events.h"
#include "heaptrail/heap.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ht_trace_mode {
    HT_TRACE_MODE_BLOCK = 0,   /* never lose an event: a thread whose buffer is full waits */
    HT_TRACE_MODE_DISCARD = 1, /* never wait: events that find the buffer full are counted lost */
    HT_TRACE_MODE_RING = 2,    /* flight recorder: each thread keeps its newest buffer_size
                                * bytes in memory; written by ht_trace_snapshot() and at stop */
} ht_trace_mode;

typedef enum ht_trace_unwinder {
    HT_TRACE_UNWIND_DEFAULT = 0,       /* .eh_frame rules cached per return address, libunwind for
                                    * the frames they cannot describe: libunwind's frames */
    HT_TRACE_UNWIND_LIBUNWIND = 1,     /* unw_backtrace for every stack */
    HT_TRACE_UNWIND_FRAME_POINTER = 2, /* follows frame pointers: fast, but stops at code built
                                        * without them */
} ht_trace_unwinder;

/* A real-time consumer: called on the session's consumer thread with decoded events in
 * timestamp order per thread (threads interleave batch by batch, not event by event). The
 * array is valid during the call only. Heap events made by the callback itself are not traced.
 * If the consumer falls behind by more than its queue, LOST events (HT_LOST_CONSUMER) say so. */
typedef void (*ht_trace_consumer_fn)(const ht_event *events, size_t count, void *context);
/* Stack ids in consumer events resolve with ht_trace_stack_frames(). */

#define HT_TRACE_MAX_CONSUMERS 4

typedef struct ht_trace_consumer {
    ht_trace_consumer_fn callback; /* NULL: unused slot */
    void *context;
} ht_trace_consumer;

typedef struct ht_trace_options {
    /* Output: a path (created or truncated, mode 0600; "%p" is replaced by the pid), else a
     * file descriptor (>= 0; not closed by the tracer), else no file (consumers only). */
    const char *output_path;
    int output_fd;
    ht_trace_mode mode;
    size_t buffer_size;   /* per thread, bytes; default 1 MiB, rounded to 64 KiB chunks */
    unsigned stack_depth; /* frames per stack; 0: no stacks; at most HT_TRACE_MAX_DEPTH */
    bool free_stacks;     /* FREE events get a stack too (else only INVALID ones do: a
                               * free is matched to its allocation's stack by address) */
    ht_trace_unwinder unwinder;
    uint64_t event_mask;        /* HT_EVENT_BIT(kind) of the kinds to record; 0: all */
    const ht_heap *heap;        /* record only this heap; NULL: all heaps */
    size_t min_size;            /* ALLOC/REALLOC: record only sizes in [min_size, max_size] */
    size_t max_size;            /* 0: no upper limit. FREE events are not size-filtered */
    size_t sample_interval;     /* byte sampling: mean bytes between sampled allocations
                               * (Poisson, as heapprofd); 0: record every allocation */
    int compression_level;      /* zstd level for chunks, 1..19; 0: no compression */
    unsigned flush_interval_ms; /* how often partly filled buffers are written; default 100 */
    bool follow_forks;          /* ht_trace_fork_child() starts a new session in the child */
    bool no_rundown;            /* skip the rundown of existing heaps and blocks at start */
    /* When the process exits with the session running: stop its other threads, scan the roots
     * and the live blocks for pointers, and record the blocks nothing points to (LEAK_SCAN and
     * UNREACHABLE_BLOCK records, docs/FORMAT.md) before the footer. */
    bool leak_scan;
    ht_trace_consumer consumers[HT_TRACE_MAX_CONSUMERS];
} ht_trace_options;

#define HT_TRACE_MAX_DEPTH 128u
#define HT_TRACE_DEFAULT_BUFFER (1u << 20)
#define HT_TRACE_CHUNK_BYTES (64u << 10)

/* Fills options with the defaults: no output, block mode, 1 MiB per thread, no stacks, every
 * event, no sampling, no compression, flush every 100 ms. */
HT_API void ht_trace_options_init(ht_trace_options *options);

/* Starts a session: opens the output, starts the writer (and consumer) thread, switches the
 * hooks on, writes the module map and the rundown (every heap, every live block).
 * -EBUSY: a session runs; -EINVAL: bad options; -ENXIO: the output is a FIFO nobody reads
 * (never waited for); other: the errno of open/mmap/pthread_create. */
HT_API int ht_trace_start(const ht_trace_options *options);

/* Stops the session: hooks off, every thread's buffered events written (ring mode: the ring),
 * footer written, file closed, threads joined. -ENOENT when no session runs. Safe to call from
 * an atexit handler. Events of threads inside a hook at that instant are waited for. Block
 * mode waits for the output as long as it takes; discard and ring modes give up on an output
 * that takes nothing for 1 s (10 s at most) and count the rest lost (DESIGN.md). */
HT_API int ht_trace_stop(void);

HT_API bool ht_trace_is_active(void);

/* Writes what every thread has buffered so far and waits until it is written (block and
 * discard modes). -ENOENT when no session runs. */
HT_API int ht_trace_flush(void);

/* Ring mode: writes the ring's current contents (what was not written by an earlier
 * snapshot) and a rundown taken now. Other modes: same as ht_trace_flush(). */
HT_API int ht_trace_snapshot(void);

/* Environment variables read by ht_trace_start_from_env (values and ranges as in README.md,
 * "Option values": sizes like 64K or 4MiB, nothing signed, clamped or wrapped):
 *   HEAPTRAIL_OUTPUT=path      output file; "%p" becomes the pid. Tracing starts only if this
 *                              or HEAPTRAIL_FD is set.
 *   HEAPTRAIL_FD=n             write to inherited descriptor n instead
 *   HEAPTRAIL_MODE=block|discard|ring       (default block)
 *   HEAPTRAIL_BUFFER=size      per-thread buffer (default 1m)
 *   HEAPTRAIL_STACKS=depth     stack depth, 0 = none (default 0): at ALLOC and REALLOC
 *   HEAPTRAIL_FREE_STACKS=1    a stack at every FREE too (default: only INVALID frees)
 *   HEAPTRAIL_UNWIND=libunwind|fp           (default: cached .eh_frame rules, then libunwind)
 *   HEAPTRAIL_SAMPLE=bytes     mean sampling interval, 0 = record all (default 0)
 *   HEAPTRAIL_EVENTS=list      comma list of alloc,free,realloc,heap (default all)
 *   HEAPTRAIL_MIN_SIZE=size, HEAPTRAIL_MAX_SIZE=size   size filter for ALLOC/REALLOC
 *   HEAPTRAIL_COMPRESS=level   zstd level 1..19 (default 0: none)
 *   HEAPTRAIL_FLUSH_MS=ms      flush interval (default 100)
 *   HEAPTRAIL_FOLLOW_FORKS=1   children started through fork get their own trace
 *   HEAPTRAIL_NO_RUNDOWN=1     skip the start-up rundown
 *   HEAPTRAIL_LEAK_SCAN=1      at exit, scan for unreachable blocks (leak_scan)
 * Returns 1 when a session was started, 0 when none was asked for, or a negative errno (bad
 * value: -EINVAL, with one line on stderr). Call it once, e.g. from a library constructor. It
 * also registers ht_trace_stop with atexit. */
HT_API int ht_trace_start_from_env(void);

/* Best-effort emergency flush for fatal signal handlers (SIGSEGV, SIGABRT, ...): writes every
 * thread's committed events and a footer with plain write(2) calls from the calling thread, then
 * leaves the session stopped. Async-signal-safe: takes no lock, allocates nothing. Returns at
 * once if no session runs or another emergency flush is in progress. */
HT_API void ht_trace_emergency_flush(void);

/* For a fork() wrapper: call in the child right after fork returns 0. The tracer's threads do
 * not exist in the child, so the inherited session is dropped (the parent's file is left to
 * the parent); if the session had follow_forks, a new session with the same options starts,
 * writing to the output path with "%p" expanded to the child's pid (without "%p",
 * ".<pid>" is appended). Returns 1 if a session started, 0 if not, or a negative errno. */
HT_API int ht_trace_fork_child(void);

/* In-process stack table, for consumers: copies up to max frames of a stack id; returns the
 * depth (0 for an unknown id). Return addresses, innermost first. */
HT_API unsigned ht_trace_stack_frames(uint32_t stack_id, uint64_t *frames, unsigned max);

typedef struct ht_trace_stats {
    uint64_t events;        /* events written out or handed to consumers */
    uint64_t lost;          /* events lost, all reasons */
    uint64_t bytes_written; /* to the output, including framing */
    uint64_t chunks_written;
    uint64_t stacks;       /* distinct stacks */
    uint64_t threads;      /* threads that recorded events */
    uint64_t write_errors; /* failed writes to the output */
} ht_trace_stats;

/* Statistics of the running session, or of the last one after it stopped. */
HT_API void ht_trace_stats_get(ht_trace_stats *stats);

/* ---- Control (src/trace/control.c, control_signal.c) ----
 * `heaptrail start|stop|status|snapshot PID` reach a running process without anything standing
 * in it: the process only catches a real-time signal, the control signal (SIGRTMIN +
 * HT_CONTROL_SIGNAL_OFFSET unless HEAPTRAIL_SIGNAL names another). A client sends it with
 * sigqueue and the value HT_CONTROL_SIGNAL_COOKIE; the process then opens a Unix stream socket,
 * <dir>/<pid>.sock, served by a listener thread that ends with its socket once no request has
 * come for about a second. The socket is opened from the signal handler when the thread the
 * signal interrupted is parked in a blocking system call (read, poll, sleep, ...), else by the
 * next call of the malloc family, so no lock the interrupted code holds is ever needed.
 * dir is the first of: $HEAPTRAIL_CONTROL_DIR, $XDG_RUNTIME_DIR/heaptrail (each only if an
 * absolute path), /tmp/heaptrail-<euid>. The directory must be owned by the process's effective
 * uid with no group or other access (it is created with mode 0700), and only a peer whose
 * effective uid (SO_PEERCRED) equals the process's is served: owner only, root included.
 * The protocol is a few text lines each way (README.md, "Control protocol"). */
#define HT_CONTROL_SIGNAL_OFFSET 7
#define HT_CONTROL_SIGNAL_COOKIE 0x48540000 /* "HT"; the low byte is the process's own */

/* Writes the socket path of process pid whose effective uid is uid, given the values of
 * HEAPTRAIL_CONTROL_DIR and XDG_RUNTIME_DIR in its environment (NULL: unset). Returns the
 * length, or -ENAMETOOLONG when it does not fit size or a socket address (108 bytes). */
HT_API int ht_control_socket_path(char *path, size_t size, uint32_t uid, uint32_t pid,
                                  const char *control_dir, const char *runtime_dir);

/* Makes this process reachable: reads HEAPTRAIL_SIGNAL and HEAPTRAIL_CONTROL_DIR, installs the
 * control signal's handler (a handler already there is chained: signals that are not requests
 * go to it) and registers an exit handler that removes a socket still open and stops a running
 * session. Opens no descriptor and starts no thread. Idempotent. 0, or -EINVAL (a variable
 * refused; one line on stderr) or the errno of sigaction. */
HT_API int ht_control_start(void);

/* Stops answering: a listener still open closes its socket and ends, the signal's disposition
 * goes back to the program's. No-op if not started. */
HT_API void ht_control_stop(void);

/* For a fork() wrapper, in the child after ht_trace_fork_child(): forgets the parent's listener
 * (closes an inherited socket, leaves the parent's path alone); the child answers the signal
 * as its parent did. 1 if it does, 0 if control was not started. */
HT_API int ht_control_fork_child(void);

/* The signal this process answers, 0 if none. */
HT_API int ht_control_signal(void);

/* Asks process pid to open its control socket: sigqueue(pid, signal_number, COOKIE). 0 or a
 * negative errno (-ESRCH, -EPERM). */
HT_API int ht_control_request(int pid, int signal_number);

#ifdef __cplusplus
}
#endif
#endif
