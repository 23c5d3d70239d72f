/* emit_off.c — the trace hooks while the tracing engine is not linked in: never active.
 * Replaced by the real engine (src/trace/session.c) when it exists. */
#include "emit.h"

int hti_trace_active = 0;

void hti_trace_alloc(const ht_heap *h, size_t s, const void *a, ht_source src) { (void)h; (void)s; (void)a; (void)src; }
void hti_trace_free(const ht_heap *h, const void *a, ht_source src) { (void)h; (void)a; (void)src; }
void hti_trace_realloc(const ht_heap *h, const void *na, const void *oa, size_t ns, size_t os,
                       ht_source src) { (void)h; (void)na; (void)oa; (void)ns; (void)os; (void)src; }
void hti_trace_heap_create(const ht_heap *h, uint32_t f, size_t i, size_t m) { (void)h; (void)f; (void)i; (void)m; }
void hti_trace_heap_destroy(const ht_heap *h) { (void)h; }
void hti_trace_heap_expand(const ht_heap *h, size_t b, size_t c) { (void)h; (void)b; (void)c; }
void hti_trace_heap_contract(const ht_heap *h, size_t b, size_t c) { (void)h; (void)b; (void)c; }
