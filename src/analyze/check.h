/* check.h — `heaptrail check`'s judgement of a trace (check.c) and its suppressions
 * (suppressions.c): findings (invalid operations, leaks by reachability, the peak over a limit),
 * what suppressions remove, and the outputs (valgrind-like text, JSON "heaptrail-check/1",
 * JUnit XML). */
#ifndef HEAPTRAIL_ANALYZE_CHECK_H
#define HEAPTRAIL_ANALYZE_CHECK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "analysis.h"

typedef enum hti_suppression_kind {
    HTI_SUPPRESS_LEAK = 0,
    HTI_SUPPRESS_INVALID = 1,
} hti_suppression_kind;

typedef struct hti_suppression {
    hti_suppression_kind kind;
    char *pattern;
    char *origin;         /* "FILE:LINE" or "default" */
    double bytes, blocks; /* what it suppressed (leaks) */
    uint64_t hits;        /* findings it suppressed */
} hti_suppression;

typedef struct hti_suppressions {
    hti_suppression *entries;
    size_t count, capacity;
} hti_suppressions;

/* Adds the entries of a suppressions file: 0, -EINVAL with "FILE:LINE: ..." in error for a bad
 * line, -ENOENT and the others of fopen with the file's name, -ENOMEM. */
int hti_suppressions_load(hti_suppressions *list, const char *path, char *error, size_t error_size);
/* Adds the default entries (the C library's and the loader's one-time allocations). */
int hti_suppressions_add_defaults(hti_suppressions *list);
void hti_suppressions_print_defaults(FILE *out);
void hti_suppressions_free(hti_suppressions *list);
/* The first entry of `kind` whose pattern matches a frame (function, file or module path). */
struct hti_frame;
hti_suppression *hti_suppressions_match(hti_suppressions *list, hti_suppression_kind kind,
                                        const struct hti_frame *const *frames, long count);
/* LSan's rule: `*` wildcards, `^`/`$` anchors, unanchored means anywhere in text. */
bool hti_pattern_match(const char *pattern, const char *text);

typedef enum ht_check_leaks {
    HT_CHECK_LEAKS_LOST = 0,     /* definitely and indirectly lost blocks are findings */
    HT_CHECK_LEAKS_DEFINITE = 1, /* only definitely lost ones */
    HT_CHECK_LEAKS_ALL = 2,      /* every block live at exit */
    HT_CHECK_LEAKS_NONE = 3,
} ht_check_leaks;

/* A child process judged under --follow-forks, before the traced process: what it found and
 * its parts of the JSON and JUnit files. */
typedef struct ht_check_child {
    char *json;   /* its JSON object (malloc'd; NULL when no JSON file is asked for) */
    char *junit;  /* its <testsuite> element (malloc'd; NULL when no JUnit file) */
    int findings; /* not suppressed */
    int tests;    /* its JUnit test cases */
} ht_check_child;

typedef struct ht_check_options {
    ht_check_leaks leaks;
    bool fail_on_oom;  /* a failed allocation is a finding */
    bool max_peak_set; /* the peak of live bytes above max_peak is a finding */
    uint64_t max_peak;
    hti_suppressions *suppressions;
    bool print_suppressions; /* a suppressions file for the findings, on out */
    const char *json_path;   /* NULL: none */
    const char *junit_path;
    bool quiet; /* nothing on out when there is no finding */
    FILE *out;  /* the text (stderr) */
    const char *program;
    long pid;
    bool status_known; /* wait_status is the program's */
    int wait_status;   /* as waitpid gave it */
    /* A child's judgement (program and pid from its trace; JSON and JUnit into *child_out), or
     * the traced process's, with the children judged before it. */
    bool child;
    const ht_check_child *children;
    size_t child_count;
} ht_check_options;

/* Runs the analysis (ht_analysis_run must not have been called) with the check's hooks, judges,
 * writes the text on options->out and the JSON/JUnit files (a child: its parts, into
 * *child_out). *findings: the findings left after suppression. 0, or a negative errno with the
 * message in error (the analysis failed, a file could not be written). The JSON's exit_code is
 * decided here: exit_if_found when this process or a child found something, else
 * program_status. */
int ht_check_judge(ht_analysis *analysis, const ht_check_options *options, int exit_if_found,
                   int program_status, int *findings, ht_check_child *child_out, char *error,
                   size_t error_size);

#endif
