/* os.c — the OS layer: address space reserved, committed, decommitted and released.
 *
 * Reservations are PROT_NONE mappings; commit makes pages read/write (and executable for
 * CREATE_ENABLE_EXECUTE heaps); decommit gives the pages back (MADV_DONTNEED) and makes them
 * inaccessible again, so a stray access to decommitted memory faults instead of reading stale
 * data. Aligned reservations over-map and trim. Nothing here allocates. Every system call goes
 * through one test hook (os_faults.h) that can make it fail. */
#include <errno.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "heap_internal.h"
#include "os_faults.h"

/* ---- fault injection (tests) ---------------------------------------------------------- */
static atomic_uint fault_mask; /* 0: off */
static _Atomic uint64_t fault_skip, fault_count, fault_seen, fault_injected;

void hti_os_faults_arm(unsigned mask, uint64_t skip, uint64_t count)
{
    atomic_store(&fault_mask, 0);
    atomic_store(&fault_skip, skip);
    atomic_store(&fault_count, count);
    atomic_store(&fault_seen, 0);
    atomic_store(&fault_injected, 0);
    atomic_store(&fault_mask, mask & HTI_OS_FAULT_ALL);
}

uint64_t hti_os_faults_seen(void)
{
    return atomic_load(&fault_seen);
}
uint64_t hti_os_faults_injected(void)
{
    return atomic_load(&fault_injected);
}

HTI_NOINLINE static bool fault_armed_slow(unsigned kind)
{
    if (!(atomic_load_explicit(&fault_mask, memory_order_relaxed) & kind))
        return false;
    uint64_t n = atomic_fetch_add(&fault_seen, 1), skip = atomic_load(&fault_skip);
    if (n < skip || n - skip >= atomic_load(&fault_count))
        return false;
    atomic_fetch_add(&fault_injected, 1);
    errno = ENOMEM;
    return true;
}

/* True when the call of this kind is to fail (errno is then ENOMEM). */
static inline bool fault(unsigned kind)
{
    if (HTI_LIKELY(atomic_load_explicit(&fault_mask, memory_order_relaxed) == 0))
        return false;
    return fault_armed_slow(kind);
}

static void *os_mmap(void *hint, size_t size, int prot, int flags)
{
    return fault(HTI_OS_FAULT_MMAP) ? MAP_FAILED : mmap(hint, size, prot, flags, -1, 0);
}

static int os_munmap(void *address, size_t size)
{
    return fault(HTI_OS_FAULT_MUNMAP) ? -1 : munmap(address, size);
}

static int os_mprotect(void *address, size_t size, int prot)
{
    return fault(HTI_OS_FAULT_MPROTECT) ? -1 : mprotect(address, size, prot);
}

static void *os_mremap(void *address, size_t old_size, size_t new_size, int flags, void *target)
{
    if (fault(HTI_OS_FAULT_MREMAP))
        return MAP_FAILED;
    return mremap(address, old_size, new_size, flags, target);
}

/* ---- the OS layer --------------------------------------------------------------------- */

size_t hti_page_size(void)
{
    static size_t page;
    if (HTI_UNLIKELY(page == 0))
        page = (size_t)sysconf(_SC_PAGESIZE);
    return page;
}

/* Where the next aligned mapping is asked for: just below the last one, so that the kernel,
 * which fills address space downwards, usually grants an aligned range in one call. */
static _Atomic uintptr_t next_hint;

static void *map_aligned(size_t size, size_t align, int prot)
{
    if (size == 0 || size > HTI_SIZE_LIMIT)
        return NULL;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE;
    uintptr_t hint = atomic_load_explicit(&next_hint, memory_order_relaxed);
    if (hint > size + align) {
        char *try = os_mmap((void *)hti_align_down(hint - size, align), size, prot, flags);
        if (try != MAP_FAILED && ((uintptr_t)try & (align - 1)) == 0) {
            atomic_store_explicit(&next_hint, (uintptr_t)try, memory_order_relaxed);
            return try;
        }
        if (try != MAP_FAILED)
            os_munmap(try, size); /* if that fails: address space lost */
    }
    size_t span = size + align;
    char *raw = os_mmap(NULL, span, prot, flags);
    if (raw == MAP_FAILED)
        return NULL;
    char *start = (char *)hti_align_up((uintptr_t)raw, align);
    size_t head = (size_t)(start - raw);
    size_t tail = span - head - size;
    if (head)
        os_munmap(raw, head); /* a failed trim only leaves address space mapped */
    if (tail)
        os_munmap(start + size, tail);
    atomic_store_explicit(&next_hint, (uintptr_t)start, memory_order_relaxed);
    return start;
}

void *hti_os_reserve(size_t size, size_t align)
{
    return map_aligned(size, align, PROT_NONE);
}

void *hti_os_map(size_t size, size_t align)
{
    return map_aligned(size, align, PROT_READ | PROT_WRITE);
}

int hti_os_commit(void *address, size_t size, bool executable)
{
    int prot = PROT_READ | PROT_WRITE | (executable ? PROT_EXEC : 0);
    return os_mprotect(address, size, prot) == 0 ? 0 : -errno;
}

int hti_os_decommit(void *address, size_t size)
{
    if (fault(HTI_OS_FAULT_MADVISE) || madvise(address, size, MADV_DONTNEED) != 0)
        return -errno;
    return os_mprotect(address, size, PROT_NONE) == 0 ? 0 : -errno;
}

void hti_os_release(void *address, size_t size)
{
    os_munmap(address, size);
}

int hti_os_resize_in_place(void *address, size_t old_size, size_t new_size)
{
    if (new_size == old_size)
        return 0;
    if (new_size < old_size)
        return os_munmap((char *)address + new_size, old_size - new_size) == 0 ? 0 : -errno;
    void *r = os_mremap(address, old_size, new_size, 0, NULL);
    return r == MAP_FAILED ? -errno : 0;
}

void *hti_os_move(void *address, size_t old_size, size_t new_size, void *target)
{
    void *r = os_mremap(address, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    return r == MAP_FAILED ? NULL : r;
}
