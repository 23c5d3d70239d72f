/* emit.h — the one small header through which the heap reports events to the tracer.
 *
 * The heap includes only this file from src/trace/. While no session runs, each hook costs
 * one relaxed load and one predictable branch on hti_trace_gen (HT_TRACE_ON). The hooks never allocate from a
 * heaptrail heap, never fail visibly, and are safe to call with the heap lock held.
 * A FREE is emitted before the block is released, so its address cannot be reused first. */
#ifndef HEAPTRAIL_TRACE_EMIT_H
#define HEAPTRAIL_TRACE_EMIT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "heaptrail/heap.h"

/* The one state of "tracing on": the running session's generation, 0 while none records heap
 * events. Written only by session start/stop (and a fork child, a crash flush); read on every
 * heap operation, relaxed, by HT_TRACE_ON and again by the hooks (buffer.c). */
extern _Atomic uint64_t hti_trace_gen;
#define HT_TRACE_ON()                                                                              \
    __builtin_expect(atomic_load_explicit(&hti_trace_gen, memory_order_relaxed) != 0, 0)

void hti_trace_alloc(const ht_heap *heap, size_t size, const void *address, ht_source source);
void hti_trace_free(const ht_heap *heap, const void *address, ht_source source);
void hti_trace_realloc(const ht_heap *heap, const void *new_address, const void *old_address,
                       size_t new_size, size_t old_size, ht_source source);
void hti_trace_heap_create(const ht_heap *heap, uint32_t flags, size_t initial_size,
                           size_t maximum_size);
void hti_trace_heap_destroy(const ht_heap *heap);
/* Committed memory grew (EXPAND) or was given back to the OS (CONTRACT) by bytes. */
void hti_trace_heap_expand(const ht_heap *heap, size_t bytes, size_t committed_after);
void hti_trace_heap_contract(const ht_heap *heap, size_t bytes, size_t committed_after);

#endif
