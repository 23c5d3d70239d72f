/* own_memory.h — the mappings heaptrail makes for itself outside any heap region: the heap's
 * descriptors, thread records and page-map leaves, the tracer's buffers, stack table and
 * compressor. A reachability scan (trace/leak_scan.c) must not take them for the program's
 * roots: they hold addresses of blocks (encoded events, cached free slots) that are no pointer
 * of the program's. Heap regions need no entry here: the page map knows them. */
#ifndef HEAPTRAIL_COMMON_OWN_MEMORY_H
#define HEAPTRAIL_COMMON_OWN_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hti_own_range {
    uintptr_t start, end;
} hti_own_range;

/* Notes [base, base + size) as heaptrail's own; forget drops the entry whose base it is. Neither
 * allocates nor fails: past the table's capacity a range is counted as dropped (the scan then
 * says it may have taken some of heaptrail's memory for roots). */
__attribute__((visibility("hidden"))) void hti_own_memory_note(const void *base, size_t size);
__attribute__((visibility("hidden"))) void hti_own_memory_forget(const void *base);
/* Copies up to capacity ranges into out, in no order; returns how many there are. *dropped
 * (when not NULL) is set to true if some range could not be noted. */
__attribute__((visibility("hidden"))) size_t hti_own_memory_ranges(hti_own_range *out,
                                                                   size_t capacity, bool *dropped);

#endif
