/* record.c — `heaptrail record [OPTIONS] -- PROG ARGS...`: runs a program under
 * libheaptrail-preload.so with tracing switched on through the environment, waits, and says on
 * stderr where the trace went, with a one-line summary. The child gets LD_PRELOAD (our library
 * first), HEAPTRAIL_OUTPUT (absolute; "%p" = pid), HEAPTRAIL_OWNER_PID (its own pid) and the
 * options' variables (the tracing options are start's too, checked by tracing_options.c);
 * other HEAPTRAIL_* variables pass through. The exit code is the program's (128+N if signal N
 * ended it); SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to heaptrail alone are forwarded (a terminal's
 * signals reach the program directly). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "analyze/analysis.h"
#include "analyze/units.h"
#include "cli_common.h"
#include "collect.h"
#include "commands.h"
#include "ctl.h"
#include "live.h"
#include "tracing_options.h"

extern char **environ;

#define PRELOAD_NAME "libheaptrail-preload.so"

static const char record_help[] =
    "Usage: heaptrail record [OPTIONS] [--] PROG [ARGS...]\n"
    "Run PROG with its heap served and traced by libheaptrail-preload.so, then say where the\n"
    "trace went: events, lost events, size, what was still live at exit and the peak of\n"
    "committed memory (from the trace's footer: no event is read again).\n\n"
    "Options:\n"
    "  -o, --output FILE    trace file (default: heaptrail.PROG.PID.trace here); %p in FILE\n"
    "                       stands for the traced process's pid; - writes the trace to\n"
    "                       standard output as it comes (PROG's own output goes to stderr)\n"
    "  --stacks[=DEPTH]     record a stack with each allocation and reallocation, DEPTH frames\n"
    "                       (default 32, max 128); a free is matched to its allocation's stack\n"
    "  --free-stacks        with --stacks: a stack with each free too (costs about as much\n"
    "                       again)\n"
    "  --unwind METHOD      libunwind (for every stack) or fp (frame pointers: fastest, needs\n"
    "                       code built with them); by default each caller's .eh_frame rule,\n"
    "                       cached, and libunwind where it stops: libunwind's frames, faster\n"
    "  --mode MODE          block (default: never lose an event), discard (never slow the\n"
    "                       program down; count what is lost) or ring (keep the newest events\n"
    "                       in memory, written at exit or by 'heaptrail snapshot')\n"
    "  --sample BYTES       record allocations by byte sampling, one every BYTES on average\n"
    "  --buffer SIZE        per-thread buffer (default 1m; ring mode: what each thread keeps)\n"
    "  --compress LEVEL     zstd level 1..19 for the trace's chunks (default: none)\n"
    "  --follow-forks       trace child processes too, each into its own file: FILE.PID, or\n"
    "                       FILE with %p replaced\n"
    "  --leak-scan          at exit, stop the program's threads and record which blocks it can\n"
    "                       no longer reach: report shows them by class (heaptrail check judges\n"
    "                       them)\n"
    "  --no-control         no control socket in the program (heaptrail start/stop/status)\n"
    "  -q, --quiet          no summary\n"
    "  --live               watch PROG in heaptrail top's full-screen view while it runs; its\n"
    "                       output goes to NAME.out (NAME: the trace's, without .trace); q\n"
    "                       stops tracing and PROG runs on; defaults --stacks, --mode discard\n"
    "  --pprof-every DURATION\n"
    "                       a pprof profile NAME.SEQ.pb.gz every DURATION (10s, 500ms) of the\n"
    "                       session, and one for the last interval; default --stacks\n"
    "  --pprof-at-peak      a profile NAME.peak.SEQ.pb.gz at each new peak of live bytes\n"
    "  --pprof-dir DIR      where the profiles go (default: here)\n"
    "  --no-symbols         the view and the profiles show module+offset frames\n"
    "  -h, --help           this help\n\n"
    "Environment: HEAPTRAIL_PRELOAD names the library to use (default: next to this program,\n"
    "then ../lib/heaptrail/ and ../lib/ beside it, then the build tree). Other HEAPTRAIL_*\n"
    "variables reach the program unchanged (see README.md, \"Running a program\").\n\n"
    "Exit codes: the program's own exit code, or 128+N if signal N ended it; 1 usage error,\n"
    "2 the trace file or the library cannot be used, 126 PROG cannot be run, 127 PROG not found.\n";

enum {
    OPT_NO_CONTROL = 1,
    OPT_LIVE,
    OPT_NO_SYMBOLS,
};

typedef struct settings {
    const char *output;
    bool live;                     /* --live: the top view */
    ht_cli_collect_settings pprof; /* --pprof-every, --pprof-dir, --pprof-at-peak, symbols */
    bool stacks, mode, control;    /* given on the command line; control: not --no-control */
    const char *names[16];         /* HEAPTRAIL_* variables to set, and their values */
    char values[16][32];
    size_t count;
    bool follow_forks;
    bool quiet;
} settings;

static void set_variable(settings *s, const char *name, const char *value)
{
    for (size_t i = 0; i < s->count; i++) {
        if (!strcmp(s->names[i], name)) {
            snprintf(s->values[i], sizeof s->values[i], "%s", value);
            return;
        }
    }
    s->names[s->count] = name;
    snprintf(s->values[s->count], sizeof s->values[s->count], "%s", value);
    s->count++;
}

static int parse_options(int argc, char **argv, settings *s)
{
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        HT_CLI_TRACING_OPTIONS,
        {"no-control", no_argument, NULL, OPT_NO_CONTROL},
        {"live", no_argument, NULL, OPT_LIVE},
        HT_CLI_PPROF_OPTIONS,
        {"no-symbols", no_argument, NULL, OPT_NO_SYMBOLS},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, error;
    ht_cli_tracing_setting setting;
    while ((c = ht_cli_getopt(argc, argv, "+o:qh", options)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg)
                return ht_cli_usage_error("bad value '' for --output: expected a file name");
            s->output = optarg;
            break;
        case OPT_NO_CONTROL:
            set_variable(s, "HEAPTRAIL_CONTROL", "0");
            s->control = false;
            break;
        case OPT_LIVE: s->live = true; break;
        case HT_CLI_OPT_PPROF_EVERY:
        case HT_CLI_OPT_PPROF_DIR:
        case HT_CLI_OPT_PPROF_AT_PEAK:
            if ((error = ht_cli_pprof_option(c, optarg, &s->pprof)) != 0)
                return error;
            break;
        case OPT_NO_SYMBOLS: s->pprof.symbols = false; break;
        case 'q': s->quiet = true; break;
        case 'h': fputs(record_help, stdout); return -1;
        default: /* the tracing options, or '?' */
            if ((error = ht_cli_tracing_option(c, optarg, &setting)) != 0)
                return error;
            /* A buffer of 0 is refused here; start leaves it to the process. */
            if (c == HT_CLI_OPT_BUFFER && setting.number == 0)
                return ht_cli_usage_error("bad value '%s' for --buffer: must not be 0", optarg);
            if (c == HT_CLI_OPT_FOLLOW_FORKS)
                s->follow_forks = true;
            s->stacks |= c == HT_CLI_OPT_STACKS;
            s->mode |= c == HT_CLI_OPT_MODE;
            set_variable(s, setting.variable, setting.value);
            break;
        }
    }
    if (optind >= argc)
        return ht_cli_usage_error("no program given (heaptrail record [OPTIONS] -- PROG ARGS)");
    bool streamed = s->live || s->pprof.every_ns || s->pprof.at_peak;
    bool to_stdout = s->output && strcmp(s->output, "-") == 0;
    if ((streamed || to_stdout) && s->follow_forks)
        return ht_cli_usage_error("--follow-forks writes one trace per process: it does not mix "
                                  "with %s",
                                  to_stdout ? "-o -"
                                  : s->live ? "--live"
                                            : "--pprof-every");
    if ((error = ht_cli_pprof_check(&s->pprof)) != 0)
        return error;
    if (s->live && to_stdout)
        return ht_cli_usage_error("--live draws on standard output: it does not mix with -o -");
    if (s->live && !isatty(STDOUT_FILENO))
        return ht_cli_usage_error("--live needs a terminal on standard output");
    if (to_stdout && isatty(STDOUT_FILENO))
        return ht_cli_usage_error("-o - would write the trace to a terminal: redirect it");
    /* The view and the profiles are by site: stacks unless told; the view never slows the
     * program unless told. */
    if (streamed && !s->stacks)
        set_variable(s, "HEAPTRAIL_STACKS", "32");
    if (s->live && !s->mode)
        set_variable(s, "HEAPTRAIL_MODE", "discard");
    return 0;
}

/* ---- the preload library ---- */

static bool readable_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

static int find_preload(char *path, size_t size)
{
    const char *explicit_path = getenv("HEAPTRAIL_PRELOAD");
    if (explicit_path && *explicit_path) {
        if (readable_file(explicit_path) && realpath(explicit_path, path) && strlen(path) < size)
            return 0;
        ht_cli_error("HEAPTRAIL_PRELOAD names '%s', which is not a readable file", explicit_path);
        return HT_CLI_EXIT_IO;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = '\0';
        static const char *const relative[] = {"", "/../lib/heaptrail", "/../lib"};
        for (size_t i = 0; i < sizeof relative / sizeof relative[0]; i++) {
            char candidate[PATH_MAX + 64];
            snprintf(candidate, sizeof candidate, "%s%s/" PRELOAD_NAME, self, relative[i]);
            if (readable_file(candidate) && realpath(candidate, path) && strlen(path) < size)
                return 0;
        }
    }
#ifdef HT_CLI_PRELOAD_PATH
    if (readable_file(HT_CLI_PRELOAD_PATH) && strlen(HT_CLI_PRELOAD_PATH) < size) {
        snprintf(path, size, "%s", HT_CLI_PRELOAD_PATH);
        return 0;
    }
#endif
    ht_cli_error("cannot find " PRELOAD_NAME " (looked beside this program, in ../lib/heaptrail "
                 "and ../lib; set HEAPTRAIL_PRELOAD to its path)");
    return HT_CLI_EXIT_IO;
}

/* ---- the child's environment ---- */

static bool has_prefix(const char *text, const char *prefix)
{
    return strncmp(text, prefix, strlen(prefix)) == 0;
}

static bool replaced(const char *entry, const settings *s)
{
    static const char *const always[] = {"LD_PRELOAD=", "HEAPTRAIL_OUTPUT=", "HEAPTRAIL_FD=",
                                         "HEAPTRAIL_OWNER_PID="};
    for (size_t i = 0; i < sizeof always / sizeof always[0]; i++)
        if (has_prefix(entry, always[i]))
            return true;
    for (size_t i = 0; i < s->count; i++) {
        size_t n = strlen(s->names[i]);
        if (!strncmp(entry, s->names[i], n) && entry[n] == '=')
            return true;
    }
    return false;
}

/* environ without our variables, plus LD_PRELOAD, HEAPTRAIL_OUTPUT and the options', and a
 * HEAPTRAIL_OWNER_PID entry whose value the child fills in (*owner_slot). NULL when out of
 * memory. The strings live as long as the process (it execs or exits). */
static char **child_environment(const settings *s, const char *library, const char *output,
                                char **owner_slot)
{
    size_t count = 0;
    while (environ[count])
        count++;
    char **env = calloc(count + s->count + 4, sizeof *env);
    if (!env)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (!replaced(environ[i], s))
            env[n++] = environ[i];
    const char *old = getenv("LD_PRELOAD");
    size_t length = strlen("LD_PRELOAD=") + strlen(library) + (old ? strlen(old) + 1 : 0) + 1;
    char *preload = malloc(length);
    size_t out_length = strlen("HEAPTRAIL_OUTPUT=") + strlen(output) + 1;
    char *out = malloc(out_length);
    *owner_slot = malloc(64);
    if (!preload || !out || !*owner_slot)
        return NULL;
    snprintf(preload, length, "LD_PRELOAD=%s%s%s", library, old && *old ? ":" : "",
             old && *old ? old : "");
    snprintf(out, out_length, "HEAPTRAIL_OUTPUT=%s", output);
    snprintf(*owner_slot, 64, "HEAPTRAIL_OWNER_PID=0");
    env[n++] = preload;
    env[n++] = out;
    env[n++] = *owner_slot;
    for (size_t i = 0; i < s->count; i++) {
        size_t size = strlen(s->names[i]) + strlen(s->values[i]) + 2;
        char *entry = malloc(size);
        if (!entry)
            return NULL;
        snprintf(entry, size, "%s=%s", s->names[i], s->values[i]);
        env[n++] = entry;
    }
    env[n] = NULL;
    return env;
}

/* Frees what child_environment allocated (the entries after environ's). */
static void free_environment(char **env)
{
    if (!env)
        return;
    size_t inherited = 0;
    while (environ[inherited])
        inherited++;
    for (char **entry = env; *entry; entry++) {
        bool ours = true;
        for (size_t i = 0; i < inherited && ours; i++)
            ours = *entry != environ[i];
        if (ours)
            free(*entry);
    }
    free(env);
}

/* "%p" replaced by pid, as the tracer does. */
/* ---- running ---- */

static volatile sig_atomic_t child_pid;

static void forward_signal(int signal_number, siginfo_t *info, void *context)
{
    (void)context;
    /* A terminal's signal reached the whole process group, the program included. */
    bool from_process = info->si_code == SI_USER || info->si_code == SI_QUEUE ||
                        info->si_code == SI_TKILL;
    if (child_pid > 0 && from_process && info->si_pid != child_pid)
        kill((pid_t)child_pid, signal_number);
}

static const int forwarded_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void install_forwarding(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = forward_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    for (size_t i = 0; i < sizeof forwarded_signals / sizeof forwarded_signals[0]; i++)
        sigaction(forwarded_signals[i], &action, NULL);
}

typedef struct child_failure {
    int stage; /* 1: creating the trace file, 2: exec, 3: the program's output (--live) */
    int error;
} child_failure;

/* In the child: name itself the traced process, make sure the trace file can be created (the
 * tracer creates it again), then exec. Reports a failure through the pipe and exits. */
static void run_child(int report, const char *output_pattern, char **program, char **env,
                      char *owner_slot, const char *program_output, bool trace_on_stdout)
{
    snprintf(owner_slot, 64, "HEAPTRAIL_OWNER_PID=%ld", (long)getpid());
    if (trace_on_stdout) /* -o -: standard output carries the trace; the program's goes to
                          * standard error */
        dup2(STDERR_FILENO, STDOUT_FILENO);
    if (program_output) { /* --live: the terminal is the view's */
        char path[PATH_MAX + 32];
        ht_cli_expand_pid(program_output, (long)getpid(), path, sizeof path);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) {
            child_failure failure = {3, errno};
            (void)!write(report, &failure, sizeof failure);
            _exit(HT_CLI_EXIT_IO);
        }
        close(in);
        close(out);
    }
    char output[PATH_MAX + 32];
    ht_cli_expand_pid(output_pattern, (long)getpid(), output, sizeof output);
    int fd = open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        child_failure failure = {1, errno};
        (void)!write(report, &failure, sizeof failure);
        _exit(HT_CLI_EXIT_IO);
    }
    close(fd);
    execvpe(program[0], program, env);
    child_failure failure = {2, errno};
    (void)!write(report, &failure, sizeof failure);
    _exit(failure.error == ENOENT ? 127 : 126);
}

/* ---- summary ---- */

static void summarize(const char *shown_path, const char *path, const char *program, long pid)
{
    struct stat st;
    bool exists = stat(path, &st) == 0;
    if (!exists || st.st_size == 0) {
        if (exists)
            unlink(path); /* made empty by us to check the path; the program never wrote it */
        fprintf(stderr,
                "heaptrail: no trace was written: '%s' did not load " PRELOAD_NAME
                " (a statically linked or setuid program?)\n",
                program);
        return;
    }
    fprintf(stderr, "heaptrail: trace of '%s' (pid %ld) in %s\n", program, pid, shown_path);
    char error[512];
    ht_reader *reader = ht_reader_open(path, error, sizeof error);
    if (!reader) {
        fprintf(stderr, "heaptrail: the trace cannot be read: %s\n", error);
        return;
    }
    /* Opening reads the chunk headers and the small tables, never an event: the counts come
     * from the chunk headers and the footer, the heaps' state from the footer (the tracer took
     * it at the stop), so the summary costs the same for any length of recording. */
    const ht_trace_info *info = ht_reader_info(reader);
    ht_trace_summary summary;
    ht_trace_summary_of_info(info, &summary);
    char a[HTI_NUMBER_MAX], b[HTI_NUMBER_MAX], c[HTI_NUMBER_MAX];
    fprintf(stderr, "heaptrail: %s events", hti_format_count(a, sizeof a, (double)summary.events));
    if (summary.lost_known)
        fprintf(stderr, ", %s lost", hti_format_count(a, sizeof a, (double)summary.lost));
    fprintf(stderr, ", %s (%.1f bytes/event)",
            hti_format_bytes(b, sizeof b, (double)info->file_size),
            summary.events ? (double)info->file_size / (double)summary.events : 0.0);
    if (summary.end_known) {
        fprintf(stderr,
                "; %s in %s %s live %s, peak committed %s; peak live bytes: "
                "heaptrail stats %s\n",
                hti_format_bytes(a, sizeof a, summary.end_bytes),
                hti_format_count(b, sizeof b, summary.end_blocks),
                hti_noun(summary.end_blocks, "block", "blocks"), summary.end_when,
                hti_format_bytes(c, sizeof c, (double)summary.peak_committed), shown_path);
    } else {
        /* A footer from a crash flush, from an older tracer, or none: what it lacks needs the
         * events read. */
        fprintf(stderr, "; %speak and live blocks: heaptrail stats %s\n",
                summary.lost_known ? "" : "lost events, ", shown_path);
    }
    if (!info->complete)
        fprintf(stderr, "heaptrail: the trace has no footer: the program did not exit normally "
                        "(events still buffered then are missing)\n");
    ht_reader_close(reader);
}

/* With --follow-forks: the other traces written since start_time next to the first. */
static void summarize_children(const char *pattern, const char *first, time_t start_time)
{
    char directory[PATH_MAX + 64];
    snprintf(directory, sizeof directory, "%s", pattern);
    char *slash = strrchr(directory, '/');
    if (!slash)
        return;
    *slash = '\0';
    const char *name_pattern = slash + 1;
    char prefix[NAME_MAX + 1], suffix[NAME_MAX + 1];
    const char *p = strstr(name_pattern, "%p");
    if (p) {
        snprintf(prefix, sizeof prefix, "%.*s", (int)(p - name_pattern), name_pattern);
        snprintf(suffix, sizeof suffix, "%s", p + 2);
    } else {
        snprintf(prefix, sizeof prefix, "%s.", name_pattern);
        suffix[0] = '\0';
    }
    DIR *dir = opendir(directory[0] ? directory : "/");
    if (!dir)
        return;
    unsigned long count = 0;
    struct dirent *entry;
    const char *first_name = strrchr(first, '/') ? strrchr(first, '/') + 1 : first;
    while ((entry = readdir(dir)) != NULL) {
        size_t length = strlen(entry->d_name), pl = strlen(prefix), sl = strlen(suffix);
        if (length <= pl + sl || strncmp(entry->d_name, prefix, pl) != 0 ||
            strcmp(entry->d_name + length - sl, suffix) != 0 || !strcmp(entry->d_name, first_name))
            continue;
        size_t digits = strspn(entry->d_name + pl, "0123456789");
        if (digits != length - pl - sl)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), entry->d_name, &st, 0) == 0 && S_ISREG(st.st_mode) &&
            st.st_mtime >= start_time)
            count++;
    }
    closedir(dir);
    if (count)
        fprintf(stderr, "heaptrail: and %lu trace%s of child processes: %s/%sPID%s\n", count,
                count == 1 ? "" : "s", directory, prefix, suffix);
}

/* ---- streamed: --live, --pprof-every, -o - ---- */

typedef struct stream {
    char dir[PATH_MAX], fifo[PATH_MAX + 16];
    int read_fd; /* ours: the copy thread reads it */
    int hold_fd; /* a writer of ours, so the FIFO ends only once the program is gone */
} stream;

/* A FIFO in a private directory, opened for reading, and once for writing to hold it open. */
static int stream_open(stream *st)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(st->dir, sizeof st->dir, "%s/heaptrail.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(st->dir)) {
        ht_cli_error("cannot create a directory in %s: %s", tmp && *tmp ? tmp : "/tmp",
                     strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    snprintf(st->fifo, sizeof st->fifo, "%s/trace", st->dir);
    if (mkfifo(st->fifo, 0600) != 0 ||
        (st->read_fd = open(st->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC)) < 0 ||
        (st->hold_fd = open(st->fifo, O_WRONLY | O_CLOEXEC)) < 0) {
        ht_cli_error("cannot create a FIFO in %s: %s", st->dir, strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    fcntl(st->read_fd, F_SETFL, fcntl(st->read_fd, F_GETFL) & ~O_NONBLOCK);
    return 0;
}

/* Removes the FIFO's name (the program opened it, or never will) and closes what is ours. */
static void stream_close(stream *st)
{
    if (st->fifo[0]) {
        unlink(st->fifo);
        rmdir(st->dir);
        st->fifo[0] = '\0';
    }
    if (st->hold_fd >= 0)
        close(st->hold_fd);
    if (st->read_fd >= 0)
        close(st->read_fd);
    st->hold_fd = st->read_fd = -1;
}

typedef struct watch {
    stream *st;
    pid_t pid;
    int status;
    bool exited;
} watch;

/* Every tick: once the program has ended, the FIFO may end too. */
static void watch_tick(void *context, ht_live *live)
{
    watch *w = context;
    if (w->exited || waitpid(w->pid, &w->status, WNOHANG) != w->pid)
        return;
    w->exited = true;
    close(w->st->hold_fd);
    w->st->hold_fd = -1;
    char note[128];
    if (WIFSIGNALED(w->status))
        snprintf(note, sizeof note, "process %ld was ended by signal %d", (long)w->pid,
                 WTERMSIG(w->status));
    else
        snprintf(note, sizeof note, "process %ld exited with status %d", (long)w->pid,
                 WEXITSTATUS(w->status));
    ht_live_note(live, note);
}

static int stop_child(void *context)
{
    const watch *w = context;
    return w->exited ? 0 : ht_cli_stream_stop((long)w->pid, NULL);
}

/* Copies the trace to tee (a file, or "-"), with the view and the profiles when asked, until
 * the program is gone. Returns 0 or an exit code (said); *status as waitpid gives it. */
static int run_streamed(const settings *s, stream *st, pid_t pid, const char *program,
                        const char *tee, int *status)
{
    const char *base = strrchr(program, '/') ? strrchr(program, '/') + 1 : program;
    char name[NAME_MAX + 1];
    if (s->output && strcmp(s->output, "-") != 0) { /* NAME: the trace's, without .trace */
        const char *file = strrchr(tee, '/') ? strrchr(tee, '/') + 1 : tee;
        snprintf(name, sizeof name, "%.*s", (int)ht_cli_trace_stem(file), file);
    } else {
        snprintf(name, sizeof name, "heaptrail.%s.%ld", *base ? base : "program", (long)pid);
    }
    ht_live_settings settings = {
        .tee = tee,
        .top = s->live,
        .pprof_every_ns = s->pprof.every_ns,
        .pprof_at_peak = s->pprof.at_peak,
        .pprof_dir = s->pprof.dir,
        .pprof_name = name,
        .symbols = s->pprof.symbols,
        .pid = (long)pid,
        .command = base,
    };
    watch w = {.st = st, .pid = pid};
    ht_live_hooks hooks = {.context = &w, .tick = watch_tick};
    int code = 0, fd = st->read_fd;
    st->read_fd = -1; /* the collector's now */
    ht_live *live = ht_live_open(fd, &settings, &code);
    if (live) {
        ht_live_end end = ht_live_run(live, &hooks, -1);
        stream_close(st); /* the program has opened it, or is gone */
        if (end == HT_LIVE_QUIT || end == HT_LIVE_SIGNAL) {
            if (end == HT_LIVE_SIGNAL && !w.exited)
                kill(pid, ht_live_signal(live)); /* as record forwards it without the view */
            else if (!w.exited && s->control)
                ht_live_stop(live, &hooks, stop_child, &w);
        }
        code = ht_live_close(live);
    }
    stream_close(st);
    if (!w.exited)
        while (waitpid(pid, &w.status, 0) < 0 && errno == EINTR)
            ;
    *status = w.status;
    return code;
}

static ht_cli_record_outcome last_outcome;

const ht_cli_record_outcome *ht_cli_record_last(void)
{
    return &last_outcome;
}

int ht_cli_record(int argc, char **argv)
{
    memset(&last_outcome, 0, sizeof last_outcome);
    settings s;
    memset(&s, 0, sizeof s);
    s.pprof.symbols = s.control = true;
    int code = parse_options(argc, argv, &s);
    if (code)
        return code < 0 ? HT_CLI_EXIT_OK : code;
    char **program = argv + optind;

    char library[PATH_MAX];
    if ((code = find_preload(library, sizeof library)) != 0)
        return code;
    if (strpbrk(library, ": ")) {
        ht_cli_error("the library path '%s' contains ':' or a space, which LD_PRELOAD cannot "
                     "carry; set HEAPTRAIL_PRELOAD to another copy",
                     library);
        return HT_CLI_EXIT_IO;
    }

    /* The output, absolute: the program may change directory, its children too. */
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        ht_cli_error("cannot get the current directory: %s", strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    char shown[PATH_MAX], pattern[PATH_MAX + 32];
    if (s.output) {
        snprintf(shown, sizeof shown, "%s", s.output);
    } else {
        const char *base = strrchr(program[0], '/') ? strrchr(program[0], '/') + 1 : program[0];
        snprintf(shown, sizeof shown, "heaptrail.%s.%%p.trace", *base ? base : "program");
    }
    if (shown[0] == '/')
        snprintf(pattern, sizeof pattern, "%s", shown);
    else if ((size_t)snprintf(pattern, sizeof pattern, "%s/%s", cwd, shown) >= sizeof pattern) {
        ht_cli_error("output path too long");
        return HT_CLI_EXIT_IO;
    }
    if (strchr(pattern, '\n')) {
        ht_cli_error("bad output path: contains a newline");
        return HT_CLI_EXIT_USAGE;
    }

    /* With --follow-forks, every process writes FILE.PID (FILE with %p replaced, if it has
     * one); the traced process's own trace is renamed FILE once it is done. */
    char traced_pattern[PATH_MAX + 64];
    bool rename_after = s.follow_forks && !strstr(pattern, "%p");
    snprintf(traced_pattern, sizeof traced_pattern, "%s%s", pattern, rename_after ? ".%p" : "");
    /* With --live the program's output goes to a file beside the trace, NAME.out. */
    char program_output[PATH_MAX + 64];
    snprintf(program_output, sizeof program_output, "%.*s.out", (int)ht_cli_trace_stem(pattern),
             pattern);
    /* Watched live, or to standard output: the program writes into a FIFO read here. */
    stream st = {.read_fd = -1, .hold_fd = -1};
    bool to_stdout = s.output && strcmp(s.output, "-") == 0;
    if (s.live || s.pprof.every_ns || s.pprof.at_peak || to_stdout) {
        if ((code = stream_open(&st)) != 0)
            return code;
        snprintf(traced_pattern, sizeof traced_pattern, "%s", st.fifo);
    }
    char *owner_slot = NULL;
    char **env = child_environment(&s, library, traced_pattern, &owner_slot);
    if (!env) {
        ht_cli_error("out of memory");
        return HT_CLI_EXIT_IO;
    }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) {
        ht_cli_error("cannot create a pipe: %s", strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    time_t start_time = time(NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        ht_cli_error("cannot start '%s': %s", program[0], strerror(errno));
        return HT_CLI_EXIT_IO;
    }
    if (pid == 0) {
        close(report[0]);
        run_child(report[1], traced_pattern, program, env, owner_slot,
                  s.live ? program_output : NULL, to_stdout);
    }
    child_pid = pid;
    install_forwarding();
    close(report[1]);
    free_environment(env);
    child_failure failure = {0, 0};
    ssize_t got;
    do
        got = read(report[0], &failure, sizeof failure);
    while (got < 0 && errno == EINTR);
    close(report[0]);

    int status = 0;
    char path[PATH_MAX + 32], shown_path[PATH_MAX + 32], written[PATH_MAX + 96];
    ht_cli_expand_pid(pattern, (long)pid, path, sizeof path);
    ht_cli_expand_pid(shown, (long)pid, shown_path, sizeof shown_path);
    ht_cli_expand_pid(traced_pattern, (long)pid, written, sizeof written);
    if (st.read_fd >= 0 && got != (ssize_t)sizeof failure) {
        code = run_streamed(&s, &st, pid, program[0], to_stdout ? "-" : path, &status);
    } else {
        stream_close(&st);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    if (got == (ssize_t)sizeof failure) {
        stream_close(&st);
        if (failure.stage == 1) {
            ht_cli_error("cannot create '%s': %s", written, strerror(failure.error));
            return HT_CLI_EXIT_IO;
        }
        if (failure.stage == 3) {
            ht_cli_expand_pid(program_output, (long)pid, path, sizeof path);
            ht_cli_error("cannot create '%s' for the program's output: %s", path,
                         strerror(failure.error));
            return HT_CLI_EXIT_IO;
        }
        unlink(written); /* the empty file made to check the output */
        ht_cli_error("cannot run '%s': %s", program[0], strerror(failure.error));
        return failure.error == ENOENT ? 127 : 126;
    }

    last_outcome = (ht_cli_record_outcome){true, (long)pid, status};
    if (rename_after && rename(written, path) != 0 && errno != ENOENT)
        ht_cli_warning("cannot rename '%s' to '%s': %s", written, path, strerror(errno));
    if (code && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return code; /* the program did well; the trace or the profiles did not */
    if (s.live && !s.quiet) {
        char out[PATH_MAX + 64];
        ht_cli_expand_pid(program_output, (long)pid, out, sizeof out);
        fprintf(stderr, "heaptrail: the program's output is in %s\n", out);
    }
    if (!s.quiet && !to_stdout) {
        summarize(shown_path, path, program[0], (long)pid);
        if (s.follow_forks)
            summarize_children(pattern, path, start_time);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) {
        if (!s.quiet)
            fprintf(stderr, "heaptrail: '%s' was ended by signal %d (%s)\n", program[0],
                    WTERMSIG(status), strsignal(WTERMSIG(status)));
        return 128 + WTERMSIG(status);
    }
    return HT_CLI_EXIT_IO;
}
