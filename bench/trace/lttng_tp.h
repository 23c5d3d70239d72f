/* lttng_tp.h — an LTTng-UST tracepoint provider with a malloc-like event pair, so the tracing
 * benchmark can put LTTng-UST's cost per event beside heaptrail's. */
#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER heaptrail_bench

#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "./lttng_tp.h"

#if !defined(HEAPTRAIL_BENCH_LTTNG_TP_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define HEAPTRAIL_BENCH_LTTNG_TP_H

#include <lttng/tracepoint.h>

LTTNG_UST_TRACEPOINT_EVENT(
    heaptrail_bench, alloc,
    LTTNG_UST_TP_ARGS(void *, heap, size_t, size, void *, address, int, source),
    LTTNG_UST_TP_FIELDS(lttng_ust_field_integer_hex(uintptr_t, heap, (uintptr_t)heap)
                            lttng_ust_field_integer(size_t, size, size)
                                lttng_ust_field_integer_hex(uintptr_t, address, (uintptr_t)address)
                                    lttng_ust_field_integer(int, source, source)))

LTTNG_UST_TRACEPOINT_EVENT(
    heaptrail_bench, free, LTTNG_UST_TP_ARGS(void *, heap, void *, address, int, source),
    LTTNG_UST_TP_FIELDS(lttng_ust_field_integer_hex(uintptr_t, heap, (uintptr_t)heap)
                            lttng_ust_field_integer_hex(uintptr_t, address, (uintptr_t)address)
                                lttng_ust_field_integer(int, source, source)))

#endif

#include <lttng/tracepoint-event.h>
