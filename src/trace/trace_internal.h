/* trace_internal.h — what the tracer's files share: the per-thread buffer (hti_trace_thread), the
 * session, the clock, and the internal calls between buffer.c, writer.c, session.c,
 * stacks.c and consumer.c.
 *
 * Invariants: a thread's buffer is written only by its owner thread and read by the writer
 * through the acquire/release words `committed`, `head` and `tail`; every byte below a fill's
 * committed offset is immutable until the writer releases the fill (block/discard) or the
 * owner starts that fill again (ring). The tracer never allocates from a heap: all its memory
 * comes from hti_map_memory(). Code running on behalf of the tracer sets the thread's guard, so
 * heap hooks called underneath return at once. A thread's `in_hook` is 1 from before a hook reads
 * the session generation until after it committed its event: a stop switches the hooks off,
 * issues a process-wide barrier (hti_hooks_barrier) and lets the writer wait until every thread
 * was seen outside a hook, so no event that saw the session is committed after the final drain.
 * Waits on the output are bounded as DESIGN.md ("What the tracer guarantees in each mode") says;
 * the HTI_*_NS values below are those bounds. */
#ifndef HEAPTRAIL_TRACE_INTERNAL_H
#define HEAPTRAIL_TRACE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/compiler.h"
#include "emit.h"
#include "format.h"
#include "heaptrail/trace.h"

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#define HTI_TLS __attribute__((tls_model("initial-exec"))) _Thread_local
#define HTI_FILL_BYTES HT_TRACE_CHUNK_BYTES

/* An output that has taken no byte for this long is stalled: a stop that may give up (discard and
 * ring modes, and every mode at exit) gives up on it, and so do a discard/ring rundown waiting
 * for room and a discard/ring flush. */
#define HTI_STALL_NS 1000000000ull
/* A stop that may give up waits at most this long in all for the output (a reader that takes a
 * byte now and then cannot hold it). */
#define HTI_STOP_LIMIT_NS 10000000000ull
/* A stop waits at most this long for a thread inside a hook that is not waiting for room. */
#define HTI_QUIESCE_NS 1000000000ull

/* ---- clock ---- */

extern int hti_clock_tsc; /* 1: ticks are TSC, 0: ticks are CLOCK_MONOTONIC ns */

static inline uint64_t hti_monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t hti_ticks(void)
{
#if defined(__x86_64__)
    if (HTI_LIKELY(hti_clock_tsc))
        return __rdtsc();
#endif
    return hti_monotonic_ns();
}

void hti_clock_init(void);
/* Ticks to ns with the process's running calibration (for the consumer and the stats). */
uint64_t hti_clock_to_ns(uint64_t ticks);
/* Records a (ticks, ns) pair into the calibration. */
void hti_clock_sample(uint64_t *ticks, uint64_t *ns);
uint64_t hti_clock_ticks_per_second(void);

/* ---- per-thread buffers ---- */

/* One fill: a HTI_FILL_BYTES region a thread writes events into from offset 0. */
typedef struct hti_fill {
    _Atomic uint64_t committed; /* (events << 32) | bytes, stored after each event */
    _Atomic uint64_t seq;       /* which fill of the stream this is (owner sets on start) */
    uint64_t base_ticks;        /* ticks the first event's delta is taken from */
    /* The writer's progress: how much of fill `written_seq` has been emitted. Written by the
     * writer only (writer.c fill_progress), read by it and by a crash flush (fill_ready):
     * atomic so that a crash flush reads whole values, written_seq last (release). */
    _Atomic uint64_t written_seq;
    _Atomic uint64_t written;  /* committed word already emitted */
    _Atomic bool write_failed; /* a body of it missed the output: the rest cannot be decoded */
} hti_fill;

/* A buffer's life: ALIVE; EXITING once its thread's exit destructor ran (the thread may still
 * write: later key destructors and the C library's own clean-up free memory), until the writer
 * sees the thread gone; EXITED when nothing will write it again (the writer drains, frees it). */
enum { HTI_THREAD_ALIVE = 0, HTI_THREAD_EXITING = 1, HTI_THREAD_EXITED = 2 };

typedef struct hti_trace_thread {
    /* hot, owner only */
    uint8_t *pos;      /* next free byte of the current fill */
    uint8_t *limit;    /* start a new fill when pos passes this */
    uint8_t *data;     /* current fill's data */
    uint64_t fast_gen; /* == hti_trace_gen when the plain fast path may run */
    uint64_t events;   /* events in the current fill */
    uint64_t last_ticks;
    uint64_t last_address;
    uint64_t last_heap;
    hti_fill *fill;           /* current fill, NULL before the first */
    _Atomic uint32_t in_hook; /* 1 while the owner runs a hook (see the top of this file) */
    uint64_t gen;             /* session this buffer belongs to */
    uint32_t tid;
    uint32_t nfills;
    int64_t sample_left; /* bytes until the next sample */
    uint64_t rng;
    uint64_t lost_local; /* events lost not yet reported in-stream */
    uint64_t lost_first, lost_last;
    uint32_t lost_reason;
    uint32_t rundown; /* 1: the rundown stream */
    uint64_t total_events;

    /* shared with the writer */
    _Atomic uint64_t head __attribute__((aligned(64))); /* fills started */
    _Atomic uint64_t tail;                              /* fills released */
    _Atomic uint64_t published_gen;                     /* gen, stored after a reset */
    _Atomic uint64_t stream_id;
    _Atomic int state;
    _Atomic uint64_t lost_total; /* all events this thread lost (stats) */
    _Atomic uint64_t events_total;
    _Atomic uint32_t waiting; /* block mode: the owner waits for room (the whole wait) */
    uint32_t exit_polls;      /* writer-private: times it found the EXITING thread still there */
    uint64_t quiet_gen; /* writer-private: the stopping session it was seen outside a hook in */
    struct hti_trace_thread *next; /* registry list; writer-owned except the head pointer */
    /* memory */
    uint8_t *fill_data; /* nfills * HTI_FILL_BYTES */
    size_t data_size;
    hti_fill *fills;
    size_t fills_capacity;
} hti_trace_thread;

/* The list of thread buffers: pushed by threads, unlinked only by the writer (or by start
 * while no writer runs). */
extern _Atomic(hti_trace_thread *) hti_threads;

/* ---- the session ---- */

/* Pending LOST records of the writer, one per (thread, reason) while there is room. */
#define HTI_WRITER_LOST_SLOTS 256u

/* The writer's own state (writer.c). The writer thread's alone while it runs; cleared with the
 * session at start, before it. A crash flush (hti_writer_emergency) reads none of it. */
typedef struct hti_writer {
    hti_lost_record lost[HTI_WRITER_LOST_SLOTS]; /* losses waiting for a LOST chunk */
    uint32_t stacks_emitted;                     /* stack ids [1, stacks_emitted] are written */
    uint8_t ring_copy[HTI_FILL_BYTES];           /* a ring fill's bytes, copied to be written */
} hti_writer;

typedef struct hti_session {
    ht_trace_options options;
    char path[4096];
    uint64_t gen;
    pid_t pid; /* of the process that started the session */
    int fd;
    bool own_fd;
    bool handed_over; /* fd came through the control socket (hti_trace_start_stream): owned,
                         shown as "stream", and nothing about it is printed on stderr */
    bool seekable;
    bool socket;         /* a socket: written with MSG_DONTWAIT */
    bool file_failed;    /* the last write failed */
    int output_cut;      /* 0, or the errno that ended the output (nothing more is written):
                               a stream ends inside a chunk, the header is missing, or a stop
                               gave up on a stalled output (ETIMEDOUT) */
    bool error_reported; /* the one message on stderr was printed */
    _Atomic uint64_t file_offset;
    uint32_t nfills;
    bool filtered; /* filters, sampling or stacks: no plain fast path */
    bool ring;
    bool block;
    bool has_consumers;
    uint64_t start_ticks, start_ns, start_realtime_ns;
    _Atomic uint64_t stream_ids;

    /* writer control */
    pthread_t writer;
    pthread_t consumer;
    bool writer_started, consumer_started;
    _Atomic uint32_t writer_wake; /* futex word: bumped to wake the writer */
    _Atomic uint32_t writer_asleep;
    _Atomic uint32_t released; /* futex word: bumped when fills are released */
    _Atomic uint32_t stop_request;
    _Atomic uint32_t flush_request; /* counter of flush requests */
    _Atomic uint32_t flush_done;    /* futex word: last request served */
    _Atomic uint32_t snapshot_request;
    _Atomic uint32_t emergency;
    _Atomic uint32_t stream_busy;   /* the writer thread is inside a chunk on a stream */
    _Atomic uint32_t header_state;  /* writer.c: the header is written once, first, by the writer
                                       thread or by a crash flush that comes before it */
    _Atomic uint64_t blocked_since; /* ns: the output took its last byte while the writer waits
                                       for room in it (0: not waiting) */
    _Atomic uint64_t give_up_at;    /* ns: a stop or crash flush that may give up (0: none) stops
                                       waiting for the output then, or once it is stalled */
    bool writer_lingering;          /* a bounded stop left the writer in a write: reaped later */
    _Atomic uint32_t reader_gone;   /* the writer found the reader of a stream gone (EPIPE,
                                       ECONNRESET, POLLHUP, POLLERR): the session ends itself */
    _Atomic uint32_t ended;         /* HTI_ENDED_*: how the session ended (control's `ended`) */

    /* stats */
    _Atomic uint64_t bytes_written;
    _Atomic uint64_t chunks_written;
    _Atomic uint64_t write_errors;
    _Atomic uint64_t lost_write;
    _Atomic uint64_t lost_consumer;
    _Atomic uint64_t threads;
    _Atomic uint64_t stacks;
    _Atomic uint64_t events_emitted; /* written out or handed to consumers */
    _Atomic uint64_t lost_buffer;    /* discard mode and session end */
    /* The traced heaps' committed bytes (session.c: a sum taken at start, then every EXPAND and
     * CONTRACT of theirs) and the most seen at once; and their live blocks at the stop, walked
     * after the hooks are off, for the footer (FORMAT.md §10). */
    _Atomic int64_t committed;
    _Atomic int64_t committed_peak;
    uint64_t end_live_blocks, end_live_bytes;
    uint64_t end_flags;             /* HTI_FOOTER_AT_EXIT */
    bool end_known;                 /* the three above were taken (a stop, not a crash flush) */
    _Atomic uint32_t end_handshake; /* futex word, HTI_END_*: see hti_writer_stop */

    /* writer's memory */
    uint8_t *scratch; /* compression output / ring copies */
    size_t scratch_size;
    uint8_t *records; /* small records batch (stacks, modules, strings, lost) */
    size_t records_size;
    uint8_t *deferred; /* chunks made at start, written by the writer after the header */
    size_t deferred_size, deferred_used;
    bool defer_chunks; /* hti_write_chunk keeps chunks in `deferred` (start, before the writer) */
    bool deferred_overflow;
    void *zstd; /* ZSTD_CCtx */
    hti_writer writer_state;
} hti_session;

extern hti_session hti_session_state;

/* Monotonic ns at which every wait of the tracer gives up because the process exits (0: not
 * exiting); set by the exit handlers, read like a session's give_up_at. */
extern _Atomic uint64_t hti_exit_give_up_at;
/* The last session whose writer finished waiting for the hooks: a thread of it still waiting
 * for room gives up (its event counted lost, SESSION_END). */
extern _Atomic uint64_t hti_finished_gen;

/* How a session ended, once it has (hti_session.ended): a stop (request, API or exit), or by
 * itself when the reader of its stream, the trace's consumer, went away. */
enum { HTI_ENDED_NONE, HTI_ENDED_STOP, HTI_ENDED_CONSUMER_GONE };

/* ---- memory ---- */
void *hti_map_memory(size_t size); /* mmap: zeroed, NULL on failure */
void hti_unmap_memory(void *memory, size_t size);

/* ---- guard: the calling thread is doing tracer work ---- */
/* The guard's nesting depth, non-zero while the thread works for the tracer: the preload library
 * tests it inline to serve such allocations from its private heap (hti_tracer_heap). */
extern HTI_TLS unsigned hti_guard_depth;
/* The preload library's private heap for those allocations (NULL without it): heaptrail's own
 * memory, never traced, left out of every rundown (session.c). */
extern ht_heap *_Atomic hti_tracer_heap;
void hti_guard_enter(void);
void hti_guard_leave(void);
bool hti_guard_active(void);

/* ---- buffer.c ---- */
/* Sets up a stream for the rundown, owned by the caller until hti_stream_close. */
hti_trace_thread *hti_stream_open_rundown(uint32_t tid);
void hti_stream_close(hti_trace_thread *stream);
/* Writes into a stream the calling thread owns (the rundown); always waits for room. */
void hti_emit_rundown_heap(hti_trace_thread *stream, uint64_t ticks, const ht_heap *heap,
                           uint64_t reserved, uint64_t committed, uint64_t live_blocks,
                           uint32_t compatibility);
void hti_emit_rundown_block(hti_trace_thread *stream, uint64_t ticks, const ht_heap *heap,
                            uint64_t size, uint64_t usable, uint64_t address, ht_source source);
/* A reachability scan's outcome (leak_scan.c), as its LEAK_SCAN record gives it. */
typedef struct hti_leak_scan_summary {
    uint32_t flags; /* HT_LEAK_SCAN_* */
    uint32_t threads, threads_stopped;
    uint64_t live_blocks, unreachable;
} hti_leak_scan_summary;
void hti_emit_leak_scan(hti_trace_thread *stream, uint64_t ticks,
                        const hti_leak_scan_summary *scan);
void hti_emit_unreachable_block(hti_trace_thread *stream, uint64_t ticks, const ht_heap *heap,
                                uint64_t address, ht_leak_class leak_class);
/* At exit, with the session running: stops the other threads, classifies every live block of
 * the traced heaps and writes the LEAK_SCAN and UNREACHABLE_BLOCK records (leak_scan.c). */
void hti_leak_scan(hti_session *session);
/* session.c: the registered heap provider (NULL: none); every heap of the process, in memory
 * from hti_map_memory (unmap *mapped bytes), NULL when out of memory or with no provider; and
 * whether a session shows a heap (all but heaptrail's own, or its filter's one). */
const struct hti_rundown_provider *hti_rundown_provider_get(void);
ht_heap **hti_heap_list(const struct hti_rundown_provider *provider, size_t *count, size_t *mapped);
bool hti_heap_traced(const hti_session *session, const ht_heap *heap);
/* Frees a thread buffer (writer, after it is drained): kept as a spare for the next new thread
 * (at most 64), else unmapped. */
void hti_thread_free(hti_trace_thread *thread);
/* Unmaps the spare buffers (session stop, fork child). */
void hti_buffers_trim(void);
/* In the child after fork: drops every buffer but the caller's, which gets the child's thread
 * id (no writer may run). */
void hti_threads_after_fork(void);
/* In the child after fork, no session running: the caller's buffer gets the child's thread id. */
void hti_thread_after_fork_self(void);
/* The calling thread's buffer (guarded or not), NULL if it has none. */
hti_trace_thread *hti_thread_self(void);
uint32_t hti_gettid(void);
/* True once the owner thread of `thread` no longer exists in this process (tgkill probe; errno
 * is preserved). A thread id reused meanwhile reads as "still there": the caller only waits. */
bool hti_thread_gone(const hti_trace_thread *thread);
/* Thread key for the exit flush; created at first start. 0 or -errno. */
int hti_buffers_init(void);
/* After the hooks were switched off: a barrier on every thread of the process, so that a thread
 * that read the session before the switch shows in_hook = 1 to the writer (membarrier). */
void hti_hooks_barrier(void);

/* ---- writer.c ---- */
int hti_writer_start_memory(hti_session *session); /* buffers and compression context */
int hti_writer_start_thread(hti_session *session);
void hti_writer_forget(hti_session *session); /* in a fork child */
/* Fork handlers: before a fork the writer thread is held between two steps (for at most
 * HTI_FORK_PARK_NS), so that it holds no lock of the C library's or another allocator's that
 * the child would inherit held; the parent lets it go on, the child (which has no writer)
 * forgets the hold. */
void hti_writer_fork_prepare(void);
void hti_writer_fork_parent(void);
void hti_writer_fork_child(void);
#define HTI_FORK_PARK_NS 100000000ll /* 100 ms */
/* The footer's end state is walked by the stopping thread, at the writer's request: only once
 * the writer is past the hooks and every waiter for room gave up (a waiter may hold a heap
 * lock, and the stop could not walk that heap before). stop_session sets EXPECTED; the writer,
 * at its footer, moves EXPECTED to WANTED and waits; hti_writer_stop walks
 * (hti_session_end_state) and sets READY. A stop that stops waiting first sets ABANDONED, and
 * the footer goes without it; so does one where nothing was EXPECTED (a failed start). */
enum { HTI_END_NONE, HTI_END_EXPECTED, HTI_END_WANTED, HTI_END_READY, HTI_END_ABANDONED };
/* Asks the writer to stop: it waits until no thread is inside a hook, drains everything and
 * writes the footer (with the end state, see above); then joins it. timeout_ns > 0: returns
 * -ETIMEDOUT if the writer has not ended by then (stuck in a write that cannot be
 * interrupted), the end state's wait included: it is left to end by itself
 * (writer_lingering) and hti_writer_reap finishes the job. 0 or -ETIMEDOUT. */
int hti_writer_stop(hti_session *session, uint64_t timeout_ns);
/* A lingering writer: 0 once it ended and its memory is released, -EBUSY while it runs. */
int hti_writer_reap(hti_session *session);
void hti_writer_wake(hti_session *session);
/* Waits until the writer drained everything committed so far (at most 10 s; discard and ring
 * modes: not past a stalled output). 0, -ETIMEDOUT or -ENOENT. */
int hti_writer_flush(hti_session *session, bool snapshot);
/* Emergency: drains everything from the calling thread (a fatal-signal handler); bounded. */
void hti_writer_emergency(hti_session *session);
/* The output has taken no byte for HTI_STALL_NS while the writer waits for room in it. */
bool hti_output_stalled(hti_session *session);
/* Writes the file preamble and the HEADER chunk (the writer thread, first thing). */
int hti_writer_header(hti_session *session);
/* Frames and writes one chunk (used by the writer thread; at start, with defer_chunks, kept for
 * the writer to write after the header). 0 or -errno. */
int hti_write_chunk(hti_session *session, uint8_t type, const void *meta, size_t meta_length,
                    const void *body, size_t body_length);

/* ---- directory.c ---- */
/* Calls visit(dir, name, context) for each entry of path but "." and ".." (and other dot
 * names), until it returns false; dir is the open directory (for fstatat and unlinkat).
 * Async-signal-safe, no heap. 0, or -1 if path cannot be opened. */
int hti_directory_each(const char *path, bool (*visit)(int dir, const char *name, void *context),
                       void *context);
/* Reads up to size - 1 bytes of a small file (a /proc one) into buffer, NUL-terminated: the
 * length, or -1 if it cannot be opened or read. Async-signal-safe. */
ssize_t hti_read_text(const char *path, char *buffer, size_t size);

/* ---- orphan.c ---- */
/* True once the program's main thread and every other thread that is not heaptrail's ended. */
bool hti_program_gone(void);
/* Ends the process with exit(0) from a new thread (once), as POSIX would have ended it. */
void hti_finish_orphaned_process(void);

/* ---- stacks.c ---- */
int hti_stacks_init(hti_session *session);
void hti_stacks_fini(void);
/* Unwinds the caller's stack (skipping `skip` innermost frames) and returns its id, or 0. */
uint32_t hti_stack_capture(unsigned skip);
/* The address range [*low, *high) of a loaded module's PT_LOAD segments that have every flag
 * of need (0: all of them, PF_X: code); *low > *high when there is none. info is a
 * dl_iterate_phdr callback's struct dl_phdr_info. */
struct dl_phdr_info;
void hti_module_extent(const struct dl_phdr_info *info, uint32_t need, uint64_t *low,
                       uint64_t *high);
uint32_t hti_stack_count(void);

/* ---- unwind.c ---- */
/* The table of unwind rules (once). 0 or -ENOMEM. */
int hti_unwind_init(void);
/* Rules found so far are not used again: modules may have been unloaded. */
void hti_unwind_forget(void);
/* Return addresses of the calling thread, innermost first, frames[0] returning into the caller
 * of these functions. hti_unwind_backtrace: with .eh_frame rules cached per return address;
 * the number of frames (the whole stack, or max), or -ENOENT when a frame has no rule it can
 * follow (the caller asks libunwind). hti_fp_backtrace: by frame pointers, as far as they go. */
int hti_unwind_backtrace(uint64_t *frames, int max);
int hti_fp_backtrace(uint64_t *frames, int max);
/* Writes the stack records with ids in [*emitted + 1, count] and the new modules. */
void hti_stacks_emit(hti_session *session, uint32_t *emitted);
void hti_modules_emit(hti_session *session, bool force);
void hti_modules_reset(void);

/* ---- consumer.c ---- */
int hti_consumer_start(hti_session *session);
void hti_consumer_stop(hti_session *session);
void hti_consumer_forget(hti_session *session); /* in a fork child */
/* Waits (bounded) until the consumers have seen everything pushed so far. */
int hti_consumer_wait(hti_session *session);
/* Hands a drained range to the consumers (copy). Never waits long: drops and counts. */
void hti_consumer_push(hti_session *session, const hti_events_meta *meta, const void *body,
                       size_t size);

/* ---- session.c ---- */
/* Walks every heap and writes RUNDOWN_HEAP and RUNDOWN_BLOCK records. */
void hti_rundown(hti_session *session);
/* Walks the traced heaps for the footer (end_live_*, end_known; the peak committed is raised
 * to what they hold if a commit racing with the start was missed). Takes each heap's lock. */
void hti_session_end_state(hti_session *session);
/* A traced heap's committed memory grew (bytes > 0) or shrank: from the EXPAND and CONTRACT
 * hooks, whatever the event filters; one atomic add, and a compare-exchange on a new peak. */
void hti_committed_change(const ht_heap *heap, int64_t bytes);
/* One line on stderr, without stdio: "heaptrail: <message>\n". */
void hti_message(const char *message, const char *detail, long number);

/* Stops the session from an exit handler: every wait is bounded (block mode too), what could
 * not be written is counted lost. 0, -ENOENT or -ETIMEDOUT. */
int hti_trace_stop_at_exit(void);
/* ht_trace_start on a stream handed over through the control socket: options->output_fd, a pipe
 * or socket, is the session's once it started (written without blocking, closed at the stop,
 * its output shown as "stream"); on an error the caller keeps it and closes it. 0 or -errno. */
int hti_trace_start_stream(const ht_trace_options *options);
/* The writer found the reader of its output gone (reader_gone is set): session s ends by
 * itself, as a stop would, from a thread of its own (the stop joins the writer, which cannot
 * join itself). The writer calls it on every pass until its stop comes: once the thread
 * started it does nothing (a thread that could not be started is tried again). */
void hti_session_end_by_itself(hti_session *session);
/* What a failed ht_trace_start means, for the one line a user sees. */
const char *hti_start_error_text(int error);

/* ---- fault injection (tests) ----
 * A countdown per system call kind: with countdown n > 0, the nth call from now fails with
 * `error` (EIO if 0); sticky: so does every call after it; short_first (writes): the nth call
 * first writes half of its first piece, and the call after it fails. Compiled in always; off,
 * it costs one relaxed load per write or open of the output, never anything on the event path. */
typedef struct hti_fault {
    _Atomic uint32_t countdown;
    int error;
    bool sticky;
    bool short_first;
    _Atomic uint32_t fired; /* calls failed so far */
} hti_fault;

extern hti_fault hti_fault_write; /* pwritev, writev, sendmsg of the output */
extern hti_fault hti_fault_open;  /* open of an output path */
void hti_fault_set(hti_fault *fault, uint32_t nth, int error, bool sticky, bool short_first);
/* 0: go on; > 0: fail with this errno; -1: write only part (short_first). */
int hti_fault_hit(hti_fault *fault);
static inline int hti_fault_check(hti_fault *fault)
{
    if (HTI_LIKELY(atomic_load_explicit(&fault->countdown, memory_order_relaxed) == 0))
        return 0;
    return hti_fault_hit(fault);
}

/* futex helpers */
void hti_futex_wait(_Atomic uint32_t *word, uint32_t expected, long timeout_ns);
void hti_futex_wake(_Atomic uint32_t *word);

#endif
