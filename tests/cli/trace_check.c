/* trace_check.c — an independent consistency check of a trace through the public reader (no code
 * shared with the CLI, so the two check each other). A strict replay: every FREE and REALLOC's
 * old block (Source not INVALID) names a live block of the same heap; nothing lands on a live
 * block; failed operations carry address 0; RUNDOWN_BLOCK inserts unknown blocks only; every
 * LOST record's first timestamp is at or before its last. Prints key=value lines (events, lost,
 * counts, live blocks and bytes at the end, of one heap with --heap; then the footer's counts
 * and end state, when it has them: end_live_* cover every traced heap); exits 0 if consistent, 1
 * with the first problems listed, 2 if unreadable. --lenient counts problems without failing. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heaptrail/reader.h"

typedef struct block {
    uint64_t address, size, heap;
} block;

static block *slots;
static size_t capacity, count;

static size_t home(uint64_t address)
{
    return (size_t)(((address >> 4) * 0x9E3779B97F4A7C15ull) >> 20) & (capacity - 1);
}

static block *find(uint64_t address)
{
    if (!capacity)
        return NULL;
    for (size_t s = home(address);; s = (s + 1) & (capacity - 1)) {
        if (slots[s].address == address)
            return &slots[s];
        if (!slots[s].address)
            return NULL;
    }
}

static void place(uint64_t address, uint64_t size, uint64_t heap)
{
    size_t s = home(address);
    while (slots[s].address)
        s = (s + 1) & (capacity - 1);
    slots[s] = (block){address, size, heap};
    count++;
}

static void insert(uint64_t address, uint64_t size, uint64_t heap)
{
    if ((count + 1) * 2 > capacity) {
        size_t old_capacity = capacity;
        block *old = slots;
        capacity = capacity ? capacity * 2 : 4096;
        slots = calloc(capacity, sizeof *slots);
        if (!slots) {
            fprintf(stderr, "trace_check: out of memory\n");
            exit(2);
        }
        for (size_t i = 0; i < old_capacity; i++) {
            if (!old[i].address)
                continue;
            size_t s = home(old[i].address);
            while (slots[s].address)
                s = (s + 1) & (capacity - 1);
            slots[s] = old[i];
        }
        free(old);
    }
    place(address, size, heap);
}

/* Deletion by re-inserting the rest of the run (simple and obviously right). */
static void erase(block *b)
{
    size_t s = (size_t)(b - slots);
    slots[s].address = 0;
    count--;
    for (size_t next = (s + 1) & (capacity - 1); slots[next].address;
         next = (next + 1) & (capacity - 1)) {
        block moved = slots[next];
        slots[next].address = 0;
        count--;
        place(moved.address, moved.size, moved.heap);
    }
}

static uint64_t problems;
static bool lenient;

static void problem(const ht_event *e, const char *what, uint64_t address)
{
    if (problems++ < 10)
        fprintf(stderr, "trace_check: %s 0x%" PRIx64 " (%s at %" PRIu64 " ns, thread %u)\n", what,
                address, ht_event_kind_name(e->kind), e->timestamp_ns, e->thread_id);
}

int main(int argc, char **argv)
{
    uint64_t heap_filter = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lenient"))
            lenient = true;
        else if (!strcmp(argv[i], "--heap") && i + 1 < argc)
            heap_filter = strtoull(argv[++i], NULL, 0);
        else
            path = argv[i];
    }
    if (!path) {
        fprintf(stderr, "usage: trace_check [--lenient] [--heap HANDLE] TRACE\n");
        return 2;
    }
    char error[512];
    ht_reader *reader = ht_reader_open(path, error, sizeof error);
    if (!reader) {
        fprintf(stderr, "trace_check: %s\n", error);
        return 2;
    }
    static ht_event events[4096];
    uint64_t kinds[256] = {0}, lost = 0, invalid = 0, total = 0, last_ns = 0, disorder = 0;
    long n;
    while ((n = ht_reader_read(reader, events, 4096)) > 0) {
        for (long i = 0; i < n; i++) {
            const ht_event *e = &events[i];
            total++;
            kinds[e->kind & 255]++;
            if (e->timestamp_ns < last_ns)
                disorder++;
            last_ns = e->timestamp_ns;
            block *b;
            switch (e->kind) {
            case HT_EVENT_ALLOC:
                if (e->u.alloc.Source == MEMORY_FROM_INVALID) {
                    invalid++;
                    if (e->u.alloc.Address)
                        problem(e, "failed ALLOC with an address", e->u.alloc.Address);
                    break;
                }
                if (find(e->u.alloc.Address)) {
                    problem(e, "ALLOC of a live block", e->u.alloc.Address);
                    erase(find(e->u.alloc.Address));
                }
                insert(e->u.alloc.Address, e->u.alloc.Size, e->u.alloc.HeapHandle);
                break;
            case HT_EVENT_FREE:
                if (e->u.free.Source == MEMORY_FROM_INVALID) {
                    invalid++;
                    break;
                }
                if (!(b = find(e->u.free.Address))) {
                    problem(e, "FREE of an unknown block", e->u.free.Address);
                    break;
                }
                if (b->heap != e->u.free.HeapHandle)
                    problem(e, "FREE on another heap than the block's", e->u.free.Address);
                erase(b);
                break;
            case HT_EVENT_REALLOC:
                if (e->u.realloc.Source == MEMORY_FROM_INVALID) {
                    invalid++;
                    if (e->u.realloc.NewAddress)
                        problem(e, "failed REALLOC with a new address", e->u.realloc.NewAddress);
                    break;
                }
                if (!(b = find(e->u.realloc.OldAddress)))
                    problem(e, "REALLOC of an unknown block", e->u.realloc.OldAddress);
                else
                    erase(b);
                if (find(e->u.realloc.NewAddress)) {
                    problem(e, "REALLOC onto a live block", e->u.realloc.NewAddress);
                    erase(find(e->u.realloc.NewAddress));
                }
                insert(e->u.realloc.NewAddress, e->u.realloc.NewSize, e->u.realloc.HeapHandle);
                break;
            case HT_EVENT_RUNDOWN_BLOCK:
                if (!find(e->u.rundown_block.Address))
                    insert(e->u.rundown_block.Address, e->u.rundown_block.Size,
                           e->u.rundown_block.HeapHandle);
                break;
            case HT_EVENT_HEAP_DESTROY:
                for (size_t s = 0; s < capacity;) {
                    if (slots[s].address && slots[s].heap == e->u.heap_destroy.HeapHandle)
                        erase(&slots[s]);
                    else
                        s++;
                }
                break;
            case HT_EVENT_LOST:
                lost += e->u.lost.Count;
                if (e->u.lost.FirstTimestamp > e->u.lost.LastTimestamp)
                    problem(e, "LOST record ending before it begins; count", e->u.lost.Count);
                break;
            default: break;
            }
        }
    }
    if (n < 0) {
        fprintf(stderr, "trace_check: %s\n", ht_reader_error(reader));
        return 2;
    }
    const ht_trace_info *info = ht_reader_info(reader);
    uint64_t live_blocks = 0, live_bytes = 0;
    for (size_t s = 0; s < capacity; s++) {
        if (slots[s].address && (!heap_filter || slots[s].heap == heap_filter)) {
            live_blocks++;
            live_bytes += slots[s].size;
        }
    }
    printf("events=%" PRIu64 "\nlost=%" PRIu64 "\nalloc=%" PRIu64 "\nfree=%" PRIu64
           "\nrealloc=%" PRIu64 "\nrundown_blocks=%" PRIu64 "\nheap_create=%" PRIu64
           "\nheap_destroy=%" PRIu64 "\ninvalid=%" PRIu64 "\nproblems=%" PRIu64
           "\ndisorder=%" PRIu64 "\nlive_blocks=%" PRIu64 "\nlive_bytes=%" PRIu64
           "\ncomplete=%d\npid=%u\nprogram=%s\n",
           total, lost, kinds[HT_EVENT_ALLOC], kinds[HT_EVENT_FREE], kinds[HT_EVENT_REALLOC],
           kinds[HT_EVENT_RUNDOWN_BLOCK], kinds[HT_EVENT_HEAP_CREATE], kinds[HT_EVENT_HEAP_DESTROY],
           invalid, problems, disorder, live_blocks, live_bytes, info->complete ? 1 : 0, info->pid,
           info->program);
    /* What the footer says, for comparison with the replay and the program's own numbers. */
    if (info->footer_counts)
        printf("footer_events=%" PRIu64 "\nfooter_lost=%" PRIu64 "\n", info->footer_events,
               info->footer_lost);
    if (info->end_state)
        printf("end_live_blocks=%" PRIu64 "\nend_live_bytes=%" PRIu64 "\npeak_committed=%" PRIu64
               "\nstopped_at_exit=%d\n",
               info->end_live_blocks, info->end_live_bytes, info->peak_committed,
               info->stopped_at_exit ? 1 : 0);
    ht_reader_close(reader);
    free(slots);
    if ((problems || disorder || lost) && !lenient) {
        fprintf(stderr,
                "trace_check: %s: %" PRIu64 " problems, %" PRIu64 " out of order, %" PRIu64
                " lost\n",
                path, problems, disorder, lost);
        return 1;
    }
    return 0;
}
