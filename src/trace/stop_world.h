/* stop_world.h — every other thread of the process stopped for a reachability scan
 * (stop_world.c). */
#ifndef HEAPTRAIL_TRACE_STOP_WORLD_H
#define HEAPTRAIL_TRACE_STOP_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hti_world {
    uint32_t threads; /* other threads of the process (or a lower bound past the table) */
    uint32_t stopped; /* of which are stopped in the handler */
} hti_world;

/* Stops every thread but the caller's, waiting at most limit_ns for them to answer. 0, or a
 * negative errno when nothing could be stopped (no memory, no signal handler). Always follow
 * with hti_world_resume. */
int hti_world_stop(hti_world *world, uint64_t limit_ns);
/* The stopped threads' stack pointers as their handler saw them: their stacks are in use from
 * there up, the saved registers included. Returns how many were stored. */
size_t hti_world_stack_pointers(uintptr_t *out, size_t capacity);
/* Lets the stopped threads go. */
void hti_world_resume(void);
/* heaptrail's own threads (writer, consumer, control listener) say when they start (true) and
 * end (false), on themselves: they block every signal, are never stopped, and their stacks are
 * no roots. hti_world_own_stacks stores an address inside each one's stack. */
void hti_world_own_thread(bool starting);
/* In a fork child: none of them exists. */
void hti_world_after_fork(void);
/* Said by whoever creates such a thread: +1 before pthread_create, -1 if it failed. */
void hti_world_own_thread_coming(int delta);
size_t hti_world_own_stacks(uintptr_t *out, size_t capacity);

#endif
