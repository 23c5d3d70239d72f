/* test_env.c — ht_trace_start_from_env against bad values, through the public API only: every
 * tracing variable with values that are negative, not numbers, cut, overflowing, empty or out
 * of range must be refused (-EINVAL) with exactly one line on stderr naming heaptrail, the
 * variable and the value; no session starts and no trace file is created. Good values at the
 * edges of each range start a session. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "heaptrail/trace.h"

static char trace_path[256], stderr_path[256];

static const char *const variables[] = {"HEAPTRAIL_OUTPUT",
                                        "HEAPTRAIL_FD",
                                        "HEAPTRAIL_MODE",
                                        "HEAPTRAIL_BUFFER",
                                        "HEAPTRAIL_STACKS",
                                        "HEAPTRAIL_UNWIND",
                                        "HEAPTRAIL_SAMPLE",
                                        "HEAPTRAIL_EVENTS",
                                        "HEAPTRAIL_MIN_SIZE",
                                        "HEAPTRAIL_MAX_SIZE",
                                        "HEAPTRAIL_COMPRESS",
                                        "HEAPTRAIL_FLUSH_MS",
                                        "HEAPTRAIL_NO_RUNDOWN",
                                        "HEAPTRAIL_FOLLOW_FORKS",
                                        "HEAPTRAIL_NO_TSC",
                                        "HEAPTRAIL_FREE_STACKS",
                                        NULL};

static void clear_environment(void)
{
    for (int i = 0; variables[i]; i++)
        unsetenv(variables[i]);
}

/* ht_trace_start_from_env with stderr in a file; the file's text into out. */
static int start_capturing(char *out, size_t size)
{
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    int result = ht_trace_start_from_env();
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *f = fopen(stderr_path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = '\0';
    fclose(f);
    return result;
}

static int count_lines(const char *text)
{
    int lines = 0;
    for (; *text; text++)
        lines += *text == '\n';
    return lines;
}

/* Refused, with also = "VARIABLE=value" set beforehand (NULL: nothing else). */
static void expect_refused_with(const char *also, const char *variable, const char *value)
{
    char err[4096];
    clear_environment();
    unlink(trace_path);
    setenv("HEAPTRAIL_OUTPUT", trace_path, 1);
    if (also)
        putenv((char *)also);
    setenv(variable, value, 1);
    int result = start_capturing(err, sizeof err);
    if (result == 1)
        ht_trace_stop();
    char shown[80];
    snprintf(shown, sizeof shown, "%s=\"%.20s", variable, value);
    struct stat st;
    if (result != -EINVAL || count_lines(err) != 1 || strncmp(err, "heaptrail: ", 11) != 0 ||
        !strstr(err, shown) || stat(trace_path, &st) == 0 || ht_trace_is_active())
        fail_msg("%s=\"%s\": result %d, stderr \"%s\"", variable, value, result, err);
}

static void expect_refused(const char *variable, const char *value)
{
    expect_refused_with(NULL, variable, value);
}

static void expect_started(const char *variable, const char *value)
{
    char err[4096];
    clear_environment();
    unlink(trace_path);
    setenv("HEAPTRAIL_OUTPUT", trace_path, 1);
    setenv(variable, value, 1);
    int result = start_capturing(err, sizeof err);
    bool active = ht_trace_is_active();
    if (result == 1)
        ht_trace_stop();
    struct stat st;
    if (result != 1 || !active || err[0] || stat(trace_path, &st) != 0)
        fail_msg("%s=\"%s\": result %d, stderr \"%s\"", variable, value, result, err);
    unlink(trace_path);
}

typedef struct table {
    const char *variable;
    const char *values[16];
} table;

static void test_bad_values(void **state)
{
    (void)state;
    static const table tables[] = {
        {"HEAPTRAIL_BUFFER",
         {"-1", "-5", "abc", "1x", "99999999999999999999", "", "0", "64kb", "65535", "5G", " 1M",
          "+1M", "0x100000"}},
        {"HEAPTRAIL_STACKS", {"-1", "-5", "abc", "1x", "99999999999999999999", "", "129", "1k"}},
        {"HEAPTRAIL_SAMPLE", {"-1", "-5", "abc", "1x", "99999999999999999999", "", "2G"}},
        {"HEAPTRAIL_MIN_SIZE", {"-1", "-5", "abc", "1x", "99999999999999999999", ""}},
        {"HEAPTRAIL_MAX_SIZE", {"-1", "-5", "abc", "1x", "99999999999999999999", ""}},
        {"HEAPTRAIL_COMPRESS", {"-1", "-5", "abc", "1x", "99999999999999999999", "", "20", "22"}},
        {"HEAPTRAIL_FLUSH_MS", {"-1", "-5", "abc", "1x", "99999999999999999999", "", "0", "60001"}},
        {"HEAPTRAIL_MODE", {"-1", "abc", "", "Block", "ring "}},
        {"HEAPTRAIL_UNWIND", {"-1", "abc", "", "FP"}},
        {"HEAPTRAIL_EVENTS", {"-1", "abc", "", "alloc,", "alloc,,free", "ALLOC"}},
        {"HEAPTRAIL_FOLLOW_FORKS", {"-1", "abc", "", "2", "yes"}},
        {"HEAPTRAIL_NO_RUNDOWN", {"-1", "abc", "", "2", "true"}},
        {"HEAPTRAIL_FREE_STACKS", {"-1", "abc", "", "2", "yes"}},
        {"HEAPTRAIL_NO_TSC", {"-1", "abc", "", "2"}},
        {"HEAPTRAIL_FD", {"-1", "-5", "abc", "1x", "99999999999999999999"}},
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (int i = 0; tables[t].values[i]; i++)
            expect_refused(tables[t].variable, tables[t].values[i]);
    char path[5000];
    memset(path, 'p', sizeof path - 1);
    path[0] = '/';
    path[sizeof path - 1] = '\0';
    expect_refused("HEAPTRAIL_OUTPUT", path);
    clear_environment();
}

static void test_descriptor_not_open(void **state)
{
    (void)state;
    char err[4096];
    clear_environment();
    setenv("HEAPTRAIL_FD", "987", 1);
    int result = start_capturing(err, sizeof err);
    if (result == 1)
        ht_trace_stop();
    assert_int_equal(result, -EINVAL);
    assert_int_equal(count_lines(err), 1);
    assert_non_null(strstr(err, "HEAPTRAIL_FD=\"987\""));
    clear_environment();
}

static void test_max_below_min(void **state)
{
    (void)state;
    expect_refused_with("HEAPTRAIL_MIN_SIZE=2K", "HEAPTRAIL_MAX_SIZE", "1K");
    clear_environment();
}

static void test_good_edges(void **state)
{
    (void)state;
    static const table tables[] = {
        {"HEAPTRAIL_BUFFER", {"64K", "64k", "64KiB", "1M", "1MiB", "65536"}},
        {"HEAPTRAIL_STACKS", {"0", "1", "128"}},
        {"HEAPTRAIL_SAMPLE", {"0", "1", "1G"}},
        {"HEAPTRAIL_COMPRESS", {"0", "1", "19"}},
        {"HEAPTRAIL_FLUSH_MS", {"1", "60000"}},
        {"HEAPTRAIL_MAX_SIZE", {"18446744073709551615"}},
        {"HEAPTRAIL_MODE", {"block", "discard", "ring"}},
        {"HEAPTRAIL_EVENTS", {"alloc", "alloc,free,realloc,heap", "all"}},
        {"HEAPTRAIL_FOLLOW_FORKS", {"0", "1"}},
        {"HEAPTRAIL_FREE_STACKS", {"0", "1"}},
        {"HEAPTRAIL_NO_TSC", {"0", "1"}},
    };
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (int i = 0; tables[t].values[i]; i++)
            expect_started(tables[t].variable, tables[t].values[i]);
    clear_environment();
}

int main(void)
{
    const char *dir = getenv("TMPDIR");
    snprintf(trace_path, sizeof trace_path, "%s/heaptrail-test-%d-env.trace",
             dir && *dir ? dir : "/tmp", (int)getpid());
    snprintf(stderr_path, sizeof stderr_path, "%s/heaptrail-test-%d-env.stderr",
             dir && *dir ? dir : "/tmp", (int)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_descriptor_not_open),
        cmocka_unit_test(test_max_below_min),
        cmocka_unit_test(test_good_edges),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(stderr_path);
    unlink(trace_path);
    return failed;
}
