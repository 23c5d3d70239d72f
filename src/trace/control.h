/* control.h — the control protocol's request handler on its own, without a socket: the listener
 * in control.c calls it for each connection, tests and the fuzz target call it directly with a
 * stand-in for ht_trace_start so that no session really starts. The protocol is README.md's
 * "Control protocol". */
#ifndef HEAPTRAIL_TRACE_CONTROL_H
#define HEAPTRAIL_TRACE_CONTROL_H

#include <stddef.h>

#include "heaptrail/trace.h"

/* Answers request (the text read from a client, NUL-terminated; changed in place): "ok" or
 * "error ERRNO-NAME message", key=value lines, then the closing empty line, written into out (at
 * most size - 1 bytes and a NUL). start is called for a well-formed start request whose options
 * pass hti_options_check; for a stream=1 start, options->output_fd is *descriptor, which start
 * owns once it returned 0. descriptor: NULL, or the descriptor that came with the request (-1:
 * none), set to -1 when a session took it; any other is still the caller's to close. Returns
 * the reply's length. The peer check is the caller's. */
size_t hti_control_handle(char *request, int *descriptor,
                          int (*start)(const ht_trace_options *options), char *out, size_t size);

#endif
