/* os_faults.h — fault injection in the OS layer, for tests: the Nth mmap, mprotect, munmap,
 * madvise or mremap made by the heap fails with ENOMEM, as under memory pressure or a full
 * map count, so tests can check that every path handles it.
 *
 * Off, it costs one predictable branch on a relaxed load, on the system-call path only (never
 * on the allocation fast path). Process-wide: tests arm it while no other thread uses a heap. */
#ifndef HEAPTRAIL_HEAP_OS_FAULTS_H
#define HEAPTRAIL_HEAP_OS_FAULTS_H

#include <stdint.h>

#define HTI_OS_FAULT_MMAP 0x01u     /* reservations and mappings */
#define HTI_OS_FAULT_MPROTECT 0x02u /* commit, and the second step of decommit */
#define HTI_OS_FAULT_MUNMAP 0x04u   /* releases, trims of aligned mappings, shrinking in place */
#define HTI_OS_FAULT_MADVISE 0x08u  /* the first step of decommit */
#define HTI_OS_FAULT_MREMAP 0x10u   /* large blocks grown in place or moved */
#define HTI_OS_FAULT_ALL 0x1Fu

/* Arms injection: of the calls of the kinds in mask, the first `skip` succeed, the next `count`
 * fail with ENOMEM (count UINT64_MAX: all of them), later ones succeed. Replaces any earlier
 * setting and resets the counters. mask 0 disarms. */
__attribute__((visibility("hidden"))) void hti_os_faults_arm(unsigned mask, uint64_t skip,
                                                             uint64_t count);
/* Calls of the armed kinds seen since arming, and how many of them were made to fail. */
__attribute__((visibility("hidden"))) uint64_t hti_os_faults_seen(void);
__attribute__((visibility("hidden"))) uint64_t hti_os_faults_injected(void);

#endif
