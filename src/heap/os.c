/* os.c — the OS layer: address space reserved, committed, decommitted and released.
 *
 * Reservations are PROT_NONE mappings; commit makes pages read/write (and executable for
 * CREATE_ENABLE_EXECUTE heaps); decommit gives the pages back (MADV_DONTNEED) and makes them
 * inaccessible again, so a stray access to decommitted memory faults instead of reading stale
 * data. Aligned reservations over-map and trim. Nothing here allocates. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap_internal.h"

size_t hti_page_size(void) {
    static size_t page;
    if (HTI_UNLIKELY(page == 0)) page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* Where the next aligned mapping is asked for: just below the last one, so that the kernel,
 * which fills address space downwards, usually grants an aligned range in one call. */
static _Atomic uintptr_t next_hint;

static void *map_aligned(size_t size, size_t align, int prot) {
    if (size == 0 || size > ((size_t)1 << 46)) return NULL;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    uintptr_t hint = atomic_load_explicit(&next_hint, memory_order_relaxed);
    if (hint > size + align) {
        char *try = mmap((void *)hti_align_down(hint - size, align), size, prot, flags, -1, 0);
        if (try != MAP_FAILED && ((uintptr_t)try & (align - 1)) == 0) {
            atomic_store_explicit(&next_hint, (uintptr_t)try, memory_order_relaxed);
            return try;
        }
        if (try != MAP_FAILED) munmap(try, size);
    }
    size_t span = size + align;
    char *raw = mmap(NULL, span, prot, flags, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    char *start = (char *)hti_align_up((uintptr_t)raw, align);
    size_t head = (size_t)(start - raw);
    size_t tail = span - head - size;
    if (head) munmap(raw, head);
    if (tail) munmap(start + size, tail);
    atomic_store_explicit(&next_hint, (uintptr_t)start, memory_order_relaxed);
    return start;
}

void *hti_os_reserve(size_t size, size_t align) { return map_aligned(size, align, PROT_NONE); }

void *hti_os_map(size_t size, size_t align) {
    return map_aligned(size, align, PROT_READ | PROT_WRITE);
}

int hti_os_commit(void *address, size_t size, bool executable) {
    int prot = PROT_READ | PROT_WRITE | (executable ? PROT_EXEC : 0);
    return mprotect(address, size, prot) == 0 ? 0 : -errno;
}

int hti_os_decommit(void *address, size_t size) {
    if (madvise(address, size, MADV_DONTNEED) != 0) return -errno;
    return mprotect(address, size, PROT_NONE) == 0 ? 0 : -errno;
}

void hti_os_release(void *address, size_t size) { munmap(address, size); }

int hti_os_resize_in_place(void *address, size_t old_size, size_t new_size) {
    if (new_size == old_size) return 0;
    if (new_size < old_size) return munmap((char *)address + new_size, old_size - new_size) == 0 ? 0 : -errno;
    void *r = mremap(address, old_size, new_size, 0);
    return r == MAP_FAILED ? -errno : 0;
}

void *hti_os_move(void *address, size_t old_size, size_t new_size, void *target) {
    void *r = mremap(address, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    return r == MAP_FAILED ? NULL : r;
}
