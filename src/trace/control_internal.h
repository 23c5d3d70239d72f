/* control_internal.h — what control.c (the socket and its listener) and control_signal.c (the
 * signal that asks for them) share, and what the preload library calls: the deferred start
 * after a malloc call and the program's sigaction for the control signal. */
#ifndef HEAPTRAIL_TRACE_CONTROL_INTERNAL_H
#define HEAPTRAIL_TRACE_CONTROL_INTERNAL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* A request arrived that no listener has taken yet: the next malloc-family call whose caller
 * is the program (not the C library or the loader) starts the listener. */
extern _Atomic int hti_control_pending;
/* Monotonic ns of the latest request: the listener lingers a while after it. */
extern _Atomic uint64_t hti_control_touched;

/* Called by the malloc family when hti_control_pending is set, with its caller's address. */
void hti_control_serve_pending(const void *caller);

/* Opens the socket and starts the listener unless one runs: 0 or a negative errno. Safe from
 * the control signal's handler when the interrupted thread is parked (control_signal.c). */
int hti_control_listener_start(void);
bool hti_control_listener_running(void);
/* The exit handler: removes an open socket, stops a session started through it. */
void hti_control_at_exit(void);

/* The control signal's handler: installs it (0 or -errno), or puts the program's action back. */
int hti_control_signal_arm(int signal_number);
void hti_control_signal_disarm(void);
/* The program's sigaction for any signal: for the control signal, records its action (chained
 * by the handler) and reports the one it set before; others go to the C library. */
int hti_control_program_sigaction(int signal_number, const struct sigaction *action,
                                  struct sigaction *old);
extern int (*hti_real_sigaction)(int, const struct sigaction *, struct sigaction *);

#endif
