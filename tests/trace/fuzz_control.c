/* fuzz_control.c — fuzz target for the control protocol's request handling (src/trace/control.c,
 * through hti_control_handle, as the listener calls it for each connection): any request text
 * must get exactly one well-formed reply — "ok" or "error ENAME message", key=value lines, one
 * closing empty line — and a start request is handed on only with options the tracer accepts.
 * No session ever starts: the handler is given a stand-in for ht_trace_start that checks the
 * options and answers ok, EBUSY or EACCES in turn; stop and snapshot find no session.
 *
 * Built with -fsanitize=fuzzer it is a libFuzzer target; otherwise fuzz_driver.c gives it a
 * main() replaying tests/trace/corpus-control and mutating it for a fixed time. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_driver.h"
#include "heaptrail/trace.h"
#include "trace/control.h"
#include "trace/options.h"

#define REQUEST_MAX 8192 /* the listener reads at most this much, NUL included */

const char *const fuzz_tokens[] = {"start\n",
                                   "status\n",
                                   "stop\n",
                                   "snapshot\n",
                                   "\n\n",
                                   "\n",
                                   "=",
                                   "output=/tmp/x.trace\n",
                                   "output=",
                                   "mode=",
                                   "ring",
                                   "discard",
                                   "block",
                                   "stacks=",
                                   "unwind=",
                                   "fp",
                                   "libunwind",
                                   "sample=",
                                   "buffer=",
                                   "compress=",
                                   "events=",
                                   "alloc,free",
                                   "heap",
                                   "realloc",
                                   "all",
                                   "min_size=",
                                   "max_size=",
                                   "flush_ms=",
                                   "follow_forks=",
                                   "no_rundown=",
                                   "%p",
                                   "0",
                                   "1",
                                   "19",
                                   "20",
                                   "128",
                                   "129",
                                   "-1",
                                   "64K",
                                   "4G",
                                   "1GiB",
                                   "4294967297",
                                   "18446744073709551616",
                                   "k",
                                   "KiB",
                                   "MiB",
                                   "G",
                                   " ",
                                   ",",
                                   "\r",
                                   NULL};

static int start_result;
static int starts;

static void fail(const char *what, const char *reply)
{
    fprintf(stderr, "fuzz_control: %s\nreply: %.300s\n", what, reply ? reply : "");
    abort();
}

static int stand_in_start(const ht_trace_options *options)
{
    const char *why = NULL;
    if (hti_options_check(options, &why) != 0)
        fail("start handed options the tracer refuses", why);
    if (!options->output_path || options->output_path[0] != '/' ||
        strlen(options->output_path) > HTI_OPTION_PATH_MAX)
        fail("start handed a bad output path", options->output_path);
    starts++;
    return start_result;
}

static bool is_key(const char *text, size_t length)
{
    if (length == 0)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!((text[i] >= 'a' && text[i] <= 'z') || text[i] == '_'))
            return false;
    return true;
}

/* The protocol's shape: a first line, key=value lines, then one empty line that ends it. */
static void check_reply(const char *reply, size_t length)
{
    if (length != strlen(reply))
        fail("reply length", reply);
    if (length < 3 || reply[length - 1] != '\n' || reply[length - 2] != '\n')
        fail("reply does not end with an empty line", reply);
    if (strstr(reply, "\n\n") != reply + length - 2)
        fail("an empty line inside the reply", reply);
    const char *line = reply;
    const char *end = strchr(line, '\n');
    if (strncmp(line, "ok\n", 3) != 0) {
        if (strncmp(line, "error E", 7) != 0)
            fail("first line is neither ok nor error", reply);
        const char *name_end = line + 7;
        while (*name_end >= 'A' && *name_end <= 'Z')
            name_end++;
        if (*name_end != ' ' || name_end > end)
            fail("error line without an errno name and message", reply);
    }
    for (line = end + 1; *line != '\n'; line = end + 1) {
        end = strchr(line, '\n');
        const char *equals = memchr(line, '=', (size_t)(end - line));
        if (!equals || !is_key(line, (size_t)(equals - line)))
            fail("a reply line that is not key=value", reply);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char request[REQUEST_MAX], reply[8192];
    if (size > REQUEST_MAX - 1)
        size = REQUEST_MAX - 1;
    memcpy(request, data, size);
    request[size] = '\0';
    static const int results[] = {0, -EBUSY, -EACCES};
    start_result = results[size % 3];
    bool is_start = strncmp(request, "start\n", 6) == 0 || strcmp(request, "start") == 0;
    starts = 0;
    size_t length = hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
    check_reply(reply, length);
    if (starts > 1 || (starts && !is_start))
        fail("start called for a request that is not one start", reply);
    bool ok = strncmp(reply, "ok\n", 3) == 0;
    if (is_start && ok != (starts == 1 && start_result == 0))
        fail("a start reply that does not match what start did", reply);
    if (ht_trace_is_active())
        fail("a session is running", reply);
    return 0;
}
