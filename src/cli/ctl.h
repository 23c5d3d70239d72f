/* ctl.h — what other commands use of the control client (ctl.c): a session in a running process
 * that streams its trace to the caller over a socket handed over with the start request
 * (README.md, "Control protocol", stream=1), with the same target checks and one-line errors as
 * `heaptrail start` (no such process, library not loaded, another user's, control disabled,
 * socket unreachable, a session already running...), printed under the calling command's name.
 * The stream ends with the trace's footer after ht_cli_stream_stop; closing the reading end
 * instead ends the session in the process by itself (its status then says ended=consumer_gone). */
#ifndef HEAPTRAIL_CLI_CTL_H
#define HEAPTRAIL_CLI_CTL_H

#include <stddef.h>

/* The checks start makes of a target before it signals it (no such process, library not loaded,
 * another user's, control disabled...): 0, or the exit code after printing start's error. */
int ht_cli_target_check(const char *pid_text, const char *socket_path);

/* Starts a session in process pid_text streaming to a new socketpair; keys are extra request
 * lines "key=value" (the tracing options as ht_cli_tracing_option gives them; may be NULL/0).
 * On success returns 0, *fd the reading end (CLOEXEC, blocking), *pid and the command name
 * (comm, for display). Otherwise prints the error as start does and returns its exit code. */
int ht_cli_stream_start(const char *pid_text, const char *socket_path, const char *const *keys,
                        size_t key_count, int *fd, long *pid, char *command, size_t command_size);

/* Stops the session in pid (quietly when there is none any more: the process ended or the
 * session ended itself). Returns 0 or an exit code after printing the error. */
int ht_cli_stream_stop(long pid, const char *socket_path);

#endif
