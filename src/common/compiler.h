/* compiler.h — the compiler hints the heap and the tracer share (branch weights, inlining).
 *
 * One definition for every internal file under src/: a hint spelled once cannot drift between
 * the heap's fast paths and the tracer's. Nothing here emits code by itself. */
#ifndef HEAPTRAIL_COMMON_COMPILER_H
#define HEAPTRAIL_COMMON_COMPILER_H

#define HTI_LIKELY(x) __builtin_expect(!!(x), 1)
#define HTI_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HTI_NOINLINE __attribute__((noinline))
/* A fast path's helper that must not become a call of its own (one frame per malloc). */
#define HTI_ALWAYS_INLINE static inline __attribute__((always_inline))

#endif
