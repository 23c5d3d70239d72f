/* test_options.c — unit tests of the option values (src/trace/options.c): the size and count
 * grammar at its edges, each option's range, the struct check ht_trace_start applies, the
 * quoting of bad values, the environment reader's one line, and the control protocol's
 * handler (src/trace/control.c, with a stand-in start) giving the environment's verdict on
 * every value of a table, and handing a stream=1 start the descriptor that came with it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "heaptrail/trace.h"
#include "trace/control.h"
#include "trace/options.h"

/* ---- the grammar ---- */

typedef struct size_case {
    const char *text;
    int error;
    uint64_t value;
} size_case;

static void test_sizes(void **state)
{
    (void)state;
    static const size_case cases[] = {
        {"0", 0, 0},
        {"4096", 0, 4096},
        {"007", 0, 7}, /* decimal, not octal */
        {"64k", 0, 64 << 10},
        {"64K", 0, 64 << 10},
        {"64KiB", 0, 64 << 10},
        {"1m", 0, 1 << 20},
        {"1M", 0, 1 << 20},
        {"1MiB", 0, 1 << 20},
        {"2g", 0, 2ull << 30},
        {"2G", 0, 2ull << 30},
        {"2GiB", 0, 2ull << 30},
        {"18446744073709551615", 0, UINT64_MAX},
        {"17179869183G", 0, 17179869183ull << 30},
        {"18446744073709551616", -ERANGE, 0},
        {"99999999999999999999", -ERANGE, 0},
        {"17179869184G", -ERANGE, 0},
        {"18014398509481984K", -ERANGE, 0},
        {"", -EINVAL, 0},
        {"-1", -EINVAL, 0},
        {"-5", -EINVAL, 0},
        {"-0", -EINVAL, 0},
        {"+5", -EINVAL, 0},
        {" 5", -EINVAL, 0},
        {"5 ", -EINVAL, 0},
        {"abc", -EINVAL, 0},
        {"1x", -EINVAL, 0},
        {"0x10", -EINVAL, 0},
        {"1e3", -EINVAL, 0},
        {"1.5M", -EINVAL, 0},
        {"64kb", -EINVAL, 0},
        {"64KB", -EINVAL, 0},
        {"64kib", -EINVAL, 0},
        {"64Ki", -EINVAL, 0},
        {"64KiBx", -EINVAL, 0},
        {"K", -EINVAL, 0},
        {"1t", -EINVAL, 0},
        {"99999999999999999999x", -EINVAL, 0}, /* the form is judged before the size */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t value = 12345;
        int error = hti_parse_size(cases[i].text, &value);
        if (error != cases[i].error)
            fail_msg("hti_parse_size(\"%s\") = %d, expected %d", cases[i].text, error,
                     cases[i].error);
        if (!error && value != cases[i].value)
            fail_msg("hti_parse_size(\"%s\") = %llu", cases[i].text, (unsigned long long)value);
    }
}

static void test_counts(void **state)
{
    (void)state;
    uint64_t value = 0;
    assert_int_equal(hti_parse_count("0", &value), 0);
    assert_int_equal(value, 0);
    assert_int_equal(hti_parse_count("18446744073709551615", &value), 0);
    assert_true(value == UINT64_MAX);
    assert_int_equal(hti_parse_count("18446744073709551616", &value), -ERANGE);
    static const char *const bad[] = {"", "-1", "+1", " 1", "1 ", "1k", "0x1", "abc", "1x", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(hti_parse_count(bad[i], &value), -EINVAL);
}

static void test_events(void **state)
{
    (void)state;
    uint64_t mask = 0;
    assert_int_equal(hti_parse_events("alloc", &mask), 0);
    assert_true(mask == HT_EVENT_BIT(HT_EVENT_ALLOC));
    assert_int_equal(hti_parse_events("alloc,free,realloc", &mask), 0);
    assert_true(mask == HT_EVENT_MASK_BLOCKS);
    assert_int_equal(hti_parse_events("heap", &mask), 0);
    assert_true(mask == HT_EVENT_MASK_HEAPS);
    assert_int_equal(hti_parse_events("all", &mask), 0);
    assert_true(mask == HT_EVENT_MASK_ALL);
    static const char *const bad[] = {"",      ",",      "alloc,", ",alloc", "alloc,,free",
                                      "ALLOC", "alloc ", "frees",  "-1",     NULL};
    for (int i = 0; bad[i]; i++)
        if (hti_parse_events(bad[i], &mask) != -EINVAL)
            fail_msg("hti_parse_events(\"%s\") accepted", bad[i]);
}

/* ---- the options ---- */

typedef struct option_case {
    hti_option option;
    const char *text;
    int error; /* 0, -EINVAL (form) or -ERANGE (range) */
} option_case;

static void test_ranges(void **state)
{
    (void)state;
    static const option_case cases[] = {
        {HTI_OPTION_BUFFER, "64K", 0},
        {HTI_OPTION_BUFFER, "65535", -ERANGE},
        {HTI_OPTION_BUFFER, "0", -ERANGE},
        {HTI_OPTION_BUFFER, "4G", 0},
        {HTI_OPTION_BUFFER, "4294967297", -ERANGE},
        {HTI_OPTION_BUFFER, "-5", -EINVAL},
        {HTI_OPTION_STACKS, "0", 0},
        {HTI_OPTION_STACKS, "128", 0},
        {HTI_OPTION_STACKS, "129", -ERANGE},
        {HTI_OPTION_STACKS, "-1", -EINVAL},
        {HTI_OPTION_STACKS, "1k", -EINVAL}, /* a count takes no suffix */
        {HTI_OPTION_SAMPLE, "0", 0},
        {HTI_OPTION_SAMPLE, "1G", 0},
        {HTI_OPTION_SAMPLE, "1073741825", -ERANGE},
        {HTI_OPTION_SAMPLE, "-1", -EINVAL},
        {HTI_OPTION_MIN_SIZE, "18446744073709551615", 0},
        {HTI_OPTION_MAX_SIZE, "99999999999999999999", -ERANGE},
        {HTI_OPTION_COMPRESS, "0", 0},
        {HTI_OPTION_COMPRESS, "19", 0},
        {HTI_OPTION_COMPRESS, "20", -ERANGE},
        {HTI_OPTION_COMPRESS, "22", -ERANGE},
        {HTI_OPTION_FLUSH_MS, "1", 0},
        {HTI_OPTION_FLUSH_MS, "60000", 0},
        {HTI_OPTION_FLUSH_MS, "0", -ERANGE},
        {HTI_OPTION_FLUSH_MS, "60001", -ERANGE},
        {HTI_OPTION_FLUSH_MS, "-1", -EINVAL},
        {HTI_OPTION_MODE, "block", 0},
        {HTI_OPTION_MODE, "discard", 0},
        {HTI_OPTION_MODE, "ring", 0},
        {HTI_OPTION_MODE, "Ring", -EINVAL},
        {HTI_OPTION_MODE, "", -EINVAL},
        {HTI_OPTION_UNWIND, "fp", 0},
        {HTI_OPTION_UNWIND, "libunwind", 0},
        {HTI_OPTION_UNWIND, "dwarf", -EINVAL},
        {HTI_OPTION_FOLLOW_FORKS, "1", 0},
        {HTI_OPTION_FOLLOW_FORKS, "0", 0},
        {HTI_OPTION_FOLLOW_FORKS, "yes", -EINVAL},
        {HTI_OPTION_FOLLOW_FORKS, "2", -EINVAL},
        {HTI_OPTION_FOLLOW_FORKS, "", -EINVAL},
        {HTI_OPTION_FD, "3", 0},
        {HTI_OPTION_FD, "2147483647", 0},
        {HTI_OPTION_FD, "2147483648", -ERANGE},
        {HTI_OPTION_FD, "-1", -EINVAL},
        {HTI_OPTION_OWNER_PID, "1", 0},
        {HTI_OPTION_OWNER_PID, "4194304", 0},
        {HTI_OPTION_OWNER_PID, "4194305", -ERANGE},
        {HTI_OPTION_OWNER_PID, "0", -ERANGE},
        {HTI_OPTION_OWNER_PID, "abc", -EINVAL},
        {HTI_OPTION_OWNER_PID, "", -EINVAL},
        {HTI_OPTION_CONTROL, "0", 0},
        {HTI_OPTION_CONTROL, "no", -EINVAL},
        {HTI_OPTION_CONTROL_DIR, "/run/user/1000/heaptrail", 0},
        {HTI_OPTION_CONTROL_DIR, "relative", -EINVAL},
        {HTI_OPTION_CONTROL_DIR, "", -EINVAL},
        {HTI_OPTION_OUTPUT, "", -EINVAL},
        {HTI_OPTION_OUTPUT, "-1", 0}, /* a file name like any other */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hti_option_value value;
        const char *why = NULL;
        int error = hti_option_value_parse(cases[i].option, cases[i].text, &value, &why);
        if (error != cases[i].error)
            fail_msg("%s=\"%s\": %d, expected %d", hti_option_variable(cases[i].option),
                     cases[i].text, error, cases[i].error);
        if (error && (!why || !*why))
            fail_msg("%s=\"%s\": refused without a reason", hti_option_variable(cases[i].option),
                     cases[i].text);
    }
}

static void test_path_lengths(void **state)
{
    (void)state;
    char path[8192];
    hti_option_value value;
    const char *why;
    /* 4095 bytes with the pid and ".PID" of a fork child: 4087 + 8. */
    memset(path, 'a', 4087);
    path[0] = '/';
    path[4087] = '\0';
    assert_int_equal(hti_option_value_parse(HTI_OPTION_OUTPUT, path, &value, &why), 0);
    path[4087] = 'a';
    path[4088] = '\0';
    assert_int_equal(hti_option_value_parse(HTI_OPTION_OUTPUT, path, &value, &why), -ERANGE);
    memcpy(path + 4083, "%p", 2); /* 4088 bytes with %p: 4088 + 5 + 8 */
    assert_int_equal(hti_option_value_parse(HTI_OPTION_OUTPUT, path, &value, &why), -ERANGE);
    /* The socket directory: <dir>/<7 digits>.sock in 107 bytes. */
    memset(path, 'd', 94);
    path[0] = '/';
    path[94] = '\0';
    assert_int_equal(hti_option_value_parse(HTI_OPTION_CONTROL_DIR, path, &value, &why), 0);
    path[94] = 'd';
    path[95] = '\0';
    assert_int_equal(hti_option_value_parse(HTI_OPTION_CONTROL_DIR, path, &value, &why), -ERANGE);
    char socket_path[256];
    path[94] = '\0';
    assert_true(ht_control_socket_path(socket_path, sizeof socket_path, 0, 4194304, path, NULL) >
                0);
}

static void test_keys(void **state)
{
    (void)state;
    for (int option = 0; option < HTI_OPTION_COUNT; option++) {
        const char *key = hti_option_key((hti_option)option);
        const char *variable = hti_option_variable((hti_option)option);
        assert_non_null(variable);
        assert_int_equal(strncmp(variable, "HEAPTRAIL_", 10), 0);
        if (key)
            assert_int_equal(hti_option_by_key(key), option);
    }
    assert_int_equal(hti_option_by_key("colour"), -1);
    assert_int_equal(hti_option_by_key("BUFFER"), -1);
}

static void test_check(void **state)
{
    (void)state;
    ht_trace_options o;
    ht_trace_options_init(&o);
    const char *why = NULL;
    assert_int_equal(hti_options_check(&o, &why), 0);
    o.buffer_size = 0; /* the default */
    o.flush_interval_ms = 0;
    assert_int_equal(hti_options_check(&o, &why), 0);
    o.compression_level = 20;
    assert_int_equal(hti_options_check(&o, &why), -EINVAL);
    o.compression_level = 19;
    o.max_size = 100;
    o.min_size = 200;
    assert_int_equal(hti_options_check(&o, &why), -EINVAL);
    assert_non_null(why);
    o.max_size = 0;
    o.buffer_size = 1000;
    assert_int_equal(hti_options_check(&o, &why), -EINVAL);
    /* ht_trace_start refuses the same (before opening anything). */
    o.output_path = "/nonexistent-dir/never.trace";
    o.buffer_size = 0;
    o.compression_level = 22;
    assert_int_equal(ht_trace_start(&o), -EINVAL);
}

static void test_quote(void **state)
{
    (void)state;
    char out[512];
    hti_option_quote(out, sizeof out, "a\"b\\c\nd\x01");
    assert_string_equal(out, "\"a\\\"b\\\\c\\x0ad\\x01\"");
    char long_value[200];
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    hti_option_quote(out, sizeof out, long_value);
    assert_int_equal(strlen(out), 64 + 2 + 3);
    assert_string_equal(out + 65, "\"...");
    hti_option_quote(out, 8, long_value); /* never past the buffer */
    assert_int_equal(strlen(out), 7);
}

/* ---- the environment, through a stand-in ---- */

typedef struct fake_environment {
    const char *names[8];
    const char *values[8];
} fake_environment;

static const char *fake_lookup(const char *name, void *context)
{
    const fake_environment *e = context;
    for (int i = 0; i < 8 && e->names[i]; i++)
        if (!strcmp(e->names[i], name))
            return e->values[i];
    return NULL;
}

static int read_environment(const char *variable, const char *value, char *message, size_t size)
{
    fake_environment e = {{"HEAPTRAIL_OUTPUT", variable}, {"/tmp/never-written.trace", value}};
    ht_trace_options o;
    ht_trace_options_init(&o);
    return hti_options_from_environment(&o, fake_lookup, &e, message, size);
}

static void test_environment_line(void **state)
{
    (void)state;
    char message[512];
    assert_int_equal(read_environment("HEAPTRAIL_BUFFER", "-5", message, sizeof message), -EINVAL);
    assert_string_equal(message, "heaptrail: HEAPTRAIL_BUFFER=\"-5\": not a size (expected e.g. "
                                 "64K, 4M); tracing not started");
    assert_int_equal(read_environment("HEAPTRAIL_BUFFER", "256K", message, sizeof message), 1);
    assert_string_equal(message, "");
    /* Nothing asked: no output, no line. */
    fake_environment none = {{"HEAPTRAIL_BUFFER"}, {"-5"}};
    ht_trace_options o;
    ht_trace_options_init(&o);
    assert_int_equal(hti_options_from_environment(&o, fake_lookup, &none, message, sizeof message),
                     0);
    /* An empty HEAPTRAIL_OUTPUT is "not set"; an empty value elsewhere is refused. */
    fake_environment empty = {{"HEAPTRAIL_OUTPUT"}, {""}};
    assert_int_equal(hti_options_from_environment(&o, fake_lookup, &empty, message, sizeof message),
                     0);
    assert_int_equal(read_environment("HEAPTRAIL_STACKS", "", message, sizeof message), -EINVAL);
    assert_non_null(strstr(message, "HEAPTRAIL_STACKS=\"\""));
    /* A descriptor that is not open. */
    fake_environment fd = {{"HEAPTRAIL_FD"}, {"987"}};
    assert_int_equal(hti_options_from_environment(&o, fake_lookup, &fd, message, sizeof message),
                     -EINVAL);
    assert_string_equal(message, "heaptrail: HEAPTRAIL_FD=\"987\": not an open descriptor; "
                                 "tracing not started");
    /* max below min */
    fake_environment range = {{"HEAPTRAIL_OUTPUT", "HEAPTRAIL_MIN_SIZE", "HEAPTRAIL_MAX_SIZE"},
                              {"/tmp/x", "2K", "1K"}};
    assert_int_equal(hti_options_from_environment(&o, fake_lookup, &range, message, sizeof message),
                     -EINVAL);
    assert_non_null(strstr(message, "HEAPTRAIL_MAX_SIZE=\"1K\""));
}

/* ---- the control protocol agrees with the environment ---- */

static int starts;
static int started_fd = -1;
static int stand_in_start(const ht_trace_options *options)
{
    started_fd = options->output_fd;
    starts++;
    return 0;
}

static void test_control_agrees(void **state)
{
    (void)state;
    static const char *const values[] = {"64K",   "64k",
                                         "64KiB", "1M",
                                         "1MiB",  "4G",
                                         "0",     "1",
                                         "19",    "20",
                                         "22",    "128",
                                         "129",   "60000",
                                         "60001", "1G",
                                         "64kb",  "-5",
                                         "-1",    "abc",
                                         "1x",    "99999999999999999999",
                                         "",      " 64K",
                                         "+64K",  "0x10000",
                                         "65536", "5G",
                                         "block", "ring",
                                         "fp",    "alloc,free",
                                         NULL};
    int compared = 0;
    for (int option = 0; option < HTI_OPTION_COUNT; option++) {
        const char *key = hti_option_key((hti_option)option);
        if (!key || option == HTI_OPTION_OUTPUT)
            continue;
        for (int i = 0; values[i]; i++) {
            char message[512], request[256], reply[8192];
            bool env_ok = read_environment(hti_option_variable((hti_option)option), values[i],
                                           message, sizeof message) == 1;
            snprintf(request, sizeof request, "start\noutput=/tmp/never-written.trace\n%s=%s\n\n",
                     key, values[i]);
            starts = 0;
            hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
            bool control_ok = strncmp(reply, "ok\n", 3) == 0;
            if (env_ok != control_ok || starts != (control_ok ? 1 : 0))
                fail_msg("%s=\"%s\": environment %s, control %s", key, values[i],
                         env_ok ? "accepts" : "refuses", reply);
            compared++;
        }
    }
    assert_true(compared > 300);
}

static void test_control_replies(void **state)
{
    (void)state;
    char request[9000], reply[8192];
    snprintf(request, sizeof request, "start\noutput=/tmp/x\nbuffer=-5\n\n");
    hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
    assert_string_equal(reply, "error EINVAL bad option buffer=\"-5\": not a size (expected e.g. "
                               "64K, 4M)\n\n");
    snprintf(request, sizeof request, "start\noutput=relative\n\n");
    hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
    assert_non_null(strstr(reply, "not an absolute path"));
    /* An overlong first line still gets a whole reply, closing empty line included. */
    memset(request, 'x', 8191);
    request[8191] = '\0';
    size_t n = hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
    assert_true(n > 2 && reply[n - 1] == '\n' && reply[n - 2] == '\n');
    assert_int_equal(strncmp(reply, "error EINVAL unknown command:", 29), 0);
}

/* stream=1: the request's descriptor becomes the output and is the session's once started;
 * every refusal leaves it with the caller. */
static void test_control_stream(void **state)
{
    (void)state;
    int pair[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    char request[256], reply[8192];
    static const struct {
        const char *request;
        const char *reply;
    } refused[] = {
        {"start\nstream=1\noutput=/tmp/x\n\n",
         "error EINVAL output= and stream=1 exclude each other\n\n"},
        {"start\nstream=1\nfollow_forks=1\n\n",
         "error EINVAL follow_forks=1 needs output=: a stream carries one trace\n\n"},
        {"start\nstream=2\n\n",
         "error EINVAL bad option stream=\"2\": not a flag (expected 0 or 1)\n\n"},
        {"start\nstream=0\n\n", "error EINVAL start needs output=ABSOLUTE-PATH (or stream=1)\n\n"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int descriptor = pair[1];
        snprintf(request, sizeof request, "%s", refused[i].request);
        starts = 0;
        hti_control_handle(request, &descriptor, stand_in_start, reply, sizeof reply);
        assert_string_equal(reply, refused[i].reply);
        assert_int_equal(starts, 0);
        assert_int_equal(descriptor, pair[1]);
    }
    int none = -1;
    snprintf(request, sizeof request, "start\nstream=1\n\n");
    hti_control_handle(request, &none, stand_in_start, reply, sizeof reply);
    assert_string_equal(reply, "error EINVAL stream=1 needs a descriptor\n\n");
    snprintf(request, sizeof request, "start\nstream=1\n\n"); /* the handler changed it */
    hti_control_handle(request, NULL, stand_in_start, reply, sizeof reply);
    assert_string_equal(reply, "error EINVAL stream=1 needs a descriptor\n\n");
    /* Not a start: the descriptor stays the caller's. */
    int descriptor = pair[1];
    snprintf(request, sizeof request, "status\n\n");
    hti_control_handle(request, &descriptor, stand_in_start, reply, sizeof reply);
    assert_int_equal(strncmp(reply, "ok\n", 3), 0);
    assert_int_equal(descriptor, pair[1]);
    /* A start that succeeds takes it. */
    snprintf(request, sizeof request, "start\nstream=1\nmode=discard\n\n");
    starts = 0;
    hti_control_handle(request, &descriptor, stand_in_start, reply, sizeof reply);
    assert_int_equal(strncmp(reply, "ok\n", 3), 0);
    assert_int_equal(starts, 1);
    assert_int_equal(started_fd, pair[1]);
    assert_int_equal(descriptor, -1);
    close(pair[0]);
    close(pair[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_path_lengths),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_environment_line),
        cmocka_unit_test(test_control_agrees),
        cmocka_unit_test(test_control_replies),
        cmocka_unit_test(test_control_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
