/* check.c — `heaptrail check [OPTIONS] -- PROG [ARGS...]`: a CI gate. Runs PROG as `record`
 * does (record.c), traced with stacks, with the reachability scan at exit
 * (HEAPTRAIL_LEAK_SCAN=1) and termination on heap corruption off (an invalid operation is
 * reported, as valgrind does, and the program goes on), then judges the trace
 * (analyze/check.c). Exit status: 23 (--exitcode) when something is found, else the program's
 * own. The trace goes to a temporary file unless --trace names one. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "analyze/check.h"
#include "cli_common.h"
#include "commands.h"

static const char check_help[] =
    "Usage: heaptrail check [OPTIONS] [--] PROG [ARGS...]\n"
    "Run PROG traced with stacks and judge it, as a CI gate: invalid operations (a double free,\n"
    "a pointer the heap does not own, realloc of a freed block), leaks by reachability (at exit\n"
    "the other threads are stopped and the roots — modules' data, stacks and registers, TLS —\n"
    "and the live blocks scanned for pointers: a block nothing points to is definitely lost, one\n"
    "reachable only from lost blocks indirectly lost), and the peak over a limit. A valgrind-\n"
    "like summary with stacks goes to standard error.\n\n"
    "Options:\n"
    "  --leaks KIND           lost (default: definitely and indirectly lost blocks are\n"
    "                         findings), definite, all (every block live at exit), none\n"
    "  --suppressions FILE    LeakSanitizer's syntax: leak:PATTERN or invalid:PATTERN lines,\n"
    "                         PATTERN matching a function, source file or module in the stack\n"
    "                         (* wildcard, ^ $ anchors), # comments; may be repeated\n"
    "  --no-default-suppressions  drop the built-in list (the C library's and the loader's\n"
    "                         one-time allocations; --print-suppressions=defaults shows it)\n"
    "  --print-suppressions[=defaults]  after the summary, a suppressions file for the\n"
    "                         findings (or the built-in list, and exit)\n"
    "  --max-peak SIZE        a finding when live heap bytes peak above SIZE (4M, 1GiB, ...)\n"
    "  --fail-on-oom          a failed allocation (NULL returned) is a finding\n"
    "  --json FILE            the judgement as JSON (schema heaptrail-check/1)\n"
    "  --junit FILE           the judgement as JUnit XML, a test case per finding\n"
    "  --exitcode N           the exit status when something is found (default 23)\n"
    "  --follow-forks         judge the processes PROG starts too (their traces: FILE.PID)\n"
    "  --trace FILE           keep the trace there (default: a temporary file, removed)\n"
    "  --stacks DEPTH         frames per stack (default 32, max 128)\n"
    "  -q, --quiet            print nothing when nothing is found\n"
    "  -h, --help             this help\n\n"
    "Exit codes: 23 (or --exitcode) when there is a finding; otherwise the program's own exit\n"
    "code, 128+N if signal N ended it; 1 usage error, 2 the library, the trace or an output\n"
    "could not be used, 126 PROG cannot be run, 127 PROG not found. A program ended by _exit\n"
    "or a signal gets no scan: its leaks are judged only with --leaks all.\n";

enum {
    OPT_LEAKS = 1,
    OPT_SUPPRESSIONS,
    OPT_NO_DEFAULTS,
    OPT_PRINT_SUPPRESSIONS,
    OPT_MAX_PEAK,
    OPT_FAIL_ON_OOM,
    OPT_JSON,
    OPT_JUNIT,
    OPT_EXITCODE,
    OPT_TRACE,
    OPT_STACKS,
    OPT_FOLLOW_FORKS,
};

#define MAX_SUPPRESSION_FILES 32

typedef struct check_settings {
    ht_check_options judge;
    const char *files[MAX_SUPPRESSION_FILES];
    size_t file_count;
    bool defaults;
    bool print_defaults;
    int exitcode;
    const char *trace;
    char stacks[16];
    bool follow_forks;
} check_settings;

static int parse_options(int argc, char **argv, check_settings *s)
{
    static const struct option options[] = {
        {"leaks", required_argument, NULL, OPT_LEAKS},
        {"suppressions", required_argument, NULL, OPT_SUPPRESSIONS},
        {"no-default-suppressions", no_argument, NULL, OPT_NO_DEFAULTS},
        {"print-suppressions", optional_argument, NULL, OPT_PRINT_SUPPRESSIONS},
        {"max-peak", required_argument, NULL, OPT_MAX_PEAK},
        {"fail-on-oom", no_argument, NULL, OPT_FAIL_ON_OOM},
        {"json", required_argument, NULL, OPT_JSON},
        {"junit", required_argument, NULL, OPT_JUNIT},
        {"exitcode", required_argument, NULL, OPT_EXITCODE},
        {"trace", required_argument, NULL, OPT_TRACE},
        {"stacks", required_argument, NULL, OPT_STACKS},
        {"follow-forks", no_argument, NULL, OPT_FOLLOW_FORKS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const char *const leak_kinds[] = {"lost", "definite", "all", "none", NULL};
    int c, index;
    uint64_t value;
    while ((c = ht_cli_getopt(argc, argv, "+qh", options)) != -1) {
        switch (c) {
        case OPT_LEAKS:
            if (ht_cli_parse_choice("--leaks", optarg, leak_kinds, &index))
                return HT_CLI_EXIT_USAGE;
            s->judge.leaks = (ht_check_leaks)index;
            break;
        case OPT_SUPPRESSIONS:
            if (s->file_count == MAX_SUPPRESSION_FILES)
                return ht_cli_usage_error("at most %d --suppressions files", MAX_SUPPRESSION_FILES);
            s->files[s->file_count++] = optarg;
            break;
        case OPT_NO_DEFAULTS: s->defaults = false; break;
        case OPT_PRINT_SUPPRESSIONS:
            if (optarg && strcmp(optarg, "defaults") != 0)
                return ht_cli_usage_error("bad value '%s' for --print-suppressions: expected "
                                          "nothing or 'defaults'",
                                          optarg);
            if (optarg)
                s->print_defaults = true;
            else
                s->judge.print_suppressions = true;
            break;
        case OPT_MAX_PEAK:
            if (ht_cli_parse_size("--max-peak", optarg, &value))
                return HT_CLI_EXIT_USAGE;
            s->judge.max_peak_set = true;
            s->judge.max_peak = value;
            break;
        case OPT_FAIL_ON_OOM: s->judge.fail_on_oom = true; break;
        case OPT_JSON: s->judge.json_path = optarg; break;
        case OPT_JUNIT: s->judge.junit_path = optarg; break;
        case OPT_EXITCODE:
            if (ht_cli_parse_u64("--exitcode", optarg, &value))
                return HT_CLI_EXIT_USAGE;
            if (value > 255)
                return ht_cli_usage_error("bad value '%s' for --exitcode: expected 0 to 255",
                                          optarg);
            s->exitcode = (int)value;
            break;
        case OPT_TRACE:
            if (!*optarg)
                return ht_cli_usage_error("bad value '' for --trace: expected a file name");
            s->trace = optarg;
            break;
        case OPT_STACKS:
            if (ht_cli_parse_u64("--stacks", optarg, &value))
                return HT_CLI_EXIT_USAGE;
            if (value < 1 || value > 128)
                return ht_cli_usage_error("bad value '%s' for --stacks: expected 1 to 128", optarg);
            snprintf(s->stacks, sizeof s->stacks, "--stacks=%u", (unsigned)value);
            break;
        case OPT_FOLLOW_FORKS: s->follow_forks = true; break;
        case 'q': s->judge.quiet = true; break;
        case 'h': fputs(check_help, stdout); return -1;
        default: return HT_CLI_EXIT_USAGE; /* '?': already reported */
        }
    }
    if (s->print_defaults)
        return 0;
    if (optind >= argc)
        return ht_cli_usage_error("no program given (heaptrail check [OPTIONS] -- PROG ARGS)");
    return 0;
}

static int load_suppressions(const check_settings *s, hti_suppressions *list)
{
    char error[4400];
    if (s->defaults && hti_suppressions_add_defaults(list) != 0) {
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    for (size_t i = 0; i < s->file_count; i++) {
        int status = hti_suppressions_load(list, s->files[i], error, sizeof error);
        if (status) {
            ht_cli_error("%s", error);
            return status == -EINVAL ? HT_CLI_EXIT_USAGE : HT_CLI_EXIT_IO;
        }
    }
    return 0;
}

/* Runs the program through `record`, quietly, into trace. */
static int run_program(const check_settings *s, const char *trace, int argc, char **argv)
{
    char *args[8 + 1];
    int n = 0;
    args[n++] = "record";
    args[n++] = "-q";
    if (s->follow_forks)
        args[n++] = "--follow-forks";
    args[n++] = (char *)(s->stacks[0] ? s->stacks : "--stacks=32");
    args[n++] = "-o";
    args[n++] = (char *)trace;
    args[n++] = "--";
    size_t count = (size_t)(argc - optind);
    char **record_argv = calloc((size_t)n + count + 1, sizeof *record_argv);
    if (!record_argv) {
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    memcpy(record_argv, args, (size_t)n * sizeof *args);
    memcpy(record_argv + n, argv + optind, count * sizeof *argv);
    /* The program's environment: the scan at exit, and invalid operations reported rather than
     * fatal. record passes other HEAPTRAIL_* variables on unchanged. */
    setenv("HEAPTRAIL_LEAK_SCAN", "1", 1);
    setenv("HEAPTRAIL_TERMINATE_ON_CORRUPTION", "0", 1);
    int saved_optind = optind;
    optind = 0;
    int code = ht_cli_record(n + (int)count, record_argv);
    optind = saved_optind;
    free(record_argv);
    return code;
}

/* ---- the traces ---- */

typedef struct trace_files {
    char path[4096]; /* the traced process's */
    char dir[4000];  /* a temporary directory made for them, "" if none */
    bool temporary;  /* remove the traces at the end */
    char **children; /* PATH.PID written during the run (--follow-forks), by pid */
    size_t child_count;
} trace_files;

static int make_trace_path(const check_settings *s, trace_files *t)
{
    if (s->trace) {
        snprintf(t->path, sizeof t->path, "%s", s->trace);
        return 0;
    }
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && *tmp ? tmp : "/tmp";
    t->temporary = true;
    if (s->follow_forks) { /* a directory: the children's traces go beside the first */
        snprintf(t->dir, sizeof t->dir, "%s/heaptrail-check.XXXXXX", tmp);
        if (!mkdtemp(t->dir)) {
            ht_cli_error("cannot create a temporary directory in '%s': %s", tmp, strerror(errno));
            return HT_CLI_EXIT_IO;
        }
        snprintf(t->path, sizeof t->path, "%s/trace", t->dir);
        return 0;
    }
    snprintf(t->path, sizeof t->path, "%s/heaptrail-check.XXXXXX", tmp);
    int fd = mkstemp(t->path);
    if (fd < 0) {
        ht_cli_error("cannot create a temporary trace in '%s': %s", tmp, strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    close(fd);
    return 0;
}

static long child_pid(const char *name, const char *base)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || name[n] != '.' || !name[n + 1])
        return -1;
    long pid = 0;
    for (const char *c = name + n + 1; *c; c++) {
        if (*c < '0' || *c > '9' || pid > 10000000)
            return -1;
        pid = pid * 10 + (*c - '0');
    }
    return pid;
}

static int compare_child(const void *x, const void *y)
{
    const char *a = *(char *const *)x, *b = *(char *const *)y;
    long pa = strtol(strrchr(a, '.') + 1, NULL, 10), pb = strtol(strrchr(b, '.') + 1, NULL, 10);
    return (pa > pb) - (pa < pb);
}

/* The children's traces: PATH.PID beside PATH, written since start (an older one is another
 * run's). */
static void find_children(trace_files *t, time_t start)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", t->path);
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    char base_copy[4096];
    snprintf(base_copy, sizeof base_copy, "%s", base);
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (child_pid(e->d_name, base_copy) < 0)
            continue;
        char path[8200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_mtime < start)
            continue;
        char **more = realloc(t->children, (t->child_count + 1) * sizeof *more);
        char *copy = strdup(path);
        if (!more || !copy) {
            free(copy);
            if (more)
                t->children = more;
            break;
        }
        t->children = more;
        t->children[t->child_count++] = copy;
    }
    closedir(d);
    qsort(t->children, t->child_count, sizeof *t->children, compare_child);
}

static void remove_traces(trace_files *t)
{
    for (size_t i = 0; i < t->child_count; i++) {
        if (t->temporary)
            unlink(t->children[i]);
        free(t->children[i]);
    }
    free(t->children);
    if (t->temporary) {
        unlink(t->path);
        if (t->dir[0])
            rmdir(t->dir);
    }
}

/* Judges one trace; 0, or an exit code after its message. */
static int judge_trace(const char *path, const ht_check_options *judge, int exitcode,
                       int program_status, int *findings, ht_check_child *child)
{
    ht_analysis_options options;
    ht_analysis_options_init(&options);
    options.progress = 0;
    char error[4400] = "";
    ht_analysis *analysis = ht_analysis_open(path, &options, error, sizeof error);
    if (!analysis) {
        ht_cli_error("%s", error);
        return HT_CLI_EXIT_IO;
    }
    const char *warnings = ht_analysis_warnings(analysis);
    int status = ht_check_judge(analysis, judge, exitcode, program_status, findings, child, error,
                                sizeof error);
    if (warnings && *warnings)
        ht_cli_warning("%s: %s", path, warnings);
    ht_analysis_close(analysis);
    if (status) {
        ht_cli_error("%s", error);
        return HT_CLI_EXIT_IO;
    }
    return 0;
}

/* The children first (each with its own text; JSON and JUnit parts kept for the end), then the
 * traced process, whose files gather them. */
static int judge_all(check_settings *s, trace_files *t, int program_status)
{
    ht_check_child *children = calloc(t->child_count ? t->child_count : 1, sizeof *children);
    if (!children) {
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    int total = 0, code = 0, processes_found = 0;
    size_t judged = 0;
    for (size_t i = 0; i < t->child_count; i++) {
        ht_check_options options = s->judge;
        options.child = true;
        int findings = 0;
        if (judge_trace(t->children[i], &options, s->exitcode, program_status, &findings,
                        &children[judged]) == 0) {
            total += findings;
            processes_found += findings > 0;
            judged++;
        }
    }
    s->judge.children = children;
    s->judge.child_count = judged;
    int findings = 0;
    code = judge_trace(t->path, &s->judge, s->exitcode, program_status, &findings, NULL);
    total += findings;
    processes_found += findings > 0;
    if (!code && judged && (total || !s->judge.quiet))
        fprintf(stderr, "==heaptrail== IN ALL: %d finding%s in %d of %zu processes\n", total,
                total == 1 ? "" : "s", processes_found, judged + 1);
    for (size_t i = 0; i < judged; i++) {
        free(children[i].json);
        free(children[i].junit);
    }
    free(children);
    if (code)
        return code;
    return total ? s->exitcode : program_status;
}

int ht_cli_check(int argc, char **argv)
{
    check_settings s;
    memset(&s, 0, sizeof s);
    s.defaults = true;
    s.exitcode = 23;
    s.judge.out = stderr;
    int code = parse_options(argc, argv, &s);
    if (code)
        return code < 0 ? HT_CLI_EXIT_OK : code;
    if (s.print_defaults) {
        hti_suppressions_print_defaults(stdout);
        return HT_CLI_EXIT_OK;
    }
    hti_suppressions list = {0};
    if ((code = load_suppressions(&s, &list)) != 0) {
        hti_suppressions_free(&list);
        return code;
    }
    s.judge.suppressions = &list;

    trace_files traces;
    memset(&traces, 0, sizeof traces);
    if ((code = make_trace_path(&s, &traces)) != 0) {
        hti_suppressions_free(&list);
        return code;
    }
    time_t start = time(NULL);
    int program_status = run_program(&s, traces.path, argc, argv);
    const ht_cli_record_outcome *outcome = ht_cli_record_last();
    if (!outcome->ran) { /* record could not run it: its message is out */
        remove_traces(&traces);
        hti_suppressions_free(&list);
        return program_status;
    }
    s.judge.program = argv[optind];
    s.judge.pid = outcome->pid;
    s.judge.status_known = true;
    s.judge.wait_status = outcome->wait_status;
    if (WIFSIGNALED(outcome->wait_status))
        fprintf(stderr, "heaptrail check: '%s' was ended by signal %d (%s)\n", argv[optind],
                WTERMSIG(outcome->wait_status), strsignal(WTERMSIG(outcome->wait_status)));
    if (s.follow_forks)
        find_children(&traces, start);
    code = judge_all(&s, &traces, program_status);
    remove_traces(&traces);
    hti_suppressions_free(&list);
    return code;
}
