#!/usr/bin/env python3
"""run.py — runs the allocator benchmark and the tracing-cost benchmark and writes their tables.

Owns the list of workloads and allocators, the measurement (wall time with perf_counter
around each run, peak RSS as the workload's ru_maxrss from wait4, taken by build/bench_launch),
the checks (exit status 0, stdout checksum equal to glibc's, malloc really replaced) and the
markdown reports, which replace the block between the allocator-table markers (default mode)
or the tracing-cost-table markers (--tracing: untraced, record, record --stacks and heaptrack
on the same programs) in docs/PERFORMANCE.md. Everything runs interleaved, round by round;
each cell is the median over rounds. Standard library only.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

# Each run gets its own process group, so a timeout kills the workload with its launcher.
OWN_PROCESS_GROUP = ({"process_group": 0} if sys.version_info >= (3, 11)
                     else {"preexec_fn": os.setpgrp})
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBDIR = "/usr/lib/x86_64-linux-gnu"
BEGIN_MARK = "<!-- allocator-table:begin -->"
END_MARK = "<!-- allocator-table:end -->"
TRACING_BEGIN_MARK = "<!-- tracing-cost-table:begin -->"
TRACING_END_MARK = "<!-- tracing-cost-table:end -->"

# name -> library to preload (None: the C library's own malloc). heaptrail's path depends on
# the build directory and is filled in by main().
ALLOCATORS = {
    "glibc": None,
    "mimalloc": LIBDIR + "/libmimalloc.so.2",
    "jemalloc": LIBDIR + "/libjemalloc.so.2",
    "tcmalloc": LIBDIR + "/libtcmalloc_minimal.so.4",
    "heaptrail": "libheaptrail-preload.so",
}
SUBJECT = "heaptrail"
SNAPSHOTS = {}  # allocator -> description of the build that was copied
ORIGINALS = {}  # copied library path -> the path it was copied from
REFERENCE = "glibc"
BASELINE = "mimalloc"

# Workloads. "binary" ones are bench_<name> in the build directory, run with `args` (default:
# none, the defaults compiled in) or with `tiny` under --tiny; the tiny arguments match the
# CTest smoke test in bench/CMakeLists.txt. "script" ones run under --python, "stdin" ones
# under sqlite3. "tracing_only" ones belong to the --tracing table alone; "secondary" ones are
# shown there but not counted against its targets. "volatile" is a pattern removed from stdout
# before its checksum is taken (output that depends on timing or addresses).
WORKLOADS = [
    {"name": "churn", "binary": "bench_churn", "tiny": ["1", "20000", "1"],
     "what": "1 thread, mixed sizes 16 B-1 MiB, 10^4-10^5 live blocks"},
    {"name": "xthread", "binary": "bench_xthread", "tiny": ["4", "20000", "1"],
     "what": "2 producers allocate, 2 consumers free, bounded queue"},
    {"name": "larson", "binary": "bench_larson", "tiny": ["2", "30000", "1"],
     "what": "2 chains of slot arrays handed to a new thread every 10^4 steps"},
    {"name": "small", "binary": "bench_small", "tiny": ["1", "50000", "1"],
     "what": "2 x 2^20 objects of 8-64 B, bulk build, scattered teardown"},
    {"name": "realloc", "binary": "bench_realloc", "tiny": ["1", "30000", "1"],
     "what": "32 interleaved string builders, exact and doubling growth"},
    {"name": "cxx", "binary": "bench_cxx", "tiny": ["2", "16", "1"],
     "what": "C++: 2 threads parse records into strings, maps, vectors; a tenth cross threads"},
    {"name": "python", "script": "bench/scripts/py_workload.py", "tiny": ["0.05"],
     "env": {"PYTHONHASHSEED": "0"},
     "what": "CPython: dicts, strings, lists, json (pymalloc left on)"},
    {"name": "python-malloc", "script": "bench/scripts/py_workload.py", "tiny": ["0.05"],
     "env": {"PYTHONHASHSEED": "0", "PYTHONMALLOC": "malloc"},
     "what": "the python workload with PYTHONMALLOC=malloc: every object through malloc"},
    {"name": "sqlite", "stdin": "bench/scripts/sqlite_workload.sql",
     "what": "sqlite3 :memory: 200k inserts, an index, grouped queries"},
    # bench/trace's loop (a window of 1024 blocks) over malloc: the microbenchmark, kept as a
    # secondary row. It prints its loop time and an address-derived checksum, so only its
    # event count is compared; 10^7 iterations are 2 * 10^7 events.
    {"name": "microloop", "binary": "bench_trace_malloc", "args": ["10000000"],
     "tiny": ["20000"], "tracing_only": True, "secondary": True,
     "volatile": rb"(loop_ns|checksum) [0-9]+ ?",
     "what": "bench/trace's loop over malloc: 1024-block window, 2 * 10^7 events"},
]


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run the allocator workloads under each allocator (LD_PRELOAD), "
                    "interleaved, and report median time and peak RSS; with --tracing, run "
                    "them untraced, under heaptrail record (with and without stacks) and "
                    "under heaptrack, and report what tracing costs.")
    parser.add_argument("--tracing", action="store_true",
                        help="the tracing-cost table instead of the allocator table: per "
                             "workload and round, the preload library with no session, "
                             "`heaptrail record -q`, `record` (with its summary), `record -q "
                             "--stacks` and `heaptrack`")
    parser.add_argument("--rounds", type=int,
                        help="rounds; each runs every allocator (or every tracing column) "
                             "once per workload (default 5; 3 with --tracing)")
    parser.add_argument("--quick", action="store_true",
                        help="1 round, for a smoke check; does not touch the docs")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny workload arguments (correctness only); does not touch the docs")
    parser.add_argument("--only", metavar="WORKLOADS",
                        help="comma-separated workloads (default: all: %s; with --tracing "
                             "also %s)"
                             % (",".join(w["name"] for w in WORKLOADS
                                         if not w.get("tracing_only")),
                                ",".join(w["name"] for w in WORKLOADS if w.get("tracing_only"))))
    parser.add_argument("--allocators", metavar="NAMES",
                        help="comma-separated allocators (default: all: %s)"
                             % ",".join(ALLOCATORS))
    parser.add_argument("--also", metavar="NAME=LIBRARY", action="append", default=[],
                        help="one more allocator to preload, e.g. another heaptrail build "
                             "(before=/tmp/old/libheaptrail-preload.so); repeatable; the table "
                             "gains a heaptrail / NAME ratio column")
    parser.add_argument("--out", metavar="FILE", help="also write the markdown report to FILE")
    parser.add_argument("--docs", metavar="FILE",
                        help="PERFORMANCE.md whose allocator (or tracing-cost) table is "
                             "replaced (default: docs/PERFORMANCE.md, only on full runs of "
                             "every workload and allocator)")
    parser.add_argument("--no-docs", action="store_true", help="never touch the docs")
    parser.add_argument("--json", metavar="FILE",
                        help="raw per-run results (default: bench/results/last-run.json; "
                             "bench/results/tracing-last-run.json with --tracing)")
    parser.add_argument("--build-dir", metavar="DIR", default=os.path.join(REPO, "build"),
                        help="where bench_* and libheaptrail-preload.so are (default: build)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds before a run is killed and counted as failed (default 120)")
    parser.add_argument("--python", metavar="EXE",
                        default=os.path.realpath(sys.executable),
                        help="interpreter for the python workload (default: this one)")
    parser.add_argument("--list", action="store_true", help="list workloads and allocators")
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 3 if args.tracing else 5
    if args.quick:
        args.rounds = 1
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.tracing and (args.allocators or args.also):
        parser.error("--tracing measures heaptrail's build only: no --allocators or --also")
    args.workloads = pick(parser, "--only", args.only,
                          [w["name"] for w in WORKLOADS
                           if args.tracing or not w.get("tracing_only")])
    args.extra = {}
    for item in args.also:
        name, sep, library = item.partition("=")
        if not sep or not name or not library or name in ALLOCATORS or name in args.extra:
            parser.error("--also %s: expected a new NAME=LIBRARY" % item)
        args.extra[name] = os.path.abspath(library)
    args.allocator_names = pick(parser, "--allocators", args.allocators, list(ALLOCATORS))
    args.allocator_names += list(args.extra)
    full = not (args.quick or args.tiny or args.only or args.allocators)
    if args.no_docs:
        args.docs = None
    elif args.docs is None and full:
        args.docs = os.path.join(REPO, "docs", "PERFORMANCE.md")
    if args.json is None:
        args.json = os.path.join(REPO, "bench", "results",
                                 "tracing-last-run.json" if args.tracing else "last-run.json")
    return args


def pick(parser, option, text, known):
    if not text:
        return list(known)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error("%s: unknown %s (known: %s)" % (option, ",".join(unknown), ",".join(known)))
    return [n for n in known if n in names]


def shown_path(path):
    """Repository-relative when inside the repository, absolute otherwise."""
    path = os.path.abspath(path)
    if path.startswith(REPO + os.sep):
        return os.path.relpath(path, REPO)
    return path


def workload_command(workload, args):
    """(argv, stdin path, extra env) for one run, or a string saying why it cannot run."""
    extra = workload.get("tiny", []) if args.tiny else workload.get("args", [])
    if "binary" in workload:
        exe = os.path.join(args.build_dir, workload["binary"])
        if not os.access(exe, os.X_OK):
            return "%s not built (run make)" % shown_path(exe)
        return [exe] + extra, None, {}
    if "script" in workload:
        if not os.access(args.python, os.X_OK):
            return "python interpreter %s not found" % args.python
        return ([args.python, os.path.join(REPO, workload["script"])] + extra, None,
                workload.get("env", {}))
    sqlite = shutil.which("sqlite3")
    if sqlite is None:
        return "sqlite3 not installed"
    return [sqlite, ":memory:"], os.path.join(REPO, workload["stdin"]), {}


def child_env(extra):
    """The environment for every run: no preload (bench_launch sets the allocator's in the
    workload only) and no HEAPTRAIL* variables, so tracing stays off."""
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("HEAPTRAIL")}
    env.update(extra)
    return env


def reproduce_line(argv, stdin, library, extra):
    words = ["%s=%s" % (k, shlex.quote(v)) for k, v in sorted(extra.items())]
    if library:
        words.append("LD_PRELOAD=" + shlex.quote(library))
    line = " ".join(words + [shlex.quote(a) for a in argv])
    if stdin:
        line += " < " + shlex.quote(stdin)
    return line


def run_once(launcher, argv, stdin, env, library, timeout):
    """One run through bench_launch: wall seconds (perf_counter around the launcher), the
    workload's peak RSS in KiB (its own ru_maxrss, which the launcher gets from wait4), exit
    code (negative: killed by that signal), stdout and stderr."""
    stdin_file = open(stdin, "rb") if stdin else subprocess.DEVNULL
    timed_out = []
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
                tempfile.TemporaryDirectory() as scratch:
            result_path = os.path.join(scratch, "result")
            command = [launcher, result_path, library or "-"] + argv
            start = time.perf_counter()
            proc = subprocess.Popen(command, stdin=stdin_file, stdout=out, stderr=err, env=env,
                                    **OWN_PROCESS_GROUP)

            def kill():
                timed_out.append(True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            _, status, _ = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            result = {"wall": wall, "rss_kib": None, "code": proc.returncode,
                      "timed_out": bool(timed_out), "stdout": out.read(), "stderr": err.read()}
            try:
                with open(result_path) as measured:
                    rss_kib, wall_ns, child_status, cpu_us = (
                        int(f) for f in measured.read().split())
                result.update(rss_kib=rss_kib, launcher_wall=wall_ns / 1e9, cpu=cpu_us / 1e6,
                              code=os.waitstatus_to_exitcode(child_status))
            except (OSError, ValueError):
                result["launcher_failed"] = True
            return result
    finally:
        if stdin:
            stdin_file.close()


def checksum_of(stdout):
    return hashlib.sha256(stdout).hexdigest()[:16]


def judge(result, reference):
    """None when the run is good, else a short reason."""
    if result["timed_out"]:
        return "timeout"
    if result.get("launcher_failed"):
        return "launcher failed (exit %d)" % result["code"]
    if result["code"] < 0:
        return "signal %d" % -result["code"]
    if result["code"] != 0:
        return "exit %d" % result["code"]
    if b"cannot be preloaded" in result["stderr"]:
        return "preload failed"
    if reference is not None and checksum_of(result["stdout"]) != reference:
        return "checksum"
    return None


def describe_failure(result, reason):
    text = result["stderr"].decode(errors="replace").strip().splitlines()
    tail = " | ".join(text[-3:]) if text else ""
    got = result["stdout"].decode(errors="replace").strip().splitlines()
    if reason == "checksum":
        return "wrong checksum (stdout %s)" % (" | ".join(got[-2:]) or "empty")
    return reason + (": " + tail if tail else "")


def interposes_malloc(args, library):
    """None when the dynamic linker binds a workload's malloc to `library`, else why not.
    A library that loads but does not define malloc would silently measure glibc."""
    probe = os.path.join(args.build_dir, "bench_churn")
    if not os.access(probe, os.X_OK):
        return None  # nothing to probe with; the workloads will be skipped anyway
    env = child_env({"LD_PRELOAD": library, "LD_DEBUG": "bindings"})
    try:
        probe_run = subprocess.run([probe, "1", "1", "1"], env=env, capture_output=True,
                                   timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return "probe run timed out"
    name = os.path.basename(library)
    for line in probe_run.stderr.decode(errors="replace").splitlines():
        if "binding file " + probe in line and "`malloc'" in line:
            return None if name in line.split(" to ", 1)[-1] else \
                "malloc binds elsewhere: " + line.split(" to ", 1)[-1].strip()
    return "no binding of malloc seen (exit %d)" % probe_run.returncode


def log(message):
    print(message, file=sys.stderr, flush=True)


def prepared_workloads(args, results, launcher, columns, ref_output=None):
    """The selected workloads, each as (workload, command, entry) once its entry is in results
    and its untimed glibc reference run is done (the reference checksum, and a warm page cache
    for round 1); a workload that cannot run is recorded as skipped instead. ref_output, if
    given, takes (workload, entry, stdout) and returns the part of stdout to checksum."""
    for workload in WORKLOADS:
        name = workload["name"]
        if name not in args.workloads:
            continue
        command = workload_command(workload, args)
        if not os.access(launcher, os.X_OK):
            command = "%s not built (run make)" % shown_path(launcher)
        if isinstance(command, str):
            log("%s: skipped: %s" % (name, command))
            results[name] = {"skip": command}
            continue
        argv, stdin, extra = command
        entry = {"runs": {c: [] for c in columns}, "errors": {}, "ref": None}
        results[name] = entry
        ref = run_once(launcher, argv, stdin, child_env(extra), None, args.timeout)
        if ref_output:
            ref["stdout"] = ref_output(workload, entry, ref["stdout"])
        reason = judge(ref, None)
        if reason is None:
            entry["ref"] = checksum_of(ref["stdout"])
        else:
            entry["ref_error"] = describe_failure(ref, reason)
            log("%s: glibc reference run failed: %s" % (name, entry["ref_error"]))
        yield workload, command, entry


def benchmark(args, allocators):
    """Runs everything; returns {workload: {"skip": why} or {"ref", "runs", "errors"}}."""
    results = {}
    launcher = os.path.join(args.build_dir, "bench_launch")
    for workload, command, entry in prepared_workloads(args, results, launcher, allocators):
        name = workload["name"]
        argv, stdin, extra = command
        for round_index in range(args.rounds):
            line = []
            for alloc, library in allocators.items():
                if alloc in entry["errors"]:
                    continue
                result = run_once(launcher, argv, stdin, child_env(extra), library,
                                  args.timeout)
                reason = judge(result, entry["ref"])
                if reason is not None:
                    entry["errors"][alloc] = {
                        "reason": reason, "detail": describe_failure(result, reason),
                        "reproduce": reproduce_line(argv, stdin, ORIGINALS.get(library, library),
                                                    extra)}
                    line.append("%s FAILED (%s)" % (alloc, reason))
                    continue
                entry["runs"][alloc].append({"wall": result["wall"],
                                             "launcher_wall": result["launcher_wall"],
                                             "cpu": result["cpu"],
                                             "rss_kib": result["rss_kib"]})
                line.append("%s %.3fs %.0fMiB" % (alloc, result["wall"],
                                                  result["rss_kib"] / 1024.0))
            log("%s %d/%d: %s" % (name, round_index + 1, args.rounds, ", ".join(line)))
    return results


def medians(runs):
    if not runs:
        return None
    return (statistics.median(r["wall"] for r in runs),
            statistics.median(r["rss_kib"] for r in runs) / 1024.0)


def machine_lines():
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as meminfo:
            kib = int(meminfo.readline().split()[1])
            memory = ", %.0f GiB RAM" % (kib / 1048576.0)
    except (OSError, ValueError, IndexError):
        pass
    libc = " ".join(platform.libc_ver()) or "unknown libc"
    return "nproc %d, %s%s, Linux %s, %s" % (os.cpu_count() or 0, model, memory,
                                            platform.release(), libc)



def markdown_rows(rows):
    """Rows of cells as Markdown table lines."""
    return ["| " + " | ".join(row) + " |" for row in rows]


def run_context_lines(load_before, started, revision):
    """The machine, its load and the revision a table was measured on."""
    return ["- Machine: %s; load average %s at start, %s at end." % (
                machine_lines(), load_before, "%.2f" % os.getloadavg()[0]),
            "- Date: %s; repository HEAD %s at start." % (started, revision)]


def run_method_lines(args, command, spread):
    """How a table was made: tiny arguments, the command, the largest spread between rounds."""
    lines = []
    if args.tiny:
        lines.append("- Tiny arguments: a correctness run, not a measurement.")
    lines.append("- Command: `%s`" % command)
    if spread[1] is not None:
        lines.append("- Largest spread between rounds: %.0f%% of the median (%s, %s)."
                     % (spread[0] * 100, spread[1], spread[2]))
    return lines

def program_versions(args):
    """The interpreters the real-program workloads ran, for the report."""
    found = []
    for argv in ([args.python, "--version"], ["sqlite3", "--version"]):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            words = (done.stdout or done.stderr).split()
            found.append(" ".join(words[:2]) if argv[0] == args.python else
                         "sqlite3 " + (words[0] if words else "unknown"))
        except (OSError, subprocess.SubprocessError):
            found.append("%s not found" % argv[0])
    return ", ".join(found)


def describe_build(path):
    """Modification time and hash prefix of a library, to tell two builds apart."""
    with open(path, "rb") as lib:
        digest = hashlib.sha256(lib.read()).hexdigest()[:12]
    built = datetime.datetime.fromtimestamp(os.stat(path).st_mtime, datetime.timezone.utc)
    return "built %s, sha256 %s" % (built.strftime("%Y-%m-%d %H:%M UTC"), digest)


def heaptrail_revision():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def fmt_ratio(num, den):
    if num is None or den is None or den[0] <= 0 or den[1] <= 0:
        return ("-", "-")
    return ("%.2f" % (num[0] / den[0]), "%.2f" % (num[1] / den[1]))


def report(args, allocators, missing, rejected, results, command, started, load_before,
           revision):
    names = list(allocators)
    cells = {w: {a: medians(results[w]["runs"][a]) for a in names}
             for w in results if "skip" not in results[w]}
    ratio_columns = []
    if SUBJECT in names:
        ratio_columns = [other for other in (REFERENCE, BASELINE) if other in names]
        ratio_columns += [other for other in args.extra if other in names]

    head = ["workload"]
    for alloc in names:
        head += ["%s s" % alloc, "%s MiB" % alloc]
    for other in ratio_columns:
        head += ["ht/%s time" % other, "ht/%s RSS" % other]
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]
    failures = []
    spread = (0.0, None, None)
    for workload in results:
        entry = results[workload]
        if "skip" in entry:
            rows.append([workload] + ["skipped"] + [""] * (len(head) - 2))
            continue
        row = [workload]
        for alloc in names:
            if alloc in entry["errors"]:
                error = entry["errors"][alloc]
                row += ["FAIL", error["reason"]]
                failures.append((workload, alloc, error))
            elif cells[workload][alloc] is None:
                row += ["-", "-"]
            else:
                wall, rss = cells[workload][alloc]
                row += ["%.3f" % wall, "%.1f" % rss]
                walls = [r["wall"] for r in entry["runs"][alloc]]
                if len(walls) > 1:
                    relative = (max(walls) - min(walls)) / wall
                    if relative > spread[0]:
                        spread = (relative, workload, alloc)
        for other in ratio_columns:
            subject_ok = SUBJECT not in entry["errors"]
            row += list(fmt_ratio(cells[workload][SUBJECT] if subject_ok else None,
                                  cells[workload][other]))
        rows.append(row)

    intro = ("Median of %d interleaved round%s: wall time in seconds, peak RSS (`ru_maxrss` of "
             "the workload) in MiB." % (args.rounds, "" if args.rounds == 1 else "s"))
    if ratio_columns:
        intro += " Ratios are heaptrail / other: below 1.00, heaptrail is faster or smaller."
    lines = [intro, ""]
    lines += markdown_rows(rows)
    lines += [""]
    lines += run_context_lines(load_before, started, revision)
    libs = []
    for alloc, library in allocators.items():
        if library is None:
            libs.append("%s (no preload)" % alloc)
        elif library in ORIGINALS:
            libs.append("%s `%s` (%s)" % (alloc, shown_path(ORIGINALS[library]),
                                          SNAPSHOTS[alloc]))
        else:
            libs.append("%s `%s`" % (alloc, shown_path(os.path.realpath(library))))
    lines.append("- Allocators: " + ", ".join(libs) + ".")
    lines.append("- Programs: %s." % program_versions(args))
    if missing:
        lines.append("- Not found, skipped: " + ", ".join(
            "%s (`%s`)" % (a, p) for a, p in missing.items()) + ".")
    for alloc, (path, why) in rejected.items():
        lines.append("- %s (`%s`) skipped: a probe run under it did not show malloc bound to "
                     "it (%s)." % (alloc, path, why))
        failures.append((None, alloc, {"detail": why}))
    lines += run_method_lines(args, command, spread)
    skipped = [(w, results[w]["skip"]) for w in results if "skip" in results[w]]
    for workload, why in skipped:
        lines.append("- %s skipped: %s." % (workload, why))
    for workload in results:
        if results[workload].get("ref_error"):
            lines.append("- %s: the glibc reference run failed (%s); checksums were not "
                         "compared." % (workload, results[workload]["ref_error"]))
    run_failures = [f for f in failures if f[0] is not None]
    if run_failures:
        lines += ["", "Failures:", ""]
        for workload, alloc, error in run_failures:
            lines.append("- %s under %s: %s. Reproduce: `%s`" % (
                workload, alloc, error["detail"], error["reproduce"]))
    return "\n".join(lines) + "\n", failures


# The tracing-cost table (--tracing). Per workload and round, each column runs once, in this
# order: the preload library with no session, `heaptrail record -q`, `record` with its
# summary, `record -q --stacks` and heaptrack, all on the same program and arguments.
TRACING_COLUMNS = [
    ("untraced", "untraced"),
    ("record_q", "`record -q`"),
    ("record", "`record`"),
    ("stacks", "`record -q --stacks`"),
    ("heaptrack", "heaptrack"),
]
RECORD_TARGET = 1.25   # `record -q` / untraced (SPEC.md §8)
STACKS_TARGET = 0.5    # `record -q --stacks` / heaptrack (SPEC.md §8)
SUMMARY_TARGET = 0.10  # (`record` - `record -q`) / `record -q`: what the summary may cost
TRACING_TITLE = "Tracing on real workloads"


def tracing_tools(args, snapshot_dir):
    """Paths of heaptrail, its preload library and heaptrack (None when not installed), or a
    string saying what is missing. heaptrail and the library are copied side by side (record
    finds the library next to itself), so a rebuild during the run cannot mix two builds."""
    tools = {"heaptrack": shutil.which("heaptrack")}
    copies = os.path.join(snapshot_dir, "tracer")
    os.mkdir(copies)
    for key, name in (("heaptrail", "heaptrail"), ("preload", "libheaptrail-preload.so")):
        original = os.path.join(args.build_dir, name)
        if not os.path.exists(original):
            return "%s not built (run make)" % shown_path(original)
        SNAPSHOTS[key] = describe_build(original)
        copy = os.path.join(copies, name)
        shutil.copy2(original, copy)
        ORIGINALS[copy] = original
        tools[key] = copy
    return tools


def tracing_command(column, tools, argv, out_dir):
    """(argv, library to preload or None) for one run of `column`, its trace in out_dir."""
    if column == "untraced":
        return argv, tools["preload"]
    if column == "heaptrack":
        return [tools["heaptrack"], "-o", os.path.join(out_dir, "heaptrack")] + argv, None
    words = [tools["heaptrail"], "record"]
    if column != "record":
        words.append("-q")
    if column == "stacks":
        words.append("--stacks")
    return words + ["-o", os.path.join(out_dir, "run.trace"), "--"] + argv, None


def program_output(workload, stdout):
    """stdout without what varies from run to run (the workload's "volatile" pattern)."""
    if "volatile" in workload:
        return re.sub(workload["volatile"], b"", stdout)
    return stdout


def without_heaptrack_lines(stdout):
    """The program's own stdout from a heaptrack run: heaptrack's script prints three lines
    before it starts the program and a few after the program ends, on the same stdout."""
    lines = stdout.split(b"\n")
    if lines and lines[0].startswith(b"heaptrack output will be written to"):
        for index, line in enumerate(lines[:4]):
            if line.startswith(b"starting application"):
                lines = lines[index + 1:]
                break
    ends = [i for i, line in enumerate(lines) if line.startswith(b"Heaptrack finished!")]
    if ends:
        return b"".join(line + b"\n" for line in lines[:ends[-1]])
    return b"\n".join(lines)


def bytes_in(directory):
    total = 0
    for name in os.listdir(directory):
        total += os.path.getsize(os.path.join(directory, name))
    return total


def trace_stats(heaptrail, path, timeout):
    """{"events", "lost", "complete"} of a trace from `heaptrail stats -f json`, or
    {"error"}. Run outside the timed part, on one trace per workload and column."""
    try:
        done = subprocess.run([heaptrail, "stats", "-f", "json", path], capture_output=True,
                              env=child_env({}), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "heaptrail stats timed out"}
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        return {"error": "heaptrail stats: exit %d%s" % (
            done.returncode, ": " + lines[-1] if lines else "")}
    try:
        info = json.loads(done.stdout)
        return {"events": int(info["events"]), "lost": int(info["lost"]),
                "complete": bool(info["complete"])}
    except (ValueError, KeyError, TypeError) as error:
        return {"error": "heaptrail stats: unexpected output (%s)" % error}


def loop_ns_per_event(stdout):
    """The microloop's own time per event (it prints `loop_ns N events M`), or None."""
    found = re.search(rb"loop_ns ([0-9]+) events ([0-9]+)", stdout)
    if not found or int(found.group(2)) == 0:
        return None
    return int(found.group(1)) / int(found.group(2))


def tracing_run(args, workload, entry, column, tools, command, trace_root, launcher):
    """One run of one column: appends its numbers to entry["runs"] or records the failure in
    entry["errors"]; returns the text for the progress line."""
    argv, stdin, extra = command
    out_dir = os.path.join(trace_root, column)
    os.mkdir(out_dir)
    try:
        run_argv, library = tracing_command(column, tools, argv, out_dir)
        result = run_once(launcher, run_argv, stdin, child_env(extra), library, args.timeout)
        raw_stdout = result["stdout"]
        if column == "heaptrack":
            result["stdout"] = without_heaptrack_lines(result["stdout"])
        result["stdout"] = program_output(workload, result["stdout"])
        trace_bytes = bytes_in(out_dir)
        reason = judge(result, entry["ref"])
        if reason is None and column != "untraced" and trace_bytes == 0:
            reason = "no trace written"
        if reason is None and column in ("record_q", "stacks") and column not in entry["stats"]:
            entry["stats"][column] = trace_stats(tools["heaptrail"],
                                                 os.path.join(out_dir, "run.trace"),
                                                 args.timeout)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    if reason is not None:
        originals = {key: ORIGINALS.get(path, path) for key, path in tools.items()}
        shown_argv, shown_library = tracing_command(column, originals, argv, ".")
        entry["errors"][column] = {
            "reason": reason, "detail": describe_failure(result, reason),
            "reproduce": reproduce_line(shown_argv, stdin, shown_library, extra)}
        return "%s FAILED (%s)" % (column, reason)
    entry["runs"][column].append({"wall": result["wall"], "launcher_wall": result["launcher_wall"],
                                  "cpu": result["cpu"], "rss_kib": result["rss_kib"],
                                  "trace_bytes": trace_bytes,
                                  "loop_ns_per_event": loop_ns_per_event(raw_stdout)})
    return "%s %.3fs" % (column, result["wall"])


def tracing_benchmark(args, tools):
    """Runs everything; returns {workload: {"skip": why} or {"ref", "runs", "errors",
    "stats"}}."""
    results = {}
    launcher = os.path.join(args.build_dir, "bench_launch")
    columns = [c for c, _ in TRACING_COLUMNS if c != "heaptrack" or tools["heaptrack"]]
    with tempfile.TemporaryDirectory(prefix="ht-bench-traces-") as trace_root:
        def ref_output(workload, entry, stdout):
            entry["stats"] = {}
            entry["ref_loop_ns_per_event"] = loop_ns_per_event(stdout)
            return program_output(workload, stdout)

        for workload, command, entry in prepared_workloads(args, results, launcher, columns,
                                                           ref_output):
            name = workload["name"]
            for round_index in range(args.rounds):
                line = [tracing_run(args, workload, entry, column, tools, command, trace_root,
                                    launcher)
                        for column in columns if column not in entry["errors"]]
                log("%s %d/%d: %s" % (name, round_index + 1, args.rounds, ", ".join(line)))
    return results


def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def fmt_number(value, form, scale=1.0):
    return "-" if value is None else form % (value / scale)


def mark(value, limit):
    if value is None:
        return "-"
    return "pass" if value <= limit else "miss"


def tracing_report(args, tools, results, command, started, load_before, revision):
    """The markdown block of the tracing-cost table and the list of failures."""
    columns = [c for c, _ in TRACING_COLUMNS]
    head = (["workload"] + ["%s s" % title for _, title in TRACING_COLUMNS]
            + ["`record -q` / untraced", "≤ %.2f" % RECORD_TARGET,
               "`--stacks` / heaptrack", "≤ %.1f" % STACKS_TARGET,
               "summary share", "< %.0f%%" % (SUMMARY_TARGET * 100)])
    volume_head = ["workload", "events", "lost", "M events/s", "bytes/event",
                   "bytes/event, `--stacks`", "heaptrack file MiB",
                   "peak RSS MiB: untraced / `record -q` / `--stacks` / heaptrack"]
    rows = [head, ["---"] + ["---:"] * (len(head) - 1)]
    volume_rows = [volume_head, ["---"] + ["---:"] * (len(volume_head) - 1)]
    failures, notes = [], []
    tally = {"record": [0, 0], "stacks": [0, 0], "summary": [0, 0]}
    spread = (0.0, None, None)
    secondary = {w["name"] for w in WORKLOADS if w.get("secondary")}
    for workload, entry in results.items():
        label = workload + (" *(secondary)*" if workload in secondary else "")
        if "skip" in entry:
            rows.append([label, "skipped"] + [""] * (len(head) - 2))
            volume_rows.append([label, "skipped"] + [""] * (len(volume_head) - 2))
            continue
        wall, rss = {}, {}
        row = [label]
        for column in columns:
            runs = entry["runs"].get(column, [])
            wall[column] = median_of(runs, "wall")
            rss[column] = median_of(runs, "rss_kib")
            if column in entry["errors"]:
                row.append("FAIL: " + entry["errors"][column]["reason"])
                failures.append((workload, column, entry["errors"][column]))
            elif column == "heaptrack" and not tools["heaptrack"]:
                row.append("n/a")
            else:
                row.append(fmt_number(wall[column], "%.3f"))
            walls = [r["wall"] for r in runs]
            if len(walls) > 1 and wall[column]:
                relative = (max(walls) - min(walls)) / wall[column]
                if relative > spread[0]:
                    spread = (relative, workload, column)

        def ratio(num, den):
            return wall[num] / wall[den] if wall[num] and wall[den] else None

        record_ratio = ratio("record_q", "untraced")
        stacks_ratio = ratio("stacks", "heaptrack")
        summary_ratio = ratio("record", "record_q")
        summary_share = summary_ratio - 1 if summary_ratio is not None else None
        row += [fmt_number(record_ratio, "%.2f"), mark(record_ratio, RECORD_TARGET),
                fmt_number(stacks_ratio, "%.2f"), mark(stacks_ratio, STACKS_TARGET),
                fmt_number(summary_share, "%+.0f%%", 0.01),
                mark(summary_share, SUMMARY_TARGET)]
        rows.append(row)
        if workload not in secondary:
            for key, value, limit in (("record", record_ratio, RECORD_TARGET),
                                      ("stacks", stacks_ratio, STACKS_TARGET),
                                      ("summary", summary_share, SUMMARY_TARGET)):
                tally[key][1] += 1
                tally[key][0] += value is not None and value <= limit

        stats = entry["stats"]
        events = stats.get("record_q", {}).get("events")
        lost = [stats[c]["lost"] for c in ("record_q", "stacks") if "lost" in stats.get(c, {})]
        stack_events = stats.get("stacks", {}).get("events")
        for column in ("record_q", "stacks"):
            if "error" in stats.get(column, {}):
                notes.append("- %s, %s: events not counted: %s." % (
                    workload, column, stats[column]["error"]))
            elif stats.get(column, {}).get("complete") is False:
                notes.append("- %s, %s: the trace was not complete." % (workload, column))

        def per_event(column, count):
            size = median_of(entry["runs"].get(column, []), "trace_bytes")
            return size / count if size and count else None

        volume_rows.append([
            label, fmt_number(events, "%.2f M", 1e6), "-" if not lost else "%d" % max(lost),
            fmt_number(events / wall["record_q"] if events and wall["record_q"] else None,
                       "%.1f", 1e6),
            fmt_number(per_event("record_q", events), "%.2f"),
            fmt_number(per_event("stacks", stack_events), "%.2f"),
            fmt_number(median_of(entry["runs"].get("heaptrack", []), "trace_bytes"), "%.1f",
                       1048576.0),
            " / ".join(fmt_number(rss[c], "%.0f", 1024.0) for c in
                       ("untraced", "record_q", "stacks", "heaptrack"))])
        loops = {c: median_of(entry["runs"].get(c, []), "loop_ns_per_event") for c in columns}
        if loops["untraced"] is not None:
            def added(column, base):
                if loops[column] is None or base is None:
                    return "-"
                return "%+.1f ns" % (loops[column] - base)
            notes.append(
                "- %s inside its loop (its own clock: start-up, exit and post-processing "
                "left out): untraced %.1f ns/event; added per event by `record -q` %s, by "
                "`record -q --stacks` %s; by heaptrack %s over glibc's malloc (the untimed "
                "reference run)." % (workload, loops["untraced"],
                                     added("record_q", loops["untraced"]),
                                     added("stacks", loops["untraced"]),
                                     added("heaptrack", entry.get("ref_loop_ns_per_event"))))

    lines = ["Median of %d interleaved round%s: wall time in seconds of the whole command as "
             "a user runs it (program, tracer, its post-processing). Targets: `record -q` ≤ "
             "%.2f× untraced, `record -q --stacks` ≤ %.1f× heaptrack, and the summary of "
             "`record` under %.0f%% of `record -q`." % (
                 args.rounds, "" if args.rounds == 1 else "s", RECORD_TARGET, STACKS_TARGET,
                 SUMMARY_TARGET * 100), ""]
    lines += markdown_rows(rows) + [""]
    lines.append("Met on: `record -q` %d of %d workloads, `record -q --stacks` %d of %d, "
                 "summary %d of %d (secondary rows not counted)." % (
                     tally["record"][0], tally["record"][1], tally["stacks"][0],
                     tally["stacks"][1], tally["summary"][0], tally["summary"][1]))
    lines += ["", "Events and sizes: events and lost events from `heaptrail stats` of the "
              "first round's trace; M events/s = events / `record -q` time; bytes/event = "
              "median trace size / events; peak RSS is the largest process of the command "
              "(`ru_maxrss`).", ""]
    lines += markdown_rows(volume_rows) + [""]
    lines += run_context_lines(load_before, started, revision)
    lines.append("- heaptrail: `%s` (%s), `%s` (%s)." % (
        shown_path(ORIGINALS[tools["heaptrail"]]), SNAPSHOTS["heaptrail"],
        shown_path(ORIGINALS[tools["preload"]]), SNAPSHOTS["preload"]))
    lines.append("- heaptrack: %s." % (heaptrack_version(tools["heaptrack"]) if
                                      tools["heaptrack"] else "not installed, its column "
                                      "and the `--stacks` target are n/a"))
    lines.append("- Programs: %s; trace files in `%s`, deleted after each run." % (
        program_versions(args), tempfile.gettempdir()))
    lines += run_method_lines(args, command, spread)
    lines += notes
    for workload, entry in results.items():
        if "skip" in entry:
            lines.append("- %s skipped: %s." % (workload, entry["skip"]))
        elif entry.get("ref_error"):
            lines.append("- %s: the glibc reference run failed (%s); checksums were not "
                         "compared." % (workload, entry["ref_error"]))
    if failures:
        lines += ["", "Failures:", ""]
        for workload, column, error in failures:
            lines.append("- %s, %s: %s. Reproduce: `%s`" % (
                workload, column, error["detail"], error["reproduce"]))
    return "\n".join(lines) + "\n", failures


def heaptrack_version(heaptrack):
    try:
        done = subprocess.run([heaptrack, "--version"], capture_output=True, text=True,
                              timeout=10)
        return done.stdout.strip() or "version unknown"
    except (OSError, subprocess.SubprocessError):
        return "version unknown"


def tracing_main(args, command):
    """--tracing: measure, report, and rewrite the tracing-cost table on a full run."""
    snapshot_dir = tempfile.TemporaryDirectory(prefix="ht-bench-")
    tools = tracing_tools(args, snapshot_dir.name)
    if isinstance(tools, str):
        log(tools)
        return 1
    why = interposes_malloc(args, tools["preload"])
    if why is not None:
        log("%s failed the malloc check: %s" % (ORIGINALS[tools["preload"]], why))
        return 1
    if not tools["heaptrack"]:
        log("heaptrack not installed: its column is skipped")
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = "%.2f" % os.getloadavg()[0]
    revision = heaptrail_revision()
    results = tracing_benchmark(args, tools)
    block, failures = tracing_report(args, tools, results, command, started, load_before,
                                     revision)
    snapshot_dir.cleanup()

    print(block)
    if args.out:
        with open(args.out, "w") as out:
            out.write(block)
    if args.docs:
        update_docs(args.docs, block, TRACING_BEGIN_MARK, TRACING_END_MARK, TRACING_TITLE)
        log("updated %s" % shown_path(args.docs))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        raw = {"command": command, "date": started, "rounds": args.rounds,
               "tools": {k: ORIGINALS.get(p, p) for k, p in tools.items()},
               "snapshots": SNAPSHOTS, "results": results}
        with open(args.json, "w") as out:
            json.dump(raw, out, indent=1, sort_keys=True)
    if failures:
        log("%d failure(s); see the list under the table" % len(failures))
        return 1
    return 0


DOC_TEMPLATE = """# heaptrail performance

## {title}

{begin}
{end}
"""


def update_docs(path, block, begin=BEGIN_MARK, end_mark=END_MARK, title="Allocator"):
    """Replaces the text between the markers; creates the file or the section if needed."""
    if os.path.exists(path):
        with open(path) as doc:
            text = doc.read()
    else:
        text = DOC_TEMPLATE.format(title=title, begin=begin, end=end_mark)
    start = text.find(begin)
    end = text.find(end_mark)
    if start < 0 or end < start:
        text = text.rstrip("\n") + "\n\n## %s\n\n%s\n%s\n" % (title, begin, end_mark)
        start = text.find(begin)
        end = text.find(end_mark)
    text = text[:start + len(begin)] + "\n" + block + text[end:]
    with open(path + ".tmp", "w") as doc:
        doc.write(text)
    os.replace(path + ".tmp", path)


def main(argv):
    args = parse_args(argv)
    ALLOCATORS[SUBJECT] = os.path.join(args.build_dir, "libheaptrail-preload.so")
    if args.list:
        for workload in WORKLOADS:
            print("%-13s %s%s" % (workload["name"], workload["what"],
                                  " (--tracing only)" if workload.get("tracing_only") else ""))
        if args.tracing:
            for label, name in (("heaptrail", "heaptrail"),
                                ("preload", "libheaptrail-preload.so")):
                path = os.path.join(args.build_dir, name)
                print("%-13s %s%s" % (label, path,
                                      "" if os.path.exists(path) else "  (not found)"))
            print("%-13s %s" % ("heaptrack", shutil.which("heaptrack") or "not found"))
            return 0
        for alloc, library in ALLOCATORS.items():
            state = "" if library is None or os.path.exists(library) else "  (not found)"
            print("%-9s %s%s" % (alloc, library or "C library malloc", state))
        return 0
    command = shlex.join(["python3", os.path.relpath(os.path.abspath(sys.argv[0]), REPO)]
                         + list(argv))
    if args.tracing:
        return tracing_main(args, command)
    ALLOCATORS.update(args.extra)
    allocators, missing, rejected = {}, {}, {}
    snapshot_dir = tempfile.TemporaryDirectory(prefix="ht-bench-")
    for alloc in args.allocator_names:
        library = ALLOCATORS[alloc]
        if library is not None and not os.path.exists(library):
            log("%s: %s not found, skipped" % (alloc, library))
            missing[alloc] = shown_path(library)
            continue
        if alloc == SUBJECT or alloc in args.extra:
            # A copy, so that a rebuild during the run cannot mix two versions in one table.
            SNAPSHOTS[alloc] = describe_build(library)
            copy = os.path.join(snapshot_dir.name, alloc + "-" + os.path.basename(library))
            shutil.copy2(library, copy)
            ORIGINALS[copy] = library
            library = copy
        why = interposes_malloc(args, library) if library else None
        if why is not None:
            log("%s: %s failed the malloc check, skipped: %s" % (alloc, library, why))
            rejected[alloc] = (shown_path(ORIGINALS.get(library, library)), why)
            continue
        allocators[alloc] = library
    if not allocators:
        log("no allocator to run")
        return 1

    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = "%.2f" % os.getloadavg()[0]
    revision = heaptrail_revision()
    results = benchmark(args, allocators)
    snapshot_dir.cleanup()
    block, failures = report(args, allocators, missing, rejected, results, command, started,
                             load_before, revision)

    print(block)
    if args.out:
        with open(args.out, "w") as out:
            out.write(block)
    if args.docs:
        update_docs(args.docs, block)
        log("updated %s" % shown_path(args.docs))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        raw = {"command": command, "date": started, "rounds": args.rounds,
               "allocators": {a: ORIGINALS.get(l, l) for a, l in allocators.items()},
               "missing": missing, "rejected": rejected, "snapshots": SNAPSHOTS,
               "results": results}
        with open(args.json, "w") as out:
            json.dump(raw, out, indent=1, sort_keys=True)
    if failures:
        log("%d failure(s); see the list under the table" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
