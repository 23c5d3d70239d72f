/* leak_scan.c — the reachability scan at exit (ht_trace_options.leak_scan): which live blocks
 * the program can still reach, as LeakSanitizer and memcheck decide it.
 *
 * With every heap lock taken (so no thread is stopped inside one, and none that fails to stop
 * can free a block) the other threads are stopped (stop_world.c); the locks are dropped once
 * the scan is over. The live blocks of every heap but heaptrail's
 * own are listed (the heap's walk) and sorted. The roots are every readable and writable
 * mapping of /proc/self/maps — the modules' data and bss, thread stacks (from each stopped
 * thread's stack pointer up, its registers saved there; the scanning thread's from its own
 * frame up), TLS, the program's own anonymous mappings — less the heaps' regions, heaptrail's
 * own mappings (common/own_memory.h), heaptrail's module when it is a library of its own, and
 * device mappings. Any aligned word that points into a block (its first byte up to its requested
 * size: interior pointers count) makes it reachable, and the blocks reachable are scanned the
 * same way. Each block left is lost: taken in address order, one that nothing lost reaches yet
 * leads its group — definitely lost — and what it reaches is indirectly lost (a block that led
 * a group before becomes indirect when a later one reaches it, so a lost cycle has one leader).
 * The outcome goes into the trace as one LEAK_SCAN record and an UNREACHABLE_BLOCK record per
 * lost block of the traced heaps, all stamped with the time of the scan (FORMAT.md §13a).
 *
 * While the threads are stopped nothing here allocates from a heap or takes a lock they may
 * hold: memory comes from mmap, files are read with system calls. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/own_memory.h"
#include "rundown.h"
#include "stop_world.h"
#include "trace_internal.h"

#define STOP_LIMIT_NS 500000000u /* how long the threads get to stop */
#define MAX_EXCLUDED 8192u
#define MAX_STOPPED 8192u
#define COPY_BYTES (64u << 10)
/* Anonymous mappings this big are address space reserved by a runtime (a sanitizer's shadow, a
 * virtual machine's heap): only their resident pages are read, and past HUGE_MAPPING not at all. */
#define LARGE_MAPPING ((uintptr_t)256 << 20)
#define HUGE_MAPPING ((uintptr_t)64 << 30)

/* The scan reads memory the program owns, words that are not its own objects (redzones, other
 * threads' stacks): not for the sanitizers to judge. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))

enum { TAG_UNKNOWN, TAG_REACHABLE, TAG_INDIRECT, TAG_LEADER };

typedef struct block {
    uintptr_t start, end; /* end: start + requested bytes (at least 1) */
    const ht_heap *heap;
    uint32_t tag;
} block;

typedef struct page_entry {
    uintptr_t page;       /* page number + 1; 0: empty slot */
    uint32_t first, last; /* the first and last block touching the page */
} page_entry;

#define PAGE_SHIFT 12
#define MAX_INDEX_PAGES ((size_t)1 << 26) /* 1 GiB of index at most */

typedef struct scan {
    const hti_rundown_provider *provider;
    page_entry *pages; /* the page index (NULL: none) */
    size_t page_capacity;
    block *blocks;
    size_t count, capacity;
    uint32_t *stack; /* blocks to scan, capacity entries */
    size_t top;
    uintptr_t lo, hi;        /* the blocks' extent */
    hti_own_range *excluded; /* sorted, MAX_EXCLUDED entries */
    size_t excluded_count;
    uintptr_t *sps; /* stack pointers: the stopped threads' and this thread's */
    size_t sp_count;
    uint8_t *copy; /* COPY_BYTES: file-backed memory is read through process_vm_readv */
    char *maps;
    size_t maps_length;
    bool failed;      /* out of memory: no record is written */
    bool safe_reads;  /* a thread runs on: roots are read through process_vm_readv only */
    bool no_vm_readv; /* refused here (seccomp, an old kernel): direct reads, private only */
    bool shared_span; /* the mapping being scanned is a shared one */
} scan;

/* Memory for the scan itself: plain mmap, noted in the exclusions by the caller's list (the
 * own-memory table is not touched while threads are stopped). */
static void *scan_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void exclude(scan *sc, uintptr_t start, uintptr_t end)
{
    if (sc->excluded_count < MAX_EXCLUDED && start < end)
        sc->excluded[sc->excluded_count++] = (hti_own_range){start, end};
}

/* ---- the live blocks ---- */

static void visit_heap(void *context, const hti_rundown_heap *state)
{
    (void)context;
    (void)state;
}

typedef struct walk_target {
    scan *sc;
    const ht_heap *heap;
} walk_target;

static void visit_block(void *context, const hti_rundown_block *b)
{
    walk_target *w = context;
    scan *sc = w->sc;
    if (sc->count == sc->capacity) {
        size_t capacity = sc->capacity ? 2 * sc->capacity : 65536;
        block *bigger = scan_map(capacity * sizeof *bigger);
        if (!bigger) {
            sc->failed = true;
            return;
        }
        if (sc->count)
            memcpy(bigger, sc->blocks, sc->count * sizeof *bigger);
        if (sc->blocks)
            munmap(sc->blocks, sc->capacity * sizeof *sc->blocks);
        sc->blocks = bigger;
        sc->capacity = capacity;
    }
    uintptr_t start = (uintptr_t)b->address;
    uint64_t size = b->requested ? b->requested : 1;
    sc->blocks[sc->count++] = (block){start, start + size, w->heap, TAG_UNKNOWN};
}

static void sift(block *a, size_t root, size_t n)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1].start > a[child].start)
            child++;
        if (a[root].start >= a[child].start)
            return;
        block t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

/* Heapsort: no memory, no library call. */
static void sort_blocks(block *a, size_t n)
{
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n);
    for (size_t end = n; end > 1; end--) {
        block t = a[0];
        a[0] = a[end - 1];
        a[end - 1] = t;
        sift(a, 0, end - 1);
    }
}

/* ---- the page index ----
 * For every page some block touches: the first and the last block touching it (blocks sorted
 * by start). The block holding an address is then the last one starting at or before it among
 * those few; a page no block touches holds none. An open-addressed table, keyed by page. */

static uint64_t page_hash(uintptr_t page)
{
    return (uint64_t)page * 0x9E3779B97F4A7C15u;
}

static const page_entry *page_lookup(const scan *sc, uintptr_t page)
{
    size_t mask = sc->page_capacity - 1;
    for (size_t i = (size_t)(page_hash(page) >> 20) & mask;; i = (i + 1) & mask) {
        const page_entry *e = &sc->pages[i];
        if (e->page == page + 1)
            return e;
        if (!e->page)
            return NULL;
    }
}

static void page_touch(scan *sc, uintptr_t page, uint32_t index)
{
    size_t mask = sc->page_capacity - 1;
    for (size_t i = (size_t)(page_hash(page) >> 20) & mask;; i = (i + 1) & mask) {
        page_entry *e = &sc->pages[i];
        if (!e->page) {
            *e = (page_entry){page + 1, index, index};
            return;
        }
        if (e->page == page + 1) {
            e->last = index;
            return;
        }
    }
}

/* Without memory for it (or for blocks spanning too many pages), lookups search the list. */
static void build_page_index(scan *sc)
{
    size_t touched = 0;
    for (size_t i = 0; i < sc->count && touched <= MAX_INDEX_PAGES; i++)
        touched += ((sc->blocks[i].end - 1) >> PAGE_SHIFT) - (sc->blocks[i].start >> PAGE_SHIFT) +
                   1;
    if (touched > MAX_INDEX_PAGES || sc->count > UINT32_MAX)
        return;
    size_t capacity = 1024;
    while (capacity < 2 * touched)
        capacity *= 2;
    sc->pages = scan_map(capacity * sizeof *sc->pages);
    if (!sc->pages)
        return;
    sc->page_capacity = capacity;
    for (size_t i = 0; i < sc->count; i++) {
        uintptr_t first = sc->blocks[i].start >> PAGE_SHIFT;
        uintptr_t last = (sc->blocks[i].end - 1) >> PAGE_SHIFT;
        for (uintptr_t page = first; page <= last; page++)
            page_touch(sc, page, (uint32_t)i);
    }
}

static bool collect_blocks(scan *sc, ht_heap **heaps, size_t heap_count)
{
    ht_heap *own = atomic_load_explicit(&hti_tracer_heap, memory_order_relaxed);
    static const hti_rundown_visitor visitor = {visit_heap, visit_block};
    for (size_t i = 0; i < heap_count && !sc->failed; i++) {
        if (heaps[i] == own)
            continue;
        walk_target w = {sc, heaps[i]};
        sc->provider->walk(heaps[i], &visitor, &w);
    }
    if (sc->failed)
        return false;
    /* Each walk goes in address order: with one heap (or heaps that do not interleave) the list
     * is sorted already. */
    for (size_t i = 1; i < sc->count; i++)
        if (sc->blocks[i].start < sc->blocks[i - 1].start) {
            sort_blocks(sc->blocks, sc->count);
            break;
        }
    if (sc->count) {
        sc->lo = sc->blocks[0].start;
        sc->hi = 0;
        for (size_t i = 0; i < sc->count; i++)
            if (sc->blocks[i].end > sc->hi)
                sc->hi = sc->blocks[i].end;
        sc->stack = scan_map(sc->count * sizeof *sc->stack);
        if (!sc->stack)
            return false;
        build_page_index(sc);
    }
    return true;
}

/* The block a value points into, or -1: through the page index when there is one (a page no
 * block touches answers at once, as most values do), else a search of the whole list. */
static long find_block(const scan *sc, uintptr_t value)
{
    if (value < sc->lo || value >= sc->hi)
        return -1;
    size_t low = 0, high = sc->count; /* the last block starting at or before value */
    if (sc->pages) {
        const page_entry *e = page_lookup(sc, value >> PAGE_SHIFT);
        if (!e)
            return -1;
        low = e->first;
        high = (size_t)e->last + 1;
    } else {
        uintptr_t region_start, region_end;
        if (!sc->provider->region(value, &region_start, &region_end))
            return -1;
    }
    if (sc->blocks[low].start > value)
        return -1;
    while (high - low > 1) {
        size_t mid = low + (high - low) / 2;
        if (sc->blocks[mid].start <= value)
            low = mid;
        else
            high = mid;
    }
    const block *b = &sc->blocks[low];
    return value >= b->start && value < b->end ? (long)low : -1;
}

/* ---- marking ---- */

static void mark_reachable(scan *sc, long i)
{
    if (i >= 0 && sc->blocks[i].tag == TAG_UNKNOWN) {
        sc->blocks[i].tag = TAG_REACHABLE;
        sc->stack[sc->top++] = (uint32_t)i;
    }
}

NO_SANITIZE static void scan_words_reachable(scan *sc, const uintptr_t *word, size_t words)
{
    for (size_t k = 0; k < words; k++)
        mark_reachable(sc, find_block(sc, word[k]));
}

static size_t block_words(const block *b)
{
    return (b->end - b->start) / sizeof(uintptr_t);
}

static void flood_reachable(scan *sc)
{
    while (sc->top) {
        const block *b = &sc->blocks[sc->stack[--sc->top]];
        scan_words_reachable(sc, (const uintptr_t *)b->start, block_words(b));
    }
}

/* From the lost block `leader`: everything it reaches that is not reachable is indirect. */
NO_SANITIZE static void flood_lost(scan *sc, uint32_t leader)
{
    sc->blocks[leader].tag = TAG_LEADER;
    sc->stack[sc->top++] = leader;
    while (sc->top) {
        const block *b = &sc->blocks[sc->stack[--sc->top]];
        const uintptr_t *word = (const uintptr_t *)b->start;
        for (size_t k = 0, n = block_words(b); k < n; k++) {
            long j = find_block(sc, word[k]);
            if (j < 0 || (uint32_t)j == leader)
                continue;
            block *to = &sc->blocks[j];
            if (to->tag == TAG_UNKNOWN) {
                to->tag = TAG_INDIRECT;
                sc->stack[sc->top++] = (uint32_t)j;
            } else if (to->tag == TAG_LEADER) {
                to->tag = TAG_INDIRECT; /* its group was flooded already */
            }
        }
    }
}

/* ---- the roots ---- */

/* Reads /proc/self/maps whole into sc->maps. */
static bool read_maps(scan *sc)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t capacity = 1u << 20;
    char *text = scan_map(capacity);
    size_t length = 0;
    while (text) {
        if (length + 1 == capacity) {
            char *bigger = scan_map(2 * capacity);
            if (bigger)
                memcpy(bigger, text, length);
            munmap(text, capacity);
            text = bigger;
            capacity *= 2;
            continue;
        }
        ssize_t n = read(fd, text + length, capacity - 1 - length);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        length += (size_t)n;
    }
    close(fd);
    if (!text)
        return false;
    text[length] = '\0';
    sc->maps = text;
    sc->maps_length = capacity;
    return true;
}

typedef struct mapping {
    uintptr_t start, end;
    bool readable, writable, shared;
    uint64_t inode;
    const char *path; /* up to the end of the line ("" for anonymous) */
    size_t path_length;
} mapping;

static uintptr_t parse_hex(const char **p)
{
    uintptr_t v = 0;
    for (;; (*p)++) {
        char c = **p;
        if (c >= '0' && c <= '9')
            v = v * 16 + (uintptr_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = v * 16 + (uintptr_t)(c - 'a' + 10);
        else
            return v;
    }
}

static void skip_field(const char **p)
{
    while (**p && **p != ' ' && **p != '\n')
        (*p)++;
    while (**p == ' ')
        (*p)++;
}

/* One line of /proc/self/maps: "start-end perms offset dev inode   path". Advances *p past it. */
static bool next_mapping(const char **p, mapping *m)
{
    const char *c = *p;
    if (!*c)
        return false;
    m->start = parse_hex(&c);
    if (*c == '-')
        c++;
    m->end = parse_hex(&c);
    while (*c == ' ')
        c++;
    m->readable = c[0] == 'r';
    m->writable = c[0] && c[1] == 'w';
    m->shared = c[0] && c[1] && c[2] && c[3] == 's';
    skip_field(&c); /* perms */
    skip_field(&c); /* offset */
    skip_field(&c); /* dev */
    m->inode = 0;
    while (*c >= '0' && *c <= '9')
        m->inode = m->inode * 10 + (uint64_t)(*c++ - '0');
    while (*c == ' ')
        c++;
    m->path = c;
    while (*c && *c != '\n')
        c++;
    m->path_length = (size_t)(c - m->path);
    if (*c == '\n')
        c++;
    *p = c;
    return true;
}

static bool same_path(const mapping *a, const char *path, size_t length)
{
    return a->path_length == length && length && memcmp(a->path, path, length) == 0;
}

/* heaptrail's module, when it is a library of its own (the preload library, libheaptrail.so):
 * its data holds the tracer's and the heap's state, never the program's pointers. Linked into
 * the program itself, its data is the program's and stays a root. */
static void exclude_own_module(scan *sc)
{
    uintptr_t code = (uintptr_t)&hti_leak_scan;
    const char *path = NULL;
    size_t length = 0;
    const char *p = sc->maps;
    mapping m;
    while (next_mapping(&p, &m))
        if (code >= m.start && code < m.end) {
            path = m.path;
            length = m.path_length;
            break;
        }
    if (!path || !length || path[0] != '/')
        return;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe);
    if (n > 0 && (size_t)n == length && memcmp(exe, path, length) == 0)
        return;
    bool previous_own = false;
    uintptr_t previous_end = 0;
    p = sc->maps;
    while (next_mapping(&p, &m)) {
        bool own = same_path(&m, path, length);
        /* The bss past the file's end is an anonymous mapping right after the last segment. */
        if (own || (previous_own && m.inode == 0 && m.path_length == 0 && m.start == previous_end))
            exclude(sc, m.start, m.end);
        previous_own = own;
        previous_end = m.end;
    }
}

/* The stacks of heaptrail's own threads: they hold the tracer's state (an event being encoded
 * names a block), and those threads run on during the scan. */
static void exclude_own_stacks(scan *sc)
{
    uintptr_t inside[16];
    size_t n = hti_world_own_stacks(inside, 16);
    const char *p = sc->maps;
    mapping m;
    while (next_mapping(&p, &m))
        for (size_t i = 0; i < n; i++)
            if (inside[i] >= m.start && inside[i] < m.end)
                exclude(sc, m.start, m.end);
}

static void sort_excluded(scan *sc)
{
    hti_own_range *a = sc->excluded;
    for (size_t i = 1; i < sc->excluded_count; i++) {
        hti_own_range v = a[i];
        size_t j = i;
        while (j > 0 && a[j - 1].start > v.start) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Scans the resident pages of [start, end) (a large reservation: untouched pages are zero). */
static void scan_resident(scan *sc, uintptr_t start, uintptr_t end)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *resident = sc->copy; /* one byte per page: COPY_BYTES pages at a time */
    uintptr_t at = start & ~(uintptr_t)(page - 1);
    while (at < end) {
        size_t pages = (end - at + page - 1) / page;
        if (pages > COPY_BYTES)
            pages = COPY_BYTES;
        if (mincore((void *)at, pages * page, resident) != 0) {
            at += pages * page;
            continue;
        }
        for (size_t i = 0; i < pages; i++) {
            if (!(resident[i] & 1))
                continue;
            uintptr_t from = at + i * page, to = from + page;
            from = from < start ? start : from;
            to = to > end ? end : to;
            scan_words_reachable(sc, (const uintptr_t *)from, (to - from) / sizeof(uintptr_t));
        }
        at += pages * page;
    }
}

/* Scans [start, end) of a root mapping known to be readable. */
static void scan_root_span(scan *sc, uintptr_t start, uintptr_t end, bool file_backed, bool large)
{
    start = (start + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    if (start >= end)
        return;
    if (sc->no_vm_readv && file_backed && sc->shared_span)
        return; /* a shared mapping (a file's end may be inside): nothing safe to read it with */
    if ((!file_backed && !sc->safe_reads) || sc->no_vm_readv) {
        if (large)
            scan_resident(sc, start, end);
        else
            scan_words_reachable(sc, (const uintptr_t *)start, (end - start) / sizeof(uintptr_t));
        return;
    }
    /* A file mapping may reach past its file's end (SIGBUS on touch), and a thread that did not
     * stop may unmap anything: copy with a system call that fails instead, page by page where
     * a chunk fails. */
    pid_t pid = getpid();
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (uintptr_t at = start; at < end;) {
        size_t want = end - at < COPY_BYTES ? end - at : COPY_BYTES;
        struct iovec local = {sc->copy, want}, remote = {(void *)at, want};
        ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
        if (got < 0 && (errno == ENOSYS || errno == EPERM)) {
            /* Refused by a filter: a private mapping is read directly from here on (the data of
             * the modules lies inside their files); only shared file mappings are left out. */
            sc->no_vm_readv = true;
            if (!sc->shared_span)
                scan_root_span(sc, at, end, false, large);
            return;
        }
        if (got <= 0) {
            uintptr_t next = (at & ~(uintptr_t)(page - 1)) + page;
            at = next;
            continue;
        }
        scan_words_reachable(sc, (const uintptr_t *)sc->copy, (size_t)got / sizeof(uintptr_t));
        at += (size_t)got;
    }
}

/* [start, end) less the heaps' regions and the excluded ranges. */
static void scan_root(scan *sc, uintptr_t start, uintptr_t end, bool file_backed)
{
    bool large = end - start >= LARGE_MAPPING;
    const uintptr_t granule = (uintptr_t)1 << 16; /* heap regions start on 64 KiB boundaries */
    uintptr_t at = start;
    size_t e = 0;
    while (at < end) {
        while (e < sc->excluded_count && sc->excluded[e].end <= at)
            e++;
        if (e < sc->excluded_count && sc->excluded[e].start <= at) {
            at = sc->excluded[e].end;
            continue;
        }
        uintptr_t region_start, region_end;
        if (sc->provider->region(at, &region_start, &region_end)) {
            at = region_end;
            continue;
        }
        uintptr_t stop = (at | (granule - 1)) + 1;
        if (stop > end || stop < at)
            stop = end;
        if (e < sc->excluded_count && sc->excluded[e].start < stop)
            stop = sc->excluded[e].start;
        scan_root_span(sc, at, stop, file_backed, large);
        at = stop;
    }
}

static void scan_roots(scan *sc)
{
    const char *p = sc->maps;
    mapping m;
    while (next_mapping(&p, &m)) {
        if (!m.readable || !m.writable)
            continue;
        if (m.path_length >= 5 && memcmp(m.path, "/dev/", 5) == 0)
            continue; /* device memory: reading it may act */
        if (m.path_length && m.path[0] == '[' &&
            !(m.path_length == 7 && !memcmp(m.path, "[stack]", 7)) &&
            !(m.path_length == 6 && !memcmp(m.path, "[heap]", 6)))
            continue; /* [vvar], [vsyscall], ... */
        if (m.end - m.start >= HUGE_MAPPING)
            continue; /* reserved address space, not data */
        uintptr_t start = m.start;
        /* A stack in use: from its lowest stack pointer up (below is dead frames). */
        for (size_t i = 0; i < sc->sp_count; i++)
            if (sc->sps[i] >= m.start && sc->sps[i] < m.end &&
                (start == m.start || sc->sps[i] < start))
                start = sc->sps[i];
        sc->shared_span = m.shared;
        scan_root(sc, start, m.end, m.inode != 0 || m.shared);
    }
}

/* ---- the scan ---- */

static void classify(scan *sc)
{
    scan_roots(sc);
    flood_reachable(sc);
    for (size_t i = 0; i < sc->count; i++)
        if (sc->blocks[i].tag == TAG_UNKNOWN)
            flood_lost(sc, (uint32_t)i);
}

static void emit(hti_session *s, scan *sc, uint64_t ticks, const hti_world *world, bool dropped)
{
    hti_leak_scan_summary summary = {0};
    summary.threads = world->threads;
    summary.threads_stopped = world->stopped;
    summary.flags = (world->stopped == world->threads ? HT_LEAK_SCAN_ALL_STOPPED : 0) |
                    (dropped ? HT_LEAK_SCAN_OWN_UNKNOWN : 0);
    for (size_t i = 0; i < sc->count; i++) {
        const block *b = &sc->blocks[i];
        if (!hti_heap_traced(s, b->heap))
            continue;
        summary.live_blocks++;
        summary.unreachable += b->tag == TAG_LEADER || b->tag == TAG_INDIRECT;
    }
    hti_trace_thread *stream = hti_stream_open_rundown(hti_gettid());
    if (!stream) {
        hti_message("no memory for the leak scan's records", NULL, -1);
        return;
    }
    hti_emit_leak_scan(stream, ticks, &summary);
    for (size_t i = 0; i < sc->count; i++) {
        const block *b = &sc->blocks[i];
        if ((b->tag == TAG_LEADER || b->tag == TAG_INDIRECT) && hti_heap_traced(s, b->heap))
            hti_emit_unreachable_block(stream, ticks, b->heap, b->start,
                                       b->tag == TAG_LEADER ? HT_LEAK_DEFINITE : HT_LEAK_INDIRECT);
    }
    hti_stream_close(stream);
}

static void release(scan *sc)
{
    if (sc->blocks)
        munmap(sc->blocks, sc->capacity * sizeof *sc->blocks);
    if (sc->stack)
        munmap(sc->stack, sc->count * sizeof *sc->stack);
    if (sc->excluded)
        munmap(sc->excluded, MAX_EXCLUDED * sizeof *sc->excluded);
    if (sc->sps)
        munmap(sc->sps, MAX_STOPPED * sizeof *sc->sps);
    if (sc->copy)
        munmap(sc->copy, COPY_BYTES);
    if (sc->maps)
        munmap(sc->maps, sc->maps_length);
    if (sc->pages)
        munmap(sc->pages, sc->page_capacity * sizeof *sc->pages);
}

void hti_leak_scan(hti_session *s)
{
    /* This frame and its callers are the scanning thread's stack in use. */
    uintptr_t own_sp = (uintptr_t)__builtin_frame_address(0);
    scan sc;
    memset(&sc, 0, sizeof sc);
    sc.provider = hti_rundown_provider_get();
    if (!sc.provider || !sc.provider->region || !sc.provider->lock_all)
        return;
    size_t heap_count, heaps_mapped;
    ht_heap **heaps = hti_heap_list(sc.provider, &heap_count, &heaps_mapped);
    sc.excluded = scan_map(MAX_EXCLUDED * sizeof *sc.excluded);
    sc.sps = scan_map(MAX_STOPPED * sizeof *sc.sps);
    sc.copy = scan_map(COPY_BYTES);
    if (!heaps || !sc.excluded || !sc.sps || !sc.copy) {
        if (heaps)
            hti_unmap_memory(heaps, heaps_mapped);
        release(&sc);
        hti_message("no memory for the leak scan", NULL, -1);
        return;
    }
    /* Every heap lock stays taken until the scan is over: no thread was stopped inside one, and
     * a thread that did not stop cannot free (or unmap) a block while it is read. The walks
     * take the heaps' locks again (they are recursive). */
    /* The list sized before the stop, from the heaps' own counts (it grows if they grew). */
    size_t expected = 0;
    for (size_t i = 0; i < heap_count; i++) {
        hti_rundown_heap state;
        if (sc.provider->summarize(heaps[i], &state))
            expected += (size_t)state.live_blocks;
    }
    sc.capacity = expected + expected / 4 + 1024;
    sc.blocks = scan_map(sc.capacity * sizeof *sc.blocks);
    if (!sc.blocks)
        sc.capacity = 0;
    hti_world world;
    sc.provider->lock_all();
    int stopped = hti_world_stop(&world, STOP_LIMIT_NS);
    uint64_t ticks = hti_ticks();
    sc.safe_reads = world.stopped != world.threads;
    bool ok = stopped == 0 && collect_blocks(&sc, heaps, heap_count) && read_maps(&sc);
    bool dropped = false;
    if (ok) {
        sc.sp_count = hti_world_stack_pointers(sc.sps, MAX_STOPPED - 1);
        sc.sps[sc.sp_count++] = own_sp;
        size_t own = hti_own_memory_ranges(sc.excluded, MAX_EXCLUDED / 2, &dropped);
        sc.excluded_count = own < MAX_EXCLUDED / 2 ? own : MAX_EXCLUDED / 2;
        dropped |= own > MAX_EXCLUDED / 2;
        exclude(&sc, (uintptr_t)sc.blocks, (uintptr_t)sc.blocks + sc.capacity * sizeof *sc.blocks);
        exclude(&sc, (uintptr_t)sc.stack, (uintptr_t)sc.stack + sc.count * sizeof *sc.stack);
        exclude(&sc, (uintptr_t)sc.pages,
                (uintptr_t)sc.pages + sc.page_capacity * sizeof *sc.pages);
        exclude(&sc, (uintptr_t)sc.sps, (uintptr_t)sc.sps + MAX_STOPPED * sizeof *sc.sps);
        exclude(&sc, (uintptr_t)sc.copy, (uintptr_t)sc.copy + COPY_BYTES);
        exclude(&sc, (uintptr_t)sc.maps, (uintptr_t)sc.maps + sc.maps_length);
        exclude(&sc, (uintptr_t)heaps, (uintptr_t)heaps + heaps_mapped);
        exclude_own_module(&sc);
        exclude_own_stacks(&sc);
        exclude(&sc, (uintptr_t)sc.excluded,
                (uintptr_t)sc.excluded + MAX_EXCLUDED * sizeof *sc.excluded);
        sort_excluded(&sc);
        classify(&sc);
    }
    sc.provider->unlock_all();
    hti_world_resume();
    if (ok)
        emit(s, &sc, ticks, &world, dropped);
    else
        hti_message("the leak scan could not run", stopped ? strerror(-stopped) : NULL, -1);
    hti_unmap_memory(heaps, heaps_mapped);
    release(&sc);
}
